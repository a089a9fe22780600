"""The compute floor of a video job: FLOPs counted on the real checkpoints' shapes, no weights, no GPU.

Each model of models.toml is built at full size on the meta device from the configs in
tests/engine/fixtures (the engine's own loader, `load(..., device="meta")`), and
`torch.utils.flop_counter.FlopCounterMode` counts one transformer forward on meta tensors of the
exact shapes the pipeline feeds it for an API size and duration (the generation size: each side
rounded up to the family's multiple, frames to its rule). A job's floor is that count times the
forward passes its recipe makes (steps x guidance passes, both stages of the two-stage recipe),
divided by a GPU's dense peak: the time no implementation can beat at 100 % utilisation.

Counted: the denoising transformer only (matmuls and attention; FlopCounterMode counts
`scaled_dot_product_attention` as 4*S_q*S_kv*d per head). Not counted: the text encoder (once per
job), the VAE decode and the vocoder, which `--with-decode` adds from the real VAE on meta tensors.

    python bench/floor.py                       # the shipped models at their default sizes, H100 SXM
    python bench/floor.py --gpu H200 --fp8      # FP8 peak (twice bf16)
    python bench/floor.py --model ltx-2.3-distilled --size 1280x720 --seconds 4 8 12
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "engine" / "fixtures"

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's datasheets; FP8 is twice that.
GPUS = {"H100 SXM": 989e12, "H200": 989e12}

# Prompt tokens the transformer attends to: LTX-2's pipelines pad to max_sequence_length 1024 (the
# connectors keep that length, registers in place of padding); Wan pads its UMT5 output to 512.
LTX2_TEXT_TOKENS = 1024
WAN_TEXT_TOKENS = 512


def build(entry):
    import torch

    from mutoscope.engine.families import FAMILIES

    return FAMILIES[entry.family].load(entry, FIXTURES / entry.weights, torch.bfloat16, device="meta")


def count(fn) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def ltx2_forward_flops(pipe, width: int, height: int, frames: int, fps: float, batch: int = 1, **extra) -> int:
    """One `LTX2VideoTransformer3DModel` call as `LTX2Pipeline` makes it (generation size, 8k+1 frames)."""
    import torch

    t = pipe.transformer
    lat_f = (frames - 1) // pipe.vae_temporal_compression_ratio + 1
    lat_h, lat_w = height // pipe.vae_spatial_compression_ratio, width // pipe.vae_spatial_compression_ratio
    audio_per_second = (pipe.audio_sampling_rate / pipe.audio_hop_length
                        / float(pipe.audio_vae_temporal_compression_ratio))
    audio_frames = round(frames / fps * audio_per_second)
    cfg = t.config
    meta = dict(device="meta", dtype=torch.bfloat16)
    video_tokens = lat_f * lat_h * lat_w
    # LTX-2.0 projects the connectors' caption-width output inside the transformer (caption_projection);
    # LTX-2.3's connectors project per modality already.
    text_video = cfg.caption_channels if cfg.use_prompt_embeddings else cfg.cross_attention_dim
    text_audio = cfg.caption_channels if cfg.use_prompt_embeddings else cfg.audio_cross_attention_dim

    def call():
        t(
            hidden_states=torch.empty(batch, video_tokens, cfg.in_channels, **meta),
            audio_hidden_states=torch.empty(batch, audio_frames, cfg.audio_in_channels, **meta),
            encoder_hidden_states=torch.empty(batch, LTX2_TEXT_TOKENS, text_video, **meta),
            audio_encoder_hidden_states=torch.empty(batch, LTX2_TEXT_TOKENS, text_audio, **meta),
            timestep=torch.empty(batch, device="meta"),
            sigma=torch.empty(batch, device="meta"),
            encoder_attention_mask=torch.empty(batch, LTX2_TEXT_TOKENS, **meta),
            audio_encoder_attention_mask=torch.empty(batch, LTX2_TEXT_TOKENS, **meta),
            num_frames=lat_f, height=lat_h, width=lat_w, fps=fps, audio_num_frames=audio_frames,
            return_dict=False, **extra,
        )

    return count(call)


def wan_forward_flops(pipe, width: int, height: int, frames: int, batch: int = 1) -> int:
    import torch

    t = pipe.transformer
    lat_f = (frames - 1) // pipe.vae_scale_factor_temporal + 1
    lat_h, lat_w = height // pipe.vae_scale_factor_spatial, width // pipe.vae_scale_factor_spatial
    p_t, p_h, p_w = t.config.patch_size
    tokens = (lat_f // p_t) * (lat_h // p_h) * (lat_w // p_w)
    meta = dict(device="meta", dtype=torch.bfloat16)

    def call():
        t(
            hidden_states=torch.empty(batch, t.config.in_channels, lat_f, lat_h, lat_w, **meta),
            # expand_timesteps (TI2V): one timestep per token, the image's frame held at 0.
            timestep=torch.empty(batch, tokens, device="meta"),
            encoder_hidden_states=torch.empty(batch, WAN_TEXT_TOKENS, t.config.text_dim, **meta),
            return_dict=False,
        )

    return count(call)


# MiniMax-H3 reads the prompt verbatim, unpadded (no chat template): a long prompt's tokens.
H3_TEXT_TOKENS = 256


def h3_rows(pipe, width: int, height: int, frames: int) -> tuple[int, int]:
    """(video rows, audio rows) of a generated MiniMax-H3 clip in the packed sequence: 17n+5 frames are
    5n+2 latent frames, 2x2 patches of the 16x latent grid; 40 audio latents a second, one row each per
    stereo channel."""
    from diffusers.modular_pipelines.minimax_h3.modular_pipeline import (
        audio_latent_num_frames,
        video_latent_num_frames,
    )

    lat_f = video_latent_num_frames(frames, pipe.vae_frames_per_chunk, pipe.vae_latents_per_chunk)
    step = pipe.canvas_multiple
    return lat_f * (height // step) * (width // step), audio_latent_num_frames(frames) * pipe.audio_channels


def h3_forward_flops(pipe, width: int, height: int, frames: int, references: bool = False) -> int:
    """One `MiniMaxH3Transformer3DModel` call on the packed sequence (guidance-distilled: one per step).

    references: the `ref2va` partition with one 2048x2048 picture (its own short edge, 1 latent frame)
    and one voice clip as long as the video, the cameo case, packed ahead of the generated rows."""
    import torch

    t = pipe.transformer_ref if references else pipe.transformer
    cfg = t.config
    video, audio = h3_rows(pipe, width, height, frames)
    if references:
        side = 2048 // pipe.canvas_multiple
        video += side * side
        audio += audio
    seq = H3_TEXT_TOKENS + video + audio
    patch = cfg.in_channels * math.prod(cfg.patch_size)
    meta = dict(device="meta")

    def call():
        t(
            hidden_states=torch.empty(1, video, patch, dtype=torch.bfloat16, **meta),
            audio_hidden_states=torch.empty(1, audio, cfg.audio_in_channels, dtype=torch.bfloat16, **meta),
            encoder_hidden_states=torch.empty(1, H3_TEXT_TOKENS, cfg.text_dim, dtype=torch.bfloat16, **meta),
            timestep=torch.empty(3, **meta),
            timestep_indices=torch.empty(seq, dtype=torch.long, **meta),
            token_tags=torch.empty(seq, dtype=torch.long, **meta),
            position_ids=torch.empty(seq, 3, dtype=torch.long, **meta),
            video_indices=torch.empty(video, dtype=torch.long, **meta),
            audio_indices=torch.empty(audio, dtype=torch.long, **meta),
            text_indices=torch.empty(H3_TEXT_TOKENS, dtype=torch.long, **meta),
            return_dict=False,
        )

    return count(call)


def decode_flops(pipe, width: int, height: int, frames: int, family: str) -> int:
    import torch

    vae = pipe.vae
    if family == "ltx2":
        lat_f = (frames - 1) // pipe.vae_temporal_compression_ratio + 1
        s = pipe.vae_spatial_compression_ratio
        z = torch.empty(1, vae.config.latent_channels, lat_f, height // s, width // s, device="meta", dtype=vae.dtype)
        temb = torch.empty(1, device="meta", dtype=vae.dtype) if vae.config.timestep_conditioning else None
        return count(lambda: vae.decode(z, temb, return_dict=False))
    if family == "minimax_h3":
        from diffusers.modular_pipelines.minimax_h3.modular_pipeline import video_latent_num_frames

        lat_f = video_latent_num_frames(frames, pipe.vae_frames_per_chunk, pipe.vae_latents_per_chunk)
        s = pipe.vae_spatial_compression_ratio
        z = torch.empty(1, vae.config.latent_channels, lat_f, height // s, width // s, device="meta", dtype=vae.dtype)
        return count(lambda: vae.decode(z, return_dict=False))
    lat_f = (frames - 1) // pipe.vae_scale_factor_temporal + 1
    s = pipe.vae_scale_factor_spatial
    z = torch.empty(1, vae.config.z_dim, lat_f, height // s, width // s, device="meta", dtype=vae.dtype)
    return count(lambda: vae.decode(z, return_dict=False))


def ltx2_passes(entry, guidance: float) -> list[dict]:
    """The transformer calls one denoising step makes: the pipeline's guidance logic, with the
    pipeline's defaults for what the entry's pipeline_kwargs leave unset."""
    import inspect

    from diffusers import LTX2Pipeline

    defaults = {k: p.default for k, p in inspect.signature(LTX2Pipeline.__call__).parameters.items()}
    kw = {**defaults, **entry.pipeline_kwargs}
    audio_guidance = kw["audio_guidance_scale"] if kw["audio_guidance_scale"] is not None else guidance
    passes = [{"batch": 2 if guidance > 1 or audio_guidance > 1 else 1}]  # cond (+ uncond, batched)
    if kw["stg_scale"] > 0 or (kw["audio_stg_scale"] or 0) > 0:
        passes.append({"batch": 1, "spatio_temporal_guidance_blocks": kw["spatio_temporal_guidance_blocks"]})
    if kw["modality_scale"] > 1 or (kw["audio_modality_scale"] or 0) > 1:
        passes.append({"batch": 1, "isolate_modalities": True})
    return passes


def job(entry, pipes, width: int, height: int, seconds: float,
        with_decode: bool, references: bool = False) -> tuple[list[tuple[str, int, int]], int, tuple[int, int]]:
    """([(phase, FLOPs of one step, steps)], generated frames, generated size) of one text-to-video job
    (`references`: a MiniMax-H3 job conditioned on a cameo's picture and voice instead)."""
    from mutoscope.engine.families import FAMILIES

    family = FAMILIES[entry.family]
    pipe = pipes.text_to_video
    frames = family.frames_covering(round(seconds * entry.fps))
    phases = []
    if entry.family == "ltx2":
        if entry.recipe == "two_stage":
            gen_w, gen_h = family.generated_size(width, height, "two_stage")
            w1, h1 = gen_w // 2, gen_h // 2
            passes = ltx2_passes(entry, entry.guidance)
            step = sum(ltx2_forward_flops(pipe, w1, h1, frames, entry.fps, **p) for p in passes)
            phases.append((f"generate {w1}x{h1}", step, entry.steps))
            refine = ltx2_forward_flops(pipe, gen_w, gen_h, frames, entry.fps)  # refine_guidance 1: one pass
            phases.append((f"refine {gen_w}x{gen_h}", refine, entry.refine_steps))
        else:
            gen_w, gen_h = family.generated_size(width, height)
            passes = ltx2_passes(entry, entry.guidance)
            step = sum(ltx2_forward_flops(pipe, gen_w, gen_h, frames, entry.fps, **p) for p in passes)
            phases.append((f"denoise {gen_w}x{gen_h}", step, entry.steps))
    elif entry.family == "minimax_h3":
        gen_w, gen_h = family.generation_size(width, height)
        name = "ref2va, 1 picture + 1 voice" if references else "denoise"
        phases.append((f"{name} {gen_w}x{gen_h}", h3_forward_flops(pipe, gen_w, gen_h, frames, references),
                       entry.steps))
    else:
        gen_w, gen_h = family.generated_size(width, height)  # Wan: its trained 1280x704 for 720p
        batch = 2 if entry.guidance > 1 else 1  # Wan runs cond and uncond as two calls: same FLOPs
        phases.append((f"denoise {gen_w}x{gen_h}", wan_forward_flops(pipe, gen_w, gen_h, frames) * batch, entry.steps))
    if with_decode:
        phases.append(("VAE decode", decode_flops(pipe, gen_w, gen_h, frames, entry.family), 1))
    return phases, frames, (gen_w, gen_h)


def main() -> None:
    from mutoscope.engine.registry import load_registry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model name or alias (default: every real model)")
    parser.add_argument("--size", action="append", help="API size WxH (default: the model's sizes)")
    parser.add_argument("--seconds", nargs="*", type=float, help="durations (default: the model's shortest)")
    parser.add_argument("--gpu", default="H100 SXM", choices=sorted(GPUS))
    parser.add_argument("--fp8", action="store_true", help="use the FP8 peak (twice bf16)")
    parser.add_argument("--with-decode", action="store_true", help="add the VAE decode's FLOPs")
    args = parser.parse_args()

    registry = load_registry()
    entries = ([registry.resolve(m) for m in args.model] if args.model
               else [e for e in registry.entries() if not e.is_builtin])
    peak = GPUS[args.gpu] * (2 if args.fp8 else 1)
    print(f"peak: {args.gpu}, {'FP8' if args.fp8 else 'bf16'} dense, {peak / 1e12:.0f} TFLOP/s")
    print("| model | API size | s | generated | phase | TFLOP / step | steps | PFLOP | floor (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for entry in entries:
        pipes = build(entry)
        sizes = args.size or list(entry.sizes[:1])
        for size in sizes:
            width, height = (int(x) for x in size.split("x"))
            for seconds, references in ((s, r) for s in args.seconds or [float(entry.seconds[0])]
                                        for r in ((False, True) if entry.family == "minimax_h3" else (False,))):
                phases, frames, gen = job(entry, pipes, width, height, seconds, args.with_decode, references)
                total = 0
                for name, flops, steps in phases:
                    total += flops * steps
                    print(f"| {entry.name} | {size} | {seconds:g} | {gen[0]}x{gen[1]}x{frames} | {name} | "
                          f"{flops / 1e12:.1f} | {steps} | {flops * steps / 1e15:.2f} | {flops * steps / peak:.2f} |")
                print(f"| {entry.name} | {size} | {seconds:g} | | **job** | | | **{total / 1e15:.2f}** | "
                      f"**{total / peak:.2f}** |")


if __name__ == "__main__":
    main()
