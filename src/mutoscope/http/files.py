"""Serving a stored object over HTTP with Range and HEAD, alike for every backend and both front ends.

A local file goes out as Starlette's zero-copy `FileResponse`; a remote object is streamed from the
backend with one ranged read. Both judge the Range header by the same rules, and a bad one raises our
own errors so the API answers with OpenAI's envelope (web/ renders its error page) instead of plain text.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, MalformedRangeHeader, Response, StreamingResponse
from starlette.responses import RangeNotSatisfiable as _Unsatisfiable

from mutoscope.errors import InvalidRequest, NotFound, RangeNotSatisfiable
from mutoscope.storage import StoredFile


def _ranges(header: str, size: int) -> list[tuple[int, int]]:
    """[(start, end_exclusive)]; [] means serve the whole object. Starlette's own parser, so a range
    is accepted or refused exactly as the zero-copy path would."""
    try:
        return FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader as e:
        raise InvalidRequest(f"Invalid Range header: {e.content}", param="range", code="invalid_range") from None
    except _Unsatisfiable:
        raise RangeNotSatisfiable(f"The requested range is not satisfiable; the content is {size} bytes.",
                                  param="range", headers={"Content-Range": f"bytes */{size}"}) from None


def _disposition(kind: str, filename: str) -> str:
    quoted = quote(filename)
    return f"{kind}; filename*=utf-8''{quoted}" if quoted != filename else f'{kind}; filename="{filename}"'


def stored_response(request: Request, f: StoredFile, *, disposition: str = "inline",
                    headers: dict[str, str] | None = None) -> Response:
    """A 200/206 response for GET or HEAD of `f`; `Range` is honoured, one range streamed from remote
    backends (several are served whole there, which RFC 9110 allows)."""
    header = request.headers.get("range")
    # If-Range needs the validator of the stored copy; only the local path has one, remote sends it all.
    use_range = header is not None and request.headers.get("if-range") is None
    ranges = _ranges(header, f.size) if use_range else []
    path = f.storage.local_path(f.key)
    if path is not None:
        return FileResponse(path, media_type=f.media_type, filename=f.filename,
                            content_disposition_type=disposition, headers=headers)
    out = {"accept-ranges": "bytes", "content-disposition": _disposition(disposition, f.filename), **(headers or {})}
    start, end, status = 0, f.size, 200
    if len(ranges) == 1:
        (start, end), status = ranges[0], 206
        out["content-range"] = f"bytes {start}-{end - 1}/{f.size}"
    out["content-length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=out, media_type=f.media_type)
    if end == start:
        return Response(b"", status_code=status, headers=out, media_type=f.media_type)
    try:
        chunks = f.storage.open_range(f.key, start, end - 1)
    except FileNotFoundError:
        raise NotFound("The content is no longer stored.", code="content_not_found") from None
    return StreamingResponse(chunks, status_code=status, headers=out, media_type=f.media_type)
