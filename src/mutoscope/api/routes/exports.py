"""/v1/exports and /v1/imports: thin handlers that call ExportService once; an import's upload is streamed
to a scratch folder here, since reading a request is HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from mutoscope.http.body import SLACK, bounded_stream
from mutoscope.api.deps import PrincipalDep
from mutoscope.api.idempotency import IdempotentRoute
from mutoscope.errors import InvalidRequest, PayloadTooLarge
from mutoscope.exports.scratch import ScratchArea
from mutoscope.exports.service import UNFINISHED_CHOICES, ExportService, ReceivedArchive, import_limits
from mutoscope.protocol.exports import DeletedExport, ExportList, ExportObject, ImportObject
from mutoscope.http.files import stored_response
from mutoscope.services import services

router = APIRouter(tags=["exports"])


def _svc(request: Request) -> ExportService:
    return services(request).exports


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


CHUNK = 1024 * 1024


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The archive is larger than this server's import limit of {limit} bytes.",
                           param="file", code="archive_too_large")


async def receive(request: Request, svc: ExportService) -> ReceivedArchive:
    """Stream an uploaded archive (multipart field `file`, or the raw body) to a locked scratch folder.

    `unfinished` (not_run | resubmit) comes as a multipart field or a query parameter."""
    limit = import_limits(svc.settings).max_archive_bytes
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 1024 * 1024:
        raise _too_large(limit)
    received = ReceivedArchive(ScratchArea(svc.storage.scratch_dir(), "upload-"))
    choice = request.query_params.get("unfinished")
    written = 0
    try:
        with open(received.path, "wb") as out:
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                # Counted while it streams in, like every other body: a chunked upload cannot spool
                # more than the import limit to disk before it is refused.
                try:
                    form = await MultiPartParser(request.headers, bounded_stream(request, limit + SLACK),
                                                 max_files=1, max_fields=8).parse()
                except MultiPartException as e:
                    raise InvalidRequest(f"We could not parse the form body of your request: {e.message}",
                                         code="invalid_multipart") from None
                except PayloadTooLarge:
                    raise _too_large(limit) from None
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise InvalidRequest("Missing required parameter: 'file'.", param="file",
                                         code="missing_required_parameter")
                field = form.get("unfinished")
                if isinstance(field, str):
                    choice = field
                try:
                    while chunk := await upload.read(CHUNK):
                        written += len(chunk)
                        if written > limit:
                            raise _too_large(limit)
                        out.write(chunk)
                finally:
                    await form.close()  # the parser's spooled copy goes now, not at garbage collection
            else:
                async for chunk in bounded_stream(request, limit):
                    written += len(chunk)
                    if written > limit:
                        raise _too_large(limit)
                    out.write(chunk)
        if written == 0:
            raise InvalidRequest("Send the archive as the request body or as multipart field 'file'.",
                                 param="file", code="missing_required_parameter")
        if choice is not None and choice not in UNFINISHED_CHOICES:
            raise InvalidRequest(f"unfinished must be one of {', '.join(UNFINISHED_CHOICES)}, got {choice!r}.",
                                 param="unfinished")
        received.unfinished = choice or "not_run"
    except BaseException:
        received.area.close()
        raise
    return received


@router.post("/v1/imports", response_model=ImportObject)
async def create_import(request: Request, who: PrincipalDep) -> ImportObject:
    received = await receive(request, _svc(request))
    return await run_in_threadpool(_svc(request).import_upload, who, received)


@router.get("/v1/imports/{import_id}", response_model=ImportObject)
def retrieve_import(import_id: str, request: Request, who: PrincipalDep) -> ImportObject:
    return _svc(request).retrieve_import(who, import_id)
