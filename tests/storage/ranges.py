"""Range and HEAD checks of a content URL, shared by the S3 and the local-folder live tests."""

from __future__ import annotations

import httpx


def check_range_and_head(h: httpx.Client, url: str) -> None:
    full = h.get(url)
    size = len(full.content)
    part = h.get(url, headers={"Range": "bytes=100-4195"})
    tail = h.get(url, headers={"Range": "bytes=-50"})
    head = h.head(url)
    head_range = h.head(url, headers={"Range": "bytes=10-19"})
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    assert int(full.headers["content-length"]) == size
    assert part.status_code == 206 and part.content == full.content[100:4196]
    assert part.headers["content-range"] == f"bytes 100-4195/{size}"
    assert tail.status_code == 206 and tail.content == full.content[-50:]
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) == size
    assert head.headers["content-type"] == full.headers["content-type"]
    assert head.headers["content-disposition"] == full.headers["content-disposition"]
    assert head_range.status_code == 206 and head_range.headers["content-range"] == f"bytes 10-19/{size}"


def check_range_errors(h: httpx.Client, url: str) -> None:
    """Unsatisfiable and malformed ranges answer in OpenAI's error envelope, not Starlette's plain text."""
    size = int(h.head(url).headers["content-length"])
    past = h.get(url, headers={"Range": f"bytes={size + 10}-"})
    bad = h.get(url, headers={"Range": "lines=1-2"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
    error = past.json()["error"]
    assert (error["code"], error["type"], error["param"]) == ("range_not_satisfiable", "invalid_request_error", "range")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_range"
