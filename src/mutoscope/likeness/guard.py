"""The likeness guard: a real person's face enters or leaves a video only under a cameo that allows it.

Inputs (`check_image`, `check_images`): an `input_reference` image, or a few frames of an uploaded
edit video (`sample_indices`), as the model will see them (after fitting to the video size), are
scanned for faces. Each face must match a cameo the requester may use (dlib 128-d
embedding distance below `MATCH_DISTANCE`); that cameo then joins the video's cameos, so the consent
re-checks at job start and before publishing, the owner's list of uses and takedowns all cover it.
Otherwise the request is refused with 400 `likeness_not_permitted`, naming the param:
- a face whose nearest cameo is one the requester may not use, however weakly it was detected;
- a face that matches no cameo, when the detector is confident it is a face (`MIN_SCORE`): someone
  who never enrolled has not consented either.

Outputs (`check_frames`): before a result is published a few frames are scanned; a face matching an
active cameo the requester may not use fails the job with `likeness_blocked`. Faces that match nobody
pass there: generators invent faces.

Speed: images are downscaled so the longer side is `SCAN_SIDE` and scanned with one 2x upsample
(~0.1 s on one CPU core); faces smaller than about 40 px at that scale (about a ninth of a 16:9
image's height) are not seen. Matching is a linear scan over active cameos' embeddings, fine for a
self-hosted server's few thousand cameos.

Fails closed. dlib and face-recognition-models ship with every install, but either can still be broken
(an import error, a missing model file, dlib failing at run time). Then every input that could show a
person is refused with 503 `likeness_guard_unavailable` and a publish that needs the output scan fails
the job with that code: a guard that silently passes everything is worse than no image input. Only the
operator can turn the guard off (`Settings.likeness_guard = "off"`, `configure()`); `/v1/service`
shows the state (`status()`) and the server logs it at start.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from mutoscope.db.models import Cameo
from mutoscope.errors import InvalidRequest, ServiceUnavailable
from mutoscope.likeness import audit, consent

logger = logging.getLogger(__name__)

NOT_PERMITTED = "likeness_not_permitted"
BLOCKED = "likeness_blocked"
UNAVAILABLE = "likeness_guard_unavailable"
SCAN_SIDE = 640
MATCH_DISTANCE = 0.6  # dlib's published same-person distance (likeness/face.py)
MIN_SCORE = 0.3  # HOG detector confidence above which an unmatched detection is taken for a real face
OUTPUT_SAMPLES = 4

_mode: Literal["on", "off"] = "on"  # "on" until the process's wiring says otherwise: fail closed


def configure(mode: Literal["on", "off"]) -> None:
    """Set the operator's choice for this process (wiring.py, from `Settings.likeness_guard`)."""
    global _mode
    if mode not in ("on", "off"):
        raise ValueError(f"likeness_guard must be 'on' or 'off', not {mode!r}")
    _mode = mode


def enabled() -> bool:
    """Whether inputs are guarded: scanned, or refused when they cannot be. False only when turned off."""
    return _mode != "off"


def unavailable_reason() -> str | None:
    """Why face detection cannot run here (for the operator's log), or None when it can.

    Imports dlib and finds the two model files; does not load them (that happens on first scan)."""
    from mutoscope.likeness.face import check_available

    try:
        check_available()
    except Exception as e:  # an import that fails in any way leaves the guard unable to see faces
        why = f"{type(e).__name__}: {getattr(e, 'message', None) or e}"
        cause = e.__cause__ or e.__context__  # the import's own error, which the client never sees
        return f"{why} [{type(cause).__name__}: {cause}]" if cause is not None else why
    return None


def status() -> Literal["on", "off", "unavailable"]:
    """What `/v1/service` shows: on, off (the operator's choice), or unavailable (inputs refused)."""
    if not enabled():
        return "off"
    return "on" if unavailable_reason() is None else "unavailable"


def _unavailable(param: str) -> ServiceUnavailable:
    # 503, not 400: the request is valid and a sound install would serve it; the operator has to repair
    # this one. x-should-retry stops the openai SDK from retrying what cannot succeed until then.
    return ServiceUnavailable(f"{param} cannot be checked for faces: face detection is unavailable on this "
                              "server, and it refuses images and videos that could show a person unless it can "
                              "check that the person consented. Send the request without it, or ask the "
                              "operator to repair the server (its log says why).",
                              param=param, code=UNAVAILABLE, headers={"x-should-retry": "false"})


@dataclass(frozen=True)
class Match:
    cameo_id: str | None  # the nearest active cameo within MATCH_DISTANCE, or None
    usable: bool
    score: float


def _downscale(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    if max(h, w) <= SCAN_SIDE:
        return image
    im = Image.fromarray(image)
    im.thumbnail((SCAN_SIDE, SCAN_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(im)


class _Unavailable(Exception):
    """Face detection failed; callers turn it into a 503 (inputs) or a failed job (outputs)."""


def _embeddings(image: np.ndarray) -> list[tuple[np.ndarray, float]]:
    from mutoscope.likeness.face import shared_analyzer

    try:
        faces = shared_analyzer().scan(_downscale(image), upsample=1)
    except Exception as e:  # import, model file or dlib run-time failure: never treat it as "no face"
        logger.error("likeness guard: face detection failed (%s: %s)", type(e).__name__,
                     getattr(e, "message", None) or e)
        raise _Unavailable() from e
    return [(f.embedding, f.score or 0.0) for f in faces]


def _active(s: Session) -> list[Cameo]:
    return list(s.scalars(select(Cameo).where(Cameo.status == "active", Cameo.deleted_at.is_(None),
                                              Cameo.face_embedding.is_not(None))).all())


def _match(s: Session, user_id: str, emb: np.ndarray, score: float, cameos: list[Cameo]) -> Match:
    best, best_d = None, MATCH_DISTANCE
    for c in cameos:
        d = float(np.linalg.norm(np.asarray(c.face_embedding, np.float32) - emb))
        if d < best_d:
            best, best_d = c, d
    if best is None:
        return Match(None, False, score)
    return Match(best.id, consent.may_use(s, best, user_id), score)


def matches(s: Session, user_id: str, image: np.ndarray) -> list[Match]:
    cameos = _active(s)
    return [_match(s, user_id, emb, score, cameos) for emb, score in _embeddings(image)]


def faces_in(s: Session, user_id: str, images: list[np.ndarray], param: str = "video") -> list[Match]:
    """Every face in the images with its nearest active cameo (for likeness/characters.py).

    Raises ServiceUnavailable (503 `likeness_guard_unavailable`, naming `param`) when detection fails."""
    cameos = _active(s)
    try:
        return [_match(s, user_id, emb, score, cameos) for image in images for emb, score in _embeddings(image)]
    except _Unavailable:
        raise _unavailable(param) from None


def check_image(s: Session, user_id: str, data: bytes, param: str, prompt: str | None,
                already: list[str]) -> list[str]:
    """The cameos of a video after its input image is checked: `already` plus those its faces match.

    Raises InvalidRequest (`likeness_not_permitted`, naming `param`) for a face nobody allowed, and
    ServiceUnavailable (`likeness_guard_unavailable`) when faces cannot be looked for.
    """
    if not enabled():
        return already
    from PIL import Image

    return check_images(s, user_id, [np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))], param, prompt,
                        already)


def check_images(s: Session, user_id: str, images: list[np.ndarray], param: str, prompt: str | None,
                 already: list[str]) -> list[str]:
    """`check_image` over several RGB arrays: an input image, or frames sampled from an uploaded video
    (`sample_indices`), each as the model will see it."""
    if not enabled():
        return already
    out = list(already)
    cameos = _active(s)
    for image in images:
        try:
            found = _embeddings(image)
        except _Unavailable:
            raise _unavailable(param) from None
        for emb, score in found:
            m = _match(s, user_id, emb, score, cameos)
            _admit(s, user_id, m, param, prompt, out)
    if len(out) > consent.MAX_CAMEOS_PER_VIDEO:
        raise InvalidRequest(f"A video can use at most {consent.MAX_CAMEOS_PER_VIDEO} cameos; with the faces in "
                             f"{param} this one would show {len(out)}.", param=param, code="too_many_cameos")
    return out


def sample_indices(frame_count: int, samples: int = OUTPUT_SAMPLES) -> list[int]:
    """Evenly spaced frame indices, first and last included: the frames of a video the guard scans."""
    return [int(i) for i in np.unique(np.linspace(0, max(0, frame_count - 1), samples).round().astype(int))]


def _admit(s: Session, user_id: str, m: Match, param: str, prompt: str | None, out: list[str]) -> None:
    """Add a usable matched cameo to `out`; ignore a weak unmatched detection; refuse anything else."""
    if m.cameo_id is not None and m.usable:
        c = s.scalar(select(Cameo).where(Cameo.id == m.cameo_id))
        term = consent.blocked_term(c, prompt or "")
        if term is not None:
            raise InvalidRequest(f"{param} shows @{c.handle}, whose owner does not allow '{term}' in videos "
                                 "with their cameo.", param="prompt", code="cameo_preferences_violated")
        if m.cameo_id not in out:
            out.append(m.cameo_id)
        return
    if m.cameo_id is None and m.score < MIN_SCORE:
        return  # a weak detection that looks like nobody registered: most likely not a face
    if m.cameo_id is not None:
        c = s.scalar(select(Cameo).where(Cameo.id == m.cameo_id))
        audit.append(s, "deny", actor_id=user_id, owner_id=c.owner_id, cameo_id=c.id,
                     detail={"at": "create", "reason": "input_face", "param": param})
        s.commit()
    raise InvalidRequest(f"{param} shows a person's face that is not a cameo you may use. Only faces of "
                         "verified cameos whose owners allow you (your own, or one shared with you) can "
                         "be used; use one without a recognisable face otherwise.",
                         param=param, code=NOT_PERMITTED)


def check_frames(s: Session, user_id: str, video_id: str, frames: np.ndarray,
                 samples: int = OUTPUT_SAMPLES) -> consent.Denial | None:
    """The output guard: None, or a `likeness_blocked` denial when a sampled frame shows a registered
    cameo that `user_id` may not use. `frames`: (T, H, W, 3) uint8."""
    if not enabled() or frames is None or len(frames) == 0:
        return None
    cameos = _active(s)
    if not cameos:
        return None
    for i in sample_indices(len(frames), samples):
        try:
            found = _embeddings(np.asarray(frames[i], np.uint8))
        except _Unavailable:
            return consent.Denial(UNAVAILABLE, "The result could not be checked for faces of people who have "
                                               "not consented (face detection is unavailable on this server), "
                                               "so it was not published; it was not charged.")
        for emb, score in found:
            m = _match(s, user_id, emb, score, cameos)
            if m.cameo_id is not None and not m.usable:
                c = s.scalar(select(Cameo).where(Cameo.id == m.cameo_id))
                audit.append(s, "deny", actor_id=user_id, owner_id=c.owner_id, cameo_id=c.id,
                             subject_id=video_id, detail={"at": "publish", "reason": "output_face", "frame": int(i)})
                s.commit()
                return consent.Denial(BLOCKED, "The result shows the face of a person whose cameo you may not "
                                               "use, so it was not published; it was not charged.")
    return None
