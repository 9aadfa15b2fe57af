"""``rxvault agent init``: the home directory, the pharmacy's keys, and their registration."""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

from rxvault._cli_errors import UserError
from rxvault.agent._api import check_server_url
from rxvault.agent._config import CONFIG_NAME, write_secret
from rxvault.agent._context import AgentContext, HttpFactory
from rxvault.format import generate_handle_secret, generate_pharmacy_key

__all__ = ["InitResult", "init_home"]


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def demo_mapping_text() -> str:
    return (importlib.resources.files("rxvault.agent") / "mappings" / "demo.toml").read_text(
        encoding="utf-8"
    )


@dataclass(frozen=True)
class InitResult:
    home: Path
    created: list[str]
    pharmacy_id: str
    registered: bool


def init_home(
    home: Path,
    *,
    pharmacy_name: str,
    server_url: str,
    source_dir: Path,
    portal_url: str | None = None,
    token: str | None = None,
    mapping_text: str | None = None,
    register: bool = True,
    http_factory: HttpFactory | None = None,
) -> InitResult:
    """Create what is missing (never overwrites a key); then register the public key."""
    check_server_url(server_url)  # before anything is written
    home.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(home, 0o700)
    created: list[str] = []
    keys = home / "keys"
    if not (keys / "pharmacy.key").exists():
        write_secret(keys / "pharmacy.key", generate_pharmacy_key().private_bytes())
        created.append("keys/pharmacy.key")
    if not (keys / "handle.secret").exists():
        write_secret(keys / "handle.secret", generate_handle_secret())
        created.append("keys/handle.secret")
    if token is not None:
        if (keys / "api-token").exists():
            (keys / "api-token").unlink()
        write_secret(keys / "api-token", token.strip())
        created.append("keys/api-token")
    config = home / CONFIG_NAME
    if not config.exists():
        portal = portal_url or server_url.rstrip("/") + "/"
        config.write_text(
            '# rxvault agent configuration (docs/operations.md, "Agent").\n'
            "[pharmacy]\n"
            f"name = {_toml_string(pharmacy_name)}\n"
            f"portal_url = {_toml_string(portal)}  # printed on enrollment letters\n\n"
            "[server]\n"
            f"url = {_toml_string(server_url.rstrip('/'))}\n"
            "# the API token is in keys/api-token (or the RXVAULT_AGENT_TOKEN variable)\n\n"
            "[source]\n"
            f"directory = {_toml_string(str(source_dir))}\n"
            'mapping = "mapping.toml"\n\n'
            "[sync]\n"
            "batch_items = 500        # blocks per upload batch\n"
            "workers = 0              # processes sealing in parallel (0: one per core)\n"
            "retries = 5              # attempts per request before giving up (backoff doubles)\n"
            "backoff = 2.0            # seconds before the first retry\n",
            encoding="utf-8",
        )
        created.append(CONFIG_NAME)
    mapping = home / "mapping.toml"
    if not mapping.exists():
        mapping.write_text(mapping_text or demo_mapping_text(), encoding="utf-8")
        created.append("mapping.toml")
    ctx = AgentContext.load(home, http_factory)
    registered = False
    if register:
        api = ctx.api()
        try:
            info = api.put_pharmacy_key(ctx.key.public_bytes())
        finally:
            api.close()
        if info.get("key_id") != ctx.key.pharmacy_id:
            raise UserError(
                "the server registered another key id than this pharmacy's",
                hint="check the server URL",
            )
        registered = True
    return InitResult(home, created, ctx.key.pharmacy_id, registered)
