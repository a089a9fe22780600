"""`mutoscope worker --gpus 0,1`: one worker process per GPU, in one torch.distributed group.

The command the operator runs is the launcher: it starts one copy of itself per GPU, with the rank in
the environment, and watches them. When any of them ends, the rest are stopped too (a follower alone
would wait forever for work; a leader without its followers would hang in its first shared job).
SIGTERM goes to rank 0, which hands its running job back to the queue and releases the others.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta

RANK_ENV = "MUTOSCOPE_WORKER_RANK"
# Followers wait for rank 0's next job on the control group for as long as the queue is empty.
CONTROL_TIMEOUT = timedelta(days=365)

logger = logging.getLogger(__name__)


def parse(gpus: str) -> list[str]:
    """"0,1" -> ["0", "1"]: distinct CUDA device indices."""
    ids = [g.strip() for g in gpus.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise ValueError(f"--gpus must be CUDA device indices like 0,1, got {gpus!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"--gpus lists a GPU twice: {gpus!r}")
    return ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(ids: list[str], argv: list[str], grace: float = 30.0) -> int:
    """Run `mutoscope <argv>` once per GPU id, ranks 0..n-1; returns the first exit status seen."""
    port = str(_free_port())
    procs: list[subprocess.Popen] = []
    for rank in range(len(ids)):
        env = dict(os.environ, **{RANK_ENV: str(rank), "RANK": str(rank), "LOCAL_RANK": str(rank),
                                  "WORLD_SIZE": str(len(ids)), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
                                  "CUDA_VISIBLE_DEVICES": ",".join(ids)})
        procs.append(subprocess.Popen([sys.executable, "-m", "mutoscope", *argv], env=env))

    def stop(*_: object) -> None:
        if procs[0].poll() is None:
            procs[0].send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = None
    while status is None:
        for p in procs:
            if p.poll() is not None:
                status = p.returncode
                break
        else:
            time.sleep(0.2)
    stop()
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return status


def run_rank(settings, log_level: str, poll_worker) -> None:
    """One rank of a multi-GPU worker: rank 0 runs `poll_worker(settings, engine)` with a LeaderEngine,
    the others follow it. On the CPU (MUTOSCOPE_DEVICE=cpu) the group runs over gloo."""
    import torch
    import torch.distributed as dist

    from mutoscope.engine.parallel import LeaderEngine, ParallelGroup, follow
    from mutoscope.wiring import build_engine

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rank = int(os.environ[RANK_ENV])
    on_cpu = settings.device == "cpu"
    if not on_cpu:
        torch.cuda.set_device(rank)
        settings = settings.model_copy(update={"device": f"cuda:{rank}"})
    dist.init_process_group(backend="gloo" if on_cpu else "nccl")
    group = ParallelGroup(rank=dist.get_rank(), world_size=dist.get_world_size(),
                          control=dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT))
    engine = build_engine(settings, parallel=group)
    try:
        if group.is_leader:
            leader = LeaderEngine(engine, group)
            try:
                poll_worker(settings, leader)
            finally:
                try:
                    leader.stop_followers()
                except Exception:  # a follower already gone: the launcher stops the rest
                    logger.warning("could not tell the other ranks to stop", exc_info=True)
        else:
            # Ctrl-C reaches every process of the terminal's group; rank 0 decides when the followers stop.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            follow(engine, group)
    finally:
        dist.destroy_process_group()
