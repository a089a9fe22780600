"""Cameos and characters for every front end: read the fields, call `records.py` once, shape wire objects.

`/v1/cameos`, `/v1/videos/characters` and the cameo pages call the same `CameoService`. Biometrics never
leave the server through it: objects carry check names and scores only.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mutoscope.accounts.service import Principal
from mutoscope.config import Settings
from mutoscope.db.models import Cameo, CameoAudit, CameoChallenge, Video
from mutoscope.errors import InvalidRequest
from mutoscope.likeness.challenge import Challenge
from mutoscope.likeness.characters import CharacterService
from mutoscope.likeness.records import CameoRecords, LikenessOptions
from mutoscope.media import InputLimits, MediaError, inspect_upload
from mutoscope.protocol.base import Body, Upload, cursor_page, parse
from mutoscope.protocol.cameos import (
    AuditEntry,
    AuditList,
    AuditVerification,
    CameoList,
    CameoObject,
    CameoUseList,
    CameoUseObject,
    ChallengeObject,
    DeletedCameo,
    GrantList,
    GrantObject,
    GrantRequest,
    TakedownRequest,
    UpdateCameoRequest,
)
from mutoscope.protocol.videos import CharacterList, CharacterObject, DeletedCharacter, VideoObject
from mutoscope.storage import Storage


def to_cameo(c: Cameo) -> CameoObject:
    return CameoObject(id=c.id, handle=c.handle, status=c.status, policy=c.policy, preferences=c.preferences,
                       blocked_terms=c.blocked_terms or [], created_at=c.created_at, verified_at=c.verified_at,
                       verification=c.verification, voice_consent=bool(c.voice_consent),
                       voice_sample=c.voice_sample_key is not None)


def _measured(video_object: Callable[[Video], VideoObject], v: Video | None, cameo_id: str) -> dict[str, Any]:
    """This cameo's entry of a video's `cameos` (conditioned, face and voice match), as the video shows it."""
    if v is None:
        return {}
    for c in video_object(v).cameos or []:
        if c.id == cameo_id:
            return {"conditioned": c.conditioned,
                    "face_match": c.face_match.model_dump() if c.face_match else None,
                    "voice_match": c.voice_match.model_dump() if c.voice_match else None}
    return {}


def to_challenge(row: CameoChallenge) -> ChallengeObject:
    ch = Challenge(digits=row.digits, turns=tuple(row.turns.split(",")))
    return ChallengeObject(id=row.id, digits=row.digits, turns=list(ch.turns), instructions=ch.instructions,
                           expires_at=row.expires_at)


def to_audit(r: CameoAudit) -> AuditEntry:
    return AuditEntry(seq=r.seq, at=r.at, action=r.action, actor_id=r.actor_id, cameo_id=r.cameo_id,
                      subject_id=r.subject_id, detail=r.detail, prev_hash=r.prev_hash, hash=r.hash)


class CameoService:
    """Args:
        fail_video: fails a queued video whose consent was withdrawn (`CameoRecords` says how).
        video_object: a video row as the API shows it, for the face and voice match a cameo's uses list.
            Both belong to the videos room, which sits above this one, so the composition root hands
            them in.
    """

    def __init__(self, sessions: sessionmaker[Session], storage: Storage, settings: Settings, *,
                 fail_video: Callable[[Session, str, str, str], bool],
                 video_object: Callable[[Video], VideoObject]):
        self.records = CameoRecords(sessions, storage, LikenessOptions(
            whisper_model=settings.likeness_whisper_model,
            weights_dir=settings.resolved_weights_dir,
            purge_grace_days=settings.cameo_purge_grace_days), fail_video=fail_video)
        self.characters = CharacterService(sessions, storage)
        self._video_object = video_object
        self.limits = InputLimits(max_seconds=settings.max_input_seconds, max_pixels=settings.max_input_pixels,
                                  max_frames=settings.max_input_frames)

    def _inspect(self, video: Upload) -> None:
        """A clip that is not one, is truncated or exceeds the input limits is a 400 naming `video` here,
        before a challenge is spent or a verification is queued."""
        try:
            inspect_upload(io.BytesIO(video.data), self.limits)
        except MediaError as e:
            raise InvalidRequest(f"video is not a usable video: {e}", param="video", code="invalid_video") from None

    def challenge(self, who: Principal) -> ChallengeObject:
        return to_challenge(self.records.new_challenge(who.user_id))

    def create(self, who: Principal, body: Body) -> CameoObject:
        video = body.files.get("video")
        if video is None:
            raise InvalidRequest("Upload the cameo clip as the multipart file field 'video'.", param="video")
        handle, challenge_id = body.fields.get("handle"), body.fields.get("challenge_id")
        if not isinstance(handle, str) or not handle:
            raise InvalidRequest("handle is required.", param="handle")
        if not isinstance(challenge_id, str) or not challenge_id:
            raise InvalidRequest("challenge_id is required (POST /v1/cameos/challenges).", param="challenge_id")
        if video.content_type and not video.content_type.startswith("video/") \
                and video.content_type != "application/octet-stream":
            raise InvalidRequest(f"video must be a video file, got '{video.content_type}'.", param="video")
        self._inspect(video)
        keep = str(body.fields.get("keep_upload", "")).lower() in ("1", "true", "yes")
        voice = str(body.fields.get("voice_consent", "")).lower() in ("1", "true", "yes")
        return to_cameo(self.records.create(who.user_id, handle, challenge_id, video.data, keep_upload=keep,
                                            voice_consent=voice))

    def list(self, who: Principal) -> CameoList:
        return CameoList(data=[to_cameo(c) for c in self.records.list(who.user_id)])

    def retrieve(self, who: Principal, cameo_id: str) -> CameoObject:
        return to_cameo(self.records.get(who.user_id, cameo_id))

    def update(self, who: Principal, cameo_id: str, body: Body) -> CameoObject:
        req: UpdateCameoRequest = parse(UpdateCameoRequest, body.fields)
        cameo = self.records.update(who.user_id, cameo_id, policy=req.policy, preferences=req.preferences,
                                    blocked_terms=req.blocked_terms)
        if req.voice_consent is not None:
            cameo = self.records.set_voice_consent(who.user_id, cameo_id, req.voice_consent)
        return to_cameo(cameo)

    def grant(self, who: Principal, cameo_id: str, body: Body) -> GrantObject:
        req: GrantRequest = parse(GrantRequest, body.fields)
        g = self.records.grant(who.user_id, cameo_id, req.user)
        return GrantObject(cameo_id=g.cameo_id, user_id=g.grantee_id, created_at=g.created_at)

    def grants(self, who: Principal, cameo_id: str) -> GrantList:
        return GrantList(data=[GrantObject(cameo_id=g.cameo_id, user_id=u.id, user_name=u.name, created_at=g.created_at)
                               for g, u in self.records.grants(who.user_id, cameo_id)])

    def revoke(self, who: Principal, cameo_id: str, user: str) -> GrantObject:
        g, failed = self.records.revoke(who.user_id, cameo_id, user)
        return GrantObject(cameo_id=g.cameo_id, user_id=g.grantee_id, created_at=g.created_at,
                           revoked_at=g.revoked_at, failed_video_ids=failed)

    def videos(self, who: Principal, cameo_id: str) -> CameoUseList:
        return CameoUseList(data=[
            CameoUseObject(video_id=u.video_id, user_id=u.user_id, status=v.status if v is not None else None,
                           created_at=u.created_at, taken_down_at=u.taken_down_at, takedown_reason=u.takedown_reason,
                           **_measured(self._video_object, v, cameo_id))
            for u, v in self.records.uses(who.user_id, cameo_id)])

    def takedown(self, who: Principal, cameo_id: str, video_id: str, body: Body) -> CameoUseObject:
        req: TakedownRequest = parse(TakedownRequest, body.fields)
        u = self.records.takedown(who.user_id, cameo_id, video_id, req.reason)
        return CameoUseObject(video_id=u.video_id, user_id=u.user_id, status=None, created_at=u.created_at,
                              taken_down_at=u.taken_down_at, takedown_reason=u.takedown_reason)

    def delete(self, who: Principal, cameo_id: str) -> DeletedCameo:
        c = self.records.delete(who.user_id, cameo_id)
        return DeletedCameo(id=c.id, purge_after=c.purge_after)

    def audit(self, who: Principal, after: int | None, limit: int) -> AuditList:
        rows = self.records.audit_log(who.user_id, after, limit + 1)
        return AuditList(data=[to_audit(r) for r in rows[:limit]], has_more=len(rows) > limit)

    def verify_audit(self, who: Principal) -> AuditVerification:
        # The chain's length and head say how much everyone on the server does with cameos: only the
        # owner and admins see them; a member learns whether the chain vouches for their own rows.
        scope = "all" if who.role in ("owner", "admin") else "own"
        c = self.records.verify_audit(None if scope == "all" else who.user_id)
        return AuditVerification(valid=c.valid, scope=scope, checked=c.checked, head=c.head,
                                 first_bad_seq=c.first_bad_seq, reason=c.reason)

    # Characters: POST/GET /v1/videos/characters (OpenAI's shape; the routes live in routes/videos.py).
    def create_character(self, who: Principal, body: Body) -> CharacterObject:
        video = body.files.get("video")
        if video is None:
            raise InvalidRequest("Upload the character clip as the multipart file field 'video'.", param="video")
        name = body.fields.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest("name is required.", param="name")
        if video.content_type and not video.content_type.startswith("video/") \
                and video.content_type != "application/octet-stream":
            raise InvalidRequest(f"video must be a video file, got '{video.content_type}'.", param="video",
                                 code="invalid_video")
        self._inspect(video)
        c = self.characters.create(who.user_id, name, video.data)
        return CharacterObject(id=c.id, name=c.name, created_at=c.created_at)

    def get_character(self, who: Principal, character_id: str) -> CharacterObject:
        c = self.characters.get(who.user_id, character_id)
        return CharacterObject(id=c.id, name=c.name, created_at=c.created_at)

    def list_characters(self, who: Principal, after: str | None, limit: int, order: str) -> CharacterList:
        rows, more = self.characters.list(who.user_id, after, limit, order)
        data = [CharacterObject(id=c.id, name=c.name, created_at=c.created_at) for c in rows]
        return cursor_page(CharacterList, data, more)

    def delete_character(self, who: Principal, character_id: str) -> DeletedCharacter:
        return DeletedCharacter(id=self.characters.delete(who.user_id, character_id))
