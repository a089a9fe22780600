"""The two transports of the MCP tools: streamable HTTP at /mcp inside `serve`, and stdio for `mutoscope mcp`."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from mcp.server import Server
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Receive, Scope, Send

from mutoscope import __version__
from mutoscope.accounts.service import Principal, authenticate
from mutoscope.assistants.tools import INSTRUCTIONS, VideoTools
from mutoscope.errors import MutoscopeError
from mutoscope.protocol.base import error_body
from mutoscope.services import Services
from mutoscope.videos.commands import VideoCommands
from mutoscope.videos.queries import VideoQueries

logger = logging.getLogger(__name__)


def build_mcp_server(tools: VideoTools) -> Server:
    """The low-level SDK server: the tool schemas are written by hand (for a model to read) and errors are
    shaped by `VideoTools`, which MCPServer's signature-derived schemas and wrapped messages would not allow."""
    return Server("mutoscope", version=__version__, title="Mutoscope", instructions=INSTRUCTIONS,
                  description="Video generation with sound, from text, images and earlier videos.",
                  on_list_tools=tools.list_tools, on_call_tool=tools.call_tool,
                  on_list_resources=tools.list_resources, on_read_resource=tools.read_resource)


class _KeyUser(AuthenticatedUser):
    """The caller of one /mcp request. The SDK's session manager keeps a session to the credential that
    opened it (client_id = the key's id, subject = the user), so a session id alone is worth nothing."""

    def __init__(self, principal: Principal):
        super().__init__(AccessToken(token="", client_id=principal.key_id, subject=principal.user_id, scopes=[]))
        self.principal = principal


def _authenticate(sessions: sessionmaker[Session], token: str | None) -> Principal:
    with sessions() as s:
        return authenticate(s, token)


class HttpEndpoint:
    """/mcp as an ASGI app: every request must carry an API key (`Authorization: Bearer`, as on /v1);
    a missing or bad one is answered 401 with the API's error envelope before MCP sees the request."""

    def __init__(self, services: Services, max_body: int = 4 * 1024 * 1024):
        """`services`: the server's one container, the same `/v1` and the pages call."""
        self.sessions, self.public_url = services.sessions, services.settings.public_url
        self.tools = VideoTools(services.videos, services.video_queries, self._who, self._base_url)
        self.server = build_mcp_server(self.tools)
        # SSE responses, not JSON: progress notifications ride the call's own stream. DNS-rebinding checks are
        # off because a browser page cannot supply the API key every request needs.
        # The body limit is the API's upload limit: create_video may carry its first frame as a data URL.
        self.manager = StreamableHTTPSessionManager(app=self.server, json_response=False,
                                                    max_request_body_size=max_body)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self.manager.run():
            try:
                yield
            finally:
                self.tools.shutting_down = True  # the calls cancelled next are the server's, not the clients'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        try:
            who = await anyio.to_thread.run_sync(_authenticate, self.sessions,
                                                 token.strip() if scheme.lower() == "bearer" else None)
        except MutoscopeError as e:
            await _refuse(send, e)
            return
        scope["user"] = _KeyUser(who)
        await self.manager.handle_request(scope, receive, send)

    async def _who(self, ctx: ServerRequestContext) -> Principal:
        user = getattr(ctx.request, "scope", {}).get("user")
        if not isinstance(user, _KeyUser):  # every request passed __call__; this would be a wiring bug
            raise RuntimeError("an /mcp request without an authenticated caller")
        return user.principal

    def _base_url(self, ctx: ServerRequestContext) -> str:
        if self.public_url:
            return self.public_url
        request = ctx.request
        return str(request.base_url) if request is not None else ""


async def _refuse(send: Send, e: MutoscopeError) -> None:
    payload = json.dumps(error_body(e.message, e.type, e.param, e.code)).encode()
    await send({"type": "http.response.start", "status": e.status_code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"www-authenticate", b'Bearer realm="mutoscope"')]})
    await send({"type": "http.response.body", "body": payload})


class StdioEndpoint:
    """`mutoscope mcp`: one user's key, checked again on every call so a revoked key stops working at once."""

    def __init__(self, videos: VideoCommands, queries: VideoQueries, sessions: sessionmaker[Session], api_key: str,
                 base_url: str):
        self.sessions, self.api_key, self.base = sessions, api_key, base_url
        self.tools = VideoTools(videos, queries, self._who, lambda ctx: self.base)
        self.server = build_mcp_server(self.tools)

    def check_key(self) -> Principal:
        return _authenticate(self.sessions, self.api_key)

    async def _who(self, ctx: ServerRequestContext) -> Principal:
        return await anyio.to_thread.run_sync(self.check_key)

    async def serve(self, on_start: Callable[[], None] | None = None) -> None:
        async with stdio_server() as (read_stream, write_stream):
            if on_start is not None:
                on_start()
            await self.server.run(read_stream, write_stream, self.server.create_initialization_options())
