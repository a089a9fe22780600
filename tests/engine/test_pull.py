"""`models pull` against a fake hub: size and free disk measured first, the download verified after.

The fake repo is the Wan 2.2 fixture (tests/engine/fixtures: the real configs) plus stand-in weight
and tokenizer files; huggingface_hub's three calls are replaced by ones that read it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from mutoscope.engine import weights
from mutoscope.engine.base import ModelNotAvailable
from mutoscope.engine.registry import load_registry

FIXTURE = Path(__file__).with_name("fixtures") / "Wan-AI" / "Wan2.2-TI2V-5B-Diffusers"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    repo = tmp_path / "hub"
    shutil.copytree(FIXTURE, repo)
    for name, size in (("transformer/diffusion_pytorch_model.safetensors", 3000),
                       ("vae/diffusion_pytorch_model.safetensors", 1000), ("text_encoder/model.safetensors", 2000),
                       ("tokenizer/tokenizer.json", 10), ("README.md", 5)):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(b"x" * size)
    calls = {"snapshot": 0, "repos": []}
    # Other repos by id (a test adds them); any other id is the Wan repo.
    others: dict[str, Path] = {}

    def root(repo_id):
        return others.get(repo_id, repo)

    def files(repo_id):
        return sorted(str(p.relative_to(root(repo_id))) for p in root(repo_id).rglob("*") if p.is_file())

    def hf_hub_download(repo_id, filename, revision=None, local_dir=None):
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        return shutil.copy(root(repo_id) / filename, Path(local_dir) / filename)

    def snapshot_download(repo_id, revision=None, local_dir=None, allow_patterns=None, tqdm_class=None):
        calls["snapshot"] += 1
        calls["repos"].append(repo_id)
        for name in filter_repo_objects(files(repo_id), allow_patterns=allow_patterns):
            (Path(local_dir) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root(repo_id) / name, Path(local_dir) / name)
        return local_dir

    def model_info(self, repo_id, revision=None, files_metadata=False):
        return SimpleNamespace(siblings=[SimpleNamespace(rfilename=f, size=(root(repo_id) / f).stat().st_size)
                                         for f in files(repo_id)])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr("mutoscope.cli.main._hub_unreachable", lambda: None)  # this stand-in hub answers
    return SimpleNamespace(repo=repo, calls=calls, others=others)


@pytest.fixture
def wan():
    return load_registry().resolve("wan2.2-ti2v-5b")


def test_plan_measures_the_download_before_it_starts(hub, wan, tmp_path):
    plan = weights.plan_pull(wan, tmp_path / "weights")
    assert "transformer/diffusion_pytorch_model.safetensors" in plan.files
    assert "README.md" not in plan.files  # only what the pipeline needs
    assert plan.total_bytes >= 6010 and plan.present_bytes <= 1000 and plan.free_bytes > 0 and plan.fits
    assert hub.calls["snapshot"] == 0


def test_pull_verifies_and_marks_complete(hub, wan, tmp_path):
    target = weights.pull(wan, tmp_path / "weights")
    assert weights.is_installed(wan, tmp_path / "weights")
    assert weights.verify(wan, target) == []


def test_a_truncated_file_is_not_marked_complete(hub, wan, tmp_path, monkeypatch):
    plan = weights.plan_pull(wan, tmp_path / "weights")
    (hub.repo / "vae/diffusion_pytorch_model.safetensors").write_bytes(b"x" * 10)  # the transfer is cut short
    with pytest.raises(ModelNotAvailable, match=r"diffusion_pytorch_model.safetensors has 10 bytes, the hub lists 1000"):
        weights.pull(wan, tmp_path / "weights", plan=plan)
    assert not weights.is_installed(wan, tmp_path / "weights")


def test_a_missing_component_or_a_broken_config_is_reported(wan, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(FIXTURE, folder)
    shutil.rmtree(folder / "text_encoder")
    (folder / "vae" / "config.json").write_text('{"_class_name": "AutoencoderKLWan", "renamed_key": 1}')
    problems = weights.verify(wan, folder)
    assert any("'text_encoder'" in p and "no files" in p for p in problems)
    assert any("'vae'" in p and "renamed_key" in p for p in problems)


def test_not_enough_disk_refuses_before_downloading(hub, wan, tmp_path, monkeypatch):
    monkeypatch.setattr(weights.shutil, "disk_usage", lambda path: SimpleNamespace(free=100, total=100, used=0))
    with pytest.raises(ModelNotAvailable, match="to download but only 100 B free"):
        weights.pull(wan, tmp_path / "weights")
    assert hub.calls["snapshot"] == 0


def test_models_pull_command_shows_size_and_free_disk(hub, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mutoscope.cli.main import app

    monkeypatch.setenv("MUTOSCOPE_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["models", "pull", "wan2.2-ti2v-5b", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "files," in result.output and "to download" in result.output and "free at" in result.output
    assert "verified" in result.output


def test_processors_and_tokenizers_need_files_not_a_config(wan, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(FIXTURE, folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["processor"] = ["transformers", "Gemma3Processor"]
    (folder / "model_index.json").write_text(json.dumps(index))
    for sub in ("processor", "tokenizer"):
        (folder / sub).mkdir()
        (folder / sub / "tokenizer_config.json").write_text("{}")
    assert weights.verify(wan, folder) == []


@pytest.fixture
def upsampler_repo(hub, tmp_path):
    """A hub repo holding a latent upsampler in diffusers' layout (real, tiny) beside a Lightricks-style single
    file that diffusers cannot load as is."""
    from mutoscope.engine.testkit.ltx2 import build_tiny_upsampler

    root = tmp_path / "upsampler-hub"
    build_tiny_upsampler().save_pretrained(root / "latent_upsampler")
    (root / "ltx-2.3-spatial-upscaler-x2-1.0.safetensors").write_bytes(b"x" * 500)
    hub.others["org/upsampler"] = root
    return root


@pytest.fixture
def two_stage(wan):
    """A two-stage entry whose weights' repo has no upsampler: it names the repo it comes from."""
    return replace(wan, family="ltx2", recipe="two_stage", upsampler="latent_upsampler",
                   upsampler_repo="org/upsampler", upsampler_revision="v1")


def test_an_upsampler_from_its_own_repo_is_planned_pulled_verified_and_loadable(hub, upsampler_repo, two_stage,
                                                                                 tmp_path):
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    from mutoscope.engine import memory

    plan = weights.plan_pull(two_stage, tmp_path / "weights")
    weights_file = upsampler_repo / "latent_upsampler" / "diffusion_pytorch_model.safetensors"
    size = weights_file.stat().st_size
    assert plan.files["upsampler_repo/latent_upsampler/diffusion_pytorch_model.safetensors"] == size
    assert "upsampler_repo/latent_upsampler/config.json" in plan.files
    assert not any("spatial-upscaler" in name for name in plan.files)  # only the diffusers-format folder
    assert plan.total_bytes >= 6010 + weights_file.stat().st_size and hub.calls["snapshot"] == 0

    target = weights.pull(two_stage, tmp_path / "weights", plan=plan)
    assert hub.calls["repos"] == ["Wan-AI/Wan2.2-TI2V-5B-Diffusers", "org/upsampler"]
    assert weights.is_installed(two_stage, tmp_path / "weights") and weights.verify(two_stage, target) == []
    marker = json.loads((target / weights.COMPLETE_MARKER).read_text())
    assert marker["upsampler"]["repo_id"] == "org/upsampler" and marker["upsampler"]["revision"] == "v1"
    # `models list` counts it on disk; the loader reads it where the pull put it.
    assert memory.disk_bytes(target) >= 6000 + weights_file.stat().st_size
    loaded = LTX2LatentUpsamplerModel.from_pretrained(str(target), subfolder=two_stage.upsampler_path,
                                                      local_files_only=True)
    assert sum(p.numel() for p in loaded.parameters()) > 0


def test_a_truncated_upsampler_file_is_not_marked_complete(hub, upsampler_repo, two_stage, tmp_path):
    plan = weights.plan_pull(two_stage, tmp_path / "weights")
    (upsampler_repo / "latent_upsampler" / "diffusion_pytorch_model.safetensors").write_bytes(b"x" * 10)
    with pytest.raises(ModelNotAvailable, match=r"upsampler_repo/latent_upsampler/diffusion_pytorch_model"):
        weights.pull(two_stage, tmp_path / "weights", plan=plan)
    assert not weights.is_installed(two_stage, tmp_path / "weights")


def test_an_upsampler_repo_without_a_diffusers_folder_is_refused_before_downloading(hub, upsampler_repo, two_stage,
                                                                                    tmp_path):
    single_file = replace(two_stage, upsampler="ltx-2.3-spatial-upscaler-x2-1.0")
    with pytest.raises(ModelNotAvailable, match=r"org/upsampler has no ltx-2.3-spatial-upscaler-x2-1.0/config.json"):
        weights.pull(single_file, tmp_path / "weights")
    assert hub.calls["snapshot"] == 0
