"""/v1/files: uploads for `input_reference.file_id`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from mutoscope.api.body import read_body
from mutoscope.api.deps import PrincipalDep
from mutoscope.protocol.files import DeletedFile, FileList, FileObject

router = APIRouter(prefix="/v1/files", tags=["files"])


@router.post("", response_model=FileObject)
async def create_file(request: Request, who: PrincipalDep) -> FileObject:
    body = await read_body(request, request.app.state.settings.max_upload_bytes)
    return await run_in_threadpool(request.app.state.files.create, who, body)


@router.get("", response_model=FileList)
def list_files(request: Request, who: PrincipalDep) -> FileList:
    return request.app.state.files.list(who)


@router.get("/{file_id}", response_model=FileObject)
def retrieve_file(file_id: str, request: Request, who: PrincipalDep) -> FileObject:
    return request.app.state.files.retrieve(who, file_id)


@router.delete("/{file_id}", response_model=DeletedFile)
def delete_file(file_id: str, request: Request, who: PrincipalDep) -> DeletedFile:
    return request.app.state.files.delete(who, file_id)
