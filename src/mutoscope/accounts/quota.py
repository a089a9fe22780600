"""Admission and settlement: budgets, concurrency and request rates, correct under concurrency.

Admission is one conditional UPDATE on the user's counter row for the month
(`spent + reserved + cost <= budget AND active < concurrent_jobs`). The database
serialises those updates on SQLite and PostgreSQL alike, so 50 simultaneous
creates against a budget of 10 admit exactly 10. Budget is reserved at create,
charged on success and refunded on failure or cancellation.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mutoscope.accounts.plans import Plan
from mutoscope.db.models import UsagePeriod, UsageRecord, now
from mutoscope.errors import InvalidRequest, PermissionDenied, RateLimited

UNLIMITED = 1e18


def period_of(ts: int | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), tz=timezone.utc).strftime("%Y-%m")


class RateLimiter:
    """Sliding one-minute window per user, in this process (the embedded server is one process)."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, user_id: str, per_minute: int) -> None:
        t = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(user_id, deque())
            while q and q[0] <= t - 60:
                q.popleft()
            if len(q) >= per_minute:
                retry = max(1, int(q[0] + 60 - t) + 1)
                raise RateLimited(f"Rate limit reached: {per_minute} requests per minute on your plan. "
                                  f"Try again in {retry} s.", headers={"Retry-After": str(retry)})
            q.append(t)


def check_plan(plan: Plan, model: str, size: str, seconds: float) -> None:
    if not plan.allows_model(model):
        raise PermissionDenied(f"Your plan ({plan.name}) does not include the model '{model}'. "
                               f"Allowed: {', '.join(plan.models)}.", param="model", code="model_not_allowed")
    if not plan.allows_size(size):
        raise InvalidRequest(f"Your plan ({plan.name}) does not allow size '{size}'. Allowed: "
                             f"{', '.join(plan.sizes)}.", param="size", code="size_not_allowed")
    if plan.max_seconds is not None and seconds > plan.max_seconds:
        raise InvalidRequest(f"Your plan ({plan.name}) allows at most {plan.max_seconds:g} seconds per video.",
                             param="seconds", code="seconds_not_allowed")


def _ensure_period(session: Session, user_id: str, period: str) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(UsagePeriod).values(user_id=user_id, period=period, spent=0.0, reserved=0.0, active=0)
                    .on_conflict_do_nothing())


def reserve(session: Session, plan: Plan, user_id: str, video_id: str, model: str, seconds: float, *,
            slot: bool = True) -> UsageRecord:
    """Reserve budget and a concurrency slot for a new job, in the caller's transaction (not committed here).
    `slot=False`: the budget only (a batch's lines queue behind interactive jobs instead of filling the slots)."""
    period = period_of()
    cost = plan.cost(model, seconds)
    budget = plan.budget if plan.budget is not None else UNLIMITED
    _ensure_period(session, user_id, period)
    cond = [UsagePeriod.user_id == user_id, UsagePeriod.period == period,
            UsagePeriod.spent + UsagePeriod.reserved + cost <= budget]
    if slot:
        cond.append(UsagePeriod.active < plan.concurrent_jobs)
    res = session.execute(
        update(UsagePeriod).where(*cond)
        .values(reserved=UsagePeriod.reserved + cost, active=UsagePeriod.active + (1 if slot else 0)))
    if res.rowcount != 1:
        row = session.get(UsagePeriod, (user_id, period), populate_existing=True)
        session.rollback()
        if slot and row is not None and row.active >= plan.concurrent_jobs:
            raise RateLimited(f"Your plan ({plan.name}) runs at most {plan.concurrent_jobs} job(s) at once; "
                              "wait for one to finish.", code="concurrency_limit_exceeded",
                              headers={"Retry-After": "5"})
        left = max(0.0, budget - (row.spent + row.reserved)) if row else 0.0
        err = RateLimited(f"You exceeded your current quota: this video costs {cost:g} {plan.unit} and "
                          f"{left:g} are left this month on the {plan.name} plan.", code="insufficient_quota")
        err.type = "insufficient_quota"
        raise err
    record = UsageRecord(video_id=video_id, user_id=user_id, period=period, model=model, seconds=seconds,
                         amount=cost, unit=plan.unit, state="reserved", holds_slot=slot)
    session.add(record)
    return record


def settle(session: Session, video_id: str, charged: bool) -> None:
    """Charge (completed) or refund (failed, cancelled), in the caller's transaction: the status change that
    settles a job commits together with its charge. Idempotent: a record settles once."""
    state = "charged" if charged else "refunded"
    res = session.execute(update(UsageRecord).where(UsageRecord.video_id == video_id,
                                                    UsageRecord.state == "reserved")
                          .values(state=state, settled_at=now()))
    if res.rowcount == 1:
        rec = session.scalar(select(UsageRecord).where(UsageRecord.video_id == video_id))
        session.execute(update(UsagePeriod)
                        .where(UsagePeriod.user_id == rec.user_id, UsagePeriod.period == rec.period)
                        .values(reserved=UsagePeriod.reserved - rec.amount,
                                spent=UsagePeriod.spent + (rec.amount if charged else 0.0),
                                active=UsagePeriod.active - (0 if rec.holds_slot is False else 1)))



def usage(session: Session, plan: Plan, user_id: str) -> dict:
    period = period_of()
    row = session.get(UsagePeriod, (user_id, period))
    spent, reserved, active = (row.spent, row.reserved, row.active) if row else (0.0, 0.0, 0)
    budget = plan.budget
    return {"object": "usage", "plan": plan.name, "period": period, "unit": plan.unit, "budget": budget,
            "spent": spent, "reserved": reserved,
            "left": None if budget is None else max(0.0, budget - spent - reserved),
            "active_jobs": active, "concurrent_jobs": plan.concurrent_jobs,
            "requests_per_minute": plan.requests_per_minute, "priority": plan.priority}
