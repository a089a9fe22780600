"""A storyboard through the SDK's natural call, `videos.create(extra_body={"storyboard": [...]})`: multipart,
with the values grouped by key. Shots with the same keys pair up by position; shots with different keys cannot
be paired on that wire and get a 400 that says so (and how to send them instead)."""

from __future__ import annotations

import openai
import pytest

FAST = {"num_inference_steps": 2}


def test_shots_with_the_same_keys_pair_up_by_position(client):
    shots = [{"prompt": "a kite rises over dunes", "seconds": "4", "transition": "cut"},
             {"prompt": "the kite string snaps", "seconds": "4", "transition": "continuous"}]
    video = client.videos.create(prompt="the kite", size="288x512", extra_body={**FAST, "storyboard": shots})
    got = video.to_dict()["shots"]
    assert [s["prompt"] for s in got] == ["a kite rises over dunes", "the kite string snaps"]
    assert got[1]["transition"] == "continuous" and [s["start_seconds"] for s in got] == [0.0, 4.0]
    assert video.seconds == "8"
    done = client.videos.poll(video.id)
    assert done.status == "completed", done.error


def test_shots_with_different_keys_are_refused_with_the_way_out(client):
    shots = [{"prompt": "a kite", "seconds": "4"}, {"prompt": "it snaps", "seconds": "4", "transition": "continuous"}]
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt="the kite", size="288x512", extra_body={**FAST, "storyboard": shots})
    assert e.value.body["param"] == "storyboard" and e.value.body["code"] == "unpairable_array"
    assert "storyboard[][transition] 1 time" in e.value.body["message"] and "JSON" in e.value.body["message"]
    # The same shots as a JSON body: accepted (not rendered here; refused only by what the model offers).
    with pytest.raises(openai.BadRequestError) as e:
        client.post("/videos", cast_to=openai.types.Video,
                    body={"prompt": "the kite", "size": "640x480", "storyboard": shots, **FAST})
    assert e.value.body["param"] == "size"
