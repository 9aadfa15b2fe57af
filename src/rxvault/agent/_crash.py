"""Fault injection for the reliability tests: ``RXVAULT_AGENT_CRASH_AT=STEP[:N]``.

When set, the process ends abruptly (``os._exit``, no clean-up, like a power cut or a killed
task) the N-th time (default: first) it reaches the named step. Steps, in order:
``outbox-drained``, ``read``, ``keys``, ``sealed``, ``outbox-written``, ``sent``,
``committed``, ``seen``. Never set it in production.
"""

from __future__ import annotations

import os

__all__ = ["STEPS", "crash_point"]

STEPS = ("outbox-drained", "read", "keys", "sealed", "outbox-written", "sent", "committed", "seen")
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
        os._exit(CRASH_EXIT)
