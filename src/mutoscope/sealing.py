"""Secrets the server has to read back (webhook signing secrets), sealed at rest with a key the database
never holds.

PUT HERE: the server's sealing key (`MUTOSCOPE_SECRET_KEY`, or a key file made on first start in the
data folder with mode 0600), `seal` and `open`.
DO NOT PUT HERE: secrets that only need checking (API keys are stored as hashes by accounts/), or the
records that hold sealed values (each room keeps its own).

A copy of the database alone (a backup, a leaked volume) then gives away no signing secret. Sealing is
AES-256-GCM with the owning row's id as associated data, so a sealed value copied into another row does
not open there. A top-level module like `outbound.py`: any room may seal, and it imports nothing from the
package.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import time
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from pathlib import Path

    from mutoscope.config import Settings

PREFIX = "sealed1:"
_NONCE = 12


class SealError(Exception):
    """A sealed value that does not open with this key (another server's key, or a damaged value)."""


def _decode_key(text: str, origin: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ValueError(f"{origin} must be 32 random bytes in urlsafe base64, e.g. from "
                         "`python -c \"import secrets,base64;print(base64.urlsafe_b64encode(secrets.token_bytes(32))"
                         ".decode())\"`")
    return key


def _key_file(path: "Path") -> bytes:
    """Read the key file, or create it (0600, exclusively, so two processes starting together agree)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(20):  # another process may have created it a moment ago and still be writing
            text = path.read_text().strip()
            if text:
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
                return _decode_key(text, f"the key file {path.name}")
            time.sleep(0.05)
        raise ValueError(f"the key file {path.name} in the data folder is empty; restore it from a backup "
                         "(without it, stored webhook secrets cannot be read)") from None
    text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return _decode_key(text, "the key file")


class SecretBox:
    """Seals short secrets for one database row. Args: key: 32 bytes."""

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, settings: "Settings") -> "SecretBox":
        if settings.secret_key is not None:
            return cls(_decode_key(settings.secret_key.get_secret_value(), "MUTOSCOPE_SECRET_KEY"))
        return cls(_key_file(settings.secret_key_file))

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(PREFIX)

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, value: str, *, context: str) -> str:
        if not self.is_sealed(value):
            raise SealError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(value.removeprefix(PREFIX))
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError("sealed with another key, or damaged") from None
