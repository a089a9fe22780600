"""Webhooks: signed video.completed / video.failed events, verified with the openai SDK's own checker, and an
outbound boundary that one bad endpoint cannot break.

Most tests use `hooks`, a server whose allow-list (MUTOSCOPE_OUTBOUND_ALLOW) opens 127.0.0.1 so the
receivers here can run on loopback. Before serving, it is given the rows an older server left behind:
endpoints stored before URLs were validated (`http://[::1`, the metadata service) and a signing secret in
clear. The default `server` shows what a default install refuses.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time

import openai
import pytest

from tests.conftest import (
    PARTIAL_MODEL,
    LiveServer,
    free_port,
    partial_weights_models_file,
    wait_for,
)
from tests.hooks import Receiver

FAST = {"num_inference_steps": 2}
EVENTS = ["video.completed", "video.failed"]
LEGACY_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQyNDI="
REFUSED = ["http://[::1", "http://169.254.169.254/latest/meta-data/", "http://localhost:6379", "http://[::1]:5432/",
           "http://10.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/",
           "http://user:pw@example.com/"]


def _db(srv: LiveServer) -> sqlite3.Connection:
    return sqlite3.connect(srv.data_dir / "mutoscope.db", timeout=30)


def _insert_endpoint(db: sqlite3.Connection, owner_id: str, endpoint_id: str, url: str, secret: str) -> None:
    db.execute("INSERT INTO webhook_endpoints (id, owner_id, name, url, event_types, secret, created_at, updated_at)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (endpoint_id, owner_id, endpoint_id, url, json.dumps(EVENTS), secret, int(time.time()), None))


@pytest.fixture(scope="module")
def legacy_receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def hooks(tmp_path_factory, legacy_receiver):
    root = tmp_path_factory.mktemp("hooks")
    srv = LiveServer(root / "data", MUTOSCOPE_OUTBOUND_ALLOW='["127.0.0.1"]',
                     MUTOSCOPE_MODELS_FILE=str(partial_weights_models_file(root))).start()
    srv.stop()
    with _db(srv) as db:  # what a server from before validation and sealing left in its database
        owner = db.execute("SELECT id FROM users WHERE role = 'owner'").fetchone()[0]
        _insert_endpoint(db, owner, "we_legacy_bad_url", "http://[::1", LEGACY_SECRET)
        _insert_endpoint(db, owner, "we_legacy_metadata", "http://169.254.169.254/latest/meta-data/", LEGACY_SECRET)
        _insert_endpoint(db, owner, "we_legacy_ok", legacy_receiver.url, LEGACY_SECRET)
        # A secret sealed under some other key (or damaged): it cannot be opened, so it cannot sign.
        _insert_endpoint(db, owner, "we_foreign_seal", legacy_receiver.url, "sealed1:bm90IG91ciBrZXk=")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def hooks_client(hooks):
    return hooks.client()


@pytest.fixture(scope="module")
def hooks_mallory(hooks):
    key = hooks.cli("users", "create", "mallory").stdout.strip().splitlines()[-1]
    hooks.cli("users", "set-plan", "mallory", "pro")  # a plan whose models include the half-pulled one
    return hooks.client(key)


@pytest.fixture
def receiver():
    r = Receiver(fail_first=1)
    yield r
    r.close()


def _fail_video(client) -> str:
    """A video that fails at once (its model's weights are half there): a real video.failed event, no
    rendering."""
    return client.videos.create_and_poll(prompt="no weights", model=PARTIAL_MODEL, poll_interval_ms=100).id


def _deliveries(srv: LiveServer, endpoint_id: str) -> list[tuple]:
    with _db(srv) as db:
        return db.execute("SELECT attempts, delivered_at, last_error FROM webhook_deliveries WHERE endpoint_id = ?",
                          (endpoint_id,)).fetchall()


def test_completed_and_failed_events_are_signed_and_retried(hooks_client, receiver):
    client = hooks_client
    ep = client.webhooks.create(name="my app", url=receiver.url, event_types=EVENTS)
    assert ep.signing_secret.startswith("whsec_") and ep.object == "webhook_endpoint"
    assert client.webhooks.retrieve(ep.id).url == receiver.url
    try:
        ok = client.videos.create_and_poll(prompt="webhook me", extra_body=FAST)
        bad = client.videos.create_and_poll(prompt="no weights", model=PARTIAL_MODEL)
        # The first delivery got a 500: it is retried with backoff, not lost.
        wait_for(lambda: len(receiver.received) >= 2, timeout=60)
        for body, headers in receiver.received:
            client.webhooks.verify_signature(body, headers, secret=ep.signing_secret)  # raises if forged
        got = {e["type"]: e["data"]["id"] for e in receiver.events()}
        assert got == {"video.completed": ok.id, "video.failed": bad.id}
        assert all(e["object"] == "event" and e["id"].startswith("evt_") for e in receiver.events())
        with pytest.raises(openai.InvalidWebhookSignatureError):
            body, headers = receiver.received[0]
            client.webhooks.verify_signature(body.replace(b"video", b"vidoe"), headers, secret=ep.signing_secret)
        # The delivery log, as the settings page shows it: both events delivered, the first after a 500.
        def log():
            return client.get(f"/webhook_endpoints/{ep.id}/deliveries", cast_to=object)["data"]

        done = wait_for(lambda: (d := log()) and all(x["state"] == "delivered" for x in d) and len(d) == 2 and d,
                        timeout=30)
        assert {x["event_type"] for x in done} == {"video.completed", "video.failed"}
        [retried] = [x for x in done if x["attempts"] == 2]
        assert [(t["status"], t["ok"]) for t in retried["tries"]] == [(500, False), (204, True)]
        assert retried["next_attempt_at"] is None and retried["delivered_at"] >= retried["tries"][-1]["at"] - 1
        one = client.get(f"/webhook_endpoints/{ep.id}/deliveries", cast_to=object, options={"params": {"limit": 1}})
        assert len(one["data"]) == 1 and one["has_more"] is True
        rotated = client.webhooks.rotate_secret(ep.id)
        assert rotated.signing_secret != ep.signing_secret
        result = client.webhooks.test(ep.id, event_type="video.completed")
        assert result.status_code == 204
        client.webhooks.verify_signature(*receiver.received[-1], secret=rotated.signing_secret)
    finally:
        client.webhooks.delete(ep.id)
    with pytest.raises(openai.NotFoundError):
        client.webhooks.retrieve(ep.id)


def test_endpoints_are_private_and_validated(server, client, other_user_key):
    ep = client.webhooks.create(name="mine", url="https://example.invalid/hook", event_types=["video.completed"])
    mallory = server.client(other_user_key)
    with pytest.raises(openai.NotFoundError):
        mallory.webhooks.retrieve(ep.id)
    assert ep.id not in [e.id for e in mallory.webhooks.list().data]
    with pytest.raises(openai.NotFoundError):  # nor its delivery log
        mallory.get(f"/webhook_endpoints/{ep.id}/deliveries", cast_to=object)
    with pytest.raises(openai.BadRequestError) as e:
        client.webhooks.create(name="x", url="ftp://nope", event_types=["video.completed"])
    assert e.value.param == "url"
    with pytest.raises(openai.BadRequestError) as e:
        client.webhooks.create(name="x", url="https://ok.invalid", event_types=["fine_tuning.job.succeeded"])
    assert e.value.param == "event_types"
    client.webhooks.delete(ep.id)


@pytest.mark.parametrize("url", REFUSED)
def test_internal_and_malformed_urls_are_refused_by_default(client, url):
    with pytest.raises(openai.BadRequestError) as e:
        client.webhooks.create(name="x", url=url, event_types=EVENTS)
    assert e.value.param == "url"
    assert "Traceback" not in e.value.message and "/tmp" not in e.value.message


def test_loopback_is_refused_by_default_and_allowed_when_listed(client, hooks_client, legacy_receiver):
    ok = client.webhooks.create(name="public", url="https://example.invalid/hook", event_types=EVENTS)
    try:
        with pytest.raises(openai.BadRequestError) as e:
            client.webhooks.create(name="x", url=legacy_receiver.url, event_types=EVENTS)
        assert e.value.param == "url"
        with pytest.raises(openai.BadRequestError) as e:  # an update is vetted like a create
            client.webhooks.update(ok.id, url="http://[::1]:5432/")
        assert e.value.param == "url" and client.webhooks.retrieve(ok.id).url == "https://example.invalid/hook"
    finally:
        client.webhooks.delete(ok.id)
    listed = hooks_client.webhooks.create(name="listed", url=legacy_receiver.url, event_types=EVENTS)
    hooks_client.webhooks.delete(listed.id)


def test_a_malformed_stored_url_cannot_break_delivery_to_others(hooks, hooks_client):
    good = Receiver()
    ep = hooks_client.webhooks.create(name="good", url=good.url, event_types=["video.failed"])
    try:
        video_id = _fail_video(hooks_client)
        wait_for(lambda: any(e["data"]["id"] == video_id for e in good.events()), timeout=10)
        # The broken, refused and unreadable endpoints were tried, failed on their own, and back off.
        wait_for(lambda: any(a >= 1 for a, _, _ in _deliveries(hooks, "we_legacy_bad_url")), timeout=10)
        wait_for(lambda: any(a >= 1 for a, _, _ in _deliveries(hooks, "we_foreign_seal")), timeout=10)
        errors = {(eid, err) for eid in ("we_legacy_bad_url", "we_legacy_metadata", "we_foreign_seal")
                  for _, done, err in _deliveries(hooks, eid) if not done and err}
        assert {eid for eid, _ in errors} == {"we_legacy_bad_url", "we_legacy_metadata", "we_foreign_seal"}
        assert {err for _, err in errors} == {"invalid_url", "refused_by_outbound_policy", "secret_unreadable"}
        # The unreadable secret does not break listing either; it just has no hint (rotating replaces it).
        assert hooks_client.webhooks.retrieve("we_foreign_seal").signing_secret_hint is None
    finally:
        hooks_client.webhooks.delete(ep.id)
        good.close()


def test_test_gives_the_same_answer_for_a_refused_target_and_a_closed_port(hooks, hooks_client):
    closed = hooks_client.webhooks.create(name="closed", url=f"http://127.0.0.1:{free_port()}/hook",
                                          event_types=EVENTS)
    try:
        with hooks.http() as http:
            answers = [http.post(f"/v1/webhook_endpoints/{eid}/test", json={"event_type": "video.completed"})
                       for eid in ("we_legacy_metadata", closed.id, "we_legacy_bad_url")]
        assert {r.status_code for r in answers} == {400}
        assert answers[0].json() == answers[1].json() == answers[2].json()
        assert answers[0].json()["error"]["param"] == "url"
    finally:
        hooks_client.webhooks.delete(closed.id)


def test_a_deleted_endpoint_gets_none_of_its_queued_events(hooks, hooks_client):
    gone, kept = Receiver(), Receiver()
    ep_gone = hooks_client.webhooks.create(name="gone", url=gone.url, event_types=["video.failed"])
    ep_kept = hooks_client.webhooks.create(name="kept", url=kept.url, event_types=["video.failed"])
    try:
        # Events already in the outbox, due in a moment (as after a receiver's failed first attempt).
        with _db(hooks) as db:
            for i, ep in enumerate((ep_gone, ep_kept)):
                db.execute("INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload, attempts, "
                           "next_attempt_at) VALUES (?, ?, 'video.failed', ?, 0, ?)",
                           (f"evt_queued_{i}_{ep.id}", ep.id,
                            json.dumps({"id": f"evt_queued_{i}", "object": "event", "type": "video.failed",
                                        "created_at": int(time.time()), "data": {"id": "video_x"}}),
                            time.time() + 1.5))
        hooks_client.webhooks.delete(ep_gone.id)
        wait_for(lambda: kept.received, timeout=10)
        time.sleep(1)
        assert gone.started == 0
    finally:
        hooks_client.webhooks.delete(ep_kept.id)
        gone.close()
        kept.close()


def test_a_slow_receiver_delays_no_other_endpoint(hooks_client, hooks_mallory):
    fast, slow, other = Receiver(), Receiver(hold=True), Receiver()
    # Created after the fast one so its event is queued first: a serial deliverer would wait on it.
    ep_fast = hooks_client.webhooks.create(name="fast", url=fast.url, event_types=["video.failed"])
    ep_slow = hooks_client.webhooks.create(name="slow", url=slow.url, event_types=["video.failed"])
    ep_other = hooks_mallory.webhooks.create(name="mallory's", url=other.url, event_types=["video.failed"])
    try:
        mine = _fail_video(hooks_client)
        theirs = _fail_video(hooks_mallory)
        t0 = time.monotonic()
        wait_for(lambda: slow.started and fast.received and other.received, timeout=8, interval=0.05)
        assert max(fast.arrivals[0], other.arrivals[0]) - t0 < 4  # well inside the slow one's 10 s timeout
        assert not slow.received  # still held open while the others were delivered
        assert fast.events()[0]["data"]["id"] == mine and other.events()[0]["data"]["id"] == theirs
        slow.release()
        wait_for(lambda: slow.received, timeout=15)
    finally:
        hooks_client.webhooks.delete(ep_fast.id)
        hooks_client.webhooks.delete(ep_slow.id)
        hooks_mallory.webhooks.delete(ep_other.id)
        for r in (fast, slow, other):
            r.close()


def test_signing_secrets_are_sealed_at_rest(hooks, hooks_client, legacy_receiver):
    ep = hooks_client.webhooks.create(name="sealed", url=legacy_receiver.url, event_types=["video.failed"])
    try:
        with _db(hooks) as db:
            stored = dict(db.execute("SELECT id, secret FROM webhook_endpoints").fetchall())
        assert stored[ep.id] != ep.signing_secret and stored[ep.id].startswith("sealed1:")
        raw = b"".join(p.read_bytes() for p in hooks.data_dir.glob("mutoscope.db*"))
        assert ep.signing_secret.encode() not in raw
        # The row from before sealing was sealed when the server started, and still signs as before.
        assert stored["we_legacy_ok"].startswith("sealed1:") and LEGACY_SECRET not in stored.values()
        assert hooks_client.webhooks.retrieve("we_legacy_ok").signing_secret_hint == LEGACY_SECRET[:10] + "…"
        before = len(legacy_receiver.received)
        assert hooks_client.webhooks.test("we_legacy_ok", event_type="video.completed").status_code == 204
        hooks_client.webhooks.verify_signature(*legacy_receiver.received[before], secret=LEGACY_SECRET)
        key_file = hooks.data_dir / "secret-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_text().strip().encode() not in raw
    finally:
        hooks_client.webhooks.delete(ep.id)
