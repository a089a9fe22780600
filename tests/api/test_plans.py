"""Plans, quotas, priority and lifecycle through the openai SDK against a live server."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from tests.conftest import LiveServer, PARTIAL_MODEL, partial_weights_models_file, serve_live, wait_for

FAST = {"num_inference_steps": 2}
PLANS = """
[plans.tiny]
models = ["sora-2"]
sizes = ["288x512"]
max_seconds = 4
monthly_seconds = 40
concurrent_jobs = 100
requests_per_minute = 1000
priority = 0

[plans.solo]
models = ["sora-2", "ltx-2", "half-pulled"]
concurrent_jobs = 1
requests_per_minute = 1000
priority = 0

[plans.slow]
models = ["*"]
requests_per_minute = 3
concurrent_jobs = 100
priority = 0

[plans.low]
models = ["*"]
concurrent_jobs = 10
requests_per_minute = 1000
priority = 0

[plans.high]
models = ["*"]
concurrent_jobs = 10
requests_per_minute = 1000
priority = 10

[plans.ephemeral]
models = ["*"]
concurrent_jobs = 10
requests_per_minute = 1000
retention_days = 0.00005  # about 4 seconds
visible_watermark = true

[plans.noext]
models = ["*"]
concurrent_jobs = 10
requests_per_minute = 1000
extensions = false

[plans.unlimited]
models = ["*"]
concurrent_jobs = 1000
requests_per_minute = 100000
priority = 100
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("plans")
    (d / "plans.toml").write_text(PLANS)
    yield from serve_live(tmp_path_factory, "plans", root=d, MUTOSCOPE_PLANS_FILE=str(d / "plans.toml"),
                          MUTOSCOPE_DEFAULT_PLAN="low", MUTOSCOPE_MODELS_FILE=str(partial_weights_models_file(d)))


def make_user(srv, name: str, plan: str) -> openai.OpenAI:
    with srv.http() as h:
        r = h.post("/v1/admin/users", json={"name": name, "plan": plan})
    assert r.status_code == 200, r.text
    return srv.client(r.json()["api_key"])


def usage(client) -> dict:
    return client.get("/usage", cast_to=object)


def test_members_cannot_use_the_admin_api(srv):
    member = make_user(srv, "member1", "low")
    with pytest.raises(openai.NotFoundError):
        member.get("/admin/users", cast_to=object)
    with pytest.raises(openai.NotFoundError):
        member.get("/admin/keys", cast_to=object)


def test_admin_api_manages_keys(srv):
    owner = srv.client()
    temp = make_user(srv, "keyholder", "low")
    assert temp.videos.list() is not None
    keys = owner.get("/admin/keys", cast_to=object)["data"]
    mine = next(k for k in keys if k["user"] == "keyholder")
    assert temp.api_key[:12] == mine["prefix"] and temp.api_key not in str(keys)  # hashes only, prefix shown
    owner.delete(f"/admin/keys/{mine['id']}", cast_to=object)
    with pytest.raises(openai.AuthenticationError):
        temp.videos.list()


def test_plan_limits_name_the_param(srv):
    c = make_user(srv, "limits", "tiny")
    with pytest.raises(openai.PermissionDeniedError) as e:
        c.videos.create(prompt="x", model="sora-2-pro")
    assert e.value.param == "model" and e.value.code == "model_not_allowed"
    with pytest.raises(openai.BadRequestError) as e:
        c.videos.create(prompt="x", size="1280x720")
    assert e.value.param == "size"
    with pytest.raises(openai.BadRequestError) as e:
        c.videos.create(prompt="x", seconds="8")
    assert e.value.param == "seconds"
    assert usage(c)["reserved"] == 0  # refused requests reserve nothing


@pytest.fixture
def pg_srv(tmp_path, pg_url):
    (tmp_path / "plans.toml").write_text(PLANS)
    # API only: what is tested here is admission racing on PostgreSQL; the sqlite case runs its jobs.
    s = LiveServer(tmp_path / "pgdata", "--no-worker", MUTOSCOPE_PLANS_FILE=str(tmp_path / "plans.toml"),
                   MUTOSCOPE_DEFAULT_PLAN="low", MUTOSCOPE_DATABASE_URL=pg_url).start()
    yield s
    s.stop()


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_fifty_simultaneous_creates_against_ten_admit_exactly_ten(request, db):
    srv = request.getfixturevalue("srv" if db == "sqlite" else "pg_srv")
    c = make_user(srv, f"racer_{db}", "tiny")  # 40 video-seconds = ten 4 s videos
    results: list = []
    barrier = threading.Barrier(50)

    def one():
        barrier.wait()
        try:
            results.append(c.videos.create(prompt="race", extra_body={"num_inference_steps": 50}).id)
        except openai.RateLimitError as e:
            results.append(e)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    admitted = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert len(admitted) == 10 and len(refused) == 40
    assert all(e.code == "insufficient_quota" and e.status_code == 429 for e in refused)
    u = usage(c)
    assert (u["reserved"], u["spent"], u["left"]) == (40, 0, 0)
    # Cancelling refunds: delete them all (queued ones never run, a running one stops).
    for vid in admitted:
        c.videos.delete(vid)
    wait_for(lambda: usage(c)["reserved"] == 0, timeout=60)
    assert usage(c)["left"] == 40 and usage(c)["active_jobs"] == 0


def test_rate_limit_has_retry_after(srv):
    c = make_user(srv, "hasty", "slow")
    ids = [c.videos.create(prompt=f"r{i}", extra_body=FAST).id for i in range(3)]
    with pytest.raises(openai.RateLimitError) as e:
        c.videos.create(prompt="one too many")
    assert e.value.code == "rate_limit_exceeded" and int(e.value.response.headers["retry-after"]) >= 1
    for vid in ids:
        c.videos.delete(vid)


def test_concurrency_limit_then_charge_and_refund(srv):
    c = make_user(srv, "solo", "solo")
    first = c.videos.create(prompt="one at a time", extra_body=FAST)
    with pytest.raises(openai.RateLimitError) as e:
        c.videos.create(prompt="second")
    assert e.value.code == "concurrency_limit_exceeded" and e.value.response.headers["retry-after"]
    assert c.videos.poll(first.id).status == "completed"
    u = usage(c)
    assert (u["spent"], u["reserved"], u["active_jobs"]) == (4, 0, 0)
    # A model without weights is refused before anything is reserved.
    with pytest.raises(openai.BadRequestError) as e:
        c.videos.create(prompt="not installed", model="ltx-2")
    assert e.value.code == "model_not_available"
    assert (usage(c)["reserved"], usage(c)["active_jobs"]) == (0, 0)
    # One whose weights turn out broken in the worker is admitted, fails, and is refunded.
    failed = c.videos.create_and_poll(prompt="no weights", model=PARTIAL_MODEL)
    assert failed.status == "failed" and failed.error.code == "model_not_available"
    u = usage(c)
    assert (u["spent"], u["reserved"], u["active_jobs"]) == (4, 0, 0)  # the failure was refunded


def test_priority_and_fairness(srv):
    owner = srv.client()
    low_a, low_b = make_user(srv, "low_a", "low"), make_user(srv, "low_b", "low")
    high = make_user(srv, "high1", "high")
    blocker = owner.videos.create(prompt="blocker", extra_body={"num_inference_steps": 400})
    wait_for(lambda: owner.videos.retrieve(blocker.id).status == "in_progress", timeout=60)
    a_jobs = [low_a.videos.create(prompt=f"a{i}", extra_body=FAST).id for i in range(2)]
    b_job = low_b.videos.create(prompt="b", extra_body=FAST).id
    h_job = high.videos.create(prompt="h", extra_body=FAST).id
    owner.videos.delete(blocker.id)
    order: list[str] = []
    everyone = {h_job: high, b_job: low_b, **{a: low_a for a in a_jobs}}

    def record():
        for vid, cl in everyone.items():
            if vid not in order and cl.videos.retrieve(vid).status != "queued":
                order.append(vid)
        return len(order) == len(everyone)

    wait_for(record, timeout=300, interval=0.1)
    assert order[0] == h_job  # the higher plan first
    assert order.index(b_job) < order.index(a_jobs[1])  # b's one job is not starved by a's queue
    for vid, cl in everyone.items():
        cl.videos.poll(vid)


def test_deprecation_headers_then_410_after_shutdown(srv):
    owner = srv.client()
    done = owner.videos.create_and_poll(prompt="made before the shutdown", model="sora-2-2025-10-06",
                                        extra_body=FAST)
    now = int(time.time())
    with srv.http() as h:
        r = h.post("/v1/admin/models/sora-2-2025-10-06/deprecation",
                   json={"shutdown_date": now + 86400, "replacement": "sora-2"})
        assert r.status_code == 200, r.text
    raw = owner.videos.with_raw_response.create(prompt="still works", model="sora-2-2025-10-06", extra_body=FAST)
    assert raw.headers["deprecation"] == f"@{r.json()['deprecated_at']}"
    assert raw.headers["sunset"].endswith("GMT")
    assert raw.headers["link"] == '</v1/models/sora-2>; rel="successor-version"'
    m = owner.models.retrieve("sora-2-2025-10-06")
    assert m.status == "deprecated" and m.replacement == "sora-2" and m.shutdown_date == now + 86400
    owner.videos.delete(raw.parse().id)
    with srv.http() as h:
        h.post("/v1/admin/models/sora-2-2025-10-06/deprecation",
               json={"deprecation_date": now - 100, "shutdown_date": now - 10, "replacement": "sora-2"})
    with pytest.raises(openai.APIStatusError) as e:
        owner.videos.create(prompt="too late", model="sora-2-2025-10-06")
    assert e.value.status_code == 410 and "sora-2" in e.value.message and e.value.param == "model"
    assert owner.videos.download_content(done.id).read()[4:8] == b"ftyp"  # existing work stays


def test_sunset_phases(tmp_path):
    s = LiveServer(tmp_path / "sunset").start()
    try:
        c = s.client()
        done = c.videos.create_and_poll(prompt="made before the end", extra_body=FAST)
        now = int(time.time())

        def schedule(notice, no_new, export_only, deletion):
            with s.http() as h:
                r = h.post("/v1/admin/service/sunset", json={
                    "notice_at": now + notice, "no_new_generations_at": now + no_new,
                    "export_only_at": now + export_only, "deletion_at": now + deletion, "message": "closing"})
                assert r.status_code == 200, r.text
            time.sleep(2.1)  # the phase is cached for two seconds

        schedule(-10, 1000, 2000, 3000)
        service = httpx.get(s.base_url + "/v1/service").json()
        assert service["phase"] == "notice" and service["message"] == "closing"
        raw = c.videos.with_raw_response.retrieve(done.id)
        assert raw.headers["mutoscope-service-phase"] == "notice" and raw.headers["sunset"]
        assert c.videos.create(prompt="still allowed during the notice", extra_body=FAST)

        schedule(-20, -10, 2000, 3000)
        with pytest.raises(openai.PermissionDeniedError) as e:
            c.videos.create(prompt="no more")
        assert e.value.code == "service_sunset"
        assert c.videos.download_content(done.id).read()[4:8] == b"ftyp"

        schedule(-30, -20, -10, 3000)
        assert httpx.get(s.base_url + "/v1/service").json()["phase"] == "export_only"
        assert c.videos.list().data  # reading and downloading go on

        # Deletion phase: the owner was offered an export seconds ago, not for the whole window.
        schedule(-40, -30, -20, -1)
        out = s.cli("service", "purge", "--dry-run").stdout
        assert "0 users" in out
    finally:
        s.stop()


def test_retention_expires_assets(srv):
    c = make_user(srv, "ephemeral1", "ephemeral")
    v = c.videos.create_and_poll(prompt="here today", extra_body=FAST)
    assert v.status == "completed" and v.expires_at is not None and 3 <= v.expires_at - v.completed_at <= 5
    assert c.videos.download_content(v.id).read()[4:8] == b"ftyp"
    time.sleep(max(0.0, v.expires_at - time.time()) + 1.1)
    with pytest.raises(openai.APIStatusError) as e:
        c.videos.download_content(v.id)
    assert e.value.status_code == 410 and e.value.code == "video_expired"
    assert c.videos.retrieve(v.id).status == "completed"  # the record stays; the assets went


def test_a_plan_without_extensions_refuses_them(srv):
    """`extensions = false` is enforced on POST /v1/videos/extensions, before the source is even looked up
    (so the answer says nothing about which video ids exist)."""
    no = make_user(srv, "noext", "noext")
    yes = make_user(srv, "withext", "low")
    body = {"video": {"id": "video_000000000000000000000000"}, "prompt": "more", "seconds": "4"}
    with pytest.raises(openai.PermissionDeniedError) as e:
        no.post("/videos/extensions", body=body, cast_to=object)
    assert e.value.code == "plan_excludes_extensions" and e.value.param == "video"
    with pytest.raises(openai.NotFoundError):  # the same request on a plan with extensions reaches the lookup
        yes.post("/videos/extensions", body=body, cast_to=object)
