"""The browser session: its signing secret, the CSRF token, and who a session belongs to.

The cookie is Starlette's signed (not encrypted) session, so it holds only what may be read by
its own holder: the API key's id and the CSRF token — never the key itself. Every request
re-checks that key (revoked, expired, account disabled), so revoking a key signs its browser
sessions out too.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path

from fastapi import Request
from sqlalchemy import select

from mutoscope.accounts.service import Principal
from mutoscope.db.models import ApiKey, User, now
from mutoscope.storage.private import private_dir
from mutoscope.errors import PermissionDenied
from mutoscope.lifecycle import service as lifecycle

SECRET_FILE = "web-session-secret"
COOKIE = "mutoscope_session"
MAX_AGE = 14 * 24 * 3600
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


def sign_in(request: Request, who: Principal) -> None:
    # A fresh session: a new CSRF token, nothing carried over from before sign-in.
    request.session.clear()
    request.session["key_id"] = who.key_id
    request.session["csrf"] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()


def principal_for_key(request: Request, key_id: str) -> Principal | None:
    """The same checks as `accounts.service.authenticate`, starting from a key id instead of the key."""
    with request.app.state.sessions() as s:
        row = s.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id)
                        .where(ApiKey.id == key_id)).first()
        if row is None:
            return None
        key, user = row
        t = now()
        if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= t) or user.disabled:
            return None
        who = Principal(user_id=user.id, user_name=user.name, role=user.role, key_id=key.id, plan=user.plan)
        phase = request.app.state.phase.get()
        if phase.phase != "active":
            # As for the API: seeing the sunset banner is this user's notice and export offer.
            lifecycle.record_export_offer(s, who.user_id, phase)
        return who


def current_principal(request: Request) -> Principal | None:
    key_id = request.session.get("key_id")
    if not key_id:
        return None
    who = principal_for_key(request, key_id)
    if who is None:  # key revoked or expired, account disabled: this session is over
        request.session.pop("key_id", None)
    return who


def require_principal(request: Request) -> Principal:
    """Dependency for pages that need a signed-in user."""
    who = current_principal(request)
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/")
    request.state.principal = who
    return who
