"""The ASGI layer around every route: request ids, client addresses, cross-site refusal,
content types, security headers, errors as the one JSON shape, and request logs.

Request logs hold the method, the path, the status, the time taken and the request id: never a
body, a query string, a header value, a cookie or a token.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rxvault.server._errors import error_body
from rxvault.server._settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("rxvault.server.access")
error_log = logging.getLogger("rxvault.server")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BINARY_UPLOAD_PREFIX = "/api/v1/agent/batches/"
AGENT_PREFIX = "/api/v1/agent/"


def content_security_policy(frame_ancestors: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "worker-src 'self'",
            "manifest-src 'self'",
            "form-action 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if _header(scope, b"transfer-encoding") is not None:
        return True
    return length is not None and length.strip() not in {"", "0"}


def client_address(scope: Scope, trusted_proxies: tuple[str, ...]) -> str:
    """The client's address; ``X-Forwarded-For`` is believed only from a trusted proxy."""
    peer = scope.get("client")
    address = str(peer[0]) if peer else "unknown"
    if trusted_proxies and address in trusted_proxies:
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            candidate = forwarded.split(",")[-1].strip()
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                return address
    return address


class _BodyTooLarge(Exception):
    pass


class SecurityMiddleware:
    """Wraps the whole app (outside the framework's own error handling)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        csp = content_security_policy(settings.frame_ancestors)
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if settings.frame_ancestors.strip() == "'none'":
            self.headers.append((b"x-frame-options", b"DENY"))
        if settings.hsts_max_age > 0:
            value = f"max-age={settings.hsts_max_age}; includeSubDomains"
            self.headers.append((b"strict-transport-security", value.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = secrets.token_hex(8)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_address"] = client_address(scope, self.settings.trusted_proxies)
        path: str = scope.get("path", "")
        is_api = path.startswith("/api/")
        status_holder = [0]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = int(message["status"])
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {b"server", b"cache-control"} or not is_api
                ]
                headers.extend(self.headers)
                headers.append((b"x-request-id", request_id.encode()))
                if is_api:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        limit = (
            self.settings.limits.max_batch_bytes
            if path.startswith(BINARY_UPLOAD_PREFIX)
            else self.settings.limits.max_json_bytes
        )
        too_large = (
            "batch_too_large" if path.startswith(BINARY_UPLOAD_PREFIX) else "request_too_large"
        )
        received = [0]

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise _BodyTooLarge
            return message

        try:
            refusal = self._refusal(scope, path, limit)
            if refusal is not None:
                status, code, message = refusal
                await self._send_error(send_wrapper, status, code, message, request_id)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except _BodyTooLarge:
            if status_holder[0] == 0:
                await self._send_error(
                    send_wrapper,
                    413,
                    too_large,
                    f"The request body is larger than {limit} bytes.",
                    request_id,
                )
        except Exception:
            error_log.exception("unhandled error in request %s", request_id)
            if status_holder[0] == 0:
                await self._send_error(
                    send_wrapper,
                    500,
                    "internal_error",
                    "Something went wrong on the server. Please try again later.",
                    request_id,
                )
        finally:
            log.info(
                "%s %s %d %.1fms id=%s",
                scope.get("method", "-"),
                path,
                status_holder[0],
                (time.perf_counter() - started) * 1000,
                request_id,
            )

    def _refusal(self, scope: Scope, path: str, limit: int) -> tuple[int, str, str] | None:
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            code = (
                "batch_too_large" if path.startswith(BINARY_UPLOAD_PREFIX) else "request_too_large"
            )
            return 413, code, f"The request body is larger than {limit} bytes."
        method = scope.get("method", "GET")
        if method not in UNSAFE_METHODS:
            return None
        fetch_site = _header(scope, b"sec-fetch-site")
        if fetch_site is not None and fetch_site not in {"same-origin", "none"}:
            return 403, "cross_site_refused", "Cross-site requests are not allowed."
        origin = _header(scope, b"origin")
        if origin is not None and origin != self._expected_origin(scope):
            return 403, "cross_site_refused", "Cross-site requests are not allowed."
        if path.startswith(AGENT_PREFIX) and not _has_body(scope):
            # Agent routes authenticate with a bearer token that no other site can attach, so a
            # body-less agent request (DELETE, restore) needs no content type.
            return None
        if path.startswith("/api/"):
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            wanted = (
                "application/octet-stream"
                if path.startswith(BINARY_UPLOAD_PREFIX)
                else "application/json"
            )
            if content_type != wanted:
                return 415, "unsupported_media_type", f"The request body must be {wanted}."
        return None

    def _expected_origin(self, scope: Scope) -> str:
        if self.settings.public_origin:
            return self.settings.public_origin
        host = _header(scope, b"host") or ""
        scheme = scope.get("scheme", "https")
        return f"{scheme}://{host}"

    @staticmethod
    async def _send_error(
        send: Send, status: int, code: str, message: str, request_id: str
    ) -> None:
        body = json.dumps(error_body(code, message, request_id)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
