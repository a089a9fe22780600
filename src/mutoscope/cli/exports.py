"""`mutoscope export`, `mutoscope import`, `mutoscope migrate`: the exports room from the command line.

Registered by cli/main.py (`register(app)`), like a built-in plugin. These work on the data folder
directly, so they run with or without a server on the same data.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mutoscope.cli.common import DataDir, UserOpt, cli_principal, cli_videos, console, err, fail, open_data
def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err)


def export_cmd(output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the zip.")],
               user: UserOpt = "owner", data_dir: DataDir = None) -> None:
    """Export everything an account owns (videos, previews, metadata, lineage) into one zip."""
    from mutoscope import __version__
    from mutoscope.videos.objects import to_video_object
    from mutoscope.db.models import Export, now
    from mutoscope.exports.queue import ExportQueue
    from mutoscope.storage.keys import archive_key

    settings, sessions, storage = open_data(data_dir)
    who = cli_principal(sessions, user)
    owner_id = who.user_id
    jobs = ExportQueue(sessions, storage, to_video_object, exporter=f"mutoscope {__version__}")
    e = jobs.create(owner_id, claimed=True)
    with _bar() as bar:
        task = bar.add_task(f"export {e.id}", total=e.video_count)
        jobs.run(e.id, on_progress=lambda done, total: bar.update(task, completed=done))
    with sessions() as s:
        row = s.get(Export, e.seq)
        if row.status != "completed":
            fail(row.error_message or f"export {e.id} is {row.status}")
        archive = jobs.archive_path(e.id)
        output.parent.mkdir(parents=True, exist_ok=True)
        if archive is None:  # remote storage: download it, then drop the stored copy
            storage.local_copy(archive_key(e.id), output)
            storage.delete_prefix(archive_key(e.id))
        else:
            try:
                os.replace(archive, output)
            except OSError:  # another filesystem
                shutil.copyfile(archive, output)
                archive.unlink()
        row.deleted_at = now()  # the archive lives at OUTPUT now, not in the data folder
        s.commit()
        console.print(f"Wrote {output}: {row.video_count} videos, {row.bytes} bytes, sha256 {row.sha256}")


def import_cmd(file: Annotated[Path, typer.Argument(help="An archive made by `mutoscope export` or /v1/exports.",
                                                    exists=True, dir_okay=False)],
               user: UserOpt = "owner", data_dir: DataDir = None,
               max_bytes: Annotated[Optional[int], typer.Option(help="Refuse archives larger than this.")] = None,
               unfinished: Annotated[str, typer.Option(
                   help="Videos unfinished at export: not_run (import them as failed, not_run_imported) or "
                        "resubmit (submit each again under the account's plan, budget and consent).")] = "not_run",
               ) -> None:
    """Import an export archive into an account: verified first, then all or nothing; twice changes nothing."""
    from dataclasses import replace

    from mutoscope.exports.service import import_limits, resubmitter, to_import_object
    from mutoscope.errors import MutoscopeError
    from mutoscope.exports.importer import import_archive
    from mutoscope.exports.scratch import sweep
    from mutoscope.wiring import build_catalog

    if unfinished not in ("not_run", "resubmit"):
        fail(f"--unfinished must be not_run or resubmit, got {unfinished!r}")
    settings, sessions, storage = open_data(data_dir)
    who = cli_principal(sessions, user)
    owner_id = who.user_id
    sweep(storage.scratch_dir())
    limits = import_limits(settings)
    if max_bytes:
        limits = replace(limits, max_archive_bytes=max_bytes)
    catalog = build_catalog(settings)
    videos = cli_videos(settings, sessions, storage, catalog)
    with err.status(f"verifying and importing {file.name}"):
        try:
            row, already = import_archive(sessions, storage, owner_id, file, limits, catalog=catalog,
                                          max_lineage_seconds=settings.max_lineage_seconds,
                                          unfinished=unfinished, resubmit=resubmitter(videos, who))
        except MutoscopeError as e:
            fail(f"{e.message} ({e.code})")
    if already:
        console.print(f"{file} was already imported as {row.id}; nothing changed.")
        return
    obj = to_import_object(sessions, row)
    remapped = {k: v for k, v in row.id_map.items() if k != v and k not in obj.resubmitted}
    console.print(f"Imported {row.video_count} videos as {row.id}"
                  f"{f' ({len(remapped)} ids were taken here and got new ones)' if remapped else ''}.")
    # soft_wrap: ids are copied from here, so they must never be broken across lines.
    for old, new in remapped.items():
        console.print(f"  {old} -> {new}", soft_wrap=True)
    for old, new in obj.resubmitted.items():
        console.print(f"  {old} was unfinished; re-submitted as {new}", soft_wrap=True)
    if obj.not_run:
        console.print(f"{len(obj.not_run)} unfinished video(s) were imported without running "
                      f"(not_run_imported): {', '.join(obj.not_run)}", soft_wrap=True)
    for c in obj.cameos:
        renamed = f" (@{c.archive_handle} was taken here)" if c.handle != c.archive_handle else ""
        more = c.grants_dropped_count - len(c.grants_dropped)
        named = ", ".join(c.grants_dropped) + (f" and {more} more" if more > 0 else "")
        dropped = f"; grants not carried over: {named}" if c.grants_dropped else ""
        console.print(f"Cameo @{c.handle} ({c.id}){renamed} is unverified: nobody can use it until its person "
                      f"records a verification on this server under that handle{dropped}.", soft_wrap=True)


def migrate_cmd(source: Annotated[str, typer.Option("--from", help="Base URL of the source API, e.g. "
                                                    "https://api.openai.com/v1.")],
                api_key: Annotated[str, typer.Option(envvar="MUTOSCOPE_MIGRATE_API_KEY",
                                                     help="API key at the source.")],
                user: UserOpt = "owner", data_dir: DataDir = None,
                limit: Annotated[Optional[int], typer.Option(help="Stop after this many new videos.")] = None,
                timeout: float = 600.0) -> None:
    """Copy every video from an OpenAI-compatible Videos API into an account. Safe to rerun: it goes on where it stopped."""
    from openai import OpenAI

    from mutoscope.exports.migrate import migrate, normalize_source

    settings, sessions, storage = open_data(data_dir)
    who = cli_principal(sessions, user)
    owner_id = who.user_id
    client = OpenAI(base_url=normalize_source(source), api_key=api_key, max_retries=3, timeout=timeout)
    with _bar() as bar:
        task = bar.add_task(f"migrate from {source}", total=None)
        try:
            report = migrate(client, sessions, storage, owner_id, source, limit=limit,
                             on_total=lambda n: bar.update(task, total=n),
                             on_video=lambda vid, outcome: bar.advance(task))
        except Exception as e:  # listing failed: wrong URL or key
            fail(f"could not list videos at {source}: {type(e).__name__}: {getattr(e, 'message', e)}")
    console.print(f"{report.total} videos at the source: {len(report.imported)} imported now, "
                  f"{report.already} already imported, {len(report.not_finished)} not finished at the source, "
                  f"{len(report.failures)} failed.")
    if report.stopped_at_limit:
        console.print(f"Stopped after {limit} videos (--limit); run the same command again to go on.")
    if report.not_finished:
        console.print("Still generating at the source (run again later): " + ", ".join(report.not_finished))
    problems = [(f.video_id, f.reason) for f in report.failures] + \
               [(f.video_id, "imported without " + f.reason) for f in report.missing_previews]
    if problems:
        table = Table("video", "what went wrong", title="Could not fetch everything")
        for vid, reason in problems:
            table.add_row(vid, reason)
        console.print(table)
    if report.failures:
        err.print("Run the same command again to retry the failed videos.")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
    app.command("import")(import_cmd)
    app.command("migrate")(migrate_cmd)
