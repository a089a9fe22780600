"""Sound helpers on (channels, samples) float32 arrays: resampling, level, and joins that continue.

Resampling is polyphase with a low-pass (Kaiser-windowed) FIR (`scipy.signal.resample_poly`): going down,
everything above the new Nyquist is removed before samples are dropped, so 24 kHz model audio brought to
16 kHz has no tones folded back into the band; linear interpolation, what a join used before, aliases.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

# A join matches the new clip's level to the old one's over the overlap, within this range: enough to
# undo a regenerated clip's level drift, never enough to lift silence into hiss or bury a real change.
MAX_GAIN_DB = 9.0
# Quieter than this (RMS) is silence: its level says nothing about the level to match.
SILENCE_RMS = 1e-4


def resample_audio(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """(channels, n) audio at `rate_in` -> float32 at `rate_out`, round(n * rate_out / rate_in) samples long."""
    from scipy.signal import resample_poly

    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    if rate_in == rate_out or audio.shape[-1] == 0:
        return audio.astype(np.float32, copy=False)
    ratio = Fraction(int(rate_out), int(rate_in))
    out = resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1)
    want = round(audio.shape[-1] * rate_out / rate_in)
    if out.shape[-1] >= want:
        out = out[..., :want]
    else:
        out = np.pad(out, ((0, 0), (0, want - out.shape[-1])))
    return out.astype(np.float32, copy=False)


def rms(audio: np.ndarray) -> float:
    audio = np.asarray(audio, dtype=np.float64)
    return float(np.sqrt(np.mean(audio * audio))) if audio.size else 0.0


def matching_gain(reference: np.ndarray, other: np.ndarray) -> float:
    """The gain that brings `other` to `reference`'s RMS level, within +-MAX_GAIN_DB (1 when either is silent)."""
    ref, oth = rms(reference), rms(other)
    if ref < SILENCE_RMS or oth < SILENCE_RMS:
        return 1.0
    limit = 10 ** (MAX_GAIN_DB / 20)
    return float(np.clip(ref / oth, 1 / limit, limit))


def overlap_join(a: np.ndarray, lead: np.ndarray, b: np.ndarray, *, match_level: bool = True) -> np.ndarray:
    """`a` followed by `b`, where `lead` is the sound the new clip made over the last len(lead) samples of `a`
    (an extension or a continuous shot regenerates the frames it was conditioned on, then they are cut).

    Over that overlap `a` fades out as `lead` fades in (a raised-cosine crossfade whose gains sum to 1: the
    two are meant to be the same sound, conditioned on each other, so their amplitudes add); `b` follows
    `lead` sample for sample, so the seam lands where the new clip really continues. With `match_level`,
    the new sound (`lead` and `b`) is first scaled to `a`'s level over the overlap (`matching_gain`).
    The result is exactly len(a) + len(b) long, so sound stays in step with the frames; `a` before the
    overlap is untouched.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float32))
    lead = np.atleast_2d(np.asarray(lead, dtype=np.float32))
    b = np.atleast_2d(np.asarray(b, dtype=np.float32))
    channels = max(a.shape[0], lead.shape[0], b.shape[0])
    a, lead, b = (np.broadcast_to(x, (channels, x.shape[1])) for x in (a, lead, b))
    n = min(lead.shape[1], a.shape[1])
    if n <= 0:
        return np.concatenate([a, b], axis=1)
    lead = lead[:, lead.shape[1] - n:]
    tail = a[:, a.shape[1] - n:]
    gain = matching_gain(tail, lead) if match_level else 1.0
    fade_in = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n, dtype=np.float64) + 0.5) / n)).astype(np.float32)
    mixed = tail * (1 - fade_in) + lead * gain * fade_in
    joined = np.concatenate([a[:, : a.shape[1] - n], mixed, b * gain], axis=1)
    return np.clip(joined, -1.0, 1.0).astype(np.float32, copy=False)
