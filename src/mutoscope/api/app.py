"""The app factory: wires services onto app.state, installs error handlers, runs the runner's lifecycle."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutoscope import __version__
from mutoscope.api.body import SLACK, too_large
from mutoscope.api import openapi
from mutoscope.api.edge import SecurityHeaders, UnstorableUrl
from mutoscope.api.errors import install_error_handlers
from mutoscope.assistants.server import HttpEndpoint
from mutoscope.accounts.plans import load_plans
from mutoscope.api.routes import account, batches, files, models, videos, webhooks
from mutoscope.webhooks.service import Deliverer, WebhookService, seal_plaintext_secrets
from mutoscope.api.routes import cameos as cameo_routes
from mutoscope.api.routes import exports as exports_routes
from mutoscope.api.routes import verify as verify_routes
from mutoscope.accounts.service import AccountService
from mutoscope.batches.service import BatchService
from mutoscope.exports.service import ExportService
from mutoscope.files.service import FileService
from mutoscope.likeness import guard as likeness_guard
from mutoscope.likeness.service import CameoService
from mutoscope.provenance.service import VerifyService
from mutoscope.videos import transitions
from mutoscope.videos.service import ModelCatalog, VideoService, to_video_object
from mutoscope.config import Settings
from mutoscope.lifecycle import service as lifecycle
from mutoscope.sealing import SecretBox
from mutoscope.storage import Storage
from mutoscope.web import mount_web

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from mutoscope.jobs.base import JobRunner


class PhaseCache:
    """The service phase, re-read at most every two seconds (it changes on a scale of days)."""

    def __init__(self, sessions: "sessionmaker[Session]"):
        self.sessions, self._value, self._at = sessions, None, 0.0

    def get(self) -> lifecycle.ServicePhase:
        if self._value is None or time.monotonic() - self._at > 2.0:
            with self.sessions() as s:
                self._value, self._at = lifecycle.current_phase(s), time.monotonic()
        return self._value


class BodyLimit:
    """A ceiling on every request body, counted as it arrives (Content-Length or chunked).

    read_body applies each route's own, smaller limit; this is the backstop for a body read any other
    way, so no route can be made to buffer more than the upload limit. Imports stream archives to disk
    under their own, larger limit and are left to it.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ()):
        self.app, self.limit, self.exempt = app, limit, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large(self.limit)  # raised inside the route, so the envelope handler answers
            return message

        await self.app(scope, bounded, send)


def _fail_queued(s: "Session", video_id: str, code: str, message: str) -> bool:
    return transitions.fail(s, video_id, code, message, only_queued=True)


def build_app(settings: Settings, sessions: "sessionmaker[Session]", catalog: ModelCatalog, storage: Storage,
              runner: "JobRunner") -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner.start()
        app.state.deliverer.start()
        try:
            async with app.state.mcp.run():
                yield
        finally:
            runner.stop()
            app.state.deliverer.stop()

    # /docs and /redoc from assets packaged in fastapi-offline: FastAPI's own pages load Swagger UI from a
    # CDN, which a self-hosted server on a closed network cannot reach (and should not make browsers ask).
    app = FastAPIOffline(title="Mutoscope", version=__version__, lifespan=lifespan, favicon_url="/favicon.ico",
                         description="Open, self-hosted video generation with an OpenAI-compatible Videos API.")
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.catalog = catalog
    app.state.started_at = int(time.time())
    plans = load_plans(settings.plans_file)
    if settings.default_plan not in plans:
        raise ValueError(f"MUTOSCOPE_DEFAULT_PLAN={settings.default_plan!r} is not a plan in the plans file "
                         f"({', '.join(plans)})")
    app.state.phase = PhaseCache(sessions)
    app.state.videos = VideoService(sessions, catalog, storage, runner, settings, plans)
    app.state.accounts = AccountService(sessions, settings, plans, guard_status=likeness_guard.status)
    app.state.files = FileService(sessions, storage)
    app.state.batches = BatchService(sessions, storage, app.state.videos, settings)
    app.state.secret_box = SecretBox.load(settings)  # the key that seals stored secrets, kept outside the db
    seal_plaintext_secrets(sessions, app.state.secret_box)
    app.state.deliverer = Deliverer(sessions, settings, app.state.secret_box)  # sends the outbox jobs fill
    app.state.webhooks = WebhookService(sessions, settings, app.state.secret_box)
    app.state.cameos = CameoService(sessions, storage, settings, fail_video=_fail_queued, video_object=to_video_object)
    app.state.verify = VerifyService(sessions, settings.data_dir)
    # Resumes interrupted exports; imports check records against the catalog and re-submit through videos.
    app.state.exports = ExportService.start(sessions, storage, settings, catalog, app.state.videos)
    install_error_handlers(app)
    openapi.install(app)  # the API key scheme and the create bodies in /openapi.json and /docs
    app.include_router(videos.router)
    app.include_router(files.router)
    app.include_router(batches.router)
    app.include_router(models.router)
    app.include_router(cameo_routes.router)  # /v1/cameos
    app.include_router(verify_routes.router)  # POST /v1/verify
    app.include_router(exports_routes.router)
    app.include_router(account.router)
    app.include_router(webhooks.router)
    app.include_router(account.admin)
    # MCP for chat assistants: the same VideoService and API keys as /v1 (assistants/).
    app.state.mcp = HttpEndpoint(app.state.videos, sessions, settings.public_url,
                                 max_body=settings.max_upload_bytes + SLACK)
    app.router.routes.append(Route("/mcp", endpoint=app.state.mcp, include_in_schema=False))
    mount_web(app, settings)  # the browser front end at / (web/): same services, a session cookie
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + SLACK, exempt=("/v1/imports",))

    app.add_middleware(UnstorableUrl)  # no NUL in a path or query reaches a route (api/edge.py)
    @app.middleware("http")
    async def service_phase_headers(request, call_next):
        """Every answer carries the service's sunset phase once one is scheduled."""
        response = await call_next(request)
        for k, v in app.state.phase.get().headers().items():
            response.headers.setdefault(k, v)
        return response

    app.add_middleware(SecurityHeaders)  # outermost: every answer gets the policy, errors included

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    return app
