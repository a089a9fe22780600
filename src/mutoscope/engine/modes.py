"""Memory and speed modes: choosing them ("auto") and applying them with diffusers' own APIs.

PUT HERE: the policy that turns a model's `memory`, `vae_tiling`, `layerwise_fp8`,
`attention_backend`, `compile` and `cache` settings into calls on freshly loaded
pipelines, the device checks that refuse a mode this machine cannot run, and the
record of what was applied (`GenerationOutput.resolved["modes"]`).
DO NOT PUT HERE: validating the TOML values (registry.py), family specifics
(families/: each family lists the step caches its transformer supports).

Every mode is a diffusers API, applied once at load, to modules the pipelines share:

| mode | diffusers call |
|---|---|
| memory = full | `pipe.to(device)` |
| memory = text_encoder_offload | `pipe.to(device)` but the text encoder, which an accelerate hook moves in to encode and back out |
| memory = model_cpu_offload | accelerate's `CpuOffload` hook on each module, one module on the GPU at a time, shared by all the pipelines |
| memory = group_offload | `pipe.enable_group_offload(leaf_level, use_stream=True, low_cpu_mem_usage=True)`, VAEs and vocoder resident |
| memory = sequential_cpu_offload | `pipe.enable_sequential_cpu_offload(device=...)` |
| vae_tiling | `vae.enable_tiling()` / `disable_tiling()`, chosen per clip when "auto" (`tile_for_clip`) |
| layerwise_fp8 | `transformer.enable_layerwise_casting(float8_e4m3fn, compute dtype)`, sensitive modules kept (`FP8_KEEP`) |
| attention_backend | `transformer.set_attention_backend(name)` |
| compile | `transformer.compile_repeated_blocks()` (regional torch.compile) |
| cache | `transformer.enable_cache(FirstBlockCacheConfig / TaylorSeerCacheConfig)` |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mutoscope.engine import memory as memory_mod
from mutoscope.engine.base import EngineError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from mutoscope.engine.families.base import LoadedPipelines
    from mutoscope.engine.registry import ModelEntry

# Modes that move weights between an accelerator and the CPU: meaningless (and, in
# accelerate, an error or a silent no-op) when the engine already runs on the CPU.
OFFLOAD_MEMORY_MODES = ("text_encoder_offload", "model_cpu_offload", "group_offload", "sequential_cpu_offload")
# The attention backends that run without CUDA; every other one is a CUDA kernel.
CPU_ATTENTION_BACKENDS = ("native", "_native_math")
# diffusers' own default for FirstBlockCacheConfig.threshold.
DEFAULT_FIRST_BLOCK_THRESHOLD = 0.05

# "auto" VAE tiling: a clip is decoded whole when its estimated untiled decode takes under this share
# of the GPU memory free when it is decoded; a larger clip is decoded in tiles.
VAE_UNTILED_SHARE = 0.5
# The untiled decode's peak over the activations of its last stage (`decode_bytes`): that layer's input,
# output and one intermediate.
VAE_DECODE_FACTOR = 3

# Modules `layerwise_fp8` keeps in the compute dtype, by family, beside diffusers' defaults
# (hooks/layerwise_casting.py DEFAULT_SKIP_MODULES_PATTERN: pos_embed, patch_embed, norm, ^proj_in$,
# ^proj_out$) and the model's own `_skip_layerwise_casting_patterns` ("norm" for LTX-2,
# transformer_ltx2.py; patch_embedding, condition_embedder, norm for Wan). For LTX-2 these are the small
# layers every token's output depends on, as in Lightricks' fp8 recipe, which quantizes only the blocks'
# attention and feed-forward matrices: the timestep embedders and AdaLN tables (time_embed,
# audio_time_embed, prompt_adaln, the av_cross_attn_*_scale_shift that give the audio-video
# cross-attention gates), the per-head attention gates (to_gate_logits), the caption projections and the
# audio stream's input and output projections.
FP8_KEEP: dict[str, tuple[str, ...]] = {
    "ltx2": ("time_embed", "adaln", "scale_shift", "to_gate_logits", "caption_projection",
             "audio_proj_in", "audio_proj_out"),
    "wan": (),
}


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def choose_vae_tiling(device: str, decode_bytes: int, free_bytes: int | None) -> bool:
    """The `vae_tiling = "auto"` choice for one clip: tiles when its untiled decode would take more than
    VAE_UNTILED_SHARE of the GPU memory free now; never on the CPU, where tiling only costs time."""
    if not is_cuda(device):
        return False
    return free_bytes is None or decode_bytes > free_bytes * VAE_UNTILED_SHARE


def decode_bytes(vae: Any, width: int, height: int, frames: int) -> int:
    """The estimated peak of decoding a width x height x frames clip untiled with `vae`: its last decoder
    stage's activations (the narrowest channel count, at the resolution before the final unpatchify),
    for every frame at once, times VAE_DECODE_FACTOR."""
    config = getattr(vae, "config", {}) or {}
    channels = (config.get("decoder_base_dim") or config.get("base_dim")
                or min(config.get("decoder_block_out_channels") or config.get("block_out_channels") or [128]))
    patch = config.get("patch_size") or 1
    element = getattr(getattr(vae, "dtype", None), "itemsize", 4)
    return VAE_DECODE_FACTOR * channels * frames * (width // patch) * (height // patch) * element


def tile_for_clip(pipes: "LoadedPipelines", entry: "ModelEntry", device: str, width: int, height: int,
                  frames: int) -> bool:
    """Turn the VAEs' tiling on or off for the clip about to be made (`vae_tiling = "auto"`: from its size and
    the GPU memory free now); returns whether it is on. A fixed `vae_tiling` was applied at load."""
    if entry.vae_tiling != "auto":
        return bool(entry.vae_tiling)
    import torch

    vaes = _vaes(pipes)
    free = torch.cuda.mem_get_info(torch.device(device))[0] if is_cuda(device) else None
    need = max((decode_bytes(v, width, height, frames) for v in vaes), default=0)
    tiling = choose_vae_tiling(device, need, free)
    for vae in vaes:
        vae.enable_tiling() if tiling else vae.disable_tiling()
    pipes.modes["vae_tiling"] = tiling
    return tiling


def check_device(entry: "ModelEntry", device: str) -> None:
    """Refuse, before any work, a mode this device cannot run (EngineError naming the field)."""
    if is_cuda(device):
        return
    fix = "on a machine with a CUDA GPU, or set it back to its default in the models file"
    if entry.memory in OFFLOAD_MEMORY_MODES:
        raise EngineError(
            f"{entry.name}: memory = {entry.memory!r} offloads from a CUDA GPU, but this engine runs on "
            f"{device!r}; use memory = \"auto\" or \"full\" ({fix})"
        )
    if entry.compile:
        raise EngineError(
            f"{entry.name}: compile = true is only supported on a CUDA GPU (this engine runs on {device!r}); "
            f"on the CPU the compile time exceeds any gain ({fix})"
        )
    if entry.attention_backend not in (None, *CPU_ATTENTION_BACKENDS):
        raise EngineError(
            f"{entry.name}: attention_backend = {entry.attention_backend!r} is a CUDA kernel, but this engine runs "
            f"on {device!r}; use \"native\" ({fix})"
        )


def apply_modes(pipes: "LoadedPipelines", entry: "ModelEntry", device: str) -> dict[str, Any]:
    """Place `pipes` and turn on the entry's modes; returns what was applied (for `resolved["modes"]`).

    Order matters: fp8 storage first (so "auto" sees the smaller weights and offloading moves
    fp8 tensors), then placement, then VAE tiling, attention backend, step cache, and compile
    last, so it traces the hooks the other modes installed.
    """
    import torch

    check_device(entry, device)
    transformers = _transformers(pipes)
    compute_dtype = transformers[0].dtype if transformers else torch.float32
    chosen: list[str] = []
    try:
        if entry.layerwise_fp8:
            keep = FP8_KEEP.get(entry.family, ())
            for t in transformers:
                # Through the model's own list, so diffusers still adds its defaults and skips PEFT (LoRA)
                # layers, which it does only when no pattern is passed.
                own = tuple(type(t)._skip_layerwise_casting_patterns or ())
                t._skip_layerwise_casting_patterns = [*own, *(k for k in keep if k not in own)]
                t.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)

        memory = entry.memory
        if not is_cuda(device):
            memory = "full"  # "auto" or "full": everything on the CPU (offload modes were refused above)
        elif memory == "auto":
            sizes = {name: _module_bytes(m) for name, m in _named_modules(pipes).items()}
            free, _total = torch.cuda.mem_get_info(torch.device(device))
            memory = memory_mod.choose(sizes, free)
        if entry.memory == "auto":
            chosen.append("memory")
        _place(pipes, memory, device)

        # "auto" tiling is chosen per clip (tile_for_clip); a fixed value holds for every clip.
        tiling = entry.vae_tiling
        if tiling == "auto":
            tiling = False
            chosen.append("vae_tiling")
        for vae in _vaes(pipes):
            vae.enable_tiling() if tiling else vae.disable_tiling()

        if entry.attention_backend is not None:
            for t in transformers:
                t.set_attention_backend(entry.attention_backend)

        if entry.cache != "none":
            for t in transformers:
                t.enable_cache(_cache_config(entry, t, compute_dtype))

        if entry.compile:
            for t in transformers:
                # Regional compilation: each repeated block once, a fraction of a whole-model compile.
                t.compile_repeated_blocks()
    except EngineError:
        raise
    except Exception as exc:  # a diffusers refusal (missing kernel package, unsupported module) is a job error
        raise EngineError(f"{entry.name}: cannot apply its memory/speed modes: {type(exc).__name__}: {exc}") from exc

    modes: dict[str, Any] = {
        "device": str(device),
        "dtype": str(compute_dtype).removeprefix("torch."),
        "memory": memory,
        "vae_tiling": bool(tiling),
        "layerwise_fp8": entry.layerwise_fp8,
        "attention_backend": entry.attention_backend or "native",
        "compile": entry.compile,
        "cache": entry.cache,
    }
    if entry.cache == "first_block":
        modes["cache_threshold"] = entry.cache_threshold or DEFAULT_FIRST_BLOCK_THRESHOLD
    if chosen:
        modes["auto"] = chosen
    return modes


def reset_step_caches(pipes: "LoadedPipelines") -> None:
    """Clear the step caches' state before a generation.

    Pipelines reset it at the end of a call (`maybe_free_model_hooks`), but a cancelled or
    failed call never gets there, and the next video must not reuse its residuals.
    """
    from diffusers.hooks import HookRegistry

    for t in _transformers(pipes):
        if getattr(t, "is_cache_enabled", False):
            HookRegistry.check_if_exists_or_initialize(t).reset_stateful_hooks()



def _place(pipes: "LoadedPipelines", memory: str, device: str) -> None:
    """Put the components where `memory` says; the pipelines share modules."""
    import torch

    t2v = pipes.text_to_video
    if memory == "full":
        for pipe in pipes.all():
            pipe.to(device)
    elif memory == "text_encoder_offload":
        _text_encoder_offload(pipes, device)
    elif memory == "group_offload":
        # Applied once, through the text-to-video pipeline, which holds every shared module. The VAEs and
        # the vocoder stay resident: they are small, and diffusers warns that streamed group offload of a
        # VAE can misbehave when its first forward pass is tiled.
        resident = [name for name, c in t2v.components.items()
                    if isinstance(c, torch.nn.Module) and ("vae" in name or name == "vocoder")]
        t2v.enable_group_offload(
            onload_device=torch.device(device),
            offload_device=torch.device("cpu"),
            offload_type="leaf_level",
            use_stream=True,  # prefetch the next layer while this one computes
            # Streams with low_cpu_mem_usage=False pin a copy of every parameter at load and keep it beside
            # the original (hooks/group_offloading.py `_init_cpu_param_dict`): twice the weights in host
            # RAM. True pins each group only while it is moved in.
            low_cpu_mem_usage=True,
            exclude_modules=resident,
        )
        if pipes.upsample is not None:
            # The two-stage recipe's latent upsampler is no component of the text-to-video pipeline; like
            # the VAEs it is small and runs once per video, so it stays resident.
            pipes.upsample.latent_upsampler.to(device)
    elif memory == "model_cpu_offload":
        _offload_one_at_a_time(pipes, device)
    else:
        for pipe in pipes.all():
            pipe.enable_sequential_cpu_offload(device=device)


def _offload_one_at_a_time(pipes: "LoadedPipelines", device: str) -> None:
    """Whole-model offload shared by all of a model's pipelines: at most one module on the GPU.

    diffusers' `enable_model_cpu_offload` is per pipeline: each call removes the hooks on the modules
    it shares with the other pipelines and chains its own, each hook offloading only the module before
    it in that pipeline's order. With several pipelines on the same modules the last one's hooks win
    and the chains no longer match the calls: in the two-stage recipe the VAE's hook came from the
    upsample pipeline ("vae->latent_upsampler"), which offloads nothing before the VAE, so the
    ~35 GiB transformer stayed on the GPU through the refine decode. Here one hook per module, set
    once, moves whichever module is resident back to the CPU before moving its own in. The hooks are
    accelerate's `CpuOffload` (what `_execution_device` and diffusers' `apply_forward_hook` on
    encode/decode look for); the pipelines hold no `_all_hooks`, so their end-of-call
    `maybe_free_model_hooks` leaves these hooks alone.
    """
    import torch
    from accelerate.hooks import CpuOffload, add_hook_to_module
    from accelerate.utils import send_to_device

    execution_device = torch.device(device)
    if execution_device.type == "cuda" and execution_device.index is None:
        execution_device = torch.device("cuda", torch.cuda.current_device())

    class Group:
        resident: Any = None

    group = Group()

    class OneAtATime(CpuOffload):
        def pre_forward(self, module, *args, **kwargs):
            if group.resident is not module:
                if group.resident is not None:
                    group.resident.to("cpu")
                    if execution_device.type == "cuda":
                        torch.cuda.empty_cache()
                module.to(self.execution_device)
                group.resident = module
            return send_to_device(args, self.execution_device), send_to_device(kwargs, self.execution_device)

    for module in _modules(pipes):
        add_hook_to_module(module, OneAtATime(execution_device=execution_device))


def _text_encoder_offload(pipes: "LoadedPipelines", device: str) -> None:
    """Everything resident but the text encoder(s): an accelerate hook moves an encoder in before each of its
    forward passes and back out after it, so denoising has its memory. A guided model encodes its negative
    prompt in a second pass and a two-stage recipe's refine call encodes again, so that is one to three
    round trips a job, not one."""
    import torch
    from accelerate.hooks import CpuOffload, add_hook_to_module

    execution_device = torch.device(device)
    if execution_device.type == "cuda" and execution_device.index is None:
        execution_device = torch.device("cuda", torch.cuda.current_device())

    class InForOneCall(CpuOffload):
        def post_forward(self, module, output):
            module.to("cpu")
            if execution_device.type == "cuda":
                torch.cuda.empty_cache()
            return output

    for name, module in _named_modules(pipes).items():
        if memory_mod.is_text_encoder(name):
            module.to("cpu")
            add_hook_to_module(module, InForOneCall(execution_device=execution_device))
        else:
            module.to(execution_device)


def _cache_config(entry: "ModelEntry", transformer: Any, dtype: "torch.dtype") -> Any:
    from diffusers.hooks import FirstBlockCacheConfig, TaylorSeerCacheConfig

    if entry.cache == "first_block":
        blocks = getattr(transformer, "blocks", None) or getattr(transformer, "transformer_blocks", None) or []
        if len(blocks) < 2:
            # The cache runs the first block and decides whether to skip the rest: there must be a rest.
            raise EngineError(f"{entry.name}: cache = 'first_block' needs at least two transformer blocks")
        return FirstBlockCacheConfig(threshold=entry.cache_threshold or DEFAULT_FIRST_BLOCK_THRESHOLD)
    if entry.cache == "taylorseer":
        import re

        from mutoscope.engine.families import FAMILIES

        patterns = list(FAMILIES[entry.family].taylorseer_modules)
        if not any(re.fullmatch(p, name) for name, _ in transformer.named_modules() for p in patterns):
            # diffusers would hook nothing and silently run at full cost.
            raise EngineError(f"{entry.name}: cache = 'taylorseer' matches no module of {type(transformer).__name__}")
        # Taylor factors in the compute dtype: bfloat16 on GPU (diffusers' default), float32 on CPU.
        return TaylorSeerCacheConfig(taylor_factors_dtype=dtype, cache_identifiers=patterns)
    raise EngineError(f"{entry.name}: unknown cache {entry.cache!r}")


def _modules(pipes: "LoadedPipelines") -> list[Any]:
    """Every distinct torch module of the model (the pipelines share them)."""
    return list(_named_modules(pipes).values())


def _named_modules(pipes: "LoadedPipelines") -> dict[str, Any]:
    """Component name -> module, each distinct module once (the latent upsampler under its own name)."""
    import torch

    seen: dict[int, tuple[str, Any]] = {}
    for pipe in pipes.all():
        for name, component in pipe.components.items():
            if isinstance(component, torch.nn.Module):
                seen.setdefault(id(component), (name, component))
    return {name: module for name, module in seen.values()}


def _transformers(pipes: "LoadedPipelines") -> list[Any]:
    """The denoisers (`transformer`, and `transformer_2` in two-expert Wan models)."""
    seen: dict[int, Any] = {}
    for pipe in pipes.all():
        for name, component in pipe.components.items():
            if name.startswith("transformer") and component is not None and hasattr(component, "enable_cache"):
                seen.setdefault(id(component), component)
    return list(seen.values())


def _vaes(pipes: "LoadedPipelines") -> list[Any]:
    """The video VAEs that tile (LTX-2's audio VAE has no tiling)."""
    seen: dict[int, Any] = {}
    for pipe in pipes.all():
        vae = getattr(pipe, "vae", None)
        if vae is not None and hasattr(vae, "enable_tiling"):
            seen.setdefault(id(vae), vae)
    return list(seen.values())


def _module_bytes(module: Any) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
