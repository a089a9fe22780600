"""The one container of services every front end calls, and the one way a request reaches it.

`server.py` builds a `Services` once per app and stores it as `app.state.services`, the only thing kept
there. `/v1` routes and web pages take it from `services(request)`; the MCP endpoint is handed it when it
is built, since its tools live as long as the app. So each service is built in one place, and every front
end calls the same object.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from mutoscope.accounts.service import AccountService
from mutoscope.batches.service import BatchService
from mutoscope.config import Settings
from mutoscope.exports.service import ExportService
from mutoscope.files.service import FileService
from mutoscope.lifecycle.service import PhaseCache
from mutoscope.likeness.service import CameoService
from mutoscope.provenance.service import VerifyService
from mutoscope.videos.public_links import PublicLinks, RateLimit
from mutoscope.videos.admission import Admission
from mutoscope.videos.catalog import ModelCatalog
from mutoscope.videos.commands import VideoCommands
from mutoscope.videos.queries import VideoQueries
from mutoscope.webhooks.service import Deliverer, WebhookService


@dataclass(frozen=True)
class Services:
    """Args:
        settings: the server's settings.
        sessions: the database session factory, for what a front end reads itself (sign-in, its own lists).
        catalog: the models the server offers (the engine's, or the torch-free catalog in an API process).
        started_at: when the server started (`/v1/models`' `created` for models without a date).
        phase: the service's sunset phase, cached for the headers every answer carries.
        admission, videos, video_queries: a video's admission, its commands and its reads (videos/).
        deliverer: sends the webhook outbox; started and stopped with the app.
        public_links, public_rate: opt-in public links and the rate their pages and files are served at.
    """

    settings: Settings
    sessions: sessionmaker[Session]
    catalog: ModelCatalog
    started_at: int
    phase: PhaseCache
    admission: Admission
    videos: VideoCommands
    video_queries: VideoQueries
    accounts: AccountService
    files: FileService
    batches: BatchService
    webhooks: WebhookService
    deliverer: Deliverer
    cameos: CameoService
    verify: VerifyService
    exports: ExportService
    public_links: PublicLinks
    public_rate: RateLimit


def services(request: Request) -> Services:
    """The services of the app serving this request."""
    return request.app.state.services

