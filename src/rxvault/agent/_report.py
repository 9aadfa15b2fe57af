"""What a run tells its operator: progress, a summary, a log file, and the exit code.

On a terminal, progress bars; otherwise (a scheduled task) plain log lines. The log file
(``logs/agent.log`` in the agent's home) gets one line per event with counts only: never a
patient record, a patient id, or a secret.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from rxvault._cli_errors import EXIT_OK, EXIT_WARNINGS

__all__ = ["Reporter", "Summary", "setup_log"]

log = logging.getLogger("rxvault.agent")


def setup_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


@dataclass
class Summary:
    dry_run: bool = False
    patients_read: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    gone: int = 0
    to_upload: int = 0
    uploaded: int = 0
    deleted: int = 0
    enrolled: int = 0
    waiting_for_enrollment: int = 0
    not_enrolled: int = 0
    keys_verified: int = 0
    keys_refused: int = 0
    outbox_resent: int = 0
    batches: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    #: how the tables were read: "" (not read: same bytes as the last run), "full", or
    #: "incremental" (only ``recomputed`` patients read and digested; the others from the cache)
    read: str = ""
    recomputed: int = 0
    warnings: list[str] = field(default_factory=list)
    #: seconds of this process's wall time per phase of the run (see :meth:`timed`)
    phases: dict[str, float] = field(default_factory=dict)
    #: CPU seconds of this process (all its threads) per phase: what a phase costs, whatever
    #: else the machine was doing (sealing workers in other processes are not counted)
    phases_cpu: dict[str, float] = field(default_factory=dict)

    def add(self, phase: str, seconds: float, cpu: float = 0.0) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds
        self.phases_cpu[phase] = self.phases_cpu.get(phase, 0.0) + cpu

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall time of the ``with`` block to ``phases[phase]`` (and the process's CPU
        time to ``phases_cpu[phase]``)."""
        started, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - started, time.process_time() - cpu)

    @property
    def exit_code(self) -> int:
        return EXIT_WARNINGS if self.warnings else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        verb = "would upload" if self.dry_run else "uploaded"
        out = [
            f"patients read:           {self.patients_read}",
            f"  new / changed / same:  {self.new} / {self.changed} / {self.unchanged}",
            f"  gone from the source:  {self.gone}",
            f"{verb}:{' ' * (24 - len(verb))}{self.to_upload if self.dry_run else self.uploaded}",
            f"deleted (signed):        {self.deleted}",
            f"enrolled (verified key): {self.enrolled}",
            f"waiting for enrollment:  {self.waiting_for_enrollment} codes issued, not used yet",
            f"not enrolled:            {self.not_enrolled}",
            f"keys verified / refused: {self.keys_verified} / {self.keys_refused}",
            f"batches / bytes sent:    {self.batches} / {self.bytes_sent}",
            f"time:                    {self.seconds:.1f} s",
        ]
        if self.read == "incremental":
            out.insert(1, f"  read incrementally:    {self.recomputed} patients recomputed")
        elif self.read == "full":
            out.insert(1, "  read in full")
        if self.outbox_resent:
            out.append(f"resent from the outbox:  {self.outbox_resent} batches")
        out += [f"warning: {w}" for w in self.warnings]
        return out


class Reporter:
    """Progress for a person (bars on a TTY) or for a log (plain lines)."""

    def __init__(self, *, interactive: bool | None = None, quiet: bool = False) -> None:
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.quiet = quiet

    def info(self, message: str) -> None:
        log.info(message)
        if not self.quiet:
            click.echo(message, err=True)

    def warning(self, message: str) -> None:
        log.warning(message)
        if not self.quiet:
            click.echo(f"rxvault: warning: {message}", err=True)

    @contextlib.contextmanager
    def progress(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        started = time.perf_counter()
        if self.interactive and not self.quiet and total > 0:
            with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
                yield bar.update
        else:
            done = [0]

            def update(n: int) -> None:
                done[0] += n

            if total:
                log.info("%s: %d to do", label, total)
            yield update
            if total:
                self.info(f"{label}: {done[0]}/{total} in {time.perf_counter() - started:.1f} s")
