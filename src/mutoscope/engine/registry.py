"""The model registry: which models exist, their defaults, and the public names that reach them.

PUT HERE: reading and validating models.toml, alias resolution, `ModelEntry`.
DO NOT PUT HERE: loading weights (families/), downloading them (weights.py).

The shipped file is `engine/models.toml`. An operator may point at their own
file and/or remap aliases (e.g. a test setup sends `sora-2` and `sora-2-pro`
to `tiny-ltx2`); every alias must land on a configured model of a known family.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mutoscope.engine.base import ModelInfo, ModelNotAvailable

DEFAULT_REGISTRY_PATH = Path(__file__).with_name("models.toml")

MEMORY_MODES = ("auto", "full", "model_cpu_offload", "sequential_cpu_offload")
DTYPES = ("bfloat16", "float16", "float32")
BUILTIN_PREFIX = "builtin:"


class RegistryError(ValueError):
    """models.toml is malformed or inconsistent; the message names the file (and line when known)."""


@dataclass(frozen=True)
class ModelEntry:
    """One configured model, with everything the engine needs to run it.

    Args:
        name: public model name (what `models list` shows).
        family: key into `families.FAMILIES`.
        weights: hub repo id, local folder, or `builtin:<name>` for test models.
        revision: hub revision to pull (None: the default branch).
        aliases: other public names resolving to this model.
        fps, sizes, seconds: what the model generates (sizes as "WxH", seconds as strings).
        steps, guidance: default denoising steps and guidance scale.
        memory: how to place the pipeline on a GPU (see MEMORY_MODES).
        dtype: weights dtype, or None for bfloat16 on GPU / float32 on CPU.
        pin_first_frame: image-to-video writes the input image into frame 0.
        edit_strength: video-to-video edits: how much of the source is replaced by noise,
            in (0, 1] (1 ignores the source; lower keeps more of its layout and motion).
        pipeline_kwargs: extra keyword arguments for the pipeline call.
    """

    name: str
    family: str
    weights: str
    revision: str | None = None
    aliases: tuple[str, ...] = ()
    fps: float = 24.0
    sizes: tuple[str, ...] = ()
    seconds: tuple[str, ...] = ()
    steps: int = 30
    guidance: float = 3.0
    has_audio: bool = False
    license: str = ""
    memory: str = "auto"
    dtype: str | None = None
    test_model: bool = False
    description: str = ""
    pin_first_frame: bool = False
    edit_strength: float = 0.7
    pipeline_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_builtin(self) -> bool:
        return self.weights.startswith(BUILTIN_PREFIX)

    @property
    def builtin_name(self) -> str:
        return self.weights[len(BUILTIN_PREFIX) :]

    def info(self, installed: bool) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            family=self.family,
            weights=self.weights,
            aliases=self.aliases,
            has_audio=self.has_audio,
            fps=self.fps,
            sizes=self.sizes,
            seconds=self.seconds,
            license=self.license,
            installed=installed,
            test_model=self.test_model,
            description=self.description,
        )


class Registry:
    """Configured models and the alias table; `resolve` accepts a model name or an alias."""

    def __init__(self, entries: list[ModelEntry], source: Path | None = None):
        self.source = source
        self._entries = {e.name: e for e in entries}
        self._aliases = {alias: e.name for e in entries for alias in e.aliases}

    def resolve(self, name: str) -> ModelEntry:
        target = self._aliases.get(name, name)
        try:
            return self._entries[target]
        except KeyError:
            known = ", ".join(sorted([*self._entries, *self._aliases]))
            raise ModelNotAvailable(f"unknown model {name!r}; configured models and aliases: {known}") from None

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def aliases(self) -> dict[str, str]:
        """alias -> model name."""
        return dict(self._aliases)


def load_registry(path: Path | None = None, extra_aliases: dict[str, str] | None = None) -> Registry:
    """Read and validate a registry file (default: the shipped models.toml).

    `extra_aliases` (alias -> model name) is applied last and wins over the
    file: an alias moves from whichever model declared it to the new target.
    Raises RegistryError for bad TOML (message: "<file>:<line>: ..."), unknown
    fields or families, duplicate names, or an alias that reaches no model.
    """
    from mutoscope.engine.families import FAMILIES

    path = Path(path) if path is not None else DEFAULT_REGISTRY_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read model registry: {exc.strerror or exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}:{_toml_error_line(exc)}: invalid TOML: {_toml_error_message(exc)}") from None

    unknown_top = set(doc) - {"models", "aliases"}
    if unknown_top:
        raise RegistryError(
            f"{path}: unknown top-level key(s) {sorted(unknown_top)}; expected [[models]] and [aliases]"
        )
    raw_models = doc.get("models", [])
    if not isinstance(raw_models, list) or not raw_models:
        raise RegistryError(f"{path}: no [[models]] entries")

    entries: list[ModelEntry] = []
    for index, raw in enumerate(raw_models):
        where = _entry_location(path, text, raw, index)
        entry = _parse_entry(raw, where)
        if entry.family not in FAMILIES:
            raise RegistryError(f"{where}: unknown family {entry.family!r} (known: {', '.join(sorted(FAMILIES))})")
        if any(e.name == entry.name for e in entries):
            raise RegistryError(f"{where}: duplicate model name {entry.name!r}")
        entries.append(entry)

    file_aliases = doc.get("aliases", {})
    if not isinstance(file_aliases, dict) or not all(isinstance(v, str) for v in file_aliases.values()):
        raise RegistryError(f"{path}: [aliases] must map alias names to model names (strings)")
    for overrides, origin in ((file_aliases, f"{path}: [aliases]"), (extra_aliases or {}, "alias override")):
        for alias, target in overrides.items():
            entries = _move_alias(entries, alias, target, origin)

    names = {e.name for e in entries}
    seen: dict[str, str] = {}
    for e in entries:
        for alias in e.aliases:
            if alias in names:
                raise RegistryError(f"{path}: alias {alias!r} of {e.name!r} is also a model name")
            if alias in seen:
                raise RegistryError(f"{path}: alias {alias!r} is declared by both {seen[alias]!r} and {e.name!r}")
            seen[alias] = e.name
    return Registry(entries, source=path)


_FIELDS = {f for f in ModelEntry.__dataclass_fields__}


def _parse_entry(raw: Any, where: str) -> ModelEntry:
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: each [[models]] entry must be a table")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {sorted(unknown)}")
    for required in ("name", "family", "weights"):
        if not isinstance(raw.get(required), str) or not raw[required]:
            raise RegistryError(f"{where}: {required!r} is required and must be a non-empty string")

    def check(key: str, ok: bool, expected: str) -> None:
        if key in raw and not ok:
            raise RegistryError(f"{where}: {key!r} must be {expected}, got {raw[key]!r}")

    def str_list(key: str) -> bool:
        return isinstance(raw.get(key), list) and all(isinstance(x, str) for x in raw[key])

    def number(key: str, positive: bool = False, integer: bool = False) -> bool:
        value = raw.get(key)
        types = int if integer else (int, float)
        return isinstance(value, types) and not isinstance(value, bool) and (not positive or value > 0)

    check("aliases", str_list("aliases"), "a list of strings")
    sizes_ok = str_list("sizes") and all(re.fullmatch(r"\d+x\d+", s) for s in raw.get("sizes", []))
    check("sizes", sizes_ok, 'a list like ["1280x720"]')
    check("seconds", str_list("seconds"), 'a list of strings like ["4", "8"]')
    check("fps", number("fps", positive=True), "a positive number")
    check("steps", number("steps", positive=True, integer=True), "a positive integer")
    check("guidance", number("guidance"), "a number")
    check("edit_strength", number("edit_strength", positive=True) and raw.get("edit_strength", 0) <= 1,
          "a number in (0, 1]")
    for flag in ("has_audio", "test_model", "pin_first_frame"):
        check(flag, isinstance(raw.get(flag), bool), "true or false")
    for text_key in ("license", "description", "revision"):
        check(text_key, isinstance(raw.get(text_key), str), "a string")
    check("memory", raw.get("memory") in MEMORY_MODES, f"one of {MEMORY_MODES}")
    check("dtype", raw.get("dtype") in DTYPES, f"one of {DTYPES}")
    check("pipeline_kwargs", isinstance(raw.get("pipeline_kwargs"), dict), "a table")

    values = dict(raw)
    for key in ("aliases", "sizes", "seconds"):
        if key in values:
            values[key] = tuple(values[key])
    if "fps" in values:
        values["fps"] = float(values["fps"])
    for key in ("guidance", "edit_strength"):
        if key in values:
            values[key] = float(values[key])
    return ModelEntry(**values)


def _move_alias(entries: list[ModelEntry], alias: str, target: str, origin: str) -> list[ModelEntry]:
    if not any(e.name == target for e in entries):
        known = ", ".join(e.name for e in entries)
        raise RegistryError(f"{origin}: alias {alias!r} points to unknown model {target!r} (configured: {known})")
    if any(e.name == alias for e in entries):
        raise RegistryError(f"{origin}: alias {alias!r} is already a model name")
    moved = []
    for e in entries:
        aliases = tuple(a for a in e.aliases if a != alias)
        if e.name == target:
            aliases += (alias,)
        moved.append(replace(e, aliases=aliases) if aliases != e.aliases else e)
    return moved


def _entry_location(path: Path, text: str, raw: Any, index: int) -> str:
    """'<file>:<line>' of the entry's `name = ...` line when it can be found, else '<file>: models[i]'."""
    name = raw.get("name") if isinstance(raw, dict) else None
    if isinstance(name, str):
        pattern = re.compile(r"^\s*name\s*=\s*[\"']" + re.escape(name) + r"[\"']", re.MULTILINE)
        match = pattern.search(text)
        if match:
            return f"{path}:{text.count(chr(10), 0, match.start()) + 1}: model {name!r}"
    return f"{path}: models[{index}]"


def _toml_error_line(exc: tomllib.TOMLDecodeError) -> int | str:
    # Python 3.14 adds .lineno; 3.11-3.13 only put "(at line N, column M)" in the message.
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return lineno
    match = re.search(r"at line (\d+)", str(exc))
    return int(match.group(1)) if match else "?"


def _toml_error_message(exc: tomllib.TOMLDecodeError) -> str:
    return getattr(exc, "msg", None) or re.sub(r"\s*\(at line \d+, column \d+\)$", "", str(exc))
