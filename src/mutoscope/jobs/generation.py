"""The video job: one function owns the state machine queued → in_progress → completed | failed.

Progress is honest: denoising steps fill 0–85 %, VAE decode 85–90 %, encoding
and previews 90–99 %, and 100 % only once the files are in storage.
The function is safe to run twice (assets are keyed by the video id).
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from mutoscope.accounts import quota
from mutoscope.webhooks import service as webhooks
from mutoscope.db.models import Video, now
from mutoscope.engine import EngineError, GenerationCancelled, GenerationOutput, GenerationSpec, VideoEngine
from mutoscope.jobs.assets import input_key, variant_key, video_prefix
from mutoscope.jobs.context import JobContext
from mutoscope.likeness import consent as cameo_consent  # --- cameos (issue 4) ---
from mutoscope.likeness import guard as likeness_guard  # --- cameos (issue 4) ---
from mutoscope.media import (
    MediaError,
    concat,
    encode_mp4,
    probe,
    read_audio,
    read_frames,
    spritesheet_jpeg,
    thumbnail_webp,
)
from mutoscope.provenance import Stamp, mark_frames, sign_video

logger = logging.getLogger(__name__)

DENOISE_SHARE, DECODE_END, ENCODE_END = 0.85, 0.90, 0.99


def parse_size(size: str) -> tuple[int, int]:
    w, h = size.lower().split("x")
    return int(w), int(h)


class _Hooks:
    """StepHooks for the engine: map engine progress to the job's percent; watch for cancellation."""

    def __init__(self, report: Callable[[int], None], cancelled: Callable[[], bool]):
        self._report, self._cancelled = report, cancelled

    def on_progress(self, fraction: float, phase: str) -> None:
        if phase == "denoise":
            pct = DENOISE_SHARE * fraction
        else:
            pct = DENOISE_SHARE + (DECODE_END - DENOISE_SHARE) * fraction
        self._report(int(pct * 100))

    def should_cancel(self) -> bool:
        return self._cancelled()


def render(engine: VideoEngine, model: str, spec: GenerationSpec, out_dir: Path,
           report: Callable[[int], None], cancelled: Callable[[], bool], *,
           provenance: Stamp | None = None,
           visible_watermark: str | None = None,
           prefix: "SourceClip | Callable[[], SourceClip] | None" = None) -> tuple[GenerationOutput, dict[str, Path]]:
    """Generate and write the MP4, thumbnail and spritesheet into out_dir. Shared by jobs and `mutoscope generate`.

    `provenance` (issue 7) puts its video id in the frames as an invisible watermark and signs the MP4 with
    a C2PA manifest; `visible_watermark` draws that text (the creator's handle) on every frame.
    `prefix` (extensions, issue 3): the source clip (or its loader, called once the engine is done); the output
    is it followed by the new frames.
    """
    output = engine.generate(model, spec, _Hooks(report, cancelled))
    if cancelled():
        raise GenerationCancelled("cancelled")
    if prefix is not None:
        output = _stitch(prefix() if callable(prefix) else prefix, output)
    files = {"video": out_dir / "video.mp4", "thumbnail": out_dir / "thumbnail.webp",
             "spritesheet": out_dir / "spritesheet.jpg"}
    # --- provenance (issue 7): marks go into the frames before encoding, the signed manifest after ---
    output.frames = mark_frames(output.frames, provenance.video_id if provenance else None, visible_watermark)
    encode_mp4(files["video"], output.frames, output.fps, output.audio, output.sample_rate)
    if provenance is not None:
        sign_video(files["video"], provenance)
    # --- end provenance ---
    report(int(DECODE_END * 100) + 6)
    files["thumbnail"].write_bytes(thumbnail_webp(output.frames))
    files["spritesheet"].write_bytes(spritesheet_jpeg(output.frames))
    report(int(ENCODE_END * 100))
    return output, files


def spec_for(video: Video, image: Image.Image | None) -> GenerationSpec:
    w, h = parse_size(video.size)
    p = video.params or {}
    return GenerationSpec(prompt=video.prompt, width=w, height=h, seconds=float(video.seconds),
                          seed=int(p["seed"]), image=image, num_inference_steps=p.get("num_inference_steps"),
                          guidance_scale=p.get("guidance_scale"), negative_prompt=p.get("negative_prompt"))


# --- extensions, edits and remixes (issue 3): the source clip a job is conditioned on ---

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


def conditioning_for(ctx: JobContext, video: Video, spec: GenerationSpec
                     ) -> tuple[GenerationSpec, Callable[[], SourceClip] | None]:
    """The spec conditioned on the job's source clip, and a loader of the clip to stitch in front (extensions)."""
    if video.kind == "extend" and video.extended_from_video_id:
        key = variant_key(video.extended_from_video_id, "video")
        # The engine sees only the tail; the whole source is decoded after generation, for the stitch,
        # so it is not held in RAM while the model runs.
        tail = load_clip(ctx, key, with_audio=False, last_n=EXTEND_TAIL_FRAMES)
        seconds = float((video.params or {})["extend_seconds"])
        spec = replace(spec, seconds=seconds, condition_frames=tail.frames, condition_mode="extend")
        return spec, lambda: load_clip(ctx, key)
    if video.kind == "edit":
        # Only the frames of the edit's duration, at the model's rate: a long upload is never decoded whole.
        key = video.input_key or variant_key(video.edited_from_video_id, "video")
        fps = ctx.engine.resolve(video.model).fps
        src = load_clip(ctx, key, with_audio=False, count=round(spec.seconds * fps), fps=fps,
                        cover=(spec.width, spec.height))
        return replace(spec, image=None, condition_frames=src.frames, condition_mode="edit"), None
    if video.kind == "remix" and video.remixed_from_video_id:
        # A remix re-generates the completed source guided by the new prompt (the edit machinery);
        # if its file is gone it is generated afresh from the same settings, as before.
        fps = ctx.engine.resolve(video.model).fps
        try:
            src = load_clip(ctx, variant_key(video.remixed_from_video_id, "video"), with_audio=False,
                            count=round(spec.seconds * fps), fps=fps, cover=(spec.width, spec.height))
        except SourceVideoError:
            return spec, None
        return replace(spec, image=None, condition_frames=src.frames, condition_mode="edit"), None
    return spec, None


def _stitch(prefix: SourceClip, output: GenerationOutput) -> GenerationOutput:
    rate = output.sample_rate or prefix.sample_rate
    audio_a = prefix.audio
    if audio_a is not None and rate and prefix.sample_rate != rate:
        audio_a = _resample(audio_a, prefix.sample_rate, rate)
    frames_a = prefix.frames
    if frames_a.shape[1:] != output.frames.shape[1:]:
        raise SourceVideoError(f"source size {frames_a.shape[2]}x{frames_a.shape[1]} differs from the extension's")
    try:
        frames, audio = concat(frames_a, audio_a, output.frames, output.audio, fps=output.fps, sample_rate=rate)
    except MediaError as e:
        raise SourceVideoError(f"cannot stitch the extension onto its source: {e}") from None
    resolved = {**output.resolved, "source_frames": len(frames_a), "stitched_frames": len(frames)}
    return GenerationOutput(frames=frames, fps=output.fps, audio=audio, sample_rate=rate if audio is not None else None,
                            resolved=resolved)


def _resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    n = round(audio.shape[1] * rate_out / rate_in)
    x = np.linspace(0, audio.shape[1] - 1, n)
    return np.stack([np.interp(x, np.arange(audio.shape[1]), ch) for ch in audio]).astype(np.float32)

# --- end extensions, edits and remixes ---


def provenance_for(ctx: JobContext, video_id: str) -> dict:
    """render()'s provenance arguments for a job (issue 7): its id, model, the source of a remix/extension/edit
    (its MP4 becomes a C2PA ingredient), and the owner's handle when the operator turns the visible mark on."""
    from mutoscope import __version__
    from mutoscope.db.models import User

    with ctx.sessions() as s:
        v = s.query(Video).filter(Video.id == video_id).one()
        kind, source = next(((k, src) for k, src in (("remix", v.remixed_from_video_id),
                                                     ("extend", v.extended_from_video_id),
                                                     ("edit", v.edited_from_video_id)) if src), (None, None))
        owner = s.get(User, v.owner_id)
        stamp = Stamp(data_dir=ctx.settings.data_dir, video_id=video_id, model=v.model,
                      generator_version=__version__, source_video_id=source, source_kind=kind,
                      source_path=ctx.storage.local_path(variant_key(source, "video")) if source else None)
        policy = (v.params or {}).get("policy") or {}
        marked = policy.get("visible_watermark", ctx.settings.visible_watermark_default)
        handle = f"@{owner.name}" if owner is not None and marked else None
    return {"provenance": stamp, "visible_watermark": handle}


def run_video_job(ctx: JobContext, video_id: str) -> None:
    """Run a video that is already claimed (status in_progress). Never raises."""
    with ctx.sessions() as s:
        video = s.query(Video).filter(Video.id == video_id).one_or_none()
        if video is None or video.status != "in_progress":
            return
        image = None
        if video.input_key and video.kind != "edit":  # an edit's input is its source MP4 (issue 3)
            with ctx.storage.open(video.input_key) as f:
                image = Image.open(io.BytesIO(f.read())).convert("RGB")
        spec = spec_for(video, image)
        model = video.model
        job = {"kind": video.kind, "extended_from_video_id": video.extended_from_video_id,
               "edited_from_video_id": video.edited_from_video_id, "remixed_from_video_id": video.remixed_from_video_id,
               "input_key": video.input_key, "params": dict(video.params or {}), "model": video.model}

    last = {"pct": -1, "db_check": 0.0, "db_cancel": False}

    def report(pct: int) -> None:
        if pct <= last["pct"]:
            return
        last["pct"] = pct
        with ctx.sessions() as s:
            s.query(Video).filter(Video.id == video_id, Video.status == "in_progress").update({"progress": pct})
            s.commit()

    def cancelled() -> bool:
        if ctx.is_cancelled(video_id):
            return True
        t = time.monotonic()
        if t - last["db_check"] > 0.5:  # other processes flag cancellation in the row
            last["db_check"] = t
            with ctx.sessions() as s:
                row = s.query(Video.cancel_requested, Video.deleted_at).filter(Video.id == video_id).first()
                last["db_cancel"] = row is None or bool(row[0]) or row[1] is not None
        return last["db_cancel"]

    scratch = ctx.storage.scratch_dir() / video_id
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        # --- cameos (issue 4): consent again as the job starts; a withdrawn one fails it, refunded ---
        if _consent_denied(ctx, video_id, "start"):
            return
        # --- end cameos ---
        spec, prefix = conditioning_for(ctx, SimpleNamespace(**job), spec)
        t0 = time.perf_counter()
        output, files = render(ctx.engine, model, spec, scratch, report, cancelled,
                               **provenance_for(ctx, video_id), prefix=prefix)
        t1 = time.perf_counter()
        for variant, path in files.items():
            ctx.storage.put_file(variant_key(video_id, variant), path)
        _finish(ctx, video_id, output)
        logger.info("video %s: rendered in %.2f s, stored and published in %.2f s", video_id, t1 - t0,
                    time.perf_counter() - t1)
    except GenerationCancelled:
        _fail(ctx, video_id, "cancelled", "The job was cancelled.")
    except EngineError as e:
        logger.warning("video %s failed: %s", video_id, e)
        _fail(ctx, video_id, e.code, str(e))
    except Exception:  # a job must never be left in_progress
        logger.exception("video %s crashed", video_id)
        _fail(ctx, video_id, "internal_error", "Generation failed because of an internal error; it was not charged.")
    finally:
        ctx.forget(video_id)
        for p in scratch.glob("*"):
            p.unlink(missing_ok=True)
        scratch.rmdir()


# --- cameos (issue 4) ---
def _consent_denied(ctx: JobContext, video_id: str, at: str, frames: np.ndarray | None = None) -> bool:
    """Re-check the consent of every cameo the video uses and, given the frames, the likeness guard on
    the output (no face of a cameo the owner may not use); on a denial fail it (refunded by _fail)."""
    with ctx.sessions() as s:
        denial = cameo_consent.recheck_video(s, video_id, at)
        if denial is None and frames is not None:
            owner_id = s.query(Video.owner_id).filter(Video.id == video_id).scalar()
            denial = likeness_guard.check_frames(s, owner_id, video_id, frames)
    if denial is None:
        return False
    logger.info("video %s: %s (%s)", video_id, denial.code, at)
    _fail(ctx, video_id, denial.code, denial.message)
    return True
# --- end cameos ---


def _finish(ctx: JobContext, video_id: str, output: GenerationOutput) -> None:
    if _consent_denied(ctx, video_id, "publish", output.frames):  # --- cameos (issue 4): before publishing ---
        return
    with ctx.sessions() as s:
        video = s.query(Video).filter(Video.id == video_id).one()
        if video.deleted_at is not None:  # deleted while we were encoding: leave nothing behind
            ctx.storage.delete_prefix(video_prefix(video_id))
            video.status, video.error_code = "failed", "cancelled"
            s.commit()
            quota.settle(s, video_id, charged=False)
            return
        video.status, video.progress = "completed", 100
        video.completed_at = now()
        video.resolved = output.resolved
        retention = ((video.params or {}).get("policy") or {}).get("retention_days") or ctx.settings.retention_days
        if retention:  # assets never expire unless the operator (or the plan) sets a retention
            video.expires_at = video.completed_at + int(retention * 86400)
        s.commit()
        quota.settle(s, video_id, charged=True)
        webhooks.emit(s, video.owner_id, "video.completed", {"id": video_id})


def _fail(ctx: JobContext, video_id: str, code: str, message: str) -> None:
    with ctx.sessions() as s:
        video = s.query(Video).filter(Video.id == video_id).one()
        video.status, video.error_code, video.error_message = "failed", code, message
        video.completed_at = now()
        s.commit()
        deleted = video.deleted_at is not None
        quota.settle(s, video_id, charged=False)  # failures and cancellations are never charged
        if not deleted:  # a video its owner deleted is nobody's news
            webhooks.emit(s, video.owner_id, "video.failed", {"id": video_id})
    # Never leave half-written assets: a failed video has no content.
    for variant in ("video", "thumbnail", "spritesheet"):
        ctx.storage.delete_prefix(variant_key(video_id, variant))
    if deleted:
        ctx.storage.delete_prefix(video_prefix(video_id))


def keep_input(ctx: JobContext, video_id: str, png: bytes) -> str:
    key = input_key(video_id)
    ctx.storage.put_bytes(key, png)
    return key

