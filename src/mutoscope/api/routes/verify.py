"""/v1/verify: a thin handler over VerifyService (Mutoscope extension)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from mutoscope.http.body import read_body
from mutoscope.api.deps import PrincipalDep
from mutoscope.provenance.service import VerifyService
from mutoscope.protocol.verify import VerifyResponse
from mutoscope.services import services

router = APIRouter(prefix="/v1/verify", tags=["provenance"])


@router.post("", response_model=VerifyResponse)
async def verify_file(request: Request, who: PrincipalDep) -> VerifyResponse:
    svc: VerifyService = services(request).verify
    body = await read_body(request, services(request).settings.max_upload_bytes)
    return await run_in_threadpool(svc.verify_upload, body.files.get("file"))
