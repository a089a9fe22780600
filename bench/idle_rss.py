"""Idle memory of an API process: `serve --no-worker` (and the Celery-mode API) vs the embedded default.

An API-only process must never import torch or diffusers: its catalog is the model registry. This starts
each kind of server on a fresh data folder, waits until /health answers and the process is settled, then
reads its resident set size (VmRSS) and whether torch is among its loaded modules (/proc/PID/maps).
Both servers run side by side in one run; the ratio is what the target is about.
Target: API-only idle RSS < 250 MB.

    python bench/idle_rss.py [--settle 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def loads_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def measure(label: str, args: list[str], settle: float, root: Path) -> dict:
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", MUTOSCOPE_DATA_DIR=str(root / label),
               MUTOSCOPE_MODEL_ALIASES=json.dumps({"sora-2": "tiny-ltx2"}))
    proc = subprocess.Popen([sys.executable, "-m", "mutoscope", "serve", "--port", str(port), "--log-level",
                             "warning", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{label} did not start")
        time.sleep(settle)
        return {"label": label, "rss_mb": rss_mb(proc.pid), "torch": loads_torch(proc.pid)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--settle", type=float, default=5.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lean = measure("api-only", ["--no-worker"], a.settle, Path(tmp))
        full = measure("embedded", [], a.settle, Path(tmp))
    for r in (lean, full):
        print(f"  {r['label']:<10} idle RSS {r['rss_mb']:7.1f} MB   torch loaded: {r['torch']}")
    print(f"  ratio api-only / embedded: {lean['rss_mb'] / full['rss_mb']:.2f}   "
          f"(target: api-only < 250 MB, no torch) -> {'met' if lean['rss_mb'] < 250 and not lean['torch'] else 'NOT met'}")


if __name__ == "__main__":
    main()
