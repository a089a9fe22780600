"""Peak RSS of decoding a 20 s 1080p edit source: every frame (as jobs did) vs only what the edit needs.

The source is 20 s of 1080p at 24 fps (480 frames). The edit is the test model's: 4 s at 1280x720,
24 fps, so the job needs 96 frames, each scaled to what covers 1280x720. Each way runs in its own
subprocess so its peak RSS (ru_maxrss) is its own; "decode RSS" is that peak less the process's RSS
just before decoding (after imports, with the file's bytes in memory).

    python bench/media_memory.py [--seconds 20] [--edit-seconds 4] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np


def make_source(path: Path, seconds: int, width: int = 1920, height: int = 1080, fps: int = 24) -> Path:
    """One encoded second of moving 1080p, its packets repeated: a real H.264 file in a second or two."""
    y, x = np.mgrid[0:height, 0:width]
    segment = io.BytesIO()
    with av.open(segment, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "35", "g": str(fps), "preset": "ultrafast", "bf": "0"}
        for i in range(fps):
            img = np.stack([(x + 8 * i) % 256, (y + 4 * i) % 256, np.full_like(x, 96)], -1).astype(np.uint8)
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode(None))
    segment.seek(0)
    with av.open(segment) as src:
        template = src.streams.video[0]
        packets = [p for p in src.demux(template) if p.size]
        step = round(1 / template.time_base)
        with av.open(str(path), "w", format="mp4") as out:
            s = out.add_stream_from_template(template)
            for r in range(seconds):
                for p in packets:
                    q = av.Packet(bytes(p))
                    q.pts, q.dts = p.pts + r * step, p.dts + r * step
                    q.time_base, q.is_keyframe, q.stream = template.time_base, p.is_keyframe, s
                    out.mux(q)
    return path


def old_way(data: bytes, count: int, fps: float) -> np.ndarray:
    """What load_clip + retime did before: decode every frame, keep all, convert and stack, then pick."""
    from mutoscope.media.probe import _to_rgb

    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        kept: collections.deque = collections.deque()
        kept.extend(c.decode(v))
        src_fps = float(v.average_rate)
    frames = np.stack([_to_rgb(f) for f in kept])
    idx = np.minimum(np.round(np.arange(count) * src_fps / fps).astype(int), len(frames) - 1)
    return frames[idx]


def new_way(data: bytes, count: int, fps: float, width: int, height: int) -> np.ndarray:
    """What load_clip does now for an edit: `count` frames at the model's rate, scaled to cover the output."""
    from mutoscope.media import probe, read_frames

    info = probe(io.BytesIO(data))
    scale = min(1.0, max(width / info.width, height / info.height))
    max_pixels = (math.ceil(info.width * scale) + 2) * (math.ceil(info.height * scale) + 2)
    return read_frames(io.BytesIO(data), count=count, fps=fps, max_pixels=max_pixels)


def child(mode: str, src: str, count: int, fps: float, width: int, height: int) -> None:
    import mutoscope.media  # noqa: F401  (imports count in the baseline, not in the decode)

    data = Path(src).read_bytes()
    with open("/proc/self/status") as f:  # RSS now, not the high-water mark (imports may have peaked higher)
        base = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    t = time.perf_counter()
    frames = old_way(data, count, fps) if mode == "old" else new_way(data, count, fps, width, height)
    took = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "baseline_mb": base / 1024, "peak_mb": peak / 1024, "seconds": took,
                      "shape": list(frames.shape)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--edit-seconds", type=float, default=4)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=float, default=24)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "SRC"))
    args = ap.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    count = round(args.edit_seconds * args.fps)
    if args.child:
        child(args.child[0], args.child[1], count, args.fps, width, height)
        return
    with tempfile.TemporaryDirectory() as tmp:
        src = make_source(Path(tmp) / "source.mp4", args.seconds)
        print(f"source: {args.seconds} s of 1920x1080 at 24 fps ({args.seconds * 24} frames, "
              f"{src.stat().st_size / 1024:.0f} KB); edit: {args.edit_seconds:g} s at {args.size}, "
              f"{args.fps:g} fps ({count} frames)")
        rows = []
        for mode in ("old", "new"):
            out = subprocess.run([sys.executable, __file__, "--seconds", str(args.seconds), "--edit-seconds",
                                  str(args.edit_seconds), "--size", args.size, "--fps", str(args.fps),
                                  "--child", mode, str(src)], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'way':<34}{'peak RSS':>12}{'decode RSS':>13}{'time':>9}  frames kept")
    labels = {"old": "old: decode all, then pick", "new": "new: bounded read_frames"}
    for r in rows:
        print(f"{labels[r['mode']]:<34}{r['peak_mb']:>9.0f} MB{r['peak_mb'] - r['baseline_mb']:>10.0f} MB"
              f"{r['seconds']:>8.1f}s  {'x'.join(map(str, r['shape']))}")
    old, new = rows
    print(f"ratio old/new: peak RSS {old['peak_mb'] / new['peak_mb']:.1f}x, decode RSS "
          f"{(old['peak_mb'] - old['baseline_mb']) / max(1.0, new['peak_mb'] - new['baseline_mb']):.1f}x")


if __name__ == "__main__":
    main()
