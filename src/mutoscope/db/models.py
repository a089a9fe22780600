"""Tables. Ids are opaque prefixed strings (video_…, file-…); `seq` gives a stable order."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy import false, true as sa_true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def now() -> int:
    return int(time.time())


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("user_"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="member")  # owner | admin | member
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # None: the operator's default plan (Settings.default_plan).
    plan: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Service sunset: when this user was first told the service is ending (and offered an export).
    export_offered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # People who sign in to the web app with a password (accounts/people.py); both None for accounts
    # that only ever use API keys. The email is stored lower-cased, the password only as an argon2id hash.
    email: Mapped[str | None] = mapped_column(String(320), unique=True, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("key_"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(32))
    # sha256 of the whole key: keys are 256-bit random tokens, so a fast hash is enough.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


# People in the browser: invites, server-side sessions, sign-in failures (accounts/people.py).

class Invite(Base):
    """A one-time sign-up link. Only the token's SHA-256 is stored; the link is shown once to its maker."""

    __tablename__ = "invites"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("invite_"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # What the maker filled in: the email is binding (the account gets it), the name only a suggestion.
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    role: Mapped[str] = mapped_column(String(20), default="member")
    plan: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    used_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Set, the link sets a new password for this existing person instead of making an account (there is
    # no mail server to send a reset to: the owner or an admin hands the link over).
    for_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True,
                                                    index=True)


class WebSession(Base):
    """A signed-in browser. The cookie holds a random token; this row holds only its SHA-256, so a copy
    of the database signs nobody in. A session started with an API key names it: revoking the key ends it."""

    __tablename__ = "web_sessions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("websession_"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    last_seen_at: Mapped[int] = mapped_column(BigInteger, default=now)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SignInFailure(Base):
    """One failed password sign-in, counted per account and per client address over a sliding window.
    In the database so that every process behind one database counts the same attempts."""

    __tablename__ = "sign_in_failures"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(100), index=True)  # "user:<id>", "login:<sha256>", "ip:<addr>"
    at: Mapped[float] = mapped_column(Float, index=True)


class File(Base):
    __tablename__ = "files"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("file-"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(40))
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    bytes: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Video(Base):
    __tablename__ = "videos"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("video_"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="generate")  # generate|remix|extend|edit
    model: Mapped[str] = mapped_column(String(200))  # the public name the caller asked for
    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    # What the running job is doing in words (jobs/progress.py): phase, step of steps, seconds left.
    progress_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    prompt: Mapped[str] = mapped_column(Text)
    size: Mapped[str] = mapped_column(String(20))
    seconds: Mapped[str] = mapped_column(String(10))
    # What the caller asked for beyond OpenAI's fields (seed, steps, guidance, negative prompt)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the engine actually used; filled when the job completes.
    resolved: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    input_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    remixed_from_video_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    extended_from_video_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    edited_from_video_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A running job is held by one worker until its lease expires; the worker renews it while it runs,
    # and any runner may take back a job whose lease ran out (videos/transitions.py).
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Which attempt's files are the published ones (None: files written before attempts had their own keys).
    assets_attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Sharing (`may_view` in videos/queries.py decides who may see and remix): private (the owner only),
    # unlisted (anyone signed in here who has the link with `share_token`), everyone (also listed in the feed).
    visibility: Mapped[str] = mapped_column(String(20), default="private", server_default="private")
    # The secret of the /s/<token> link; made when a video is first shared, dropped when it goes private.
    share_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A line of a batch (batches/): which batch and the line's custom_id, written with the row so that a
    # batch's progress is read from the queue itself; such jobs wait behind the plan's interactive ones.
    batch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    batch_custom_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A public link (videos/public_links.py): its random id, and when it stops working (None: never).
    public_link_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    public_link_expires_at: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_videos_queue", "status", "priority", "seq"),
                      Index("ix_videos_lease", "status", "lease_expires_at"),
                      Index("ix_videos_feed", "visibility", "seq"),
                      Index("ux_videos_share_token", "share_token", unique=True),
                      Index("ux_videos_batch_line", "batch_id", "batch_custom_id", unique=True),
                      Index("ux_videos_public_link_id", "public_link_id", unique=True))


# Plans, usage and lifecycle.

class UsagePeriod(Base):
    """One row per user and month: the counters that admission updates atomically."""

    __tablename__ = "usage_periods"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM (UTC)
    spent: Mapped[float] = mapped_column(Float, default=0.0)
    reserved: Mapped[float] = mapped_column(Float, default=0.0)
    active: Mapped[int] = mapped_column(Integer, default=0)  # queued + running jobs


class UsageRecord(Base):
    """What one job reserved, and whether it was charged or refunded."""

    __tablename__ = "usage_records"

    video_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    period: Mapped[str] = mapped_column(String(7))
    model: Mapped[str] = mapped_column(String(200))
    seconds: Mapped[float] = mapped_column(Float)
    amount: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10), default="reserved")  # reserved | charged | refunded
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    settled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Whether the job holds one of the plan's concurrent slots (a batch's lines wait in the queue without one).
    holds_slot: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())


class ModelLifecycle(Base):
    """An operator's deprecation schedule for a model or alias."""

    __tablename__ = "model_lifecycle"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    deprecated_at: Mapped[int] = mapped_column(BigInteger)
    shutdown_at: Mapped[int] = mapped_column(BigInteger)
    replacement: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ServiceSchedule(Base):
    """The end of the whole service, in phases. At most one row (id = 1)."""

    __tablename__ = "service_schedule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_at: Mapped[int] = mapped_column(BigInteger)
    no_new_generations_at: Mapped[int] = mapped_column(BigInteger)
    export_only_at: Mapped[int] = mapped_column(BigInteger)
    deletion_at: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text, default="")


# Webhooks.

class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("we_"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list] = mapped_column(JSON)
    # The signing key has to be usable for HMAC, so unlike API keys it cannot be hashed: it is sealed
    # (mutoscope.sealing, a key outside the database) with this row's id as associated data.
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    updated_at: Mapped[int | None] = mapped_column(BigInteger, default=now, nullable=True)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class WebhookDelivery(Base):
    """The outbox: one row per event and endpoint, sent and retried by the deliverer."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the event id (webhook-id header)
    endpoint_id: Mapped[str] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, index=True)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When the event was queued (None for rows from before it was recorded): the order of the delivery log.
    created_at: Mapped[int | None] = mapped_column(BigInteger, default=now, nullable=True)

    __table_args__ = (Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),)


class WebhookAttempt(Base):
    """One try at sending an outbox event: what the receiver answered and when (shown in the web app)."""

    __tablename__ = "webhook_attempts"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(64), index=True)
    endpoint_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[float] = mapped_column(Float)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the receiver's HTTP status
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # None: delivered
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


# Exports.

class Export(Base):
    """An export job: progress and a resumable checkpoint live in the row, so it survives a restart."""

    __tablename__ = "exports"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("export_"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued|in_progress|completed|failed
    progress: Mapped[int] = mapped_column(Integer, default=0)
    video_count: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The video ids snapshotted at creation, the videos already written, the per-file checksums and
    # the length of the archive at its last valid checkpoint (see exports/writer.py).
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    completed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Import(Base):
    """One archive imported into one account; (owner, sha256) makes a second import a no-op."""

    __tablename__ = "imports"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("import_"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    format_version: Mapped[int] = mapped_column(Integer)
    video_count: Mapped[int] = mapped_column(Integer, default=0)
    id_map: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # archive id -> id here
    # One entry per archive cameo: its id here, its handle, and the grants and uses it left behind.
    cameos: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)

    __table_args__ = (Index("ux_imports_owner_sha", "owner_id", "sha256", unique=True),)


class ImportedVideo(Base):
    """Where an imported video came from: an archive ("archive:<sha256>") or a migrated service (its base URL).

    (owner, source, source_id) is unique, which is what makes `mutoscope migrate` resumable and idempotent.
    """

    __tablename__ = "imported_videos"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(500))
    source_id: Mapped[str] = mapped_column(String(200))
    video_id: Mapped[str] = mapped_column(String(64))
    # What the source said about the video, verbatim (fields we have no column for stay here).
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)

    __table_args__ = (Index("ux_imported_videos_source", "owner_id", "source", "source_id", unique=True),)


# Cameos.
# Consent-gated likeness. Biometrics (embeddings) live only on `cameos` and are purged after a
# cameo is deleted; the audit log holds ids and hashes, never biometrics.


class CameoChallenge(Base):
    __tablename__ = "cameo_challenges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("challenge_"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digits: Mapped[str] = mapped_column(String(16))
    turns: Mapped[str] = mapped_column(String(64))  # "left,right"
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Cameo(Base):
    __tablename__ = "cameos"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("cameo_"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    handle: Mapped[str] = mapped_column(String(40), unique=True)
    # verifying|active|failed|deleted, or unverified: imported, usable by nobody until its person verifies live here
    status: Mapped[str] = mapped_column(String(20), default="verifying")
    policy: Mapped[str] = mapped_column(String(20), default="only_me")  # only_me|approved|everyone
    preferences: Mapped[str | None] = mapped_column(Text, nullable=True)
    blocked_terms: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    challenge_id: Mapped[str] = mapped_column(String(64))
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # check names + scores
    face_embedding: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    voice_embedding: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    upload_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    keep_upload: Mapped[bool] = mapped_column(Boolean, default=False)
    # The owner's separate consent to put their voice in videos (off by default), and the short clean voice
    # sample kept from the verification recording only while it is given.
    voice_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    voice_sample_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    verified_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    purge_after: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    purged_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # When the cameo came in from an archive; a failed live verification of it leaves it `unverified`.
    imported_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CameoGrant(Base):
    __tablename__ = "cameo_grants"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cameo_id: Mapped[str] = mapped_column(ForeignKey("cameos.id", ondelete="CASCADE"), index=True)
    grantee_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ux_cameo_grants_pair", "cameo_id", "grantee_id", unique=True),)


class CameoUse(Base):
    """A video that uses a cameo: what its owner sees, and where a takedown is recorded."""

    __tablename__ = "cameo_uses"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cameo_id: Mapped[str] = mapped_column(ForeignKey("cameos.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64))  # who made the video
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    taken_down_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    takedown_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ux_cameo_uses_pair", "cameo_id", "video_id", unique=True),)


class CameoAudit(Base):
    """Append-only, hash-chained: hash = sha256(prev_hash + canonical row). A unique prev_hash keeps it a chain."""

    __tablename__ = "cameo_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger, default=now)
    action: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)  # the cameo's owner
    cameo_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # video, grantee, challenge
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # ids, hashes, codes only
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


# Characters.
# OpenAI's video characters (POST /v1/videos/characters). A clip without a face makes a character its
# owner may use; a clip with a face is accepted only when the face is the owner's own verified cameo, and
# the character is then bound to that cameo's consent (deleting the cameo disables the character).


class Character(Base):
    __tablename__ = "characters"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("char_"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The cameo whose face the clip shows (its consent governs every use), or None for a faceless clip.
    cameo_id: Mapped[str | None] = mapped_column(ForeignKey("cameos.id", ondelete="CASCADE"), nullable=True,
                                                 index=True)
    reference_key: Mapped[str | None] = mapped_column(String(255), nullable=True)  # one frame, PNG
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)


# Idempotent creates and the sealing-key canary.

class IdempotencyKey(Base):
    """The first answer to a POST sent with `Idempotency-Key`, per account, replayed to a retry of the same
    request for 24 h (api/idempotency.py). `status_code` is None while the first request is still running."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner_id", "key", name="uq_idempotency_keys_owner_key"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the method, path and body
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    headers: Mapped[list | None] = mapped_column(JSON, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now, index=True)


class SealCanary(Base):
    """One value sealed with the sealing key of the first process to start: every later process must open
    it, or it runs with another `MUTOSCOPE_SECRET_KEY` and could read none of the secrets (sealing.py)."""

    __tablename__ = "seal_canary"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)


class Batch(Base):
    """A batch of `/v1/videos` requests (batches/): its input file and status. Its lines' progress is not kept
    here but read from their videos and `batch_errors`, so nothing of it lives only in a process's memory."""

    __tablename__ = "batches"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id("batch_"))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="validating")
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(10))
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the batch failed as a whole (every line refused): OpenAI's `errors.data`.
    errors: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    output_file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    in_progress_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finalizing_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    completed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expired_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cancelling_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_batches_status", "status"),)


class BatchError(Base):
    """A line of a batch that was refused when it was admitted, with the answer a single request would have had."""

    __tablename__ = "batch_errors"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(64), index=True)
    line: Mapped[int] = mapped_column(Integer)
    custom_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status_code: Mapped[int] = mapped_column(Integer)
    error: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ux_batch_errors_line", "batch_id", "line", unique=True),)
