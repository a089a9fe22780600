"""Mount `/v1` on the server's app: the routers, and the API key scheme and create bodies of `/openapi.json`."""

from __future__ import annotations

from fastapi import FastAPI

from mutoscope.api import openapi
from mutoscope.api.routes import account, batches, cameos, exports, files, models, verify, videos, webhooks


def mount_api(app: FastAPI) -> None:
    """Add the OpenAI-compatible API under `/v1` (the web app keeps `/`)."""
    openapi.install(app)  # the API key scheme and the create bodies in /openapi.json and /docs
    app.include_router(videos.router)
    app.include_router(files.router)
    app.include_router(batches.router)
    app.include_router(models.router)
    app.include_router(cameos.router)  # /v1/cameos
    app.include_router(verify.router)  # POST /v1/verify
    app.include_router(exports.router)
    app.include_router(account.router)
    app.include_router(webhooks.router)
    app.include_router(account.admin)
