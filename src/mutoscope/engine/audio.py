"""A supplied soundtrack on its way into a model and out as the video's sound.

PUT HERE: a supplied soundtrack's channels, and its resampling (media's one resampler), used both for what
a model is conditioned on and for the output's sound, so the two are the same samples.
DO NOT PUT HERE: decoding uploads (media/), a family's own audio front end (families/).
"""

from __future__ import annotations

import numpy as np


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float32 (channels, samples) at rate_in -> float32 (channels, n) at rate_out; one or two channels.

    The one resampler the rest of Mutoscope uses too (media `resample_audio`: low-pass polyphase, the same
    samples for the same input), so what conditions a model and what the video plays are the same sound."""
    from mutoscope.media import resample_audio

    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.shape[0] not in (1, 2):
        raise ValueError(f"one or two channels, got {audio.shape[0]}")
    return resample_audio(audio, rate_in, rate_out).copy()


def with_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mono to `channels` identical channels; two to one by their mean; otherwise as is."""
    if audio.shape[0] == channels:
        return audio
    if audio.shape[0] == 1:
        return np.repeat(audio, channels, axis=0)
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    return audio
