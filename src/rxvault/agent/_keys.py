"""The key directory: patient keys registered on the server, verified before any use.

A registration is used only if the agent issued the enrollment it names (lookup id), for the
same handle, and its binding MAC verifies with that enrollment's binding key. Anything else (a
key the server swapped in, a registration for an enrollment this agent never issued) is refused,
recorded, and reported; the agent never encrypts to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rxvault.agent._api import ServerApi, unb64
from rxvault.agent._state import State, now_text
from rxvault.format import BindingInvalid, verify_binding

__all__ = ["KeyRefresh", "fetch_keys"]


@dataclass
class KeyRefresh:
    cursor: int
    verified: dict[str, tuple[bytes, str, int]] = field(default_factory=dict)
    refused: list[tuple[int, str, str, str]] = field(default_factory=list)

    def commit(self, state: State) -> None:
        now = now_text()
        with state.transaction() as c:
            for handle, (key, lookup_id, seq) in self.verified.items():
                c.execute(
                    "INSERT INTO keys (handle, public_key, lookup_id, seq, verified_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (handle) DO UPDATE SET "
                    "public_key = excluded.public_key, lookup_id = excluded.lookup_id, "
                    "seq = excluded.seq, verified_at = excluded.verified_at",
                    (handle, key, lookup_id, seq, now),
                )
                c.execute(
                    "UPDATE enrollments SET registered_at = ? WHERE lookup_id = ?",
                    (now, lookup_id),
                )
            c.executemany(
                "INSERT OR REPLACE INTO refused_keys (seq, handle, lookup_id, reason, seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(*r, now) for r in self.refused],
            )
            state.set(c, "directory_cursor", str(self.cursor))


def fetch_keys(api: ServerApi, state: State) -> KeyRefresh:
    """New directory entries since the last run, each verified or refused (nothing stored yet)."""
    refresh = KeyRefresh(cursor=int(state.get("directory_cursor", "0") or 0))
    for entry in api.key_directory(refresh.cursor):
        seq = int(entry["seq"])
        handle = str(entry["handle"])
        lookup_id = str(entry["lookup_id"])
        refresh.cursor = max(refresh.cursor, seq)
        enrollment = state.enrollment(lookup_id)
        reason: str | None = None
        try:
            public_key = unb64(entry["public_key"])
            binding = unb64(entry["binding"])
        except (ValueError, TypeError):
            public_key, binding = b"", b""
            reason = "the entry is malformed"
        if reason is None:
            if enrollment is None:
                reason = "no enrollment issued by this pharmacy has this lookup id"
            elif enrollment[1] != handle:
                reason = "registered for another handle than the enrollment's"
            else:
                try:
                    verify_binding(enrollment[2], handle, public_key, binding)
                except (BindingInvalid, ValueError):
                    reason = "the binding does not verify with the enrollment's binding key"
        if reason is None:
            refresh.verified[handle] = (public_key, lookup_id, seq)
        else:
            refresh.refused.append((seq, handle, lookup_id, reason))
    return refresh
