"""``python _agent_entry.py --home HOME sync …``: the agent's command line (the same code as
``python -m rxvault.agent``) with two more crash points for the kill-point sweep, set from here
so that the daily run's own modules stay as they are:

- ``diff``: after the diff against the local state (before anything is sealed or stored);
- ``sealing``: before each block is sealed (``sealing:N`` is the middle of sealing for N > 1).

Small runs seal in this process, so the patched ``seal_compressed`` is the one used.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    from rxvault.agent import _seal, _sync
    from rxvault.agent.__main__ import main as agent_main
    from rxvault.agent._crash import crash_point

    diff = _sync._diff
    seal_compressed = _seal.seal_compressed

    def diff_then_crash(*args: Any, **kwargs: Any) -> Any:
        plan = diff(*args, **kwargs)
        crash_point("diff")
        return plan

    def crash_then_seal(*args: Any, **kwargs: Any) -> bytes:
        crash_point("sealing")
        return seal_compressed(*args, **kwargs)

    _sync._diff = diff_then_crash  # type: ignore[assignment]
    _seal.seal_compressed = crash_then_seal
    sys.argv[0] = "rxvault agent"
    agent_main()


if __name__ == "__main__":
    main()
