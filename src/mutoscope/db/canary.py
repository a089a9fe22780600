"""The sealing-key canary: a process that cannot open what the database holds refuses to start.

Every process of one installation (serve, API-only, workers, the stdio MCP server) must seal and open with
the same key. One started with another `MUTOSCOPE_SECRET_KEY` (or another key file) would run, seal new
webhook secrets nobody else can open, and fail every delivery of the existing ones without a word. So the
first process to start seals a known value into `seal_canary`; every process opens it at start.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.db.models import SealCanary, WebhookEndpoint
from mutoscope.sealing import SealError, SecretBox

CANARY = "mutoscope sealing canary"
CONTEXT = "seal_canary"
MISMATCH = ("This process's sealing key is not the one this database's secrets were sealed with: set "
            "MUTOSCOPE_SECRET_KEY (or the data folder's secret-key file) to the same key as the other processes "
            "of this installation.")


def check_sealing_key(sessions: sessionmaker[Session], box: SecretBox) -> None:
    """Raise ValueError naming MUTOSCOPE_SECRET_KEY when `box` cannot open the canary (or, on an install from
    before the canary, a stored webhook secret); seal the canary when there is none yet."""
    with sessions() as s:
        row = s.get(SealCanary, 1)
        if row is not None:
            try:
                if box.open(row.sealed, context=CONTEXT) == CANARY:
                    return
            except SealError:
                pass
            raise ValueError(MISMATCH)
        for ep in s.scalars(select(WebhookEndpoint).where(WebhookEndpoint.secret.like("sealed1:%")).limit(1)):
            try:
                box.open(ep.secret, context=ep.id)
            except SealError:
                raise ValueError(MISMATCH) from None
        s.add(SealCanary(id=1, sealed=box.seal(CANARY, context=CONTEXT)))
        try:
            s.commit()
        except IntegrityError:  # another process started at the same moment: check against its canary
            s.rollback()
            check_sealing_key(sessions, box)
