"""Encode-speed check, not collected by pytest: `python tests/media/bench_encode.py [--noise]`.

96 frames of 720x1280 at 24 fps (4 s) with stereo 48 kHz audio, the size a
default job produces. Prints wall and process-CPU seconds for three runs;
CPU seconds stay meaningful when other processes share the machine.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mutoscope.media import encode_mp4


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    t, h, w, fps, sr = 96, 1280, 720, 24, 48000
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        # Smooth motion: closer to generated video than noise.
        frames[i, ..., 0] = 127 + 100 * np.sin((xx + 8 * i) / 60) * np.cos(yy / 80)
        frames[i, ..., 1] = 127 + 100 * np.sin((yy - 5 * i) / 50)
        frames[i, ..., 2] = 127 + 100 * np.cos((xx + yy + 3 * i) / 90)
    if "--noise" in sys.argv:  # film-grain-like texture: the expensive case for x264
        grain = np.random.default_rng(0).integers(-6, 7, frames.shape, dtype=np.int16)
        frames = np.clip(frames + grain, 0, 255).astype(np.uint8)
    n = t * sr // fps
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)] * 2).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "bench.mp4"
        for _ in range(3):
            c0, t0 = cpu_seconds(), time.perf_counter()
            encode_mp4(out, frames, fps, audio, sr)
            print(
                f"wall {time.perf_counter() - t0:.2f}s  cpu {cpu_seconds() - c0:.2f}s  "
                f"size {out.stat().st_size / 1e6:.2f} MB"
            )


if __name__ == "__main__":
    main()
