"""Users and API keys. Keys are shown once and stored only as a SHA-256 hash.

Roles: the owner manages every account; an admin manages members (and its own keys), never another
admin or an owner, and can grant no role but member. So an admin cannot take over the server by minting
the owner a key, promoting itself, or disabling the owner (`check_manage`). The CLI works on the
database file directly: whoever can run it is the operator, with the owner's powers.

`AccountService` is what the front ends call: usage, the service's status and the admin API.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.accounts import quota
from mutoscope.accounts.plans import Plan, plan_for
from mutoscope.config import Settings
from mutoscope.db import repositories as repo
from mutoscope.db.models import ApiKey, User, now
from mutoscope.errors import AuthenticationError, Conflict, InvalidRequest, NotFound, PermissionDenied
from mutoscope.lifecycle import service as lifecycle
from mutoscope.protocol.accounts import (
    MODEL_NAME_MAX,
    CreateUserRequest,
    DeprecateModelRequest,
    Service,
    SunsetRequest,
    UpdateUserRequest,
    Usage,
    UserList,
    UserObject,
)
from mutoscope.storage.private import private_dir

KEY_PREFIX = "msk-"
ROLES = ("owner", "admin", "member")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved from an API key, or a browser session, on every request.

    `key_id` names the API key in use; None for a person signed in to the web app with a password.
    """

    user_id: str
    user_name: str
    role: str
    key_id: str | None
    plan: str | None = None


def create_user(session: Session, name: str, role: str = "member") -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if session.scalar(select(User).where(User.name == name)):
        raise Conflict(f"a user named {name!r} already exists", param="name")
    user = User(name=name, role=role)
    session.add(user)
    session.commit()
    return user


def get_user(session: Session, name_or_id: str) -> User:
    user = session.scalar(select(User).where((User.name == name_or_id) | (User.id == name_or_id)))
    if user is None:
        raise NotFound(f"no user {name_or_id!r}", param="user")
    return user


def create_key(session: Session, user: User, name: str = "", expires_at: int | None = None) -> tuple[ApiKey, str]:
    """Returns the row and the plaintext key, which is never stored and never shown again."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(user_id=user.id, name=name, prefix=plaintext[:12], key_hash=hash_key(plaintext),
                 expires_at=expires_at)
    session.add(key)
    session.commit()
    return key, plaintext


def list_keys(session: Session, user: User | None = None) -> list[tuple[ApiKey, User]]:
    q = select(ApiKey, User).join(User, User.id == ApiKey.user_id).order_by(ApiKey.created_at)
    if user is not None:
        q = q.where(ApiKey.user_id == user.id)
    return [(k, u) for k, u in session.execute(q).all()]


def revoke_own_key(session: Session, user_id: str, key_id: str) -> ApiKey:
    """Revoke one of `user_id`'s own keys; anyone else's key is a 404 like an unknown one."""
    key = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id))
    if key is None:
        raise NotFound(f"No API key found with id '{key_id}'.", param="key_id")
    key.revoked_at = key.revoked_at or now()
    session.commit()
    return key


def revoke_key(session: Session, key_id_or_prefix: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where((ApiKey.id == key_id_or_prefix) | (ApiKey.prefix == key_id_or_prefix)))
    if key is None:
        raise NotFound(f"no API key {key_id_or_prefix!r}", param="key")
    key.revoked_at = key.revoked_at or now()
    session.commit()
    return key


def check_grant(actor: Principal, role: str) -> None:
    """May `actor` give an account `role`? Only the owner grants admin or owner."""
    if actor.role != "owner" and role != "member":
        raise PermissionDenied(f"Only the owner can give an account the {role} role; admins manage members.",
                               param="role")


def check_manage(actor: Principal, target: User, *, keys: bool = False) -> None:
    """May `actor` change `target` (its plan, role, disabled flag) or, with `keys`, mint and revoke its keys?

    The owner may change anyone; an admin may change members, and only the keys of its own account.
    """
    if actor.role == "owner" or target.role == "member":
        return
    if keys and target.id == actor.user_id:
        return
    raise PermissionDenied(f"Only the owner can manage the {target.role} account '{target.name}'; admins "
                           "manage members.", param="user_id")


def check_keeps_an_owner(session: Session, target: User, *, role: str | None, disabled: bool | None) -> None:
    """Refuse to demote or disable the last enabled owner: nobody could manage the owner role again."""
    if target.role != "owner" or target.disabled:
        return
    if (role in (None, "owner")) and not disabled:
        return
    others = session.scalar(select(User.id).where(User.role == "owner", User.disabled.is_(False),
                                                  User.id != target.id).limit(1))
    if others is None:
        raise Conflict("This is the only enabled owner account; make another account owner first.",
                       param="role" if role not in (None, "owner") else "disabled", code="last_owner")


def authenticate(session: Session, plaintext: str | None) -> Principal:
    if not plaintext:
        raise AuthenticationError("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                                  code="missing_api_key")
    found = repo.key_by_hash(session, hash_key(plaintext))
    if found is None:
        raise AuthenticationError("Incorrect API key provided.")
    key, user = found
    t = now()
    if key.revoked_at is not None:
        raise AuthenticationError("This API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= t:
        raise AuthenticationError("This API key has expired.")
    if user.disabled:
        raise AuthenticationError("This account is disabled.", code="account_disabled")
    if key.last_used_at is None or t - key.last_used_at > 60:  # avoid a write on every request
        key.last_used_at = t
        session.commit()
    return Principal(user_id=user.id, user_name=user.name, role=user.role, key_id=key.id, plan=user.plan)


def ensure_owner(session: Session, key_file: Path) -> str | None:
    """On first start: create the owner account and return its key (also saved 0600 in key_file)."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    owner = create_user(session, "owner", role="owner")
    owner.plan = "unlimited"
    _, plaintext = create_key(session, owner, name="owner (first start)")
    private_dir(key_file.parent)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file left by an earlier install
    with os.fdopen(fd, "w") as f:
        f.write(plaintext + "\n")
    return plaintext


def to_user_object(u: User, api_key: str | None = None) -> UserObject:
    return UserObject(id=u.id, name=u.name, role=u.role, plan=u.plan, created_at=u.created_at,
                      disabled=u.disabled, api_key=api_key)


class AccountService:
    """Usage, the service's status and the admin API (users, keys, plans, model lifecycle, sunset), for
    every front end.

    Args:
        guard_status: whether the likeness guard is on, off or unavailable (`likeness/guard.py`): the
            likeness room sits above this one, so the composition root hands it in.
    """

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, plans: dict[str, Plan], *,
                 guard_status: Callable[[], Literal["on", "off", "unavailable"]]):
        self.sessions, self.settings, self.plans = sessions, settings, plans
        self._guard_status = guard_status

    def plan(self, name: str | None) -> Plan:
        return plan_for(self.plans, name, self.settings.default_plan)

    def usage(self, who: Principal) -> Usage:
        with self.sessions() as s:
            return Usage(**quota.usage(s, self.plan(who.plan), who.user_id))

    def service(self) -> Service:
        with self.sessions() as s:
            return Service(**lifecycle.current_phase(s).as_dict(), likeness_guard=self._guard_status())

    # The admin API. `who` is an owner or an admin (routes/account.py); accounts/service.py says which
    # accounts each may manage.
    def _check_plan(self, plan: str | None) -> None:
        if plan is not None and plan not in self.plans:
            raise InvalidRequest(f"Unknown plan '{plan}'. Configured: {', '.join(self.plans)}.", param="plan")

    def list_users(self) -> UserList:
        with self.sessions() as s:
            return UserList(data=[to_user_object(u) for u in s.scalars(select(User).order_by(User.created_at))])

    def create_user(self, who: Principal, req: CreateUserRequest) -> UserObject:
        self._check_plan(req.plan)
        check_grant(who, req.role)
        with self.sessions() as s:
            u = create_user(s, req.name, req.role)
            u.plan = req.plan
            _, key = create_key(s, u, name="created with user")
            return to_user_object(u, key)

    def update_user(self, who: Principal, user_id: str, req: UpdateUserRequest) -> UserObject:
        self._check_plan(req.plan)
        with self.sessions() as s:
            u = s.get(User, user_id)
            if u is None:
                raise NotFound(f"No user found with id '{user_id}'.", param="user_id")
            check_manage(who, u)
            if req.role is not None and req.role != u.role:
                check_grant(who, req.role)
            check_keeps_an_owner(s, u, role=req.role if "role" in req.model_fields_set else None,
                                 disabled=req.disabled if "disabled" in req.model_fields_set else None)
            for field in ("role", "plan", "disabled"):
                if field in req.model_fields_set:
                    setattr(u, field, getattr(req, field))
            s.commit()
            return to_user_object(u)

    def create_key(self, who: Principal, user_id: str, name: str) -> UserObject:
        with self.sessions() as s:
            u = get_user(s, user_id)
            check_manage(who, u, keys=True)
            _, key = create_key(s, u, name=name)
            return to_user_object(u, key)

    def list_keys(self) -> dict:
        with self.sessions() as s:
            return {"object": "list", "data": [
                {"id": k.id, "object": "api_key", "prefix": k.prefix, "name": k.name, "user_id": u.id,
                 "user": u.name, "created_at": k.created_at, "last_used_at": k.last_used_at,
                 "expires_at": k.expires_at, "revoked_at": k.revoked_at} for k, u in list_keys(s)]}

    def revoke_key(self, who: Principal, key_id: str) -> dict:
        with self.sessions() as s:
            owner = s.scalar(select(User).join(ApiKey, ApiKey.user_id == User.id)
                             .where((ApiKey.id == key_id) | (ApiKey.prefix == key_id)))
            if owner is not None:
                check_manage(who, owner, keys=True)
            k = revoke_key(s, key_id)
            return {"id": k.id, "object": "api_key", "revoked_at": k.revoked_at}

    def deprecate_model(self, model: str, req: DeprecateModelRequest) -> dict:
        # Any name may be scheduled (an alias not configured yet), but only one the schedule's column holds.
        if len(model) > MODEL_NAME_MAX:
            raise InvalidRequest(f"A model name has at most {MODEL_NAME_MAX} characters.", param="model")
        with self.sessions() as s:
            row = lifecycle.deprecate_model(s, model, shutdown_at=req.shutdown_date,
                                            deprecated_at=req.deprecation_date, replacement=req.replacement)
            return {"model": row.model, "deprecated_at": row.deprecated_at, "shutdown_at": row.shutdown_at,
                    "replacement": row.replacement}

    def schedule_sunset(self, req: SunsetRequest) -> Service:
        with self.sessions() as s:
            lifecycle.schedule_sunset(s, **req.model_dump(exclude_unset=False, include=set(SunsetRequest.model_fields)))
        return self.service()
