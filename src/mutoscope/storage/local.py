from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mutoscope.storage.base import CHUNK_BYTES, Storage, check_key
from mutoscope.storage.private import FILE_MODE, private_dir


class LocalStorage(Storage):
    """Args:
        root: the folder that holds every object; `.tmp` inside it is the scratch folder, on the same
            filesystem so that `put_file` is a rename.
    """

    def __init__(self, root: Path):
        self.root = root.resolve()
        private_dir(self.root)
        private_dir(self.root / ".tmp")

    def _path(self, key: str) -> Path:
        p = (self.root / check_key(key)).resolve()
        if self.root not in p.parents and p != self.root:
            raise ValueError(f"invalid storage key: {key!r}")
        return p

    def _parent(self, dest: Path) -> None:
        # Folders 0700 and files 0600 (storage/private.py): uploads and cameo frames can show a face.
        # Each missing folder is made in turn, since mkdir(parents=True) gives the parents default modes.
        missing = [p for p in (dest.parent, *dest.parent.parents) if self.root in p.parents and not p.exists()]
        for p in reversed(missing):
            p.mkdir(mode=0o700, exist_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        self._parent(dest)
        fd, tmp = tempfile.mkstemp(dir=self.scratch_dir())  # mkstemp's file is already 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)

    def put_file(self, key: str, src: Path) -> None:
        dest = self._path(key)
        self._parent(dest)
        os.chmod(src, FILE_MODE)  # the encoder makes its files 0666 & umask, for outputs outside storage
        try:
            os.replace(src, dest)
        except OSError:  # another filesystem: copy, then rename into place
            tmp = dest.with_name(dest.name + ".part")
            shutil.copyfile(src, tmp)
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, dest)
            os.unlink(src)

    def open(self, key: str) -> BinaryIO:
        return open(self._path(key), "rb")

    def open_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        f = open(self._path(key), "rb")  # opened here so a missing key raises before streaming starts
        return self._chunks(f, start, end)

    @staticmethod
    def _chunks(f: BinaryIO, start: int, end: int) -> Iterator[bytes]:
        with f:
            f.seek(start)
            left = end - start + 1
            while left > 0 and (chunk := f.read(min(CHUNK_BYTES, left))):
                left -= len(chunk)
                yield chunk

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def size(self, key: str) -> int | None:
        p = self._path(key)
        return p.stat().st_size if p.exists() else None

    def delete_prefix(self, prefix: str) -> None:
        p = self._path(prefix.rstrip("/"))
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()

    def scratch_dir(self) -> Path:
        return self.root / ".tmp"
