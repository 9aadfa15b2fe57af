"""Browser test fixtures: Debian's Chromium driven by Playwright (see _support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect, sync_playwright

from ._support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PORTAL_ROOT,
    LiveServer,
    Pharmacy,
    live_server,
    require_build,
)

# Argon2id at 64 MiB takes seconds on a loaded 2-core machine: assertions wait up to 15 s.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing; run `make browser` to install Debian's chromium")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The real server app and the built portal over a socket, one per test module."""
    require_build(PORTAL_ROOT)
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with live_server(tmp_path_factory.mktemp(name), PORTAL_ROOT) as live:
        yield live


@pytest.fixture(scope="module")
def pharmacy(server: LiveServer) -> Iterator[Pharmacy]:
    """The pharmacy's side (agent API) of the module's server."""
    side = Pharmacy(server)
    yield side
    side.close()
