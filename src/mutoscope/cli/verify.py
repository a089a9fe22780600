"""`mutoscope verify FILE`: C2PA state, watermark payload and, with a data folder, the video it points to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_cmd)


def verify_cmd(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The video to check.")],
               data_dir: Annotated[Optional[Path], typer.Option("--data-dir", envvar="MUTOSCOPE_DATA_DIR",
                                                                help="Data folder (trust anchors, database).")] = None,
               as_json: Annotated[bool, typer.Option("--json", help="Print the same JSON as POST /v1/verify.")] = False
               ) -> None:
    """Check a video's provenance: C2PA manifest (trusted/valid/tampered/absent) and invisible watermark."""
    from mutoscope.provenance.service import VerifyService
    from mutoscope.config import Settings
    from mutoscope.db.session import make_engine, make_sessionmaker
    from mutoscope.provenance import verify

    settings = Settings(**({"data_dir": data_dir} if data_dir else {}))
    result = verify(file, settings.data_dir)
    sessions = None
    if settings.database_url or (settings.data_dir / "mutoscope.db").exists():
        sessions = make_sessionmaker(make_engine(settings.db_url))
    resp = VerifyService(sessions, settings.data_dir).to_response(result)
    if as_json:
        print(json.dumps(resp.model_dump(), indent=2))
        return
    c, w, v = resp.c2pa, resp.watermark, resp.video
    typer.echo(f"C2PA:      {c.state}" + (f" (signed by {c.signer}, {c.issuer}; {c.generator}, model {c.model})"
                                          if c.state in ("trusted", "valid") else ""))
    if c.failures:
        typer.echo(f"           failures: {', '.join(c.failures)}")
    typer.echo(f"Watermark: {w.video_id or 'none found'} ({w.frames_checked} frames checked"
               + (f", {w.agreement:.0%} agree)" if w.found else ")"))
    where = f"made on this server, {v.status}" if v.origin == "this_server" else "unknown (not made on this server)"
    flags = ", deleted" * v.deleted + ", taken down" * v.taken_down
    typer.echo(f"Video:     {v.id or '-'}: {where}{flags}")
