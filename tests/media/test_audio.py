"""Sound helpers: the low-pass resample, level matching and the crossfade over an extension's overlap."""

from __future__ import annotations

import numpy as np
import pytest

from mutoscope.media import MediaError, join, matching_gain, overlap_join, resample_audio


def tone(freq: float, seconds: float, rate: int, level: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None, :]


def band_level(audio: np.ndarray, rate: int, freq: float) -> float:
    """Magnitude (relative to the strongest bin) at `freq`, in dB."""
    spectrum = np.abs(np.fft.rfft(audio[0] * np.hanning(audio.shape[1])))
    freqs = np.fft.rfftfreq(audio.shape[1], 1 / rate)
    near = np.abs(freqs - freq) < 50
    return 20 * np.log10(spectrum[near].max() / max(spectrum.max(), 1e-12) + 1e-12)


def test_resample_down_removes_what_would_fold_back():
    # 10 kHz at 24 kHz is above 16 kHz's Nyquist (8 kHz): kept, it would alias to 6 kHz.
    src = tone(10_000, 1.0, 24_000) + tone(1_000, 1.0, 24_000)
    out = resample_audio(src, 24_000, 16_000)
    assert out.shape == (1, 16_000) and out.dtype == np.float32
    assert band_level(out, 16_000, 6_000) < -50
    assert band_level(out, 16_000, 1_000) > -1  # the in-band tone passes
    # Linear interpolation, the join's old resampler, folds it back at about -25 dB.
    x = np.linspace(0, src.shape[1] - 1, 16_000)
    linear = np.interp(x, np.arange(src.shape[1]), src[0])[None, :]
    assert band_level(linear, 16_000, 6_000) > -40


def test_resample_keeps_the_duration_to_the_sample():
    assert resample_audio(np.zeros((2, 24_001), np.float32), 24_000, 44_100).shape == (2, 44_102)
    same = tone(440, 0.1, 24_000)
    assert resample_audio(same, 24_000, 24_000) is not None
    np.testing.assert_array_equal(resample_audio(same, 24_000, 24_000), same)


def test_matching_gain_is_bounded_and_ignores_silence():
    loud, quiet = tone(300, 0.2, 16_000, 0.4), tone(300, 0.2, 16_000, 0.2)
    assert matching_gain(loud, quiet) == pytest.approx(2.0, rel=1e-3)
    assert matching_gain(loud, loud * 0.01) == pytest.approx(10 ** (9 / 20))  # capped at +9 dB
    assert matching_gain(loud, np.zeros_like(loud)) == 1.0


def test_overlap_join_crossfades_over_the_overlap_at_the_old_level():
    rate = 16_000
    a = tone(220, 1.0, rate, 0.4)
    lead = tone(220, 1.0, rate, 0.2)[:, -4000:]  # the same sound at half the level, over a's last 0.25 s
    b = tone(220, 0.5, rate, 0.2)
    out = overlap_join(a, lead, b)
    assert out.shape == (1, a.shape[1] + b.shape[1])
    np.testing.assert_array_equal(out[:, :12_000], a[:, :12_000])  # a before the overlap is untouched
    # The new sound is brought to a's level: b continues at 0.4, not 0.2.
    assert np.abs(out[:, 16_000:]).max() == pytest.approx(0.4, rel=0.02)
    assert np.abs(np.diff(out[0, 11_990:16_010])).max() < 0.06  # no step anywhere across the overlap
    plain = overlap_join(a, lead, b, match_level=False)
    assert np.abs(plain[:, 16_000:]).max() == pytest.approx(0.2, rel=0.02)


def test_join_uses_the_lead_at_continuous_joints_only():
    rate, fps = 24_000, 24.0
    frames = [np.zeros((24, 8, 8, 3), np.uint8)] * 3
    sounds = [tone(200, 1.0, rate, 0.4), tone(200, 1.0, rate, 0.2), tone(200, 1.0, rate, 0.1)]
    lead = tone(200, 1.0, rate, 0.2)[:, -6000:]
    _, audio = join(frames, sounds, fps=fps, sample_rate=rate, blends=[120, 120], leads=[lead, None])
    assert audio.shape == (1, 3 * rate)
    assert np.abs(audio[:, rate + 100: 2 * rate]).max() == pytest.approx(0.4, rel=0.02)  # matched to shot 0
    assert np.abs(audio[:, 2 * rate + 200:]).max() == pytest.approx(0.1, rel=0.02)  # a cut keeps its own level
    with pytest.raises(MediaError):
        join(frames, sounds, fps=fps, sample_rate=rate, blends=[120, 120], leads=[lead])
