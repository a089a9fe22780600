"""People in the browser: passwords, invites, open sign-up, server-side sessions, sign-in rate limits.

API keys stay what programs use (accounts/service.py). A person signs in to the web app with their name
or email and a password; the browser then holds a random session token whose SHA-256 is a `WebSession`
row, so a session can be listed and revoked, and every request re-checks it (revoked, expired, account
disabled, or, for a session started with an API key, that key revoked or expired).

Passwords are hashed with argon2id through pwdlib (its recommended parameters; a hash made with older
ones is upgraded at the next sign-in). Failed sign-ins are counted in the database, per account and per
client address, so every process behind one database enforces the same limit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from pwdlib import PasswordHash
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from mutoscope.accounts.service import ROLES, Principal, check_grant
from mutoscope.db.models import ApiKey, Invite, SignInFailure, User, WebSession, now
from mutoscope.errors import (
    Conflict,
    Gone,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
)

PASSWORD_MIN = 10
# argon2 takes any length, but hashing a megabyte per guess is a cheap way to tie up a server's CPU.
PASSWORD_MAX = 1024
NAME_MAX = 64
EMAIL_MAX = 320
USER_AGENT_MAX = 300
SESSION_SECONDS = 14 * 24 * 3600
# A session's last-seen time is written at most this often, not on every request.
SEEN_EVERY_S = 60
INVITE_TOKEN_BYTES = 32
SESSION_TOKEN_BYTES = 32

_hasher = PasswordHash.recommended()
# Checked when no account matches, so an unknown name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
# Deliberately loose (RFC 5322 allows far more): one @, something on each side, a dot in the domain.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str, param: str = "password", hints: tuple[str, ...] = ()) -> None:
    """Long enough, not too long to hash, and not a common, leaked-list or easily built password.

    zxcvbn scores a password by the cheapest way to guess it: its frequency lists (the most common leaked
    passwords, names and words), keyboard walks, repeats, sequences, dates and l33t swaps, plus `hints` (the
    person's own name and email). Below score 3 (about 10^8 guesses) is refused, with its own advice.
    """
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise InvalidRequest(f"Choose a password of at least {PASSWORD_MIN} characters.", param=param,
                             code="password_too_short")
    if len(password) > PASSWORD_MAX:
        raise InvalidRequest(f"A password can be at most {PASSWORD_MAX} characters.", param=param,
                             code="password_too_long")
    # Its matchers are quadratic in length; the first 100 characters decide whether a password is guessable.
    verdict = zxcvbn(password[:100], user_inputs=[h for h in hints if h])
    if verdict["score"] < 3:
        advice = " ".join(x for x in [verdict["feedback"].get("warning") or "",
                                      *verdict["feedback"].get("suggestions", [])[:1]] if x)
        raise InvalidRequest("That password is too easy to guess: it is common, or close to one that is. "
                             + (advice + " " if advice else "") + "Try a few unrelated words.",
                             param=param, code="password_too_weak")



def clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidRequest("Enter a name.", param="name", code="missing_required_parameter")
    if len(name) > NAME_MAX:
        raise InvalidRequest(f"A name can be at most {NAME_MAX} characters.", param="name")
    # No @: a sign-in with an @ is read as an email, so a name must never look like one.
    if "@" in name or not name.isprintable():
        raise InvalidRequest("A name can't contain @ or control characters.", param="name")
    return name


def clean_email(email: str | None, required: bool = False) -> str | None:
    email = (email or "").strip().lower()
    if not email:
        if required:
            raise InvalidRequest("Enter an email address.", param="email", code="missing_required_parameter")
        return None
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        raise InvalidRequest("Enter an email address like name@example.com.", param="email")
    return email


def find_person(session: Session, login: str) -> User | None:
    """The account a sign-in names: an email when it has an @ (any case), else the exact name."""
    login = (login or "").strip()
    if not login or len(login) > EMAIL_MAX:
        return None
    if "@" in login:
        return session.scalar(select(User).where(User.email == login.lower()))
    return session.scalar(select(User).where(User.name == login))


def _new_person(session: Session, *, name: str, email: str | None, password: str, role: str = "member",
                plan: str | None = None) -> User:
    """Adds (does not commit) a user; the caller's commit may still meet a unique name or email."""
    name, email = clean_name(name), clean_email(email)
    check_password(password, hints=(name, email or ""))
    if session.scalar(select(User.id).where(User.name == name)):
        raise Conflict("That name is taken; choose another.", param="name", code="name_taken")
    if email and session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("An account with that email already exists; sign in instead.", param="email",
                       code="email_taken")
    user = User(name=name, email=email, role=role, plan=plan, password_hash=_hasher.hash(password))
    session.add(user)
    return user


def _commit_person(session: Session) -> None:
    try:
        session.commit()
    except IntegrityError:  # a concurrent sign-up took the name or email between the check and the commit
        session.rollback()
        raise Conflict("That name or email was just taken; choose another.", param="name",
                       code="name_taken") from None


def set_password(session: Session, user_id: str, new: str, current: str | None = None,
                 keep_session: str | None = None) -> None:
    """Set or change a password. Changing one needs the current one; every other browser is signed out."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.", param="user")
    check_password(new, param="new_password", hints=(user.name, user.email or ""))
    if user.password_hash is not None:
        if not current or len(current) > PASSWORD_MAX or not _hasher.verify(current, user.password_hash):
            raise InvalidRequest("That is not your current password.", param="current_password",
                                 code="wrong_password")
    user.password_hash = _hasher.hash(new)
    q = update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
    if keep_session is not None:
        q = q.where(WebSession.id != keep_session)
    session.execute(q.values(revoked_at=now()))
    session.commit()


def set_email(session: Session, user_id: str, email: str | None) -> None:
    user = session.get(User, user_id)
    email = clean_email(email)
    if email and session.scalar(select(User.id).where(User.email == email, User.id != user_id)):
        raise Conflict("Another account already uses that email.", param="email", code="email_taken")
    user.email = email
    _commit_person(session)


# Sign-in with a password, rate-limited.

@dataclass(frozen=True)
class Limits:
    per_account: int
    per_ip: int
    window_s: float


class SignInRefused(InvalidRequest):
    """Wrong name, email or password: one answer for all three, so a sign-in does not reveal who has an
    account."""

    status_code = 401
    code = "wrong_password"


def _scopes(login: str, user: User | None, ip: str) -> list[str]:
    account = f"user:{user.id}" if user is not None else "login:" + _sha256(login.strip().lower())[:40]
    return [account, f"ip:{ip[:60]}"]


def _over_limit(session: Session, scopes: list[str], limits: Limits, t: float) -> RateLimited | None:
    since = t - limits.window_s
    for scope, limit, whose in ((scopes[0], limits.per_account, "this account"),
                                (scopes[1], limits.per_ip, "your network address")):
        count, oldest = session.execute(select(func.count(), func.min(SignInFailure.at))
                                        .where(SignInFailure.scope == scope, SignInFailure.at > since)).one()
        if count > limit:
            retry = max(1, int(oldest + limits.window_s - t) + 1)
            minutes = max(1, round(retry / 60))
            return RateLimited(f"Too many failed sign-ins for {whose}. Wait {minutes} minute"
                               f"{'s' if minutes != 1 else ''} and try again, or ask the owner to reset your "
                               "password.", code="too_many_sign_in_attempts", headers={"Retry-After": str(retry)})
    return None


def sign_in_with_password(session: Session, login: str, password: str, ip: str, limits: Limits) -> Principal:
    """The account's Principal, or SignInRefused (401) or RateLimited (429, Retry-After).

    Each attempt first records itself as a failure in every scope and commits, then counts: so however
    many attempts race, no more than the limit get as far as the password check. A refused attempt takes
    its rows back (hammering a locked account does not extend the lock); a good password takes back its
    own and clears the account's earlier failures.
    """
    login = (login or "").strip()
    password = password if isinstance(password, str) else ""
    user = find_person(session, login)
    scopes = _scopes(login, user, ip)
    t = time.time()
    rows = [SignInFailure(scope=s, at=t) for s in scopes]
    session.add_all(rows)
    session.execute(delete(SignInFailure).where(SignInFailure.at <= t - limits.window_s))
    session.commit()
    refused = _over_limit(session, scopes, limits, t)
    if refused is not None:
        session.execute(delete(SignInFailure).where(SignInFailure.seq.in_([r.seq for r in rows])))
        session.commit()
        raise refused
    ok, new_hash = False, None
    if 0 < len(password) <= PASSWORD_MAX:
        stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
        ok, new_hash = _hasher.verify_and_update(password, stored)
        ok = ok and stored is not _DUMMY_HASH
    if not ok or user is None:
        raise SignInRefused("That name or email and password don't match an account. Check both and try again.",
                            param="password")
    if user.disabled:
        # The same answer as a wrong password, and counted like one: anything else would tell a guesser
        # that this guess was right, to try on the account's other services.
        raise SignInRefused("That name or email and password don't match an account. Check both and try again.",
                            param="password")
    if new_hash:
        user.password_hash = new_hash
    session.execute(delete(SignInFailure).where(or_(SignInFailure.scope == scopes[0],
                                                    SignInFailure.seq.in_([r.seq for r in rows]))))
    session.commit()
    return Principal(user_id=user.id, user_name=user.name, role=user.role, key_id=None, plan=user.plan)


# Invites and open sign-up.

def create_invite(session: Session, actor: Principal, *, email: str | None = None, name: str | None = None,
                  role: str = "member", plan: str | None = None, plans: dict | None = None,
                  days: float = 7.0) -> tuple[Invite, str]:
    """A one-time link's row and its token (shown once). Owners and admins only; roles as check_grant says."""
    if actor.role not in ("owner", "admin"):
        raise NotFound("Not found.", code="not_found")
    if role not in ROLES:
        raise InvalidRequest(f"Role must be one of {', '.join(ROLES)}.", param="role")
    check_grant(actor, role)
    if plan is not None and plans is not None and plan not in plans:
        raise InvalidRequest(f"Unknown plan '{plan}'. Configured: {', '.join(plans)}.", param="plan")
    if not 0 < days <= 90:
        raise InvalidRequest("An invite can last from a few minutes up to 90 days.", param="days")
    email = clean_email(email)
    if email and session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("An account with that email already exists.", param="email", code="email_taken")
    name = clean_name(name) if name and name.strip() else None
    token = secrets.token_urlsafe(INVITE_TOKEN_BYTES)
    inv = Invite(token_hash=_sha256(token), created_by=actor.user_id, email=email, name=name, role=role,
                 plan=plan, expires_at=now() + int(days * 86400))
    session.add(inv)
    session.commit()
    return inv, token


def pending_invites(session: Session, actor: Principal) -> list[Invite]:
    """Invites not yet used, revoked or expired: all of them for the owner, an admin's own for an admin."""
    q = (select(Invite).where(Invite.used_at.is_(None), Invite.revoked_at.is_(None), Invite.expires_at > now())
         .order_by(Invite.seq.desc()).limit(200))
    if actor.role != "owner":
        q = q.where(Invite.created_by == actor.user_id)
    return list(session.scalars(q))


def revoke_invite(session: Session, actor: Principal, invite_id: str) -> None:
    inv = session.scalar(select(Invite).where(Invite.id == invite_id))
    if inv is None or (actor.role != "owner" and inv.created_by != actor.user_id) or actor.role not in (
            "owner", "admin"):
        raise NotFound(f"No invite found with id '{invite_id}'.", param="invite_id")
    inv.revoked_at = inv.revoked_at or now()
    session.commit()


def open_invite(session: Session, token: str) -> Invite:
    """The invite a link names, if it can still be used: else 404 (unknown) or 410 (used, revoked, expired)."""
    if not token or len(token) > 200:
        raise NotFound("This invite link is not valid. Check that you copied all of it.", code="invite_not_found")
    inv = session.scalar(select(Invite).where(Invite.token_hash == _sha256(token)))
    if inv is None:
        raise NotFound("This invite link is not valid. Check that you copied all of it.", code="invite_not_found")
    if inv.used_at is not None:
        raise Gone("This invite link has already been used. Sign in instead, or ask for a new link.",
                   code="invite_used")
    if inv.revoked_at is not None:
        raise Gone("This invite link was withdrawn. Ask whoever sent it for a new one.", code="invite_revoked")
    if inv.expires_at <= now():
        raise Gone("This invite link has expired. Ask whoever sent it for a new one.", code="invite_expired")
    return inv


def accept_invite(session: Session, token: str, *, name: str, email: str | None, password: str) -> Principal:
    """Make the invited person's account. The invite is spent by a conditional UPDATE in the same
    transaction as the new user, so two browsers racing with one link make one account."""
    inv = open_invite(session, token)
    if inv.for_user_id is not None:  # a password reset makes no account
        raise NotFound("This invite link is not valid. Check that you copied all of it.", code="invite_not_found")
    if inv.email:
        email = inv.email  # the invite was for this address
    user = _new_person(session, name=name, email=email, password=password, role=inv.role, plan=inv.plan)
    session.flush()
    spent = session.execute(update(Invite).where(Invite.id == inv.id, Invite.used_at.is_(None),
                                                 Invite.revoked_at.is_(None), Invite.expires_at > now())
                            .values(used_at=now(), used_by=user.id)).rowcount
    if spent != 1:
        session.rollback()
        raise Gone("This invite link has already been used. Sign in instead, or ask for a new link.",
                   code="invite_used")
    _commit_person(session)
    return Principal(user_id=user.id, user_name=user.name, role=user.role, key_id=None, plan=user.plan)


def create_reset_link(session: Session, actor: Principal, login: str, days: float = 1.0) -> tuple[Invite, User, str]:
    """A one-time link that sets a new password for the person `login` names (email, name or id), and its
    token (shown once). The owner may reset anyone's, an admin only members'. A newer link replaces any
    unused older one, so only the latest one handed over works."""
    if actor.role not in ("owner", "admin"):
        raise NotFound("Not found.", code="not_found")
    user = find_person(session, login) or session.scalar(select(User).where(User.id == (login or "").strip()))
    if user is None:
        raise NotFound(f"No account '{login}'.", param="user", code="user_not_found")
    if actor.role != "owner" and user.role != "member":
        raise PermissionDenied("Only the owner can reset the password of an admin or the owner.", param="user")
    if not 0 < days <= 7:
        raise InvalidRequest("A reset link can last from a few minutes up to 7 days.", param="days")
    session.execute(update(Invite).where(Invite.for_user_id == user.id, Invite.used_at.is_(None),
                                         Invite.revoked_at.is_(None)).values(revoked_at=now()))
    token = secrets.token_urlsafe(INVITE_TOKEN_BYTES)
    inv = Invite(token_hash=_sha256(token), created_by=actor.user_id, name=user.name, role=user.role,
                 for_user_id=user.id, expires_at=now() + int(days * 86400))
    session.add(inv)
    session.commit()
    return inv, user, token


def reset_password(session: Session, token: str, password: str) -> Principal:
    """Spend a reset link: the new password, and every browser signed in as that person signed out. Spent by
    a conditional UPDATE in the same transaction, so a link works once even when two tabs race."""
    inv = open_invite(session, token)
    user = session.scalar(select(User).where(User.id == inv.for_user_id)) if inv.for_user_id else None
    if user is None:
        raise NotFound("This link is not valid. Check that you copied all of it.", code="invite_not_found")
    if user.disabled:
        raise Gone("This account is disabled. Ask the owner of this server to enable it.", code="account_disabled")
    check_password(password, hints=(user.name, user.email or ""))
    spent = session.execute(update(Invite).where(Invite.id == inv.id, Invite.used_at.is_(None),
                                                 Invite.revoked_at.is_(None), Invite.expires_at > now())
                            .values(used_at=now(), used_by=user.id)).rowcount
    if spent != 1:
        session.rollback()
        raise Gone("This link has already been used. Ask for a new one.", code="invite_used")
    user.password_hash = _hasher.hash(password)
    session.execute(update(WebSession).where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
                    .values(revoked_at=now()))
    session.commit()
    return Principal(user_id=user.id, user_name=user.name, role=user.role, key_id=None, plan=user.plan)


def sign_up(session: Session, *, name: str, email: str | None, password: str) -> Principal:
    """Open sign-up (Settings.open_signup): a member on the default plan. The caller checks the flag."""
    user = _new_person(session, name=name, email=clean_email(email, required=True), password=password)
    _commit_person(session)
    return Principal(user_id=user.id, user_name=user.name, role=user.role, key_id=None, plan=user.plan)


# Browser sessions.

def start_session(session: Session, who: Principal, user_agent: str, ip: str) -> tuple[WebSession, str]:
    """A new session row and its token for the cookie (the row keeps only the token's hash)."""
    token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
    t = now()
    # Ended sessions serve no one (the list shows live ones only): drop this person's at each sign-in.
    session.execute(delete(WebSession).where(WebSession.user_id == who.user_id,
                                             or_(WebSession.expires_at <= t, WebSession.revoked_at.is_not(None))))
    row = WebSession(token_hash=_sha256(token), user_id=who.user_id, key_id=who.key_id, created_at=t,
                     last_seen_at=t, expires_at=t + SESSION_SECONDS, user_agent=(user_agent or "")[:USER_AGENT_MAX],
                     ip=(ip or "")[:64])
    session.add(row)
    session.commit()
    return row, token


def resolve_session(session: Session, token: str) -> tuple[Principal, WebSession] | None:
    """The signed-in person for a cookie's token, or None once the session is over for any reason."""
    if not token or len(token) > 200:
        return None
    found = session.execute(select(WebSession, User).join(User, User.id == WebSession.user_id)
                            .where(WebSession.token_hash == _sha256(token))).first()
    if found is None:
        return None
    row, user = found
    t = now()
    if row.revoked_at is not None or row.expires_at <= t or user.disabled:
        return None
    if row.key_id is not None:
        key = session.get(ApiKey, row.key_id)
        if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= t):
            return None
    if t - row.last_seen_at >= SEEN_EVERY_S:
        session.execute(update(WebSession).where(WebSession.id == row.id).values(last_seen_at=t))
        session.commit()
    return Principal(user_id=user.id, user_name=user.name, role=user.role, key_id=row.key_id, plan=user.plan), row


def list_sessions(session: Session, user_id: str) -> list[WebSession]:
    """This person's live sessions, most recently used first."""
    return list(session.scalars(select(WebSession).where(WebSession.user_id == user_id,
                                                         WebSession.revoked_at.is_(None),
                                                         WebSession.expires_at > now())
                                .order_by(WebSession.last_seen_at.desc(), WebSession.seq.desc()).limit(200)))


def revoke_session(session: Session, user_id: str, session_id: str) -> None:
    """Sign one of my browsers out; someone else's session id is a 404 like an unknown one."""
    done = session.execute(update(WebSession).where(WebSession.id == session_id, WebSession.user_id == user_id,
                                                    WebSession.revoked_at.is_(None))
                           .values(revoked_at=now())).rowcount
    session.commit()
    if done != 1:
        raise NotFound(f"No session found with id '{session_id}'.", param="session_id")


def end_session(session: Session, token: str) -> None:
    if token and len(token) <= 200:
        session.execute(update(WebSession).where(WebSession.token_hash == _sha256(token),
                                                 WebSession.revoked_at.is_(None)).values(revoked_at=now()))
        session.commit()
