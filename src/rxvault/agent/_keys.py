"""The key directory: patient keys registered on the server, verified before any use.

A registration is used only if the agent issued the enrollment it names (lookup id), for the
same handle, and its binding MAC verifies with that enrollment's binding key. Anything else (a
key the server swapped in, a registration for an enrollment this agent never issued) is refused,
recorded, and reported; the agent never encrypts to it.

A server can also replay a genuine old entry (a patient's earlier key, whose binding verified at
the time) after the patient was enrolled again. So an enrollment registers one key, once: an entry
whose enrollment already registered a key is refused, and so is one whose enrollment is older than
the enrollment of the patient's current key; among new entries the newest enrollment wins,
whatever order the server lists them in.
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


def _issued(state: State, lookup_id: str) -> tuple[tuple[str, int], bool] | None:
    """(order of issue, already registered) of an enrollment this agent issued."""
    row = state.conn.execute(
        "SELECT created_at, rowid, registered_at FROM enrollments WHERE lookup_id = ?",
        (lookup_id,),
    ).fetchone()
    return None if row is None else ((str(row[0]), int(row[1])), row[2] is not None)


def _current(state: State, handle: str) -> tuple[bytes, str] | None:
    row = state.conn.execute(
        "SELECT public_key, lookup_id FROM keys WHERE handle = ?", (handle,)
    ).fetchone()
    return None if row is None else (bytes(row[0]), str(row[1]))


def fetch_keys(api: ServerApi, state: State) -> KeyRefresh:
    """New directory entries since the last run, each verified or refused (nothing stored yet)."""
    refresh = KeyRefresh(cursor=int(state.get("directory_cursor", "0") or 0))
    newest: dict[str, tuple[str, int]] = {}  # handle -> order of the enrollment accepted
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
            reason = _replayed(state, handle, lookup_id, public_key, newest)
        if reason is None:
            issued = _issued(state, lookup_id)
            assert issued is not None
            newest[handle] = issued[0]
            refresh.verified[handle] = (public_key, lookup_id, seq)
        else:
            refresh.refused.append((seq, handle, lookup_id, reason))
    return refresh


def _replayed(
    state: State,
    handle: str,
    lookup_id: str,
    public_key: bytes,
    newest: dict[str, tuple[str, int]],
) -> str | None:
    """Why a verified entry must still be refused (a replay or an older enrollment), or None."""
    issued = _issued(state, lookup_id)
    if issued is None:
        return "no enrollment issued by this pharmacy has this lookup id"
    order, registered = issued
    current = _current(state, handle)
    if registered and current != (public_key, lookup_id):
        return "this enrollment already registered a key (an old registration replayed)"
    best = newest.get(handle)
    if best is None and current is not None:
        current_issue = _issued(state, current[1])
        best = None if current_issue is None else current_issue[0]
    if best is not None and order < best:
        return "registered with an older enrollment than the patient's current key"
    return None
