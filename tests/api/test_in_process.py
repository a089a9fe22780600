"""The /v1 API in this process (fast tier): the app `serve --no-worker` builds, driven by the official openai SDK.

Covers the rooms behind the routes without a subprocess: protocol (wire types, the error envelope), api
(routers, body reading), videos (admission, queued rows, cursor pages, delete), accounts (keys, users,
usage), lifecycle (deprecations, the service phase) and webhooks (endpoints, sealed secrets). Nothing
renders: jobs stay queued, which is what these tests look at.
"""

from __future__ import annotations

import time

import openai
import pytest


@pytest.fixture(scope="module")
def client(app_server):
    return app_server.client()


@pytest.fixture(scope="module")
def http(app_server):
    return app_server.http()


def test_health_and_models(app_server, client):
    assert app_server.http().get("/health").json()["status"] == "ok"
    names = {m.id for m in client.models.list()}
    assert "sora-2" in names


def test_a_create_is_queued_and_read_back(client):
    v = client.videos.create(prompt="a kite over a beach", seconds="4", size="720x1280")
    assert v.object == "video" and v.status == "queued" and v.progress == 0
    assert v.model == "sora-2" and v.seconds == "4" and v.size == "720x1280"
    again = client.videos.retrieve(v.id)
    assert again.id == v.id and again.status == "queued" and again.created_at == v.created_at


def test_list_pages_by_cursor(client):
    made = [client.videos.create(prompt=f"page {i}", seconds="4").id for i in range(3)]
    first = client.videos.list(limit=2, order="desc")
    assert [v.id for v in first.data] == made[::-1][:2]
    assert first.has_more is True and first.first_id == made[2] and first.last_id == made[1]
    rest = client.videos.list(limit=2, order="desc", after=first.last_id)
    assert rest.data[0].id == made[0]


def test_refusals_are_openai_envelopes(client, http):
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt="x", seconds="4", size="3x3")
    assert e.value.status_code == 400 and e.value.body["param"] == "size"
    with pytest.raises(openai.NotFoundError) as e:
        client.videos.retrieve("video_nope")
    assert e.value.body["type"] == "invalid_request_error"
    r = http.post("/v1/videos", content=b"{" * 100, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = http.get("/v1/videos", headers={"Authorization": "Bearer msk-wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_delete_fails_a_queued_video_and_refunds(client, http):
    before = http.get("/v1/usage").json()
    v = client.videos.create(prompt="to be deleted", seconds="4")
    deleted = client.videos.delete(v.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(v.id)
    assert http.get("/v1/usage").json() == before


def test_users_keys_and_owner_scoping(app_server, client, http):
    r = http.post("/v1/admin/users", json={"name": "inproc-mallory"})
    assert r.status_code == 200, r.text
    mallory = app_server.client(r.json()["api_key"])
    mine = client.videos.create(prompt="only mine", seconds="4")
    with pytest.raises(openai.NotFoundError):
        mallory.videos.retrieve(mine.id)
    assert all(v.id != mine.id for v in mallory.videos.list())
    r = app_server.http(r.json()["api_key"]).get("/v1/admin/users")
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"  # a member sees no admin API


def test_model_deprecation_and_service_phase(client, http):
    shutdown = int(time.time()) + 86400
    r = http.post("/v1/admin/models/sora-2-2025-10-06/deprecation",
                  json={"shutdown_date": shutdown, "replacement": "sora-2"})
    assert r.status_code == 200, r.text
    m = client.models.retrieve("sora-2-2025-10-06")
    assert m.status == "deprecated" and m.shutdown_date == shutdown
    raw = client.videos.with_raw_response.create(prompt="on a deprecated model", model="sora-2-2025-10-06")
    assert raw.headers["deprecation"] == f"@{r.json()['deprecated_at']}"
    assert raw.headers["link"] == '</v1/models/sora-2>; rel="successor-version"'
    assert http.get("/v1/service").json()["phase"] == "active"


def test_webhook_endpoints_show_their_secret_once(client, http):
    ep = client.webhooks.create(name="inproc", url="https://example.invalid/hook", event_types=["video.completed"])
    assert ep.signing_secret.startswith("whsec_") and ep.signing_secret_hint
    again = client.webhooks.retrieve(ep.id)
    assert again.url == "https://example.invalid/hook" and again.signing_secret is None
    listed = http.get("/v1/webhook_endpoints").json()
    assert listed["first_id"] == ep.id and listed["has_more"] is False
    with pytest.raises(openai.BadRequestError) as e:
        client.webhooks.create(name="x", url="http://169.254.169.254/latest", event_types=["video.completed"])
    assert e.value.param == "url"
    client.webhooks.delete(ep.id)
    with pytest.raises(openai.NotFoundError):
        client.webhooks.retrieve(ep.id)


def test_a_file_id_whose_bytes_are_gone_is_a_400_for_an_image_and_a_soundtrack(app_server, client):
    """Every `file_id` a create reads (a first frame, a soundtrack) is read the one way, from where the file is
    stored; a file whose bytes are gone is the request's 400, never a 500."""
    import sqlite3

    f = client.files.create(file=("a.png", b"\x89PNG\r\n\x1a\n", "image/png"), purpose="vision")
    with sqlite3.connect(app_server.data_dir / "mutoscope.db", timeout=30) as db:
        (key,) = db.execute("SELECT storage_key FROM files WHERE id = ?", (f.id,)).fetchone()
    app_server.app.state.services.videos.storage.delete_prefix(key)
    for extra, param in (({"input_reference": {"file_id": f.id}}, "input_reference.file_id"),
                         ({"audio_reference": {"file_id": f.id}}, "audio_reference.file_id")):
        with pytest.raises(openai.BadRequestError) as e:
            client.videos.create(prompt="a kite", seconds="4", size="720x1280", extra_body=extra)
        assert e.value.body["param"] == param and e.value.body["code"] == "file_not_found"


def test_a_plan_removed_from_the_plans_file_is_that_accounts_400_everywhere(app_server, http):
    """Usage and creates read the account's plan the same one way: a plan the operator removed is a clear 400
    naming the fix, never a 500 on every page that shows usage."""
    import sqlite3

    r = http.post("/v1/admin/users", json={"name": "inproc-planless"})
    assert r.status_code == 200, r.text
    user_id, key = r.json()["id"], r.json()["api_key"]
    with sqlite3.connect(app_server.data_dir / "mutoscope.db", timeout=30) as db:
        db.execute("UPDATE users SET plan = 'retired' WHERE id = ?", (user_id,))
    member = app_server.http(key)
    for r in (member.get("/v1/usage"),
              member.post("/v1/videos", json={"prompt": "a kite", "seconds": "4", "size": "720x1280"})):
        assert r.status_code == 400 and r.json()["error"]["code"] == "plan_not_configured", r.text


def test_an_idempotency_key_in_flight_is_409_and_a_refused_first_request_leaves_no_record(app_server, http):
    """The two answers docs/security.md promises besides the replay: the same key while the first request still
    runs is 409 `idempotency_key_in_progress` (the SDKs retry it), and a first request that was refused keeps
    nothing, so the corrected request under the same key is a new one, not a reuse."""
    import sqlite3

    from mutoscope.api.idempotency import fingerprint

    body = b'{"prompt": "a kite", "seconds": "4", "size": "720x1280"}'
    with sqlite3.connect(app_server.data_dir / "mutoscope.db", timeout=30) as db:
        (owner_id,) = db.execute("SELECT id FROM users WHERE role = 'owner'").fetchone()
        db.execute("INSERT INTO idempotency_keys (owner_id, key, fingerprint, created_at) VALUES (?, ?, ?, ?)",
                   (owner_id, "in-flight", fingerprint("POST", "/v1/videos", "application/json", body),
                    int(time.time())))
    r = http.post("/v1/videos", content=body, headers={"Idempotency-Key": "in-flight",
                                                       "Content-Type": "application/json"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_in_progress", r.text

    refused = http.post("/v1/videos", json={"prompt": "a kite", "seconds": "4", "size": "1x1"},
                        headers={"Idempotency-Key": "first-refused"})
    assert refused.status_code == 400
    fixed = http.post("/v1/videos", json={"prompt": "a kite", "seconds": "4", "size": "720x1280"},
                      headers={"Idempotency-Key": "first-refused"})
    assert fixed.status_code == 200 and fixed.json()["status"] == "queued", fixed.text
    assert "idempotent-replayed" not in fixed.headers
