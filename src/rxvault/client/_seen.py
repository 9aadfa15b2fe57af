"""What this computer has already shown: the highest block and deletion versions, per server and
patient handle, and the highest sync statement number per server and pharmacy, kept in a small
JSON file so that a later run refuses an older copy.

The versions are not secret (counters the server also stores), so the file holds no key, no
password and no record. It is written atomically and readable by its owner only. A file that
cannot be read is an error naming it, never a silent reset: a reset would let a server roll the
records back.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rxvault.client._errors import ClientError

__all__ = ["SeenVersions", "default_seen_path"]

_FIELDS = ("block", "deletion", "statement")


def default_seen_path() -> Path:
    """``RXVAULT_PATIENT_STATE``, else the user's state folder."""
    named = os.environ.get("RXVAULT_PATIENT_STATE")
    if named:
        return Path(named)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "rxvault" / "patient-versions.json"


class SeenVersions:
    """``{key: {"block": n, "deletion": n}}`` per patient and ``{key: {"statement": n}}`` per
    pharmacy, in a JSON file (in memory if ``path`` is None)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._data: dict[str, dict[str, int]] = {}
        if path is not None and path.exists():
            self._data = self._read(path)

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, int]]:
        problem = f"{path}: cannot read the versions already shown on this computer"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ClientError(0, "seen_versions_unreadable", f"{problem} ({exc})") from None
        if not isinstance(raw, dict):
            raise ClientError(0, "seen_versions_unreadable", f"{problem} (not a JSON object)")
        data: dict[str, dict[str, int]] = {}
        for key, entry in raw.items():
            if (
                not isinstance(entry, dict)
                or not set(entry) <= set(_FIELDS)
                or not all(type(value) is int and value >= 0 for value in entry.values())
            ):
                raise ClientError(
                    0, "seen_versions_unreadable", f"{problem} (entry {key!r} is malformed)"
                )
            data[str(key)] = dict(entry)
        return data

    def get(self, key: str) -> tuple[int, int]:
        """(highest block version, highest deletion version) shown for ``key``."""
        entry = self._data.get(key, {})
        return entry.get("block", 0), entry.get("deletion", 0)

    def remember(self, key: str, block: int, deletion: int) -> None:
        self._raise(key, {"block": block, "deletion": deletion})

    def statement(self, key: str) -> int:
        """The highest sync statement number shown for ``key`` (0 if none)."""
        return self._data.get(key, {}).get("statement", 0)

    def remember_statement(self, key: str, seq: int) -> None:
        self._raise(key, {"statement": seq})

    def _raise(self, key: str, values: dict[str, int]) -> None:
        """Raise the counters of ``key`` to at least ``values`` and save if any changed."""
        old = self._data.get(key, {})
        new = {**old, **{k: max(v, old.get(k, 0)) for k, v in values.items()}}
        if new == old:
            return
        self._data[key] = new
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self._data, fh, sort_keys=True, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
