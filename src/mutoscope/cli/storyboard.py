"""`mutoscope generate --storyboard shots.toml`: a storyboard rendered in this process into one MP4.

The file (docs/storyboards.md):

    model = "sora-2"          # optional, else --model
    size = "720x1280"         # optional, else --size
    seed = 42                 # optional; shot i uses seed + i
    steps = 8                 # optional: num_inference_steps, guidance, negative_prompt as for a create

    [[shots]]
    prompt = "a lighthouse at dusk"
    seconds = "4"             # one of the model's lengths
    image = "first.png"       # optional first frame, relative to the file
    camera = "dolly_in"       # optional: a camera move the model offers

    [[shots]]
    prompt = "the beam sweeps the sea"
    seconds = "4"
    transition = "continuous" # or "cut" (the default); the first shot has none

The shots are checked by the same rules as the API's (videos/storyboard.py) and rendered by the same
code as a job's (jobs/storyboard.py). Characters and cameos need the server's consent records, so a
file that names them is refused here.
"""

from __future__ import annotations

import random
import tomllib
from pathlib import Path
from typing import Any

from mutoscope.errors import InvalidRequest

KNOWN = {"model", "size", "seed", "steps", "guidance", "negative_prompt", "shots"}  # "images": read_file's own


def read_file(path: Path) -> dict[str, Any]:
    """The storyboard file as plain values; raises ValueError with a one-line reason."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(KNOWN))}")
    shots = data.get("shots")
    if not isinstance(shots, list) or not shots:
        raise ValueError(f"{path}: no [[shots]]")
    for i, shot in enumerate(shots):
        if not isinstance(shot, dict):
            raise ValueError(f"{path}: shots must be [[shots]] tables")
        if isinstance(shot.get("seconds"), (int, float)) and not isinstance(shot.get("seconds"), bool):
            shot["seconds"] = f"{shot['seconds']:g}"
        if shot.get("characters"):
            raise ValueError(f"storyboard[{i}].characters: characters and cameos need the server's consent "
                             "records; post this storyboard to the API instead")
        if "image" in shot:  # a path here, not an API image reference: read by render_file
            if not isinstance(shot["image"], str):
                raise ValueError(f"storyboard[{i}].image: give an image file's path")
            data.setdefault("images", {})[i] = (path.parent / shot.pop("image")).resolve()
    return data


def render_file(path: Path, output: Path, *, model: str, size: str, seed: int | None, steps: int | None,
                guidance: float | None, negative_prompt: str | None, settings, fail, err) -> tuple[str, int]:
    """Check and render the storyboard file into `output`; returns (the video id, its seed)."""
    from mutoscope.protocol.videos import parse_storyboard
    from mutoscope.videos import storyboard as sb
    from mutoscope.wiring import build_catalog

    try:
        data = read_file(path)
        shots = parse_storyboard(data["shots"])
    except ValueError as e:
        fail(str(e))
    except InvalidRequest as e:
        fail(f"{e.param}: {e.message}" if e.param else e.message)
    model, size = data.get("model", model), data.get("size", size)
    seed = data.get("seed", seed)
    seed = seed if isinstance(seed, int) else random.randrange(2**31)
    try:  # the registry alone answers this: a bad file is refused before torch is even imported
        info = build_catalog(settings).resolve(model)
    except LookupError as e:
        fail(str(e))
    if size not in info.sizes:
        fail(f"size {size} is not supported by {model}; supported: {', '.join(info.sizes)}")
    try:
        sb.check_shots(shots, model=model, seconds_offered=info.seconds, max_shots=settings.max_storyboard_shots,
                       catalog_model=info)
    except InvalidRequest as e:
        fail(f"{e.param}: {e.message}")
    import tempfile

    from PIL import Image

    from mutoscope import __version__
    from mutoscope.db.models import new_id
    from mutoscope.engine import EngineError, GenerationSpec
    from mutoscope.jobs.render import parse_size
    from mutoscope.jobs.storyboard import render_storyboard, shots_from
    from mutoscope.media import fit_image
    from mutoscope.provenance import Stamp
    from mutoscope.wiring import build_engine

    if info.test_model:
        err.print(f"[yellow]Note:[/yellow] {info.name} is a random-weight test model: it makes noise, not video.")
    w, h = parse_size(size)
    images = {}
    for i, file in data.get("images", {}).items():
        if i > 0 and shots[i].transition == "continuous":
            fail(f"storyboard[{i}].image: a continuous shot continues the previous one's frames; use a cut")
        try:
            images[i] = fit_image(Image.open(file).convert("RGB"), w, h)
        except OSError as e:
            fail(f"storyboard[{i}].image: cannot read {file}: {e}")
    board = sb.stored(shots, fps=info.fps, seed=seed, image_keys={}, characters={})
    engine = build_engine(settings)
    base = GenerationSpec(prompt=shots[0].prompt, width=w, height=h, seconds=sb.total_seconds(shots), seed=seed,
                          num_inference_steps=data.get("steps", steps), guidance_scale=data.get("guidance", guidance),
                          negative_prompt=data.get("negative_prompt", negative_prompt))
    from mutoscope.cli.bars import job_bar, reporter

    with job_bar(err) as bar, tempfile.TemporaryDirectory() as tmp:
        task = bar.add_task(f"{model} ({info.name})", total=100, detail="")

        def on_shot(n: int, count: int, shot) -> None:
            bar.update(task, description=f"{model}: shot {n + 1} of {count}")

        stamp = Stamp(data_dir=settings.data_dir, video_id=new_id("video_"), model=model,
                      generator_version=__version__)
        try:
            _, files = render_storyboard(engine, model, shots_from(board, base, images), Path(tmp),
                                         reporter(bar, task), lambda: False,
                                         provenance=stamp, on_shot=on_shot)
        except EngineError as e:
            bar.stop()
            fail(str(e))
        bar.update(task, completed=100)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(files["video"].read_bytes())
    return stamp.video_id, seed
