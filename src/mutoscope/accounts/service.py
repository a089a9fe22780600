"""Users and API keys. Keys are shown once and stored only as a SHA-256 hash.

Roles: the owner manages every account; an admin manages members (and its own keys), never another
admin or an owner, and can grant no role but member. So an admin cannot take over the server by minting
the owner a key, promoting itself, or disabling the owner (`check_manage`). The CLI works on the
database file directly: whoever can run it is the operator, with the owner's powers.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mutoscope.db import repositories as repo
from mutoscope.db.models import ApiKey, User, now
from mutoscope.errors import AuthenticationError, Conflict, NotFound, PermissionDenied
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
