"""The storyboard editor: shots as cards on a timeline, posted to the same `VideoCommands.create` as
`POST /v1/videos` with a `storyboard` (so shot rules, plans and consent are the API's, videos/storyboard.py).

The cards are plain form fields (`storyboard[][prompt]`, `storyboard[][seconds]`, ...), repeated in card
order, so reordering is moving DOM nodes and the page works without JavaScript for the cards it was
rendered with. A card's first-frame image is a file field named by its position (`shot_image_<i>`).
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from mutoscope.http.body import read_body
from mutoscope.engine import camera as camera_moves
from mutoscope.errors import MutoscopeError
from mutoscope.protocol.base import Body
from mutoscope.protocol.videos import DEFAULT_MODEL
from mutoscope.services import services
from mutoscope.web import session
from mutoscope.web.pages import render
from mutoscope.web.choices import model_choices
from mutoscope.web.forms import FormError, WhoDep, see

router = APIRouter(include_in_schema=False)
SHOT_KEYS = ("prompt", "seconds", "camera", "transition")
CAMERA_LABELS = {m: m.replace("_", " ").capitalize() for m in camera_moves.MOVES}
EMPTY_SHOT = {"prompt": "", "seconds": "", "camera": "", "transition": "cut"}


def _page(request: Request, who, values: dict[str, Any], shots: list[dict[str, Any]],
          error: FormError | None = None) -> Response:
    admission = services(request).admission
    models = model_choices(admission, who, services(request).settings.web_test_models)
    chosen = next((m for m in models if m.name == values.get("model")), None) or \
        next((m for m in models if m.name == DEFAULT_MODEL), models[0] if models else None)
    moves: dict[str, list[str]] = {}
    for m in models:
        try:
            moves[m.name] = list(camera_moves.moves_of(services(request).catalog.resolve(m.name)))
        except LookupError:
            moves[m.name] = []
    if chosen is not None and values.get("size") not in [c.value for c in chosen.sizes if c.allowed]:
        allowed = [c.value for c in chosen.sizes if c.allowed]
        values["size"] = chosen.default_size if chosen.default_size in allowed else next(iter(allowed), None)
    return render(request, "storyboard.html", status_code=error.status if error else 200, models=models,
                  chosen=chosen, values=values, shots=shots or [dict(EMPTY_SHOT), dict(EMPTY_SHOT)],
                  moves=moves.get(chosen.name, []) if chosen else [], camera_labels=CAMERA_LABELS, error=error,
                  plan=admission.plan_of(who), usage=services(request).accounts.usage(who),
                  model_data=[{"name": m.name, "sizes": [c.__dict__ for c in m.sizes],
                               "seconds": [c.__dict__ for c in m.seconds], "moves": moves[m.name]}
                              for m in models])


@router.get("/storyboards/new")
def storyboard_page(request: Request, who: WhoDep) -> Response:
    return _page(request, who, {}, [])


def _shots(form: dict[str, Any], files: dict[str, Any]) -> list[dict[str, Any]]:
    """The cards in the order they were posted; empty optional fields are 'not set', as in every form."""
    raw = form.get("storyboard")
    cards = raw if isinstance(raw, list) else []
    shots = []
    for i, card in enumerate(cards):
        if not isinstance(card, dict):
            continue
        shot = {k: v.strip() for k, v in card.items() if k in SHOT_KEYS and isinstance(v, str) and v.strip()}
        if i == 0:
            shot.pop("transition", None)  # the first shot follows nothing
        image = files.get(f"shot_image_{i}")
        if image is not None and image.data:
            kind = image.content_type if image.content_type.startswith("image/") else "application/octet-stream"
            shot["image"] = f"data:{kind};base64," + base64.b64encode(image.data).decode()
        shots.append(shot)
    return shots


@router.post("/storyboards/new")
async def create_storyboard(request: Request, who: WhoDep) -> Response:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    session.check_csrf(request, body.fields)
    form = dict(body.fields)
    values = {k: form[k].strip() for k in ("prompt", "model", "size", "seed")
              if isinstance(form.get(k), str) and form[k].strip()}
    shots = _shots(form, body.files)
    fields: dict[str, Any] = {**values, "storyboard": shots}
    try:
        video, _ = await run_in_threadpool(services(request).videos.create, who, Body(fields, {}))
    except MutoscopeError as e:
        typed = [{**EMPTY_SHOT, **{k: v for k, v in s.items() if k != "image"}} for s in shots]
        return _page(request, who, values, typed, FormError.of(e))
    return see(f"/videos/{video.id}")
