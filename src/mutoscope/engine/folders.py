"""A model's weights copied onto this machine by hand (from a mirror, a disk, another server), registered
without network and without torch: `mutoscope models add PATH`.

The folder is checked for what a pull would have fetched (model_index.json, a folder with files for every
component, readable configs, safetensors headers that parse, the recipe's upsampler and LoRA), then linked as
`<weights_dir>/<model name>` and marked complete, so the catalog, `serve` and the engine find it exactly as
they find a pulled model. The engine still builds each component on first load; a config this diffusers
cannot read fails that model's first job with the engine's message.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from mutoscope.engine import weights as weights_mod
from mutoscope.engine.registry import ModelEntry, Registry

# A safetensors header is JSON; anything claiming more than this is not a safetensors file.
_MAX_HEADER = 100 * 1024 * 1024
_HUB_CACHE = re.compile(r"models--([^/]+?)--([^/]+)")


def repo_of(folder: Path) -> str | None:
    """The hub repo a folder holds, when its path says so: a hub cache snapshot (models--org--name/...)."""
    m = _HUB_CACHE.search(folder.resolve().as_posix())
    return f"{m.group(1)}/{m.group(2)}" if m else None


def detect(registry: Registry, folder: Path) -> ModelEntry | None:
    """The configured model whose hub repo this folder is: by a hub cache path, else by the folder's name
    (a `git clone` or `hf download --local-dir` keeps the repo's name)."""
    repo = repo_of(folder)
    name = folder.resolve().name.lower()
    for entry in registry.entries():
        if entry.is_builtin or weights_mod.is_local_path(entry.weights):
            continue
        if (repo and entry.weights.lower() == repo.lower()) or entry.weights.rsplit("/", 1)[-1].lower() == name:
            return entry
    return None


def problems(entry: ModelEntry, folder: Path) -> list[str]:
    """What is missing or unreadable in a hand-copied folder (empty: it looks complete). Reads configs and
    safetensors headers only, never the weights."""
    folder = Path(folder)
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"model_index.json is missing or unreadable ({type(exc).__name__})"]
    if not isinstance(index, dict):
        return ["model_index.json is not a JSON object"]
    found: list[str] = []
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2 or value[0] is None:
            continue
        sub = folder / name
        if not sub.is_dir() or not any(sub.iterdir()):
            found.append(f"component {name!r} ({value[1]}) has no files")
            continue
        found += [f"{name}/{p.name}: {why}" for p in sorted(sub.glob("*.json")) if (why := _json_problem(p))]
        found += [f"{name}/{p.name}: {why}" for p in sorted(sub.glob("*.safetensors"))
                  if (why := _safetensors_problem(p))]
    extra_folders, extra_files = weights_mod._recipe_files(entry)
    found += [f"the {sub!r} folder (upsampler) has no config.json" for sub in extra_folders
              if not (folder / sub / "config.json").is_file()]
    found += [f"{name!r} is missing" for name in extra_files if not (folder / name).is_file()]
    return found


def register(entry: ModelEntry, folder: Path, weights_dir: Path) -> Path:
    """Link the checked folder as the model's weights and mark it complete; returns where the engine reads it.
    Refuses (ValueError) to replace weights that are already there."""
    folder = Path(folder).resolve()
    target = weights_mod.model_dir(entry, weights_dir)
    if target.is_symlink() or target.exists():
        if target.resolve() != folder:
            raise ValueError(f"{entry.name} already has weights at {target}; remove them first "
                             f"(mutoscope models rm {entry.name})")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(folder, target_is_directory=True)
    (folder / weights_mod.COMPLETE_MARKER).write_text(
        json.dumps({"repo_id": entry.weights, "revision": entry.revision, "added_from": str(folder)}, indent=2),
        encoding="utf-8")
    return target


def _json_problem(path: Path) -> str | None:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"not readable JSON ({type(exc).__name__})"
    return None


def _safetensors_problem(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return "too short to be safetensors"
            (n,) = struct.unpack("<Q", head)
            if n <= 1 or n > _MAX_HEADER:
                return "not a safetensors file (header length)"
            header = json.loads(f.read(n))
        if not isinstance(header, dict):
            return "not a safetensors file (header)"
        end = max((int(v["data_offsets"][1]) for k, v in header.items()
                   if k != "__metadata__" and isinstance(v, dict)), default=0)
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        return f"not a safetensors file ({type(exc).__name__})"
    if path.stat().st_size < 8 + n + end:
        return "cut short (an interrupted copy)"
    return None
