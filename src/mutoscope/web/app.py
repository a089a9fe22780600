"""Mount the web app on the server's FastAPI app, beside `/v1`: session middleware, static files, pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from mutoscope.config import Settings
from mutoscope.web import accounts, cameos, public, session, storyboard
from mutoscope.web.routes import router

STATIC = Path(__file__).parent / "static"


def mount_web(app: FastAPI, settings: Settings) -> None:
    """Add the browser front end at `/` (the API keeps `/v1`)."""
    app.add_middleware(SessionMiddleware, secret_key=session.load_or_create_secret(settings.data_dir),
                       session_cookie=session.COOKIE, max_age=session.MAX_AGE, same_site="lax",
                       # Self-hosted servers are often plain http on a LAN; set Secure only when behind TLS.
                       https_only=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(public.router)  # public links' page and files: no session needed
    app.include_router(accounts.router)  # sign-in, sign-up, invites, settings
    app.include_router(router)
    app.include_router(cameos.router)
    app.include_router(storyboard.router)  # the storyboard editor

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        # Browsers ask for /favicon.ico whatever the page links; an SVG there is what they all accept.
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.exception_handler(session.SignInRequired)
    async def _sign_in(request: Request, exc: session.SignInRequired):
        from urllib.parse import quote

        target = "/signin" if exc.next_url in ("", "/") else f"/signin?next={quote(exc.next_url, safe='')}"
        return RedirectResponse(target, status_code=303)
