"""How much a finished video looks and sounds like its cameos: measurements, never gates.

- **Face match**: on up to `FACE_SAMPLES` evenly spaced frames, every face dlib finds is embedded (the same
  128-d embeddings as verification) and compared with the cameo's mean embedding. `distance` is the best
  (smallest) distance seen, `found` the share of sampled frames with a face within dlib's same-person
  distance (0.6). A distance below 0.6 means "dlib would call it the same person"; 0.6 and above, not.
- **Voice match** (only when the likeness extra's speaker embeddings are installed): the speech of the
  video's soundtrack (silero-vad) is embedded with resemblyzer and compared with the cameo's voice
  embedding: `similarity` is their cosine similarity (the same person usually scores 0.75 and more), or
  null when the soundtrack has under half a second of speech.

Where they fail: faces smaller than about 40 px at 640 px, profiles and heavy stylisation are not found
(`found` falls, the person may still be there); dlib is less accurate for some demographic groups; a voice
under music or effects scores low; a sound-alike scores high. Read them as evidence, not proof.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from mutoscope.db.models import Cameo
from mutoscope.likeness.face import SAME_PERSON_DISTANCE

logger = logging.getLogger(__name__)

FACE_SAMPLES = 8


def face_match(frames: np.ndarray, embedding: np.ndarray, samples: int = FACE_SAMPLES) -> dict[str, Any] | None:
    """{"distance", "found", "frames"} for one cameo, or None when face detection cannot run."""
    from mutoscope.likeness.face import distance, shared_analyzer
    from mutoscope.likeness.guard import _downscale, sample_indices

    try:
        analyzer = shared_analyzer()
    except Exception as exc:  # a measurement: unavailable is reported as absent, the video is unaffected
        logger.warning("face match not measured: %s", exc)
        return None
    indices = sample_indices(len(frames), samples)
    best, hits = None, 0
    for i in indices:
        faces = analyzer.scan(_downscale(np.asarray(frames[i], np.uint8)), upsample=1)
        dists = [distance(f.embedding, embedding) for f in faces if f.embedding is not None]
        if dists:
            d = min(dists)
            best = d if best is None else min(best, d)
            hits += d < SAME_PERSON_DISTANCE
    return {"distance": None if best is None else round(float(best), 4),
            "found": round(hits / len(indices), 4) if indices else 0.0, "frames": len(indices)}


def voice_match(audio: np.ndarray | None, rate: int | None, embedding: np.ndarray) -> dict[str, Any] | None:
    """{"similarity"} for one cameo's voice, or None when the speech analyzers are not installed."""
    from mutoscope.likeness.conditioning import speaker_of, speech_analyzer
    from mutoscope.likeness.voice import cosine

    analyzer = speech_analyzer()
    if analyzer is None:
        return None
    if audio is None or not rate:
        return {"similarity": None}
    theirs = speaker_of(audio, rate, analyzer)
    return {"similarity": None if theirs is None else round(cosine(theirs, embedding), 4)}


def measure(s: Session, plan: dict[str, Any], frames: np.ndarray, audio: np.ndarray | None,
            rate: int | None) -> list[dict[str, Any]]:
    """`cameos` of a finished video: each cameo of the plan with how it conditioned the video and its
    measured face and voice match."""
    out = []
    for item in plan.get("cameos") or []:
        c = s.scalar(select(Cameo).where(Cameo.id == item["id"]))
        face = voice = None
        try:
            if c is not None and c.face_embedding is not None:
                face = face_match(frames, np.asarray(c.face_embedding, np.float32))
            if c is not None and c.voice_embedding is not None:
                voice = voice_match(audio, rate, np.asarray(c.voice_embedding, np.float32))
        except Exception:  # a measurement that fails leaves the video as it is
            logger.exception("likeness of cameo %s not measured", item["id"])
        out.append({"id": item["id"], "conditioned": plan.get("mode", "none"), "voice": bool(item.get("voice")),
                    "face_match": face, "voice_match": voice})
    return out
