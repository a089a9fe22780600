"""Modes for the server's own files: only the user the server runs as may read them.

The data folder holds the database (password-equivalent key hashes, consent records, cameo
embeddings), signing keys, the owner's API key and every upload and result, some of them biometric.
So the folder is 0700 and the files in it 0600, whatever the umask: another local account on the
machine must not be able to read a face, a key or a video. `tighten()` brings an install made before
this rule into line at start; files already inside a 0700 folder are out of other users' reach, so
only the folder and the secrets are touched, not every asset.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
# Secrets directly under the data folder (the owner's key, the web session secret) and the signing keys.
SECRET_GLOBS = ("owner-api-key", "*secret*", "provenance/*.key")


def _chmod(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass
    except PermissionError:  # owned by another user (a mount point): say so rather than fail the start
        logger.warning("cannot set mode %o on %s: it is owned by another user", mode, path)


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> None:
    _chmod(path, FILE_MODE)


def tighten(data_dir: Path) -> None:
    """The data folder 0700 and its secrets 0600 (the database's files are db/session.py's); and from here on
    every file and folder this process makes is 0600 and 0700 (export archives, scratch, keys, weights), so
    no writer has to remember to."""
    os.umask(0o077)
    private_dir(data_dir)
    _chmod(data_dir / "provenance", DIR_MODE)
    for pattern in SECRET_GLOBS:
        for p in data_dir.glob(pattern):
            if p.is_file():
                private_file(p)
