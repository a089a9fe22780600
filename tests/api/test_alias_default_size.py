"""A model reached through one of OpenAI's names answers OpenAI's default size to a create without `size`, and
a server whose alias would answer a size outside OpenAI's list refuses to start, naming the entry."""

from __future__ import annotations

import json

import pytest

from mutoscope.engine.registry import DEFAULT_REGISTRY_PATH
from tests.conftest import TEST_ALIASES, LiveServer

HOUSE = """
[[models]]
name = "house-ltx2"
family = "ltx2"
weights = "builtin:tiny-ltx2"
sizes = {sizes}
default_size = "288x512"
seconds = ["4"]
steps = 2
guidance = 1.0
memory = "full"
dtype = "float32"
"""


def models_file(tmp_path, sizes: list[str]):
    path = tmp_path / "models.toml"
    path.write_text(DEFAULT_REGISTRY_PATH.read_text() + HOUSE.format(sizes=json.dumps(sizes)))
    return str(path)


def test_openais_name_gets_openais_default_and_the_models_own_name_its_own(tmp_path):
    srv = LiveServer(tmp_path / "data", MUTOSCOPE_MODELS_FILE=models_file(tmp_path, ["720x1280", "288x512"]),
                     MUTOSCOPE_MODEL_ALIASES=json.dumps({**TEST_ALIASES, "sora-2": "house-ltx2"})).start()
    try:
        client = srv.client()
        via_openai = client.videos.create(prompt="a quiet street", seconds="4")
        own = client.videos.create(prompt="a quiet street", model="house-ltx2", seconds="4")
        for v in (via_openai, own):
            client.videos.delete(v.id)
        assert (via_openai.size, own.size) == ("720x1280", "288x512")
    finally:
        srv.stop()


def test_an_alias_answering_outside_openais_sizes_stops_the_server_at_start(tmp_path):
    srv = LiveServer(tmp_path / "data", MUTOSCOPE_MODELS_FILE=models_file(tmp_path, ["288x512"]),
                     MUTOSCOPE_MODEL_ALIASES=json.dumps({**TEST_ALIASES, "sora-2": "house-ltx2"}))
    with pytest.raises(RuntimeError) as e:
        srv.start(timeout=60)
    assert "house-ltx2" in str(e.value) and "'sora-2'" in str(e.value) and "'288x512'" in str(e.value)
    srv.stop()
