"""What every page module's forms share: the signed-in person, field clean-up, CSRF, refusals, redirects."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from mutoscope.accounts.service import Principal
from mutoscope.http.body import read_body
from mutoscope.protocol.base import Body
from mutoscope.errors import MutoscopeError
from mutoscope.web import session

WhoDep = Annotated[Principal, Depends(session.require_principal)]


class FormError:
    """What a form shows above itself: the same code and message the API would return."""

    def __init__(self, message: str, code: str | None = None, param: str | None = None, status: int = 400):
        self.message, self.code, self.param, self.status = message, code, param, status

    @classmethod
    def of(cls, e: MutoscopeError) -> "FormError":
        # Services validate through protocol.parse, so a bad field arrives here as a MutoscopeError too.
        return cls(e.message, e.code, e.param, e.status_code)


def safe_next(url: str | None) -> str:
    """Only a local path: a sign-in link must not bounce the user to another site."""
    # Browsers read a backslash like a slash ("/\\host" is "//host"); neither may leave this server.
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url or urlsplit(url).netloc:
        return "/"
    return url


def form_fields(body: Body) -> dict[str, Any]:
    """Browsers send every field, empty or not; an empty optional field means 'not set'."""
    return {k: v.strip() if isinstance(v, str) else v for k, v in body.fields.items()
            if not (isinstance(v, str) and not v.strip())}


async def read_form(request: Request) -> dict[str, Any]:
    body = await read_body(request, 1024 * 1024)
    session.check_csrf(request, body.fields)
    return form_fields(body)


def see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
