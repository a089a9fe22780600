"""Videos API wire types (OpenAI spec: VideoResource, VideoListResource, Create*Body)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator

from mutoscope.errors import InvalidRequest, describe_validation
from mutoscope.protocol.base import OpenAIBaseModel

VideoStatus = Literal["queued", "in_progress", "completed", "failed"]
VideoVariant = Literal["video", "thumbnail", "spritesheet"]
# private: the owner only; unlisted: anyone signed in to this server with the link; everyone: also in the feed.
Visibility = Literal["private", "unlisted", "everyone"]

DEFAULT_MODEL = "sora-2"
DEFAULT_SECONDS = "4"
DEFAULT_SIZE = "720x1280"


_SECONDS = re.compile(r"\d{1,6}(\.\d{1,6})?")


def _seconds(value: str) -> str:
    """A duration the server can compute with ("4", "8", "2.5"); which ones a model takes is the catalog's call."""
    if not _SECONDS.fullmatch(value) or float(value) <= 0:
        raise ValueError("must be a positive number of seconds as a string, such as '4'")
    return value


# OpenAI's VideoSeconds is an enum of strings; models here offer other durations, so any positive number.
Seconds = Annotated[str, AfterValidator(_seconds)]


class ImageRef(OpenAIBaseModel):
    """ImageRefParam: exactly one of image_url (https or data URL) or file_id."""

    image_url: str | None = Field(default=None, max_length=20_971_520)
    file_id: str | None = None


class VideoRef(OpenAIBaseModel):
    id: str


class GenerationParams(OpenAIBaseModel):
    # --8<-- [start:mutoscope-extensions]
    # Mutoscope extensions (send with the SDK's `extra_body`); stored with the job
    # so any video can be reproduced.
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    negative_prompt: str | None = Field(default=None, max_length=32000)
    num_inference_steps: int | None = Field(default=None, ge=1, le=500)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=50.0)
    # A camera move (docs/models.md, "Camera moves"); which ones a model offers is the catalog's call, so an
    # unknown one is refused with the model's own list.
    camera: str | None = Field(default=None, max_length=64)
    # --8<-- [end:mutoscope-extensions]


# Mutoscope extension of an edit, and of a remix (which re-generates its source the same way): how far the
# result may depart from the source, from just above 0 (a light touch) to 1 (the source's motion and layout
# only); None: the model's own `edit_strength` (models.toml).
EditStrength = Annotated[float | None, Field(default=None, gt=0.0, le=1.0, allow_inf_nan=False)]


class CharacterRef(OpenAIBaseModel):
    id: str = Field(min_length=1, max_length=200)


Transition = Literal["cut", "continuous"]


class StoryboardShot(OpenAIBaseModel):
    """One shot of a storyboard (a Mutoscope extension of create).

    `transition` joins the shot to the one before it: `cut` starts a fresh generation (the seed lineage
    and its characters' identity kept), `continuous` continues the previous shot's last frames, as an
    extension does. The first shot has none."""

    prompt: str = Field(min_length=1, max_length=32000)
    seconds: Seconds
    # A first frame, as `input_reference` takes it; a bare string is a file id ("file-...") or an image_url.
    image: ImageRef | None = None
    characters: list[CharacterRef] | None = Field(default=None, max_length=8)
    # A camera move the model offers (docs/models.md, "Camera moves"), checked like a create's `camera`.
    camera: str | None = Field(default=None, min_length=1, max_length=64)
    transition: Transition | None = None

    @field_validator("image", mode="before")
    @classmethod
    def _image_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"file_id": value} if value.startswith("file-") else {"image_url": value}
        return value


# Parsing bound: far above any operator's Settings.max_storyboard_shots, it only caps the work of reading.
MAX_STORYBOARD_SHOTS = 100


def parse_storyboard(value: Any) -> list[StoryboardShot]:
    """The `storyboard` field (a list, or a JSON string of one as multipart carries it) as shots; a bad
    shot is a 400 whose param names it: `storyboard[2].seconds`."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise InvalidRequest("storyboard must be a JSON list of shots.", param="storyboard",
                                 code="invalid_storyboard") from None
    if not isinstance(value, list):
        raise InvalidRequest("storyboard must be a list of shots like [{\"prompt\": ..., \"seconds\": \"4\"}].",
                             param="storyboard", code="invalid_storyboard")
    if not value:
        raise InvalidRequest("storyboard must have at least one shot.", param="storyboard",
                             code="invalid_storyboard")
    if len(value) > MAX_STORYBOARD_SHOTS:
        raise InvalidRequest(f"storyboard has {len(value)} shots; at most {MAX_STORYBOARD_SHOTS} are read.",
                             param="storyboard", code="too_many_shots")
    shots = []
    for i, raw in enumerate(value):
        try:
            shots.append(StoryboardShot.model_validate(raw))
        except ValidationError as e:
            errors = [{**err, "loc": (f"storyboard[{i}]", *err.get("loc", ()))} for err in e.errors()]
            message, param, code = describe_validation(errors)
            raise InvalidRequest(message, param=param, code=code) from None
    return shots


class ShotObject(BaseModel):
    """A storyboard video's shot as it was rendered: where it sits in the video, on frame boundaries."""

    index: int
    prompt: str
    seconds: str
    start_seconds: float
    end_seconds: float
    transition: Transition | None
    camera: str | None = None


class CreateVideoRequest(GenerationParams):
    # OpenAI standard fields
    prompt: str = Field(min_length=1, max_length=32000)
    model: str = DEFAULT_MODEL
    seconds: Seconds = DEFAULT_SECONDS
    # Not sent: the model's `default_size` (models.toml), which is OpenAI's 720x1280 unless an operator sets it.
    size: str = DEFAULT_SIZE
    input_reference: ImageRef | None = None


class RemixVideoRequest(GenerationParams):
    # OpenAI standard fields
    prompt: str = Field(min_length=1, max_length=32000)
    # Mutoscope extensions, for a storyboard video: `shot` (its index) gets `prompt` (and `camera`, when
    # given: GenerationParams' camera move); that shot and the ones after it are rendered again, the earlier
    # ones reused.
    shot: int | None = Field(default=None, ge=0, le=MAX_STORYBOARD_SHOTS - 1)
    edit_strength: EditStrength = None


class ExtendVideoRequest(GenerationParams):
    # OpenAI standard fields; `video` is a reference here, an uploaded clip arrives as a multipart part
    video: VideoRef | None = None
    prompt: str = Field(min_length=1, max_length=32000)
    seconds: Seconds
    # Mutoscope extensions, for an uploaded clip only (a referenced video keeps its own): model (default
    # sora-2) and size (default: the model's size nearest the clip's shape and resolution).
    model: str | None = None
    size: str | None = None


class EditVideoRequest(GenerationParams):
    # OpenAI standard fields; `video` is a reference here, an uploaded file arrives as a multipart part
    video: VideoRef | None = None
    prompt: str = Field(min_length=1, max_length=32000)
    edit_strength: EditStrength = None
    # Mutoscope extensions, for an uploaded video only (a referenced video keeps its own):
    # model (default sora-2), size (default: the model's size of the upload's orientation),
    # seconds (default: the longest the model allows that the upload covers).
    model: str | None = None
    size: str | None = None
    seconds: Seconds | None = None


class VideoError(BaseModel):
    code: str
    message: str


class VideoCamera(BaseModel):
    """The camera move a video asked for and how the model made it (null until the job has run)."""

    move: str
    applied: Literal["adapter", "prompt"] | None = None
    # prompt moves: the prompt as the model received it, the move's phrase folded in
    prompt: str | None = None
    # adapter moves: the LoRA's hub repo (null for one the operator keeps locally) and its scale
    lora: str | None = None
    scale: float | None = None


class GeneratedBy(BaseModel):
    # Mutoscope extension: the model behind the public name in `model` that made the video.
    name: str
    weights: str | None = None  # its hub repo, local folder or builtin
    revision: str | None = None  # the checkpoint's revision (commit), where known


class ProgressDetail(BaseModel):
    """Mutoscope extension: what a running job is doing, beside OpenAI's bare `progress` percentage."""

    phase: Literal["loading model", "denoising", "decoding", "encoding", "signing", "previews", "saving"]
    step: int | None = Field(None, ge=1, le=100_000)
    steps: int | None = Field(None, ge=1, le=100_000)
    # Inside a storyboard: which shot (1-based) of how many.
    shot: int | None = Field(None, ge=1, le=1000)
    shots: int | None = Field(None, ge=1, le=1000)
    # Seconds left in this phase, from the rate measured so far (denoising only).
    eta_seconds: int | None = Field(None, ge=0, le=10**7)
    # The same in words, e.g. "shot 2 of 3 · denoising 5/8 · about 12 s left".
    text: str

    @classmethod
    def read(cls, stored: Any) -> "ProgressDetail | None":
        """The detail a job stored (jobs/progress.py), with its text; None when it does not read (a row is
        never trusted)."""
        if not isinstance(stored, dict):
            return None
        try:
            d = cls.model_validate({**stored, "text": "-"}, strict=True)
        except ValueError:
            return None
        parts = [f"shot {d.shot} of {d.shots}"] if d.shot and d.shots else []
        parts.append(f"{d.phase} {d.step}/{d.steps}" if d.step and d.steps else d.phase)
        if d.eta_seconds and d.eta_seconds > 0:
            parts.append(f"about {_duration(d.eta_seconds)} left")
        return d.model_copy(update={"text": " · ".join(parts)})


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class FaceMatch(BaseModel):
    """dlib's best face distance to the cameo over the sampled frames (below 0.6: the same person) and the
    share of sampled frames where the person was found (docs/likeness.md, "Measured likeness")."""

    distance: float | None = None
    found: float = 0.0
    frames: int = 0


class VoiceMatch(BaseModel):
    """Speaker-embedding cosine similarity between the cameo's voice and the video's speech (null: no speech)."""

    similarity: float | None = None


class VideoCameo(BaseModel):
    """A cameo a video uses: how it reached the model and, once the job has run, how much it shows."""

    id: str
    conditioned: Literal["references", "first_frame", "none"] = "none"
    voice: bool = False
    face_match: FaceMatch | None = None
    voice_match: VoiceMatch | None = None


class VideoObject(BaseModel):
    # OpenAI standard fields (VideoResource)
    id: str
    object: Literal["video"] = "video"
    model: str
    status: VideoStatus
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None
    prompt: str | None
    size: str
    seconds: str
    remixed_from_video_id: str | None
    error: VideoError | None
    # Mutoscope extensions
    # While in_progress: the phase, step and time left in words (null otherwise).
    progress_detail: ProgressDetail | None = None
    extended_from_video_id: str | None = None
    edited_from_video_id: str | None = None
    seed: int | None = None
    # The camera move asked for and how it was made (a storyboard's moves are its shots').
    camera: VideoCamera | None = None
    # Once completed: the model and checkpoint that made it (`model` stays the name it was asked by).
    generated_by: GeneratedBy | None = None
    # A storyboard's shots, in order (None for any other video); `seconds` is their total.
    shots: list[ShotObject] | None = None
    # The cameos the video uses, how each conditioned it and (once completed) its measured likeness.
    cameos: list[VideoCameo] | None = None
    # Mutoscope extensions: sharing. `share_url` (a path on this server) is shown to the owner only.
    visibility: Visibility = "private"
    share_url: str | None = None


class UpdateVideoRequest(OpenAIBaseModel):
    # Mutoscope extension (POST /v1/videos/{id}; OpenAI has no such call): who may see and remix the video.
    visibility: Visibility


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[VideoObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedVideo(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class CharacterObject(BaseModel):
    id: str | None
    name: str | None
    created_at: int


# Mutoscope extensions: OpenAI documents only create and retrieve for characters.
class CharacterList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CharacterObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedCharacter(BaseModel):
    id: str
    object: Literal["video.character.deleted"] = "video.character.deleted"
    deleted: bool = True
