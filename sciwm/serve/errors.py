"""Every failure of a request as a 4xx JSON reply that says what was wrong and how to fix it.

A reply body is ``{"error": CODE, "message": TEXT}``. Project errors map to codes by kind
(:func:`reply_for`); FastAPI's validation errors become one readable message; anything else is
a 500 whose body says only that the server failed (the cause goes to the server's log,
without the request's headers), never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sciwm.api import NotReadyError
from sciwm.api_rank import NotRankable
from sciwm.errors import ParameterError, SciwmError, StoreError, WorldModelError

log = logging.getLogger("sciwm.serve")


class ServeError(SciwmError):
    """A request the service refuses, with its HTTP status and error code.

    Args:
        status: The HTTP status (4xx).
        code: A short machine-readable code (``unknown_campaign``, ``batch_too_large`` ...).
        message: What was wrong and how to fix it.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def error_body(code: str, message: str) -> dict[str, str]:
    """The JSON body of an error reply."""
    return {"error": code, "message": message}


def reply_for(exc: SciwmError) -> tuple[int, str]:
    """HTTP status and error code of a project error."""
    if isinstance(exc, ServeError):
        return exc.status, exc.code
    if isinstance(exc, NotReadyError):
        return 409, "world_model_not_ready"
    if isinstance(exc, NotRankable):
        return 422, "not_rankable"
    if isinstance(exc, ParameterError):
        return 422, "bad_parameters"
    if isinstance(exc, WorldModelError):
        return 422, "world_model_error"
    if isinstance(exc, StoreError):
        return 503, "store_unavailable"
    return 400, "bad_request"


def install_handlers(app: FastAPI) -> None:
    """Register the error handlers on ``app``."""

    @app.exception_handler(SciwmError)
    async def _sciwm(request: Request, exc: SciwmError) -> JSONResponse:
        status, code = reply_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(code, str(exc)), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("malformed_body", describe(exc.errors())), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.url.path}; see /openapi.json for the API"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /openapi.json"
        return JSONResponse(error_body(code, message), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return JSONResponse(
            error_body(
                "internal_error",
                "the service failed on this request (its log says why); the request may be "
                "retried, and a report with the request body helps fix it",
            ),
            500,
        )


def describe(errors: list[dict[str, Any]]) -> str:
    """One message from pydantic's validation errors of a request body."""
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return (
        "the request body is not what this endpoint takes: "
        + "; ".join(parts)
        + more
        + '. Send JSON such as {"candidates": [{"x": 0.5, ...}], "level": 0.9}; '
        "see /openapi.json"
    )
