"""Composition: build the process's parts from Settings.

Shared by the CLI (`serve`, `generate`) and Celery workers, so both modes assemble
the same database, engine and storage. Nothing below cli/ and jobs/celery_app imports this.
"""

from __future__ import annotations

import logging

from mutoscope.config import Settings
from mutoscope.db.migrate import upgrade
from mutoscope.db.session import make_engine, make_sessionmaker
from mutoscope.jobs.context import JobContext
from mutoscope.storage import LocalStorage
from mutoscope.storage.private import tighten

logger = logging.getLogger(__name__)


def build_engine(settings: Settings):
    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.registry import load_registry

    registry = load_registry(settings.models_file, settings.model_aliases or None, settings.engine_overrides or None)
    return DiffusersEngine(registry, settings.resolved_weights_dir, device=settings.device)


def configure_likeness_guard(settings: Settings) -> None:
    """Apply the operator's guard setting to this process and say at start what it means."""
    from mutoscope.likeness import guard

    guard.configure(settings.likeness_guard)
    if not guard.enabled():
        logger.warning("likeness guard is OFF (MUTOSCOPE_LIKENESS_GUARD=off): input images and videos are "
                       "accepted without checking whose face they show")
    elif (why := guard.unavailable_reason()) is not None:
        logger.error("likeness guard cannot detect faces (%s): input images and videos that could show a "
                     "person are refused with 503 likeness_guard_unavailable until this is repaired", why)


def build_job_context(settings: Settings, migrate: bool = True) -> JobContext:
    tighten(settings.data_dir)
    configure_likeness_guard(settings)
    if migrate:
        upgrade(settings.db_url)
    sessions = make_sessionmaker(make_engine(settings.db_url))
    return JobContext(settings=settings, sessions=sessions, engine=build_engine(settings),
                      storage=LocalStorage(settings.assets_dir))


def build_runner(ctx: JobContext):
    if ctx.settings.runner == "celery":
        from mutoscope.jobs.celery_app import CeleryRunner

        return CeleryRunner(ctx)
    from mutoscope.jobs.runner import InProcessRunner

    return InProcessRunner(ctx)


def build_server(settings: Settings):
    """The embedded default: API + in-process worker on SQLite and a data folder."""
    from mutoscope.accounts.service import ensure_owner
    from mutoscope.api.app import build_app

    ctx = build_job_context(settings)
    with ctx.sessions() as s:
        owner_key = ensure_owner(s, settings.owner_key_file)
    app = build_app(settings, ctx.sessions, ctx.engine, ctx.storage, build_runner(ctx))
    return app, owner_key
