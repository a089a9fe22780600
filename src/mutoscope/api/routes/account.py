"""/v1/usage, /v1/service and /v1/admin/*: Mutoscope's own endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from mutoscope.accounts.service import Principal
from mutoscope.http.body import read_body
from mutoscope.api.deps import PrincipalDep, get_principal
from mutoscope.accounts.service import AccountService
from mutoscope.errors import NotFound
from mutoscope.protocol.accounts import (
    CreateKeyRequest,
    CreateUserRequest,
    DeprecateModelRequest,
    Service,
    SunsetRequest,
    UpdateUserRequest,
    Usage,
    UserList,
    UserObject,
)
from mutoscope.protocol.base import parse
from mutoscope.services import services

router = APIRouter(prefix="/v1", tags=["account"])


def _svc(request: Request) -> AccountService:
    return services(request).accounts


def require_admin(who: Principal = Depends(get_principal)) -> Principal:
    if who.role not in ("owner", "admin"):
        # Like any unknown path to a member: the admin API's existence is not advertised.
        raise NotFound("Not found.", code="not_found")
    return who


@router.get("/usage", response_model=Usage)
def get_usage(request: Request, who: PrincipalDep) -> Usage:
    return _svc(request).usage(who)


@router.get("/service", response_model=Service)
def get_service(request: Request) -> Service:
    return _svc(request).service()


admin = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])
AdminDep = Annotated[Principal, Depends(require_admin)]


@admin.get("/users", response_model=UserList)
def admin_list_users(request: Request) -> UserList:
    return _svc(request).list_users()


@admin.post("/users", response_model=UserObject)
async def admin_create_user(request: Request, who: AdminDep) -> UserObject:
    body = await read_body(request, 1024 * 1024)
    return _svc(request).create_user(who, parse(CreateUserRequest, body.fields))


@admin.post("/users/{user_id}", response_model=UserObject)
async def admin_update_user(user_id: str, request: Request, who: AdminDep) -> UserObject:
    body = await read_body(request, 1024 * 1024)
    return _svc(request).update_user(who, user_id, parse(UpdateUserRequest, body.fields))


@admin.post("/users/{user_id}/keys", response_model=UserObject)
async def admin_create_key(user_id: str, request: Request, who: AdminDep) -> UserObject:
    body = await read_body(request, 1024 * 1024)
    return _svc(request).create_key(who, user_id, parse(CreateKeyRequest, body.fields).name)


@admin.get("/keys")
def admin_list_keys(request: Request) -> dict:
    return _svc(request).list_keys()


@admin.delete("/keys/{key_id}")
def admin_revoke_key(key_id: str, request: Request, who: AdminDep) -> dict:
    return _svc(request).revoke_key(who, key_id)


@admin.post("/models/{model_id}/deprecation")
async def admin_deprecate_model(model_id: str, request: Request) -> dict:
    body = await read_body(request, 1024 * 1024)
    return _svc(request).deprecate_model(model_id, parse(DeprecateModelRequest, body.fields))


@admin.post("/service/sunset", response_model=Service)
async def admin_sunset(request: Request) -> Service:
    body = await read_body(request, 1024 * 1024)
    return _svc(request).schedule_sunset(parse(SunsetRequest, body.fields))
