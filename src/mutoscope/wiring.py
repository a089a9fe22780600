"""Composition: build the process's parts from Settings.

Shared by the CLI (`serve`, `generate`, `worker`, `mcp`), so every mode assembles the same database, engine
and storage; a Celery worker gets the same assembly as a factory handed to the Celery app
(`celery_worker_app`). Nothing but cli/ imports this.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, NamedTuple

from mutoscope.batches import finalizer as batch_finalizer
from mutoscope.config import Settings
from mutoscope.db.canary import check_sealing_key
from mutoscope.db.migrate import upgrade
from mutoscope.db.session import make_engine, make_sessionmaker
from mutoscope.jobs.context import JobContext
from mutoscope.sealing import SecretBox
from mutoscope.storage import from_settings
from mutoscope.storage.private import tighten

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mutoscope.services import Services

logger = logging.getLogger(__name__)


def _registry(settings: Settings):
    from mutoscope.engine.registry import load_registry

    return load_registry(settings.models_file, settings.model_aliases or None, settings.engine_overrides or None)


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


def build_engine(settings: Settings, parallel=None):
    """`parallel`: this process's ParallelGroup in a multi-GPU worker (engine/parallel.py)."""
    from mutoscope.engine.diffusers_engine import DiffusersEngine

    return DiffusersEngine(_registry(settings), settings.resolved_weights_dir, device=settings.device,
                           parallel=parallel, host_budget=settings.engine_host_ram_budget_bytes,
                           vram_budget=settings.engine_vram_budget_bytes)


class BackgroundEngine:
    """`serve`'s engine, built on a thread of its own once the server listens (`start`), so the API answers
    within seconds while torch and diffusers load (most of a cold start) instead of competing with them for
    the interpreter; a job that comes first starts and waits for it. Anything else asked of it is the
    engine's, once it is there."""

    def __init__(self, build):
        self._build_fn = build
        self._engine = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._build, args=(self._build_fn,), name="engine-load", daemon=True).start()

    def _build(self, build) -> None:
        try:
            self._engine = build()
        except BaseException as e:  # recorded for the jobs, which fail with it; the API keeps serving
            self._error = e
            logger.exception("the video engine could not start")
        finally:
            self._ready.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def _get(self):
        self.start()
        self._ready.wait()
        if self._error is not None:
            from mutoscope.engine import EngineError

            raise EngineError(f"the video engine could not start: {self._error}")
        return self._engine

    def generate(self, model, spec, hooks):
        return self._get().generate(model, spec, hooks)

    def __getattr__(self, name: str):
        return getattr(self._get(), name)


def build_catalog(settings: Settings, weights_here: bool = True):
    """What a process that does not run jobs knows of the models: the registry (and, where the weights are
    on this machine, the weights folder), without torch."""
    from mutoscope.engine.catalog import Catalog

    return Catalog(_registry(settings), settings.resolved_weights_dir, weights_here)


def build_job_context(settings: Settings, migrate: bool = True, *, with_engine: bool = True,
                      engine=None) -> JobContext:
    """`with_engine=False`: an API-only process; its context's engine is the torch-free catalog. `engine`:
    one built already (rank 0 of a multi-GPU worker passes its LeaderEngine)."""
    tighten(settings.data_dir)
    storage = from_settings(settings)  # first: an unreachable bucket stops start-up before the database is touched
    configure_likeness_guard(settings)
    if migrate:
        upgrade(settings.db_url)
    sessions = make_sessionmaker(make_engine(settings.db_url))
    # Refuses to start with a sealing key other than the installation's, before any work is taken.
    check_sealing_key(sessions, SecretBox.load(settings))
    if engine is None:
        engine = build_engine(settings) if with_engine else build_catalog(settings, weights_here=False)
    # Batches settle wherever leases are watched, polled or not (batches/finalizer.py).
    sweeps = (lambda: batch_finalizer.sweep(sessions, storage),)
    return JobContext(settings=settings, sessions=sessions, engine=engine, storage=storage, sweeps=sweeps)


def build_runner(ctx: JobContext, worker: bool = True):
    """Celery mode: messages to GPU workers. Embedded: worker threads here, or none (`serve --no-worker`,
    for an API process beside `mutoscope worker` processes)."""
    if ctx.settings.runner == "celery":
        from mutoscope.jobs.celery_app import CeleryRunner

        return CeleryRunner(ctx)
    if not worker:
        from mutoscope.jobs.base import NoWorkerRunner

        return NoWorkerRunner(ctx)
    from mutoscope.jobs.runner import InProcessRunner

    return InProcessRunner(ctx)


def celery_worker_app():
    """The Celery app, told how a worker builds its job context: what `mutoscope worker` runs in Celery mode."""
    from mutoscope.jobs.celery_app import use_context_factory

    # The API process runs migrations; workers only connect. Settings are read when the first task arrives.
    return use_context_factory(lambda: build_job_context(Settings(), migrate=False))


class Server(NamedTuple):
    """What `serve` runs: the app, the owner's key when it was just created, the app's services, and the
    engine to start loading once the server listens (None without a worker here)."""

    app: "FastAPI"
    owner_key: str | None
    services: "Services"
    engine_loader: "BackgroundEngine | None"


def build_server(settings: Settings, worker: bool = True) -> Server:
    """The embedded default: API + in-process worker on SQLite and a data folder. Without a worker here
    (`worker=False` or the Celery mode) the process never imports torch."""
    from mutoscope.accounts.service import ensure_owner
    from mutoscope.server import build_app, build_services

    runs_jobs = worker and settings.runner != "celery"
    # The API answers from the torch-free catalog. A worker here gets the engine built in the background,
    # after the models file's pipeline arguments are checked now (a mistake stops the server at start).
    catalog = build_catalog(settings, weights_here=True) if runs_jobs else None
    engine = None
    if runs_jobs:
        from mutoscope.engine.diffusers_engine import check_registry

        check_registry(catalog.registry)
        engine = BackgroundEngine(lambda: build_engine(settings))
    ctx = build_job_context(settings, with_engine=runs_jobs, engine=engine)
    with ctx.sessions() as s:
        owner_key = ensure_owner(s, settings.owner_key_file)
    runner = build_runner(ctx, worker)
    services = build_services(settings, ctx.sessions, catalog or ctx.engine, ctx.storage, runner)
    return Server(build_app(services, runner), owner_key, services, engine)


def build_video_services(settings: Settings, worker: bool = True):
    """The video commands and queries and their runner outside `serve` (the stdio MCP server): the same parts
    `build_server` hands to `build_app`. The caller starts and stops the runner."""
    from mutoscope.accounts.plans import server_plans
    from mutoscope.videos.admission import Admission
    from mutoscope.videos.commands import VideoCommands
    from mutoscope.videos.queries import VideoQueries

    runs_jobs = worker and settings.runner != "celery"
    ctx = build_job_context(settings, with_engine=runs_jobs)
    runner = build_runner(ctx, worker)
    plans = server_plans(settings.plans_file, settings.default_plan)
    commands = VideoCommands(Admission(ctx.sessions, ctx.engine, settings, plans), ctx.storage, runner)
    return commands, VideoQueries(ctx.sessions, ctx.storage, settings), runner
