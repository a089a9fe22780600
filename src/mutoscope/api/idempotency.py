"""`Idempotency-Key` on the POSTs that create or charge: a retried request gets the first answer, not a second job.

A client that times out, or whose connection drops after the server queued its job, cannot know whether
the job exists; the official SDKs retry such a POST by themselves, re-sending the request's headers. With
the same `Idempotency-Key` (`extra_headers={"Idempotency-Key": ...}` once per logical request), the retry
is answered from the database:

- same account, same key, same method, path and body within 24 h: the first answer, byte for byte, with
  `Idempotent-Replayed: true`; nothing is created or charged again;
- same key with another body or route: 422 `idempotency_key_reused`;
- same key while the first request is still running: 409 `idempotency_key_in_progress` (the SDKs retry a
  409 after a pause, and by then the first answer is there);
- a first request that failed (any non-2xx, or an exception) leaves no record: it created nothing, so a
  retry is simply tried again.

Keys belong to an account: two accounts using the same key never see each other's answers.

Use: `APIRouter(..., route_class=IdempotentRoute)` makes every POST of that router honour the header (other
methods pass straight through); for one route of a router, `router.add_api_route(path, endpoint,
methods=["POST"], route_class_override=IdempotentRoute)`. A request without the header is untouched. The body is held in
memory to compare it, so a route that streams a larger-than-upload body to disk (imports) is not one.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from mutoscope.api.deps import get_principal
from mutoscope.db.models import IdempotencyKey
from mutoscope.errors import Conflict, InvalidRequest, MutoscopeError
from mutoscope.services import services

HEADER = "idempotency-key"
TTL_S = 24 * 3600
# A first request still marked running after this long died with its process; its key may be used again.
ABANDONED_S = 15 * 60
# Printable ASCII, as the SDKs make them (`stainless-python-retry-<uuid>`) and as a header can carry.
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_BOUNDARY = re.compile(r'boundary="?([^";,\s]+)"?', re.IGNORECASE)
# Answer headers worth replaying: the body's type and what the API adds (poll hint, deprecation notices).
_REPLAYED = ("content-type", "openai-poll-after-ms", "deprecation", "sunset", "link", "retry-after")


class IdempotencyKeyReused(MutoscopeError):
    status_code = 422
    type = "invalid_request_error"
    code = "idempotency_key_reused"


def fingerprint(method: str, path: str, content_type: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and body. A multipart body is made again for each try
    with a new random boundary, so the boundary is taken out before hashing."""
    m = _BOUNDARY.search(content_type)
    if m and content_type.lower().startswith("multipart/"):
        body = body.replace(m.group(1).encode("latin-1"), b"")
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), content_type.split(";")[0].strip().lower().encode()):
        h.update(part + b"\n")
    h.update(body)
    return h.hexdigest()


def _claim(request: Request, owner_id: str, key: str, fp: str) -> IdempotencyKey | None:
    """Mark the key as taken by this request (None), or return the earlier request's row."""
    t = int(time.time())
    with services(request).sessions() as s:
        # Expired keys, and first tries that died mid-request, no longer hold their key.
        s.execute(delete(IdempotencyKey).where(IdempotencyKey.owner_id == owner_id, IdempotencyKey.key == key,
                                               (IdempotencyKey.created_at <= t - TTL_S)
                                               | (IdempotencyKey.status_code.is_(None)
                                                  & (IdempotencyKey.created_at <= t - ABANDONED_S))))
        for _ in range(2):  # a key released between our insert and the read below is tried once more
            s.add(IdempotencyKey(owner_id=owner_id, key=key, fingerprint=fp, created_at=t))
            try:
                s.commit()
                return None
            except IntegrityError:
                s.rollback()
            row = s.scalar(select(IdempotencyKey).where(IdempotencyKey.owner_id == owner_id, IdempotencyKey.key == key))
            if row is not None:
                s.expunge(row)
                return row
        return None


def _finish(request: Request, owner_id: str, key: str, response: Response | None) -> None:
    with services(request).sessions() as s:
        where = (IdempotencyKey.owner_id == owner_id, IdempotencyKey.key == key, IdempotencyKey.status_code.is_(None))
        if response is None:
            s.execute(delete(IdempotencyKey).where(*where))
        else:
            headers = [[k, v] for k, v in response.headers.items() if k.lower() in _REPLAYED]
            s.execute(update(IdempotencyKey).where(*where).values(status_code=response.status_code,
                                                                  headers=headers, body=bytes(response.body)))
        s.commit()


def _replay(row: IdempotencyKey) -> Response:
    response = Response(content=row.body or b"", status_code=row.status_code or 200)
    for k, v in row.headers or []:
        response.headers[k] = v
    response.headers["Idempotent-Replayed"] = "true"
    return response


async def idempotent(request: Request, handler: Callable[[Request], Coroutine[Any, Any, Response]]) -> Response:
    """Run `handler` once per (account, Idempotency-Key); see the module docstring."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return await handler(request)
    if not _KEY.fullmatch(key):
        raise InvalidRequest("Idempotency-Key must be 1 to 255 printable ASCII characters.", param="Idempotency-Key",
                             code="invalid_idempotency_key")
    who = await run_in_threadpool(get_principal, request)
    body = await request.body()  # held for the handler too: Starlette replays it to request.stream()
    fp = fingerprint(request.method, request.url.path, request.headers.get("content-type", ""), body)
    earlier = await run_in_threadpool(_claim, request, who.user_id, key, fp)
    if earlier is not None:
        if earlier.fingerprint != fp:
            raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request. Use a new "
                                       "key for a new request.", param="Idempotency-Key")
        if earlier.status_code is None:
            raise Conflict("A request with this Idempotency-Key is still being processed. Retry in a moment.",
                           param="Idempotency-Key", code="idempotency_key_in_progress", headers={"Retry-After": "1"})
        return _replay(earlier)
    try:
        response = await handler(request)
    except Exception:  # a cancelled request keeps its mark until ABANDONED_S
        await run_in_threadpool(_finish, request, who.user_id, key, None)
        raise
    done = 200 <= response.status_code < 300 and hasattr(response, "body")
    await run_in_threadpool(_finish, request, who.user_id, key, response if done else None)
    return response


class IdempotentRoute(APIRoute):
    """A route class whose POSTs honour `Idempotency-Key` (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await idempotent(request, handler)

        return route
