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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mutoscope.engine import camera as camera_mod
from mutoscope.engine.base import ModelInfo, ModelNotAvailable

DEFAULT_REGISTRY_PATH = Path(__file__).with_name("models.toml")

MEMORY_MODES = ("auto", "full", "text_encoder_offload", "model_cpu_offload", "group_offload",
                "sequential_cpu_offload")
DTYPES = ("bfloat16", "float16", "float32")
# Step caches the engine knows how to configure; each family lists the ones its transformer supports.
CACHES = ("none", "first_block", "taylorseer")
# The fields an operator may override per process (Settings.engine_overrides), for every model
# ("cache") or one ("ltx-2.cache").
MODE_FIELDS = ("memory", "dtype", "vae_tiling", "layerwise_fp8", "attention_backend", "compile", "cache",
               "cache_threshold", "context_parallel")
# How one job's transformer is split over the GPUs of a `mutoscope worker --gpus 0,1,...` (diffusers'
# ContextParallelConfig: Ulysses all-to-all over attention heads, or ring attention over the sequence).
CONTEXT_PARALLEL = ("none", "ulysses", "ring")
BUILTIN_PREFIX = "builtin:"
# How a model makes a video: one denoising pass at the output size, or LTX-2's two-stage recipe
# (denoise at half size, upsample the latents 2x, refine a few steps at full size).
RECIPES = ("single", "two_stage")
# diffusers' STAGE_2_DISTILLED_SIGMA_VALUES (pipelines/ltx2/utils.py): the refine schedule of the
# two-stage recipe; the latents are re-noised to its first value.
DEFAULT_REFINE_SIGMAS = (0.909375, 0.725, 0.421875)
# Fields that only mean something with recipe = "two_stage".
TWO_STAGE_FIELDS = ("upsampler", "refine_steps", "refine_sigmas", "refine_guidance", "refine_lora")
# `upsampler = { repo, subfolder, revision }`: a latent upsampler that is not in the weights' repo.
UPSAMPLER_KEYS = ("repo", "subfolder", "revision")
# Where `models pull` puts such an upsampler's repo files, inside the model's folder (a name no pipeline
# component has, so the weights' own files never meet it).
UPSAMPLER_DIR = "upsampler_repo"
_HUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


# OpenAI's default `size` for a create, its sizes and its model names (the wire types live in protocol/, which
# engine/ does not import).
OPENAI_DEFAULT_SIZE = "720x1280"
OPENAI_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
_OPENAI_MODEL = re.compile(r"sora-2(-pro)?(-\d{4}-\d{2}-\d{2})?")


def is_openai_name(name: str) -> bool:
    """One of OpenAI's model names (sora-2, sora-2-pro, their dated snapshots)."""
    return _OPENAI_MODEL.fullmatch(name) is not None


def default_size_for(name: str, sizes: Sequence[str], own_default: str, test_model: bool = False) -> str:
    """The size a create without `size` gets when it names the model as `name`. Through one of OpenAI's names,
    OpenAI's default where the model offers it: a client written for Sora validates sizes against OpenAI's
    list. Test fixtures (random weights, never offered beside a real model) keep their own small default, so
    a test suite's requests without a size stay cheap."""
    if is_openai_name(name) and not test_model and OPENAI_DEFAULT_SIZE in sizes:
        return OPENAI_DEFAULT_SIZE
    return own_default


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
        default_size: the size a create that names none gets: one of `sizes`; unset, OpenAI's
            720x1280 where the model offers it, else its first size.
        steps, guidance: default denoising steps and guidance scale.
        memory: how to place the pipeline on a GPU (see MEMORY_MODES; "auto" chooses from free VRAM).
        dtype: weights dtype, or None for bfloat16 on GPU / float32 on CPU.
        vae_tiling: decode (and encode) the video in tiles: True, False or "auto" (on when GPU memory is tight).
        layerwise_fp8: store the transformer's weights in float8, upcast layer by layer to compute.
        attention_backend: a diffusers attention backend ("native", "flash", "sage", ...); None: diffusers' default.
        compile: torch.compile the transformer's repeated blocks (CUDA only).
        cache: a step cache for the transformer (see CACHES; the family lists which it supports).
        cache_threshold: the first-block cache's threshold (None: diffusers' default, 0.05).
        context_parallel: split each job's transformer over the worker's GPUs (see CONTEXT_PARALLEL);
            the degree is the number of GPUs of `mutoscope worker --gpus`. "none": the job runs on one GPU.
        pin_first_frame: image-to-video writes the input image into frame 0.
        edit_strength: video-to-video edits: how much of the source is replaced by noise,
            in (0, 1] (1 ignores the source; lower keeps more of its layout and motion).
        pipeline_kwargs: extra keyword arguments for the pipeline call.
        recipe: "single" (one pass at the output size) or "two_stage" (see RECIPES): text- and
            image-to-video denoise at half the size, upsample the latents 2x, then refine.
        upsampler: two_stage: the subfolder holding the latent upsampler (diffusers' layout: config.json and
            weights), in the weights (required unless the weights are builtin), or in `upsampler_repo`.
        upsampler_repo, upsampler_revision: two_stage: the hub repo (and revision) the upsampler comes from
            when the weights' repo does not carry it (`upsampler = { repo, subfolder, revision }`); `models
            pull` fetches it into the model's folder under UPSAMPLER_DIR.
        refine_sigmas: two_stage: the refine schedule (the latents are re-noised to its first value);
            default DEFAULT_REFINE_SIGMAS, or evenly spaced below its first value when only
            `refine_steps` is given.
        refine_guidance: two_stage: the refine pass's guidance scale (1.0: no guidance pass at all).
        refine_lora: two_stage: a LoRA file at the weights' root used only while refining
            (LTX-2's distilled LoRA); needs the `peft` package.
        camera: move -> how the model makes it (`[models.camera]`, engine/camera.py): a LoRA adapter
            switched on for that job only, or a phrase folded into the prompt.
        download_gb: roughly how much a pull fetches, for people deciding before they pull (offline, so
            nothing asks the hub; `models pull` reads the exact size).
    """

    name: str
    family: str
    weights: str
    revision: str | None = None
    aliases: tuple[str, ...] = ()
    fps: float = 24.0
    sizes: tuple[str, ...] = ()
    seconds: tuple[str, ...] = ()
    default_size: str | None = None
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
    vae_tiling: bool | str = "auto"
    layerwise_fp8: bool = False
    attention_backend: str | None = None
    compile: bool = False
    cache: str = "none"
    cache_threshold: float | None = None
    context_parallel: str = "none"
    pipeline_kwargs: Mapping[str, Any] = field(default_factory=dict)
    recipe: str = "single"
    upsampler: str | None = None
    upsampler_repo: str | None = None
    upsampler_revision: str | None = None
    refine_sigmas: tuple[float, ...] = DEFAULT_REFINE_SIGMAS
    refine_guidance: float = 1.0
    refine_lora: str | None = None
    camera: Mapping[str, camera_mod.CameraMove] = field(default_factory=dict)
    download_gb: float | None = None

    @property
    def size_by_default(self) -> str:
        if self.default_size:
            return self.default_size
        return OPENAI_DEFAULT_SIZE if OPENAI_DEFAULT_SIZE in self.sizes or not self.sizes else self.sizes[0]

    @property
    def refine_steps(self) -> int:
        return len(self.refine_sigmas)

    @property
    def upsampler_path(self) -> str | None:
        """The upsampler's folder (its config.json) relative to the model's local folder."""
        if self.upsampler and self.upsampler_repo:
            return f"{UPSAMPLER_DIR}/{self.upsampler}"
        return self.upsampler

    @property
    def fixed_steps(self) -> int | None:
        """The one step count a distilled model runs (the length of its `sigmas`); None: any count."""
        sigmas = self.pipeline_kwargs.get("sigmas")
        return len(sigmas) if sigmas is not None else None

    @property
    def can_edit(self) -> bool:
        """Its family can re-generate a source clip (edits and remixes); a torch-free class attribute."""
        from mutoscope.engine.families import FAMILIES

        family = FAMILIES.get(self.family)
        return bool(family is None or family.supports_edits)

    @property
    def is_builtin(self) -> bool:
        return self.weights.startswith(BUILTIN_PREFIX)

    @property
    def builtin_name(self) -> str:
        return self.weights[len(BUILTIN_PREFIX) :]

    def info(self, installed: bool | None, camera_installed: Mapping[str, bool | None] | None = None) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            family=self.family,
            weights=self.weights,
            aliases=self.aliases,
            has_audio=self.has_audio,
            fps=self.fps,
            sizes=self.sizes,
            seconds=self.seconds,
            default_size=self.size_by_default,
            license=self.license,
            installed=installed,
            test_model=self.test_model,
            description=self.description,
            fixed_steps=self.fixed_steps,
            can_edit=self.can_edit,
            camera=dict(self.camera),
            camera_installed=dict(camera_installed or {}),
            download_gb=self.download_gb,
            edit_strength=self.edit_strength,
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


def load_registry(
    path: Path | None = None,
    extra_aliases: dict[str, str] | None = None,
    mode_overrides: Mapping[str, Any] | None = None,
) -> Registry:
    """Read and validate a registry file (default: the shipped models.toml).

    `extra_aliases` (alias -> model name) is applied last and wins over the
    file: an alias moves from whichever model declared it to the new target.
    `mode_overrides` (see `apply_mode_overrides`) replaces memory/speed modes.
    Raises RegistryError for bad TOML (message: "<file>:<line>: ..."), unknown
    fields or families, duplicate names, an alias that reaches no model, or a
    mode the model's family does not support.
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
        entry = _parse_entry(raw, where, path.parent)
        if entry.family not in FAMILIES:
            raise RegistryError(f"{where}: unknown family {entry.family!r} (known: {', '.join(sorted(FAMILIES))})")
        if entry.recipe == "two_stage" and not FAMILIES[entry.family].supports_two_stage:
            two_stage = ", ".join(sorted(n for n, f in FAMILIES.items() if f.supports_two_stage))
            raise RegistryError(f"{where}: recipe 'two_stage' is not supported by family {entry.family!r} "
                                f"(families with a latent upsampler: {two_stage})")
        _check_family_modes(entry, where)
        _check_sizes(entry, where)
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
            answered = default_size_for(alias, e.sizes, e.size_by_default, e.test_model)
            if is_openai_name(alias) and not e.test_model and answered not in OPENAI_SIZES:
                raise RegistryError(f"{path}: model {e.name!r} is reached through OpenAI's name {alias!r} but would "
                                    f"answer a create without a size with {answered!r}, which is not one of "
                                    f"OpenAI's sizes ({', '.join(OPENAI_SIZES)}); offer {OPENAI_DEFAULT_SIZE} or "
                                    "set default_size to one of OpenAI's, or map the alias to another model")
    if mode_overrides:
        entries = apply_mode_overrides(entries, mode_overrides)
    return Registry(entries, source=path)


def apply_mode_overrides(entries: list[ModelEntry], overrides: Mapping[str, Any],
                         origin: str = "engine override") -> list[ModelEntry]:
    """Entries with the operator's memory/speed modes on top of the file's.

    Keys are a field of MODE_FIELDS for every model (`"memory"`) or `"<model>.<field>"` for one
    (`"ltx-2.cache"`; the per-model key wins). Values may be strings, as environment variables
    give them ("true", "0.1"). Each is validated like the models file's own value; an error
    names the override and the model.
    """
    names = {e.name for e in entries}
    everyone: dict[str, Any] = {}
    per_model: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        model, _, name = str(key).rpartition(".")
        if name not in MODE_FIELDS:
            raise RegistryError(f"{origin} {key!r}: only {', '.join(MODE_FIELDS)} can be overridden")
        if model and model not in names:
            raise RegistryError(f"{origin} {key!r}: unknown model {model!r} (configured: {', '.join(sorted(names))})")
        (per_model.setdefault(model, {}) if model else everyone)[name] = _from_text(name, value)
    result = []
    for e in entries:
        changes = {**everyone, **per_model.get(e.name, {})}
        if not changes:
            result.append(e)
            continue
        where = f"{origin} for model {e.name!r}"
        _check_mode_values(changes, where)
        entry = replace(e, **_normalized(changes))
        _check_family_modes(entry, where)
        result.append(entry)
    return result


def _from_text(name: str, value: Any) -> Any:
    """An override value as TOML would have typed it ("true" -> True, "0.1" -> 0.1 for numbers)."""
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    if name in ("layerwise_fp8", "compile", "vae_tiling") and lowered in ("true", "false"):
        return lowered == "true"
    if name == "cache_threshold":
        try:
            return float(lowered)
        except ValueError:
            return value
    return value


_FIELDS = ({f for f in ModelEntry.__dataclass_fields__} - {"upsampler_repo", "upsampler_revision"}) | {"refine_steps"}


def _parse_entry(raw: Any, where: str, base_dir: Path | None = None) -> ModelEntry:
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
    check("default_size", isinstance(raw.get("default_size"), str) and raw["default_size"] in raw.get("sizes", []),
          "one of the model's sizes")
    check("fps", number("fps", positive=True), "a positive number")
    check("steps", number("steps", positive=True, integer=True), "a positive integer")
    check("guidance", number("guidance"), "a number")
    check("download_gb", number("download_gb", positive=True), "a positive number of gigabytes")
    check("edit_strength", number("edit_strength", positive=True) and raw.get("edit_strength", 0) <= 1,
          "a number in (0, 1]")
    for flag in ("has_audio", "test_model", "pin_first_frame"):
        check(flag, isinstance(raw.get(flag), bool), "true or false")
    for text_key in ("license", "description", "revision"):
        check(text_key, isinstance(raw.get(text_key), str), "a string")
    check("pipeline_kwargs", isinstance(raw.get("pipeline_kwargs"), dict), "a table")
    _check_mode_values(raw, where)
    _check_recipe(raw, where)

    values = dict(raw)
    if isinstance(values.get("upsampler"), dict):
        table = values["upsampler"]
        values.update(upsampler=table["subfolder"], upsampler_repo=table["repo"],
                      upsampler_revision=table.get("revision"))
    if "camera" in values:
        try:
            values["camera"] = camera_mod.parse_table(values["camera"], base_dir)
        except ValueError as exc:
            raise RegistryError(f"{where}: {exc}") from None
    refine_steps = values.pop("refine_steps", None)
    if "refine_sigmas" in values:
        values["refine_sigmas"] = tuple(float(x) for x in values["refine_sigmas"])
    elif refine_steps is not None and refine_steps != len(DEFAULT_REFINE_SIGMAS):
        # The pipeline's own default spacing (linspace(1, 1/n, n)), scaled to start at the default re-noise level.
        start = DEFAULT_REFINE_SIGMAS[0]
        values["refine_sigmas"] = tuple(start * (1 - i / refine_steps) for i in range(refine_steps))
    if "refine_guidance" in values:
        values["refine_guidance"] = float(values["refine_guidance"])
    for key in ("aliases", "sizes", "seconds"):
        if key in values:
            values[key] = tuple(values[key])
    if "fps" in values:
        values["fps"] = float(values["fps"])
    for key in ("guidance", "edit_strength"):
        if key in values:
            values[key] = float(values[key])
    return ModelEntry(**_normalized(values))


def _check_upsampler_table(raw: Mapping[str, Any], where: str) -> None:
    """`upsampler = { repo = "org/name", subfolder = "...", revision = "..." }`: a diffusers-format upsampler
    folder in another hub repo (diffusers loads `LTX2LatentUpsamplerModel` only from such a folder)."""
    table = raw["upsampler"]
    unknown = sorted(set(table) - set(UPSAMPLER_KEYS))
    if unknown:
        raise RegistryError(f"{where}: 'upsampler' has unknown key(s) {unknown}; expected {list(UPSAMPLER_KEYS)}")
    repo, sub, rev = table.get("repo"), table.get("subfolder"), table.get("revision", "")
    if not (isinstance(repo, str) and _HUB_REPO.fullmatch(repo) and ".." not in repo):
        raise RegistryError(f"{where}: 'upsampler.repo' must be a hub repo id like \"org/name\", got {repo!r}")
    if not (isinstance(sub, str) and sub and not sub.startswith(("/", "~")) and ".." not in sub.split("/")):
        raise RegistryError(f"{where}: 'upsampler.subfolder' must be the repo's folder holding the upsampler's "
                            f"config.json (diffusers' layout), like \"latent_upsampler\", got {sub!r}")
    if not (isinstance(rev, str) and len(rev) <= 200):
        raise RegistryError(f"{where}: 'upsampler.revision' must be a string, got {rev!r}")
    weights = str(raw.get("weights", ""))
    if weights.startswith((BUILTIN_PREFIX, "/", "./", "../", "~")):
        raise RegistryError(f"{where}: 'upsampler' from a repo needs hub weights; with local or builtin weights "
                            "give the upsampler as a subfolder of them")


def _check_recipe(raw: Mapping[str, Any], where: str) -> None:
    """`recipe` and the two-stage fields (types, ranges, and that they go with recipe = "two_stage")."""

    def check(key: str, ok: bool, expected: str) -> None:
        if key in raw and not ok:
            raise RegistryError(f"{where}: {key!r} must be {expected}, got {raw[key]!r}")

    def relative_path(key: str, suffix: str = "") -> bool:
        value = raw.get(key)
        return (isinstance(value, str) and bool(value) and not value.startswith(("/", "~"))
                and ".." not in value.split("/") and value.endswith(suffix))

    check("recipe", raw.get("recipe") in RECIPES, f"one of {RECIPES}")
    if isinstance(raw.get("upsampler"), dict):
        _check_upsampler_table(raw, where)
    else:
        check("upsampler", relative_path("upsampler"),
              "a subfolder of the weights, like \"latent_upsampler\", or a table { repo, subfolder, revision }")
    check("refine_lora", relative_path("refine_lora", ".safetensors"),
          "a .safetensors file in the weights, like \"ltx-2-19b-distilled-lora-384.safetensors\"")
    steps = raw.get("refine_steps")
    check("refine_steps", isinstance(steps, int) and not isinstance(steps, bool) and steps > 0, "a positive integer")
    sigmas = raw.get("refine_sigmas")
    sigmas_ok = (isinstance(sigmas, list) and len(sigmas) > 0
                 and all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= 1 for x in sigmas)
                 and all(a > b for a, b in zip(sigmas, sigmas[1:])))
    check("refine_sigmas", sigmas_ok, "a non-empty, strictly decreasing list of numbers in (0, 1]")
    if "refine_steps" in raw and "refine_sigmas" in raw and steps != len(sigmas):
        raise RegistryError(f"{where}: 'refine_steps' ({steps}) must equal the number of 'refine_sigmas' "
                            f"({len(sigmas)}); give one of them")
    guidance = raw.get("refine_guidance")
    check("refine_guidance", isinstance(guidance, (int, float)) and not isinstance(guidance, bool) and guidance >= 1,
          "a number >= 1 (1: no guidance pass)")
    if raw.get("recipe", "single") != "two_stage":
        stray = [k for k in TWO_STAGE_FIELDS if k in raw]
        if stray:
            raise RegistryError(f"{where}: {', '.join(repr(k) for k in stray)} only apply with recipe = \"two_stage\"")
    elif not str(raw.get("weights", "")).startswith(BUILTIN_PREFIX) and "upsampler" not in raw:
        raise RegistryError(f"{where}: recipe = \"two_stage\" needs 'upsampler', the weights' subfolder holding "
                            "the latent upsampler (e.g. \"latent_upsampler\")")


def _check_mode_values(raw: Mapping[str, Any], where: str) -> None:
    """The memory/speed fields' types and values (shared by the models file and the overrides)."""

    def check(key: str, ok: bool, expected: str) -> None:
        if key in raw and not ok:
            raise RegistryError(f"{where}: {key!r} must be {expected}, got {raw[key]!r}")

    check("memory", raw.get("memory") in MEMORY_MODES, f"one of {MEMORY_MODES}")
    check("dtype", raw.get("dtype") in DTYPES, f"one of {DTYPES}")
    tiling = raw.get("vae_tiling")
    check("vae_tiling", isinstance(tiling, bool) or tiling == "auto", 'true, false or "auto"')
    for flag in ("layerwise_fp8", "compile"):
        check(flag, isinstance(raw.get(flag), bool), "true or false")
    check("cache", raw.get("cache") in CACHES, f"one of {CACHES}")
    check("context_parallel", raw.get("context_parallel") in CONTEXT_PARALLEL, f"one of {CONTEXT_PARALLEL}")
    threshold = raw.get("cache_threshold")
    check("cache_threshold", isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
          and threshold > 0, "a positive number")
    if "attention_backend" in raw:
        backends = _attention_backends()
        backend = raw["attention_backend"]
        check("attention_backend", isinstance(backend, str) and backend.lower() in backends,
              f"one of {', '.join(sorted(backends))}")
        if backend.lower().endswith("_hub"):
            # diffusers fetches these kernels from the Hub when the model loads; a server must not download
            # inside a job. Install the kernel package and name the local backend instead.
            raise RegistryError(f"{where}: 'attention_backend' {backend!r} downloads its kernel from the Hub at "
                                f"load; install the kernel and use {backend[: -len('_hub')]!r}")


def _check_sizes(entry: ModelEntry, where: str) -> None:
    """Every size and duration the entry offers is one its family can make (generation size, clip length)."""
    from mutoscope.engine.families import FAMILIES

    family = FAMILIES[entry.family]
    for size in entry.sizes:
        width, height = (int(x) for x in size.split("x"))
        problem = family.size_problem(width, height, entry.recipe)
        if problem:
            raise RegistryError(f"{where}: sizes: {size!r} cannot be made by family {entry.family!r}: {problem}")
    for text in entry.seconds:
        try:
            seconds = float(text)
        except ValueError:
            seconds = float("nan")
        if not seconds > 0:
            raise RegistryError(f"{where}: seconds: {text!r} is not a positive number")
        problem = family.seconds_problem(seconds, entry.fps)
        if problem:
            raise RegistryError(f"{where}: seconds: {text!r} cannot be made by family {entry.family!r}: {problem}")


def _check_family_modes(entry: ModelEntry, where: str) -> None:
    from mutoscope.engine.families import FAMILIES

    family = FAMILIES.get(entry.family)
    if (family is not None and family.attention_masks and entry.attention_backend is not None
            and entry.attention_backend in mask_free_backends()):
        raise RegistryError(f"{where}: attention_backend {entry.attention_backend!r} cannot take an attention "
                            f"mask, and family {entry.family!r} passes one to every cross-attention "
                            "(use one that does: native, _native_cudnn, _native_efficient, flex, xformers)")
    if entry.context_parallel != "none":
        from mutoscope.engine.parallel import family_problem

        problem = family_problem(entry)
        if problem:
            raise RegistryError(f"{where}: context_parallel {entry.context_parallel!r}: {problem}")
        backend = entry.attention_backend or "native"
        usable = context_parallel_backends(entry.context_parallel)
        if family is not None and family.attention_masks:
            usable = usable - mask_free_backends()
        if backend not in usable:
            raise RegistryError(f"{where}: context_parallel {entry.context_parallel!r} cannot run on attention_backend "
                                f"{backend!r} with this diffusers; set attention_backend to one of "
                                f"{', '.join(sorted(usable))}")
    if family is not None and entry.cache != "none" and entry.cache not in family.step_caches:
        supported = ", ".join(("none", *family.step_caches))
        raise RegistryError(f"{where}: cache {entry.cache!r} is not supported by family {entry.family!r} "
                            f"with this diffusers (supported: {supported})")


def _normalized(values: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(values)
    if isinstance(values.get("attention_backend"), str):
        values["attention_backend"] = values["attention_backend"].lower()
    if "cache_threshold" in values:
        values["cache_threshold"] = float(values["cache_threshold"])
    return values


def _attention_backends() -> set[str]:
    """diffusers' attention backend names (imported only when a model names one)."""
    from diffusers.models.attention_dispatch import AttentionBackendName

    return {b.value for b in AttentionBackendName}


def mask_free_backends() -> frozenset[str]:
    """diffusers' attention backends that cannot take an additive (float) attention mask.

    Read from the backends' own code, so a diffusers upgrade that adds or fixes one is followed: most
    raise "`attn_mask` is not supported ..."; the varlen ones (flash_varlen, sage_varlen, ...) derive
    sequence lengths from a boolean mask (`_normalize_attn_mask`) and raise on a float one, which is
    what LTX-2 passes. The fallback is the set diffusers 0.42 has.
    """
    global _MASK_FREE
    if _MASK_FREE is None:
        import inspect

        from diffusers.models.attention_dispatch import _AttentionBackendRegistry

        found = set()
        try:
            for backend, fn in _AttentionBackendRegistry._backends.items():
                source = inspect.getsource(fn)
                if (re.search(r"raise \w+\(\s*[\"']`attn_mask` is not supported", source)
                        or "_normalize_attn_mask(" in source):
                    found.add(getattr(backend, "value", str(backend)))
        except (OSError, TypeError):
            found = set()
        _MASK_FREE = frozenset(found or _MASK_FREE_0_42)
    return _MASK_FREE


_MASK_FREE: frozenset[str] | None = None


def context_parallel_backends(mode: str) -> frozenset[str]:
    """The local (non-Hub) attention backends diffusers can run `mode` ("ulysses", "ring") on.

    Read from diffusers' registry: a backend registered with `supports_context_parallel=True`. Ring
    attention also merges each ring step's partial result by its log-sum-exp, so it needs a backend that
    returns one; the ones that cannot raise "... does not support setting `return_lse=True`" (native SDPA
    among them), found in their code like the mask refusals above.
    """
    import inspect

    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    names = {getattr(b, "value", str(b)): fn for b, fn in _AttentionBackendRegistry._backends.items()}
    found = {name for name in _AttentionBackendRegistry._supports_context_parallel
             if name in names and not name.endswith("_hub")}
    if mode == "ring":
        def returns_lse(fn: Any) -> bool:
            try:
                source = inspect.getsource(fn)
            except (OSError, TypeError):
                return False
            return not re.search(r"raise \w+\(\s*[\"'][^\"']*(does not support|not supported)[^\"']*return_lse", source)
        found = {name for name in found if returns_lse(names[name])}
    return frozenset(found)
_MASK_FREE_0_42 = frozenset({
    "flash", "flash_hub", "_flash_3", "_flash_3_hub", "flash_4_hub", "aiter_fa2_hub", "_native_flash", "_native_xla",
    "sage", "sage_hub", "sage_blackwell_hub", "_sage_qk_int8_pv_fp8_cuda", "_sage_qk_int8_pv_fp8_cuda_sm90",
    "_sage_qk_int8_pv_fp16_cuda", "_sage_qk_int8_pv_fp16_triton",
    "flash_varlen", "flash_varlen_hub", "_flash_varlen_3", "_flash_3_varlen_hub", "sage_varlen",
})


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
