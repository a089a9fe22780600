"""Migration from any OpenAI-compatible Videos API (Sora, another Mutoscope, …) through the `openai` SDK.

Resumable and idempotent without a state file: every migrated video is recorded in `imported_videos`
under (account, source URL, source id), committed together with the video itself, so a rerun skips
what is done and goes on with the rest. Videos are taken oldest first so a remix's source is already
here when the remix arrives and its lineage link can be pointed at the local copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import ImportedVideo
from mutoscope.exports.format import Lineage, RecordError, Reproduce, VideoFields, VideoRecord
from mutoscope.exports.importer import Staged, place
from mutoscope.exports.scratch import ScratchArea
from mutoscope.storage import Storage

VARIANTS = ("video", "thumbnail", "spritesheet")


@dataclass
class Failure:
    video_id: str
    reason: str


@dataclass
class Report:
    total: int = 0
    imported: list[str] = field(default_factory=list)  # source ids brought over in this run
    already: int = 0  # brought over by an earlier run
    not_finished: list[str] = field(default_factory=list)  # still queued/in_progress at the source
    failures: list[Failure] = field(default_factory=list)
    missing_previews: list[Failure] = field(default_factory=list)  # imported, without a thumbnail/spritesheet
    stopped_at_limit: bool = False


def normalize_source(base_url: str) -> str:
    return base_url.rstrip("/")


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}{f' ({status})' if status else ''}: {message}"[:500]


def _download(client: Any, video_id: str, variant: str, dest: Path) -> None:
    with client.videos.with_streaming_response.download_content(video_id, variant=variant) as resp:
        with open(dest, "wb") as f:
            for chunk in resp.iter_bytes(1024 * 1024):
                f.write(chunk)


def _record(obj: dict[str, Any], files: dict[str, str]) -> VideoRecord:
    extra = {k: obj.get(k) for k in ("seed", "extended_from_video_id", "edited_from_video_id")}
    lineage = Lineage(remixed_from_video_id=obj.get("remixed_from_video_id"),
                      extended_from_video_id=extra["extended_from_video_id"],
                      edited_from_video_id=extra["edited_from_video_id"])
    kind = ("remix" if lineage.remixed_from_video_id else "extend" if lineage.extended_from_video_id
            else "edit" if lineage.edited_from_video_id else "generate")
    err = obj.get("error")
    fields = {k: obj.get(k) for k in ("id", "model", "status", "progress", "created_at", "completed_at",
                                      "expires_at", "prompt", "size", "seconds", "remixed_from_video_id")}
    fields["progress"] = fields["progress"] or 0
    # A Mutoscope source names the model and checkpoint that made each video; it travels as what the engine
    # used, so the copy says the same (anything else about the source's engine is not ours to know).
    made_by = obj.get("generated_by")
    resolved = ({"model": made_by["name"], "weights": made_by.get("weights"), "revision": made_by.get("revision")}
                if isinstance(made_by, dict) and isinstance(made_by.get("name"), str) else None)
    return VideoRecord(
        video=VideoFields(**fields, error=RecordError(**err) if err else None),
        mutoscope=Reproduce(kind=kind, params={"seed": extra["seed"]} if extra["seed"] is not None else {},
                            lineage=lineage, files=files, resolved=resolved,
                            error=RecordError(**err) if err else None))


def migrate(client: Any, sessions: sessionmaker[Session], storage: Storage, owner_id: str, base_url: str, *,
            limit: int | None = None, on_total: Callable[[int], None] = lambda n: None,
            on_video: Callable[[str, str], None] = lambda vid, outcome: None) -> Report:
    """Bring every video `client` can list into `owner_id`'s account.

    Args:
        client: an `openai.OpenAI` client for the source.
        limit: stop after importing this many new videos (the rest come with the next run).
        on_total: called once with the number of videos at the source.
        on_video: called per video with its outcome: imported | already | not_finished | failed.
    """
    import openai

    source = normalize_source(base_url)
    report = Report()
    listing = [v.model_dump(mode="json") for v in client.videos.list(order="asc", limit=100)]
    report.total = len(listing)
    on_total(report.total)
    with sessions() as s:
        done = dict(s.execute(select(ImportedVideo.source_id, ImportedVideo.video_id)
                              .where(ImportedVideo.owner_id == owner_id, ImportedVideo.source == source)).all())
    area = ScratchArea(storage.scratch_dir(), "migrate-")
    scratch = area.path
    try:
        for obj in listing:
            vid = obj["id"]
            if vid in done:
                report.already += 1
                on_video(vid, "already")
                continue
            if limit is not None and len(report.imported) >= limit:
                report.stopped_at_limit = True
                break
            if obj.get("status") in ("queued", "in_progress"):
                report.not_finished.append(vid)
                on_video(vid, "not_finished")
                continue
            folder = scratch / f"{len(report.imported):07d}"
            folder.mkdir()
            files: dict[str, Path] = {}
            try:
                if obj.get("status") == "completed":
                    for variant in VARIANTS:
                        dest = folder / variant
                        try:
                            _download(client, vid, variant, dest)
                            files[variant] = dest
                        except openai.NotFoundError as e:
                            if variant == "video":
                                raise
                            report.missing_previews.append(Failure(vid, f"{variant}: {_describe(e)}"))
                record = _record(obj, {k: f"videos/{vid}/{v}" for k, v in
                                       (("video", "video.mp4"), ("thumbnail", "thumbnail.webp"),
                                        ("spritesheet", "spritesheet.jpg")) if k in files})
                id_map = place(sessions, storage, owner_id, [Staged(record, files, source_id=vid, meta=obj)],
                               source, known=done.get)
            except Exception as e:  # network, HTTP, a record we cannot read: report it and go on
                report.failures.append(Failure(vid, _describe(e)))
                on_video(vid, "failed")
                continue
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            done[vid] = id_map[vid]
            report.imported.append(vid)
            on_video(vid, "imported")
    finally:
        area.close()
    return report
