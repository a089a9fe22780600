"""Read a request body that may be JSON or multipart, within the upload limit."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from mutoscope.errors import InvalidRequest, PayloadTooLarge
from mutoscope.protocol.base import Body, Upload, parse

M = TypeVar("M", bound=BaseModel)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than the limit of {limit // (1024 * 1024)} MB.")


async def read_body(request: Request, limit: int) -> Body:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 1024 * 1024:  # 1 MB slack for form overhead
        raise _too_large(limit)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data") or ctype.startswith("application/x-www-form-urlencoded"):
        form = await request.form(max_part_size=limit)
        fields: dict[str, Any] = {}
        files: dict[str, Upload] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(limit + 1)
                if len(data) > limit:
                    raise _too_large(limit)
                files[key] = Upload(value.filename or "upload", value.content_type or "", data)
            else:
                _assign(fields, key, value)
        return Body(fields=fields, files=files)
    raw = await request.body()
    if len(raw) > limit + 1024 * 1024:
        raise _too_large(limit)
    if not raw:
        return Body(fields={})
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidRequest("We could not parse the JSON body of your request.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return Body(fields=data)


def _assign(fields: dict[str, Any], key: str, value: str) -> None:
    """Multipart can't nest: the SDKs send objects as `a[b]=v` (or a JSON string)."""
    if "[" in key and key.endswith("]"):
        outer, inner = key[:-1].split("[", 1)
        if inner.startswith("]["):
            # Arrays of objects: the openai SDK sends characters=[{"id": a}, {"id": b}] as repeated
            # `characters[][id]`; a repeated key starts the next object (issue 4: consent must see every id).
            items = fields.setdefault(outer, [])
            if isinstance(items, list):
                k = inner[2:]
                if not items or not isinstance(items[-1], dict) or k in items[-1]:
                    items.append({})
                items[-1][k] = value
            return
        fields.setdefault(outer, {})
        if isinstance(fields[outer], dict):
            fields[outer][inner] = value
        return
    if value.startswith("{") and value.endswith("}"):
        try:
            fields[key] = json.loads(value)
            return
        except ValueError:
            pass
    fields[key] = value


def parse_model(model_cls: type[M], fields: dict[str, Any]) -> M:
    """Validate body fields; a failure is a 400 naming the param."""
    return parse(model_cls, fields)
