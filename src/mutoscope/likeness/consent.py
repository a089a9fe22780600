"""Consent rules: who may put a cameo in a video, checked at create, at job start and before publish.

A generation names cameos with `@handle` in its prompt or `characters: [{"id": ...}]` in its
body (OpenAI's shape; an id is a cameo id, a handle, or one of the caller's `char_` characters:
likeness/characters.py). At most two cameos and characters together per video.

Policies: `only_me` (the owner), `approved` (the owner and people they approve), `everyone`.
A cameo that is not `active` (still verifying, failed, deleted) may be used by nobody.

Wiring for jobs/ (one call at job start, one before publishing):

    from mutoscope.likeness.consent import recheck_video
    denial = recheck_video(session, video_id)
    if denial: fail the job with denial.code ("cameo_permission_denied") and denial.message, refund it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutoscope.db.models import Cameo, CameoGrant, CameoUse, Character, Video
from mutoscope.errors import InvalidRequest, PermissionDenied
from mutoscope.likeness import audit

MAX_CAMEOS_PER_VIDEO = 2
POLICIES = ("only_me", "approved", "everyone")
HANDLE = re.compile(r"^[a-z0-9_](?:[a-z0-9_.]{1,28}[a-z0-9_])$")
# "@handle" at a word start: not an e-mail address ("me@example.com") and not "@@".
MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_](?:[A-Za-z0-9_.]{1,28}[A-Za-z0-9_]))")
DENIED = "cameo_permission_denied"


def mentions(prompt: str | None) -> list[str]:
    seen: list[str] = []
    for m in MENTION.finditer(prompt or ""):
        h = m.group(1).lower()
        if h not in seen:
            seen.append(h)
    return seen


def character_refs(characters: Any) -> list[str]:
    """`characters: [{"id": ...}]` -> ids; a malformed value is a 400 naming the param."""
    if characters in (None, "", []):
        return []
    if isinstance(characters, dict):
        # Multipart can't nest: the SDK sends characters[0][id]=..., which http/body.py reads as
        # {"0][id": ...}; a JSON string or {"0": {"id": ...}} also occurs.
        items = []
        for k in sorted(characters, key=lambda k: (len(k), k)):
            v = characters[k]
            if isinstance(v, dict):
                items.append(v)
            elif re.fullmatch(r"\d+\]\[id", k):
                items.append({"id": v})
            else:
                items.append(None)
        characters = items
    if isinstance(characters, str):
        import json

        try:
            characters = json.loads(characters)
        except (ValueError, RecursionError):  # a field of "[[[[…" is a bad value, not a crash
            characters = None
    if not isinstance(characters, list) or not all(isinstance(c, dict) and isinstance(c.get("id"), str)
                                                     for c in characters):
        raise InvalidRequest('characters must be a list of objects like {"id": "cameo_..."}.', param="characters")
    return [c["id"] for c in characters]


def may_use(s: Session, cameo: Cameo, user_id: str) -> bool:
    if cameo.status != "active" or cameo.deleted_at is not None:
        return False
    if cameo.owner_id == user_id or cameo.policy == "everyone":
        return True
    if cameo.policy == "approved":
        grant = s.scalar(select(CameoGrant).where(CameoGrant.cameo_id == cameo.id,
                                                  CameoGrant.grantee_id == user_id,
                                                  CameoGrant.revoked_at.is_(None)))
        return grant is not None
    return False


def _blocked(cameo: Cameo, prompt: str) -> str | None:
    text = prompt.lower()
    for term in cameo.blocked_terms or []:
        if term and re.search(r"(?<!\w)" + re.escape(term.lower()) + r"(?!\w)", text):
            return term
    return None


blocked_term = _blocked  # for likeness/guard.py: a face-matched cameo's preferences bind like a named one's


def resolve(s: Session, refs: Iterable[str]) -> list[tuple[str, Cameo | None]]:
    out = []
    for ref in refs:
        # An id first: a handle may be spelt like another cameo's id, and which row of an OR comes first is the
        # database's choice.
        cameo = s.scalar(select(Cameo).where(Cameo.id == ref)) or \
            s.scalar(select(Cameo).where(Cameo.handle == ref.lower().lstrip("@")))
        out.append((ref, cameo))
    return out


def check_create(s: Session, user_id: str, prompt: str | None, characters: Any) -> list[str]:
    """The consent gate at create: returns the ids of the cameos the video will use.

    Raises PermissionDenied (`cameo_permission_denied`) when any named cameo may not be used by
    this caller, InvalidRequest for too many cameos or a prompt the owner's preferences forbid.
    Unknown `@words` are ordinary text; an unknown `characters` id is an error. Denials are audited.
    """
    handles, ids = mentions(prompt), character_refs(characters)
    if not handles and not ids:
        return []
    found = [(ref, c) for ref, c in resolve(s, handles) if c is not None]
    # Characters: a char_ id is the caller's own character; one that shows a face stands for
    # its cameo (consent as for the cameo), a faceless one only counts towards the limit of two.
    faceless: list[str] = []
    for ref in [r for r in ids if r.startswith("char_")]:
        ch = s.scalar(select(Character).where(Character.id == ref, Character.owner_id == user_id))
        if ch is None:  # someone else's too: ids are not a way to probe other accounts
            raise InvalidRequest(f"No cameo or character found with id '{ref}'.", param="characters",
                                 code="character_not_found")
        if ch.cameo_id is None:
            faceless.append(ch.id)
        else:
            found.append((ref, s.scalar(select(Cameo).where(Cameo.id == ch.cameo_id))))
    for ref, c in resolve(s, [r for r in ids if not r.startswith("char_")]):
        if c is None:
            raise InvalidRequest(f"No cameo or character found with id '{ref}'.", param="characters",
                                 code="character_not_found")
        found.append((ref, c))
    cameos: dict[str, Cameo] = {}
    for _, c in found:
        cameos.setdefault(c.id, c)
    if len(cameos) + len(set(faceless)) > MAX_CAMEOS_PER_VIDEO:
        raise InvalidRequest(f"A video can use at most {MAX_CAMEOS_PER_VIDEO} cameos and characters; this one "
                             f"names {len(cameos) + len(set(faceless))}.", param="characters" if ids else "prompt",
                             code="too_many_cameos")
    for c in cameos.values():
        if not may_use(s, c, user_id):
            audit.append(s, "deny", actor_id=user_id, owner_id=c.owner_id, cameo_id=c.id,
                         detail={"at": "create", "prompt_sha256": audit.digest(prompt or "")})
            s.commit()
            raise PermissionDenied(f"You may not use the cameo @{c.handle}: its owner has not given you "
                                   "permission, or it is not active.", param="prompt", code=DENIED)
        term = _blocked(c, prompt or "")
        if term is not None:
            audit.append(s, "deny", actor_id=user_id, owner_id=c.owner_id, cameo_id=c.id,
                         detail={"at": "create", "reason": "preferences", "prompt_sha256": audit.digest(prompt or "")})
            s.commit()
            raise InvalidRequest(f"The owner of @{c.handle} does not allow '{term}' in videos with their cameo.",
                                 param="prompt", code="cameo_preferences_violated")
    return list(cameos)


def record_use(s: Session, user_id: str, video_id: str, cameo_ids: list[str], commit: bool = True) -> None:
    """`commit=False`: part of the caller's transaction (the video's enqueue)."""
    for cid in cameo_ids:
        c = s.scalar(select(Cameo).where(Cameo.id == cid))
        if c is None:
            continue
        s.add(CameoUse(cameo_id=cid, video_id=video_id, user_id=user_id))
        audit.append(s, "use", actor_id=user_id, owner_id=c.owner_id, cameo_id=cid, subject_id=video_id)
    if commit:
        s.commit()


@dataclass(frozen=True)
class Denial:
    code: str
    message: str


def recheck_video(s: Session, video_id: str, at: str = "recheck") -> Denial | None:
    """Consent again, at job start and before publish: None when every cameo is still allowed.

    `at` ("start", "publish") goes into the audit row of a denial. Safe to call from any process
    (it reads the rows, not a cache), so the Celery runner's workers re-check the same way.
    """
    uses = s.scalars(select(CameoUse).where(CameoUse.video_id == video_id)).all()
    for use in uses:
        c = s.scalar(select(Cameo).where(Cameo.id == use.cameo_id))
        if use.taken_down_at is not None:
            return Denial(DENIED, use.takedown_reason or "The owner of a cameo in this video took it down.")
        if c is None or not may_use(s, c, use.user_id):
            handle = f"@{c.handle}" if c is not None else "a cameo"
            if c is not None:
                _audit_deny(s, use.user_id, c, video_id, at)
            return Denial(DENIED, f"Permission to use {handle} was withdrawn before this video was finished; "
                                  "it was not charged.")
    return None


def _audit_deny(s: Session, user_id: str, c: Cameo, video_id: str, at: str) -> None:
    # Another writer may take the chain's tail between our read and insert (prev_hash is unique): retry.
    for attempt in range(5):
        try:
            audit.append(s, "deny", actor_id=user_id, owner_id=c.owner_id, cameo_id=c.id, subject_id=video_id,
                         detail={"at": at})
            s.commit()
            return
        except IntegrityError:
            s.rollback()
            if attempt == 4:
                raise


def cameos_of(s: Session, video_id: str) -> list[str]:
    """The cameos a video uses (a remix, extension or edit of it shows the same people)."""
    return list(dict.fromkeys(s.scalars(select(CameoUse.cameo_id).where(CameoUse.video_id == video_id)
                                        .order_by(CameoUse.seq)).all()))


def check_derived(s: Session, user_id: str, prompt: str | None, characters: Any, source_video_id: str,
                  param: str = "video_id") -> list[str]:
    """The consent gate for a video made from another (remix, extension, edit): the new prompt's cameos
    plus the source's, each of which this caller must still be allowed to use. `param` names the source
    in a denial (`video_id` for a remix's path, `video` for an extension's or edit's body)."""
    named = check_create(s, user_id, prompt, characters)
    inherited = [cid for cid in cameos_of(s, source_video_id) if cid not in named]
    for cid in inherited:
        c = s.scalar(select(Cameo).where(Cameo.id == cid))
        taken_down = s.scalar(select(CameoUse).where(CameoUse.video_id == source_video_id,
                                                     CameoUse.cameo_id == cid,
                                                     CameoUse.taken_down_at.is_not(None)).limit(1))
        if c is None or taken_down is not None or not may_use(s, c, user_id):
            if c is not None:
                audit.append(s, "deny", actor_id=user_id, owner_id=c.owner_id, cameo_id=c.id,
                             subject_id=source_video_id, detail={"at": "create", "reason": "source"})
                s.commit()
            handle = f"@{c.handle}" if c is not None else "a cameo"
            raise PermissionDenied(f"Video {source_video_id} shows {handle}, whose owner has not given you "
                                   "permission to use it (any more).", param=param, code=DENIED)
    if len(named) + len(inherited) > MAX_CAMEOS_PER_VIDEO:
        raise InvalidRequest(f"A video can use at most {MAX_CAMEOS_PER_VIDEO} cameos; this one would show "
                             f"{len(named) + len(inherited)} with its source's.", param="prompt",
                             code="too_many_cameos")
    return named + inherited


def takedown_reason(s: Session, video_id: str) -> str | None:
    """Why a video's content is gone (410), or None."""
    use = s.scalar(select(CameoUse).where(CameoUse.video_id == video_id, CameoUse.taken_down_at.is_not(None))
                   .limit(1))
    if use is None:
        return None
    return use.takedown_reason or "Taken down by the owner of a cameo in this video."


def queued_videos(s: Session, cameo_id: str, user_id: str | None = None) -> list[str]:
    """Queued videos that use this cameo (all users', or one's): after a revocation they must fail at once.
    A video a worker already claimed re-checks consent before it publishes instead."""
    q = select(CameoUse.video_id).join(Video, Video.id == CameoUse.video_id).where(
        CameoUse.cameo_id == cameo_id, Video.status == "queued")
    if user_id is not None:
        q = q.where(CameoUse.user_id == user_id)
    return list(s.scalars(q))


WITHDRAWN_MESSAGE = "Permission to use a cameo in this video was withdrawn before it started; it was not charged."
