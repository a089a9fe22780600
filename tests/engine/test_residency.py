"""Loaded models and the memory they hold, measured on the process: eviction gives RAM back.

The resident set size is read from /proc before a model loads, while it is loaded and after it was
unloaded; each measurement follows a warm-up load of the same kind, so imports and the allocator's first
arenas are already paid for. The larger model is the tiny LTX-2 pipeline with a ~290 MB random text
encoder, so its delta stands far above the noise of a few MB.
"""

from __future__ import annotations

import os
import sys
import weakref

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mutoscope.engine import residency  # noqa: E402
from mutoscope.engine.diffusers_engine import DiffusersEngine  # noqa: E402
from mutoscope.engine.registry import load_registry  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")
MB = 2**20


def rss() -> int:
    residency.release()
    return residency.rss_bytes()


def big_pipelines(seed: int = 0):
    """The tiny LTX-2 pipelines with a text encoder of ~72 M float32 parameters (never run, only held)."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    from mutoscope.engine.families import FAMILIES
    from mutoscope.engine.testkit.ltx2 import build_tiny_components

    components = build_tiny_components(seed)
    small = components["text_encoder"].config
    text = small.text_config.to_dict()
    text.update(hidden_size=768, intermediate_size=3072, num_hidden_layers=8, num_attention_heads=12,
                num_key_value_heads=4, head_dim=64, layer_types=["full_attention"] * 8)
    torch.manual_seed(seed)
    components["text_encoder"] = Gemma3ForConditionalGeneration(Gemma3Config(
        text_config=text, vision_config=small.vision_config.to_dict(), mm_tokens_per_image=4,
        boi_token_index=1, eoi_token_index=1, image_token_index=3)).eval()
    return FAMILIES["ltx2"]._pipelines(components)


def test_unloading_forgets_the_model_and_what_it_held(tmp_path):
    # Half a megabyte of tiny weights is below what RSS can resolve on a busy machine; the RAM given back is
    # measured on a ~290 MB model in the next test.
    engine = DiffusersEngine(load_registry(), tmp_path / "weights", device="cpu")
    held = engine.residency.record("tiny-ltx2", engine.load("tiny-ltx2"))
    assert held.host_bytes > 0 and engine.loaded() == ["tiny-ltx2"]
    engine.unload("tiny-ltx2")
    assert engine.loaded() == []


def test_least_recently_used_model_is_evicted_and_its_ram_returned(tmp_path):
    # A 100 MB budget: the large model alone exceeds it, so the next load must evict it.
    engine = DiffusersEngine(load_registry(), tmp_path / "weights", device="cpu", host_budget=100 * MB)
    for name in ("tiny-wan", "tiny-ltx2"):
        engine.load(name)
        engine.unload(name)
    engine.install("tiny-ltx2-pro", big_pipelines())
    engine.unload("tiny-ltx2-pro")  # warm-up of the large model's classes and arenas

    before = rss()
    engine.install("tiny-ltx2-pro", big_pipelines())
    encoder = weakref.ref(engine.load("tiny-ltx2-pro").text_to_video.text_encoder)
    loaded = rss()
    assert loaded - before > 250 * MB, (before, loaded)

    engine.load("tiny-wan")  # over budget: the least recently used model goes first
    after = rss()
    assert engine.loaded() == ["tiny-wan"] and encoder() is None
    wan = engine.residency.record("tiny-wan", engine.load("tiny-wan")).host_bytes
    assert after - before < wan + 0.05 * (loaded - before), (before, loaded, after, wan)

    # Within budget, the most recently used stays and the order follows use.
    engine.residency.host_budget = 10**12
    engine.load("tiny-ltx2")
    engine.load("tiny-wan")
    assert engine.loaded() == ["tiny-ltx2", "tiny-wan"]


def test_reloading_for_a_new_camera_lora_never_holds_two_copies(tmp_path):
    """A camera LoRA pulled after the model loaded makes the next job that asks for it reload the model: the
    old copy is gone (collected) by the time the new one is built, and the move's adapter runs."""
    from tests.engine.loras import write_lora
    from tests.engine.test_camera import MODEL, Hooks, spec, tiny_cam_file

    class Watched(DiffusersEngine):
        """Records, at each build, whether the previous copy's transformer still exists."""

        old = None
        alive_at_build: list = []

        def _build(self, entry, family):
            self.alive_at_build.append(self.old is not None and self.old() is not None)
            return super()._build(entry, family)

    engine = Watched(load_registry(tiny_cam_file(tmp_path)), tmp_path / "weights", device="cpu")
    pipes = engine.load(MODEL)
    assert "jib_up" not in pipes.camera_adapters  # its file is not there yet
    engine.old = weakref.ref(pipes.text_to_video.transformer)
    pipes = None
    write_lora(tmp_path / "loras" / "never_pulled.safetensors", seed=3, strength=3.0)

    out = engine.generate(MODEL, spec(camera="jib_up"), Hooks())
    assert engine.alive_at_build == [False, False]  # the first load, then the reload after the unload
    assert engine.old() is None
    assert out.resolved["camera"]["active_steps"] == 2 and out.resolved["lora_active"]
    assert "jib_up" in engine.load(MODEL).camera_adapters


def test_eviction_order_and_both_budgets():
    """Least recently used first, until the newcomer fits both the RAM and the VRAM budget."""
    r = residency.Residency(host_budget=100 * MB, vram_budget=80 * 2**30)
    r._held.update({"a": residency.Held(10 * MB, 30 * 2**30), "b": residency.Held(10 * MB, 30 * 2**30),
                    "c": residency.Held(60 * MB, 0)})
    r.touch("a")  # order now b, c, a
    assert r.loaded() == ["b", "c", "a"]
    assert r.to_evict(10 * MB, 10 * 2**30) == []  # fits both
    assert r.to_evict(10 * MB, 30 * 2**30) == ["b"]  # VRAM: 60 + 30 > 80 until b goes
    assert r.to_evict(50 * MB, 0) == ["b", "c"]  # RAM: 80 + 50 > 100 until c goes too
    assert r.to_evict(500 * MB, 0, keep="a") == ["b", "c"]  # never the model being loaded
