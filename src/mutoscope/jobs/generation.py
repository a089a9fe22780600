"""Running one claimed video job: `run_video_job` and what it needs (conditioning, provenance, leases).

It renders through `render.py`, which a storyboard's job shares: a storyboard is handed to `storyboard.py`,
which builds on `render.py` and never imports this module.

Status changes are not made here but through `videos/transitions.py`, each conditional on this worker's
lease. Progress is honest: denoising steps fill 0–85 %, VAE decode 85–90 %, encoding and previews
90–99 %, and 100 % only once the files are in storage; each report also says the phase in words
(`jobs/progress.py`). A rerun is safe: each attempt writes under its own
keys, and only the attempt that completes is published.
"""

from __future__ import annotations

import io
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from mutoscope.db.models import Video
from mutoscope.engine import EngineError, GenerationCancelled, GenerationSpec
from mutoscope.jobs.context import JobContext
from mutoscope.jobs.render import (
    EXTEND_TAIL_FRAMES,
    InvalidJob,
    Job,
    SourceClip,
    SourceVideoError,
    load_clip,
    parse_size,
    render,
)
from mutoscope.jobs.progress import Detail
from mutoscope.jobs.references import with_references
from mutoscope.likeness import consent as cameo_consent
from mutoscope.likeness import guard as likeness_guard
from mutoscope.likeness.measure import measure as measure_likeness
from mutoscope.media import audio_samples_for, fit_image
from mutoscope.provenance import Stamp
from mutoscope.storage import StorageUnavailable, keys
from mutoscope.videos import transitions
from mutoscope.videos.transitions import Claim

logger = logging.getLogger(__name__)

def spec_for(video: Video, image: Image.Image | None) -> GenerationSpec:
    w, h = parse_size(video.size)
    p = video.params or {}
    camera = p.get("camera")
    if camera is not None and not isinstance(camera, str):
        raise ValueError("camera must be a move name")
    strength = p.get("edit_strength")  # an edit's or remix's; the engine checks its range
    return GenerationSpec(prompt=video.prompt, width=w, height=h, seconds=float(video.seconds),
                          seed=int(p["seed"]), image=image, num_inference_steps=p.get("num_inference_steps"),
                          guidance_scale=p.get("guidance_scale"), negative_prompt=p.get("negative_prompt"),
                          camera=camera, edit_strength=float(strength) if strength is not None else None)


def conditioning_for(ctx: JobContext, video: Job, spec: GenerationSpec
                     ) -> tuple[GenerationSpec, Callable[[], SourceClip] | None]:
    """The spec conditioned on the job's source clip, and a loader of the clip to stitch in front (extensions)."""
    if video.kind == "extend" and video.source_key is None and video.input_key:
        # An uploaded clip: decoded once at the model's rate and fitted to the output size (scaled to cover,
        # centre-cropped), so its tail conditions the model and the whole clip joins the new part frame for frame.
        fps = ctx.engine.resolve(video.model).fps
        clip = load_clip(ctx, video.input_key, count=max(1, round(float(video.params["source_seconds"]) * fps)),
                         fps=fps, cover=(spec.width, spec.height))
        clip = replace(clip, frames=fit_frames(clip.frames, spec.width, spec.height), fps=fps)
        tail = clip.frames[-EXTEND_TAIL_FRAMES:]
        # Its sound over the tail goes too, so the engine carries it over the overlap as for a finished video.
        sound = clip.audio[:, -audio_samples_for(len(tail), fps, clip.sample_rate):] \
            if clip.audio is not None and clip.sample_rate else None
        spec = replace(spec, seconds=float(video.params["extend_seconds"]), condition_frames=tail,
                       condition_mode="extend", condition_audio=sound,
                       condition_audio_rate=clip.sample_rate if sound is not None else None)
        return spec, clip
    if video.kind == "extend" and video.source_key:
        key = video.source_key
        # The engine sees only the tail; the whole source is decoded after generation, for the stitch,
        # so it is not held in RAM while the model runs (the sound, a few MB, is read whole and cut to the tail).
        tail = load_clip(ctx, key, last_n=EXTEND_TAIL_FRAMES)
        seconds = float(video.params["extend_seconds"])
        # The source's sound up to its end goes too: the engine carries it over the overlap.
        sound = tail.audio[:, -audio_samples_for(len(tail.frames), tail.fps, tail.sample_rate):] \
            if tail.audio is not None and tail.sample_rate else None
        spec = replace(spec, seconds=seconds, condition_frames=tail.frames, condition_mode="extend",
                       condition_audio=sound, condition_audio_rate=tail.sample_rate if sound is not None else None)
        return spec, lambda: load_clip(ctx, key)
    if video.kind == "edit":
        # Only the frames of the edit's duration, at the model's rate: a long upload is never decoded whole.
        key = video.input_key or video.source_key
        if key is None:
            raise SourceVideoError("The source video does not exist.")
        fps = ctx.engine.resolve(video.model).fps
        src = load_clip(ctx, key, with_audio=False, count=round(spec.seconds * fps), fps=fps,
                        cover=(spec.width, spec.height))
        return replace(spec, image=None, condition_frames=src.frames, condition_mode="edit"), None
    if video.kind == "remix" and video.source_key:
        # A remix re-generates the completed source guided by the new prompt (the edit machinery);
        # if its file is gone it is generated afresh from the same settings, as before.
        fps = ctx.engine.resolve(video.model).fps
        try:
            src = load_clip(ctx, video.source_key, with_audio=False,
                            count=round(spec.seconds * fps), fps=fps, cover=(spec.width, spec.height))
        except SourceVideoError:
            return spec, None
        return replace(spec, image=None, condition_frames=src.frames, condition_mode="edit"), None
    return spec, None


def fit_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Every frame at exactly width x height, scaled to cover and centre-cropped as a first frame is."""
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(fit_image(Image.fromarray(f), width, height)) for f in frames])


def provenance_for(ctx: JobContext, video_id: str, scratch: Path) -> dict:
    """render()'s provenance arguments for a job: its id, model, the source of a remix/extension/edit
    (its MP4 becomes a C2PA ingredient), and the owner's handle when the operator turns the visible mark on."""
    from mutoscope import __version__
    from mutoscope.db.models import User

    with ctx.sessions() as s:
        v = s.query(Video).filter(Video.id == video_id).one()
        kind, source = next(((k, src) for k, src in (("remix", v.remixed_from_video_id),
                                                     ("extend", v.extended_from_video_id),
                                                     ("edit", v.edited_from_video_id)) if src), (None, None))
        owner = s.get(User, v.owner_id)
        src = s.query(Video).filter(Video.id == source, Video.owner_id == v.owner_id).one_or_none() \
            if source else None
        stamp = Stamp(data_dir=ctx.settings.data_dir, video_id=video_id, model=v.model,
                      generator_version=__version__, source_video_id=source, source_kind=kind,
                      # C2PA needs the source as a file: remote storage downloads it into the job's scratch
                      source_path=ctx.storage.local_copy(keys.published_key(src, "video"), scratch / "source.mp4")
                      if src else None)
        policy = (v.params or {}).get("policy") or {}
        marked = policy.get("visible_watermark", ctx.settings.visible_watermark_default)
        handle = f"@{owner.name}" if owner is not None and marked else None
    return {"provenance": stamp, "visible_watermark": handle}


class LeaseKeeper:
    """Renews a claimed job's lease from a background thread while the job runs — through denoising, decode and
    encode alike, which report progress unevenly — and notices when the lease is lost: taken back by
    another runner, or not renewable for a whole lease period (the database is away)."""

    def __init__(self, ctx: JobContext, claim: Claim):
        self.ctx, self.claim = ctx, claim
        self.lease = ctx.settings.lease_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._progress: int | None = None
        self._renewed = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"lease-{claim.video_id}", daemon=True)

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def progress(self, pct: int) -> None:
        self._progress = pct

    def renew_now(self) -> bool:
        try:
            with self.ctx.sessions() as s:
                held = transitions.renew(s, self.claim, self.lease, self._progress)
        except Exception:  # the database is away: keep trying until the lease would have run out
            logger.warning("video %s: could not renew its lease", self.claim.video_id, exc_info=True)
            held = time.monotonic() - self._renewed < self.lease
            if not held:
                self.lost.set()
            return held
        if held:
            self._renewed = time.monotonic()
        else:
            self.lost.set()
        return held

    def _run(self) -> None:
        interval = max(0.2, self.lease / 4)
        started = time.monotonic()
        while not self._stop.wait(interval) and not self.lost.is_set():
            if time.monotonic() - started > self.ctx.settings.max_job_seconds:
                logger.error("video %s: still running after max_job_seconds; giving up its lease",
                             self.claim.video_id)
                self.lost.set()
                break
            if not self.renew_now():
                logger.warning("video %s: lease lost; stopping without writing", self.claim.video_id)


class LeaseLost(Exception):
    """This worker no longer holds the job: another runner took it back."""


def run_video_job(ctx: JobContext, claim: Claim) -> None:
    """Run a job this worker claimed. Never raises: any failure of one job fails that job (refunded, with its
    event) and the worker goes on. A worker that lost its lease stops and writes nothing; a worker that is
    shutting down hands the job back to the queue."""
    video_id = claim.video_id
    attempt_prefix = keys.attempt_prefix(video_id, claim.attempt)
    scratch = ctx.storage.scratch_dir() / f"{video_id}-a{claim.attempt}"
    last: dict = {"pct": -1, "detail": None, "db_check": 0.0, "db_cancel": False}
    keeper = LeaseKeeper(ctx, claim)

    # Both run inside the engine's step callback. A database blip there must neither fail the job nor
    # escape: the lease keeper carries progress and decides, over a whole lease, whether the job is lost.
    def report(pct: int, detail: Detail | None = None) -> None:
        if pct > last["pct"] or (detail is not None and detail != last["detail"]):
            last["pct"] = pct = max(pct, last["pct"])
            last["detail"] = detail or last["detail"]
            keeper.progress(pct)
            try:
                with ctx.sessions() as s:
                    transitions.record_progress(s, claim, pct, last["detail"])
            except Exception:
                logger.warning("video %s: progress not recorded (database unavailable)", video_id)

    def cancelled() -> bool:
        if keeper.lost.is_set() or ctx.stopping.is_set() or ctx.is_cancelled(video_id):
            return True
        t = time.monotonic()
        if t - last["db_check"] > 0.5:  # other processes flag cancellation in the row
            last["db_check"] = t
            try:
                with ctx.sessions() as s:
                    row = s.query(Video.cancel_requested, Video.deleted_at).filter(Video.id == video_id).first()
                last["db_cancel"] = row is None or bool(row[0]) or row[1] is not None
            except Exception:
                pass  # keep the last answer; a lost database shows up as a lost lease
        return last["db_cancel"]

    def fail(code: str, message: str) -> None:
        try:
            with ctx.sessions() as s:
                transitions.fail(s, video_id, code, message, claim=claim)
        except Exception:  # the database is away: the lease runs out and any runner fails or re-runs it
            logger.exception("video %s: could not record its failure (%s)", video_id, code)

    def discard() -> None:
        """Remove this attempt's files; never let a cleanup error hide the outcome already recorded."""
        try:
            ctx.storage.delete_prefix(attempt_prefix)
        except Exception:
            logger.warning("video %s: could not remove attempt %d's files", video_id, claim.attempt, exc_info=True)

    try:
        with keeper:
            scratch.mkdir(parents=True, exist_ok=True)
            job = _load_job(ctx, video_id)
            if job is None:
                return
            if _consent_denial(ctx, video_id, "start", fail):
                return
            t0 = time.perf_counter()
            if isinstance(job.params.get("storyboard"), dict):
                from mutoscope.jobs import storyboard  # loaded only for a storyboard's job

                output, files = storyboard.run(ctx, video_id, job, scratch, report, cancelled,
                                               **provenance_for(ctx, video_id, scratch))
            else:
                spec, prefix = conditioning_for(ctx, job, job.spec)
                spec = with_references(ctx, video_id, ctx.engine.resolve(job.model).family, spec, job.params)
                output, files = render(ctx.engine, job.model, spec, scratch, report, cancelled,
                                       **provenance_for(ctx, video_id, scratch), prefix=prefix)
            t1 = time.perf_counter()
            if keeper.lost.is_set() or not keeper.renew_now():
                raise LeaseLost
            for variant, path in files.items():
                ctx.storage.put_file(keys.variant_key(video_id, variant, claim.attempt), path)
            if _consent_denial(ctx, video_id, "publish", fail, output.frames):
                discard()
                return
            if (job.params.get("conditioning") or {}).get("cameos"):
                with ctx.sessions() as s:
                    output.resolved["cameos"] = measure_likeness(s, job.params["conditioning"], output.frames,
                                                                 output.audio, output.sample_rate)
            retention = (job.params.get("policy") or {}).get("retention_days") or ctx.settings.retention_days
            with ctx.sessions() as s:
                published = transitions.complete(s, claim, resolved=output.resolved, retention_days=retention)
            if not published:  # deleted or cancelled while encoding, or the lease was taken back
                fail("cancelled", "The job was cancelled.")  # fenced: a no-op if the lease is gone
                discard()
                _drop_if_deleted(ctx, video_id)
                return
            logger.info("video %s: rendered in %.2f s, stored and published in %.2f s", video_id, t1 - t0,
                        time.perf_counter() - t1)
    except (GenerationCancelled, LeaseLost) as e:
        if keeper.lost.is_set() or isinstance(e, LeaseLost):
            logger.warning("video %s: stopped after losing its lease; another attempt owns it now", video_id)
        elif ctx.stopping.is_set() and not ctx.is_cancelled(video_id):
            try:
                with ctx.sessions() as s:
                    if transitions.release(s, claim):
                        logger.info("video %s: handed back to the queue (worker shutting down)", video_id)
            except Exception:  # its lease runs out and another runner takes it back
                logger.exception("video %s: could not hand it back", video_id)
        else:
            fail("cancelled", "The job was cancelled.")
        discard()
        _drop_if_deleted(ctx, video_id)
    except Exception as e:  # a job must never be left in_progress, nor take the worker down
        if isinstance(e, EngineError):
            logger.warning("video %s failed: %s", video_id, e)
            fail(e.code, str(e))
        elif isinstance(e, StorageUnavailable):
            logger.warning("video %s: storage unavailable: %s", video_id, e)
            fail("storage_unavailable", "The asset storage was unavailable; the job was not charged. Try again.")
        else:
            logger.exception("video %s crashed", video_id)
            fail("internal_error", "Generation failed because of an internal error; it was not charged.")
        discard()
    finally:
        ctx.forget(video_id)
        shutil.rmtree(scratch, ignore_errors=True)


def _drop_if_deleted(ctx: JobContext, video_id: str) -> None:
    try:
        with ctx.sessions() as s:
            deleted = s.query(Video.deleted_at).filter(Video.id == video_id).scalar() is not None
        if deleted:
            ctx.storage.delete_prefix(keys.video_prefix(video_id))
    except Exception:
        logger.warning("video %s: could not remove a deleted video's files", video_id, exc_info=True)


def _load_job(ctx: JobContext, video_id: str) -> Job | None:
    with ctx.sessions() as s:
        video = s.query(Video).filter(Video.id == video_id).one_or_none()
        if video is None or video.status != "in_progress":
            return None
        source_id = video.extended_from_video_id or video.edited_from_video_id or video.remixed_from_video_id
        source_key = None
        if source_id is not None:
            # Defence in depth: whatever wrote this row, a job only ever reads its own owner's videos.
            src = s.query(Video).filter(Video.id == source_id, Video.owner_id == video.owner_id).one_or_none()
            if src is None and video.kind != "remix":
                raise SourceVideoError("The source video does not exist.")
            source_key = keys.published_key(src, "video") if src is not None else None
        image = None
        if video.input_key and video.kind not in ("edit", "extend"):  # their input is a source MP4
            with ctx.storage.open(video.input_key) as f:
                try:
                    image = Image.open(io.BytesIO(f.read())).convert("RGB")
                except (OSError, ValueError):
                    raise SourceVideoError("The stored input image cannot be decoded.") from None
        try:
            spec = spec_for(video, image)
        except (KeyError, TypeError, ValueError):
            raise InvalidJob("The job's stored settings are invalid; it cannot run.") from None
        return Job(kind=video.kind, model=video.model, spec=spec, params=dict(video.params or {}),
                   input_key=video.input_key, source_key=source_key)


def _consent_denial(ctx: JobContext, video_id: str, at: str, fail: Callable[[str, str], None],
                    frames: np.ndarray | None = None) -> bool:
    """Re-check the consent of every cameo the video uses and, given the frames, the likeness guard on
    the output (no face of a cameo the owner may not use); on a denial fail the job (refunded)."""
    with ctx.sessions() as s:
        denial = cameo_consent.recheck_video(s, video_id, at)
        if denial is None and frames is not None:
            owner_id = s.query(Video.owner_id).filter(Video.id == video_id).scalar()
            denial = likeness_guard.check_frames(s, owner_id, video_id, frames)
    if denial is None:
        return False
    logger.info("video %s: %s (%s)", video_id, denial.code, at)
    fail(denial.code, denial.message)
    return True
