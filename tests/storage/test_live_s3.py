"""A live API and a separate worker on a SeaweedFS bucket: generate, download whole, by Range and by HEAD,
remix, delete, export, and find every artifact in the bucket and none in either data folder. The same
Range and HEAD checks run on the local backend in tests/api/test_videos.py."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
import zipfile

import pytest

from tests.conftest import LiveServer, server_env, wait_for
from tests.storage.ranges import check_range_and_head, check_range_errors

pytestmark = pytest.mark.slow  # an API, a worker and two generations: minutes on a CPU

FAST = {"num_inference_steps": 2}
ASSET_SUFFIXES = (".mp4", ".webp", ".jpg", ".png", ".zip", ".part")


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"live-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def s3_live(s3_server, prefix, tmp_path_factory):
    """An API-only `serve --no-worker` and a `mutoscope worker` with data folders of their own, as on two
    machines: they share only the database and the bucket, so every file the API serves came through S3."""
    root = tmp_path_factory.mktemp("s3live")
    shared = {**s3_server.env(prefix), "MUTOSCOPE_DATABASE_URL": f"sqlite:///{root / 'data' / 'mutoscope.db'}"}
    srv = LiveServer(root / "data", "--no-worker", **shared).start()
    # Every process of one installation holds the same sealing key (docs/deploy.md); the worker refuses
    # to start with another.
    shared["MUTOSCOPE_SECRET_KEY"] = (root / "data" / "secret-key").read_text().strip()
    srv.worker_dir = root / "worker"
    log = root / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "mutoscope", "worker"],
                              env=server_env(srv.worker_dir, **shared), stdout=open(log, "ab"),
                              stderr=subprocess.STDOUT)
    yield srv
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    srv.stop()


@pytest.fixture(scope="module")
def s3_video(s3_live):
    v = s3_live.client().videos.create_and_poll(prompt="a paper boat on a pond", seconds="4",
                                                extra_body={**FAST, "seed": 3})
    assert v.status == "completed", v.error
    return v


def test_sdk_download_matches_the_bucket(s3_live, s3_server, prefix, s3_video):
    client, v = s3_live.client(), s3_video
    data = client.videos.download_content(v.id).read()
    assert data[4:8] == b"ftyp"
    keys = s3_server.keys(f"{prefix}/videos/{v.id}/")  # under the published attempt's folder
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == ["spritesheet.jpg", "thumbnail.webp", "video.mp4"], keys
    video_key = next(k for k in keys if k.endswith("/video.mp4"))
    stored = s3_server.client().get_object(Bucket=s3_server.bucket, Key=video_key)
    assert stored["Body"].read() == data
    assert client.videos.download_content(v.id, variant="thumbnail").read()[:4] == b"RIFF"
    assert_no_assets_on_disk(s3_live)


def assert_no_assets_on_disk(srv) -> None:
    """Nothing of a video on either process's disk: no assets folder contents, nothing left in scratch."""
    for folder in (srv.data_dir, srv.worker_dir):
        left = [p for p in folder.rglob("*") if p.is_file() and p.suffix in ASSET_SUFFIXES]
        assert left == [], left
        assets = folder / "assets"
        assert not assets.exists() or not any(assets.rglob("*"))


def test_remix_reads_its_source_from_the_bucket_then_deletes(s3_live, s3_server, prefix, s3_video, tmp_path):
    """The C2PA ingredient (the source MP4) comes from the bucket via a scratch copy that is cleaned up."""
    client = s3_live.client()
    remix = client.videos.poll(client.videos.remix(s3_video.id, prompt="the same boat at night").id)
    assert remix.status == "completed", remix.error
    path = tmp_path / "remix.mp4"
    client.videos.download_content(remix.id).write_to_file(path)
    with s3_live.http() as h, open(path, "rb") as f:
        c2pa = h.post("/v1/verify", files={"file": ("clip.mp4", f, "video/mp4")}).json()["c2pa"]
    assert c2pa["source_video_id"] == s3_video.id and c2pa["ingredients"] == [f"{s3_video.id}.mp4"]
    assert_no_assets_on_disk(s3_live)
    client.videos.delete(remix.id)
    assert s3_server.keys(f"{prefix}/videos/{remix.id}/") == []
    assert len(s3_server.keys(f"{prefix}/videos/{s3_video.id}/")) == 3, "the source is untouched"


def test_range_and_head(s3_live, s3_video):
    with s3_live.http() as h:
        check_range_and_head(h, f"/v1/videos/{s3_video.id}/content")


def test_range_errors_use_the_envelope(s3_live, s3_video):
    with s3_live.http() as h:
        check_range_errors(h, f"/v1/videos/{s3_video.id}/content")
        assert h.head("/v1/videos/video_nope/content").status_code == 404


def test_export_archive_lives_in_the_bucket(s3_live, s3_server, prefix, s3_video):
    with s3_live.http() as h:
        e = h.post("/v1/exports").json()
        done = wait_for(lambda: (r := h.get(f"/v1/exports/{e['id']}").json())["status"] in ("completed", "failed")
                        and r, timeout=120)
        assert done["status"] == "completed", done
        assert s3_server.keys(f"{prefix}/exports/") == [f"{prefix}/exports/{e['id']}.zip"]
        archive = h.get(f"/v1/exports/{e['id']}/content")
        assert archive.status_code == 200 and len(archive.content) == done["bytes"]
        first = h.get(f"/v1/exports/{e['id']}/content", headers={"Range": "bytes=0-3"})
        assert first.status_code == 206 and first.content == b"PK\x03\x04"
        names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
        assert any(n.endswith("video.mp4") for n in names)
        assert h.delete(f"/v1/exports/{e['id']}").status_code == 200
    assert s3_server.keys(f"{prefix}/exports/") == []
