"""Mutoscope's own endpoints: usage, service status, admin (no OpenAI equivalent)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mutoscope.protocol.base import OpenAIBaseModel, UnixTime


class Usage(BaseModel):
    object: Literal["usage"] = "usage"
    plan: str
    period: str
    unit: Literal["seconds", "credits"]
    budget: float | None
    spent: float
    reserved: float
    left: float | None
    active_jobs: int
    concurrent_jobs: int
    requests_per_minute: int
    priority: int


class Service(BaseModel):
    object: Literal["service"] = "service"
    phase: Literal["active", "notice", "no_new_generations", "export_only", "deletion"]
    notice_at: int | None
    no_new_generations_at: int | None
    export_only_at: int | None
    deletion_at: int | None
    message: str
    # "on": faces in input images and videos are checked against cameo consent; "unavailable": the
    # guard is on but cannot detect faces, so such inputs are refused; "off": the operator turned it off
    # and faces are accepted unchecked.
    likeness_guard: Literal["on", "off", "unavailable"] = "on"


class UserObject(BaseModel):
    id: str
    object: Literal["user"] = "user"
    name: str
    role: str
    plan: str | None
    created_at: int
    disabled: bool
    # Only in the answer that created a key: shown once.
    api_key: str | None = None


class UserList(BaseModel):
    object: Literal["list"] = "list"
    data: list[UserObject]


class CreateUserRequest(OpenAIBaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["owner", "admin", "member"] = "member"
    plan: str | None = None


class CreateKeyRequest(OpenAIBaseModel):
    name: str = Field(default="", max_length=200)


class UpdateUserRequest(OpenAIBaseModel):
    role: Literal["owner", "admin", "member"] | None = None
    plan: str | None = None
    disabled: bool | None = None


MODEL_NAME_MAX = 200


class DeprecateModelRequest(OpenAIBaseModel):
    shutdown_date: UnixTime
    deprecation_date: UnixTime | None = None
    replacement: str | None = Field(default=None, max_length=MODEL_NAME_MAX)


class SunsetRequest(OpenAIBaseModel):
    notice_at: UnixTime
    no_new_generations_at: UnixTime
    export_only_at: UnixTime
    deletion_at: UnixTime
    message: str = ""
