"""The ASGI entry point for uvicorn and other servers: ``rxvault.server._asgi:app`` (a factory).

Settings come from ``RXVAULT_CONFIG`` and ``RXVAULT_*`` variables.
"""

from __future__ import annotations

from rxvault.server._app import create_app
from rxvault.server._http import SecurityMiddleware
from rxvault.server._settings import load_settings


def app() -> SecurityMiddleware:
    return create_app(load_settings())
