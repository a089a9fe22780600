"""Admission: everything decided about a request before a job exists, the same for every front end.

PUT HERE: the caller's plan (`plan_of`), `admit` (service phase, model lifecycle, plan limits, request rate),
the checks of a model's sizes, durations, step schedule, editing and installed weights against the
`ModelCatalog`, the memory budget of a job's frames, the upload decode limits, the default size and what a
conditioned job is charged for. It reads; it stores nothing and queues nothing.
DO NOT PUT HERE: reading a request's inputs or writing a video (`commands.py`), reads (`queries.py`), how a
page shows the choices a plan allows (web/).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mutoscope.accounts import quota
from mutoscope.accounts.plans import Plan, plan_for
from mutoscope.accounts.service import Principal
from mutoscope.config import Settings
from mutoscope.engine import camera as camera_moves
from mutoscope.engine.registry import default_size_for
from mutoscope.errors import InvalidRequest
from mutoscope.lifecycle import service as lifecycle
from mutoscope.media import InputLimits, MediaInfo, frame_bytes
from mutoscope.videos.catalog import ModelCatalog, ModelEntry


class Admission:
    """Args:
        sessions: the database, for the service phase, model lifecycle and quota usage.
        catalog: the models, resolved by name (never the engine itself).
        settings: the operator's limits (memory budget, upload decode limits).
        plans: the plans by name; a principal without one gets `settings.default_plan`.
    """

    def __init__(self, sessions: sessionmaker[Session], catalog: ModelCatalog, settings: Settings,
                 plans: dict[str, Plan]):
        self.sessions, self.catalog, self.settings, self.plans = sessions, catalog, settings, plans
        self.limiter = quota.RateLimiter()

    def plan_of(self, who: Principal) -> Plan:
        return plan_for(self.plans, who.plan, self.settings.default_plan)

    def admit(self, who: Principal, model: str, size: str, seconds: str, camera: str | None = None, *,
              steps: int | None = None, seconds_param: str | None = None, rated: bool = True) -> dict[str, str]:
        """Everything decided before a job exists: service phase, model lifecycle, plan limits, the camera move,
        installed weights (and the move's LoRA), request rate. Returns the headers the response should carry
        (deprecation notices).

        `seconds_param`: a storyboard's total, whose shots were checked one by one (`storyboard.check_shots`,
        their camera moves too): it need not be a length the model offers, and the plan's limit on it is
        reported under this param. `steps`: the num_inference_steps the job would run (None: the model's own)."""
        entry = self.resolve(model)
        with self.sessions() as s:
            lifecycle.check_can_generate(lifecycle.current_phase(s))
            headers = lifecycle.check_model_usable(s, [model, entry.name])
        self._check_size(model, entry, size)
        if seconds_param is None:
            self._check_seconds(model, entry, seconds)
        self._check_steps(model, entry, steps)
        if camera is not None:
            # A move the model does not offer lists the ones it does; its LoRA missing here names the pull.
            camera_moves.check_move(entry, camera, name=model)
        plan = self.plan_of(who)
        try:
            quota.check_plan(plan, model, size, float(seconds))
        except InvalidRequest as e:
            if seconds_param is not None and e.param == "seconds":
                e.param, e.message = seconds_param, f"{e.message} This storyboard lasts {float(seconds):g} s."
                e.args = (e.message,)
            raise
        self._check_installed(model, entry)
        if rated:
            self.limiter.hit(who.user_id, plan.requests_per_minute)
        return headers

    @staticmethod
    def _check_steps(model: str, entry: ModelEntry, steps: int | None) -> None:
        """A distilled model runs only its own schedule; any other step count would fail in the worker after the
        caller was queued and charged, so it is refused here (the engine keeps its own refusal as a backstop)."""
        fixed = getattr(entry, "fixed_steps", None)
        if steps is not None and fixed is not None and steps != fixed:
            raise InvalidRequest(f"The model '{model}' is distilled to a fixed {fixed}-step schedule; "
                                 f"num_inference_steps must be {fixed} or left out (got {steps}).",
                                 param="num_inference_steps", code="unsupported_steps")

    @staticmethod
    def check_edits(model: str, entry: ModelEntry, verb: str, param: str) -> None:
        """An edit, or a remix of a completed video, re-generates the source clip; a model whose family cannot
        (`ModelInfo.can_edit`, a torch-free class attribute) would fail the job in the worker after the caller
        was queued and charged, so it is refused here, before anything else is read or stored."""
        if getattr(entry, "can_edit", True) is False:
            raise InvalidRequest(f"The model '{model}' cannot {verb} videos: it has no way to re-generate a source "
                                 "clip. Make a new video with it instead, or use a model that edits.", param=param,
                                 code="edit_not_supported")

    @staticmethod
    def _check_installed(model: str, entry: ModelEntry) -> None:
        """A job for a model without weights could only fail in the worker, after the caller was charged and
        queued; refuse it here. The job-level failure stays for weights removed after admission. The message
        names the model as the caller did and never the weights folder: where the files live is the
        operator's business."""
        if entry.installed is False:  # None: an API-only process cannot see the workers' weights
            raise InvalidRequest(f"The model '{model}' is not installed on this server; the operator can install "
                                 f"it with `mutoscope models pull {model}`.", param="model",
                                 code="model_not_available")

    def reference_charge(self, who: Principal, seconds: str, params: dict[str, Any],
                         audio: Any) -> str | None:
        """What a job conditioned on references or a soundtrack is charged for: the plan's `reference_cost`
        times its seconds (None: the seconds, as any job)."""
        factor = getattr(self.plan_of(who), "reference_cost", 1.0)
        if factor == 1.0 or ((params.get("conditioning") or {}).get("mode") != "references" and audio is None):
            return None
        return f"{float(seconds) * factor:g}"

    def resolve(self, name: str) -> ModelEntry:
        try:
            return self.catalog.resolve(name)
        except LookupError:
            raise InvalidRequest(f"The model '{name}' does not exist on this server. GET /v1/models lists the "
                                 "available models.", param="model", code="model_not_found") from None

    @staticmethod
    def default_size(model: str, entry: ModelEntry) -> str:
        """A create without `size`: OpenAI's 720x1280 when the caller used one of OpenAI's model names and the
        model offers it (engine/registry.py `default_size_for`), else the model's own `default_size`."""
        return default_size_for(model, entry.sizes, entry.default_size, bool(getattr(entry, "test_model", False)))

    # Messages name the model as the caller did: which checkpoint an alias maps to is the operator's.
    @staticmethod
    def _check_size(model: str, entry: ModelEntry, size: str) -> None:
        if size not in entry.sizes:
            raise InvalidRequest(f"Invalid size '{size}' for model '{model}'. Supported sizes: "
                                 f"{', '.join(entry.sizes)}.", param="size", code="invalid_size")

    @staticmethod
    def _check_seconds(model: str, entry: ModelEntry, seconds: str) -> None:
        if seconds not in entry.seconds:
            raise InvalidRequest(f"Invalid seconds '{seconds}' for model '{model}'. Supported values: "
                                 f"{', '.join(entry.seconds)}.", param="seconds", code="invalid_seconds")

    def input_limits(self) -> InputLimits:
        st = self.settings
        return InputLimits(max_seconds=st.max_input_seconds, max_pixels=st.max_input_pixels,
                           max_frames=st.max_input_frames)

    def check_budget(self, model: str, size: str, seconds: float, param: str,
                     source: MediaInfo | None = None) -> None:
        """Refuse a job whose decoded frames would not fit Settings.job_memory_budget_bytes: its output three
        times over (stitch inputs, result, watermarked copy) plus the source frames it decodes."""
        width, height = (int(x) for x in size.split("x"))
        fps = float(getattr(self.resolve(model), "fps", 24.0))
        frames = math.ceil(seconds * fps)
        need = 3 * frame_bytes(width, height, frames)
        if source is not None:  # decoded scaled to cover the output (jobs/generation.py load_clip), never larger
            scale = min(1.0, max(width / source.width, height / source.height))
            need += frame_bytes(math.ceil(source.width * scale), math.ceil(source.height * scale), frames)
        budget = self.settings.job_memory_budget_bytes
        if need > budget:
            raise InvalidRequest(f"A {seconds:g} s video at {size} needs about {need / 1024**3:.1f} GiB of frames in "
                                 f"memory; this server allows {budget / 1024**3:.1f} GiB per job "
                                 "(job_memory_budget_bytes).", param=param, code="memory_budget_exceeded")
