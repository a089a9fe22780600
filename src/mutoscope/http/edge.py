"""What every response and every request URL goes through, whatever route answers it.

`SecurityHeaders` writes one policy onto every response: pages may run, style, show and frame only this
server's own files (no inline script), no page may be framed by another (clickjacking the one-click
Delete, Revoke and Share buttons), no file is content-sniffed into something else, referrers stay on this
server, and over TLS the browser is told to stay on it (HSTS) and cookies are marked Secure.

`UnstorableUrl` refuses a path or query that holds text PostgreSQL cannot store or compare (a NUL) before
any route looks it up; bodies, forms and MCP arguments are checked by their readers with the same rule
(`protocol.base.refuse_unstorable`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutoscope.http.errors import error_response
from mutoscope.protocol.base import unstorable_at

# The web app: its own scripts and styles only (no inline code anywhere in the templates); images may be a
# blob: preview of a file being uploaded, media a blob: of a recording; no plugins; forms post home only.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "media-src 'self' blob:; connect-src 'self'; font-src 'self'; frame-src 'self'; object-src 'none'; "
            "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
# JSON, media and files: nothing in them may run, and nothing may frame them.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
# Swagger UI and ReDoc, shipped by fastapi-offline: each page starts its bundle with one inline script, allowed
# by its hash (computed from the page itself), and both inject their own <style> elements.
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
DOCS_CSP = ("default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
HSTS = "max-age=31536000"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def _hashes(html: bytes) -> str:
    return "".join(" "
                   + f"'sha256-{base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()}'"
                    for m in _INLINE_SCRIPT.finditer(html))


def _secure_cookies(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v + b"; secure") if k.lower() == b"set-cookie" and b"secure" not in v.lower() else (k, v)
            for k, v in headers]


class SecurityHeaders:
    """The headers above on every response. A header a route set itself (a stricter Referrer-Policy on a page
    that shows a secret once) is kept."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # uvicorn sets the scheme from X-Forwarded-Proto only for a proxy in --forwarded-allow-ips.
        tls = scope.get("scheme") == "https"
        docs = scope["path"] in DOCS_PATHS
        held: list[Message] = []

        def decorate(start: Message, csp: str | None) -> Message:
            raw = _secure_cookies(list(start.get("headers", []))) if tls else list(start.get("headers", []))
            start = {**start, "headers": raw}
            headers = MutableHeaders(scope=start)
            html = headers.get("content-type", "").startswith("text/html")
            headers.setdefault("Content-Security-Policy", csp or (PAGE_CSP if html else DATA_CSP))
            headers.setdefault("X-Frame-Options", "DENY")
            headers.setdefault("X-Content-Type-Options", "nosniff")
            headers.setdefault("Referrer-Policy", "same-origin")
            headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
            if tls:
                headers.setdefault("Strict-Transport-Security", HSTS)
            return start

        async def send_with_headers(message: Message) -> None:
            if not docs:
                await send(decorate(message, None) if message["type"] == "http.response.start" else message)
                return
            # A docs page is a few KB: hold it to hash its inline script into the policy.
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
                start = next(m for m in held if m["type"] == "http.response.start")
                await send(decorate(start, DOCS_CSP.format(hashes=_hashes(body))))
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_with_headers)


class UnstorableUrl:
    """400 naming the parameter for a path or query holding a NUL (or a lone surrogate)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Decoded as the routes will see them (invalid UTF-8 becomes U+FFFD, which is storable).
            found = unstorable_at(scope["path"], "path")
            for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
                found = found or unstorable_at(k, "query") or unstorable_at(v, k)
            if found:
                what = "path" if found == "path" else f"query parameter '{found}'"
                response = error_response(400, f"The request's {what} contains a NUL or another character that "
                                               "cannot be stored.", param=found, code="invalid_value")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
