"""Dependencies: the database session and the authenticated caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from mutoscope.accounts.service import Principal, authenticate
from mutoscope.lifecycle import service as lifecycle
from mutoscope.services import services


def get_session(request: Request) -> Iterator[Session]:
    with services(request).sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(request: Request) -> Principal:
    # A session of its own, closed before the handler runs: holding one per request for its whole
    # life would double the connections each request needs and starve the pool under load.
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    with services(request).sessions() as session:
        who = authenticate(session, token.strip() if scheme.lower() == "bearer" else None)
        phase = services(request).phase.get()
        if phase.phase != "active":
            # Seeing the sunset headers is this user's notice and export offer; deletion waits for it.
            lifecycle.record_export_offer(session, who.user_id, phase)
    return who


PrincipalDep = Annotated[Principal, Depends(get_principal)]
