"""The pages. Each handler calls the same service on app.state as the matching /v1 route.

Forms post back to the page they came from; a success redirects (303, so reloading never
re-submits), a `MutoscopeError` re-renders the form with the error's code and message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response

from mutoscope.accounts.service import Principal
from mutoscope.api.body import Body, read_body
from mutoscope.errors import MutoscopeError
from mutoscope.protocol.videos import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE
from mutoscope.storage.http import stored_response
from mutoscope.web import session
from mutoscope.web.pages import render

router = APIRouter(include_in_schema=False)
WhoDep = Annotated[Principal, Depends(session.require_principal)]
PAGE_SIZE = 12
ACTIVE = ("queued", "in_progress")
# Generation settings a form may send (OpenAI's fields, then Mutoscope's extensions).
CREATE_FIELDS = ("prompt", "model", "size", "seconds", "seed", "negative_prompt", "num_inference_steps",
                 "guidance_scale")


class FormError:
    """What a form shows above itself: the same code and message the API would return."""

    def __init__(self, message: str, code: str | None = None, param: str | None = None, status: int = 400):
        self.message, self.code, self.param, self.status = message, code, param, status

    @classmethod
    def of(cls, e: Exception) -> "FormError":
        if isinstance(e, MutoscopeError):
            return cls(e.message, e.code, e.param, e.status_code)
        errors = list(e.errors()) if isinstance(e, RequestValidationError) else []
        first = errors[0] if errors else {}
        param = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")) or None
        msg = f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg", "invalid request")
        return cls(msg, "invalid_value", param, 400)


def _safe_next(url: str | None) -> str:
    """Only a local path: a sign-in link must not bounce the user to another site."""
    # Browsers read a backslash like a slash ("/\\host" is "//host"); neither may leave this server.
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url or urlsplit(url).netloc:
        return "/"
    return url


def _form_fields(body: Body) -> dict[str, Any]:
    """Browsers send every field, empty or not; an empty optional field means 'not set'."""
    return {k: v.strip() if isinstance(v, str) else v for k, v in body.fields.items()
            if not (isinstance(v, str) and not v.strip())}


async def _form(request: Request) -> dict[str, Any]:
    body = await read_body(request, 1024 * 1024)
    session.check_csrf(request, body.fields)
    return _form_fields(body)


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# Library.
def _sidebar(request: Request, who: Principal) -> dict[str, Any]:
    exports = request.app.state.exports.list(who, None, 1).data
    return {"usage": request.app.state.accounts.usage(who), "export": exports[0] if exports else None}


@router.get("/")
def library(request: Request, who: WhoDep, after: str | None = None, before: str | None = None) -> Response:
    videos = request.app.state.videos
    if before:  # a page back: the PAGE_SIZE videos just newer than `before`, shown newest first
        page = videos.list(who, before, PAGE_SIZE, "asc")
        items, has_newer, has_older = list(reversed(page.data)), page.has_more, True
    else:
        page = videos.list(who, after, PAGE_SIZE, "desc")
        items, has_newer, has_older = page.data, after is not None, page.has_more
    return render(request, "library.html", videos=items, has_newer=has_newer and bool(items),
                  has_older=has_older and bool(items), live=any(v.status in ACTIVE for v in items),
                  **_sidebar(request, who))


# Create.
def _models(request: Request) -> list[dict[str, Any]]:
    """The public model names for the form, each with the sizes and durations it accepts."""
    catalog = request.app.state.catalog
    out = []
    for info in getattr(catalog, "list_models", lambda: [])():
        for name in (*info.aliases, info.name):
            note = "test fixture" if info.test_model else ("not installed" if info.installed is False else "")
            label = name if name == info.name else f"{name} → {info.name}"
            out.append({"name": name, "label": f"{label} ({note})" if note else label,
                        "sizes": list(info.sizes), "seconds": list(info.seconds)})
    return out


def _create_page(request: Request, who: Principal, values: dict[str, Any], error: FormError | None = None
                 ) -> Response:
    models = _models(request)
    values = {"model": DEFAULT_MODEL, "size": DEFAULT_SIZE, "seconds": DEFAULT_SECONDS, **values}
    chosen = next((m for m in models if m["name"] == values["model"]), models[0] if models else None)
    return render(request, "create.html", status_code=error.status if error else 200, models=models,
                  chosen=chosen, values=values, error=error, usage=request.app.state.accounts.usage(who))


@router.get("/videos/new")
def create_page(request: Request, who: WhoDep) -> Response:
    return _create_page(request, who, {})


@router.post("/videos/new")
async def create(request: Request, who: WhoDep) -> Response:
    body = await read_body(request, request.app.state.settings.max_upload_bytes)
    session.check_csrf(request, body.fields)
    fields = {k: v for k, v in _form_fields(body).items() if k in CREATE_FIELDS}
    files = {k: u for k, u in body.files.items() if k == "input_reference" and u.data}  # no file chosen: none
    try:
        video, _ = await run_in_threadpool(request.app.state.videos.create, who, Body(fields, files))
    except (MutoscopeError, RequestValidationError) as e:
        return _create_page(request, who, fields, FormError.of(e))
    return _see(f"/videos/{video.id}")


# One video.
def _video_page(request: Request, who: Principal, video_id: str, error: FormError | None = None,
                form: str | None = None, values: dict[str, Any] | None = None) -> Response:
    video = request.app.state.videos.retrieve(who, video_id)  # someone else's id: NotFound → 404 page
    seconds = []
    try:
        seconds = list(request.app.state.catalog.resolve(video.model).seconds)
    except LookupError:
        pass
    return render(request, "video.html", status_code=error.status if error else 200, video=video,
                  live=video.status in ACTIVE, extend_seconds=seconds, error=error, form=form,
                  values=values or {})


@router.get("/videos/{video_id}")
def video_page(request: Request, who: WhoDep, video_id: str) -> Response:
    return _video_page(request, who, video_id)


@router.api_route("/videos/{video_id}/content", methods=["GET", "HEAD"], response_class=Response)
def video_content(request: Request, who: WhoDep, video_id: str,
                  variant: Literal["video", "thumbnail", "spritesheet"] = "video",
                  download: bool = Query(False)) -> Response:
    asset = request.app.state.videos.content(who, video_id, variant)
    # Range requests get 206 on every storage backend, so the player can seek.
    return stored_response(request, asset, disposition="attachment" if download else "inline",
                           headers={"Cache-Control": "private, max-age=3600"})


@router.post("/videos/{video_id}/remix")
async def remix(request: Request, who: WhoDep, video_id: str) -> Response:
    fields = await _form(request)
    fields = {k: v for k, v in fields.items() if k in ("prompt", "seed")}
    try:
        video, _ = await run_in_threadpool(request.app.state.videos.remix, who, video_id, Body(fields))
    except (MutoscopeError, RequestValidationError) as e:
        return _video_page(request, who, video_id, FormError.of(e), "remix", fields)
    return _see(f"/videos/{video.id}")


@router.post("/videos/{video_id}/extend")
async def extend(request: Request, who: WhoDep, video_id: str) -> Response:
    fields = await _form(request)
    body = Body({"video": {"id": video_id}, **{k: v for k, v in fields.items() if k in ("prompt", "seconds")}})
    try:
        video, _ = await run_in_threadpool(request.app.state.videos.extend, who, body)
    except (MutoscopeError, RequestValidationError) as e:
        return _video_page(request, who, video_id, FormError.of(e), "extend", fields)
    return _see(f"/videos/{video.id}")


@router.post("/videos/{video_id}/delete")
async def delete(request: Request, who: WhoDep, video_id: str) -> Response:
    await _form(request)
    await run_in_threadpool(request.app.state.videos.delete, who, video_id)
    return _see("/")


# Exports.
@router.post("/exports")
async def export(request: Request, who: WhoDep) -> Response:
    await _form(request)
    await run_in_threadpool(request.app.state.exports.create, who)
    return _see("/#export")


@router.get("/exports/{export_id}/download")
def export_download(request: Request, who: WhoDep, export_id: str) -> Response:
    return stored_response(request, request.app.state.exports.content(who, export_id), disposition="attachment")
