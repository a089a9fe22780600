"""The app factory: wires services onto app.state, installs error handlers, runs the runner's lifecycle."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from mutoscope import __version__
from mutoscope.api.errors import install_error_handlers
from mutoscope.api.routes import files, models, videos
from mutoscope.api.serving_files import FileService
from mutoscope.api.serving_videos import ModelCatalog, VideoService
from mutoscope.config import Settings
from mutoscope.storage import Storage

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from mutoscope.jobs.runner import JobRunner


def build_app(settings: Settings, sessions: "sessionmaker[Session]", catalog: ModelCatalog, storage: Storage,
              runner: "JobRunner") -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner.start()
        try:
            yield
        finally:
            runner.stop()

    app = FastAPI(title="Mutoscope", version=__version__, lifespan=lifespan,
                  description="Open, self-hosted video generation with an OpenAI-compatible Videos API.")
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.catalog = catalog
    app.state.started_at = int(time.time())
    app.state.videos = VideoService(sessions, catalog, storage, runner, settings)
    app.state.files = FileService(sessions, storage)
    install_error_handlers(app)
    app.include_router(videos.router)
    app.include_router(files.router)
    app.include_router(models.router)

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    return app
