from __future__ import annotations

import abc
from pathlib import Path
from typing import BinaryIO

from mutoscope.errors import MutoscopeError


class StorageUnavailable(MutoscopeError):
    """The asset store cannot be reached (an S3 endpoint down, a disk gone): retry later."""

    status_code = 503
    type = "server_error"
    code = "storage_unavailable"


class Storage(abc.ABC):
    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def put_file(self, key: str, src: Path) -> None:
        """Move a finished local file into storage (atomically where the backend can)."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO: ...

    @abc.abstractmethod
    def local_path(self, key: str) -> Path | None:
        """A filesystem path for zero-copy serving, or None for remote backends."""

    @abc.abstractmethod
    def size(self, key: str) -> int | None: ...

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> None: ...

    @abc.abstractmethod
    def scratch_dir(self) -> Path:
        """A local folder for temporary files of jobs (same filesystem as the store when local)."""
