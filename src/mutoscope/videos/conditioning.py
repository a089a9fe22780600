"""A create's conditioning beyond the prompt: the supplied `audio_reference` and the cameos' plan.

PUT HERE: reading `audio_reference` (an upload, a `file_id`, or an https or data URL fetched through
outbound.py) within bounds and decoding it with PyAV, refusing what no model here can use, and asking
likeness/conditioning.py for the plan of how the named cameos reach the model.
DO NOT PUT HERE: the consent rules (likeness/), what a job does with the plan (jobs/references.py).

Every refusal is a 400 (403 for consent) naming the param, raised before anything is stored or charged.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mutoscope.errors import InvalidRequest
from mutoscope.media import MediaError
from mutoscope.media.sound import SoundLimits, decode_sound, wav_bytes
from mutoscope.protocol.base import Upload

if TYPE_CHECKING:  # pragma: no cover
    from mutoscope.accounts.service import Principal
    from mutoscope.videos.commands import VideoCommands

PARAM = "audio_reference"
# The longest clip accepted: a minute covers every length a model here generates (the rest is cut off);
# an hour-long file is refused on its header, before it is decoded.
MAX_AUDIO_SECONDS = 60.0


@dataclass(frozen=True)
class AudioInput:
    audio: np.ndarray  # (channels, samples) float32
    rate: int
    wav: bytes  # what is stored for the job: the same samples, lossless


def family_of(entry: Any) -> Any | None:
    from mutoscope.engine.families import FAMILIES

    return FAMILIES.get(getattr(entry, "family", None) or "")


def takes_references(entry: Any) -> bool:
    family = family_of(entry)
    return bool(family is not None and family.supports_references)


def takes_audio_reference(entry: Any) -> bool:
    """The model makes sound and its family can generate a picture to a supplied soundtrack (torch-free: the
    family's own `audio_call`, not the base class's refusal)."""
    family = family_of(entry)
    return bool(getattr(entry, "has_audio", False) and family is not None
                and type(family).audio_call is not _base_audio_call())


def read_audio_reference(service: VideoCommands, who: Principal, fields: dict[str, Any],
                         files: dict[str, Upload], entry: Any, model: str) -> AudioInput | None:
    """The request's `audio_reference`, decoded and checked against the model; None when there is none."""
    upload = files.get(PARAM)
    value = fields.pop(PARAM, None)
    if upload is None and value in (None, ""):
        return None
    if not getattr(entry, "has_audio", False):
        raise InvalidRequest(f"The model '{model}' makes no sound, so it cannot take an audio_reference.",
                             param=PARAM, code="audio_not_supported")
    if not takes_audio_reference(entry):
        raise InvalidRequest(f"The model '{model}' cannot generate a video to a supplied soundtrack.",
                             param=PARAM, code="audio_not_supported")
    param = PARAM
    if upload is not None:
        data = upload.data
    else:
        if isinstance(value, str):
            value = {"file_id": value} if value.startswith("file-") else {"audio_url": value}
        if not isinstance(value, dict) or sum(value.get(k) not in (None, "") for k in ("file_id", "audio_url")) != 1:
            raise InvalidRequest("audio_reference must be an uploaded file, or exactly one of "
                                 "{\"file_id\": ...} or {\"audio_url\": ...}.", param=PARAM)
        data, param = _fetch(service, who, value)
    if len(data) > service.settings.max_upload_bytes:
        raise InvalidRequest(f"{param} is larger than the {service.settings.max_upload_bytes} bytes accepted.",
                             param=param, code="file_too_large")
    try:
        audio, rate = decode_sound(io.BytesIO(data), SoundLimits(max_seconds=MAX_AUDIO_SECONDS))
    except MediaError as e:
        raise InvalidRequest(f"{param} is not usable audio: {e}.", param=param, code="invalid_audio") from None
    return AudioInput(audio=audio, rate=rate, wav=wav_bytes(audio, rate))


def _base_audio_call() -> Any:
    from mutoscope.engine.families.base import Family

    return Family.audio_call


def _fetch(service: VideoCommands, who: Principal, value: dict[str, Any]) -> tuple[bytes, str]:
    file_id, url = value.get("file_id"), value.get("audio_url")
    if file_id is not None:
        param = f"{PARAM}.file_id"
        if not isinstance(file_id, str):
            raise InvalidRequest("audio_reference.file_id must be a string.", param=param)
        return service.file_bytes(who, file_id, param), param
    param = f"{PARAM}.audio_url"
    if not isinstance(url, str):
        raise InvalidRequest("audio_reference.audio_url must be a string.", param=param)
    if url.startswith("data:"):
        head, _, payload = url.partition(",")
        if ";base64" not in head:
            raise InvalidRequest("audio_reference.audio_url must be base64 when it is a data URL.", param=param,
                                 code="invalid_audio")
        try:
            return base64.b64decode(payload, validate=True), param
        except ValueError:
            raise InvalidRequest("audio_reference.audio_url is not valid base64.", param=param,
                                 code="invalid_audio") from None
    if not url.startswith("https://"):
        raise InvalidRequest("audio_reference.audio_url must be an https URL or a base64 data URL.", param=param,
                             code="invalid_url")
    return service.download(url, param), param


def needs_picture(entry: Any, model: str, audio: AudioInput | None, plan: dict[str, Any], has_image: bool) -> None:
    """A model that takes the soundtrack as an audio reference needs a picture with it (a cameo, a character
    or an input_reference): the model reads no audio reference alone."""
    if audio is None or not takes_references(entry):
        return
    if plan.get("mode") != "references" and not has_image:
        raise InvalidRequest(f"The model '{model}' takes an audio_reference only together with a picture: name a "
                             "cameo or character, or send an input_reference.", param=PARAM,
                             code="audio_needs_picture")
