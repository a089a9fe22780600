"""The storage room: save, open and delete artifacts by key.

PUT HERE: the `Storage` interface and its backends (local folder; S3-compatible bucket), the factory that
picks one from Settings, and `StoredFile` (what a download serves; `http/files.py` sends it with Range).
DO NOT PUT HERE: anything that knows what a video or a user is beyond its id. Keys are
built in `keys.py` only, from server-generated ids, never from user input; every backend
still refuses any key that would escape its root.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from mutoscope.storage.base import Storage, StorageUnavailable, StoredFile
from mutoscope.storage.local import LocalStorage

if TYPE_CHECKING:
    from mutoscope.config import Settings

__all__ = ["LocalStorage", "Storage", "StorageUnavailable", "StoredFile", "from_settings"]


def from_settings(settings: "Settings", check: bool = True) -> Storage:
    """The backend MUTOSCOPE_STORAGE_URL names (default: the assets folder in the data folder).

    With `check`, a bucket is reached once now, so a wrong URL or a dead endpoint fails at start-up
    with `StorageUnavailable` naming it instead of failing the first job.
    """
    url = settings.storage_url
    if not url:
        return LocalStorage(settings.assets_dir)
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStorage(Path(unquote(parts.path)))
    from mutoscope.storage.s3 import S3Storage

    if not parts.netloc:
        raise ValueError(f"MUTOSCOPE_STORAGE_URL {url!r} names no bucket (s3://bucket[/prefix])")
    secret = settings.s3_secret_access_key
    storage = S3Storage(parts.netloc, parts.path, scratch=settings.data_dir / "scratch",
                        endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                        access_key_id=settings.s3_access_key_id,
                        secret_access_key=secret.get_secret_value() if secret else None,
                        addressing_style=settings.s3_addressing_style)
    if check:
        storage.check()
    return storage
