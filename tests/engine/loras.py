"""Tiny camera LoRAs for the tiny LTX-2 transformer, built in code (numpy + safetensors, no torch).

The files are in diffusers' peft format (`transformer.<module>.lora_A.weight` / `lora_B.weight`), the
format diffusers' LTX-2 loader reads (Lightricks' own `diffusion_model.` files are converted to it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The tiny transformer's (`engine/testkit/ltx2.py` build_tiny_components) video self-attention: 2 heads of 8,
# so every projection is 16 -> 16; one block.
TINY_LTX2_TARGETS = {f"transformer_blocks.0.attn1.{name}": (16, 16)
                     for name in ("to_q", "to_k", "to_v", "to_out.0")}


def tiny_lora(seed: int, rank: int = 4, strength: float = 1.0) -> dict[str, np.ndarray]:
    """Random lora_A / lora_B for every target; `strength` scales lora_B, so the adapter's effect on the
    output is large enough to see after H.264 (the tiny model's own output is noise)."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for module, (out_features, in_features) in TINY_LTX2_TARGETS.items():
        tensors[f"transformer.{module}.lora_A.weight"] = rng.standard_normal((rank, in_features)).astype(np.float32)
        tensors[f"transformer.{module}.lora_B.weight"] = (
            strength * rng.standard_normal((out_features, rank))).astype(np.float32)
    return tensors


def write_lora(path: Path, seed: int, **kwargs) -> Path:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tiny_lora(seed, **kwargs), str(path))
    return path
