"""Every case of every file in vectors/ runs in real Chromium against the portal's crypto
(web/src/crypto/), and gives exactly the expected result: the proof that the browser and the
Python implementation (rxvault.format) agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from ._support import ROOT, TEST_PAGES, live_server, require_build

VECTORS = ROOT / "vectors"
FILES = sorted(p.name for p in VECTORS.glob("*.json") if p.name != "rfc9180.json")


def load_all() -> dict[str, Any]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in VECTORS.glob("*.json")}


@pytest.fixture(scope="module")
def vector_page(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    require_build(TEST_PAGES)
    with live_server(tmp_path_factory.mktemp("vectors"), TEST_PAGES) as server:
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready=yes]", timeout=15000)
        assert errors == []
        page.evaluate("files => { window.vectorFiles = files; }", load_all())
        yield page
        context.close()


def test_every_vector_file_has_a_runner() -> None:
    assert set(FILES) >= {
        "batch.json",
        "block.json",
        "canonical_json.json",
        "enrollment.json",
        "identifiers.json",
        "key_bundle.json",
        "password.json",
        "statement.json",
        "tombstone.json",
    }


@pytest.mark.parametrize("name", FILES)
def test_vector_file_in_chromium(vector_page: Page, name: str) -> None:
    data = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    outcomes = vector_page.evaluate(
        "name => window.rxvaultVectors.runVectorFile(name, window.vectorFiles)", name
    )
    assert len(outcomes) == len(data["cases"])
    failures = []
    for index, (case, got) in enumerate(zip(data["cases"], outcomes, strict=True)):
        expected = case["expected"]
        if expected["result"] == "success":
            ok = got == expected
        else:
            ok = {k: got.get(k) for k in ("result", "error")} == {
                "result": "error",
                "error": expected["error"],
            }
        if not ok:
            failures.append(f"{name} case {index} ({case['description']}): got {got}")
    assert failures == []


def test_rfc9180_through_hpke_core(vector_page: Page) -> None:
    data = json.loads((VECTORS / "rfc9180.json").read_text(encoding="utf-8"))
    assert data["vectors"], "no RFC 9180 vectors"
    problems = vector_page.evaluate("file => window.rxvaultVectors.runRfc9180(file)", data)
    assert problems == []
