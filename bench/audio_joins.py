"""How much the sound jumps where an extension or a continuous storyboard shot joins its source, before and after.

Two measures at a join, both against the sound's own behaviour away from it:
- level jump: |20 log10(RMS of the 200 ms after / RMS of the 200 ms before)|, in dB;
- spectral jump: the largest spectral flux (the distance between successive 20 ms log-magnitude spectra,
  10 ms apart) within 30 ms of the join, over the median flux elsewhere: 1 means the join is no more
  abrupt than the sound itself.

"Before" is what the joins did: an extension's sound concatenated (no fade), a continuous shot's blended
over 5 ms; both regenerate the sound from scratch. "After": the new sound is made carrying the previous
audio latents over the overlap (engine/families/ltx2_audio.py), the old end crossfades into it over the
overlap and the new sound is brought to the old level (media/audio.py `overlap_join`).

Two sources of sound, in one run:
- synthetic: an ambience (pink noise, a hum and a chord) continued by a regenerated take of the same kind
  of sound at a level 4.4 dB lower, the way a fresh generation drifts (the same sounds for before and after);
- tiny: the random-weight `tiny-ltx2` through the real engine, a 2 s clip with the synthetic ambience as its
  sound, extended by 1 s without and with the carried audio. Its vocoder has random weights, so this shows
  the mechanism end to end (levels, lengths, the crossfade), not what a trained model sounds like.

    python bench/audio_joins.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mutoscope.engine.families.ltx2 import EXTEND_CONDITION_FRAMES as OVERLAP_FRAMES  # noqa: E402
from mutoscope.jobs.storyboard import CONTINUOUS_BLEND_SECONDS  # noqa: E402
from mutoscope.media.audio import rms as media_rms  # noqa: E402

RATE = 24_000
FPS = 24.0


def ambience(seconds: float, seed: int, level: float) -> np.ndarray:
    """Stereo pink noise with a 60 Hz hum and a held chord, at `level` RMS."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    white = rng.standard_normal((2, n))
    spectrum = np.fft.rfft(white, axis=1)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[:, 1:] /= np.sqrt(freqs[1:])  # 1/f power: pink
    pink = np.fft.irfft(spectrum, n, axis=1)
    pink /= np.sqrt(np.mean(pink ** 2))
    t = np.arange(n) / RATE
    phase = rng.uniform(0, 2 * np.pi, 4)
    bed = (0.5 * np.sin(2 * np.pi * 60 * t + phase[0]) + 0.3 * np.sin(2 * np.pi * 220 * t + phase[1])
           + 0.3 * np.sin(2 * np.pi * 277.2 * t + phase[2]) + 0.3 * np.sin(2 * np.pi * 329.6 * t + phase[3]))
    sound = 0.6 * pink + bed[None, :]
    return (sound * level / np.sqrt(np.mean(sound ** 2))).astype(np.float32)


def level_jump(audio: np.ndarray, at: int) -> float:
    win = round(0.2 * RATE)
    before, after = audio[:, at - win: at], audio[:, at: at + win]
    return abs(20 * np.log10((media_rms(after) + 1e-12) / (media_rms(before) + 1e-12)))


def spectral_jump(audio: np.ndarray, at: int) -> float:
    mono = audio.mean(axis=0).astype(np.float64)
    size, hop = round(0.02 * RATE), round(0.01 * RATE)
    window = np.hanning(size)
    starts = np.arange(0, len(mono) - size, hop)
    frames = np.stack([mono[s: s + size] * window for s in starts])
    logmag = np.log(np.abs(np.fft.rfft(frames, axis=1)) + 1e-6)
    flux = np.linalg.norm(np.diff(logmag, axis=0), axis=1)
    centres = starts[1:] + size // 2
    near = np.abs(centres - at) <= round(0.03 * RATE) + size // 2
    return float(flux[near].max() / np.median(flux[~near]))


def measure(audio: np.ndarray, at: int) -> tuple[float, float]:
    return level_jump(audio, at), spectral_jump(audio, at)


def synthetic() -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    from mutoscope.media import blend_join, overlap_join

    source = ambience(3.0, seed=1, level=0.2)
    overlap = round(OVERLAP_FRAMES / FPS * RATE)
    # A regenerated take: the same kind of sound, another draw, 4.4 dB quieter; its first `overlap` samples
    # are what it made over the source's last frames.
    take = ambience(2.0 + OVERLAP_FRAMES / FPS, seed=2, level=0.12)
    lead, rest = take[:, :overlap], take[:, overlap:]
    at = source.shape[1]
    extension_before = np.concatenate([source, rest], axis=1)
    continuous_before = blend_join(source, rest, round(CONTINUOUS_BLEND_SECONDS * RATE))
    after = overlap_join(source, lead, rest)
    return [("synthetic, extension", measure(extension_before, at), measure(after, at)),
            ("synthetic, continuous shot", measure(continuous_before, at), measure(after, at))]


def tiny() -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    from mutoscope.engine.base import GenerationSpec
    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.registry import load_registry
    from mutoscope.media import blend_join, overlap_join

    class Hooks:
        def on_progress(self, fraction: float, phase: str) -> None:
            pass

        def should_cancel(self) -> bool:
            return False

    engine = DiffusersEngine(load_registry(), Path(tempfile.mkdtemp()), device="cpu")
    base = dict(prompt="rain on a tin roof", width=96, height=64, seed=3)
    first = engine.generate("tiny-ltx2", GenerationSpec(seconds=2.0, **base), Hooks())
    sound = ambience(2.0, seed=1, level=0.2)  # the source clip's sound: what a trained model would have made
    tail = first.frames[-25:]
    plain = engine.generate("tiny-ltx2", GenerationSpec(seconds=1.0, condition_frames=tail, condition_mode="extend",
                                                        **{**base, "seed": 4}), Hooks())
    carried = engine.generate("tiny-ltx2", GenerationSpec(seconds=1.0, condition_frames=tail, condition_mode="extend",
                                                          condition_audio=sound, condition_audio_rate=RATE,
                                                          **{**base, "seed": 4}), Hooks())
    at = sound.shape[1]
    extension_before = np.concatenate([sound, plain.audio], axis=1)
    continuous_before = blend_join(sound, plain.audio, round(CONTINUOUS_BLEND_SECONDS * RATE))
    after = overlap_join(sound, carried.lead_audio, carried.audio)
    return [("tiny-ltx2, extension", measure(extension_before, at), measure(after, at)),
            ("tiny-ltx2, continuous shot", measure(continuous_before, at), measure(after, at))]


def main() -> None:
    rows = synthetic() + tiny()
    print("| join | level jump before (dB) | after (dB) | spectral jump before (x median) | after | "
          "level ratio | spectral ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, (lb, sb), (la, sa) in rows:
        print(f"| {name} | {lb:.2f} | {la:.2f} | {sb:.2f} | {sa:.2f} | {lb / max(la, 1e-3):.1f}x | "
              f"{sb / max(sa, 1e-3):.1f}x |")


if __name__ == "__main__":
    main()
