"""The pages. Each handler calls the same service (from `services(request)`) as the matching /v1 route.

Forms post back to the page they came from; a success redirects (303, so reloading never
re-submits), a `MutoscopeError` re-renders the form with the error's code and message.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from mutoscope.accounts.service import Principal
from mutoscope.http.body import read_body
from mutoscope.engine import camera as camera_moves
from mutoscope.protocol.base import Body, Upload
from mutoscope.errors import InvalidRequest, MutoscopeError, NotFound
from mutoscope.protocol.videos import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE, VideoObject
from mutoscope.db.repositories import VideoFilter
from mutoscope.videos.queries import SharedVideo
from mutoscope.http.files import stored_response
from mutoscope.services import services
from mutoscope.web import session
from mutoscope.web.choices import edit_strength_of, model_choices
from mutoscope.web.forms import FormError, WhoDep, form_fields, read_form, safe_next, see
from mutoscope.web.pages import render
from mutoscope.web.storyboard import CAMERA_LABELS

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 12
MAX_BULK = 100
ACTIVE = ("queued", "in_progress")
# Generation settings a form may send (OpenAI's fields, then Mutoscope's extensions).
CREATE_FIELDS = ("prompt", "model", "size", "seconds", "seed", "negative_prompt", "num_inference_steps",
                 "guidance_scale", "characters", "camera")


# Library.
def _sidebar(request: Request, who: Principal) -> dict[str, Any]:
    exports = services(request).exports.list(who, None, 1).data
    return {"usage": services(request).accounts.usage(who), "export": exports[0] if exports else None}


def _day(value: str | None, param: str, end: bool = False) -> int | None:
    """A YYYY-MM-DD field (what <input type=date> sends) as a UTC time: its first second, or the next day's."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{param}: expected a date like 2025-01-31.", param=param, code="invalid_value") from None
    t = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    if end:
        t += timedelta(days=1) if day < date.max else timedelta(0)
    return int(t.timestamp())


NOTICES = {"deleted": "Deleted the selected videos.", "exported": "Exporting the selected videos; the download "
           "appears under Export when it is ready.", "none": "Select one or more videos first."}


@router.get("/")
def library(request: Request, who: WhoDep, after: str | None = None, before: str | None = None,
            q: str | None = None, status: str | None = None, model: str | None = None,
            date_from: str | None = Query(None, alias="from"), date_to: str | None = Query(None, alias="to"),
            batch: str | None = Query(None, max_length=64), notice: str | None = None) -> Response:
    videos = services(request).video_queries
    filters = {k: v for k, v in (("q", q), ("status", status), ("model", model), ("from", date_from),
                                 ("to", date_to), ("batch", batch)) if v}
    error, items, has_newer, has_older = None, [], False, False
    try:
        f = VideoFilter(text=(q or "").strip() or None, status=status or None, model=model or None,
                        since=_day(date_from, "from"), until=_day(date_to, "to", end=True), batch=batch or None)
        if before:  # a page back: the PAGE_SIZE videos just newer than `before`, shown newest first
            page = videos.search(who, f, before, PAGE_SIZE, "asc")
            items, has_newer, has_older = list(reversed(page.data)), page.has_more, True
        else:
            page = videos.search(who, f, after, PAGE_SIZE, "desc")
            items, has_newer, has_older = page.data, after is not None, page.has_more
    except MutoscopeError as e:
        error = FormError.of(e)
    return render(request, "library.html", status_code=error.status if error else 200, videos=items,
                  has_newer=has_newer and bool(items), has_older=has_older and bool(items),
                  live=any(v.status in ACTIVE for v in items), filters=filters, query=urlencode(filters),
                  models_used=videos.models_used(who), batches_used=videos.batches_used(who), error=error,
                  notice=NOTICES.get(notice or ""),
                  **_sidebar(request, who))


@router.post("/videos/bulk")
async def bulk(request: Request, who: WhoDep) -> Response:
    """The library's checkboxes: delete or export the selected videos (each one as its own call would)."""
    fields = await read_form(request)
    chosen = fields.get("ids")
    ids = [v for v in chosen.values() if isinstance(v, str)][:MAX_BULK] if isinstance(chosen, dict) else []
    back = safe_next(fields.get("back")) if fields.get("back") else "/"
    back += "&" if "?" in back else "?"
    if not ids:
        return see(back + "notice=none")
    if fields.get("action") == "export":
        await run_in_threadpool(services(request).exports.create, who, ids)
        return see(back + "notice=exported#export")

    def delete_all() -> None:
        for video_id in ids:
            try:
                services(request).videos.delete(who, video_id)
            except NotFound:  # already gone (or never this user's): nothing to delete
                pass

    await run_in_threadpool(delete_all)
    return see(back + "notice=deleted")


@router.get("/feed")
def feed(request: Request, who: WhoDep, after: str | None = None) -> Response:
    items, more = services(request).video_queries.feed(who, after, PAGE_SIZE)
    return render(request, "feed.html", items=items, has_older=more and bool(items), has_newer=after is not None)


# Live status: a small fragment the page polls; it changes text and attributes in place from it.
@router.get("/videos/status")
def status_fragment(request: Request, who: WhoDep, ids: str = Query("", max_length=50 * 40)) -> Response:
    found = []
    for video_id in [i for i in ids.split(",") if i][:50]:
        try:
            found.append(services(request).video_queries.retrieve(who, video_id))
        except NotFound:  # gone, or never visible to this user: simply not in the answer
            pass
    return render(request, "_status_list.html", videos=found, headers={"Cache-Control": "no-store"})


# Create.
def _create_page(request: Request, who: Principal, values: dict[str, Any], error: FormError | None = None,
                 source: VideoObject | None = None) -> Response:
    admission = services(request).admission
    models = model_choices(admission, who, services(request).settings.web_test_models)
    values = {"model": DEFAULT_MODEL, **values}
    chosen = next((m for m in models if m.name == values["model"]), models[0] if models else None)
    if chosen is not None:
        allowed_sizes = [c.value for c in chosen.sizes if c.allowed]
        allowed_seconds = [c.value for c in chosen.seconds if c.allowed]
        if values.get("size") not in [c.value for c in chosen.sizes]:
            preferred = [x for x in (chosen.default_size, DEFAULT_SIZE) if x in allowed_sizes]
            values["size"] = next(iter(preferred + allowed_sizes), None)
        if values.get("seconds") not in [c.value for c in chosen.seconds]:
            values["seconds"] = DEFAULT_SECONDS if DEFAULT_SECONDS in allowed_seconds \
                else next(iter(allowed_seconds), None)
    moves = {m.name: _moves(request, m.name) for m in models}
    return render(request, "create.html", status_code=error.status if error else 200, models=models,
                  chosen=chosen, values=values, error=error, usage=services(request).accounts.usage(who),
                  plan=admission.plan_of(who), source=source, moves=moves.get(chosen.name, []) if chosen else [],
                  camera_labels=CAMERA_LABELS, examples=services(request).settings.prompt_examples,
                  model_data=[{"name": m.name, "sizes": [c.__dict__ for c in m.sizes],
                               "seconds": [c.__dict__ for c in m.seconds], "moves": moves[m.name],
                               "audio": m.takes_audio} for m in models])


def _moves(request: Request, model: str) -> list[str]:
    """The camera moves a model offers (engine/camera.py); none when the catalog cannot say."""
    try:
        return list(camera_moves.moves_of(services(request).catalog.resolve(model)))
    except LookupError:
        return []


@router.get("/videos/new")
def create_page(request: Request, who: WhoDep, source: str | None = Query(None, alias="from"),
                token: str | None = None) -> Response:
    """`?from=<id>` (and the share link's token for an unlisted video): start from that video's settings."""
    values: dict[str, Any] = {}
    original = None
    if source:
        values = services(request).video_queries.settings_of(who, source, token)
        original = services(request).video_queries.retrieve(who, source) if token is None else None
        # A new take on the same idea: a new seed unless the person types the original one in.
        values["original_seed"] = values.pop("seed", None)
    return _create_page(request, who, values, source=original)


@router.post("/videos/new")
async def create(request: Request, who: WhoDep) -> Response:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    session.check_csrf(request, body.fields)
    form = form_fields(body)
    fields = {k: v for k, v in form.items() if k in CREATE_FIELDS}
    files = {k: u for k, u in body.files.items() if k in ("input_reference", "audio_reference") and u.data}
    try:
        # "Reuse prompt" on a video started from an image: that image again, unless another file was chosen.
        if isinstance(again := form.get("first_frame_of"), str) and "input_reference" not in files:
            data = await run_in_threadpool(services(request).video_queries.first_frame_of, who, again)
            files["input_reference"] = Upload("first-frame.png", "image/png", data)
        video, _ = await run_in_threadpool(services(request).videos.create, who, Body(fields, files))
    except MutoscopeError as e:
        values = {**fields, **({"first_frame_of": again} if isinstance(again, str) else {})}
        return _create_page(request, who, values, FormError.of(e))
    return see(f"/videos/{video.id}")


# Edit (video to video): one of the caller's finished videos, or an uploaded clip.
def _edit_page(request: Request, who: Principal, values: dict[str, Any], error: FormError | None = None
               ) -> Response:
    admission = services(request).admission
    source = None
    if values.get("video"):
        found = services(request).video_queries.view(who, str(values["video"]))  # not the caller's to see: the 404 page
        source = found.video if found.mine else None
        if source is None:
            raise NotFound(f"No video found with id '{values['video']}'.", param="video_id", code="video_not_found")
    models = model_choices(admission, who, services(request).settings.web_test_models)
    # The strength control starts at the model's own (the source's; for an upload, the chosen model's).
    strengths = {m.name: s for m in models if (s := edit_strength_of(admission, m.name)) is not None}
    model = source.model if source else values.get("model") or (models[0].name if models else None)
    default = edit_strength_of(admission, model) if model else None
    return render(request, "edit.html", status_code=error.status if error else 200, source=source, values=values,
                  models=models, error=error, usage=services(request).accounts.usage(who),
                  strengths=strengths, default_strength=default)


@router.get("/videos/edit")
def edit_page(request: Request, who: WhoDep, video: str | None = None) -> Response:
    return _edit_page(request, who, {"video": video} if video else {})


@router.post("/videos/edit")
async def edit(request: Request, who: WhoDep) -> Response:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    session.check_csrf(request, body.fields)
    form = form_fields(body)
    files = {k: u for k, u in body.files.items() if k == "video" and u.data}
    if form.get("video") and not files:  # a video of the caller's: it keeps its own model, size and length
        fields: dict[str, Any] = {k: v for k, v in form.items() if k in ("prompt", "seed", "edit_strength")}
        fields["video"] = {"id": str(form["video"])}
    else:
        fields = {k: v for k, v in form.items()
                  if k in ("prompt", "seed", "model", "size", "seconds", "edit_strength")}
    try:
        video, _ = await run_in_threadpool(services(request).videos.edit, who, Body(fields, files))
    except MutoscopeError as e:
        values = {k: v for k, v in form.items()
                  if k in ("prompt", "seed", "model", "size", "seconds", "video", "edit_strength")}
        return _edit_page(request, who, values, FormError.of(e))
    return see(f"/videos/{video.id}")


# One video: its owner's page, or what others see (by id when shared with everyone, or by its link).
def _video_page(request: Request, who: Principal, found: SharedVideo, error: FormError | None = None,
                form: str | None = None, values: dict[str, Any] | None = None) -> Response:
    video = found.video
    seconds, can_edit = [], True
    try:
        entry = services(request).catalog.resolve(video.model)
        # A model that cannot re-generate a clip is offered neither edit nor remix (the service refuses both).
        seconds, can_edit = list(entry.seconds), getattr(entry, "can_edit", True)
    except LookupError:
        pass
    # Someone else's video is reached through its share link; its files and remix go through the link too.
    base = f"/videos/{video.id}" if found.mine else f"/s/{found.token}"
    # A remix of one clip re-generates it as an edit does, so it gets the same strength control, starting at the
    # model's own; a storyboard's remix renders its shots afresh and has none.
    strength = edit_strength_of(services(request).admission, video.model) if can_edit and not video.shots else None
    return render(request, "video.html", status_code=error.status if error else 200, video=video, found=found,
                  mine=found.mine, base=base, default_strength=strength,
                  lineage=services(request).video_queries.lineage(who, video.id, found.token),
                  live=video.status in ACTIVE, extend_seconds=seconds, can_edit=can_edit, error=error, form=form,
                  values=values or {}, extensions=services(request).admission.plan_of(who).extensions,
                  public_links=services(request).public_links.enabled,
                  public_link=_public_link(request, video.id) if found.mine else None)


def _public_link(request: Request, video_id: str):
    """The owner's live public link for this video, if any (videos/public_links.py)."""
    from mutoscope.db.models import Video

    links = services(request).public_links
    if not links.enabled:
        return None
    with services(request).sessions() as s:
        row = s.query(Video).filter(Video.id == video_id).first()
        return links.current(row) if row is not None else None


@router.get("/videos/{video_id}")
def video_page(request: Request, who: WhoDep, video_id: str) -> Response:
    found = services(request).video_queries.view(who, video_id)  # no access: the same 404 page as a missing id
    if not found.mine and found.token:
        return see(f"/s/{found.token}")
    return _video_page(request, who, found)


def _content(request: Request, who: Principal, video_id: str, variant: str, download: bool,
             token: str | None = None) -> Response:
    asset = services(request).video_queries.content(who, video_id, variant, token)
    # Range requests get 206 on every storage backend, so the player can seek.
    return stored_response(request, asset, disposition="attachment" if download else "inline",
                           headers={"Cache-Control": "private, max-age=3600"})


@router.api_route("/videos/{video_id}/content", methods=["GET", "HEAD"], response_class=Response)
def video_content(request: Request, who: WhoDep, video_id: str,
                  variant: Literal["video", "thumbnail", "spritesheet"] = "video",
                  download: bool = Query(False)) -> Response:
    return _content(request, who, video_id, variant, download)


async def _remix(request: Request, who: Principal, found: SharedVideo) -> Response:
    fields = await read_form(request)
    fields = {k: v for k, v in fields.items() if k in ("prompt", "seed", "shot", "edit_strength")}
    if fields.get("shot") in ("", None):  # "the whole video"
        fields.pop("shot", None)
    elif isinstance(fields["shot"], str) and fields["shot"].isdigit():
        fields["shot"] = int(fields["shot"])
    token = None if found.mine else found.token
    try:
        video, _ = await run_in_threadpool(services(request).videos.remix, who, found.video.id, Body(fields), token)
    except MutoscopeError as e:
        return _video_page(request, who, found, FormError.of(e), "remix", fields)
    return see(f"/videos/{video.id}")


@router.post("/videos/{video_id}/remix")
async def remix(request: Request, who: WhoDep, video_id: str) -> Response:
    return await _remix(request, who, services(request).video_queries.view(who, video_id))


@router.post("/videos/{video_id}/extend")
async def extend(request: Request, who: WhoDep, video_id: str) -> Response:
    fields = await read_form(request)
    body = Body({"video": {"id": video_id}, **{k: v for k, v in fields.items() if k in ("prompt", "seconds")}})
    try:
        video, _ = await run_in_threadpool(services(request).videos.extend, who, body)
    except MutoscopeError as e:
        return _video_page(request, who, services(request).video_queries.view(who, video_id), FormError.of(e), "extend",
                           fields)
    return see(f"/videos/{video.id}")


@router.post("/videos/{video_id}/retry")
async def retry(request: Request, who: WhoDep, video_id: str) -> Response:
    await read_form(request)
    try:
        video, _ = await run_in_threadpool(services(request).videos.retry, who, video_id)
    except MutoscopeError as e:
        return _video_page(request, who, services(request).video_queries.view(who, video_id), FormError.of(e), "retry")
    return see(f"/videos/{video.id}")


@router.post("/videos/{video_id}/visibility")
async def visibility(request: Request, who: WhoDep, video_id: str) -> Response:
    fields = await read_form(request)
    try:
        await run_in_threadpool(services(request).videos.set_visibility, who, video_id, fields.get("visibility"))
    except MutoscopeError as e:
        if isinstance(e, NotFound):
            raise
        return _video_page(request, who, services(request).video_queries.view(who, video_id), FormError.of(e), "share")
    return see(f"/videos/{video_id}#sharing")


@router.post("/videos/{video_id}/delete")
async def delete(request: Request, who: WhoDep, video_id: str) -> Response:
    await read_form(request)
    await run_in_threadpool(services(request).videos.delete, who, video_id)
    return see("/")


# Share links. Anyone signed in to this server who has the link (unlisted), or anyone at all (everyone).
@router.get("/s/{token}")
def shared_page(request: Request, who: WhoDep, token: str) -> Response:
    return _video_page(request, who, services(request).video_queries.shared(who, token))


@router.api_route("/s/{token}/content", methods=["GET", "HEAD"], response_class=Response)
def shared_content(request: Request, who: WhoDep, token: str,
                   variant: Literal["video", "thumbnail", "spritesheet"] = "video",
                   download: bool = Query(False)) -> Response:
    found = services(request).video_queries.shared(who, token)
    return _content(request, who, found.video.id, variant, download, token)


@router.post("/s/{token}/remix")
async def shared_remix(request: Request, who: WhoDep, token: str) -> Response:
    return await _remix(request, who, services(request).video_queries.shared(who, token))


# Exports.
@router.post("/exports")
async def export(request: Request, who: WhoDep) -> Response:
    await read_form(request)
    await run_in_threadpool(services(request).exports.create, who)
    return see("/#export")


@router.get("/exports/{export_id}/download")
def export_download(request: Request, who: WhoDep, export_id: str) -> Response:
    return stored_response(request, services(request).exports.content(who, export_id), disposition="attachment")
