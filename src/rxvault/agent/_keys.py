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

The directory is read a page at a time by a background thread (:class:`DirectoryFetch`, which
the run may start early, so that the server's paging overlaps other work); each page is checked
against the state with a few set-based queries (the enrollments and current keys it names), and
what was verified is stored with one statement per table, in one transaction.
"""

from __future__ import annotations

import hmac
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rxvault.agent._api import ServerApi, unb64
from rxvault.agent._state import State, now_text
from rxvault.format._enrollment import BINDING_MAC_LABEL

__all__ = ["DirectoryFetch", "KeyRefresh", "fetch_keys", "start_directory_fetch"]

#: (seq, handle, lookup id, public key, binding MAC); both keys None if the entry is malformed
Entry = tuple[int, str, str, bytes | None, bytes | None]
#: order of issue of an enrollment: (created_at, rowid)
Order = tuple[str, int]


@dataclass
class KeyRefresh:
    cursor: int
    verified: dict[str, tuple[bytes, str, int]] = field(default_factory=dict)
    refused: list[tuple[int, str, str, str]] = field(default_factory=list)

    def commit(self, state: State) -> None:
        now = now_text()
        with state.transaction() as c:
            if self.verified:
                c.executemany(
                    "INSERT INTO keys (handle, public_key, lookup_id, seq, verified_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (handle) DO UPDATE SET "
                    "public_key = excluded.public_key, lookup_id = excluded.lookup_id, "
                    "seq = excluded.seq, verified_at = excluded.verified_at",
                    [(h, k, lookup, seq, now) for h, (k, lookup, seq) in self.verified.items()],
                )
                c.executemany(
                    "UPDATE enrollments SET registered_at = ? WHERE lookup_id = ?",
                    [(now, lookup) for _, lookup, _ in self.verified.values()],
                )
            c.executemany(
                "INSERT OR REPLACE INTO refused_keys (seq, handle, lookup_id, reason, seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(*r, now) for r in self.refused],
            )
            state.set(c, "directory_cursor", str(self.cursor))


def _entry(raw: dict[str, Any]) -> Entry:
    seq = int(raw["seq"])
    handle = str(raw["handle"])
    lookup_id = str(raw["lookup_id"])
    try:
        return seq, handle, lookup_id, unb64(raw["public_key"]), unb64(raw["binding"])
    except (ValueError, TypeError):
        return seq, handle, lookup_id, None, None


class DirectoryFetch:
    """The directory entries after ``after``, fetched page by page in a background thread.

    The thread only talks to the server (the state is read and written by the caller); a failure
    there (the server unavailable, a refusal, a malformed page) is raised by :meth:`pages`.
    """

    def __init__(self, api: ServerApi, after: int) -> None:
        self.after = after
        self._pages: queue.SimpleQueue[list[Entry] | BaseException | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(api,), name="rxvault-key-directory", daemon=True
        )
        self._thread.start()

    def _run(self, api: ServerApi) -> None:
        try:
            for page in api.key_directory_pages(self.after):
                if self._stop.is_set():
                    return
                self._pages.put([_entry(raw) for raw in page])
        except BaseException as exc:  # handed to the caller, raised there
            self._pages.put(exc)
        else:
            self._pages.put(None)

    def pages(self) -> Iterator[list[Entry]]:
        while True:
            item = self._pages.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop after the page being fetched (a run that ends before it verifies the keys)."""
        self._stop.set()


def start_directory_fetch(api: ServerApi, state: State) -> DirectoryFetch:
    """Start fetching the entries the state has not seen (pass the result to :func:`fetch_keys`)."""
    return DirectoryFetch(api, _cursor(state))


def _cursor(state: State) -> int:
    return int(state.get("directory_cursor", "0") or 0)


def _binding_verifies(binding_key: bytes, handle: str, public_key: bytes, mac: bytes) -> bool:
    """``rxvault.format.verify_binding``, with ``hmac.digest`` (one C call per entry)."""
    if len(binding_key) != 32 or len(public_key) != 32:
        return False
    message = BINDING_MAC_LABEL + handle.encode("ascii") + public_key
    return hmac.compare_digest(hmac.digest(binding_key, message, "sha256"), mac)


_ENROLLMENTS = (
    "SELECT lookup_id, handle, binding_key, created_at, rowid, registered_at FROM enrollments "
    "WHERE lookup_id IN (SELECT value FROM json_each(?))"
)


def _enrollments(state: State, lookup_ids: set[str]) -> dict[str, tuple[str, bytes, Order, bool]]:
    """lookup id -> (handle, binding key, order of issue, already registered)."""
    return {
        r[0]: (str(r[1]), bytes(r[2]), (str(r[3]), int(r[4])), r[5] is not None)
        for r in state.conn.execute(_ENROLLMENTS, (json.dumps(sorted(lookup_ids)),))
    }


def fetch_keys(api: ServerApi, state: State, fetch: DirectoryFetch | None = None) -> KeyRefresh:
    """New directory entries since the last run, each verified or refused (nothing stored yet).

    ``fetch``: the entries, if the run started fetching them early (from the same cursor)."""
    verifier = _Verifier(state, KeyRefresh(cursor=_cursor(state)))
    if fetch is None or fetch.after != verifier.refresh.cursor:
        if fetch is not None:
            fetch.close()
        fetch = DirectoryFetch(api, verifier.refresh.cursor)
    try:
        for page in fetch.pages():
            verifier.page(page)
    finally:
        fetch.close()
    return verifier.refresh


class _Verifier:
    """Checks a page of entries against the state, read with a few queries per page.

    Nothing is written while the entries are checked, so what the state says (an enrollment
    already registered, the patient's current key) is what it said before the first page."""

    def __init__(self, state: State, refresh: KeyRefresh) -> None:
        self.state = state
        self.refresh = refresh
        self.newest: dict[str, Order] = {}  # handle -> order of the enrollment accepted
        self.enrollments: dict[str, tuple[str, bytes, Order, bool]] = {}
        self.current: dict[str, tuple[bytes, str]] = {}  # handle -> (public key, lookup id)
        self.orders: dict[str, Order] = {}  # lookup id -> order of issue

    def page(self, page: list[Entry]) -> None:
        if not page:
            return
        self.enrollments = _enrollments(self.state, {e[2] for e in page})
        self.current = {
            str(r[0]): (bytes(r[1]), str(r[2]))
            for r in self.state.conn.execute(
                "SELECT handle, public_key, lookup_id FROM keys "
                "WHERE handle IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted({e[1] for e in page})),),
            )
        }
        self.orders = {k: v[2] for k, v in self.enrollments.items()}
        others = {lookup for _, lookup in self.current.values()} - self.enrollments.keys()
        if others:
            self.orders.update((k, v[2]) for k, v in _enrollments(self.state, others).items())
        for entry in page:
            self.check(entry)

    def check(self, entry: Entry) -> None:
        """Verify one entry (or refuse it, with the reason)."""
        seq, handle, lookup_id, public_key, binding = entry
        refresh = self.refresh
        refresh.cursor = max(refresh.cursor, seq)
        enrollment = self.enrollments.get(lookup_id)
        reason: str | None = None
        if public_key is None or binding is None:
            reason = "the entry is malformed"
        elif enrollment is None:
            reason = "no enrollment issued by this pharmacy has this lookup id"
        elif enrollment[0] != handle:
            reason = "registered for another handle than the enrollment's"
        elif not _binding_verifies(enrollment[1], handle, public_key, binding):
            reason = "the binding does not verify with the enrollment's binding key"
        else:
            reason = self._replayed(handle, lookup_id, public_key, enrollment[2], enrollment[3])
        if reason is None and enrollment is not None and public_key is not None:
            self.newest[handle] = enrollment[2]
            refresh.verified[handle] = (public_key, lookup_id, seq)
        else:
            refresh.refused.append((seq, handle, lookup_id, reason or "not verified"))

    def _replayed(
        self, handle: str, lookup_id: str, public_key: bytes, order: Order, registered: bool
    ) -> str | None:
        """Why a verified entry must still be refused (a replay or an older enrollment), or None."""
        current = self.current.get(handle)
        if registered and current != (public_key, lookup_id):
            return "this enrollment already registered a key (an old registration replayed)"
        best = self.newest.get(handle)
        if best is None and current is not None:
            best = self.orders.get(current[1])
        if best is not None and order < best:
            return "registered with an older enrollment than the patient's current key"
        return None
