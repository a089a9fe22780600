"""What a killed attempt leaves behind, owned by its lease: removed once the lease is gone.

An attempt renders into its own scratch folder (`<scratch>/<video>-a<n>/`) and uploads to its own storage
prefix (`videos/<video>/a<n>/`); its `finally` removes the folder and a failure removes the prefix. A process
killed during encoding or upload runs neither, and the next attempt uses `a<n+1>`, so nothing would ever
look at them again. The reclaimer (every runner, at start and every half lease) therefore:

- removes every scratch folder on this machine whose attempt is not the live one of a running job (the
  row is not `in_progress`, or is running a later attempt) and in which nothing was written for a whole
  lease: a worker that lost its lease but still runs finishes writing and removes its own, and only a dead
  one's folder stops changing;
- removes from storage the files of each attempt it just took back, unless that attempt is the published one.
Torch-free, like the rest of the reclaimer.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path

from sqlalchemy import select

from mutoscope.db.models import Video
from mutoscope.jobs.context import JobContext
from mutoscope.storage import keys

logger = logging.getLogger(__name__)

_ATTEMPT_DIR = re.compile(r"(?P<video>video_[A-Za-z0-9_-]{1,100})-a(?P<attempt>\d{1,9})")


def _last_write(folder: Path) -> float:
    try:
        with os.scandir(folder) as entries:
            return max([folder.stat().st_mtime, *(e.stat(follow_symlinks=False).st_mtime for e in entries)])
    except FileNotFoundError:
        return time.time()


def sweep_scratch(ctx: JobContext) -> int:
    """Remove the scratch folders of attempts that are not running any more; returns how many."""
    try:
        root = ctx.storage.scratch_dir()
        found = {p: m for p in root.iterdir() if p.is_dir() and (m := _ATTEMPT_DIR.fullmatch(p.name))}
    except FileNotFoundError:
        return 0
    if not found:
        return 0
    ids = sorted({m["video"] for m in found.values()})
    with ctx.sessions() as s:
        live = {vid: attempts for vid, attempts in s.execute(
            select(Video.id, Video.attempts).where(Video.id.in_(ids), Video.status == "in_progress"))}
    removed, quiet_since = 0, time.time() - ctx.settings.lease_seconds
    for path, m in found.items():
        if live.get(m["video"]) == int(m["attempt"]) or _last_write(path) > quiet_since:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    if removed:
        logger.info("removed the scratch of %d attempts that stopped without cleaning up", removed)
    return removed


def drop_lost_attempts(ctx: JobContext, video_ids: list[str]) -> None:
    """Remove from storage the files of the attempt each of these just-reclaimed jobs lost."""
    if not video_ids:
        return
    with ctx.sessions() as s:
        rows = s.execute(select(Video.id, Video.status, Video.attempts, Video.assets_attempt)
                         .where(Video.id.in_(video_ids))).all()
    for vid, status, attempts, published in rows:
        # Re-queued (or failed) with the lost attempt's number; already claimed again: the one before.
        lost = attempts - 1 if status == "in_progress" else attempts
        if lost < 1 or lost == published:
            continue
        try:
            ctx.storage.delete_prefix(keys.attempt_prefix(vid, lost))
        except Exception:
            logger.warning("video %s: could not remove lost attempt %d's files", vid, lost, exc_info=True)


def clean_up(ctx: JobContext, reclaimed: list[str]) -> None:
    """Both of the above; a failure here is logged and never stops the reclaimer."""
    try:
        drop_lost_attempts(ctx, reclaimed)
        sweep_scratch(ctx)
    except Exception:
        logger.exception("removing the leftovers of stopped attempts failed")
