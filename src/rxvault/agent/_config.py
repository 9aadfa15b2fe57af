"""The agent's home directory: configuration, secret files, state, outbox and logs.

Layout (``--home``, or ``RXVAULT_AGENT_HOME``; see docs/operations.md)::

    agent.toml          the configuration (pharmacy name, server, source, sync settings)
    mapping.toml        what is published (rxvault.agent.mappings/demo.toml is an example)
    keys/pharmacy.key   the pharmacy's Ed25519 signing key (base64), owner-only
    keys/handle.secret  the secret that turns patient ids into handles (base64), owner-only
    keys/api-token      the server API token (or RXVAULT_AGENT_TOKEN), owner-only
    state.db            local state (SQLite, WAL), owner-only
    outbox/             batches written before they are sent
    logs/agent.log      one line per event, no patient data
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rxvault._cli_errors import UserError
from rxvault.agent._api import check_server_url

__all__ = [
    "AgentConfig",
    "ConfigError",
    "default_home",
    "load_config",
    "read_secret",
    "write_secret",
]

CONFIG_NAME = "agent.toml"


class ConfigError(UserError):
    """The agent's configuration or one of its secret files is missing or wrong."""


@dataclass(frozen=True)
class SyncSettings:
    batch_items: int = 500
    batch_bytes: int = 8 * 1024 * 1024
    workers: int = 0  # 0: one per CPU core
    retries: int = 5
    backoff: float = 2.0
    read_attempts: int = 4
    read_wait: float = 2.0
    timeout: float = 120.0


@dataclass(frozen=True)
class AgentConfig:
    home: Path
    pharmacy_name: str
    portal_url: str
    server_url: str
    source_dir: Path
    mapping_path: Path
    sync: SyncSettings

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def state_path(self) -> Path:
        return self.home / "state.db"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / "agent.log"

    @property
    def lock_path(self) -> Path:
        return self.home / "agent.lock"

    def token(self) -> str:
        env = os.environ.get("RXVAULT_AGENT_TOKEN")
        if env:
            return env.strip()
        path = self.keys_dir / "api-token"
        if not path.exists():
            raise ConfigError(
                f"{path}: no API token",
                hint="run `rxvault agent init --token-file FILE` or set RXVAULT_AGENT_TOKEN",
            )
        check_private(path)
        return path.read_text(encoding="ascii").strip()


def default_home() -> Path:
    env = os.environ.get("RXVAULT_AGENT_HOME")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "rxvault" / "agent"
    return Path.home() / ".rxvault-agent"


def check_private(path: Path) -> None:
    """Refuse a secret file that other users can read (POSIX; Windows relies on the ACL)."""
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: the file is readable by other users",
            hint=f"chmod 600 {path}",
        )


def write_secret(path: Path, data: bytes | str) -> None:
    """Create a new secret file readable only by its owner (0600); never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path.parent, 0o700)
    text = data if isinstance(data, str) else base64.b64encode(data).decode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_secret(path: Path, length: int) -> bytes:
    try:
        check_private(path)
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: missing", hint="run `rxvault agent init` to create the pharmacy's keys"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{path}: not base64") from None
    if len(value) != length:
        raise ConfigError(f"{path}: expected {length} bytes, found {len(value)}")
    return value


def _get(raw: dict[str, Any], path: Path, where: str, kind: type, default: Any) -> Any:
    section, key = where.split(".")
    value = raw.get(section, {}).get(key, default)
    if value is None:
        raise ConfigError(f"{path}: [{section}] {key} is required")
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{path}: [{section}] {key} must be a {kind.__name__}")
    return value


def load_config(home: Path) -> AgentConfig:
    path = home / CONFIG_NAME
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no agent configuration here",
            hint="run `rxvault agent init` first, or pass --home (or set RXVAULT_AGENT_HOME)",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    known = {"pharmacy", "server", "source", "sync"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown section [{unknown[0]}]")
    server_url = _get(raw, path, "server.url", str, None).rstrip("/")
    try:
        check_server_url(server_url)
    except UserError as exc:
        raise ConfigError(f"{path}: [server] url: {exc.message}", hint=exc.hint) from None
    defaults = SyncSettings()
    sync = SyncSettings(
        **{
            name: _get(
                raw, path, f"sync.{name}", type(getattr(defaults, name)), getattr(defaults, name)
            )
            for name in SyncSettings.__dataclass_fields__
        }
    )
    if not 1 <= sync.batch_items <= 2000:
        raise ConfigError(f"{path}: [sync] batch_items must be between 1 and 2000")
    source = Path(_get(raw, path, "source.directory", str, None))
    mapping = Path(_get(raw, path, "source.mapping", str, "mapping.toml"))
    return AgentConfig(
        home=home,
        pharmacy_name=_get(raw, path, "pharmacy.name", str, None),
        portal_url=_get(raw, path, "pharmacy.portal_url", str, server_url + "/"),
        server_url=server_url,
        source_dir=source if source.is_absolute() else home / source,
        mapping_path=mapping if mapping.is_absolute() else home / mapping,
        sync=sync,
    )
