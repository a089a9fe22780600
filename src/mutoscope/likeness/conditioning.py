"""How a cameo reaches the picture: the conditioning plan decided at create, the voice sample, the voice guard.

A video that names cameos (`@handle`, `characters`) gets a plan, stored with the job
(`params["conditioning"]`), that says how each cameo conditions it:

- `references`: the model takes references (its family's `supports_references`, MiniMax-H3): the cameo's
  verified reference frames (and, with the owner's voice consent, their voice sample) are passed to it in
  the order the prompt names them, the prompt naming them by the model's labels (jobs/references.py);
- `first_frame`: a model without references whose first frame shows the person (a character's frame, or an
  `input_reference` whose face matched the cameo);
- `none`: the model sees only the prompt's text.

Voices have their own consent (`Cameo.voice_consent`, off by default). `cameo_voices` (a Mutoscope
extension of create: handles or ids) asks for named cameos' voices; naming one without voice consent is
`403 cameo_voice_not_permitted`. Left out, every named cameo whose owner consented speaks in their voice on
a model with sound and references.

A supplied `audio_reference` is a likeness too: when the speech analyzers are installed, its speech is
compared with every active cameo's voice embedding (resemblyzer, cosine similarity at least
`VOICE_MATCH`); a match the caller may not use, or whose owner has not consented to their voice, is
refused like a face (`400 likeness_not_permitted`, param `audio_reference`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from mutoscope.db.models import Cameo
from mutoscope.errors import InvalidRequest, PermissionDenied
from mutoscope.likeness import consent
from mutoscope.storage.keys import cameo_frame_key, voice_sample_key

logger = logging.getLogger(__name__)

# Where a create's stored `audio_reference` is named in the job's params.
AUDIO_KEY_PARAM = "audio_reference_key"
# Reference frames verification keeps (likeness/service.py).
MAX_REFERENCE_FRAMES = 3
# resemblyzer: the same speaker's utterances score about 0.75-0.9, different speakers mostly below 0.7.
VOICE_MATCH = 0.75
# The voice sample kept from the verification recording: its speech, joined, at most this long.
VOICE_SAMPLE_SECONDS = 8.0
MODES = ("references", "first_frame", "none")

__all__ = [
    "AUDIO_KEY_PARAM",
    "check_audio_voice",
    "plan",
    "reference_frame_keys",
    "voice_sample",
    "voice_sample_key",
    "voices_field",
]


def reference_frame_keys(cameo_id: str) -> list[str]:
    return [cameo_frame_key(cameo_id, i) for i in range(MAX_REFERENCE_FRAMES)]


def voices_field(value: Any) -> list[str] | None:
    """`cameo_voices`: a list of handles or ids (multipart: a JSON string or one name); None when left out."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        import json

        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            parsed = [value]
        value = parsed if isinstance(parsed, list) else [value]
    if isinstance(value, dict):  # multipart lists arrive as {"0": ..., "1": ...}
        value = [value[k] for k in sorted(value, key=lambda k: (len(k), k))]
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value) \
            or len(value) > consent.MAX_CAMEOS_PER_VIDEO:
        raise InvalidRequest("cameo_voices must be a list of at most "
                             f"{consent.MAX_CAMEOS_PER_VIDEO} cameo handles or ids.", param="cameo_voices")
    return [v.lower().lstrip("@") for v in value]


def plan(s: Session, user_id: str, cameo_ids: list[str], *, takes_references: bool, has_audio: bool,
         first_frame: bool, voices: list[str] | None,
         references_problem: Callable[[list[tuple[str, bool]]], str | None] | None = None,
         audio_reference: bool = False) -> dict[str, Any]:
    """The conditioning plan of a create (see the module docstring); raises the 400/403 of a bad request
    before anything is stored or charged."""
    cameos = [s.scalar(select(Cameo).where(Cameo.id == cid)) for cid in cameo_ids]
    cameos = [c for c in cameos if c is not None]
    by_name = {**{c.id: c for c in cameos}, **{c.handle: c for c in cameos}}
    for name in voices or []:
        c = by_name.get(name)
        if c is None:
            raise InvalidRequest(f"cameo_voices names '{name}', which is not a cameo this video names.",
                                 param="cameo_voices", code="invalid_cameo_voice")
        if not c.voice_consent:
            raise PermissionDenied(f"The owner of @{c.handle} has not allowed their voice to be used.",
                                   param="cameo_voices", code="cameo_voice_not_permitted")
    if voices and not (takes_references and has_audio):
        raise InvalidRequest("This model cannot speak in a cameo's voice (it takes no audio references); "
                             "leave cameo_voices out or choose a model that does.", param="cameo_voices",
                             code="invalid_cameo_voice")
    if not cameos:
        return {"mode": "none", "cameos": []}
    if not takes_references:
        mode = "first_frame" if first_frame else "none"
        return {"mode": mode, "cameos": [{"id": c.id, "voice": False} for c in cameos]}
    wanted = set(voices) if voices is not None else None
    items = []
    for c in cameos:
        speak = (c.handle in wanted or c.id in wanted) if wanted is not None else bool(c.voice_consent)
        items.append({"id": c.id, "voice": bool(speak and has_audio and c.voice_consent
                                                and c.voice_sample_key is not None)})
    if references_problem is not None:
        kinds = [("image", False)] * (MAX_REFERENCE_FRAMES * len(items) + (1 if first_frame else 0))
        kinds += [("audio", True)] * (sum(i["voice"] for i in items) + (1 if audio_reference else 0))
        problem = references_problem(kinds)
        if problem is not None:
            raise InvalidRequest(f"Too many references for this model: {problem}.", param="characters",
                                 code="too_many_references")
    return {"mode": "references", "cameos": items}


def voice_sample(wav16k: np.ndarray, segments: list[tuple[int, int]],
                 seconds: float = VOICE_SAMPLE_SECONDS) -> np.ndarray | None:
    """The speech of a 16 kHz mono recording, its segments joined in order, at most `seconds` long; None
    when there is less than half a second of it."""
    parts, total, cap = [], 0, int(seconds * 16000)
    for start, end in segments:
        take = wav16k[start:end][: cap - total]
        parts.append(take)
        total += len(take)
        if total >= cap:
            break
    if total < 8000:
        return None
    return np.concatenate(parts).astype(np.float32)


def speech_analyzer() -> Any | None:
    """The speech analyzers when the likeness extra is installed (voice activity, speaker embeddings), else None."""
    try:
        from mutoscope.likeness.voice import shared_analyzer

        analyzer = shared_analyzer("")
        analyzer._speaker_model()
        analyzer._vad_model()
        return analyzer
    except Exception as exc:  # the extra is optional: without it a supplied voice is not compared
        logger.debug("speech analyzers unavailable: %s", exc)
        return None


def speaker_of(audio: np.ndarray, rate: int, analyzer: Any) -> np.ndarray | None:
    """The speaker embedding of a clip's speech, or None when it holds less than half a second of speech."""
    from mutoscope.likeness.voice import to_mono_16k

    wav = to_mono_16k(audio, rate)
    speech = voice_sample(wav, analyzer.speech_segments(wav), seconds=30.0)
    return None if speech is None else analyzer.speaker_embedding(speech)


def check_audio_voice(s: Session, user_id: str, audio: np.ndarray, rate: int, cameo_ids: list[str],
                      param: str = "audio_reference") -> list[str]:
    """The voice guard on a supplied clip: the cameo ids the video uses, with any whose voice it carries.

    Raises `400 likeness_not_permitted` for a voice matching an active cameo the caller may not use or whose
    owner has not consented to their voice. Without the speech analyzers nothing is compared."""
    from mutoscope.likeness.voice import cosine

    analyzer = speech_analyzer()
    if analyzer is None:
        return cameo_ids
    voices = s.scalars(select(Cameo).where(Cameo.status == "active", Cameo.deleted_at.is_(None),
                                           Cameo.voice_embedding.is_not(None))).all()
    if not voices:
        return cameo_ids
    embedding = speaker_of(audio, rate, analyzer)
    if embedding is None:
        return cameo_ids
    out = list(cameo_ids)
    for c in voices:
        if cosine(embedding, np.asarray(c.voice_embedding, np.float32)) < VOICE_MATCH:
            continue
        if not consent.may_use(s, c, user_id) or not c.voice_consent:
            raise InvalidRequest(f"The voice in {param} belongs to someone who has not allowed you to use it.",
                                 param=param, code="likeness_not_permitted")
        if c.id not in out:
            out.append(c.id)
    return out
