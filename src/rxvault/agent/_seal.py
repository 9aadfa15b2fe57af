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
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

from rxvault.agent._report import Summary
from rxvault.format import PharmacyKey, compress_document, seal_compressed

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


def _compress(jobs: list[SealJob]) -> list[bytes]:
    return [compress_document(j.document) for j in jobs]


def _seal_compressed(
    key: PharmacyKey, jobs: list[SealJob], compressed: list[bytes], as_of: dt.datetime
) -> list[bytes]:
    return [
        seal_compressed(
            c,
            pharmacy_key=key,
            handle=j.handle,
            version=j.version,
            as_of=as_of,
            recipient_public_key=j.public_key,
        )
        for j, c in zip(jobs, compressed, strict=True)
    ]


def _seal_in_worker(jobs: list[SealJob], as_of: dt.datetime) -> list[bytes]:
    assert _worker_key is not None
    return _seal_compressed(_worker_key, jobs, _compress(jobs), as_of)


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

    def seal_ahead(
        part: list[SealJob], compressed: Future[list[bytes]]
    ) -> list[tuple[SealJob, bytes]]:
        started = time.perf_counter()
        sealed = _seal_compressed(key, part, compressed.result(), as_of)
        note("seal and sign", started)
        return list(zip(part, sealed, strict=True))

    if total < POOL_THRESHOLD or workers <= 1:
        # In this process; the documents of the next chunk are compressed on a thread (zlib
        # releases the GIL) while this one's are sealed and signed.
        with ThreadPoolExecutor(1, thread_name_prefix="rxvault-compress") as squeezer:
            ahead: tuple[list[SealJob], Future[list[bytes]]] | None = None
            for chunk in chunks:
                current = (chunk, squeezer.submit(_compress, chunk))
                if ahead is not None:
                    yield seal_ahead(*ahead)
                ahead = current
            if ahead is not None:
                yield seal_ahead(*ahead)
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
