"""The real checkpoints of models.toml, built at full size on the meta device from their configs.

tests/engine/fixtures/<repo>/ holds each repo's model_index.json and component configs (README.md
there says where every value comes from). The family's own loader builds them (`load(...,
device="meta")`: no weights, no memory), so a diffusers upgrade that renames a class, drops a
config key or changes a component's size fails here instead of on the first real job.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine.families import FAMILIES  # noqa: E402
from mutoscope.engine.registry import load_registry  # noqa: E402

FIXTURES = Path(__file__).with_name("fixtures")
# MiniMax-H3 is a modular repo (modular_model_index.json): tests/engine/test_minimax_h3.py builds it.
REAL = [e for e in load_registry().entries() if not e.is_builtin and e.family != "minimax_h3"]

# Parameter counts (billions, ±3 %): the transformers as their model cards give them (LTX-2: "19B";
# Wan2.2-TI2V-5B: "5B"), Gemma 3 12B with its SigLIP vision tower.
EXPECTED_BILLIONS = {
    ("ltx-2.3-distilled", "transformer"): 19.0,
    ("ltx-2.3-distilled", "text_encoder"): 12.2,
    ("ltx-2", "transformer"): 19.0,
    ("ltx-2", "text_encoder"): 12.2,
    ("wan2.2-ti2v-5b", "transformer"): 5.0,
    ("wan2.2-ti2v-5b", "text_encoder"): 5.7,  # the UMT5-XXL encoder
    ("ltx-2.5", "transformer"): 19.0,
    # The fine-tuned Gemma 4 12B (fixtures/README.md): 48 layers of 3840, k = v on its 8 global layers.
    ("ltx-2.5", "text_encoder"): 11.91,
    ("ltx-2.5", "connectors"): 3.17,
}


def billions(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e9


@pytest.fixture(scope="module")
def built():
    import torch

    cache = {}

    def build(entry):
        if entry.name not in cache:
            family = FAMILIES[entry.family]
            cache[entry.name] = family.load(entry, FIXTURES / entry.weights, torch.bfloat16, device="meta")
        return cache[entry.name]

    return build


def test_every_real_model_has_fixtures():
    assert {e.name for e in REAL} == {"ltx-2.3-distilled", "ltx-2", "ltx-2.5", "wan2.2-ti2v-5b"}
    for entry in REAL:
        folder = FIXTURES / entry.weights
        assert (folder / "model_index.json").is_file(), folder
        assert (folder / "scheduler" / "scheduler_config.json").is_file(), folder
        if entry.recipe == "two_stage":
            assert (folder / entry.upsampler / "config.json").is_file()


@pytest.mark.parametrize("entry", REAL, ids=lambda e: e.name)
def test_components_have_the_classes_model_index_names(entry, built):
    pipes = built(entry)
    index = json.loads((FIXTURES / entry.weights / "model_index.json").read_text())
    components = pipes.text_to_video.components
    for name, (library, class_name) in ((k, v) for k, v in index.items() if not k.startswith("_")
                                        and isinstance(v, list)):
        if library is None or "tokenizer" in name:
            continue  # tokenizers are vocabularies, not configs: left out on the meta device
        assert type(components[name]).__name__ == class_name, name
    assert type(pipes.text_to_video).__name__ == index["_class_name"]


@pytest.mark.parametrize(("model", "component"), list(EXPECTED_BILLIONS), ids="-".join)
def test_parameter_counts(model, component, built):
    entry = next(e for e in REAL if e.name == model)
    module = built(entry).text_to_video.components[component]
    assert next(module.parameters()).device.type == "meta"
    assert billions(module) == pytest.approx(EXPECTED_BILLIONS[(model, component)], rel=0.03)


def test_two_stage_upsampler_and_refine_pipelines(built):
    entry = next(e for e in REAL if e.recipe == "two_stage")
    pipes = built(entry)
    assert type(pipes.upsample.latent_upsampler).__name__ == "LTX2LatentUpsamplerModel"
    assert pipes.refine.transformer is pipes.text_to_video.transformer  # shared, not a second copy
    assert pipes.refine.scheduler.config.use_dynamic_shifting is False


def test_schedulers_as_the_repos_ship_them(built):
    by_name = {e.name: e for e in REAL}
    dev = built(by_name["ltx-2"]).text_to_video.scheduler.config
    assert dev.use_dynamic_shifting is True and dev.shift_terminal == pytest.approx(0.1)
    distilled = built(by_name["ltx-2.3-distilled"]).text_to_video.scheduler.config
    assert distilled.use_dynamic_shifting is False and not distilled.shift_terminal
    # LTX-2.5 ships the distilled scheduler: its sigmas are used as given.
    ltx25 = built(by_name["ltx-2.5"]).text_to_video.scheduler.config
    assert ltx25.use_dynamic_shifting is False and not ltx25.shift_terminal
    wan = built(by_name["wan2.2-ti2v-5b"]).text_to_video.scheduler
    assert type(wan).__name__ == "UniPCMultistepScheduler" and wan.config.flow_shift == pytest.approx(5.0)


@pytest.mark.parametrize("entry", REAL, ids=lambda e: e.name)
def test_size_rules_match_the_real_vae(entry, built):
    """The family's size multiple and frame rule are the real VAE's compression times the patch size."""
    family = FAMILIES[entry.family]
    pipe = built(entry).text_to_video
    if entry.family == "ltx2":
        spatial = pipe.vae_spatial_compression_ratio * pipe.transformer.config.patch_size
        temporal = pipe.vae_temporal_compression_ratio
    else:
        spatial = pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size[1]
        temporal = pipe.vae_scale_factor_temporal
    assert (family.size_multiple, family.temporal_ratio) == (spatial, temporal)


def test_a_config_key_the_class_no_longer_takes_fails(tmp_path):
    """What a diffusers upgrade that stops reading a checkpoint key looks like here."""
    import shutil

    import torch

    from mutoscope.engine.families.base import model_from_config

    src = FIXTURES / "Lightricks/LTX-2/latent_upsampler"
    shutil.copytree(src, tmp_path / "latent_upsampler")
    config = json.loads((src / "config.json").read_text())
    config["renamed_upstream"] = 1
    (tmp_path / "latent_upsampler" / "config.json").write_text(json.dumps(config))
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    with pytest.raises(ValueError, match="renamed_upstream"):
        model_from_config(LTX2LatentUpsamplerModel, tmp_path / "latent_upsampler", torch.bfloat16)


# LTX-2.5 runs through the same LTX2Pipeline as LTX-2.3; what differs is checked here.
LTX25 = FIXTURES / "Lightricks" / "LTX-2.5-Diffusers"


def test_ltx25_is_the_ltx23_transformer_with_keyframes_and_a_gemma4_encoder(built):
    entry = next(e for e in REAL if e.name == "ltx-2.5")
    pipes = built(entry)
    components = pipes.text_to_video.components
    transformer = components["transformer"]
    assert transformer.config.use_keyframes_abs_pos_embedding and not transformer.config.ff_bias
    # The 2.3 transformer without the video feed-forward biases, plus the keyframe position embedding.
    ltx23 = built(next(e for e in REAL if e.name == "ltx-2.3-distilled")).text_to_video.transformer
    assert abs(billions(transformer) - billions(ltx23)) < 0.01, (billions(transformer), billions(ltx23))
    assert components["text_encoder"].config.model_type == "gemma4_unified"
    # The connectors read every hidden state of the encoder (its layers + the embeddings) and project
    # each modality to what the transformer cross-attends to; the duration head reads those outputs.
    text = components["text_encoder"].config.text_config
    connectors, head = components["connectors"].config, components["duration_head"].config
    assert (connectors.caption_channels, connectors.text_proj_in_factor) == (text.hidden_size,
                                                                              text.num_hidden_layers + 1)
    assert (connectors.video_hidden_dim, connectors.audio_hidden_dim) == (transformer.config.cross_attention_dim,
                                                                          transformer.config.audio_cross_attention_dim)
    assert (head.video_cross_attention_dim, head.audio_cross_attention_dim) == (4096, 2048)
    # The real encoder's shape (gemma_version "gemma4-12b-ltx-v1"), so the real connector weights load:
    # their input projection is 3840 x 49 wide.
    shape = text.to_dict()  # the heads differ per layer: transformers refuses to read them off the config
    assert (shape["hidden_size"], shape["num_hidden_layers"], shape["intermediate_size"]) == (3840, 48, 15360)
    assert (shape["num_attention_heads"], shape["num_key_value_heads"], shape["vocab_size"]) == (16, 8, 262144)
    assert shape["attention_k_eq_v"] and shape["layer_types"].count("full_attention") == 8
    assert all(layer == {"head_dim": 512, "num_key_value_heads": 1} for layer in shape["per_layer_config"].values())
    assert (connectors.caption_channels, connectors.text_proj_in_factor) == (3840, 49)
    # Both stages share one transformer; the upsampler is the LTX-2 class on 128 latent channels.
    assert pipes.refine.transformer is transformer
    assert pipes.upsample.latent_upsampler.config.in_channels == transformer.config.in_channels
    assert pipes.refine_adapter is None  # no stage-2 LoRA: the transformer is distilled


def test_ltx25_diffusion_decoder_builds_at_full_size():
    """The second decoder the repo ships (not in model_index.json, so not loaded by the engine)."""
    import torch

    from mutoscope.engine.families.base import component_class, model_from_config

    decoder = model_from_config(component_class("diffusers", "LTX2VideoDiffusionDecoderModel"),
                                LTX25 / "diffusion_decoder", torch.bfloat16)
    assert all(p.is_meta for p in decoder.parameters())
