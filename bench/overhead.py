"""API overhead: the same tiny job through the HTTP API (submit → downloadable) vs a direct call.

Direct = engine.generate + MP4/preview encode in this process (what `mutoscope generate` does).
API    = openai SDK create_and_poll + download_content against a live `mutoscope serve`.
Both use the same model, size, seconds, seed and steps; pipelines are warmed first on both sides.
Target: API end-to-end within 1.10 x direct.

    python bench/overhead.py [--runs 3] [--size 720x1280] [--seconds 4] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ALIASES = {"sora-2": "tiny-ltx2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def direct_runs(args, tmp: Path) -> list[float]:
    from mutoscope.config import Settings
    from mutoscope.engine import GenerationSpec
    from mutoscope.jobs.generation import parse_size, render
    from mutoscope.wiring import build_engine

    engine = build_engine(Settings(data_dir=tmp / "direct", model_aliases=ALIASES))
    w, h = parse_size(args.size)
    spec = GenerationSpec(prompt="benchmark clip", width=w, height=h, seconds=float(args.seconds), seed=1,
                          num_inference_steps=args.steps)
    times = []
    for i in range(args.runs + 1):  # first run warms the pipeline
        out = tmp / f"direct{i}"
        out.mkdir()
        t = time.perf_counter()
        render(engine, "sora-2", spec, out, lambda p: None, lambda: False)
        if i:
            times.append(time.perf_counter() - t)
    return times


def api_runs(args, tmp: Path) -> list[float]:
    from openai import OpenAI
    import httpx

    data = tmp / "api"
    port = free_port()
    env = dict(os.environ, MUTOSCOPE_DATA_DIR=str(data), MUTOSCOPE_MODEL_ALIASES=json.dumps(ALIASES))
    proc = subprocess.Popen([sys.executable, "-m", "mutoscope", "serve", "--port", str(port), "--log-level",
                             "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=(data / "owner-api-key").read_text().strip(),
                        max_retries=0)
        times = []
        for i in range(args.runs + 1):
            t = time.perf_counter()
            v = client.videos.create_and_poll(prompt="benchmark clip", size=args.size, seconds=args.seconds,
                                              extra_body={"seed": 1, "num_inference_steps": args.steps})
            assert v.status == "completed", v.error
            client.videos.download_content(v.id).read()
            if i:
                times.append(time.perf_counter() - t)
        return times
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--size", default="720x1280")
    p.add_argument("--seconds", default="4")
    p.add_argument("--steps", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        direct = direct_runs(args, tmp)
        api = api_runs(args, tmp)
    d_med, a_med = statistics.median(direct), statistics.median(api)
    print(f"tiny-ltx2 {args.size} {args.seconds}s {args.steps} steps, {args.runs} runs each (median)")
    print(f"  direct (generate + encode): {d_med:7.2f} s   runs: {', '.join(f'{x:.2f}' for x in direct)}")
    print(f"  API (submit -> downloaded): {a_med:7.2f} s   runs: {', '.join(f'{x:.2f}' for x in api)}")
    print(f"  ratio API / direct:         {a_med / d_med:7.3f}   (target <= 1.10)")


if __name__ == "__main__":
    main()
