"""The storage room: save, open and delete artifacts by key.

PUT HERE: the `Storage` interface and its backends (local folder; S3-compatible).
DO NOT PUT HERE: anything that knows what a video or a user is beyond its id. Keys are
built in `keys.py` only, from server-generated ids, never from user input; the local
backend still refuses any key that would escape its root.
"""

from mutoscope.storage.base import Storage, StorageUnavailable
from mutoscope.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageUnavailable"]
