"""Wan 2.2 TI2V-5B: video only, `WanPipeline` / `WanImageToVideoPipeline`.

PUT HERE: everything Wan specific: loading real weights, the pipeline call's arguments, reading the video.
DO NOT PUT HERE: fitting to the exact output size/duration (diffusers_engine.py).

Rules of the 5B "TI2V" variant, kept by the tiny one too: its VAE packs 2x2
pixels and then compresses 8x more (16x in space), 4x in time; the transformer
adds a 2x2 patch, so sizes are multiples of 32 and frame counts are 4k+1.
Text and image conditioning share one transformer (`expand_timesteps=True`:
the first latent frame is held at timestep 0 and replaced by the image latent).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutoscope.engine.families.base import Family, LoadedPipelines, RawOutput

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch
    from PIL import Image

    from mutoscope.engine.registry import ModelEntry


# The canvas Wan 2.2 TI2V-5B was trained at for 720p (model card; diffusers' Wan 2.2 TI2V-5B example,
# docs/source/en/api/pipelines/wan.md: height=704, width=1280): a 1280x720 request is made at 1280x704 and
# scaled 2 % to cover it, not at the 1280x736 that rounding up to the multiple of 32 would give.
TRAINED_SIZES = {(1280, 736): (1280, 704), (736, 1280): (704, 1280)}

# The negative prompt Wan 2.2 ships for every task (the Wan-Video/Wan2.2 repo's `wan/configs/shared_config.py`
# `sample_neg_prompt`, what diffusers' Wan examples pass), sent when a guided request has none.
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)


class WanFamily(Family):
    name = "wan"
    size_multiple = 32
    temporal_ratio = 4
    has_audio = False
    # Both keep state per `cache_context` ("cond" / "uncond"), which the Wan pipelines enter.
    step_caches = ("first_block", "taylorseer")
    # Self- and cross-attention and the feed-forward of each block (diffusers' default patterns
    # expect modules named "...attn" and match none of Wan's "attn1", "attn2").
    taylorseer_modules = (r"blocks\.\d+\.(?:attn\d|ffn)",)

    def generated_size(self, width: int, height: int, recipe: str = "single") -> tuple[int, int]:
        size = super().generated_size(width, height, recipe)
        return TRAINED_SIZES.get(size, size)

    def build_tiny(self, builtin: str) -> LoadedPipelines:
        if builtin != "tiny-wan":
            raise ValueError(f"unknown builtin Wan model {builtin!r} (known: tiny-wan)")
        from mutoscope.engine.testkit.wan import build_tiny_components

        return self._pipelines(build_tiny_components())

    def load(self, entry: "ModelEntry", source: Path, dtype: "torch.dtype",
             device: str | None = None) -> LoadedPipelines:
        import torch
        from diffusers import AutoencoderKLWan, WanPipeline

        from mutoscope.engine.families.base import components_from_configs

        if device == "meta":
            components = components_from_configs(source, dtype)
            components["vae"] = components["vae"].to(torch.float32)
            components = {k: components.get(k) for k in _T2V_COMPONENTS}
            return self._pipelines(components)
        # The Wan VAE is run in float32, as its model card recommends; bf16 decodes show banding.
        vae = AutoencoderKLWan.from_pretrained(
            str(source), subfolder="vae", dtype=torch.float32, local_files_only=True
        )
        t2v = WanPipeline.from_pretrained(str(source), vae=vae, dtype=dtype, local_files_only=True)
        components = {k: v for k, v in t2v.components.items() if k in _T2V_COMPONENTS}
        return self._pipelines(components, t2v=t2v)

    def pipeline_classes(self) -> tuple[type, ...]:
        from diffusers import WanImageToVideoPipeline, WanPipeline, WanVideoToVideoPipeline

        return (WanPipeline, WanImageToVideoPipeline, WanVideoToVideoPipeline)

    @staticmethod
    def _pipelines(components: dict[str, Any], t2v: Any = None) -> LoadedPipelines:
        from diffusers import WanImageToVideoPipeline, WanPipeline, WanVideoToVideoPipeline

        if t2v is None:
            components = {**components, "transformer_2": None}
            t2v = WanPipeline(**components, boundary_ratio=None, expand_timesteps=True)
        i2v = WanImageToVideoPipeline(
            **{k: components[k] for k in _T2V_COMPONENTS if k != "transformer_2"},
            transformer_2=None,
            image_encoder=None,
            image_processor=None,
            boundary_ratio=None,
            expand_timesteps=True,
        )
        v2v = WanVideoToVideoPipeline(**{k: components[k] for k in _T2V_COMPONENTS if k != "transformer_2"})
        # WanVideoToVideoPipeline derives its VAE factors from the Wan 2.1 VAE (8x in space);
        # the 2.2 TI2V VAE packs 2x2 pixels first (16x). Take the factors WanPipeline read
        # from this VAE's config, so the noise matches the encoded source's shape.
        v2v.vae_scale_factor_spatial = t2v.vae_scale_factor_spatial
        v2v.vae_scale_factor_temporal = t2v.vae_scale_factor_temporal
        v2v.video_processor = t2v.video_processor
        pipes = LoadedPipelines(text_to_video=t2v, image_to_video=i2v, video_to_video=v2v)
        for pipe in pipes.all():
            pipe.set_progress_bar_config(disable=True)
        return pipes

    def edit_call(
        self,
        pipes: LoadedPipelines,
        entry: "ModelEntry",
        kwargs: dict[str, Any],
        frames: "np.ndarray",
        strength: float,
    ) -> tuple[Any, dict[str, Any]]:
        """SDEdit through `WanVideoToVideoPipeline` (`video` + `strength`); its frame count is the source's."""
        from PIL import Image

        kwargs = dict(kwargs)
        kwargs.pop("image", None)
        kwargs.pop("num_frames", None)
        kwargs["video"] = [Image.fromarray(f) for f in frames]
        kwargs["strength"] = float(strength)
        return pipes.video_to_video, kwargs

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
        # Wan has no frame-rate input: the model is trained at one rate (entry.fps).
        kwargs = dict(entry.pipeline_kwargs)
        if negative_prompt is None and guidance > 1.0:
            negative_prompt = DEFAULT_NEGATIVE_PROMPT
            kwargs["_resolved"] = {"negative_prompt": negative_prompt, "negative_prompt_default": True}
        kwargs.update(
            prompt=prompt,
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            num_frames=num_frames,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generator,
            output_type="pt",
            return_dict=True,
        )
        if image is not None:
            kwargs["image"] = image
        return kwargs

    def before_call(self, pipes: LoadedPipelines, pipe: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        from diffusers.utils import is_ftfy_available

        if pipe is not pipes.text_to_video and not is_ftfy_available():
            # diffusers' WanImageToVideoPipeline and WanVideoToVideoPipeline call ftfy
            # unconditionally when they clean the prompt (WanPipeline checks first), so
            # without ftfy we encode the prompt through the text-to-video pipeline,
            # which shares the encoder.
            prompt = kwargs.pop("prompt")
            negative = kwargs.pop("negative_prompt")
            embeds, negative_embeds = pipes.text_to_video.encode_prompt(
                prompt=prompt,
                negative_prompt=negative,
                do_classifier_free_guidance=kwargs["guidance_scale"] > 1.0,
                max_sequence_length=kwargs.get("max_sequence_length", 512),
                device=pipes.text_to_video._execution_device,
            )
            kwargs.update(prompt_embeds=embeds, negative_prompt_embeds=negative_embeds)
        return kwargs

    def read_output(self, pipe: Any, output: Any) -> RawOutput:
        return RawOutput(video=output.frames[0], audio=None, sample_rate=None)


_T2V_COMPONENTS = ("tokenizer", "text_encoder", "vae", "scheduler", "transformer", "transformer_2")
