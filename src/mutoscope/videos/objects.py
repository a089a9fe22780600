"""A stored video as the API shows it: `to_video_object`, the one conversion every front end and export uses.

PUT HERE: reading a `Video` row into the wire `VideoObject` (a row is never trusted: what does not validate
is left out), and what a failed job's message may show its caller.
DO NOT PUT HERE: who may see a video (`queries.py`), anything that writes.
"""

from __future__ import annotations

import re

from mutoscope.db.models import Video
from mutoscope.protocol.videos import GeneratedBy, ProgressDetail, VideoCamera, VideoCameo, VideoError, VideoObject
from mutoscope.videos import storyboard as sb


def _generated_by(v: Video) -> GeneratedBy | None:
    """The model and checkpoint that made a completed video (its `resolved`; a row is never trusted)."""
    resolved = v.resolved if v.status == "completed" and isinstance(v.resolved, dict) else {}
    if not isinstance(resolved.get("model"), str):
        return None
    try:
        return GeneratedBy(name=resolved["model"], weights=resolved.get("weights"), revision=resolved.get("revision"))
    except ValueError:
        return None


def _camera_of(v: Video) -> VideoCamera | None:
    """The move asked for and, once the job has run, how the engine made it (`resolved["camera"]`)."""
    move = (v.params or {}).get("camera")
    if not isinstance(move, str):
        return None
    done = (v.resolved or {}).get("camera") if v.status == "completed" else None
    if isinstance(done, dict) and done.get("move") == move:
        try:
            return VideoCamera.model_validate({k: done.get(k) for k in VideoCamera.model_fields})
        except ValueError:  # a row is never trusted
            pass
    return VideoCamera(move=move)


# An absolute file path in a message (/srv/…/x, C:\…): what a job's error may never show its caller. API paths
# (/v1/…) and URLs (https://host/…) are not file paths.
_FILE_PATH = re.compile(r"(?<![\w.:/])/(?!v1/)(?:[\w.+~-]+/)+[\w.+~-]*|\b[A-Za-z]:\\[^\s'\"]+")
PLAIN_ERRORS = {
    "model_not_available": "The model is not installed on this server; ask the operator. It was not charged.",
    "storage_unavailable": "The asset storage was unavailable; the job was not charged. Try again.",
    "worker_lost": "The worker running this video stopped; it was not charged. Try again.",
}


def public_error_message(code: str | None, message: str | None) -> str:
    """A failed job's message as its caller may see it: the engine's own text unless it names a file on the
    server (a path says where the operator keeps things, and nothing the caller can act on)."""
    text = message or code or "failed"
    if _FILE_PATH.search(text):
        return PLAIN_ERRORS.get(code or "", "The video could not be generated; it was not charged. Try again.")
    return text


def to_video_object(v: Video, owner_view: bool = False) -> VideoObject:
    """`owner_view`: the caller owns the video, so its share link may be shown."""
    error = VideoError(code=v.error_code, message=public_error_message(v.error_code, v.error_message)) \
        if v.status == "failed" else None
    board = (v.params or {}).get("storyboard")
    return VideoObject(
        id=v.id, model=v.model, status=v.status, progress=v.progress, progress_detail=_progress_detail(v),
        created_at=v.created_at,
        completed_at=v.completed_at, expires_at=v.expires_at, prompt=v.prompt, size=v.size, seconds=v.seconds,
        remixed_from_video_id=v.remixed_from_video_id, error=error,
        extended_from_video_id=v.extended_from_video_id, edited_from_video_id=v.edited_from_video_id,
        seed=seed if isinstance(seed := (v.params or {}).get("seed"), int) else None,  # a row is never trusted
        shots=sb.timeline(board) if board is not None else None,
        visibility=v.visibility or "private",
        share_url=f"/s/{v.share_token}" if owner_view and v.share_token else None,
        camera=_camera_of(v),
        generated_by=_generated_by(v),
        cameos=_cameos_of(v),
    )


def _progress_detail(v: Video) -> ProgressDetail | None:
    return ProgressDetail.read(v.progress_detail) if v.status == "in_progress" else None


def _cameos_of(v: Video) -> list[VideoCameo] | None:
    """The plan's cameos; once completed, what the job measured (a stored value is never trusted)."""
    plan = (v.params or {}).get("conditioning")
    if not isinstance(plan, dict) or not plan.get("cameos"):
        return None
    done = (v.resolved or {}).get("cameos") if v.status == "completed" else None
    try:
        if isinstance(done, list):
            return [VideoCameo.model_validate(c) for c in done]
        return [VideoCameo(id=c["id"], conditioned=plan.get("mode", "none"), voice=bool(c.get("voice")))
                for c in plan["cameos"]]
    except (KeyError, TypeError, ValueError):
        return None
