"""/v1/webhook_endpoints: where video and batch events are delivered; thin handlers over WebhookService."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from mutoscope.http.body import read_body
from mutoscope.api.deps import PrincipalDep
from mutoscope.protocol.base import parse
from mutoscope.protocol.webhooks import (
    CreateWebhookEndpoint,
    DeletedWebhookEndpoint,
    TestWebhookEndpoint,
    UpdateWebhookEndpoint,
    WebhookDeliveryList,
    WebhookEndpointList,
    WebhookEndpointObject,
    WebhookTestResult,
)
from mutoscope.services import services
from mutoscope.webhooks.service import WebhookService

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhooks"])
_LIMIT = 64 * 1024


def _svc(request: Request) -> WebhookService:
    return services(request).webhooks


@router.post("", response_model=WebhookEndpointObject, response_model_exclude_none=False)
async def create_endpoint(request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    req = parse(CreateWebhookEndpoint, (await read_body(request, _LIMIT)).fields)
    return await run_in_threadpool(_svc(request).create, who, req)


@router.get("", response_model=WebhookEndpointList)
def list_endpoints(request: Request, who: PrincipalDep) -> WebhookEndpointList:
    return _svc(request).list(who)


@router.get("/{endpoint_id}", response_model=WebhookEndpointObject)
def retrieve_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    return _svc(request).retrieve(who, endpoint_id)


@router.post("/{endpoint_id}", response_model=WebhookEndpointObject)
async def update_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    req = parse(UpdateWebhookEndpoint, (await read_body(request, _LIMIT)).fields)
    return await run_in_threadpool(_svc(request).update, who, endpoint_id, req)


@router.delete("/{endpoint_id}", response_model=DeletedWebhookEndpoint)
def delete_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> DeletedWebhookEndpoint:
    return _svc(request).delete(who, endpoint_id)


@router.get("/{endpoint_id}/deliveries", response_model=WebhookDeliveryList)
def list_deliveries(endpoint_id: str, request: Request, who: PrincipalDep,
                    limit: int = Query(20, ge=1, le=100)) -> WebhookDeliveryList:
    """The endpoint's latest events, newest first, each with its attempts: what the settings page shows."""
    return _svc(request).deliveries(who, endpoint_id, limit)


@router.post("/{endpoint_id}/rotate_secret", response_model=WebhookEndpointObject)
def rotate_secret(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    return _svc(request).rotate_secret(who, endpoint_id)


@router.post("/{endpoint_id}/test", response_model=WebhookTestResult)
async def test_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookTestResult:
    req = parse(TestWebhookEndpoint, (await read_body(request, _LIMIT)).fields)
    return await run_in_threadpool(_svc(request).test, who, endpoint_id, req.event_type)
