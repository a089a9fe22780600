"""A supplied soundtrack on its way into a model and out as the video's sound.

PUT HERE: resampling a waveform exactly one way (PyAV's libswresample), used both for what a model is
conditioned on and for the output's sound, so the two are the same samples.
DO NOT PUT HERE: decoding uploads (media/), a family's own audio front end (families/).
"""

from __future__ import annotations

import numpy as np


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float32 (channels, samples) at rate_in -> float32 (channels, n) at rate_out; one or two channels.

    The same input always gives the same samples (libswresample's default filter, flushed at the end).
    """
    import av

    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.shape[0] not in (1, 2):
        raise ValueError(f"one or two channels, got {audio.shape[0]}")
    if rate_in == rate_out or audio.shape[1] == 0:
        return audio.copy()
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    frame = av.AudioFrame.from_ndarray(audio, format="fltp", layout=layout)
    frame.sample_rate = int(rate_in)
    frame.pts = 0
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=int(rate_out))
    chunks = [f.to_ndarray() for f in resampler.resample(frame)]
    chunks += [f.to_ndarray() for f in resampler.resample(None)]
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False) if chunks else \
        np.zeros((audio.shape[0], 0), np.float32)


def with_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mono to `channels` identical channels; two to one by their mean; otherwise as is."""
    if audio.shape[0] == channels:
        return audio
    if audio.shape[0] == 1:
        return np.repeat(audio, channels, axis=0)
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    return audio
