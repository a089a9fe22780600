"""Join clips end to end: an extension onto its source, a storyboard's shots into one video."""

from __future__ import annotations

import numpy as np

from mutoscope.media.arrays import MediaError, audio_samples_for, check_audio, check_frames, fit_audio
from mutoscope.media.audio import overlap_join


def concat(
    frames_a: np.ndarray,
    audio_a: np.ndarray | None,
    frames_b: np.ndarray,
    audio_b: np.ndarray | None,
    *,
    fps: float,
    sample_rate: int | None = None,
    skip_b: int = 0,
    lead_b: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Clip A followed by clip B: ((T, H, W, 3) frames, (channels, samples) audio or None).

    `skip_b` drops B's first frames (and their audio) when B was generated
    starting from A's last frames and repeats them. Each clip's audio is
    first fitted to its own frame count so sound stays in sync across the
    seam; a clip without audio contributes silence when the other has some.
    `lead_b`: the sound B made over A's last frames (an extension's overlap, cut from B): A's end
    crossfades into it and B's level is matched to A's (audio.py `overlap_join`).
    """
    frames_a, frames_b = check_frames(frames_a), check_frames(frames_b)
    if frames_a.shape[1:] != frames_b.shape[1:]:
        raise MediaError(f"clip sizes differ: {frames_a.shape[1:3]} vs {frames_b.shape[1:3]}")
    if not 0 <= skip_b < len(frames_b):
        raise MediaError(f"skip_b must be in [0, {len(frames_b)}), got {skip_b}")
    frames = np.concatenate([frames_a, frames_b[skip_b:]])
    if audio_a is None and audio_b is None:
        return frames, None
    if not sample_rate:
        raise MediaError("sample_rate is required to stitch audio")

    def fitted(audio: np.ndarray | None, n_frames: int, channels: int) -> np.ndarray:
        n = audio_samples_for(n_frames, fps, sample_rate)
        if audio is None:
            return np.zeros((channels, n), np.float32)
        return fit_audio(check_audio(audio), n)

    channels = max(np.atleast_2d(a).shape[0] for a in (audio_a, audio_b) if a is not None)
    part_a = fitted(audio_a, len(frames_a), channels)
    part_b = fitted(audio_b, len(frames_b), channels)
    part_b = part_b[:, audio_samples_for(skip_b, fps, sample_rate) :]
    # Mono next to stereo: duplicate the mono channel rather than fail.
    part_a, part_b = (np.broadcast_to(p, (channels, p.shape[1])) for p in (part_a, part_b))
    if lead_b is not None and audio_a is not None and audio_b is not None:
        audio = overlap_join(part_a, check_audio(lead_b), part_b)
    else:
        audio = np.concatenate([part_a, part_b], axis=1)
    # Total length derived from the joined frame count, so rounding in the two
    # halves can never drift the result by a sample.
    return frames, fit_audio(audio, audio_samples_for(len(frames), fps, sample_rate))


def blend_join(a: np.ndarray, b: np.ndarray, samples: int) -> np.ndarray:
    """(channels, n) sound `a` followed by `b`, the first `samples` of `b` an equal-power crossfade from `a`.

    `a` is carried past its end by mirroring its last samples (so the wave stays continuous at the joint:
    no click) and fades out with cos while `b` fades in with sin; the powers sum to one, so uncorrelated
    sounds keep their loudness through the fade and nothing dips towards silence. `a` itself is left
    untouched, which is what lets a clip's earlier part be reused sample for sample, and the result is
    exactly len(a) + len(b) long, so sound stays in step with the frames.
    """
    n = min(samples, a.shape[1], b.shape[1])
    if n <= 0:
        return np.concatenate([a, b], axis=1)
    theta = (np.arange(n, dtype=np.float64) + 1) / (n + 1) * (np.pi / 2)
    carried = a[:, -n:][:, ::-1]
    head = carried * np.cos(theta) + b[:, :n] * np.sin(theta)
    return np.concatenate([a, head.astype(np.float32), b[:, n:]], axis=1)


def join(
    frames: list[np.ndarray],
    audio: list[np.ndarray | None],
    *,
    fps: float,
    sample_rate: int | None,
    blends: list[int],
    leads: list[np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Clips end to end (storyboard shots): ((T, H, W, 3) frames, (channels, samples) audio or None).

    `blends[i]` is the crossfade, in samples, at the joint before clip i+1 (`blend_join`). `leads[i]`, when
    given, is the sound clip i+1 made over the end of clip i (a continuous shot's overlap): that joint is an
    `overlap_join` instead, the crossfade running over the overlap and the new clip's level matched. Each
    clip's sound is first fitted to its own frame count, so every joint sits on a frame boundary; a silent
    clip contributes silence when another has sound.
    """
    leads = list(leads) if leads is not None else [None] * (len(frames) - 1)
    if not frames or len(audio) != len(frames) or len(blends) != len(frames) - 1 or len(leads) != len(blends):
        raise MediaError("join needs one sound (or None) per clip and one blend per joint")
    frames = [check_frames(f) for f in frames]
    if any(f.shape[1:] != frames[0].shape[1:] for f in frames):
        raise MediaError("clip sizes differ")
    out = np.concatenate(frames) if len(frames) > 1 else frames[0]
    if all(a is None for a in audio):
        return out, None
    if not sample_rate:
        raise MediaError("sample_rate is required to join audio")
    channels = max(np.atleast_2d(a).shape[0] for a in audio if a is not None)
    parts = []
    for f, a in zip(frames, audio):
        n = audio_samples_for(len(f), fps, sample_rate)
        part = np.zeros((channels, n), np.float32) if a is None else fit_audio(check_audio(a), n)
        parts.append(np.ascontiguousarray(np.broadcast_to(part, (channels, part.shape[1]))))
    sound = parts[0]
    for part, blend, lead, before, after in zip(parts[1:], blends, leads, audio, audio[1:]):
        if lead is not None and before is not None and after is not None:
            sound = overlap_join(sound, check_audio(lead), part)
        else:
            sound = blend_join(sound, part, blend)
    return out, fit_audio(sound, audio_samples_for(len(out), fps, sample_rate))
