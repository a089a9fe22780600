"""Memory a worker's models hold: eviction measured on the process, group offload's host RAM from the plan.

    python bench/model_memory.py                # CPU: a ~1.1 GB random model loaded, evicted, RSS each time
    python bench/model_memory.py --mb 400       # a smaller one

Eviction: the tiny LTX-2 pipelines with a random text encoder of about --mb MB (float32) are installed in a
`DiffusersEngine` whose host budget is below their size; loading another model must unload them. The
process's RSS is read (after collecting and trimming, as the engine does) before the install, with the model
loaded and after the eviction; a warm-up cycle first pays the imports and the allocator's arenas.

Group offload's host RAM (the pinned copy diffusers keeps with `use_stream=True` unless
`low_cpu_mem_usage=True`) needs CUDA to pin memory, so here it is the plan's arithmetic on the real
checkpoints' parameter counts (engine/memory.py); bench/device/prove.py measures it on a GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

MB = 2**20


def big_pipelines(megabytes: int):
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    from mutoscope.engine.families import FAMILIES
    from mutoscope.engine.testkit.ltx2 import build_tiny_components

    components = build_tiny_components(0)
    small = components["text_encoder"].config
    # Per layer: 4 attention matrices of 1024x1024 and a 3 x 1024x4096 MLP, ~16.8 M float32 parameters.
    layers = max(1, round(megabytes * MB / (16.8e6 * 4)))
    text = small.text_config.to_dict()
    text.update(hidden_size=1024, intermediate_size=4096, num_hidden_layers=layers, num_attention_heads=16,
                num_key_value_heads=16, head_dim=64, layer_types=["full_attention"] * layers)
    torch.manual_seed(0)
    components["text_encoder"] = Gemma3ForConditionalGeneration(Gemma3Config(
        text_config=text, vision_config=small.vision_config.to_dict(), mm_tokens_per_image=4,
        boi_token_index=1, eoi_token_index=1, image_token_index=3)).eval()
    return FAMILIES["ltx2"]._pipelines(components)


def rss() -> int:
    from mutoscope.engine import residency

    residency.release()
    return residency.rss_bytes()


def eviction(megabytes: int) -> None:
    from mutoscope.engine.diffusers_engine import DiffusersEngine
    from mutoscope.engine.registry import load_registry

    engine = DiffusersEngine(load_registry(), Path(tempfile.mkdtemp()), device="cpu", host_budget=64 * MB)
    engine.install("tiny-ltx2-pro", big_pipelines(megabytes))  # warm-up: one whole cycle
    engine.load("tiny-wan")
    engine.unload("tiny-wan")
    before = rss()
    engine.install("tiny-ltx2-pro", big_pipelines(megabytes))
    held = engine.residency.record("tiny-ltx2-pro", engine.load("tiny-ltx2-pro")).host_bytes
    loaded = rss()
    engine.load("tiny-wan")  # over budget: the large model is the least recently used
    after = rss()
    print(f"eviction: model tensors {held / MB:.0f} MB; RSS before {before / MB:.0f} MB, loaded {loaded / MB:.0f} MB, "
          f"after eviction {after / MB:.0f} MB; loaded {engine.loaded()}")
    print(f"  RSS given back: {(loaded - after) / max(1, loaded - before):.2f} of what the load added "
          f"(left over: {(after - before) / MB:+.0f} MB)")


def group_offload_plan() -> None:
    from mutoscope.engine import memory
    from mutoscope.engine.registry import load_registry

    print("group offload, host RAM of the offloaded weights (plan, bf16):")
    print("| model | before: pinned copy kept | after: low_cpu_mem_usage | ratio |")
    print("|---|---|---|---|")
    for entry in load_registry().entries():
        sizes = memory.component_bytes(entry)
        if sizes is None:
            continue
        old = memory.host_ram(sizes, "group_offload", group_offload_pinned_copy=True)
        new = memory.host_ram(sizes, "group_offload")
        print(f"| {entry.name} | {memory.fmt(old)} | {memory.fmt(new)} | {new / old:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1100, help="size of the random model's text encoder, MB")
    args = parser.parse_args()
    eviction(args.mb)
    group_offload_plan()


if __name__ == "__main__":
    main()
