"""MCP fixtures: one live `mutoscope serve` for this folder, and official-SDK clients for both transports."""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.conftest import serve_live, server_env

# A long job is 400 steps (minutes on CPU); a short one 2.
FAST = {"num_inference_steps": 2}
SLOW = {"num_inference_steps": 400}
SHORT = {"seconds": "4", "size": "512x288"}
TOOLS = {"create_video", "get_video", "wait_for_video", "remix_video", "extend_video", "edit_video",
         "list_videos", "download_video", "delete_video"}


@pytest.fixture(scope="package")
def live(tmp_path_factory):
    yield from serve_live(tmp_path_factory, "mcp")


@pytest.fixture(scope="package")
def mallory(live) -> str:
    return live.cli("users", "create", "mallory").stdout.strip().splitlines()[-1]


@asynccontextmanager
async def http_client(url: str, key: str, mode: str = "auto"):
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client


def stdio_params(data_dir, key: str, *args: str, **env: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "mutoscope", "mcp", *args],
                                 env=server_env(data_dir, MUTOSCOPE_API_KEY=key, **env))


def text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")
