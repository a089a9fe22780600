"""Join two clips' arrays end to end (video extensions)."""

from __future__ import annotations

import numpy as np

from mutoscope.media.arrays import MediaError, audio_samples_for, check_audio, check_frames, fit_audio


def concat(
    frames_a: np.ndarray,
    audio_a: np.ndarray | None,
    frames_b: np.ndarray,
    audio_b: np.ndarray | None,
    *,
    fps: float,
    sample_rate: int | None = None,
    skip_b: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Clip A followed by clip B: ((T, H, W, 3) frames, (channels, samples) audio or None).

    `skip_b` drops B's first frames (and their audio) when B was generated
    starting from A's last frames and repeats them. Each clip's audio is
    first fitted to its own frame count so sound stays in sync across the
    seam; a clip without audio contributes silence when the other has some.
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
    audio = np.concatenate([part_a, part_b], axis=1)
    # Total length derived from the joined frame count, so rounding in the two
    # halves can never drift the result by a sample.
    return frames, fit_audio(audio, audio_samples_for(len(frames), fps, sample_rate))
