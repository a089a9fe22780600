"""Webhook endpoints, the event outbox, signing and delivery; `WebhookService`, what every front end calls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import queue
import secrets
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mutoscope import outbound
from mutoscope.accounts.service import Principal
from mutoscope.db.models import (  # noqa: F401 (new_id re-exported)
    User, WebhookAttempt, WebhookDelivery, WebhookEndpoint, new_id, now)
from mutoscope.errors import InvalidRequest, NotFound
from mutoscope.protocol.base import cursor_page
from mutoscope.protocol.webhooks import (
    CreateWebhookEndpoint,
    DeletedWebhookEndpoint,
    UpdateWebhookEndpoint,
    WebhookDeliveryList,
    WebhookDeliveryObject,
    WebhookEndpointList,
    WebhookEndpointObject,
    WebhookTestResult,
)
from mutoscope.sealing import SealError, SecretBox

if TYPE_CHECKING:
    from mutoscope.config import Settings

logger = logging.getLogger(__name__)

EVENT_TYPES = ("video.completed", "video.failed", "batch.completed", "batch.failed", "batch.expired",
               "batch.cancelled")
MAX_ATTEMPTS = 8  # 5 s, 10 s, 20 s … about 10 minutes in all
SCHEMES = ("http", "https")
# An endpoint that keeps failing is tried at most this often, however many events wait for it.
MAX_ENDPOINT_BACKOFF_S = 300.0


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def open_secret(box: SecretBox, endpoint_id: str, stored: str) -> str:
    """A signing secret in clear. A plaintext row (written by an older server sharing the database after
    this one sealed the rest) is read as it is and sealed at the next start. Raises SealError."""
    if not SecretBox.is_sealed(stored):
        return stored
    return box.open(stored, context=endpoint_id)


def reveal(box: SecretBox, ep: WebhookEndpoint) -> str:
    return open_secret(box, ep.id, ep.secret)


def seal_plaintext_secrets(sessions: sessionmaker[Session], box: SecretBox) -> int:
    """Seal every secret still stored in clear (rows from before sealing existed). Run at start; idempotent."""
    with sessions() as s:
        rows = [ep for ep in s.scalars(select(WebhookEndpoint)) if not SecretBox.is_sealed(ep.secret)]
        for ep in rows:
            ep.secret = box.seal(ep.secret, context=ep.id)
        s.commit()
    if rows:
        logger.info("sealed %d webhook signing secrets that were stored in clear", len(rows))
    return len(rows)


def _check(settings: "Settings", url: str | None, event_types: list[str] | None) -> None:
    if url is not None:
        outbound.check_destination(url, settings, schemes=SCHEMES, param="url")
    for t in event_types or []:
        if t not in EVENT_TYPES:
            raise InvalidRequest(f"Unsupported event type '{t}'. Supported: {', '.join(EVENT_TYPES)}.",
                                 param="event_types")


def create_endpoint(session: Session, settings: "Settings", box: SecretBox, owner_id: str, *, name: str, url: str,
                    event_types: list[str]) -> WebhookEndpoint:
    """Resolves the URL's host (blocking): call from a worker thread."""
    _check(settings, url, event_types)
    if not event_types:
        raise InvalidRequest("event_types must name at least one event.", param="event_types")
    endpoint_id = new_id("we_")
    ep = WebhookEndpoint(id=endpoint_id, owner_id=owner_id, name=name, url=url, event_types=list(event_types),
                         secret=box.seal(new_secret(), context=endpoint_id))
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


def update_endpoint(session: Session, settings: "Settings", owner_id: str, endpoint_id: str,
                    **changes) -> WebhookEndpoint:
    """Resolves a new URL's host (blocking): call from a worker thread."""
    ep = get_endpoint(session, owner_id, endpoint_id)
    _check(settings, changes.get("url"), changes.get("event_types"))
    for k, v in changes.items():
        if v is not None:
            setattr(ep, k, v)
    ep.updated_at = now()
    session.commit()
    return ep


def delete_endpoint(session: Session, owner_id: str, endpoint_id: str) -> None:
    """Deleting also drops the endpoint's queued events: the deliverer only sends to live endpoints."""
    ep = get_endpoint(session, owner_id, endpoint_id)
    ep.deleted_at = now()
    session.commit()


def rotate_secret(session: Session, box: SecretBox, owner_id: str, endpoint_id: str) -> WebhookEndpoint:
    ep = get_endpoint(session, owner_id, endpoint_id)
    ep.secret, ep.updated_at = box.seal(new_secret(), context=ep.id), now()
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


def recent_deliveries(session: Session, owner_id: str, endpoint_id: str, limit: int = 20) -> list[dict]:
    """An endpoint's latest events, newest first, each with its attempts (time, HTTP status, delivered or
    not). Why a connection failed is not told, for the reason `Undeliverable` gives."""
    ep = get_endpoint(session, owner_id, endpoint_id)
    rows = list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == ep.id)
                                .order_by(WebhookDelivery.created_at.desc().nulls_last()).limit(limit)))
    attempts: dict[str, list[WebhookAttempt]] = {}
    if rows:
        for a in session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_([d.id for d in rows]))
                                 .order_by(WebhookAttempt.seq)):
            attempts.setdefault(a.delivery_id, []).append(a)
    out = []
    for d in rows:
        tries = attempts.get(d.id, [])
        state = ("delivered" if d.delivered_at else "failed" if d.attempts >= MAX_ATTEMPTS
                 else "retrying" if d.attempts else "pending")
        out.append({"id": d.id, "event_type": d.event_type, "created_at": d.created_at,
                    "state": state, "attempts": d.attempts, "delivered_at": d.delivered_at,
                    "next_attempt_at": None if d.delivered_at or state == "failed" else d.next_attempt_at,
                    "tries": [{"at": a.at, "status": a.status, "ok": a.error is None, "duration_ms": a.duration_ms}
                              for a in tries]})
    return out


class Undeliverable(Exception):
    """The event did not reach the receiver. Deliberately without detail: why a connection failed (refused
    by policy, closed port, no route) is exactly what a port scan through this server would want."""


def post(http: httpx.Client, url: str, secret: str, event_id: str, body: str) -> int:
    """Sign and send one event; the receiver's HTTP status. Raises Undeliverable."""
    ts = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": event_id, "webhook-timestamp": str(ts),
               "webhook-signature": sign(secret, event_id, ts, body), "user-agent": "Mutoscope-Webhooks/1"}
    try:
        return outbound.post(http, url, content=body.encode(), headers=headers)
    except InvalidRequest:  # a URL stored before URLs were validated
        raise Undeliverable("invalid_url") from None
    except outbound.Blocked:
        raise Undeliverable("refused_by_outbound_policy") from None
    except httpx.HTTPError as e:
        raise Undeliverable(type(e).__name__) from None


def claim_seconds(settings: "Settings") -> float:
    """How long an event being sent is kept from every other sender: past the longest request, so one
    server never sends an event another is still sending, short enough that a crash's claim expires soon."""
    return settings.webhook_timeout_s * 2 + 30


def attempt(http: httpx.Client, box: SecretBox, endpoint_id: str, url: str, sealed: str, event_id: str,
            payload: str) -> tuple[int | None, str | None]:
    """Send one event once: the receiver's HTTP status (None without an answer) and the error to log
    (None when it was delivered)."""
    try:
        status = post(http, url, open_secret(box, endpoint_id, sealed), event_id, payload)
    except Undeliverable as e:
        return None, str(e)
    except SealError:
        logger.error("webhook endpoint %s: its secret does not open with this server's key", endpoint_id)
        return None, "secret_unreadable"
    except Exception:
        logger.exception("webhook delivery %s failed", event_id)
        return None, "internal_error"
    return status, None if 200 <= status < 300 else f"HTTP {status}"


def record_attempt(session: Session, delivery_id: str, started: float, status: int | None, error: str | None) -> None:
    """Log one try at an event; a failed one is due again after its backoff."""
    d = session.get(WebhookDelivery, delivery_id)
    d.attempts += 1
    d.last_status = status
    session.add(WebhookAttempt(delivery_id=delivery_id, endpoint_id=d.endpoint_id, at=started, status=status,
                               error=error, duration_ms=int((time.time() - started) * 1000)))
    if error is None:
        d.delivered_at = now()
    else:
        d.last_error = error
        d.next_attempt_at = time.time() + 5 * 2 ** (d.attempts - 1)
    session.commit()


class Deliverer:
    """Sends the outbox from a pool of worker threads, so one slow or broken receiver holds up nobody else.

    A scheduler thread picks, per round, the endpoints that have an event due and hands each to a worker,
    with at most one delivery in flight per endpoint and half the workers per account: one endpoint that
    hangs until the timeout takes one worker, and one account with many such endpoints leaves the other
    half to everyone else. Every request ends within `webhook_timeout_s` in all (outbound's deadline).
    An endpoint that fails backs off as a whole (doubling, up to five minutes), on top of each event's
    own backoff, so a dead receiver with a thousand queued events costs one attempt per period. Any
    exception in one delivery is recorded on that delivery and retried like a failed POST; deleted
    endpoints and disabled accounts are never sent to. Each event is claimed with a conditional UPDATE
    before it is sent, so two servers sharing a database do not both send it, and a claim left by a
    crash expires and is retried.

    Args:
        sessions: the session factory.
        settings: outbound policy, `webhook_concurrency`, `webhook_timeout_s`.
        box: opens the sealed signing secrets.
    """

    def __init__(self, sessions: sessionmaker[Session], settings: "Settings", box: SecretBox,
                 interval: float = 0.5):
        self.sessions, self.settings, self.box, self.interval = sessions, settings, box, interval
        self.workers = settings.webhook_concurrency
        self.per_owner = max(2, self.workers // 2)
        self.lease_s = claim_seconds(settings)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._busy: dict[str, str] = {}  # endpoint id -> owner id, while a worker sends to it
        self._owners: Counter[str] = Counter()
        self._backoff: dict[str, tuple[int, float]] = {}  # endpoint id -> (failures in a row, not before)
        self._jobs: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._http: httpx.Client | None = None

    def start(self) -> None:
        self._http = outbound.client(self.settings, timeout=self.settings.webhook_timeout_s)
        # Daemon threads: a receiver that hangs must not hold up the server's exit either.
        self._threads = [threading.Thread(target=self._loop, name="mutoscope-webhooks", daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"mutoscope-webhook-{i}", daemon=True)
                          for i in range(self.workers)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for _ in range(self.workers):
            self._jobs.put(None)
        if self._threads:
            self._threads[0].join(timeout=5)
        if self._http is not None:
            self._http.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatch_due()
            except Exception:  # a database hiccup: try again next round
                logger.exception("webhook scheduling failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    def dispatch_due(self) -> int:
        """Hand endpoints with a due event to idle workers; returns how many were handed out."""
        t = time.time()
        with self._lock:
            free = self.workers - len(self._busy)
            for e in [e for e, (_, until) in self._backoff.items() if until < t - 3600]:
                del self._backoff[e]  # long quiet (or deleted): forget its failures
            skip = set(self._busy) | {e for e, (_, until) in self._backoff.items() if until > t}
            full = [o for o, n in self._owners.items() if n >= self.per_owner]
        if free <= 0:
            return 0
        # Busy, backing-off endpoints and accounts at their share are left out in SQL, not after a LIMIT:
        # otherwise one account's thousand due endpoints would fill every round's window.
        q = (select(WebhookDelivery.endpoint_id, WebhookEndpoint.owner_id,
                    func.min(WebhookDelivery.next_attempt_at).label("due"))
             .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
             .join(User, User.id == WebhookEndpoint.owner_id)
             .where(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.attempts < MAX_ATTEMPTS,
                    WebhookDelivery.next_attempt_at <= t, WebhookEndpoint.deleted_at.is_(None),
                    User.disabled.is_(False))
             .group_by(WebhookDelivery.endpoint_id, WebhookEndpoint.owner_id)
             .order_by("due").limit(4 * self.workers))
        if skip:
            q = q.where(WebhookDelivery.endpoint_id.not_in(skip))
        if full:
            q = q.where(WebhookEndpoint.owner_id.not_in(full))
        with self.sessions() as s:
            candidates = [(e, o) for e, o, _ in s.execute(q)]
        handed = 0
        with self._lock:
            for endpoint_id, owner_id in candidates:
                if len(self._busy) >= self.workers:
                    break
                if endpoint_id in self._busy or self._owners[owner_id] >= self.per_owner:
                    continue
                self._busy[endpoint_id] = owner_id
                self._owners[owner_id] += 1
                self._jobs.put((endpoint_id, owner_id))
                handed += 1
        return handed

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            endpoint_id, owner_id = job
            ok = False
            try:
                ok = self.deliver_next(endpoint_id)
            except Exception:  # contained: this endpoint backs off, the others carry on
                logger.exception("webhook delivery to endpoint %s failed", endpoint_id)
            finally:
                with self._lock:
                    self._busy.pop(endpoint_id, None)
                    self._owners[owner_id] -= 1
                    if self._owners[owner_id] <= 0:
                        del self._owners[owner_id]
                    if ok:
                        self._backoff.pop(endpoint_id, None)
                    else:
                        failures = self._backoff.get(endpoint_id, (0, 0.0))[0] + 1
                        delay = min(MAX_ENDPOINT_BACKOFF_S, 5 * 2 ** (failures - 1))
                        self._backoff[endpoint_id] = (failures, time.time() + delay)
                self._wake.set()  # the endpoint may have more events waiting

    def deliver_next(self, endpoint_id: str) -> bool:
        """Claim and send the endpoint's earliest due event. True when it was delivered (or none was due)."""
        t = time.time()
        with self.sessions() as s:
            ep = s.scalar(select(WebhookEndpoint).join(User, User.id == WebhookEndpoint.owner_id)
                          .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.deleted_at.is_(None),
                                 User.disabled.is_(False)))
            delivery = ep and s.scalar(
                select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id,
                                              WebhookDelivery.delivered_at.is_(None),
                                              WebhookDelivery.attempts < MAX_ATTEMPTS,
                                              WebhookDelivery.next_attempt_at <= t)
                .order_by(WebhookDelivery.next_attempt_at).limit(1))
            if delivery is None:
                return True
            claimed = s.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == delivery.id, WebhookDelivery.delivered_at.is_(None),
                WebhookDelivery.next_attempt_at == delivery.next_attempt_at,
            ).values(next_attempt_at=t + self.lease_s)).rowcount
            s.commit()
            if claimed != 1:
                return True  # another server took it
            url, sealed, delivery_id, payload = ep.url, ep.secret, delivery.id, delivery.payload
        started = time.time()
        status, error = attempt(self._http, self.box, endpoint_id, url, sealed, delivery_id, payload)
        with self.sessions() as s:
            record_attempt(s, delivery_id, started, status, error)
        return error is None


class WebhookService:
    """Webhook endpoints for every front end: `/v1/webhook_endpoints` and the settings pages make the
    same calls, scoped to the caller (another account's endpoint is a 404).

    A test event is one behaviour everywhere: sent at once, so the caller learns the receiver's answer
    (or that there was none), and logged in the outbox like any event, so the delivery list shows it and
    a failed one is retried like a real one.

    `create`, `update` and `test` block (vetting a URL resolves its host; a test waits for the receiver):
    async front ends call them in a worker thread.

    Args:
        box: seals new signing secrets and opens stored ones.
    """

    def __init__(self, sessions: sessionmaker[Session], settings: "Settings", box: SecretBox):
        self.sessions, self.settings, self.box = sessions, settings, box

    def _object(self, ep: WebhookEndpoint, with_secret: bool = False) -> WebhookEndpointObject:
        try:
            secret = reveal(self.box, ep)
        except SealError:  # sealed under another key: the endpoint still lists, and rotating repairs it
            secret = None
        return WebhookEndpointObject(id=ep.id, created_at=ep.created_at, updated_at=ep.updated_at,
                                     event_types=list(ep.event_types), name=ep.name, url=ep.url,
                                     signing_secret_hint=secret[:10] + "…" if secret else None,
                                     signing_secret=secret if with_secret else None)

    def create(self, who: Principal, req: CreateWebhookEndpoint) -> WebhookEndpointObject:
        """The new endpoint with its signing secret, shown this once."""
        with self.sessions() as s:
            ep = create_endpoint(s, self.settings, self.box, who.user_id, name=req.name, url=req.url,
                                 event_types=req.event_types)
            return self._object(ep, with_secret=True)

    def list(self, who: Principal) -> WebhookEndpointList:
        with self.sessions() as s:
            data = [self._object(ep) for ep in list_endpoints(s, who.user_id)]
        return cursor_page(WebhookEndpointList, data)

    def retrieve(self, who: Principal, endpoint_id: str) -> WebhookEndpointObject:
        with self.sessions() as s:
            return self._object(get_endpoint(s, who.user_id, endpoint_id))

    def update(self, who: Principal, endpoint_id: str, req: UpdateWebhookEndpoint) -> WebhookEndpointObject:
        with self.sessions() as s:
            return self._object(update_endpoint(s, self.settings, who.user_id, endpoint_id, name=req.name,
                                                url=req.url, event_types=req.event_types))

    def delete(self, who: Principal, endpoint_id: str) -> DeletedWebhookEndpoint:
        with self.sessions() as s:
            delete_endpoint(s, who.user_id, endpoint_id)
        return DeletedWebhookEndpoint(id=endpoint_id)

    def deliveries(self, who: Principal, endpoint_id: str, limit: int = 20) -> WebhookDeliveryList:
        """The endpoint's latest events, newest first, each with its attempts."""
        with self.sessions() as s:
            rows = recent_deliveries(s, who.user_id, endpoint_id, limit + 1)
        return WebhookDeliveryList(data=[WebhookDeliveryObject(**r) for r in rows[:limit]],
                                   has_more=len(rows) > limit)

    def rotate_secret(self, who: Principal, endpoint_id: str) -> WebhookEndpointObject:
        """The endpoint with its new signing secret, shown this once."""
        with self.sessions() as s:
            return self._object(rotate_secret(s, self.box, who.user_id, endpoint_id), with_secret=True)

    def test(self, who: Principal, endpoint_id: str, event_type: str) -> WebhookTestResult:
        if event_type not in EVENT_TYPES:
            raise InvalidRequest(f"Unsupported event type '{event_type}'.", param="event_type")
        event_id = new_id("evt_")
        payload = event_payload(event_id, event_type, {"id": "video_test", "test": True})
        with self.sessions() as s:
            ep = get_endpoint(s, who.user_id, endpoint_id)
            # Claimed while it is sent here, so no deliverer sends it too; a crash leaves it to them.
            s.add(WebhookDelivery(id=event_id, endpoint_id=ep.id, event_type=event_type, payload=payload,
                                  next_attempt_at=time.time() + claim_seconds(self.settings)))
            s.commit()
            url, sealed = ep.url, ep.secret
        started = time.time()
        with outbound.client(self.settings, timeout=self.settings.webhook_timeout_s) as http:
            status, error = attempt(http, self.box, endpoint_id, url, sealed, event_id, payload)
        with self.sessions() as s:
            record_attempt(s, event_id, started, status, error)
        if status is None:
            # One answer for every failure: naming the cause (refused, closed port, timeout) would turn this
            # into a scanner of whatever networks the server can see.
            raise InvalidRequest("The test event could not be delivered to this endpoint's url.", param="url",
                                 code="webhook_unreachable")
        return WebhookTestResult(webhook_endpoint_id=endpoint_id, event_type=event_type, status_code=status)
