"""/v1/files: uploads for `input_reference.file_id` and batch input files; a batch's results are downloaded here."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from mutoscope.http.body import read_body
from mutoscope.api.deps import PrincipalDep
from mutoscope.protocol.files import DeletedFile, FileList, FileObject
from mutoscope.http.files import stored_response
from mutoscope.services import services

router = APIRouter(prefix="/v1/files", tags=["files"])


@router.post("", response_model=FileObject)
async def create_file(request: Request, who: PrincipalDep) -> FileObject:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    return await run_in_threadpool(services(request).files.create, who, body)


@router.get("", response_model=FileList)
def list_files(request: Request, who: PrincipalDep, purpose: str | None = Query(None, max_length=40),
               after: str | None = Query(None, max_length=64), limit: int = Query(10000, ge=1, le=10000),
               order: Literal["asc", "desc"] = "desc") -> FileList:
    return services(request).files.list(who, purpose, after, limit, order)


@router.get("/{file_id}", response_model=FileObject)
def retrieve_file(file_id: str, request: Request, who: PrincipalDep) -> FileObject:
    return services(request).files.retrieve(who, file_id)


@router.delete("/{file_id}", response_model=DeletedFile)
def delete_file(file_id: str, request: Request, who: PrincipalDep) -> DeletedFile:
    return services(request).files.delete(who, file_id)


# GET and HEAD as two routes, so each has its own operation id in /openapi.json.
@router.get("/{file_id}/content", response_class=Response)
@router.head("/{file_id}/content", response_class=Response, operation_id="head_file_content")
def file_content(file_id: str, request: Request, who: PrincipalDep) -> Response:
    return stored_response(request, services(request).files.content(who, file_id))
