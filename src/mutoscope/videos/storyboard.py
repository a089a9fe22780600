"""A storyboard's rules: which shots a model can make, and where each shot sits in the one video made of them.

A storyboard is an ordered list of shots rendered by ONE job into ONE video. It lives in the video's
`params["storyboard"]` (the job's input, fixed at admission), as

    {"fps": 24.0, "from_shot": 0, "shots": [{"prompt", "seconds", "frames", "seed", "transition",
                                              "camera", "image_key", "characters"}, ...]}

`frames` is round(seconds * fps), so every boundary falls on a frame and the video's frame count is
their sum. `from_shot` is the first shot the job renders: a remix of shot k reuses the frames and sound
of shots 0..k-1 from its source's file and renders k onward. `service.py` admits a storyboard with these
rules; `jobs/storyboard.py` renders one; `mutoscope generate --storyboard` uses both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mutoscope.engine import camera
from mutoscope.errors import InvalidRequest
from mutoscope.protocol.videos import ShotObject, StoryboardShot

# A cut's shot begins a new generation; its seed is the storyboard's plus the shot's index, so a storyboard
# rendered again (a retry, a remix of a later shot) makes the same shots.
SEED_MODULUS = 2**63


def check_shots(shots: Sequence[StoryboardShot], *, model: str, seconds_offered: Sequence[str],
                max_shots: int, catalog_model: Any = None) -> None:
    """Refuse what no render could make: too many shots, a length the model does not offer, a camera move it
    does not offer (or whose LoRA is not installed; `catalog_model` is the catalog's model), a first shot that
    continues nothing, a continuous shot with its own first frame. Params name the shot."""
    if not shots:
        raise InvalidRequest("storyboard must have at least one shot.", param="storyboard",
                             code="invalid_storyboard")
    if len(shots) > max_shots:
        raise InvalidRequest(f"storyboard has {len(shots)} shots; this server allows at most {max_shots} "
                             "(max_storyboard_shots).", param="storyboard", code="too_many_shots")
    for i, shot in enumerate(shots):
        if shot.seconds not in seconds_offered:
            raise InvalidRequest(f"Shot {i} lasts '{shot.seconds}' s; model '{model}' makes shots of "
                                 f"{', '.join(seconds_offered)} s.", param=f"storyboard[{i}].seconds",
                                 code="invalid_seconds")
        if shot.camera is not None and catalog_model is not None:
            camera.check_move(catalog_model, shot.camera, name=model, param=f"storyboard[{i}].camera")
        if i == 0 and shot.transition == "continuous":
            raise InvalidRequest("The first shot has nothing to continue; leave its transition out (or 'cut').",
                                 param="storyboard[0].transition", code="invalid_transition")
        if i > 0 and shot.transition == "continuous" and shot.image is not None:
            raise InvalidRequest(f"Shot {i} continues the previous shot's last frames, so it cannot also start "
                                 "from an image; use a 'cut' to start from one.", param=f"storyboard[{i}].image",
                                 code="invalid_transition")


def stored(shots: Sequence[StoryboardShot], *, fps: float, seed: int,
           image_keys: dict[int, str], characters: dict[int, list[str]]) -> dict[str, Any]:
    """The storyboard as the job reads it (see the module docstring)."""
    return {"fps": float(fps), "from_shot": 0, "shots": [
        {"prompt": shot.prompt, "seconds": shot.seconds, "frames": round(float(shot.seconds) * fps),
         "seed": (seed + i) % SEED_MODULUS, "transition": None if i == 0 else (shot.transition or "cut"),
         "camera": shot.camera, "image_key": image_keys.get(i), "characters": characters.get(i, [])}
        for i, shot in enumerate(shots)]}


def total_seconds(shots: Sequence[StoryboardShot]) -> float:
    return sum(float(shot.seconds) for shot in shots)


def seconds_text(value: float) -> str:
    return f"{value:g}"


def timeline(board: Any) -> list[ShotObject] | None:
    """The shots as the API shows them, on frame boundaries; None when `board` is not a storyboard a row
    could hold (a row is never trusted)."""
    try:
        fps = float(board["fps"])
        start = 0
        out = []
        for i, shot in enumerate(board["shots"]):
            frames = int(shot["frames"])
            out.append(ShotObject(index=i, prompt=str(shot["prompt"]), seconds=str(shot["seconds"]),
                                  start_seconds=round(start / fps, 6), end_seconds=round((start + frames) / fps, 6),
                                  transition=shot.get("transition"), camera=shot.get("camera")))
            start += frames
        return out or None
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
