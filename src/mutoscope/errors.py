"""Errors that carry their own HTTP meaning.

Serving code, services and jobs raise these instead of fastapi's HTTPException
(vllm-omni's `OmniClientError` pattern): `http/errors.py` turns any of them into
OpenAI's envelope `{"error": {"message", "type", "param", "code"}}` in one place.
This module imports nothing from the rest of the package so every room may use it.
"""

from __future__ import annotations


class MutoscopeError(Exception):
    status_code = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}


class InvalidRequest(MutoscopeError):
    status_code = 400
    type = "invalid_request_error"
    code = "invalid_value"


class AuthenticationError(MutoscopeError):
    status_code = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(MutoscopeError):
    status_code = 403
    type = "invalid_request_error"
    code = "permission_denied"


class NotFound(MutoscopeError):
    status_code = 404
    type = "invalid_request_error"
    code = "not_found"


class Conflict(MutoscopeError):
    status_code = 409
    type = "invalid_request_error"
    code = "conflict"


class Gone(MutoscopeError):
    status_code = 410
    type = "invalid_request_error"
    code = "gone"


class PayloadTooLarge(MutoscopeError):
    status_code = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class RangeNotSatisfiable(MutoscopeError):
    """A Range header that asks for bytes past the end; `Content-Range: bytes */size` tells the real length."""

    status_code = 416
    type = "invalid_request_error"
    code = "range_not_satisfiable"


class RateLimited(MutoscopeError):
    status_code = 429
    type = "requests"
    code = "rate_limit_exceeded"


class ServiceUnavailable(MutoscopeError):
    """The request is valid but this server cannot serve it as installed; the operator must act."""

    status_code = 503
    type = "server_error"
    code = "service_unavailable"


def describe_validation(errors: list[dict]) -> tuple[str, str | None, str]:
    """(message, param, code) for pydantic's errors(): `param` from the first error's location.
    Built from errors(), never str(exc), which leaks file paths."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    parts = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(parts) or None
    msg = first.get("msg", "invalid request")
    if first.get("type") == "missing":
        return f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    if param:
        msg = f"Invalid value for '{param}': {msg}."
    return msg, param, "invalid_value"


def invalid_from_validation(errors: list[dict]) -> InvalidRequest:
    message, param, code = describe_validation(errors)
    return InvalidRequest(message, param=param, code=code)
