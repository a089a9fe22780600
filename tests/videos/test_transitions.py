"""The one module of status transitions, on a real migrated database (SQLite, and PostgreSQL where it
counts): each transition settles the budget and writes its outbox event in the same commit, leases fence
lost workers, and nothing else in the package writes a video's status."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from mutoscope.accounts.plans import Plan
from mutoscope.db.migrate import upgrade
from mutoscope.db.models import UsagePeriod, UsageRecord, User, Video, WebhookDelivery, WebhookEndpoint
from mutoscope.db.session import make_engine, make_sessionmaker
from mutoscope.videos import transitions

SRC = Path(__file__).resolve().parents[2] / "src" / "mutoscope"
PLAN = Plan(name="t", monthly_seconds=100, concurrent_jobs=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
    upgrade(url)
    return make_sessionmaker(make_engine(url))


@pytest.fixture
def owner(sessions) -> str:
    with sessions() as s:
        u = User(name="eileen")
        s.add(u)
        s.flush()
        s.add(WebhookEndpoint(owner_id=u.id, name="hook", url="https://example.com/hook", secret="whsec_x",
                              event_types=["video.completed", "video.failed"]))
        s.commit()
        return u.id


def _queue(sessions, owner: str, seconds: str = "4") -> str:
    with sessions() as s:
        v = Video(owner_id=owner, model="sora-2", prompt="p", size="64x64", seconds=seconds, params={"seed": 1})
        transitions.enqueue(s, v, PLAN, float(seconds))
        return v.id


def _state(sessions, video_id: str):
    with sessions() as s:
        v = s.scalar(select(Video).where(Video.id == video_id))
        rec = s.get(UsageRecord, video_id)
        period = s.scalar(select(UsagePeriod).where(UsagePeriod.user_id == v.owner_id))
        events = [d.event_type for d in s.scalars(select(WebhookDelivery))
                  if f'"id":"{video_id}"' in d.payload]
        return v, rec, period, events


def test_complete_charges_and_queues_the_event_in_one_commit(sessions, owner):
    vid = _queue(sessions, owner)
    with sessions() as s:
        claim = transitions.claim_next(s, "w1", lease_seconds=30)
    assert claim.video_id == vid and claim.attempt == 1
    with sessions() as s:
        assert transitions.complete(s, claim, resolved={"steps": 2}, retention_days=None)
    v, rec, period, events = _state(sessions, vid)
    assert (v.status, v.progress, v.assets_attempt, v.lease_owner) == ("completed", 100, 1, None)
    assert rec.state == "charged" and (period.spent, period.reserved, period.active) == (4.0, 0.0, 0)
    assert events == ["video.completed"]
    with sessions() as s:  # completing twice is refused and writes nothing
        assert not transitions.complete(s, claim, resolved=None, retention_days=None)
    assert _state(sessions, vid)[3] == ["video.completed"]


def test_fail_refunds_once_with_one_event(sessions, owner):
    vid = _queue(sessions, owner)
    with sessions() as s:
        claim = transitions.claim_next(s, "w1", 30)
    with sessions() as s:
        assert transitions.fail(s, vid, "boom", "it broke", claim=claim)
        assert not transitions.fail(s, vid, "boom", "again", claim=claim)
        assert not transitions.fail(s, vid, "boom", "again")
    v, rec, period, events = _state(sessions, vid)
    assert (v.status, v.error_code) == ("failed", "boom")
    assert rec.state == "refunded" and (period.spent, period.reserved, period.active) == (0.0, 0.0, 0)
    assert events == ["video.failed"]


def test_a_worker_whose_lease_was_taken_back_cannot_finish(sessions, owner):
    vid = _queue(sessions, owner)
    with sessions() as s:
        zombie = transitions.claim_next(s, "zombie", lease_seconds=0.01)
    time.sleep(0.05)
    with sessions() as s:
        requeued, failed = transitions.reclaim(s, max_attempts=3)
    assert requeued == [vid] and failed == []
    with sessions() as s:
        assert not transitions.renew(s, zombie, 30)
        live = transitions.claim_next(s, "live", 30)
    assert live.attempt == 2
    with sessions() as s:
        assert not transitions.complete(s, zombie, resolved=None, retention_days=None)
        assert not transitions.fail(s, vid, "late", "zombie's failure", claim=zombie)
        assert transitions.complete(s, live, resolved=None, retention_days=None)
    v, rec, period, events = _state(sessions, vid)
    assert (v.status, v.assets_attempt) == ("completed", 2)
    assert rec.state == "charged" and period.spent == 4.0 and events == ["video.completed"]


def test_reclaim_after_max_attempts_fails_worker_lost_refunded(sessions, owner):
    vid = _queue(sessions, owner)
    for attempt in (1, 2):
        with sessions() as s:
            claim = transitions.claim_next(s, f"w{attempt}", lease_seconds=0.01)
        assert claim.attempt == attempt
        time.sleep(0.05)
        with sessions() as s:
            requeued, failed = transitions.reclaim(s, max_attempts=2)
        assert (requeued, failed) == (([vid], []) if attempt == 1 else ([], [vid]))
    v, rec, period, events = _state(sessions, vid)
    assert (v.status, v.error_code) == ("failed", transitions.WORKER_LOST)
    assert rec.state == "refunded" and (period.reserved, period.active) == (0.0, 0)
    assert events == ["video.failed"]


def test_live_lease_is_not_reclaimed_and_release_hands_back(sessions, owner):
    vid = _queue(sessions, owner)
    with sessions() as s:
        claim = transitions.claim_next(s, "w1", lease_seconds=30)
        assert transitions.reclaim(s, max_attempts=3) == ([], [])
        assert transitions.renew(s, claim, 30, progress=40)
        assert transitions.release(s, claim)
    v, rec, _, events = _state(sessions, vid)
    assert (v.status, v.attempts, v.lease_owner) == ("queued", 0, None)
    assert rec.state == "reserved" and events == []


def test_a_dead_local_holder_is_reclaimed_without_waiting(sessions, owner):
    import subprocess
    import sys

    vid = _queue(sessions, owner)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = transitions.new_worker_id("inprocess").split(":")
    dead[2] = str(proc.pid)
    with sessions() as s:
        transitions.claim_next(s, ":".join(dead), lease_seconds=3600)
        requeued, _ = transitions.reclaim(s, 3, dead_worker=transitions.local_holder_dead)
    assert requeued == [vid]


def test_delete_of_a_queued_video_fails_it_refunded_without_an_event(sessions, owner):
    vid = _queue(sessions, owner)
    with sessions() as s:
        assert transitions.delete(s, s.scalar(select(Video).where(Video.id == vid))) == "failed"
    v, rec, period, events = _state(sessions, vid)
    assert (v.status, v.error_code) == ("failed", "cancelled") and v.deleted_at is not None
    assert rec.state == "refunded" and period.active == 0 and events == []


def _status_writes(path: Path) -> list[str]:
    """Places that write a video's status: ORM assignments, Core/ORM updates and inserts with a status."""
    found = []
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for t in ast.walk(target):
                    if isinstance(t, ast.Attribute) and t.attr == "status" and not _is_other_table(path, t):
                        found.append(f"{path.name}:{node.lineno}")
        if isinstance(node, ast.Call):
            src = ast.unparse(node.func)
            keywords = {k.arg for k in node.keywords}
            if src == "Video" and "status" in keywords:
                found.append(f"{path.name}:{node.lineno}")
            if src.endswith(".values") and "update(Video)" in src and "status" in keywords:
                found.append(f"{path.name}:{node.lineno}")
            if src.endswith(".update") and "query(Video)" in src and node.args and \
                    isinstance(node.args[0], ast.Dict) and any(
                        isinstance(k, ast.Constant) and k.value == "status" for k in node.args[0].keys):
                found.append(f"{path.name}:{node.lineno}")
    return found


# Cameos, exports and the web app's error type have statuses of their own.
OTHER_STATUSES = {("likeness", "records.py", "c"), ("likeness", "records.py", "cameo"), ("exports", "queue.py", "e"), ("web", "forms.py", "self")}


def _is_other_table(path: Path, node: ast.Attribute) -> bool:
    return (*path.parts[-2:], ast.unparse(node.value)) in OTHER_STATUSES


def test_nothing_but_transitions_writes_a_video_status():
    offenders = []
    for path in SRC.rglob("*.py"):
        if path == SRC / "videos" / "transitions.py":
            continue
        offenders += _status_writes(path)
    assert offenders == []


def test_the_status_check_finds_a_write(tmp_path):
    sample = tmp_path / "writer.py"
    sample.write_text("def f(s, v):\n    v.status = 'completed'\n    s.execute(update(Video).values(status='x'))\n")
    assert len(_status_writes(sample)) == 2


def test_a_deleted_job_is_neither_handed_back_nor_re_queued(sessions, owner):
    """Deleted while running: a shutting-down worker fails it instead of handing it back, and a reclaim of
    a lost worker's deleted job fails it too — refunded, never left queued-and-deleted holding its budget."""
    a, b = _queue(sessions, owner), _queue(sessions, owner)
    with sessions() as s:
        ca = transitions.claim_next(s, "w1", 30)
        cb = transitions.claim_next(s, "w2", lease_seconds=0.01)
        for vid in (a, b):
            transitions.delete(s, s.scalar(select(Video).where(Video.id == vid)))
        assert not transitions.release(s, ca)
    time.sleep(0.05)
    with sessions() as s:
        assert transitions.reclaim(s, 3) == ([], [cb.video_id])
    for vid in (a, b):
        v, rec, period, events = _state(sessions, vid)
        assert (v.status, v.error_code, rec.state, events) == ("failed", "cancelled", "refunded", [])
    assert period.active == 0 and period.reserved == 0
