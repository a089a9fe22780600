"""The commands: every change a caller makes to its videos, for every front end.

PUT HERE: create (with a storyboard), remix (of one shot too), extend, edit, retry, delete and sharing;
reading a request's inputs within bounds (an image fitted to the output size, an uploaded or downloaded
one, a source clip, the likeness guard's frames); and `_enqueue`, which stores the inputs under the new
video's keys and queues it through `transitions.enqueue`. Each command is admitted by `Admission` first.
DO NOT PUT HERE: admission rules (`admission.py`), reads (`queries.py`), a status change other than
through `transitions.py`, running a job (jobs/).

The engine is reached only through the `ModelCatalog` that `Admission` holds; nothing here runs it.
"""

from __future__ import annotations

import base64
import copy
import io
import math
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutoscope.accounts.service import Principal
from mutoscope.db import repositories as repo
from mutoscope.db.models import Video, new_id
from mutoscope.engine import camera as camera_moves
from mutoscope.errors import InvalidRequest, MutoscopeError, NotFound, PermissionDenied
from mutoscope.likeness import conditioning as cameo_conditioning
from mutoscope.likeness import consent as cameo_consent
from mutoscope.likeness import guard as likeness_guard
from mutoscope.likeness.characters import CharacterService, is_character_id
from mutoscope.media import (MediaError, MediaInfo, decode_data_url, fit_image, inspect_upload, load_image,
                             read_frames_at)
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
    StoryboardShot,
    UpdateVideoRequest,
    VideoObject,
    parse_storyboard,
)
from mutoscope.storage import Storage
from mutoscope.storage.keys import input_audio_key, input_key, input_video_key, shot_input_key, video_prefix
from mutoscope.videos import conditioning
from mutoscope.videos import storyboard as sb
from mutoscope.videos import transitions
from mutoscope.videos.admission import Admission
from mutoscope.videos.catalog import ModelEntry
from mutoscope.videos.objects import to_video_object
from mutoscope.videos.queries import GENERATION_KEYS, owned, stored_input, viewable

if TYPE_CHECKING:
    from mutoscope.jobs.base import JobRunner


@dataclass(frozen=True)
class BatchLine:
    """Which batch a create is a line of, and the line's custom_id."""

    batch_id: str
    custom_id: str


# An extension or an edit: a request whose source is a completed video or an uploaded clip.
SourcedRequest = TypeVar("SourcedRequest", ExtendVideoRequest, EditVideoRequest)


class VideoCommands:
    """Args:
        admission: the checks every command passes first; its sessions, catalog and settings are this
            class's too.
        storage: where a video's inputs are stored before it is queued.
        runner: woken once a queued row is committed, and told of a running job's cancellation.
    """

    def __init__(self, admission: Admission, storage: Storage, runner: "JobRunner"):
        self.admission, self.storage, self.runner = admission, storage, runner
        self.sessions, self.settings = admission.sessions, admission.settings

    def create(self, who: Principal, body: Body,
               batch: BatchLine | None = None) -> tuple[VideoObject, dict[str, str]]:
        """`batch`: the request is a line of a batch (batches/): admitted the same way, without counting against
        the request rate (the batch did) and queued behind interactive jobs."""
        fields = dict(body.fields)
        if fields.get("storyboard") is not None:
            return self._create_storyboard(who, fields, body.files, batch)
        upload = body.files.get("input_reference")
        if upload is not None:
            fields.pop("input_reference", None)
        elif isinstance(fields.get("input_reference"), str):
            # multipart sometimes carries the object as a bare URL string
            fields["input_reference"] = {"image_url": fields["input_reference"]}
        req: CreateVideoRequest = parse(CreateVideoRequest, fields)
        if "size" not in req.model_fields_set:
            entry = self.admission.resolve(req.model)
            req = req.model_copy(update={"size": self.admission.default_size(req.model, entry)})
        headers = self.admission.admit(who, req.model, req.size, req.seconds, req.camera,
                                       steps=req.num_inference_steps, rated=batch is None)
        width, height = (int(x) for x in req.size.split("x"))
        entry = self.admission.resolve(req.model)
        audio = conditioning.read_audio_reference(self, who, fields, body.files, entry, req.model)
        voices = cameo_conditioning.voices_field(fields.get("cameo_voices"))
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
            if audio is not None:  # and a voice in the soundtrack (likeness/conditioning.py)
                cameo_ids = cameo_conditioning.check_audio_voice(s, who.user_id, audio.audio, audio.rate, cameo_ids)
        params = self._with_characters(self._params(req), fields)
        if png is None:  # a named character's frame is the first frame (checked when the character was made)
            refs = [r for r in cameo_consent.character_refs(fields.get("characters")) if is_character_id(r)]
            frame = CharacterService(self.sessions, self.storage).first_frame(who.user_id, refs) if refs else None
            if frame is not None:
                png = self._fit(frame, width, height, "characters")
                params["first_frame_from"] = "characters"
        family = conditioning.family_of(entry)
        with self.sessions() as s:
            params["conditioning"] = cameo_conditioning.plan(
                s, who.user_id, cameo_ids, takes_references=conditioning.takes_references(entry),
                has_audio=bool(getattr(entry, "has_audio", False)), first_frame=png is not None, voices=voices,
                references_problem=getattr(family, "references_problem", None), audio_reference=audio is not None)
        conditioning.needs_picture(entry, req.model, audio, params["conditioning"], png is not None)
        video = self._enqueue(who, prompt=req.prompt, model=req.model, size=req.size, seconds=req.seconds,
                              params=params, input_png=png, cameo_ids=cameo_ids, batch=batch,
                              input_audio=audio.wav if audio is not None else None,
                              charge_seconds=self.admission.reference_charge(who, req.seconds, params, audio))
        return video, headers

    def _create_storyboard(self, who: Principal, fields: dict[str, Any], files: dict[str, Upload],
                           batch: BatchLine | None = None) -> tuple[VideoObject, dict[str, str]]:
        """One video from an ordered list of shots (protocol `StoryboardShot`), rendered by one job; the rules
        are in videos/storyboard.py. `prompt` is the video's own (its title; default the first shot's) and
        `seconds`, when sent, must be the shots' total."""
        shots = parse_storyboard(fields.pop("storyboard"))
        if "input_reference" in files or fields.get("input_reference") not in (None, ""):
            raise InvalidRequest("A storyboard's first frame is its first shot's image (storyboard[0].image); "
                                 "input_reference does not apply.", param="input_reference")
        if fields.get("characters") not in (None, "", []):
            raise InvalidRequest("A storyboard names characters per shot (storyboard[i].characters).",
                                 param="characters")
        fields.pop("input_reference", None)
        if fields.get("prompt") in (None, ""):
            fields["prompt"] = shots[0].prompt
        req: CreateVideoRequest = parse(CreateVideoRequest, fields)
        entry = self.admission.resolve(req.model)
        if "size" not in req.model_fields_set:  # as a create
            req = req.model_copy(update={"size": self.admission.default_size(req.model, entry)})
        if req.camera is not None:
            raise InvalidRequest("A storyboard names its camera moves per shot (storyboard[i].camera).",
                                 param="camera")
        sb.check_shots(shots, model=req.model, seconds_offered=entry.seconds,
                       max_shots=self.settings.max_storyboard_shots, catalog_model=entry)
        total = sb.total_seconds(shots)
        if "seconds" in req.model_fields_set and abs(float(req.seconds) - total) > 1e-6:
            raise InvalidRequest(f"seconds is '{req.seconds}' but the storyboard's shots last {total:g} s in all; "
                                 "leave seconds out or send the total.", param="seconds", code="invalid_seconds")
        headers = self.admission.admit(who, req.model, req.size, sb.seconds_text(total),
                                       steps=req.num_inference_steps, seconds_param="storyboard",
                                       rated=batch is None)
        self.admission.check_budget(req.model, req.size, total, "storyboard")
        width, height = (int(x) for x in req.size.split("x"))
        images: dict[int, bytes] = {}
        for i, shot in enumerate(shots):
            if shot.image is not None:
                images[i] = self._image_from_ref(who, shot.image, width, height, param=f"storyboard[{i}].image")
        # Consent for every shot's @handles and characters, as a create checks them, and the likeness guard
        # on every shot's image; the video uses the union of their cameos.
        cameo_ids: list[str] = []
        shot_cameos: dict[int, list[str]] = {}
        with self.sessions() as s:
            for i, shot in enumerate(shots):
                try:
                    ids = shot_cameos[i] = cameo_consent.check_create(s, who.user_id, shot.prompt,
                                                                      self._character_list(shot))
                    if i in images:
                        ids = likeness_guard.check_image(s, who.user_id, images[i], f"storyboard[{i}].image",
                                                         shot.prompt, ids)
                except MutoscopeError as e:
                    if not (e.param or "").startswith("storyboard["):
                        e.param = f"storyboard[{i}].{e.param or 'prompt'}"
                    raise
                cameo_ids += [c for c in ids if c not in cameo_ids]
        if len(cameo_ids) > cameo_consent.MAX_CAMEOS_PER_VIDEO:
            raise InvalidRequest(f"A video can use at most {cameo_consent.MAX_CAMEOS_PER_VIDEO} cameos; this "
                                 f"storyboard's shots name {len(cameo_ids)}.", param="storyboard",
                                 code="too_many_cameos")
        # A cut starts a new generation: a named character's frame is its first frame, as in a create, so
        # the character looks the same in every shot that names it.
        characters = CharacterService(self.sessions, self.storage)
        for i, shot in enumerate(shots):
            refs = [c.id for c in shot.characters or [] if is_character_id(c.id)]
            if i not in images and shot.transition != "continuous" and refs:
                frame = characters.first_frame(who.user_id, refs)
                if frame is not None:
                    images[i] = self._fit(frame, width, height, f"storyboard[{i}].characters")
        params = self._params(req)
        params["storyboard"] = sb.stored(shots, fps=float(getattr(entry, "fps", 24.0)), seed=params["seed"],
                                         image_keys={}, characters={i: [c.id for c in shot.characters or []]
                                                                    for i, shot in enumerate(shots)})
        # How each shot's cameos reach the model (its own references), and the video's as a whole.
        family = conditioning.family_of(entry)
        with self.sessions() as s:
            for i, raw in enumerate(params["storyboard"]["shots"]):
                raw["conditioning"] = cameo_conditioning.plan(
                    s, who.user_id, shot_cameos.get(i, []), takes_references=conditioning.takes_references(entry),
                    has_audio=bool(getattr(entry, "has_audio", False)), first_frame=i in images, voices=None,
                    references_problem=getattr(family, "references_problem", None))
            params["conditioning"] = cameo_conditioning.plan(
                s, who.user_id, cameo_ids, takes_references=conditioning.takes_references(entry),
                has_audio=bool(getattr(entry, "has_audio", False)), first_frame=bool(images), voices=None)
        video = self._enqueue(who, prompt=req.prompt, model=req.model, size=req.size, seconds=sb.seconds_text(total),
                              params=params, input_png=None, shot_images=images, cameo_ids=cameo_ids, batch=batch)
        return video, headers

    @staticmethod
    def _character_list(shot: StoryboardShot) -> list[dict[str, str]] | None:
        return [{"id": c.id} for c in shot.characters] if shot.characters else None

    def _remix_storyboard(self, who: Principal, src: Video, req: RemixVideoRequest) -> tuple[VideoObject, dict[str, str]]:
        """Shot `req.shot` gets the new prompt; the job renders it and every later shot again and reuses the
        earlier shots' frames and sound from the source's file. Charged for the shots it renders."""
        board = (src.params or {}).get("storyboard")
        shots = sb.timeline(board) if board is not None else None
        if shots is None:
            raise InvalidRequest(f"Video {src.id} is not a storyboard; remix it without `shot`.", param="shot")
        if req.shot is None:
            raise InvalidRequest(f"Video {src.id} is a storyboard of {len(shots)} shots; name the one to remix with "
                                 f"`shot` (0 to {len(shots) - 1}); it and the shots after it are rendered again.",
                                 param="shot", code="missing_required_parameter")
        if req.shot >= len(shots):
            raise InvalidRequest(f"Video {src.id} has {len(shots)} shots (0 to {len(shots) - 1}); there is no shot "
                                 f"{req.shot}.", param="shot")
        if req.edit_strength is not None:
            raise InvalidRequest("A storyboard remix renders its shots afresh; edit_strength applies to remixing a "
                                 "single video.", param="edit_strength")
        k = req.shot
        board = copy.deepcopy(board)
        board["from_shot"] = k
        board["shots"][k]["prompt"] = req.prompt
        if req.camera is not None:
            board["shots"][k]["camera"] = req.camera
            camera_moves.check_move(self.admission.resolve(src.model), req.camera, name=src.model)
        if "seed" in req.model_fields_set and req.seed is not None:
            for j in range(k, len(shots)):
                board["shots"][j]["seed"] = (req.seed + j) % sb.SEED_MODULUS
        rendered = sum(float(shot.seconds) for shot in shots[k:])
        entry = self.admission.resolve(src.model)
        if abs(float(getattr(entry, "fps", board["fps"])) - float(board["fps"])) > 1e-6:
            raise InvalidRequest(f"The model '{src.model}' now runs at a different frame rate than when video "
                                 f"{src.id} was made, so its shots cannot be reused.", param="video_id",
                                 code="invalid_source_video")
        headers = self.admission.admit(who, src.model, src.size, src.seconds, seconds_param="video_id")
        self.admission.check_budget(src.model, src.size, float(src.seconds), "shot")
        with self.sessions() as s:
            cameo_ids = cameo_consent.check_derived(s, who.user_id, req.prompt,
                                                    [{"id": c} for c in board["shots"][k].get("characters") or []]
                                                    or None, src.id)
        # The shots' first frames are copied under the new video's own keys, so deleting the source never takes
        # them away (a job whose source file is gone renders every shot again from these settings).
        images: dict[int, bytes] = {}
        for j in range(len(shots)):
            key = board["shots"][j].pop("image_key", None)
            if isinstance(key, str) and key.startswith(video_prefix(src.id) + "/"):
                try:
                    with self.storage.open(key) as f:
                        images[j] = f.read()
                except (FileNotFoundError, KeyError, OSError):
                    pass  # gone with its source's files: that shot starts from text, as the job would
        params = dict(src.params or {})
        params["storyboard"] = board
        video = self._enqueue(who, prompt=src.prompt, model=src.model, size=src.size, seconds=src.seconds,
                              charge_seconds=sb.seconds_text(rendered), params=params, input_png=None,
                              shot_images=images, kind="remix", remixed_from_video_id=src.id, cameo_ids=cameo_ids)
        return video, headers

    def remix(self, who: Principal, video_id: str, body: Body,
              token: str | None = None) -> tuple[VideoObject, dict[str, str]]:
        """Anyone who may see the source (`may_view`; `token` from its share link) may remix it: the remix is
        the caller's, admitted and charged under the caller's plan, and the source's cameos must be ones the
        caller may use."""
        req: RemixVideoRequest = parse(RemixVideoRequest, body.fields)
        with self.sessions() as s:
            src = viewable(s, who, video_id, token)
            if src.status != "completed":
                raise InvalidRequest(f"Video {video_id} is {src.status}; only a completed video can be remixed.",
                                     param="video_id", code="video_not_ready")
            params = dict(src.params or {})
        if "storyboard" in params or req.shot is not None:
            return self._remix_storyboard(who, src, req)
        self.admission.check_edits(src.model, self.admission.resolve(src.model), "remix", "video_id")
        params.update({k: v for k, v in self._params(req).items() if k in req.model_fields_set})
        params.update(self._strength(req))
        # A remix keeps the source's camera move unless it names another (or null for none).
        camera = params.get("camera") if isinstance(params.get("camera"), str) else None
        headers = self.admission.admit(who, src.model, src.size, src.seconds, camera,
                                       steps=params.get("num_inference_steps"))
        png = None
        if src.input_key:
            with self.storage.open(src.input_key) as f:
                png = f.read()
        # The new prompt's cameos and the source's.
        with self.sessions() as s:
            cameo_ids = cameo_consent.check_derived(s, who.user_id, req.prompt, body.fields.get("characters"), src.id)
        video = self._enqueue(who, prompt=req.prompt, model=src.model, size=src.size, seconds=src.seconds,
                              params=self._with_characters(params, body.fields), input_png=png, kind="remix",
                              remixed_from_video_id=src.id,
                              cameo_ids=cameo_ids)
        return video, headers

    @staticmethod
    def _source_or_upload(body: Body, request_cls: type[SourcedRequest]) -> tuple[SourcedRequest, Upload | None,
                                                                                  dict[str, Any]]:
        """An extension's or an edit's request: its source is a completed video (`video: {id}`) or an uploaded
        `video` file, exactly one of them."""
        fields = dict(body.fields)
        upload = body.files.get("video")
        if upload is not None:
            fields.pop("video", None)
        req = parse(request_cls, fields)
        if (upload is None) == (req.video is None):
            raise InvalidRequest("Provide exactly one of video.id or an uploaded video file.", param="video",
                                 code="missing_required_parameter" if upload is None else "invalid_value")
        return req, upload, fields

    def extend(self, who: Principal, body: Body) -> tuple[VideoObject, dict[str, str]]:
        """Continue a completed video (`video: {id}`) or an uploaded clip; the new video is the source followed
        by `seconds` more (its `seconds` is the stitched total). Limits per lineage:
        Settings.max_extensions_per_lineage / max_lineage_seconds."""
        req, upload, fields = self._source_or_upload(body, ExtendVideoRequest)
        plan = self.admission.plan_of(who)
        if not plan.extensions:
            raise PermissionDenied(f"Your plan '{plan.name}' does not include extensions.", param="video",
                                   code="plan_excludes_extensions")
        if upload is not None:
            return self._extend_upload(who, req, upload, fields)
        if req.model is not None or req.size is not None:
            raise InvalidRequest("An extension keeps its source video's model and size; model and size apply to an "
                                 "uploaded clip only.", param="model" if req.model is not None else "size")
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
        params = self._derived_params(src, req)
        headers = self.admission.admit(who, src.model, src.size, req.seconds, req.camera,
                                       steps=params.get("num_inference_steps"))
        self.admission.check_budget(src.model, src.size, total, "seconds")
        params["extend_seconds"] = req.seconds
        # An extension shows its source's cameos too, like a remix.
        with self.sessions() as s:
            cameo_ids = cameo_consent.check_derived(s, who.user_id, req.prompt, body.fields.get("characters"),
                                                    src.id, param="video")
        video = self._enqueue(who, prompt=req.prompt, model=src.model, size=src.size, seconds=f"{total:g}",
                              charge_seconds=req.seconds, params=self._with_characters(params, body.fields),
                              input_png=None, kind="extend",
                              extended_from_video_id=src.id, cameo_ids=cameo_ids)
        return video, headers

    def _extend_upload(self, who: Principal, req: ExtendVideoRequest, upload: Upload,
                       fields: dict[str, Any]) -> tuple[VideoObject, dict[str, str]]:
        """Continue an uploaded clip, checked as an edit's upload is (type, decode limits, memory budget, the
        likeness guard on its frames). The job scales and crops the clip to the output size at the model's
        frame rate, conditions on its last frames and stitches the new part after it."""
        model = req.model or DEFAULT_MODEL
        entry = self.admission.resolve(model)
        info = self._video_from_upload(upload)
        size = req.size or self._size_like(entry, info.width, info.height)
        total = round(info.duration + float(req.seconds), 3)
        limit_s = self.settings.max_lineage_seconds
        if total > limit_s + 1e-9:
            raise InvalidRequest(f"Extending a {info.duration:g} s clip by {req.seconds} s would make it {total:g} s; "
                                 f"this server allows at most {limit_s:g} s per video lineage.", param="seconds",
                                 code="extension_limit_reached")
        headers = self.admission.admit(who, model, size, req.seconds, req.camera, steps=req.num_inference_steps)
        self.admission.check_budget(model, size, total, "video", source=info)
        with self.sessions() as s:
            cameo_ids = cameo_consent.check_create(s, who.user_id, req.prompt, fields.get("characters"))
            if likeness_guard.enabled():
                frames = self._guard_frames(upload.data, info.frame_count, size)
                cameo_ids = likeness_guard.check_images(s, who.user_id, frames, "video", req.prompt, cameo_ids)
        params = {**self._params(req), "extend_seconds": req.seconds, "source_seconds": info.duration}
        video = self._enqueue(who, prompt=req.prompt, model=model, size=size, seconds=f"{total:g}",
                              charge_seconds=req.seconds, params=self._with_characters(params, fields),
                              input_png=None, input_video=upload.data, kind="extend", cameo_ids=cameo_ids)
        return video, headers

    def edit(self, who: Principal, body: Body) -> tuple[VideoObject, dict[str, str]]:
        """Video-to-video: a completed video (`video: {id}`) or an uploaded one, re-generated under `prompt`."""
        req, upload, fields = self._source_or_upload(body, EditVideoRequest)
        if req.video is not None:
            with self.sessions() as s:
                src = self._completed_source(s, who, req.video.id, "edited")
            self.admission.check_edits(src.model, self.admission.resolve(src.model), "edit", "video")
            params = {**self._derived_params(src, req), **self._strength(req)}
            headers = self.admission.admit(who, src.model, src.size, src.seconds, req.camera,
                                           steps=params.get("num_inference_steps"))
            # An edit shows its source's cameos too, like a remix.
            with self.sessions() as s:
                cameo_ids = cameo_consent.check_derived(s, who.user_id, req.prompt, fields.get("characters"),
                                                        src.id, param="video")
            video = self._enqueue(who, prompt=req.prompt, model=src.model, size=src.size, seconds=src.seconds,
                                  params=self._with_characters(params, fields),
                                  input_png=None, kind="edit",
                                  edited_from_video_id=src.id, cameo_ids=cameo_ids)
            return video, headers
        model = req.model or DEFAULT_MODEL
        entry = self.admission.resolve(model)
        self.admission.check_edits(model, entry, "edit", "model")
        info = self._video_from_upload(upload)
        size = req.size or self._size_like(entry, info.width, info.height)
        seconds = req.seconds or self._seconds_within(model, entry, info.duration)
        headers = self.admission.admit(who, model, size, seconds, req.camera, steps=req.num_inference_steps)
        self.admission.check_budget(model, size, float(seconds), "video", source=info)
        # Consent for named cameos; faces in the upload pass the same guard as input_reference.
        with self.sessions() as s:
            cameo_ids = cameo_consent.check_create(s, who.user_id, req.prompt, fields.get("characters"))
            if likeness_guard.enabled():
                frames = self._guard_frames(upload.data, info.frame_count, size)
                cameo_ids = likeness_guard.check_images(s, who.user_id, frames, "video", req.prompt, cameo_ids)
        video = self._enqueue(who, prompt=req.prompt, model=model, size=size, seconds=seconds,
                              params={**self._params(req), **self._strength(req)}, input_png=None,
                              input_video=upload.data, kind="edit",
                              cameo_ids=cameo_ids)
        return video, headers

    def retry(self, who: Principal, video_id: str) -> tuple[VideoObject, dict[str, str]]:
        """The same request again, as a new video through the same admission, plan and consent checks. A failed
        video keeps its seed (the same video, this time finished); a finished one gets a new seed."""
        with self.sessions() as s:
            v = owned(s, who, video_id)
            if v.status not in ("completed", "failed"):
                raise InvalidRequest(f"Video {video_id} is {v.status}; only a finished video can be tried again.",
                                     param="video_id", code="video_not_finished")
            kind, prompt, model, size, seconds = v.kind, v.prompt, v.model, v.size, v.seconds
            params = {k: p for k in GENERATION_KEYS if (p := (v.params or {}).get(k)) is not None}
            # The characters go again by id, so consent is asked again and a character's first frame is its
            # current one (and not a stored image the likeness guard would have to re-judge without them).
            if isinstance(chars := (v.params or {}).get("characters"), list) and chars:
                params["characters"] = [{"id": str(c)} for c in chars]
            first_from_characters = (v.params or {}).get("first_frame_from") == "characters"
            if v.status == "completed":
                params.pop("seed", None)
            if v.kind in ("edit", "remix") and (strength := (v.params or {}).get("edit_strength")) is not None:
                params["edit_strength"] = strength
            extend_seconds = (v.params or {}).get("extend_seconds")
            remixed, extended, edited = v.remixed_from_video_id, v.extended_from_video_id, v.edited_from_video_id
            stored = v.input_key
            board = (v.params or {}).get("storyboard")
        if isinstance(board, dict):
            return self._retry_storyboard(who, video_id, kind, remixed, prompt, model, size, params, board)
        if kind == "remix" and remixed:
            return self.remix(who, remixed, Body({"prompt": prompt, **params}))
        if kind == "extend" and extended and extend_seconds:
            return self.extend(who, Body({"video": {"id": extended}, "prompt": prompt, "seconds": extend_seconds,
                                          **params}))
        if kind == "edit" and edited:
            return self.edit(who, Body({"video": {"id": edited}, "prompt": prompt, **params}))
        data = stored_input(self.storage, stored, video_id) if stored else None
        fields = {"prompt": prompt, "model": model, "size": size, "seconds": seconds, **params}
        if kind == "edit" and data is not None:
            return self.edit(who, Body(fields, {"video": Upload("input.mp4", "video/mp4", data)}))
        if kind == "extend" and data is not None and extend_seconds:
            return self.extend(who, Body({**fields, "seconds": extend_seconds},
                                         {"video": Upload("input.mp4", "video/mp4", data)}))
        if kind == "generate":
            files = {"input_reference": Upload("input.png", "image/png", data)} \
                if data is not None and not first_from_characters else {}
            return self.create(who, Body(fields, files))
        raise InvalidRequest(f"Video {video_id} cannot be tried again: what it was made from is gone.",
                             param="video_id", code="video_not_retryable")

    def _retry_storyboard(self, who: Principal, video_id: str, kind: str, remixed: str | None, prompt: str,
                          model: str, size: str, params: dict[str, Any],
                          board: dict[str, Any]) -> tuple[VideoObject, dict[str, str]]:
        """A storyboard again: its shots (first frames from its own stored inputs) as a new create, or a remix of
        the same shot of the same source."""
        shots = sb.timeline(board)
        if shots is None:
            raise InvalidRequest(f"Video {video_id} cannot be tried again: its storyboard is unreadable.",
                                 param="video_id", code="video_not_retryable")
        if kind == "remix":
            k = int(board.get("from_shot") or 0)
            if not remixed:
                raise InvalidRequest(f"Video {video_id} cannot be tried again: what it was made from is gone.",
                                     param="video_id", code="video_not_retryable")
            return self.remix(who, remixed, Body({"prompt": shots[k].prompt, "shot": k,
                                                  **({"camera": shots[k].camera} if shots[k].camera else {}),
                                                  **params}))
        out = []
        for shot, raw in zip(shots, board["shots"]):
            item: dict[str, Any] = {"prompt": shot.prompt, "seconds": shot.seconds}
            if shot.transition:
                item["transition"] = shot.transition
            if shot.camera:
                item["camera"] = shot.camera
            if raw.get("characters"):
                item["characters"] = [{"id": c} for c in raw["characters"]]
            key = raw.get("image_key")
            if isinstance(key, str) and key.startswith(video_prefix(video_id) + "/"):
                png = stored_input(self.storage, key, video_id)
                item["image"] = "data:image/png;base64," + base64.b64encode(png).decode()
            out.append(item)
        return self.create(who, Body({"prompt": prompt, "model": model, "size": size, "storyboard": out, **params}))

    def delete(self, who: Principal, video_id: str) -> DeletedVideo:
        with self.sessions() as s:
            was = transitions.delete(s, owned(s, who, video_id))
        if was == "in_progress":
            # Its worker stops at the next denoising step and removes what it wrote.
            self.runner.cancel(video_id)
        else:
            self.storage.delete_prefix(video_prefix(video_id))
        return DeletedVideo(id=video_id)

    def set_visibility(self, who: Principal, video_id: str, visibility: str) -> VideoObject:
        """Only the owner shares. Going private drops the link's token, so a link handed out before stops
        working for good; sharing again makes a new one."""
        req: UpdateVideoRequest = parse(UpdateVideoRequest, {"visibility": visibility})
        with self.sessions() as s:
            v = owned(s, who, video_id)
            v.visibility = req.visibility
            if req.visibility == "private":
                v.share_token = None
            elif not v.share_token:
                v.share_token = secrets.token_urlsafe(18)
            s.commit()
            return to_video_object(v, owner_view=True)

    @staticmethod
    def _with_characters(params: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        """`params` plus the request's character ids (already checked by consent), kept so that a retry
        names the same characters."""
        refs = cameo_consent.character_refs(fields.get("characters"))
        return {**params, "characters": refs} if refs else params

    @staticmethod
    def _params(req: GenerationParams) -> dict[str, Any]:
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        return {"seed": seed, "negative_prompt": req.negative_prompt,
                "num_inference_steps": req.num_inference_steps, "guidance_scale": req.guidance_scale,
                "camera": req.camera}

    @staticmethod
    def _strength(req: EditVideoRequest | RemixVideoRequest) -> dict[str, Any]:
        """An edit's or remix's `edit_strength` as its params keep it; unset: none (the model's own applies,
        or, for a remix, the source's)."""
        return {"edit_strength": req.edit_strength} if req.edit_strength is not None else {}

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
            return inspect_upload(io.BytesIO(upload.data), self.admission.input_limits())
        except MediaError as e:
            raise InvalidRequest(f"video is not a usable video: {e}", param="video", code="invalid_video") from None

    @staticmethod
    def _size_like(entry: ModelEntry, width: int, height: int) -> str:
        """The model's size whose aspect ratio is closest to the upload's (the edit scales and center-crops);
        among sizes of that shape, the one nearest the upload's resolution, so a phone clip is not blown up
        to the model's largest size nor a 1080p one shrunk to its smallest."""
        def distance(size: str) -> tuple[float, float]:
            w, h = (int(x) for x in size.split("x"))
            return round(abs(math.log((w / h) / (width / height))), 6), abs(math.log((w * h) / (width * height)))
        return min(entry.sizes, key=distance)

    @staticmethod
    def _seconds_within(model: str, entry: ModelEntry, duration: float) -> str:
        fits = [x for x in entry.seconds if float(x) <= duration + 0.05]
        if not fits:
            raise InvalidRequest(f"The uploaded video lasts {duration:.2f} s; model '{model}' edits clips of "
                                 f"{', '.join(entry.seconds)} s.", param="video", code="invalid_video")
        return max(fits, key=float)

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

    def file_bytes(self, who: Principal, file_id: str, param: str) -> bytes:
        """One of the caller's files (`/v1/files`, or a batch's output), read from where it is stored; another's
        id, or a file whose bytes are gone, is a 400 naming `param`."""
        with self.sessions() as s:
            f = repo.get_file(s, who.user_id, file_id)
        try:
            if f is None:
                raise FileNotFoundError(file_id)
            with self.storage.open(f.storage_key) as fh:
                return fh.read()
        except FileNotFoundError:
            raise InvalidRequest(f"No file found with id '{file_id}'. Upload it first with POST /v1/files.",
                                 param=param, code="file_not_found") from None

    def _image_from_ref(self, who: Principal, ref: ImageRef, width: int, height: int,
                        param: str = "input_reference") -> bytes:
        """`param`: where the reference sits in the request (`input_reference`, `storyboard[2].image`)."""
        if (ref.image_url is None) == (ref.file_id is None):
            raise InvalidRequest(f"Provide exactly one of {param}.image_url or {param}.file_id.", param=param)
        if ref.file_id is not None:
            data = self.file_bytes(who, ref.file_id, f"{param}.file_id")
            return self._fit(data, width, height, f"{param}.file_id")
        url = ref.image_url
        if url.startswith("data:"):
            try:
                data = decode_data_url(url)
            except MediaError as e:
                raise InvalidRequest(str(e), param=f"{param}.image_url", code="invalid_image") from None
            return self._fit(data, width, height, f"{param}.image_url")
        if not url.startswith("https://"):
            raise InvalidRequest(f"{param}.image_url must be an https URL or a base64 data URL.",
                                 param=f"{param}.image_url", code="invalid_url")
        return self._fit(self.download(url, f"{param}.image_url"), width, height, f"{param}.image_url")

    def download(self, url: str, param: str = "input_reference.image_url") -> bytes:
        # The outbound guard refuses internal addresses on every hop and bounds size and time.
        return fetch_bytes(url, max_bytes=self.settings.max_upload_bytes, timeout=10.0, settings=self.settings,
                           param=param)

    def _enqueue(self, who: Principal, *, prompt: str, model: str, size: str, seconds: str,
                 params: dict[str, Any], input_png: bytes | None, kind: str = "generate",
                 remixed_from_video_id: str | None = None, extended_from_video_id: str | None = None,
                 edited_from_video_id: str | None = None, input_video: bytes | None = None,
                 charge_seconds: str | None = None, cameo_ids: list[str] | None = None,
                 shot_images: dict[int, bytes] | None = None, batch: BatchLine | None = None,
                 input_audio: bytes | None = None) -> VideoObject:
        """`charge_seconds`: what the plan pays for when it differs from `seconds` (an extension's `seconds` is
        the stitched total; only the new part is generated). `input_video`: an uploaded edit source.
        `shot_images`: a storyboard's first frames by shot index, stored under the new video's keys and
        named in `params["storyboard"]`."""
        video_id = new_id("video_")
        key = None
        try:
            if input_png is not None:
                key = input_key(video_id)
                self.storage.put_bytes(key, input_png)
            elif input_video is not None:
                key = input_video_key(video_id)
                self.storage.put_bytes(key, input_video)
            if input_audio is not None:
                params = {**params, cameo_conditioning.AUDIO_KEY_PARAM: input_audio_key(video_id)}
                self.storage.put_bytes(input_audio_key(video_id), input_audio)
            if shot_images:
                params = copy.deepcopy(params)
                for i, png in shot_images.items():
                    params["storyboard"]["shots"][i]["image_key"] = shot_input_key(video_id, i)
                    self.storage.put_bytes(shot_input_key(video_id, i), png)
        except Exception:
            self.storage.delete_prefix(video_prefix(video_id))
            raise
        try:
            plan = self.admission.plan_of(who)
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
                                  edited_from_video_id=edited_from_video_id,
                                  batch_id=batch.batch_id if batch else None,
                                  batch_custom_id=batch.custom_id if batch else None)
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
