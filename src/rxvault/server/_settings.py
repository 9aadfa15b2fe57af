"""Server settings: a TOML file, overridden by ``RXVAULT_*`` environment variables.

The pepper (a server secret that every verifier and key share depends on) is read from a file
(``pepper_file`` / ``RXVAULT_PEPPER_FILE``) or from ``RXVAULT_PEPPER`` (base64); it is never
stored in the database. Outside demo mode the server refuses to start without it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PEPPER_BYTES = 32
DEMO_PEPPER = hashlib.sha256(b"rxvault demo pepper: NOT SECRET, never use in production").digest()


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the file or variable and the field."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclasses.dataclass(frozen=True)
class Limits:
    """Size and deletion limits that hold whatever a client sends."""

    max_batch_bytes: int = 32 * 1024 * 1024
    max_blocks_per_batch: int = 2000
    max_block_bytes: int = 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    max_enrollments_per_request: int = 1000
    delete_cap_per_batch: int = 50
    delete_cap_per_day: int = 200
    tombstone_retention_days: int = 30


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the app factory needs. Build with :func:`load_settings` or directly in tests."""

    database_url: str = "sqlite:///rxvault.db"
    pepper: bytes | None = None
    demo: bool = False
    public_origin: str | None = None
    frame_ancestors: str = "'none'"
    hsts_max_age: int = 63_072_000
    session_idle_seconds: int = 15 * 60
    session_absolute_seconds: int = 12 * 60 * 60
    trusted_proxies: tuple[str, ...] = ()
    web_root: Path | None = None
    limits: Limits = dataclasses.field(default_factory=Limits)

    def require_pepper(self) -> bytes:
        """The pepper, or the demo pepper in demo mode; raises :class:`SettingsError` otherwise."""
        if self.pepper is not None:
            return self.pepper
        if self.demo:
            return DEMO_PEPPER
        raise SettingsError(
            "no pepper configured: the server refuses to start without its secret pepper",
            hint="run `rxvault server init` to create a pepper file, then set pepper_file in the "
            "settings or RXVAULT_PEPPER_FILE (or RXVAULT_PEPPER, base64)",
        )


def read_pepper_file(path: Path) -> bytes:
    """Read a pepper file (base64 text, one line) and refuse one readable by others."""
    try:
        text = path.read_text(encoding="ascii").strip()
        mode = path.stat().st_mode
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the pepper file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: the pepper file is not base64 text") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"{path}: the pepper file is readable by other users",
            hint=f"chmod 600 {path}",
        )
    return _decode_pepper(text, f"{path}")


def _decode_pepper(text: str, where: str) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{where}: the pepper is not valid base64") from None
    if len(value) < PEPPER_BYTES:
        raise SettingsError(f"{where}: the pepper must be at least {PEPPER_BYTES} bytes")
    return value


def new_pepper_text() -> str:
    """A fresh pepper as the base64 line stored in a pepper file."""
    return base64.b64encode(os.urandom(PEPPER_BYTES)).decode("ascii")


_ENV_PREFIX = "RXVAULT_"


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from an optional TOML file, then environment variables (which win).

    The file may be named by ``RXVAULT_CONFIG``. Relative paths in the file are relative to it.
    """
    env = os.environ if environ is None else environ
    if config_file is None and env.get("RXVAULT_CONFIG"):
        config_file = Path(env["RXVAULT_CONFIG"])
    raw: dict[str, Any] = {}
    base = Path.cwd()
    where = "settings"
    if config_file is not None:
        where = str(config_file)
        base = config_file.resolve().parent
        try:
            with config_file.open("rb") as fh:
                raw = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"{config_file}: cannot read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config_file}: not valid TOML ({exc})") from None
    server = dict(raw.get("server", {}))
    limits_raw = dict(raw.get("limits", {}))
    unknown = set(raw) - {"server", "limits"}
    if unknown:
        raise SettingsError(f"{where}: unknown section [{sorted(unknown)[0]}]")

    def take(key: str, kind: type, default: Any) -> Any:
        env_key = _ENV_PREFIX + key.upper()
        if env_key in env:
            server.pop(key, None)  # the environment wins over the file
            value: Any = env[env_key]
            source = env_key
            if kind is bool:
                value = value.strip().lower() in {"1", "true", "yes", "on"}
            elif kind is int:
                try:
                    value = int(value)
                except ValueError:
                    raise SettingsError(f"{source}: expected an integer, got {value!r}") from None
            return value
        if key in server:
            value = server.pop(key)
            if kind is int and isinstance(value, bool):
                raise SettingsError(f"{where}: [server] {key} must be an integer")
            if not isinstance(value, kind):
                raise SettingsError(f"{where}: [server] {key} must be a {kind.__name__}")
            return value
        return default

    defaults = Settings()
    database_url = take("database_url", str, defaults.database_url)
    demo = take("demo", bool, False)
    public_origin = take("public_origin", str, None)
    frame_ancestors = take("frame_ancestors", str, defaults.frame_ancestors)
    hsts = take("hsts_max_age", int, defaults.hsts_max_age)
    idle = take("session_idle_seconds", int, defaults.session_idle_seconds)
    absolute = take("session_absolute_seconds", int, defaults.session_absolute_seconds)
    web_root_text = take("web_root", str, None)
    pepper_file = take("pepper_file", str, None)
    proxies = server.pop("trusted_proxies", [])
    if not isinstance(proxies, list) or not all(isinstance(p, str) for p in proxies):
        raise SettingsError(f"{where}: [server] trusted_proxies must be a list of addresses")
    if env.get("RXVAULT_TRUSTED_PROXIES"):
        proxies = [p.strip() for p in env["RXVAULT_TRUSTED_PROXIES"].split(",") if p.strip()]
    if server:
        raise SettingsError(f"{where}: unknown setting [server] {sorted(server)[0]}")

    pepper: bytes | None = None
    if env.get("RXVAULT_PEPPER"):
        pepper = _decode_pepper(env["RXVAULT_PEPPER"], "RXVAULT_PEPPER")
    elif pepper_file:
        path = Path(pepper_file)
        if not path.is_absolute():
            path = base / path
        pepper = read_pepper_file(path)

    limit_fields = {f.name for f in dataclasses.fields(Limits)}
    for key, value in limits_raw.items():
        if key not in limit_fields:
            raise SettingsError(f"{where}: unknown setting [limits] {key}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SettingsError(f"{where}: [limits] {key} must be a non-negative integer")
    if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:////"):
        relative = database_url.removeprefix("sqlite:///")
        if relative and not relative.startswith(":"):
            database_url = "sqlite:///" + str(base / relative)
    web_root = None
    if web_root_text:
        web_root = Path(web_root_text)
        if not web_root.is_absolute():
            web_root = base / web_root
    return Settings(
        database_url=database_url,
        pepper=pepper,
        demo=demo,
        public_origin=public_origin.rstrip("/") if public_origin else None,
        frame_ancestors=frame_ancestors,
        hsts_max_age=hsts,
        session_idle_seconds=idle,
        session_absolute_seconds=absolute,
        trusted_proxies=tuple(proxies),
        web_root=web_root,
        limits=Limits(**limits_raw),
    )
