"""Queries shared by several rooms. Every user-facing lookup is scoped by owner."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
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


@dataclass(frozen=True)
class VideoFilter:
    """A library search: every part optional; `text` matches the prompt, case-insensitively."""

    text: str | None = None
    status: str | None = None
    model: str | None = None
    since: int | None = None  # created_at >= since
    until: int | None = None  # created_at < until
    batch: str | None = None  # the lines of one batch


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` literally: %, _ and the escape character itself are escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_videos(session: Session, owner_id: str, f: VideoFilter, *, after: str | None, limit: int,
                  order: str) -> tuple[list[Video], bool]:
    """`list_videos` narrowed by a filter; the same cursor (an id of this owner's) pages through it."""
    q = select(Video).where(Video.owner_id == owner_id, Video.deleted_at.is_(None))
    if f.text:
        q = q.where(Video.prompt.ilike(_like(f.text), escape="\\"))
    if f.status:
        q = q.where(Video.status == f.status)
    if f.model:
        q = q.where(Video.model == f.model)
    if f.batch:
        q = q.where(Video.batch_id == f.batch)
    if f.since is not None:
        q = q.where(Video.created_at >= f.since)
    if f.until is not None:
        q = q.where(Video.created_at < f.until)
    if after:
        anchor = session.scalar(select(Video.seq).where(Video.id == after, Video.owner_id == owner_id))
        if anchor is None:
            return [], False
        q = q.where(Video.seq < anchor if order == "desc" else Video.seq > anchor)
    q = q.order_by(Video.seq.desc() if order == "desc" else Video.seq.asc()).limit(limit + 1)
    rows = list(session.scalars(q))
    return rows[:limit], len(rows) > limit


def video_models(session: Session, owner_id: str) -> list[str]:
    """The model names this owner's videos were made with (the library's model filter)."""
    return sorted(session.scalars(select(Video.model).where(Video.owner_id == owner_id, Video.deleted_at.is_(None))
                                  .distinct()))


def video_batches(session: Session, owner_id: str, limit: int = 50) -> list[str]:
    """The ids of this owner's latest batches that made videos (the library's batch filter), newest first."""
    rows = session.execute(select(Video.batch_id, func.max(Video.seq)).where(
        Video.owner_id == owner_id, Video.batch_id.is_not(None), Video.deleted_at.is_(None))
        .group_by(Video.batch_id).order_by(func.max(Video.seq).desc()).limit(limit)).all()
    return [r[0] for r in rows]


def feed_videos(session: Session, *, after: str | None, limit: int) -> tuple[list[tuple[Video, str]], bool]:
    """Finished videos their owners shared with everyone on this server, newest first, with the owner's name."""
    q = (select(Video, User.name).join(User, User.id == Video.owner_id)
         .where(Video.visibility == "everyone", Video.status == "completed", Video.deleted_at.is_(None),
                User.disabled.is_(False)))
    if after:
        anchor = session.scalar(select(Video.seq).where(Video.id == after, Video.visibility == "everyone"))
        if anchor is None:
            return [], False
        q = q.where(Video.seq < anchor)
    rows = [(v, name) for v, name in session.execute(q.order_by(Video.seq.desc()).limit(limit + 1))]
    return rows[:limit], len(rows) > limit


def derived_videos(session: Session, video_id: str, limit: int = 50) -> list[Video]:
    """Videos made from this one (remixes, extensions, edits), oldest first, whoever owns them."""
    return list(session.scalars(
        select(Video).where((Video.remixed_from_video_id == video_id) | (Video.extended_from_video_id == video_id)
                            | (Video.edited_from_video_id == video_id), Video.deleted_at.is_(None))
        .order_by(Video.seq.asc()).limit(limit)))


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
