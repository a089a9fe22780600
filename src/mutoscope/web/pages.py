"""Templates and what every page gets: the signed-in user, the CSRF token, the sunset phase."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from mutoscope import __version__
from mutoscope.services import services
from mutoscope.web import session
from mutoscope.web.setup import model_setup

logger = logging.getLogger(__name__)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

STATUS_LABELS = {"queued": "Queued", "in_progress": "Rendering", "completed": "Ready", "failed": "Failed"}
PHASE_LABELS = {"notice": "This service is closing", "no_new_generations": "New videos are no longer accepted",
                "export_only": "Export only", "deletion": "Scheduled deletion has begun"}
REASONS = {400: "Bad request", 401: "Not signed in", 403: "Forbidden", 404: "Not found", 405: "Not allowed",
           409: "Conflict", 410: "Gone", 413: "Too large", 429: "Slow down", 500: "Server error",
           501: "Not available"}


def _utc(ts: int | float | None) -> str:
    if not ts:
        return "—"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _ago(ts: int | float | None) -> str:
    if not ts:
        return ""
    d = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if d >= size:
            return f"{d // size} {unit} ago"
    return "just now"


def _num(x: float | None) -> str:
    return "∞" if x is None else f"{x:,.1f}".rstrip("0").rstrip(".")


def _browser_name(user_agent: str | None) -> str:
    """A session's browser and system in words ("Firefox on Linux"), never a user-agent string cut mid-word."""
    ua = user_agent or ""
    browser = next((name for key, name in (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
                                           ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"),
                                           ("curl/", "curl"), ("python-httpx", "a script (httpx)"))
                    if key in ua), None)
    system = next((name for key, name in (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"),
                                          ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
                                          ("Linux", "Linux")) if key in ua), None)
    if browser is None:
        return "Unknown browser" if not ua else (ua if len(ua) <= 40 else ua[:40].rsplit(" ", 1)[0] + " …")
    return f"{browser} on {system}" if system else browser


templates.env.filters.update(utc=_utc, ago=_ago, num=_num, browser_name=_browser_name)
templates.env.globals.update(status_labels=STATUS_LABELS, version=__version__)


def render(request: Request, name: str, status_code: int = 200, headers: dict[str, str] | None = None,
           **context) -> Response:
    phase = services(request).phase.get()
    who = getattr(request.state, "principal", None)
    # The 500 handler runs outside the session middleware: no session, no signed-in header there.
    has_session = "session" in request.scope
    if who is None and has_session and "sid" in request.session:
        who = session.current_principal(request)
    # Signed-in pages say when no real model is installed, and label the test models' videos as noise.
    catalog = services(request).catalog
    setup = model_setup(catalog) if who is not None and catalog is not None else None
    ctx = {"who": who, "csrf_token": session.csrf_token(request) if has_session else "", "setup": setup,
           "noise": setup.noise if setup else frozenset(),
           "csrf_field": session.CSRF_FIELD,
           "phase": phase.as_dict(), "phase_label": PHASE_LABELS.get(phase.phase, ""), **context}
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)


def render_error_page(request: Request, status: int, message: str, code: str | None,
                      headers: dict[str, str] | None) -> Response:
    """The HTML twin of OpenAI's error envelope, for browsers on non-/v1 paths."""
    try:
        return render(request, "error.html", status_code=status, headers=headers, status=status,
                      reason=REASONS.get(status, "Error"), message=message, code=code)
    except Exception:  # the error page itself must never become a second crash (e.g. database down)
        logger.exception("could not render the error page")
        from fastapi.responses import HTMLResponse

        return HTMLResponse(f"<h1>{status}</h1>", status_code=status, headers=headers)
