"""Private scratch folders for imports and migrations that a killed process cannot leave behind.

Each folder holds a `.lock` file that its process keeps flock()ed while it works. The kernel drops
that lock when the process dies, however it dies (SIGKILL, OOM, power cut on a local disk), so
`sweep()` at the next start can tell a dead import's leftovers from a live one's without trusting
ages or pids: it removes exactly the folders whose lock it can take. Other processes on the same data
folder (a CLI import while the server starts) hold their locks and are left alone.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the sweep falls back to age
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

PREFIXES = ("import-", "upload-", "migrate-")
LOCK = ".lock"
# Leftovers that cannot be proven dead by a lock (a folder killed before it had one, or files written
# by older versions) are removed once they are this old; no import spends this long unlocked.
UNLOCKED_GRACE_S = 60.0
STALE_S = 24 * 3600.0  # without flock, a folder untouched this long is taken to be dead


class ScratchArea:
    """A locked folder under the storage's scratch space; `close()` removes it and releases the lock."""

    def __init__(self, scratch_dir: Path, prefix: str):
        if prefix not in PREFIXES:
            raise ValueError(f"unknown scratch prefix {prefix!r}")
        self.path = scratch_dir / f"{prefix}{secrets.token_hex(8)}"
        self.path.mkdir(parents=True)
        self._fd: int | None = os.open(self.path / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)  # after the removal, so a sweep never sees it unlocked and half-removed
            self._fd = None

    def __enter__(self) -> "ScratchArea":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dead(entry: Path) -> bool:
    lock = entry / LOCK
    if not entry.is_dir() or not lock.exists():
        try:
            return time.time() - entry.stat().st_mtime > UNLOCKED_GRACE_S
        except FileNotFoundError:
            return False
    if fcntl is None:
        return time.time() - lock.stat().st_mtime > STALE_S
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:  # its owner is removing it right now
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def sweep(scratch_dir: Path) -> int:
    """Remove the import/upload/migration scratch left by processes that died; returns how many."""
    removed = 0
    if not scratch_dir.is_dir():
        return 0
    for entry in scratch_dir.iterdir():
        if not entry.name.startswith(PREFIXES) or not _dead(entry):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.warning("removed %d import scratch folder(s) left by a stopped process", removed)
    return removed
