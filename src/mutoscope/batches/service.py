"""Creating, reading and cancelling batches; each line admitted exactly as `POST /v1/videos` would be.

A batch is bounded before anything is written (the file's size, its number of lines, unique custom_ids),
refused with a 400 naming what is over. Then each line is admitted on its own through `VideoCommands.create`
(plan, consent, likeness guard, sizes): an accepted line is a queued video tagged with the batch, a refused
one a `batch_errors` row holding the answer a single request would have had. Admission picks up where it
stopped if the process died mid-way (the lines already decided are in those rows).
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.accounts.service import Principal
from mutoscope.batches import finalizer
from mutoscope.config import Settings
from mutoscope.db import repositories as repo
from mutoscope.db.models import Batch, BatchError, Video, now
from mutoscope.errors import InvalidRequest, MutoscopeError, NotFound
from mutoscope.protocol.base import Body, cursor_page, nesting_within, parse
from mutoscope.protocol.batches import BatchList, BatchObject, CreateBatchRequest
from mutoscope.storage import Storage
from mutoscope.videos.commands import BatchLine, VideoCommands

logger = logging.getLogger(__name__)

ENDPOINTS = ("/v1/videos",)
# A line nests no deeper than a create body (a storyboard's shot's image reference) plus the line's envelope.
MAX_LINE_DEPTH = 8
# A batch that fails whole lists this many of its lines' errors (the rest are in nothing: every line failed).
MAX_LISTED_ERRORS = 100
# A batch still validating this long after it was made lost the process admitting it; reading it resumes.
STALE_VALIDATION_S = 120


class BatchService:
    def __init__(self, sessions: sessionmaker[Session], storage: Storage, videos: VideoCommands, settings: Settings):
        self.sessions, self.storage, self.videos, self.settings = sessions, storage, videos, settings

    def create(self, who: Principal, body: Body) -> BatchObject:
        req: CreateBatchRequest = parse(CreateBatchRequest, body.fields)
        if req.endpoint not in ENDPOINTS:
            raise InvalidRequest(f"Unsupported endpoint '{req.endpoint}'; this server batches "
                                 f"{', '.join(ENDPOINTS)}.", param="endpoint", code="invalid_value")
        if req.completion_window not in finalizer.WINDOW_SECONDS:
            raise InvalidRequest(f"Unsupported completion_window '{req.completion_window}'; supported: "
                                 f"{', '.join(finalizer.WINDOW_SECONDS)}.", param="completion_window")
        with self.sessions() as s:
            f = repo.get_file(s, who.user_id, req.input_file_id)
            if f is None or f.purpose != "batch":
                raise NotFound(f"No file found with id '{req.input_file_id}' and purpose 'batch'. Upload it with "
                               "POST /v1/files (purpose=batch).", param="input_file_id", code="file_not_found")
            key, size = f.storage_key, f.bytes
        limit = self.settings.max_batch_bytes
        if size > limit:
            raise InvalidRequest(f"The input file is {size} bytes; a batch's input file may be at most {limit} bytes.",
                                 param="input_file_id", code="batch_file_too_large")
        with self.storage.open(key) as fh:
            data = fh.read(limit + 1)
        lines = [line for line in data.split(b"\n") if line.strip()]
        if not lines:
            raise InvalidRequest("The input file has no request lines.", param="input_file_id", code="empty_file")
        if len(lines) > self.settings.max_batch_lines:
            raise InvalidRequest(f"The input file has {len(lines)} request lines; a batch may have at most "
                                 f"{self.settings.max_batch_lines}.", param="input_file_id",
                                 code="batch_too_many_lines")
        seen: dict[str, int] = {}
        for i, raw in enumerate(lines):
            cid = finalizer.custom_id_of(raw)
            if cid is not None and cid in seen:
                raise InvalidRequest(f"custom_id '{cid[:64]}' is on lines {seen[cid] + 1} and {i + 1}; every line's "
                                     "custom_id must be unique.", param="input_file_id", code="duplicate_custom_id")
            if cid is not None:
                seen[cid] = i
        admission = self.videos.admission
        plan = admission.plan_of(who)
        admission.limiter.hit(who.user_id, plan.requests_per_minute)  # the batch is one request; its lines are not
        with self.sessions() as s:
            b = Batch(owner_id=who.user_id, status="validating", endpoint=req.endpoint,
                      input_file_id=req.input_file_id, completion_window=req.completion_window, meta=req.metadata,
                      total=len(lines), created_at=now(),
                      expires_at=now() + finalizer.WINDOW_SECONDS[req.completion_window])
            s.add(b)
            s.commit()
            batch_id = b.id
        self.admit(who, batch_id, lines)
        return self.retrieve(who, batch_id)

    def admit(self, who: Principal, batch_id: str, lines: list[bytes]) -> None:
        """Decide every line not yet decided, then start the batch (or fail it when every line was refused)."""
        with self.sessions() as s:
            admitted = set(s.scalars(select(Video.batch_custom_id).where(Video.batch_id == batch_id)))
            refused = set(s.scalars(select(BatchError.line).where(BatchError.batch_id == batch_id)))
        for i, raw in enumerate(lines):
            if i in refused or finalizer.custom_id_of(raw) in admitted:
                continue
            with self.sessions() as s:
                if s.scalar(select(Batch.status).where(Batch.id == batch_id)) != "validating":
                    break  # cancelled meanwhile: the rest are never admitted
            self._admit_line(who, batch_id, i, raw)
        with self.sessions() as s:
            b = s.scalar(select(Batch).where(Batch.id == batch_id))
            if b.status != "validating":
                pass  # cancelled while it was being admitted
            elif s.scalar(select(Video.id).where(Video.batch_id == batch_id).limit(1)) is None:
                errs = s.scalars(select(BatchError).where(BatchError.batch_id == batch_id)
                                 .order_by(BatchError.line).limit(MAX_LISTED_ERRORS)).all()
                finalizer.fail_whole(s, b, [{"code": e.error.get("code"), "line": e.line + 1,
                                             "message": e.error.get("message"), "param": e.error.get("param")}
                                            for e in errs])
            else:
                s.execute(update(Batch).where(Batch.id == batch_id, Batch.status == "validating")
                          .values(status="in_progress", in_progress_at=now()))
                s.commit()
        finalizer.sweep(self.sessions, self.storage, batch_id)

    def _admit_line(self, who: Principal, batch_id: str, line: int, raw: bytes) -> None:
        custom_id = None
        try:
            item = parse_line(raw)
            if not isinstance(item, dict):
                raise InvalidRequest(f"Line {line + 1} is not a JSON object nesting at most {MAX_LINE_DEPTH} deep.",
                                     code="invalid_json")
            custom_id = item.get("custom_id")
            if not finalizer.valid_custom_id(custom_id):
                custom_id = None
                raise InvalidRequest("custom_id must be a string of 1 to 64 characters a database can store (no "
                                     "NUL, no lone surrogate).", param="custom_id", code="invalid_value")
            if item.get("method") != "POST":
                raise InvalidRequest("method must be 'POST'.", param="method", code="invalid_value")
            if item.get("url") not in ENDPOINTS:
                raise InvalidRequest(f"Unknown url {str(item.get('url'))[:200]!r}; every line of this batch must "
                                     f"call {ENDPOINTS[0]}.", param="url", code="invalid_url")
            if not isinstance(item.get("body"), dict):
                raise InvalidRequest("body must be a JSON object: the request to POST /v1/videos.", param="body",
                                     code="invalid_value")
            self.videos.create(who, Body(item["body"], {}), batch=BatchLine(batch_id, custom_id))
        except IntegrityError:
            return  # admitted already, by another process resuming this batch
        except MutoscopeError as e:
            self._refuse(batch_id, line, custom_id, e.status_code,
                         {"message": e.message, "type": e.type, "param": e.param, "code": e.code})
        except Exception:
            logger.exception("batch %s line %d could not be admitted", batch_id, line + 1)
            self._refuse(batch_id, line, custom_id, 500, {"message": "The server could not admit this line.",
                                                          "type": "server_error", "param": None, "code": None})

    def _refuse(self, batch_id: str, line: int, custom_id: str | None, status: int, error: dict) -> None:
        try:
            with self.sessions() as s:
                s.add(BatchError(batch_id=batch_id, line=line, custom_id=custom_id, status_code=status, error=error))
                s.commit()
        except IntegrityError:
            pass  # decided already by another process

    def _get(self, s: Session, who: Principal, batch_id: str) -> Batch:
        b = s.scalar(select(Batch).where(Batch.id == batch_id, Batch.owner_id == who.user_id)) \
            if isinstance(batch_id, str) and len(batch_id) <= 64 else None
        if b is None:
            raise NotFound(f"No batch found with id '{batch_id}'.", param="batch_id", code="batch_not_found")
        return b

    def _settle(self, who: Principal, batch_id: str) -> None:
        """Reading a batch settles it: finished lines finish it, and a validation a dead process left is resumed."""
        with self.sessions() as s:
            b = self._get(s, who, batch_id)
            status, created = b.status, b.created_at
        if status == "validating" and now() - created > STALE_VALIDATION_S:
            with self.sessions() as s:
                lines = finalizer.input_lines(self.storage, s, self._get(s, who, batch_id))
            self.admit(who, batch_id, lines)
        elif status in ("in_progress", "finalizing", "cancelling"):
            finalizer.sweep(self.sessions, self.storage, batch_id)

    def retrieve(self, who: Principal, batch_id: str) -> BatchObject:
        self._settle(who, batch_id)
        with self.sessions() as s:
            return finalizer.to_batch_object(s, self._get(s, who, batch_id))

    def list(self, who: Principal, after: str | None, limit: int) -> BatchList:
        """Newest first, as OpenAI lists them; `after` is the last id of the previous page."""
        with self.sessions() as s:
            q = select(Batch).where(Batch.owner_id == who.user_id)
            if after:
                cursor = s.scalar(select(Batch.seq).where(Batch.id == after, Batch.owner_id == who.user_id))
                if cursor is None:
                    raise InvalidRequest(f"No batch found with id '{after}'.", param="after")
                q = q.where(Batch.seq < cursor)
            rows = s.scalars(q.order_by(Batch.seq.desc()).limit(limit + 1)).all()
            ids = [b.id for b in rows[:limit]]
        for bid in ids:
            self._settle(who, bid)
        with self.sessions() as s:
            data = [finalizer.to_batch_object(s, self._get(s, who, bid)) for bid in ids]
        return cursor_page(BatchList, data, has_more=len(rows) > limit)

    def cancel(self, who: Principal, batch_id: str) -> BatchObject:
        """Lines not started are failed (refunded); running ones finish; then the batch is cancelled with the
        results it has. A batch already finished is returned as it is."""
        with self.sessions() as s:
            self._get(s, who, batch_id)
            s.execute(update(Batch).where(Batch.id == batch_id,
                                          Batch.status.in_(("validating", "in_progress", "finalizing")))
                      .values(status="cancelling", cancelling_at=now()))
            s.commit()
        finalizer.stop_queued(self.sessions, batch_id, "batch_cancelled",
                              "The batch was cancelled before this video started; it was not charged.")
        return self.retrieve(who, batch_id)


def parse_line(raw: bytes) -> object:
    """A line's JSON, or None when it is not JSON or nests deeper than MAX_LINE_DEPTH (checked before parsing,
    as every JSON document the server reads is)."""
    if not nesting_within(raw, MAX_LINE_DEPTH):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
