"""Cameo records over the database and storage: challenges, verification jobs, policy, grants, uses, deletion.

Held by `CameoService` (`service.py`), the one object the front ends call, which also hands pages the
rows they list (`records`). Every change is audited in the same transaction.
Verification runs on a small thread pool in this process (one clip at a time: it is CPU-heavy and
shares the machine with the video worker); `run_verification` is safe to run twice.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import Cameo, CameoAudit, CameoChallenge, CameoGrant, CameoUse, User, Video, now
from mutoscope.errors import Conflict, InvalidRequest, NotFound
from mutoscope.likeness import audit, consent
from mutoscope.likeness.challenge import DEFAULT_TTL_S, Challenge, new_challenge
from mutoscope.likeness.portable import IMPORTED
from mutoscope.likeness.runtime import LikenessUnavailable, install_hint
from mutoscope.storage import Storage
from mutoscope.storage.keys import cameo_frame_key, cameo_prefix, upload_key, voice_sample_key

logger = logging.getLogger(__name__)
PURGE_GRACE_DAYS = 30




@dataclass
class LikenessOptions:
    """Args:
        whisper_model: faster-whisper model directory (None: $MUTOSCOPE_LIKENESS_WHISPER_MODEL or
            <weights_dir>/faster-whisper).
        weights_dir: the server's weights folder.
        purge_grace_days: how long a deleted cameo's biometrics are kept before they are purged.
    """

    whisper_model: str | None = None
    weights_dir: Path | None = None
    purge_grace_days: float = PURGE_GRACE_DAYS


def ensure_installed(options: LikenessOptions) -> Path:
    """Fail fast (before accepting an upload) when the analyzers are missing; returns the whisper dir."""
    for module, package in (("dlib", "dlib-bin"), ("face_recognition_models", "face-recognition-models"),
                            ("silero_vad", "silero-vad"), ("faster_whisper", "faster-whisper"),
                            ("resemblyzer", "resemblyzer")):
        _find(module, package)
    from mutoscope.likeness.voice import whisper_model_path

    return whisper_model_path(options.whisper_model, options.weights_dir)


def _find(module: str, package: str) -> None:
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:
        found = False
    if not found:
        raise LikenessUnavailable(f"Cameo verification needs the '{package}' package, which is not installed on "
                                  f"this server. The operator can add it with: {install_hint(package)}")


class CameoRecords:
    def __init__(self, sessions: sessionmaker[Session], storage: Storage, options: LikenessOptions | None = None,
                 fail_video: Callable[[Session, str, str, str], bool] | None = None):
        """`fail_video(session, video_id, code, message)` fails a queued video whose consent was withdrawn,
        refunded and with its event (the videos room's transition; injected so this room stays below it)."""
        self.sessions, self.storage = sessions, storage
        self.options = options or LikenessOptions()
        self._fail_video = fail_video
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cameo-verify")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # Transactions with an audit row; retried when another writer took the chain's tail.
    def _tx(self, fn: Callable[[Session], Any]) -> Any:
        for attempt in range(5):
            with self.sessions() as s:
                try:
                    out = fn(s)
                    s.commit()
                    return out
                except IntegrityError:
                    s.rollback()
                    if attempt == 4:
                        raise
        raise AssertionError("unreachable")

    def _fail_all(self, video_ids: list[str]) -> None:
        if self._fail_video is None or not video_ids:
            return
        with self.sessions() as s:
            for vid in dict.fromkeys(video_ids):
                self._fail_video(s, vid, consent.DENIED, consent.WITHDRAWN_MESSAGE)

    def new_challenge(self, user_id: str) -> CameoChallenge:
        c = new_challenge()
        with self.sessions() as s:
            row = CameoChallenge(user_id=user_id, digits=c.digits, turns=",".join(c.turns),
                                 expires_at=now() + DEFAULT_TTL_S)
            s.add(row)
            s.commit()
            s.refresh(row)
            s.expunge(row)
            return row

    def create(self, user_id: str, handle: str, challenge_id: str, video: bytes, keep_upload: bool = False,
               voice_consent: bool = False) -> Cameo:
        handle = handle.strip().lstrip("@").lower()
        if not consent.HANDLE.match(handle):
            raise InvalidRequest("handle must be 3-30 characters: a-z, 0-9, '_' and '.', not starting or ending "
                                 "with '.'.", param="handle", code="invalid_handle")
        ensure_installed(self.options)
        self.purge_due()

        def tx(s: Session) -> Cameo:
            ch = s.get(CameoChallenge, challenge_id)
            if ch is None or ch.user_id != user_id:
                raise InvalidRequest(f"No challenge found with id '{challenge_id}'. Get one with POST "
                                     "/v1/cameos/challenges.", param="challenge_id", code="challenge_not_found")
            if ch.used_at is not None or ch.expires_at < now():
                raise InvalidRequest("This challenge was already used or has expired; get a new one and record "
                                     "again.", param="challenge_id", code="challenge_expired")
            held = s.scalar(select(Cameo).where(Cameo.handle == handle))
            if held is not None and not (held.owner_id == user_id and held.status == IMPORTED
                                         and held.deleted_at is None):
                raise Conflict(f"The handle @{handle} is taken.", param="handle", code="handle_taken")
            ch.used_at = now()
            if held is not None:
                # An imported cameo's own live verification: the same cameo, its consent settings kept, and
                # (like any cameo) usable only once this recording passes.
                cameo = held
                cameo.challenge_id, cameo.status, cameo.keep_upload = ch.id, "verifying", keep_upload
                # Voice consent is the recorder's answer now, never the archive's: an archive is a file anyone
                # could have written, and a "no" given at this recording must hold.
                cameo.voice_consent = voice_consent
            else:
                cameo = Cameo(owner_id=user_id, handle=handle, challenge_id=ch.id, status="verifying",
                              keep_upload=keep_upload, voice_consent=voice_consent)
                s.add(cameo)
                s.flush()
            cameo.upload_key = upload_key(cameo.id)
            audit.append(s, "create", actor_id=user_id, owner_id=user_id, cameo_id=cameo.id, subject_id=ch.id,
                         detail={"upload_sha256": hashlib.sha256(video).hexdigest(),
                                 **({"imported": True} if held is not None else {})})
            return cameo

        cameo = self._tx(tx)
        self.storage.put_bytes(cameo.upload_key, video)
        self.submit(cameo.id)
        return self.get(user_id, cameo.id)

    def submit(self, cameo_id: str) -> None:
        self._pool.submit(self._run_safely, cameo_id)

    def _run_safely(self, cameo_id: str) -> None:
        try:
            self.run_verification(cameo_id)
        except Exception:  # the row must never stay "verifying"
            logger.exception("cameo %s verification crashed", cameo_id)
            with self.sessions() as s:
                c = s.scalar(select(Cameo).where(Cameo.id == cameo_id))
                if c is not None and c.status == "verifying":
                    c.status = IMPORTED if c.imported_at is not None else "failed"
                    c.verification = {"passed": False, "checks": [], "error": "internal_error"}
                    s.commit()

    def run_verification(self, cameo_id: str) -> None:
        from mutoscope.likeness.face import shared_analyzer as faces
        from mutoscope.likeness.verify import verify_clip
        from mutoscope.likeness.voice import shared_analyzer as speech

        with self.sessions() as s:
            c = s.scalar(select(Cameo).where(Cameo.id == cameo_id))
            if c is None or c.status != "verifying":
                return
            ch = s.get(CameoChallenge, c.challenge_id)
            challenge = Challenge(digits=ch.digits, turns=tuple(ch.turns.split(",")))
            key, keep, voice = c.upload_key, c.keep_upload, c.voice_consent
        whisper = ensure_installed(self.options)
        with self.storage.open(key) as f:
            data = f.read()
        report = verify_clip(io.BytesIO(data), challenge, faces=faces(), speech=speech(whisper))
        refs = []
        if report.passed:
            from PIL import Image

            for i, frame in enumerate(report.reference_frames):
                buf = io.BytesIO()
                Image.fromarray(frame).save(buf, format="JPEG", quality=90)
                self.storage.put_bytes(cameo_frame_key(cameo_id, i), buf.getvalue())
                refs.append(cameo_frame_key(cameo_id, i))
        sample = self._keep_voice(cameo_id, data, speech) if report.passed and voice else None

        def tx(s: Session) -> None:
            c = s.scalar(select(Cameo).where(Cameo.id == cameo_id))
            if c is None or c.status != "verifying":
                return
            c.verification = report.as_dict()
            c.verified_at = now()
            if report.passed:
                c.status = "active"
                c.face_embedding, c.voice_embedding = report.face_embedding, report.voice_embedding
                c.voice_sample_key = sample
            else:
                # An imported cameo stays waiting for a verification that passes, under its handle.
                c.status = IMPORTED if c.imported_at is not None else "failed"
            audit.append(s, "verify" if report.passed else "verify_failed", actor_id=c.owner_id,
                         owner_id=c.owner_id, cameo_id=c.id,
                         detail={"failed": report.failed, "references": len(refs)})

        self._tx(tx)
        if not keep:  # raw uploads are deleted after verification unless the owner keeps them
            self.storage.delete_prefix(key)

    def _keep_voice(self, cameo_id: str, recording: bytes, speech: Callable[..., Any]) -> str | None:
        """Store the speech of the verification recording (the same voice-activity check as verification)
        as the cameo's voice sample; its key, or None when the recording holds too little speech."""
        from mutoscope.likeness.conditioning import voice_sample
        from mutoscope.likeness.voice import RATE, to_mono_16k
        from mutoscope.media import read_audio
        from mutoscope.media.sound import wav_bytes

        sound = read_audio(io.BytesIO(recording))
        if sound is None:
            return None
        wav = to_mono_16k(*sound)
        analyzer = speech(ensure_installed(self.options))
        sample = voice_sample(wav, analyzer.speech_segments(wav))
        if sample is None:
            return None
        self.storage.put_bytes(voice_sample_key(cameo_id), wav_bytes(sample[None, :], RATE))
        return voice_sample_key(cameo_id)

    def set_voice_consent(self, user_id: str, cameo_id: str, given: bool) -> Cameo:
        """The owner's voice consent. Giving it keeps a voice sample from the verification recording, which
        must still be stored (`keep_upload`, or consent given when recording); withdrawing it deletes the
        sample at once. Audited either way."""
        from mutoscope.likeness.voice import shared_analyzer as speech

        with self.sessions() as s:
            c = self._own(s, user_id, cameo_id)
            status, had = c.status, c.voice_sample_key
            upload = c.upload_key if c.keep_upload else None  # otherwise deleted after verification
        key = had
        if given and had is None:
            recording = None
            if status == "active" and upload is not None:
                try:
                    with self.storage.open(upload) as f:
                        recording = f.read()
                except (FileNotFoundError, KeyError, OSError):
                    recording = None
            if recording is None:
                raise InvalidRequest("Voice consent needs the verification recording, which was not kept: record "
                                     "the cameo again with voice_consent=true (or keep_upload=true).",
                                     param="voice_consent", code="voice_sample_unavailable")
            key = self._keep_voice(cameo_id, recording, speech)
            if key is None:
                raise InvalidRequest("The verification recording holds too little clear speech for a voice sample.",
                                     param="voice_consent", code="voice_sample_unavailable")
        if not given:
            self.storage.delete_prefix(voice_sample_key(cameo_id))
            key = None

        def tx(s: Session) -> Cameo:
            c = self._own(s, user_id, cameo_id)
            c.voice_consent, c.voice_sample_key = given, key
            audit.append(s, "voice_consent", actor_id=user_id, owner_id=user_id, cameo_id=c.id,
                         detail={"given": given, "sample": key is not None})
            s.flush()
            s.expunge(c)
            return c

        return self._tx(tx)

    def _own(self, s: Session, user_id: str, cameo_id: str) -> Cameo:
        c = s.scalar(select(Cameo).where(Cameo.id == cameo_id, Cameo.owner_id == user_id,
                                         Cameo.deleted_at.is_(None)))
        if c is None:
            raise NotFound(f"No cameo found with id '{cameo_id}'.", param="cameo_id", code="cameo_not_found")
        return c

    def get(self, user_id: str, cameo_id: str) -> Cameo:
        with self.sessions() as s:
            c = self._own(s, user_id, cameo_id)
            s.expunge(c)
            return c

    def list(self, user_id: str) -> list[Cameo]:
        with self.sessions() as s:
            rows = s.scalars(select(Cameo).where(Cameo.owner_id == user_id, Cameo.deleted_at.is_(None))
                             .order_by(Cameo.seq.desc())).all()
            for r in rows:
                s.expunge(r)
            return list(rows)

    def update(self, user_id: str, cameo_id: str, *, policy: str | None = None, preferences: str | None = None,
               blocked_terms: list[str] | None = None) -> Cameo:
        if policy is not None and policy not in consent.POLICIES:
            raise InvalidRequest(f"policy must be one of {', '.join(consent.POLICIES)}.", param="policy")

        failed: list[str] = []

        def tx(s: Session) -> Cameo:
            failed.clear()
            c = self._own(s, user_id, cameo_id)
            before = c.policy
            if policy is not None:
                c.policy = policy
            if preferences is not None:
                c.preferences = preferences
            if blocked_terms is not None:
                c.blocked_terms = [t.strip() for t in blocked_terms if t.strip()]
            audit.append(s, "policy", actor_id=user_id, owner_id=user_id, cameo_id=c.id,
                         detail={"policy": c.policy, "was": before,
                                 "preferences_sha256": audit.digest(c.preferences or ""),
                                 "blocked_terms": len(c.blocked_terms or [])})
            if c.policy != before:
                for use in s.scalars(select(CameoUse).where(CameoUse.cameo_id == c.id)).all():
                    if use.user_id != user_id and not consent.may_use(s, c, use.user_id):
                        failed.extend(consent.queued_videos(s, c.id, use.user_id))
            s.flush()
            s.expunge(c)
            return c

        out = self._tx(tx)
        self._fail_all(failed)
        return out

    def _user(self, s: Session, name_or_id: str) -> User:
        """A person by id, user name, or the email they sign in with (stored lower-cased)."""
        u = s.scalar(select(User).where((User.id == name_or_id) | (User.name == name_or_id)
                                        | (User.email == name_or_id.strip().lower())))
        if u is None:
            raise NotFound(f"No user '{name_or_id}'.", param="user", code="user_not_found")
        return u

    def grant(self, user_id: str, cameo_id: str, grantee: str) -> CameoGrant:
        def tx(s: Session) -> CameoGrant:
            c = self._own(s, user_id, cameo_id)
            u = self._user(s, grantee)
            g = s.scalar(select(CameoGrant).where(CameoGrant.cameo_id == c.id, CameoGrant.grantee_id == u.id))
            if g is None:
                g = CameoGrant(cameo_id=c.id, grantee_id=u.id)
                s.add(g)
            g.revoked_at, g.created_at = None, now()
            audit.append(s, "grant", actor_id=user_id, owner_id=user_id, cameo_id=c.id, subject_id=u.id)
            s.flush()
            s.expunge(g)
            return g

        return self._tx(tx)

    def revoke(self, user_id: str, cameo_id: str, grantee: str) -> tuple[CameoGrant, list[str]]:
        def tx(s: Session):
            c = self._own(s, user_id, cameo_id)
            u = self._user(s, grantee)
            g = s.scalar(select(CameoGrant).where(CameoGrant.cameo_id == c.id, CameoGrant.grantee_id == u.id))
            if g is None:
                raise NotFound(f"User '{grantee}' has no grant on this cameo.", param="user", code="grant_not_found")
            g.revoked_at = g.revoked_at or now()
            failed = [] if consent.may_use(s, c, u.id) else consent.queued_videos(s, c.id, u.id)
            audit.append(s, "revoke", actor_id=user_id, owner_id=user_id, cameo_id=c.id, subject_id=u.id,
                         detail={"failed_videos": failed})
            s.flush()
            s.expunge(g)
            return g, failed

        g, failed = self._tx(tx)
        self._fail_all(failed)
        return g, failed

    def uses(self, user_id: str, cameo_id: str) -> list[tuple[CameoUse, Video | None]]:
        with self.sessions() as s:
            c = self._own(s, user_id, cameo_id)
            rows = s.execute(select(CameoUse, Video).outerjoin(Video, Video.id == CameoUse.video_id)
                             .where(CameoUse.cameo_id == c.id).order_by(CameoUse.seq.desc())).all()
            out = []
            for use, video in rows:
                s.expunge(use)
                if video is not None:
                    s.expunge(video)
                out.append((use, video))
            return out

    def all_uses(self, user_id: str, cameo_id: str | None = None, limit: int = 200
                 ) -> list[tuple[Cameo, CameoUse, Video | None, str | None]]:
        """Every video, whoever made it, that uses the caller's cameos (all of them, or `cameo_id`), newest
        first: (cameo, use, video or None once deleted, the maker's user name)."""
        with self.sessions() as s:
            q = (select(Cameo, CameoUse, Video, User.name)
                 .join(CameoUse, CameoUse.cameo_id == Cameo.id)
                 .outerjoin(Video, Video.id == CameoUse.video_id)
                 .outerjoin(User, User.id == CameoUse.user_id)
                 .where(Cameo.owner_id == user_id, Cameo.deleted_at.is_(None)))
            if cameo_id is not None:
                q = q.where(Cameo.id == self._own(s, user_id, cameo_id).id)
            rows = s.execute(q.order_by(CameoUse.seq.desc()).limit(limit)).all()
            s.expunge_all()
            return [tuple(r) for r in rows]

    def grants(self, user_id: str, cameo_id: str) -> list[tuple[CameoGrant, User]]:
        """The people the owner approved (grants not revoked), oldest first."""
        with self.sessions() as s:
            c = self._own(s, user_id, cameo_id)
            rows = s.execute(select(CameoGrant, User).join(User, User.id == CameoGrant.grantee_id)
                             .where(CameoGrant.cameo_id == c.id, CameoGrant.revoked_at.is_(None))
                             .order_by(CameoGrant.seq)).all()
            s.expunge_all()
            return [tuple(r) for r in rows]

    def usable(self, user_id: str, limit: int = 100) -> list[tuple[Cameo, str]]:
        """Cameos the caller may put in a video now, as (cameo, "own" | "granted"): their own active cameos,
        then others' they hold a grant on that consent still allows (what a prompt's @handle may name)."""
        with self.sessions() as s:
            own = s.scalars(select(Cameo).where(Cameo.owner_id == user_id, Cameo.status == "active",
                                                Cameo.deleted_at.is_(None)).order_by(Cameo.handle).limit(limit)).all()
            granted = s.scalars(select(Cameo).join(CameoGrant, CameoGrant.cameo_id == Cameo.id)
                                .where(CameoGrant.grantee_id == user_id, CameoGrant.revoked_at.is_(None),
                                       Cameo.owner_id != user_id).order_by(Cameo.handle).limit(limit)).all()
            out = [(c, "own") for c in own] + [(c, "granted") for c in granted if consent.may_use(s, c, user_id)]
            s.expunge_all()
            return out

    def challenge(self, user_id: str, challenge_id: str) -> CameoChallenge:
        """One of the caller's challenges (used or expired ones too: the caller says what to do next)."""
        with self.sessions() as s:
            ch = s.get(CameoChallenge, challenge_id)
            if ch is None or ch.user_id != user_id:
                raise NotFound(f"No challenge found with id '{challenge_id}'.", param="challenge_id",
                               code="challenge_not_found")
            s.expunge(ch)
            return ch

    def takedown(self, user_id: str, cameo_id: str, video_id: str, reason: str | None) -> CameoUse:
        failed: list[str] = []

        def tx(s: Session) -> CameoUse:
            failed.clear()
            c = self._own(s, user_id, cameo_id)
            use = s.scalar(select(CameoUse).where(CameoUse.cameo_id == c.id, CameoUse.video_id == video_id))
            if use is None:
                raise NotFound(f"Video '{video_id}' does not use this cameo.", param="video_id",
                               code="video_not_found")
            use.taken_down_at = use.taken_down_at or now()
            use.takedown_reason = (reason or "").strip()[:500] or f"Taken down by the owner of @{c.handle}."
            s.execute(Video.__table__.update().where(Video.id == video_id, Video.status.in_(("queued", "in_progress")))
                      .values(cancel_requested=True))
            failed.extend(consent.queued_videos(s, c.id, use.user_id))
            audit.append(s, "takedown", actor_id=user_id, owner_id=user_id, cameo_id=c.id, subject_id=video_id,
                         detail={"reason_sha256": audit.digest(use.takedown_reason)})
            s.flush()
            s.expunge(use)
            return use

        out = self._tx(tx)
        self._fail_all(failed)
        return out

    def delete(self, user_id: str, cameo_id: str) -> Cameo:
        def tx(s: Session):
            c = self._own(s, user_id, cameo_id)
            c.status, c.deleted_at = "deleted", now()
            # The voice sample goes at once (the rest of the biometrics after the grace period).
            c.voice_consent, c.voice_sample_key = False, None
            c.purge_after = c.deleted_at + int(self.options.purge_grace_days * 86400)
            failed = consent.queued_videos(s, c.id)
            audit.append(s, "delete", actor_id=user_id, owner_id=user_id, cameo_id=c.id,
                         detail={"purge_after": c.purge_after, "failed_videos": failed})
            s.flush()
            s.expunge(c)
            return c, failed

        cameo, failed = self._tx(tx)
        self.storage.delete_prefix(voice_sample_key(cameo.id))
        self._fail_all(failed)
        if self.options.purge_grace_days <= 0:
            self.purge_due()
        return cameo

    def purge_due(self, at: int | None = None) -> list[str]:
        """Erase biometrics (embeddings, reference frames, kept uploads) of cameos past their grace period."""
        t = now() if at is None else at
        with self.sessions() as s:
            due = s.scalars(select(Cameo.id).where(Cameo.purge_after.is_not(None), Cameo.purge_after <= t,
                                                   Cameo.purged_at.is_(None))).all()
        for cid in due:
            self.storage.delete_prefix(cameo_prefix(cid))

            def tx(s: Session, cid=cid) -> None:
                c = s.scalar(select(Cameo).where(Cameo.id == cid))
                c.face_embedding = c.voice_embedding = None
                c.voice_sample_key, c.voice_consent = None, False
                c.upload_key, c.purged_at = None, now()
                audit.append(s, "purge", actor_id=None, owner_id=c.owner_id, cameo_id=c.id)

            self._tx(tx)
        return list(due)

    def audit_log(self, user_id: str, after: int | None, limit: int) -> list[CameoAudit]:
        with self.sessions() as s:
            q = select(CameoAudit).where(CameoAudit.owner_id == user_id).order_by(CameoAudit.seq)
            if after is not None:
                q = q.where(CameoAudit.seq > after)
            rows = s.scalars(q.limit(limit)).all()
            for r in rows:
                s.expunge(r)
            return list(rows)

    def verify_audit(self, owner_id: str | None = None) -> audit.ChainCheck:
        """The whole chain, or (`owner_id`) only what it proves about that owner's rows."""
        with self.sessions() as s:
            return audit.verify_chain(s) if owner_id is None else audit.verify_own(s, owner_id)
