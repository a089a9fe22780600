"""People pages: sign in (password or API key), sign-up, invites, and the settings pages (account,
sessions, API keys, webhooks, usage and plan).

Each handler calls the same service as the matching /v1 route or CLI command: accounts/people.py for
passwords, invites and sessions, `AccountService` for keys and usage, `WebhookService` for endpoints
(both from `services(request)`, the objects /v1 calls). A refusal re-renders the form with what the person typed and the
service's message next to the field it names. Pages that show a secret once (a new key, signing secret
or invite link) answer the POST directly with `Cache-Control: no-store` instead of redirecting, because
the secret must never be written to the cookie or a URL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from mutoscope.accounts import people
from mutoscope.accounts.service import (
    ROLES,
    Principal,
    authenticate,
    list_keys,
    revoke_own_key,
)
from mutoscope.http.body import bounded_stream, read_body
from mutoscope.db.models import User, now
from mutoscope.errors import InvalidRequest, MutoscopeError, NotFound
from mutoscope.protocol.accounts import CreateKeyRequest
from mutoscope.protocol.base import parse, refuse_unstorable
from mutoscope.protocol.webhooks import CreateWebhookEndpoint
from mutoscope.services import services
from mutoscope.web import session
from mutoscope.web.forms import FormError, safe_next, see
from mutoscope.web.pages import render, templates
from mutoscope.webhooks import service as hooks

router = APIRouter(include_in_schema=False)
# Delivery attempts a few seconds apart need the seconds shown.
templates.env.filters["utc_seconds"] = lambda ts: (
    datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—")
WhoDep = Annotated[Principal, Depends(session.require_principal)]
FORM_LIMIT = 64 * 1024
# Fields whose value is used exactly as typed (no trimming): a password's spaces are part of it.
RAW = ("password", "new_password", "current_password", "api_key")
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def _fields(request: Request) -> dict[str, str]:
    """A form's fields as typed, checked for the CSRF token. Urlencoded bodies (every form here) are read
    by hand, so a value that happens to look like JSON stays the string it was."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/x-www-form-urlencoded"):
        raw = b"".join([chunk async for chunk in bounded_stream(request, FORM_LIMIT)])
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=200, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest("This form could not be read; reload the page and try again.") from None
        fields: dict[str, Any] = dict(pairs)
    else:
        fields = {k: v for k, v in (await read_body(request, FORM_LIMIT)).fields.items() if isinstance(v, str)}
    refuse_unstorable(fields)
    session.check_csrf(request, fields)
    return {k: (v if k in RAW else v.strip()) for k, v in fields.items() if isinstance(v, str)}


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def link_base(request: Request) -> str:
    """Where a link handed to someone else points: the configured public URL, never the request's Host header
    (anyone can send any Host). Without one, only a server opened on this machine may make links, to itself."""
    public = services(request).settings.public_url
    if public:
        return public.rstrip("/")
    host = (request.url.hostname or "").lower()
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return str(request.base_url).rstrip("/")
    raise InvalidRequest("This server has no public address set, so it cannot make a link that others can open. "
                         "Set MUTOSCOPE_PUBLIC_URL (for example https://videos.example.com) and restart.",
                         code="public_url_required")


def _error(e: Exception, fallback_param: str | None = None) -> FormError:
    err = FormError.of(e)
    if err.param is None and fallback_param:
        err.param = fallback_param
    return err


def _sessions(request: Request):
    return services(request).sessions()


def _limits(request: Request) -> people.Limits:
    st = services(request).settings
    return people.Limits(per_account=st.signin_failures_per_account, per_ip=st.signin_failures_per_ip,
                         window_s=st.signin_window_s)


# Sign in, sign out, sign up.

def _signin_page(request: Request, next_url: str, values: dict | None = None, error: FormError | None = None,
                 form: str = "password", headers: dict[str, str] | None = None) -> Response:
    return render(request, "signin.html", status_code=error.status if error else 200, headers=headers,
                  next=next_url, values=values or {}, error=error, form=form,
                  open_signup=services(request).settings.open_signup, keys_first=_nobody_has_a_password(request))


def _nobody_has_a_password(request: Request) -> bool:
    """A fresh server: only the owner, who has no password until they set one, signs in with the key the
    server printed, so that form comes first."""
    from sqlalchemy import select

    from mutoscope.db.models import User

    with services(request).sessions() as s:
        return s.scalar(select(User.id).where(User.password_hash.is_not(None)).limit(1)) is None


@router.get("/signin")
def signin_page(request: Request, next: str | None = None) -> Response:
    if session.current_principal(request) is not None:
        return see(safe_next(next))
    return _signin_page(request, safe_next(next))


@router.post("/signin/password")
async def signin_password(request: Request) -> Response:
    fields = await _fields(request)
    login, password, target = fields.get("login", ""), fields.get("password", ""), safe_next(fields.get("next"))
    values = {"login": login}
    if not login:
        return _signin_page(request, target, values, FormError("Enter your name or email.", "missing_login",
                                                               "login"))
    if not password:
        return _signin_page(request, target, values, FormError("Enter your password.", "missing_password",
                                                               "password"))
    ip, limits = session.client_ip(request), _limits(request)

    def check() -> Principal:
        with _sessions(request) as s:
            return people.sign_in_with_password(s, login, password, ip, limits)

    try:
        who = await run_in_threadpool(check)
    except MutoscopeError as e:
        return _signin_page(request, target, values, FormError.of(e), headers=e.headers or None)
    await run_in_threadpool(session.sign_in, request, who)
    return see(target)


@router.post("/signin")
async def signin_key(request: Request) -> Response:
    """Developers sign in with an API key (unguessable, so not rate-limited like passwords)."""
    fields = await _fields(request)
    key, target = fields.get("api_key", "").strip(), safe_next(fields.get("next"))

    def check() -> Principal:
        with _sessions(request) as s:
            return authenticate(s, key or None)

    try:
        who = await run_in_threadpool(check)
    except MutoscopeError as e:
        return _signin_page(request, target, {}, _error(e, "api_key"), form="key")
    await run_in_threadpool(session.sign_in, request, who)
    return see(target)


@router.post("/signout")
async def signout(request: Request) -> Response:
    await _fields(request)
    await run_in_threadpool(session.sign_out, request)
    return see("/signin")


def _signup_page(request: Request, action: str, values: dict, error: FormError | None = None,
                 invite=None, inviter: str | None = None) -> Response:
    return render(request, "signup.html", status_code=error.status if error else 200, headers=NO_STORE,
                  action=action, values=values, error=error, invite=invite, inviter=inviter)


@router.get("/signup")
def signup_page(request: Request) -> Response:
    if not services(request).settings.open_signup:
        raise NotFound("Sign-up is by invitation on this server. Ask its owner for an invite link.",
                       code="signup_closed")
    return _signup_page(request, "/signup", {})


@router.post("/signup")
async def signup(request: Request) -> Response:
    if not services(request).settings.open_signup:
        raise NotFound("Sign-up is by invitation on this server. Ask its owner for an invite link.",
                       code="signup_closed")
    fields = await _fields(request)
    values = {k: fields.get(k, "") for k in ("name", "email")}

    def make() -> Principal:
        with _sessions(request) as s:
            return people.sign_up(s, name=values["name"], email=values["email"], password=fields.get("password", ""))

    try:
        who = await run_in_threadpool(make)
    except MutoscopeError as e:
        return _signup_page(request, "/signup", values, _error(e))
    await run_in_threadpool(session.sign_in, request, who)
    return see("/")


def _invite(request: Request, token: str):
    with _sessions(request) as s:
        inv = people.open_invite(s, token)  # unknown: 404 page; used, withdrawn, expired: 410 page
        inviter = s.get(User, inv.created_by)
        return inv, inviter.name if inviter else None


def _reset_page(request: Request, token: str, inv, inviter: str | None, error: FormError | None = None) -> Response:
    return render(request, "reset.html", status_code=error.status if error else 200, headers=NO_STORE,
                  action=f"/invite/{token}", invite=inv, inviter=inviter, error=error)


@router.get("/invite/{token}")
def invite_page(request: Request, token: str) -> Response:
    inv, inviter = _invite(request, token)
    if inv.for_user_id is not None:  # a password reset link
        return _reset_page(request, token, inv, inviter)
    return _signup_page(request, f"/invite/{token}", {"name": inv.name or "", "email": inv.email or ""},
                        invite=inv, inviter=inviter)


@router.post("/invite/{token}")
async def invite_accept(request: Request, token: str) -> Response:
    fields = await _fields(request)
    inv, inviter = await run_in_threadpool(_invite, request, token)
    if inv.for_user_id is not None:
        def reset() -> Principal:
            with _sessions(request) as s:
                return people.reset_password(s, token, fields.get("password", ""))

        try:
            who = await run_in_threadpool(reset)
        except MutoscopeError as e:
            return _reset_page(request, token, inv, inviter, _error(e))
        await run_in_threadpool(session.sign_in, request, who)
        return see("/")
    values = {"name": fields.get("name", ""), "email": inv.email or fields.get("email", "")}

    def accept() -> Principal:
        with _sessions(request) as s:
            return people.accept_invite(s, token, name=values["name"], email=values["email"] or None,
                                        password=fields.get("password", ""))

    try:
        who = await run_in_threadpool(accept)
    except MutoscopeError as e:
        return _signup_page(request, f"/invite/{token}", values, _error(e), invite=inv, inviter=inviter)
    await run_in_threadpool(session.sign_in, request, who)
    return see("/")


# Settings.

def _settings_page(request: Request, name: str, who: Principal, error: FormError | None = None,
                   headers: dict[str, str] | None = None, **context) -> Response:
    return render(request, name, status_code=error.status if error else 200, headers=headers, error=error,
                  section=name.removeprefix("settings_").removesuffix(".html"),
                  is_admin=who.role in ("owner", "admin"), **context)


@router.get("/settings")
def settings_home(who: WhoDep) -> Response:
    return see("/settings/account")


def _account_page(request: Request, who: Principal, error: FormError | None = None, values: dict | None = None,
                  notice: str | None = None) -> Response:
    with _sessions(request) as s:
        user = s.get(User, who.user_id)
        email, has_password = user.email, user.password_hash is not None
    return _settings_page(request, "settings_account.html", who, error, values=values or {"email": email or ""},
                          has_password=has_password, email=email, notice=notice)


@router.get("/settings/account")
def account_page(request: Request, who: WhoDep, done: str | None = None) -> Response:
    notices = {"password": "Your password is saved. Your other browsers were signed out.",
               "email": "Your email is saved."}
    return _account_page(request, who, notice=notices.get(done or ""))


@router.post("/settings/account/email")
async def account_email(request: Request, who: WhoDep) -> Response:
    fields = await _fields(request)

    def save() -> None:
        with _sessions(request) as s:
            people.set_email(s, who.user_id, fields.get("email"))

    try:
        await run_in_threadpool(save)
    except MutoscopeError as e:
        return _account_page(request, who, _error(e), {"email": fields.get("email", "")})
    return see("/settings/account?done=email")


@router.post("/settings/account/password")
async def account_password(request: Request, who: WhoDep) -> Response:
    fields = await _fields(request)
    keep = session.current_session_id(request)

    def save() -> None:
        with _sessions(request) as s:
            people.set_password(s, who.user_id, fields.get("new_password", ""), fields.get("current_password"),
                                keep_session=keep)

    try:
        await run_in_threadpool(save)
    except MutoscopeError as e:
        return _account_page(request, who, _error(e))
    return see("/settings/account?done=password")


@router.get("/settings/sessions")
def sessions_page(request: Request, who: WhoDep) -> Response:
    with _sessions(request) as s:
        rows = people.list_sessions(s, who.user_id)
    return _settings_page(request, "settings_sessions.html", who, rows=rows,
                          current=session.current_session_id(request))


@router.post("/settings/sessions/{session_id}/revoke")
async def session_revoke(request: Request, who: WhoDep, session_id: str) -> Response:
    await _fields(request)

    def revoke() -> None:
        with _sessions(request) as s:
            people.revoke_session(s, who.user_id, session_id)

    await run_in_threadpool(revoke)  # not mine: the 404 page
    if session_id == session.current_session_id(request):
        request.session.clear()
        return see("/signin")
    return see("/settings/sessions")


def _keys_page(request: Request, who: Principal, error: FormError | None = None, values: dict | None = None,
               new_key: str | None = None) -> Response:
    with _sessions(request) as s:
        user = s.get(User, who.user_id)
        keys = [k for k, _ in list_keys(s, user)]
    keys.sort(key=lambda k: (k.revoked_at is not None, -k.created_at))
    return _settings_page(request, "settings_keys.html", who, error, headers=NO_STORE if new_key else None,
                          keys=keys, values=values or {}, new_key=new_key, now=now())


@router.get("/settings/keys")
def keys_page(request: Request, who: WhoDep) -> Response:
    return _keys_page(request, who)


@router.post("/settings/keys")
async def key_create(request: Request, who: WhoDep) -> Response:
    fields = await _fields(request)
    values = {"name": fields.get("name", "")}
    try:
        req = parse(CreateKeyRequest, values)
        made = await run_in_threadpool(services(request).accounts.create_key, who, who.user_id, req.name)
    except MutoscopeError as e:
        return _keys_page(request, who, _error(e, "name"), values)
    return _keys_page(request, who, new_key=made.api_key)


@router.post("/settings/keys/{key_id}/revoke")
async def key_revoke(request: Request, who: WhoDep, key_id: str) -> Response:
    await _fields(request)

    def revoke() -> None:
        with _sessions(request) as s:
            revoke_own_key(s, who.user_id, key_id)

    await run_in_threadpool(revoke)
    if key_id == who.key_id:  # this browser signed in with that key: it is signed out with it
        return see("/signin")
    return see("/settings/keys")


def _webhooks_page(request: Request, who: Principal, error: FormError | None = None,
                   values: dict | None = None) -> Response:
    endpoints = _webhooks(request).list(who).data
    values = values if values is not None else {"on_" + t: "on" for t in hooks.EVENT_TYPES}
    return _settings_page(request, "settings_webhooks.html", who, error, endpoints=endpoints, values=values,
                          event_types=hooks.EVENT_TYPES)


def _webhooks(request: Request) -> hooks.WebhookService:
    return services(request).webhooks


@router.get("/settings/webhooks")
def webhooks_page(request: Request, who: WhoDep) -> Response:
    return _webhooks_page(request, who)


@router.post("/settings/webhooks")
async def webhook_create(request: Request, who: WhoDep) -> Response:
    fields = await _fields(request)
    values = {"name": fields.get("name", ""), "url": fields.get("url", ""),
              **{k: "on" for k in fields if k.startswith("on_")}}
    events = [t for t in hooks.EVENT_TYPES if fields.get("on_" + t)]

    def create():  # in a worker thread: vetting the URL resolves its host
        req = parse(CreateWebhookEndpoint, {"name": values["name"] or values["url"][:200],
                                            "url": values["url"], "event_types": events})
        return _webhooks(request).create(who, req)

    try:
        ep = await run_in_threadpool(create)
    except MutoscopeError as e:
        err = _error(e)
        if err.param == "event_types":
            err.param = "on_" + hooks.EVENT_TYPES[0]
        return _webhooks_page(request, who, err, values)
    return _webhook_page(request, who, ep.id, secret=ep.signing_secret)


def _webhook_page(request: Request, who: Principal, endpoint_id: str, secret: str | None = None,
                  error: FormError | None = None) -> Response:
    ep = _webhooks(request).retrieve(who, endpoint_id)  # someone else's: the 404 page
    deliveries = _webhooks(request).deliveries(who, endpoint_id).data
    live = any(d.state in ("pending", "retrying") for d in deliveries)
    return _settings_page(request, "settings_webhook.html", who, error, headers=NO_STORE if secret else None,
                          ep=ep, hint=ep.signing_secret_hint, secret=secret, deliveries=deliveries,
                          event_types=hooks.EVENT_TYPES, live=live and not secret)


@router.get("/settings/webhooks/{endpoint_id}")
def webhook_page(request: Request, who: WhoDep, endpoint_id: str) -> Response:
    return _webhook_page(request, who, endpoint_id)


@router.post("/settings/webhooks/{endpoint_id}/rotate")
async def webhook_rotate(request: Request, who: WhoDep, endpoint_id: str) -> Response:
    await _fields(request)
    ep = await run_in_threadpool(_webhooks(request).rotate_secret, who, endpoint_id)
    return _webhook_page(request, who, endpoint_id, secret=ep.signing_secret)


@router.post("/settings/webhooks/{endpoint_id}/test")
async def webhook_test(request: Request, who: WhoDep, endpoint_id: str) -> Response:
    fields = await _fields(request)
    try:
        await run_in_threadpool(_webhooks(request).test, who, endpoint_id,
                                fields.get("event_type", hooks.EVENT_TYPES[0]))
    except InvalidRequest as e:
        return _webhook_page(request, who, endpoint_id, error=_error(e))
    return see(f"/settings/webhooks/{endpoint_id}#deliveries")


@router.post("/settings/webhooks/{endpoint_id}/delete")
async def webhook_delete(request: Request, who: WhoDep, endpoint_id: str) -> Response:
    await _fields(request)
    await run_in_threadpool(_webhooks(request).delete, who, endpoint_id)
    return see("/settings/webhooks")


@router.get("/settings/usage")
def usage_page(request: Request, who: WhoDep) -> Response:
    accounts = services(request).accounts
    return _settings_page(request, "settings_usage.html", who, usage=accounts.usage(who),
                          plan=accounts.plan(who.plan))


def _require_admin(who: Principal) -> None:
    if who.role not in ("owner", "admin"):
        raise NotFound("Not found.", code="not_found")  # as in the admin API: not advertised to members


def _invites_page(request: Request, who: Principal, error: FormError | None = None, values: dict | None = None,
                  link: str | None = None, reset: tuple[str, str] | None = None) -> Response:
    with _sessions(request) as s:
        pending = people.pending_invites(s, who)
    st = services(request).settings
    roles = [(r, r) for r in ROLES if who.role == "owner" or r == "member"]  # check_grant's rule, for the menu
    plans = [("", f"default ({st.default_plan})")] + [(p, p) for p in services(request).accounts.plans]
    return _settings_page(request, "settings_invites.html", who, error, headers=NO_STORE if link else None,
                          pending=pending, values=values or {"days": f"{st.invite_days:g}", "role": "member"},
                          link=link, reset=reset, role_options=roles, plan_options=plans)


@router.get("/settings/invites")
def invites_page(request: Request, who: WhoDep) -> Response:
    _require_admin(who)
    return _invites_page(request, who)


@router.post("/settings/invites")
async def invite_create(request: Request, who: WhoDep) -> Response:
    _require_admin(who)
    fields = await _fields(request)
    values = {k: fields.get(k, "") for k in ("email", "name", "role", "plan", "days")}
    plans = services(request).accounts.plans
    try:
        base = link_base(request)
    except MutoscopeError as e:
        return _invites_page(request, who, _error(e), values)

    def create() -> str:
        try:
            days = float(values["days"] or services(request).settings.invite_days)
        except ValueError:
            raise InvalidRequest("Enter a number of days, like 7.", param="days") from None
        with _sessions(request) as s:
            _, token = people.create_invite(s, who, email=values["email"], name=values["name"],
                                            role=values["role"] or "member", plan=values["plan"] or None,
                                            plans=plans, days=days)
        return token

    try:
        token = await run_in_threadpool(create)
    except MutoscopeError as e:
        return _invites_page(request, who, _error(e), values)
    return _invites_page(request, who, link=f"{base}/invite/{token}")


@router.post("/settings/resets")
async def reset_create(request: Request, who: WhoDep) -> Response:
    """A password reset link for someone who forgot theirs; this server sends no mail, so it is handed over."""
    _require_admin(who)
    fields = await _fields(request)

    def create() -> tuple[str, str]:
        link_base(request)  # before the link exists: one nobody can open is not made
        with _sessions(request) as s:
            _, user, token = people.create_reset_link(s, who, str(fields.get("user", "")))
            return user.name, token

    try:
        name, token = await run_in_threadpool(create)
    except MutoscopeError as e:
        st = services(request).settings
        return _invites_page(request, who, _error(e), {"user": fields.get("user", ""), "role": "member",
                                                       "days": f"{st.invite_days:g}"})
    base = link_base(request)
    return _invites_page(request, who, reset=(name, f"{base}/invite/{token}"))


@router.post("/settings/invites/{invite_id}/revoke")
async def invite_revoke(request: Request, who: WhoDep, invite_id: str) -> Response:
    _require_admin(who)
    await _fields(request)

    def revoke() -> None:
        with _sessions(request) as s:
            people.revoke_invite(s, who, invite_id)

    await run_in_threadpool(revoke)
    return see("/settings/invites")
