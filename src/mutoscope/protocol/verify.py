"""POST /v1/verify: what a file says about where it came from (Mutoscope extension)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class C2paResult(BaseModel):
    # trusted: signature and hashes check out and the signer chains to this server's anchors;
    # valid: they check out, signer unknown here; tampered: they don't; absent: no manifest.
    state: Literal["trusted", "valid", "tampered", "absent"]
    signer: str | None = None
    issuer: str | None = None
    generator: str | None = None
    digital_source_type: str | None = None
    created_at: str | None = None
    video_id: str | None = None
    model: str | None = None
    # The model and checkpoint that made it, behind `model` (the name it was asked by): name, weights, revision.
    generated_by: dict[str, str | None] | None = None
    source_video_id: str | None = None
    ingredients: list[str] = []
    failures: list[str] = []


class WatermarkResult(BaseModel):
    found: bool
    video_id: str | None = None
    frames_checked: int = 0
    agreement: float = 0.0  # share of frames that carry the id on their own
    margin: float = 0.0  # weakest bit over the average bit: near 1 clean, near 0 marginal


class VideoOrigin(BaseModel):
    # "this_server": the id is a video made here; "unknown": made elsewhere, or no id at all.
    origin: Literal["this_server", "unknown"]
    id: str | None = None
    status: str | None = None  # only for videos made here; prompts and owners are never shown
    deleted: bool = False
    taken_down: bool = False  # taken down by the owner of a cameo it shows


class VerifyResponse(BaseModel):
    object: Literal["verification"] = "verification"
    c2pa: C2paResult
    watermark: WatermarkResult
    video: VideoOrigin
