"""`mutoscope batch submit|status|cancel|list`: the Batch API (batches/) from the command line.

Registered by cli/main.py (`register(app)`). Like `mutoscope import`, it works on the data folder directly:
the lines go into the database queue, and a server or `mutoscope worker` on the same data runs them.
`submit --wait` shows a progress bar until the batch finishes and writes its output and error files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mutoscope.cli.common import DataDir, UserOpt, cli_principal, cli_videos, console, err, open_data
from mutoscope.cli.common import fail as _fail

batch_app = typer.Typer(help="Batches of video requests (a JSONL file, as OpenAI's Batch API takes).",
                        no_args_is_help=True)

FINAL = ("completed", "failed", "expired", "cancelled")


def _services(data_dir: Path | None, user: str):
    """The batch and file services of a data folder, acting as `user`."""
    from mutoscope.batches.service import BatchService
    from mutoscope.files.service import FileService

    settings, sessions, storage = open_data(data_dir)
    who = cli_principal(sessions, user)
    videos = cli_videos(settings, sessions, storage)
    return who, BatchService(sessions, storage, videos, settings), FileService(sessions, storage)


def _show(b) -> None:
    c = b.request_counts
    console.print(f"{b.id}  {b.status}  {c.completed} completed, {c.failed} failed of {c.total}", soft_wrap=True)
    for kind, file_id in (("output", b.output_file_id), ("errors", b.error_file_id)):
        if file_id:
            console.print(f"  {kind}: {file_id}", soft_wrap=True)


def _save(files, who, file_id: str | None, path: Path) -> int:
    if not file_id:
        return 0
    f = files.content(who, file_id)
    with f.storage.open(f.key) as src:
        data = src.read()
    path.write_bytes(data)
    return data.count(b"\n")


@batch_app.command("submit")
def submit(file: Annotated[Path, typer.Argument(help="JSONL: one {custom_id, method, url, body} per line.",
                                                exists=True, dir_okay=False)],
           wait: Annotated[bool, typer.Option("--wait", help="Show progress until it finishes; write the results.")]
           = False,
           output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Where --wait writes the output "
                                                          "lines (default FILE.output.jsonl; errors beside it).")]
           = None,
           metadata: Annotated[Optional[list[str]], typer.Option("--metadata", help="key=value, repeatable.")] = None,
           user: UserOpt = "owner", data_dir: DataDir = None, poll: float = 1.0) -> None:
    """Submit a batch of /v1/videos requests; every line is admitted like a single create."""
    from mutoscope.protocol.base import Body, Upload
    from mutoscope.errors import MutoscopeError

    who, batches, files = _services(data_dir, user)
    meta = dict(m.split("=", 1) for m in metadata or [] if "=" in m) or None
    try:
        uploaded = files.create(who, Body({"purpose": "batch"},
                                          {"file": Upload(file.name, "application/jsonl", file.read_bytes())}))
        b = batches.create(who, Body({"input_file_id": uploaded.id, "endpoint": "/v1/videos",
                                      "completion_window": "24h", **({"metadata": meta} if meta else {})}))
    except MutoscopeError as e:
        _fail(f"{e.message} ({e.code})")
    _show(b)
    if not wait:
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err)
    with bar:
        task = bar.add_task(b.id, total=b.request_counts.total)
        while b.status not in FINAL:
            time.sleep(poll)
            b = batches.retrieve(who, b.id)
            bar.update(task, completed=b.request_counts.completed + b.request_counts.failed,
                       description=f"{b.id} {b.status}")
    _show(b)
    out = output or file.with_suffix(".output.jsonl")
    written = _save(files, who, b.output_file_id, out)
    failed = _save(files, who, b.error_file_id, out.with_name(out.stem.removesuffix(".output") + ".errors.jsonl"))
    console.print(f"{written} result(s) in {out}" + (f"; {failed} error line(s) beside it" if failed else ""),
                  soft_wrap=True)
    if b.status != "completed":
        raise typer.Exit(1)


@batch_app.command("status")
def status(batch_id: str, user: UserOpt = "owner", data_dir: DataDir = None,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A batch's status and counts."""
    from mutoscope.errors import MutoscopeError

    who, batches, _ = _services(data_dir, user)
    try:
        b = batches.retrieve(who, batch_id)
    except MutoscopeError as e:
        _fail(e.message)
    if as_json:
        console.print_json(json.dumps(b.model_dump(mode="json")))
    else:
        _show(b)


@batch_app.command("cancel")
def cancel(batch_id: str, user: UserOpt = "owner", data_dir: DataDir = None) -> None:
    """Stop a batch's lines that have not started; running ones finish."""
    from mutoscope.errors import MutoscopeError

    who, batches, _ = _services(data_dir, user)
    try:
        _show(batches.cancel(who, batch_id))
    except MutoscopeError as e:
        _fail(e.message)


@batch_app.command("list")
def list_cmd(user: UserOpt = "owner", data_dir: DataDir = None, limit: int = 20) -> None:
    """An account's batches, newest first."""
    who, batches, _ = _services(data_dir, user)
    for b in batches.list(who, None, max(1, min(limit, 100))).data:
        _show(b)


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")
