"""`mutoscope mcp`: the MCP tools over stdio, for desktop assistants that start their servers themselves."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp_cmd)


def mcp_cmd(api_key: Annotated[Optional[str], typer.Option(
                "--api-key", envvar="MUTOSCOPE_API_KEY", show_default=False,
                help="The API key whose videos, plan and quota the tools use (`mutoscope keys create`).")] = None,
            data_dir: Annotated[Optional[Path], typer.Option("--data-dir", envvar="MUTOSCOPE_DATA_DIR",
                                                             help="Data folder (database, assets, weights).")] = None,
            no_worker: Annotated[bool, typer.Option(
                "--no-worker", help="Render nothing here: a `mutoscope serve` or `mutoscope worker` on the same "
                                    "data folder or database runs the jobs.")] = False,
            public_url: Annotated[Optional[str], typer.Option(
                envvar="MUTOSCOPE_PUBLIC_URL", help="Where `mutoscope serve` is reached, for the links in "
                                                    "results (default http://HOST:PORT).")] = None,
            log_level: str = "warning") -> None:
    """Serve the video tools to an MCP client over stdin/stdout (Claude Desktop and other desktop apps).

    By default this process also renders the jobs it creates, so nothing else needs to run; logs go to
    stderr, stdout carries only the protocol."""
    import anyio

    from mutoscope.accounts.plans import PlansError
    from mutoscope.assistants.server import StdioEndpoint
    from mutoscope.cli.common import fail, settings_for
    from mutoscope.engine import RegistryError
    from mutoscope.errors import MutoscopeError
    from mutoscope.wiring import build_video_services

    logging.basicConfig(stream=sys.stderr, level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not api_key:
        fail("Give an API key with --api-key or MUTOSCOPE_API_KEY (`mutoscope keys create` makes one).")
    settings = settings_for(data_dir, public_url=public_url)
    # Until the SDK claims stdout for the protocol, anything a library prints must not reach the client.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            videos, queries, runner = build_video_services(settings, worker=not no_worker)
        except (RegistryError, PlansError, ValueError) as e:
            fail(str(e))
        endpoint = StdioEndpoint(videos, queries, videos.sessions, api_key,
                                 settings.public_url or f"http://{settings.host}:{settings.port}")
        try:
            who = endpoint.check_key()
        except MutoscopeError as e:
            fail(e.message)
    logging.getLogger(__name__).info("MCP over stdio for %s (%s)", who.user_name, settings.data_dir)
    runner.start()
    try:
        anyio.run(endpoint.serve)
    except KeyboardInterrupt:
        pass
    finally:
        endpoint.tools.shutting_down = True
        runner.stop()
