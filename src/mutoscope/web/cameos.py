"""Cameo and character pages: record a verification clip, consent and grants, uses and takedowns, characters.

Every handler makes the same call as the matching /v1 route, on the same object (`likeness.service.CameoService`),
so a click is verified, consent-checked and audited exactly like an API call. What only pages need (the
uses of all of one's cameos, the grants with names, what `@` may offer in the create form) comes from
its `records` (`likeness/records.py`), never from here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from mutoscope.accounts.service import Principal
from mutoscope.http.body import read_body
from mutoscope.db.models import now
from mutoscope.errors import MutoscopeError
from mutoscope.likeness.challenge import DIGIT_WORDS, Challenge
from mutoscope.likeness.runtime import LikenessUnavailable
from mutoscope.likeness.records import ensure_installed
from mutoscope.protocol.base import Body
from mutoscope.services import services
from mutoscope.web import session
from mutoscope.web.pages import render, templates
from mutoscope.web.forms import FormError, WhoDep, form_fields, read_form, safe_next, see

router = APIRouter(include_in_schema=False)
CHARACTER_PAGE = 24

# The checks of likeness/verify.py, in plain words (the names stay visible for people who read the docs).
CHECK_LABELS = {
    "one_face": "Only you in the picture",
    "same_identity": "The same face all the way through",
    "face_motion": "A live, moving face (not a photo)",
    "head_turns": "Head turned as asked",
    "speech_present": "Speech heard",
    "spoken_digits": "The right digits read aloud",
    "voice_consistent": "One voice throughout",
}
POLICY_LABELS = {
    "only_me": "Only me",
    "approved": "Me and the people I approve",
    "everyone": "Everyone on this server",
}
CAMEO_STATUS = {"verifying": "Verifying", "active": "Active", "failed": "Verification failed", "deleted": "Deleted",
                "unverified": "Imported: record it again to verify"}


def _cameos(request: Request):
    return services(request).cameos


def mention_options(request: Request) -> list[dict[str, Any]]:
    """What typing `@` in the create form offers: the caller's cameos, cameos shared with them, their characters.

    A cameo is named by `@handle` in the prompt; a character by its id in `characters` (likeness/consent.py).
    """
    who: Principal | None = getattr(request.state, "principal", None)
    if who is None:
        return []
    api = _cameos(request)
    out: list[dict[str, Any]] = []
    for c, relation in api.records.usable(who.user_id):
        out.append({"kind": "cameo", "handle": c.handle, "label": f"@{c.handle}",
                    "note": "your cameo" if relation == "own" else "shared with you"})
    rows, _ = api.characters.list(who.user_id, None, 100)
    for ch in rows:
        out.append({"kind": "character", "id": ch.id, "label": ch.name,
                    "note": "your character" + (", shows your face" if ch.cameo_id else "")})
    return out


templates.env.globals.update(mention_options=mention_options, check_labels=CHECK_LABELS,
                             policy_labels=POLICY_LABELS, cameo_status=CAMEO_STATUS)


# The cameo list, with every video that uses any of them.
@router.get("/cameos")
def cameos_page(request: Request, who: WhoDep) -> Response:
    api = _cameos(request)
    cameos = api.list(who).data
    uses = api.records.all_uses(who.user_id)
    return render(request, "cameos.html", cameos=cameos, uses=uses,
                  live=any(c.status == "verifying" for c in cameos))


# Recording a new cameo.
def _cannot_verify(request: Request) -> str | None:
    """Why this server cannot verify a cameo now (an analyzer or model file missing), checked before anyone
    is handed a challenge and records for nothing; None when it can."""
    try:
        ensure_installed(_cameos(request).records.options)
    except LikenessUnavailable as e:
        return e.message
    return None


def _new_page(request: Request, who: Principal, challenge_id: str | None, error: FormError | None = None,
              values: dict[str, Any] | None = None) -> Response:
    if (why := _cannot_verify(request)) is not None:
        return render(request, "cameo_new.html", status_code=error.status if error else 200, challenge=None,
                      state="unavailable", unavailable=why, error=error, values=values or {})
    challenge, state = None, None
    if challenge_id:
        try:
            row = _cameos(request).records.challenge(who.user_id, challenge_id)
        except MutoscopeError:
            state = "missing"
        else:
            ch = Challenge(digits=row.digits, turns=tuple(row.turns.split(",")))
            challenge = {"id": row.id, "digits": row.digits, "turns": list(ch.turns),
                         "words": [DIGIT_WORDS[int(d)] for d in row.digits], "instructions": ch.instructions,
                         "expires_at": row.expires_at}
            state = "used" if row.used_at is not None else "expired" if row.expires_at < now() else "ready"
    return render(request, "cameo_new.html", status_code=error.status if error else 200, challenge=challenge,
                  state=state, error=error, values=values or {})


@router.get("/cameos/new")
def new_cameo_page(request: Request, who: WhoDep, challenge: str | None = Query(None, max_length=64)) -> Response:
    return _new_page(request, who, challenge)


@router.post("/cameos/challenges")
async def new_challenge(request: Request, who: WhoDep) -> Response:
    await read_form(request)
    if _cannot_verify(request) is not None:  # no challenge to record against: the page says why
        return see("/cameos/new")
    ch = await run_in_threadpool(_cameos(request).challenge, who)
    return see(f"/cameos/new?challenge={ch.id}")


@router.post("/cameos")
async def create_cameo(request: Request, who: WhoDep) -> Response:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    session.check_csrf(request, body.fields)
    fields = {k: v for k, v in form_fields(body).items() if k in ("handle", "challenge_id", "keep_upload")}
    files = {k: u for k, u in body.files.items() if k == "video" and u.data}  # no file chosen: none
    try:
        cameo = await run_in_threadpool(_cameos(request).create, who, Body(fields, files))
    except MutoscopeError as e:
        return _new_page(request, who, str(fields.get("challenge_id") or "") or None, FormError.of(e), fields)
    return see(f"/cameos/{cameo.id}")


# One cameo: its verification, consent, grants, uses.
def _cameo_page(request: Request, who: Principal, cameo_id: str, error: FormError | None = None,
                form: str | None = None, values: dict[str, Any] | None = None) -> Response:
    api = _cameos(request)
    cameo = api.retrieve(who, cameo_id)  # someone else's id: NotFound → 404 page
    grants = api.records.grants(who.user_id, cameo_id)
    uses = api.records.all_uses(who.user_id, cameo_id=cameo_id)
    return render(request, "cameo.html", status_code=error.status if error else 200, cameo=cameo, grants=grants,
                  uses=uses, live=cameo.status == "verifying", error=error, form=form, values=values or {})


@router.get("/cameos/{cameo_id}")
def cameo_page(request: Request, who: WhoDep, cameo_id: str) -> Response:
    return _cameo_page(request, who, cameo_id)


@router.post("/cameos/{cameo_id}/consent")
async def update_consent(request: Request, who: WhoDep, cameo_id: str) -> Response:
    fields = await read_form(request)
    update: dict[str, Any] = {}
    if "policy" in fields:
        update["policy"] = fields["policy"]
    if "blocked_terms" in fields or "policy" in fields:  # an emptied box clears the list
        update["blocked_terms"] = [t for t in str(fields.get("blocked_terms", "")).split(",") if t.strip()]
    try:
        await run_in_threadpool(_cameos(request).update, who, cameo_id, Body(update))
    except MutoscopeError as e:
        return _cameo_page(request, who, cameo_id, FormError.of(e), "consent", fields)
    return see(f"/cameos/{cameo_id}#consent")


@router.post("/cameos/{cameo_id}/grants")
async def add_grant(request: Request, who: WhoDep, cameo_id: str) -> Response:
    fields = await read_form(request)
    try:
        await run_in_threadpool(_cameos(request).grant, who, cameo_id, Body({"user": fields.get("user", "")}))
    except MutoscopeError as e:
        return _cameo_page(request, who, cameo_id, FormError.of(e), "grant", fields)
    return see(f"/cameos/{cameo_id}#grants")


@router.post("/cameos/{cameo_id}/grants/{user_id}/revoke")
async def revoke_grant(request: Request, who: WhoDep, cameo_id: str, user_id: str) -> Response:
    await read_form(request)
    await run_in_threadpool(_cameos(request).revoke, who, cameo_id, user_id)
    return see(f"/cameos/{cameo_id}#grants")


@router.post("/cameos/{cameo_id}/videos/{video_id}/takedown")
async def takedown(request: Request, who: WhoDep, cameo_id: str, video_id: str) -> Response:
    fields = await read_form(request)
    target = safe_next(fields.get("next") or f"/cameos/{cameo_id}")
    reason = fields.get("reason")
    try:
        await run_in_threadpool(_cameos(request).takedown, who, cameo_id, video_id,
                                Body({"reason": reason} if reason else {}))
    except MutoscopeError as e:
        return _cameo_page(request, who, cameo_id, FormError.of(e), "takedown", fields)
    return see(target + "#uses")


@router.post("/cameos/{cameo_id}/delete")
async def delete_cameo(request: Request, who: WhoDep, cameo_id: str) -> Response:
    await read_form(request)
    await run_in_threadpool(_cameos(request).delete, who, cameo_id)
    return see("/cameos")


# Characters.
def _characters_page(request: Request, who: Principal, after: str | None, error: FormError | None = None,
                     values: dict[str, Any] | None = None) -> Response:
    page = _cameos(request).list_characters(who, after, CHARACTER_PAGE, "desc")
    return render(request, "characters.html", status_code=error.status if error else 200, characters=page.data,
                  has_more=page.has_more, after=after, error=error, values=values or {})


@router.get("/characters")
def characters_page(request: Request, who: WhoDep, after: str | None = Query(None, max_length=64)) -> Response:
    return _characters_page(request, who, after)


@router.post("/characters")
async def create_character(request: Request, who: WhoDep) -> Response:
    body = await read_body(request, services(request).settings.max_upload_bytes)
    session.check_csrf(request, body.fields)
    fields = {k: v for k, v in form_fields(body).items() if k == "name"}
    files = {k: u for k, u in body.files.items() if k == "video" and u.data}
    try:
        await run_in_threadpool(_cameos(request).create_character, who, Body(fields, files))
    except MutoscopeError as e:
        return _characters_page(request, who, None, FormError.of(e), fields)
    return see("/characters")


@router.post("/characters/{character_id}/delete")
async def delete_character(request: Request, who: WhoDep, character_id: str) -> Response:
    await read_form(request)
    await run_in_threadpool(_cameos(request).delete_character, who, character_id)
    return see("/characters")
