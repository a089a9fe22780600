"""The `__call__` arguments of each family's diffusers pipelines, remembered per installed diffusers version.

A models file's `pipeline_kwargs` are checked when a server starts, so a typo stops it there rather than at a
model's first job. Reading the arguments means importing diffusers' pipeline classes (torch and diffusers:
seconds, most of a cold start); the answer only changes with the diffusers version or the family's code, so it
is kept in a small JSON file under the user's cache folder and read back on every later start. Torch-free on a
cache hit.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mutoscope"


def _diffusers_version() -> str:
    try:
        return metadata.version("diffusers")
    except metadata.PackageNotFoundError:
        return "none"


def _family_key(family: Any) -> str:
    """The family's name and a digest of its module's source: new code may call other pipelines."""
    try:
        source = Path(inspect.getfile(type(family))).read_bytes()
    except (OSError, TypeError):
        source = b""
    return f"{family.name}:{hashlib.sha256(source).hexdigest()[:16]}"


def _compute(family: Any) -> dict[str, Any]:
    classes = family.pipeline_classes()
    accepted: set[str] | None = set()
    for cls in classes:
        params = inspect.signature(cls.__call__).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            accepted = None  # a pipeline that takes **kwargs accepts any name
            break
        accepted |= set(params) - {"self"}
    return {"classes": [c.__name__ for c in classes], "accepted": None if accepted is None else sorted(accepted)}


def pipeline_arguments(family: Any) -> tuple[frozenset[str] | None, tuple[str, ...]]:
    """(the `__call__` arguments any of the family's pipelines accepts, or None for "any"; the classes' names)."""
    path = cache_dir() / f"pipeline-signatures-diffusers-{_diffusers_version()}.json"
    key = _family_key(family)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    entry = table.get(key)
    if not (isinstance(entry, dict) and isinstance(entry.get("classes"), list)
            and (entry.get("accepted") is None or isinstance(entry.get("accepted"), list))):
        entry = _compute(family)
        table[key] = entry
        _write(path, table)
    accepted = entry["accepted"]
    return (None if accepted is None else frozenset(map(str, accepted))), tuple(map(str, entry["classes"]))


def _write(path: Path, table: dict[str, Any]) -> None:
    """Atomically, and never fatally: an unwritable cache only means the next start computes it again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as f:
            json.dump(table, f)
        os.replace(f.name, path)
    except OSError as exc:
        logger.info("could not cache pipeline signatures at %s: %s", path, exc)
