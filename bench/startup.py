"""How long a fresh process takes before it answers: `serve` (API and worker), `serve --no-worker`, and
`models list`. Each run starts a new process on an empty data folder (migrations included) except where
`--warm-data` reuses one, and measures the wall time to the first 200 from /health (or to the command's exit).

    python bench/startup.py                 # 3 runs each, medians
    python bench/startup.py --runs 5 --warm-data
    python bench/startup.py --src ../other-checkout/src   # the same on another version, for comparison

Run it on a quiet machine: the numbers are wall-clock and share the CPU with everything else.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[1] / "src"


def env(data_dir: Path) -> dict[str, str]:
    e = dict(os.environ)
    e.update({"HF_HUB_OFFLINE": "1", "MUTOSCOPE_DATA_DIR": str(data_dir), "PYTHONPATH": str(SRC)})
    e.pop("COLUMNS", None)
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_to_health(data_dir: Path, *extra: str) -> float:
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mutoscope", "serve", "--port", str(port), "--log-level",
                             "warning", *extra], env=env(data_dir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def command(data_dir: Path, *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mutoscope", *args], env=env(data_dir), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    global SRC
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warm-data", action="store_true", help="reuse one data folder (no first-start migrations)")
    ap.add_argument("--src", type=Path, default=None, help="the mutoscope source folder to run (default: this one)")
    args = ap.parse_args()
    SRC = (args.src or SRC).resolve()
    print(f"source: {SRC}   load average: {os.getloadavg()[0]:.1f}")
    cases = {"serve (API + worker)": lambda d: serve_to_health(d),
             "serve --no-worker": lambda d: serve_to_health(d, "--no-worker"),
             "models list": lambda d: command(d, "models", "list")}
    with tempfile.TemporaryDirectory() as tmp:
        shared = Path(tmp) / "shared"
        for name, case in cases.items():
            times = []
            for i in range(args.runs):
                data = shared if args.warm_data else Path(tmp) / f"{name.split()[0]}-{len(times)}-{i}"
                times.append(case(data))
            print(f"{name:24s} median {statistics.median(times):5.2f} s   runs {', '.join(f'{t:.2f}' for t in times)}")


if __name__ == "__main__":
    main()
