"""`DiffusersEngine`: the `VideoEngine` that runs real diffusers pipelines.

PUT HERE: alias resolution through the registry, the warm pipeline cache,
choosing text- vs image-to-video, progress/cancel wiring, and fitting the
pipeline's output to exactly the size and duration the caller asked for.
Memory and speed modes are applied at load, by modes.py.
DO NOT PUT HERE: family specifics (families/), downloads (weights.py),
MP4 encoding (media/), job state (jobs/).

Fitting policy (documented for the API docs):
- Size: the model generates at the smallest size it accepts that covers the
  request (each side rounded up to the family's multiple, e.g. 720x1280 ->
  736x1280 for LTX-2). The output is scaled to cover the requested size (a
  factor of 1 whenever generation covers it, which the rounding guarantees) and
  center-cropped, so the picture is never stretched and, in practice, never
  resampled. A family may name the size its model was trained at instead (Wan
  2.2 TI2V-5B: 1280x704 for 720p), which is then scaled up slightly to cover.
- An input image (already width x height) is centered on the generation canvas
  with its edge pixels repeated into the margin, so the crop returns exactly it.
- Frames: the family's frame rule (8k+1 for LTX-2, 4k+1 for Wan) is rounded up
  to cover round(seconds * fps), then the tail is cut to exactly that many.
- Audio: cut or zero-padded to exactly frames / fps seconds.
- Two-stage models (`recipe = "two_stage"`, text- and image-to-video): stage 1
  runs at half the size, each side rounded up to the family's multiple (1792x1024
  -> 896x512; 1280x720 -> 640x384), the latent upsampler doubles it, and the
  refine pass and decode run at exactly twice that; the same crop then applies.
"""

from __future__ import annotations

import logging
import math
import threading
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mutoscope.engine import camera as camera_mod
from mutoscope.engine import memory as memory_mod
from mutoscope.engine import modes as modes_mod
from mutoscope.engine import parallel as parallel_mod
from mutoscope.engine import residency as residency_mod
from mutoscope.engine import signatures
from mutoscope.engine import weights as weights_mod
from mutoscope.engine.base import (
    EngineError,
    GenerationCancelled,
    GenerationOutput,
    GenerationSpec,
    ModelNotAvailable,
    OutOfMemory,
    StepHooks,
    VideoEngine,
)
from mutoscope.engine.families import FAMILIES, Family, LoadedPipelines
from mutoscope.engine.catalog import Catalog
from mutoscope.engine.parallel import ParallelGroup
from mutoscope.engine.registry import ModelEntry, Registry, RegistryError

logger = logging.getLogger(__name__)

# Frames converted to uint8 at a time; bounds the float32 working set at 720p.
_FRAME_CHUNK = 16


class DiffusersEngine(Catalog, VideoEngine):
    """Runs the registry's models with diffusers; pipelines stay loaded between jobs.

    Args:
        registry: the model registry (see `registry.load_registry`).
        weights_dir: where pulled weights live (`<weights_dir>/<model name>/`).
        device: torch device; None picks "cuda" when available, else "cpu".
        parallel: this process's rank in a multi-GPU worker (`mutoscope worker --gpus 0,1`); models with
            `context_parallel` split their transformer over its ranks (engine/parallel.py).
        host_budget, vram_budget: bytes the loaded models may hold (engine/residency.py); None: from the machine.

    Out of memory: a job that runs out of memory (CUDA's allocator, or the host's) is retried once with
    the model reloaded one step down `memory.LADDER` and its VAE tiled (on the CPU: tiled only); the
    model keeps that mode while it stays loaded. A second failure, or none lower, fails the job with
    `out_of_memory`, naming the model and the mode. Either way the job's tensors are dropped and the
    memory given back before the next job.
    """

    def __init__(self, registry: Registry, weights_dir: Path, device: str | None = None,
                 parallel: "ParallelGroup | None" = None, host_budget: int | None = None,
                 vram_budget: int | None = None):
        import torch

        super().__init__(registry, weights_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.parallel = parallel
        self.residency = residency_mod.Residency(host_budget, vram_budget, self.device)
        # Model name -> the lower modes an out-of-memory retry moved it to (kept while it stays loaded).
        self._lowered: dict[str, dict[str, Any]] = {}
        check_registry(registry)
        self._pipelines: dict[str, LoadedPipelines] = {}
        # generate() runs on one worker thread per engine, but loading may also be
        # triggered from elsewhere (preload, models list); one load at a time.
        self._load_lock = threading.Lock()


    def generate(self, model: str, spec: GenerationSpec, hooks: StepHooks) -> GenerationOutput:
        entry = self.registry.resolve(model)
        name = entry.name
        try:
            return self._generate(model, spec, hooks)
        except Exception as exc:
            if not _out_of_memory(exc):
                raise
            before = self._mode_words(name)
            _forget(exc)
        residency_mod.release()
        # A job shared by several ranks cannot be retried by one of them alone: the others' collectives
        # would no longer match.
        shared = self.parallel is not None and self.parallel.world_size > 1 and entry.context_parallel != "none"
        lower = None if shared else self._lower_modes(name)
        if lower is None:
            why = "a job split over several GPUs is not retried" if shared else "the lowest this server offers"
            raise OutOfMemory(f"{model} ran out of memory in {before}, {why}; try a smaller size or a shorter video")
        logger.warning("%s: out of memory in %s; retrying once in %s", name, before, _mode_text(lower))
        self.unload(name)
        self._lowered[name] = lower
        try:
            return self._generate(model, spec, hooks)
        except Exception as exc:
            if not _out_of_memory(exc):
                raise
            _forget(exc)
        residency_mod.release()
        raise OutOfMemory(f"{model} ran out of memory in {before}, and again when retried in "
                          f"{_mode_text(lower)}; try a smaller size or a shorter video")

    def _current_modes(self, name: str) -> dict[str, Any]:
        """The memory mode and VAE tiling the model runs in; when it is not loaded (it ran out of memory while
        loading), the ones it was being loaded in ("auto" counting as the top of the ladder)."""
        pipes = self._pipelines.get(name)
        if pipes is not None:
            return {"memory": pipes.modes.get("memory", "full"), "vae_tiling": bool(pipes.modes.get("vae_tiling"))}
        entry = self._entry(name)
        memory = entry.memory if entry.memory != "auto" and modes_mod.is_cuda(self.device) else "full"
        return {"memory": memory, "vae_tiling": entry.vae_tiling is True}

    def _mode_words(self, name: str) -> str:
        """The memory mode the model runs in, as an error message says it."""
        return _mode_text(self._current_modes(name))

    def _lower_modes(self, name: str) -> dict[str, Any] | None:
        """The next modes down from the ones the model runs in, or None when nothing is lower."""
        modes = self._current_modes(name)
        memory, tiled = modes["memory"], modes["vae_tiling"]
        if modes_mod.is_cuda(self.device):
            lower = memory_mod.lower(memory)
            if lower is not None:
                return {"memory": lower, "vae_tiling": True}
        return None if tiled else {"memory": memory, "vae_tiling": True}

    def _entry(self, name: str) -> ModelEntry:
        """The registry's entry with any lower modes an out-of-memory retry set."""
        entry = self.registry.resolve(name)
        lowered = self._lowered.get(entry.name)
        return replace(entry, **lowered) if lowered else entry

    def _generate(self, model: str, spec: GenerationSpec, hooks: StepHooks) -> GenerationOutput:
        import torch

        entry = self._entry(model)
        family = FAMILIES[entry.family]
        if spec.width <= 0 or spec.height <= 0 or spec.seconds <= 0:
            raise EngineError(f"invalid size/duration: {spec.width}x{spec.height}, {spec.seconds}s")
        frames_out = round(spec.seconds * entry.fps)
        if frames_out < 1:
            raise EngineError(f"{spec.seconds}s at {entry.fps} fps is less than one frame")
        try:
            camera = camera_mod.plan(entry, spec.camera)
        except camera_mod.UnknownMove as exc:
            error = EngineError(f"{model}: {exc}")
            error.code = "invalid_camera"
            raise error from None

        if camera is not None and camera.applied == "adapter":
            self._unload_for_new_adapter(entry, camera.move)
        # Job errors reach the caller, so they name the model as the caller did (`model`, maybe an alias),
        # never the entry it resolved to, nor the weights folder; the operator's detail goes to the log.
        try:
            pipes = self.load(entry.name)
        except ModelNotAvailable as exc:
            logger.warning("%s", exc)
            raise ModelNotAvailable(f"The model '{model}' is not installed on this server; the operator can "
                                    f"install it with `{weights_mod.pull_command(model)}`.") from exc
        except EngineError as exc:  # a mode this device cannot run: the setting is the caller's clue too
            public = EngineError(f"{model}: {str(exc).removeprefix(f'{entry.name}: ')}")
            public.code = exc.code
            raise public from exc
        if camera is not None and camera.applied == "adapter":
            pipes = self._camera_ready(entry, model, pipes, camera.move)
        prompt = camera.prompt_for(spec.prompt) if camera is not None else spec.prompt
        pipe = pipes.image_to_video if spec.image is not None else pipes.text_to_video
        mode = spec.condition_mode
        # Extensions and edits condition on a source clip at full size: they take the single pass.
        # (References and a supplied soundtrack condition one pass too.)
        two_stage = entry.recipe == "two_stage" and mode is None and not spec.references and spec.audio is None
        if two_stage:
            if pipes.upsample is None:
                raise EngineError(f"{model}: recipe 'two_stage' but no latent upsampler was loaded")
            # Stage 1 at half the size, each side a multiple of the family's; stage 2 at exactly twice that
            # (the size the models file's sizes were checked at).
            gen_w, gen_h = family.generated_size(spec.width, spec.height, "two_stage")
            stage1_w, stage1_h = gen_w // 2, gen_h // 2
        else:
            gen_w, gen_h = family.generated_size(spec.width, spec.height)
        source = None
        overlap = 0  # leading generated frames that repeat the source (extensions), cut below
        if mode is not None:
            source = np.asarray(spec.condition_frames)
            if source.ndim != 4 or source.shape[-1] != 3 or source.dtype != np.uint8 or len(source) == 0:
                raise EngineError(f"condition_frames must be non-empty uint8 (T, H, W, 3), got {source.shape}")
            if mode == "edit" and len(source) < frames_out:
                raise EngineError(f"edit source has {len(source)} frames, {frames_out} needed")
            if mode == "extend":
                overlap = family.extend_overlap(pipes, len(source))
                source = source[-overlap:]
        gen_frames = family.frames_covering(overlap + frames_out)
        steps = spec.num_inference_steps if spec.num_inference_steps is not None else entry.steps
        guidance = spec.guidance_scale if spec.guidance_scale is not None else entry.guidance
        strength = spec.edit_strength if spec.edit_strength is not None else entry.edit_strength
        # A CPU generator gives the same noise for a seed on every device.
        generator = torch.Generator(device="cpu").manual_seed(spec.seed)
        image = fit_image(spec.image, gen_w, gen_h) if spec.image is not None else None

        def call_kwargs(width: int, height: int, image: Any) -> dict[str, Any]:
            return family.call_kwargs(
                entry,
                prompt=prompt,
                negative_prompt=spec.negative_prompt,
                width=width,
                height=height,
                num_frames=gen_frames,
                fps=entry.fps,
                steps=steps,
                guidance=guidance,
                generator=generator,
                image=image,
            )

        if two_stage:
            from PIL import Image

            # The stage-1 image is the full canvas halved, so both stages see the same framing.
            stage1_image = image.resize((stage1_w, stage1_h), Image.Resampling.LANCZOS) if image is not None else None
            kwargs = call_kwargs(stage1_w, stage1_h, stage1_image)
            kwargs["output_type"] = "latent"
        else:
            kwargs = call_kwargs(gen_w, gen_h, image)
        if mode == "extend":
            if spec.condition_audio is not None and spec.condition_audio_rate:
                kwargs["_condition_audio"] = (np.asarray(spec.condition_audio, dtype=np.float32),
                                              int(spec.condition_audio_rate), overlap / entry.fps)
            pipe, kwargs = family.extend_call(pipes, entry, kwargs, fit_frames(source, gen_w, gen_h))
            kwargs.pop("_condition_audio", None)
        elif mode == "edit":
            # The source, cut to the output's length and padded (last frame repeated) to the family's frame rule.
            clip = source[:frames_out]
            clip = np.concatenate([clip, np.repeat(clip[-1:], gen_frames - len(clip), axis=0)])
            pipe, kwargs = family.edit_call(pipes, entry, kwargs, fit_frames(clip, gen_w, gen_h), strength)
        if pipe is None:
            raise EngineError(f"{model}: this model cannot {mode} videos")
        if spec.references:
            pipe, kwargs = family.reference_call(pipes, entry, kwargs, list(spec.references))
        audio_hook = None
        if spec.audio is not None:
            if not spec.audio_sample_rate:
                raise EngineError("audio needs its sample rate")
            pipe, kwargs, audio_hook = family.audio_call(pipes, pipe, entry, kwargs, np.asarray(spec.audio),
                                                         int(spec.audio_sample_rate))
        # What the family chose that the entry does not say (a default negative prompt, an edit's schedule).
        recorded = kwargs.pop("_resolved", None) or {}
        refine_recorded: dict[str, Any] = {}
        pipe = family.with_schedule(pipes, pipe, kwargs)
        kwargs = _accepted_kwargs(pipe, family.before_call(pipes, pipe, kwargs))
        refine_steps = entry.refine_steps if two_stage else 0
        # Both stages' steps share the denoise phase, stage 1 first, so progress only grows.
        total_steps = steps + refine_steps if two_stage else None
        # The adapters on for this call, and what the LoRA layers really applied at each step (read from
        # the layers, not from our own bookkeeping): `resolved["lora_active"]`.
        camera_on = [(camera.adapter, camera.scale)] if camera is not None and camera.applied == "adapter" else []
        refine_on = [(pipes.refine_adapter, family.refine_lora_scale)] if pipes.refine_adapter else []
        seen: list[list[str]] = []

        def observe() -> None:
            seen.append(family.active_adapters(pipes))

        kwargs["callback_on_step_end"] = _step_callback(hooks, steps, total=total_steps, on_step=observe)

        if hooks.should_cancel():
            raise GenerationCancelled("cancelled before start")
        hooks.on_progress(0.0, "denoise")
        modes_mod.reset_step_caches(pipes)
        modes_mod.tile_for_clip(pipes, entry, self.device, gen_w, gen_h, gen_frames)
        try:
            # On for this call only: every exit below (done, failed, cancelled) switches them off again.
            family.set_adapters(pipes, camera_on)
            with torch.no_grad():
                output = pipe(**kwargs)
                if two_stage:
                    _check_not_cancelled(pipe, hooks)
                    video_latents, audio_latents = family.read_latents(output)
                    output = None
                    upsampled = family.upsample_latents(pipes, video_latents)
                    video_latents = None
                    _check_not_cancelled(pipes.upsample, hooks)
                    pipe, kwargs = family.refine_call(pipes, entry, call_kwargs(gen_w, gen_h, image), upsampled,
                                                      audio_latents)
                    upsampled = audio_latents = None
                    refine_recorded = kwargs.pop("_resolved", None) or {}
                    pipe = family.with_schedule(pipes, pipe, kwargs)
                    kwargs = _accepted_kwargs(pipe, family.before_call(pipes, pipe, kwargs))
                    kwargs["callback_on_step_end"] = _step_callback(hooks, refine_steps, offset=steps,
                                                                    total=total_steps, on_step=observe)
                    modes_mod.reset_step_caches(pipes)
                    # The transformer is shared: the refine LoRA is on for this pass only, with the camera's.
                    family.set_adapters(pipes, [*refine_on, *camera_on])
                    output = pipe(**kwargs)
                raw = family.read_output(pipe, output)
        except GenerationCancelled:
            raise
        except EngineError:
            raise
        except Exception as exc:  # the pipeline's own errors become job errors, with the cause chained
            if _out_of_memory(exc):
                raise  # generate() retries it in a lower mode
            raise EngineError(f"{model}: generation failed: {type(exc).__name__}: {exc}") from exc
        finally:
            self._adapters_off(entry, family, pipes)
            if audio_hook is not None:
                audio_hook.remove()
        # A pipeline that swallowed our interrupt (stopped early, then decoded) must not pass as a result.
        _check_not_cancelled(pipe, hooks)

        frames = fit_video(raw.video[overlap:], frames_out, spec.width, spec.height)
        raw.video = output = None  # drop the float32 video (~1 GB at 720p) before the audio work
        if entry.pin_first_frame and spec.image is not None and mode is None:
            frames[0] = np.asarray(fit_image(spec.image, spec.width, spec.height), dtype=np.uint8)
        audio = lead = None
        if raw.audio is not None and raw.sample_rate:
            # The overlap's sound belongs to frames the caller already has: start where the new frames start.
            skip = round(overlap * raw.sample_rate / entry.fps)
            audio = fit_audio(raw.audio[..., skip:], frames_out / entry.fps, raw.sample_rate)
            if skip:  # kept apart for the join's crossfade over the overlap
                lead = fit_audio(raw.audio[..., :skip], overlap / entry.fps, raw.sample_rate)
        if spec.audio is not None and raw.sample_rate:
            from mutoscope.engine.audio import resample, with_channels

            # The supplied soundtrack is the output's sound, sample for sample after resampling.
            supplied = resample(np.asarray(spec.audio, np.float32), int(spec.audio_sample_rate), raw.sample_rate)
            channels = raw.audio.shape[0] if raw.audio is not None and raw.audio.ndim == 2 else supplied.shape[0]
            audio = fit_audio(with_channels(supplied, channels), frames_out / entry.fps, raw.sample_rate)
        hooks.on_progress(1.0, "decode")

        return GenerationOutput(
            frames=frames,
            fps=float(entry.fps),
            audio=audio,
            sample_rate=raw.sample_rate if audio is not None else None,
            lead_audio=lead,
            resolved={
                "model": entry.name,
                "requested_model": model,
                "family": entry.family,
                "weights": entry.weights,
                "revision": entry.revision or weights_mod.installed_revision(entry, self.weights_dir),
                "task": _task(spec),
                "recipe": "two_stage" if two_stage else "single",
                "steps": steps,
                "guidance_scale": guidance,
                "seed": spec.seed,
                "negative_prompt": spec.negative_prompt,
                "generation_width": gen_w,
                "generation_height": gen_h,
                "generation_frames": gen_frames,
                "frames": frames_out,
                "fps": float(entry.fps),
                "first_frame_pinned": bool(entry.pin_first_frame and spec.image is not None and mode is None),
                **({"condition_frames": overlap} if mode == "extend" else {}),
                **({"edit_strength": strength} if mode == "edit" else {}),
                **({"conditioning_pipeline": type(pipe).__name__} if mode is not None else {}),
                **({"camera": {**camera.public(spec.prompt),
                               **({"active_steps": sum(camera.adapter in names for names in seen)}
                                  if camera.applied == "adapter" else {})}} if camera is not None else {}),
                "lora_active": sorted({name for names in seen for name in names}),
                **({"stages": [
                    {"stage": "generate", "width": stage1_w, "height": stage1_h, "steps": steps,
                     "guidance_scale": guidance},
                    {"stage": "upsample", "width": gen_w, "height": gen_h,
                     "upsampler": entry.upsampler_path or "builtin"},
                    {"stage": "refine", "width": gen_w, "height": gen_h, "steps": refine_steps,
                     "sigmas": [float(x) for x in entry.refine_sigmas], "noise_scale": float(entry.refine_sigmas[0]),
                     "guidance_scale": entry.refine_guidance, "lora": entry.refine_lora,
                     **({"lora_scale": family.refine_lora_scale} if pipes.refine_adapter else {}),
                     **refine_recorded},
                ]} if two_stage else {}),
                **recorded,
                "modes": dict(pipes.modes),
                **family.conditioning_record(pipe),
                **({"audio_reference": getattr(audio_hook, "record", {})} if audio_hook is not None else {}),
            },
        )


    def _unload_for_new_adapter(self, entry: ModelEntry, move: str) -> None:
        """Unload the model when `move`'s LoRA was pulled since it loaded, so the load that follows takes it in
        (adapters go in before the memory modes, see `Family.load_adapter`). Done before the caller holds the
        pipelines: the old copy is gone before the new one is read, never two at once."""
        pipes = self._pipelines.get(entry.name)
        if pipes is None or move in pipes.camera_adapters or move in pipes.camera_errors:
            return
        if weights_mod.adapter_installed(entry.camera[move], self.weights_dir):
            logger.warning("%s: reloading the model to take in the camera LoRA of %r, pulled since it loaded",
                           entry.name, move)
            pipes = None
            self.unload(entry.name)

    def _camera_ready(self, entry: ModelEntry, model: str, pipes: LoadedPipelines, move: str) -> LoadedPipelines:
        """The pipelines, checked to hold `move`'s LoRA."""
        if move in pipes.camera_errors:
            logger.warning("%s: camera move %r: %s", entry.name, move, pipes.camera_errors[move])
            raise EngineError(f"{model}: the LoRA of camera move '{move}' could not be loaded; the operator's "
                              "log has the reason")
        if move not in pipes.camera_adapters:
            raise ModelNotAvailable(f"The camera move '{move}' of model '{model}' is not installed on this server; "
                                    f"the operator can install it with `{weights_mod.pull_command(model)}`.")
        return pipes

    def _adapters_off(self, entry: ModelEntry, family: Family, pipes: LoadedPipelines) -> None:
        """Switch every adapter off after a call. If that fails, the warm pipelines are dropped, so no later
        job can run with an adapter left on."""
        try:
            family.set_adapters(pipes, [])
        except Exception:
            logger.exception("%s: could not switch its LoRA adapters off; unloading the model", entry.name)
            self.unload(entry.name)

    def _load_camera_adapters(self, entry: ModelEntry, family: Family, pipes: LoadedPipelines) -> None:
        """Every installed camera LoRA of the model, as a named adapter, switched off. A LoRA that does not load
        (a file for another model) costs only its move: the model still runs every other job."""
        for move, spec in entry.camera.items():
            if spec.applied != "adapter":
                continue
            file = weights_mod.adapter_file(spec, self.weights_dir)
            if file is None:
                continue  # not pulled: a job asking for it is refused at admission
            try:
                family.load_adapter(pipes, spec.adapter_name, file)
            except Exception as exc:
                logger.error("%s: camera move %r: the LoRA %s does not load: %s: %s", entry.name, move, file,
                             type(exc).__name__, exc)
                pipes.camera_errors[move] = f"{type(exc).__name__}: {exc}"
            else:
                pipes.camera_adapters[move] = spec.adapter_name

    def load(self, name: str) -> LoadedPipelines:
        """Load (once) and return the pipelines for a model name or alias, first unloading the least
        recently used models its memory needs (engine/residency.py)."""
        entry = self._entry(name)
        cached = self._pipelines.get(entry.name)
        if cached is not None:
            self.residency.touch(entry.name)
            return cached
        with self._load_lock:
            cached = self._pipelines.get(entry.name)
            if cached is None:
                self._make_room(entry)
                cached = self._pipelines[entry.name] = self._build(entry, FAMILIES[entry.family])
                self.residency.record(entry.name, cached)
            else:
                self.residency.touch(entry.name)
            return cached

    def unload(self, name: str) -> None:
        """Drop a loaded model and give its memory back (nothing else may hold its pipelines)."""
        entry = self.registry.resolve(name)
        with self._load_lock:
            self._drop(entry.name)

    def loaded(self) -> list[str]:
        """The loaded models, least recently used first."""
        return self.residency.loaded()

    def _drop(self, name: str) -> None:
        pipes = self._pipelines.pop(name, None)
        self.residency.forget(name)
        self._lowered.pop(name, None)
        if pipes is not None:
            del pipes
            residency_mod.release()

    def _make_room(self, entry: ModelEntry) -> None:
        """Unload least recently used models until `entry`'s estimated need fits the budgets."""
        host, vram = self._need(entry)
        for name in self.residency.to_evict(host, vram, keep=entry.name):
            logger.info("unloading %s (least recently used) to make room for %s", name, entry.name)
            self._drop(name)

    def _need(self, entry: ModelEntry) -> tuple[int, int]:
        """Host RAM while `entry` loads (its weights are read on the CPU first) and VRAM at its peak."""
        on_gpu = modes_mod.is_cuda(self.device)
        sizes = memory_mod.component_bytes(entry, on_gpu=on_gpu)
        if sizes is None:  # builtin or an operator's own checkpoint: its files' size
            if entry.is_builtin:
                return 0, 0
            folder = weights_mod.model_dir(entry, self.weights_dir)
            size = memory_mod.disk_bytes(folder) * (1 if on_gpu else 2)  # stored in 16 bits, float32 on the CPU
            return size, size if on_gpu else 0
        if not on_gpu:
            return sum(sizes.values()), 0
        mode = memory_mod.choose(sizes, self.residency.vram_budget) if entry.memory == "auto" else entry.memory
        return sum(sizes.values()), memory_mod.peak_vram(sizes, mode)

    def install(self, name: str, pipes: LoadedPipelines) -> LoadedPipelines:
        """Adopt already built pipelines for a model (benchmarks at real sizes with random weights):
        place them and turn on the model's modes as a load would, replacing any loaded ones."""
        entry = self._entry(name)
        with self._load_lock:
            self._drop(entry.name)
            pipes.modes = modes_mod.apply_modes(pipes, entry, self.device)
            self._pipelines[entry.name] = pipes
            self.residency.record(entry.name, pipes)
        return pipes

    def _build(self, entry: ModelEntry, family: Family) -> LoadedPipelines:
        import torch

        # A mode this device cannot run, or an argument no pipeline takes, fails here, before minutes of loading.
        modes_mod.check_device(entry, self.device)
        check_pipeline_kwargs(entry, family)
        if entry.is_builtin:
            pipes = family.build_tiny(entry.builtin_name)
        else:
            source = weights_mod.require_installed(entry, self.weights_dir)
            dtype_name = entry.dtype or ("bfloat16" if self.device.startswith("cuda") else "float32")
            try:
                pipes = family.load(entry, source, getattr(torch, dtype_name))
            except OSError as exc:
                # from_pretrained(local_files_only=True) on a partial download lands here.
                raise ModelNotAvailable(
                    f"model {entry.name!r}: weights at {source} are incomplete ({exc}); "
                    f"run `{weights_mod.pull_command(entry.name)}`"
                ) from exc
        self._load_camera_adapters(entry, family, pipes)
        pipes.modes = modes_mod.apply_modes(pipes, entry, self.device)
        if self.parallel is not None:
            applied = parallel_mod.enable(pipes, entry, self.parallel)
            if applied is not None:
                pipes.modes["context_parallel"] = applied
        return pipes


def _out_of_memory(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, is an allocation that failed: CUDA's
    OutOfMemoryError, Python's MemoryError, or the CPU allocator's refusal."""
    import torch

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
            return True
        if isinstance(exc, RuntimeError) and ("DefaultCPUAllocator" in str(exc) or "out of memory" in str(exc)):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _forget(exc: BaseException) -> None:
    """Drop the frames a failed job's exceptions hold: their locals are the job's tensors."""
    seen = 0
    while exc is not None and seen < 8:
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
        exc.__traceback__ = None
        exc, seen = exc.__cause__ or exc.__context__, seen + 1


def _mode_text(modes: dict[str, Any]) -> str:
    return f"memory mode '{modes['memory']}' with VAE tiling {'on' if modes.get('vae_tiling') else 'off'}"


def _task(spec: GenerationSpec) -> str:
    if spec.condition_mode == "extend":
        return "extend"
    if spec.condition_mode == "edit":
        return "video-to-video"
    return "image-to-video" if spec.image is not None else "text-to-video"


# Arguments the engine itself passes to every call; an operator's pipeline_kwargs must not set them.
_ENGINE_ARGUMENTS = ("prompt", "negative_prompt", "width", "height", "num_frames", "frame_rate",
                     "num_inference_steps", "guidance_scale", "generator", "output_type", "return_dict", "image",
                     "callback_on_step_end", "latents", "audio_latents", "conditions", "video", "strength")


def check_registry(registry: Registry) -> None:
    """A typo in pipeline_kwargs stops the server at start (a models-file error, one line), not the model's
    first job. Torch-free once the pipelines' signatures are cached (engine/signatures.py)."""
    for entry in registry.entries():
        try:
            check_pipeline_kwargs(entry, FAMILIES[entry.family])
        except EngineError as exc:
            raise RegistryError(f"{registry.source or 'models file'}: model {exc}") from None


def check_pipeline_kwargs(entry: ModelEntry, family: Family) -> None:
    """Refuse a `pipeline_kwargs` key that none of the family's pipelines takes.

    The call drops arguments a particular pipeline does not take (`_accepted_kwargs`), so without this
    a typo, or a parameter diffusers renamed, would silently do nothing.
    """
    if not entry.pipeline_kwargs:
        return
    accepted, class_names = signatures.pipeline_arguments(family)
    if accepted is None:
        return
    for key in entry.pipeline_kwargs:
        if key in _ENGINE_ARGUMENTS:
            raise EngineError(f"{entry.name}: pipeline_kwargs key {key!r} is set by the engine itself; remove it "
                              "from the models file")
        if key not in accepted:
            names = ", ".join(class_names)
            raise EngineError(f"{entry.name}: pipeline_kwargs key {key!r} is not an argument of {names} "
                              "in this diffusers; fix or remove it in the models file")


def _accepted_kwargs(pipe: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop arguments this pipeline's __call__ does not take.

    One `pipeline_kwargs` table serves both of a model's pipelines, and some
    arguments exist only on one (LTX-2's `image_crf` is image-to-video only).
    """
    import inspect

    params = inspect.signature(type(pipe).__call__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def _check_not_cancelled(pipe: Any, hooks: StepHooks) -> None:
    if getattr(pipe, "_interrupt", False) or hooks.should_cancel():
        raise GenerationCancelled("cancelled")


def _step_callback(hooks: StepHooks, steps: int, offset: int = 0, total: int | None = None,
                   on_step: Any = None):
    """Report step `offset + i + 1` of `total` (default: this call's own step count) and honour cancellation.

    The two-stage recipe makes two calls: stage 1 with offset 0, the refine pass with offset = stage 1's
    steps, both against their sum, so progress runs 0 -> 1 once across both. `on_step()` runs first at
    every step (the engine records which LoRA adapters were on).
    """

    def on_step_end(pipe: Any, i: int, t: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_step is not None:
            on_step()
        denominator = total or getattr(pipe, "_num_timesteps", None) or steps
        hooks.on_progress(min(1.0, (offset + i + 1) / denominator), "denoise")
        if hooks.should_cancel():
            # The documented flag skips the remaining steps, but diffusers still
            # decodes afterwards; raising here also skips the decode (seconds on
            # GPU, most of the time on CPU). Pipelines reset the flag each call.
            pipe._interrupt = True
            raise GenerationCancelled(f"cancelled after step {i + 1}")
        return callback_kwargs

    return on_step_end


def fit_image(image: Any, width: int, height: int):
    """`image` as an RGB PIL image of exactly width x height.

    Canvas at least as large on both sides: the image is centered and its edge
    pixels repeated into the margin (no resampling). Otherwise: scaled to cover,
    then center-cropped.
    """
    from PIL import Image

    image = image.convert("RGB")
    if image.size == (width, height):
        return image
    if image.width <= width and image.height <= height:
        arr = np.asarray(image)
        pad_w, pad_h = width - image.width, height - image.height
        arr = np.pad(arr, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)), mode="edge")
        return Image.fromarray(arr)
    scale = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.LANCZOS)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def fit_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T, h, w, 3) uint8 -> (T, height, width, 3) uint8 with `fit_image`'s policy, for a whole clip.

    A clip no larger than the canvas is centered with its edge pixels repeated
    (our own clips: the canvas is the output size rounded up, so the crop after
    generation gives back exactly the source). Otherwise scale to cover, center-crop.
    """
    import torch
    import torch.nn.functional as F

    t, h, w, _ = frames.shape
    if (w, h) == (width, height):
        return frames
    if w <= width and h <= height:
        pad_w, pad_h = width - w, height - h
        return np.pad(frames, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)),
                      mode="edge")
    scale = max(width / w, height / h)
    size = (max(height, math.ceil(h * scale)), max(width, math.ceil(w * scale)))
    out = np.empty((t, height, width, 3), dtype=np.uint8)
    for start in range(0, t, _FRAME_CHUNK):
        chunk = torch.from_numpy(frames[start : start + _FRAME_CHUNK]).permute(0, 3, 1, 2).float()
        chunk = F.interpolate(chunk, size=size, mode="bilinear", align_corners=False, antialias=True)
        top, left = (size[0] - height) // 2, (size[1] - width) // 2
        chunk = chunk[:, :, top : top + height, left : left + width].round_().clamp_(0, 255).to(torch.uint8)
        out[start : start + len(chunk)] = chunk.permute(0, 2, 3, 1).numpy()
    return out


def fit_video(video: Any, frames: int, width: int, height: int) -> np.ndarray:
    """(F, 3, h, w) float in [0, 1] -> (frames, height, width, 3) uint8: cut the tail, scale to cover, center-crop."""
    import torch
    import torch.nn.functional as F

    video = video[:frames]
    if video.shape[0] < frames:
        raise EngineError(f"pipeline returned {video.shape[0]} frames, {frames} needed")
    h, w = video.shape[-2:]
    scale = max(width / w, height / h)
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for start in range(0, frames, _FRAME_CHUNK):
        chunk = video[start : start + _FRAME_CHUNK].float()
        if scale > 1:
            size = (math.ceil(h * scale), math.ceil(w * scale))
            chunk = F.interpolate(chunk, size=size, mode="bilinear", align_corners=False, antialias=False)
        ch, cw = chunk.shape[-2:]
        top, left = (ch - height) // 2, (cw - width) // 2
        chunk = chunk[:, :, top : top + height, left : left + width]
        chunk = chunk.mul(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)
        out[start : start + chunk.shape[0]] = chunk.permute(0, 2, 3, 1).cpu().numpy()
    return out


def fit_audio(audio: Any, seconds: float, sample_rate: int) -> np.ndarray:
    """(channels, samples) -> float32 (channels, round(seconds * sample_rate)) in [-1, 1]: cut or zero-pad the end."""
    arr = audio.detach().float().cpu().numpy() if hasattr(audio, "detach") else np.asarray(audio, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    want = round(seconds * sample_rate)
    if arr.shape[1] >= want:
        arr = arr[:, :want]
    else:
        arr = np.pad(arr, ((0, 0), (0, want - arr.shape[1])))
    return np.clip(arr, -1.0, 1.0).astype(np.float32, copy=False)
