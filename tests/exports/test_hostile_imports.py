"""The import boundary, attacked the way an ordinary account would: through a live server, with two users.

The owner (A) has a video; mallory (B, on the default free plan) uploads archives crafted by hand.
An archive is data: it may not reach A's rows or files, may not carry values the API would refuse,
never runs a job by itself, and cannot exhaust the server's disk or stack.
"""

from __future__ import annotations

import os
import secrets
import socket
import zipfile

import pytest

from mutoscope.exports.scratch import ScratchArea
from tests.conftest import LiveServer, wait_for
from tests.exports.conftest import build_archive, cameo_record, jpeg, record


def _vid(tag: str) -> str:
    return f"video_{tag}_{secrets.token_hex(6)}"


def _post(server, key, archive, unfinished: str | None = None):
    with server.http(key) as h:
        data = {"unfinished": unfinished} if unfinished else None
        return h.post("/v1/imports", files={"file": ("x.zip", archive.read_bytes(), "application/zip")}, data=data)


def _ids(server, key) -> list[str]:
    with server.http(key) as h:
        return [v["id"] for v in h.get("/v1/videos", params={"limit": 100}).json()["data"]]


def _usage(server, key) -> dict:
    with server.http(key) as h:
        return h.get("/v1/usage").json()


def _scratch(server) -> list[str]:
    return sorted(p.name for p in (server.data_dir / "assets" / ".tmp").iterdir()
                  if p.name.startswith(("import-", "upload-")))


def _cameos(server, key) -> list[dict]:
    with server.http(key) as h:
        return h.get("/v1/cameos").json()["data"]


def _refused(server, key, archive, code: str, unfinished: str | None = None) -> dict:
    before, usage, cameos = _ids(server, key), _usage(server, key), _cameos(server, key)
    r = _post(server, key, archive, unfinished)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["param"] == "file" and err["type"] == "invalid_request_error", err
    assert "/" + "tmp" not in err["message"] and "Traceback" not in err["message"]
    assert _ids(server, key) == before, "nothing was written"
    assert _cameos(server, key) == cameos, "no cameo was written"
    assert _usage(server, key) == usage, "nothing was charged or reserved"
    assert _scratch(server) == [], "the upload and staging are gone"
    return err


@pytest.fixture(scope="module")
def victim(server, tmp_path_factory):
    """A's completed video (its bytes, to prove they never leak)."""
    rec, files = record(_vid("victim"), prompt="A's private video")
    r = _post(server, None, build_archive(tmp_path_factory.mktemp("a") / "a.zip", (rec, files)))
    assert r.status_code == 200, r.text
    vid = rec["video"]["id"]
    assert r.json()["id_map"] == {vid: vid}
    return vid, next(iter(files.values()))


@pytest.mark.parametrize("kind,field", [("extend", "extended_from_video_id"), ("edit", "edited_from_video_id"),
                                        ("remix", "remixed_from_video_id")])
@pytest.mark.parametrize("unfinished", [None, "resubmit"])
def test_lineage_into_another_account_is_refused(server, other_user_key, victim, tmp_path, kind, field,
                                                 unfinished):
    a_id, a_bytes = victim
    params = {"extend_seconds": "4"} if kind == "extend" else {}
    rec = record(_vid("b"), status="queued", kind=kind, seconds="8" if kind == "extend" else "4",
                 params=params, lineage={field: a_id})
    err = _refused(server, other_user_key, build_archive(tmp_path / "b.zip", rec), "invalid_reference", unfinished)
    assert f"line 1 (video {rec[0]['video']['id']})" in err["message"] and field in err["message"]
    assert a_id in err["message"] and "Nothing was imported" in err["message"]
    with server.http() as h:  # A's video is untouched
        assert h.get(f"/v1/videos/{a_id}/content").content == a_bytes


def test_finished_records_and_cameos_may_not_link_out_either(server, other_user_key, victim, tmp_path):
    a_id, _ = victim
    remix = record(_vid("b"), kind="remix", lineage={"remixed_from_video_id": a_id})
    _refused(server, other_user_key, build_archive(tmp_path / "r.zip", remix), "invalid_reference")
    # The same link in the video object's own fields (as a migrated record carries it) is the same link.
    extra = record(_vid("b"), kind="extend", seconds="8")
    extra[0]["video"]["extended_from_video_id"] = a_id
    _refused(server, other_user_key, build_archive(tmp_path / "e.zip", extra), "invalid_reference")
    cameo = record(_vid("b"), cameo_ids=["cameo_" + secrets.token_hex(12)])
    err = _refused(server, other_user_key, build_archive(tmp_path / "c.zip", cameo), "invalid_reference")
    assert "cameo_ids" in err["message"]


def _handle() -> str:
    return f"p{secrets.token_hex(5)}"


def _cameo_archive(path, rec, files, named: bool = True):
    video = record(_vid("c"), prompt=f"@{rec['handle']} waves", cameo_ids=[rec["id"]] if named else [])
    return build_archive(path, video, cameos=[(rec, files)]), video[0]["video"]["id"]


@pytest.mark.parametrize("case,code", [
    ("missing", "archive_incomplete"), ("oversized", "invalid_cameo"), ("not_an_image", "invalid_image"),
    ("claims_verified", "invalid_cameo"), ("brings_embeddings", "invalid_cameo"), ("too_many", "too_many_cameos"),
])
def test_a_hostile_cameo_line_refuses_the_archive(server, other_user_key, tmp_path, case, code):
    rec, files = cameo_record("cameo_" + secrets.token_hex(8), _handle(), references=2)
    first = rec["files"]["references"][0]
    cameos = [(rec, files)]
    if case == "missing":
        files.pop(first)
    elif case == "oversized":  # over the 8 MiB a reference frame may have; refused before it is decoded
        files[first] = jpeg() + os.urandom(8 * 1024 * 1024)
    elif case == "not_an_image":
        files[first] = b"GIF89a" + os.urandom(500)
    elif case == "claims_verified":
        rec["verification"] = {"passed": True, "checks": []}
    elif case == "brings_embeddings":
        rec["face_embedding"] = [0.0] * 128
    elif case == "too_many":
        cameos += [cameo_record("cameo_" + secrets.token_hex(8), _handle()) for _ in range(100)]
    archive = build_archive(tmp_path / "c.zip", record(_vid("c"), cameo_ids=[rec["id"]]), cameos=cameos)
    err = _refused(server, other_user_key, archive, code)
    assert "cameos.jsonl" in err["message"] or first in err["message"], err


def test_an_imported_cameo_is_usable_by_nobody_until_verified_here(server, other_user_key, tmp_path):
    import openai

    rec, files = cameo_record("cameo_" + secrets.token_hex(8), _handle(), references=3, voice=True,
                              policy="everyone", grants=[{"user_id": "user_elsewhere", "user_name": "bob",
                                                          "created_at": 1_700_000_100, "revoked_at": None}])
    archive, vid = _cameo_archive(tmp_path / "ok.zip", rec, files)
    r = _post(server, other_user_key, archive)
    assert r.status_code == 200, r.text
    [imported] = r.json()["cameos"]
    assert imported["archive_id"] == rec["id"] and imported["id"] != rec["id"]
    assert imported["status"] == "unverified" and imported["handle"] == rec["handle"]
    assert imported["grants_dropped"] == ["bob"]
    with server.http(other_user_key) as h:
        cameo = h.get(f"/v1/cameos/{imported['id']}").json()
        assert cameo["status"] == "unverified" and cameo["policy"] == "everyone" and cameo["voice_consent"]
        assert cameo["voice_sample"] is False and cameo["verification"] is None
        assert h.get(f"/v1/cameos/{imported['id']}/grants").json()["data"] == []
        uses = h.get(f"/v1/cameos/{imported['id']}/videos").json()["data"]
        assert [u["video_id"] for u in uses] == [r.json()["id_map"][vid]]
    # Neither its importer nor anyone else (its policy says everyone) may put it in a video, by handle,
    # by id, or through a remix of the imported video that shows it.
    for key in (other_user_key, None):
        c = server.client(key)
        for kw in ({"prompt": f"@{rec['handle']} waves"},
                   {"prompt": "a wave", "extra_body": {"characters": [{"id": imported["id"]}]}}):
            with pytest.raises(openai.PermissionDeniedError) as e:
                c.videos.create(seconds="4", size="720x1280", **kw)
            assert e.value.response.json()["error"]["code"] == "cameo_permission_denied"
    with pytest.raises(openai.PermissionDeniedError) as e:
        server.client(other_user_key).videos.remix(r.json()["id_map"][vid], prompt="again")
    assert e.value.response.json()["error"]["code"] == "cameo_permission_denied"
    # The web app says what it is and how to make it usable.
    from tests.web.conftest import signed_in_http

    web, _ = signed_in_http(server.base_url, other_user_key)
    try:
        page = web.get(f"/cameos/{imported['id']}").text
        assert "Imported from an archive" in page and f"<code>{rec['handle']}</code>" in page
        assert "Imported: record it again to verify" in web.get("/cameos").text
    finally:
        web.close()


def test_links_inside_the_archive_and_to_own_videos_are_kept(server, other_user_key, tmp_path):
    src = record(_vid("src"))
    remix = record(_vid("remix"), kind="remix", lineage={"remixed_from_video_id": src[0]["video"]["id"]})
    r = _post(server, other_user_key, build_archive(tmp_path / "one.zip", src, remix))
    assert r.status_code == 200, r.text
    own = r.json()["id_map"][src[0]["video"]["id"]]
    later = record(_vid("later"), kind="remix", lineage={"remixed_from_video_id": own})
    r = _post(server, other_user_key, build_archive(tmp_path / "two.zip", later))
    assert r.status_code == 200, r.text
    with server.http(other_user_key) as h:
        assert h.get(f"/v1/videos/{r.json()['id_map'][later[0]['video']['id']]}").json()[
            "remixed_from_video_id"] == own


def test_an_archive_id_never_overwrites_another_accounts_video(server, other_user_key, victim, tmp_path):
    a_id, a_bytes = victim
    rec, files = record(a_id, prompt="mallory's copy")
    r = _post(server, other_user_key, build_archive(tmp_path / "same-id.zip", (rec, files)))
    assert r.status_code == 200, r.text
    mine = r.json()["id_map"][a_id]
    assert mine != a_id
    with server.http() as h:
        assert h.get(f"/v1/videos/{a_id}").json()["prompt"] == "A's private video"
        assert h.get(f"/v1/videos/{a_id}/content").content == a_bytes
    with server.http(other_user_key) as h:
        assert h.get(f"/v1/videos/{mine}/content").content == next(iter(files.values()))
        assert h.get(f"/v1/videos/{a_id}").status_code == 404


@pytest.mark.parametrize("change,code,words", [
    ({"size": "axb"}, "invalid_size", "video.size"),
    ({"model": "no-such-model"}, "model_not_found", "video.model"),
    ({"seconds": "5"}, "invalid_seconds", "video.seconds"),
    ({"params": {"seed": "7"}}, "invalid_archive", "params.seed"),
    ({"params": {"num_inference_steps": 100000}}, "invalid_archive", "params.num_inference_steps"),
    ({"params": {"policy": {"visible_watermark": "no"}}}, "invalid_archive", "params.policy.visible_watermark"),
    ({"kind": "storyboard"}, "invalid_archive", "mutoscope.kind"),
])
def test_fields_are_held_to_the_apis_rules(server, other_user_key, tmp_path, change, code, words):
    kw = {"status": "queued", **change}
    err = _refused(server, other_user_key, build_archive(tmp_path / "bad.zip", record(_vid("b"), **kw)), code)
    assert words in err["message"], err["message"]


def test_unfinished_records_import_as_not_run(server, other_user_key, tmp_path):
    queued, running = record(_vid("q"), status="queued"), record(_vid("r"), status="in_progress")
    usage = _usage(server, other_user_key)
    r = _post(server, other_user_key, build_archive(tmp_path / "u.zip", queued, running))
    assert r.status_code == 200, r.text
    imp = r.json()
    ids = [imp["id_map"][rec[0]["video"]["id"]] for rec in (queued, running)]
    assert imp["not_run"] == ids and imp["resubmitted"] == {}
    with server.http(other_user_key) as h:
        for vid in ids:
            v = h.get(f"/v1/videos/{vid}").json()
            assert v["status"] == "failed" and v["error"]["code"] == "not_run_imported", v
            assert "unfinished=resubmit" in v["error"]["message"] and "POST /v1/videos" in v["error"]["message"]
        assert h.get(f"/v1/imports/{imp['id']}").json()["not_run"] == ids
    assert _usage(server, other_user_key) == usage, "no charge, no reservation"


def test_resubmit_goes_through_admission(server, other_user_key, tmp_path):
    """Mallory's free plan: sora-2 only, at most 8 s, one job at a time; the first record is admitted."""
    ok = record(_vid("ok"), status="queued", prompt="a lighthouse")
    too_long = record(_vid("long"), status="queued", seconds="12")  # valid for the model, not for the plan
    pro = record(_vid("pro"), status="queued", model="sora-2-pro")
    second = record(_vid("second"), status="queued")  # the concurrency slot is taken by the first
    before = _usage(server, other_user_key)
    r = _post(server, other_user_key, build_archive(tmp_path / "rs.zip", ok, too_long, pro, second), "resubmit")
    assert r.status_code == 200, r.text
    imp = r.json()
    ok_id = ok[0]["video"]["id"]
    new = imp["resubmitted"][ok_id]
    assert list(imp["resubmitted"]) == [ok_id] and imp["id_map"][ok_id] == new != ok_id
    after = _usage(server, other_user_key)
    assert after["reserved"] + after["spent"] == before["reserved"] + before["spent"] + 4, "reserved by admission"
    reasons = {"long": "at most 8 seconds", "pro": "does not include the model", "second": "at most 1 job"}
    with server.http(other_user_key) as h:
        assert h.get(f"/v1/videos/{new}").json()["status"] in ("queued", "in_progress", "completed")
        listed = _ids(server, other_user_key)
        assert new in listed and ok_id not in listed, "the admitted job replaces its placeholder"
        assert len(imp["not_run"]) == 3
        for rec, tag in ((too_long, "long"), (pro, "pro"), (second, "second")):
            v = h.get(f"/v1/videos/{imp['id_map'][rec[0]['video']['id']]}").json()
            assert v["error"]["code"] == "not_run_imported", v
            assert "Re-submitting it was refused" in v["error"]["message"] and reasons[tag] in v["error"]["message"]
        done = wait_for(lambda: (v := h.get(f"/v1/videos/{new}").json())["status"] in ("completed", "failed") and v,
                        timeout=300)
    assert done["status"] == "completed", done
    final = _usage(server, other_user_key)
    assert final["spent"] == before["spent"] + 4 and final["reserved"] == before["reserved"]


def test_cli_import_does_the_same(server, other_user_key, tmp_path):
    """`mutoscope import` on the server's data folder: not run by default, admission with --unfinished resubmit."""
    plain = record(_vid("cli"), status="queued")
    out = server.cli("import", str(build_archive(tmp_path / "p.zip", plain)), "--user", "mallory")
    assert "imported without running" in out.stdout and plain[0]["video"]["id"] in out.stdout, out.stdout
    bad = server.cli("import", str(build_archive(tmp_path / "bad.zip", record(_vid("c"), size="axb"))),
                     "--user", "mallory", check=False)
    assert bad.returncode == 1 and "invalid_size" in bad.stderr
    before = _usage(server, other_user_key)
    again = record(_vid("cli2"), status="queued")
    out = server.cli("import", str(build_archive(tmp_path / "r.zip", again)), "--user", "mallory",
                     "--unfinished", "resubmit")
    assert "re-submitted as video_" in out.stdout, out.stdout + out.stderr
    new = out.stdout.split("re-submitted as ")[1].split()[0]
    assert _usage(server, other_user_key)["reserved"] >= before["reserved"] + 4 or \
        _usage(server, other_user_key)["spent"] >= before["spent"] + 4
    with server.http(other_user_key) as h:  # the server's worker sees it: the database is the queue
        assert h.get(f"/v1/videos/{new}").json()["status"] in ("queued", "in_progress", "completed")
        assert h.delete(f"/v1/videos/{new}").status_code == 200
    wait_for(lambda: _usage(server, other_user_key)["active_jobs"] == 0, timeout=120)


def test_cli_import_says_what_became_of_cameos(server, other_user_key, tmp_path):
    rec, files = cameo_record("cameo_" + secrets.token_hex(8), _handle(), references=1,
                              grants=[{"user_id": "user_x", "user_name": "bob", "created_at": 1, "revoked_at": None}])
    archive, _ = _cameo_archive(tmp_path / "c.zip", rec, files)
    out = server.cli("import", str(archive), "--user", "mallory")
    assert f"Cameo @{rec['handle']} (cameo_" in out.stdout and "is unverified" in out.stdout, out.stdout
    assert "grants not carried over: bob" in out.stdout
    assert [c["status"] for c in _cameos(server, other_user_key) if c["handle"] == rec["handle"]] == ["unverified"]


def test_600_entries_of_1_mib_are_refused_before_staging(server, other_user_key, tmp_path):
    bomb = tmp_path / "bomb.zip"
    chunk = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(600):
            zf.writestr(f"provenance/{i:03d}.bin", chunk)
    assert bomb.stat().st_size < 1024 * 1024
    err = _refused(server, other_user_key, bomb, "suspicious_compression")
    assert "in total" in err["message"]


def test_deeply_nested_json_is_a_400(server, other_user_key, tmp_path):
    _refused(server, other_user_key, build_archive(tmp_path / "deep.zip", manifest=b"[" * 100000), "invalid_json")
    deep = b'{"video": ' + b"[" * 100000 + b"\n"
    _refused(server, other_user_key, build_archive(tmp_path / "deep-line.zip", jsonl=deep), "invalid_json")


def test_bad_unfinished_choice(server, other_user_key, tmp_path):
    err = _post(server, other_user_key, build_archive(tmp_path / "x.zip", record(_vid("x"))), "run-it").json()
    assert err["error"]["param"] == "unfinished"
    assert _scratch(server) == []


def test_a_killed_upload_is_swept_at_the_next_start(tmp_path):
    srv = LiveServer(tmp_path / "data", "--no-worker").start()  # imports need no engine
    try:
        scratch = srv.data_dir / "assets" / ".tmp"
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(b"POST /v1/imports HTTP/1.1\r\nHost: x\r\nContent-Type: application/zip\r\n"
                         b"Authorization: Bearer " + srv.api_key.encode() + b"\r\nContent-Length: 50000000\r\n\r\n")
            sock.sendall(os.urandom(2 * 1024 * 1024))
            wait_for(lambda: any(p.name.startswith("upload-") and (p / "archive.zip").exists()
                                 and (p / "archive.zip").stat().st_size > 0 for p in scratch.iterdir()), timeout=30)
            srv.stop(kill=True)
        assert [p.name for p in scratch.iterdir() if p.name.startswith("upload-")], "the kill left it behind"
        alive = ScratchArea(scratch, "import-")  # another live process's import (this one holds the lock)
        try:
            srv.start()
            assert [p.name for p in scratch.iterdir() if p.name.startswith(("upload-", "import-"))] == \
                [alive.path.name], "dead scratch is swept, live scratch is left alone"
        finally:
            alive.close()
    finally:
        srv.stop()


def test_a_chunked_multipart_import_is_refused_at_the_import_limit(tmp_path):
    """No Content-Length: the import limit is counted while the multipart body streams in, so the server
    answers 413 after about the limit, never spooling the whole upload first."""
    srv = LiveServer(tmp_path / "data", "--no-worker", MUTOSCOPE_MAX_IMPORT_BYTES=str(4 * 1024 * 1024)).start()
    try:
        boundary = b"mutoscopeboundary"
        head = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n'
                b"Content-Type: application/zip\r\n\r\n")
        sent = 0
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(b"POST /v1/imports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
                         b"Authorization: Bearer " + srv.api_key.encode() + b"\r\n\r\n")
            chunk = head + os.urandom(256 * 1024)
            answer = b""
            try:
                while sent < 64 * 1024 * 1024 and not answer:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
                    chunk = os.urandom(256 * 1024)
                    sock.settimeout(0.01)
                    try:
                        answer = sock.recv(65536)
                    except (socket.timeout, BlockingIOError):
                        pass
                    sock.settimeout(30)
            except (BrokenPipeError, ConnectionResetError):
                pass
            sock.settimeout(30)
            while b"}}" not in answer:  # the status line, the headers and the error envelope
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b'"archive_too_large"' in answer or b'"payload_too_large"' in answer
        assert sent < 32 * 1024 * 1024  # stopped near the 4 MB limit, not after the whole 64 MB
    finally:
        srv.stop()
