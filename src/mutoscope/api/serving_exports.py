"""Exports and imports over HTTP: ownership, status shaping, receiving an archive upload.

The work itself lives in the exports room (`exports/jobs.py`, `exports/importer.py`); this class
scopes it to the caller (another account's export id is a 404, like a video's) and shapes wire objects.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile

from mutoscope import __version__
from mutoscope.accounts.service import Principal
from mutoscope.videos.service import Asset, to_video_object
from mutoscope.config import Settings
from mutoscope.db.models import Export, Import, now
from mutoscope.errors import InvalidRequest, NotFound, PayloadTooLarge
from mutoscope.exports.importer import Limits, import_archive
from mutoscope.exports.jobs import ExportJobs
from mutoscope.protocol.exports import DeletedExport, ExportError, ExportList, ExportObject, ImportObject
from mutoscope.storage import Storage

CHUNK = 1024 * 1024


def to_export_object(e: Export) -> ExportObject:
    error = ExportError(code=e.error_code, message=e.error_message or e.error_code) \
        if e.status == "failed" and e.error_code else None
    return ExportObject(id=e.id, status=e.status, progress=e.progress, created_at=e.created_at,
                        completed_at=e.completed_at, video_count=e.video_count, bytes=e.bytes, sha256=e.sha256,
                        error=error, content_url=f"/v1/exports/{e.id}/content")


def to_import_object(i: Import, already: bool = False) -> ImportObject:
    return ImportObject(id=i.id, created_at=i.created_at, sha256=i.sha256, format_version=i.format_version,
                        video_count=i.video_count, id_map=dict(i.id_map or {}), already_imported=already)


def import_limits(settings: Settings) -> Limits:
    # `max_import_bytes` is the operator's archive limit (MUTOSCOPE_MAX_IMPORT_BYTES) where Settings has it.
    limit = getattr(settings, "max_import_bytes", None)
    return Limits(max_archive_bytes=limit) if limit else Limits()


class ExportService:
    def __init__(self, sessions: sessionmaker[Session], storage: Storage, settings: Settings, jobs: ExportJobs):
        self.sessions, self.storage, self.settings, self.jobs = sessions, storage, settings, jobs

    @classmethod
    def start(cls, sessions: sessionmaker[Session], storage: Storage, settings: Settings) -> "ExportService":
        """Build the service and start the export worker, which first resumes interrupted exports."""
        jobs = ExportJobs(sessions, storage, to_video_object, exporter=f"mutoscope {__version__}",
                          max_attempts=settings.max_attempts)
        return cls(sessions, storage, settings, jobs.start())

    # --- exports ----------------------------------------------------------------------------
    def create(self, who: Principal) -> ExportObject:
        return to_export_object(self.jobs.create(who.user_id))

    def retrieve(self, who: Principal, export_id: str) -> ExportObject:
        with self.sessions() as s:
            return to_export_object(self._get(s, who, export_id))

    def list(self, who: Principal, after: str | None, limit: int) -> ExportList:
        with self.sessions() as s:
            q = select(Export).where(Export.owner_id == who.user_id, Export.deleted_at.is_(None))
            if after:
                anchor = s.scalar(select(Export.seq).where(Export.id == after, Export.owner_id == who.user_id))
                if anchor is None:
                    return ExportList(data=[], first_id=None, last_id=None, has_more=False)
                q = q.where(Export.seq < anchor)
            rows = list(s.scalars(q.order_by(Export.seq.desc()).limit(limit + 1)))
            data = [to_export_object(e) for e in rows[:limit]]
        return ExportList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                          has_more=len(rows) > limit)

    def content(self, who: Principal, export_id: str) -> Asset:
        with self.sessions() as s:
            e = self._get(s, who, export_id)
            if e.status != "completed":
                raise InvalidRequest(f"Export {export_id} is {e.status}; its archive can be downloaded once it is "
                                     "completed.", param="export_id", code="export_not_ready")
        path = self.jobs.archive_path(export_id)
        if not path.exists():
            raise NotFound(f"The archive of export {export_id} is no longer stored.", param="export_id",
                           code="content_not_found")
        return Asset(path=path, media_type="application/zip", filename=f"mutoscope-{export_id}.zip")

    def delete(self, who: Principal, export_id: str) -> DeletedExport:
        with self.sessions() as s:
            e = self._get(s, who, export_id)
            e.deleted_at = now()
            s.commit()
        self.jobs.archive_path(export_id).unlink(missing_ok=True)
        self.jobs.part_path(export_id).unlink(missing_ok=True)
        return DeletedExport(id=export_id)

    # --- imports ----------------------------------------------------------------------------
    async def receive(self, request: Request) -> Path:
        """Stream an uploaded archive (multipart field `file`, or the raw body) to a scratch file."""
        limit = import_limits(self.settings).max_archive_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + 1024 * 1024:
            raise self._too_large(limit)
        dest = self.storage.scratch_dir() / f"upload-{secrets.token_hex(8)}.zip"
        written = 0
        try:
            with open(dest, "wb") as out:
                if request.headers.get("content-type", "").startswith("multipart/form-data"):
                    form = await request.form()
                    upload = form.get("file")
                    if not isinstance(upload, UploadFile):
                        raise InvalidRequest("Missing required parameter: 'file'.", param="file",
                                             code="missing_required_parameter")
                    while chunk := await upload.read(CHUNK):
                        written += len(chunk)
                        if written > limit:
                            raise self._too_large(limit)
                        out.write(chunk)
                else:
                    async for chunk in request.stream():
                        written += len(chunk)
                        if written > limit:
                            raise self._too_large(limit)
                        out.write(chunk)
            if written == 0:
                raise InvalidRequest("Send the archive as the request body or as multipart field 'file'.",
                                     param="file", code="missing_required_parameter")
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest

    def import_upload(self, who: Principal, path: Path) -> ImportObject:
        try:
            row, already = import_archive(self.sessions, self.storage, who.user_id, path,
                                          import_limits(self.settings))
        finally:
            os.unlink(path)
        return to_import_object(row, already)

    def retrieve_import(self, who: Principal, import_id: str) -> ImportObject:
        with self.sessions() as s:
            i = s.scalar(select(Import).where(Import.id == import_id, Import.owner_id == who.user_id))
            if i is None:
                raise NotFound(f"No import found with id '{import_id}'.", param="import_id", code="import_not_found")
            return to_import_object(i)

    # --- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _too_large(limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"The archive is larger than this server's import limit of {limit} bytes.",
                               param="file", code="archive_too_large")

    @staticmethod
    def _get(s: Session, who: Principal, export_id: str) -> Export:
        e = s.scalar(select(Export).where(Export.id == export_id, Export.owner_id == who.user_id,
                                          Export.deleted_at.is_(None)))
        if e is None:
            raise NotFound(f"No export found with id '{export_id}'.", param="export_id", code="export_not_found")
        return e
