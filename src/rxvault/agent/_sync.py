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
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rxvault._cli_errors import UserError
from rxvault.agent._api import ServerApi
from rxvault.agent._context import AgentContext
from rxvault.agent._crash import crash_point
from rxvault.agent._documents import Documents, prepare
from rxvault.agent._keys import fetch_keys
from rxvault.agent._lock import RunLock
from rxvault.agent._outbox import Outbox, OutboxItem
from rxvault.agent._report import Reporter, Summary, log
from rxvault.agent._seal import SealJob, seal_stream, workers_for
from rxvault.agent._source import SourceError, SourceRead, read_source
from rxvault.agent._state import PatientRow, State, now_text, open_state
from rxvault.format import make_batch, make_tombstone, new_batch_id

__all__ = ["SyncOptions", "run_sync"]

DELETE_FLOOR = 5
DELETE_SHARE = 0.02
MIN_PRESENT = 0.95
TOMBSTONES_PER_BATCH = 50
BUILD_CHUNK = 5000
MAX_ROUNDS = 3


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


def _check_deletions(
    state: State, present: int, gone: int, options: SyncOptions, valid: bool
) -> None:
    last = int(state.get("last_patient_count", "0") or 0)
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
    cap = max(DELETE_FLOOR, math.ceil(DELETE_SHARE * last))
    if gone > cap:
        raise GuardRefused(
            f"{gone} patients are gone from the source, more than the cap of {cap} "
            f"(max({DELETE_FLOOR}, {DELETE_SHARE:.0%} of {last})); nothing was uploaded",
            hint=allow,
        )


@dataclass
class _Plan:
    upload: list[int]  # patient indices into docs
    rows: dict[str, PatientRow]
    keys: dict[str, bytes]
    handles: list[str]
    gone_live: list[PatientRow]
    gone_other: list[str]
    seen: list[tuple[str, str, int]]


def _diff(
    ctx: AgentContext, docs: Documents, state: State, summary: Summary, pending: dict[str, bytes]
) -> _Plan:
    rows = state.patients()
    keys = {**state.keys(), **pending}
    digests = docs.digests.view(np.int64).tolist()
    upload: list[int] = []
    handles: list[str] = []
    seen: list[tuple[str, str, int]] = []
    present: set[str] = set()
    for i, pid in enumerate(docs.patient_ids):
        present.add(pid)
        digest = digests[i]
        row = rows.get(pid)
        if row is None:
            handle = ctx.handle(pid)
            summary.new += 1
            seen.append((pid, handle, digest))
        else:
            handle = row.handle
            if row.seen_digest != digest or not row.in_source:
                summary.changed += 1
                seen.append((pid, handle, digest))
            else:
                summary.unchanged += 1
        handles.append(handle)
        key = keys.get(handle)
        if key is None:
            continue
        summary.enrolled += 1
        if (
            row is None
            or row.server_state != "live"
            or row.sent_digest != digest
            or row.sent_key != key
        ):
            upload.append(i)
    gone_live = []
    gone_other = []
    for pid, row in rows.items():
        if row.in_source and pid not in present:
            if row.server_state == "live":
                gone_live.append(row)
            else:
                gone_other.append(pid)
    summary.gone = len(gone_live) + len(gone_other)
    return _Plan(upload, rows, keys, handles, gone_live, gone_other, seen)


class _Uploader:
    """Groups sealed items into batches, writes each to the outbox, sends it, commits it."""

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
        if not self.items:
            return
        batch_id = new_batch_id()
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
        self.outbox.write(batch_id, data, items)
        ack = self.outbox.send(self.api, batch_id, data, items)
        self.summary.batches += 1
        self.summary.uploaded += ack.applied
        self.summary.deleted += ack.deleted
        self.stale.extend(ack.stale or [])


def _jobs(
    docs: Documents,
    indices: list[int],
    plan: _Plan,
    state: State,
) -> Iterator[list[SealJob]]:
    digests = docs.digests.view(np.int64)
    for start in range(0, len(indices), BUILD_CHUNK):
        part = indices[start : start + BUILD_CHUNK]
        ids = [docs.patient_ids[i] for i in part]
        marks = ",".join("?" * len(ids))
        query = f"SELECT patient_id, version FROM patients WHERE patient_id IN ({marks})"  # noqa: S608 - placeholders only
        versions = dict(state.conn.execute(query, ids).fetchall())
        chunk = []
        for index, document in docs.build(part):
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
            _run(ctx, options, reporter, state, summary)
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


def _run(
    ctx: AgentContext, options: SyncOptions, reporter: Reporter, state: State, summary: Summary
) -> None:
    config = ctx.config
    mapping = ctx.mapping()
    api = ctx.api()
    outbox = Outbox(config.outbox_dir, state)
    try:
        if not options.dry_run:
            _drain(ctx, api, outbox, summary)
        reporter.info(f"reading {config.source_dir}")
        source = read_source(
            mapping,
            config.source_dir,
            attempts=config.sync.read_attempts,
            wait=config.sync.read_wait,
        )
        docs = prepare(mapping, source, config.pharmacy_name)
        summary.patients_read = len(docs)
        crash_point("read")
        _check_source(state, source, options)
        refresh = fetch_keys(api, state)
        summary.keys_verified = len(refresh.verified)
        summary.keys_refused = len(refresh.refused)
        for seq, _, _, reason in refresh.refused:
            summary.warnings.append(f"key directory entry {seq} refused: {reason}")
        if not options.dry_run:
            refresh.commit(state)
        crash_point("keys")
        # A dry run stores nothing: the keys it just verified are used from memory.
        pending = {h: k for h, (k, _, _) in refresh.verified.items()} if options.dry_run else {}
        plan = _diff(ctx, docs, state, summary, pending)
        _check_deletions(state, len(docs), summary.gone, options, valid=True)
        waiting = {pid for pid, _, _ in state.waiting_enrollments()}
        summary.waiting_for_enrollment = len(waiting)
        summary.not_enrolled = len(docs) - summary.enrolled
        summary.to_upload = len(plan.upload)
        if options.dry_run:
            summary.deleted = len(plan.gone_live)
            return
        with state.transaction() as c:
            state.ensure_patients(c, ((docs.patient_ids[i], plan.handles[i]) for i in plan.upload))
        uploader = _Uploader(ctx, api, outbox, summary)
        as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
        todo = plan.upload
        for _round in range(MAX_ROUNDS):
            if not todo:
                break
            uploader.stale = []
            with reporter.progress("sealing and uploading", len(todo)) as update:
                for sealed in seal_stream(
                    _jobs(docs, todo, plan, state),
                    key=ctx.key,
                    as_of=as_of,
                    total=len(todo),
                    workers=workers_for(config.sync.workers),
                ):
                    crash_point("sealed")
                    for job, envelope in sealed:
                        uploader.add_block(job, envelope)
                    update(len(sealed))
                uploader.flush()
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
            uploader.flush()
        summary.bytes_sent = api.bytes_sent
        with state.transaction() as c:
            state.record_seen(c, plan.seen, plan.gone_other)
            state.set(c, "source_fingerprint", source.fingerprint)
            state.set(c, "source_last_updates", json.dumps(source.last_updates))
            state.set(c, "last_patient_count", str(len(docs)))
            state.set(c, "last_sync_at", now_text())
        crash_point("seen")
    except SourceError:
        raise
    finally:
        summary.bytes_sent = api.bytes_sent
        api.close()
