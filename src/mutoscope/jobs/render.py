"""What both job kinds render with: `render()` (one generation into an MP4 with its previews), the engine's
step hooks mapping progress to the job's percent, source clips read back for extensions and edits, and the
`Job` a worker reads from its row. `generation.py` (a plain job) and `storyboard.py` (a storyboard's shots)
both build on this module and never on each other; `mutoscope generate` calls `render()` directly.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mutoscope.engine import EngineError, GenerationCancelled, GenerationOutput, GenerationSpec, VideoEngine
from mutoscope.jobs.context import JobContext
from mutoscope.jobs.progress import DenoiseClock
from mutoscope.media import (
    MediaError,
    concat,
    encode_mp4,
    probe,
    read_audio,
    read_frames,
    resample_audio,
    spritesheet_jpeg,
    thumbnail_webp,
)
from mutoscope.provenance import Stamp, generated_by, mark_frames, sign_video

DENOISE_SHARE, DECODE_END, ENCODE_END = 0.85, 0.90, 0.99


def parse_size(size: str) -> tuple[int, int]:
    w, h = size.lower().split("x")
    return int(w), int(h)


# report(percent, detail): the detail says the phase in words (jobs/progress.py); None keeps the last one.
Report = Callable[..., None]


class StepProgress:
    """StepHooks for the engine: map engine progress to the job's percent and phase; watch for cancellation."""

    def __init__(self, report: Report, cancelled: Callable[[], bool]):
        self._report, self._cancelled = report, cancelled
        self._clock = DenoiseClock()

    def on_progress(self, fraction: float, phase: str) -> None:
        if phase == "denoise":
            pct, detail = DENOISE_SHARE * fraction, self._clock.detail(fraction)
        else:
            pct, detail = DENOISE_SHARE + (DECODE_END - DENOISE_SHARE) * fraction, {"phase": "decoding"}
        self._report(int(pct * 100), detail)

    def should_cancel(self) -> bool:
        return self._cancelled()


def render(engine: VideoEngine, model: str, spec: GenerationSpec, out_dir: Path,
           report: Report, cancelled: Callable[[], bool], *,
           provenance: Stamp | None = None,
           visible_watermark: str | None = None,
           prefix: "SourceClip | Callable[[], SourceClip] | None" = None) -> tuple[GenerationOutput, dict[str, Path]]:
    """Generate and write the MP4, thumbnail and spritesheet into out_dir. Shared by jobs and `mutoscope generate`.

    `provenance` puts its video id in the frames as an invisible watermark and signs the MP4 with
    a C2PA manifest; `visible_watermark` draws that text (the creator's handle) on every frame.
    `prefix` (extensions): the source clip (or its loader, called once the engine is done); the output
    is it followed by the new frames.
    """
    report(0, {"phase": "loading model"})
    output = engine.generate(model, spec, StepProgress(report, cancelled))
    if cancelled():
        raise GenerationCancelled("cancelled")
    if prefix is not None:
        output = _stitch(prefix() if callable(prefix) else prefix, output)
    return output, write_outputs(output, out_dir, report, provenance=provenance, visible_watermark=visible_watermark)


def write_outputs(output: GenerationOutput, out_dir: Path, report: Report, *,
                  provenance: Stamp | None = None, visible_watermark: str | None = None) -> dict[str, Path]:
    """Mark, encode and sign the MP4 and make its thumbnail and spritesheet in out_dir (90-99 %)."""
    files = {"video": out_dir / "video.mp4", "thumbnail": out_dir / "thumbnail.webp",
             "spritesheet": out_dir / "spritesheet.jpg"}
    # Marks go into the frames before encoding, the signed manifest after.
    report(int(DECODE_END * 100), {"phase": "encoding"})
    output.frames = mark_frames(output.frames, provenance.video_id if provenance else None, visible_watermark)
    encode_mp4(files["video"], output.frames, output.fps, output.audio, output.sample_rate)
    if provenance is not None:
        report(int(DECODE_END * 100) + 5, {"phase": "signing"})
        # The manifest names the model and checkpoint that made the video, behind the name it was asked by.
        sign_video(files["video"], replace(provenance, generated_by=provenance.generated_by
                                           or generated_by(output.resolved)))
    report(int(DECODE_END * 100) + 6, {"phase": "previews"})
    files["thumbnail"].write_bytes(thumbnail_webp(output.frames))
    files["spritesheet"].write_bytes(spritesheet_jpeg(output.frames))
    report(int(ENCODE_END * 100), {"phase": "saving"})
    return files


# Source frames handed to the engine for an extension (it uses what its family can: 17 for LTX-2, 1 for Wan).
EXTEND_TAIL_FRAMES = 25


class SourceVideoError(EngineError):
    """The clip a job continues or edits is gone or cannot be decoded."""

    code = "invalid_source_video"


@dataclass
class SourceClip:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float
    audio: np.ndarray | None  # (channels, samples) float32
    sample_rate: int | None


def load_clip(ctx: JobContext, key: str, *, with_audio: bool = True, last_n: int | None = None,
              count: int | None = None, fps: float | None = None,
              cover: tuple[int, int] | None = None) -> SourceClip:
    """Decode a stored MP4 (a finished video or an uploaded edit input): every frame, its last `last_n`,
    or only `count` frames resampled to `fps` (decoding stops there), scaled down to what covers `cover`."""
    try:
        with ctx.storage.open(key) as f:
            data = f.read()
    except (FileNotFoundError, KeyError, OSError):
        raise SourceVideoError("The source video is no longer stored; it may have been deleted.") from None
    try:
        info = probe(io.BytesIO(data))
        max_pixels = None
        if cover is not None:  # the engine scales to cover and centre-crops: more pixels than that are waste
            scale = min(1.0, max(cover[0] / info.width, cover[1] / info.height))
            max_pixels = (math.ceil(info.width * scale) + 2) * (math.ceil(info.height * scale) + 2)
        frames = read_frames(io.BytesIO(data), last_n=last_n, count=count, fps=fps, max_pixels=max_pixels)
        sound = read_audio(io.BytesIO(data)) if with_audio else None
    except MediaError as e:
        raise SourceVideoError(f"The source video cannot be decoded: {e}") from None
    audio, rate = sound if sound is not None else (None, None)
    return SourceClip(frames=frames, fps=info.fps or 24.0, audio=audio, sample_rate=rate)


@dataclass
class Job:
    """What a job needs from its row, read once: a plain value, so nothing goes stale mid-render."""

    kind: str
    model: str
    spec: GenerationSpec
    params: dict
    input_key: str | None
    source_key: str | None  # the published MP4 of the video this one extends, edits or remixes


class InvalidJob(EngineError):
    code = "invalid_job"


def _stitch(prefix: SourceClip, output: GenerationOutput) -> GenerationOutput:
    rate = output.sample_rate or prefix.sample_rate
    audio_a = prefix.audio
    if audio_a is not None and rate and prefix.sample_rate != rate:
        audio_a = resample_audio(audio_a, prefix.sample_rate, rate)
    frames_a = prefix.frames
    if frames_a.shape[1:] != output.frames.shape[1:]:
        raise SourceVideoError(f"source size {frames_a.shape[2]}x{frames_a.shape[1]} differs from the extension's")
    try:
        lead = output.lead_audio
        if lead is not None and rate and output.sample_rate != rate:
            lead = None
        frames, audio = concat(frames_a, audio_a, output.frames, output.audio, fps=output.fps, sample_rate=rate,
                               lead_b=lead)
    except MediaError as e:
        raise SourceVideoError(f"cannot stitch the extension onto its source: {e}") from None
    resolved = {**output.resolved, "source_frames": len(frames_a), "stitched_frames": len(frames)}
    return GenerationOutput(frames=frames, fps=output.fps, audio=audio, sample_rate=rate if audio is not None else None,
                            resolved=resolved)

