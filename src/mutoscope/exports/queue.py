"""The export queue: one function owns queued → in_progress → completed | failed, and a small worker thread runs them.

The row holds the snapshot of video ids and the writer's checkpoint, so an export interrupted by a
restart is re-queued on start and goes on from its last checkpoint (see writer.py). Safe to run twice:
the archive's path is derived from the export id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import Export, User, Video, now
from mutoscope.exports.format import cameo_reference_path, cameo_voice_path, shot_image_path, video_path
from mutoscope.exports.writer import Entry, ExportState, Item, finish, write_archive
from mutoscope.likeness.portable import own_cameos_of, owned, taken_down_by_others
from mutoscope.storage.keys import published_key
from mutoscope.storage import Storage
from mutoscope.storage.keys import archive_key

logger = logging.getLogger(__name__)

VideoObjectFn = Callable[[Video], Any]  # videos.objects.to_video_object: the exact public object




class ExportQueue:
    """Args:
        sessions: the database.
        storage: where video files are read from and the finished archive is stored.
        video_object: turns a Video row into the public video object (a pydantic model).
        exporter: a name and version written into the manifest.
        checkpoint_every: seconds between durable checkpoints of a running export.
        max_attempts: restarts an export survives before it is failed.
    """

    def __init__(self, sessions: sessionmaker[Session], storage: Storage, video_object: VideoObjectFn, *,
                 exporter: str = "mutoscope", checkpoint_every: float = 5.0, max_attempts: int = 3):
        self.sessions, self.storage, self.video_object = sessions, storage, video_object
        self.exporter, self.checkpoint_every, self.max_attempts = exporter, checkpoint_every, max_attempts
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Paths.
    def archive_path(self, export_id: str) -> Path | None:
        """The finished archive as a local file, or None where storage is remote (read it by `archive_key`)."""
        return self.storage.local_path(archive_key(export_id))

    def part_path(self, export_id: str) -> Path:
        path = self.archive_path(export_id)
        if path is None:  # remote storage: the archive is built in scratch and uploaded once finished
            return self.storage.scratch_dir() / f"export-{export_id}.zip.part"
        return path.with_name(f"{export_id}.zip.part")

    # Create / run.
    def create(self, owner_id: str, claimed: bool = False, video_ids: list[str] | None = None) -> Export:
        """Snapshot the owner's videos (oldest first, so lineage sources precede remixes) into a queued export.

        `claimed=True` creates it already in_progress for the caller to `run` (the CLI), so a server's
        worker on the same database never races for it; if the caller dies, the server's recovery resumes it.
        `video_ids`: only these of the owner's videos (a selection); others' ids match nothing.
        """
        with self.sessions() as s:
            q = select(Video.id).where(Video.owner_id == owner_id, Video.deleted_at.is_(None))
            if video_ids is not None:
                q = q.where(Video.id.in_(list(video_ids)[:1000]))
            ids = list(s.scalars(q.order_by(Video.seq.asc())))
            e = Export(owner_id=owner_id, video_count=len(ids), state=ExportState(video_ids=ids).to_json(),
                       status="in_progress" if claimed else "queued", attempts=1 if claimed else 0)
            s.add(e)
            s.commit()
        self._wake.set()
        return e

    def claim(self, export_id: str) -> bool:
        with self.sessions() as s:
            n = s.execute(update(Export).where(Export.id == export_id, Export.status == "queued",
                                               Export.deleted_at.is_(None))
                          .values(status="in_progress", attempts=Export.attempts + 1)).rowcount
            s.commit()
        return n == 1

    def run(self, export_id: str, on_progress: Callable[[int, int], None] | None = None) -> None:
        """Run a claimed export to the end. Never raises; failures are stored on the row."""
        with self.sessions() as s:
            e = s.scalar(select(Export).where(Export.id == export_id))
            if e is None or e.status != "in_progress":
                return
            owner = s.scalar(select(User).where(User.id == e.owner_id))
            owner_id, owner_name, created_at = e.owner_id, owner.name if owner else e.owner_id, e.created_at
            state = ExportState.from_json(e.state or {})
        part = self.part_path(export_id)
        local = self.archive_path(export_id)
        final = local or part.with_name(f"export-{export_id}.zip")

        def checkpoint(st: ExportState) -> None:
            with self.sessions() as s:
                s.execute(update(Export).where(Export.id == export_id).values(state=st.to_json()))
                s.commit()

        last = {"pct": -1}

        def progress(done: int, total: int) -> None:
            pct = int(95 * done / total) if total else 95
            if on_progress:
                on_progress(done, total)
            if pct != last["pct"]:
                last["pct"] = pct
                with self.sessions() as s:
                    s.execute(update(Export).where(Export.id == export_id).values(progress=pct))
                    s.commit()

        try:
            write_archive(part, state, lambda vid: self._item(owner_id, vid), owner=owner_name,
                          created_at=created_at, exporter=self.exporter, checkpoint=checkpoint, progress=progress,
                          checkpoint_every=self.checkpoint_every, cameos=lambda: self._cameos(owner_id))
            size, digest = finish(part, final)
            if local is None:
                self.storage.put_file(archive_key(export_id), final)
        except Exception as exc:
            logger.exception("export %s failed", export_id)
            part.unlink(missing_ok=True)
            if local is None:
                final.unlink(missing_ok=True)
            self._set(export_id, status="failed", error_code="export_failed",
                      error_message=f"The export failed: {type(exc).__name__}. Start a new export.",
                      completed_at=now())
            return
        with self.sessions() as s:
            e = s.scalar(select(Export).where(Export.id == export_id))
            if e.deleted_at is not None:  # deleted while running: leave nothing behind
                self.storage.delete_prefix(archive_key(export_id))
            e.status, e.progress, e.bytes, e.sha256, e.completed_at = "completed", 100, size, digest, now()
            # The records are in the archive now; keep the row small.
            e.state = {"video_ids": state.video_ids, "done": state.done}
            s.commit()

    def _set(self, export_id: str, **values: Any) -> None:
        with self.sessions() as s:
            s.execute(update(Export).where(Export.id == export_id).values(**values))
            s.commit()

    def _item(self, owner_id: str, video_id: str) -> Item | None:
        with self.sessions() as s:
            v = s.scalar(select(Video).where(Video.id == video_id, Video.owner_id == owner_id,
                                             Video.deleted_at.is_(None)))
            if v is None:  # deleted since the export started
                return None
            if taken_down_by_others(s, owner_id, v.id):  # its link to that cameo could not travel with it
                return None
            entries: list[Entry] = []
            files: dict[str, str] = {}
            keys = {variant: published_key(v, variant) for variant in ("video", "thumbnail", "spritesheet")}
            if v.input_key:
                keys["input"] = v.input_key
            for what, key in keys.items():
                size = self.storage.size(key)
                if size is None:
                    continue
                path = video_path(v.id, what)
                entries.append(Entry(path, size, lambda key=key: self.storage.open(key)))
                files[what] = path
            # A supplied soundtrack's storage key means nothing on another server (the references a job used
            # are named in `resolved` by hash only; cameos' frames and voices never travel in a video's record).
            params = {k: x for k, x in (v.params or {}).items() if k != "audio_reference_key"}
            if isinstance(board := params.get("storyboard"), dict):
                params["storyboard"] = self._storyboard(v.id, board, entries)
            obj = self.video_object(v).model_dump(mode="json")
            record = {
                "video": obj,
                "mutoscope": {
                    "kind": v.kind, "params": params, "resolved": v.resolved,
                    "lineage": {"remixed_from_video_id": v.remixed_from_video_id,
                                "extended_from_video_id": v.extended_from_video_id,
                                "edited_from_video_id": v.edited_from_video_id},
                    "cameo_ids": own_cameos_of(s, owner_id, v.id),
                    "input_reference": files.pop("input", None),
                    "files": files, "started_at": v.started_at,
                    "error": {"code": v.error_code, "message": v.error_message} if v.error_code else None,
                },
            }
        return Item(record=record, entries=entries)

    def _cameos(self, owner_id: str) -> list[Item]:
        """The owner's cameos, each with its reference frames and (only with voice consent) its voice sample."""
        with self.sessions() as s:
            cameos = owned(s, self.storage, owner_id)
        items = []
        for c in cameos:
            cid, entries = c.record["id"], []
            refs = []
            for i, (key, size) in enumerate(c.references):
                refs.append(cameo_reference_path(cid, i))
                entries.append(Entry(refs[-1], size, lambda key=key: self.storage.open(key)))
            voice = None
            if c.voice is not None:
                key, size = c.voice
                voice = cameo_voice_path(cid)
                entries.append(Entry(voice, size, lambda key=key: self.storage.open(key)))
            items.append(Item(record={**c.record, "files": {"references": refs, "voice": voice}}, entries=entries))
        return items

    def _storyboard(self, video_id: str, board: dict[str, Any], entries: list[Entry]) -> dict[str, Any]:
        """The storyboard with each shot's stored first frame as an archive entry named in the shot, in place
        of the storage key (which means nothing on another server)."""
        shots = []
        for i, stored in enumerate(board.get("shots") or []):
            if not isinstance(stored, dict):
                continue
            shot = {k: x for k, x in stored.items() if k not in ("image_key", "characters")}
            key = stored.get("image_key")
            if isinstance(key, str) and (size := self.storage.size(key)) is not None:
                shot["image"] = shot_image_path(video_id, i)
                entries.append(Entry(shot["image"], size, lambda key=key: self.storage.open(key)))
            shots.append(shot)
        return {**board, "shots": shots}

    # Worker.
    def recover(self) -> None:
        """After a restart: re-queue exports left in_progress (they resume from their checkpoint)."""
        with self.sessions() as s:
            s.execute(update(Export).where(Export.status == "in_progress", Export.attempts < self.max_attempts)
                      .values(status="queued"))
            s.execute(update(Export).where(Export.status == "in_progress").values(
                status="failed", error_code="worker_lost", completed_at=now(),
                error_message="The server stopped during this export several times. Start a new export."))
            s.commit()

    def start(self) -> "ExportQueue":
        """Recover and start the worker thread (daemon: a stop mid-export is resumed on next start)."""
        if self._thread is None:
            self.recover()
            self._thread = threading.Thread(target=self._loop, name="mutoscope-exports", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            export_id = None
            try:
                with self.sessions() as s:
                    queued = list(s.scalars(select(Export.id).where(Export.status == "queued",
                                                                   Export.deleted_at.is_(None))
                                            .order_by(Export.seq.asc()).limit(1)))
                if queued and self.claim(queued[0]):
                    export_id = queued[0]
            except Exception:
                logger.exception("claiming the next export failed")
            if export_id is None:
                self._wake.wait(timeout=2.0)
                self._wake.clear()
                continue
            self.run(export_id)
