"""/mcp inside `mutoscope serve`, driven by the official mcp client over streamable HTTP."""

from __future__ import annotations

import base64
import io

import anyio
import httpx
import pytest
from PIL import Image

from mutoscope.assistants.tools import MAX_INLINE_BYTES
from tests.conftest import wait_for
from tests.mcp.conftest import FAST, SHORT, SLOW, TOOLS, http_client, text


def url(live) -> str:
    return live.base_url + "/mcp"


def test_tools_have_schemas_and_descriptions(live):
    async def go():
        async with http_client(url(live), live.api_key) as c:
            return (await c.list_tools()).tools

    tools = {t.name: t for t in anyio.run(go)}
    assert set(tools) == TOOLS
    for t in tools.values():
        assert len(t.description) > 40 and t.input_schema["type"] == "object"
        assert t.input_schema["additionalProperties"] is False
        for name, prop in t.input_schema["properties"].items():
            assert prop.get("description"), f"{t.name}.{name} has no description"
    create = tools["create_video"].input_schema
    assert create["required"] == ["prompt"]
    assert {"prompt", "model", "size", "seconds", "image_url", "characters", "wait"} <= set(create["properties"])
    assert tools["extend_video"].input_schema["required"] == ["video_id", "prompt", "seconds"]
    assert tools["get_video"].annotations.read_only_hint is True


@pytest.fixture(scope="module")
def made(live):
    """One video made through create_video, waiting with progress notifications."""
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(p, total, message):
        seen.append((p, total, message))

    async def go():
        async with http_client(url(live), live.api_key) as c:
            return await c.call_tool("create_video", {"prompt": "a paper boat on a rainy street", **SHORT,
                                                      "num_inference_steps": 8}, progress_callback=progress)

    result = anyio.run(go)
    return result, seen


def test_create_waits_reporting_progress(live, made):
    result, seen = made
    assert not result.is_error, text(result)
    values = [p for p, _, _ in seen]
    assert len(values) >= 3 and values == sorted(values) and values[-1] == 100, seen
    assert all(total == 100 for _, total, _ in seen)
    # The messages say what the job is doing, not only a number.
    phases = ("loading model", "denoising", "decoding", "encoding", "signing")
    assert any(w in (m or "") for _, _, m in seen for w in phases), seen
    video = result.structured_content["video"]
    assert video["status"] == "completed" and video["size"] == "512x288" and video["seconds"] == "4"


def test_result_carries_page_thumbnail_and_mp4_link(live, made):
    result, _ = made
    vid = result.structured_content["video"]["id"]
    page = f"{live.base_url}/videos/{vid}"
    assert page in text(result) and result.structured_content["page_url"] == page
    image = next(c for c in result.content if c.type == "image")
    assert image.mime_type == "image/webp"
    assert Image.open(io.BytesIO(base64.b64decode(image.data))).format == "WEBP"
    link = next(c for c in result.content if c.type == "resource_link")
    assert link.uri == f"{live.base_url}/v1/videos/{vid}/content" and link.mime_type == "video/mp4"
    with live.http() as h:
        mp4 = h.get(link.uri)
    assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp"

    thumb_uri = result.structured_content["thumbnail_url"]

    async def go():
        async with http_client(url(live), live.api_key) as c:
            read = await c.read_resource(thumb_uri)
            down = await c.call_tool("download_video", {"video_id": vid, "variant": "spritesheet"})
            whole = await c.call_tool("download_video", {"video_id": vid})
            got = await c.call_tool("get_video", {"video_id": vid})
            listed = await c.call_tool("list_videos", {"limit": 5})
            return read, down, whole, got, listed

    read, down, whole, got, listed = anyio.run(go)
    with live.http() as h:
        assert base64.b64decode(read.contents[0].blob) == h.get(thumb_uri).content
        sheet = h.get(f"/v1/videos/{vid}/content", params={"variant": "spritesheet"}).content
    embedded = next(c for c in down.content if c.type == "resource")
    assert embedded.resource.mime_type == "image/jpeg" and base64.b64decode(embedded.resource.blob) == sheet
    if len(mp4.content) <= MAX_INLINE_BYTES:
        assert base64.b64decode(next(c for c in whole.content if c.type == "resource").resource.blob) == mp4.content
    else:  # random-weight noise compresses badly: the file is only linked
        assert whole.is_error and "too large to send through MCP; use its link instead" in text(whole)
    assert got.structured_content["video"]["status"] == "completed"
    assert vid in text(listed) and listed.structured_content["data"][0]["id"] == vid


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_cancelling_the_wait_cancels_the_job(live, mode):
    """The client gives up on a waiting create_video: the video is deleted, its worker stops, the next job runs."""
    ids: list[str] = []

    async def go():
        async with http_client(url(live), live.api_key, mode=mode) as c:
            with anyio.CancelScope() as scope:
                async def progress(p, total, message):
                    if p > 0:
                        scope.cancel()  # rendering has started: give up as a client would
                    if not ids:
                        with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {live.api_key}"}) as h:
                            ids.append(h.get("/v1/videos", params={"limit": 1}).json()["data"][0]["id"])
                with anyio.fail_after(120):
                    await c.call_tool("create_video", {"prompt": f"an endless job ({mode})", **SHORT, **SLOW},
                                      progress_callback=progress)
            assert scope.cancelled_caught

    anyio.run(go)
    vid = ids[0]
    with live.http() as h:
        wait_for(lambda: h.get(f"/v1/videos/{vid}").status_code == 404, timeout=30)
        # The worker is free again: a short job completes long before 400 steps would have.
        nxt = h.post("/v1/videos", json={"prompt": "after the cancel", **SHORT, **FAST}).json()
        done = wait_for(lambda: (v := h.get(f"/v1/videos/{nxt['id']}").json())["status"] in ("completed", "failed")
                        and v, timeout=120)
    assert done["status"] == "completed", done


def test_other_users_video_is_not_found(live, made, mallory):
    vid = made[0].structured_content["video"]["id"]
    with live.http(mallory) as h:
        api = h.get(f"/v1/videos/{vid}").json()["error"]["message"]

    async def go():
        async with http_client(url(live), mallory) as c:
            return [await c.call_tool(name, {"video_id": vid, "prompt": "mine now", "seconds": "4"})
                    for name in ("get_video", "remix_video", "download_video", "delete_video")]

    for result in anyio.run(go):
        assert result.is_error and text(result) == api == f"No video found with id '{vid}'."
    with live.http() as h:
        assert h.get(f"/v1/videos/{vid}").json()["status"] == "completed"  # untouched


def test_bad_key_is_refused_at_connect(live):
    r = httpx.post(url(live), headers={"Authorization": "Bearer msk-wrong"},
                   json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "Incorrect API key provided."
    assert httpx.post(url(live), json={}).json()["error"]["code"] == "missing_api_key"

    async def go():
        async with http_client(url(live), "msk-wrong") as c:
            await c.list_tools()

    with pytest.raises(Exception):  # the client cannot even negotiate: every POST is answered 401
        anyio.run(go)


@pytest.mark.parametrize("args, api_body", [
    ({"prompt": "a red door", "size": "640x480"}, {"prompt": "a red door", "size": "640x480"}),
    ({"prompt": "a red door", "seconds": 5}, {"prompt": "a red door", "seconds": "5"}),
    ({"size": "1280x720"}, {"size": "1280x720"}),
    ({"prompt": "a red door", "num_inference_steps": 0}, {"prompt": "a red door", "num_inference_steps": 0}),
    ({"prompt": "a red door", "image_url": "ftp://example.com/a.png"},
     {"prompt": "a red door", "input_reference": {"image_url": "ftp://example.com/a.png"}}),
    ({"prompt": "a red door", "audio_url": "ftp://example.com/a.wav"},
     {"prompt": "a red door", "audio_reference": {"audio_url": "ftp://example.com/a.wav"}}),
])
def test_bad_arguments_are_tool_errors_with_the_apis_message(live, args, api_body):
    with live.http() as h:
        api = h.post("/v1/videos", json=api_body)
    assert api.status_code == 400

    async def go():
        async with http_client(url(live), live.api_key) as c:
            return await c.call_tool("create_video", args)

    result = anyio.run(go)
    assert result.is_error
    assert text(result) == api.json()["error"]["message"]
    assert result.structured_content["error"]["code"] == api.json()["error"]["code"]
    assert "Traceback" not in text(result) and "File \"" not in text(result)


def test_tool_arguments_of_its_own_are_checked_like_the_api(live):
    with live.http() as h:
        api = h.get("/v1/videos", params={"limit": 1000}).json()["error"]["message"]

    async def go():
        async with http_client(url(live), live.api_key) as c:
            return (await c.call_tool("list_videos", {"limit": 1000}),
                    await c.call_tool("get_video", {}),
                    await c.call_tool("no_such_tool", {}))

    limit, missing, unknown = anyio.run(go)
    assert limit.is_error and text(limit) == api
    assert missing.is_error and text(missing) == "Missing required parameter: 'video_id'."
    assert unknown.is_error and "Unknown tool 'no_such_tool'" in text(unknown)


def test_a_session_belongs_to_the_key_that_opened_it(live, mallory):
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    opened = httpx.post(url(live), json=init, headers={**headers, "Authorization": f"Bearer {live.api_key}"})
    assert opened.status_code == 200
    sid = opened.headers["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    session = {**headers, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"}
    stolen = httpx.post(url(live), json=listing, headers={**session, "Authorization": f"Bearer {mallory}"})
    assert stolen.status_code == 404
    own = httpx.post(url(live), json=listing, headers={**session, "Authorization": f"Bearer {live.api_key}"})
    assert own.status_code == 200 and "create_video" in own.text


def test_resources_list_the_callers_finished_videos(live, made, mallory):
    vid = made[0].structured_content["video"]["id"]

    async def go(key):
        async with http_client(url(live), key) as c:
            return [r.uri for r in (await c.list_resources()).resources]

    assert f"{live.base_url}/v1/videos/{vid}/content" in anyio.run(go, live.api_key)
    assert anyio.run(go, mallory) == []


def test_remix_extend_and_edit_make_linked_videos(live, made):
    src = made[0].structured_content["video"]

    async def go():
        async with http_client(url(live), live.api_key) as c:
            return (await c.call_tool("remix_video", {"video_id": src["id"], "prompt": "the boat at night", **FAST}),
                    await c.call_tool("extend_video", {"video_id": src["id"], "prompt": "it drifts away",
                                                       "seconds": 4, **FAST}),
                    await c.call_tool("edit_video", {"video_id": src["id"], "prompt": "as a watercolor", **FAST}))

    remix, extend, edit = (r.structured_content["video"] for r in anyio.run(go))
    assert all(v["status"] == "completed" for v in (remix, extend, edit)), (remix, extend, edit)
    assert remix["remixed_from_video_id"] == src["id"] and remix["prompt"] == "the boat at night"
    assert extend["extended_from_video_id"] == src["id"] and extend["seconds"] == "8"
    assert edit["edited_from_video_id"] == src["id"] and edit["size"] == src["size"]


def test_first_frame_as_data_url_then_delete_cancels(live):
    buf = io.BytesIO()
    Image.new("RGB", (640, 360), (200, 30, 30)).save(buf, format="PNG")
    frame = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    async def go():
        async with http_client(url(live), live.api_key) as c:
            queued = await c.call_tool("create_video", {"prompt": "a red wall", **SHORT, **SLOW, "image_url": frame,
                                                        "wait": False})
            vid = queued.structured_content["video"]["id"]
            return queued, await c.call_tool("delete_video", {"video_id": vid})

    queued, deleted = anyio.run(go)
    assert not queued.is_error, text(queued)
    vid = queued.structured_content["video"]["id"]
    assert queued.structured_content["video"]["status"] in ("queued", "in_progress")
    assert f'call wait_for_video with video_id "{vid}"' in text(queued)
    assert text(deleted) == f"Deleted video {vid}." and deleted.structured_content["deleted"] is True
    with live.http() as h:
        wait_for(lambda: h.get(f"/v1/videos/{vid}").status_code == 404, timeout=30)
