"""Import: verify the whole archive first, then write everything in one transaction, or nothing.

An archive is data from an untrusted hand (anyone with an account can upload one), never a back
door past the API: every record is held to the rules a create request is held to, it may link only to
what it carries itself or what the importer already owns, and nothing in it ever starts a job.

Order of work, so that a bad archive leaves nothing behind:
 1. refuse before reading: over the size limit, not a zip / truncated, unsafe paths (zip-slip),
    duplicate, encrypted or overlapping entries, too many entries, absurd compression ratios per entry
    or in total (zip bombs), too much data in total;
 2. read manifest.json (bounded size and JSON nesting): known format and version, every entry listed and
    every listed entry present;
 3. stream every entry into a private, locked staging folder (scratch.py), checking its SHA-256 and size
    against the manifest;
 4. parse videos.jsonl (bounded lines and nesting) and check each record: its paths, its model, size and
    seconds against this server's catalog, its params by the API's own rules, and that its lineage and
    cameo links point only into the archive or at the importer's own objects; parse cameos.jsonl the same
    way, each cameo's reference frames and voice sample bounded and decoded;
 5. move the files under their (possibly new) ids, insert every row in ONE transaction; if that fails,
    remove the moved files again. The staging folder is always removed. Cameos arrive `unverified` and
    without their files (likeness/portable.py says why): nothing in an archive vouches for a face.
 6. Videos unfinished at export time arrive `failed` with `not_run_imported`, uncharged. Only if the
    importer asks (`unfinished="resubmit"`) are they handed, one by one, to a `Resubmit` callable that
    the caller builds from the normal admission path (plan, budget, concurrency, consent); what that
    refuses stays not run, with the reason in its error message.
A second import of the same archive into the same account is found by its SHA-256 and changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import random
import secrets
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import Cameo, CameoUse, Import, ImportedVideo, UsageRecord, Video, new_id, now
from mutoscope.errors import Conflict, InvalidRequest, MutoscopeError, PayloadTooLarge
from mutoscope.engine.camera import moves_of
from mutoscope.exports.format import (CAMEOS, FORMAT, ID_RE, MANIFEST, SUPPORTED_VERSIONS, VIDEO_FILES, VIDEOS,
                                      CameoRecord, RecordParams, VideoRecord, cameo_reference_path, cameo_voice_path,
                                      is_known, is_unsafe, shot_image_path)
from mutoscope.exports.scratch import ScratchArea
from mutoscope.likeness.portable import (Incoming, carry_others_uses, restore, restore_uses, valid_handle,
                                         waiting)
from mutoscope.media import MediaError, load_image
from mutoscope.media.sound import SoundLimits, decode_sound
from mutoscope.protocol.base import nesting_within
from mutoscope.storage.keys import attempt_prefix, input_key, shot_input_key, variant_key
from mutoscope.storage import Storage
from mutoscope.videos import transitions

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
NOT_RUN = "not_run_imported"
UNFINISHED = ("queued", "in_progress")
Unfinished = Literal["not_run", "resubmit"]
LINKS = ("remixed_from_video_id", "extended_from_video_id", "edited_from_video_id")


@dataclass(frozen=True)
class Limits:
    """What an importer accepts. Args:
        max_archive_bytes: the archive file itself.
        max_total_bytes: everything in it, uncompressed.
        max_ratio: uncompressed/compressed size of one entry, and of all entries together; media is
            stored, so real archives are ~1.
        ratio_floor: entries (and archives) smaller than this are never called bombs (tiny JSON
            compresses well).
        max_entries: number of entries.
        max_manifest_bytes: manifest.json, uncompressed.
        max_record_bytes: one line of videos.jsonl.
        max_json_depth: how deeply any JSON document in the archive may nest.
        max_cameos: lines of cameos.jsonl, and the cameos one account may have waiting for verification.
        max_cameo_record_bytes: one line of cameos.jsonl (a cameo's uses can be many).
        max_cameo_file_bytes: one reference frame or voice sample.
        max_cameo_pixels: one reference frame, by its header before it is decoded (a face crop is small).
        max_voice_seconds: one voice sample (the server keeps 8 s).
    """

    max_archive_bytes: int = 50 * 1024**3
    max_total_bytes: int = 100 * 1024**3
    max_ratio: float = 100.0
    ratio_floor: int = 1024 * 1024
    max_entries: int = 200_000
    max_manifest_bytes: int = 64 * 1024 * 1024
    max_record_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    max_cameos: int = 100
    max_cameo_record_bytes: int = 16 * 1024 * 1024
    # All of cameos.jsonl: parsed, its lines are held at once, so the many-line worst case is bounded too.
    max_cameos_bytes: int = 32 * 1024 * 1024
    max_cameo_file_bytes: int = 8 * 1024 * 1024
    max_cameo_pixels: int = 4096 * 4096
    max_voice_seconds: float = 30.0


class CatalogEntry(Protocol):
    name: str
    sizes: Sequence[str]
    seconds: Sequence[str]


class Catalog(Protocol):
    """The server's models as the API sees them (videos.catalog.ModelCatalog, engine.catalog.Catalog)."""

    def resolve(self, name: str) -> CatalogEntry:
        """Raises LookupError for an unknown name."""


@dataclass(frozen=True)
class Resubmission:
    """An unfinished record, as a request the normal admission path can take.

    `source_video_id` is the lineage source's id on this server (already the importer's own);
    `input` the bytes of the record's input file (a first-frame PNG, or an edit's uploaded MP4).
    """

    kind: str
    model: str
    prompt: str
    size: str
    seconds: str
    extend_seconds: str | None
    params: dict[str, Any]
    source_video_id: str | None
    input: bytes | None


# owner id, job -> the new video's id; raises a MutoscopeError when admission refuses it.
Resubmit = Callable[[str, Resubmission], str]


@dataclass
class Staged:
    """One video ready to be placed: its record, its files on local disk, and where it came from."""

    record: VideoRecord
    # video|thumbnail|spritesheet|input, and shot-<i> for a storyboard's shot images -> staged file
    files: dict[str, Path] = field(default_factory=dict)
    source_id: str = ""
    meta: dict[str, Any] | None = None
    line: int = 0
    # Filled by the record checks; place() derives them itself for migrated videos.
    params: dict[str, Any] | None = None
    links: dict[str, str | None] | None = None


@dataclass
class StagedCameo:
    """One line of cameos.jsonl, checked. Its files were read, bounded and decoded, and are not kept: an
    imported cameo's references come only from its person's live verification here (likeness/portable.py)."""

    record: CameoRecord
    line: int


def _bad(message: str, code: str = "invalid_archive") -> InvalidRequest:
    return InvalidRequest(message, param="file", code=code)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _json(data: bytes, what: str, limits: Limits) -> Any:
    if not nesting_within(data, limits.max_json_depth):
        raise _bad(f"{what} is not valid JSON or nests deeper than {limits.max_json_depth} levels.",
                   "invalid_json")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise _bad(f"{what} is not valid JSON.", "invalid_json") from None


# 1-4: checks

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
        _check_entries(zf, limits, size)
    except Exception:
        zf.close()
        raise
    return zf


def _check_entries(zf: zipfile.ZipFile, limits: Limits, archive_size: int) -> None:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _bad(f"The archive has {len(infos)} entries; at most {limits.max_entries} are accepted.",
                   "too_many_entries")
    seen: set[str] = set()
    total = packed = 0
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
        packed += info.compress_size
        if total > limits.max_total_bytes:
            raise PayloadTooLarge(f"The archive expands to more than {limits.max_total_bytes} bytes.",
                                  param="file", code="archive_too_large")
    if packed > archive_size:
        # Entries that share their compressed bytes: the overlapping-entry zip bomb.
        raise _bad("The archive's entries overlap one another; exports never do.", "suspicious_compression")
    # Many entries, each just under the per-entry floor, add up: judge the archive as a whole too.
    if total > limits.ratio_floor and total > limits.max_ratio * max(packed, 1):
        raise _bad(f"The archive would expand {total // max(packed, 1)}x in total, to {total} bytes "
                   f"(at most {limits.max_ratio:g}x is accepted): this looks like a zip bomb.",
                   "suspicious_compression")


def _manifest(zf: zipfile.ZipFile, limits: Limits) -> dict[str, Any]:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise _bad("The archive has no manifest.json; it is not a Mutoscope export.") from None
    if info.file_size > limits.max_manifest_bytes:
        raise _bad(f"manifest.json is {info.file_size} bytes; at most {limits.max_manifest_bytes} are accepted.")
    try:
        raw = zf.read(MANIFEST)
    except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile):
        raise _bad("manifest.json is truncated or corrupt.", "archive_truncated") from None
    manifest = _json(raw, "manifest.json", limits)
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


def _records(staged: dict[str, Path], limits: Limits) -> list[Staged]:
    if VIDEOS not in staged:
        raise _bad("The archive has no videos.jsonl.", "archive_incomplete")
    out: list[Staged] = []
    ids: set[str] = set()
    with open(staged[VIDEOS], "rb") as f:
        n = 0
        while line := f.readline(limits.max_record_bytes + 1):
            n += 1
            if len(line) > limits.max_record_bytes:
                raise _bad(f"videos.jsonl line {n} is longer than {limits.max_record_bytes} bytes.")
            if not line.strip():
                continue
            if not nesting_within(line, limits.max_json_depth):
                raise _bad(f"videos.jsonl line {n} is not valid JSON or nests deeper than "
                           f"{limits.max_json_depth} levels.", "invalid_json")
            try:
                rec = VideoRecord.model_validate_json(line)
            except ValidationError as e:
                raise _bad(f"videos.jsonl line {n}: {_first_error(e)}.") from None
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
            board = rec.mutoscope.params.get("storyboard")
            shots = board.get("shots") if isinstance(board, dict) else None
            for i, shot in enumerate(shots if isinstance(shots, list) else []):
                path = shot.get("image") if isinstance(shot, dict) else None
                if path is None:
                    continue
                if not isinstance(path, str) or path != shot_image_path(vid, i):
                    raise _bad(f"videos.jsonl line {n}: unexpected file {path!r} for storyboard shot {i}.")
                if path not in staged:
                    raise _bad(f"videos.jsonl line {n} names {path}, which is not in the archive.",
                               "archive_incomplete")
                files[f"shot-{i}"] = staged[path]
            for what, path in files.items():  # images a remix or retry would decode later: decoded now
                if what == "input" or what.startswith("shot-"):
                    try:
                        load_image(path.read_bytes(), formats=("PNG",))
                    except MediaError as e:
                        raise _bad(f"videos.jsonl line {n}: {path.name} of video {vid} is not a usable PNG "
                                   f"image ({e}).", "invalid_image") from None
            out.append(Staged(record=rec, files=files, source_id=vid, line=n))
    return out


def _cameos(staged: dict[str, Path], limits: Limits) -> list[StagedCameo]:
    """cameos.jsonl, each line checked with its files, before anything is written."""
    if CAMEOS not in staged:
        return []
    out: list[StagedCameo] = []
    ids: set[str] = set()
    handles: set[str] = set()
    if (size := staged[CAMEOS].stat().st_size) > limits.max_cameos_bytes:
        raise _bad(f"cameos.jsonl is {size} bytes; this server reads at most {limits.max_cameos_bytes}.",
                   "invalid_cameo")
    with open(staged[CAMEOS], "rb") as f:
        n = 0
        while line := f.readline(limits.max_cameo_record_bytes + 1):
            n += 1
            where = f"cameos.jsonl line {n}"
            if len(line) > limits.max_cameo_record_bytes:
                raise _bad(f"{where} is longer than {limits.max_cameo_record_bytes} bytes.", "invalid_cameo")
            if not line.strip():
                continue
            if len(out) >= limits.max_cameos:
                raise _bad(f"cameos.jsonl holds more than {limits.max_cameos} cameos; this server imports at "
                           f"most {limits.max_cameos} from one archive.", "too_many_cameos")
            if not nesting_within(line, limits.max_json_depth):
                raise _bad(f"{where} is not valid JSON or nests deeper than {limits.max_json_depth} levels.",
                           "invalid_json")
            try:
                rec = CameoRecord.model_validate_json(line)
            except ValidationError as e:
                first = e.errors()[0]
                if first["type"] == "extra_forbidden":
                    raise _bad(f"{where}: {'.'.join(str(p) for p in first['loc'])}: not a field an export writes. "
                               "An archive cannot carry a verification or biometrics: an imported cameo is "
                               "verified again, live, on this server.", "invalid_cameo") from None
                raise _bad(f"{where}: {_first_error(e)}.", "invalid_cameo") from None
            where = f"{where} (cameo {rec.id})"
            if rec.id in ids:
                raise _bad(f"cameos.jsonl lists cameo {rec.id} twice.", "invalid_cameo")
            if not valid_handle(rec.handle) or rec.handle in handles:
                raise _bad(f"{where}: handle: '{rec.handle}' is not a valid handle, or another line has it too.",
                           "invalid_cameo")
            ids.add(rec.id)
            handles.add(rec.handle)
            refs = rec.files.references
            if refs and rec.status != "active":
                raise _bad(f"{where}: files.references: only a verified cameo has reference frames.", "invalid_cameo")
            if rec.files.voice is not None and not rec.voice_consent:
                raise _bad(f"{where}: files.voice: a voice sample leaves only with its owner's voice consent.",
                           "invalid_cameo")
            for i, path in enumerate(refs):
                data = _cameo_file(staged, path, cameo_reference_path(rec.id, i), where, limits)
                try:
                    load_image(data, max_pixels=limits.max_cameo_pixels, formats=("JPEG",))
                except MediaError as e:
                    raise _bad(f"{where}: {path} is not a usable JPEG image ({e}).", "invalid_image") from None
            if rec.files.voice is not None:
                data = _cameo_file(staged, rec.files.voice, cameo_voice_path(rec.id), where, limits)
                # An export writes WAV; only a WAV reaches the decoder, which would otherwise follow whatever
                # format it can detect (playlists included).
                if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
                    raise _bad(f"{where}: {rec.files.voice} is not a WAV file.", "invalid_audio")
                try:
                    decode_sound(io.BytesIO(data), SoundLimits(max_seconds=limits.max_voice_seconds))
                except MediaError as e:
                    raise _bad(f"{where}: {rec.files.voice} is not a usable voice sample: {e}.",
                               "invalid_audio") from None
            out.append(StagedCameo(record=rec, line=n))
    return out


def _cameo_file(staged: dict[str, Path], path: str, expected: str, where: str, limits: Limits) -> bytes:
    if path != expected:
        raise _bad(f"{where}: unexpected file {path!r} (expected {expected!r}).", "invalid_cameo")
    if path not in staged:
        raise _bad(f"{where} names {path}, which is not in the archive.", "archive_incomplete")
    size = staged[path].stat().st_size
    if size > limits.max_cameo_file_bytes:
        raise _bad(f"{where}: {path} is {size} bytes; a cameo's file may be at most {limits.max_cameo_file_bytes} "
                   "bytes.", "invalid_cameo")
    return staged[path].read_bytes()


def _lineage_of(rec: VideoRecord) -> dict[str, str | None]:
    """The record's three lineage links, from its `mutoscope` part or the video object's extensions."""
    v, lineage = rec.video, rec.mutoscope.lineage
    extra = v.model_extra or {}
    links = {"remixed_from_video_id": lineage.remixed_from_video_id or v.remixed_from_video_id,
             "extended_from_video_id": lineage.extended_from_video_id or extra.get("extended_from_video_id"),
             "edited_from_video_id": lineage.edited_from_video_id or extra.get("edited_from_video_id")}
    return {k: ref if isinstance(ref, str) and ref else None for k, ref in links.items()}


def _found(s: Session, column: Any, ids: set[str] | list[str], *where: Any) -> set[str]:
    """The values of `column` among `ids` (in slices: SQLite caps the parameters of one statement)."""
    ids, out = sorted(set(ids)), set()
    for i in range(0, len(ids), 10_000):
        out |= set(s.scalars(select(column).where(column.in_(ids[i:i + 10_000]), *where)))
    return out


def _where(st: Staged) -> str:
    return f"videos.jsonl line {st.line} (video {st.source_id})"


def _check_record(st: Staged, catalog: Catalog, max_lineage_seconds: float) -> None:
    """The rules a create request meets, applied to one record; fills st.params and st.links."""
    v, m = st.record.video, st.record.mutoscope
    where = _where(st)
    for name in ("extended_from_video_id", "edited_from_video_id"):
        ref = (v.model_extra or {}).get(name)
        if ref is not None and not (isinstance(ref, str) and 0 < len(ref) <= 200):
            raise _bad(f"{where}: video.{name}: expected a video id.")
    try:
        entry = catalog.resolve(v.model)
    except LookupError:
        raise _bad(f"{where}: video.model: the model '{v.model}' does not exist on this server. "
                   "GET /v1/models lists the available models.", "model_not_found") from None
    if v.size not in entry.sizes:
        raise _bad(f"{where}: video.size: invalid size '{v.size}' for model '{entry.name}'. Supported sizes: "
                   f"{', '.join(entry.sizes)}.", "invalid_size")
    params = dict(m.params)
    extra_seed = (v.model_extra or {}).get("seed")
    if params.get("seed") is None and extra_seed is not None:
        params["seed"] = extra_seed
    try:
        checked = RecordParams.model_validate(params)
    except ValidationError as e:
        raise _bad(f"{where}: mutoscope.params.{_first_error(e)}.") from None
    if checked.storyboard is not None and m.kind not in ("generate", "remix"):
        raise _bad(f"{where}: mutoscope.params.storyboard: a {m.kind} is not made of shots.", "invalid_storyboard")
    if m.kind == "extend":
        # An extension's seconds is the stitched total; only the part it added is one of the model's lengths.
        try:
            total = float(v.seconds)
        except ValueError:
            total = math.nan
        if not (math.isfinite(total) and 0 < total <= max_lineage_seconds + 1e-9):
            raise _bad(f"{where}: video.seconds: '{v.seconds}' is not a length of at most "
                       f"{max_lineage_seconds:g} s, this server's limit per video lineage.", "invalid_seconds")
        if checked.extend_seconds is not None and checked.extend_seconds not in entry.seconds:
            raise _bad(f"{where}: mutoscope.params.extend_seconds: invalid seconds '{checked.extend_seconds}' "
                       f"for model '{entry.name}'. Supported values: {', '.join(entry.seconds)}.",
                       "invalid_seconds")
    elif checked.storyboard is not None:
        _check_storyboard(checked.storyboard, entry, v.seconds, where)
    elif v.seconds not in entry.seconds:
        raise _bad(f"{where}: video.seconds: invalid seconds '{v.seconds}' for model '{entry.name}'. "
                   f"Supported values: {', '.join(entry.seconds)}.", "invalid_seconds")
    st.params = checked.model_dump(exclude_unset=True)  # round trips keep the keys they had, None or not
    st.links = _lineage_of(st.record)


def _check_storyboard(board: Any, entry: Any, seconds: str, where: str) -> None:
    """A storyboard record holds to what the storyboard rules (videos/storyboard.py) would have admitted on
    this server: shots of the model's lengths at its frame rate, on frame boundaries that add up to the
    video, transitions and camera moves it knows. A remix of one shot relies on every one of these."""
    at = f"{where}: mutoscope.params.storyboard"
    if abs(board.fps - entry.fps) > 1e-6:
        raise _bad(f"{at}.fps: {board.fps:g} fps, but model '{entry.name}' makes {entry.fps:g} fps here.",
                   "invalid_storyboard")
    if board.from_shot >= len(board.shots):
        raise _bad(f"{at}.from_shot: there is no shot {board.from_shot}.", "invalid_storyboard")
    moves = moves_of(entry)
    for i, shot in enumerate(board.shots):
        if shot.seconds not in entry.seconds:
            raise _bad(f"{at}.shots.{i}.seconds: invalid seconds '{shot.seconds}' for model '{entry.name}'. "
                       f"Supported values: {', '.join(entry.seconds)}.", "invalid_seconds")
        if shot.frames != round(float(shot.seconds) * board.fps):
            raise _bad(f"{at}.shots.{i}.frames: {shot.frames} frames is not {shot.seconds} s at "
                       f"{board.fps:g} fps.", "invalid_storyboard")
        if (i == 0) != (shot.transition is None):
            raise _bad(f"{at}.shots.{i}.transition: only the first shot has none.", "invalid_storyboard")
        if shot.transition == "continuous" and shot.image is not None:
            raise _bad(f"{at}.shots.{i}.image: a continuous shot starts from the previous one's frames.",
                       "invalid_storyboard")
        if shot.camera is not None and shot.camera not in moves:
            raise _bad(f"{at}.shots.{i}.camera: model '{entry.name}' has no camera move '{shot.camera}'.",
                       "invalid_camera")
    total = sum(float(shot.seconds) for shot in board.shots)
    if seconds != f"{total:g}":
        raise _bad(f"{where}: video.seconds: '{seconds}', but its shots last {total:g} s.", "invalid_seconds")


def _check_links(sessions: sessionmaker[Session], owner_id: str, videos: list[Staged],
                 cameos: Sequence[StagedCameo] = ()) -> None:
    """Lineage and cameo links may point only into the archive or at the importer's own objects.

    Anything else would let an archive reach another account's data through the worker (an extension
    of someone else's video) or the consent rules (someone else's cameo). The message is the same
    whether the id exists under another account or nowhere, so it reveals nothing about other accounts.
    """
    in_archive = {st.source_id for st in videos}
    refs = {ref for st in videos for ref in (st.links or {}).values() if ref and ref not in in_archive}
    archive_cameos = {c.record.id for c in cameos}
    cameo_refs = {c for st in videos for c in st.record.mutoscope.cameo_ids} - archive_cameos
    with sessions() as s:
        own = _found(s, Video.id, refs, Video.owner_id == owner_id)
        own_cameos = _found(s, Cameo.id, cameo_refs, Cameo.owner_id == owner_id, Cameo.deleted_at.is_(None))
    for st in videos:
        for name, ref in (st.links or {}).items():
            if ref and ref not in in_archive and ref not in own:
                raise _bad(f"{_where(st)}: {name} points at video {ref!r}, which is neither in this archive nor "
                           "a video of your account. Nothing was imported.", "invalid_reference")
        named = st.record.mutoscope.cameo_ids
        if len(set(named)) != len(named):
            raise _bad(f"{_where(st)}: cameo_ids names a cameo twice.", "invalid_reference")
        for ref in named:
            if ref not in own_cameos and ref not in archive_cameos:
                raise _bad(f"{_where(st)}: cameo_ids names cameo {ref!r}, which is neither in this archive's "
                           "cameos.jsonl nor a cameo of your account. Nothing was imported.", "invalid_reference")


# 5: placing

def _not_run_message(status: str) -> str:
    return (f"This video was still {status.replace('_', ' ')} when it was exported, so it was imported without "
            "running: an import never starts jobs by itself. To generate it here, create it again "
            "(POST /v1/videos), or import the archive with unfinished=resubmit.")


def _first_error(e: ValidationError) -> str:
    """`field.path: message` of a record's first validation error (never str(e), which is long and noisy)."""
    first = e.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def _row(st: Staged, vid: str, owner_id: str, link: Callable[[str | None], str | None],
         attempt: int) -> tuple[Video, str]:
    v, m = st.record.video, st.record.mutoscope
    status, progress, completed_at, started_at = v.status, v.progress, v.completed_at, m.started_at
    err_code, err_message = None, None
    err = m.error or v.error
    if status == "failed" and err is not None:
        err_code, err_message = err.code, err.message
    if status in UNFINISHED:
        # Not queued: a record is data, and running it would bypass the plan, the budget and consent.
        status, progress, completed_at, started_at = "failed", 0, now(), None
        err_code, err_message = NOT_RUN, _not_run_message(v.status)
    params = dict(st.params if st.params is not None else m.params)
    if params.get("seed") is None:
        extra_seed = (v.model_extra or {}).get("seed")
        params["seed"] = extra_seed if isinstance(extra_seed, int) else random.randrange(2**31)
    if st.params is not None and params.get("storyboard") is not None:  # checked by _check_storyboard
        # Shot images by the keys this import stored them under; an archive path never reaches storage.
        board = params["storyboard"]
        params["storyboard"] = {**board, "shots": [
            {**{k: x for k, x in shot.items() if k != "image"},
             "image_key": shot_input_key(vid, i, attempt) if f"shot-{i}" in st.files else None, "characters": []}
            for i, shot in enumerate(board["shots"])]}
    links = st.links if st.links is not None else _lineage_of(st.record)
    return Video(
        id=vid, owner_id=owner_id, kind=m.kind, model=v.model, progress=progress,
        prompt=v.prompt or "", size=v.size, seconds=v.seconds, params=params, resolved=m.resolved,
        input_key=input_key(vid, attempt) if "input" in st.files else None, assets_attempt=attempt,
        remixed_from_video_id=link(links["remixed_from_video_id"]),
        extended_from_video_id=link(links["extended_from_video_id"]),
        edited_from_video_id=link(links["edited_from_video_id"]),
        error_code=err_code, error_message=err_message,
        created_at=v.created_at, started_at=started_at, completed_at=completed_at, expires_at=v.expires_at,
    ), status


def _taken(s: Session, ids: list[str]) -> set[str]:
    """Ids this server already uses anywhere, for any account: a kept id must not inherit another
    video's usage record or cameo uses (a takedown, inherited consent) any more than its row."""
    return _found(s, Video.id, ids) | _found(s, CameoUse.video_id, ids) | _found(s, UsageRecord.video_id, ids)


def place(sessions: sessionmaker[Session], storage: Storage, owner_id: str, videos: list[Staged], source: str,
          *, known: Callable[[str], str | None] = lambda _: None, import_row: Import | None = None,
          cameos: Sequence[StagedCameo] = ()) -> dict[str, str]:
    """Put staged videos in storage and the database in one transaction; returns source id -> local id.

    Ids are kept where free on this server and replaced where taken; lineage links to videos of the
    same batch follow the new ids, links to earlier imports from the same source go through `known`,
    links to the owner's own videos stay; any other link is dropped (a migrated remix whose source the
    source service no longer has), never kept pointing at an id that may be, or become, someone else's.
    Archive imports have refused such links already (`_check_links`). The archive's `cameos` come in
    the same transaction as unverified cameos (likeness/portable.py), and the videos' links to them follow
    their new ids.
    """
    with sessions() as s:
        taken = _taken(s, [st.record.video.id for st in videos if ID_RE.match(st.record.video.id)])
        refs = {ref for st in videos for ref in (st.links or _lineage_of(st.record)).values() if ref}
        own = _found(s, Video.id, refs, Video.owner_id == owner_id)
    id_map: dict[str, str] = {}
    for st in videos:
        vid = st.record.video.id
        id_map[st.source_id or vid] = vid if ID_RE.match(vid) and vid not in taken and vid not in \
            id_map.values() else new_id("video_")

    def link(ref: str | None) -> str | None:
        if ref is None:
            return None
        return id_map.get(ref) or known(ref) or (ref if ref in own else None)

    # This import's files go under a folder of its own: two imports racing for the same free id (the same
    # archive twice, or into two accounts) never overwrite or clean up each other's files; the row that
    # commits names its folder, and the loser removes only its own.
    attempt = secrets.randbelow(2**31 - 1) + 1
    moved: list[str] = []
    try:
        for st in videos:
            vid = id_map[st.source_id or st.record.video.id]
            moved.append(vid)
            for what, path in st.files.items():
                if what.startswith("shot-"):
                    storage.put_file(shot_input_key(vid, int(what.removeprefix("shot-")), attempt), path)
                    continue
                if what != "input" and st.record.video.status != "completed":
                    continue  # a video that did not complete has no content
                storage.put_file(input_key(vid, attempt) if what == "input" else variant_key(vid, what, attempt),
                                 path)
        incoming = [_incoming(c.record) for c in cameos]
        shows = {st.source_id or st.record.video.id: list(st.record.mutoscope.cameo_ids) for st in videos}
        # Cameos are audited, and the audit chain's tail is taken by whoever commits first: an import that
        # lost it to a cameo action elsewhere tries again, as every audited change does (likeness/service.py).
        tries = 5 if incoming else 1
        for n in range(tries):
            try:
                with sessions() as s:
                    report = restore(s, owner_id, incoming)
                    for st in videos:
                        sid = st.source_id or st.record.video.id
                        transitions.insert_finished(s, *_row(st, id_map[sid], owner_id, link, attempt))
                        s.add(ImportedVideo(owner_id=owner_id, source=source, source_id=sid, video_id=id_map[sid],
                                            meta=st.meta))
                    restore_uses(s, owner_id, incoming, report, shows, id_map)
                    if source.startswith("archive:"):
                        carry_others_uses(s, owner_id, id_map)
                    if import_row is not None:
                        import_row.cameos = list(report.values())
                        import_row.id_map = dict(id_map)
                        import_row.video_count = len(videos)
                        s.add(import_row)
                    s.commit()
                break
            except IntegrityError:
                if n == tries - 1:
                    raise  # the caller tells the same archive imported meanwhile from a real collision
    except BaseException:
        for vid in moved:
            storage.delete_prefix(attempt_prefix(vid, attempt))
        raise
    return id_map


def _incoming(rec: CameoRecord) -> Incoming:
    return Incoming(archive_id=rec.id, handle=rec.handle, policy=rec.policy, preferences=rec.preferences,
                    blocked_terms=list(rec.blocked_terms), voice_consent=rec.voice_consent,
                    created_at=rec.created_at,
                    grantees=[g.user_name or g.user_id for g in rec.grants if g.revoked_at is None],
                    uses=[u.model_dump() for u in rec.uses])


def _existing(sessions: sessionmaker[Session], owner_id: str, digest: str) -> Import | None:
    with sessions() as s:
        return s.scalar(select(Import).where(Import.owner_id == owner_id, Import.sha256 == digest))


def _resubmit_all(sessions: sessionmaker[Session], storage: Storage, owner_id: str, videos: list[Staged],
                  row: Import, resubmit: Resubmit) -> None:
    """Hand each not-run record to admission; an admitted one replaces its placeholder (deleted, so the
    account shows the job once), a refused one keeps it, with the refusal appended to its message."""
    id_map = dict(row.id_map)
    for st in videos:
        if st.record.video.status not in UNFINISHED:
            continue
        v, m = st.record.video, st.record.mutoscope
        local = id_map[st.source_id]
        links = st.links or {}
        source = next((id_map.get(ref, ref) for ref in (links.get(k) for k in LINKS) if ref), None)
        data = None
        if "input" in st.files:
            with sessions() as s:
                stored = s.scalar(select(Video.input_key).where(Video.id == local, Video.owner_id == owner_id))
            with storage.open(stored) as f:
                data = f.read()
        if (st.params or {}).get("storyboard") is not None:
            with sessions() as s:
                s.execute(update(Video).where(Video.id == local, Video.owner_id == owner_id).values(
                    error_message=f"{_not_run_message(v.status)} A storyboard is not re-submitted from an "
                                  "archive: lay it out again in the storyboard editor or POST /v1/videos."))
                s.commit()
            continue
        params = {k: x for k, x in (st.params or {}).items()
                  if x is not None and k not in ("extend_seconds", "policy")}  # the plan sets the policy anew
        job = Resubmission(kind=m.kind, model=v.model, prompt=v.prompt or "", size=v.size, seconds=v.seconds,
                           extend_seconds=(st.params or {}).get("extend_seconds"), params=params,
                           source_video_id=source, input=data)
        try:
            new = resubmit(owner_id, job)
        except MutoscopeError as e:
            reason = e.message
        except Exception:
            logger.exception("re-submitting imported video %s failed", local)
            reason = "it could not be re-submitted because of an internal error."
        else:
            id_map[st.source_id] = new
            with sessions() as s:
                s.execute(update(Video).where(Video.id == local, Video.owner_id == owner_id)
                          .values(deleted_at=now(), error_message=f"Re-submitted as {new}."))
                s.execute(update(Import).where(Import.id == row.id).values(id_map=dict(id_map)))
                s.commit()
            row.id_map = dict(id_map)
            continue
        with sessions() as s:
            s.execute(update(Video).where(Video.id == local, Video.owner_id == owner_id)
                      .values(error_message=f"{_not_run_message(v.status)} Re-submitting it was refused: {reason}"))
            s.commit()


def import_archive(sessions: sessionmaker[Session], storage: Storage, owner_id: str, archive: Path,
                   limits: Limits = Limits(), *, catalog: Catalog, max_lineage_seconds: float = 120.0,
                   unfinished: Unfinished = "not_run", resubmit: Resubmit | None = None) -> tuple[Import, bool]:
    """Import an export archive into an account. Returns the import and whether it had been imported before.

    Args:
        catalog: this server's models; every record's model, size and seconds must be valid in it.
        max_lineage_seconds: the longest an extension's stitched total may be (Settings.max_lineage_seconds).
        unfinished: what becomes of records that were queued/in_progress at export: "not_run" (they
            arrive failed with `not_run_imported`) or "resubmit" (each goes through `resubmit`).
        resubmit: required with unfinished="resubmit"; see `Resubmit`.
    """
    if unfinished == "resubmit" and resubmit is None:
        raise ValueError("unfinished='resubmit' needs a resubmit callable")
    size = archive.stat().st_size
    if size > limits.max_archive_bytes:  # before hashing gigabytes we will refuse anyway
        raise PayloadTooLarge(f"The archive is {size} bytes; this server accepts archives up to "
                              f"{limits.max_archive_bytes} bytes.", param="file", code="archive_too_large")
    digest = sha256_file(archive)
    found = _existing(sessions, owner_id, digest)
    if found is not None:
        return found, True
    with ScratchArea(storage.scratch_dir(), "import-") as staging:
        with _open(archive, limits) as zf:
            manifest = _manifest(zf, limits)
            staged = _stage(zf, manifest["files"], staging.path)
        videos = _records(staged, limits)
        cameos = _cameos(staged, limits)
        for st in videos:
            _check_record(st, catalog, max_lineage_seconds)
        _check_links(sessions, owner_id, videos, cameos)
        if cameos:
            # Each waits under its handle; without a bound, imports could hold handles by the thousand.
            with sessions() as s:
                held = waiting(s, owner_id)
            if held + len(cameos) > limits.max_cameos:
                raise _bad(f"The archive brings {len(cameos)} cameos and your account already has {held} waiting "
                           f"for verification or imported in the last day; at most {limits.max_cameos} may. Verify "
                           "the waiting ones and import the rest a day later.", "too_many_cameos")
        row = Import(owner_id=owner_id, sha256=digest, format_version=int(manifest["format_version"]))
        try:
            place(sessions, storage, owner_id, videos, f"archive:{digest}", import_row=row, cameos=cameos)
        except IntegrityError:
            # The same archive, imported concurrently, won the race (or an id was taken meanwhile).
            found = _existing(sessions, owner_id, digest)
            if found is not None:
                return found, True
            raise Conflict("The import collided with other changes made at the same moment; nothing was imported. "
                           "Send it again.", code="import_conflict") from None
    if unfinished == "resubmit" and resubmit is not None:
        _resubmit_all(sessions, storage, owner_id, videos, row, resubmit)
    return row, False


def unfinished_outcome(sessions: sessionmaker[Session], row: Import) -> tuple[list[str], dict[str, str]]:
    """(ids here of videos imported without running, archive id -> id of each re-submitted job)."""
    with sessions() as s:
        placed = dict(s.execute(select(ImportedVideo.source_id, ImportedVideo.video_id).where(
            ImportedVideo.owner_id == row.owner_id, ImportedVideo.source == f"archive:{row.sha256}")).all())
        found = _found(s, Video.id, list((row.id_map or {}).values()), Video.owner_id == row.owner_id,
                       Video.error_code == NOT_RUN, Video.deleted_at.is_(None))
    not_run = [vid for vid in (row.id_map or {}).values() if vid in found]  # in archive order
    resubmitted = {k: v for k, v in (row.id_map or {}).items() if k in placed and placed[k] != v}
    return not_run, resubmitted
