"""A claimed job run in this process (fast tier): `run_video_job` on a tiny model, from the queued row to the
published files, and a job whose stored settings cannot run failing cleanly. The same code runs inside
`serve`, `mutoscope worker` and a Celery worker; the live tests drive it through those."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mutoscope.accounts.plans import Plan
from mutoscope.config import Settings
from mutoscope.db.migrate import upgrade
from mutoscope.db.models import UsageRecord, User, Video
from mutoscope.db.session import make_engine, make_sessionmaker
from mutoscope.jobs.context import JobContext
from mutoscope.jobs.generation import run_video_job
from mutoscope.storage import LocalStorage, keys
from mutoscope.videos import transitions


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory):
    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.registry import load_registry

    return DiffusersEngine(load_registry(), tmp_path_factory.mktemp("weights"), device="cpu")


@pytest.fixture
def ctx(tmp_path: Path, tiny_engine) -> JobContext:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    upgrade(settings.db_url)
    return JobContext(settings=settings, sessions=make_sessionmaker(make_engine(settings.db_url)),
                      engine=tiny_engine, storage=LocalStorage(settings.assets_dir))


def _queue(ctx: JobContext, params: dict) -> str:
    with ctx.sessions() as s:
        u = User(name="ada")
        s.add(u)
        s.flush()
        v = Video(owner_id=u.id, model="tiny-ltx2", prompt="a lantern in the fog", size="512x288", seconds="4",
                  params=params)
        transitions.enqueue(s, v, Plan(name="t", concurrent_jobs=2), 4.0)
        return v.id


def _run(ctx: JobContext) -> Video:
    with ctx.sessions() as s:
        claim = transitions.claim_next(s, "w1", ctx.settings.lease_seconds)
    run_video_job(ctx, claim)
    with ctx.sessions() as s:
        return s.scalar(select(Video).where(Video.id == claim.video_id))


def test_a_claimed_job_renders_and_publishes_its_files(ctx):
    vid = _queue(ctx, {"seed": 3, "num_inference_steps": 2})
    v = _run(ctx)
    assert (v.id, v.status, v.progress, v.error_code) == (vid, "completed", 100, None)
    assert v.lease_owner is None and v.assets_attempt == 1 and v.resolved
    with ctx.storage.open(keys.published_key(v, "video")) as f:
        assert f.read(12)[4:8] == b"ftyp"
    for variant in ("thumbnail", "spritesheet"):
        assert ctx.storage.size(keys.published_key(v, variant)) > 0
    with ctx.sessions() as s:
        assert s.scalar(select(UsageRecord.state).where(UsageRecord.video_id == vid)) == "charged"


def test_stored_settings_that_cannot_run_fail_the_job_and_refund_it(ctx):
    vid = _queue(ctx, {"num_inference_steps": 2})  # no seed: a row no front end writes
    v = _run(ctx)
    assert (v.id, v.status, v.error_code) == (vid, "failed", "invalid_job")
    assert "Traceback" not in (v.error_message or "")
    with ctx.sessions() as s:
        assert s.scalar(select(UsageRecord.state).where(UsageRecord.video_id == vid)) == "refunded"
