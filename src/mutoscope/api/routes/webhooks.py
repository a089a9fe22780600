"""/v1/webhook_endpoints: where video.completed / video.failed events are delivered."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from mutoscope.api.body import parse_model, read_body
from mutoscope.api.deps import PrincipalDep
from mutoscope.errors import InvalidRequest
from mutoscope.protocol.webhooks import (
    CreateWebhookEndpoint,
    DeletedWebhookEndpoint,
    TestWebhookEndpoint,
    UpdateWebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointObject,
    WebhookTestResult,
)
from mutoscope.webhooks import service as hooks

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhooks"])
_LIMIT = 64 * 1024


def _obj(ep, with_secret: bool = False) -> WebhookEndpointObject:
    return WebhookEndpointObject(id=ep.id, created_at=ep.created_at, updated_at=ep.updated_at,
                                 event_types=list(ep.event_types), name=ep.name, url=ep.url,
                                 signing_secret_hint=ep.secret[:10] + "…",
                                 signing_secret=ep.secret if with_secret else None)


@router.post("", response_model=WebhookEndpointObject, response_model_exclude_none=False)
async def create_endpoint(request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    req = parse_model(CreateWebhookEndpoint, (await read_body(request, _LIMIT)).fields)
    with request.app.state.sessions() as s:
        return _obj(hooks.create_endpoint(s, who.user_id, name=req.name, url=req.url, event_types=req.event_types),
                    with_secret=True)


@router.get("", response_model=WebhookEndpointList)
def list_endpoints(request: Request, who: PrincipalDep) -> WebhookEndpointList:
    with request.app.state.sessions() as s:
        data = [_obj(ep) for ep in hooks.list_endpoints(s, who.user_id)]
    return WebhookEndpointList(data=data, first_id=data[0].id if data else None,
                               last_id=data[-1].id if data else None)


@router.get("/{endpoint_id}", response_model=WebhookEndpointObject)
def retrieve_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    with request.app.state.sessions() as s:
        return _obj(hooks.get_endpoint(s, who.user_id, endpoint_id))


@router.post("/{endpoint_id}", response_model=WebhookEndpointObject)
async def update_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    req = parse_model(UpdateWebhookEndpoint, (await read_body(request, _LIMIT)).fields)
    with request.app.state.sessions() as s:
        return _obj(hooks.update_endpoint(s, who.user_id, endpoint_id, name=req.name, url=req.url,
                                          event_types=req.event_types))


@router.delete("/{endpoint_id}", response_model=DeletedWebhookEndpoint)
def delete_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> DeletedWebhookEndpoint:
    with request.app.state.sessions() as s:
        hooks.delete_endpoint(s, who.user_id, endpoint_id)
    return DeletedWebhookEndpoint(id=endpoint_id)


@router.post("/{endpoint_id}/rotate_secret", response_model=WebhookEndpointObject)
def rotate_secret(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    with request.app.state.sessions() as s:
        return _obj(hooks.rotate_secret(s, who.user_id, endpoint_id), with_secret=True)


@router.post("/{endpoint_id}/test", response_model=WebhookTestResult)
async def test_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookTestResult:
    req = parse_model(TestWebhookEndpoint, (await read_body(request, _LIMIT)).fields)
    if req.event_type not in hooks.EVENT_TYPES:
        raise InvalidRequest(f"Unsupported event type '{req.event_type}'.", param="event_type")
    with request.app.state.sessions() as s:
        ep = hooks.get_endpoint(s, who.user_id, endpoint_id)
    event_id = hooks.new_id("evt_")
    body = hooks.event_payload(event_id, req.event_type, {"id": "video_test"})
    try:
        status = await run_in_threadpool(hooks.post, ep.url, ep.secret, event_id, body)
    except Exception as e:  # the receiver is unreachable: say so, as a client error
        raise InvalidRequest(f"Could not reach {ep.url}: {type(e).__name__}.", param="url",
                             code="webhook_unreachable") from None
    return WebhookTestResult(webhook_endpoint_id=ep.id, event_type=req.event_type, status_code=status)
