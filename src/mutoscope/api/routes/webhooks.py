"""/v1/webhook_endpoints: where video.completed / video.failed events are delivered."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from mutoscope.api.body import parse_model, read_body
from mutoscope.api.deps import PrincipalDep
from mutoscope.errors import InvalidRequest
from mutoscope.protocol.base import cursor_page
from mutoscope.protocol.webhooks import (
    CreateWebhookEndpoint,
    DeletedWebhookEndpoint,
    TestWebhookEndpoint,
    UpdateWebhookEndpoint,
    WebhookDeliveryList,
    WebhookDeliveryObject,
    WebhookEndpointList,
    WebhookEndpointObject,
    WebhookTestResult,
)
from mutoscope.sealing import SealError
from mutoscope.webhooks import service as hooks

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhooks"])
_LIMIT = 64 * 1024


def _obj(request: Request, ep, with_secret: bool = False) -> WebhookEndpointObject:
    try:
        secret = hooks.reveal(request.app.state.secret_box, ep)
    except SealError:  # sealed under another key: the endpoint still lists, and rotating repairs it
        secret = None
    return WebhookEndpointObject(id=ep.id, created_at=ep.created_at, updated_at=ep.updated_at,
                                 event_types=list(ep.event_types), name=ep.name, url=ep.url,
                                 signing_secret_hint=secret[:10] + "…" if secret else None,
                                 signing_secret=secret if with_secret else None)


@router.post("", response_model=WebhookEndpointObject, response_model_exclude_none=False)
async def create_endpoint(request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    req = parse_model(CreateWebhookEndpoint, (await read_body(request, _LIMIT)).fields)
    state = request.app.state

    def create():  # in a worker thread: vetting the URL resolves its host
        with state.sessions() as s:
            return hooks.create_endpoint(s, state.settings, state.secret_box, who.user_id, name=req.name,
                                         url=req.url, event_types=req.event_types)

    return _obj(request, await run_in_threadpool(create), with_secret=True)


@router.get("", response_model=WebhookEndpointList)
def list_endpoints(request: Request, who: PrincipalDep) -> WebhookEndpointList:
    with request.app.state.sessions() as s:
        data = [_obj(request, ep) for ep in hooks.list_endpoints(s, who.user_id)]
    return cursor_page(WebhookEndpointList, data)


@router.get("/{endpoint_id}", response_model=WebhookEndpointObject)
def retrieve_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    with request.app.state.sessions() as s:
        return _obj(request, hooks.get_endpoint(s, who.user_id, endpoint_id))


@router.post("/{endpoint_id}", response_model=WebhookEndpointObject)
async def update_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    req = parse_model(UpdateWebhookEndpoint, (await read_body(request, _LIMIT)).fields)
    state = request.app.state

    def update():
        with state.sessions() as s:
            return hooks.update_endpoint(s, state.settings, who.user_id, endpoint_id, name=req.name, url=req.url,
                                         event_types=req.event_types)

    return _obj(request, await run_in_threadpool(update))


@router.delete("/{endpoint_id}", response_model=DeletedWebhookEndpoint)
def delete_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> DeletedWebhookEndpoint:
    with request.app.state.sessions() as s:
        hooks.delete_endpoint(s, who.user_id, endpoint_id)
    return DeletedWebhookEndpoint(id=endpoint_id)


@router.get("/{endpoint_id}/deliveries", response_model=WebhookDeliveryList)
def list_deliveries(endpoint_id: str, request: Request, who: PrincipalDep,
                    limit: int = Query(20, ge=1, le=100)) -> WebhookDeliveryList:
    """The endpoint's latest events, newest first, each with its attempts: what the settings page shows."""
    with request.app.state.sessions() as s:
        rows = hooks.recent_deliveries(s, who.user_id, endpoint_id, limit + 1)
    return WebhookDeliveryList(data=[WebhookDeliveryObject(**r) for r in rows[:limit]], has_more=len(rows) > limit)


@router.post("/{endpoint_id}/rotate_secret", response_model=WebhookEndpointObject)
def rotate_secret(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookEndpointObject:
    with request.app.state.sessions() as s:
        return _obj(request, hooks.rotate_secret(s, request.app.state.secret_box, who.user_id, endpoint_id),
                    with_secret=True)


@router.post("/{endpoint_id}/test", response_model=WebhookTestResult)
async def test_endpoint(endpoint_id: str, request: Request, who: PrincipalDep) -> WebhookTestResult:
    req = parse_model(TestWebhookEndpoint, (await read_body(request, _LIMIT)).fields)
    if req.event_type not in hooks.EVENT_TYPES:
        raise InvalidRequest(f"Unsupported event type '{req.event_type}'.", param="event_type")
    with request.app.state.sessions() as s:
        ep = hooks.get_endpoint(s, who.user_id, endpoint_id)
    state = request.app.state
    try:
        status = await run_in_threadpool(hooks.send_test, state.settings, state.secret_box, ep, req.event_type)
    except hooks.Undeliverable:
        # One answer for every failure: naming the cause (refused, closed port, timeout) would turn this
        # into a scanner of whatever networks the server can see.
        raise InvalidRequest("The test event could not be delivered to this endpoint's url.", param="url",
                             code="webhook_unreachable") from None
    return WebhookTestResult(webhook_endpoint_id=ep.id, event_type=req.event_type, status_code=status)
