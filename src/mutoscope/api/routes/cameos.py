"""/v1/cameos (Mutoscope extension): thin handlers that call CameoService once."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from mutoscope.http.body import read_body
from mutoscope.api.deps import PrincipalDep
from mutoscope.likeness.service import CameoService
from mutoscope.protocol.cameos import (
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
)
from mutoscope.services import services

router = APIRouter(prefix="/v1/cameos", tags=["cameos"])


def _svc(request: Request) -> CameoService:
    return services(request).cameos


async def _body(request: Request):
    return await read_body(request, services(request).settings.max_upload_bytes)


@router.post("/challenges", response_model=ChallengeObject)
def create_challenge(request: Request, who: PrincipalDep) -> ChallengeObject:
    return _svc(request).challenge(who)


@router.post("", response_model=CameoObject)
async def create_cameo(request: Request, who: PrincipalDep) -> CameoObject:
    body = await _body(request)
    return await run_in_threadpool(_svc(request).create, who, body)


@router.get("", response_model=CameoList)
def list_cameos(request: Request, who: PrincipalDep) -> CameoList:
    return _svc(request).list(who)


# Before /{cameo_id} so "audit" is not taken for an id.
@router.get("/audit", response_model=AuditList)
def audit_log(request: Request, who: PrincipalDep,
              # The audit sequence is a 32-bit column: a larger cursor can match nothing and must not reach SQL.
              after: int | None = Query(None, ge=0, le=2**31 - 1),
              limit: int = Query(100, ge=1, le=1000)) -> AuditList:
    return _svc(request).audit(who, after, limit)


@router.get("/audit/verify", response_model=AuditVerification)
def verify_audit(request: Request, who: PrincipalDep) -> AuditVerification:
    return _svc(request).verify_audit(who)


@router.get("/{cameo_id}", response_model=CameoObject)
def retrieve_cameo(cameo_id: str, request: Request, who: PrincipalDep) -> CameoObject:
    return _svc(request).retrieve(who, cameo_id)


@router.post("/{cameo_id}", response_model=CameoObject)
async def update_cameo(cameo_id: str, request: Request, who: PrincipalDep) -> CameoObject:
    return _svc(request).update(who, cameo_id, await _body(request))


@router.delete("/{cameo_id}", response_model=DeletedCameo)
def delete_cameo(cameo_id: str, request: Request, who: PrincipalDep) -> DeletedCameo:
    return _svc(request).delete(who, cameo_id)


@router.post("/{cameo_id}/grants", response_model=GrantObject)
async def grant(cameo_id: str, request: Request, who: PrincipalDep) -> GrantObject:
    return _svc(request).grant(who, cameo_id, await _body(request))


@router.get("/{cameo_id}/grants", response_model=GrantList)
def list_grants(cameo_id: str, request: Request, who: PrincipalDep) -> GrantList:
    return _svc(request).grants(who, cameo_id)


@router.delete("/{cameo_id}/grants/{user}", response_model=GrantObject)
def revoke(cameo_id: str, user: str, request: Request, who: PrincipalDep) -> GrantObject:
    return _svc(request).revoke(who, cameo_id, user)


@router.get("/{cameo_id}/videos", response_model=CameoUseList)
def cameo_videos(cameo_id: str, request: Request, who: PrincipalDep) -> CameoUseList:
    return _svc(request).videos(who, cameo_id)


@router.post("/{cameo_id}/videos/{video_id}/takedown", response_model=CameoUseObject)
async def takedown(cameo_id: str, video_id: str, request: Request, who: PrincipalDep) -> CameoUseObject:
    return _svc(request).takedown(who, cameo_id, video_id, await _body(request))
