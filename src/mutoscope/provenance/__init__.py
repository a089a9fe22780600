"""provenance/: every video says where it came from.

PUT HERE:
- C2PA: the manifest we sign (trainedAlgorithmicMedia, generator, model, time,
  our `org.mutoscope.video` assertion, source videos as ingredients), signing
  and reading (`manifest.py`); the local CA and signing certificate kept in
  the data folder (`keys.py`).
- The invisible watermark carrying the video id (`watermark.py`) and the
  visible creator-handle mark (`visible.py`), both on (T, H, W, 3) uint8 frames.
- `verify(path)`: C2PA state and watermark payload of any file (`verify.py`).
- `Stamp`, `mark_frames`, `sign_video`: the two calls the job makes.
- `VerifyService` (`service.py`): what `/v1/verify` and `mutoscope verify` answer, including
  whether the video a mark points to was made here.

DO NOT PUT HERE:
- HTTP (api/routes/verify.py), wire type definitions (protocol/verify.py), job state.
- MP4 encoding or decoding beyond sampling frames to read a mark (media/).
- Plan rules deciding *whether* to stamp a visible mark: callers pass the handle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mutoscope.provenance import keys, visible, watermark
from mutoscope.provenance.manifest import C2paReport, ManifestInfo, sign_mp4
from mutoscope.provenance.verify import Verification, verify

logger = logging.getLogger(__name__)

__all__ = ["C2paReport", "ManifestInfo", "Stamp", "Verification", "generated_by", "mark_frames", "sign_video",
           "verify"]


@dataclass
class Stamp:
    """What a job knows about the video it is making, for its marks and its manifest.

    Args:
        data_dir: where the signing keys live (created on first use).
        video_id: carried by the invisible watermark and the manifest.
        model: the model that made it (the manifest's `c2pa.created` parameters), as it was asked for.
        generated_by: the model behind that name that really made it: {"name", "weights", "revision"}
            (a job fills it from the engine's `resolved` before signing).
        source_*: the video a remix/extension/edit started from; `source_path`, its MP4, becomes an ingredient.
        cameo_ids, grant_ids: likeness consents used; the manifest carries only their hashes.
    """

    data_dir: Path
    video_id: str | None
    model: str = ""
    generator_version: str = ""
    source_video_id: str | None = None
    source_kind: str | None = None
    source_path: Path | None = None
    cameo_ids: list[str] = field(default_factory=list)
    grant_ids: list[str] = field(default_factory=list)
    generated_by: dict | None = None


def generated_by(resolved: dict | None) -> dict | None:
    """The model that made a video, from the engine's `resolved`: its registry name, weights and checkpoint
    revision (None where the engine did not say). The public alias it was asked by stays the video's `model`."""
    if not isinstance(resolved, dict) or not isinstance(resolved.get("model"), str):
        return None
    return {"name": resolved["model"],
            **{k: resolved[k] if isinstance(resolved.get(k), str) else None for k in ("weights", "revision")}}


def mark_frames(frames: np.ndarray, video_id: str | None, visible_watermark: str | None = None, *,
                every: int = 1) -> np.ndarray:
    """The visible handle (if any), then the invisible id on every `every`-th frame.

    Works in place when `frames` is writeable, else on a copy; use the returned array.
    """
    if not video_id and not visible_watermark:
        return frames
    if not frames.flags.writeable:
        frames = frames.copy()
    if visible_watermark:
        visible.stamp(frames, visible_watermark)
    if video_id:
        try:
            watermark.embed(frames, video_id, every=every)
        except watermark.WatermarkError as e:  # tiny frames or a foreign id: the manifest still says it
            logger.warning("no invisible watermark on %s: %s", video_id, e)
    return frames


def sign_video(path: Path, stamp: Stamp) -> None:
    """Embed a signed C2PA manifest in the MP4 at `path`."""
    identity = keys.load_or_create(stamp.data_dir)
    sign_mp4(path, identity, ManifestInfo(
        video_id=stamp.video_id, model=stamp.model, generator_version=stamp.generator_version,
        source_video_id=stamp.source_video_id, source_kind=stamp.source_kind, source_path=stamp.source_path,
        cameo_ids=stamp.cameo_ids, grant_ids=stamp.grant_ids, generated_by=stamp.generated_by))
