"""A cameo's portable form: what of it leaves in its owner's export, and what an archive's cameo becomes here.

Leaving: only its owner's export holds it (`owned`), with its consent settings, grant history and every use
the owner can see, its reference frames while it is verified, and its voice sample only while voice consent
is given. A video names a cameo only if the video's maker owns it (`own_cameos_of`).

Coming back: an archive is a file anyone could have assembled, so nothing in it vouches for a face or a
voice. An imported cameo is `unverified` (`IMPORTED`): `consent.may_use` and every query of usable cameos
want `active`, so nobody can name it, the guard does not match faces to it and no voice is taken from it
until its person records a live verification on this server (POST /v1/cameos with its handle; see
`service.CameoService.create`). Its reference frames and voice sample are not kept: references and the
voice sample come only from that live recording, so an archive's pictures can never become a match target
or condition a model. Handle and consent preferences are kept; grants name accounts of another server,
so they are dropped and reported; uses of videos the archive does not bring are reported, not restored.

Someone else's cameo in a video: its link cannot leave (the cameo is not the exporter's), so the takedown
power must not be lost on the way. A video taken down through another person's cameo is left out of the
export (`taken_down_by_others`: its content already answers 410 here), and an archive video brought back to
the server it came from keeps its uses of other people's cameos (`carry_others_uses`), so their owners still
see it among their uses and can take it down, and a takedown made since stays in force.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mutoscope.db.models import Cameo, CameoGrant, CameoUse, User, new_id, now
from mutoscope.likeness import audit
# Re-exported: the archive format bounds a cameo's frames by it, and exports/ may import only this module.
from mutoscope.likeness.conditioning import MAX_REFERENCE_FRAMES as MAX_REFERENCE_FRAMES
from mutoscope.likeness.conditioning import reference_frame_keys
from mutoscope.likeness.consent import HANDLE
from mutoscope.storage import Storage

IMPORTED = "unverified"
# An import's report names this many of the grantees each cameo's grants named, and counts the rest: a cameo
# may have thousands, and the report is kept with the import and returned by every read of it.
GRANTEES_NAMED = 20


@dataclass
class PortableCameo:
    """One of the owner's cameos on its way out: its record (no files), and the storage key and size of each of
    its files (read once here, so the export does not ask storage again)."""

    record: dict[str, Any]
    references: list[tuple[str, int]] = field(default_factory=list)  # reference-0, -1, … in order
    voice: tuple[str, int] | None = None


def owned(s: Session, storage: Storage, owner_id: str) -> list[PortableCameo]:
    """The owner's cameos (not deleted), oldest first."""
    out = []
    for c in s.scalars(select(Cameo).where(Cameo.owner_id == owner_id, Cameo.deleted_at.is_(None))
                       .order_by(Cameo.seq)):
        grants = s.execute(select(CameoGrant, User.name).outerjoin(User, User.id == CameoGrant.grantee_id)
                           .where(CameoGrant.cameo_id == c.id).order_by(CameoGrant.seq)).all()
        uses = s.scalars(select(CameoUse).where(CameoUse.cameo_id == c.id).order_by(CameoUse.seq)).all()
        refs = []
        if c.status == "active" and c.purged_at is None:
            for key in reference_frame_keys(c.id):
                if (size := storage.size(key)) is None:
                    break
                refs.append((key, size))
        voice = None
        if c.voice_consent and c.voice_sample_key and (size := storage.size(c.voice_sample_key)) is not None:
            voice = (c.voice_sample_key, size)
        out.append(PortableCameo(record={
            "id": c.id, "object": "cameo", "handle": c.handle, "status": c.status, "policy": c.policy,
            "preferences": c.preferences, "blocked_terms": list(c.blocked_terms or []),
            "voice_consent": bool(c.voice_consent), "created_at": c.created_at, "verified_at": c.verified_at,
            "grants": [{"user_id": g.grantee_id, "user_name": name, "created_at": g.created_at,
                        "revoked_at": g.revoked_at} for g, name in grants],
            "uses": [{"video_id": u.video_id, "user_id": u.user_id, "created_at": u.created_at,
                      "taken_down_at": u.taken_down_at, "takedown_reason": u.takedown_reason} for u in uses],
        }, references=refs, voice=voice))
    return out


def own_cameos_of(s: Session, owner_id: str, video_id: str) -> list[str]:
    """The cameos a video shows that `owner_id` owns (not deleted); another account's cameo is left out."""
    return list(s.scalars(select(CameoUse.cameo_id).join(Cameo, Cameo.id == CameoUse.cameo_id)
                          .where(CameoUse.video_id == video_id, Cameo.owner_id == owner_id,
                                 Cameo.deleted_at.is_(None)).order_by(CameoUse.seq)))


def taken_down_by_others(s: Session, owner_id: str, video_id: str) -> bool:
    """Whether a video was taken down through a cameo `owner_id` does not own: it leaves in no export."""
    return s.scalar(select(CameoUse.seq).join(Cameo, Cameo.id == CameoUse.cameo_id).where(
        CameoUse.video_id == video_id, CameoUse.taken_down_at.is_not(None), Cameo.owner_id != owner_id)
        .limit(1)) is not None


def carry_others_uses(s: Session, owner_id: str, video_ids: dict[str, str]) -> None:
    """Archive video id -> its new id here: where the archive's video is a video of this server, its uses of
    other people's cameos follow the copy, takedowns included, audited in their owners' names. An archive
    from elsewhere names no video here and carries nothing."""
    olds = [old for old, new in video_ids.items() if old != new]
    if not olds:
        return
    rows = s.execute(select(CameoUse, Cameo.owner_id).join(Cameo, Cameo.id == CameoUse.cameo_id).where(
        CameoUse.video_id.in_(olds), Cameo.owner_id != owner_id).order_by(CameoUse.seq)).all()
    for use, cameo_owner in rows:
        video_id = video_ids[use.video_id]
        s.add(CameoUse(cameo_id=use.cameo_id, video_id=video_id, user_id=owner_id, created_at=now(),
                       taken_down_at=use.taken_down_at, takedown_reason=use.takedown_reason))
        audit.append(s, "use", actor_id=owner_id, owner_id=cameo_owner, cameo_id=use.cameo_id, subject_id=video_id,
                     detail={"imported": True, "copy_of": use.video_id})


def valid_handle(handle: str) -> bool:
    return bool(HANDLE.match(handle))


@dataclass
class Incoming:
    """An archive's cameo, already checked, as the importer hands it over."""

    archive_id: str
    handle: str
    policy: str
    preferences: str | None
    blocked_terms: list[str]
    voice_consent: bool
    created_at: int
    grantees: list[str]  # who held a grant not revoked at export, by name (or id) on the other server
    uses: list[dict[str, Any]]  # the use records, each with video_id, taken_down_at, takedown_reason


def _free_handle(s: Session, handle: str, claimed: set[str]) -> str:
    """The handle itself when no cameo here has it, else `<handle>_<n>` (handles are server-wide: an imported
    cameo never takes one from, or shadows, a cameo that is already here). One query for the likely ones;
    a random suffix past them, so an archive cannot make this search long."""
    def numbered(n: int) -> str:
        return f"{handle[:30 - len(str(n)) - 1].rstrip('.')}_{n}"

    candidates = [handle, *(numbered(n) for n in range(2, 21))]
    taken = claimed | set(s.scalars(select(Cameo.handle).where(Cameo.handle.in_(candidates))))
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    while True:
        candidate = f"{handle[:21].rstrip('.')}_{secrets.token_hex(4)}"
        if candidate not in claimed and s.scalar(select(Cameo.id).where(Cameo.handle == candidate)) is None:
            return candidate


def waiting(s: Session, owner_id: str) -> int:
    """How many imported cameos count against the owner's bound: those waiting for a live verification, and
    every one imported in the last day whatever became of it. A deleted cameo keeps its handle (handles are
    never reused), so without the second term importing and deleting in a loop would hold handles without
    end."""
    return s.scalar(select(func.count()).select_from(Cameo).where(
        Cameo.owner_id == owner_id,
        ((Cameo.status == IMPORTED) & Cameo.deleted_at.is_(None)) | (Cameo.imported_at >= now() - 86400))) or 0


def restore(s: Session, owner_id: str, cameos: list[Incoming]) -> dict[str, dict[str, Any]]:
    """Insert the archive's cameos as `unverified` cameos of `owner_id`, in the caller's transaction, audited.
    Returns archive id -> {"id", "handle", …} (the import's report of each)."""
    out: dict[str, dict[str, Any]] = {}
    claimed: set[str] = set()
    for inc in cameos:
        handle = _free_handle(s, inc.handle, claimed)
        claimed.add(handle)
        c = Cameo(id=new_id("cameo_"), owner_id=owner_id, handle=handle, status=IMPORTED, policy=inc.policy,
                  preferences=inc.preferences, blocked_terms=list(inc.blocked_terms), challenge_id="",
                  voice_consent=inc.voice_consent, created_at=inc.created_at, imported_at=now())
        s.add(c)
        s.flush()
        out[inc.archive_id] = {"archive_id": inc.archive_id, "id": c.id, "handle": handle,
                               "archive_handle": inc.handle, "status": IMPORTED,
                               "grants_dropped": list(inc.grantees[:GRANTEES_NAMED]),
                               "grants_dropped_count": len(inc.grantees), "uses_dropped": 0}
        audit.append(s, "import", actor_id=owner_id, owner_id=owner_id, cameo_id=c.id,
                     detail={"grants_dropped": len(inc.grantees), "handle_changed": handle != inc.handle})
    return out


def restore_uses(s: Session, owner_id: str, cameos: list[Incoming], report: dict[str, dict[str, Any]],
                 videos: dict[str, list[str]], video_ids: dict[str, str]) -> None:
    """The uses of the imported videos (archive video id -> the archive cameo ids it names), as on the source:
    a takedown recorded there stays in force. Uses of videos the archive does not bring are counted in the
    report, never restored: their ids mean nothing here, or something else."""
    # One index of the archive's uses, read once: a scan of a cameo's uses per (video, cameo) pair would let a
    # small archive hold the import's transaction for minutes.
    was_used = {(inc.archive_id, u.get("video_id")): u for inc in cameos for u in inc.uses}
    shown: dict[str, set[str]] = {}
    for archive_video, cameo_ids in videos.items():
        for archive_cameo in cameo_ids:
            if archive_cameo not in report:
                continue  # one of the importer's own cameos here: the video does not add a use to it
            shown.setdefault(archive_cameo, set()).add(archive_video)
            was = was_used.get((archive_cameo, archive_video), {})
            cameo_id, video_id = report[archive_cameo]["id"], video_ids[archive_video]
            s.add(CameoUse(cameo_id=cameo_id, video_id=video_id, user_id=owner_id,
                           created_at=was.get("created_at") or now(), taken_down_at=was.get("taken_down_at"),
                           takedown_reason=was.get("takedown_reason")))
            audit.append(s, "use", actor_id=owner_id, owner_id=owner_id, cameo_id=cameo_id, subject_id=video_id,
                         detail={"imported": True})
    for inc in cameos:
        report[inc.archive_id]["uses_dropped"] = sum(
            1 for u in inc.uses if u.get("video_id") not in shown.get(inc.archive_id, set()))
