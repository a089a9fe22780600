"""A model that cannot re-generate a source clip (MiniMax-H3: its modular pipeline has no partial-noise entry
point) refuses an edit and a remix at create, with a 400 naming the param, before anything is queued or
charged: the rule comes from the family's class attribute through the catalog, so the API-only process
decides it without torch. In-process server, the official openai SDK, `tiny-minimax-h3`."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest
from sqlalchemy import create_engine, text

from tests.api.test_extensions_edits import by_reference, clip_mp4

H3 = "tiny-minimax-h3"


@pytest.fixture(scope="module")
def client(app_server):
    return app_server.client()


@pytest.fixture(scope="module")
def source(app_server, client):
    """A MiniMax-H3 video, marked completed in the database (nothing renders in-process): the remix and
    edit-by-id routes need a finished source, and their refusal must come before its file is read."""
    v = client.videos.create(prompt="a lantern in the fog", model=H3, seconds="4", size="256x128")
    engine = create_engine(app_server.settings.db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE videos SET status = 'completed', progress = 100 WHERE id = :id"), {"id": v.id})
    engine.dispose()
    assert client.videos.retrieve(v.id).status == "completed"
    return v


def state(client) -> tuple[dict, list[str]]:
    return client.get("/usage", cast_to=object), [v.id for v in client.videos.list(limit=100).data]


def refused(e: pytest.ExceptionInfo, param: str, verb: str) -> None:
    body = e.value.body
    assert e.value.status_code == 400 and body["type"] == "invalid_request_error", body
    assert body["param"] == param and body["code"] == "edit_not_supported", body
    assert f"'{H3}' cannot {verb} videos" in body["message"]


def test_the_catalog_says_which_models_edit_without_torch(tmp_path):
    """What the API process reads: the catalog's ModelInfo, built from the registry and the family's class
    attribute in a fresh interpreter that never imports torch."""
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mutoscope.engine.catalog import Catalog\n"
        "from mutoscope.engine.registry import load_registry\n"
        f"c = Catalog(load_registry(), Path({str(tmp_path)!r}), weights_here=False)\n"
        "print([c.resolve(m).can_edit for m in ('tiny-minimax-h3', 'minimax-h3', 'tiny-ltx2', 'tiny-wan')])\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split("\n")[:2] == ["[False, False, True, True]", "False"], out.stdout + out.stderr


def test_edit_and_remix_on_a_model_that_cannot_edit_are_refused_before_queueing(client, source):
    before = state(client)
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.remix(source.id, prompt="the lantern goes out")
    refused(e, "video_id", "remix")
    with pytest.raises(openai.BadRequestError) as e:
        by_reference(client, "/videos/edits", prompt="make it snow", video={"id": source.id})
    refused(e, "video", "edit")
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.edit(prompt="make it snow", video=("clip.mp4", clip_mp4(1.0), "video/mp4"),
                           extra_body={"model": H3})
    refused(e, "model", "edit")
    assert state(client) == before


def test_a_model_that_edits_still_takes_an_edit(client):
    v = client.videos.edit(prompt="make it snow", video=("clip.mp4", clip_mp4(1.0), "video/mp4"),
                           extra_body={"model": "tiny-ltx2", "size": "512x288", "seconds": "4"})
    assert v.status == "queued" and v.model == "tiny-ltx2"
