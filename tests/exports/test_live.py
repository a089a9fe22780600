"""Export, import and migration between live servers, driven by the openai SDK, httpx and the CLI."""

from __future__ import annotations

import json
import zipfile

import openai
import pytest

from tests.conftest import LiveServer, serve_live, wait_for

FAST = {"num_inference_steps": 2}
VARIANTS = ("video", "thumbnail", "spritesheet")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Server A with a small library: two videos and a remix of the first."""
    srv = LiveServer(tmp_path_factory.mktemp("exp") / "a").start()
    c = srv.client()
    first = c.videos.create(prompt="a lighthouse in a storm", seconds="4", extra_body={**FAST, "seed": 3})
    second = c.videos.create(prompt="a red door", seconds="4", extra_body=FAST)
    assert c.videos.poll(first.id).status == "completed"
    remix = c.videos.remix(first.id, prompt="the lighthouse at dawn")
    for v in (second, remix):
        assert c.videos.poll(v.id).status == "completed"
    srv.ids = [first.id, second.id, remix.id]
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    # Imports render nothing, so the importing servers start API-only: seconds instead of a diffusers import.
    yield from serve_live(tmp_path_factory, "exp", "--no-worker")


def _same_library(src: LiveServer, dst: LiveServer, ids: list[str]) -> None:
    a, b = src.client(), dst.client()
    for vid in ids:
        assert b.videos.retrieve(vid).model_dump() == a.videos.retrieve(vid).model_dump()
        for variant in VARIANTS:
            assert b.videos.download_content(vid, variant=variant).read() == \
                a.videos.download_content(vid, variant=variant).read(), (vid, variant)


def test_export_download_import_round_trip(source, target, tmp_path):
    with source.http() as h:
        r = h.post("/v1/exports")
        assert r.status_code == 200, r.text
        exp = r.json()
        assert exp["object"] == "export" and exp["video_count"] == 3
        done = wait_for(lambda: (x := h.get(f"/v1/exports/{exp['id']}").json())["status"] == "completed" and x,
                        timeout=120)
        assert done["progress"] == 100 and done["bytes"] > 0
        full = h.get(done["content_url"])
        part = h.get(done["content_url"], headers={"Range": "bytes=10-109"})
    assert full.status_code == 200 and full.headers["content-type"] == "application/zip"
    assert part.status_code == 206 and part.content == full.content[10:110]
    assert len(full.content) == done["bytes"]
    archive = tmp_path / "export.zip"
    archive.write_bytes(full.content)
    with zipfile.ZipFile(archive) as zf:
        records = [json.loads(x) for x in zf.read("videos.jsonl").decode().splitlines()]
    assert [r["video"]["id"] for r in records] == source.ids  # oldest first
    assert records[2]["mutoscope"]["lineage"]["remixed_from_video_id"] == source.ids[0]
    assert records[0]["mutoscope"]["params"]["seed"] == 3 and records[0]["mutoscope"]["resolved"]

    with target.http() as h:
        r = h.post("/v1/imports", files={"file": ("export.zip", archive.read_bytes(), "application/zip")})
        assert r.status_code == 200, r.text
        imp = r.json()
        assert imp["video_count"] == 3 and imp["id_map"] == {i: i for i in source.ids}
        assert not imp["already_imported"]
        again = h.post("/v1/imports", content=archive.read_bytes(), headers={"content-type": "application/zip"})
        assert again.json()["already_imported"] and again.json()["id"] == imp["id"]
    _same_library(source, target, source.ids)
    assert len(target.client().videos.list(limit=100).data) == 3
    # the CLI sees the same archive as already imported
    out = target.cli("import", str(archive))
    assert "already imported" in out.stdout


def test_exports_are_scoped_to_their_owner(source):
    mallory = source.cli("users", "create", "mallory-exp").stdout.strip().splitlines()[-1]
    with source.http() as h:
        exp = h.post("/v1/exports").json()
    with source.http(mallory) as h:
        for r in (h.get(f"/v1/exports/{exp['id']}"), h.get(f"/v1/exports/{exp['id']}/content"),
                  h.delete(f"/v1/exports/{exp['id']}")):
            assert r.status_code == 404 and r.json()["error"]["code"] == "export_not_found"
        assert exp["id"] not in [e["id"] for e in h.get("/v1/exports").json()["data"]]


def test_bad_archive_over_the_api_is_a_400_envelope(target):
    with target.http() as h:
        r = h.post("/v1/imports", content=b"PK\x03\x04 not really a zip" * 50,
                   headers={"content-type": "application/zip"})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "archive_truncated" and r.json()["error"]["param"] == "file"
        assert h.post("/v1/imports").status_code == 400
    assert not [p for p in (target.data_dir / "assets" / ".tmp").iterdir()]


def test_cli_export_matches_api_export(source, tmp_path):
    out = tmp_path / "cli.zip"
    source.cli("export", "-o", str(out))
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["counts"]["videos"] == 3
    assert {n for n in manifest["files"] if n.startswith("videos/")} == \
        {f"videos/{i}/{f}" for i in source.ids for f in ("video.mp4", "thumbnail.webp", "spritesheet.jpg")}


def test_migrate_interrupted_then_resumed(source, tmp_path):
    dst = LiveServer(tmp_path / "c", "--no-worker").start()
    try:
        args = ("migrate", "--from", source.base_url + "/v1", "--api-key", source.api_key)
        first = dst.cli(*args, "--limit", "2")  # stops halfway, like an interrupted run
        assert "2 imported now" in first.stdout, first.stdout + first.stderr
        assert len(dst.client().videos.list(limit=100).data) == 2
        second = dst.cli(*args)
        assert "1 imported now, 2 already imported" in second.stdout, second.stdout
        third = dst.cli(*args)
        assert "0 imported now, 3 already imported" in third.stdout
        listed = [v.id for v in dst.client().videos.list(limit=100).data]
        assert sorted(listed) == sorted(source.ids), "complete, and no duplicates"
        _same_library(source, dst, source.ids)
        with pytest.raises(openai.AuthenticationError):
            dst.client("msk-wrong").videos.list()
        bad = dst.cli("migrate", "--from", source.base_url + "/v1", "--api-key", "msk-wrong", check=False)
        assert bad.returncode == 1 and "could not list videos" in bad.stderr
    finally:
        dst.stop()
