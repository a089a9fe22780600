"""API overhead: the same tiny job through the HTTP API (submit → downloadable) vs a direct call.

Direct = engine.generate + MP4/preview encode in this process (what `mutoscope generate` does).
API    = openai SDK create_and_poll + download_content against a live `mutoscope serve`.
Both use the same model, size, seconds, seed and steps, and the same provenance work (watermark + C2PA);
pipelines are warmed first on both sides, and the runs alternate (direct, API, direct, API, …) so that
whatever else the machine is doing weighs on both alike.
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

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ALIASES = {"sora-2": "tiny-ltx2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Direct:
    def __init__(self, args, tmp: Path):
        from mutoscope.config import Settings
        from mutoscope.engine import GenerationSpec
        from mutoscope.jobs.render import parse_size
        from mutoscope.wiring import build_engine

        self.tmp, self.n = tmp, 0
        self.settings = Settings(data_dir=tmp / "direct", model_aliases=ALIASES)
        self.engine = build_engine(self.settings)
        w, h = parse_size(args.size)
        self.spec = GenerationSpec(prompt="benchmark clip", width=w, height=h, seconds=float(args.seconds), seed=1,
                                   num_inference_steps=args.steps)

    def run(self) -> float:
        from mutoscope.db.models import new_id
        from mutoscope.jobs.render import render
        from mutoscope.provenance import Stamp

        self.n += 1
        out = self.tmp / f"direct{self.n}"
        out.mkdir()
        t = time.perf_counter()
        stamp = Stamp(data_dir=self.settings.data_dir, video_id=new_id("video_"), model="sora-2")
        render(self.engine, "sora-2", self.spec, out, lambda p: None, lambda: False, provenance=stamp)
        return time.perf_counter() - t


class Api:
    def __init__(self, args, tmp: Path):
        from openai import OpenAI

        self.args = args
        data = tmp / "api"
        port = free_port()
        env = dict(os.environ, MUTOSCOPE_DATA_DIR=str(data), MUTOSCOPE_MODEL_ALIASES=json.dumps(ALIASES))
        self.proc = subprocess.Popen([sys.executable, "-m", "mutoscope", "serve", "--port", str(port),
                                      "--log-level", "info"], env=env, stdout=open(tmp / "server.log", "wb"),
                                     stderr=subprocess.STDOUT)
        self.log = tmp / "server.log"
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        self.client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1",
                             api_key=(data / "owner-api-key").read_text().strip(), max_retries=0)

    def run(self) -> float:
        t = time.perf_counter()
        v = self.client.videos.create_and_poll(prompt="benchmark clip", size=self.args.size,
                                               seconds=self.args.seconds,
                                               extra_body={"seed": 1, "num_inference_steps": self.args.steps})
        assert v.status == "completed", v.error
        self.client.videos.download_content(v.id).read()
        return time.perf_counter() - t

    def close(self) -> None:
        if os.environ.get("BENCH_SHOW_LOG"):
            print("".join(ln for ln in self.log.read_text().splitlines(True) if "rendered in" in ln))
        self.proc.terminate()
        self.proc.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--size", default="720x1280")
    p.add_argument("--seconds", default="4")
    p.add_argument("--steps", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        direct, api = Direct(args, tmp), Api(args, tmp)
        try:
            direct.run(), api.run()  # warm both: pipelines built, caches filled
            d_times, a_times = [], []
            for _ in range(args.runs):
                d_times.append(direct.run())
                a_times.append(api.run())
        finally:
            api.close()
    direct, api = d_times, a_times
    d_med, a_med = statistics.median(direct), statistics.median(api)
    print(f"tiny-ltx2 {args.size} {args.seconds}s {args.steps} steps, {args.runs} runs each (median)")
    print(f"  direct (generate + encode): {d_med:7.2f} s   runs: {', '.join(f'{x:.2f}' for x in direct)}")
    print(f"  API (submit -> downloaded): {a_med:7.2f} s   runs: {', '.join(f'{x:.2f}' for x in api)}")
    print(f"  ratio API / direct:         {a_med / d_med:7.3f}   (target <= 1.10)")


if __name__ == "__main__":
    main()
