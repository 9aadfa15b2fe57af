"""One agent run at a time per home directory: an OS lock on ``agent.lock``.

The lock is held by the open file (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows), so
the operating system releases it when the process ends, however it ends.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType
from typing import IO

from rxvault._cli_errors import UserError

__all__ = ["RunLock"]


def _try_lock(fh: IO[bytes]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+b")  # held open: the lock lives as long as the file
        fh.seek(0)  # msvcrt locks bytes from the current position: always byte 0
        if not _try_lock(fh):
            fh.close()
            raise UserError(
                f"{self.path}: another rxvault agent run is in progress",
                hint="wait for it to finish; the lock is released when that process ends",
            )
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n".encode("ascii"))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
