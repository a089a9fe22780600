"""`mutoscope mcp` over stdio with its embedded worker, driven by the official mcp client as a desktop app would."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest
from mcp import Client

from tests.conftest import server_env
from tests.mcp.conftest import FAST, SHORT, SLOW, TOOLS, stdio_params, text

PUBLIC = "http://videos.example:9000"
ENV = {"MUTOSCOPE_DEFAULT_PLAN": "pro", "MUTOSCOPE_PUBLIC_URL": PUBLIC}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    data = tmp_path_factory.mktemp("stdio") / "data"

    def user(name: str) -> str:
        out = subprocess.run([sys.executable, "-m", "mutoscope", "users", "create", name], env=server_env(data, **ENV),
                             capture_output=True, text=True, check=True, timeout=300)
        return out.stdout.strip().splitlines()[-1]

    return data, user("alice"), user("bob")


@pytest.fixture(scope="module")
def session(home):
    """One stdio session of alice's: a video made with progress, a cancelled wait, bad arguments."""
    data, alice, _ = home
    out: dict = {"progress": []}

    async def progress(p, total, message):
        out["progress"].append(p)

    async def go():
        async with Client(stdio_params(data, alice, **ENV)) as c:
            out["tools"] = (await c.list_tools()).tools
            out["made"] = await c.call_tool("create_video", {"prompt": "a kite over dunes", **SHORT,
                                                             "num_inference_steps": 8}, progress_callback=progress)
            slow = await c.call_tool("create_video", {"prompt": "an endless job", **SHORT, **SLOW, "wait": False})
            out["slow"] = slow.structured_content["video"]["id"]
            with anyio.CancelScope() as scope:
                async def cancel_once_rendering(p, total, message):
                    if p > 0:
                        scope.cancel()
                with anyio.fail_after(180):
                    await c.call_tool("wait_for_video", {"video_id": out["slow"]},
                                      progress_callback=cancel_once_rendering)
            out["cancelled_caught"] = scope.cancelled_caught
            with anyio.fail_after(60):
                while not (gone := await c.call_tool("get_video", {"video_id": out["slow"]})).is_error:
                    await anyio.sleep(0.5)
            out["gone"] = gone
            out["next"] = await c.call_tool("create_video", {"prompt": "after the cancel", **SHORT, **FAST})
            out["bad"] = await c.call_tool("create_video", {"prompt": "a red door", "size": "640x480"})

    anyio.run(go)
    return out


def test_stdio_lists_the_same_tools(session):
    assert {t.name for t in session["tools"]} == TOOLS


def test_stdio_create_reports_progress_and_links(session):
    made = session["made"]
    assert not made.is_error, text(made)
    assert len(session["progress"]) >= 3 and session["progress"][-1] == 100
    vid = made.structured_content["video"]["id"]
    assert made.structured_content["page_url"] == f"{PUBLIC}/videos/{vid}"
    assert any(c.type == "image" for c in made.content)
    assert next(c for c in made.content if c.type == "resource_link").uri == f"{PUBLIC}/v1/videos/{vid}/content"


def test_stdio_cancelled_wait_deletes_the_job_and_the_worker_moves_on(session):
    assert session["cancelled_caught"]
    assert text(session["gone"]) == f"No video found with id '{session['slow']}'."
    assert session["next"].structured_content["video"]["status"] == "completed", text(session["next"])


def test_stdio_bad_arguments_are_plain_tool_errors(session):
    bad = session["bad"]
    assert bad.is_error and text(bad) == "Invalid size '640x480' for model 'sora-2'. Supported sizes: 1280x720, 720x1280, 512x288, 288x512."


def test_stdio_other_users_video_is_not_found(home, session):
    data, _, bob = home
    vid = session["made"].structured_content["video"]["id"]

    async def go():
        async with Client(stdio_params(data, bob, "--no-worker", **ENV)) as c:
            return await c.call_tool("get_video", {"video_id": vid})

    result = anyio.run(go)
    assert result.is_error and text(result) == f"No video found with id '{vid}'."


def test_stdio_bad_key_is_refused_before_serving(home):
    data, _, _ = home
    out = subprocess.run([sys.executable, "-m", "mutoscope", "mcp", "--no-worker"], input="", capture_output=True,
                         text=True, timeout=120, env=server_env(data, MUTOSCOPE_API_KEY="msk-wrong"))
    assert out.returncode == 1 and "Incorrect API key provided." in out.stderr and out.stdout == ""

    async def go():
        async with Client(stdio_params(data, "msk-wrong", "--no-worker")) as c:
            await c.list_tools()

    with pytest.raises(Exception):
        anyio.run(go)
