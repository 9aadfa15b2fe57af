"""User-facing CLI errors (as opposed to internal ones, which are bugs).

Exit codes (documented in docs/operations.md):

- 0: success
- 1: finished, with warnings
- 2: failed: bad input, bad configuration or a refused operation (the message says which)
- 3: failed: a network or server problem (retry later)
- 4: failed: an internal error (a bug; please report it)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_WARNINGS = 1
EXIT_FAILED = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERNAL = 4


class UserError(Exception):
    """An error the user can fix; printed as ``rxvault: error:`` and ``rxvault: hint:``."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
