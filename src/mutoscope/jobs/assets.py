"""Storage keys of a video's files, derived from its id only, so a rerun overwrites instead of duplicating."""

from __future__ import annotations

VARIANTS = {
    "video": ("video.mp4", "video/mp4"),
    "thumbnail": ("thumbnail.webp", "image/webp"),
    "spritesheet": ("spritesheet.jpg", "image/jpeg"),
}


def video_prefix(video_id: str) -> str:
    return f"videos/{video_id}"


def variant_key(video_id: str, variant: str) -> str:
    return f"{video_prefix(video_id)}/{VARIANTS[variant][0]}"


def input_key(video_id: str) -> str:
    return f"{video_prefix(video_id)}/input.png"


def file_key(file_id: str) -> str:
    return f"files/{file_id}"
