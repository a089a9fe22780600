"""Where a model's weights live on disk, and pulling/removing them.

PUT HERE: mapping a registry entry to a local diffusers folder, the download
(huggingface_hub.snapshot_download, resumable) and its completeness marker.
DO NOT PUT HERE: building pipelines from those files (families/).

Layout: `<weights_dir>/<model name>/` holds a plain diffusers folder
(model_index.json plus one subfolder per component) and, once a pull has
finished, `.mutoscope-complete.json`. A `weights` value that is a local folder
is used in place and never copied. `builtin:` test models need no files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutoscope.engine.base import ModelNotAvailable

if TYPE_CHECKING:  # pragma: no cover
    from mutoscope.engine.registry import ModelEntry

COMPLETE_MARKER = ".mutoscope-complete.json"

# Per component folder: configs, tokenizer files and safetensors weights only.
# Whole-model single-file checkpoints at the repo root (LTX-2 ships several,
# tens of GB each) and duplicate .bin/.pth/.gguf copies are never fetched.
_COMPONENT_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken")

Progress = Callable[[float, str], None]
"""progress(fraction in [0, 1], message)."""


def pull_command(name: str) -> str:
    return f"mutoscope models pull {name}"


def is_local_path(weights: str) -> bool:
    return weights.startswith(("/", "./", "../", "~")) or Path(weights).expanduser().is_dir()


def model_dir(entry: "ModelEntry", weights_dir: Path) -> Path:
    """The folder `from_pretrained` reads for this entry (whether or not it exists yet)."""
    if is_local_path(entry.weights):
        return Path(entry.weights).expanduser()
    return Path(weights_dir) / entry.name


def is_installed(entry: "ModelEntry", weights_dir: Path) -> bool:
    if entry.is_builtin:
        return True
    folder = model_dir(entry, weights_dir)
    if is_local_path(entry.weights):
        return (folder / "model_index.json").is_file()
    return (folder / COMPLETE_MARKER).is_file()


def require_installed(entry: "ModelEntry", weights_dir: Path) -> Path:
    """The local folder for `entry`, or ModelNotAvailable naming the command that fixes it."""
    folder = model_dir(entry, weights_dir)
    if not is_installed(entry, weights_dir):
        if is_local_path(entry.weights):
            raise ModelNotAvailable(
                f"model {entry.name!r}: no diffusers folder (model_index.json) at {folder}; "
                "fix the `weights` path in the model registry"
            )
        raise ModelNotAvailable(
            f"model {entry.name!r}: weights {entry.weights!r} are not downloaded to {folder}; "
            f"run `{pull_command(entry.name)}`"
        )
    return folder


def allow_patterns(model_index: dict[str, Any], extra_folders: tuple[str, ...] = (),
                   extra_files: tuple[str, ...] = ()) -> list[str]:
    """Files to fetch: model_index.json plus the listed components' configs, tokenizers and weights.

    `extra_folders` are component folders the pipeline's model_index.json does not list (the two-stage
    recipe's latent upsampler); `extra_files` are single files fetched as named (its refine LoRA).
    """
    components = [
        key
        for key, value in model_index.items()
        if not key.startswith("_") and isinstance(value, list) and len(value) == 2 and value[0] is not None
    ]
    patterns = ["model_index.json", *extra_files]
    for component in [*sorted(components), *(f for f in extra_folders if f not in components)]:
        patterns += [f"{component}/{p}" for p in _COMPONENT_PATTERNS]
        # Some tokenizers (Gemma's) keep extra files one level down.
        patterns += [f"{component}/*/{p}" for p in _COMPONENT_PATTERNS]
    return patterns


def pull(entry: "ModelEntry", weights_dir: Path, progress: Progress | None = None) -> Path:
    """Download `entry`'s weights into `<weights_dir>/<name>/`; safe to rerun (resumes, skips finished files)."""
    if entry.is_builtin:
        if progress:
            progress(1.0, f"{entry.name} is built in; nothing to download")
        return model_dir(entry, weights_dir)
    if is_local_path(entry.weights):
        return require_installed(entry, weights_dir)

    from huggingface_hub import hf_hub_download, snapshot_download

    target = model_dir(entry, weights_dir)
    target.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda fraction, message: None)
    report(0.0, f"reading {entry.weights} model_index.json")
    index_file = hf_hub_download(entry.weights, "model_index.json", revision=entry.revision, local_dir=target)
    patterns = allow_patterns(json.loads(Path(index_file).read_text(encoding="utf-8")), *_recipe_files(entry))
    snapshot_path = snapshot_download(
        entry.weights,
        revision=entry.revision,
        local_dir=target,
        allow_patterns=patterns,
        tqdm_class=_progress_tqdm(report, entry.weights),
    )
    (target / COMPLETE_MARKER).write_text(
        json.dumps({"repo_id": entry.weights, "revision": entry.revision, "allow_patterns": patterns}, indent=2),
        encoding="utf-8",
    )
    report(1.0, f"{entry.name} installed at {snapshot_path}")
    return target


def _recipe_files(entry: "ModelEntry") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(extra folders, extra files) the entry's recipe needs beyond the pipeline's components."""
    if entry.recipe != "two_stage":
        return (), ()
    return ((entry.upsampler,) if entry.upsampler else ()), ((entry.refine_lora,) if entry.refine_lora else ())


def remove(entry: "ModelEntry", weights_dir: Path) -> bool:
    """Delete downloaded weights; returns False when there was nothing to delete.

    Builtin models and operator-managed local folders are never deleted.
    """
    if entry.is_builtin or is_local_path(entry.weights):
        return False
    target = model_dir(entry, weights_dir)
    if not target.exists():
        return False
    shutil.rmtree(target)
    return True


def installed_revision(entry: "ModelEntry", weights_dir: Path) -> str | None:
    """The revision recorded by the pull that installed this model, if any."""
    marker = model_dir(entry, weights_dir) / COMPLETE_MARKER
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("revision")
    except (OSError, ValueError):
        return None


def _progress_tqdm(report: Progress, label: str) -> Any:
    """A tqdm class that forwards snapshot_download's byte counts to `report`."""
    from tqdm.auto import tqdm

    class _Reporting(tqdm):  # type: ignore[misc, valid-type]
        def update(self, n: float | None = 1) -> bool | None:
            result = super().update(n)
            if self.total:
                report(min(1.0, self.n / self.total), f"downloading {label}")
            return result

    return _Reporting
