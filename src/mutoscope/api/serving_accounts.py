"""Usage, service status and the admin API (users, keys, plans, model lifecycle, sunset)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.accounts import quota
from mutoscope.accounts.plans import Plan
from mutoscope.accounts.service import (
    Principal,
    check_grant,
    check_keeps_an_owner,
    check_manage,
    create_key,
    create_user,
    get_user,
    list_keys,
    revoke_key,
)
from mutoscope.config import Settings
from mutoscope.db.models import ApiKey, User
from mutoscope.errors import InvalidRequest, NotFound
from mutoscope.lifecycle import service as lifecycle
from mutoscope.likeness import guard as likeness_guard
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


def to_user_object(u: User, api_key: str | None = None) -> UserObject:
    return UserObject(id=u.id, name=u.name, role=u.role, plan=u.plan, created_at=u.created_at,
                      disabled=u.disabled, api_key=api_key)


class AccountService:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings, plans: dict[str, Plan]):
        self.sessions, self.settings, self.plans = sessions, settings, plans

    def plan(self, name: str | None) -> Plan:
        return self.plans[name or self.settings.default_plan]

    def usage(self, who: Principal) -> Usage:
        with self.sessions() as s:
            return Usage(**quota.usage(s, self.plan(who.plan), who.user_id))

    def service(self) -> Service:
        with self.sessions() as s:
            return Service(**lifecycle.current_phase(s).as_dict(), likeness_guard=likeness_guard.status())

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
