"""Storage keys: the one place they are built, from server ids only (never from client input).

A video's files live under `videos/<id>/`. Each attempt at rendering a video writes under its own
`videos/<id>/a<attempt>/`, and the row's `assets_attempt` says which attempt's files are published, so a
worker that lost its lease can never overwrite the files another attempt published.
"""

from __future__ import annotations

from typing import Protocol

VARIANTS = {
    "video": ("video.mp4", "video/mp4"),
    "thumbnail": ("thumbnail.webp", "image/webp"),
    "spritesheet": ("spritesheet.jpg", "image/jpeg"),
}


class HasAssets(Protocol):
    id: str
    assets_attempt: int | None


def video_prefix(video_id: str) -> str:
    return f"videos/{video_id}"


def attempt_prefix(video_id: str, attempt: int) -> str:
    return f"{video_prefix(video_id)}/a{attempt}"


def variant_key(video_id: str, variant: str, attempt: int | None = None) -> str:
    """Files written before attempts had their own folders (and imported ones) sit directly under the id."""
    folder = video_prefix(video_id) if attempt is None else attempt_prefix(video_id, attempt)
    return f"{folder}/{VARIANTS[variant][0]}"


def published_key(video: HasAssets, variant: str) -> str:
    return variant_key(video.id, variant, video.assets_attempt)


def input_key(video_id: str, attempt: int | None = None) -> str:
    folder = video_prefix(video_id) if attempt is None else attempt_prefix(video_id, attempt)
    return f"{folder}/input.png"


def shot_input_key(video_id: str, index: int, attempt: int | None = None) -> str:
    """A storyboard shot's first-frame image (an imported one sits in its import's attempt folder)."""
    folder = video_prefix(video_id) if attempt is None else attempt_prefix(video_id, attempt)
    return f"{folder}/shot-{int(index)}.png"


def input_video_key(video_id: str) -> str:
    return f"{video_prefix(video_id)}/input.mp4"


def input_audio_key(video_id: str) -> str:
    """A create's `audio_reference`, decoded and stored as float WAV (the job's whole input)."""
    return f"{video_prefix(video_id)}/audio_reference.wav"


def file_key(file_id: str) -> str:
    return f"files/{file_id}"


def batch_file_key(batch_id: str, kind: str) -> str:
    """A batch's output or error file ("output", "errors"): one key per batch, so finishing it twice writes the
    same object."""
    return f"batches/{batch_id}/{kind}.jsonl"


def archive_key(export_id: str) -> str:
    return f"exports/{export_id}.zip"


def cameo_prefix(cameo_id: str) -> str:
    return f"cameos/{cameo_id}"


def upload_key(cameo_id: str) -> str:
    return f"{cameo_prefix(cameo_id)}/upload.mp4"


def cameo_frame_key(cameo_id: str, i: int) -> str:
    """A verified cameo's i-th reference frame (a face crop, JPEG)."""
    return f"{cameo_prefix(cameo_id)}/reference-{i}.jpg"


def voice_sample_key(cameo_id: str) -> str:
    """A cameo's voice sample (kept only with its owner's voice consent; under the cameo's prefix, so a purge
    erases it with the other biometrics)."""
    return f"{cameo_prefix(cameo_id)}/voice.wav"


def reference_key(character_id: str, cameo_id: str | None) -> str:
    # Under the cameo's prefix when bound: purging a cameo deletes cameos/<id>/ wholesale, its characters too.
    return f"{cameo_prefix(cameo_id)}/characters/{character_id}.png" if cameo_id \
        else f"characters/{character_id}/reference.png"
