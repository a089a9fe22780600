"""Import: verify the whole archive first, then write everything in one transaction, or nothing.

Order of work, so that a bad archive leaves nothing behind:
 1. refuse before reading: over the size limit, not a zip / truncated, unsafe paths (zip-slip),
    duplicate or encrypted entries, absurd compression ratios (zip bombs), too much data in total;
 2. read manifest.json: known format and version, every entry listed and every listed entry present;
 3. stream every entry into a private staging folder, checking its SHA-256 and size against the manifest;
 4. parse videos.jsonl and check every path it names;
 5. move the files under their (possibly new) ids, insert every row in ONE transaction; if that fails,
    remove the moved files again. The staging folder is always removed.
A second import of the same archive into the same account is found by its SHA-256 and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import Import, ImportedVideo, Video, new_id
from mutoscope.errors import InvalidRequest, NotImplementedYet, PayloadTooLarge
from mutoscope.exports.format import (CAMEOS, FORMAT, ID_RE, MANIFEST, SUPPORTED_VERSIONS, VIDEO_FILES, VIDEOS,
                                      VideoRecord, is_known, is_unsafe)
from mutoscope.storage.keys import input_key, variant_key, video_prefix
from mutoscope.storage import Storage

CHUNK = 1024 * 1024
MANIFEST_MAX = 64 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What an importer accepts. Args:
        max_archive_bytes: the archive file itself.
        max_total_bytes: everything in it, uncompressed.
        max_ratio: uncompressed/compressed size of one entry; media is stored, so real archives are ~1.
        ratio_floor: entries smaller than this are never called bombs (tiny JSON compresses well).
        max_entries: number of entries.
    """

    max_archive_bytes: int = 50 * 1024**3
    max_total_bytes: int = 100 * 1024**3
    max_ratio: float = 100.0
    ratio_floor: int = 1024 * 1024
    max_entries: int = 500_000


@dataclass
class Staged:
    """One video ready to be placed: its record, its files on local disk, and where it came from."""

    record: VideoRecord
    files: dict[str, Path] = field(default_factory=dict)  # video|thumbnail|spritesheet|input -> staged file
    source_id: str = ""
    meta: dict[str, Any] | None = None


def _bad(message: str, code: str = "invalid_archive") -> InvalidRequest:
    return InvalidRequest(message, param="file", code=code)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


# --- 1-4: checks ----------------------------------------------------------------------------------

def _open(archive: Path, limits: Limits) -> zipfile.ZipFile:
    size = archive.stat().st_size
    if size > limits.max_archive_bytes:
        raise PayloadTooLarge(f"The archive is {size} bytes; this server accepts archives up to "
                              f"{limits.max_archive_bytes} bytes.", param="file", code="archive_too_large")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise _bad("The archive is truncated or is not a zip file (no readable central directory).",
                   "archive_truncated") from None
    try:
        _check_entries(zf, limits)
    except Exception:
        zf.close()
        raise
    return zf


def _check_entries(zf: zipfile.ZipFile, limits: Limits) -> None:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _bad(f"The archive has {len(infos)} entries; at most {limits.max_entries} are accepted.")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        if is_unsafe(name):
            raise _bad(f"The archive contains a path that escapes its folder: {name!r}.", "unsafe_path")
        if name in seen:
            raise _bad(f"The archive contains {name!r} twice.")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise _bad(f"{name!r} is encrypted; exports are never encrypted.")
        if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise _bad(f"{name!r} would expand {info.file_size // max(info.compress_size, 1)}x "
                       f"(at most {limits.max_ratio:g}x is accepted): this looks like a zip bomb.",
                       "suspicious_compression")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise PayloadTooLarge(f"The archive expands to more than {limits.max_total_bytes} bytes.",
                                  param="file", code="archive_too_large")


def _manifest(zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise _bad("The archive has no manifest.json; it is not a Mutoscope export.") from None
    if info.file_size > MANIFEST_MAX:
        raise _bad("manifest.json is implausibly large.")
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except (zipfile.BadZipFile, EOFError, OSError):
        raise _bad("manifest.json is truncated or corrupt.", "archive_truncated") from None
    except ValueError:
        raise _bad("manifest.json is not valid JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(f"manifest.json does not describe a {FORMAT} archive.")
    version = manifest.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise _bad(f"The archive has format version {version!r}; this server reads version(s) "
                   f"{', '.join(map(str, SUPPORTED_VERSIONS))}. Upgrade Mutoscope to import it.",
                   "unsupported_format_version")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        raise _bad("manifest.json has no valid 'files' table.")
    return manifest


def _stage(zf: zipfile.ZipFile, files: dict[str, dict], staging: Path) -> dict[str, Path]:
    present = {i.filename for i in zf.infolist() if not i.is_dir()} - {MANIFEST}
    for name in sorted(files):
        if is_unsafe(name):
            raise _bad(f"manifest.json names a path that escapes its folder: {name!r}.", "unsafe_path")
    missing = sorted(set(files) - present)
    if missing:
        raise _bad(f"The archive is incomplete: {missing[0]} is listed in manifest.json but missing"
                   f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}.", "archive_incomplete")
    extra = sorted(present - set(files))
    if extra:
        raise _bad(f"{extra[0]} is in the archive but not in manifest.json, so it cannot be verified.",
                   "checksum_mismatch")
    staged: dict[str, Path] = {}
    for i, name in enumerate(sorted(files)):
        want = files[name]
        dest = staging / f"{i:07d}"
        h, n = hashlib.sha256(), 0
        try:
            with zf.open(name) as src, open(dest, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    n += len(chunk)
        except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile):
            raise _bad(f"{name} is truncated or corrupt in the archive.", "archive_truncated") from None
        if h.hexdigest() != want.get("sha256") or ("bytes" in want and want["bytes"] != n):
            raise _bad(f"The checksum of {name} does not match manifest.json; the archive is damaged.",
                       "checksum_mismatch")
        if is_known(name):  # unknown (future) entries are verified, then ignored
            staged[name] = dest
    return staged


def _records(staged: dict[str, Path]) -> list[Staged]:
    if VIDEOS not in staged:
        raise _bad("The archive has no videos.jsonl.", "archive_incomplete")
    if CAMEOS in staged and staged[CAMEOS].read_bytes().strip():
        raise NotImplementedYet("The archive contains cameos, which this server cannot import yet (issue #4). "
                                "Nothing was imported.", param="file", code="cameos_not_supported")
    out: list[Staged] = []
    ids: set[str] = set()
    with open(staged[VIDEOS], encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = VideoRecord.model_validate_json(line)
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise _bad(f"videos.jsonl line {n}: {where}: {first['msg']}.") from None
            vid = rec.video.id
            if vid in ids:
                raise _bad(f"videos.jsonl lists video {vid} twice.")
            ids.add(vid)
            files: dict[str, Path] = {}
            wanted = dict(rec.mutoscope.files)
            if rec.mutoscope.input_reference:
                wanted["input"] = rec.mutoscope.input_reference
            for what, path in wanted.items():
                if what not in VIDEO_FILES or path != f"videos/{vid}/{VIDEO_FILES[what]}":
                    raise _bad(f"videos.jsonl line {n}: unexpected file {path!r} for {what}.")
                if path not in staged:
                    raise _bad(f"videos.jsonl line {n} names {path}, which is not in the archive.",
                               "archive_incomplete")
                files[what] = staged[path]
            out.append(Staged(record=rec, files=files, source_id=vid))
    return out


# --- 5: placing -----------------------------------------------------------------------------------

def _row(st: Staged, vid: str, owner_id: str, link: Callable[[str | None], str | None]) -> Video:
    v, m = st.record.video, st.record.mutoscope
    status, progress, completed_at, started_at = v.status, v.progress, v.completed_at, m.started_at
    if status in ("queued", "in_progress"):  # unfinished at export time: generate it again here
        status, progress, completed_at, started_at = "queued", 0, None, None
    params = dict(m.params)
    if params.get("seed") is None:
        extra_seed = (v.model_extra or {}).get("seed")
        params["seed"] = extra_seed if isinstance(extra_seed, int) else random.randrange(2**31)
    err = m.error or v.error
    lineage = m.lineage
    extended = lineage.extended_from_video_id or (v.model_extra or {}).get("extended_from_video_id")
    edited = lineage.edited_from_video_id or (v.model_extra or {}).get("edited_from_video_id")
    return Video(
        id=vid, owner_id=owner_id, kind=m.kind, model=v.model, status=status, progress=progress,
        prompt=v.prompt or "", size=v.size, seconds=v.seconds, params=params, resolved=m.resolved,
        input_key=input_key(vid) if "input" in st.files else None,
        remixed_from_video_id=link(lineage.remixed_from_video_id or v.remixed_from_video_id),
        extended_from_video_id=link(extended), edited_from_video_id=link(edited),
        error_code=(err.code if err and status == "failed" else None),
        error_message=(err.message if err and status == "failed" else None),
        created_at=v.created_at, started_at=started_at, completed_at=completed_at, expires_at=v.expires_at,
    )


def place(sessions: sessionmaker[Session], storage: Storage, owner_id: str, videos: list[Staged], source: str,
          *, known: Callable[[str], str | None] = lambda _: None, import_row: Import | None = None) -> dict[str, str]:
    """Put staged videos in storage and the database in one transaction; returns source id -> local id.

    Ids are kept where free on this server and replaced where taken; lineage links to videos of the
    same batch follow the new ids, links to earlier imports from the same source go through `known`,
    anything else is kept as it was (a link to a video the source no longer has).
    """
    with sessions() as s:
        wanted = [st.record.video.id for st in videos if ID_RE.match(st.record.video.id)]
        taken = set(s.scalars(select(Video.id).where(Video.id.in_(wanted)))) if wanted else set()
    id_map: dict[str, str] = {}
    for st in videos:
        vid = st.record.video.id
        id_map[st.source_id or vid] = vid if ID_RE.match(vid) and vid not in taken and vid not in \
            id_map.values() else new_id("video_")

    def link(ref: str | None) -> str | None:
        if ref is None:
            return None
        return id_map.get(ref) or known(ref) or ref

    moved: list[str] = []
    try:
        for st in videos:
            vid = id_map[st.source_id or st.record.video.id]
            moved.append(vid)
            for what, path in st.files.items():
                storage.put_file(input_key(vid) if what == "input" else variant_key(vid, what), path)
        with sessions() as s:
            for st in videos:
                sid = st.source_id or st.record.video.id
                s.add(_row(st, id_map[sid], owner_id, link))
                s.add(ImportedVideo(owner_id=owner_id, source=source, source_id=sid, video_id=id_map[sid],
                                    meta=st.meta))
            if import_row is not None:
                import_row.id_map = dict(id_map)
                import_row.video_count = len(videos)
                s.add(import_row)
            s.commit()
    except BaseException:
        for vid in moved:
            storage.delete_prefix(video_prefix(vid))
        raise
    return id_map


def _existing(sessions: sessionmaker[Session], owner_id: str, digest: str) -> Import | None:
    with sessions() as s:
        return s.scalar(select(Import).where(Import.owner_id == owner_id, Import.sha256 == digest))


def import_archive(sessions: sessionmaker[Session], storage: Storage, owner_id: str, archive: Path,
                   limits: Limits = Limits()) -> tuple[Import, bool]:
    """Import an export archive into an account. Returns the import and whether it had been imported before."""
    size = archive.stat().st_size
    if size > limits.max_archive_bytes:  # before hashing gigabytes we will refuse anyway
        raise PayloadTooLarge(f"The archive is {size} bytes; this server accepts archives up to "
                              f"{limits.max_archive_bytes} bytes.", param="file", code="archive_too_large")
    digest = sha256_file(archive)
    found = _existing(sessions, owner_id, digest)
    if found is not None:
        return found, True
    staging = storage.scratch_dir() / f"import-{secrets.token_hex(8)}"
    staging.mkdir(parents=True)
    try:
        with _open(archive, limits) as zf:
            manifest = _manifest(zf)
            staged = _stage(zf, manifest["files"], staging)
        videos = _records(staged)
        row = Import(owner_id=owner_id, sha256=digest, format_version=int(manifest["format_version"]))
        try:
            place(sessions, storage, owner_id, videos, f"archive:{digest}", import_row=row)
        except IntegrityError:
            # The same archive, imported concurrently, won the race (or an id was taken meanwhile).
            found = _existing(sessions, owner_id, digest)
            if found is not None:
                return found, True
            raise
        return row, False
    finally:
        shutil.rmtree(staging, ignore_errors=True)
