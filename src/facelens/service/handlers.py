"""Every error answers as ``{"error": {"code", "message"}}``: library errors map to HTTP statuses here."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facelens.errors import (
    FacelensError,
    GalleryError,
    ImageDecodeError,
    ModelMismatchError,
    ModelUnavailableError,
    NoFaceError,
    NotFoundError,
)
from facelens.service.uploads import ApiError

log = logging.getLogger("facelens.service.app")

_STATUS = [  # first match wins: subclasses before their bases
    (NotFoundError, 404, "not_found"),
    (ModelMismatchError, 409, "model_mismatch"),
    (GalleryError, 400, "gallery_error"),
    (ImageDecodeError, 422, "bad_image"),
    (NoFaceError, 422, "no_face"),
    (ModelUnavailableError, 503, "model_unavailable"),
]


def status_of(exc: FacelensError) -> tuple[int, str]:
    return next(((status, code) for kind, status, code in _STATUS if isinstance(exc, kind)), (400, "error"))


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(FacelensError)
    async def facelens_error(_: Request, exc: FacelensError) -> JSONResponse:
        status, code = status_of(exc)
        return error_response(status, code, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(RecursionError)
    async def too_deep(_: Request, exc: RecursionError) -> JSONResponse:  # JSON nested past Python's recursion limit
        return error_response(422, "invalid_request", "the request is nested too deeply")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal error (details are in the server log)")
