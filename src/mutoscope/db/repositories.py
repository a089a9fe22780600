"""Queries shared by several rooms. Every user-facing lookup is scoped by owner."""

from __future__ import annotations

import time

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mutoscope.db.models import ApiKey, File, User, Video, now

ACTIVE = ("queued", "in_progress")


def get_video(session: Session, owner_id: str, video_id: str) -> Video | None:
    return session.scalar(select(Video).where(Video.id == video_id, Video.owner_id == owner_id,
                                              Video.deleted_at.is_(None)))


def list_videos(session: Session, owner_id: str, *, after: str | None, limit: int,
                order: str) -> tuple[list[Video], bool]:
    q = select(Video).where(Video.owner_id == owner_id, Video.deleted_at.is_(None))
    if after:
        anchor = session.scalar(select(Video.seq).where(Video.id == after, Video.owner_id == owner_id))
        if anchor is None:
            return [], False
        q = q.where(Video.seq < anchor if order == "desc" else Video.seq > anchor)
    q = q.order_by(Video.seq.desc() if order == "desc" else Video.seq.asc()).limit(limit + 1)
    rows = list(session.scalars(q))
    return rows[:limit], len(rows) > limit


def claim_next_video(session: Session) -> Video | None:
    """Atomically move the most urgent queued job to in_progress and return it.

    Order: higher plan priority first; within a priority, the user served least
    recently goes next (round-robin between users), so one user's hundred queued
    jobs don't starve another's one; then first come, first served.
    The conditional UPDATE in `claim_video` is the lock: two workers racing for the
    same row cannot both win.
    """
    last_served = (select(Video.owner_id, func.max(Video.started_at).label("at"))
                   .group_by(Video.owner_id).subquery())
    pick = (select(Video.id).outerjoin(last_served, last_served.c.owner_id == Video.owner_id)
            .where(Video.status == "queued", Video.deleted_at.is_(None))
            .order_by(Video.priority.desc(), func.coalesce(last_served.c.at, 0.0), Video.seq).limit(1))
    while True:
        candidate = session.scalar(pick)
        if candidate is None:
            return None
        if claim_video(session, candidate):
            return session.scalar(select(Video).where(Video.id == candidate))


def claim_video(session: Session, video_id: str) -> bool:
    res = session.execute(
        update(Video).where(Video.id == video_id, Video.status == "queued", Video.deleted_at.is_(None))
        .values(status="in_progress", progress=0, attempts=Video.attempts + 1, started_at=time.time()))
    session.commit()
    return res.rowcount == 1


def recover_interrupted(session: Session, max_attempts: int) -> tuple[int, int]:
    """After a crash: re-queue jobs left in_progress, or fail them once they used up their attempts."""
    requeued = session.execute(
        update(Video).where(Video.status == "in_progress", Video.attempts < max_attempts)
        .values(status="queued", progress=0)).rowcount
    failed = session.execute(
        update(Video).where(Video.status == "in_progress")
        .values(status="failed", error_code="worker_lost",
                error_message="The worker running this job stopped unexpectedly several times.",
                completed_at=now())).rowcount
    session.commit()
    return requeued, failed


def expired_videos(session: Session, t: int, limit: int = 100) -> list[str]:
    """Completed videos past their retention whose assets may still be on disk."""
    return list(session.scalars(select(Video.id).where(Video.expires_at.is_not(None), Video.expires_at <= t,
                                                       Video.status == "completed").limit(limit)))


def get_file(session: Session, owner_id: str, file_id: str) -> File | None:
    return session.scalar(select(File).where(File.id == file_id, File.owner_id == owner_id,
                                             File.deleted_at.is_(None)))


def key_by_hash(session: Session, key_hash: str) -> tuple[ApiKey, User] | None:
    row = session.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id)
                          .where(ApiKey.key_hash == key_hash)).first()
    return (row[0], row[1]) if row else None
