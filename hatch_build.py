"""Build hook: refuse to build a wheel or sdist without the built portal.

The portal (``src/rxvault/web/``) is built from ``web/`` by ``make web`` and is gitignored, so a
build on a fresh checkout would otherwise silently produce a package whose server has no portal.
Editable installs (``make setup``) do not need it and are not checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class PortalCheck(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return
        web = Path(self.root) / "src" / "rxvault" / "web"
        if not (web / "index.html").is_file() or not any((web / "assets").glob("*.js")):
            raise RuntimeError(
                f"the built portal is missing from {web}: run `make web` before building"
            )
