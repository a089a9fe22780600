"""Where a model's weights live on disk, and pulling/removing them.

PUT HERE: mapping a registry entry to a local diffusers folder, the download
(huggingface_hub.snapshot_download, resumable) and its completeness marker.
DO NOT PUT HERE: building pipelines from those files (families/).

Layout: `<weights_dir>/<model name>/` holds a plain diffusers folder
(model_index.json plus one subfolder per component) and, once a pull has
finished, `.mutoscope-complete.json`. A `weights` value that is a local folder
is used in place and never copied. `builtin:` test models need no files.
Camera LoRAs from the hub go to `<weights_dir>/.adapters/<org>/<name>/` (shared by every model
that names the repo), marked the same way once verified; local ones are used in place.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutoscope.engine.base import ModelNotAvailable

if TYPE_CHECKING:  # pragma: no cover
    from mutoscope.engine.camera import CameraMove
    from mutoscope.engine.registry import ModelEntry

COMPLETE_MARKER = ".mutoscope-complete.json"
ADAPTERS_DIR = ".adapters"

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


@dataclass
class PullPlan:
    """What a pull will fetch, measured before it starts.

    files: repo path -> size in bytes (the hub's metadata) of every file the pull fetches.
    present_bytes: bytes of those files already in the target at their full size (a resumed pull).
    free_bytes: free space on the target's file system.
    upsampler_patterns: what the pull fetches from the upsampler's own repo (`upsampler = { repo, ... }`) into
        the target's UPSAMPLER_DIR; its files are in `files` under that folder.
    """

    target: Path
    patterns: list[str]
    files: dict[str, int]
    present_bytes: int
    free_bytes: int
    adapters: list["AdapterPull"] = field(default_factory=list)
    upsampler_patterns: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values()) + sum(a.size for a in self.adapters)

    @property
    def to_download_bytes(self) -> int:
        return self.total_bytes - self.present_bytes - sum(a.size for a in self.adapters if a.present)

    @property
    def fits(self) -> bool:
        return self.to_download_bytes < self.free_bytes


def plan_pull(entry: "ModelEntry", weights_dir: Path) -> PullPlan:
    """Read model_index.json and the repo's file sizes (no weights yet): what `pull` would fetch."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.utils import filter_repo_objects

    target = model_dir(entry, weights_dir)
    target.mkdir(parents=True, exist_ok=True)
    index_file = hf_hub_download(entry.weights, "model_index.json", revision=entry.revision, local_dir=target)
    patterns = allow_patterns(json.loads(Path(index_file).read_text(encoding="utf-8")), *_recipe_files(entry))
    info = HfApi().model_info(entry.weights, revision=entry.revision, files_metadata=True)
    siblings = list(filter_repo_objects(info.siblings or [], allow_patterns=patterns, key=lambda f: f.rfilename))
    files = {f.rfilename: int(f.size or 0) for f in siblings}
    upsampler_patterns = _plan_upsampler(entry, files)
    present = sum(size for name, size in files.items()
                  if (target / name).is_file() and (target / name).stat().st_size == size)
    return PullPlan(target=target, patterns=patterns, files=files, present_bytes=present,
                    free_bytes=shutil.disk_usage(target).free, adapters=plan_adapters(entry, weights_dir),
                    upsampler_patterns=upsampler_patterns)


def _plan_upsampler(entry: "ModelEntry", files: dict[str, int]) -> list[str]:
    """An upsampler from its own repo: add its files (and sizes) to `files` under UPSAMPLER_DIR and return the
    patterns that fetch them. Refused now when the repo has no diffusers-format folder there: diffusers
    loads `LTX2LatentUpsamplerModel` only from a config.json and its weights."""
    if entry.recipe != "two_stage" or not entry.upsampler_repo:
        return []
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    from mutoscope.engine.registry import UPSAMPLER_DIR

    patterns = [f"{entry.upsampler}/{p}" for p in _COMPONENT_PATTERNS]
    info = HfApi().model_info(entry.upsampler_repo, revision=entry.upsampler_revision, files_metadata=True)
    found = {f.rfilename: int(f.size or 0)
             for f in filter_repo_objects(info.siblings or [], allow_patterns=patterns, key=lambda f: f.rfilename)}
    if f"{entry.upsampler}/config.json" not in found:
        raise ModelNotAvailable(f"model {entry.name!r}: {entry.upsampler_repo} has no {entry.upsampler}/config.json; "
                                "`upsampler` must name a diffusers-format folder (config.json and weights)")
    files.update({f"{UPSAMPLER_DIR}/{name}": size for name, size in found.items()})
    return patterns


def verify(entry: "ModelEntry", folder: Path, sizes: dict[str, int] | None = None) -> list[str]:
    """Problems with a downloaded model folder (empty: it is complete).

    Every component model_index.json lists has its folder; every config builds its component (at full
    size on the meta device, through the loader the engine uses, so a config this diffusers cannot
    read is caught now); the recipe's upsampler and LoRA are there; and every file has the size the
    hub listed (`sizes`, from `plan_pull`).
    """
    import torch

    from mutoscope.engine.families.base import builds_from_config, component_class, model_from_config

    problems: list[str] = []
    folder = Path(folder)
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"model_index.json is missing or unreadable ({exc})"]
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2 or value[0] is None:
            continue
        sub = folder / name
        if not sub.is_dir() or not any(sub.iterdir()):
            problems.append(f"component {name!r} ({value[1]}) has no files")
            continue
        try:
            cls = component_class(*value)
            if builds_from_config(cls):
                model_from_config(cls, sub, torch.bfloat16)
        except Exception as exc:  # any failure to build from the config is a broken download or an incompatibility
            problems.append(f"component {name!r}: its config does not load: {type(exc).__name__}: {exc}")
    _, extra_files = _recipe_files(entry)
    if entry.recipe == "two_stage" and entry.upsampler_path:
        if not (folder / entry.upsampler_path / "config.json").is_file():
            problems.append(f"the {entry.upsampler_path!r} folder (upsampler) has no config.json")
    for name in extra_files:
        if not (folder / name).is_file():
            problems.append(f"{name!r} is missing")
    for name, size in (sizes or {}).items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif size and path.stat().st_size != size:
            problems.append(f"{name} has {path.stat().st_size} bytes, the hub lists {size}")
    return problems


def pull(entry: "ModelEntry", weights_dir: Path, progress: Progress | None = None,
         plan: PullPlan | None = None) -> Path:
    """Download `entry`'s weights into `<weights_dir>/<name>/`; safe to rerun (resumes, skips finished files).

    The folder is marked complete only once `verify` finds nothing wrong; otherwise ModelNotAvailable
    lists the problems (rerunning the pull resumes and fixes a partial download).
    """
    report = progress or (lambda fraction, message: None)
    if entry.is_builtin or is_local_path(entry.weights):
        folder = model_dir(entry, weights_dir) if entry.is_builtin else require_installed(entry, weights_dir)
        adapters = plan.adapters if plan is not None else plan_adapters(entry, weights_dir)
        _fits(entry, sum(a.size for a in adapters if not a.present), Path(weights_dir))
        pull_adapters(entry, adapters, weights_dir, report)
        if entry.is_builtin:
            report(1.0, f"{entry.name} is built in; nothing else to download")
        return folder

    from huggingface_hub import snapshot_download

    report(0.0, f"reading {entry.weights} model_index.json")
    plan = plan or plan_pull(entry, weights_dir)
    target, patterns = plan.target, plan.patterns
    if not plan.fits:
        raise ModelNotAvailable(
            f"model {entry.name!r}: {format_bytes(plan.to_download_bytes)} to download but only "
            f"{format_bytes(plan.free_bytes)} free at {target}"
        )
    snapshot_path = snapshot_download(
        entry.weights,
        revision=entry.revision,
        local_dir=target,
        allow_patterns=patterns,
        tqdm_class=_progress_tqdm(report, entry.weights),
    )
    if plan.upsampler_patterns:
        from mutoscope.engine.registry import UPSAMPLER_DIR

        snapshot_download(entry.upsampler_repo, revision=entry.upsampler_revision, local_dir=target / UPSAMPLER_DIR,
                          allow_patterns=plan.upsampler_patterns,
                          tqdm_class=_progress_tqdm(report, entry.upsampler_repo))
    report(1.0, f"verifying {entry.name}")
    problems = verify(entry, target, plan.files)
    if problems:
        raise ModelNotAvailable(f"model {entry.name!r}: the download at {target} is not complete: "
                                f"{'; '.join(problems)}; run `{pull_command(entry.name)}` again")
    (target / COMPLETE_MARKER).write_text(
        json.dumps({"repo_id": entry.weights, "revision": entry.revision, "allow_patterns": patterns,
                    "upsampler": ({"repo_id": entry.upsampler_repo, "revision": entry.upsampler_revision,
                                   "allow_patterns": plan.upsampler_patterns} if plan.upsampler_patterns else None),
                    "bytes": sum(plan.files.values())}, indent=2),
        encoding="utf-8",
    )
    pull_adapters(entry, plan.adapters, weights_dir, report)
    report(1.0, f"{entry.name} installed at {snapshot_path}")
    return target


def format_bytes(n: int) -> str:
    """Bytes as the pull reports them: 12.3 GB (decimal units, as the hub shows sizes)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _recipe_files(entry: "ModelEntry") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(extra folders, extra files) the entry's recipe needs from the weights' repo beyond the pipeline's
    components (an upsampler from its own repo is fetched from there: `_plan_upsampler`)."""
    if entry.recipe != "two_stage":
        return (), ()
    in_weights = entry.upsampler and not entry.upsampler_repo
    return ((entry.upsampler,) if in_weights else ()), ((entry.refine_lora,) if entry.refine_lora else ())


def remove(entry: "ModelEntry", weights_dir: Path) -> bool:
    """Delete downloaded weights; returns False when there was nothing to delete.

    Builtin models and operator-managed local folders are never deleted.
    """
    if entry.is_builtin or is_local_path(entry.weights):
        return False
    target = model_dir(entry, weights_dir)
    if target.is_symlink():  # a folder registered with `models add`: unlink it, never delete the operator's copy
        target.unlink()
        return True
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



def adapter_folder(move: "CameraMove", weights_dir: Path) -> Path:
    """Where a move's LoRA lives: its local folder (or a local file's folder), or the shared hub download."""
    lora = Path(move.lora).expanduser() if move.is_local else None
    if lora is not None:
        return lora.parent if lora.suffix == ".safetensors" else lora
    return Path(weights_dir) / ADAPTERS_DIR / move.lora


def adapter_file(move: "CameraMove", weights_dir: Path) -> Path | None:
    """The .safetensors file to load for a move, or None when it is not on this machine (or not verified)."""
    folder = adapter_folder(move, weights_dir)
    if move.is_local:
        lora = Path(move.lora).expanduser()
        if lora.suffix == ".safetensors":
            return lora if lora.is_file() else None
        if move.weight_name:
            return folder / move.weight_name if (folder / move.weight_name).is_file() else None
        found = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
        return found[0] if len(found) == 1 else None
    marker = _adapter_marker(folder)
    # Without weight_name the file is the one the pull found alone at the repo's root (`default`).
    name = move.weight_name or marker.get("default")
    if not name or marker.get("revision") != move.revision or name not in marker.get("files", {}):
        return None
    return folder / name if (folder / name).is_file() else None


def adapter_installed(move: "CameraMove", weights_dir: Path) -> bool:
    return adapter_file(move, weights_dir) is not None


def _adapter_marker(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class AdapterPull:
    """One camera LoRA file a pull fetches: its repo, the file, its size on the hub, the moves that use it."""

    repo: str
    revision: str | None
    filename: str
    size: int
    target: Path
    moves: tuple[str, ...]
    named: bool  # the models file named the file (weight_name); otherwise it is the repo's only one

    @property
    def present(self) -> bool:
        path = self.target / self.filename
        return path.is_file() and path.stat().st_size == self.size and (self.target / COMPLETE_MARKER).is_file() \
            and self.filename in _adapter_marker(self.target).get("files", {})


def plan_adapters(entry: "ModelEntry", weights_dir: Path) -> list[AdapterPull]:
    """The hub camera LoRAs of `entry` and their sizes (read from the hub; nothing downloaded yet).

    A move without `weight_name` takes the repo's one .safetensors file at its root; a repo with none or
    several is an error naming them, so the operator can set `weight_name`."""
    hub = [m for m in entry.camera.values() if m.lora and not m.is_local]
    if not hub:
        return []
    from huggingface_hub import HfApi

    api = HfApi()
    listed: dict[tuple[str, str | None], dict[str, int]] = {}
    pulls: dict[tuple[str, str | None, str], AdapterPull] = {}
    for move in hub:
        key = (move.lora, move.revision)
        if key not in listed:
            info = api.model_info(move.lora, revision=move.revision, files_metadata=True)
            listed[key] = {f.rfilename: int(f.size or 0) for f in info.siblings or []}
        files = listed[key]
        name = move.weight_name
        if name is None:
            roots = sorted(f for f in files if f.endswith(".safetensors") and "/" not in f)
            if len(roots) != 1:
                raise ModelNotAvailable(
                    f"model {entry.name!r}: camera.{move.move}: {move.lora} has "
                    f"{'no' if not roots else len(roots)} .safetensors files at its root"
                    f"{(' (' + ', '.join(roots) + ')') if roots else ''}; set 'weight_name' in the models file")
            name = roots[0]
        elif name not in files:
            raise ModelNotAvailable(f"model {entry.name!r}: camera.{move.move}: {move.lora} has no file {name!r}")
        pkey = (move.lora, move.revision, name)
        if pkey in pulls:
            pulls[pkey].moves += (move.move,)
        else:
            pulls[pkey] = AdapterPull(repo=move.lora, revision=move.revision, filename=name, size=files[name],
                                      target=adapter_folder(move, weights_dir), moves=(move.move,),
                                      named=move.weight_name is not None)
    return list(pulls.values())


def adapter_problems(path: Path, size: int | None = None) -> list[str]:
    """What is wrong with a LoRA file (empty: it is usable): its size, and a safetensors header whose every
    tensor is a LoRA one (diffusers refuses a checkpoint with any name that lacks 'lora'). Torch-free."""
    if not path.is_file():
        return [f"{path.name} is missing"]
    if size and path.stat().st_size != size:
        return [f"{path.name} has {path.stat().st_size} bytes, the hub lists {size}"]
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            names = list(f.keys())
    except Exception as exc:  # a truncated or foreign file: the header does not parse
        return [f"{path.name} is not a readable safetensors file ({type(exc).__name__}: {exc})"]
    if not names:
        return [f"{path.name} holds no tensors"]
    if not all("lora" in n for n in names):
        return [f"{path.name} is not a LoRA (tensors without 'lora' in their name, e.g. "
                f"{next(n for n in names if 'lora' not in n)!r})"]
    return []


def pull_adapters(entry: "ModelEntry", adapters: list[AdapterPull], weights_dir: Path,
                  report: Progress) -> None:
    """Fetch and verify the hub camera LoRAs (skipping verified ones), and check the local ones exist."""
    problems: list[str] = []
    for move in entry.camera.values():
        if move.is_local and adapter_file(move, weights_dir) is None:
            problems.append(f"camera.{move.move}: no LoRA file at {move.lora}"
                            + (f" ({move.weight_name})" if move.weight_name else ""))
        elif move.is_local:
            problems += [f"camera.{move.move}: {p}" for p in adapter_problems(adapter_file(move, weights_dir))]
    if adapters:
        from huggingface_hub import hf_hub_download

        for i, a in enumerate(adapters):
            if a.present:
                continue
            report(i / len(adapters), f"downloading camera LoRA {a.repo} ({', '.join(a.moves)})")
            a.target.mkdir(parents=True, exist_ok=True)
            hf_hub_download(a.repo, a.filename, revision=a.revision, local_dir=a.target)
            found = adapter_problems(a.target / a.filename, a.size)
            if found:
                problems += [f"camera.{', '.join(a.moves)}: {p}" for p in found]
                continue
            marker = _adapter_marker(a.target)
            if marker.get("revision") != a.revision:
                marker = {}
            files = {**marker.get("files", {}), a.filename: a.size}
            default = a.filename if not a.named else marker.get("default")
            (a.target / COMPLETE_MARKER).write_text(json.dumps(
                {"repo_id": a.repo, "revision": a.revision, "files": files, "default": default}, indent=2),
                encoding="utf-8")
    if problems:
        raise ModelNotAvailable(f"model {entry.name!r}: camera LoRAs not installed: {'; '.join(problems)}; "
                                f"run `{pull_command(entry.name)}` again")
    if adapters:
        report(1.0, f"{entry.name}: {len(adapters)} camera LoRA(s) verified")


def remove_adapters(entry: "ModelEntry", weights_dir: Path, others: "list[ModelEntry]") -> list[str]:
    """Delete the hub camera LoRAs only `entry` uses (another model naming the repo keeps it); local ones are the
    operator's and stay. Returns the repos removed."""
    kept = {m.lora for e in others if e.name != entry.name for m in e.camera.values() if m.lora}
    removed = []
    for move in entry.camera.values():
        if not move.lora or move.is_local or move.lora in kept or move.lora in removed:
            continue
        folder = adapter_folder(move, weights_dir)
        if folder.is_dir():
            shutil.rmtree(folder)
            removed.append(move.lora)
    return removed


def _fits(entry: "ModelEntry", need: int, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if need and need >= free:
        raise ModelNotAvailable(f"model {entry.name!r}: {format_bytes(need)} to download but only "
                                f"{format_bytes(free)} free at {where}")
