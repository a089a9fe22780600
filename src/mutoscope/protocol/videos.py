"""Videos API wire types (OpenAI spec: VideoResource, VideoListResource, Create*Body)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from mutoscope.protocol.base import OpenAIBaseModel

VideoStatus = Literal["queued", "in_progress", "completed", "failed"]
VideoVariant = Literal["video", "thumbnail", "spritesheet"]

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


class CreateVideoRequest(GenerationParams):
    # OpenAI standard fields
    prompt: str = Field(min_length=1, max_length=32000)
    model: str = DEFAULT_MODEL
    seconds: Seconds = DEFAULT_SECONDS
    size: str = DEFAULT_SIZE
    input_reference: ImageRef | None = None


class RemixVideoRequest(GenerationParams):
    # OpenAI standard fields
    prompt: str = Field(min_length=1, max_length=32000)


class ExtendVideoRequest(GenerationParams):
    # OpenAI standard fields
    video: VideoRef
    prompt: str = Field(min_length=1, max_length=32000)
    seconds: Seconds


class EditVideoRequest(GenerationParams):
    # OpenAI standard fields; `video` is a reference here, an uploaded file arrives as a multipart part
    video: VideoRef | None = None
    prompt: str = Field(min_length=1, max_length=32000)
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
    extended_from_video_id: str | None = None
    edited_from_video_id: str | None = None
    seed: int | None = None
    camera: VideoCamera | None = None


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
