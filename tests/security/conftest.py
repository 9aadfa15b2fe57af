"""Security harness fixtures: the server tests' fixtures (the real app on each database, a fake
clock, a pharmacy built from rxvault.format), and a hostile transport that rewrites the real
server's answers the way a malicious server would."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from agent.conftest import agent, demo_source, harness, source  # noqa: F401 - fixtures
from server.conftest import (  # noqa: F401 - fixtures re-exported for this package
    BASE_URL,
    PASSWORD,
    InProcessTransport,
    PharmacySide,
    Server,
    b64,
    clean_engine,
    database_url,
    engine,
    make_server,
    patient_client,
    pharmacy,
    server,
    unb64,
)

Rewrite = Callable[[dict[str, Any]], dict[str, Any] | None]


class HostileTransport(httpx.BaseTransport):
    """The real app behind a hostile layer: ``rewrite[path]`` changes the JSON of a successful
    answer (return a dict to replace it, or change it in place); ``seen[path]`` keeps the last
    genuine answer of every path, for replays."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.rewrite: dict[str, Rewrite] = {}
        self.seen: dict[str, dict[str, Any]] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        path = request.url.path
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            return response
        body = json.loads(response.content)
        self.seen[path] = json.loads(response.content)
        change = self.rewrite.get(path)
        if change is None:
            return response
        body = change(body) or body
        headers = [
            (k, v) for k, v in response.headers.multi_items() if k.lower() != "content-length"
        ]
        return httpx.Response(
            200, headers=headers, content=json.dumps(body).encode(), request=request
        )

    def close(self) -> None:
        self.inner.close()


def hostile_client(srv: Server, **kwargs: Any) -> tuple[Any, HostileTransport]:
    """A patient client whose server is ``srv`` behind a hostile layer."""
    from rxvault.client import PatientClient

    transport = HostileTransport(InProcessTransport(srv.app, "192.0.2.77"))
    http = httpx.Client(transport=transport, base_url=BASE_URL, timeout=60)
    srv._clients.append(http)
    return PatientClient(http=http, **kwargs), transport
