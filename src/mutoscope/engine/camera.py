"""Camera moves: the move names, each model's mapping of them, prompt folding and request checks.

PUT HERE: the canonical move names, parsing a model's `[models.camera]` table, `check_move` (the
request-time check, a 400 in the project's error type), `plan` (how one job makes its move) and
folding a move's phrase into the prompt. Torch-free: API-only processes import it.
DO NOT PUT HERE: loading or switching LoRA adapters (families/base.py, diffusers_engine.py), downloading
them (weights.py).

A model maps each move it offers to one of two ways of making it:
- `lora`: a LoRA adapter (hub repo id or local file/folder, optional `weight_name`, `scale`), loaded as a
  named adapter on the model's transformer and switched on only while that job denoises;
- `prompt`: a phrase appended to the prompt ("The camera slowly dollies in.").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mutoscope.errors import InvalidRequest

# The canonical moves, in the order they are listed. Dolly: the camera travels (in = toward the subject);
# jib: it rises or descends; pan: it turns in place; orbit: it circles the subject; static: locked off.
MOVES = ("static", "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down",
         "pan_left", "pan_right", "orbit_left", "orbit_right")

# What a move entry may say: exactly one of `lora` or `prompt`; the others only with `lora`.
MOVE_KEYS = ("lora", "weight_name", "scale", "revision", "prompt")
ADAPTER_PREFIX = "camera_"
MAX_PHRASE = 300
MAX_SCALE = 4.0
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


class UnknownMove(ValueError):
    """The model offers no such move (the engine turns it into a job error; requests get `check_move`'s 400)."""


@dataclass(frozen=True)
class CameraMove:
    """How one model makes one move.

    Args:
        move: one of MOVES.
        lora: hub repo id (`org/name`) or an absolute local path (a .safetensors file or a folder).
        weight_name: the .safetensors file inside the repo or folder (None: its only one at the root).
        scale: the adapter's weight while it is on.
        revision: hub revision of `lora` (None: the default branch).
        prompt: the phrase folded into the prompt (prompt moves).
    """

    move: str
    lora: str | None = None
    weight_name: str | None = None
    scale: float = 1.0
    revision: str | None = None
    prompt: str | None = None

    @property
    def applied(self) -> Literal["adapter", "prompt"]:
        return "adapter" if self.lora else "prompt"

    @property
    def adapter_name(self) -> str:
        """The adapter's name on the pipeline."""
        return ADAPTER_PREFIX + self.move

    @property
    def is_local(self) -> bool:
        return bool(self.lora) and is_local_lora(self.lora)


@dataclass(frozen=True)
class CameraPlan:
    """How one generation makes its move: `applied` is "adapter" (switch `adapter` on at `scale`) or
    "prompt" (the prompt becomes `fold(prompt, phrase)`)."""

    move: str
    applied: Literal["adapter", "prompt"]
    adapter: str | None = None
    lora: str | None = None
    scale: float | None = None
    phrase: str | None = None

    def prompt_for(self, prompt: str) -> str:
        return fold(prompt, self.phrase) if self.applied == "prompt" and self.phrase else prompt

    def public(self, prompt: str) -> dict[str, Any]:
        """What the video object shows: the move, how it was made, the prompt the model received (prompt moves)
        and the adapter's hub repo and scale (adapter moves; a local adapter's path is the operator's business)."""
        out: dict[str, Any] = {"move": self.move, "applied": self.applied}
        if self.applied == "prompt":
            out["prompt"] = self.prompt_for(prompt)
        else:
            out["lora"] = None if self.lora is None or is_local_lora(self.lora) else self.lora
            out["scale"] = self.scale
        return out


def is_local_lora(value: str) -> bool:
    return value.startswith(("/", "~"))


def fold(prompt: str, phrase: str) -> str:
    """The prompt with the move's phrase appended as its own sentence."""
    text = prompt.rstrip()
    if not text:
        return phrase
    if text[-1] not in ".!?…。":
        text += "."
    return f"{text} {phrase}"


def parse_table(raw: Any, base_dir: Path | None = None) -> dict[str, CameraMove]:
    """A `[models.camera]` table as moves; ValueError names the offending move and key in one line.

    A relative local path (`./loras/x.safetensors`) is taken from `base_dir`, the models file's folder."""
    if not isinstance(raw, dict):
        raise ValueError("'camera' must be a table of moves, like dolly_in = { lora = \"org/repo\" }")
    moves: dict[str, CameraMove] = {}
    for move in sorted(raw, key=lambda m: MOVES.index(m) if m in MOVES else len(MOVES)):
        spec = raw[move]
        where = f"camera.{move}"
        if move not in MOVES:
            raise ValueError(f"{where}: unknown camera move {move!r} (moves: {', '.join(MOVES)})")
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: must be a table, like {{ lora = \"org/repo\" }} or {{ prompt = \"...\" }}")
        unknown = sorted(set(spec) - set(MOVE_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(MOVE_KEYS)})")
        if ("lora" in spec) == ("prompt" in spec):
            raise ValueError(f"{where}: give exactly one of 'lora' (an adapter) or 'prompt' (a phrase)")
        if "prompt" in spec:
            stray = [k for k in ("weight_name", "scale", "revision") if k in spec]
            if stray:
                raise ValueError(f"{where}: {stray[0]!r} only applies with 'lora'")
            phrase = spec["prompt"]
            if not isinstance(phrase, str) or not phrase.strip() or len(phrase) > MAX_PHRASE:
                raise ValueError(f"{where}: 'prompt' must be a non-empty phrase of at most {MAX_PHRASE} characters")
            moves[move] = CameraMove(move=move, prompt=phrase.strip())
            continue
        moves[move] = _adapter_move(move, spec, where, base_dir)
    return moves


def _adapter_move(move: str, spec: dict[str, Any], where: str, base_dir: Path | None) -> CameraMove:
    lora = spec["lora"]
    if not isinstance(lora, str) or not lora:
        raise ValueError(f"{where}: 'lora' must be a hub repo id (\"org/name\") or a local path")
    if lora.startswith(("./", "../")):
        lora = str(((base_dir or Path.cwd()) / lora).resolve())
    elif lora.startswith("~"):
        lora = str(Path(lora).expanduser())
    local = lora.startswith("/")
    if not local and not _REPO_ID.fullmatch(lora):
        raise ValueError(f"{where}: 'lora' {lora!r} is neither a hub repo id (\"org/name\") nor a local path "
                         "(absolute, or ./ from the models file)")
    weight_name = spec.get("weight_name")
    if weight_name is not None and not (
            isinstance(weight_name, str) and weight_name.endswith(".safetensors") and not weight_name.startswith("/")
            and ".." not in weight_name.split("/")):
        raise ValueError(f"{where}: 'weight_name' must be a .safetensors file inside the repo or folder, "
                         f"got {weight_name!r}")
    if local and weight_name is not None and lora.endswith(".safetensors"):
        raise ValueError(f"{where}: 'weight_name' names a file inside a folder; 'lora' is a file already")
    scale = spec.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= MAX_SCALE:
        raise ValueError(f"{where}: 'scale' must be a number in (0, {MAX_SCALE:g}], got {scale!r}")
    revision = spec.get("revision")
    if revision is not None and (not isinstance(revision, str) or not revision or local):
        raise ValueError(f"{where}: 'revision' must be a string, and only for a hub repo")
    return CameraMove(move=move, lora=lora, weight_name=weight_name, scale=float(scale), revision=revision)


def moves_of(model: Any) -> Mapping[str, CameraMove]:
    return getattr(model, "camera", None) or {}


def check_move(model: Any, move: Any, *, name: str, param: str = "camera") -> CameraMove | None:
    """Refuse a move this model does not offer, or whose adapter is not installed here, with a 400.

    `model` is a registry entry or a catalog's ModelInfo (which also knows, in `camera_installed`, whether
    each adapter is on this machine: None where an API-only process cannot see the workers' files).
    `name` is the model as the caller named it; messages never name a path.
    """
    if move is None:
        return None
    moves = moves_of(model)
    if not isinstance(move, str) or move not in moves:
        shown = move if isinstance(move, str) else type(move).__name__
        if not moves:
            raise InvalidRequest(f"Model '{name}' offers no camera moves; leave out '{param}'.", param=param,
                                 code="invalid_camera")
        raise InvalidRequest(f"Invalid camera move '{shown}' for model '{name}'. Supported moves: "
                             f"{', '.join(moves)}.", param=param, code="invalid_camera")
    entry = moves[move]
    installed = (getattr(model, "camera_installed", None) or {}).get(move)
    if entry.applied == "adapter" and installed is False:
        raise InvalidRequest(f"The camera move '{move}' of model '{name}' is not installed on this server; the "
                             f"operator can install it with `mutoscope models pull {name}`.", param=param,
                             code="model_not_available")
    return entry


def plan(model: Any, move: str | None) -> CameraPlan | None:
    """How a generation on `model` makes `move` (None: no move asked). Raises UnknownMove."""
    if move is None:
        return None
    entry = moves_of(model).get(move)
    if entry is None:
        raise UnknownMove(f"camera move {move!r} is not offered by this model "
                          f"(offered: {', '.join(moves_of(model)) or 'none'})")
    if entry.applied == "adapter":
        return CameraPlan(move=move, applied="adapter", adapter=entry.adapter_name, lora=entry.lora,
                          scale=entry.scale)
    return CameraPlan(move=move, applied="prompt", phrase=entry.prompt)


def summary(model: Any) -> dict[str, list[str]]:
    """{"adapter": [...], "prompt": [...], "not_installed": [...]} for listings."""
    installed = getattr(model, "camera_installed", None) or {}
    out: dict[str, list[str]] = {"adapter": [], "prompt": [], "not_installed": []}
    for move, entry in moves_of(model).items():
        out[entry.applied].append(move)
        if entry.applied == "adapter" and installed.get(move) is False:
            out["not_installed"].append(move)
    return out
