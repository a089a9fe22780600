"""The MCP tools in this process (fast tier): the official mcp client connected in memory to the server
`mutoscope mcp` builds, over the in-process app's video commands and queries. What the transports add (streamable HTTP,
stdio, a worker finishing the video) is in the live tests beside this file."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client

from mutoscope.assistants.server import StdioEndpoint
from tests.mcp.conftest import SHORT, TOOLS, text

BASE = "http://videos.example:9000"


@pytest.fixture(scope="module")
def endpoint(app_server):
    def of(key: str) -> StdioEndpoint:
        services = app_server.app.state.services
        return StdioEndpoint(services.videos, services.video_queries, services.sessions, key, BASE)

    return of


def call(server, *calls: tuple[str, dict]):
    async def go():
        async with Client(server) as c:
            tools = (await c.list_tools()).tools
            return tools, [await c.call_tool(name, args) for name, args in calls]

    return anyio.run(go)


def test_tools_list_and_a_create_that_does_not_wait(app_server, endpoint):
    tools, (made, listed) = call(endpoint(app_server.api_key).server,
                                 ("create_video", {"prompt": "a paper lantern", **SHORT, "wait": False}),
                                 ("list_videos", {"limit": 1}))
    assert {t.name for t in tools} == TOOLS
    assert not made.is_error, text(made)
    video = made.structured_content["video"]
    assert video["status"] == "queued" and made.structured_content["page_url"] == f"{BASE}/videos/{video['id']}"
    _, (got,) = call(endpoint(app_server.api_key).server, ("get_video", {"video_id": video["id"]}))
    assert got.structured_content["video"]["id"] == video["id"]
    assert listed.structured_content["data"][0]["id"] == video["id"]


def test_refusals_are_tool_errors_with_the_apis_message(app_server, endpoint):
    _, (bad, missing) = call(endpoint(app_server.api_key).server,
                             ("create_video", {"prompt": "a red door", "size": "640x480"}),
                             ("get_video", {"video_id": "video_nope"}))
    assert bad.is_error and text(bad).startswith("Invalid size '640x480' for model 'sora-2'.")
    assert missing.is_error and "video_nope" in text(missing)


def test_another_users_video_is_not_found(app_server, endpoint):
    r = app_server.http().post("/v1/admin/users", json={"name": "mcp-bob"})
    bob = r.json()["api_key"]
    _, (made,) = call(endpoint(app_server.api_key).server,
                      ("create_video", {"prompt": "alice's own", **SHORT, "wait": False}))
    vid = made.structured_content["video"]["id"]
    _, (seen,) = call(endpoint(bob).server, ("get_video", {"video_id": vid}))
    assert seen.is_error and vid in text(seen)
    # Not found, as for an id that never existed: a 403 would tell bob the video is there.
    error = seen.structured_content["error"]
    assert (error["status"], error["code"]) == (404, "video_not_found")


def test_edit_and_remix_take_an_edit_strength_held_to_the_apis_range(app_server, endpoint):
    server = endpoint(app_server.api_key).server
    tools, (made,) = call(server, ("create_video", {"prompt": "a kite at noon", **SHORT, "wait": False}))
    schemas = {t.name: t.input_schema for t in tools}
    for name in ("edit_video", "remix_video"):
        assert schemas[name]["properties"]["edit_strength"]["maximum"] == 1, name
    assert "edit_strength" not in schemas["create_video"]["properties"]
    vid = made.structured_content["video"]["id"]
    # The API's own check answers (before the source's state is looked at): the value reached it.
    _, (edit, remix) = call(server, ("edit_video", {"video_id": vid, "prompt": "x", "edit_strength": 1.5}),
                            ("remix_video", {"video_id": vid, "prompt": "x", "edit_strength": 1.5}))
    for result in (edit, remix):
        assert result.is_error and "Invalid value for 'edit_strength'" in text(result), text(result)
