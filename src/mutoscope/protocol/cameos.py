"""Cameo wire types (Mutoscope extension: /v1/cameos). OpenAI has no cameo API; `characters: [{"id"}]`
on video create is OpenAI's shape and takes a cameo id or handle."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mutoscope.protocol.base import OpenAIBaseModel

# "unverified": imported from an archive; usable by nobody until its person verifies live on this server.
CameoStatus = Literal["verifying", "active", "failed", "deleted", "unverified"]
CameoPolicy = Literal["only_me", "approved", "everyone"]


class ChallengeObject(BaseModel):
    id: str
    object: Literal["cameo.challenge"] = "cameo.challenge"
    digits: str
    turns: list[str]
    instructions: str
    expires_at: int


class CheckObject(BaseModel):
    name: str
    passed: bool
    score: float
    threshold: float
    higher_is_better: bool = True
    detail: str = ""
    redo: str = ""


class VerificationObject(BaseModel):
    passed: bool
    checks: list[CheckObject]
    error: str | None = None


class CameoObject(BaseModel):
    id: str
    object: Literal["cameo"] = "cameo"
    handle: str
    status: CameoStatus
    policy: CameoPolicy
    preferences: str | None = None
    blocked_terms: list[str] = Field(default_factory=list)
    created_at: int
    verified_at: int | None = None
    verification: VerificationObject | None = None
    # Whether the owner lets their voice be used (separate from the face; off by default), and whether a
    # voice sample from the verification recording is kept for that (docs/likeness.md, "Voice").
    voice_consent: bool = False
    voice_sample: bool = False


class CameoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CameoObject]


class UpdateCameoRequest(OpenAIBaseModel):
    policy: CameoPolicy | None = None
    preferences: str | None = Field(default=None, max_length=2000)
    blocked_terms: list[str] | None = Field(default=None, max_length=50)
    voice_consent: bool | None = None


class GrantRequest(OpenAIBaseModel):
    user: str = Field(min_length=1, max_length=200)


class GrantObject(BaseModel):
    object: Literal["cameo.grant"] = "cameo.grant"
    cameo_id: str
    user_id: str
    created_at: int
    revoked_at: int | None = None
    failed_video_ids: list[str] = Field(default_factory=list)
    user_name: str | None = None


class GrantList(BaseModel):
    object: Literal["list"] = "list"
    data: list[GrantObject]


class CameoUseObject(BaseModel):
    object: Literal["cameo.use"] = "cameo.use"
    video_id: str
    user_id: str
    status: str | None
    created_at: int
    taken_down_at: int | None = None
    takedown_reason: str | None = None
    # How the cameo conditioned the video and its measured likeness (docs/likeness.md, "Measured likeness").
    conditioned: str | None = None
    face_match: dict | None = None
    voice_match: dict | None = None


class CameoUseList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CameoUseObject]


class TakedownRequest(OpenAIBaseModel):
    reason: str | None = Field(default=None, max_length=500)


class DeletedCameo(BaseModel):
    id: str
    object: Literal["cameo.deleted"] = "cameo.deleted"
    deleted: bool = True
    purge_after: int | None


class AuditEntry(BaseModel):
    seq: int
    at: int
    action: str
    actor_id: str | None
    cameo_id: str | None
    subject_id: str | None
    detail: dict | None
    prev_hash: str
    hash: str


class AuditList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AuditEntry]
    has_more: bool


class AuditVerification(BaseModel):
    object: Literal["cameo.audit.verification"] = "cameo.audit.verification"
    valid: bool
    # "all": the whole chain (owner and admins); "own": only the caller's rows, counted in `checked`,
    # `head` being the hash of the latest of them.
    scope: Literal["all", "own"] = "all"
    checked: int
    head: str
    first_bad_seq: int | None = None
    reason: str | None = None
