"""rxvault server processes for tests that need a real socket.

:func:`start_server` runs the server in its own process (uvicorn on the app factory, or
``rxvault serve`` as an operator runs it), with its output in a log file, and yields its address
and pid once it answers. :func:`server_process` is the short form that yields the address only.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class RunningServer:
    url: str
    pid: int


def _argv(command: Literal["uvicorn", "rxvault serve"], port: int) -> list[str]:
    if command == "rxvault serve":
        exe = Path(sys.executable).with_name("rxvault")
        return [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "rxvault.server._asgi:app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@contextlib.contextmanager
def start_server(
    database_url: str,
    pepper: bytes,
    log: Path,
    *,
    command: Literal["uvicorn", "rxvault serve"] = "uvicorn",
    timeout: float = 120.0,
) -> Iterator[RunningServer]:
    """The server on ``database_url`` in a subprocess, its stdout and stderr in ``log``."""
    env = dict(os.environ)
    env.update(
        RXVAULT_DATABASE_URL=database_url,
        RXVAULT_PEPPER=base64.b64encode(pepper).decode(),
        RXVAULT_CONFIG="",
        RXVAULT_HSTS_MAX_AGE="0",
    )
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(_argv(command, port), env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server died: {log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"server at {url} did not start")
            time.sleep(0.2)
        yield RunningServer(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def server_process(database_url: str, pepper: bytes) -> Iterator[str]:
    """uvicorn in a subprocess on ``database_url``; yields its base URL once it answers."""
    with (
        tempfile.TemporaryDirectory(prefix="rxvault-server-") as tmp,
        start_server(database_url, pepper, Path(tmp) / "server.log") as server,
    ):
        yield server.url
