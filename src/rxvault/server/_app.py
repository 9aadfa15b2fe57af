"""The app factory: ``create_app(settings)`` builds the ASGI application."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rxvault import __version__
from rxvault.server import _agent_api, _audit, _patient_api, _statement, _web
from rxvault.server._clock import Clock, SystemClock
from rxvault.server._context import AppContext
from rxvault.server._db import check_schema, create_db_engine, session_factory
from rxvault.server._errors import ApiError, error_body
from rxvault.server._http import SecurityMiddleware
from rxvault.server._schemas import ErrorResponse
from rxvault.server._settings import Settings

log = logging.getLogger("rxvault.server")

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        401: "Not authenticated",
        403: "Refused",
        404: "Not found",
        409: "Conflict",
        413: "Too large",
        415: "Wrong content type",
        422: "Invalid request",
        429: "Too many attempts",
    }.items()
}


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def create_app(
    settings: Settings, *, clock: Clock | None = None, check_database: bool = True
) -> SecurityMiddleware:
    """Build the app. Refuses (``SettingsError``) to start without a pepper outside demo mode,
    and (``DatabaseError``) with a database that is not migrated."""
    pepper = settings.require_pepper()
    if settings.demo and settings.pepper is None:
        log.warning("demo mode: using the public demo pepper; never do this with real patients")
    engine = create_db_engine(settings.database_url)
    if check_database:
        check_schema(engine)
    app = FastAPI(
        title="rxvault",
        version=__version__,
        summary="Ciphertext storage, accounts and sessions for rxvault (docs/spec/protocol.md).",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        responses=_ERROR_RESPONSES,
    )
    db = session_factory(engine)
    key = _audit.audit_key(pepper)
    app.state.rxvault = AppContext(
        settings=settings,
        db=db,
        clock=clock or SystemClock(),
        pepper=pepper,
        audit_key=key,
        audit_writer=_audit.AuditWriter(db, key),
    )
    app.state.engine = engine

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, _request_id(request), exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the submitted values (they may be secrets): only where and what kind.
        details = [
            {
                "field": ".".join(str(part) for part in err.get("loc", ()) if part != "body"),
                "problem": str(err.get("type", "invalid")),
            }
            for err in exc.errors()
        ]
        body = error_body(
            "invalid_request", "The request is not valid.", _request_id(request), details
        )
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        code = codes.get(exc.status_code, "http_error")
        message = {404: "Not found.", 405: "Method not allowed."}.get(
            exc.status_code, "The request could not be handled."
        )
        return JSONResponse(
            error_body(code, message, _request_id(request)),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        # The exception goes on to SecurityMiddleware, which logs it with the request id.
        return JSONResponse(
            error_body(
                "internal_error",
                "Something went wrong on the server. Please try again later.",
                _request_id(request),
            ),
            status_code=500,
        )

    @app.get("/api/v1/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: the process answers (it does not touch the database)."""
        return {"status": "ok", "version": __version__}

    app.include_router(_agent_api.router)
    app.include_router(_statement.router)
    app.include_router(_patient_api.router)

    @app.api_route(
        "/api/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    def _unknown_api(rest: str) -> None:
        raise ApiError(404, "not_found", "Not found.")

    app.include_router(_web.router)
    return SecurityMiddleware(app, settings)
