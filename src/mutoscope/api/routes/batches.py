"""/v1/batches: thin handlers over BatchService (batches/)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from mutoscope.http.body import read_body
from mutoscope.api.deps import PrincipalDep
from mutoscope.api.idempotency import IdempotentRoute
from mutoscope.protocol.batches import BatchList, BatchObject
from mutoscope.services import services

# Every POST honours Idempotency-Key: a retried create gets the first batch, never a second set of jobs.
router = APIRouter(prefix="/v1/batches", tags=["batches"], route_class=IdempotentRoute)


@router.post("", response_model=BatchObject)
async def create_batch(request: Request, who: PrincipalDep) -> BatchObject:
    body = await read_body(request, 64 * 1024)
    return await run_in_threadpool(services(request).batches.create, who, body)


@router.get("", response_model=BatchList)
def list_batches(request: Request, who: PrincipalDep, after: str | None = Query(None, max_length=64),
                 limit: int = Query(20, ge=1, le=100)) -> BatchList:
    return services(request).batches.list(who, after, limit)


@router.get("/{batch_id}", response_model=BatchObject)
def retrieve_batch(batch_id: str, request: Request, who: PrincipalDep) -> BatchObject:
    return services(request).batches.retrieve(who, batch_id)


@router.post("/{batch_id}/cancel", response_model=BatchObject)
def cancel_batch(batch_id: str, request: Request, who: PrincipalDep) -> BatchObject:
    return services(request).batches.cancel(who, batch_id)
