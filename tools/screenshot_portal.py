"""Take the README's screenshot of the portal: docs/img/portal.png.

Runs the demo as a newcomer would (``rxvault demo up --no-serve``, then ``rxvault demo up`` on a
free port), logs in as the demo patient in headless Chromium (Playwright driving Debian's
/usr/bin/chromium, as the browser tests do) and saves the records screen.

    .venv/bin/python tools/screenshot_portal.py [--dir DIR] [--out docs/img/portal.png]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
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
RXVAULT = [sys.executable, "-c", "from rxvault.cli import main; main()"]
TIMEOUT_MS = 60_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "build" / "screenshot-demo")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "portal.png")
    args = parser.parse_args()

    port = free_port()
    setup = [*RXVAULT, "demo", "up", "--dir", str(args.dir), "--port", str(port)]
    subprocess.run([*setup, "--reset", "--no-serve"], check=True)  # noqa: S603 - our own CLI
    state = json.loads((args.dir / "demo.json").read_text(encoding="utf-8"))
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        setup, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            sys.stdout.write(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the demo server did not start")
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line.startswith("Serving the portal at "):
                url = line.removeprefix("Serving the portal at ").strip().rstrip("/")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1200, "height": 1500})
            page.goto(url + "/")
            expect(page.locator("main[data-screen=login]")).to_be_visible(timeout=TIMEOUT_MS)
            page.get_by_label("Username", exact=True).fill(state["username"])
            page.get_by_label("Password", exact=True).fill(state["password"])
            page.get_by_role("button", name="Log in").click()
            expect(page.locator("main[data-screen=records]")).to_be_visible(timeout=TIMEOUT_MS)
            expect(page.locator("table.history tbody tr").first).to_be_visible()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            # The top of the records screen: details, allergies, refills due, recent fills.
            clip = {"x": 0, "y": 0, "width": 1200, "height": 2080}
            page.screenshot(path=str(args.out), full_page=True, clip=clip)
            browser.close()
        print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0 if server.returncode == 0 else server.returncode or 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
