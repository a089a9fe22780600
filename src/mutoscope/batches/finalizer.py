"""Settling batches from their rows: counts, expiry, and the one transaction that finishes a batch.

A batch finishes once none of its lines' videos is queued or running. Its output and error files are written
first, under keys fixed by the batch id (writing them twice writes the same bytes), then one conditional
UPDATE moves it to its final status together with the files' rows and its webhook event: whichever process
gets there first finishes it, exactly once. Any process may run `sweep` (the runners' lease watch does, and
reading a batch settles it), so a batch finishes whether or not anyone polls it and whichever worker died.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import Batch, BatchError, File, Video, new_id, now
from mutoscope.protocol.base import unstorable_at
from mutoscope.protocol.batches import BatchErrors, BatchObject, BatchRequestCounts
from mutoscope.storage import Storage
from mutoscope.storage.keys import batch_file_key
from mutoscope.videos import transitions
from mutoscope.videos.objects import public_error_message, to_video_object
from mutoscope.webhooks import service as webhooks

logger = logging.getLogger(__name__)

OPEN = ("validating", "in_progress", "cancelling")
FINAL = ("completed", "failed", "expired", "cancelled")
WINDOW_SECONDS = {"24h": 24 * 3600}


@dataclass(frozen=True)
class Counts:
    completed: int
    failed: int
    active: int


def counts(s: Session, b: Batch) -> Counts:
    rows = dict(s.execute(select(Video.status, func.count()).where(Video.batch_id == b.id)
                          .group_by(Video.status)).all())
    refused = s.scalar(select(func.count()).select_from(BatchError).where(BatchError.batch_id == b.id)) or 0
    completed = rows.get("completed", 0)
    failed = rows.get("failed", 0) + refused
    if b.status in FINAL:  # lines never admitted (cancelled or expired while it was validating) failed too
        failed = max(failed, b.total - completed)
    return Counts(completed, failed, rows.get("queued", 0) + rows.get("in_progress", 0))


def to_batch_object(s: Session, b: Batch) -> BatchObject:
    c = counts(s, b)
    errors = BatchErrors(data=b.errors["data"]) if b.errors else None
    return BatchObject(
        id=b.id, endpoint=b.endpoint, errors=errors, input_file_id=b.input_file_id,
        completion_window=b.completion_window, status=b.status, output_file_id=b.output_file_id,
        error_file_id=b.error_file_id, created_at=b.created_at, in_progress_at=b.in_progress_at,
        expires_at=b.expires_at, finalizing_at=b.finalizing_at, completed_at=b.completed_at,
        failed_at=b.failed_at, expired_at=b.expired_at, cancelling_at=b.cancelling_at,
        cancelled_at=b.cancelled_at, metadata=b.meta,
        request_counts=BatchRequestCounts(completed=c.completed, failed=c.failed, total=b.total))


def request_id(batch_id: str, line: int) -> tuple[str, str]:
    """The ids of a line's output record and of its request: fixed by the batch and line, so a batch finished
    twice writes the same file."""
    h = hashlib.sha256(f"{batch_id}:{line}".encode()).hexdigest()
    return f"batch_req_{h[:24]}", f"req_{h[24:48]}"


def input_lines(storage: Storage, s: Session, b: Batch) -> list[bytes]:
    """The batch's input file, one entry per request line (blank lines are not requests)."""
    f = s.scalar(select(File).where(File.id == b.input_file_id))
    if f is None:
        return []
    try:
        with storage.open(f.storage_key) as fh:
            data = fh.read()
    except (FileNotFoundError, KeyError, OSError):
        return []
    return [line for line in data.split(b"\n") if line.strip()]


def valid_custom_id(value: Any) -> bool:
    """What admission accepts as a line's custom_id: text of 1 to 64 characters that every database stores (a
    NUL or a lone surrogate would fail the row's insert, and the refusal's too)."""
    return isinstance(value, str) and 0 < len(value) <= 64 and unstorable_at(value) is None


def custom_id_of(raw: bytes) -> str | None:
    """A line's custom_id as admission reads it (None when the line has no valid one)."""
    try:
        value = json.loads(raw).get("custom_id")
    except (ValueError, AttributeError, RecursionError):
        return None
    return value if valid_custom_id(value) else None


def _records(s: Session, storage: Storage, b: Batch, why: str) -> tuple[list[dict], list[dict]]:
    """OpenAI's batch output lines: completed videos in the output file; refused lines, failed videos and lines
    never admitted in the error file."""
    lines = input_lines(storage, s, b)
    videos = {v.batch_custom_id: v for v in s.scalars(select(Video).where(Video.batch_id == b.id))}
    refused = {e.line: e for e in s.scalars(select(BatchError).where(BatchError.batch_id == b.id))}
    out: list[dict] = []
    errors: list[dict] = []
    for i in range(b.total):
        rec_id, req_id = request_id(b.id, i)
        if i in refused:
            e = refused[i]
            errors.append({"id": rec_id, "custom_id": e.custom_id, "error": None,
                           "response": {"status_code": e.status_code, "request_id": req_id,
                                        "body": {"error": e.error}}})
            continue
        cid = custom_id_of(lines[i]) if i < len(lines) else None
        v = videos.get(cid) if cid is not None else None
        if v is None:
            errors.append({"id": rec_id, "custom_id": cid, "response": None,
                           "error": {"code": f"batch_{why}", "message": f"The batch was {why} before this line "
                                                                         "was admitted."}})
            continue
        response = {"status_code": 200, "request_id": req_id,
                    "body": to_video_object(v, owner_view=True).model_dump(mode="json")}
        if v.status == "completed":
            out.append({"id": rec_id, "custom_id": cid, "response": response, "error": None})
        else:
            errors.append({"id": rec_id, "custom_id": cid, "response": response,
                           "error": {"code": v.error_code or "failed",
                                     "message": public_error_message(v.error_code, v.error_message)}})
    return out, errors


def _jsonl(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)


def finish(sessions: sessionmaker[Session], storage: Storage, batch_id: str) -> bool:
    """Finish a batch whose lines are all settled: write its files, then its final status, file rows and event
    in one conditional transaction. False when it is not ready or another process finished it."""
    with sessions() as s:
        b = s.scalar(select(Batch).where(Batch.id == batch_id))
        if b is None or b.status not in ("in_progress", "finalizing", "cancelling") or counts(s, b).active:
            return False
        if b.status == "in_progress" and b.expired_at is None:
            # OpenAI's finalizing: results are being prepared.
            s.execute(update(Batch).where(Batch.id == b.id, Batch.status == "in_progress")
                      .values(status="finalizing", finalizing_at=now()))
            s.commit()
            s.refresh(b)
            # Another process may have moved it on meanwhile, even finished it: the conditional update below
            # must never match a final status (completed -> completed would be a second event and file rows).
            if b.status not in ("finalizing", "cancelling"):
                return False
        final = "cancelled" if b.cancelling_at is not None else "expired" if b.expired_at is not None else "completed"
        out, errors = _records(s, storage, b, "cancelled" if final == "cancelled" else "expired")
        files: dict[str, tuple[str, bytes]] = {}
        for kind, records, column in (("output", out, "output_file_id"), ("errors", errors, "error_file_id")):
            if records:
                key = batch_file_key(b.id, kind)
                data = _jsonl(records)
                storage.put_bytes(key, data)
                files[column] = (key, data)
        t = now()
        ids = {column: new_id("file-") for column in files}
        stamp = {"completed": "completed_at", "cancelled": "cancelled_at", "expired": "expired_at"}[final]
        res = s.execute(update(Batch).where(Batch.id == b.id, Batch.status == b.status)
                        .values(status=final, **{stamp: getattr(b, stamp) or t}, **ids))
        if res.rowcount != 1:
            s.rollback()
            return False
        for column, (key, data) in files.items():
            s.add(File(id=ids[column], owner_id=b.owner_id, purpose="batch_output", content_type="application/jsonl",
                       filename=f"{b.id}_{'output' if column == 'output_file_id' else 'error'}.jsonl",
                       bytes=len(data), storage_key=key, created_at=t))
        webhooks.emit(s, b.owner_id, f"batch.{final}", {"id": b.id})
        s.commit()
        return True


def stop_queued(sessions: sessionmaker[Session], batch_id: str, code: str, message: str) -> int:
    """Fail a batch's lines no worker has started (refunded, each once); running ones finish."""
    with sessions() as s:
        queued = s.scalars(select(Video.id).where(Video.batch_id == batch_id, Video.status == "queued")).all()
        n = 0
        for vid in queued:
            n += transitions.fail(s, vid, code, message, only_queued=True)
    return n


def sweep(sessions: sessionmaker[Session], storage: Storage, batch_id: str | None = None) -> None:
    """Expire batches past their window and finish those whose lines are all settled (`batch_id`: just that
    one). Safe to run from any number of processes at once."""
    t = now()
    with sessions() as s:
        q = select(Batch.id, Batch.status, Batch.expires_at, Batch.expired_at).where(
            Batch.status.in_(("in_progress", "finalizing", "cancelling")))
        if batch_id is not None:
            q = q.where(Batch.id == batch_id)
        rows = s.execute(q).all()
    for bid, status, expires_at, expired_at in rows:
        try:
            if status == "in_progress" and expired_at is None and expires_at <= t:
                with sessions() as s:
                    s.execute(update(Batch).where(Batch.id == bid, Batch.status == "in_progress",
                                                  Batch.expired_at.is_(None)).values(expired_at=t))
                    s.commit()
                expired_at = t
            if expired_at is not None and status == "in_progress":
                stop_queued(sessions, bid, "batch_expired", "The batch's completion window ended before this "
                            "video started; it was not charged.")
            finish(sessions, storage, bid)
        except Exception:
            logger.exception("settling batch %s failed; it is tried again on the next sweep", bid)


def fail_whole(s: Session, b: Batch, first_errors: list[dict[str, Any]]) -> bool:
    """Every line was refused: the batch fails (OpenAI's `failed`, with `errors`), once, with its event."""
    res = s.execute(update(Batch).where(Batch.id == b.id, Batch.status == "validating")
                    .values(status="failed", failed_at=now(), errors={"object": "list", "data": first_errors}))
    if res.rowcount != 1:
        s.rollback()
        return False
    webhooks.emit(s, b.owner_id, "batch.failed", {"id": b.id})
    s.commit()
    return True

