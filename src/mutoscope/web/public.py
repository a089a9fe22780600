"""Public links in the browser: the page anyone may open without signing in (`/p/<token>`: the video and
nothing else, no way into the rest of the app), its files, and the owner's make/revoke buttons.
See videos/public_links.py for what a link is."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from mutoscope.accounts.service import Principal
from mutoscope.errors import MutoscopeError
from mutoscope.http.files import stored_response
from mutoscope.services import services
from mutoscope.web.forms import FormError, WhoDep, read_form, see
from mutoscope.web.pages import templates

router = APIRouter(include_in_schema=False)

# Nothing on these pages is for search engines, frames on other sites, or referrers.
PRIVATE_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                   "Cache-Control": "private, no-store"}


def _limited(request: Request) -> Response | None:
    client = request.client.host if request.client else "-"
    wait = services(request).public_rate.allow(client)
    if wait is None:
        return None
    return Response("Too many requests for public videos from this address; try again shortly.", status_code=429,
                    media_type="text/plain", headers={"Retry-After": str(max(1, int(wait) + 1)), **PRIVATE_HEADERS})


def _gone(request: Request) -> Response:
    return templates.TemplateResponse(request, "public.html", {"video": None}, status_code=404,
                                      headers=PRIVATE_HEADERS)


@router.get("/p/{token}")
def public_page(request: Request, token: str) -> Response:
    if (refused := _limited(request)) is not None:
        return refused
    v = services(request).public_links.resolve(token)
    if v is None:
        return _gone(request)
    return templates.TemplateResponse(request, "public.html", {"video": v, "token": token}, headers=PRIVATE_HEADERS)


@router.get("/p/{token}/{variant}")
@router.head("/p/{token}/{variant}")
def public_file(request: Request, token: str, variant: Literal["video", "thumbnail"]) -> Response:
    if (refused := _limited(request)) is not None:
        return refused
    v = services(request).public_links.resolve(token)
    if v is None:
        return _gone(request)
    # The owner's own view of the file: the published attempt, with its watermark and signed manifest, and
    # the same retention and takedown rules as for the owner.
    owner = Principal(user_id=v.owner_id, user_name="", role="member", key_id=None, plan=None)
    try:
        stored = services(request).video_queries.content(owner, v.id, variant)
    except MutoscopeError:
        return _gone(request)
    return stored_response(request, stored, headers=PRIVATE_HEADERS)


@router.post("/videos/{video_id}/public-link")
async def make_public_link(request: Request, who: WhoDep, video_id: str) -> Response:
    fields = await read_form(request)
    days = fields.get("days")
    try:
        parsed = float(days) if days not in (None, "") else None
        await run_in_threadpool(services(request).public_links.create, who.user_id, video_id, parsed)
    except ValueError:
        return await _refused(request, who, video_id, "days must be a number of days, or empty for no expiry")
    except MutoscopeError as e:
        return await _refused(request, who, video_id, e)
    return see(f"/videos/{video_id}#public-link")


@router.post("/videos/{video_id}/public-link/revoke")
async def revoke_public_link(request: Request, who: WhoDep, video_id: str) -> Response:
    await read_form(request)
    await run_in_threadpool(services(request).public_links.revoke, who.user_id, video_id)
    return see(f"/videos/{video_id}#public-link")


async def _refused(request: Request, who: Principal, video_id: str, e) -> Response:
    from mutoscope.errors import InvalidRequest
    from mutoscope.web.routes import _video_page

    error = e if isinstance(e, MutoscopeError) else InvalidRequest(str(e), param="days", code="invalid_days")
    found = services(request).video_queries.view(who, video_id)
    return _video_page(request, who, found, FormError.of(error), "public")
