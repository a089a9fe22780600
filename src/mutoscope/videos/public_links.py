"""Public links: a finished video anyone may watch without signing in, when the operator allows them.

Off unless `MUTOSCOPE_PUBLIC_LINKS=true`. The owner makes one link per video (optionally expiring) and can
revoke it; a new link replaces the old one. The link is `<link id>.<signature>`: the id is random and stored
on the row (revoking clears it), the signature an HMAC over the video's id, the link id and the expiry, with a
key only the server holds, so a link cannot be forged or moved to another video and an expiry cannot be edited.
What the link opens is the published MP4 itself, with its visible watermark and C2PA manifest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import Video, now
from mutoscope.errors import InvalidRequest, NotFound, PermissionDenied

MAX_DAYS = 365


@dataclass(frozen=True)
class PublicLink:
    path: str  # /p/<token>
    expires_at: int | None


def _signature(key: bytes, video_id: str, link_id: str, expires_at: int | None) -> str:
    mac = hmac.new(key, f"{video_id}\n{link_id}\n{expires_at or 0}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


class PublicLinks:
    def __init__(self, sessions: sessionmaker[Session], secret: str, enabled: bool):
        self.sessions = sessions
        self.enabled = enabled
        self._key = hashlib.sha256(b"mutoscope public links\n" + secret.encode()).digest()

    def _check_enabled(self) -> None:
        if not self.enabled:
            raise PermissionDenied("Public links are off on this server; its operator can turn them on with "
                                   "MUTOSCOPE_PUBLIC_LINKS=true.", code="public_links_disabled")

    def current(self, v: Video) -> PublicLink | None:
        """The video's live link (for its owner's page); None when it has none, it expired, or links are off."""
        if not self.enabled or not v.public_link_id:
            return None
        if v.public_link_expires_at is not None and v.public_link_expires_at <= now():
            return None
        sig = _signature(self._key, v.id, v.public_link_id, v.public_link_expires_at)
        return PublicLink(f"/p/{v.public_link_id}.{sig}", v.public_link_expires_at)

    def create(self, owner_id: str, video_id: str, days: float | None) -> PublicLink:
        self._check_enabled()
        if days is not None and not (0 < days <= MAX_DAYS):
            raise InvalidRequest(f"A public link lasts from a moment up to {MAX_DAYS} days, or has no expiry.",
                                 param="days", code="invalid_days")
        with self.sessions() as s:
            v = s.scalar(select(Video).where(Video.id == video_id, Video.owner_id == owner_id,
                                             Video.deleted_at.is_(None)))
            if v is None:
                raise NotFound(f"No video found with id '{video_id}'.", param="video_id", code="video_not_found")
            if v.status != "completed":
                raise InvalidRequest("Only a finished video can have a public link.", param="video_id",
                                     code="video_not_ready")
            v.public_link_id = secrets.token_urlsafe(16)
            v.public_link_expires_at = now() + int(days * 86400) if days else None
            s.commit()
            return self.current(v)  # type: ignore[return-value]

    def revoke(self, owner_id: str, video_id: str) -> None:
        with self.sessions() as s:
            s.execute(update(Video).where(Video.id == video_id, Video.owner_id == owner_id)
                      .values(public_link_id=None, public_link_expires_at=None))
            s.commit()

    def resolve(self, token: str) -> Video | None:
        """The video a link opens, or None for anything else (off, malformed, forged, revoked, expired,
        deleted): every refusal is the same, so a link says nothing about why it does not work."""
        if not self.enabled or not isinstance(token, str) or len(token) > 128 or token.count(".") != 1:
            return None
        link_id, sig = token.split(".")
        if not link_id or not sig:
            return None
        with self.sessions() as s:
            v = s.scalar(select(Video).where(Video.public_link_id == link_id, Video.deleted_at.is_(None)))
            if v is None or v.status != "completed":
                return None
            if v.public_link_expires_at is not None and v.public_link_expires_at <= now():
                return None
            if not hmac.compare_digest(sig, _signature(self._key, v.id, link_id, v.public_link_expires_at)):
                return None
            s.expunge(v)
            return v


class RateLimit:
    """At most `limit` requests per `window` seconds per key (a client address), in this process. A video
    player makes a few range requests per view, so the limit counts requests, not views."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float | None:
        """None when allowed; else the seconds until it would be."""
        t = time.monotonic()
        with self._lock:
            if len(self._hits) > 10_000:  # bounded memory: forget quiet clients
                self._hits = {k: q for k, q in self._hits.items() if q and q[-1] > t - self.window}
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= t - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return q[0] + self.window - t
            q.append(t)
            return None
