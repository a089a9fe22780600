"""The HTTP server's assembly: every service built once into `Services`, and one FastAPI app with `/v1`
(api/), the pages (web/) and `/mcp` (assistants/) mounted side by side over them, the error handlers and
middleware every answer goes through, and the runner's and deliverer's lifecycle. Only `wiring.py`
imports this module."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.routing import Route

from mutoscope import __version__
from mutoscope.accounts.plans import server_plans
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
from mutoscope.services import Services
from mutoscope.storage import Storage
from mutoscope.videos import transitions
from mutoscope.videos.public_links import PublicLinks, RateLimit
from mutoscope.videos.admission import Admission
from mutoscope.videos.catalog import ModelCatalog
from mutoscope.videos.commands import VideoCommands
from mutoscope.videos.objects import to_video_object
from mutoscope.videos.queries import VideoQueries
from mutoscope.web import mount_web, render_error_page
from mutoscope.web.session import load_or_create_secret
from mutoscope.webhooks.service import Deliverer, WebhookService, seal_plaintext_secrets

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from mutoscope.jobs.base import JobRunner


def _fail_queued(s: "Session", video_id: str, code: str, message: str) -> bool:
    return transitions.fail(s, video_id, code, message, only_queued=True)


def build_services(settings: Settings, sessions: "sessionmaker[Session]", catalog: ModelCatalog, storage: Storage,
                   runner: "JobRunner") -> Services:
    """Every service, built once; `/v1`, the pages and `/mcp` all call these objects."""
    plans = server_plans(settings.plans_file, settings.default_plan)
    box = SecretBox.load(settings)  # the key that seals stored secrets, kept outside the db
    seal_plaintext_secrets(sessions, box)
    admission = Admission(sessions, catalog, settings, plans)
    videos = VideoCommands(admission, storage, runner)
    return Services(
        settings=settings, sessions=sessions, catalog=catalog, started_at=int(time.time()),
        phase=PhaseCache(sessions),
        admission=admission,
        videos=videos,
        video_queries=VideoQueries(sessions, storage, settings),
        accounts=AccountService(sessions, settings, plans, guard_status=likeness_guard.status),
        files=FileService(sessions, storage),
        batches=BatchService(sessions, storage, videos, settings),
        webhooks=WebhookService(sessions, settings, box),
        deliverer=Deliverer(sessions, settings, box),  # sends the outbox jobs fill
        cameos=CameoService(sessions, storage, settings, fail_video=_fail_queued, video_object=to_video_object),
        verify=VerifyService(sessions, settings.data_dir),
        # Resumes interrupted exports; imports check records against the catalog and re-submit through videos.
        exports=ExportService.start(sessions, storage, settings, catalog, videos),
        # Public links: off unless the operator allows them; signed with the key of the browser sessions.
        public_links=PublicLinks(sessions, load_or_create_secret(settings.data_dir), settings.public_links),
        public_rate=RateLimit(settings.public_link_requests_per_minute),
    )


def build_app(services: Services, runner: "JobRunner") -> FastAPI:
    """The app over `services`; it starts and stops `runner` and the webhook deliverer with itself."""
    settings = services.settings
    # MCP for chat assistants: the same services and API keys as /v1 (assistants/).
    mcp = HttpEndpoint(services, max_body=settings.max_upload_bytes + SLACK)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner.start()
        services.deliverer.start()
        try:
            async with mcp.run():
                yield
        finally:
            runner.stop()
            services.deliverer.stop()

    # /docs and /redoc from assets packaged in fastapi-offline: FastAPI's own pages load Swagger UI from a
    # CDN, which a self-hosted server on a closed network cannot reach (and should not make browsers ask).
    app = FastAPIOffline(title="Mutoscope", version=__version__, lifespan=lifespan, favicon_url="/favicon.ico",
                         description="Open, self-hosted video generation with an OpenAI-compatible Videos API.")
    app.state.services = services  # the only thing on app.state: every front end reads it through services()
    # A browser on a page gets the HTML error page, every /v1 client OpenAI's envelope.
    install_error_handlers(app, render_error_page)
    mount_api(app)
    app.router.routes.append(Route("/mcp", endpoint=mcp, include_in_schema=False))
    mount_web(app, settings)  # the browser front end at / (web/): same services, a session cookie
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + SLACK, exempt=("/v1/imports",))

    app.add_middleware(UnstorableUrl)  # no NUL in a path or query reaches a route (http/edge.py)
    @app.middleware("http")
    async def service_phase_headers(request, call_next):
        """Every answer carries the service's sunset phase once one is scheduled."""
        response = await call_next(request)
        for k, v in services.phase.get().headers().items():
            response.headers.setdefault(k, v)
        return response

    app.add_middleware(SecurityHeaders)  # outermost: every answer gets the policy, errors included

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    return app
