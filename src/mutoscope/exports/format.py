"""The archive format, version 1. `docs/exports.md` is its human description; keep the two in step.

    manifest.json      format, format_version, created_at, exporter, owner, counts, and
                       files: {path: {sha256, bytes}} for every other entry of the zip
    README.txt         what this is, for a human who opens the zip
    videos.jsonl       one VideoRecord per line
    cameos.jsonl       one CameoRecord per line: the exporter's own cameos (not deleted), with their consent
                       settings, grant history and uses; never another account's cameo
    videos/<id>/video.mp4, thumbnail.webp, spritesheet.jpg, input.png   (each only where it exists)
    videos/<id>/shot-<i>.png   a storyboard shot's first-frame image, named by its record's params
    cameos/<id>/reference-<i>.jpg   a verified cameo's reference frames (face crops, at most three)
    cameos/<id>/voice.wav      its voice sample, only while its owner's voice consent is given
    provenance/...     reserved; nothing is written there (each MP4 carries its own C2PA manifest and watermark)
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mutoscope.likeness.portable import MAX_REFERENCE_FRAMES
from mutoscope.protocol.videos import MAX_STORYBOARD_SHOTS, EditStrength, GenerationParams

FORMAT = "mutoscope-export"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)

MANIFEST, README, VIDEOS, CAMEOS = "manifest.json", "README.txt", "videos.jsonl", "cameos.jsonl"
# Archive file name of each stored variant (the same names as in storage, see storage/keys.py).
VIDEO_FILES = {"video": "video.mp4", "thumbnail": "thumbnail.webp", "spritesheet": "spritesheet.jpg",
               "input": "input.png"}
RESERVED_PREFIXES = ("provenance/",)
VOICE_FILE = "voice.wav"

ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_KNOWN = re.compile(r"^(manifest\.json|README\.txt|videos\.jsonl|cameos\.jsonl|"
                    r"videos/[A-Za-z0-9_\-]{1,64}/(video\.mp4|thumbnail\.webp|spritesheet\.jpg|input\.png|"
                    r"shot-[0-9]{1,3}\.png)|"
                    r"cameos/[A-Za-z0-9_\-]{1,64}/(reference-[0-9]\.jpg|voice\.wav))$")


def video_path(video_id: str, what: str) -> str:
    return f"videos/{video_id}/{VIDEO_FILES[what]}"


def shot_image_path(video_id: str, index: int) -> str:
    return f"videos/{video_id}/shot-{int(index)}.png"


def cameo_reference_path(cameo_id: str, index: int) -> str:
    return f"cameos/{cameo_id}/reference-{int(index)}.jpg"


def cameo_voice_path(cameo_id: str) -> str:
    return f"cameos/{cameo_id}/{VOICE_FILE}"


def is_unsafe(name: str) -> bool:
    """A name that could write outside the folder it is extracted to (zip-slip), on any OS."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\0" in name:
        return True
    if re.match(r"^[A-Za-z]:", name):
        return True
    return any(part in ("..", "") for part in name.rstrip("/").split("/"))


def is_known(name: str) -> bool:
    return bool(_KNOWN.match(name)) or name.startswith(RESERVED_PREFIXES)


# Unix seconds; the bound keeps a hostile value inside a 64-bit column and a JSON number.
Timestamp = Annotated[int, Field(ge=0, le=2**53)]
Ref = Annotated[str, Field(min_length=1, max_length=200)]
Kind = Literal["generate", "remix", "extend", "edit"]


class Lineage(BaseModel):
    remixed_from_video_id: Ref | None = None
    extended_from_video_id: Ref | None = None
    edited_from_video_id: Ref | None = None


class RecordError(BaseModel):
    code: str = Field(max_length=64)
    message: str | None = Field(None, max_length=4000)


class RecordPolicy(BaseModel):
    """The output policy a plan fixed when the job was admitted (see VideoCommands._enqueue)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    visible_watermark: bool = False
    retention_days: float | None = Field(None, ge=0, le=36500, allow_inf_nan=False)


class RecordShot(BaseModel):
    """One shot of a storyboard video as the server rendered it (videos/storyboard.py's stored form), with
    its first-frame image as an archive path instead of a storage key. Characters do not travel, as cameos
    do not."""

    model_config = ConfigDict(extra="ignore", strict=True)

    prompt: str = Field(min_length=1, max_length=32000)
    seconds: str = Field(min_length=1, max_length=10)
    frames: int = Field(ge=1, le=100_000)
    seed: int = Field(ge=0, le=2**63 - 1)
    transition: Literal["cut", "continuous"] | None = None
    camera: str | None = Field(None, max_length=64)
    image: str | None = Field(None, max_length=300)


class RecordStoryboard(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    fps: float = Field(gt=0, le=240, allow_inf_nan=False, strict=False)  # JSON may spell 24.0 as 24
    from_shot: int = Field(0, ge=0, le=MAX_STORYBOARD_SHOTS)
    shots: list[RecordShot] = Field(min_length=1, max_length=MAX_STORYBOARD_SHOTS)


class RecordParams(GenerationParams):
    """A record's `params`: the API's own generation parameters under the API's own rules (strict: an
    archive is data we wrote, so "7" for a seed is damage, not a client's loose typing), plus the two
    keys the server adds itself. Unknown keys are dropped rather than stored, so nothing the worker
    might read one day can ride in on an archive."""

    model_config = ConfigDict(extra="ignore", strict=True)

    extend_seconds: str | None = Field(None, max_length=10)
    edit_strength: EditStrength = None  # an edit's or remix's, so a retry after import edits alike
    policy: RecordPolicy | None = None
    storyboard: RecordStoryboard | None = None


class Reproduce(BaseModel):
    """Mutoscope's part of a record: everything needed to reproduce the video, beyond OpenAI's fields."""

    kind: Kind = "generate"
    params: dict[str, Any] = Field(default_factory=dict)  # seed, steps, guidance, negative prompt as asked
    resolved: dict[str, Any] | None = None  # what the engine used: model, weights revision, steps, …
    lineage: Lineage = Field(default_factory=Lineage)
    # The exporter's own cameos this video shows (each a line of cameos.jsonl); another account's never.
    cameo_ids: list[Ref] = Field(default_factory=list, max_length=16)
    input_reference: str | None = Field(None, max_length=300)  # archive path of the first-frame image, if any
    files: dict[str, str] = Field(default_factory=dict, max_length=8)  # variant -> archive path
    started_at: float | None = Field(None, ge=0, allow_inf_nan=False)
    error: RecordError | None = None


class VideoFields(BaseModel):
    """The video object as GET /v1/videos/{id} returns it (extra fields are kept, not required)."""

    model_config = {"extra": "allow"}

    # Any id the source used; one that is not a safe storage name is replaced on import.
    id: str = Field(min_length=1, max_length=200)
    object: Literal["video"] = "video"
    model: str = Field(max_length=200)
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int = Field(0, ge=0, le=100)
    created_at: Timestamp
    completed_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    prompt: str | None = Field(None, max_length=32000)
    size: str = Field(max_length=20)
    seconds: str = Field(max_length=10)
    remixed_from_video_id: Ref | None = None
    error: RecordError | None = None


class VideoRecord(BaseModel):
    """One line of videos.jsonl."""

    video: VideoFields
    mutoscope: Reproduce = Field(default_factory=Reproduce)


Handle = Annotated[str, Field(min_length=1, max_length=40)]


class CameoGrantRecord(BaseModel):
    """Someone the owner let use the cameo on the server that exported it (an account of that server)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: Ref
    user_name: str | None = Field(None, max_length=200)
    created_at: Timestamp
    revoked_at: Timestamp | None = None


class CameoUseRecord(BaseModel):
    """A video that used the cameo, whoever made it, as its owner sees it in GET /v1/cameos/{id}/videos."""

    model_config = ConfigDict(extra="forbid", strict=True)

    video_id: Ref
    user_id: Ref
    created_at: Timestamp
    taken_down_at: Timestamp | None = None
    takedown_reason: str | None = Field(None, max_length=500)


class CameoFiles(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    references: list[str] = Field(default_factory=list, max_length=MAX_REFERENCE_FRAMES)
    voice: str | None = Field(None, max_length=300)


class CameoRecord(BaseModel):
    """One line of cameos.jsonl: a cameo as its owner knows it, never as proof of anything.

    `status` and `verified_at` say what the exporting server had found; no field can say that a face or
    voice is verified anywhere else, and a line with any other field (a verification report, embeddings)
    is refused rather than ignored: an archive that tries to vouch for a face is not an honest export.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    id: Annotated[str, Field(pattern=ID_RE.pattern)]
    object: Literal["cameo"] = "cameo"
    handle: Handle
    status: Literal["verifying", "active", "failed", "unverified"]
    policy: Literal["only_me", "approved", "everyone"] = "only_me"
    preferences: str | None = Field(None, max_length=2000)
    blocked_terms: list[Annotated[str, Field(max_length=2000)]] = Field(default_factory=list, max_length=50)
    voice_consent: bool = False
    created_at: Timestamp
    verified_at: Timestamp | None = None
    files: CameoFiles = Field(default_factory=CameoFiles)
    grants: list[CameoGrantRecord] = Field(default_factory=list, max_length=10_000)
    uses: list[CameoUseRecord] = Field(default_factory=list, max_length=100_000)


README_TEXT = """\
Mutoscope export
================

This zip holds everything account "{owner}" made on a Mutoscope server, exported {when} UTC.

  videos/<id>/video.mp4         the video (H.264 + AAC)
  videos/<id>/thumbnail.webp    its thumbnail
  videos/<id>/spritesheet.jpg   its preview spritesheet
  videos/<id>/input.png         the first-frame image it was made from, if any
  videos/<id>/shot-<i>.png      a storyboard shot's first-frame image, if it had one
  videos.jsonl                  one line per video: the video object exactly as the API returned
                                it ("video") and everything needed to reproduce it ("mutoscope":
                                kind, requested params, resolved model/weights/seed/steps,
                                remix/extension lineage, cameo ids)
  cameos/<id>/reference-<i>.jpg your cameo's verified reference frames
  cameos/<id>/voice.wav         its voice sample (only while you consent to the use of your voice)
  cameos.jsonl                  your cameos: consent settings, grant history and uses. Imported
                                elsewhere, a cameo waits until you verify yourself live there again.
  manifest.json                 format version, counts and a SHA-256 for every file

Videos: {videos}. Cameos: {cameos}. Files: {files}. Format: {format} version {version}.

To bring this into another Mutoscope server:  mutoscope import THIS.zip --user NAME
(or POST it to /v1/imports). Importing the same archive twice changes nothing.
Check a file by hand:  sha256sum videos/<id>/video.mp4  and compare with manifest.json.
"""
