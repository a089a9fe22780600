"""integrations/open-webui/mutoscope_video.py against a live server, called the way open-webui calls a tool:
instantiate Tools, set its valves, await the method with an event emitter."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import inspect
import re
from pathlib import Path

import pytest

TOOL_FILE = Path(__file__).resolve().parents[2] / "integrations" / "open-webui" / "mutoscope_video.py"


def load_tools():
    spec = importlib.util.spec_from_file_location("mutoscope_video", TOOL_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Tools()


def configured(live, **valves):
    tools = load_tools()
    tools.valves = tools.Valves(base_url=live.base_url, api_key=live.api_key, num_inference_steps=2, **valves)
    return tools


def test_tool_file_has_open_webuis_shape():
    source = TOOL_FILE.read_text()
    assert re.match(r'"""\ntitle: .+\n', source) and "\nrequirements: openai" in source
    tools = load_tools()
    for name in ("generate_video", "remix_video"):
        method = getattr(tools, name)
        assert inspect.iscoroutinefunction(method)
        assert ":param prompt:" in method.__doc__  # open-webui builds the tool spec from these
        assert "__event_emitter__" in inspect.signature(method).parameters


@pytest.fixture(scope="module")
def generated(live):
    events: list[dict] = []

    async def emit(event: dict) -> None:
        events.append(event)

    tools = configured(live, embed_max_mb=200)
    result = asyncio.run(tools.generate_video("a lantern drifting on a lake", seconds="4", size="288x512",
                                              __event_emitter__=emit))
    return result, events


def test_generate_returns_an_embedded_player_and_context(live, generated):
    result, events = generated
    response, context = result
    body = response.body.decode()
    assert response.headers["content-disposition"] == "inline"
    vid = re.search(r"Video (video_\w+) is ready", context)[1]
    assert f"{live.base_url}/videos/{vid}" in context and f'href="{live.base_url}/videos/{vid}"' in body
    data = base64.b64decode(re.search(r'src="data:video/mp4;base64,([^"]+)"', body)[1])
    with live.http() as h:
        assert data == h.get(f"/v1/videos/{vid}/content").content
    assert events[0]["type"] == "status" and "queued" in events[0]["data"]["description"]
    assert events[-1]["data"] == {"description": f"Video {vid} is ready", "done": True}


def test_remix_and_plain_markdown(live, generated):
    vid = re.search(r"Video (video_\w+) is ready", generated[0][1])[1]
    text = asyncio.run(configured(live, embed_player=False).remix_video(vid, "the same lake at dawn"))
    new = re.search(r"\[(video_\w+)\]\(", text)[1]
    assert new != vid and f"({live.base_url}/videos/{new})" in text
    with live.http() as h:
        assert h.get(f"/v1/videos/{new}").json()["remixed_from_video_id"] == vid


def test_refusals_come_back_as_the_apis_message(live):
    tools = configured(live)
    tools.valves.api_key = "msk-wrong"
    assert asyncio.run(tools.generate_video("x")) == \
        "The video server refused the request: Incorrect API key provided."
    tools = configured(live)
    assert asyncio.run(tools.generate_video("x", size="640x480")).startswith(
        "The video server refused the request: Invalid size '640x480' for model 'sora-2'.")
