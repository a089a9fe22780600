from __future__ import annotations

import abc
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mutoscope.errors import MutoscopeError

# Chunks handed to a streamed download: small enough to keep many concurrent downloads cheap,
# large enough that each one is not a round trip per few kilobytes.
CHUNK_BYTES = 256 * 1024

_KEY = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)*$")


class StorageUnavailable(MutoscopeError):
    """The asset store cannot be reached (an S3 endpoint down, a disk gone): retry later.

    Its message is safe to show a client: backends log the endpoint and the cause instead (the one
    exception is the start-up check, whose message goes to the operator's console only).
    """

    status_code = 503
    type = "server_error"
    code = "storage_unavailable"


def check_key(key: str) -> str:
    """Refuse keys that are not plain relative names (no '..', no leading dot or slash) on every backend."""
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid storage key: {key!r}")
    return key


class Storage(abc.ABC):
    """Artifacts by key. A missing key is `FileNotFoundError` from the readers and None from `size`;
    a backend that cannot be reached raises `StorageUnavailable`."""

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data`; a reader sees the old object or the whole new one, never a part."""

    @abc.abstractmethod
    def put_file(self, key: str, src: Path) -> None:
        """Move a finished local file into storage (atomically for readers); `src` is gone afterwards."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A seekable binary file of the object (remote backends spool it locally first)."""

    @abc.abstractmethod
    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes `start`..`end` (inclusive, like HTTP's Range) in chunks of at most CHUNK_BYTES.

        The object is looked up before this returns, so a missing key raises here, not mid-stream.
        """

    @abc.abstractmethod
    def local_path(self, key: str) -> Path | None:
        """A filesystem path for zero-copy serving, or None for remote backends."""

    def local_copy(self, key: str, dest: Path) -> Path | None:
        """A local file holding the object, for libraries that need a path: the stored file itself where
        the backend has one, else a download to `dest` (the caller's scratch file). None if missing."""
        path = self.local_path(key)
        if path is not None:
            return path if path.exists() else None
        try:
            with self.open(key) as src, open(dest, "wb") as out:
                while chunk := src.read(CHUNK_BYTES):
                    out.write(chunk)
        except FileNotFoundError:
            dest.unlink(missing_ok=True)
            return None
        return dest

    @abc.abstractmethod
    def size(self, key: str) -> int | None:
        """The object's length in bytes, or None when it does not exist."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Delete the object `prefix` and everything under `prefix/` (not `prefix` as a mere string prefix)."""

    @abc.abstractmethod
    def scratch_dir(self) -> Path:
        """A local folder for temporary files of jobs (same filesystem as the store when local)."""


@dataclass
class StoredFile:
    """What a download serves: an object that exists (`size` was just read) and how to name it."""

    storage: Storage
    key: str
    size: int
    media_type: str
    filename: str
