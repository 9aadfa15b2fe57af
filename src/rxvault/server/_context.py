"""What every route needs: settings, the database, the clock and the pepper-derived keys."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from rxvault.server import _audit
from rxvault.server._clock import Clock
from rxvault.server._settings import Settings


@dataclasses.dataclass(frozen=True)
class AppContext:
    settings: Settings
    db: sessionmaker[Session]
    clock: Clock
    pepper: bytes
    audit_key: bytes
    audit_writer: _audit.AuditWriter

    def now(self) -> dt.datetime:
        return self.clock.now()

    def audit(self, session: Session, **fields: str) -> None:
        """Append to the audit log inside ``session``'s transaction."""
        _audit.append(session, self.audit_key, at=self.now(), **fields)

    def audit_alone(self, **fields: str) -> None:
        """Append outside any transaction of the caller (reads, and refusals, whose work is
        rolled back): returns once the entry is committed, grouped with those of concurrent
        requests (:class:`rxvault.server._audit.AuditWriter`)."""
        self.audit_writer.write(_audit.Fields(at=self.now(), **fields))
