"""MiniMax-H3 (MiniMax): joint video + stereo audio from diffusers' modular `minimax_h3` pipeline.

PUT HERE: everything MiniMax-H3 specific: loading (real weights, or full size on the meta device from
configs), the call's arguments, the `ref2va` references (pictures, videos with their sound, audio clips)
and what the pipeline received of them, reading video + audio.
DO NOT PUT HERE: the test model's random-weight build (engine/testkit/minimax_h3.py), fitting to the
exact output size and duration (diffusers_engine.py).

Rules the model imposes: it generates at a fixed 24 fps, 5 to 15 s, frame counts `17n + 5` (the video
VAE encodes 17-frame chunks into 5 latent frames), sides multiples of 32 (16x VAE, 2x2 patches). It is
guidance-distilled: one transformer pass per step, no negative prompt, no guidance scale. Sound is
stereo at 32 kHz. `ref2va` reads an ordered list of references (at most 9 pictures, 3 videos, 3 audio
clips, 12 in all; never audio alone), labelled in the prompt presentation `<Picture i>`, `<Audio j>`,
`<Video k>` in that order, and runs on the repo's separate `transformer_ref/` partition.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mutoscope.engine.families.base import (
    Family,
    LoadedPipelines,
    RawOutput,
    component_class,
    model_from_config,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image

    from mutoscope.engine.base import ReferenceMedia
    from mutoscope.engine.registry import ModelEntry

FPS = 24
MIN_SECONDS = 5.0
MAX_SECONDS = 15.0
# What the released `ref2va` accepts (diffusers' MiniMaxH3Ref2VASetupStep).
MAX_REFERENCES = {"image": 9, "video": 3, "audio": 3}
MAX_REFERENCES_TOTAL = 12
LABELS = {"image": "Picture", "video": "Video", "audio": "Audio"}


def reference_labels(kinds: list[tuple[str, bool]]) -> list[list[str]]:
    """The labels the conditioner's presentation gives each reference, in order: `(kind, has_audio)` ->
    its labels (a video with sound is `<Audio j>` then `<Video k>`). Numbered per modality, as diffusers'
    `MiniMaxH3Ref2VATextEncoderStep._build_presentation` numbers them."""
    counts = {"image": 0, "video": 0, "audio": 0}
    out = []
    for kind, has_audio in kinds:
        labels = []
        if has_audio:
            counts["audio"] += 1
            labels.append(f"<Audio {counts['audio']}>")
        if kind in ("image", "video"):
            counts[kind] += 1
            labels.append(f"<{LABELS[kind]} {counts[kind]}>")
        out.append(labels)
    return out


def references_problem(kinds: list[tuple[str, bool]]) -> str | None:
    """Why the model cannot take these references (None: it can)."""
    by_kind = {k: sum(1 for kind, _ in kinds if kind == k) for k in MAX_REFERENCES}
    for kind, limit in MAX_REFERENCES.items():
        if by_kind[kind] > limit:
            return f"{by_kind[kind]} {kind} references, at most {limit}"
    if len(kinds) > MAX_REFERENCES_TOTAL:
        return f"{len(kinds)} references, at most {MAX_REFERENCES_TOTAL}"
    if kinds and by_kind["audio"] == len(kinds):
        return "audio references need at least one picture or video reference with them"
    return None


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


class H3Pipeline:
    """The modular pipeline behind the engine's call convention.

    The engine calls every family's pipeline with keyword arguments and a `callback_on_step_end`; the
    modular pipeline has no step callback, so one runs from a forward hook on the denoising transformer
    (guidance-distilled: exactly one forward per step). `references` arrive as the engine's
    `ReferenceMedia` and are turned into diffusers' reference types here; `received` then holds what the
    pipeline was given (each reference's kind, labels and a hash of its pixels or samples) and
    `presentation` the conditioner's input as it was tokenized, both read from the call itself.
    """

    def __init__(self, modular: Any):
        self.modular = modular
        self._interrupt = False
        self.received: list[dict[str, Any]] = []
        self.presentation: str | None = None

    def __getattr__(self, name: str) -> Any:  # components, to(), enable_*_offload(), ... of the pipeline
        return getattr(self.__dict__["modular"], name)

    @property
    def components(self) -> dict[str, Any]:
        return dict(self.modular.components)

    @property
    def _execution_device(self) -> Any:
        return self.modular._execution_device

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        self.modular.set_progress_bar_config(**kwargs)

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        import torch
        from diffusers.modular_pipelines.minimax_h3 import (
            MiniMaxH3AudioReference,
            MiniMaxH3ImageReference,
            MiniMaxH3VideoReference,
        )

        self._interrupt = False
        callback = kwargs.pop("callback_on_step_end", None)
        references = kwargs.pop("references", None) or []
        self.received, self.presentation = [], None
        inputs = {k: v for k, v in kwargs.items() if v is not None}
        if references:
            made = []
            labels = reference_labels([(r.kind, r.audio is not None) for r in references])
            rate = int(self.modular.audio_sampling_rate)
            for ref, label in zip(references, labels):
                audio = sample_rate = None
                if ref.audio is not None:
                    # On the audio VAE's rate here (diffusers would need torchaudio for it), the same way the
                    # engine resamples a supplied soundtrack for the output.
                    from mutoscope.engine.audio import resample

                    audio = torch.from_numpy(resample(np.asarray(ref.audio, np.float32), int(ref.sample_rate or rate),
                                                      rate))
                    sample_rate = rate
                if ref.kind == "image":
                    made.append(MiniMaxH3ImageReference(image=ref.image))
                elif ref.kind == "video":
                    made.append(MiniMaxH3VideoReference(frames=ref.frames, fps=ref.fps, audio=audio,
                                                        sample_rate=sample_rate))
                else:
                    made.append(MiniMaxH3AudioReference(audio=audio, sample_rate=sample_rate))
                record: dict[str, Any] = {"kind": ref.kind, "labels": label, "source": ref.source}
                pixels = ref.image if ref.kind == "image" else ref.frames
                if pixels is not None:
                    record.update(pixels_sha256=_sha256(pixels), shape=list(np.asarray(pixels).shape))
                if ref.audio is not None:
                    record.update(audio_sha256=_sha256(np.asarray(ref.audio, np.float32)),
                                  samples=int(np.asarray(ref.audio).shape[-1]), sample_rate=ref.sample_rate)
                self.received.append(record)
            inputs["references"] = made
        transformer = self.modular.transformer_ref if references else self.modular.transformer
        step = {"i": 0}
        scheduler = self.modular.scheduler

        def after_step(module: Any, args: Any, output: Any) -> None:
            if callback is not None:
                timesteps = getattr(scheduler, "timesteps", None)
                i = step["i"]
                t = timesteps[i] if timesteps is not None and i < len(timesteps) else None
                callback(self, i, t, {})
            step["i"] += 1

        handles = [transformer.register_forward_hook(after_step)]
        encoder = self.modular.text_encoder
        tokenizer = self.modular.tokenizer

        def seen_by_conditioner(module: Any, args: Any, kw: dict[str, Any]) -> None:
            ids = kw.get("input_ids", args[0] if args else None)
            if ids is not None and self.presentation is None:
                self.presentation = _collapse_pads(tokenizer, ids[0].tolist())

        handles.append(getattr(encoder, "model", encoder).register_forward_pre_hook(seen_by_conditioner,
                                                                                   with_kwargs=True))
        try:
            return self.modular(**inputs, output=["videos", "audio", "sampling_rate"])
        finally:
            for handle in handles:
                handle.remove()


class _NoHook:
    def __init__(self, record: dict[str, Any]):
        self.record = record

    def remove(self) -> None:
        pass


def _collapse_pads(tokenizer: Any, ids: list[int]) -> str:
    """The conditioner's input as text, each run of vision pad tokens written once with its length."""
    pads = {tokenizer.convert_tokens_to_ids(t): t for t in ("<|image_pad|>", "<|video_pad|>")}
    parts: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            parts.append(tokenizer.decode(run))
            run.clear()

    i = 0
    while i < len(ids):
        if ids[i] in pads:
            flush()
            j = i
            while j < len(ids) and ids[j] == ids[i]:
                j += 1
            parts.append(f"{pads[ids[i]]}x{j - i}")
            i = j
            continue
        run.append(ids[i])
        i += 1
    flush()
    return "".join(parts)


class MiniMaxH3Family(Family):
    name = "minimax_h3"
    size_multiple = 32
    # Frame counts are 17n + 5, not temporal_ratio * k + 1: `frames_covering` is this family's own.
    temporal_ratio = 17
    has_audio = True
    max_seconds = MAX_SECONDS
    # Its own conditioning rows need no mask, and there is no cross-attention (one packed sequence).
    attention_masks = False
    supports_references = True
    # No partial-noise entry point in the modular pipeline (`edit_call`): no edits, no remixes of a video.
    supports_edits = False
    reference_labels = staticmethod(reference_labels)
    references_problem = staticmethod(references_problem)

    def frames_covering(self, frames: int) -> int:
        # At least the 5 s the model generates; the engine cuts the tail to what was asked for.
        frames = max(frames, round(MIN_SECONDS * FPS))
        while frames % 17 != 5:
            frames += 1
        return frames

    def size_problem(self, width: int, height: int, recipe: str = "single") -> str | None:
        problem = super().size_problem(width, height, recipe)
        if problem is None and not 0.25 <= width / height <= 4:
            problem = "MiniMax-H3 takes aspect ratios from 1:4 to 4:1"
        return problem

    def seconds_problem(self, seconds: float, fps: float) -> str | None:
        if fps != FPS:
            return f"MiniMax-H3 generates at {FPS} fps"
        return super().seconds_problem(seconds, fps)

    def build_tiny(self, builtin: str) -> LoadedPipelines:
        if builtin != "tiny-minimax-h3":
            raise ValueError(f"unknown builtin MiniMax-H3 model {builtin!r} (known: tiny-minimax-h3)")
        from mutoscope.engine.testkit.minimax_h3 import (
            TINY_CANVAS,
            build_tiny_components,
        )

        return self._pipelines(build_tiny_components(), TINY_CANVAS)

    def load(self, entry: ModelEntry, source: Path, dtype: torch.dtype,
             device: str | None = None) -> LoadedPipelines:
        if device == "meta":
            return self._pipelines(components_at_full_size(source, dtype), {})
        from diffusers import ModularPipeline

        # Both partitions: text- and image-to-video run on `transformer/`, references on `transformer_ref/`.
        modular = ModularPipeline.from_pretrained(str(source), local_files_only=True)
        modular.load_components(torch_dtype=dtype)
        return self._pipelines(dict(modular.components), {}, modular=modular)

    @staticmethod
    def _pipelines(components: dict[str, Any], config: dict[str, Any], modular: Any = None) -> LoadedPipelines:
        from diffusers.modular_pipelines.minimax_h3 import MiniMaxH3Blocks

        if modular is None:
            modular = MiniMaxH3Blocks().init_pipeline()
            modular.update_components(**{k: v for k, v in components.items() if v is not None})
        if config:
            modular.register_to_config(**config)
        pipe = H3Pipeline(modular)
        # One pipeline for every task: the modular blocks pick t2va, fl2va or ref2va from the inputs.
        pipes = LoadedPipelines(text_to_video=pipe, image_to_video=pipe)
        pipe.set_progress_bar_config(disable=True)
        return pipes

    def pipeline_classes(self) -> tuple[type, ...]:
        return (H3Pipeline,)

    def call_kwargs(self, entry: ModelEntry, *, prompt: str, negative_prompt: str | None, width: int,
                    height: int, num_frames: int, fps: float, steps: int, guidance: float,
                    generator: torch.Generator, image: Image.Image | None) -> dict[str, Any]:
        # Guidance-distilled: negative_prompt and guidance have nothing to act on.
        kwargs = dict(entry.pipeline_kwargs)
        # The pipeline's num_inference_steps counts sigma grid points, the terminal 0 included: steps + 1 of
        # them make `steps` transformer passes, which is what a step means everywhere else here.
        kwargs.update(prompt=prompt, height=height, width=width, num_frames=num_frames,
                      num_inference_steps=steps + 1, generator=generator, output_type="pt")
        if image is not None:
            kwargs["image"] = image
        return kwargs

    def reference_call(self, pipes: LoadedPipelines, entry: ModelEntry, kwargs: dict[str, Any],
                       references: list[ReferenceMedia]) -> tuple[Any, dict[str, Any]]:
        from mutoscope.engine.base import EngineError

        problem = references_problem([(r.kind, r.audio is not None) for r in references])
        if problem is not None:
            raise EngineError(f"{entry.name}: {problem}")
        kwargs = dict(kwargs)
        # A first frame and references are two workflows (fl2va, ref2va); references win, the image
        # joins them as the first picture.
        image = kwargs.pop("image", None)
        if image is not None:
            from mutoscope.engine.base import ReferenceMedia

            references = [ReferenceMedia(kind="image", image=np.asarray(image), source="input_reference"),
                          *references]
        kwargs["references"] = list(references)
        return pipes.text_to_video, kwargs

    def audio_call(self, pipes: LoadedPipelines, pipe: Any, entry: ModelEntry, kwargs: dict[str, Any],
                   audio: np.ndarray, sample_rate: int) -> tuple[Any, dict[str, Any], Any]:
        """The soundtrack as one more audio reference, after the others (an input image, if any, joins as
        the first picture: the model takes no audio reference alone)."""
        from mutoscope.engine.base import EngineError, ReferenceMedia

        kwargs = dict(kwargs)
        references = list(kwargs.pop("references", None) or [])
        image = kwargs.pop("image", None)
        if image is not None:
            references.insert(0, ReferenceMedia(kind="image", image=np.asarray(image), source="input_reference"))
        references.append(ReferenceMedia(kind="audio", audio=np.asarray(audio, np.float32), sample_rate=sample_rate,
                                         source="audio_reference"))
        problem = references_problem([(r.kind, r.audio is not None) for r in references])
        if problem is not None:
            raise EngineError(f"{entry.name}: {problem}")
        kwargs["references"] = references
        return pipes.text_to_video, kwargs, _NoHook({"conditioning": "audio reference", "sample_rate": sample_rate,
                                                     "samples": int(np.asarray(audio).shape[-1])})

    def conditioning_record(self, pipe: Any) -> dict[str, Any]:
        if not isinstance(pipe, H3Pipeline) or not pipe.received:
            return {}
        return {"references": list(pipe.received), "presentation": pipe.presentation}

    def edit_call(self, pipes: LoadedPipelines, entry: ModelEntry, kwargs: dict[str, Any], frames: np.ndarray,
                  strength: float) -> tuple[Any, dict[str, Any]]:
        # The modular pipeline has no partial-noise entry point; edits go elsewhere (None: "cannot edit").
        return None, kwargs

    def extend_call(self, pipes: LoadedPipelines, entry: ModelEntry, kwargs: dict[str, Any],
                    tail: np.ndarray) -> tuple[Any, dict[str, Any]]:
        from PIL import Image

        kwargs = dict(kwargs)
        kwargs["image"] = Image.fromarray(tail[-1])  # fl2va from the last frame
        return pipes.image_to_video, kwargs

    def read_output(self, pipe: Any, output: Any) -> RawOutput:
        video = output["videos"]
        video = video[0] if video.ndim == 5 else video
        audio = output.get("audio")
        return RawOutput(video=video.float().clamp(0, 1), audio=None if audio is None else audio[0].float(),
                         sample_rate=int(output.get("sampling_rate") or 32000))


def components_at_full_size(source: Path, dtype: torch.dtype) -> dict[str, Any]:
    """Every model component of a MiniMax-H3 repo, at full size on the meta device, from its configs.

    A modular repo lists its components in `modular_model_index.json` as `[library, class, spec]`;
    tokenizer and processor (vocabulary and preprocessing files) are left out, as for the other families.
    """
    from mutoscope.engine.families.base import builds_from_config

    index = json.loads((Path(source) / "modular_model_index.json").read_text(encoding="utf-8"))
    components: dict[str, Any] = {}
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) < 2 or value[0] is None:
            continue
        cls = component_class(value[0], value[1])
        if not builds_from_config(cls):
            continue
        folder = Path(source) / name
        if not any((folder / f).is_file() for f in ("config.json", "scheduler_config.json")):
            continue
        components[name] = model_from_config(cls, folder, dtype)
    return components
