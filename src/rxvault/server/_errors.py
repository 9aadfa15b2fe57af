"""The API's one error shape.

Every error response is ``{"error": {"code": str, "message": str, "request_id": str}}``, with an
optional ``"details"`` list for invalid requests. Authentication failures use one code and one
message whether or not the account exists.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error returned to the client as the JSON error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def invalid_credentials() -> ApiError:
    return ApiError(401, "invalid_credentials", "The username or password is not correct.")


def not_authenticated() -> ApiError:
    return ApiError(401, "not_authenticated", "Please log in.")


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", "This request is not allowed.")


def not_found() -> ApiError:
    return ApiError(404, "not_found", "Not found.")


def too_many_attempts(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "too_many_attempts",
        "Too many attempts. Please wait and try again, or ask your pharmacy.",
        headers={"Retry-After": str(max(1, retry_after))},
    )


def invalid_request(message: str, details: list[dict[str, Any]] | None = None) -> ApiError:
    return ApiError(422, "invalid_request", message, details=details)


def error_body(
    code: str, message: str, request_id: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details:
        error["details"] = details
    return {"error": error}
