"""The sync statement: at the end of a sync, what the server should now hold, signed.

One leaf per handle this agent has on the server (a live block or a deletion, with its version),
from the local state, in handle order; the statement carries their Merkle root and a sequence
number kept in the state (format spec, "The sync statement"). The server stores it only if its
own records give the same root; patients' clients then check that the block they are served is
not older than the one the statement proves, and how fresh the statement is.

A refusal is a warning (exit code 1), not a failure: the records were uploaded; what the
warning tells is that the server and this agent disagree about what the server holds.

When the server's records differ (``statement_mismatch``: its database restored from an older
backup, say), the run asks for the server's leaves (``GET /agent/leaves``) and compares them
with its state (:func:`differences`): blocks the server lacks or holds older are marked to be
sent again (:func:`mark_resend`; the caller then runs once more), deletions it lacks are sent
again (within the deletion cap), and the statement follows.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field

from rxvault.agent._api import ServerApi, ServerRefused
from rxvault.agent._context import AgentContext
from rxvault.agent._report import Summary, log
from rxvault.agent._state import PatientRow, State
from rxvault.format import Leaf, merkle_tree_packed, sign_tree_head

__all__ = [
    "MISMATCH",
    "Differences",
    "differences",
    "local_leaves",
    "local_packed",
    "mark_resend",
    "send_statement",
]

#: the meta key of the last sequence number used
SEQ_KEY = "statement_seq"

_DIFFER_HINT = (
    "patients' portals keep showing their records but cannot confirm that they are current. "
    "Was the server's database restored from a backup, or is another agent (another computer, "
    "or a copy of this agent's home) syncing this pharmacy? See docs/operations.md, "
    '"Sync statements"'
)


def local_leaves(state: State) -> list[Leaf]:
    """The leaves of what the server holds according to this agent's state, by handle."""
    return [
        Leaf(handle.decode("ascii"), version, flag == _DELETED)
        for handle, version, flag in _LEAF.iter_unpack(local_packed(state))
    ]


_LEAF = struct.Struct(">32sQB")  # the leaf bytes of the format spec
_LIVE, _DELETED = 1, 2
_LAST_VERSION = 2**53 - 1  # the largest version the format allows


class _Mismatch:
    def __repr__(self) -> str:
        return "MISMATCH"


#: what :func:`send_statement` returns, with ``repairable``, when the server's records differ
MISMATCH = _Mismatch()


@dataclass
class Differences:
    """What the server holds against what this agent's state says it should hold."""

    #: (patient id, the version to send above): live here, missing, older or deleted there
    resend: list[tuple[str, int]] = field(default_factory=list)
    #: (row, the tombstone's version): deleted here, missing, older or live there
    redelete: list[tuple[PatientRow, int]] = field(default_factory=list)
    #: records on the server that this agent's state does not list as sent
    unknown: int = 0
    #: records whose version on the server leaves no room for a newer one (left alone)
    exhausted: int = 0


def differences(state: State, server: bytes) -> Differences:
    """Compare the server's packed leaves (``GET /agent/leaves``) with this agent's state.

    A version to send above is the larger of the two sides' versions, so the block or
    tombstone sent again is newer than anything either side has seen (a patient's client
    refuses a block older than one it has shown).
    """
    theirs = {handle: (version, st) for handle, version, st in _LEAF.iter_unpack(server)}
    found = Differences()
    rows = state.conn.execute(
        "SELECT patient_id, handle, seen_digest, in_source, sent_digest, sent_key, version, "
        "server_state FROM patients WHERE server_state IN ('live', 'deleted') "
        "ORDER BY patient_id"
    ).fetchall()
    for r in rows:
        row = PatientRow(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7])
        live = row.server_state == "live"
        got = theirs.pop(row.handle.encode("ascii"), None)
        if got == (row.version, _LIVE if live else _DELETED):
            continue
        floor = max(row.version, got[0] if got else 0)
        if floor >= _LAST_VERSION:
            found.exhausted += 1  # a version no agent reaches: not worth a failing upload
            continue
        if live:
            found.resend.append((row.patient_id, floor))
        else:
            found.redelete.append((row, floor + 1))
    found.unknown = len(theirs)
    return found


def mark_resend(state: State, resend: list[tuple[str, int]]) -> None:
    """Make the next diff send these patients' blocks again, above the given versions."""
    with state.transaction() as c:
        c.executemany(
            "UPDATE patients SET sent_digest = NULL, sent_key = NULL, version = MAX(version, ?) "
            "WHERE patient_id = ?",
            ((version, pid) for pid, version in resend),
        )


def local_packed(state: State) -> bytes:
    """:func:`local_leaves`, packed as the format's leaf bytes (no :class:`Leaf` objects)."""
    rows = state.conn.execute(
        "SELECT handle, version, server_state FROM patients "
        "WHERE server_state IN ('live', 'deleted') ORDER BY handle"
    ).fetchall()
    rows.sort()  # already in order (the index patients_leaves): a check, in linear time
    pack = _LEAF.pack
    return b"".join(
        [
            pack(handle.encode("ascii"), version, _DELETED if server_state == "deleted" else _LIVE)
            for handle, version, server_state in rows
        ]
    )


def _next_seq(state: State, at_least: int = 0) -> int:
    """The next sequence number, recorded before it is used (never used twice)."""
    seq = max(int(state.get(SEQ_KEY) or 0), at_least) + 1
    with state.transaction() as c:
        state.set(c, SEQ_KEY, str(seq))
    return seq


TreeHead = tuple[int, bytes]  # (size, root) of the tree over the leaves


def send_statement(
    ctx: AgentContext,
    api: ServerApi,
    state: State,
    summary: Summary,
    *,
    as_of: dt.datetime,
    head: TreeHead | None = None,
    repairable: bool = False,
) -> TreeHead | _Mismatch | None:
    """Sign and send this run's statement; a refusal becomes a warning in ``summary``.

    With ``repairable``, a refusal because the server's records differ returns
    :data:`MISMATCH` (no warning): the caller compares and sends again.

    ``head`` is the tree head of the state's leaves when the caller knows it (a run that
    changed nothing since a statement over the same state); otherwise it is computed. Returns
    the head the server accepted, or None.

    A sequence number the server refuses as not newer than its own (this agent's state was
    replaced or restored) is moved past the server's, with a warning, and sent once more.
    """
    with summary.timed("sync statement"):
        if head is None:
            tree = merkle_tree_packed(local_packed(state))
            head = (tree.size, tree.root)
        seq = _next_seq(state)
        for attempt in (1, 2):
            data = sign_tree_head(
                pharmacy_key=ctx.key, seq=seq, as_of=as_of, size=head[0], root=head[1]
            )
            try:
                api.post_statement(data)
            except ServerRefused as exc:
                if exc.code == "statement_stale" and attempt == 1:
                    server_seq = int(api.statement()["seq"])
                    summary.warnings.append(
                        f"the server's last sync statement has sequence number {server_seq}, "
                        f"not older than this agent's {seq}: this agent's state was replaced "
                        "or restored, or another agent syncs this pharmacy; continued after it"
                    )
                    seq = _next_seq(state, at_least=server_seq)
                    continue
                if exc.code == "statement_mismatch" and repairable:
                    log.warning("sync statement %d refused: the server's records differ", seq)
                    return MISMATCH
                if exc.code == "statement_mismatch":
                    leaves = local_leaves(state)
                    deleted = sum(1 for leaf in leaves if leaf.deleted)
                    counts = f"{len(leaves)} ({len(leaves) - deleted} live, {deleted} deleted)"
                    summary.warnings.append(
                        "the server's records differ from this agent's state, which lists "
                        f"{counts} patients on the server, so it refused this run's sync "
                        f"statement ({exc.server_message.rstrip('.')}); {_DIFFER_HINT}"
                    )
                elif exc.status == 404 and exc.code == "not_found":
                    summary.warnings.append(
                        "the server does not accept sync statements (an older rxvault server?): "
                        "patients' portals cannot confirm that their records are current"
                    )
                else:
                    summary.warnings.append(f"the sync statement was not stored: {exc.message}")
                log.warning("sync statement %d refused (%s)", seq, exc.code)
                return None
            log.info("sync statement %d sent: %d leaves", seq, head[0])
            return head
    return None
