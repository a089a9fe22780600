"""Arrays of objects in form bodies, read by position whichever way a client lays the keys out."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request

from mutoscope.http.body import form_fields, read_body
from mutoscope.errors import InvalidRequest

SHOTS = [{"prompt": "a", "seconds": "4", "transition": "cut"},
         {"prompt": "b", "seconds": "8", "transition": "continuous"}]


def sdk_pairs(outer: str, objects: list[dict]) -> list[tuple[str, str]]:
    """The pairs exactly as the installed openai SDK sends a list of objects in multipart."""
    from openai import OpenAI

    client = OpenAI(api_key="x", base_url="http://127.0.0.1:9")
    serialized = client._serialize_multipartform({outer: objects})
    return [(k, v) for k, vs in serialized.items() for v in (vs if isinstance(vs, list) else [vs])]


def test_the_sdks_grouped_layout_pairs_by_position():
    pairs = sdk_pairs("storyboard", SHOTS)
    # The SDK groups by key: every prompt, then every seconds, then every transition.
    assert [k for k, _ in pairs][:2] == ["storyboard[][prompt]", "storyboard[][prompt]"]
    assert form_fields(pairs)["storyboard"] == SHOTS


def test_interleaved_layout_and_a_left_out_key():
    # A browser sends each card's fields in order; the first card's disabled transition is not sent.
    pairs = [("storyboard[][prompt]", "a"), ("storyboard[][seconds]", "4"),
             ("storyboard[][prompt]", "b"), ("storyboard[][seconds]", "8"), ("storyboard[][transition]", "continuous")]
    assert form_fields(pairs)["storyboard"] == [{"prompt": "a", "seconds": "4"},
                                                {"prompt": "b", "seconds": "8", "transition": "continuous"}]
    fields = form_fields([("characters[][id]", "x"), ("characters[][id]", "y")])
    assert fields["characters"] == [{"id": "x"}, {"id": "y"}]


def test_grouped_objects_with_different_keys_are_refused_by_name():
    pairs = sdk_pairs("storyboard", [{"prompt": "a", "seconds": "4"},
                                     {"prompt": "b", "seconds": "4", "transition": "cut"}])
    with pytest.raises(InvalidRequest) as e:
        form_fields(pairs)
    assert e.value.param == "storyboard" and e.value.code == "unpairable_array"
    assert "storyboard[][transition] 1 time" in e.value.message and "storyboard[][prompt] 2 times" in e.value.message


def test_a_json_string_form_still_wins():
    fields = form_fields([("storyboard", '[{"prompt": "a"}]'), ("storyboard[][prompt]", "b")])
    assert fields["storyboard"] == '[{"prompt": "a"}]'


@pytest.mark.anyio
async def test_multipart_on_the_wire():
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return (await read_body(request, 1024 * 1024)).fields

    files = {"input_reference": ("a.png", b"png", "image/png")}
    data = {"storyboard[][prompt]": ["a", "b"], "storyboard[][seconds]": ["4", "8"]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/echo", data=data, files=files)
    assert r.json()["storyboard"] == [{"prompt": "a", "seconds": "4"}, {"prompt": "b", "seconds": "8"}]
