"""The cameo audit log: append-only and hash-chained, so an edited or deleted row shows.

Each row's hash is sha256(prev_hash || canonical JSON of its fields); `prev_hash` is unique,
so two writers racing for the same tail cannot fork the chain (one insert fails and retries).
Rows hold ids, action names, error codes and hashes, never embeddings, frames or prompts.
Limit: cutting rows off the *end* leaves a valid shorter chain; publish `head()` somewhere
else (a log line, a backup) to detect that too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mutoscope.db.models import CameoAudit, now

GENESIS = "0" * 64
ACTIONS = ("create", "verify", "verify_failed", "policy", "grant", "revoke", "use", "deny", "takedown",
           "delete", "purge", "character", "character_delete", "reference", "voice_consent", "import")


def digest(text: str) -> str:
    """How free text (a prompt, a reason) enters the log: as a hash."""
    return hashlib.sha256(text.encode()).hexdigest()


def _row_hash(prev_hash: str, at: int, action: str, actor_id: str | None, owner_id: str | None,
              cameo_id: str | None, subject_id: str | None, detail: dict[str, Any] | None) -> str:
    body = json.dumps([at, action, actor_id, owner_id, cameo_id, subject_id, detail or {}], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def append(s: Session, action: str, *, actor_id: str | None, owner_id: str | None, cameo_id: str | None = None,
           subject_id: str | None = None, detail: dict[str, Any] | None = None) -> CameoAudit:
    """Add a row in the caller's transaction (commit together with the change it records)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    last = s.scalar(select(CameoAudit).order_by(CameoAudit.seq.desc()).limit(1))
    prev = last.hash if last is not None else GENESIS
    at = now()
    row = CameoAudit(at=at, action=action, actor_id=actor_id, owner_id=owner_id, cameo_id=cameo_id,
                     subject_id=subject_id, detail=detail, prev_hash=prev,
                     hash=_row_hash(prev, at, action, actor_id, owner_id, cameo_id, subject_id, detail))
    s.add(row)
    s.flush()
    return row


@dataclass
class ChainCheck:
    valid: bool
    checked: int
    head: str
    first_bad_seq: int | None = None
    reason: str | None = None


def verify_chain(s: Session) -> ChainCheck:
    prev, n = GENESIS, 0
    for row in s.scalars(select(CameoAudit).order_by(CameoAudit.seq)):
        n += 1
        if row.prev_hash != prev:
            return ChainCheck(False, n, prev, row.seq, "a row before this one was removed or changed")
        expect = _row_hash(row.prev_hash, row.at, row.action, row.actor_id, row.owner_id, row.cameo_id,
                           row.subject_id, row.detail)
        if row.hash != expect:
            return ChainCheck(False, n, prev, row.seq, "this row was edited")
        prev = row.hash
    return ChainCheck(True, n, prev)


def verify_own(s: Session, owner_id: str) -> ChainCheck:
    """The chain as far as it vouches for `owner_id`'s rows, without telling them about anyone else's.

    The whole chain is recomputed (a row can only be trusted if every row before it is intact), but the
    answer counts and names only the owner's rows: `checked` is how many of theirs, `head` the hash of
    their latest one. A break after their latest row does not touch them; a break before it does, and
    then only a bad row of their own is named by seq.
    """
    full = verify_chain(s)
    own = list(s.scalars(select(CameoAudit.seq).where(CameoAudit.owner_id == owner_id).order_by(CameoAudit.seq)))
    last = s.scalar(select(CameoAudit).where(CameoAudit.owner_id == owner_id).order_by(CameoAudit.seq.desc())
                    .limit(1))
    own_head = last.hash if last is not None else GENESIS
    if full.valid or not own or full.first_bad_seq > own[-1]:
        return ChainCheck(True, len(own), own_head)
    bad = full.first_bad_seq if full.first_bad_seq in own else None
    return ChainCheck(False, len(own), own_head, bad,
                      "one of your rows was edited" if bad is not None else
                      "a row before one of yours was removed or changed")


def head(s: Session) -> str:
    last = s.scalar(select(CameoAudit).order_by(CameoAudit.seq.desc()).limit(1))
    return last.hash if last is not None else GENESIS
