"""What every command module of the CLI shares: the consoles, the `--data-dir` option, settings, the database
and storage as a command opens them, and the one-line failure. `main.py` and the feature groups
(`exports.py`, `lifecycle.py`, `assistants.py`, …) import this; none of them imports `main.py`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from mutoscope.config import Settings

# Piped output (scripts, tests) gets full-width tables instead of 80 columns of ellipses.
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

# Libraries' own notices (transformers' torchvision fallback, each migration Alembic applies) are noise to
# someone running a command; `--log-level debug` shows them again.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", envvar="MUTOSCOPE_DATA_DIR",
                                                 help="Data folder (database, assets, weights).")]


def settings_for(data_dir: Path | None = None, **overrides) -> Settings:
    kw = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        kw["data_dir"] = data_dir
    return Settings(**kw)


def fail(message: str) -> None:
    # soft_wrap: the message stays one line whatever the terminal's width, so logs and greps keep it whole
    err.print(f"[red]Error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(1)


def log_setup(log_level: str) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level.lower() != "debug":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    else:
        os.environ["TRANSFORMERS_VERBOSITY"] = "info"


def registry_or_fail(settings: Settings):
    """The models file with the operator's aliases and overrides; a mistake in it is one line."""
    from mutoscope.engine.registry import RegistryError, load_registry

    try:
        return load_registry(settings.models_file, settings.model_aliases or None, settings.engine_overrides or None)
    except RegistryError as e:
        fail(str(e))


def storage_or_fail(settings: Settings):
    """The configured storage, reached once; a dead or wrong bucket is one line naming it, no traceback."""
    from mutoscope.storage import StorageUnavailable, from_settings

    try:
        return from_settings(settings)
    except (StorageUnavailable, ValueError) as e:
        fail(str(e))


def open_sessions(settings: Settings):
    from mutoscope.db.migrate import upgrade
    from mutoscope.db.session import make_engine, make_sessionmaker
    from mutoscope.storage.private import tighten

    tighten(settings.data_dir)
    upgrade(settings.db_url)
    return make_sessionmaker(make_engine(settings.db_url))


UserOpt = Annotated[str, typer.Option("--user", "-u", envvar="MUTOSCOPE_USER", help="Account name or id.")]


def open_data(data_dir: Path | None):
    """Settings, sessions and storage of a data folder (migrated to the current schema)."""
    settings = settings_for(data_dir)
    sessions = open_sessions(settings)
    return settings, sessions, storage_or_fail(settings)


def cli_principal(sessions, user: str):
    """The account a command acts as (`--user`), as the services see a caller; an unknown one is the failure."""
    from mutoscope.accounts.service import Principal, get_user
    from mutoscope.errors import MutoscopeError

    with sessions() as s:
        try:
            u = get_user(s, user)
        except MutoscopeError as e:
            fail(e.message)
        return Principal(user_id=u.id, user_name=u.name, role=u.role, key_id="cli", plan=u.plan)


class QueueOnly:
    """The runner of a job made from the command line: the database is the queue, so a server on the same data
    folder claims the job at its next poll (or when it next starts)."""

    def submit(self, video_id: str) -> None:
        pass

    def cancel(self, video_id: str) -> None:
        pass


def cli_videos(settings, sessions, storage, catalog=None):
    """The video commands a command line creates through (imports' re-submissions, batches): admission as a
    server admits, jobs left queued for a server to run."""
    from mutoscope.accounts.plans import server_plans
    from mutoscope.videos.admission import Admission
    from mutoscope.videos.commands import VideoCommands
    from mutoscope.wiring import build_catalog

    admission = Admission(sessions, catalog or build_catalog(settings), settings,
                          server_plans(settings.plans_file, settings.default_plan))
    return VideoCommands(admission, storage, QueueOnly())
