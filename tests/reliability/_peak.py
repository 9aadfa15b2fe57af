"""The peak memory of a child process, for the reliability tests' children (stdlib only)."""

from __future__ import annotations

import resource


def peak_rss_kib() -> int:
    """This process's own peak resident set in KiB (VmHWM).

    On Linux ``ru_maxrss`` also counts the memory of the parent that a vfork'ed child shared
    before exec (the test process, hundreds of MB).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
