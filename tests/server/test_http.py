"""Headers, cross-site refusal, content types, the one error shape, OpenAPI, static files."""

from __future__ import annotations

import pytest


@pytest.fixture
def http(server):
    return server.client()


def _assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def test_security_headers_on_api_responses(http) -> None:
    r = http.get("/api/v1/health")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert "unsafe-inline" not in csp
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert r.headers["strict-transport-security"].startswith("max-age=63072000")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"


def test_frame_ancestors_is_configurable(make_server) -> None:
    custom = make_server(frame_ancestors="https://intranet.example")
    r = custom.client().get("/api/v1/health")
    assert "frame-ancestors https://intranet.example" in r.headers["content-security-policy"]
    assert "x-frame-options" not in r.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
def test_cross_site_state_changes_are_refused(http, headers) -> None:
    r = http.post("/api/v1/login", json={"username": "x", "auth_key": "AA"}, headers=headers)
    _assert_error(r, 403, "cross_site_refused")


def test_same_origin_requests_pass_the_cross_site_check(http) -> None:
    r = http.post(
        "/api/v1/prelogin",
        json={"username": "someone"},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "https://portal.test"},
    )
    assert r.status_code == 200


def test_only_json_bodies_change_state(http) -> None:
    r = http.post(
        "/api/v1/prelogin",
        content=b"username=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _assert_error(r, 415, "unsupported_media_type")
    r = http.post("/api/v1/logout", content=b"", headers={"Content-Type": "text/plain"})
    _assert_error(r, 415, "unsupported_media_type")


def test_one_error_shape(http) -> None:
    _assert_error(http.get("/api/v1/nothing-here"), 404, "not_found")
    _assert_error(http.get("/api/v1/me"), 401, "not_authenticated")
    _assert_error(
        http.delete("/api/v1/health", headers={"Content-Type": "application/json"}),
        404,
        "not_found",
    )
    secret = "hunter2-secret-value"
    error = _assert_error(
        http.post("/api/v1/login", json={"username": secret}), 422, "invalid_request"
    )
    assert {"field": "auth_key", "problem": "missing"} in error["details"]
    r = http.post("/api/v1/login", json={"username": "u", "auth_key": secret})
    error = _assert_error(r, 422, "invalid_request")
    assert secret not in r.text
    r = http.post(
        "/api/v1/prelogin", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    _assert_error(r, 422, "invalid_request")


def test_openapi_is_published(http) -> None:
    r = http.get("/api/v1/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    paths = schema["paths"]
    for path in (
        "/api/v1/login",
        "/api/v1/prelogin",
        "/api/v1/me/block",
        "/api/v1/agent/batches/{batch_id}",
        "/api/v1/agent/key-directory",
    ):
        assert path in paths
    assert "ErrorResponse" in schema["components"]["schemas"]


def test_portal_page_is_503_when_assets_are_missing(make_server, tmp_path) -> None:
    srv = make_server(web_root=tmp_path / "none")
    r = srv.client().get("/")
    assert r.status_code == 503
    assert "not installed" in r.text
    assert "content-security-policy" in r.headers


def test_portal_files_are_served(make_server, tmp_path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>portal</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("outside the web root")
    c = make_server(web_root=tmp_path).client()
    assert c.get("/").text.startswith("<!doctype html>")
    js = c.get("/app.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert c.get("/register").text.startswith("<!doctype html>")
    assert "outside" not in c.get("/%2e%2e/secret.txt").text


def test_oversized_bodies_are_refused(make_server) -> None:
    from rxvault.server import Limits

    c = make_server(limits=Limits(max_json_bytes=1000)).client()
    big = {"username": "x" * 5000}
    _assert_error(c.post("/api/v1/prelogin", json=big), 413, "request_too_large")

    def chunks():
        yield b'{"username": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    r = c.post("/api/v1/prelogin", content=chunks(), headers={"Content-Type": "application/json"})
    _assert_error(r, 413, "request_too_large")


@pytest.mark.parametrize("name", ["a\x00b", "\ud800x", "x" * 190, "Ünïcödé名前"])
def test_odd_usernames_never_cause_server_errors(http, name) -> None:
    import json

    for path, body in (
        ("/api/v1/prelogin", {"username": name}),
        ("/api/v1/login", {"username": name, "auth_key": "A" * 43}),
    ):
        raw = json.dumps(body).encode()  # escapes, so lone surrogates travel as \\ud800
        r = http.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code in {200, 401, 422}, r.text


def test_odd_path_parameters_never_cause_server_errors(server, pharmacy) -> None:
    for path in ("/api/v1/agent/records/a%00b", "/api/v1/agent/records/" + "f" * 300):
        assert pharmacy.http.get(path).status_code == 422
    r = pharmacy.http.request("DELETE", "/api/v1/agent/enrollments/a%00b", json={})
    assert r.status_code == 422
