"""Login rate limits, kept in the database so that every server process sees the same counts.

Two kinds of keys are counted:

- ``name:<username>`` for every username tried, whether or not the account exists, so that the
  answers never reveal which names exist. After ``FREE_FAILURES`` consecutive failures each new
  attempt must wait twice as long as the last (up to 15 minutes); after ``LOCK_FAILURES`` the name
  is locked until the pharmacy or an administrator unlocks it. A success resets the count.
- ``addr:<address>``: failures from one address within a window; past ``ADDRESS_FREE_FAILURES``
  the address waits with the same doubling backoff.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rxvault.server._models import RateLimit

FREE_FAILURES = 5
LOCK_FAILURES = 100
MAX_BACKOFF_SECONDS = 15 * 60
ADDRESS_WINDOW = dt.timedelta(minutes=15)
ADDRESS_FREE_FAILURES = 30
LOCKED_RETRY_AFTER = 3600


def name_key(username: str) -> str:
    return f"name:{username}"[:191]


def address_key(address: str) -> str:
    return f"addr:{address}"[:191]


@dataclasses.dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0
    locked: bool = False


def _backoff(excess: int) -> int:
    return int(min(2 ** min(excess, 20), MAX_BACKOFF_SECONDS))


def check(session: Session, key: str, now: dt.datetime) -> Verdict:
    """May an attempt be made under ``key`` now?"""
    row = session.get(RateLimit, key)
    if row is None:
        return Verdict(True)
    if key.startswith("name:") and row.consecutive_failures >= LOCK_FAILURES:
        return Verdict(False, LOCKED_RETRY_AFTER, locked=True)
    if row.blocked_until is not None and row.blocked_until > now:
        return Verdict(False, int((row.blocked_until - now).total_seconds()) + 1)
    return Verdict(True)


def _locked_row(session: Session, key: str, now: dt.datetime) -> RateLimit:
    stmt = sa.select(RateLimit).where(RateLimit.key == key).with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(
                RateLimit(
                    key=key,
                    consecutive_failures=0,
                    window_start=now,
                    window_failures=0,
                    blocked_until=None,
                )
            )
    except IntegrityError:
        pass  # another process created it first: lock theirs
    return session.execute(stmt).scalar_one()


def record_failure(session: Session, key: str, now: dt.datetime) -> int:
    """Count a failed attempt; returns the consecutive failure count under ``key``."""
    row = _locked_row(session, key, now)
    row.consecutive_failures += 1
    if now - row.window_start > ADDRESS_WINDOW:
        row.window_start = now
        row.window_failures = 0
    row.window_failures += 1
    if key.startswith("addr:"):
        excess = row.window_failures - ADDRESS_FREE_FAILURES
    else:
        excess = row.consecutive_failures - FREE_FAILURES
    if excess >= 0:
        row.blocked_until = now + dt.timedelta(seconds=_backoff(excess))
    session.flush()
    return row.consecutive_failures


def reset(session: Session, key: str) -> None:
    """Forget the failures under ``key`` (after a success, or an unlock)."""
    session.execute(sa.delete(RateLimit).where(RateLimit.key == key))
