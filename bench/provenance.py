"""Provenance cost: invisible watermark and C2PA signing as a share of the whole job at 720p.

One run = engine.generate (tiny-ltx2 unless --model says otherwise) + watermark + MP4 encode + C2PA sign
+ previews, each timed; printed side by side. The tiny model generates in seconds where a real one
takes minutes, so its shares are an upper bound on what a real job pays.

    python bench/provenance.py [--runs 2] [--size 720x1280] [--seconds 4] [--steps 2] [--every 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--size", default="720x1280")
    ap.add_argument("--seconds", default="4")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--every", type=int, default=1, help="watermark every n-th frame")
    ap.add_argument("--model", default="tiny-ltx2")
    args = ap.parse_args()

    from mutoscope.config import Settings
    from mutoscope.engine import GenerationSpec
    from mutoscope.jobs.render import parse_size
    from mutoscope.media import encode_mp4, spritesheet_jpeg, thumbnail_webp
    from mutoscope.provenance import Stamp, mark_frames, sign_video, verify
    from mutoscope.provenance import keys
    from mutoscope.wiring import build_engine

    tmp = Path(tempfile.mkdtemp(prefix="bench-provenance-"))
    engine = build_engine(Settings(data_dir=tmp, model_aliases={"sora-2": args.model}))
    w, h = parse_size(args.size)
    spec = GenerationSpec(prompt="benchmark clip", width=w, height=h, seconds=float(args.seconds), seed=1,
                          num_inference_steps=args.steps)
    keys.load_or_create(tmp)  # a server makes its keys once, not per job
    video_id = "video_" + "5a" * 12
    stamp = Stamp(data_dir=tmp, video_id=video_id, model=args.model, generator_version="bench")

    class Hooks:
        def on_progress(self, fraction, phase): pass
        def should_cancel(self): return False

    rows: dict[str, list[float]] = {k: [] for k in ("generate", "watermark", "encode", "sign", "previews")}
    frames_n = 0
    for i in range(args.runs + 1):  # the first run warms the pipeline
        t0 = time.perf_counter()
        out = engine.generate("sora-2", spec, Hooks())
        t1 = time.perf_counter()
        frames = mark_frames(out.frames, video_id, every=args.every)
        t2 = time.perf_counter()
        path = tmp / f"run{i}.mp4"
        encode_mp4(path, frames, out.fps, out.audio, out.sample_rate)
        t3 = time.perf_counter()
        sign_video(path, stamp)
        t4 = time.perf_counter()
        thumbnail_webp(frames), spritesheet_jpeg(frames)
        t5 = time.perf_counter()
        if i:
            for k, dt in zip(rows, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                rows[k].append(dt)
        frames_n = len(frames)
    med = {k: statistics.median(v) for k, v in rows.items()}
    total = sum(med.values())
    t = time.perf_counter()
    check = verify(tmp / f"run{args.runs}.mp4", tmp)
    verify_s = time.perf_counter() - t

    print(f"{args.model} {args.size} {args.seconds}s ({frames_n} frames), {args.steps} steps, "
          f"watermark every {args.every}, median of {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"{'phase':<10}{'seconds':>9}{'share':>8}")
    for k, v in med.items():
        print(f"{k:<10}{v:>9.2f}{v / total:>8.1%}")
    print(f"{'total':<10}{total:>9.2f}")
    print(f"watermark {med['watermark'] / frames_n * 1000:.1f} ms/frame | sign {med['sign']:.2f} s | "
          f"watermark+sign {(med['watermark'] + med['sign']) / total:.1%} of the job")
    print(f"verify (24 sampled frames + C2PA read): {verify_s:.2f} s -> c2pa {check.c2pa.state}, "
          f"watermark {check.watermark.video_id == video_id}")


if __name__ == "__main__":
    main()
