"""Schemathesis against the published OpenAPI schema: generated requests, authenticated as a
pharmacy and as a patient, never get a 500, and every error has the one JSON shape."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from rxvault.client import PatientClient
from rxvault.server import Settings, create_app

from .conftest import PharmacySide, Server

PASSWORD = "correct horse battery staple"


def _published_schema() -> dict:
    app = create_app(
        Settings(database_url="sqlite://", pepper=os.urandom(32)), check_database=False
    )
    try:
        return app.app.openapi()  # type: ignore[attr-defined]
    finally:
        app.app.state.engine.dispose()  # type: ignore[attr-defined]


schema = schemathesis.openapi.from_dict(_published_schema())
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much]


@pytest.fixture(scope="module")
def fuzz_world(database_url: str) -> Iterator[tuple[Server, dict[str, str]]]:
    """One server per database for the module, with a pharmacy, a patient and a block; and
    the headers of that logged-in patient and of the pharmacy's agent."""
    srv = Server(database_url)
    pharmacy = PharmacySide(srv, slug="fuzz")
    pharmacy.register_key()
    client = PatientClient(http=srv.client())
    client.register(pharmacy.enroll("FUZZ"), "fuzz-patient", PASSWORD)
    pharmacy.upload(*pharmacy.batch([pharmacy.block("FUZZ", b'{"fuzz": true}')]))
    cookie = client.http.cookies.get("__Host-rxvault-session")
    headers = {
        "Authorization": pharmacy.http.headers["Authorization"],
        "Cookie": f"__Host-rxvault-session={cookie}",
    }
    yield srv, headers
    srv.close()


@pytest.fixture
def fuzz_target(fuzz_world: tuple[Server, dict[str, str]]) -> tuple[Any, dict[str, str]]:
    srv, headers = fuzz_world
    return srv.client(), headers


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_server_errors(case, fuzz_target) -> None:
    http, headers = fuzz_target
    kwargs = case.as_transport_kwargs(base_url=str(http.base_url).rstrip("/"))
    request_headers = {
        k: v
        for k, v in kwargs.get("headers", {}).items()
        if k.lower() not in {"connection", "accept-encoding"}
    }
    request_headers.update(headers)
    body = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        body["content"] = kwargs["data"]
    response = http.request(
        kwargs["method"],
        kwargs["url"],
        headers=request_headers,
        params=kwargs.get("params"),
        **body,
    )
    assert response.status_code < 500, (case.method, case.path, response.text)
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        error = response.json()["error"]
        assert set(error) <= {"code", "message", "request_id", "details"}


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_server_errors_without_credentials(case, server) -> None:
    http = server.client()
    kwargs = case.as_transport_kwargs(base_url=str(http.base_url).rstrip("/"))
    body = {"json": kwargs["json"]} if "json" in kwargs else {}
    response = http.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers={"Content-Type": "application/json"},
        **body,
    )
    assert response.status_code < 500, (case.method, case.path, response.text)
