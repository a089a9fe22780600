"""Queries shared by several rooms. Every user-facing lookup is scoped by owner."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mutoscope.db.models import ApiKey, File, User, Video

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


def expired_videos(session: Session, t: int, limit: int = 100) -> list[Video]:
    """Completed videos past their retention whose assets may still be on disk."""
    return list(session.scalars(select(Video).where(Video.expires_at.is_not(None), Video.expires_at <= t,
                                                       Video.status == "completed").limit(limit)))


def get_file(session: Session, owner_id: str, file_id: str) -> File | None:
    return session.scalar(select(File).where(File.id == file_id, File.owner_id == owner_id,
                                             File.deleted_at.is_(None)))


def key_by_hash(session: Session, key_hash: str) -> tuple[ApiKey, User] | None:
    row = session.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id)
                          .where(ApiKey.key_hash == key_hash)).first()
    return (row[0], row[1]) if row else None
