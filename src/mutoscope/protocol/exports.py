"""Exports and imports wire types (Mutoscope extensions; OpenAI has no such API).

Shapes follow the Videos API's conventions: an `object` tag, `status`/`progress`, unix times, an `error`
object when failed, and lists with `first_id/last_id/has_more`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

ExportStatus = Literal["queued", "in_progress", "completed", "failed"]


class ExportError(BaseModel):
    code: str
    message: str


class ExportObject(BaseModel):
    id: str
    object: Literal["export"] = "export"
    status: ExportStatus
    progress: int
    created_at: int
    completed_at: int | None
    video_count: int
    # Size and SHA-256 of the finished archive (null until completed).
    bytes: int | None
    sha256: str | None
    error: ExportError | None
    # Where to download it once completed (supports HTTP Range).
    content_url: str


class ExportList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ExportObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedExport(BaseModel):
    id: str
    object: Literal["export.deleted"] = "export.deleted"
    deleted: bool = True


class ImportedCameo(BaseModel):
    archive_id: str
    id: str  # the cameo here
    handle: str  # here: the archive's, or `<handle>_<n>` where that one was taken on this server
    archive_handle: str
    status: Literal["unverified"] = "unverified"
    # Names (on the exporting server) of the people who held a grant: accounts of another server are not
    # accounts here, so the owner grants again here.
    grants_dropped: list[str] = []  # the first 20 of them
    grants_dropped_count: int = 0
    # Uses of videos the archive did not bring (another account's, or deleted): not restored.
    uses_dropped: int = 0


class ImportObject(BaseModel):
    id: str
    object: Literal["import"] = "import"
    status: Literal["completed"] = "completed"  # imports are all or nothing: a failed one leaves no record
    created_at: int
    sha256: str
    format_version: int
    video_count: int
    # Archive video id -> id on this server (equal where the id was free here).
    id_map: dict[str, str]
    # True when this archive had already been imported into this account: nothing was changed.
    already_imported: bool = False
    # Ids here of the videos that were unfinished at export and were imported without running
    # (status failed, error code not_run_imported; their error message says how to run them).
    not_run: list[str] = []
    # With unfinished=resubmit: archive id -> the new job each admitted one became (also in id_map).
    resubmitted: dict[str, str] = {}
    # The archive's cameos, each now a cameo of the importer that nobody can use until its person verifies
    # live here (POST /v1/cameos with `handle`).
    cameos: list[ImportedCameo] = []
