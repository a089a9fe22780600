"""Model deprecations and the service sunset."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import ModelLifecycle, ServiceSchedule, User
from mutoscope.errors import Gone, InvalidRequest, PermissionDenied

PHASES = ("active", "notice", "no_new_generations", "export_only", "deletion")
# A model name as a replacement may spell it: it becomes part of a Link header on every create with the old
# model, so nothing that could end a header line (CR, LF) or break the link's syntax (<>, ;, quotes) is taken.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+/-]{0,127}")


def http_date(ts: int) -> str:
    return formatdate(ts, usegmt=True)


def deprecate_model(session: Session, model: str, *, shutdown_at: int, deprecated_at: int | None = None,
                    replacement: str | None = None) -> ModelLifecycle:
    deprecated_at = deprecated_at if deprecated_at is not None else int(time.time())
    if replacement is not None and not MODEL_NAME.fullmatch(replacement):
        raise InvalidRequest("replacement must be a model name: letters, digits and . _ : @ + / - only, at most "
                             "128 characters.", param="replacement")
    if shutdown_at < deprecated_at:
        raise InvalidRequest("The shutdown date must not be before the deprecation date.", param="shutdown_date")
    row = session.get(ModelLifecycle, model) or ModelLifecycle(model=model)
    row.deprecated_at, row.shutdown_at, row.replacement = deprecated_at, shutdown_at, replacement
    session.add(row)
    session.commit()
    return row



def model_schedules(session: Session) -> dict[str, ModelLifecycle]:
    return {r.model: r for r in session.scalars(select(ModelLifecycle))}


def model_status(row: ModelLifecycle | None, t: int | None = None) -> str:
    t = t if t is not None else int(time.time())
    if row is None or t < row.deprecated_at:
        return "active"
    return "shutdown" if t >= row.shutdown_at else "deprecated"


def deprecation_headers(row: ModelLifecycle | None, t: int | None = None) -> dict[str, str]:
    """RFC 9745 `Deprecation: @<unix time>`, RFC 8594 `Sunset: <HTTP-date>`, and a Link to the replacement."""
    if model_status(row, t) == "active":
        return {}
    headers = {"Deprecation": f"@{row.deprecated_at}", "Sunset": http_date(row.shutdown_at)}
    if row.replacement:
        # Checked again as it is sent: a row written before the check (or by hand) still cannot break the answer.
        headers["Link"] = f'</v1/models/{quote(row.replacement, safe="._:@+-")}>; rel="successor-version"'
    return headers


def check_model_usable(session: Session, names: list[str]) -> dict[str, str]:
    """Raise 410 once any of the names (public name, its target) is shut down; else return headers.

    The message names the public name, `names[0]`, even when it is the target that was shut down: the
    target is the server's internal model and the caller never asked for it by name."""
    headers: dict[str, str] = {}
    for name in names:
        row = session.get(ModelLifecycle, name)
        status = model_status(row)
        if status == "shutdown":
            hint = f" Use '{row.replacement}' instead." if row.replacement else ""
            raise Gone(f"The model '{names[0]}' was shut down on {http_date(row.shutdown_at)}.{hint} Videos made "
                       "with it stay downloadable.", param="model", code="model_shutdown",
                       headers=deprecation_headers(row))
        headers = headers or deprecation_headers(row)
    return headers


@dataclass(frozen=True)
class ServicePhase:
    phase: str
    schedule: ServiceSchedule | None

    def as_dict(self) -> dict:
        s = self.schedule
        return {"object": "service", "phase": self.phase,
                "notice_at": s.notice_at if s else None,
                "no_new_generations_at": s.no_new_generations_at if s else None,
                "export_only_at": s.export_only_at if s else None,
                "deletion_at": s.deletion_at if s else None,
                "message": s.message if s else ""}

    def headers(self) -> dict[str, str]:
        if self.phase == "active" or self.schedule is None:
            return {}
        return {"Mutoscope-Service-Phase": self.phase, "Sunset": http_date(self.schedule.deletion_at),
                "Link": '</v1/service>; rel="sunset"'}


def schedule_sunset(session: Session, *, notice_at: int, no_new_generations_at: int, export_only_at: int,
                    deletion_at: int, message: str = "") -> ServiceSchedule:
    if not notice_at <= no_new_generations_at <= export_only_at <= deletion_at:
        raise InvalidRequest("Sunset phases must be in order: notice <= no new generations <= export only "
                             "<= deletion.", param="deletion_at")
    row = session.get(ServiceSchedule, 1) or ServiceSchedule(id=1)
    row.notice_at, row.no_new_generations_at = notice_at, no_new_generations_at
    row.export_only_at, row.deletion_at, row.message = export_only_at, deletion_at, message
    session.add(row)
    session.commit()
    return row



def current_phase(session: Session, t: int | None = None) -> ServicePhase:
    t = t if t is not None else int(time.time())
    s = session.get(ServiceSchedule, 1)
    if s is None or t < s.notice_at:
        return ServicePhase("active", s)
    if t >= s.deletion_at:
        return ServicePhase("deletion", s)
    if t >= s.export_only_at:
        return ServicePhase("export_only", s)
    if t >= s.no_new_generations_at:
        return ServicePhase("no_new_generations", s)
    return ServicePhase("notice", s)


class PhaseCache:
    """The service phase, re-read at most every two seconds (it changes on a scale of days): every
    answer's sunset headers and every caller's export offer read it."""

    def __init__(self, sessions: "sessionmaker[Session]"):
        self.sessions, self._value, self._at = sessions, None, 0.0

    def get(self) -> ServicePhase:
        if self._value is None or time.monotonic() - self._at > 2.0:
            with self.sessions() as s:
                self._value, self._at = current_phase(s), time.monotonic()
        return self._value


def record_export_offer(session: Session, user_id: str, phase: ServicePhase) -> None:
    """The first authenticated request after the notice begins tells the user and offers the export."""
    if phase.phase in ("active", "deletion"):
        return
    session.execute(update(User).where(User.id == user_id, User.export_offered_at.is_(None))
                    .values(export_offered_at=int(time.time())))
    session.commit()


def check_can_generate(phase: ServicePhase) -> None:
    if phase.phase in ("no_new_generations", "export_only", "deletion"):
        raise PermissionDenied(f"This service is closing: new generations stopped on "
                               f"{http_date(phase.schedule.no_new_generations_at)}. Your videos can still be "
                               "downloaded and exported (POST /v1/exports).", code="service_sunset")


def deletable_users(session: Session, t: int | None = None) -> list[str]:
    """Users whose data may be deleted now: deletion phase reached AND offered an export for the whole
    export window (from their offer to the deletion date at least as long as notice → deletion)."""
    t = t if t is not None else int(time.time())
    s = session.get(ServiceSchedule, 1)
    if s is None or t < s.deletion_at:
        return []
    window = s.deletion_at - s.notice_at
    return [u.id for u in session.scalars(select(User).where(User.export_offered_at.is_not(None)))
            if t - u.export_offered_at >= window]


def purge_user_data(session: Session, storage, user_id: str) -> int:
    """Delete a deletable user's videos and files (rows marked deleted, assets removed). Returns videos purged."""
    from mutoscope.db.models import File, Video
    from mutoscope.storage.keys import video_prefix

    t = int(time.time())
    videos = list(session.scalars(select(Video).where(Video.owner_id == user_id, Video.deleted_at.is_(None))))
    for v in videos:
        storage.delete_prefix(video_prefix(v.id))
        v.deleted_at = t
    for f in session.scalars(select(File).where(File.owner_id == user_id, File.deleted_at.is_(None))):
        storage.delete_prefix(f.storage_key)  # a batch's output files live under the batch's keys
        f.deleted_at = t
    session.commit()
    return len(videos)
