"""One error body for every route: {"error": {"code", "message", "param"}}.

The shape is OpenAI's, so the official SDK surfaces our messages to integrators unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException


class Json(JSONResponse):
    """JSON rendered with orjson (fast, and UTF-8 without escaping Chinese text)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.details = details  # e.g. every problem of an uploaded file, by line


class NotFound(ApiError):
    def __init__(self, what: str):
        super().__init__(404, "not_found", f"{what} not found")


def error_body(
    code: str, message: str, param: str | None = None, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "param": param, "type": code}
    if details is not None:
        error["details"] = details
    return {"error": error}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Json:
        return Json(
            error_body(exc.code, exc.message, exc.param, exc.details),
            exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Json:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        return Json(
            error_body("invalid_request", str(first.get("msg", "invalid request")), param), 422
        )

    @app.exception_handler(PoolTimeout)
    async def _busy(_: Request, exc: PoolTimeout) -> Json:
        # Every database connection is in use: a load problem, said as such (not a 500).
        return Json(
            error_body("server_busy", "the service is overloaded; retry shortly"),
            503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Json:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return Json(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)
