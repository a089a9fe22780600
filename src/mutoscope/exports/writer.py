"""Write an export archive to disk: streamed (never built in memory), ZIP64-capable, resumable.

Resumption without re-reading what is done: every checkpoint closes the zip, which writes a valid
central directory, and records the archive's length together with the work done (`ExportState`).
After a crash the file is cut back to that length — a valid zip again — and reopened in append mode,
where zipfile overwrites the old central directory with the next entries. Anything written after the
last checkpoint is simply written again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mutoscope.exports.format import CAMEOS, FORMAT, FORMAT_VERSION, MANIFEST, README, README_TEXT, VIDEOS

CHUNK = 1024 * 1024


@dataclass
class ExportState:
    """What survives a restart (stored as JSON in the export's row)."""

    video_ids: list[str]
    done: int = 0
    offset: int = 0  # archive length at the last checkpoint; 0 = nothing valid on disk yet
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {sha256, bytes}
    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ExportState":
        return cls(video_ids=list(data.get("video_ids", [])), done=int(data.get("done", 0)),
                   offset=int(data.get("offset", 0)), files=dict(data.get("files", {})),
                   records=list(data.get("records", [])))

    def to_json(self) -> dict[str, Any]:
        return {"video_ids": self.video_ids, "done": self.done, "offset": self.offset, "files": self.files,
                "records": self.records}


@dataclass
class Entry:
    """One file of one video to put in the archive."""

    path: str  # inside the archive
    size: int
    open: Callable[[], BinaryIO]


@dataclass
class Item:
    """One video (or cameo): its record and its files. None from the source = the video is gone; skip it."""

    record: dict[str, Any]
    entries: list[Entry]


def _zip_time(ts: int) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(max(ts, 315532800))  # zip can't say before 1980
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _add_stream(zf: zipfile.ZipFile, name: str, src: BinaryIO, size: int, when: int, compress: bool) -> dict:
    info = zipfile.ZipInfo(name, _zip_time(when))
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.file_size = size  # lets zipfile choose ZIP64 headers up front for files over 2 GiB
    info.external_attr = 0o644 << 16
    h, n = hashlib.sha256(), 0
    with zf.open(info, "w", force_zip64=size > 0x7FFFFFFF) as dst:
        while chunk := src.read(CHUNK):
            h.update(chunk)
            dst.write(chunk)
            n += len(chunk)
    return {"sha256": h.hexdigest(), "bytes": n}


def _add_bytes(zf: zipfile.ZipFile, name: str, data: bytes, when: int) -> dict:
    return _add_stream(zf, name, io.BytesIO(data), len(data), when, compress=True)


def write_archive(part: Path, state: ExportState, load: Callable[[str], Item | None], *, owner: str, created_at: int,
                  exporter: str, checkpoint: Callable[[ExportState], None],
                  progress: Callable[[int, int], None] = lambda done, total: None,
                  checkpoint_every: float = 5.0, cameos: Callable[[], list[Item]] = lambda: []) -> None:
    """Write (or go on writing) the archive at `part`.

    Args:
        part: the working file; a caller renames it once this returns.
        state: where to start; updated in place and handed to `checkpoint` whenever it is durable.
        load: a video id -> its Item (re-read when its turn comes, so it is never stale).
        checkpoint: persists the state; called after the zip on disk is valid up to `state.offset`.
        checkpoint_every: seconds between checkpoints (each rewrites the central directory).
        cameos: the owner's cameos (a record with an `id` each, and their files), read once the videos are
            written; a video's `cameo_ids` keep only ids among them, so no record names a cameo the archive
            lacks (one deleted meanwhile, or another account's).
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    if state.offset and part.exists() and part.stat().st_size >= state.offset:
        with open(part, "r+b") as f:
            f.truncate(state.offset)
        zf = zipfile.ZipFile(part, "a", allowZip64=True)
    else:  # nothing durable yet: start over
        state.done, state.offset, state.files, state.records = 0, 0, {}, []
        zf = zipfile.ZipFile(part, "w", allowZip64=True)
    total = len(state.video_ids)
    last = time.monotonic()
    try:
        while state.done < total:
            item = load(state.video_ids[state.done])
            if item is not None:
                for e in item.entries:
                    with e.open() as src:
                        state.files[e.path] = _add_stream(zf, e.path, src, e.size, created_at, compress=False)
                state.records.append(item.record)
            state.done += 1
            progress(state.done, total)
            if time.monotonic() - last >= checkpoint_every and state.done < total:
                zf.close()
                state.offset = part.stat().st_size
                checkpoint(state)
                zf = zipfile.ZipFile(part, "a", allowZip64=True)
                last = time.monotonic()
        # Cameos are a few small files each, written after the last checkpoint: a resume writes them again.
        cameo_items = cameos()
        for item in cameo_items:
            for e in item.entries:
                with e.open() as src:
                    state.files[e.path] = _add_stream(zf, e.path, src, e.size, created_at, compress=False)
        exported = {item.record["id"] for item in cameo_items}
        for r in state.records:
            r["mutoscope"]["cameo_ids"] = [c for c in r["mutoscope"].get("cameo_ids", []) if c in exported]
        # The small files last, so a resume never has to rewrite them.
        jsonl = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in state.records).encode()
        state.files[VIDEOS] = _add_bytes(zf, VIDEOS, jsonl, created_at)
        cameo_jsonl = "".join(json.dumps(item.record, ensure_ascii=False, sort_keys=True) + "\n"
                              for item in cameo_items).encode()
        state.files[CAMEOS] = _add_bytes(zf, CAMEOS, cameo_jsonl, created_at)
        n_files = len(state.files) + 2
        readme = README_TEXT.format(owner=owner, when=time.strftime("%Y-%m-%d %H:%M", time.gmtime(created_at)),
                                    videos=len(state.records), cameos=len(cameo_items), files=n_files,
                                    format=FORMAT, version=FORMAT_VERSION).encode()
        state.files[README] = _add_bytes(zf, README, readme, created_at)
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "created_at": created_at, "exporter": exporter,
            "owner": owner,
            "counts": {"videos": len(state.records), "cameos": len(cameo_items), "files": len(state.files)},
            "files": dict(sorted(state.files.items())),
        }
        _add_bytes(zf, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode(), created_at)
    finally:
        zf.close()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def finish(part: Path, final: Path) -> tuple[int, str]:
    """Rename the finished archive into place; its size and SHA-256."""
    digest = sha256_file(part)
    os.replace(part, final)
    return final.stat().st_size, digest
