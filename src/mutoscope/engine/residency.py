"""Which models a worker keeps loaded: a host-RAM and a VRAM budget, least recently used out first.

PUT HERE: the budgets (from the machine, or the operator's settings), what each loaded model holds
(measured on its tensors after the load), choosing whom to evict before a load, and giving freed memory
back to the system.
DO NOT PUT HERE: loading or placing models (diffusers_engine.py, modes.py), the plan's arithmetic (memory.py).

A model is loaded on its first job and stays for the next. Before another one loads, the least recently
used models are unloaded until the newcomer's estimated need fits beside the rest: its weights in host
RAM while they are read (from_pretrained loads on the CPU first) and its peak VRAM in the memory mode it
will run in (memory.py). Unloading drops the engine's only reference, collects the cycles diffusers'
hooks make, empties CUDA's cache and asks the C allocator to hand its free pages back, so the process's
resident memory returns to where it was before the load (tests/engine/test_residency.py measures it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mutoscope.engine import memory as memory_mod


# The share of the machine a worker's models may take by default: the rest is the process itself, the
# decoded frames of the jobs (jobs/: `job_memory_budget_bytes`) and the system.
HOST_SHARE = 0.8
VRAM_SHARE = 0.95


@dataclass
class Held:
    """What one loaded model holds, measured on its tensors."""

    host_bytes: int = 0
    vram_bytes: int = 0


class Residency:
    """The loaded models in least-recently-used order, and the budgets they share.

    Args:
        host_budget, vram_budget: bytes the loaded models may hold in host RAM and in GPU memory; None
            takes HOST_SHARE of this machine's RAM and VRAM_SHARE of its GPU's memory.
    """

    def __init__(self, host_budget: int | None = None, vram_budget: int | None = None, device: str = "cpu"):
        self.host_budget = host_budget or int(memory_mod.host_total() * HOST_SHARE)
        self._vram_budget, self._device = vram_budget, device
        self._held: OrderedDict[str, Held] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def vram_budget(self) -> int:
        """Read from the GPU on first use, not at construction: querying it creates the CUDA context, which a
        process that forks workers afterwards must not have yet."""
        if self._vram_budget is None:
            gpu = _cuda_total(self._device)
            self._vram_budget = int(gpu * VRAM_SHARE) if gpu else 0
        return self._vram_budget

    @vram_budget.setter
    def vram_budget(self, value: int) -> None:
        self._vram_budget = value

    def loaded(self) -> list[str]:
        """Model names, least recently used first."""
        with self._lock:
            return list(self._held)

    def touch(self, name: str) -> None:
        with self._lock:
            if name in self._held:
                self._held.move_to_end(name)

    def record(self, name: str, pipes: Any) -> Held:
        held = measure(pipes)
        with self._lock:
            self._held[name] = held
            self._held.move_to_end(name)
        return held

    def forget(self, name: str) -> None:
        with self._lock:
            self._held.pop(name, None)

    def to_evict(self, need_host: int, need_vram: int, keep: str | None = None) -> list[str]:
        """The models to unload, least recently used first, so that a load needing `need_host` bytes of host
        RAM and `need_vram` of VRAM fits beside those left (all but `keep`, when nothing is enough)."""
        with self._lock:
            order = [n for n in self._held if n != keep]
            host = sum(h.host_bytes for h in self._held.values())
            vram = sum(h.vram_bytes for h in self._held.values())
            out = []
            for name in order:
                if host + need_host <= self.host_budget and (not self.vram_budget or vram + need_vram <= self.vram_budget):
                    break
                out.append(name)
                host -= self._held[name].host_bytes
                vram -= self._held[name].vram_bytes
            return out


def measure(pipes: Any) -> Held:
    """Bytes of every distinct tensor of the model's modules, by where it lives now (offload hooks' CPU
    copies count as host RAM)."""
    import torch

    held = Held()
    seen: set[int] = set()
    modules = []
    for pipe in pipes.all():
        modules += [c for c in pipe.components.values() if isinstance(c, torch.nn.Module)]
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            size = tensor.numel() * tensor.element_size()
            if tensor.device.type == "cuda":
                held.vram_bytes += size
            elif tensor.device.type != "meta":
                held.host_bytes += size
    return held


def release() -> None:
    """Give memory the process no longer references back: cycles collected, CUDA's cache emptied, and
    glibc's free heap pages returned (without malloc_trim they stay in the process's RSS)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - the engine always has torch
        pass
    _malloc_trim()


def rss_bytes() -> int:
    """This process's resident set size (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_LIBC: Any = None


def _malloc_trim() -> None:
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name) if name else False
        except OSError:
            _LIBC = False
    if _LIBC and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def _cuda_total(device: str) -> int | None:
    if not str(device).startswith("cuda"):
        return None
    import torch

    return torch.cuda.mem_get_info(torch.device(device))[1]
