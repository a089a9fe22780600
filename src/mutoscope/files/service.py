"""The Files API subset for every front end: uploads that `input_reference.file_id` and a batch's
`input_file_id` name, and the files the server writes (a batch's output and errors)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.accounts.service import Principal
from mutoscope.db import repositories as repo
from mutoscope.db.models import File, new_id, now
from mutoscope.errors import InvalidRequest, NotFound
from mutoscope.storage.keys import file_key
from mutoscope.protocol.base import Body, cursor_page
from mutoscope.protocol.files import DeletedFile, FileList, FileObject
from mutoscope.storage import Storage
from mutoscope.storage import StoredFile

PURPOSES = ("vision", "user_data", "assistants", "batch")
# Files the server writes (a batch's output and errors): listed and downloadable, never uploaded.
LISTED_PURPOSES = (*PURPOSES, "batch_output")


def to_file_object(f: File) -> FileObject:
    return FileObject(id=f.id, bytes=f.bytes, created_at=f.created_at, filename=f.filename, purpose=f.purpose)


class FileService:
    def __init__(self, sessions: sessionmaker[Session], storage: Storage):
        self.sessions, self.storage = sessions, storage

    def create(self, who: Principal, body: Body) -> FileObject:
        upload = body.files.get("file")
        if upload is None:
            raise InvalidRequest("Missing required parameter: 'file'.", param="file",
                                 code="missing_required_parameter")
        purpose = str(body.fields.get("purpose", "vision"))
        if purpose not in PURPOSES:
            raise InvalidRequest(f"Invalid purpose '{purpose}'. Supported: {', '.join(PURPOSES)}.", param="purpose")
        # The media type without parameters; anything longer than a real one is refused, not cut.
        content_type = upload.content_type.split(";")[0].strip() or "application/octet-stream"
        if len(content_type) > 100 or not content_type.isprintable():
            raise InvalidRequest("The file's content type is not a valid media type.", param="file",
                                 code="invalid_file")
        file_id = new_id("file-")
        self.storage.put_bytes(file_key(file_id), upload.data)
        # Keep only a safe display name (no separators, no control characters, which PostgreSQL may refuse):
        # the storage key never comes from it.
        name = "".join("_" if c in "/\\" or ord(c) < 32 else c for c in upload.filename)[:255]
        with self.sessions() as s:
            f = File(id=file_id, owner_id=who.user_id, filename=name, purpose=purpose,
                     content_type=content_type, bytes=len(upload.data), storage_key=file_key(file_id))
            s.add(f)
            s.commit()
            return to_file_object(f)

    def retrieve(self, who: Principal, file_id: str) -> FileObject:
        with self.sessions() as s:
            return to_file_object(self._get(s, who, file_id))

    def list(self, who: Principal, purpose: str | None = None, after: str | None = None, limit: int = 10000,
             order: str = "desc") -> FileList:
        """The caller's files, one cursor page (`after`: the last id of the previous page)."""
        if purpose is not None and purpose not in LISTED_PURPOSES:
            raise InvalidRequest(f"Invalid purpose '{purpose}'. Supported: {', '.join(LISTED_PURPOSES)}.",
                                 param="purpose")
        with self.sessions() as s:
            q = select(File).where(File.owner_id == who.user_id, File.deleted_at.is_(None))
            if purpose is not None:
                q = q.where(File.purpose == purpose)
            if after is not None:
                cursor = s.scalar(select(File.seq).where(File.id == after, File.owner_id == who.user_id))
                if cursor is None:
                    raise InvalidRequest(f"No file found with id '{after}'.", param="after")
                q = q.where(File.seq < cursor if order == "desc" else File.seq > cursor)
            rows = s.scalars(q.order_by(File.seq.desc() if order == "desc" else File.seq).limit(limit + 1)).all()
            data = [to_file_object(f) for f in rows[:limit]]
        return cursor_page(FileList, data, has_more=len(rows) > limit)

    def content(self, who: Principal, file_id: str) -> StoredFile:
        with self.sessions() as s:
            f = self._get(s, who, file_id)
            key, name, media_type = f.storage_key, f.filename, f.content_type
        size = self.storage.size(key)
        if size is None:
            raise NotFound(f"The content of file {file_id} is no longer stored.", param="file_id",
                           code="content_not_found")
        return StoredFile(self.storage, key, size, media_type, filename=name)

    def delete(self, who: Principal, file_id: str) -> DeletedFile:
        with self.sessions() as s:
            f = self._get(s, who, file_id)
            f.deleted_at = now()
            key = f.storage_key
            s.commit()
        self.storage.delete_prefix(key)
        return DeletedFile(id=file_id)

    @staticmethod
    def _get(s: Session, who: Principal, file_id: str) -> File:
        f = repo.get_file(s, who.user_id, file_id)
        if f is None:
            raise NotFound(f"No file found with id '{file_id}'.", param="file_id", code="file_not_found")
        return f
