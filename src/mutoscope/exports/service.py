"""Exports and imports for every front end: ownership, status shaping, importing a received archive.

The work itself lives in `queue.py` and `importer.py`; `ExportService` scopes it to the caller (another
account's export id is a 404, like a video's) and shapes wire objects. Receiving the upload is HTTP and
stays with the route that reads it (`api/routes/exports.py`), which hands over a `ReceivedArchive`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutoscope import __version__
from mutoscope.accounts.service import Principal
from mutoscope.protocol.base import Body, Upload, cursor_page
from mutoscope.videos.catalog import ModelCatalog
from mutoscope.videos.commands import VideoCommands
from mutoscope.videos.objects import to_video_object
from mutoscope.config import Settings
from mutoscope.db.models import Export, Import, now
from mutoscope.errors import InvalidRequest, NotFound, PermissionDenied
from mutoscope.exports.importer import Limits, Resubmission, Resubmit, Unfinished, import_archive, unfinished_outcome
from mutoscope.exports.queue import ExportQueue
from mutoscope.storage.keys import archive_key
from mutoscope.exports.scratch import ScratchArea, sweep
from mutoscope.protocol.exports import DeletedExport, ExportError, ExportList, ExportObject, ImportObject
from mutoscope.storage import Storage
from mutoscope.storage import StoredFile

UNFINISHED_CHOICES = ("not_run", "resubmit")


def to_export_object(e: Export) -> ExportObject:
    error = ExportError(code=e.error_code, message=e.error_message or e.error_code) \
        if e.status == "failed" and e.error_code else None
    return ExportObject(id=e.id, status=e.status, progress=e.progress, created_at=e.created_at,
                        completed_at=e.completed_at, video_count=e.video_count, bytes=e.bytes, sha256=e.sha256,
                        error=error, content_url=f"/v1/exports/{e.id}/content")


def to_import_object(sessions: sessionmaker[Session], i: Import, already: bool = False) -> ImportObject:
    not_run, resubmitted = unfinished_outcome(sessions, i)
    return ImportObject(id=i.id, created_at=i.created_at, sha256=i.sha256, format_version=i.format_version,
                        video_count=i.video_count, id_map=dict(i.id_map or {}), already_imported=already,
                        not_run=not_run, resubmitted=resubmitted, cameos=list(i.cameos or []))


def import_limits(settings: Settings) -> Limits:
    return Limits(max_archive_bytes=settings.max_import_bytes,
                  max_total_bytes=settings.max_import_expanded_bytes or 2 * settings.max_import_bytes,
                  max_entries=settings.max_import_entries, max_manifest_bytes=settings.max_import_manifest_bytes)


def resubmitter(videos: VideoCommands, who: Principal) -> Resubmit:
    """The importer's way into admission: each unfinished record becomes the request its kind is
    (create, remix, extend, edit) and goes through the video commands exactly as if `who` had sent it, so
    the model's lifecycle, the plan's limits, the budget reservation, concurrency, the request rate
    and cameo consent all apply, and the plan's output policy replaces whatever the archive said."""

    def resubmit(owner_id: str, job: Resubmission) -> str:
        if owner_id != who.user_id:
            raise PermissionDenied("An import can only re-submit videos into the importer's own account.")
        fields = {"prompt": job.prompt, **job.params}
        if job.kind == "generate":
            fields.update(model=job.model, size=job.size, seconds=job.seconds)
            files = {"input_reference": Upload("input.png", "image/png", job.input)} if job.input else {}
            video, _ = videos.create(who, Body(fields=fields, files=files))
        elif job.kind == "remix":
            if job.source_video_id is None:
                raise InvalidRequest("The remix's source video is not known.", code="video_not_found")
            video, _ = videos.remix(who, job.source_video_id, Body(fields=fields))
        elif job.kind == "extend":
            if job.source_video_id is None or job.extend_seconds is None:
                raise InvalidRequest("The extension's source video or its added seconds are not known.",
                                     code="video_not_found")
            fields.update(video={"id": job.source_video_id}, seconds=job.extend_seconds)
            video, _ = videos.extend(who, Body(fields=fields))
        elif job.kind == "edit" and job.source_video_id is not None:
            fields.update(video={"id": job.source_video_id})
            video, _ = videos.edit(who, Body(fields=fields))
        elif job.kind == "edit" and job.input is not None:
            fields.update(model=job.model, size=job.size, seconds=job.seconds)
            video, _ = videos.edit(who, Body(fields=fields, files={"video": Upload("input.mp4", "video/mp4",
                                                                                    job.input)}))
        else:
            raise InvalidRequest("The edit's source video is not in the archive.", code="video_not_found")
        return video.id

    return resubmit


@dataclass
class ReceivedArchive:
    """An uploaded archive in its own locked scratch folder (removed when the import is done), and
    what the uploader asked for its unfinished videos."""

    area: ScratchArea
    unfinished: Unfinished = "not_run"

    @property
    def path(self) -> Path:
        return self.area.path / "archive.zip"


class ExportService:
    """Args:
        catalog: the models imported records are checked against (the same one admission uses).
        videos: the admission path that `unfinished=resubmit` re-submits through.
    """

    def __init__(self, sessions: sessionmaker[Session], storage: Storage, settings: Settings, jobs: ExportQueue,
                 catalog: ModelCatalog, videos: VideoCommands):
        self.sessions, self.storage, self.settings, self.jobs = sessions, storage, settings, jobs
        self.catalog, self.videos = catalog, videos

    @classmethod
    def start(cls, sessions: sessionmaker[Session], storage: Storage, settings: Settings, catalog: ModelCatalog,
              videos: VideoCommands) -> "ExportService":
        """Build the service, sweep the scratch of imports a stopped process left, and start the export
        worker, which first resumes interrupted exports."""
        sweep(storage.scratch_dir())
        jobs = ExportQueue(sessions, storage, to_video_object, exporter=f"mutoscope {__version__}",
                          max_attempts=settings.max_attempts)
        return cls(sessions, storage, settings, jobs.start(), catalog, videos)

    # Exports.
    def create(self, who: Principal, video_ids: list[str] | None = None) -> ExportObject:
        """Everything, or only `video_ids` (ids that are not the caller's are left out, never an error)."""
        return to_export_object(self.jobs.create(who.user_id, video_ids=video_ids))

    def retrieve(self, who: Principal, export_id: str) -> ExportObject:
        with self.sessions() as s:
            return to_export_object(self._get(s, who, export_id))

    def list(self, who: Principal, after: str | None, limit: int) -> ExportList:
        with self.sessions() as s:
            q = select(Export).where(Export.owner_id == who.user_id, Export.deleted_at.is_(None))
            if after:
                anchor = s.scalar(select(Export.seq).where(Export.id == after, Export.owner_id == who.user_id))
                if anchor is None:
                    return cursor_page(ExportList, [])
                q = q.where(Export.seq < anchor)
            rows = list(s.scalars(q.order_by(Export.seq.desc()).limit(limit + 1)))
            data = [to_export_object(e) for e in rows[:limit]]
        return cursor_page(ExportList, data, len(rows) > limit)

    def content(self, who: Principal, export_id: str) -> StoredFile:
        with self.sessions() as s:
            e = self._get(s, who, export_id)
            if e.status != "completed":
                raise InvalidRequest(f"Export {export_id} is {e.status}; its archive can be downloaded once it is "
                                     "completed.", param="export_id", code="export_not_ready")
        key = archive_key(export_id)
        size = self.storage.size(key)
        if size is None:
            raise NotFound(f"The archive of export {export_id} is no longer stored.", param="export_id",
                           code="content_not_found")
        return StoredFile(self.storage, key, size, "application/zip", filename=f"mutoscope-{export_id}.zip")

    def delete(self, who: Principal, export_id: str) -> DeletedExport:
        with self.sessions() as s:
            e = self._get(s, who, export_id)
            e.deleted_at = now()
            s.commit()
        self.storage.delete_prefix(archive_key(export_id))
        self.jobs.part_path(export_id).unlink(missing_ok=True)
        return DeletedExport(id=export_id)

    # Imports.
    def import_upload(self, who: Principal, received: ReceivedArchive) -> ImportObject:
        try:
            row, already = import_archive(
                self.sessions, self.storage, who.user_id, received.path, import_limits(self.settings),
                catalog=self.catalog, max_lineage_seconds=self.settings.max_lineage_seconds,
                unfinished=received.unfinished, resubmit=resubmitter(self.videos, who))
        finally:
            received.area.close()
        return to_import_object(self.sessions, row, already)

    def retrieve_import(self, who: Principal, import_id: str) -> ImportObject:
        with self.sessions() as s:
            i = s.scalar(select(Import).where(Import.id == import_id, Import.owner_id == who.user_id))
            if i is None:
                raise NotFound(f"No import found with id '{import_id}'.", param="import_id", code="import_not_found")
            return to_import_object(self.sessions, i)

    @staticmethod
    def _get(s: Session, who: Principal, export_id: str) -> Export:
        e = s.scalar(select(Export).where(Export.id == export_id, Export.owner_id == who.user_id,
                                          Export.deleted_at.is_(None)))
        if e is None:
            raise NotFound(f"No export found with id '{export_id}'.", param="export_id", code="export_not_found")
        return e
