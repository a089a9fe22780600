"""Webhook endpoints, the event outbox, signing and delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import WebhookDelivery, WebhookEndpoint, new_id, now  # noqa: F401 (new_id re-exported)
from mutoscope.errors import InvalidRequest, NotFound

logger = logging.getLogger(__name__)

EVENT_TYPES = ("video.completed", "video.failed")
MAX_ATTEMPTS = 8  # 5 s, 10 s, 20 s … about 10 minutes in all


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _check(url: str | None, event_types: list[str] | None) -> None:
    if url is not None and not url.startswith(("https://", "http://")):
        raise InvalidRequest("url must be an http(s) URL.", param="url", code="invalid_url")
    for t in event_types or []:
        if t not in EVENT_TYPES:
            raise InvalidRequest(f"Unsupported event type '{t}'. Supported: {', '.join(EVENT_TYPES)}.",
                                 param="event_types")


def create_endpoint(session: Session, owner_id: str, *, name: str, url: str, event_types: list[str]) -> WebhookEndpoint:
    _check(url, event_types)
    if not event_types:
        raise InvalidRequest("event_types must name at least one event.", param="event_types")
    ep = WebhookEndpoint(owner_id=owner_id, name=name, url=url, event_types=list(event_types), secret=new_secret())
    session.add(ep)
    session.commit()
    return ep


def get_endpoint(session: Session, owner_id: str, endpoint_id: str) -> WebhookEndpoint:
    ep = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id,
                                                      WebhookEndpoint.owner_id == owner_id,
                                                      WebhookEndpoint.deleted_at.is_(None)))
    if ep is None:
        raise NotFound(f"No webhook endpoint found with id '{endpoint_id}'.", param="webhook_endpoint_id")
    return ep


def list_endpoints(session: Session, owner_id: str) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.owner_id == owner_id,
                                                              WebhookEndpoint.deleted_at.is_(None))
                                .order_by(WebhookEndpoint.seq.desc())))


def update_endpoint(session: Session, owner_id: str, endpoint_id: str, **changes) -> WebhookEndpoint:
    ep = get_endpoint(session, owner_id, endpoint_id)
    _check(changes.get("url"), changes.get("event_types"))
    for k, v in changes.items():
        if v is not None:
            setattr(ep, k, v)
    ep.updated_at = now()
    session.commit()
    return ep


def delete_endpoint(session: Session, owner_id: str, endpoint_id: str) -> None:
    ep = get_endpoint(session, owner_id, endpoint_id)
    ep.deleted_at = now()
    session.commit()


def rotate_secret(session: Session, owner_id: str, endpoint_id: str) -> WebhookEndpoint:
    ep = get_endpoint(session, owner_id, endpoint_id)
    ep.secret, ep.updated_at = new_secret(), now()
    session.commit()
    return ep


def event_payload(event_id: str, event_type: str, data: dict) -> str:
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "created_at": now(), "data": data},
                      separators=(",", ":"))


def emit(session: Session, owner_id: str, event_type: str, data: dict) -> int:
    """Queue an event for every endpoint of the owner subscribed to it, in the caller's transaction (the
    transactional outbox: the event exists if and only if the change it reports committed). Returns how many."""
    count = 0
    for ep in list_endpoints(session, owner_id):
        if event_type in ep.event_types:
            event_id = new_id("evt_")
            session.add(WebhookDelivery(id=event_id, endpoint_id=ep.id, event_type=event_type,
                                        payload=event_payload(event_id, event_type, data), next_attempt_at=time.time()))
            count += 1
    return count


def post(url: str, secret: str, event_id: str, body: str, timeout: float = 10.0) -> int:
    ts = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": event_id, "webhook-timestamp": str(ts),
               "webhook-signature": sign(secret, event_id, ts, body), "user-agent": "Mutoscope-Webhooks/1"}
    return httpx.post(url, content=body.encode(), headers=headers, timeout=timeout).status_code


class Deliverer:
    """Sends due deliveries in a background thread; failed ones are retried with exponential backoff."""

    def __init__(self, sessions: sessionmaker[Session], interval: float = 0.5):
        self.sessions, self.interval = sessions, interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mutoscope-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:
                logger.exception("webhook delivery loop failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    def deliver_due(self) -> None:
        with self.sessions() as s:
            due = list(s.execute(
                select(WebhookDelivery, WebhookEndpoint).join(WebhookEndpoint,
                                                              WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.attempts < MAX_ATTEMPTS,
                       WebhookDelivery.next_attempt_at <= time.time()).limit(20)))
            for delivery, ep in due:
                try:
                    status = post(ep.url, ep.secret, delivery.id, delivery.payload)
                    error = None if 200 <= status < 300 else f"HTTP {status}"
                except httpx.HTTPError as e:
                    status, error = None, type(e).__name__
                delivery.attempts += 1
                delivery.last_status = status
                if error is None:
                    delivery.delivered_at = now()
                else:
                    delivery.last_error = error
                    delivery.next_attempt_at = time.time() + 5 * 2 ** (delivery.attempts - 1)
                s.commit()
