"""/v1/exports and /v1/imports: thin handlers that call ExportService once."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from mutoscope.api.deps import PrincipalDep
from mutoscope.api.idempotency import IdempotentRoute
from mutoscope.api.serving_exports import ExportService
from mutoscope.protocol.exports import DeletedExport, ExportList, ExportObject, ImportObject
from mutoscope.storage.http import stored_response

router = APIRouter(tags=["exports"])


def _svc(request: Request) -> ExportService:
    return request.app.state.exports


def create_export(request: Request, who: PrincipalDep) -> ExportObject:
    return _svc(request).create(who)


# Honours Idempotency-Key: a retried export request gets the first export, not a second archive.
router.add_api_route("/v1/exports", create_export, methods=["POST"], response_model=ExportObject,
                     route_class_override=IdempotentRoute)


@router.get("/v1/exports", response_model=ExportList)
def list_exports(request: Request, who: PrincipalDep, after: str | None = None,
                 limit: int = Query(20, ge=0, le=100)) -> ExportList:
    return _svc(request).list(who, after, limit)


@router.get("/v1/exports/{export_id}", response_model=ExportObject)
def retrieve_export(export_id: str, request: Request, who: PrincipalDep) -> ExportObject:
    return _svc(request).retrieve(who, export_id)


@router.delete("/v1/exports/{export_id}", response_model=DeletedExport)
def delete_export(export_id: str, request: Request, who: PrincipalDep) -> DeletedExport:
    return _svc(request).delete(who, export_id)


# GET and HEAD as two routes, so each has its own operation id in /openapi.json.
@router.get("/v1/exports/{export_id}/content", response_class=Response)
@router.head("/v1/exports/{export_id}/content", response_class=Response, operation_id="head_export_content")
def export_content(export_id: str, request: Request, who: PrincipalDep) -> Response:
    # Range requests get 206 on every storage backend, so a large download can resume where it broke off.
    return stored_response(request, _svc(request).content(who, export_id), disposition="attachment")


@router.post("/v1/imports", response_model=ImportObject)
async def create_import(request: Request, who: PrincipalDep) -> ImportObject:
    received = await _svc(request).receive(request)
    return await run_in_threadpool(_svc(request).import_upload, who, received)


@router.get("/v1/imports/{import_id}", response_model=ImportObject)
def retrieve_import(import_id: str, request: Request, who: PrincipalDep) -> ImportObject:
    return _svc(request).retrieve_import(who, import_id)
