"""Jobs survive restarts; the same API runs on PostgreSQL."""

from __future__ import annotations

from tests.conftest import LiveServer, wait_for

FAST = {"num_inference_steps": 2}


def test_restart_mid_queue_runs_everything(tmp_path):
    srv = LiveServer(tmp_path / "data").start()
    try:
        client = srv.client()
        first = client.videos.create(prompt="interrupted", extra_body={"num_inference_steps": 8})
        rest = [client.videos.create(prompt="queued behind it", extra_body=FAST).id]
        wait_for(lambda: client.videos.retrieve(first.id).progress > 0, timeout=120)
        srv.stop(kill=True)  # a crash: no graceful shutdown
        srv.start()
        client = srv.client()
        # The interrupted job is re-run from the start, never left in_progress forever.
        assert client.videos.retrieve(first.id).status in ("queued", "in_progress")
        for vid in [first.id, *rest]:
            assert client.videos.poll(vid).status == "completed"
        statuses = {v.id: v.status for v in client.videos.list()}
        assert set(statuses) == {first.id, *rest} and set(statuses.values()) == {"completed"}
    finally:
        srv.stop()


def test_videos_api_on_postgresql(tmp_path, pg_url):
    srv = LiveServer(tmp_path / "pg", MUTOSCOPE_DATABASE_URL=pg_url).start()
    try:
        client = srv.client()
        video = client.videos.create_and_poll(prompt="on postgres", extra_body=FAST)
        assert video.status == "completed", video.error
        assert client.videos.download_content(video.id).read()[4:8] == b"ftyp"
        more = [client.videos.create(prompt=f"pg {i}", extra_body=FAST).id for i in range(2)]
        page = client.videos.list(limit=2)
        assert [v.id for v in page.data] == more[::-1] and page.has_more
        assert client.videos.delete(more[0]).deleted
        for vid in more[1:]:
            assert client.videos.poll(vid).status == "completed"
    finally:
        srv.stop()


def test_a_poison_row_fails_alone_and_the_worker_goes_on(server, client):
    """A queued row whose stored settings cannot even be read (what a hostile import once could write)
    fails that job, refunded, and the worker thread lives on to run the next one."""
    from sqlalchemy import select

    from mutoscope.accounts.plans import Plan
    from mutoscope.db.models import UsageRecord, User, Video
    from mutoscope.db.session import make_engine, make_sessionmaker
    from mutoscope.videos import transitions

    sessions = make_sessionmaker(make_engine(f"sqlite:///{server.data_dir / 'mutoscope.db'}"))
    with sessions() as s:
        owner = s.scalar(select(User).where(User.role == "owner"))
        poison = Video(owner_id=owner.id, model="sora-2", prompt="poison", size="axb", seconds="4",
                       params={"seed": "not a number"})
        transitions.enqueue(s, poison, Plan(name="t", concurrent_jobs=100), 4.0)
        poison_id = poison.id
    after = client.videos.create(prompt="after the poison", extra_body=FAST)
    failed = client.videos.poll(poison_id, poll_interval_ms=200)
    assert failed.status == "failed" and failed.error.code == "invalid_job", failed.error
    assert client.videos.poll(after.id).status == "completed"
    with sessions() as s:
        assert s.get(UsageRecord, poison_id).state == "refunded"
