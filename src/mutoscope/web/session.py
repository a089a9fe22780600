"""The browser session: its signing secret, the CSRF token, and who a session belongs to.

The cookie is Starlette's signed (not encrypted) session, so it holds only what may be read by its own
holder: a random session token and the CSRF token. The token's SHA-256 is a `WebSession` row
(accounts/people.py), which every request re-checks: a session revoked from the sessions page, expired,
of a disabled account, or started with an API key that has since been revoked or expired is over, and
that browser is sent to /signin on its next request. Before sign-in the cookie carries only the CSRF
token, so the sign-in, sign-up and invite forms are protected too.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path

from fastapi import Request

from mutoscope.accounts import people
from mutoscope.accounts.service import Principal
from mutoscope.services import services
from mutoscope.storage.private import private_dir
from mutoscope.errors import PermissionDenied
from mutoscope.lifecycle import service as lifecycle

SECRET_FILE = "web-session-secret"
COOKIE = "mutoscope_session"
MAX_AGE = people.SESSION_SECONDS
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """Raised by a page that needs a signed-in user; the web app answers with a redirect to /signin."""

    def __init__(self, next_url: str = "/"):
        self.next_url = next_url


def load_or_create_secret(data_dir: Path) -> str:
    """The session signing secret: made on first start, kept with mode 0600 like the owner key file."""
    path = data_dir / SECRET_FILE
    private_dir(data_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(20):  # another process may have created it a moment ago and still be writing
            secret = path.read_text().strip()
            if len(secret) >= 32:
                return secret
            time.sleep(0.05)
        # An empty or truncated file (a crash mid-write): replace it, which signs every browser out.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


def csrf_token(request: Request) -> str:
    """This session's token for the hidden field of every POST form (made on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(request: Request, fields: dict) -> None:
    """403 unless the form carries this session's token. SameSite=Lax already keeps the cookie off
    cross-site POSTs; the token also covers same-site attackers and browsers without SameSite."""
    sent = fields.pop(CSRF_FIELD, None)
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise PermissionDenied("This form is missing its security token or it has expired. Reload the page "
                               "and try again.", code="csrf_failed")


def _client(request: Request) -> tuple[str, str]:
    ip = request.client.host if request.client else ""
    return request.headers.get("user-agent", ""), ip


def client_ip(request: Request) -> str:
    return _client(request)[1]


def sign_in(request: Request, who: Principal) -> None:
    """Start a server-side session for `who` (a password or an API key) and put its token in the cookie."""
    ua, ip = _client(request)
    with services(request).sessions() as s:
        _, token = people.start_session(s, who, ua, ip)
    # A fresh session: a new CSRF token, nothing carried over from before sign-in (no session fixation).
    request.session.clear()
    request.session["sid"] = token
    request.session["csrf"] = secrets.token_urlsafe(32)
    request.state.principal, request.state.signed_in_checked = who, True


def sign_out(request: Request) -> None:
    token = request.session.get("sid")
    if isinstance(token, str):
        with services(request).sessions() as s:
            people.end_session(s, token)
    request.session.clear()


def _resolve(request: Request, token: str) -> Principal | None:
    with services(request).sessions() as s:
        found = people.resolve_session(s, token)
        if found is None:
            return None
        who, row = found
        request.state.web_session_id = row.id
        phase = services(request).phase.get()
        if phase.phase != "active":
            # As for the API: seeing the sunset banner is this user's notice and export offer.
            lifecycle.record_export_offer(s, who.user_id, phase)
        return who


def current_principal(request: Request) -> Principal | None:
    if getattr(request.state, "signed_in_checked", False):  # resolved once per request
        return request.state.principal
    token = request.session.get("sid")
    who = _resolve(request, token) if isinstance(token, str) else None
    if who is None and "sid" in request.session:  # revoked, expired, disabled, key revoked: this session is over
        request.session.pop("sid", None)
    request.state.principal, request.state.signed_in_checked = who, True
    return who


def current_session_id(request: Request) -> str | None:
    """The `WebSession` id of this request's browser (after `current_principal`)."""
    return getattr(request.state, "web_session_id", None)


def require_principal(request: Request) -> Principal:
    """Dependency for pages that need a signed-in user."""
    who = current_principal(request)
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/")
    return who
