from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from mutoscope.storage.base import Storage
from mutoscope.storage.private import FILE_MODE, private_dir

_KEY = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)*$")


class LocalStorage(Storage):
    def __init__(self, root: Path):
        self.root = root.resolve()
        private_dir(self.root)
        private_dir(self.root / ".tmp")

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"invalid storage key: {key!r}")
        p = (self.root / key).resolve()
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
