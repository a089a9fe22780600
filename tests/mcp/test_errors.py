"""Every MCP failure in the API's error envelope, on PostgreSQL (where a NUL in a query is an error whose text
is the SQL statement): ids that cannot exist are "not found", other text that cannot be stored is a 400 naming
the argument, and nothing of the server's internals ever reaches the client."""

from __future__ import annotations

import re

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import LiveServer
from tests.mcp.conftest import http_client, text

INTERNALS = re.compile(r"psycopg|SELECT|sqlalchemy|Traceback|\[SQL|/src/mutoscope|parameters", re.IGNORECASE)


@pytest.fixture(scope="module")
def pg_live(tmp_path_factory, pg_module_url):
    srv = LiveServer(tmp_path_factory.mktemp("mcp-pg") / "data", MUTOSCOPE_DATABASE_URL=pg_module_url).start(timeout=300)
    yield srv
    srv.stop()


def _envelope(error: dict, status: int, code: str) -> None:
    assert set(error) == {"message", "type", "param", "code", "status"}
    assert (error["status"], error["code"]) == (status, code)
    assert not INTERNALS.search(error["message"])


def test_resources_read_never_leaks_the_failure(pg_live):
    base = pg_live.base_url

    async def go():
        found = []
        async with http_client(base + "/mcp", pg_live.api_key) as c:
            for uri in (f"{base}/v1/videos/video_a%00b/content", f"{base}/v1/videos/video_a%00b/content?variant=thumbnail",
                        f"{base}/v1/videos/{'x' * 5000}/content", f"{base}/v1/videos/video_nope/content",
                        f"{base}/elsewhere"):
                try:
                    await c.read_resource(uri)
                    found.append((uri, None))
                except MCPError as e:
                    found.append((uri, e))
        return found

    for uri, e in anyio.run(go):
        assert e is not None, uri
        assert not INTERNALS.search(str(e.error.message)), (uri, e.error.message)
        envelope = e.error.data["error"]
        if uri.endswith("/elsewhere"):
            _envelope(envelope, 404, "unknown_resource")
        else:
            _envelope(envelope, 404, "video_not_found")
    assert "Traceback" not in pg_live.log.read_text()


def test_tools_answer_not_found_for_ids_that_cannot_exist(pg_live):
    async def go():
        async with http_client(pg_live.base_url + "/mcp", pg_live.api_key) as c:
            return [await c.call_tool(tool, {"video_id": vid, **extra})
                    for tool, extra in (("get_video", {}), ("download_video", {}), ("delete_video", {}),
                                        ("remix_video", {"prompt": "again"}), ("wait_for_video", {"timeout_seconds": 1}))
                    for vid in ("video_a\x00b", "x" * 5000)]

    for result in anyio.run(go):
        assert result.is_error
        _envelope(result.structured_content["error"], 404, "video_not_found")
        assert not INTERNALS.search(text(result))


def test_other_unstorable_arguments_are_a_400_naming_them(pg_live):
    async def go():
        async with http_client(pg_live.base_url + "/mcp", pg_live.api_key) as c:
            return (await c.call_tool("create_video", {"prompt": "a\x00b"}),
                    await c.call_tool("list_videos", {"after": "video_a\x00b"}),
                    await c.call_tool("no_such_tool", {}))

    prompt, listed, unknown = anyio.run(go)
    _envelope(prompt.structured_content["error"], 400, "invalid_value")
    assert prompt.structured_content["error"]["param"] == "prompt"
    assert listed.is_error and listed.structured_content["error"]["status"] == 400
    assert listed.structured_content["error"]["param"] == "after"
    _envelope(unknown.structured_content["error"], 404, "unknown_tool")
    assert "Traceback" not in pg_live.log.read_text()
