"""Request-scoped helpers shared by the route modules: the context, the caller's address,
agent token authentication and patient session authentication."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.orm import Session

from rxvault.server._context import AppContext
from rxvault.server._db import read_transaction, transaction
from rxvault.server._errors import ApiError, not_authenticated
from rxvault.server._models import Account, ApiToken, Pharmacy
from rxvault.server._models import Session as SessionRow
from rxvault.server._tokens import hash_secret

SESSION_COOKIE = "__Host-rxvault-session"
#: Sessions' ``last_seen_at`` is written at most this often, so that most authenticated reads
#: write nothing (an idle timeout of 15 minutes is then enforced to within this much).
LAST_SEEN_GRANULARITY = dt.timedelta(seconds=60)


def ctx_of(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.rxvault
    return ctx


def address_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("client_address", "unknown"))


@dataclasses.dataclass(frozen=True)
class AgentCaller:
    pharmacy_id: int
    slug: str
    token_id: int
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"pharmacy:{self.slug}/token:{self.token_id}"


def agent_caller(request: Request, scope: str) -> AgentCaller:
    """The pharmacy behind the bearer token, which must hold ``scope``; refusals are audited."""
    ctx = ctx_of(request)
    header = request.headers.get("authorization", "")
    kind, _, token = header.partition(" ")
    now = ctx.now()
    caller: AgentCaller | None = None
    if kind.lower() == "bearer" and token.strip():
        with transaction(ctx.db) as s:
            row = s.execute(
                sa.select(ApiToken, Pharmacy)
                .join(Pharmacy, Pharmacy.id == ApiToken.pharmacy_id)
                .where(ApiToken.token_hash == hash_secret(token.strip()))
            ).one_or_none()
            if row is not None:
                tok, pharmacy = row
                if tok.revoked_at is None and pharmacy.disabled_at is None:
                    caller = AgentCaller(
                        pharmacy.id, pharmacy.slug, tok.id, frozenset(tok.scopes.split())
                    )
                    if tok.last_used_at is None or now - tok.last_used_at > dt.timedelta(minutes=1):
                        tok.last_used_at = now
    if caller is None:
        ctx.audit_alone(
            actor="anonymous",
            action=f"agent.{scope}",
            target=request.url.path,
            address=address_of(request),
            outcome="refused:token",
        )
        raise ApiError(
            401,
            "invalid_token",
            "The API token is missing, unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer realm="rxvault-agent"'},
        )
    if scope not in caller.scopes:
        ctx.audit_alone(
            actor=caller.actor,
            action=f"agent.{scope}",
            target=request.url.path,
            address=address_of(request),
            outcome="refused:scope",
        )
        raise ApiError(403, "insufficient_scope", f"This API token lacks the {scope!r} scope.")
    return caller


@dataclasses.dataclass(frozen=True)
class PatientCaller:
    session_id: int
    public_id: str
    account_id: int
    pharmacy_id: int
    handle: str
    username: str

    @property
    def actor(self) -> str:
        return f"account:{self.account_id}"


@dataclasses.dataclass(frozen=True)
class SessionLookup:
    """What a read of the session cookie found: the caller, or nothing; and what is left to
    write (a session to delete, a ``last_seen_at`` to move), done by :func:`settle_session`."""

    caller: PatientCaller | None
    session_id: int | None = None
    delete: bool = False
    touch: bool = False


def session_query(token: str, *columns: Any) -> sa.Select[*tuple[Any, ...]]:
    """The session row behind ``token`` with its account's fields (and ``columns``)."""
    return (
        sa.select(
            SessionRow.id,
            SessionRow.public_id,
            SessionRow.expires_at,
            SessionRow.last_seen_at,
            Account.id.label("account_id"),
            Account.pharmacy_id,
            Account.handle,
            Account.username,
            Account.revoked_at,
            Account.locked_at,
            *columns,
        )
        .select_from(SessionRow)
        .join(Account, Account.id == SessionRow.account_id)
        .where(SessionRow.token_hash == hash_secret(token))
    )


def session_lookup(ctx: AppContext, row: sa.Row[Any] | None) -> SessionLookup:
    """Judge a :func:`session_query` row: an expired session (idle or absolute), or one of a
    locked or revoked account, is no caller (and is to be deleted)."""
    if row is None:
        return SessionLookup(None)
    now = ctx.now()
    idle = dt.timedelta(seconds=ctx.settings.session_idle_seconds)
    expired = now >= row.expires_at or now - row.last_seen_at >= idle
    if expired or row.revoked_at is not None or row.locked_at is not None:
        return SessionLookup(None, row.id, delete=True)
    caller = PatientCaller(
        row.id, row.public_id, row.account_id, row.pharmacy_id, row.handle, row.username
    )
    return SessionLookup(caller, row.id, touch=now - row.last_seen_at >= LAST_SEEN_GRANULARITY)


def read_session(s: Session, ctx: AppContext, token: str | None) -> SessionLookup:
    """The account behind a session token, read without writing (in a read transaction)."""
    if not token:
        return SessionLookup(None)
    return session_lookup(ctx, s.execute(session_query(token)).one_or_none())


def settle_session(ctx: AppContext, lookup: SessionLookup) -> None:
    """Delete a dead session or move ``last_seen_at`` forward: a write only when needed (at most
    once per :data:`LAST_SEEN_GRANULARITY` per session), so that reads stay reads."""
    if lookup.session_id is None or not (lookup.delete or lookup.touch):
        return
    now = ctx.now()
    with transaction(ctx.db) as s:
        if lookup.delete:
            s.execute(sa.delete(SessionRow).where(SessionRow.id == lookup.session_id))
        else:
            s.execute(
                sa.update(SessionRow)
                .where(SessionRow.id == lookup.session_id, SessionRow.last_seen_at < now)
                .values(last_seen_at=now)
            )


def refuse_session(request: Request, action: str) -> ApiError:
    """Audit a refused session (when a cookie was sent) and return the 401 to raise."""
    if request.cookies.get(SESSION_COOKIE):
        ctx_of(request).audit_alone(
            actor="anonymous",
            action=action,
            target="",
            address=address_of(request),
            outcome="refused:session",
        )
    return not_authenticated()


def patient_caller(request: Request, action: str) -> PatientCaller:
    """The account behind the session cookie; expired or unknown sessions are refused."""
    ctx = ctx_of(request)
    with read_transaction(ctx.db) as s:
        lookup = read_session(s, ctx, request.cookies.get(SESSION_COOKIE))
    settle_session(ctx, lookup)
    if lookup.caller is None:
        raise refuse_session(request, action)
    return lookup.caller
