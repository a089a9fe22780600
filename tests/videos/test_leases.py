"""Leases against a real database outage: a worker that cannot renew for a whole lease knows it lost the job,
and the job is taken back once the database returns. The outage is real: the test's own PostgreSQL database
refuses connections and its sessions are terminated."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
from sqlalchemy import select

from mutoscope.accounts.plans import Plan
from mutoscope.config import Settings
from mutoscope.db.migrate import upgrade
from mutoscope.db.models import User, Video
from mutoscope.db.session import make_engine, make_sessionmaker
from mutoscope.jobs.context import JobContext
from mutoscope.jobs.generation import LeaseKeeper
from mutoscope.storage import LocalStorage
from mutoscope.videos import transitions


def _admin(pg_url: str) -> str:
    return pg_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


def test_a_worker_cut_off_from_the_database_loses_its_lease_and_the_job_is_taken_back(pg_url, tmp_path: Path):
    upgrade(pg_url)
    sessions = make_sessionmaker(make_engine(pg_url))
    with sessions() as s:
        u = User(name="eileen")
        s.add(u)
        s.flush()
        v = Video(owner_id=u.id, model="sora-2", prompt="p", size="64x64", seconds="4", params={"seed": 1})
        transitions.enqueue(s, v, Plan(name="t", concurrent_jobs=5), 4.0)
        vid = v.id
    settings = Settings(data_dir=tmp_path, lease_seconds=1.0)
    ctx = JobContext(settings=settings, sessions=sessions, engine=None, storage=LocalStorage(tmp_path / "assets"))
    with sessions() as s:
        claim = transitions.claim_next(s, "w1", settings.lease_seconds)

    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(_admin(pg_url), autocommit=True) as admin, LeaseKeeper(ctx, claim) as keeper:
        time.sleep(0.6)
        assert not keeper.lost.is_set()  # renewing fine while the database is there
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            deadline = time.time() + 10
            while not keeper.lost.is_set() and time.time() < deadline:
                time.sleep(0.1)
            assert keeper.lost.is_set()  # a whole lease without a renewal: the worker stops, writes nothing
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    sessions.kw["bind"].dispose()
    with sessions() as s:
        requeued, failed = transitions.reclaim(s, max_attempts=3)
        assert requeued == [vid] and failed == []
        assert not transitions.complete(s, claim, resolved=None, retention_days=None)  # the old holder is fenced
        assert s.scalar(select(Video.status).where(Video.id == vid)) == "queued"
