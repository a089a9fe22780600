"""LTX-2 (Lightricks): joint video + audio, `LTX2Pipeline` / `LTX2ImageToVideoPipeline`.

PUT HERE: everything LTX-2 specific: loading real weights, the pipeline call's arguments, reading video + audio.
DO NOT PUT HERE: fitting to the exact output size/duration (diffusers_engine.py).

Rules the real model imposes, kept by the tiny one too: the video VAE
compresses 32x in space and 8x in time, so sizes are multiples of 32 and frame
counts are 8k+1; the audio VAE works on 16 kHz mel frames (hop 160) compressed
4x in time, and the vocoder upsamples 240x to 24 kHz audio.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutoscope.engine.families.base import Family, LoadedPipelines, RawOutput

# The adapter name of the two-stage recipe's refine LoRA (switched on only while refining).
REFINE_ADAPTER = "refine"

# The refine (distilled) LoRA's strength in Lightricks' two-stage recipe as they document running it:
# ltx-pipelines `utils/args.py` (`default_2_stage_arg_parser`, the `--distilled-lora` help: "Example:
# --distilled-lora path/to/distilled_lora.safetensors 0.8"). Their parser's bare default
# (`utils/constants.py` DEFAULT_LORA_STRENGTH) and diffusers' example are 1.0; the documented 0.8 is used.
REFINE_LORA_SCALE = 0.8

# Source frames an extension is conditioned on (at most; 8k+1): ~0.7 s at 24 fps, enough
# for the model to see the motion, few enough to keep the extra tokens cheap.
EXTEND_CONDITION_FRAMES = 17


def _accepted(cls: type, components: dict[str, Any]) -> dict[str, Any]:
    """The components `cls.__init__` takes (pipelines differ in their optional ones)."""
    import inspect

    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in components.items() if k in params}


def as_given_scheduler(scheduler: Any) -> Any:
    """A copy of `scheduler`'s config that applies no shift to the sigmas it is given."""
    return type(scheduler).from_config(scheduler.config, use_dynamic_shifting=False, shift_terminal=None, shift=1.0)


def model_schedule(scheduler: Any, steps: int, num_frames: int, height: int, width: int,
                   spatial_ratio: int = 32, temporal_ratio: int = 8) -> list[float]:
    """The sigmas `LTX2Pipeline` runs for `steps` steps at this size with the default schedule: its
    linspace(1, 1/steps) through the repo's scheduler, shifted for this many video tokens (`mu`, as the
    pipeline computes it) and stretched to the config's terminal."""
    import copy

    import numpy as np
    from diffusers.pipelines.ltx2.pipeline_ltx2 import calculate_shift

    config = scheduler.config
    tokens = ((num_frames - 1) // temporal_ratio + 1) * (height // spatial_ratio) * (width // spatial_ratio)
    mu = calculate_shift(tokens, config.get("base_image_seq_len", 1024), config.get("max_image_seq_len", 4096),
                         config.get("base_shift", 0.95), config.get("max_shift", 2.05))
    probe = copy.deepcopy(scheduler)
    probe.set_timesteps(sigmas=np.linspace(1.0, 1.0 / steps, steps), mu=mu, device="cpu")
    return [float(x) for x in probe.sigmas[:-1]]


def check_steps(entry: "ModelEntry", steps: int) -> None:
    """Refuse a step count a distilled schedule cannot run.

    Distilled weights were trained on their fixed sigmas (diffusers pipelines/ltx2/utils.py
    DISTILLED_SIGMA_VALUES, from ltx-pipelines utils/constants.py); any other count would run them on a
    schedule they never saw, so the override is refused rather than silently changing the schedule. The API
    refuses it at create from the catalog's `fixed_steps`; this is the backstop for jobs made otherwise.
    """
    from mutoscope.engine.base import EngineError

    fixed = entry.fixed_steps
    if fixed is not None and steps != fixed:
        error = EngineError(f"{entry.name}: this model is distilled to a fixed {fixed}-step schedule; "
                            f"num_inference_steps must be {fixed} or left out (got {steps})")
        error.code = "unsupported_steps"
        raise error


def truncated_grid(sigmas: "list[float]", strength: float) -> list[float]:
    """The tail of a distilled sigma grid an edit of `strength` runs: from the grid point nearest to
    `strength` (the higher one on a tie) to the end.

    A distilled model only knows its own noise levels, so an edit starts at one of them and keeps the
    spacing it was trained on, as the authors' own partial schedule does (the stage-2 sigmas are the grid
    from 0.909375: diffusers pipelines/ltx2/utils.py STAGE_2_DISTILLED_SIGMA_VALUES); scaling every sigma by
    the strength would pack the first five (1.0 .. 0.975) within 0.02 of each other and give the model
    levels it never saw.
    """
    grid = [float(x) for x in sigmas]
    best = min(range(len(grid)), key=lambda i: (abs(grid[i] - strength), -grid[i]))
    return grid[best:]


if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch
    from PIL import Image

    from mutoscope.engine.registry import ModelEntry


class LTX2Family(Family):
    name = "ltx2"
    size_multiple = 32
    temporal_ratio = 8
    has_audio = True
    # TaylorSeer hooks the attention modules and keeps its state per `cache_context`, which LTX-2's
    # pipelines enter. The block-skipping caches (first-block, MagCache, SeaCache) need the block's
    # outputs registered in diffusers' TransformerBlockRegistry, and 0.42 does not register
    # `LTX2VideoTransformerBlock` (its second output is the audio stream, not encoder states).
    step_caches = ("taylorseer",)
    # Every attention (video, audio, text cross, audio<->video) and both feed-forwards of each block.
    # TaylorSeer's default patterns ("^transformer_blocks.*attn", full match) hook nothing here:
    # LTX-2's modules are named attn1, audio_attn2, ...
    taylorseer_modules = (r"transformer_blocks\.\d+\.\w*(?:attn\d?|ff)",)
    supports_two_stage = True
    refine_lora_scale = REFINE_LORA_SCALE
    # The pipelines always pass the prompt's attention mask (padding, as an additive float bias) to the
    # video and audio cross-attentions; flash-attn, sage and PyTorch's flash kernel raise on any mask,
    # the varlen kernels on a float one.
    attention_masks = True
    # The transformer's RoPE normalises positions by base_height / base_width (2048 px) and, in time,
    # by pos_embed_max_pos (20 s; frame positions are in seconds): the released checkpoints' values.
    max_side = 2048
    max_seconds = 20.0

    def build_tiny(self, builtin: str) -> LoadedPipelines:
        # tiny-ltx2-pro: the same components plus a latent upsampler, for the two-stage recipe.
        # tiny-ltx25: LTX-2.5's component classes and block design (Gemma 4, keyframe embedding, duration
        # head) with a latent upsampler, two-stage like the real checkpoint's reference recipe.
        known = ("tiny-ltx2", "tiny-ltx2-pro", "tiny-ltx25")
        if builtin not in known:
            raise ValueError(f"unknown builtin LTX-2 model {builtin!r} (known: {', '.join(known)})")
        from mutoscope.engine.testkit.ltx2 import (
            build_tiny_components,
            build_tiny_ltx25_components,
            build_tiny_upsampler,
        )

        upsampler = build_tiny_upsampler() if builtin != "tiny-ltx2" else None
        components = build_tiny_ltx25_components() if builtin == "tiny-ltx25" else build_tiny_components()
        return self._pipelines(components, upsampler=upsampler)

    def load(self, entry: "ModelEntry", source: Path, dtype: "torch.dtype",
             device: str | None = None) -> LoadedPipelines:
        from diffusers import LTX2Pipeline
        from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

        from mutoscope.engine.families.base import components_from_configs, model_from_config

        meta = device == "meta"
        if meta:
            t2v = LTX2Pipeline(**_accepted(LTX2Pipeline, components_from_configs(source, dtype)))
        else:
            t2v = LTX2Pipeline.from_pretrained(str(source), dtype=dtype, local_files_only=True)
        upsampler = adapter = None
        if entry.recipe == "two_stage":
            if meta:
                upsampler = model_from_config(LTX2LatentUpsamplerModel, Path(source) / entry.upsampler_path, dtype)
            else:
                # A missing subfolder is an OSError, which the engine reports as an incomplete pull. An upsampler
                # from its own repo was pulled under the model's folder too (registry.UPSAMPLER_DIR).
                upsampler = LTX2LatentUpsamplerModel.from_pretrained(
                    str(source), subfolder=entry.upsampler_path, dtype=dtype, local_files_only=True
                )
            if entry.refine_lora and not meta:
                adapter = self._load_refine_lora(entry, t2v, source)
        return self._pipelines(dict(t2v.components), t2v=t2v, upsampler=upsampler, refine_adapter=adapter)

    def pipeline_classes(self) -> tuple[type, ...]:
        from diffusers import LTX2ImageToVideoPipeline, LTX2Pipeline

        classes: tuple[type, ...] = (LTX2Pipeline, LTX2ImageToVideoPipeline)
        try:
            from diffusers import LTX2ConditionPipeline
        except ImportError:
            return classes
        return (*classes, LTX2ConditionPipeline)

    def with_schedule(self, pipes: LoadedPipelines, pipe: Any, kwargs: dict[str, Any]) -> Any:
        # An explicit schedule (the distilled sigmas, an edit's, the refine pass's) is meant literally.
        # Through the repo's own scheduler it would be shifted for the resolution and stretched to the
        # terminal (Lightricks/LTX-2 ships use_dynamic_shifting with shift_terminal 0.1).
        if kwargs.get("sigmas") is None:
            return pipe
        return pipes.as_given.get(id(pipe), pipe)

    @staticmethod
    def _load_refine_lora(entry: "ModelEntry", t2v: Any, source: Path) -> str:
        """Load the refine LoRA into the shared transformer, switched off (stage 1 runs without it)."""
        from diffusers.utils import USE_PEFT_BACKEND

        from mutoscope.engine.base import EngineError

        if not USE_PEFT_BACKEND:
            raise EngineError(f"{entry.name}: refine_lora {entry.refine_lora!r} needs the `peft` package "
                              "(pip install peft), which is not installed")
        t2v.load_lora_weights(str(source), weight_name=entry.refine_lora, adapter_name=REFINE_ADAPTER,
                              local_files_only=True)
        t2v.disable_lora()
        return REFINE_ADAPTER

    @staticmethod
    def _pipelines(components: dict[str, Any], t2v: Any = None, upsampler: Any = None,
                   refine_adapter: str | None = None) -> LoadedPipelines:
        from diffusers import LTX2ImageToVideoPipeline, LTX2Pipeline

        t2v = t2v if t2v is not None else LTX2Pipeline(**components)
        # Same component objects, so the image-to-video pipeline costs no extra memory.
        i2v = LTX2ImageToVideoPipeline(**_accepted(LTX2ImageToVideoPipeline, components))
        try:
            from diffusers import LTX2ConditionPipeline
        except ImportError:  # older diffusers: extensions fall back to image-to-video from the last frame
            LTX2ConditionPipeline = None
        cond = None if LTX2ConditionPipeline is None else LTX2ConditionPipeline(
            **_accepted(LTX2ConditionPipeline, components))
        pipes = LoadedPipelines(text_to_video=t2v, image_to_video=i2v, condition=cond)
        # Twins on the same modules whose scheduler takes `sigmas` exactly as given. diffusers' two-stage
        # example builds the refine scheduler this way (use_dynamic_shifting=False, shift_terminal=None);
        # shift=1.0 also undoes a static shift a repo's config might set.
        exact = {**components, "scheduler": as_given_scheduler(components["scheduler"])}
        twins = {id(t2v): LTX2Pipeline(**_accepted(LTX2Pipeline, exact)),
                 id(i2v): LTX2ImageToVideoPipeline(**_accepted(LTX2ImageToVideoPipeline, exact))}
        if cond is not None:
            twins[id(cond)] = LTX2ConditionPipeline(**_accepted(LTX2ConditionPipeline, exact))
        pipes.as_given = twins
        if upsampler is not None:
            from diffusers import LTX2LatentUpsamplePipeline

            pipes.upsample = LTX2LatentUpsamplePipeline(vae=components["vae"], latent_upsampler=upsampler)
            # Stage 2 follows the refine sigmas as given (a shifted 0.909 would no longer be the level the
            # latents were re-noised to).
            pipes.refine = twins[id(t2v)]
            pipes.refine_image = twins[id(i2v)]
            pipes.refine_adapter = refine_adapter
        for pipe in pipes.all():
            pipe.set_progress_bar_config(disable=True)
        return pipes

    def extend_overlap(self, pipes: LoadedPipelines, available: int) -> int:
        if pipes.condition is None:
            return 1
        # A multi-frame condition is encoded as whole latent frames: 8k+1 pixel frames.
        usable = min(available, EXTEND_CONDITION_FRAMES)
        return (usable - 1) // self.temporal_ratio * self.temporal_ratio + 1

    def extend_call(
        self, pipes: LoadedPipelines, entry: "ModelEntry", kwargs: dict[str, Any], tail: "np.ndarray"
    ) -> tuple[Any, dict[str, Any]]:
        if pipes.condition is None:
            return super().extend_call(pipes, entry, kwargs, tail)
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        kwargs = dict(kwargs)
        kwargs.pop("image", None)
        # The clip's last frames become the first latent frames of the new one, kept clean
        # (strength 1): the model continues the motion instead of restarting from a still.
        crf = entry.pipeline_kwargs.get("image_crf")  # only used by single-frame conditions
        kwargs["conditions"] = [LTX2VideoCondition(frames=tail, index=0, strength=1.0, crf=crf)]
        sound = kwargs.pop("_condition_audio", None)
        if sound is not None:
            # ... and its sound the first audio latents, carried at every step (ltx2_audio.py).
            kwargs["_audio_carry"] = self.audio_carry(pipes.condition, kwargs, *sound)
            resolved = dict(kwargs.get("_resolved") or {})
            resolved["audio_carried_seconds"] = round(kwargs["_audio_carry"][2], 4)
            kwargs["_resolved"] = resolved
        return pipes.condition, kwargs

    # Source sound encoded before the overlap, so the causal audio encoder has context at the overlap's start.
    AUDIO_CONTEXT_SECONDS = 0.32

    def audio_carry(self, pipe: Any, kwargs: dict[str, Any], audio: "np.ndarray", rate: int,
                    seconds: float) -> tuple[Any, Any, float]:
        """(clean packed latents, keep mask, seconds carried) that make the call's first `seconds` of sound
        continue the last `seconds` of `audio`: encoded by the audio VAE, placed at the clip's start."""
        from mutoscope.engine.families.ltx2_audio import encode_waveform, overlap_mask, packed_clean

        per_second = pipe.audio_sampling_rate / pipe.audio_hop_length / float(pipe.audio_vae_temporal_compression_ratio)
        take = round((seconds + self.AUDIO_CONTEXT_SECONDS) * rate)
        latents = encode_waveform(pipe, audio[:, -take:], rate)
        carried = min(round(seconds * per_second), latents.shape[2])
        tokens = round(kwargs["num_frames"] / kwargs["frame_rate"] * per_second)  # the pipeline's audio length
        clean, have = packed_clean(pipe, latents[:, :, latents.shape[2] - carried:], tokens)
        return clean, overlap_mask(tokens, have), have / per_second

    def before_call(self, pipes: LoadedPipelines, pipe: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        # kwargs["_audio_carry"] = (clean packed latents, keep mask, seconds) carries sound into the call over
        # an extension's overlap (audio-to-video holds its sound with a pre-hook instead). Only
        # the condition pipeline takes an audio scheduler; it is set for a call that carries sound and
        # cleared for every other, so no call ever inherits another's.
        carry = kwargs.pop("_audio_carry", None)
        if "audio_scheduler" in getattr(pipe, "config", {}):
            pipe.audio_scheduler = None if carry is None else self._carry_scheduler(pipe, kwargs, carry)
        return kwargs

    @staticmethod
    def _carry_scheduler(pipe: Any, kwargs: dict[str, Any], carry: tuple[Any, Any, float]) -> Any:
        import torch

        from mutoscope.engine.families.ltx2_audio import carry_scheduler

        clean, keep, _ = carry
        # Its own noise, from the job's seed: the pipeline's generator draws the same noise as without it.
        seed = kwargs["generator"].initial_seed() if kwargs.get("generator") is not None else 0
        return carry_scheduler(pipe.scheduler, clean, keep, torch.Generator().manual_seed(int(seed) + 1))

    def edit_call(
        self,
        pipes: LoadedPipelines,
        entry: "ModelEntry",
        kwargs: dict[str, Any],
        frames: "np.ndarray",
        strength: float,
    ) -> tuple[Any, dict[str, Any]]:
        """SDEdit through `LTX2Pipeline`'s own `latents` + `noise_scale` + `sigmas` inputs.

        This is the mechanism diffusers' two-stage recipe uses to refine stage-1
        latents: the source is VAE-encoded, noised to `strength`, and denoised
        along the model's schedule scaled by `strength`: the schedule this size would really run
        (the repo scheduler's resolution shift and terminal stretch included), started at `strength`
        and used as given. diffusers has no path
        from a waveform to LTX-2 audio latents (no mel front end), so the sound
        starts from the audio prior's mean at the same noise level and is
        generated with the new picture, in sync with it.
        """
        import numpy as np
        import torch

        pipe = pipes.text_to_video
        kwargs = dict(kwargs)
        kwargs.pop("image", None)
        steps = kwargs["num_inference_steps"]
        device = pipe._execution_device
        video = torch.from_numpy(np.ascontiguousarray(frames)).to(device=device, dtype=pipe.vae.dtype)
        video = video.permute(3, 0, 1, 2).unsqueeze(0) / 127.5 - 1.0  # (1, 3, F, H, W) in [-1, 1]
        with torch.no_grad():
            latents = pipe.vae.encode(video).latent_dist.mode()
        base = kwargs.get("sigmas")
        resolved = dict(kwargs.get("_resolved") or {})
        if base is not None:
            # A distilled grid: truncated, never scaled (`truncated_grid`).
            sigmas = truncated_grid(base, strength)
            if sigmas[0] != strength:
                resolved["edit_strength_requested"] = float(strength)
            strength = sigmas[0]
        else:
            base = model_schedule(pipe.scheduler, steps, kwargs["num_frames"], kwargs["height"], kwargs["width"],
                                  pipe.vae_spatial_compression_ratio, pipe.vae_temporal_compression_ratio)
            sigmas = [float(x) * strength for x in base]
        # Run through the as-given twin (`with_schedule`), so the first step is exactly the noise level.
        kwargs["sigmas"] = sigmas
        kwargs["num_inference_steps"] = len(sigmas)
        kwargs["noise_scale"] = float(strength)
        kwargs["latents"] = latents
        resolved.update(sigmas=sigmas, steps=len(sigmas), edit_strength=float(strength))
        kwargs["_resolved"] = resolved

        per_second = pipe.audio_sampling_rate / pipe.audio_hop_length / float(pipe.audio_vae_temporal_compression_ratio)
        length = round(kwargs["num_frames"] / kwargs["frame_rate"] * per_second)
        mel_bins = pipe.audio_vae.config.mel_bins // pipe.audio_vae_mel_compression_ratio
        mean = pipe.audio_vae.latents_mean.to(device=device, dtype=torch.float32)
        kwargs["audio_latents"] = pipe._unpack_audio_latents(
            mean.view(1, 1, -1).expand(1, length, -1), length, num_mel_bins=mel_bins
        )
        return pipe, kwargs

    def read_latents(self, output: Any) -> tuple[Any, Any]:
        # output_type="latent": video (B, C, F, H, W) and audio (B, C, L, M), both denormalized,
        # which is what the upsampler and the refine call's `latents` / `audio_latents` take.
        return output.frames, output.audio

    def upsample_latents(self, pipes: LoadedPipelines, video_latents: Any) -> Any:
        return pipes.upsample(latents=video_latents, output_type="latent", return_dict=False)[0]

    def refine_call(
        self,
        pipes: LoadedPipelines,
        entry: "ModelEntry",
        kwargs: dict[str, Any],
        video_latents: Any,
        audio_latents: Any,
    ) -> tuple[Any, dict[str, Any]]:
        """Stage 2 as in diffusers' LTX-2 two-stage examples: the upsampled video latents and stage 1's
        audio latents, both re-noised to the first refine sigma (`noise_scale`) and denoised along the
        refine sigmas; with refine_guidance 1 no guidance pass runs (CFG, STG, modality isolation).

        Image-to-video refines with the image-to-video pipeline, which keeps the first latent frame clean.
        That frame is the image encoded again at the full size, as Lightricks' pipelines condition each
        stage on the image at that stage's resolution (ltx-pipelines `distilled.py` `DistilledPipeline.__call__`
        and `ti2vid_two_stages.py`: `stage_2_conditionings = combined_image_conditionings(..., height=
        stage_2_output_shape.height, ...)`). Given `latents=`, diffusers' pipeline never encodes the image,
        so without this frame 0 would stay the upsampler's copy of the half-size encoding."""
        image = kwargs.get("image")
        pipe = pipes.refine_image if image is not None else pipes.refine
        kwargs = dict(kwargs)
        # What the refine stage records (the stage-1 call's own notes do not apply to it).
        kwargs["_resolved"] = {}
        if image is not None:
            video_latents = self._with_image_latent(pipe, video_latents, image, kwargs)
            kwargs["_resolved"]["image_encoded"] = f"{kwargs['width']}x{kwargs['height']}"
        sigmas = [float(x) for x in entry.refine_sigmas]
        kwargs.update(
            latents=video_latents,
            audio_latents=audio_latents,
            sigmas=sigmas,
            num_inference_steps=len(sigmas),
            noise_scale=sigmas[0],
            guidance_scale=entry.refine_guidance,
        )
        if entry.refine_guidance <= 1.0:
            kwargs.update(stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0, audio_guidance_scale=1.0,
                          audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0)
        return pipe, kwargs

    @staticmethod
    def _with_image_latent(pipe: Any, video_latents: Any, image: Any, kwargs: dict[str, Any]) -> Any:
        """`video_latents` (denormalized, (B, C, F, H, W)) with latent frame 0 replaced by `image` encoded at
        the refine size, prepared as the image-to-video pipeline prepares its own image (the H.264
        re-compression at the checkpoint's CRF, resize and normalise, the encoder's mode)."""
        import numpy as np
        import torch
        from diffusers.pipelines.ltx2.utils import apply_image_conditioning_crf, resolve_default_image_crf
        from PIL import Image

        crf = kwargs.get("image_crf")
        crf = resolve_default_image_crf(pipe.text_encoder) if crf is None else crf
        if crf:
            image = Image.fromarray(apply_image_conditioning_crf(np.asarray(image.convert("RGB")), crf))
        vae = pipe.vae
        pixels = pipe.video_processor.preprocess(image, height=kwargs["height"], width=kwargs["width"])
        pixels = pixels.to(device=video_latents.device, dtype=vae.dtype)
        with torch.no_grad():
            latent = vae.encode(pixels.unsqueeze(2)).latent_dist.mode()
        # The pipeline normalises given 5-D latents with the VAE's scaling factor and an encoded image
        # without it; undo the difference so frame 0 ends up exactly as the image path would make it.
        scale = float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)
        if scale != 1.0:
            mean = vae.latents_mean.view(1, -1, 1, 1, 1).to(latent)
            latent = mean + (latent - mean) / scale
        out = video_latents.clone()
        out[:, :, :1] = latent.to(out.dtype)
        return out

    def call_kwargs(
        self,
        entry: "ModelEntry",
        *,
        prompt: str,
        negative_prompt: str | None,
        width: int,
        height: int,
        num_frames: int,
        fps: float,
        steps: int,
        guidance: float,
        generator: "torch.Generator",
        image: "Image.Image | None",
    ) -> dict[str, Any]:
        kwargs = dict(entry.pipeline_kwargs)
        check_steps(entry, steps)
        resolved: dict[str, Any] = {}
        if "sigmas" in kwargs:
            resolved["sigmas"] = [float(x) for x in kwargs["sigmas"]]
        if negative_prompt is None and guidance > 1.0:
            # Models run with guidance get the authors' default negative prompt, as ltx-pipelines'
            # command lines and diffusers' examples send it (diffusers pipelines/ltx2/utils.py
            # DEFAULT_NEGATIVE_PROMPT, quoted from ltx-pipelines utils/constants.py); with guidance 1 no
            # unconditional pass runs, so none is sent.
            from diffusers.pipelines.ltx2.utils import DEFAULT_NEGATIVE_PROMPT

            negative_prompt = DEFAULT_NEGATIVE_PROMPT
            resolved.update(negative_prompt=negative_prompt, negative_prompt_default=True)
        kwargs["_resolved"] = resolved
        kwargs.update(
            prompt=prompt,
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            num_frames=num_frames,
            frame_rate=float(fps),
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generator,
            output_type="pt",
            return_dict=True,
        )
        if image is not None:
            kwargs["image"] = image
        return kwargs

    def audio_call(self, pipes: LoadedPipelines, pipe: Any, entry: "ModelEntry", kwargs: dict[str, Any],
                   audio: "np.ndarray", sample_rate: int) -> tuple[Any, dict[str, Any], Any]:
        kwargs, condition = audio_conditioned_call(pipe, kwargs, audio, sample_rate)
        return pipe, kwargs, condition

    def read_output(self, pipe: Any, output: Any) -> RawOutput:
        return RawOutput(
            video=output.frames[0],
            audio=output.audio[0].float(),
            sample_rate=int(pipe.vocoder.config.output_sampling_rate),
        )


# Generating the picture to a supplied soundtrack: the clip encoded by the audio VAE's own front end
# (ltx2_audio.encode_waveform), held clean on every step.


class AudioCondition:
    """The forward pre-hook that holds a call's audio clean: `remove()` takes it off; `record` says what the
    transformer was given (steps seen, the timestep they saw, the clip's length and hash)."""

    def __init__(self, handle: Any, record: dict[str, Any]):
        self._handle = handle
        self.record = record

    def remove(self) -> None:
        self._handle.remove()


def waveform_to_audio_latents(pipe: Any, audio: "np.ndarray", sample_rate: int, num_frames: int,
                              frame_rate: float) -> "torch.Tensor":
    """A waveform as the (1, C, L, M) audio latents of a `num_frames`-frame clip: cut or zero-padded to the
    clip's length, encoded (ltx2_audio.encode_waveform: resampled, mel-transformed, the posterior's mode), and
    cut or padded to the latent length the pipeline gives that many frames."""
    import numpy as np
    import torch

    from mutoscope.engine.families.ltx2_audio import encode_waveform

    wave = np.atleast_2d(np.asarray(audio, np.float32))
    want = round(num_frames / frame_rate * sample_rate)
    wave = wave[:, :want] if wave.shape[1] >= want else np.pad(wave, ((0, 0), (0, want - wave.shape[1])))
    latents = encode_waveform(pipe, wave, sample_rate)
    per_second = pipe.audio_sampling_rate / pipe.audio_hop_length / float(pipe.audio_vae_temporal_compression_ratio)
    length = round(num_frames / frame_rate * per_second)
    if latents.shape[2] >= length:
        return latents[:, :, :length]
    return torch.nn.functional.pad(latents, (0, 0, 0, length - latents.shape[2]))


def audio_conditioned_call(pipe: Any, kwargs: dict[str, Any], audio: "np.ndarray",
                           sample_rate: int) -> tuple[dict[str, Any], AudioCondition]:
    """Audio-to-video: the picture denoises while the sound is held clean (Lightricks' A2V recipe).

    The soundtrack's latents go in as `audio_latents` with no noise, and a pre-hook on the transformer,
    first among its hooks, hands every call those clean latents and an `audio_timestep` of 0 (the pipeline
    would pass the video's timestep and the scheduler would move the audio): the sound is a condition the
    whole way, never a sample. The decoded sound is thrown away: the engine uses the supplied clip itself.
    """
    import hashlib

    import numpy as np
    import torch

    from mutoscope.engine.families.ltx2_audio import packed_clean

    latents = waveform_to_audio_latents(pipe, audio, sample_rate, kwargs["num_frames"], kwargs["frame_rate"])
    clean, _ = packed_clean(pipe, latents, latents.shape[2])
    record: dict[str, Any] = {
        "conditioning": "clean audio latents, audio timestep 0",
        "sample_rate": int(sample_rate),
        "samples": int(np.asarray(audio).shape[-1]),
        "sha256": hashlib.sha256(np.ascontiguousarray(audio, np.float32).tobytes()).hexdigest(),
        "latent_frames": int(latents.shape[2]),
        "steps": 0,
    }

    def hold_clean(module: Any, args: Any, kw: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        given = kw.get("audio_hidden_states")
        if given is None:
            return args, kw
        batch = given.shape[0]
        kw["audio_hidden_states"] = clean.to(device=given.device, dtype=given.dtype).expand(batch, -1, -1)
        timestep = kw.get("timestep")
        like = timestep if isinstance(timestep, torch.Tensor) else given.new_zeros(batch)
        kw["audio_timestep"] = torch.zeros_like(like)
        record["steps"] += 1
        return args, kw

    handle = pipe.transformer.register_forward_pre_hook(hold_clean, with_kwargs=True, prepend=True)
    kwargs = dict(kwargs)
    kwargs["audio_latents"] = latents
    return kwargs, AudioCondition(handle, record)
