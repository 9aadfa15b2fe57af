"""Fault injection for the reliability tests: ``RXVAULT_AGENT_CRASH_AT=STEP[:N]``.

When set, the process is killed (``SIGKILL`` on POSIX: no clean-up, no ``finally``, no flush,
like a power cut or a killed task; ``os._exit`` elsewhere) the N-th time (default: first) it
reaches the named step. Steps, in order of a run:

- ``outbox-drained``: batches left by an interrupted run were resent;
- ``read``: the source was read and the documents prepared;
- ``keys``: the key directory was fetched, verified and stored;
- ``sealed``: a chunk of blocks was sealed and signed (before it is grouped into batches);
- ``outbox-written``: a batch is on disk with its outbox row, not yet sent;
- ``sent``: the server acknowledged a batch, the local state does not know it yet;
- ``commit``: inside a local transaction, its statements done, before its ``COMMIT`` (every
  transaction of the state database: the N-th is the N-th of the run);
- ``committed``: a batch's acknowledgement is committed locally;
- ``seen``: the run's final local commit is done.

The reliability harness adds ``diff`` and ``sealing`` (before each block is sealed) from outside
(tests/reliability/_agent_entry.py). Never set it in production.
"""

from __future__ import annotations

import os
import signal

__all__ = ["STEPS", "crash_point"]

STEPS = (
    "outbox-drained",
    "read",
    "keys",
    "sealed",
    "outbox-written",
    "sent",
    "commit",
    "committed",
    "seen",
)
CRASH_EXIT = 99
_counts: dict[str, int] = {}


def crash_point(step: str) -> None:
    spec = os.environ.get("RXVAULT_AGENT_CRASH_AT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != step:
        return
    _counts[step] = _counts.get(step, 0) + 1
    if _counts[step] == (int(nth) if nth else 1):
        kill = getattr(signal, "SIGKILL", None)
        if kill is not None:
            os.kill(os.getpid(), kill)
        os._exit(CRASH_EXIT)


def crashed(returncode: int) -> bool:
    """Whether a process's return code is that of a crash injected here."""
    return returncode in (CRASH_EXIT, -getattr(signal, "SIGKILL", 9))
