"""The MCP tools: JSON schemas and descriptions for a model to read, and handlers that call the video services.

Each handler turns its arguments into the same `Body` a /v1 route would build and makes the same
`VideoCommands` or `VideoQueries` call, so validation, plans, quotas, consent and owner scoping are the
API's, and so are the error messages: a `MutoscopeError` becomes a tool error (`isError`) carrying its
plain message.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal
from urllib.parse import unquote

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict, Field

from mutoscope.accounts.service import Principal
from mutoscope.errors import MutoscopeError, NotFound, PayloadTooLarge
from mutoscope.protocol.base import (
    Body,
    error_body,
    parse,
    refuse_unstorable,
    unstorable_at,
)
from mutoscope.protocol.videos import VideoObject
from mutoscope.videos.commands import VideoCommands
from mutoscope.videos.queries import VideoQueries

logger = logging.getLogger(__name__)

WhoFn = Callable[[ServerRequestContext], Awaitable[Principal]]
BaseUrlFn = Callable[[ServerRequestContext], str]

GENERIC_ERROR = "The server had an error while processing your request."
# An MP4 travels base64-encoded inside one JSON-RPC message; past this the link is the way to get it.
MAX_INLINE_BYTES = 25 * 1024 * 1024
_TERMINAL = ("completed", "failed")
_GENERATION_KEYS = ("seed", "negative_prompt", "num_inference_steps", "guidance_scale", "camera")
_CONTENT_URI = re.compile(r"/v1/videos/(?P<id>[^/?#]+)/content(?:\?variant=(?P<variant>video|thumbnail|spritesheet))?$")

INSTRUCTIONS = """\
Mutoscope generates short videos with sound from text prompts, like Sora. Use create_video for a new
video, remix_video to change a finished one with a new prompt, extend_video to continue it and
edit_video to re-generate it in another style. Rendering takes from seconds to several minutes: the
create tools wait and report progress by default; with wait=false they return at once and
wait_for_video or get_video follow up. Finished videos come back with a link to their page, a
thumbnail and the MP4. Cancelling a call that is waiting cancels the video it waits for."""


class _ToolArgs(BaseModel):
    # The tool's own arguments; the video fields go to VideoCommands as a Body, which checks them.
    model_config = ConfigDict(extra="ignore")


class _VideoId(_ToolArgs):
    video_id: str = Field(min_length=1)


class _Wait(_ToolArgs):
    wait: bool = True
    timeout_seconds: float = Field(300, ge=1, le=3600)


class _WaitFor(_VideoId):
    timeout_seconds: float = Field(300, ge=1, le=3600)


class _List(_ToolArgs):
    limit: int = Field(10, ge=1, le=100)
    after: str | None = None
    order: Literal["asc", "desc"] = "desc"


class _Download(_VideoId):
    variant: Literal["video", "thumbnail", "spritesheet"] = "video"


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_ID = {"type": "string", "description": "The video's id as returned by create_video or list_videos, e.g. "
                                          "\"video_68d7…\"."}
_PROMPT = {"type": "string", "minLength": 1, "maxLength": 32000,
           "description": "What the video shows, written like a shot description: subject and action, setting, "
                          "camera (e.g. slow dolly-in, handheld), lighting, style, and any sound or dialogue. To "
                          "feature a person who has a cameo, mention the cameo's @handle; their owner's "
                          "permission is checked."}
_WAIT = {"type": "boolean", "default": True,
         "description": "Wait until the video is finished (reporting progress) before returning. false returns "
                        "at once with the queued video; follow up with wait_for_video."}
_TIMEOUT = {"type": "number", "minimum": 1, "maximum": 3600, "default": 300,
            "description": "Longest time in seconds to wait. If the video isn't finished by then it keeps "
                           "rendering and the result says so; call wait_for_video to keep waiting."}
_GENERATION = {
    "seed": {"type": "integer", "minimum": 0, "description": "Random seed; the same seed and prompt repeat a "
                                                               "result. Omit for a new one each time."},
    "negative_prompt": {"type": "string", "maxLength": 32000, "description": "What the video should avoid."},
    "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 500,
                            "description": "Denoising steps: fewer is faster and rougher. Omit for the model's "
                                           "default."},
    "guidance_scale": {"type": "number", "minimum": 0, "maximum": 50,
                       "description": "How literally to follow the prompt. Omit for the model's default."},
    # The names are engine/camera.py's MOVES; which ones a model offers, the server checks and lists on refusal.
    "camera": {"type": "string", "maxLength": 64,
               "description": "Optional camera move: static, dolly_in, dolly_out, dolly_left, dolly_right, jib_up, "
                              "jib_down, pan_left, pan_right, orbit_left or orbit_right. A model that lacks one "
                              "says which it has."},
}
# Edits and remixes only (the API's `edit_strength`, in its range).
_EDIT_STRENGTH = {"edit_strength": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                                    "description": "How far the result may depart from the source video: low keeps "
                                                   "its look, 1 keeps only its motion and layout. Omit for the "
                                                   "model's own."}}
_SECONDS = {"type": "string", "description": "Length in seconds, as a string: \"4\", \"8\" or \"12\" on most "
                                              "models (default \"4\")."}

TOOLS: list[types.Tool] = [
    types.Tool(
        name="create_video", title="Create a video",
        description="Generate a new video with sound from a text prompt, optionally starting from an image "
                    "(image_url becomes the first frame) or featuring characters. Returns the video's page link, "
                    "a thumbnail and the MP4 once it is finished; by default the call waits and reports "
                    "progress. Sizes depend on the model: 720x1280 (portrait, the default) and 1280x720 "
                    "(landscape) always work.",
        input_schema=_schema({
            "prompt": _PROMPT,
            "model": {"type": "string", "default": "sora-2",
                      "description": "Model name: \"sora-2\" (fast) or \"sora-2-pro\" (higher quality), or "
                                     "another model this server lists."},
            "size": {"type": "string",
                     "description": "Width x height in pixels, e.g. \"720x1280\" (portrait) or \"1280x720\" "
                                    "(landscape). Leave it out for the model's default (720x1280 for sora-2)."},
            "seconds": _SECONDS,
            "image_url": {"type": "string",
                          "description": "Optional first frame: an https URL or a data: URL of a PNG/JPEG/WebP "
                                         "image. It is scaled and cropped to the size."},
            "characters": {"type": "array", "maxItems": 2, "items": {"type": "string"},
                           "description": "Optional ids of characters (\"char_…\") to appear in the video."},
            "audio_url": {"type": "string",
                          "description": "Optional soundtrack to generate the video to (lip-synced speech, music): "
                                         "an https URL or a data: URL of an audio file, at most 60 s. The video's "
                                         "sound is exactly this clip. Only models with sound take it."},
            "wait": _WAIT, "timeout_seconds": _TIMEOUT, **_GENERATION,
        }, ["prompt"]),
        annotations=types.ToolAnnotations(title="Create a video", read_only_hint=False, destructive_hint=False,
                                          idempotent_hint=False, open_world_hint=False),
    ),
    types.Tool(
        name="get_video", title="Get a video",
        description="Look up one of your videos: its status (queued, in_progress, completed, failed), progress "
                    "in percent, and when completed its page link, thumbnail and MP4 link. Does not wait.",
        input_schema=_schema({"video_id": _ID}, ["video_id"]),
        annotations=types.ToolAnnotations(title="Get a video", read_only_hint=True, open_world_hint=False),
    ),
    types.Tool(
        name="wait_for_video", title="Wait for a video",
        description="Wait until a queued or rendering video is finished, reporting its progress, then return "
                    "it like get_video. Cancelling this call cancels the video.",
        input_schema=_schema({"video_id": _ID, "timeout_seconds": _TIMEOUT}, ["video_id"]),
        annotations=types.ToolAnnotations(title="Wait for a video", read_only_hint=True, open_world_hint=False),
    ),
    types.Tool(
        name="remix_video", title="Remix a video",
        description="Make a new video from a completed one with a changed prompt (same model, size and length), "
                    "e.g. \"the same scene at night\". The original is kept. Waits and reports progress by "
                    "default.",
        input_schema=_schema({"video_id": _ID, "prompt": _PROMPT, "wait": _WAIT, "timeout_seconds": _TIMEOUT,
                              **_GENERATION, **_EDIT_STRENGTH}, ["video_id", "prompt"]),
        annotations=types.ToolAnnotations(title="Remix a video", read_only_hint=False, destructive_hint=False,
                                          idempotent_hint=False, open_world_hint=False),
    ),
    types.Tool(
        name="extend_video", title="Extend a video",
        description="Continue a completed video for `seconds` more, following `prompt` (what happens next). The "
                    "result is a new video: the original followed by the continuation. Waits and reports "
                    "progress by default.",
        input_schema=_schema({"video_id": _ID, "prompt": _PROMPT, "seconds": _SECONDS, "wait": _WAIT,
                              "timeout_seconds": _TIMEOUT, **_GENERATION}, ["video_id", "prompt", "seconds"]),
        annotations=types.ToolAnnotations(title="Extend a video", read_only_hint=False, destructive_hint=False,
                                          idempotent_hint=False, open_world_hint=False),
    ),
    types.Tool(
        name="edit_video", title="Edit a video",
        description="Re-generate a completed video under a new prompt while keeping its motion and layout "
                    "(video-to-video), e.g. \"as a watercolor painting\". Waits and reports progress by default.",
        input_schema=_schema({"video_id": _ID, "prompt": _PROMPT, "wait": _WAIT, "timeout_seconds": _TIMEOUT,
                              **_GENERATION, **_EDIT_STRENGTH}, ["video_id", "prompt"]),
        annotations=types.ToolAnnotations(title="Edit a video", read_only_hint=False, destructive_hint=False,
                                          idempotent_hint=False, open_world_hint=False),
    ),
    types.Tool(
        name="list_videos", title="List my videos",
        description="List your videos, newest first: id, status, prompt, model, size and length of each. Page "
                    "with `after` (the last id of the previous page).",
        input_schema=_schema({
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10,
                      "description": "How many videos to return."},
            "after": {"type": "string", "description": "Return videos after this id (for the next page)."},
            "order": {"type": "string", "enum": ["desc", "asc"], "default": "desc",
                      "description": "desc: newest first; asc: oldest first."},
        }, []),
        annotations=types.ToolAnnotations(title="List my videos", read_only_hint=True, open_world_hint=False),
    ),
    types.Tool(
        name="download_video", title="Download a video",
        description="Fetch the file of a completed video: the MP4 (variant \"video\"), a WebP thumbnail or a "
                    "JPEG spritesheet of frames. Returns the file as an embedded resource; prefer the links of "
                    "get_video unless the file itself is needed.",
        input_schema=_schema({
            "video_id": _ID,
            "variant": {"type": "string", "enum": ["video", "thumbnail", "spritesheet"], "default": "video",
                        "description": "Which file."},
        }, ["video_id"]),
        annotations=types.ToolAnnotations(title="Download a video", read_only_hint=True, open_world_hint=False),
    ),
    types.Tool(
        name="delete_video", title="Delete or cancel a video",
        description="Delete one of your videos. A video that is still queued or rendering is cancelled and its "
                    "worker stops.",
        input_schema=_schema({"video_id": _ID}, ["video_id"]),
        annotations=types.ToolAnnotations(title="Delete or cancel a video", read_only_hint=False,
                                          destructive_hint=True, idempotent_hint=True, open_world_hint=False),
    ),
]


@dataclass
class Links:
    page_url: str
    content_url: str
    thumbnail_url: str


def _links(base: str, video_id: str) -> Links:
    base = base.rstrip("/")
    return Links(page_url=f"{base}/videos/{video_id}", content_url=f"{base}/v1/videos/{video_id}/content",
                 thumbnail_url=f"{base}/v1/videos/{video_id}/content?variant=thumbnail")


def error_result(message: str, error: MutoscopeError | None = None) -> types.CallToolResult:
    """A tool error: the plain message for the model, the API's envelope fields for programs."""
    structured = None
    if error is not None:
        structured = error_body(error.message, error.type, error.param, error.code)
        structured["error"]["status"] = error.status_code
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)],
                                structured_content=structured, is_error=True)


def _seconds(value: Any) -> Any:
    # Models often send a length as a number; the API's field is a string ("4").
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return value


class VideoTools:
    """The tools of one MCP endpoint. `who` finds the caller of a request, `base_url` the address its links
    should use; both differ between the HTTP endpoint and stdio."""

    def __init__(self, videos: VideoCommands, queries: VideoQueries, who: WhoFn, base_url: BaseUrlFn):
        self.videos, self.queries, self.who, self.base_url = videos, queries, who, base_url
        # Set while the process shuts down: a wait cancelled then is not a client giving up on its video.
        self.shutting_down = False
        self._handlers: dict[str, Callable[[ServerRequestContext, Principal, dict[str, Any]],
                                           Awaitable[types.CallToolResult]]] = {
            "create_video": self.create_video, "get_video": self.get_video, "wait_for_video": self.wait_for_video,
            "remix_video": self.remix_video, "extend_video": self.extend_video, "edit_video": self.edit_video,
            "list_videos": self.list_videos, "download_video": self.download_video,
            "delete_video": self.delete_video,
        }

    async def list_tools(self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
                         ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def call_tool(self, ctx: ServerRequestContext, params: types.CallToolRequestParams
                        ) -> types.CallToolResult:
        handler = self._handlers.get(params.name)
        if handler is None:
            e = NotFound(f"Unknown tool '{params.name}'. Available tools: {', '.join(self._handlers)}.",
                         param="name", code="unknown_tool")
            return error_result(e.message, e)
        try:
            args = dict(params.arguments or {})
            _check_arguments(args)
            who = await self.who(ctx)
            return await handler(ctx, who, args)
        except MutoscopeError as e:
            return error_result(e.message, e)
        except Exception:
            # The trace stays in the server's log; the model gets the API's generic 500 message.
            logger.exception("tool %s failed", params.name)
            return error_result(GENERIC_ERROR, InternalError(GENERIC_ERROR))

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        # The video services are synchronous (database, storage, image fetches): keep it off the event loop.
        return await anyio.to_thread.run_sync(partial(fn, *args))

    async def _start(self, fn: Callable[..., Any], *args: Any) -> Any:
        # Shielded: a cancel that arrives while the job is being created is held until the wait below, which
        # then cancels the job it knows of, instead of leaving a video nobody waits for.
        with anyio.CancelScope(shield=True):
            return await self._call(fn, *args)

    async def create_video(self, ctx: ServerRequestContext, who: Principal, args: dict[str, Any]):
        wait = parse(_Wait, args)
        fields = {k: args[k] for k in ("prompt", "model", "size", *_GENERATION_KEYS) if args.get(k) is not None}
        if args.get("seconds") is not None:
            fields["seconds"] = _seconds(args["seconds"])
        if args.get("image_url") is not None:
            fields["input_reference"] = {"image_url": args["image_url"]}
        if args.get("characters") is not None:
            chars = args["characters"]
            fields["characters"] = [{"id": c} if isinstance(c, str) else c for c in chars] \
                if isinstance(chars, list) else chars
        if args.get("audio_url") is not None:
            fields["audio_reference"] = {"audio_url": args["audio_url"]}
        video, _ = await self._start(self.videos.create, who, Body(fields=fields))
        return await self._finish(ctx, who, video, wait)

    async def remix_video(self, ctx: ServerRequestContext, who: Principal, args: dict[str, Any]):
        ref, wait = parse(_VideoId, args), parse(_Wait, args)
        fields = {k: args[k] for k in ("prompt", *_GENERATION_KEYS, *_EDIT_STRENGTH) if args.get(k) is not None}
        video, _ = await self._start(self.videos.remix, who, ref.video_id, Body(fields=fields))
        return await self._finish(ctx, who, video, wait)

    async def extend_video(self, ctx: ServerRequestContext, who: Principal, args: dict[str, Any]):
        ref, wait = parse(_VideoId, args), parse(_Wait, args)
        fields = {k: args[k] for k in ("prompt", *_GENERATION_KEYS) if args.get(k) is not None}
        fields["video"] = {"id": ref.video_id}
        if args.get("seconds") is not None:
            fields["seconds"] = _seconds(args["seconds"])
        video, _ = await self._start(self.videos.extend, who, Body(fields=fields))
        return await self._finish(ctx, who, video, wait)

    async def edit_video(self, ctx: ServerRequestContext, who: Principal, args: dict[str, Any]):
        ref, wait = parse(_VideoId, args), parse(_Wait, args)
        fields = {k: args[k] for k in ("prompt", *_GENERATION_KEYS, *_EDIT_STRENGTH) if args.get(k) is not None}
        fields["video"] = {"id": ref.video_id}
        video, _ = await self._start(self.videos.edit, who, Body(fields=fields))
        return await self._finish(ctx, who, video, wait)

    async def get_video(self, ctx: ServerRequestContext, who: Principal, args: dict[str, Any]):
        ref = parse(_VideoId, args)
        return await self._result(ctx, who, await self._call(self.queries.retrieve, who, ref.video_id))

    async def wait_for_video(self, ctx: ServerRequestContext, who: Principal, args: dict[str, Any]):
        ref = parse(_WaitFor, args)
        video = await self._call(self.queries.retrieve, who, ref.video_id)
        return await self._result(ctx, who, await self._wait(ctx, who, video, ref.timeout_seconds))

    async def list_videos(self, ctx: ServerRequestContext, who: Principal, args: dict[str, Any]):
        q = parse(_List, args)
        page = await self._call(self.queries.list, who, q.after, q.limit, q.order)
        lines = [f"{v.id}: {v.status}" + (f" {v.progress}%" if v.status == "in_progress" else "")
                 + f", {v.model}, {v.size}, {v.seconds} s, prompt: {v.prompt!r}" for v in page.data]
        if not lines:
            lines = ["You have no videos" + (" after that id." if q.after else " yet.")]
        if page.has_more:
            lines.append(f"More videos follow: call list_videos with after=\"{page.last_id}\".")
        return types.CallToolResult(content=[types.TextContent(type="text", text="\n".join(lines))],
                                    structured_content=page.model_dump(mode="json"))

    async def download_video(self, ctx: ServerRequestContext, who: Principal, args: dict[str, Any]):
        q = parse(_Download, args)
        links = _links(self.base_url(ctx), q.video_id)
        uri = links.content_url if q.variant == "video" else f"{links.content_url}?variant={q.variant}"
        data, media_type = await self._call(self._read, who, q.video_id, q.variant)
        resource = types.BlobResourceContents(uri=uri, mime_type=media_type, blob=base64.b64encode(data).decode())
        text = f"The {q.variant} of video {q.video_id} ({media_type}, {len(data)} bytes)."
        return types.CallToolResult(content=[types.TextContent(type="text", text=text),
                                             types.EmbeddedResource(type="resource", resource=resource)])

    async def delete_video(self, ctx: ServerRequestContext, who: Principal, args: dict[str, Any]):
        ref = parse(_VideoId, args)
        deleted = await self._call(self.videos.delete, who, ref.video_id)
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"Deleted video {deleted.id}.")],
                                    structured_content=deleted.model_dump(mode="json"))

    def _read(self, who: Principal, video_id: str, variant: str) -> tuple[bytes, str]:
        stored = self.queries.content(who, video_id, variant)
        if stored.size > MAX_INLINE_BYTES:
            raise PayloadTooLarge(f"The {variant} of video {video_id} is over {MAX_INLINE_BYTES // 2**20} MB, too "
                                  "large to send through MCP; use its link instead.", param="variant")
        with stored.storage.open(stored.key) as f:
            return f.read(), stored.media_type

    async def _finish(self, ctx: ServerRequestContext, who: Principal, video: VideoObject, wait: _Wait):
        if wait.wait:
            video = await self._wait(ctx, who, video, wait.timeout_seconds)
        return await self._result(ctx, who, video)

    async def _wait(self, ctx: ServerRequestContext, who: Principal, video: VideoObject,
                    timeout: float) -> VideoObject:
        """Poll the video until it is finished or `timeout` passes, sending each new progress value as an
        MCP progress notification. A cancelled call (the client gave up) cancels the video too, so its
        worker stops instead of rendering for nobody."""
        deadline = anyio.current_time() + timeout
        last: tuple | None = None
        try:
            while True:
                detail = video.progress_detail.text if video.progress_detail else ""
                if (video.progress, detail) != last:
                    last = (video.progress, detail)
                    words = f" · {detail}" if detail else ""
                    await ctx.session.report_progress(video.progress, 100,
                                                      f"{video.status}: {video.progress}%{words}")
                remaining = deadline - anyio.current_time()
                if video.status in _TERMINAL or remaining <= 0:
                    return video
                delay = await self._call(self.queries.poll_after_ms, video.id) / 1000
                await anyio.sleep(max(0.1, min(delay, 1.0, remaining)))
                video = await self._call(self.queries.retrieve, who, video.id)
        except anyio.get_cancelled_exc_class():
            if not self.shutting_down:
                with anyio.CancelScope(shield=True):
                    await self._call(self._abandon, who, video.id)
            raise

    def _abandon(self, who: Principal, video_id: str) -> None:
        try:
            if self.queries.retrieve(who, video_id).status not in _TERMINAL:
                self.videos.delete(who, video_id)
                logger.info("cancelled video %s: its MCP call was cancelled", video_id)
        except NotFound:
            pass
        except Exception:
            logger.exception("could not cancel video %s after its MCP call was cancelled", video_id)

    def _thumbnail(self, who: Principal, video_id: str) -> bytes | None:
        try:
            return self._read(who, video_id, "thumbnail")[0]
        except MutoscopeError:
            return None  # taken down, expired or gone: the text says what the link will answer

    async def _result(self, ctx: ServerRequestContext, who: Principal, video: VideoObject) -> types.CallToolResult:
        links = _links(self.base_url(ctx), video.id)
        content: list[Any] = []
        if video.status == "completed":
            text = (f"Video {video.id} is ready ({video.model}, {video.size}, {video.seconds} s).\n"
                    f"Watch it: {links.page_url}\nMP4: {links.content_url}")
            thumb = await self._call(self._thumbnail, who, video.id)
            content.append(types.TextContent(type="text", text=text))
            if thumb is not None:
                content.append(types.ImageContent(type="image", data=base64.b64encode(thumb).decode(),
                                                  mime_type="image/webp"))
            content.append(types.ResourceLink(type="resource_link", name=f"{video.id}.mp4", title=video.prompt,
                                              uri=links.content_url, mime_type="video/mp4",
                                              description=f"The MP4 of video {video.id}"))
        elif video.status == "failed":
            error = video.error
            content.append(types.TextContent(type="text", text=f"Video {video.id} failed: "
                                                               f"{error.message if error else 'unknown error'}"
                                                               f"{f' ({error.code})' if error else ''}"))
        else:
            content.append(types.TextContent(
                type="text", text=f"Video {video.id} is {video.status} ({video.progress}%). It keeps rendering: call "
                                  f"wait_for_video with video_id \"{video.id}\" to wait for it, or get_video to check. "
                                  f"Its page: {links.page_url}"))
        structured = {"video": video.model_dump(mode="json"), "page_url": links.page_url,
                      "content_url": links.content_url, "thumbnail_url": links.thumbnail_url}
        return types.CallToolResult(content=content, structured_content=structured)

    async def list_resources(self, ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
                             ) -> types.ListResourcesResult:
        """The caller's latest completed videos, as the MP4 resources the tool results link to."""
        who = await self.who(ctx)
        page = await self._call(self.queries.list, who, None, 50, "desc")
        base = self.base_url(ctx)
        return types.ListResourcesResult(resources=[
            types.Resource(uri=_links(base, v.id).content_url, name=f"{v.id}.mp4", title=v.prompt,
                           mime_type="video/mp4") for v in page.data if v.status == "completed"])

    async def read_resource(self, ctx: ServerRequestContext, params: types.ReadResourceRequestParams
                            ) -> types.ReadResourceResult:
        """Read a link from a tool result through MCP, with the connection's own key (a chat client has no
        API key to open the /v1 URL with)."""
        try:
            m = _CONTENT_URI.search(str(params.uri))
            if m is None:
                raise NotFound(f"Unknown resource '{str(params.uri)[:200]}'.", param="uri", code="unknown_resource")
            video_id = unquote(m["id"])
            if not _possible_id(video_id):
                raise _no_such_video()
            who = await self.who(ctx)
            data, media_type = await self._call(self._read, who, video_id, m["variant"] or "video")
        except MutoscopeError as e:
            raise _mcp_error(e) from None
        except Exception:
            # Never the exception's text (a failed query would carry its SQL and parameters).
            logger.exception("resources/read failed")
            raise _mcp_error(InternalError(GENERIC_ERROR)) from None
        return types.ReadResourceResult(contents=[types.BlobResourceContents(
            uri=str(params.uri), mime_type=media_type, blob=base64.b64encode(data).decode())])


class InternalError(MutoscopeError):
    """The unexpected, as a client sees it: the API's generic 500, nothing of the cause."""

    code = "internal_error"


def _no_such_video() -> NotFound:
    return NotFound("No video found with that id.", param="video_id", code="video_not_found")


def _possible_id(value: Any) -> bool:
    """Whether a value could be an id at all: ids are short server-made text, never holding a NUL."""
    return isinstance(value, str) and 0 < len(value) <= 128 and unstorable_at(value) is None


def _check_arguments(args: dict[str, Any]) -> None:
    """An id that cannot exist is not found, like one that does not; any other text that cannot be stored is
    a 400 naming the argument, before a query could choke on it."""
    for key in ("video_id",):
        if key in args and not _possible_id(args[key]):
            raise _no_such_video()
    refuse_unstorable(args)


def _mcp_error(e: MutoscopeError) -> MCPError:
    """A JSON-RPC error whose data is the API's envelope (with the HTTP status it would have had)."""
    envelope = error_body(e.message, e.type, e.param, e.code)
    envelope["error"]["status"] = e.status_code
    code = types.INTERNAL_ERROR if e.status_code >= 500 else types.INVALID_PARAMS
    return MCPError(code=code, message=envelope["error"]["message"], data=envelope)
