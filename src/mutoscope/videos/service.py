"""A video's rules: admission, create/remix/extend/edit, lineage, ownership and enqueue.

The API's routers, the web app, the CLI and the assistants all call `VideoService`; each only
translates its own transport. This class talks to the engine only through a `ModelCatalog`
(resolve a name to its sizes and durations), never runs it, and changes a video's status only
through `videos/transitions.py`.
"""

from __future__ import annotations

import io
import math
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mutoscope.accounts import quota
from mutoscope.accounts.plans import Plan
from mutoscope.accounts.service import Principal
from mutoscope.config import Settings
from mutoscope.db import repositories as repo
from mutoscope.db.models import Video, new_id, now
from mutoscope.engine import camera as camera_moves
from mutoscope.errors import Gone, InvalidRequest, NotFound, PermissionDenied
from mutoscope.storage.keys import VARIANTS, file_key, input_key, input_video_key, published_key, video_prefix
from mutoscope.lifecycle import service as lifecycle
from mutoscope.likeness import consent as cameo_consent
from mutoscope.likeness import guard as likeness_guard
from mutoscope.likeness.characters import CharacterService, is_character_id
from mutoscope.media import (
    InputLimits,
    MediaError,
    MediaInfo,
    decode_data_url,
    fit_image,
    frame_bytes,
    inspect_upload,
    load_image,
    read_frames_at,
)
from mutoscope.outbound import fetch_bytes
from mutoscope.protocol.base import Body, Upload, parse
from mutoscope.protocol.videos import (
    DEFAULT_MODEL,
    CreateVideoRequest,
    DeletedVideo,
    EditVideoRequest,
    ExtendVideoRequest,
    GenerationParams,
    ImageRef,
    RemixVideoRequest,
    VideoCamera,
    VideoError,
    VideoList,
    VideoObject,
)
from mutoscope.storage import Storage
from mutoscope.storage.http import StoredFile
from mutoscope.videos import transitions

if TYPE_CHECKING:
    from mutoscope.jobs.base import JobRunner


class ModelEntry(Protocol):
    name: str
    sizes: Sequence[str]
    seconds: Sequence[str]
    installed: bool  # its weights are on this machine (the tiny builtin test models always are)


class ModelCatalog(Protocol):
    def resolve(self, name: str) -> ModelEntry:
        """Raises LookupError for an unknown name."""


def _camera_of(v: Video) -> VideoCamera | None:
    """The move asked for and, once the job has run, how the engine made it (`resolved["camera"]`)."""
    move = (v.params or {}).get("camera")
    if not isinstance(move, str):
        return None
    done = (v.resolved or {}).get("camera") if v.status == "completed" else None
    if isinstance(done, dict) and done.get("move") == move:
        try:
            return VideoCamera.model_validate({k: done.get(k) for k in VideoCamera.model_fields})
        except ValueError:  # a row is never trusted
            pass
    return VideoCamera(move=move)


def to_video_object(v: Video) -> VideoObject:
    error = VideoError(code=v.error_code, message=v.error_message or v.error_code) if v.status == "failed" else None
    return VideoObject(
        id=v.id, model=v.model, status=v.status, progress=v.progress, created_at=v.created_at,
        completed_at=v.completed_at, expires_at=v.expires_at, prompt=v.prompt, size=v.size, seconds=v.seconds,
        remixed_from_video_id=v.remixed_from_video_id, error=error,
        extended_from_video_id=v.extended_from_video_id, edited_from_video_id=v.edited_from_video_id,
        seed=seed if isinstance(seed := (v.params or {}).get("seed"), int) else None,  # a row is never trusted
        camera=_camera_of(v),
    )


class VideoService:
    def __init__(self, sessions: sessionmaker[Session], catalog: ModelCatalog, storage: Storage,
                 runner: "JobRunner", settings: Settings, plans: dict[str, Plan]):
        self.sessions, self.catalog, self.storage = sessions, catalog, storage
        self.runner, self.settings, self.plans = runner, settings, plans
        self.limiter = quota.RateLimiter()

    def plan_of(self, who: Principal) -> Plan:
        name = who.plan or self.settings.default_plan
        if name not in self.plans:
            raise InvalidRequest(f"Your account's plan '{name}' is not configured on this server; ask the "
                                 "operator.", code="plan_not_configured")
        return self.plans[name]

    def admit(self, who: Principal, model: str, size: str, seconds: str,
              camera: str | None = None) -> dict[str, str]:
        """Everything decided before a job exists: service phase, model lifecycle, plan limits, the camera move,
        installed weights (and the move's LoRA), request rate. Returns the headers the response should carry
        (deprecation notices)."""
        entry = self._resolve(model)
        with self.sessions() as s:
            lifecycle.check_can_generate(lifecycle.current_phase(s))
            headers = lifecycle.check_model_usable(s, [model, entry.name])
        self._check_size_seconds(model, entry, size, seconds)
        if camera is not None:
            # A move the model does not offer lists the ones it does; its LoRA missing here names the pull.
            camera_moves.check_move(entry, camera, name=model)
        plan = self.plan_of(who)
        quota.check_plan(plan, model, size, float(seconds))
        self._check_installed(model, entry)
        self.limiter.hit(who.user_id, plan.requests_per_minute)
        return headers

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

    def create(self, who: Principal, body: Body) -> tuple[VideoObject, dict[str, str]]:
        fields = dict(body.fields)
        upload = body.files.get("input_reference")
        if upload is not None:
            fields.pop("input_reference", None)
        elif isinstance(fields.get("input_reference"), str):
            # multipart sometimes carries the object as a bare URL string
            fields["input_reference"] = {"image_url": fields["input_reference"]}
        req: CreateVideoRequest = parse(CreateVideoRequest, fields)
        headers = self.admit(who, req.model, req.size, req.seconds, req.camera)
        width, height = (int(x) for x in req.size.split("x"))
        png = None
        if upload is not None:
            png = self._image_from_upload(upload, width, height)
        elif req.input_reference is not None:
            png = self._image_from_ref(who, req.input_reference, width, height)
        # Consent for @handles and characters (rules in likeness/consent.py).
        with self.sessions() as s:
            cameo_ids = cameo_consent.check_create(s, who.user_id, req.prompt, fields.get("characters"))
            if png is not None:  # the likeness guard: a face in the image must be a cameo the caller may use
                cameo_ids = likeness_guard.check_image(s, who.user_id, png, "input_reference", req.prompt, cameo_ids)
        if png is None:  # a named character's frame is the first frame (checked when the character was made)
            refs = [r for r in cameo_consent.character_refs(fields.get("characters")) if is_character_id(r)]
            frame = CharacterService(self.sessions, self.storage).first_frame(who.user_id, refs) if refs else None
            if frame is not None:
                png = self._fit(frame, width, height, "characters")
        video = self._enqueue(who, prompt=req.prompt, model=req.model, size=req.size, seconds=req.seconds,
                              params=self._params(req), input_png=png, cameo_ids=cameo_ids)
        return video, headers

    def remix(self, who: Principal, video_id: str, body: Body) -> tuple[VideoObject, dict[str, str]]:
        req: RemixVideoRequest = parse(RemixVideoRequest, body.fields)
        with self.sessions() as s:
            src = self._get(s, who, video_id)
            if src.status != "completed":
                raise InvalidRequest(f"Video {video_id} is {src.status}; only a completed video can be remixed.",
                                     param="video_id", code="video_not_ready")
            params = dict(src.params or {})
            params.update({k: v for k, v in self._params(req).items() if k in req.model_fields_set})
        # A remix keeps the source's camera move unless it names another (or null for none).
        camera = params.get("camera") if isinstance(params.get("camera"), str) else None
        headers = self.admit(who, src.model, src.size, src.seconds, camera)
        png = None
        if src.input_key:
            with self.storage.open(src.input_key) as f:
                png = f.read()
        # The new prompt's cameos and the source's.
        with self.sessions() as s:
            cameo_ids = cameo_consent.check_derived(s, who.user_id, req.prompt, body.fields.get("characters"), src.id)
        video = self._enqueue(who, prompt=req.prompt, model=src.model, size=src.size, seconds=src.seconds,
                              params=params, input_png=png, kind="remix", remixed_from_video_id=src.id,
                              cameo_ids=cameo_ids)
        return video, headers

    def extend(self, who: Principal, body: Body) -> tuple[VideoObject, dict[str, str]]:
        """Continue a completed video; the new video is the source followed by `seconds` more (its `seconds`
        is the stitched total). Limits per lineage: Settings.max_extensions_per_lineage / max_lineage_seconds."""
        req: ExtendVideoRequest = parse(ExtendVideoRequest, body.fields)
        plan = self.plan_of(who)
        if not plan.extensions:
            raise PermissionDenied(f"Your plan '{plan.name}' does not include extensions.", param="video",
                                   code="plan_excludes_extensions")
        with self.sessions() as s:
            src = self._completed_source(s, who, req.video.id, "extended")
            extensions, root = self._lineage(s, src)
        total = float(src.seconds) + float(req.seconds)
        limit_n, limit_s = self.settings.max_extensions_per_lineage, self.settings.max_lineage_seconds
        if extensions + 1 > limit_n:
            raise InvalidRequest(f"Video {root} already has {extensions} extension(s); this server allows at most "
                                 f"{limit_n} per video.", param="video", code="extension_limit_reached")
        if total > limit_s + 1e-9:
            raise InvalidRequest(f"Extending video {src.id} ({src.seconds} s) by {req.seconds} s would make it "
                                 f"{total:g} s; this server allows at most {limit_s:g} s per video lineage.",
                                 param="seconds", code="extension_limit_reached")
        headers = self.admit(who, src.model, src.size, req.seconds, req.camera)
        self._check_budget(src.model, src.size, total, "seconds")
        params = self._derived_params(src, req)
        params["extend_seconds"] = req.seconds
        # An extension shows its source's cameos too, like a remix.
        with self.sessions() as s:
            cameo_ids = cameo_consent.check_derived(s, who.user_id, req.prompt, body.fields.get("characters"),
                                                    src.id, param="video")
        video = self._enqueue(who, prompt=req.prompt, model=src.model, size=src.size, seconds=f"{total:g}",
                              charge_seconds=req.seconds, params=params, input_png=None, kind="extend",
                              extended_from_video_id=src.id, cameo_ids=cameo_ids)
        return video, headers

    def edit(self, who: Principal, body: Body) -> tuple[VideoObject, dict[str, str]]:
        """Video-to-video: a completed video (`video: {id}`) or an uploaded one, re-generated under `prompt`."""
        fields = dict(body.fields)
        upload = body.files.get("video")
        if upload is not None:
            fields.pop("video", None)
        req: EditVideoRequest = parse(EditVideoRequest, fields)
        if (upload is None) == (req.video is None):
            raise InvalidRequest("Provide exactly one of video.id or an uploaded video file.", param="video")
        if req.video is not None:
            with self.sessions() as s:
                src = self._completed_source(s, who, req.video.id, "edited")
            headers = self.admit(who, src.model, src.size, src.seconds, req.camera)
            # An edit shows its source's cameos too, like a remix.
            with self.sessions() as s:
                cameo_ids = cameo_consent.check_derived(s, who.user_id, req.prompt, fields.get("characters"),
                                                        src.id, param="video")
            video = self._enqueue(who, prompt=req.prompt, model=src.model, size=src.size, seconds=src.seconds,
                                  params=self._derived_params(src, req), input_png=None, kind="edit",
                                  edited_from_video_id=src.id, cameo_ids=cameo_ids)
            return video, headers
        model = req.model or DEFAULT_MODEL
        entry = self._resolve(model)
        info = self._video_from_upload(upload)
        size = req.size or self._size_like(entry, info.width, info.height)
        seconds = req.seconds or self._seconds_within(model, entry, info.duration)
        headers = self.admit(who, model, size, seconds, req.camera)
        self._check_budget(model, size, float(seconds), "video", source=info)
        # Consent for named cameos; faces in the upload pass the same guard as input_reference.
        with self.sessions() as s:
            cameo_ids = cameo_consent.check_create(s, who.user_id, req.prompt, fields.get("characters"))
            if likeness_guard.enabled():
                frames = self._guard_frames(upload.data, info.frame_count, size)
                cameo_ids = likeness_guard.check_images(s, who.user_id, frames, "video", req.prompt, cameo_ids)
        video = self._enqueue(who, prompt=req.prompt, model=model, size=size, seconds=seconds,
                              params=self._params(req), input_png=None, input_video=upload.data, kind="edit",
                              cameo_ids=cameo_ids)
        return video, headers

    @staticmethod
    def _guard_frames(data: bytes, frame_count: int, size: str) -> list[Any]:
        """A few evenly spaced frames of an uploaded edit video, scaled and center-cropped to the output size
        as the model will see them (a face the crop cuts off is not in the result either)."""
        import numpy as np
        from PIL import Image

        width, height = (int(x) for x in size.split("x"))
        # One pass that stops at the last sampled frame; frames past what decodes are left out.
        try:
            picked = read_frames_at(io.BytesIO(data), likeness_guard.sample_indices(frame_count))
        except MediaError as e:
            raise InvalidRequest(f"video is not a usable video: {e}", param="video", code="invalid_video") from None
        return [np.asarray(fit_image(Image.fromarray(frame), width, height)) for frame in picked]

    def _completed_source(self, s: Session, who: Principal, video_id: str, verb: str) -> Video:
        v = repo.get_video(s, who.user_id, video_id)
        if v is None:
            raise NotFound(f"No video found with id '{video_id}'.", param="video.id", code="video_not_found")
        if v.status != "completed":
            raise InvalidRequest(f"Video {video_id} is {v.status}; only a completed video can be {verb}.",
                                 param="video.id", code="video_not_ready")
        return v

    @staticmethod
    def _lineage(s: Session, video: Video) -> tuple[int, str]:
        """(extensions in the chain ending at `video`, the id of the chain's first video)."""
        count, v, seen = 0, video, set()
        while v is not None and v.kind == "extend" and v.extended_from_video_id and v.id not in seen:
            seen.add(v.id)
            count += 1
            parent = s.query(Video).filter(Video.id == v.extended_from_video_id).one_or_none()
            if parent is None:
                return count, v.extended_from_video_id
            v = parent
        return count, v.id

    def _derived_params(self, src: Video, req: GenerationParams) -> dict[str, Any]:
        """The source's steps/guidance/negative prompt unless the request sets them; a new seed unless given."""
        params = {k: v for k, v in (src.params or {}).items()
                  if k in ("num_inference_steps", "guidance_scale", "negative_prompt")}
        params.update({k: v for k, v in self._params(req).items() if k in req.model_fields_set or k == "seed"})
        return params

    def _video_from_upload(self, upload: Upload) -> MediaInfo:
        if upload.content_type and not upload.content_type.startswith("video/") \
                and upload.content_type != "application/octet-stream":
            raise InvalidRequest(f"video must be a video file (MP4, WebM, MOV), got '{upload.content_type}'.",
                                 param="video", code="invalid_video")
        try:
            return inspect_upload(io.BytesIO(upload.data), self.input_limits())
        except MediaError as e:
            raise InvalidRequest(f"video is not a usable video: {e}", param="video", code="invalid_video") from None

    def input_limits(self) -> InputLimits:
        st = self.settings
        return InputLimits(max_seconds=st.max_input_seconds, max_pixels=st.max_input_pixels,
                           max_frames=st.max_input_frames)

    def _check_budget(self, model: str, size: str, seconds: float, param: str,
                      source: MediaInfo | None = None) -> None:
        """Refuse a job whose decoded frames would not fit Settings.job_memory_budget_bytes: its output three
        times over (stitch inputs, result, watermarked copy) plus the source frames it decodes."""
        width, height = (int(x) for x in size.split("x"))
        fps = float(getattr(self._resolve(model), "fps", 24.0))
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

    @staticmethod
    def _size_like(entry: ModelEntry, width: int, height: int) -> str:
        """The model's size whose aspect ratio is closest to the upload's (the edit scales and center-crops)."""
        def distance(size: str) -> float:
            w, h = (int(x) for x in size.split("x"))
            return abs(math.log((w / h) / (width / height)))
        return min(entry.sizes, key=distance)

    @staticmethod
    def _seconds_within(model: str, entry: ModelEntry, duration: float) -> str:
        fits = [x for x in entry.seconds if float(x) <= duration + 0.05]
        if not fits:
            raise InvalidRequest(f"The uploaded video lasts {duration:.2f} s; model '{model}' edits clips of "
                                 f"{', '.join(entry.seconds)} s.", param="video", code="invalid_video")
        return max(fits, key=float)

    def retrieve(self, who: Principal, video_id: str) -> VideoObject:
        with self.sessions() as s:
            return to_video_object(self._get(s, who, video_id))

    def poll_after_ms(self, video_id: str) -> int:
        """How long a client should wait before polling again: a quarter of the estimated time left,
        between 100 ms and the operator's setting, so short jobs aren't delayed by a fixed 1 s poll."""
        ceiling = self.settings.poll_after_ms
        with self.sessions() as s:
            v = s.query(Video.started_at, Video.progress).filter(Video.id == video_id).first()
        if v is None or v.started_at is None or not v.progress:
            return min(ceiling, 250)
        elapsed = time.time() - v.started_at
        remaining = elapsed * (100 - v.progress) / v.progress
        return int(max(100, min(ceiling, remaining * 1000 / 4)))

    def list(self, who: Principal, after: str | None, limit: int, order: str) -> VideoList:
        with self.sessions() as s:
            rows, more = repo.list_videos(s, who.user_id, after=after, limit=limit, order=order)
            data = [to_video_object(v) for v in rows]
        return VideoList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                         has_more=more)

    def content(self, who: Principal, video_id: str, variant: str) -> StoredFile:
        with self.sessions() as s:
            v = self._get(s, who, video_id)
            if v.status != "completed":
                raise InvalidRequest(f"Video {video_id} is {v.status}; content is available once it is completed.",
                                     param="video_id", code="video_not_ready")
            if v.expires_at is not None and v.expires_at <= now():
                raise Gone(f"The assets of video {video_id} expired at {v.expires_at} under this server's "
                           "retention policy.", param="video_id", code="video_expired")
            # Taken down by a cameo's owner: 410 with the reason.
            if (reason := cameo_consent.takedown_reason(s, video_id)) is not None:
                raise Gone(reason, param="video_id", code="video_taken_down")
            key = published_key(v, variant)
        name, media_type = VARIANTS[variant]
        size = self.storage.size(key)
        if size is None:
            raise NotFound(f"The {variant} of video {video_id} is no longer stored.", param="variant",
                           code="content_not_found")
        return StoredFile(self.storage, key, size, media_type, filename=f"{video_id}-{name}")

    def delete(self, who: Principal, video_id: str) -> DeletedVideo:
        with self.sessions() as s:
            was = transitions.delete(s, self._get(s, who, video_id))
        if was == "in_progress":
            # Its worker stops at the next denoising step and removes what it wrote.
            self.runner.cancel(video_id)
        else:
            self.storage.delete_prefix(video_prefix(video_id))
        return DeletedVideo(id=video_id)

    def _get(self, s: Session, who: Principal, video_id: str) -> Video:
        v = repo.get_video(s, who.user_id, video_id)
        if v is None:
            raise NotFound(f"No video found with id '{video_id}'.", param="video_id", code="video_not_found")
        return v

    def _resolve(self, name: str) -> ModelEntry:
        try:
            return self.catalog.resolve(name)
        except LookupError:
            raise InvalidRequest(f"The model '{name}' does not exist on this server. GET /v1/models lists the "
                                 "available models.", param="model", code="model_not_found") from None

    @staticmethod
    def _check_size_seconds(model: str, entry: ModelEntry, size: str, seconds: str) -> None:
        """Messages name the model as the caller did: which checkpoint an alias maps to is the operator's."""
        if size not in entry.sizes:
            raise InvalidRequest(f"Invalid size '{size}' for model '{model}'. Supported sizes: "
                                 f"{', '.join(entry.sizes)}.", param="size", code="invalid_size")
        if seconds not in entry.seconds:
            raise InvalidRequest(f"Invalid seconds '{seconds}' for model '{model}'. Supported values: "
                                 f"{', '.join(entry.seconds)}.", param="seconds", code="invalid_seconds")

    @staticmethod
    def _params(req: GenerationParams) -> dict[str, Any]:
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        return {"seed": seed, "negative_prompt": req.negative_prompt,
                "num_inference_steps": req.num_inference_steps, "guidance_scale": req.guidance_scale,
                "camera": req.camera}

    def _fit(self, data: bytes, width: int, height: int, param: str) -> bytes:
        try:
            image = load_image(data)
        except MediaError as e:
            raise InvalidRequest(f"{param} is not a decodable image: {e}", param=param, code="invalid_image") from None
        out = io.BytesIO()
        fit_image(image, width, height).save(out, format="PNG")
        return out.getvalue()

    def _image_from_upload(self, upload: Upload, width: int, height: int) -> bytes:
        if upload.content_type and not upload.content_type.startswith("image/") \
                and upload.content_type != "application/octet-stream":
            raise InvalidRequest(f"input_reference must be an image, got '{upload.content_type}'.",
                                 param="input_reference", code="invalid_image")
        return self._fit(upload.data, width, height, "input_reference")

    def _image_from_ref(self, who: Principal, ref: ImageRef, width: int, height: int) -> bytes:
        if (ref.image_url is None) == (ref.file_id is None):
            raise InvalidRequest("Provide exactly one of input_reference.image_url or input_reference.file_id.",
                                 param="input_reference")
        if ref.file_id is not None:
            with self.sessions() as s:
                f = repo.get_file(s, who.user_id, ref.file_id)
            if f is None:
                raise InvalidRequest(f"No file found with id '{ref.file_id}'. Upload it first with POST /v1/files.",
                                     param="input_reference.file_id", code="file_not_found")
            with self.storage.open(file_key(f.id)) as fh:
                data = fh.read()
            return self._fit(data, width, height, "input_reference.file_id")
        url = ref.image_url
        if url.startswith("data:"):
            try:
                data = decode_data_url(url)
            except MediaError as e:
                raise InvalidRequest(str(e), param="input_reference.image_url", code="invalid_image") from None
            return self._fit(data, width, height, "input_reference.image_url")
        if not url.startswith("https://"):
            raise InvalidRequest("input_reference.image_url must be an https URL or a base64 data URL.",
                                 param="input_reference.image_url", code="invalid_url")
        return self._fit(self._download(url), width, height, "input_reference.image_url")

    def _download(self, url: str) -> bytes:
        # The outbound guard refuses internal addresses on every hop and bounds size and time.
        return fetch_bytes(url, max_bytes=self.settings.max_upload_bytes, timeout=10.0, settings=self.settings,
                           param="input_reference.image_url")

    def _enqueue(self, who: Principal, *, prompt: str, model: str, size: str, seconds: str,
                 params: dict[str, Any], input_png: bytes | None, kind: str = "generate",
                 remixed_from_video_id: str | None = None, extended_from_video_id: str | None = None,
                 edited_from_video_id: str | None = None, input_video: bytes | None = None,
                 charge_seconds: str | None = None, cameo_ids: list[str] | None = None) -> VideoObject:
        """`charge_seconds`: what the plan pays for when it differs from `seconds` (an extension's `seconds` is
        the stitched total; only the new part is generated). `input_video`: an uploaded edit source."""
        video_id = new_id("video_")
        key = None
        if input_png is not None:
            key = input_key(video_id)
            self.storage.put_bytes(key, input_png)
        elif input_video is not None:
            key = input_video_key(video_id)
            self.storage.put_bytes(key, input_video)
        try:
            plan = self.plan_of(who)
            # The plan's output policy is fixed when the job is admitted and travels with it.
            params = {**params, "policy": {"visible_watermark": plan.visible_watermark,
                                           "retention_days": plan.retention_days}}
            # The cameo uses are written with the job, so no worker ever sees the job without them (its
            # consent re-check, a takedown). Their audit rows chain by hash; a concurrent writer that took
            # the same link makes this transaction fail whole, and it is simply tried again.
            record = (lambda s: cameo_consent.record_use(s, who.user_id, video_id, cameo_ids, commit=False)) \
                if cameo_ids else None
            for attempt in range(5):
                try:
                    with self.sessions() as s:
                        v = Video(id=video_id, owner_id=who.user_id, kind=kind, model=model, prompt=prompt,
                                  size=size, seconds=seconds, params=params, input_key=key, priority=plan.priority,
                                  remixed_from_video_id=remixed_from_video_id,
                                  extended_from_video_id=extended_from_video_id,
                                  edited_from_video_id=edited_from_video_id)
                        transitions.enqueue(s, v, plan, float(charge_seconds or seconds), also=record)
                        obj = to_video_object(v)
                    break
                except IntegrityError:
                    if attempt == 4:
                        raise
        except Exception:
            self.storage.delete_prefix(video_prefix(video_id))  # nothing half-written
            raise
        self.runner.submit(video_id)  # only after commit, so a worker always finds the row
        return obj


