"""Camera moves in the engine: the models file's `[models.camera]`, LoRA adapters on the tiny LTX-2, pulls.

The adapters are tiny LoRAs built in code (tests/engine/loras.py) and registered from a models file, the
way an operator points a move at a local file. Whether an adapter is on is read from the LoRA layers
themselves: a forward hook on each `lora_B` of the adapter counts the calls that really went through it.
One engine for the module, as in a server: the pipelines stay warm between jobs.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine import camera, weights  # noqa: E402
from mutoscope.engine.base import EngineError, GenerationCancelled, GenerationSpec, ModelNotAvailable  # noqa: E402
from mutoscope.engine.registry import RegistryError, load_registry  # noqa: E402
from mutoscope.errors import InvalidRequest  # noqa: E402
from tests.conftest import TINY_LTX2_QUIET_KWARGS  # noqa: E402
from tests.engine.loras import write_lora  # noqa: E402

MODEL = "tiny-cam"
TINY_CAM = f'''[[models]]
name = "{MODEL}"
family = "ltx2"
weights = "builtin:tiny-ltx2"
sizes = ["64x64"]
seconds = ["1"]
steps = 2
guidance = 1.0
has_audio = true
memory = "full"
dtype = "float32"
test_model = true

[models.pipeline_kwargs]
{TINY_LTX2_QUIET_KWARGS}
[models.camera]
dolly_in = {{ lora = "./loras/dolly_in.safetensors" }}
dolly_out = {{ lora = "./loras", weight_name = "dolly_out.safetensors", scale = 0.5 }}
jib_up = {{ lora = "./loras/never_pulled.safetensors" }}
pan_left = {{ prompt = "The camera pans to the left." }}
'''


def tiny_cam_file(root: Path) -> Path:
    """A models file with `tiny-cam` (the tiny LTX-2 with two local camera LoRAs, one missing, one prompt move)."""
    write_lora(root / "loras" / "dolly_in.safetensors", seed=1, strength=3.0)
    write_lora(root / "loras" / "dolly_out.safetensors", seed=2, strength=3.0)
    path = root / "models.toml"
    path.write_text(TINY_CAM)
    return path


class Hooks:
    def __init__(self, cancel_after: int | None = None):
        self.steps = 0
        self.cancel_after = cancel_after

    def on_progress(self, fraction: float, phase: str) -> None:
        if phase == "denoise" and fraction > 0:
            self.steps += 1

    def should_cancel(self) -> bool:
        return self.cancel_after is not None and self.steps >= self.cancel_after


def spec(**overrides) -> GenerationSpec:
    values = dict(prompt="a paper boat on a pond", width=64, height=64, seconds=0.25, seed=5)
    values.update(overrides)
    return GenerationSpec(**values)



def test_models_file_parses_adapters_and_prompts(tmp_path):
    entry = load_registry(tiny_cam_file(tmp_path)).resolve(MODEL)
    assert list(entry.camera) == ["dolly_in", "dolly_out", "jib_up", "pan_left"]  # in MOVES order
    dolly = entry.camera["dolly_in"]
    # A relative path is the models file's folder's.
    assert dolly.applied == "adapter" and dolly.lora == str(tmp_path / "loras" / "dolly_in.safetensors")
    assert entry.camera["dolly_out"].scale == 0.5 and entry.camera["pan_left"].applied == "prompt"
    assert weights.adapter_installed(dolly, tmp_path / "w")
    assert not weights.adapter_installed(entry.camera["jib_up"], tmp_path / "w")
    assert weights.adapter_file(entry.camera["dolly_out"], tmp_path / "w") == tmp_path / "loras" / "dolly_out.safetensors"


def test_shipped_models_offer_every_move():
    registry = load_registry()
    for entry in registry.entries():
        assert set(entry.camera) == set(camera.MOVES), entry.name
    pro = registry.resolve("ltx-2")  # LTX-2 19B: Lightricks' LoRAs, pans and orbits as phrases
    assert {m for m, c in pro.camera.items() if c.applied == "adapter"} == {
        "static", "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down"}
    assert pro.camera["jib_down"].lora == "Lightricks/LTX-2-19b-LoRA-Camera-Control-Jib-Down"
    assert all(c.applied == "prompt" for c in registry.resolve("wan2.2-ti2v-5b").camera.values())


ENTRY = '''# operator models
[[models]]
name = "cam"
family = "ltx2"
weights = "builtin:tiny-ltx2"

[models.camera]
'''


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('zoom_in = { prompt = "x" }', "camera.zoom_in: unknown camera move 'zoom_in' (moves: static, dolly_in"),
        ('dolly_in = { lora = "org/repo", strength = 2 }', "camera.dolly_in: unknown key 'strength'"),
        ('dolly_in = { lora = "org/repo", prompt = "x" }', "camera.dolly_in: give exactly one of 'lora'"),
        ('dolly_in = { prompt = "x", scale = 2 }', "camera.dolly_in: 'scale' only applies with 'lora'"),
        ('dolly_in = { lora = "org/repo", scale = 0 }', "camera.dolly_in: 'scale' must be a number in (0, 4]"),
        ('dolly_in = { lora = "not a repo" }', "camera.dolly_in: 'lora' 'not a repo' is neither a hub repo id"),
        ('dolly_in = { lora = "org/repo", weight_name = "../x.safetensors" }', "'weight_name' must be a .safetensors"),
        ('dolly_in = "dolly"', "camera.dolly_in: must be a table"),
    ],
    ids=["unknown-move", "unknown-key", "both", "stray-scale", "scale-range", "bad-repo", "escape", "not-table"],
)
def test_models_file_refuses_a_bad_camera_table(tmp_path, table, words):
    path = tmp_path / "models.toml"
    path.write_text(ENTRY + table + "\n")
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    message = str(err.value)
    assert message.startswith(f"{path}:3: model 'cam': ") and "\n" not in message
    assert words in message


def test_check_move_is_a_400_naming_the_models_moves(tmp_path):
    entry = load_registry(tiny_cam_file(tmp_path)).resolve(MODEL)
    with pytest.raises(InvalidRequest) as err:
        camera.check_move(entry, "orbit_left", name="sora-2")
    assert err.value.param == "camera" and err.value.code == "invalid_camera"
    assert err.value.message == ("Invalid camera move 'orbit_left' for model 'sora-2'. Supported moves: dolly_in, "
                                 "dolly_out, jib_up, pan_left.")
    info = SimpleNamespace(camera=entry.camera, camera_installed={"jib_up": False, "dolly_in": True})
    with pytest.raises(InvalidRequest) as err:
        camera.check_move(info, "jib_up", name="sora-2")
    assert err.value.code == "model_not_available" and "`mutoscope models pull sora-2`" in err.value.message
    assert str(tmp_path) not in err.value.message
    assert camera.check_move(info, "dolly_in", name="sora-2").lora.endswith("dolly_in.safetensors")
    assert camera.fold("a boat", "The camera pans.") == "a boat. The camera pans."
    assert camera.fold("A boat!  ", "The camera pans.") == "A boat! The camera pans."



@pytest.fixture
def hub(tmp_path, monkeypatch):
    import huggingface_hub

    repos = tmp_path / "hub"
    write_lora(repos / "Lightricks" / "Cam-In" / "cam-in.safetensors", seed=3)
    write_lora(repos / "Lightricks" / "Cam-Out" / "cam-out.safetensors", seed=4)
    (repos / "Lightricks" / "Cam-Out" / "README.md").write_text("readme")

    def hf_hub_download(repo_id, filename, revision=None, local_dir=None):
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        data = (repos / repo_id / filename).read_bytes()
        (Path(local_dir) / filename).write_bytes(data[: hub.cut] if hub.cut else data)
        return str(Path(local_dir) / filename)

    def model_info(self, repo_id, revision=None, files_metadata=False):
        files = [p for p in (repos / repo_id).rglob("*") if p.is_file()]
        return SimpleNamespace(siblings=[SimpleNamespace(rfilename=str(p.relative_to(repos / repo_id)),
                                                         size=p.stat().st_size) for p in files])

    hub = SimpleNamespace(cut=0)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    return hub


def test_pull_fetches_sizes_and_verifies_camera_loras(hub, tmp_path):
    path = tmp_path / "models.toml"
    path.write_text(ENTRY
                    + 'dolly_in = { lora = "Lightricks/Cam-In", weight_name = "cam-in.safetensors" }\n'
                    + 'dolly_out = { lora = "Lightricks/Cam-Out" }\npan_left = { prompt = "It pans." }\n')
    entry = load_registry(path).resolve("cam")
    target = tmp_path / "weights"
    plan = weights.plan_adapters(entry, target)
    # Sizes are known before anything is fetched; without weight_name the repo's only .safetensors is taken.
    assert [(a.repo, a.filename, a.moves) for a in plan] == [
        ("Lightricks/Cam-In", "cam-in.safetensors", ("dolly_in",)),
        ("Lightricks/Cam-Out", "cam-out.safetensors", ("dolly_out",))]
    assert all(a.size > 100 and not a.present for a in plan)
    assert not weights.adapter_installed(entry.camera["dolly_in"], target)

    hub.cut = 50  # a transfer cut short is not installed, and says why
    with pytest.raises(ModelNotAvailable, match="cam-in.safetensors has 50 bytes, the hub lists"):
        weights.pull(entry, target)
    assert not weights.adapter_installed(entry.camera["dolly_in"], target)

    hub.cut = 0
    weights.pull(entry, target)
    assert weights.adapter_file(entry.camera["dolly_in"], target) == target / ".adapters/Lightricks/Cam-In/cam-in.safetensors"
    assert weights.adapter_installed(entry.camera["dolly_out"], target)
    assert all(a.present for a in weights.plan_adapters(entry, target))  # a second pull fetches nothing

    # `models rm`: a LoRA another model names stays; the one only this model used goes.
    other = SimpleNamespace(name="other", camera={"dolly_in": entry.camera["dolly_in"]})
    assert weights.remove_adapters(entry, target, [entry, other]) == ["Lightricks/Cam-Out"]
    assert weights.adapter_installed(entry.camera["dolly_in"], target)
    assert not weights.adapter_installed(entry.camera["dolly_out"], target)



@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from mutoscope.engine.diffusers_engine import DiffusersEngine

    root = tmp_path_factory.mktemp("camera")
    return DiffusersEngine(load_registry(tiny_cam_file(root)), root / "weights", device="cpu")


@pytest.fixture(scope="module")
def lora_calls(engine):
    """Forward calls through each loaded adapter's lora_B layers, per adapter."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    pipes = engine.load(MODEL)
    calls = {name: 0 for name in pipes.camera_adapters.values()}

    def counter(name):
        def hook(module, args, out):
            calls[name] += 1
        return hook

    handles = [module.lora_B[name].register_forward_hook(counter(name))
               for module in pipes.text_to_video.transformer.modules() if isinstance(module, BaseTunerLayer)
               for name in calls if name in module.lora_B]
    assert handles, "no LoRA layers were injected"
    yield calls
    for h in handles:
        h.remove()


@pytest.fixture(scope="module")
def plain(engine, lora_calls):
    before = dict(lora_calls)
    out = engine.generate(MODEL, spec(), Hooks())
    assert lora_calls == before and out.resolved["lora_active"] == [] and "camera" not in out.resolved
    return out


def assert_all_off(engine, lora_calls, plain):
    """No adapter is on now, and the next job without a move runs through none of them, frame for frame."""
    from mutoscope.engine.families import FAMILIES

    pipes = engine.load(MODEL)
    assert FAMILIES["ltx2"].active_adapters(pipes) == []
    before = dict(lora_calls)
    out = engine.generate(MODEL, spec(), Hooks())
    assert lora_calls == before, "an adapter ran in a job that asked for no camera move"
    assert out.resolved["lora_active"] == []
    assert np.array_equal(out.frames, plain.frames)


def test_adapter_is_on_only_for_the_job_that_asks(engine, lora_calls, plain):
    pipes = engine.load(MODEL)
    # The installed LoRAs are loaded once, at model load; the missing one is not.
    assert pipes.camera_adapters == {"dolly_in": "camera_dolly_in", "dolly_out": "camera_dolly_out"}
    before = dict(lora_calls)
    out = engine.generate(MODEL, spec(camera="dolly_in"), Hooks())
    assert lora_calls["camera_dolly_in"] > before["camera_dolly_in"]
    assert lora_calls["camera_dolly_out"] == before["camera_dolly_out"]
    assert out.resolved["camera"] == {"move": "dolly_in", "applied": "adapter", "lora": None, "scale": 1.0,
                                      "active_steps": 2}
    assert out.resolved["lora_active"] == ["camera_dolly_in"]
    # The same seed and prompt: only the adapter differs.
    assert np.abs(out.frames.astype(int) - plain.frames).mean() > 5
    assert_all_off(engine, lora_calls, plain)


def test_adapter_is_off_after_a_cancelled_job(engine, lora_calls, plain):
    before = lora_calls["camera_dolly_out"]
    with pytest.raises(GenerationCancelled):
        engine.generate(MODEL, spec(camera="dolly_out"), Hooks(cancel_after=1))
    assert lora_calls["camera_dolly_out"] > before  # it ran through the adapter until the cancel
    assert_all_off(engine, lora_calls, plain)


def test_adapter_is_off_after_a_failed_job(engine, lora_calls, plain):
    pipes = engine.load(MODEL)
    failing = {"calls": 0}

    def fail_second_step(module, args, out):  # the pipeline breaks mid-job (as an out-of-memory would)
        failing["calls"] += 1
        if failing["calls"] == 2:
            raise RuntimeError("simulated failure in the transformer")

    handle = pipes.text_to_video.transformer.register_forward_hook(fail_second_step)
    try:
        with pytest.raises(EngineError, match="simulated failure"):
            engine.generate(MODEL, spec(camera="dolly_in"), Hooks())
    finally:
        handle.remove()
    assert_all_off(engine, lora_calls, plain)


def test_prompt_move_folds_the_phrase(engine, lora_calls, plain):
    before = dict(lora_calls)
    out = engine.generate(MODEL, spec(camera="pan_left"), Hooks())
    assert lora_calls == before and out.resolved["lora_active"] == []
    folded = "a paper boat on a pond. The camera pans to the left."
    assert out.resolved["camera"] == {"move": "pan_left", "applied": "prompt", "prompt": folded}
    # What the pipeline received is the folded prompt: the same frames as asking for it in words.
    assert np.array_equal(out.frames, engine.generate(MODEL, spec(prompt=folded), Hooks()).frames)
    assert not np.array_equal(out.frames, plain.frames)


def test_a_move_without_its_lora_or_unknown_fails_cleanly(engine, tmp_path):
    with pytest.raises(ModelNotAvailable) as err:
        engine.generate(MODEL, spec(camera="jib_up"), Hooks())
    assert "`mutoscope models pull tiny-cam`" in str(err.value) and "/" not in str(err.value).split("`")[0]
    with pytest.raises(EngineError) as err:
        engine.generate(MODEL, spec(camera="orbit_right"), Hooks())
    assert err.value.code == "invalid_camera"
    info = engine.resolve(MODEL)
    assert info.camera_installed == {"dolly_in": True, "dolly_out": True, "jib_up": False}


def test_models_list_shows_each_models_moves(engine, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mutoscope.cli.main import app

    monkeypatch.setenv("MUTOSCOPE_MODELS_FILE", str(engine.registry.source))
    result = CliRunner().invoke(app, ["models", "list", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.strip("│ ").startswith(MODEL)
               and "dolly_in" in line)
    assert "dolly_in, dolly_out, jib_up" in row and "pan_left" in row and row.count("jib_up") == 2  # not pulled


def test_two_stage_runs_the_move_in_both_stages_and_the_refine_lora_only_in_refine(tmp_path):
    """`sora-2-pro`'s recipe: the camera adapter is on in stage 1 and in the refine pass, where the refine LoRA
    joins it; a job without a move has only the refine LoRA, only while refining."""
    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.families import FAMILIES

    path = tiny_cam_file(tmp_path)
    path.write_text(path.read_text().replace(f'name = "{MODEL}"', 'name = "tiny-cam-pro"')
                    .replace("builtin:tiny-ltx2", "builtin:tiny-ltx2-pro")
                    .replace("test_model = true", 'test_model = true\nrecipe = "two_stage"\nrefine_steps = 2'))
    engine = DiffusersEngine(load_registry(path), tmp_path / "weights", device="cpu")
    pipes = engine.load("tiny-cam-pro")
    family = FAMILIES["ltx2"]
    # What LTX2Family.load does with a two-stage model's refine_lora, here with a tiny LoRA file.
    family.load_adapter(pipes, "refine", write_lora(tmp_path / "refine.safetensors", seed=9))
    pipes.refine_adapter = "refine"
    per_step: list[list[str]] = []
    hooks = Hooks()
    hooks.on_progress = lambda fraction, phase: per_step.append(family.active_adapters(pipes)) \
        if phase == "denoise" and fraction > 0 else None

    out = engine.generate("tiny-cam-pro", spec(camera="dolly_in"), hooks)
    assert per_step == [["camera_dolly_in"]] * 2 + [["camera_dolly_in", "refine"]] * 2
    assert out.resolved["camera"]["active_steps"] == 4 and out.resolved["recipe"] == "two_stage"
    per_step.clear()
    out = engine.generate("tiny-cam-pro", spec(), hooks)
    assert per_step == [[]] * 2 + [["refine"]] * 2 and out.resolved["lora_active"] == ["refine"]
    assert family.active_adapters(pipes) == []
    # At Lightricks' strength for the refine LoRA, read from the LoRA layers themselves.
    from peft.tuners.tuners_utils import BaseTunerLayer

    layer = next(m for m in pipes.text_to_video.transformer.modules()
                 if isinstance(m, BaseTunerLayer) and "refine" in m.lora_A)
    assert layer.scaling["refine"] == pytest.approx(0.8 * layer.lora_alpha["refine"] / layer.r["refine"])
    assert out.resolved["stages"][2]["lora_scale"] == 0.8
