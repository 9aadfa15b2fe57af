"""Browser test support: the real server app on a free port (uvicorn in a thread, SQLite, a test
pepper) and Debian's Chromium driven by Playwright.

Playwright never downloads a browser here: Chromium is launched from ``/usr/bin/chromium``
(installed by ``make browser``). The portal's assets come from ``make web``; a missing build is a
test failure that says so, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from rxvault.server import Settings, create_app, create_db_engine, migrate

ROOT = Path(__file__).resolve().parents[2]
PORTAL_ROOT = ROOT / "src" / "rxvault" / "web"
TEST_PAGES = ROOT / "build" / "web-tests"
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_build(path: Path) -> None:
    if not (path / "index.html").is_file():
        pytest.fail(f"{path}: the portal is not built; run `make web` first")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """The real rxvault app served over HTTP on localhost."""

    url: str
    settings: Settings
    app: Any
    thread: threading.Thread
    server: uvicorn.Server

    @property
    def ctx(self) -> Any:
        return self.app.app.state.rxvault

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.app.state.engine.dispose()


@contextlib.contextmanager
def live_server(tmp: Path, web_root: Path, **overrides: Any) -> Iterator[LiveServer]:
    db = tmp / f"portal-{os.getpid()}-{time.monotonic_ns()}.db"
    url = f"sqlite:///{db}"
    engine = create_db_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    settings = Settings(database_url=url, pepper=os.urandom(32), web_root=web_root, **overrides)
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the rxvault server did not start")
        time.sleep(0.02)
    live = LiveServer(f"http://localhost:{port}", settings, app, thread, server)
    try:
        yield live
    finally:
        live.stop()
