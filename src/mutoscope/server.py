"""The HTTP server's assembly: one FastAPI app with `/v1` (api/), the pages (web/) and `/mcp` (assistants/)
mounted side by side over the same services, the error handlers and middleware every answer goes
through, and the runner's and deliverer's lifecycle. Only `wiring.py` imports this module."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.routing import Route

from mutoscope import __version__
from mutoscope.accounts.plans import load_plans
from mutoscope.accounts.service import AccountService
from mutoscope.api.app import mount_api
from mutoscope.assistants.server import HttpEndpoint
from mutoscope.batches.service import BatchService
from mutoscope.config import Settings
from mutoscope.exports.service import ExportService
from mutoscope.files.service import FileService
from mutoscope.http.body import SLACK, BodyLimit
from mutoscope.http.edge import SecurityHeaders, UnstorableUrl
from mutoscope.http.errors import install_error_handlers
from mutoscope.lifecycle.service import PhaseCache
from mutoscope.likeness import guard as likeness_guard
from mutoscope.likeness.service import CameoService
from mutoscope.provenance.service import VerifyService
from mutoscope.sealing import SecretBox
from mutoscope.storage import Storage
from mutoscope.videos import transitions
from mutoscope.videos.service import ModelCatalog, VideoService, to_video_object
from mutoscope.web import mount_web, render_error_page
from mutoscope.webhooks.service import Deliverer, WebhookService, seal_plaintext_secrets

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from mutoscope.jobs.base import JobRunner


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
    # A browser on a page gets the HTML error page, every /v1 client OpenAI's envelope.
    install_error_handlers(app, render_error_page)
    mount_api(app)
    # MCP for chat assistants: the same VideoService and API keys as /v1 (assistants/).
    app.state.mcp = HttpEndpoint(app.state.videos, sessions, settings.public_url,
                                 max_body=settings.max_upload_bytes + SLACK)
    app.router.routes.append(Route("/mcp", endpoint=app.state.mcp, include_in_schema=False))
    mount_web(app, settings)  # the browser front end at / (web/): same services, a session cookie
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + SLACK, exempt=("/v1/imports",))

    app.add_middleware(UnstorableUrl)  # no NUL in a path or query reaches a route (http/edge.py)
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
