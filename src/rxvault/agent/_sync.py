"""The daily run: read, digest, diff, verify keys, guard, seal, sign, upload, commit.

Order matters for safety:

1. Batches left in the outbox by an interrupted run are sent first (same bytes, same id).
2. The source is read consistently and strictly (any anomaly stops the run: nothing is
   uploaded or deleted from a bad read).
3. The source must be the one synced before (structural fingerprint) and not older than it.
4. New key-directory entries are verified; refused ones are reported and never used.
5. The diff: patients whose digest or key changed are uploaded; patients gone from the source
   become signed deletions, but only within the caps (or exactly the number the operator allowed).
6. Documents are built, sealed and signed in chunks, grouped into batches of bounded size,
   written to the outbox, sent, and committed locally only after the server's acknowledgement.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rxvault._cli_errors import UserError
from rxvault.agent._api import ServerApi
from rxvault.agent._context import AgentContext
from rxvault.agent._crash import crash_point
from rxvault.agent._documents import DIGEST_VERSION, DOCUMENT_FORMAT, Documents
from rxvault.agent._incremental import CACHE_NAME, IncrementalRead, LazyDocuments
from rxvault.agent._keys import DirectoryFetch, KeyRefresh, fetch_keys, start_directory_fetch
from rxvault.agent._lock import RunLock
from rxvault.agent._mapping import Mapping
from rxvault.agent._outbox import Outbox, OutboxItem
from rxvault.agent._report import Reporter, Summary, log
from rxvault.agent._seal import SealJob, seal_stream, workers_for
from rxvault.agent._source import FilePages, SourceRead, source_digest
from rxvault.agent._state import PatientRow, State, now_text, open_state
from rxvault.agent._statement import MISMATCH, differences, mark_resend, send_statement
from rxvault.format import make_batch, make_tombstone, new_batch_id

__all__ = ["SyncOptions", "run_sync"]

DELETE_FLOOR = 5
DELETE_SHARE = 0.02
MIN_PRESENT = 0.95
TOMBSTONES_PER_BATCH = 50
#: documents built (and then sealed) at a time, at most: a batch's worth, so that the server
#: ingests one batch while this process builds and seals the next (with 5,000, a daily run's
#: 2,600 documents were all built and sealed before the first batch left)
BUILD_CHUNK = 1000
MAX_ROUNDS = 3
#: batches handed to the sending thread and not yet acknowledged (one with the server, one ready)
UPLOADS_IN_FLIGHT = 2
#: state key: the source digest of the last complete run, and what that run found (_synced)
SYNCED_SOURCE = "synced_source"


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    allow_deletions: int | None = None
    accept_new_source: bool = False


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


class GuardRefused(UserError):
    """A deletion guard or source check refused the run."""


def _check_source(state: State, source: SourceRead, options: SyncOptions) -> None:
    known = state.get("source_fingerprint")
    if known is not None and known != source.fingerprint and not options.accept_new_source:
        raise GuardRefused(
            f"{source.directory}: the tables are not the ones synced before (their structure "
            "differs: other tables, fields, types or sizes); nothing was uploaded or deleted",
            hint="if the pharmacy software was upgraded or the mapping points at new tables on "
            "purpose, check `rxvault agent preview`, then run `rxvault agent sync "
            "--accept-new-source` once",
        )
    stamps = state.get_json("source_last_updates") or {}
    for name, table in source.tables.items():
        before = stamps.get(name)
        now = table.last_update.isoformat() if table.last_update else ""
        if before and now and now < before:
            raise GuardRefused(
                f"{table.path}: the table is older (last updated {now}) than the one synced "
                f"before (last updated {before}); nothing was uploaded or deleted",
                hint="a backup may have been restored over the live data, or the source "
                "directory points at an old copy; check [source] directory",
            )


def _last_count_and_cap(state: State) -> tuple[int, int]:
    """The last run's patient count, and the most deletions a run may send without
    ``--allow-deletions``: max(DELETE_FLOOR, DELETE_SHARE of that count)."""
    last = int(state.get("last_patient_count", "0") or 0)
    return last, max(DELETE_FLOOR, math.ceil(DELETE_SHARE * last))


def _check_deletions(
    state: State, present: int, gone: int, options: SyncOptions, valid: bool
) -> None:
    last, cap = _last_count_and_cap(state)
    if gone in (0, options.allow_deletions):
        return
    allow = (
        f"if these patients really left, run `rxvault agent sync --allow-deletions {gone}` "
        "(the number must match exactly)"
    )
    if not valid:
        raise GuardRefused("deletions refused: the source read was not fully valid", hint=allow)
    if last and present < MIN_PRESENT * last:
        raise GuardRefused(
            f"the source has {present} patients, fewer than {MIN_PRESENT:.0%} of the {last} "
            f"of the last run: refusing to delete {gone} patients; nothing was uploaded",
            hint="a truncated, partial or wrong source is the usual cause; check the source "
            "directory and the mapping's filter. " + allow,
        )
    if gone > cap:
        raise GuardRefused(
            f"{gone} patients are gone from the source, more than the cap of {cap} "
            f"(max({DELETE_FLOOR}, {DELETE_SHARE:.0%} of {last})); nothing was uploaded",
            hint=allow,
        )


@dataclass
class _Plan:
    upload: list[int]  # patient indices into docs
    keys: dict[str, bytes]
    handles: list[str]
    gone_live: list[PatientRow]
    gone_other: list[str]
    seen: list[tuple[str, str, int]]


_PATIENT_COLUMNS = (
    "patient_id, handle, seen_digest, in_source, sent_digest, sent_key, version, server_state"
)


Known = tuple[dict[str, tuple[Any, ...]], dict[str, bytes]]


def _known(conn: sqlite3.Connection) -> Known:
    """Every patient the state knows (plain tuples: a row object each costs more than the
    diff), and every verified key by handle, read in one transaction."""
    conn.execute("BEGIN")
    try:
        rows = {
            r[0]: r
            for r in conn.execute(f"SELECT {_PATIENT_COLUMNS} FROM patients")  # noqa: S608 - constant
        }
        keys = {r[0]: bytes(r[1]) for r in conn.execute("SELECT handle, public_key FROM keys")}
    finally:
        conn.execute("COMMIT")
    return rows, keys


def _read_known(path: Path) -> Known:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        return _known(conn)
    finally:
        conn.close()


def _diff(
    ctx: AgentContext,
    docs: Documents | LazyDocuments,
    state: State,
    summary: Summary,
    pending: dict[str, bytes],
    *,
    known: Known | None = None,
) -> _Plan:
    """``known``: :func:`_known` read earlier (this run changes no patient before its diff,
    and only adds keys, which are in ``pending``)."""
    rows, stored = known if known is not None else _known(state.conn)
    keys = {**stored, **pending}
    digests = docs.digests.view(np.int64).tolist()
    upload: list[int] = []
    handles: list[str] = []
    seen: list[tuple[str, str, int]] = []
    new = changed = unchanged = enrolled = 0
    get_row = rows.get
    get_key = keys.get
    for i, pid in enumerate(docs.patient_ids):
        digest = digests[i]
        row = get_row(pid)
        if row is None:
            handle = ctx.handle(pid)
            new += 1
            seen.append((pid, handle, digest))
        else:
            handle = row[1]
            if row[2] != digest or not row[3]:
                changed += 1
                seen.append((pid, handle, digest))
            else:
                unchanged += 1
        handles.append(handle)
        key = get_key(handle)
        if key is None:
            continue
        enrolled += 1
        # row: 4 sent_digest, 5 sent_key, 7 server_state
        if row is None or row[7] != "live" or row[4] != digest or row[5] != key:
            upload.append(i)
    summary.new += new
    summary.changed += changed
    summary.unchanged += unchanged
    summary.enrolled += enrolled
    present = set(docs.patient_ids)
    gone_live = []
    gone_other = []
    for pid, r in rows.items():
        if r[3] and pid not in present:
            if r[7] == "live":
                gone_live.append(PatientRow(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], r[7]))
            else:
                gone_other.append(pid)
    summary.gone = len(gone_live) + len(gone_other)
    return _Plan(upload, keys, handles, gone_live, gone_other, seen)


class _NotSent(Exception):
    """A batch left in the outbox because an earlier batch of the run could not be sent."""


class _Uploader:
    """Groups sealed items into batches, writes each to the outbox, sends it, commits it.

    A batch is written to the outbox (file, then row) in this thread before it is handed to the
    sending thread; at most :data:`UPLOADS_IN_FLIGHT` batches are with the server at once, so
    the server ingests one batch while this process builds and seals the next. Only this thread
    touches the local state: it waits for each answer, then commits the acknowledgement.
    """

    def __init__(self, ctx: AgentContext, api: ServerApi, outbox: Outbox, summary: Summary) -> None:
        self.ctx = ctx
        self.api = api
        self.outbox = outbox
        self.summary = summary
        self.items: list[OutboxItem] = []
        self.blocks: list[bytes] = []
        self.tombstones: list[bytes] = []
        self.size = 0
        self.stale: list[str] = []
        self._sender: ThreadPoolExecutor | None = None
        self._inflight: deque[tuple[str, list[OutboxItem], Future[dict[str, Any]]]] = deque()
        self._failed = threading.Event()

    def add_block(self, job: SealJob, envelope: bytes) -> None:
        self.items.append(
            OutboxItem(job.patient_id, job.handle, job.version, "block", job.digest, job.public_key)
        )
        self.blocks.append(envelope)
        self.size += len(envelope) + 4
        s = self.ctx.config.sync
        if len(self.items) >= s.batch_items or self.size >= s.batch_bytes:
            self.flush()

    def add_tombstone(self, row: PatientRow, version: int, data: bytes) -> None:
        self.items.append(OutboxItem(row.patient_id, row.handle, version, "tombstone"))
        self.tombstones.append(data)
        if len(self.tombstones) >= TOMBSTONES_PER_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the pending items as one batch to the outbox and hand it to the sender."""
        if not self.items:
            return
        batch_id = new_batch_id()
        with self.summary.timed("batch (make and sign)"):
            data = make_batch(
                pharmacy_key=self.ctx.key,
                batch_id=batch_id,
                blocks=self.blocks,
                tombstones=self.tombstones,
                created_at=dt.datetime.now(dt.UTC),
            )
        items = [i for i in self.items if i.kind == "block"] + [
            i for i in self.items if i.kind == "tombstone"
        ]
        self.items, self.blocks, self.tombstones, self.size = [], [], [], 0
        while len(self._inflight) >= UPLOADS_IN_FLIGHT:
            self._settle()
        with self.summary.timed("outbox write"):
            self.outbox.write(batch_id, data, items)
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rxvault-upload")
        future = self._sender.submit(self._send, batch_id, data)
        self._inflight.append((batch_id, items, future))

    def _send(self, batch_id: str, data: bytes) -> dict[str, Any]:
        """In the sending thread: PUT the batch, unless an earlier one failed (then the batch
        waits in the outbox for the next run, and this run stops without trying it)."""
        if self._failed.is_set():
            raise _NotSent(batch_id)
        try:
            return self.api.put_batch(batch_id, data)
        except BaseException:
            self._failed.set()
            raise

    def _settle(self) -> None:
        """Wait for the oldest batch's answer and commit it (what ``Outbox.send`` does)."""
        batch_id, items, future = self._inflight.popleft()
        with self.summary.timed("upload (waiting for the server)"):
            try:
                result = future.result()
            except Exception as exc:
                self.outbox.note_failure(batch_id, str(exc))
                raise
        crash_point("sent")
        with self.summary.timed("acknowledge (local commit)"):
            ack = self.outbox.acknowledge(batch_id, items, result)
        crash_point("committed")
        self.summary.batches += 1
        self.summary.uploaded += ack.applied
        self.summary.deleted += ack.deleted
        self.stale.extend(ack.stale or [])

    def drain(self) -> None:
        """Flush the pending items and wait until every batch sent is acknowledged."""
        self.flush()
        while self._inflight:
            self._settle()

    def close(self) -> None:
        """Stop the sender (after an error: what was not acknowledged stays in the outbox)."""
        if self._sender is not None:
            self._sender.shutdown(wait=True, cancel_futures=True)
            self._sender = None
        self._inflight.clear()


def _jobs(
    docs: Documents | LazyDocuments,
    indices: list[int],
    plan: _Plan,
    state: State,
    summary: Summary,
    *,
    chunk_size: int = BUILD_CHUNK,
) -> Iterator[list[SealJob]]:
    digests = docs.digests.view(np.int64)
    chunk_size = max(1, min(chunk_size, BUILD_CHUNK))
    built = docs.build_chunks(indices, chunk_size)
    while True:
        started, cpu = time.perf_counter(), time.process_time()
        documents = next(built, None)
        if documents is None:
            return
        ids = [docs.patient_ids[index] for index, _ in documents]
        marks = ",".join("?" * len(ids))
        query = f"SELECT patient_id, version FROM patients WHERE patient_id IN ({marks})"  # noqa: S608 - placeholders only
        versions = dict(state.conn.execute(query, ids).fetchall())
        chunk = []
        for index, document in documents:
            pid = docs.patient_ids[index]
            handle = plan.handles[index]
            chunk.append(
                SealJob(
                    patient_id=pid,
                    handle=handle,
                    version=int(versions.get(pid, 0)) + 1,
                    digest=int(digests[index]),
                    public_key=plan.keys[handle],
                    document=document,
                )
            )
        summary.add("build documents", time.perf_counter() - started, time.process_time() - cpu)
        yield chunk


def _drain(ctx: AgentContext, api: ServerApi, outbox: Outbox, summary: Summary) -> None:
    outbox.clean_orphans()
    for batch_id, data, items in list(outbox.pending()):
        if data is None:
            outbox.drop(batch_id)
            continue
        ack = outbox.send(api, batch_id, data, items)
        summary.outbox_resent += 1
        summary.uploaded += ack.applied
        summary.deleted += ack.deleted
    crash_point("outbox-drained")


def _run_key(mapping: Mapping, pharmacy_name: str, content: str) -> list[str]:
    """What makes two runs' documents equal: the source's bytes, the mapping, the pharmacy's
    name and the way documents and digests are made."""
    return [content, mapping.text_digest, pharmacy_name, DOCUMENT_FORMAT, DIGEST_VERSION]


def _synced(
    state: State, mapping: Mapping, pharmacy_name: str, content: str | None
) -> dict[str, Any] | None:
    """The record of the last complete run, if this run would read exactly what it read.

    A complete run (every patient's upload acknowledged, nothing left in the outbox, no
    warning) records the digest of the source's bytes; any later run that may upload clears
    the record before it sends anything. So while the tables keep those bytes and the key
    directory has no new entry, the server holds exactly what a full run would produce, and
    reading, digesting and diffing again can be skipped.
    """
    if content is None:
        return None
    record = state.get_json(SYNCED_SOURCE)
    if not isinstance(record, dict) or record.get("run") != _run_key(
        mapping, pharmacy_name, content
    ):
        return None
    return record


def _unchanged(
    state: State, summary: Summary, record: dict[str, Any], reporter: Reporter, *, dry_run: bool
) -> None:
    patients = int(record["patients"])
    summary.patients_read = summary.unchanged = patients
    summary.enrolled = int(record["enrolled"])
    summary.not_enrolled = patients - summary.enrolled
    summary.waiting_for_enrollment = len(state.waiting_enrollments())
    reporter.info(
        "the source tables are byte for byte those of the last complete run and no new key "
        "was registered: nothing to upload"
    )
    if not dry_run:
        with state.transaction() as c:
            state.set(c, "last_sync_at", now_text())


def _repair(
    ctx: AgentContext,
    api: ServerApi,
    state: State,
    summary: Summary,
    *,
    options: SyncOptions,
    uploader: _Uploader,
    as_of: dt.datetime,
) -> bool:
    """The server refused the statement because its records differ from the state: compare,
    send again the deletions it lacks now, and mark the blocks it lacks (True: the caller runs
    once more to send them; the statement follows). Deletions sent again count against the
    deletion cap, as any deletion does."""
    with summary.timed("repair (compare with the server)"):
        found = differences(state, api.leaves())
        # this run sends or finds something: the record of a complete run no longer holds
        with state.transaction() as c:
            state.set(c, SYNCED_SOURCE, "null")
        if found.resend:
            mark_resend(state, found.resend)
    redeleted = 0
    if found.redelete:
        _, cap = _last_count_and_cap(state)
        count = len(found.redelete)
        if count <= cap or count == options.allow_deletions:
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            for row, version in found.redelete:
                data = make_tombstone(
                    pharmacy_key=ctx.key, handle=row.handle, version=version, deleted_at=now
                )
                uploader.add_tombstone(row, version, data)
            uploader.drain()
            redeleted = count
        else:
            summary.warnings.append(
                f"{count} patients that this agent deleted are live or missing on the server, "
                f"more than the deletion cap of {cap}: their deletions were not sent again; if "
                f"they really left, run `rxvault agent sync --allow-deletions {count}`"
            )
    unknown = (
        f"; it also holds {found.unknown} records that this agent did not send (does another "
        "agent sync this pharmacy?)"
        if found.unknown
        else ""
    )
    if found.exhausted:
        unknown += (
            f"; {found.exhausted} records carry a version on the server that leaves no room for "
            "a newer one (2**53 - 1): left as they are"
        )
    summary.warnings.append(
        "the server's records differed from this agent's state (was the server's database "
        f"restored from an older backup?): {len(found.resend)} patients' blocks that it lacked "
        f"or held in an older version are sent again, {redeleted} deletions were sent "
        f"again{unknown}"
    )
    log.warning(
        "server records differ: %d to send again, %d deletions sent again, %d unknown",
        len(found.resend),
        redeleted,
        found.unknown,
    )
    if found.resend:
        return True
    send_statement(ctx, api, state, summary, as_of=as_of)
    return False


def run_sync(ctx: AgentContext, options: SyncOptions, reporter: Reporter) -> Summary:
    """One sync run (the caller holds no lock; this takes it)."""
    started = time.perf_counter()
    summary = Summary(dry_run=options.dry_run)
    config = ctx.config
    with RunLock(config.lock_path):
        state = open_state(config.state_path)
        cur = state.conn.execute(
            "INSERT INTO runs (started_at, dry_run) VALUES (?, ?)",
            (now_text(), int(options.dry_run)),
        )
        run_id = cur.lastrowid
        exit_code = 4
        try:
            if _run(ctx, options, reporter, state, summary):
                # the server lacked blocks (a restored database): the same run sends them
                for name in ("new", "changed", "unchanged", "gone", "enrolled"):
                    setattr(summary, name, 0)
                reporter.info("sending again the blocks that the server lacks")
                _run(ctx, options, reporter, state, summary, repairing=True)
            exit_code = summary.exit_code
        except UserError as exc:
            exit_code = exc.exit_code
            log.error("sync failed: %s", exc.message)
            raise
        finally:
            summary.seconds = time.perf_counter() - started
            state.conn.execute(
                "UPDATE runs SET finished_at = ?, exit_code = ?, summary = ? WHERE id = ?",
                (now_text(), exit_code, json.dumps(summary.as_dict()), run_id),
            )
            state.close()
    return summary


T = TypeVar("T")


def _in_background(name: str, fn: Callable[..., T], *args: Any) -> Future[T]:
    """``fn(*args)`` on a thread of its own, which ends with it."""
    pool = ThreadPoolExecutor(1, thread_name_prefix=name)
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def _run(
    ctx: AgentContext,
    options: SyncOptions,
    reporter: Reporter,
    state: State,
    summary: Summary,
    *,
    repairing: bool = False,
) -> bool:
    """One pass of a run. True: the server's records differed from the state and patients were
    marked to be sent again, so the caller runs one more pass (``repairing``)."""
    config = ctx.config
    mapping = ctx.mapping()
    api = ctx.api()
    outbox = Outbox(config.outbox_dir, state)
    uploader = _Uploader(ctx, api, outbox, summary)
    directory: DirectoryFetch | None = None
    saving: Future[None] | None = None
    try:
        if not options.dry_run:
            with summary.timed("outbox resend"):
                _drain(ctx, api, outbox, summary)
        pages: dict[str, FilePages] = {}
        with summary.timed("source digest"):
            content = source_digest(mapping, config.source_dir, pages)
        synced = _synced(state, mapping, config.pharmacy_name, content)
        refresh: KeyRefresh | None = None
        if synced is not None:
            with summary.timed("keys (fetch, verify, store)"):
                refresh = fetch_keys(api, state)
            if not refresh.verified and not refresh.refused:
                _unchanged(state, summary, synced, reporter, dry_run=options.dry_run)
                if not options.dry_run:
                    # nothing changed, and the statement says so afresh: the proof that the
                    # pharmacy still syncs (the state is that of the last complete run, so is
                    # the tree head it recorded)
                    head = synced.get("head")
                    as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
                    sent = send_statement(
                        ctx,
                        api,
                        state,
                        summary,
                        as_of=as_of,
                        head=(int(head[0]), bytes.fromhex(head[1])) if head else None,
                        repairable=not repairing,
                    )
                    if sent is MISMATCH:
                        return _repair(
                            ctx,
                            api,
                            state,
                            summary,
                            options=options,
                            uploader=uploader,
                            as_of=as_of,
                        )
                return False
        if refresh is None:
            # fetched while the source is read and digested; verified and stored after that
            directory = start_directory_fetch(api, state)
        # The state's patients and keys, read on another thread (and connection) while the
        # source is read: nothing before the diff changes them but new keys, added below.
        known = _in_background("rxvault-state", _read_known, config.state_path)
        if not options.dry_run and state.get_json(SYNCED_SOURCE) is not None:
            # from here on this run may upload: the record of a complete run no longer holds
            with state.transaction() as c:
                state.set(c, SYNCED_SOURCE, "null")
        reporter.info(f"reading {config.source_dir}")
        reader = IncrementalRead(
            mapping,
            config.pharmacy_name,
            config.home / CACHE_NAME,
            pages=pages,
            attempts=config.sync.read_attempts,
            wait=config.sync.read_wait,
        )
        with summary.timed("read"):
            source = reader.read(config.source_dir)
        # Hashed again in the background: the run records its source digest as complete only
        # if the tables were the same before and after the read.
        content_after = _in_background("rxvault-source", source_digest, mapping, config.source_dir)
        with summary.timed("documents and digests"):
            docs = reader.prepare(source)
            if not options.dry_run:
                # written while the run goes on (mostly the disk's time); waited for at its end
                saving = _in_background("rxvault-cache", reader.save, docs)
        summary.patients_read = len(docs)
        summary.read = "full" if reader.result.full else "incremental"
        summary.recomputed = len(docs) if reader.result.full else len(reader.result.dirty)
        if not reader.result.full:
            log.info(
                "incremental read: %d patients recomputed, the others from %s",
                summary.recomputed,
                CACHE_NAME,
            )
        crash_point("read")
        _check_source(state, source, options)
        with summary.timed("keys (fetch, verify, store)"):
            if refresh is None:
                refresh = fetch_keys(api, state, directory)
            summary.keys_verified = len(refresh.verified)
            summary.keys_refused = len(refresh.refused)
            for seq, _, _, reason in refresh.refused:
                summary.warnings.append(f"key directory entry {seq} refused: {reason}")
            if not options.dry_run:
                refresh.commit(state)
        crash_point("keys")
        # The keys just verified, on top of those read before (a dry run stores nothing, so
        # for it they exist only here).
        pending = {h: k for h, (k, _, _) in refresh.verified.items()}
        with summary.timed("diff"):
            try:
                before = known.result()
            except sqlite3.Error as exc:
                log.warning("state read on another thread failed (%s); reading it again", exc)
                before = None
            plan = _diff(ctx, docs, state, summary, pending, known=before)
        _check_deletions(state, len(docs), summary.gone, options, valid=True)
        waiting = {pid for pid, _, _ in state.waiting_enrollments()}
        summary.waiting_for_enrollment = len(waiting)
        summary.not_enrolled = len(docs) - summary.enrolled
        summary.to_upload = len(plan.upload)
        if options.dry_run:
            summary.deleted = len(plan.gone_live)
            return False
        if plan.upload:
            with summary.timed("diff"), state.transaction() as c:
                state.ensure_patients(
                    c, ((docs.patient_ids[i], plan.handles[i]) for i in plan.upload)
                )
        as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
        todo = plan.upload
        for _round in range(MAX_ROUNDS):
            if not todo:
                break
            uploader.stale = []
            with reporter.progress("sealing and uploading", len(todo)) as update:
                for sealed in seal_stream(
                    _jobs(docs, todo, plan, state, summary, chunk_size=config.sync.batch_items),
                    key=ctx.key,
                    as_of=as_of,
                    total=len(todo),
                    workers=workers_for(config.sync.workers),
                    summary=summary,
                ):
                    crash_point("sealed")
                    for job, envelope in sealed:
                        uploader.add_block(job, envelope)
                    update(len(sealed))
                uploader.drain()
            index = {pid: i for i, pid in enumerate(docs.patient_ids)} if uploader.stale else {}
            todo = [index[p] for p in uploader.stale]
        if todo:
            summary.warnings.append(
                f"{len(todo)} patients were refused as stale by the server {MAX_ROUNDS} times"
            )
        if plan.gone_live:
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            for row in plan.gone_live:
                version = row.version + 1
                data = make_tombstone(
                    pharmacy_key=ctx.key, handle=row.handle, version=version, deleted_at=now
                )
                uploader.add_tombstone(row, version, data)
            uploader.drain()
        summary.bytes_sent = api.bytes_sent
        with summary.timed("final commit"), state.transaction() as c:
            state.record_seen(c, plan.seen, plan.gone_other)
            state.set(c, "source_fingerprint", source.fingerprint)
            state.set(c, "source_last_updates", json.dumps(source.last_updates))
            state.set(c, "last_patient_count", str(len(docs)))
            state.set(c, "last_sync_at", now_text())
            complete = not todo and not summary.warnings and not state.outbox()
            record: dict[str, Any] | None = None
            if complete and content is not None and content_after.result() == content:
                record = {
                    "run": _run_key(mapping, config.pharmacy_name, content),
                    "patients": len(docs),
                    "enrolled": summary.enrolled,
                }
                state.set(c, SYNCED_SOURCE, json.dumps(record))
        crash_point("seen")
        # Last, every batch acknowledged: the signed statement of what the server now holds.
        head = send_statement(ctx, api, state, summary, as_of=as_of, repairable=not repairing)
        if head is MISMATCH:
            return _repair(
                ctx, api, state, summary, options=options, uploader=uploader, as_of=as_of
            )
        if isinstance(head, tuple) and record is not None:
            # the next run on the same tables signs this head again without computing it
            record["head"] = [head[0], head[1].hex()]
            with state.transaction() as c:
                state.set(c, SYNCED_SOURCE, json.dumps(record))
        return False
    finally:
        if saving is not None:
            try:
                saving.result()
            except Exception as exc:  # the cache is an optimization: never fatal
                log.warning("source cache not written (%s): the next run reads everything", exc)
        if directory is not None:
            directory.close()
        uploader.close()
        summary.bytes_sent = api.bytes_sent
        api.close()
