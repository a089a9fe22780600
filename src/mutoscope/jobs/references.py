"""What conditions a job beyond its prompt: the cameos' reference frames and voices, a supplied soundtrack.

PUT HERE: turning a claimed job's stored conditioning plan (`params["conditioning"]`, written at create by
`likeness/conditioning.py`) into the engine's `GenerationSpec.references` and `audio`, with the prompt
rewritten to the model's reference labels; the audit row naming what was loaded.
DO NOT PUT HERE: the consent rules (likeness/consent.py; re-checked before this runs), the model's own
handling of references (engine/families/).

A job loads references only after the consent re-check at its start has passed, and reads every cameo
again here: a cameo revoked in between fails the job (refunded) before anything of it is loaded.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import select

from mutoscope.db.models import Cameo, Video
from mutoscope.engine import EngineError, GenerationSpec, ReferenceMedia
from mutoscope.jobs.context import JobContext
from mutoscope.likeness import audit, consent
from mutoscope.likeness.conditioning import (
    AUDIO_KEY_PARAM,
    reference_frame_keys,
    voice_sample_key,
)

logger = logging.getLogger(__name__)


class ConsentWithdrawn(EngineError):
    code = consent.DENIED


class AudioReferenceMissing(EngineError):
    code = "invalid_audio_reference"


def _labels_for(model_family: str, kinds: list[tuple[str, bool]]) -> list[list[str]]:
    from mutoscope.engine.families import FAMILIES

    family = FAMILIES[model_family]
    return family.reference_labels(kinds)  # type: ignore[attr-defined]


def _read_image(ctx: JobContext, key: str) -> np.ndarray | None:
    from PIL import Image

    try:
        with ctx.storage.open(key) as f:
            data = f.read()
    except (FileNotFoundError, KeyError, OSError):
        return None
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _read_wav(ctx: JobContext, key: str) -> tuple[np.ndarray, int] | None:
    from mutoscope.media import read_audio

    try:
        with ctx.storage.open(key) as f:
            data = f.read()
    except (FileNotFoundError, KeyError, OSError):
        return None
    sound = read_audio(io.BytesIO(data))
    return sound


def with_references(ctx: JobContext, video_id: str, model_family: str, spec: GenerationSpec,
                    params: dict[str, Any]) -> GenerationSpec:
    """`spec` with the job's references and soundtrack, the prompt naming them by the model's labels.

    Nothing changes for a job without a plan (made before conditioning existed) or whose plan says the
    model takes no references ("first_frame" / "none": today's behaviour)."""
    plan = params.get("conditioning") or {}
    spec = _with_audio(ctx, spec, params)
    if plan.get("mode") != "references":
        return spec
    references: list[ReferenceMedia] = []
    if spec.image is not None:
        # The first frame (an input_reference, a character's frame) is the first picture: the labels below
        # count it, so the engine gets it here rather than as a separate image.
        references.append(ReferenceMedia(kind="image", image=np.asarray(spec.image.convert("RGB")),
                                         source=params.get("first_frame_from") or "input_reference"))
    named: list[tuple[Cameo, int, int]] = []  # cameo, its first reference index, how many
    used: dict[str, list[str]] = {}
    with ctx.sessions() as s:
        owner_id = s.scalar(select(Video.owner_id).where(Video.id == video_id))
        for item in plan.get("cameos") or []:
            cameo = s.scalar(select(Cameo).where(Cameo.id == item["id"]))
            if cameo is None or not consent.may_use(s, cameo, owner_id):
                raise ConsentWithdrawn("Permission to use a cameo in this video was withdrawn before its "
                                       "references were loaded; it was not charged.")
            start = len(references)
            for key in reference_frame_keys(cameo.id):
                image = _read_image(ctx, key)
                if image is not None:
                    name = key.rsplit("/", 1)[-1]
                    references.append(ReferenceMedia(kind="image", image=image, source=f"{cameo.id}:{name}"))
            # The voice only with its own consent, re-read now: a withdrawn voice is simply left out.
            if item.get("voice") and cameo.voice_consent:
                sound = _read_wav(ctx, voice_sample_key(cameo.id))
                if sound is not None:
                    references.append(ReferenceMedia(kind="audio", audio=sound[0], sample_rate=sound[1],
                                                     source=f"{cameo.id}:voice"))
            named.append((cameo, start, len(references) - start))
            used[cameo.id] = [r.source.split(":", 1)[1] for r in references[start:]]
        for cameo, _, _ in named:
            audit.append(s, "reference", actor_id=owner_id, owner_id=cameo.owner_id, cameo_id=cameo.id,
                         subject_id=video_id, detail={"references": used[cameo.id]})
        s.commit()
    if not named:
        return spec
    labels = _labels_for(model_family, [(r.kind, r.audio is not None) for r in references])
    prompt = spec.prompt
    appended = []
    for cameo, start, count in named:
        mine = [label for group in labels[start:start + count] for label in group]
        if not mine:
            continue
        pictures = " ".join(x for x in mine if x.startswith(("<Picture", "<Video")))
        voices = " ".join(x for x in mine if x.startswith("<Audio"))
        text = pictures + (f" (voice: {voices})" if voices else "")
        pattern = re.compile(r"(?<![\w@.])@" + re.escape(cameo.handle) + r"(?![A-Za-z0-9_])", re.IGNORECASE)
        prompt, n = pattern.subn(text, prompt)
        if n == 0:  # named through `characters`: the labels follow the prompt
            appended.append(text)
    if appended:
        prompt = f"{prompt} With {', '.join(appended)}."
    return replace(spec, prompt=prompt, image=None, references=tuple(references))


def _with_audio(ctx: JobContext, spec: GenerationSpec, params: dict[str, Any]) -> GenerationSpec:
    key = params.get(AUDIO_KEY_PARAM)
    if not key:
        return spec
    sound = _read_wav(ctx, key)
    if sound is None:
        raise AudioReferenceMissing("The stored audio_reference can no longer be read; it was not charged.")
    return replace(spec, audio=sound[0], audio_sample_rate=sound[1])
