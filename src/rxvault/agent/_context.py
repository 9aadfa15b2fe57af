"""What every agent command starts from: the home directory's configuration and secrets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rxvault.agent._api import ServerApi
from rxvault.agent._config import AgentConfig, load_config, read_secret
from rxvault.agent._mapping import Mapping, load_mapping
from rxvault.format import PharmacyKey, patient_handle

__all__ = ["AgentContext"]

HttpFactory = Callable[[str], httpx.Client]


@dataclass
class AgentContext:
    config: AgentConfig
    http_factory: HttpFactory | None = None
    _key: PharmacyKey | None = field(default=None, repr=False)
    _handle_secret: bytes | None = field(default=None, repr=False)

    @classmethod
    def load(cls, home: Path, http_factory: HttpFactory | None = None) -> AgentContext:
        return cls(load_config(home), http_factory)

    @property
    def key(self) -> PharmacyKey:
        if self._key is None:
            raw = read_secret(self.config.keys_dir / "pharmacy.key", 32)
            self._key = PharmacyKey.from_private_bytes(raw)
        return self._key

    @property
    def handle_secret(self) -> bytes:
        if self._handle_secret is None:
            self._handle_secret = read_secret(self.config.keys_dir / "handle.secret", 32)
        return self._handle_secret

    def handle(self, patient_id: str) -> str:
        return patient_handle(self.handle_secret, patient_id)

    def mapping(self) -> Mapping:
        return load_mapping(self.config.mapping_path)

    def api(self) -> ServerApi:
        s = self.config.sync
        client = self.http_factory(self.config.server_url) if self.http_factory else None
        return ServerApi(
            self.config.server_url,
            self.config.token(),
            client=client,
            retries=s.retries,
            backoff=s.backoff,
            timeout=s.timeout,
        )
