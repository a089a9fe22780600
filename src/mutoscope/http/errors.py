"""One place that turns every failure into OpenAI's error envelope, or a browser's HTML error page.

The composition root installs it on the one app that serves `/v1` and the pages; the page renderer is
handed in (`web/pages.py`'s), so this module knows neither front end.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mutoscope.errors import MutoscopeError, describe_validation
from mutoscope.protocol.base import error_body, without_addresses

logger = logging.getLogger(__name__)

_STATUS_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                 404: "invalid_request_error", 405: "invalid_request_error", 413: "invalid_request_error",
                 429: "requests"}


def error_response(status: int, message: str, *, type: str | None = None, param: str | None = None,
                   code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = error_body(message, type or _STATUS_TYPES.get(status, "server_error"), param, code)
    return JSONResponse(body, status_code=status, headers=headers)


def validation_error(errors: list[dict]) -> JSONResponse:
    """400 with `param` from the first error's location."""
    message, param, code = describe_validation(errors)
    return error_response(400, message, param=param, code=code)


# (request, status, message, code, headers) -> the HTML error page.
PageRenderer = Callable[[Request, int, str, str | None, dict[str, str] | None], Response]


def install_error_handlers(app: FastAPI, render_page: PageRenderer | None = None) -> None:
    """Envelope-returning handlers for our errors, validation, HTTP errors and crashes."""

    def _html(request: Request, status: int, message: str, code: str | None,
              headers: dict[str, str] | None = None) -> Response | None:
        """Datasette's one handler, two formats: a browser on a web page (not /v1) gets the HTML error
        page; every /v1 path keeps OpenAI's JSON envelope whatever the client accepts."""
        if render_page is None or request.url.path.startswith("/v1") \
                or "text/html" not in request.headers.get("accept", ""):
            return None
        return render_page(request, status, without_addresses(message), code, headers)

    @app.exception_handler(MutoscopeError)
    async def _ours(request: Request, exc: MutoscopeError):
        return _html(request, exc.status_code, exc.message, exc.code, exc.headers) or error_response(
            exc.status_code, exc.message, type=exc.type, param=exc.param, code=exc.code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        response = validation_error(list(exc.errors()))
        error = json.loads(response.body)["error"]
        return _html(request, 400, error["message"], error["code"]) or response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        headers = getattr(exc, "headers", None)
        return _html(request, exc.status_code, str(exc.detail), code, headers) or error_response(
            exc.status_code, str(exc.detail), code=code, headers=headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        logger.exception("unhandled error")
        message = "The server had an error while processing your request."
        return _html(request, 500, message, "internal_error") or error_response(500, message, code="internal_error")
