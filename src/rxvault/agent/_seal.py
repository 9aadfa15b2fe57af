"""Sealing and signing documents, across CPU cores for large runs.

Small runs seal in this process (a worker pool costs more to start than it saves). Large runs
(the first sync) use a pool of worker processes started with ``spawn`` (the same on Windows and
Linux, and safe whatever threads this process has); each worker gets the pharmacy key once.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from rxvault.agent._report import Summary
from rxvault.format import PharmacyKey, seal_block

__all__ = ["POOL_THRESHOLD", "SealJob", "seal_stream"]

#: below this many blocks, sealing stays in this process: starting a worker costs about a second
#: of CPU (it imports the agent), as much as sealing some 2,500 blocks here; a daily run (about
#: 1% of the patients) seals in this process, a first sync on every core.
POOL_THRESHOLD = 5000
CHUNK = 200

_worker_key: PharmacyKey | None = None


@dataclass(frozen=True)
class SealJob:
    patient_id: str
    handle: str
    version: int
    digest: int
    public_key: bytes
    document: bytes


def _init(private: bytes) -> None:
    global _worker_key  # noqa: PLW0603 - one key per worker process, set once
    _worker_key = PharmacyKey.from_private_bytes(private)


def _seal(key: PharmacyKey, jobs: list[SealJob], as_of: dt.datetime) -> list[bytes]:
    return [
        seal_block(
            j.document,
            pharmacy_key=key,
            handle=j.handle,
            version=j.version,
            as_of=as_of,
            recipient_public_key=j.public_key,
        )
        for j in jobs
    ]


def _seal_in_worker(jobs: list[SealJob], as_of: dt.datetime) -> list[bytes]:
    assert _worker_key is not None
    return _seal(_worker_key, jobs, as_of)


def workers_for(setting: int) -> int:
    return setting if setting > 0 else max(1, os.cpu_count() or 1)


def seal_stream(
    chunks: Iterable[list[SealJob]],
    *,
    key: PharmacyKey,
    as_of: dt.datetime,
    total: int,
    workers: int,
    summary: Summary | None = None,
) -> Iterator[list[tuple[SealJob, bytes]]]:
    """Seal chunks of jobs; yields sealed chunks in order, with bounded work in flight.

    ``summary`` gets the time this process spends sealing (or waiting for its workers).
    """

    def note(phase: str, started: float) -> None:
        if summary is not None:
            summary.add(phase, time.perf_counter() - started)

    if total < POOL_THRESHOLD or workers <= 1:
        for chunk in chunks:
            started = time.perf_counter()
            sealed = _seal(key, chunk, as_of)
            note("seal and sign", started)
            yield list(zip(chunk, sealed, strict=True))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init,
        initargs=(key.private_bytes(),),
    ) as pool:
        inflight: deque[tuple[list[SealJob], Future[list[bytes]]]] = deque()
        for chunk in chunks:
            for start in range(0, len(chunk), CHUNK):
                part = chunk[start : start + CHUNK]
                inflight.append((part, pool.submit(_seal_in_worker, part, as_of)))
            while len(inflight) > 4 * workers:
                part, future = inflight.popleft()
                started = time.perf_counter()
                sealed = future.result()
                note("seal and sign (waiting for the workers)", started)
                yield list(zip(part, sealed, strict=True))
        while inflight:
            part, future = inflight.popleft()
            started = time.perf_counter()
            sealed = future.result()
            note("seal and sign (waiting for the workers)", started)
            yield list(zip(part, sealed, strict=True))
