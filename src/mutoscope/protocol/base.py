from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mutoscope.errors import InvalidRequest, invalid_from_validation

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
L = TypeVar("L", bound=BaseModel)

# A unix time a request may set: up to 9999-12-31T23:59:59Z. Beyond that the database's integer columns
# overflow and an HTTP date (the Sunset header every answer carries) cannot be written.
UnixTime = Annotated[int, Field(ge=0, le=253_402_300_799)]


@dataclass
class Upload:
    """One file of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Body:
    """A request body as the services see it: JSON or multipart fields, and any uploaded files."""

    fields: dict[str, Any]
    files: dict[str, Upload] = field(default_factory=dict)


def parse(model_cls: type[M], fields: dict[str, Any]) -> M:
    """Validate body fields into a request model; a failure is a 400 naming the param."""
    try:
        return model_cls.model_validate(fields)
    except ValidationError as e:
        raise invalid_from_validation(e.errors()) from None


# What PostgreSQL's text columns cannot hold (NUL) and what no UTF-8 encoder can write (a lone surrogate, which
# a JSON "\ud800" escape produces): either would fail deep in a query instead of at the edge.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_at(value: Any, param: str | None = None) -> str | None:
    """The name of the first field of a JSON-like value (`a.b[2]`) whose text cannot be stored, else None.
    A dict key that cannot be stored names its parent (or `body`)."""
    if isinstance(value, str):
        return (param or "value") if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for k, v in value.items():
            key = str(k)
            if _UNSTORABLE.search(key):
                return param or "body"
            found = unstorable_at(v, f"{param}.{key}" if param else key)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = unstorable_at(v, f"{param or 'body'}[{i}]")
            if found:
                return found
    return None


def has_nul(value: Any) -> bool:
    """Text PostgreSQL cannot store anywhere in a JSON-like value (a NUL, or a lone surrogate)."""
    return unstorable_at(value) is not None


def refuse_unstorable(value: Any, param: str | None = None) -> None:
    """400 naming the field, at every edge that reads input (bodies, forms, queries, paths, MCP arguments)."""
    found = unstorable_at(value, param)
    if found:
        raise InvalidRequest(f"{found} contains a NUL or another character that cannot be stored.",
                             param=found, code="invalid_value")


class OpenAIBaseModel(BaseModel):
    """Accepts unknown fields (new SDK versions send them) but logs what it ignores. No string in a request
    may hold a NUL: no legitimate text has one, and PostgreSQL would refuse to store it."""

    model_config = ConfigDict(extra="allow")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError("text must not contain NUL characters")
        return value

    @model_validator(mode="after")
    def _log_extra(self):
        if self.model_extra:
            logger.info("ignoring unknown request fields: %s", sorted(self.model_extra))
        return self


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


_ADDR = re.compile(r" at 0x[0-9a-fA-F]+")


def without_addresses(message: str) -> str:
    """A message with Python's memory addresses (`<object at 0x7f…>`) taken out: they say nothing to a
    client and something to an attacker. Every error a client reads, JSON or HTML, goes through here."""
    return _ADDR.sub("", message)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
    """OpenAI's envelope `{"error": {message, type, param, code}}`, built here only, for every transport
    (HTTP, MCP). Memory addresses are stripped: they say nothing to a client and something to an attacker."""
    return ErrorResponse(error=ErrorInfo(message=without_addresses(message), type=type, param=param,
                                         code=code)).model_dump()


def cursor_page(list_cls: type[L], data: list, has_more: bool = False) -> L:
    """One page of an OpenAI-style list (`data`, `first_id`, `last_id`, `has_more`): the cursors are the ids
    of the page's first and last items, so a client pages on with `after=last_id`."""
    return list_cls(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                    has_more=has_more)


# A JSON string, escapes included; written unrolled so a failed match backtracks linearly.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")


def nesting_within(raw: bytes, max_depth: int) -> bool:
    """Whether every array/object in the JSON text `raw` nests at most `max_depth` deep, checked without
    recursion and before any parser sees it: the parsers recurse, so `"[" * 100000` is a RecursionError in
    json.loads. Request bodies and the documents inside an imported archive are both checked with it.

    Strings are dropped (brackets inside them do not count), then everything but brackets; each
    pass deletes the innermost empty pairs, one level at a time. A document that is still not empty
    after `max_depth` passes is deeper than that, or its brackets do not pair up (not JSON either).
    """
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    for _ in range(max_depth):
        if not brackets:
            return True
        shorter = _INNERMOST.sub(b"", brackets)
        if len(shorter) == len(brackets):
            return False
        brackets = shorter
    return not brackets
