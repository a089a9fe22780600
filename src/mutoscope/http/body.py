"""Read a request body that may be JSON or multipart, within a size limit and a nesting depth.

The limit is enforced while the body streams in, the same way for a Content-Length body and a
chunked one: reading stops at the first byte past the limit and the caller gets a 413, so a client
can never make the server buffer more than the limit. JSON is checked for nesting depth before it
is parsed (without recursion), because the standard parser recurses once per level.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutoscope.errors import InvalidRequest, PayloadTooLarge
from mutoscope.protocol.base import Body, Upload, nesting_within, refuse_unstorable

# Multipart framing (boundaries, part headers) and the other fields ride on top of a file of the limit.
SLACK = 1024 * 1024
# Deep enough for every request shape we accept (the deepest is about 4), far below the parser's recursion.
MAX_JSON_DEPTH = 64
# A request names a handful of files at most (input_reference, video); more is not a real client.
MAX_FILES = 8
MAX_FIELDS = 1000


def too_large(limit: int) -> PayloadTooLarge:
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return PayloadTooLarge(f"Request body is larger than the limit of {size}.")


async def bounded_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks; raises PayloadTooLarge at the first chunk that goes past `limit` bytes.

    A declared Content-Length over the limit is refused before anything is read. Chunked bodies have
    no length up front, so the count is kept as they arrive and nothing past the limit is held.
    """
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise too_large(limit)
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_large(limit)
        yield chunk


async def read_body(request: Request, limit: int) -> Body:
    """JSON, multipart or urlencoded fields and files, with `limit` bytes per file (and for JSON)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data") or ctype.startswith("application/x-www-form-urlencoded"):
        body = await _read_form(request, limit, multipart=ctype.startswith("multipart/form-data"))
        refuse_unstorable(body.fields)
        return body
    raw = bytearray()
    async for chunk in bounded_stream(request, limit + SLACK):
        raw += chunk
    if not raw:
        return Body(fields={})
    # Up to the upload limit of bracket scanning: off the event loop, so one large body stalls no one else.
    data = await run_in_threadpool(loads_json, bytes(raw))
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    refuse_unstorable(data)
    return Body(fields=data)


async def _read_form(request: Request, limit: int, *, multipart: bool) -> Body:
    stream = bounded_stream(request, limit + SLACK)
    try:
        if multipart:
            # Files spool to disk past 1 MB; fields are held in memory, each at most `limit`.
            parser: MultiPartParser | FormParser = MultiPartParser(
                request.headers, stream, max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=limit)
        else:
            parser = FormParser(request.headers, stream, max_fields=MAX_FIELDS, max_part_size=limit)
        form = await parser.parse()
    except MultiPartException as e:
        raise InvalidRequest(f"We could not parse the form body of your request: {e.message}",
                             code="invalid_multipart") from None
    try:
        pairs: list[tuple[str, str]] = []
        files: dict[str, Upload] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(limit + 1)
                if len(data) > limit:
                    raise too_large(limit)
                files[key] = Upload(value.filename or "upload", value.content_type or "", data)
            else:
                pairs.append((key, value))
        return Body(fields=form_fields(pairs), files=files)
    finally:
        await form.close()


def loads_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads with a nesting bound; anything it cannot parse is a 400 `invalid_json`."""
    data = raw.encode() if isinstance(raw, str) else raw
    if not nesting_within(data, max_depth):
        raise InvalidRequest(f"We could not parse the JSON body of your request: it is malformed or nests "
                             f"deeper than {max_depth} levels.", code="invalid_json")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidRequest("We could not parse the JSON body of your request.", code="invalid_json") from None


def form_fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields as the JSON body they stand for. Multipart can't nest: the SDKs send objects as `a[b]=v`
    (or a JSON string) and arrays of objects as repeated `a[][k]=v` (`_object_array` pairs those up)."""
    fields: dict[str, Any] = {}
    arrays: dict[str, list[tuple[str, str]]] = {}
    for key, value in pairs:
        if "[" in key and key.endswith("]"):
            outer, inner = key[:-1].split("[", 1)
            if inner.startswith("]["):
                if not isinstance(fields.get(outer), str):  # a JSON-string form of the array wins
                    arrays.setdefault(outer, []).append((inner[2:], value))
                continue
            fields.setdefault(outer, {})
            if isinstance(fields[outer], dict):
                fields[outer][inner] = value
            continue
        if value.startswith("{") and value.endswith("}"):
            try:
                fields[key] = loads_json(value)
                continue
            except InvalidRequest:
                pass
        fields[key] = value
    for outer, items in arrays.items():
        if outer not in fields or isinstance(fields[outer], list):
            fields[outer] = _object_array(outer, items)
    return fields


def _object_array(outer: str, items: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The objects of `outer[][k]=v` fields, read by position: the n-th value of each key belongs to the n-th
    object. Two layouts reach us. The openai SDK groups values by key (every `storyboard[][prompt]`, then every
    `storyboard[][seconds]`, ...), so each key's values arrive in one run; browsers and the web app's forms
    interleave them object by object, where a key may be left out of one object (a disabled field is not
    sent), so there a repeated key starts the next object. Grouped values whose counts differ cannot be
    paired: which object lacks the key is lost on the wire, so that is refused rather than guessed."""
    runs: dict[str, int] = {}
    counts: dict[str, int] = {}
    previous = None
    for k, _ in items:
        counts[k] = counts.get(k, 0) + 1
        if k != previous:
            runs[k] = runs.get(k, 0) + 1
        previous = k
    grouped = all(n == 1 for n in runs.values())
    if grouped:
        if len(set(counts.values())) > 1:
            sent = ", ".join(f"{outer}[][{k}] {n} time{'s' if n != 1 else ''}" for k, n in counts.items())
            raise InvalidRequest(
                f"The objects of '{outer}' cannot be paired up: {sent}. Each object's keys are read by position, "
                f"so every object must carry the same keys; or send '{outer}' as a JSON string or the request "
                "as a JSON body.", param=outer, code="unpairable_array")
        out: list[dict[str, str]] = [{} for _ in range(max(counts.values(), default=0))]
        seen: dict[str, int] = {}
        for k, v in items:
            out[seen.get(k, 0)][k] = v
            seen[k] = seen.get(k, 0) + 1
        return out
    objects: list[dict[str, str]] = []
    for k, v in items:
        if not objects or k in objects[-1]:
            objects.append({})
        objects[-1][k] = v
    return objects


class BodyLimit:
    """A ceiling on every request body, counted as it arrives (Content-Length or chunked).

    read_body applies each route's own, smaller limit; this is the backstop for a body read any other
    way, so no route can be made to buffer more than the upload limit. Imports stream archives to disk
    under their own, larger limit and are left to it.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ()):
        self.app, self.limit, self.exempt = app, limit, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large(self.limit)  # raised inside the route, so the envelope handler answers
            return message

        await self.app(scope, bounded, send)
