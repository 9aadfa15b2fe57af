"""The rxvault server: accounts, sessions, ciphertext blocks, the key directory and the audit log.

The server stores only ciphertext. Public API:

- :func:`create_app` builds the ASGI app from :class:`Settings` (see :func:`load_settings`).
- :func:`create_db_engine`, :func:`migrate`: the database and its one migration history.
- :class:`Admin` with :func:`transaction` and :func:`session_factory`: administration in code
  (what ``rxvault server …`` does), e.g. for tests of other parts.
- ``rxvault server …`` and ``rxvault serve`` (:mod:`rxvault.server.cli`) administer and run it.
"""

from __future__ import annotations

from rxvault.server._admin import Admin, AdminError
from rxvault.server._app import create_app
from rxvault.server._clock import Clock, SystemClock
from rxvault.server._db import (
    DatabaseError,
    create_db_engine,
    migrate,
    session_factory,
    transaction,
)
from rxvault.server._settings import Limits, Settings, SettingsError, load_settings

__all__ = [
    "Admin",
    "AdminError",
    "Clock",
    "DatabaseError",
    "Limits",
    "Settings",
    "SettingsError",
    "SystemClock",
    "create_app",
    "create_db_engine",
    "load_settings",
    "migrate",
    "session_factory",
    "transaction",
]
