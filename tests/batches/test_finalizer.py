"""A batch's queue place, budget and end, on a real migrated database (SQLite and PostgreSQL): its lines wait
behind interactive jobs of the same plan without taking the plan's slots, and a batch finishes, expires or is
cancelled exactly once however many processes settle it at the same time."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from mutoscope.accounts.plans import Plan
from mutoscope.batches import finalizer
from mutoscope.db.migrate import upgrade
from mutoscope.db.models import (Batch, File, UsagePeriod, UsageRecord, User, Video, WebhookDelivery, WebhookEndpoint,
                                 now)
from mutoscope.db.session import make_engine, make_sessionmaker
from mutoscope.storage.local import LocalStorage
from mutoscope.videos import transitions

PLAN = Plan(name="t", monthly_seconds=100, concurrent_jobs=1, priority=5)
HIGH = Plan(name="h", monthly_seconds=100, concurrent_jobs=1, priority=9)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    return make_sessionmaker(make_engine(url))


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "store")


def _user(sessions, name: str) -> str:
    with sessions() as s:
        u = User(name=name)
        s.add(u)
        s.flush()
        s.add(WebhookEndpoint(owner_id=u.id, name="hook", url="https://example.com/hook", secret="whsec_x",
                              event_types=list(finalizer_events())))
        s.commit()
        return u.id


def finalizer_events():
    return ("batch.completed", "batch.failed", "batch.expired", "batch.cancelled", "video.failed")


def _batch(sessions, storage, owner: str, custom_ids: list[str], *, expires_in: int = 3600) -> str:
    data = "".join(json.dumps({"custom_id": c, "method": "POST", "url": "/v1/videos", "body": {}}) + "\n"
                   for c in custom_ids).encode()
    with sessions() as s:
        f = File(owner_id=owner, filename="in.jsonl", purpose="batch", bytes=len(data), storage_key="in/x")
        s.add(f)
        s.flush()
        storage.put_bytes(f"in/{f.id}", data)
        f.storage_key = f"in/{f.id}"
        b = Batch(owner_id=owner, status="in_progress", endpoint="/v1/videos", input_file_id=f.id,
                  completion_window="24h", total=len(custom_ids), expires_at=now() + expires_in, in_progress_at=now())
        s.add(b)
        s.commit()
        return b.id


def _queue(sessions, owner: str, plan: Plan = PLAN, batch_id: str | None = None, custom_id: str | None = None) -> str:
    with sessions() as s:
        v = Video(owner_id=owner, model="sora-2", prompt="p", size="64x64", seconds="4", params={"seed": 1},
                  priority=plan.priority, batch_id=batch_id, batch_custom_id=custom_id)
        transitions.enqueue(s, v, plan, 4.0)
        return v.id


def _events(sessions, kind: str) -> list[str]:
    with sessions() as s:
        return [json.loads(d.payload)["data"]["id"] for d in s.scalars(select(WebhookDelivery))
                if d.event_type == kind]


def test_batch_lines_wait_behind_interactive_jobs_of_their_plan_and_take_no_slot(sessions, storage):
    eileen, bob = _user(sessions, "eileen"), _user(sessions, "bob")
    b = _batch(sessions, storage, eileen, ["a", "b"])
    lines = [_queue(sessions, eileen, batch_id=b, custom_id=c) for c in ("a", "b")]
    # Two batch lines queued and the plan runs one job at once: an interactive create is still admitted.
    mine = _queue(sessions, eileen)
    low = _queue(sessions, bob)
    high_line = _queue(sessions, _user(sessions, "hana"), HIGH, batch_id=_batch(sessions, storage, bob, ["h"]),
                       custom_id="h")
    with sessions() as s:
        order = [transitions.claim_next(s, f"w{i}", 60).video_id for i in range(5)]
    # A higher plan's batch line still goes before a lower plan's interactive job.
    assert order[0] == high_line and set(order[1:3]) == {mine, low} and order[3:] == lines
    with sessions() as s:
        period = s.scalar(select(UsagePeriod).where(UsagePeriod.user_id == eileen))
        assert period.active == 1 and period.reserved == 12
        slots = dict(s.execute(select(UsageRecord.video_id, UsageRecord.holds_slot)
                               .where(UsageRecord.user_id == eileen)).all())
    assert slots == {lines[0]: False, lines[1]: False, mine: True}
    with sessions() as s:
        for vid in lines:
            transitions.fail(s, vid, "x", "y")
        transitions.fail(s, mine, "x", "y")
        period = s.scalar(select(UsagePeriod).where(UsagePeriod.user_id == eileen))
        assert (period.active, period.reserved, period.spent) == (0, 0, 0)


def test_a_batch_finishes_once_however_many_settle_it(sessions, storage):
    owner = _user(sessions, "eileen")
    b = _batch(sessions, storage, owner, ["a", "b"])
    a, c = (_queue(sessions, owner, batch_id=b, custom_id=x) for x in ("a", "b"))
    finalizer.sweep(sessions, storage)
    with sessions() as s:
        assert s.scalar(select(Batch.status).where(Batch.id == b)) == "in_progress"
        claim = transitions.claim_next(s, "w", 60)
        assert transitions.complete(s, claim, resolved={}, retention_days=None)
        transitions.fail(s, c, "boom", "it broke")
    threads = [threading.Thread(target=finalizer.sweep, args=(sessions, storage)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finalizer.sweep(sessions, storage)
    assert _events(sessions, "batch.completed") == [b]
    with sessions() as s:
        batch = s.scalar(select(Batch).where(Batch.id == b))
        obj = finalizer.to_batch_object(s, batch)
        assert obj.status == "completed" and obj.finalizing_at and obj.completed_at
        assert obj.request_counts.model_dump() == {"completed": 1, "failed": 1, "total": 2}
        files = {f.id: f for f in s.scalars(select(File).where(File.purpose == "batch_output"))}
        assert set(files) == {batch.output_file_id, batch.error_file_id}
    with storage.open(files[batch.output_file_id].storage_key) as f:
        [out] = [json.loads(x) for x in f.read().splitlines()]
    with storage.open(files[batch.error_file_id].storage_key) as f:
        [err] = [json.loads(x) for x in f.read().splitlines()]
    assert out["custom_id"] == "a" and out["response"]["body"]["id"] == a and out["error"] is None
    assert err["custom_id"] == "b" and err["error"] == {"code": "boom", "message": "it broke"}
    assert out["id"].startswith("batch_req_") and out["response"]["request_id"].startswith("req_")


def test_a_batch_past_its_window_expires_its_queued_lines_refunded(sessions, storage):
    owner = _user(sessions, "eileen")
    b = _batch(sessions, storage, owner, ["a", "b"], expires_in=-1)
    running, queued = (_queue(sessions, owner, batch_id=b, custom_id=x) for x in ("a", "b"))
    with sessions() as s:
        claim = transitions.claim_next(s, "w", 60)
    assert claim.video_id == running
    finalizer.sweep(sessions, storage)
    with sessions() as s:
        assert s.scalar(select(Video.status).where(Video.id == queued)) == "failed"
        assert s.get(UsageRecord, queued).state == "refunded"
        # The running line finishes first: the batch waits for it.
        assert s.scalar(select(Batch.status).where(Batch.id == b)) == "in_progress"
        assert transitions.complete(s, claim, resolved={}, retention_days=None)
    finalizer.sweep(sessions, storage)
    finalizer.sweep(sessions, storage)
    assert _events(sessions, "batch.expired") == [b]
    with sessions() as s:
        obj = finalizer.to_batch_object(s, s.scalar(select(Batch).where(Batch.id == b)))
        assert obj.status == "expired" and obj.expired_at
        assert obj.request_counts.model_dump() == {"completed": 1, "failed": 1, "total": 2}
