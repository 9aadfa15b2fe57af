"""Sync statements: the pharmacy's signed Merkle tree head over every record the server holds.

``POST /agent/statement`` accepts a statement only if its root is the one of the server's own
records of the pharmacy (one leaf per handle, in handle order), and then stores it with a
snapshot of those leaves: 41 bytes each (``handle || u64 version || state byte``, the leaf bytes
of docs/spec/format.md), concatenated in handle order. ``GET /me/block`` serves the latest
statement and the patient's inclusion proof in that snapshot, so a client can tell that the
server withholds a newer record than the one the pharmacy last stated.

A proof is computed from a tree built once per statement and kept in this process (a few
recent statements), so a fetch does not rebuild 100,000 leaves.
"""

from __future__ import annotations

import collections
import operator
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from rxvault.server import _crypto
from rxvault.server._context import AppContext
from rxvault.server._db import read_transaction, transaction
from rxvault.server._deps import address_of, agent_caller, ctx_of
from rxvault.server._errors import ApiError
from rxvault.server._ingest import lock_pharmacy
from rxvault.server._models import Pharmacy, PharmacyStatement, Record, StatementLeaves
from rxvault.server._schemas import InclusionProofOut, LeavesOut, StatementIn, StatementOut

__all__ = ["block_fields", "router", "server_leaves", "server_packed"]

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])

#: one leaf of a snapshot: handle (32 ASCII hex characters), u64 version, state byte
LEAF = struct.Struct(">32sQB")
LIVE, DELETED = 1, 2
#: leaves of the statements whose built trees a process keeps (about 200 bytes each: the tree's
#: nodes and the packed leaves), beyond the most recent statement, which is always kept
CACHED_LEAVES = 500_000
_first = operator.itemgetter(0)


def _leaf_columns() -> sa.Select[tuple[str, str, int, int | None]]:
    c = Record.__table__.c
    return sa.select(c.handle, c.state, c.version, c.block_version)


def _pack_rows(rows: list[Any]) -> bytes:
    """Leaves of (handle, state, version, block_version) rows, sorted here by handle."""
    rows.sort(key=_first)  # ASCII order, whatever the database's collation
    pack = LEAF.pack
    return b"".join(
        [
            pack(handle.encode("ascii"), version, DELETED)
            if state == "deleted"
            else pack(handle.encode("ascii"), block_version or version, LIVE)
            for handle, state, version, block_version in rows
        ]
    )


def server_packed(session: Session, pharmacy_id: int) -> bytes:
    """The leaves of every record of the pharmacy, in handle order, packed (``LEAF`` each).

    A live record's leaf carries the version of the block served (a restored block keeps its
    older version); a deleted one the tombstone's; a record whose block was removed at a
    re-enrollment (``pending``, until the agent uploads for the new key) counts as live at its
    version, as the agent last uploaded it.

    Read with a Core statement on the session's connection and packed straight from the rows:
    at 100,000 records, ORM rows and :class:`Leaf` objects cost more than the tree itself.
    """
    where = Record.__table__.c.pharmacy_id == pharmacy_id
    return _pack_rows(list(session.connection().execute(_leaf_columns().where(where)).fetchall()))


def server_leaves(session: Session, pharmacy_id: int) -> list[_crypto.Leaf]:
    """The leaves of every record of the pharmacy, in handle order (:func:`server_packed`)."""
    return unpack_leaves(server_packed(session, pharmacy_id))


def pack_leaves(leaves: Sequence[_crypto.Leaf]) -> bytes:
    return _crypto.pack_leaves(leaves)


def unpack_leaves(data: bytes) -> list[_crypto.Leaf]:
    return [
        _crypto.Leaf(handle.decode("ascii"), version, state == DELETED)
        for handle, version, state in LEAF.iter_unpack(data)
    ]


@dataclass(frozen=True)
class _Snapshot:
    pharmacy_id: int
    statement: bytes
    leaves: bytes
    tree: _crypto.MerkleTree

    @property
    def size(self) -> int:
        return len(self.leaves) // LEAF.size

    def index_of(self, handle: str) -> int | None:
        """The leaf index of ``handle`` (binary search in the packed leaves), or None."""
        key = handle.encode("ascii")
        leaves, size = self.leaves, LEAF.size
        lo, hi = 0, len(leaves) // size
        while lo < hi:
            mid = (lo + hi) // 2
            if leaves[mid * size : mid * size + 32] < key:
                lo = mid + 1
            else:
                hi = mid
        if lo * size < len(leaves) and leaves[lo * size : lo * size + 32] == key:
            return lo
        return None


class _Cache:
    """The built trees of recent statements, keyed by the statement bytes (which sign the root,
    so equal bytes mean equal leaves, whatever the database).

    A pharmacy's newer statement replaces its older one here, as in the database: fetches are
    answered with the latest statement only, so an older tree would be kept for nothing (the
    30-minute soak, a statement a minute, grew each server by ~10 MB of such trees).
    """

    def __init__(self, max_leaves: int) -> None:
        self.max_leaves = max_leaves
        self.leaves = 0
        self.items: collections.OrderedDict[bytes, _Snapshot] = collections.OrderedDict()
        self.lock = threading.Lock()
        self.build_lock = threading.Lock()

    def get(self, statement: bytes) -> _Snapshot | None:
        with self.lock:
            found = self.items.get(statement)
            if found is not None:
                self.items.move_to_end(statement)
            return found

    def put(self, snapshot: _Snapshot) -> None:
        with self.lock:
            stale = [k for k, v in self.items.items() if v.pharmacy_id == snapshot.pharmacy_id]
            for key in stale:
                self.leaves -= self.items.pop(key).size
            self.items[snapshot.statement] = snapshot
            self.leaves += snapshot.size
            while self.leaves > self.max_leaves and len(self.items) > 1:
                _, evicted = self.items.popitem(last=False)
                self.leaves -= evicted.size

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.leaves = 0


_cache = _Cache(CACHED_LEAVES)


def _statement_out(row: PharmacyStatement, parsed: _crypto.Statement) -> StatementOut:
    return StatementOut(
        seq=row.seq,
        size=parsed.size,
        root=parsed.root.hex(),
        as_of=parsed.as_of,
        received_at=row.received_at,
    )


@router.post("/statement", response_model=StatementOut)
def post_statement(body: StatementIn, request: Request) -> StatementOut:
    """Store the pharmacy's sync statement if its root is the one of the server's records."""
    caller = agent_caller(request, "upload")
    ctx = ctx_of(request)
    data = body.statement
    target = ""
    snapshot: _Snapshot | None = None
    try:
        with transaction(ctx.db) as s:
            pharmacy = lock_pharmacy(s, caller.pharmacy_id)
            if pharmacy.public_key is None:
                raise ApiError(
                    409,
                    "pharmacy_key_missing",
                    "Register the pharmacy's public key before sending statements.",
                )
            try:
                parsed = _crypto.verify_statement(data, pharmacy.public_key)
            except _crypto.FormatError:
                raise ApiError(
                    422,
                    "signature_invalid",
                    "The statement is malformed or its signature does not verify with the "
                    "pharmacy's registered key.",
                ) from None
            if parsed.pharmacy_id != pharmacy.key_id:
                raise ApiError(403, "forbidden", "This request is not allowed.")
            target = f"seq:{parsed.seq}"
            current = s.get(PharmacyStatement, pharmacy.id)
            if current is not None and current.seq == parsed.seq and current.statement == data:
                ctx.audit(
                    s,
                    actor=caller.actor,
                    action="agent.statement",
                    target=target,
                    address=address_of(request),
                    outcome="replayed",
                )
                return _statement_out(current, parsed)
            if current is not None and parsed.seq <= current.seq:
                raise ApiError(
                    409,
                    "statement_stale",
                    f"The statement's sequence number {parsed.seq} is not greater than the "
                    f"last accepted one ({current.seq}).",
                )
            packed = server_packed(s, pharmacy.id)
            tree = _crypto.merkle_tree_packed(packed)
            if tree.size != parsed.size or tree.root != parsed.root:
                deleted = packed[LEAF.size - 1 :: LEAF.size].count(DELETED)
                same = tree.size == parsed.size
                raise ApiError(
                    409,
                    "statement_mismatch",
                    f"The statement covers {parsed.size} records "
                    f"{'and' if same else 'but'} the server holds {tree.size} for this "
                    f"pharmacy ({tree.size - deleted} live, {deleted} deleted)"
                    + (", with other versions or states." if same else "."),
                )
            now = ctx.now()
            if current is None:
                current = PharmacyStatement(
                    pharmacy_id=pharmacy.id, seq=parsed.seq, statement=data, received_at=now
                )
                s.add(current)
            else:
                current.seq = parsed.seq
                current.statement = data
                current.received_at = now
            _store_leaves(s, pharmacy.id, packed)
            ctx.audit(
                s,
                actor=caller.actor,
                action="agent.statement",
                target=target,
                address=address_of(request),
                detail=f"size={tree.size}",
            )
            out = _statement_out(current, parsed)
            snapshot = _Snapshot(pharmacy.id, data, packed, tree)
    except ApiError as exc:
        ctx.audit_alone(
            actor=caller.actor,
            action="agent.statement",
            target=target,
            address=address_of(request),
            outcome=f"refused:{exc.code}",
        )
        raise
    _cache.put(snapshot)
    return out


#: the largest page of ``GET /agent/leaves`` (about 1.1 MB of JSON)
MAX_LEAVES_PAGE = 20_000


@router.get("/leaves", response_model=LeavesOut)
def get_leaves(
    request: Request,
    after: Annotated[str, Query(pattern=r"^([0-9a-f]{32})?$")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LEAVES_PAGE)] = MAX_LEAVES_PAGE,
) -> LeavesOut:
    """The leaves of the pharmacy's records now, by handle, after the handle ``after``.

    What a statement is checked against, so that an agent whose statement was refused can tell
    which records differ (a database restored from an older backup) and send them again.
    Handles, versions and states only: nothing an agent did not send.
    """
    caller = agent_caller(request, "directory")
    c = Record.__table__.c
    with read_transaction(ctx_of(request).db) as s:
        rows = list(
            s.connection()
            .execute(
                _leaf_columns()
                .where(c.pharmacy_id == caller.pharmacy_id, c.handle > after)
                .order_by(c.handle)
                .limit(limit + 1)
            )
            .fetchall()
        )
    more = len(rows) > limit
    rows = rows[:limit]
    packed = _pack_rows(rows)
    return LeavesOut(
        leaves=packed,
        count=len(rows),
        more=more,
        next_after=packed[-LEAF.size : -LEAF.size + 32].decode("ascii") if more else None,
    )


@router.get("/statement", response_model=StatementOut)
def get_statement(request: Request) -> StatementOut:
    """The pharmacy's latest accepted statement (its sequence number, size and root)."""
    caller = agent_caller(request, "directory")
    ctx = ctx_of(request)
    with read_transaction(ctx.db) as s:
        row = s.get(PharmacyStatement, caller.pharmacy_id)
        pharmacy = s.get_one(Pharmacy, caller.pharmacy_id)
    if row is None or pharmacy.public_key is None:
        raise ApiError(404, "not_found", "No statement was accepted for this pharmacy.")
    return _statement_out(row, _crypto.verify_statement(row.statement, pharmacy.public_key))


#: leaves per stored part of a snapshot (820 KB; see StatementLeaves)
PART_LEAVES = 20_000


def _store_leaves(session: Session, pharmacy_id: int, packed: bytes) -> None:
    """Replace the pharmacy's snapshot with ``packed``, in parts of ``PART_LEAVES`` leaves."""
    session.execute(sa.delete(StatementLeaves).where(StatementLeaves.pharmacy_id == pharmacy_id))
    step = PART_LEAVES * LEAF.size
    parts = [
        {"pharmacy_id": pharmacy_id, "part": n, "leaves": packed[start : start + step]}
        for n, start in enumerate(range(0, len(packed), step))
    ]
    if parts:
        session.execute(sa.insert(StatementLeaves), parts)


def _statement_of(session: Session, pharmacy_id: int) -> bytes | None:
    return session.execute(
        sa.select(PharmacyStatement.statement).where(PharmacyStatement.pharmacy_id == pharmacy_id)
    ).scalar_one_or_none()


def _load(ctx: AppContext, pharmacy_id: int) -> _Snapshot | None:
    """Read the pharmacy's statement and leaves and build the tree (once per statement).

    The statement is read again after its parts: a statement sent meanwhile (which replaces
    both in one transaction) shows as other bytes, and the read is made again, so a snapshot
    never pairs one statement with another's leaves on a database whose reads see each
    commit as it lands.
    """
    with _cache.build_lock:
        for _ in range(5):
            with read_transaction(ctx.db) as s:
                statement = _statement_of(s, pharmacy_id)
                if statement is None:
                    return None
                found = _cache.get(statement)
                if found is not None:
                    return found
                leaves = b"".join(
                    s.execute(
                        sa.select(StatementLeaves.leaves)
                        .where(StatementLeaves.pharmacy_id == pharmacy_id)
                        .order_by(StatementLeaves.part)
                    ).scalars()
                )
                if _statement_of(s, pharmacy_id) == statement:
                    break
        else:
            return None
        snapshot = _Snapshot(pharmacy_id, statement, leaves, _crypto.merkle_tree_packed(leaves))
    _cache.put(snapshot)
    return snapshot


def block_fields(
    ctx: AppContext, pharmacy_id: int, handle: str, statement: bytes | None
) -> dict[str, Any]:
    """``statement`` and ``proof`` of a ``/me/block`` answer: the pharmacy's latest statement
    (as read with the record) and the inclusion proof of ``handle`` in its snapshot."""
    if statement is None:
        return {"statement": None, "proof": None}
    snapshot = _cache.get(statement) or _load(ctx, pharmacy_id)
    if snapshot is None:
        return {"statement": None, "proof": None}
    index = snapshot.index_of(handle)
    if index is None:
        return {"statement": snapshot.statement, "proof": None}
    _, version, state = LEAF.unpack_from(snapshot.leaves, index * LEAF.size)
    proof = InclusionProofOut(
        index=index,
        version=version,
        deleted=state == DELETED,
        path=[node.hex() for node in snapshot.tree.proof(index)],
    )
    return {"statement": snapshot.statement, "proof": proof}
