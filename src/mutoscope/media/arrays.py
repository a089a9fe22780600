"""Shape checks and small array helpers shared by encode, previews and stitch."""

from __future__ import annotations

import numpy as np


class MediaError(ValueError):
    """Media we cannot use (bad shape, undecodable bytes, ...).

    A ValueError so callers can map it to a 400 without importing this room;
    the message is written for the client, never includes file paths.
    """


def check_frames(frames: np.ndarray, *, even: bool = False) -> np.ndarray:
    """Return `frames` as a C-contiguous (T, H, W, 3) uint8 array or raise MediaError."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise MediaError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise MediaError(f"frames must be uint8, got {frames.dtype}")
    t, h, w, _ = frames.shape
    if t == 0 or h == 0 or w == 0:
        raise MediaError(f"frames must not be empty, got {frames.shape}")
    # yuv420p stores chroma at half resolution; odd sizes would need padding or
    # cropping, and silently changing the caller's size is worse than refusing.
    if even and (h % 2 or w % 2):
        raise MediaError(f"frame size must be even for H.264 yuv420p, got {w}x{h}")
    return np.ascontiguousarray(frames)


def check_audio(audio: np.ndarray) -> np.ndarray:
    """Return `audio` as (channels, samples) float32, or raise MediaError.

    A 1-D array is taken as mono.
    """
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise MediaError(f"audio must have shape (channels, samples) with 1 or 2 channels, got {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise MediaError(f"audio must be float in [-1, 1], got {audio.dtype}")
    # Clip rather than reject: diffusion vocoders overshoot slightly, and AAC
    # would otherwise wrap or distort loudly.
    return np.clip(np.nan_to_num(audio.astype(np.float32, copy=False)), -1.0, 1.0)


def audio_samples_for(frame_count: int, fps: float, sample_rate: int) -> int:
    """Samples of audio that last exactly as long as `frame_count` frames."""
    return int(round(frame_count * sample_rate / fps))


def fit_audio(audio: np.ndarray, samples: int) -> np.ndarray:
    """Trim or zero-pad (channels, n) audio to exactly `samples` samples."""
    have = audio.shape[-1]
    if have >= samples:
        return audio[..., :samples]
    pad = np.zeros(audio.shape[:-1] + (samples - have,), dtype=audio.dtype)
    return np.concatenate([audio, pad], axis=-1)
