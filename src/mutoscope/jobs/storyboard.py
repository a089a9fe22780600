"""Rendering a storyboard: its shots in order, inside one job, into one video with one soundtrack.

A cut starts a fresh generation from the shot's own seed (the storyboard's plus the shot's index) and its
first frame (an image it was given, or its character's frame); a continuous shot is conditioned on the
previous shot's last frames exactly as an extension is on its source's, and on the previous shot's sound,
which the engine carries over the overlap so the new sound continues it. Progress runs across the whole
storyboard, each shot's share its part of the seconds rendered; the engine's step callback checks for
cancellation after every denoising step of every shot, and the loop checks between shots. The sound is
joined on frame boundaries (media/stitch.py `join`): an equal-power crossfade at a cut; at a continuous
join the previous shot's end crossfades, over the overlap, into the sound the new shot made there, at the
previous shot's level (media/audio.py `overlap_join`); a few milliseconds' blend where a model gives no
overlap sound.

A remix of shot k (`from_shot`) decodes only shots 0..k-1 from the source's file, frames and sound, and
renders k onward; without its source file it renders every shot again from the stored settings.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from mutoscope.engine import EngineError, GenerationCancelled, GenerationOutput, GenerationSpec, VideoEngine
from mutoscope.jobs.render import (
    DECODE_END,
    EXTEND_TAIL_FRAMES,
    InvalidJob,
    Job,
    SourceClip,
    SourceVideoError,
    StepProgress,
    load_clip,
    write_outputs,
)
from mutoscope.jobs.progress import in_shot
from mutoscope.jobs.references import with_references
from mutoscope.media import MediaError, audio_samples_for, join, resample_audio
from mutoscope.provenance import Stamp
from mutoscope.storage import keys

if TYPE_CHECKING:
    from mutoscope.jobs.context import JobContext

logger = logging.getLogger(__name__)

# Long enough that no joint clicks, short enough that a cut stays a cut (20-50 ms is the usual range).
CUT_CROSSFADE_SECONDS = 0.03
# A continuous join keeps going: only enough to meet two waveforms without a step between them.
CONTINUOUS_BLEND_SECONDS = 0.005


@dataclass
class Shot:
    index: int
    spec: GenerationSpec
    transition: str | None  # None for the first shot, else "cut" or "continuous"


def shots_from(board: dict, base: GenerationSpec, images: dict[int, Image.Image]) -> list[Shot]:
    """The stored storyboard (videos/storyboard.py) as the shots to render, `base` giving the size and the
    shared settings (steps, guidance, negative prompt)."""
    try:
        return [Shot(index=i, transition=raw.get("transition") if i else None,
                     spec=replace(base, prompt=str(raw["prompt"]), seconds=float(raw["seconds"]),
                                  seed=int(raw["seed"]), image=images.get(i), camera=raw.get("camera")))
                for i, raw in enumerate(board["shots"])]
    except (KeyError, TypeError, ValueError):
        raise InvalidJob("The job's stored storyboard is invalid; it cannot run.") from None


def render_storyboard(engine: VideoEngine, model: str, shots: list[Shot], out_dir: Path,
                      report: Callable[[int], None], cancelled: Callable[[], bool], *,
                      prefix: SourceClip | None = None, provenance: Stamp | None = None,
                      visible_watermark: str | None = None,
                      on_shot: Callable[[int, int, Shot], None] | None = None
                      ) -> tuple[GenerationOutput, dict[str, Path]]:
    """Render `shots` in order and write one MP4 (and previews) of them into out_dir, like `render()`.

    `prefix`: the earlier shots, already made (a remix of a later shot); the first shot rendered follows it
    with its own transition. `on_shot(i, n, shot)` is told before the i-th of the n shots starts."""
    if not shots:
        raise EngineError("a storyboard needs at least one shot to render")
    total = sum(shot.spec.seconds for shot in shots)
    frames: list[np.ndarray] = [prefix.frames] if prefix is not None else []
    sounds: list[np.ndarray | None] = [prefix.audio] if prefix is not None else []
    joins: list[str | None] = []
    leads: list[tuple[np.ndarray, int] | None] = []
    outputs: list[GenerationOutput] = []
    previous = prefix.frames[-EXTEND_TAIL_FRAMES:] if prefix is not None else None
    previous_sound = (prefix.audio, prefix.sample_rate) if prefix is not None and prefix.audio is not None \
        and prefix.sample_rate else None
    done = 0.0
    for n, shot in enumerate(shots):
        if cancelled():
            raise GenerationCancelled(f"cancelled before shot {shot.index}")
        if on_shot is not None:
            on_shot(n, len(shots), shot)
        logger.info("storyboard shot %d of %d (index %d, %s, %g s)", n + 1, len(shots), shot.index,
                    shot.transition or "first", shot.spec.seconds)
        share = shot.spec.seconds / total
        hooks = StepProgress(lambda pct, detail=None, base=done, share=share, n=n:
                             report(int(base + share * pct), in_shot(detail, n + 1, len(shots))), cancelled)
        spec = shot.spec
        if shot.transition == "continuous":
            if previous is None:
                raise InvalidJob("The storyboard's first shot cannot continue anything.")
            sound, rate = previous_sound if previous_sound is not None else (None, None)
            spec = replace(spec, image=None, condition_frames=previous, condition_mode="extend",
                           condition_audio=sound, condition_audio_rate=rate)
        report(int(done), in_shot({"phase": "loading model"}, n + 1, len(shots)))
        out = engine.generate(model, spec, hooks)
        if cancelled():
            raise GenerationCancelled(f"cancelled after shot {shot.index}")
        outputs.append(out)
        if frames:
            joins.append(shot.transition or "cut")
            continuous = shot.transition == "continuous" and out.lead_audio is not None and out.sample_rate
            leads.append((out.lead_audio, out.sample_rate) if continuous else None)
        frames.append(out.frames)
        sounds.append(out.audio)
        previous = out.frames[-EXTEND_TAIL_FRAMES:]
        previous_sound = (out.audio, out.sample_rate) if out.audio is not None and out.sample_rate else None
        done += share * DECODE_END * 100
    fps = outputs[0].fps
    rate = next((o.sample_rate for o in outputs if o.audio is not None and o.sample_rate), None)
    if rate is None and prefix is not None and prefix.audio is not None:
        rate = prefix.sample_rate
    if prefix is not None and prefix.audio is not None and prefix.sample_rate and rate != prefix.sample_rate:
        sounds[0] = resample_audio(prefix.audio, prefix.sample_rate, rate)
    for i, out in enumerate(outputs, start=len(sounds) - len(outputs)):
        if out.audio is not None and out.sample_rate != rate:
            sounds[i] = resample_audio(out.audio, out.sample_rate, rate)
    blends = [round((CONTINUOUS_BLEND_SECONDS if t == "continuous" else CUT_CROSSFADE_SECONDS) * (rate or 0))
              for t in joins]
    overlaps = [None if lead is None else (lead[0] if lead[1] == rate else resample_audio(lead[0], lead[1], rate))
                for lead in leads]
    try:
        video, audio = join(frames, sounds, fps=fps, sample_rate=rate, blends=blends, leads=overlaps)
    except MediaError as e:
        raise SourceVideoError(f"cannot join the storyboard's shots: {e}") from None
    frames = sounds = previous = previous_sound = leads = overlaps = out = None  # the joined copy is all that is kept
    first = outputs[0].resolved
    # Per shot, not the video's: each shot has its own seed, task, camera move and LoRA adapters.
    resolved = {k: v for k, v in first.items() if k not in ("seed", "frames", "task", "generation_frames",
                                                            "condition_frames", "conditioning_pipeline",
                                                            "first_frame_pinned", "camera", "lora_active",
                                                            "references", "presentation", "audio_reference")}
    resolved["frames"] = len(video)
    resolved["storyboard"] = {
        "reused_frames": len(prefix.frames) if prefix is not None else 0,
        "shots": [{"index": shot.index, "seed": out.resolved.get("seed"), "task": out.resolved.get("task"),
                   "frames": out.resolved.get("frames"), "camera": out.resolved.get("camera"),
                   "lora_active": out.resolved.get("lora_active", []), "transition": shot.transition,
                   **({"audio_carried_seconds": out.resolved["audio_carried_seconds"]}
                      if "audio_carried_seconds" in out.resolved else {}),
                   **({"references": out.resolved["references"]} if "references" in out.resolved else {})}
                  for shot, out in zip(shots, outputs)],
    }
    output = GenerationOutput(frames=video, fps=fps, audio=audio, sample_rate=rate if audio is not None else None,
                              resolved=resolved)
    outputs = None
    return output, write_outputs(output, out_dir, report, provenance=provenance, visible_watermark=visible_watermark)


def run(ctx: "JobContext", video_id: str, job: Job, out_dir: Path, report: Callable[[int], None],
        cancelled: Callable[[], bool], **provenance) -> tuple[GenerationOutput, dict[str, Path]]:
    """A storyboard job: its first frames from storage, the reused earlier shots from its source's file."""
    board = job.params["storyboard"]
    own = keys.video_prefix(video_id) + "/"
    images: dict[int, Image.Image] = {}
    for i, raw in enumerate(board.get("shots") or []):
        key = raw.get("image_key") if isinstance(raw, dict) else None
        if not isinstance(key, str):
            continue
        if not key.startswith(own):  # a job reads only its own inputs, whatever wrote the row
            raise InvalidJob("The job's stored storyboard is invalid; it cannot run.")
        try:
            with ctx.storage.open(key) as f:
                images[i] = Image.open(io.BytesIO(f.read())).convert("RGB")
        except (FileNotFoundError, KeyError, OSError, ValueError):
            raise SourceVideoError(f"The stored first frame of shot {i} cannot be read.") from None
    shots = shots_from(board, job.spec, images)
    # A shot naming cameos gets their references (a model that takes them), as a create does.
    family = ctx.engine.resolve(job.model).family
    shots = [replace(shot, spec=with_references(ctx, video_id, family, shot.spec,
                                                {"conditioning": raw.get("conditioning")}))
             if isinstance(raw, dict) and raw.get("conditioning") else shot
             for shot, raw in zip(shots, board["shots"])]
    start = int(board.get("from_shot") or 0)
    prefix = None
    if 0 < start < len(shots) and job.source_key is not None:
        try:
            prefix = reused_shots(ctx, job.source_key, sum(int(raw["frames"]) for raw in board["shots"][:start]))
        except SourceVideoError:
            logger.warning("video %s: its source's file is gone; rendering every shot again", video_id)
    if prefix is None:
        start = 0
    return render_storyboard(ctx.engine, job.model, shots[start:], out_dir, report, cancelled, prefix=prefix,
                             **provenance)


def reused_shots(ctx: "JobContext", key: str, frame_count: int) -> SourceClip:
    """The first `frame_count` frames of a stored video and their sound: decoding stops there."""
    clip = load_clip(ctx, key, count=frame_count)
    if len(clip.frames) < frame_count:
        raise SourceVideoError(f"The source video has {len(clip.frames)} frames, {frame_count} were expected.")
    if clip.audio is not None and clip.sample_rate:
        clip.audio = clip.audio[:, :audio_samples_for(frame_count, clip.fps, clip.sample_rate)]
    return clip
