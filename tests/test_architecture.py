"""Import rules between the packages (see docs/architecture.md).

- ``rxvault.format`` is pure: it imports no other rxvault package.
- ``rxvault.dbf`` is a pure reader: it knows nothing of pharmacies, crypto, the agent or the server.
- ``rxvault.agent`` and ``rxvault.server`` never import each other.
- Only ``rxvault.format`` touches ``cryptography``'s hazmat layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rxvault"

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "format": ("rxvault.dbf", "rxvault.agent", "rxvault.server", "rxvault.client", "rxvault.demo"),
    "dbf": (
        "rxvault.format",
        "rxvault.agent",
        "rxvault.server",
        "rxvault.client",
        "rxvault.demo",
    ),
    "agent": ("rxvault.server",),
    "server": ("rxvault.agent", "rxvault.dbf", "rxvault.demo"),
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_source_tree_is_found() -> None:
    assert (SRC / "__init__.py").is_file()
    assert len(_modules()) > 3


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_import_rules(package: str) -> None:
    offenders = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[package]):
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert offenders == []


def test_only_format_uses_hazmat() -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules()
        if path.relative_to(SRC).parts[0] != "format"
        for name in _imports(path)
        if name.startswith("cryptography.hazmat")
    ]
    assert offenders == []
