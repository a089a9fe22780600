"""The reads of videos: what a caller may see, and each front end's lists, pages and files.

PUT HERE: `may_view` (who may watch and remix a video), retrieve, the poll hint, list and search, a
video's content, the shared views (a video by id, a share link, the feed), lineage, the filters' values,
a video's settings and first frame to start a new one from, and the lookups of a row the caller owns or
may see that the commands share.
DO NOT PUT HERE: anything that writes a row or a file (`commands.py`), admission (`admission.py`), the
conversion to the wire object (`objects.py`).
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.accounts.service import Principal
from mutoscope.config import Settings
from mutoscope.db import repositories as repo
from mutoscope.db.models import User, Video, now
from mutoscope.db.repositories import VideoFilter
from mutoscope.errors import Gone, InvalidRequest, NotFound
from mutoscope.likeness import consent as cameo_consent
from mutoscope.protocol.base import cursor_page
from mutoscope.protocol.videos import VideoList, VideoObject
from mutoscope.storage import Storage, StoredFile
from mutoscope.storage.keys import VARIANTS, published_key
from mutoscope.videos.objects import to_video_object

# A video's generation settings beyond OpenAI's fields, as stored in Video.params: what a new video started
# from it, or a retry of it, takes over.
GENERATION_KEYS = ("seed", "negative_prompt", "num_inference_steps", "guidance_scale")


def may_view(v: Video, user_id: str, token: str | None = None) -> bool:
    """Who may watch a video and remix it: its owner; anyone signed in to this server when it is shared with
    everyone; anyone holding its link's token when it is unlisted. Nobody else learns that it exists."""
    if v.deleted_at is not None:
        return False
    if v.owner_id == user_id or v.visibility == "everyone":
        return True
    return (v.visibility == "unlisted" and bool(token) and bool(v.share_token)
            and hmac.compare_digest(str(token), v.share_token))


@dataclass(frozen=True)
class SharedVideo:
    """A video as someone other than its owner sees it: who made it and the link it is shared under."""

    video: VideoObject
    owner: str
    token: str | None
    mine: bool


@dataclass(frozen=True)
class Lineage:
    """Where a video came from and what was made from it, as far as the viewer may see."""

    source: VideoObject | None
    source_hidden: bool  # made from a video the viewer may not see (or that was deleted)
    derived: list[VideoObject]


def owned(s: Session, who: Principal, video_id: str) -> Video:
    """One of the caller's own videos (only its owner changes or deletes it)."""
    v = repo.get_video(s, who.user_id, video_id)
    if v is None:
        raise NotFound(f"No video found with id '{video_id}'.", param="video_id", code="video_not_found")
    return v


def viewable(s: Session, who: Principal, video_id: str, token: str | None = None) -> Video:
    """The video if the caller may see it; otherwise exactly the answer for an id that does not exist."""
    v = s.scalar(select(Video).where(Video.id == video_id, Video.deleted_at.is_(None)))
    if v is None or not may_view(v, who.user_id, token):
        raise NotFound(f"No video found with id '{video_id}'.", param="video_id", code="video_not_found")
    return v


def stored_input(storage: Storage, key: str, video_id: str, gone: InvalidRequest | None = None) -> bytes:
    """A video's stored input; `gone` is the refusal when it is no longer there (default: for a retry)."""
    if storage.size(key) is None:
        raise gone or InvalidRequest(f"The input of video {video_id} is no longer stored, so it cannot be "
                                     "tried again.", param="video_id", code="video_not_retryable")
    with storage.open(key) as f:
        return f.read()


class VideoQueries:
    """Args:
        sessions: the database.
        storage: where a video's files are (content, a first frame).
        settings: the operator's poll interval.
    """

    def __init__(self, sessions: sessionmaker[Session], storage: Storage, settings: Settings):
        self.sessions, self.storage, self.settings = sessions, storage, settings

    def retrieve(self, who: Principal, video_id: str) -> VideoObject:
        with self.sessions() as s:
            v = viewable(s, who, video_id)
            return to_video_object(v, owner_view=v.owner_id == who.user_id)

    def poll_after_ms(self, video_id: str) -> int:
        """How long a client should wait before polling again: a quarter of the estimated time left,
        between 100 ms and the operator's setting, so short jobs aren't delayed by a fixed 1 s poll."""
        ceiling = self.settings.poll_after_ms
        with self.sessions() as s:
            v = s.query(Video.started_at, Video.progress).filter(Video.id == video_id).first()
        if v is None or v.started_at is None or not v.progress:
            return min(ceiling, 250)
        elapsed = time.time() - v.started_at
        remaining = elapsed * (100 - v.progress) / v.progress
        return int(max(100, min(ceiling, remaining * 1000 / 4)))

    def list(self, who: Principal, after: str | None, limit: int, order: str) -> VideoList:
        with self.sessions() as s:
            rows, more = repo.list_videos(s, who.user_id, after=after, limit=limit, order=order)
            data = [to_video_object(v, owner_view=True) for v in rows]
        return cursor_page(VideoList, data, more)

    def content(self, who: Principal, video_id: str, variant: str, token: str | None = None) -> StoredFile:
        with self.sessions() as s:
            v = viewable(s, who, video_id, token)
            if v.status != "completed":
                raise InvalidRequest(f"Video {video_id} is {v.status}; content is available once it is completed.",
                                     param="video_id", code="video_not_ready")
            if v.expires_at is not None and v.expires_at <= now():
                raise Gone(f"The assets of video {video_id} expired at {v.expires_at} under this server's "
                           "retention policy.", param="video_id", code="video_expired")
            # Taken down by a cameo's owner: 410 with the reason.
            if (reason := cameo_consent.takedown_reason(s, video_id)) is not None:
                raise Gone(reason, param="video_id", code="video_taken_down")
            key = published_key(v, variant)
        name, media_type = VARIANTS[variant]
        size = self.storage.size(key)
        if size is None:
            raise NotFound(f"The {variant} of video {video_id} is no longer stored.", param="variant",
                           code="content_not_found")
        return StoredFile(self.storage, key, size, media_type, filename=f"{video_id}-{name}")

    def view(self, who: Principal, video_id: str) -> SharedVideo:
        """A video its owner, or anyone it is shared with everyone on this server, opens by id."""
        with self.sessions() as s:
            v = viewable(s, who, video_id)
            mine = v.owner_id == who.user_id
            owner = who.user_name if mine else s.scalar(select(User.name).where(User.id == v.owner_id)) or ""
            return SharedVideo(to_video_object(v, owner_view=mine), owner, v.share_token, mine)

    def shared(self, who: Principal, token: str) -> SharedVideo:
        """The video behind a share link; a private video, a deleted one and a guess all answer the same 404."""
        with self.sessions() as s:
            v = s.scalar(select(Video).where(Video.share_token == token, Video.deleted_at.is_(None))) \
                if isinstance(token, str) and 0 < len(token) <= 64 else None
            if v is None or not may_view(v, who.user_id, token):
                raise NotFound("No shared video found at this link.", param="token", code="video_not_found")
            owner = s.scalar(select(User.name).where(User.id == v.owner_id)) or ""
            mine = v.owner_id == who.user_id
            return SharedVideo(to_video_object(v, owner_view=mine), owner, v.share_token, mine)

    def feed(self, who: Principal, after: str | None, limit: int) -> tuple[list[SharedVideo], bool]:
        """Finished videos shared with everyone on this server, newest first."""
        with self.sessions() as s:
            rows, more = repo.feed_videos(s, after=after, limit=limit)
            return [SharedVideo(to_video_object(v, owner_view=v.owner_id == who.user_id), name, v.share_token,
                                v.owner_id == who.user_id) for v, name in rows], more

    def lineage(self, who: Principal, video_id: str, token: str | None = None) -> Lineage:
        """A video's source and the remixes, extensions and edits made from it that the viewer may see."""
        with self.sessions() as s:
            v = viewable(s, who, video_id, token)
            source, hidden = None, False
            src_id = v.remixed_from_video_id or v.extended_from_video_id or v.edited_from_video_id
            if src_id:
                src = s.scalar(select(Video).where(Video.id == src_id))
                if src is not None and may_view(src, who.user_id):
                    source = to_video_object(src, owner_view=src.owner_id == who.user_id)
                else:
                    hidden = True
            derived = [to_video_object(d, owner_view=d.owner_id == who.user_id)
                       for d in repo.derived_videos(s, v.id) if may_view(d, who.user_id)]
        return Lineage(source, hidden, derived)

    def search(self, who: Principal, f: VideoFilter, after: str | None, limit: int, order: str) -> VideoList:
        """The caller's own videos matching `f` (prompt text, status, model, created between two times)."""
        if f.status is not None and f.status not in ("queued", "in_progress", "completed", "failed"):
            raise InvalidRequest(f"Unknown status '{f.status}'.", param="status", code="invalid_value")
        if f.text is not None and len(f.text) > 500:
            raise InvalidRequest("The search text is longer than 500 characters.", param="q", code="invalid_value")
        with self.sessions() as s:
            rows, more = repo.search_videos(s, who.user_id, f, after=after, limit=limit, order=order)
            data = [to_video_object(v, owner_view=True) for v in rows]
        return cursor_page(VideoList, data, more)

    def models_used(self, who: Principal) -> list[str]:
        with self.sessions() as s:
            return repo.video_models(s, who.user_id)

    def batches_used(self, who: Principal) -> list[str]:
        with self.sessions() as s:
            return repo.video_batches(s, who.user_id)

    def settings_of(self, who: Principal, video_id: str, token: str | None = None) -> dict[str, Any]:
        """A viewable video's generation settings as create fields (to start a new video from them)."""
        with self.sessions() as s:
            v = viewable(s, who, video_id, token)
            params = v.params or {}
            out: dict[str, Any] = {"prompt": v.prompt, "model": v.model, "size": v.size, "seconds": v.seconds}
            if v.kind == "extend" and isinstance(params.get("extend_seconds"), str):
                out["seconds"] = params["extend_seconds"]  # a stitched total is not something to generate anew
            for k in GENERATION_KEYS:
                if params.get(k) is not None and isinstance(params[k], (str, int, float)):
                    out[k] = params[k]
            if v.owner_id == who.user_id:  # characters and uploaded images are their owner's alone to reuse
                if isinstance(chars := params.get("characters"), list) and chars:
                    out["characters"] = [{"id": str(c)} for c in chars]
                if v.input_key and v.kind == "generate" and params.get("first_frame_from") != "characters" \
                        and "storyboard" not in params:
                    out["first_frame_of"] = v.id
        return out

    def first_frame_of(self, who: Principal, video_id: str) -> bytes:
        """The image one of the caller's own videos was started from, to start a new one from it."""
        with self.sessions() as s:
            key = owned(s, who, video_id).input_key
        gone = InvalidRequest(f"Video {video_id} was not started from an image that is still stored.",
                              param="input_reference", code="first_frame_unavailable")
        if key is None:
            raise gone
        return stored_input(self.storage, key, video_id, gone)
