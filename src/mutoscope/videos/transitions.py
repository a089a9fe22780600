"""Every change of a video's status, each in ONE transaction with its quota settlement and outbox event.

    queued ──claim──▶ in_progress ──complete──▶ completed
      │                 │  ▲
      │                 │  └─ reclaim (lease expired, attempts left) / release (worker shutting down)
      └──fail/cancel──▶ failed ◀──fail / reclaim (no attempts left: worker_lost)──┘

Nothing else in the package writes `Video.status` (tests/videos/test_transitions.py enforces it), so a
crash can never separate a status from its charge or refund, or from the webhook event that reports it.

A claimed job carries a lease (`lease_owner`, `lease_expires_at`), renewed by its worker while it runs.
Writes a worker makes about its own job are conditional on still holding the lease: a worker whose lease
was taken back (it stalled, or the database was away) can neither complete nor fail the job twice.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from mutoscope.accounts import quota
from mutoscope.db.models import Video, new_id, now
from mutoscope.webhooks import service as webhooks

ACTIVE = ("queued", "in_progress")

WORKER_LOST = "worker_lost"


def _pid_space() -> str:
    """Which pid numbering this process lives in (boot and pid namespace): containers that share a hostname
    still differ here, so one never mistakes another's live worker for a dead one of its own."""
    try:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()
        return uuid.uuid5(uuid.NAMESPACE_OID, boot + os.readlink("/proc/self/ns/pid")).hex[:12]
    except OSError:
        return "unknown"


def new_worker_id(kind: str) -> str:
    """`kind:host:pid:pidspace:nonce`: host, pid and pid space let a runner on the same machine tell a dead
    holder at once."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{_pid_space()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claim:
    video_id: str
    attempt: int
    worker_id: str


def _event(s: Session, video: Video, event_type: str) -> None:
    if video.deleted_at is None:  # a video its owner deleted is nobody's news
        webhooks.emit(s, video.owner_id, event_type, {"id": video.id})


def enqueue(s: Session, video: Video, plan, charge_seconds: float, also=None) -> None:
    """Insert a queued job and reserve its budget and concurrency slot, together or not at all. `also(s)`
    adds what must exist with the job (its cameo uses) in the same transaction. A batch's line reserves its
    budget but no slot: it waits in the queue behind the plan's interactive jobs."""
    video.status, video.progress = "queued", 0
    video.id = video.id or new_id("video_")
    quota.reserve(s, plan, video.owner_id, video.id, video.model, charge_seconds, slot=video.batch_id is None)
    s.add(video)
    if also is not None:
        s.flush()
        also(s)
    s.commit()


def insert_finished(s: Session, video: Video, status: str) -> None:
    """Add a row that arrives already finished (an import): completed, or failed with its reason. Nothing
    runs and nothing is reserved; the caller commits it with the rest of its batch."""
    if status not in ("completed", "failed"):
        raise ValueError(f"an inserted video must be finished, not {status!r}")
    video.status = status
    s.add(video)


def claim_next(s: Session, worker_id: str, lease_seconds: float) -> Claim | None:
    """Atomically move the most urgent queued job to in_progress under this worker's lease.

    Order: higher plan priority first; within a priority, interactive jobs before a batch's lines; then the
    user served least recently goes next
    (round-robin between users), so one user's hundred queued jobs don't starve another's one; then
    first come, first served. The conditional UPDATE is the lock: two workers cannot both win a row.
    """
    last_served = (select(Video.owner_id, func.max(Video.started_at).label("at"))
                   .group_by(Video.owner_id).subquery())
    pick = (select(Video.id).outerjoin(last_served, last_served.c.owner_id == Video.owner_id)
            .where(Video.status == "queued", Video.deleted_at.is_(None))
            .order_by(Video.priority.desc(), Video.batch_id.is_not(None), func.coalesce(last_served.c.at, 0.0),
                      Video.seq).limit(1))
    while True:
        candidate = s.scalar(pick)
        if candidate is None:
            return None
        t = time.time()
        res = s.execute(
            update(Video).where(Video.id == candidate, Video.status == "queued", Video.deleted_at.is_(None))
            .values(status="in_progress", progress=0, attempts=Video.attempts + 1, started_at=t,
                    lease_owner=worker_id, lease_expires_at=t + lease_seconds))
        s.commit()
        if res.rowcount == 1:
            attempt = s.scalar(select(Video.attempts).where(Video.id == candidate))
            return Claim(candidate, attempt, worker_id)


def _held(claim: Claim) -> tuple:
    """The fence on every write a running job makes: the row is still running, under this worker's lease."""
    return Video.id == claim.video_id, Video.status == "in_progress", Video.lease_owner == claim.worker_id


def renew(s: Session, claim: Claim, lease_seconds: float, progress: int | None = None) -> bool:
    """Extend the lease (and record progress); False when this worker no longer holds the job."""
    values: dict = {"lease_expires_at": time.time() + lease_seconds}
    if progress is not None:
        values["progress"] = progress
    res = s.execute(update(Video).where(*_held(claim)).values(**values))
    s.commit()
    return res.rowcount == 1


def record_progress(s: Session, claim: Claim, progress: int, detail: dict | None = None) -> bool:
    """The job's percent and what it is doing in words (jobs/progress.py), written at once (the lease keeper
    also carries the percent with each renewal); False when this worker no longer holds the job."""
    values: dict = {"progress": progress}
    if detail is not None:
        values["progress_detail"] = detail
    res = s.execute(update(Video).where(*_held(claim)).values(**values))
    s.commit()
    return res.rowcount == 1


def complete(s: Session, claim: Claim, *, resolved: dict | None, retention_days: float | None) -> bool:
    """Publish this attempt's files and charge the reservation; False (nothing written) if the lease is gone
    or the video was deleted meanwhile — the caller then removes the files it wrote."""
    done = now()
    values = {"status": "completed", "progress": 100, "completed_at": done, "resolved": resolved,
              "assets_attempt": claim.attempt, "lease_owner": None, "lease_expires_at": None,
              "expires_at": done + int(retention_days * 86400) if retention_days else None}
    res = s.execute(update(Video).where(*_held(claim), Video.deleted_at.is_(None),
                                        Video.cancel_requested.is_(False))
                    .values(**values))
    if res.rowcount != 1:
        s.rollback()
        return False
    quota.settle(s, claim.video_id, charged=True)
    _event(s, _row(s, claim.video_id), "video.completed")
    s.commit()
    return True


def fail(s: Session, video_id: str, code: str, message: str, *, claim: Claim | None = None,
         only_queued: bool = False) -> bool:
    """Fail a queued or running job, refund it and queue `video.failed`; exactly once per job.

    `claim`: the worker failing its own job (conditional on its lease). `only_queued`: fail it only if no
    worker has claimed it yet (consent withdrawn; a running job re-checks consent before publishing)."""
    statuses = ("queued",) if only_queued else ACTIVE
    cond = [Video.id == video_id, Video.status.in_(statuses)]
    if claim is not None:
        cond.append(Video.lease_owner == claim.worker_id)
    res = s.execute(update(Video).where(*cond).values(
        status="failed", error_code=code, error_message=message, completed_at=now(), lease_owner=None,
        lease_expires_at=None))
    if res.rowcount != 1:
        s.rollback()
        return False
    quota.settle(s, video_id, charged=False)  # failures and cancellations are never charged
    _event(s, _row(s, video_id), "video.failed")
    s.commit()
    return True


def release(s: Session, claim: Claim) -> bool:
    """Hand a running job back to the queue (its worker is shutting down); the attempt doesn't count.
    A job deleted or cancelled meanwhile is not handed back: it fails (refunded) instead."""
    res = s.execute(update(Video).where(*_held(claim), Video.deleted_at.is_(None),
                                        Video.cancel_requested.is_(False))
                    .values(status="queued", progress=0, attempts=Video.attempts - 1, lease_owner=None,
                            lease_expires_at=None))
    s.commit()
    if res.rowcount == 1:
        return True
    fail(s, claim.video_id, "cancelled", "The job was cancelled.", claim=claim)
    return False


def delete(s: Session, video: Video) -> str:
    """Mark a video deleted. A queued one fails at once (refunded); a running one is flagged and its worker
    stops at the next step. Returns the status it is in afterwards ("in_progress": its worker still has to
    stop; anything else: no worker will write its files again)."""
    was = video.status
    video.deleted_at = now()
    video.cancel_requested = was in ACTIVE
    s.commit()
    if was in ACTIVE:
        # Conditional on still being queued: a running job's worker fails it at its next step. Tried even
        # if it was running when read, since a reclaim may have put it back in the queue meanwhile.
        fail(s, video.id, "cancelled", "Deleted before it started.", only_queued=True)
    return s.scalar(select(Video.status).where(Video.id == video.id)) if was in ACTIVE else was


def reclaim(s: Session, max_attempts: int, *, dead_worker=None) -> tuple[list[str], list[str]]:
    """Take back running jobs whose lease expired (or whose holder `dead_worker(owner)` says is dead).

    Each goes back to the queue if it has attempts left, else fails `worker_lost` (refunded, with its
    event). One transaction per job, so a reclaim racing a late renewal loses cleanly. Returns
    (re-queued ids, failed ids)."""
    t = time.time()
    rows = s.execute(select(Video.id, Video.lease_owner, Video.lease_expires_at, Video.attempts,
                            Video.deleted_at.is_not(None) | Video.cancel_requested)
                     .where(Video.status == "in_progress")).all()
    requeued, failed = [], []
    for vid, owner, expires, attempts, cancelled in rows:
        expired = expires is None or expires < t
        if not expired and not (dead_worker is not None and owner and dead_worker(owner)):
            continue
        # The lease owner and expiry read above are part of the WHERE: a worker that renewed meanwhile keeps it.
        same = and_(Video.id == vid, Video.status == "in_progress",
                    Video.lease_owner.is_(None) if owner is None else Video.lease_owner == owner,
                    or_(Video.lease_expires_at.is_(None), Video.lease_expires_at == expires))
        if cancelled:  # deleted or cancelled while its worker was lost: nothing to run again
            n = s.execute(update(Video).where(same).values(
                status="failed", error_code="cancelled", error_message="The job was cancelled.",
                completed_at=now(), lease_owner=None, lease_expires_at=None)).rowcount
            if n:
                quota.settle(s, vid, charged=False)
                _event(s, _row(s, vid), "video.failed")
                failed.append(vid)
            s.commit()
            continue
        if attempts < max_attempts:
            # A delete that lands after the read above must not be re-queued: it would never run or settle.
            n = s.execute(update(Video).where(same, Video.deleted_at.is_(None), Video.cancel_requested.is_(False))
                          .values(status="queued", progress=0, lease_owner=None,
                                                           lease_expires_at=None)).rowcount
            s.commit()
            if n:
                requeued.append(vid)
            continue
        n = s.execute(update(Video).where(same).values(
            status="failed", error_code=WORKER_LOST, completed_at=now(), lease_owner=None, lease_expires_at=None,
            error_message="The worker running this job stopped unexpectedly several times; it was not charged."
        )).rowcount
        if n:
            quota.settle(s, vid, charged=False)
            _event(s, _row(s, vid), "video.failed")
            failed.append(vid)
        s.commit()
    return requeued, failed


def local_holder_dead(owner: str, mine: frozenset[str] | set[str] = frozenset()) -> bool:
    """True when a lease holder ran on this machine and its process is gone, so its job can be taken back
    without waiting for the lease to run out. `mine`: this process's live worker ids (a restarted process
    can get its predecessor's pid, in a container always)."""
    parts = owner.split(":")
    if len(parts) < 5 or parts[1] != socket.gethostname() or not parts[2].isdigit() \
            or parts[3] != _pid_space() or parts[3] == "unknown":
        return False
    pid = int(parts[2])
    if pid == os.getpid():
        return owner not in mine
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _row(s: Session, video_id: str) -> Video:
    return s.scalar(select(Video).where(Video.id == video_id))
