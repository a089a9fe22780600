"""
title: Mutoscope Video
author: Mutoscope
description: Generate videos with sound from a chat, on your own Mutoscope server (OpenAI Videos API).
requirements: openai>=1.109
version: 0.1.0
license: Apache-2.0
"""

# No `from __future__ import annotations`: open-webui execs this file as text, and pydantic must resolve
# the Valves annotations without the module being importable by name.
import asyncio
import base64
import html
from typing import Any, Awaitable, Callable, Optional

from openai import APIStatusError, AsyncOpenAI
from pydantic import BaseModel, Field

Emitter = Optional[Callable[[dict], Awaitable[None]]]


class Tools:
    class Valves(BaseModel):
        base_url: str = Field("http://127.0.0.1:8000", description="Your Mutoscope server, without /v1.")
        api_key: str = Field("", description="A Mutoscope API key (mutoscope keys create).")
        model: str = Field("sora-2", description="Model for new videos: sora-2 or sora-2-pro.")
        num_inference_steps: Optional[int] = Field(
            None, description="Mutoscope extension: fewer denoising steps render faster and rougher (empty: model "
                              "default).")
        timeout_seconds: int = Field(900, description="Longest wait for one video.")
        embed_player: bool = Field(True, description="Show a video player in the chat (the MP4 is embedded).")
        embed_max_mb: int = Field(20, description="Larger videos are linked instead of embedded.")

    def __init__(self):
        self.valves = self.Valves()

    async def generate_video(self, prompt: str, seconds: str = "4", size: str = "720x1280",
                             __event_emitter__: Emitter = None) -> Any:
        """
        Generate a short video with sound from a text prompt and show it in the chat. Takes from seconds to a
        few minutes. Describe the shot: subject and action, setting, camera movement, lighting, style, sounds.
        :param prompt: What the video shows, written like a shot description.
        :param seconds: Length in seconds: "4", "8" or "12".
        :param size: "720x1280" for portrait or "1280x720" for landscape.
        """
        extra = {"num_inference_steps": self.valves.num_inference_steps} if self.valves.num_inference_steps else None
        return await self._run(lambda c: c.videos.create(prompt=prompt, model=self.valves.model, seconds=seconds,
                                                         size=size, extra_body=extra), __event_emitter__)

    async def remix_video(self, video_id: str, prompt: str, __event_emitter__: Emitter = None) -> Any:
        """
        Make a new version of a video made earlier in this chat, with a changed prompt (same length and size).
        :param video_id: The id of the earlier video, e.g. video_68d7...
        :param prompt: The new prompt, e.g. the same scene at night.
        """
        return await self._run(lambda c: c.videos.remix(video_id, prompt=prompt), __event_emitter__)

    async def _run(self, start: Callable[[AsyncOpenAI], Awaitable[Any]], emit: Emitter) -> Any:
        async def status(text: str, done: bool = False) -> None:
            if emit is not None:
                await emit({"type": "status", "data": {"description": text, "done": done}})

        base = self.valves.base_url.rstrip("/")
        client = AsyncOpenAI(base_url=f"{base}/v1", api_key=self.valves.api_key or "missing", max_retries=1,
                             timeout=120)
        try:
            video = await start(client)
            await status(f"Video {video.id} queued")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.valves.timeout_seconds
            while video.status in ("queued", "in_progress"):
                if loop.time() > deadline:
                    await status(f"Still rendering after {self.valves.timeout_seconds} s", done=True)
                    return (f"Video {video.id} is still rendering ({video.progress}%). It will appear at "
                            f"{base}/videos/{video.id}")
                await asyncio.sleep(1)
                video = await client.videos.retrieve(video.id)
                await status(f"Rendering video {video.id}: {video.progress}%")
            if video.status != "completed":
                message = video.error.message if video.error else "unknown error"
                await status(f"Video {video.id} failed", done=True)
                return f"The video could not be made: {message}"
            await status(f"Video {video.id} is ready", done=True)
            return await self._present(client, base, video)
        except APIStatusError as e:
            await status("The video server refused the request", done=True)
            return f"The video server refused the request: {_message(e)}"
        finally:
            await client.close()

    async def _present(self, client: AsyncOpenAI, base: str, video: Any) -> Any:
        page, mp4 = f"{base}/videos/{video.id}", f"{base}/v1/videos/{video.id}/content"
        context = (f"Video {video.id} is ready ({video.seconds} s, {video.size}). Its page: {page} (sign in with the "
                   f"API key to watch it). Give the user this link and the id {video.id} for remixes.")
        markdown = f"**Video ready:** [{video.id}]({page})\n\n{context}"
        if not self.valves.embed_player:
            return markdown
        # /v1 content needs the API key, which the browser does not have: embed the file itself.
        data = (await client.videos.download_content(video.id)).read()
        if len(data) > self.valves.embed_max_mb * 1024 * 1024:
            return markdown + f"\n\nMP4 (with the API key): {mp4}"
        try:
            from fastapi.responses import HTMLResponse
        except ImportError:  # outside open-webui
            return markdown
        src = "data:video/mp4;base64," + base64.b64encode(data).decode()
        page_html = (f'<video controls playsinline style="max-width:100%;max-height:80vh" src="{src}"></video>'
                     f'<p><a href="{html.escape(page)}" target="_blank">{html.escape(video.id)}</a> · '
                     f'{html.escape(video.prompt or "")}</p>')
        return HTMLResponse(content=page_html, headers={"Content-Disposition": "inline"}), context


def _message(e: APIStatusError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    return error.get("message") if isinstance(error, dict) and error.get("message") else str(e)
