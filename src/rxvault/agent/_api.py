"""The server's agent API (docs/spec/protocol.md), over httpx, with retries and backoff.

Connection problems, timeouts, 429 and 5xx answers are retried with exponential backoff; when
the attempts run out the error is :class:`ServerUnavailable` (exit code 3: try again later).
Any other refusal is :class:`ServerRefused` (exit code 2) with the server's own message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from rxvault import __version__
from rxvault._cli_errors import EXIT_FAILED, EXIT_UNAVAILABLE, UserError

__all__ = [
    "ServerApi",
    "ServerRefused",
    "ServerUnavailable",
    "b64",
    "check_server_url",
    "unb64",
]

AGENT = "/api/v1/agent"


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


_URLSAFE = bytes.maketrans(b"-_", b"+/")


def unb64(value: str) -> bytes:
    """``base64.urlsafe_b64decode`` of unpadded text (the same, without its Python layers)."""
    if not isinstance(value, str):
        raise TypeError(f"base64 text expected, not {type(value).__name__}")
    padded = (value + "=" * (-len(value) % 4)).encode("ascii")
    return binascii.a2b_base64(padded.translate(_URLSAFE))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_server_url(url: str) -> str:
    """Return ``url`` if it is safe to send the API token to, else raise :class:`UserError`.

    The token travels in every request, so the server must be reached over ``https://``;
    plain ``http://`` is accepted only for this machine (127.0.0.0/8, ::1, localhost), as the
    patient client does.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UserError(f"{url!r}: not a valid server URL ({exc})") from None
    if parsed.scheme == "https" and parsed.host:
        return url
    if parsed.scheme == "http" and parsed.host and _is_loopback(parsed.host):
        return url
    if parsed.scheme == "http":
        raise UserError(
            f"{url}: the server URL must start with https:// (plain http:// would send the "
            "API token in clear)",
            hint="use the server's https:// address; http:// is only for a server on this "
            "machine (127.0.0.1, ::1, localhost)",
        )
    raise UserError(
        f"{url!r}: not a server URL",
        hint="give the server's address, like https://rx.example.org",
    )


class ServerUnavailable(UserError):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, exit_code=EXIT_UNAVAILABLE)


class ServerRefused(UserError):
    def __init__(self, status: int, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(
            f"the server refused: {message} (HTTP {status}, {code})",
            hint=hint,
            exit_code=EXIT_FAILED,
        )
        self.status = status
        self.code = code
        self.server_message = message


_HINTS = {
    401: "check the API token (keys/api-token or RXVAULT_AGENT_TOKEN); an administrator can "
    "issue a new one with `rxvault server tokens create`",
    403: "the API token lacks the scope for this; ask the server's administrator",
}


#: Key-directory entries asked for per page; servers before it allowed at most OLD_DIRECTORY_PAGE.
DIRECTORY_PAGE = 5000
OLD_DIRECTORY_PAGE = 1000


class ServerApi:
    """The agent's side of the server API. ``client`` replaces the HTTP client (tests)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        client: httpx.Client | None = None,
        retries: int = 5,
        backoff: float = 2.0,
        timeout: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = check_server_url(base_url)
        self.http = client or httpx.Client(base_url=base_url, timeout=timeout)
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.http.headers["User-Agent"] = f"rxvault-agent/{__version__}"
        self.retries = max(1, retries)
        self.backoff = backoff
        self.sleep = sleep
        self.bytes_sent = 0

    def close(self) -> None:
        self.http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        last = ""
        for attempt in range(1, self.retries + 1):
            try:
                response = self.http.request(method, AGENT + path, **kwargs)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                content = kwargs.get("content")
                if isinstance(content, bytes):
                    self.bytes_sent += len(content)
                if response.status_code < 400:
                    return response
                if response.status_code not in (408, 425, 429) and response.status_code < 500:
                    code, message = "http_error", f"HTTP {response.status_code}"
                    try:
                        error = response.json()["error"]
                        code, message = str(error["code"]), str(error["message"])
                    except (ValueError, KeyError, TypeError):
                        pass
                    raise ServerRefused(
                        response.status_code, code, message, hint=_HINTS.get(response.status_code)
                    )
                last = f"HTTP {response.status_code}"
            if attempt < self.retries:
                self.sleep(self.backoff * 2 ** (attempt - 1))
        raise ServerUnavailable(
            f"{self.base_url}: the server did not answer after {self.retries} attempts ({last})",
            hint="check the network and the server; everything not acknowledged is kept in the "
            "outbox and sent by the next run",
        )

    def pharmacy(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/pharmacy").json()
        return result

    def put_pharmacy_key(self, public_key: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "PUT", "/pharmacy-key", json={"public_key": b64(public_key)}
        ).json()
        return result

    def post_enrollments(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "POST", "/enrollments", json={"enrollments": items}
        ).json()
        return result

    def revoke_enrollment(self, lookup_id: str) -> None:
        self._request("DELETE", f"/enrollments/{lookup_id}")

    def key_directory(self, after: int) -> Iterator[dict[str, Any]]:
        """Every directory entry after the cursor ``after``, oldest first."""
        for page in self.key_directory_pages(after):
            yield from page

    def key_directory_pages(self, after: int) -> Iterator[list[dict[str, Any]]]:
        """The directory entries after the cursor ``after``, oldest first, a page at a time."""
        cursor = after
        limit = DIRECTORY_PAGE
        while True:
            try:
                response = self._request(
                    "GET", "/key-directory", params={"after": cursor, "limit": limit}
                )
            except ServerRefused as exc:
                # A server older than the larger page refuses it (422): ask it for its maximum.
                if exc.status != 422 or limit == OLD_DIRECTORY_PAGE:
                    raise
                limit = OLD_DIRECTORY_PAGE
                continue
            page = response.json()
            entries: list[dict[str, Any]] = page["entries"]
            yield entries
            cursor = int(page["next_cursor"])
            if not page["more"]:
                return

    def put_batch(self, batch_id: str, data: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "PUT",
            f"/batches/{batch_id}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        ).json()
        return result

    def post_statement(self, data: bytes) -> dict[str, Any]:
        """Send a signed sync statement (``make_statement``)."""
        result: dict[str, Any] = self._request(
            "POST", "/statement", json={"statement": b64(data)}
        ).json()
        return result

    def leaves(self) -> bytes:
        """The leaves of every record the server holds for the pharmacy now (packed, 41 bytes
        each, by handle), as it checks a statement against them; read a page at a time."""
        pages: list[bytes] = []
        after = ""
        while True:
            page = self._request("GET", "/leaves", params={"after": after}).json()
            pages.append(unb64(page["leaves"]))
            if not page["more"]:
                return b"".join(pages)
            after = str(page["next_after"])

    def statement(self) -> dict[str, Any]:
        """The pharmacy's latest statement the server accepted (its ``seq``, size, root)."""
        result: dict[str, Any] = self._request("GET", "/statement").json()
        return result


def expiry(days: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
