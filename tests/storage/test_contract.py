"""One contract, two backends: LocalStorage on a folder and S3Storage on a real SeaweedFS bucket."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from mutoscope.config import Settings
from mutoscope.storage import LocalStorage, StorageUnavailable, from_settings
from mutoscope.storage.base import CHUNK_BYTES
from mutoscope.storage.s3 import S3Storage
from tests.conftest import free_port
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY

MiB = 1024 * 1024


def s3_storage(server, tmp_path, **kw) -> S3Storage:
    return S3Storage(server.bucket, f"contract-{uuid.uuid4().hex[:8]}", scratch=tmp_path / "scratch",
                     endpoint_url=server.endpoint_url, region=REGION, access_key_id=ACCESS_KEY,
                     secret_access_key=SECRET_KEY, **kw)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.live)])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "assets")
    # The smallest part S3 allows, so the multipart test stays small.
    return s3_storage(request.getfixturevalue("s3_server"), tmp_path, multipart_threshold=5 * MiB)


def read_all(store, key: str) -> bytes:
    with store.open(key) as f:
        return f.read()


def test_put_open_size_and_overwrite(store):
    store.put_bytes("videos/v1/video.mp4", b"first version")
    assert read_all(store, "videos/v1/video.mp4") == b"first version"
    assert store.size("videos/v1/video.mp4") == len(b"first version")
    store.put_bytes("videos/v1/video.mp4", b"second")
    assert read_all(store, "videos/v1/video.mp4") == b"second" and store.size("videos/v1/video.mp4") == 6


def test_open_is_seekable(store):
    store.put_bytes("files/f1", bytes(range(256)))
    with store.open("files/f1") as f:
        f.seek(200)
        assert f.read(3) == bytes([200, 201, 202])
        f.seek(0)
        assert f.read(2) == b"\x00\x01"


def test_put_file_moves_the_file(store, tmp_path):
    src = tmp_path / "render" / "video.mp4"
    src.parent.mkdir()
    src.write_bytes(b"rendered bytes")
    store.put_file("videos/v2/video.mp4", src)
    assert not src.exists(), "put_file moves: the scratch copy is gone"
    assert read_all(store, "videos/v2/video.mp4") == b"rendered bytes"


def test_open_range_slices_in_bounded_chunks(store):
    data = os.urandom(3 * CHUNK_BYTES + 1234)
    store.put_bytes("videos/v3/video.mp4", data)
    for start, end in [(0, 0), (100, 199), (0, len(data) - 1), (len(data) - 10, len(data) - 1),
                       (CHUNK_BYTES - 5, 2 * CHUNK_BYTES + 5)]:
        chunks = list(store.open_range("videos/v3/video.mp4", start, end))
        assert b"".join(chunks) == data[start:end + 1], (start, end)
        assert all(0 < len(c) <= CHUNK_BYTES for c in chunks)


def test_missing_key(store, tmp_path):
    with pytest.raises(FileNotFoundError):
        store.open("videos/nope/video.mp4")
    with pytest.raises(FileNotFoundError):
        store.open_range("videos/nope/video.mp4", 0, 10)
    assert store.size("videos/nope/video.mp4") is None
    assert store.local_copy("videos/nope/video.mp4", tmp_path / "copy.mp4") is None
    store.delete_prefix("videos/nope")  # deleting nothing is fine


def test_local_copy_gives_a_readable_file(store, tmp_path):
    store.put_bytes("videos/v4/video.mp4", b"source clip")
    path = store.local_copy("videos/v4/video.mp4", tmp_path / "source.mp4")
    assert path is not None and path.read_bytes() == b"source clip"
    assert (store.local_path("videos/v4/video.mp4") is None) == isinstance(store, S3Storage)


def test_delete_prefix_takes_the_folder_not_its_namesakes(store):
    for key in ("videos/abc/video.mp4", "videos/abc/thumbnail.webp", "videos/abcdef/video.mp4", "files/abc"):
        store.put_bytes(key, b"x")
    store.delete_prefix("videos/abc")
    assert store.size("videos/abc/video.mp4") is None and store.size("videos/abc/thumbnail.webp") is None
    assert store.size("videos/abcdef/video.mp4") == 1 and store.size("files/abc") == 1
    store.delete_prefix("files/abc")  # a single object by its own key
    assert store.size("files/abc") is None


def test_delete_prefix_paginates(s3_server, tmp_path):
    store = s3_storage(s3_server, tmp_path)
    store.page_size = 3  # 10 objects: four listing pages and four DeleteObjects calls
    for i in range(10):
        store.put_bytes(f"videos/many/{i}.bin", b"x")
    store.delete_prefix("videos/many")
    assert s3_server.keys(store.prefix + "videos/many") == []


def test_large_file_goes_up_in_parts(store, tmp_path):
    src = tmp_path / "big.mp4"
    data = os.urandom(12 * MiB + 77)
    src.write_bytes(data)
    store.put_file("exports/big.zip", src)
    assert store.size("exports/big.zip") == len(data)
    assert hashlib.sha256(read_all(store, "exports/big.zip")).digest() == hashlib.sha256(data).digest()
    across = 5 * MiB - 10, 5 * MiB + 10  # over the first part boundary
    assert b"".join(store.open_range("exports/big.zip", *across)) == data[across[0]:across[1] + 1]
    if isinstance(store, S3Storage):
        head = store.client.head_object(Bucket=store.bucket, Key=store.prefix + "exports/big.zip")
        assert head["ETag"].strip('"').endswith("-3"), "uploaded as a three-part multipart upload"


def test_keys_that_escape_are_refused(store):
    for bad in ("../etc/passwd", "/abs", "videos/../../x", "videos/.hidden/x", ""):
        with pytest.raises(ValueError):
            store.put_bytes(bad, b"x")


def test_unreachable_bucket_raises_storage_unavailable(tmp_path):
    dead = S3Storage("mutoscope-test", scratch=tmp_path / "scratch", endpoint_url=f"http://127.0.0.1:{free_port()}",
                     region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
    for call in (lambda: dead.put_bytes("files/f", b"x"), lambda: dead.open("files/f"),
                 lambda: dead.size("files/f"), lambda: dead.open_range("files/f", 0, 1),
                 lambda: dead.delete_prefix("files/f")):
        with pytest.raises(StorageUnavailable) as e:
            call()
        assert e.value.code == "storage_unavailable" and e.value.status_code == 503
        assert "127.0.0.1" not in e.value.message and SECRET_KEY not in e.value.message


def test_from_settings_picks_the_backend(s3_server, tmp_path):
    assert isinstance(from_settings(Settings(data_dir=tmp_path)), LocalStorage)
    assert from_settings(Settings(data_dir=tmp_path)).root == (tmp_path / "assets").resolve()
    other = from_settings(Settings(data_dir=tmp_path, storage_url=f"file://{tmp_path / 'elsewhere'}"))
    assert isinstance(other, LocalStorage) and other.root == (tmp_path / "elsewhere").resolve()
    s3 = from_settings(Settings(data_dir=tmp_path, storage_url=f"s3://{s3_server.bucket}/deploy/a",
                                s3_endpoint_url=s3_server.endpoint_url, s3_access_key_id=ACCESS_KEY,
                                s3_secret_access_key=SECRET_KEY, s3_region=REGION))
    assert isinstance(s3, S3Storage) and (s3.bucket, s3.prefix) == (s3_server.bucket, "deploy/a/")
    s3.put_bytes("files/f1", b"hi")
    assert s3_server.keys("deploy/a/") == ["deploy/a/files/f1"]


def test_from_settings_checks_the_bucket(s3_server, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StorageUnavailable, match=r"s3://mutoscope-test/p .*unreachable"):
        from_settings(Settings(data_dir=tmp_path, storage_url="s3://mutoscope-test/p", s3_endpoint_url=url,
                               s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY))
    with pytest.raises(StorageUnavailable, match="does not exist"):
        from_settings(Settings(data_dir=tmp_path, storage_url="s3://no-such-bucket-here",
                               s3_endpoint_url=s3_server.endpoint_url, s3_access_key_id=ACCESS_KEY,
                               s3_secret_access_key=SECRET_KEY, s3_region=REGION))
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, storage_url="ftp://nope")
