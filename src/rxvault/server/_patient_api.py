"""The patient protocol: pre-login, registration, login, the key bundle, the block, password
changes and sessions. Authentication errors never reveal whether an account exists."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rxvault.server import _crypto, _ratelimit, _statement
from rxvault.server._accounts import kdf_in, kdf_out, normalize_username, validated_username
from rxvault.server._context import AppContext
from rxvault.server._db import read_transaction, transaction
from rxvault.server._deps import (
    SESSION_COOKIE,
    PatientCaller,
    address_of,
    ctx_of,
    patient_caller,
    refuse_session,
    session_lookup,
    session_query,
    settle_session,
)
from rxvault.server._errors import (
    ApiError,
    invalid_credentials,
    not_found,
    too_many_attempts,
)
from rxvault.server._ingest import lock_pharmacy
from rxvault.server._models import (
    Account,
    Enrollment,
    KeyRegistration,
    Pharmacy,
    PharmacyStatement,
    Record,
)
from rxvault.server._models import Session as SessionRow
from rxvault.server._schemas import (
    AccountOut,
    BlockOut,
    Empty,
    KeyBundleOut,
    LoginIn,
    PasswordChangeIn,
    PasswordStartOut,
    PharmacyPublic,
    PreloginIn,
    PreloginOut,
    RegistrationIn,
    RegistrationStartIn,
    RegistrationStartOut,
    SessionOut,
    SessionsOut,
)
from rxvault.server._tokens import new_session_token

router = APIRouter(prefix="/api/v1", tags=["patient"])


def _enrollment_invalid() -> ApiError:
    return ApiError(
        404,
        "enrollment_invalid",
        "This enrollment code is not valid. It may have expired or been used already; "
        "please ask your pharmacy for a new one.",
    )


def _set_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, path="/", secure=True, httponly=True, samesite="strict"
    )


def _open_session(
    s: Session, ctx: AppContext, account_id: int, request: Request, response: Response
) -> None:
    token, token_hash, public_id = new_session_token()
    now = ctx.now()
    idle = dt.timedelta(seconds=ctx.settings.session_idle_seconds)
    s.execute(
        sa.delete(SessionRow).where(
            SessionRow.account_id == account_id,
            sa.or_(SessionRow.expires_at <= now, SessionRow.last_seen_at <= now - idle),
        )
    )
    s.add(
        SessionRow(
            token_hash=token_hash,
            public_id=public_id,
            account_id=account_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(seconds=ctx.settings.session_absolute_seconds),
            address=address_of(request)[:64],
            user_agent=request.headers.get("user-agent", "")[:200],
        )
    )
    _set_cookie(response, token)


def _pharmacy_public(p: Pharmacy) -> PharmacyPublic:
    assert p.public_key is not None
    assert p.key_id is not None
    return PharmacyPublic(name=p.name, key_id=p.key_id, public_key=p.public_key)


def _guard(ctx: AppContext, request: Request, keys: list[str], action: str) -> None:
    """Refuse (429, audited) when any rate-limit key is blocked."""
    now = ctx.now()
    with read_transaction(ctx.db) as s:
        verdicts = [_ratelimit.check(s, key, now) for key in keys]
    blocked = [v for v in verdicts if not v.allowed]
    if blocked:
        ctx.audit_alone(
            actor="anonymous",
            action=action,
            address=address_of(request),
            outcome="refused:rate-limit",
        )
        raise too_many_attempts(max(v.retry_after for v in blocked))


@router.post("/prelogin", response_model=PreloginOut)
def prelogin(body: PreloginIn, request: Request) -> PreloginOut:
    """Salt and KDF parameters for a username; unknown names get a stable decoy alike."""
    ctx = ctx_of(request)
    name = normalize_username(body.username)
    with read_transaction(ctx.db) as s:
        account = s.execute(sa.select(Account).where(Account.username == name)).scalar_one_or_none()
        if account is not None and account.revoked_at is None:
            return PreloginOut(
                salt=account.salt,
                kdf=kdf_out(
                    _crypto.KdfParams(
                        account.kdf_memory_kib, account.kdf_iterations, account.kdf_parallelism
                    )
                ),
            )
    return PreloginOut(salt=_crypto.decoy_salt(ctx.pepper, name), kdf=kdf_out(_crypto.DEFAULT_KDF))


def _usable_enrollment(
    s: Session, lookup_id: str, now: dt.datetime, *, lock: bool
) -> tuple[Enrollment, Pharmacy] | None:
    stmt = sa.select(Enrollment).where(Enrollment.lookup_id == lookup_id)
    if lock:
        stmt = stmt.with_for_update()
    enrollment = s.execute(stmt).scalar_one_or_none()
    if (
        enrollment is None
        or enrollment.used_at is not None
        or enrollment.revoked_at is not None
        or enrollment.expires_at <= now
    ):
        return None
    pharmacy = s.get_one(Pharmacy, enrollment.pharmacy_id)
    if pharmacy.public_key is None or pharmacy.disabled_at is not None:
        return None
    return enrollment, pharmacy


@router.post("/registration/start", response_model=RegistrationStartOut)
def registration_start(body: RegistrationStartIn, request: Request) -> RegistrationStartOut:
    """Check an enrollment code (by its lookup id) and get what registration needs."""
    ctx = ctx_of(request)
    address = address_of(request)
    akey = _ratelimit.address_key(address)
    _guard(ctx, request, [akey], "patient.registration-start")
    now = ctx.now()
    with transaction(ctx.db) as s:
        found = _usable_enrollment(s, body.lookup_id, now, lock=True)
        if found is None:
            _ratelimit.record_failure(s, akey, now)
            ctx.audit(
                s,
                actor="anonymous",
                action="patient.registration-start",
                address=address,
                outcome="refused:enrollment",
            )
        else:
            enrollment, pharmacy = found
            if enrollment.pending_salt is None:
                enrollment.pending_salt = _crypto.new_salt()
            salt = enrollment.pending_salt
            return RegistrationStartOut(
                handle=enrollment.handle,
                pin_tag=enrollment.pin_tag,
                pharmacy=_pharmacy_public(pharmacy),
                salt=salt,
                kdf=kdf_out(_crypto.DEFAULT_KDF),
                server_share=_crypto.server_key_share(ctx.pepper, salt),
                expires_at=enrollment.expires_at,
            )
    raise _enrollment_invalid()


@router.post("/registration", response_model=AccountOut, status_code=201)
def register(body: RegistrationIn, request: Request, response: Response) -> AccountOut:
    """Create the account (the key bundle was wrapped with the share from ``/registration/start``)
    and open a session. A re-enrollment replaces the handle's old account, key and block."""
    ctx = ctx_of(request)
    address = address_of(request)
    username = validated_username(body.username)
    params = kdf_in(body.kdf)
    if len(body.public_key) != 32:
        raise ApiError(422, "invalid_request", "public_key must be a 32-byte X25519 public key")
    now = ctx.now()
    failure: ApiError | None = None
    try:
        with transaction(ctx.db) as s:
            peek = s.execute(
                sa.select(Enrollment.pharmacy_id).where(Enrollment.lookup_id == body.lookup_id)
            ).scalar_one_or_none()
            if peek is not None:
                lock_pharmacy(s, peek)
            found = _usable_enrollment(s, body.lookup_id, now, lock=True)
            if found is None or found[0].pending_salt is None:
                failure = _enrollment_invalid()
            elif _name_taken(s, username, found[1].id, found[0].handle):
                failure = ApiError(
                    409, "username_taken", "This username is taken; please choose another."
                )
            if failure is not None or found is None:
                pass
            else:
                enrollment, pharmacy = found
                salt = enrollment.pending_salt
                assert salt is not None
                replaced = _remove_old_account(s, pharmacy.id, enrollment.handle)
                account = Account(
                    pharmacy_id=pharmacy.id,
                    handle=enrollment.handle,
                    username=username,
                    salt=salt,
                    kdf_memory_kib=params.memory_kib,
                    kdf_iterations=params.iterations,
                    kdf_parallelism=params.parallelism,
                    verifier=_crypto.auth_verifier(ctx.pepper, salt, body.auth_key),
                    key_bundle=body.key_bundle,
                    public_key=body.public_key,
                    binding=body.binding,
                    created_at=now,
                    password_changed_at=now,
                )
                s.add(account)
                pharmacy.directory_seq += 1
                s.add(
                    KeyRegistration(
                        pharmacy_id=pharmacy.id,
                        seq=pharmacy.directory_seq,
                        handle=enrollment.handle,
                        lookup_id=enrollment.lookup_id,
                        public_key=body.public_key,
                        binding=body.binding,
                        registered_at=now,
                    )
                )
                enrollment.used_at = now
                enrollment.pending_salt = None
                s.flush()
                _open_session(s, ctx, account.id, request, response)
                ctx.audit(
                    s,
                    actor=f"account:{account.id}",
                    action="patient.register",
                    target=f"pharmacy:{pharmacy.slug}",
                    address=address,
                    detail="replaced-previous-account" if replaced else "",
                )
                return AccountOut(
                    username=username,
                    handle=account.handle,
                    pharmacy=_pharmacy_public(pharmacy),
                    created_at=now,
                    password_changed_at=now,
                )
    except IntegrityError:
        failure = ApiError(409, "username_taken", "This username is taken; please choose another.")
    assert failure is not None
    ctx.audit_alone(
        actor="anonymous",
        action="patient.register",
        address=address,
        outcome=f"refused:{failure.code}",
    )
    raise failure


def _name_taken(s: Session, username: str, pharmacy_id: int, handle: str) -> bool:
    """Whether another account holds the name. The account a re-enrollment replaces (same
    pharmacy, same handle) does not count: the patient may keep their username."""
    holder = s.execute(
        sa.select(Account.pharmacy_id, Account.handle).where(Account.username == username)
    ).one_or_none()
    return holder is not None and (holder.pharmacy_id, holder.handle) != (pharmacy_id, handle)


def _remove_old_account(s: Session, pharmacy_id: int, handle: str) -> bool:
    old = s.execute(
        sa.select(Account).where(Account.pharmacy_id == pharmacy_id, Account.handle == handle)
    ).scalar_one_or_none()
    if old is None:
        return False
    s.execute(sa.delete(SessionRow).where(SessionRow.account_id == old.id))
    s.delete(old)
    # The old block was encrypted to the old key: remove it (its version stays the floor).
    s.execute(
        sa.update(Record)
        .where(Record.pharmacy_id == pharmacy_id, Record.handle == handle)
        .values(state="pending", envelope=None, tombstone=None, block_version=None)
    )
    s.flush()
    return True


@router.post("/login", response_model=AccountOut)
def login(body: LoginIn, request: Request, response: Response) -> AccountOut:
    """Check the auth key against the peppered verifier and open a session."""
    ctx = ctx_of(request)
    address = address_of(request)
    name = normalize_username(body.username)
    nkey, akey = _ratelimit.name_key(name), _ratelimit.address_key(address)
    _guard(ctx, request, [nkey, akey], "patient.login")
    now = ctx.now()
    with transaction(ctx.db) as s:
        account = s.execute(sa.select(Account).where(Account.username == name)).scalar_one_or_none()
        if account is None:
            # The same work as for a real account, so the timing does not tell them apart.
            salt = _crypto.decoy_salt(ctx.pepper, name)
            _crypto.check_auth(
                ctx.pepper, salt, body.auth_key, _crypto.auth_verifier(ctx.pepper, salt, b"\0" * 32)
            )
            ok = False
        else:
            ok = _crypto.check_auth(ctx.pepper, account.salt, body.auth_key, account.verifier)
            ok = ok and account.revoked_at is None and account.locked_at is None
        if ok and account is not None:
            _ratelimit.reset(s, nkey)
            _open_session(s, ctx, account.id, request, response)
            answer = AccountOut(
                username=account.username,
                handle=account.handle,
                pharmacy=_pharmacy_public(s.get_one(Pharmacy, account.pharmacy_id)),
                created_at=account.created_at,
                password_changed_at=account.password_changed_at,
            )
            # Last: the audit head stays locked from here to the commit.
            ctx.audit(s, actor=f"account:{account.id}", action="patient.login", address=address)
            return answer
        failures = _ratelimit.record_failure(s, nkey, now)
        _ratelimit.record_failure(s, akey, now)
        if account is not None and failures >= _ratelimit.LOCK_FAILURES and not account.locked_at:
            account.locked_at = now
        ctx.audit(
            s,
            actor="anonymous",
            action="patient.login",
            target=f"account:{account.id}" if account is not None else "unknown-name",
            address=address,
            outcome="refused:credentials",
        )
    raise invalid_credentials()


@router.post("/logout", status_code=204)
def logout(body: Empty, request: Request, response: Response) -> None:
    """End this session (idempotent) and clear the cookie."""
    ctx = ctx_of(request)
    try:
        caller = patient_caller(request, "patient.logout")
    except ApiError:
        caller = None
    if caller is not None:
        with transaction(ctx.db) as s:
            s.execute(sa.delete(SessionRow).where(SessionRow.id == caller.session_id))
            ctx.audit(s, actor=caller.actor, action="patient.logout", address=address_of(request))
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")


def _account(s: Session, caller: PatientCaller) -> Account:
    return s.get_one(Account, caller.account_id)


@router.get("/me", response_model=AccountOut)
def me(request: Request) -> AccountOut:
    caller = patient_caller(request, "patient.me")
    with read_transaction(ctx_of(request).db) as s:
        account = _account(s, caller)
        return AccountOut(
            username=account.username,
            handle=account.handle,
            pharmacy=_pharmacy_public(s.get_one(Pharmacy, account.pharmacy_id)),
            created_at=account.created_at,
            password_changed_at=account.password_changed_at,
        )


@router.get("/me/key-bundle", response_model=KeyBundleOut)
def key_bundle(request: Request) -> KeyBundleOut:
    """The wrapped key bundle and the server key share: only to an authenticated session."""
    caller = patient_caller(request, "patient.key-bundle")
    ctx = ctx_of(request)
    with read_transaction(ctx.db) as s:
        account = _account(s, caller)
        pharmacy = s.get_one(Pharmacy, account.pharmacy_id)
        assert pharmacy.public_key is not None
        answer = KeyBundleOut(
            key_bundle=account.key_bundle,
            server_share=_crypto.server_key_share(ctx.pepper, account.salt),
            public_key=account.public_key,
            pharmacy_public_key=pharmacy.public_key,
            handle=account.handle,
            username=account.username,
        )
    ctx.audit_alone(actor=caller.actor, action="patient.key-bundle", address=address_of(request))
    return answer


@router.get("/me/block", response_model=BlockOut)
def my_block(request: Request) -> BlockOut:
    """The patient's own signed, encrypted block (or signed deletion, or nothing yet).

    The hot path of the portal: one query in a read transaction (no lock), a write only when
    the session must be touched or ended, and the audit entry committed (grouped with those of
    concurrent requests) before the answer leaves."""
    ctx = ctx_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    row = None
    if token:
        query = session_query(
            token,
            Record.state,
            Record.version,
            Record.block_version,
            Record.envelope,
            Record.tombstone,
            PharmacyStatement.statement,
        ).outerjoin(
            Record,
            sa.and_(Record.pharmacy_id == Account.pharmacy_id, Record.handle == Account.handle),
        )
        query = query.outerjoin(
            PharmacyStatement, PharmacyStatement.pharmacy_id == Account.pharmacy_id
        )
        with read_transaction(ctx.db) as s:
            row = s.execute(query).one_or_none()
    lookup = session_lookup(ctx, row)
    settle_session(ctx, lookup)
    caller = lookup.caller
    if caller is None or row is None:
        raise refuse_session(request, "patient.block")
    ctx.audit_alone(actor=caller.actor, action="patient.block", address=address_of(request))
    # the pharmacy's sync statement and this handle's inclusion proof (see _statement)
    extra = _statement.block_fields(ctx, caller.pharmacy_id, caller.handle, row.statement)
    if row.state == "live" and row.envelope is not None:
        return BlockOut(
            state="live",
            handle=caller.handle,
            version=row.block_version,
            envelope=row.envelope,
            **extra,
        )
    if row.state == "deleted" and row.tombstone is not None:
        return BlockOut(
            state="deleted",
            handle=caller.handle,
            version=row.version,
            tombstone=row.tombstone,
            **extra,
        )
    return BlockOut(state="pending", handle=caller.handle, **extra)


@router.post("/me/password/start", response_model=PasswordStartOut)
def password_start(body: Empty, request: Request) -> PasswordStartOut:
    """A new salt, and the server share for it, to wrap the key bundle under a new password."""
    caller = patient_caller(request, "patient.password-start")
    ctx = ctx_of(request)
    with transaction(ctx.db) as s:
        account = _account(s, caller)
        account.pending_salt = _crypto.new_salt()
        return PasswordStartOut(
            salt=account.pending_salt,
            kdf=kdf_out(_crypto.DEFAULT_KDF),
            server_share=_crypto.server_key_share(ctx.pepper, account.pending_salt),
        )


@router.post("/me/password", response_model=AccountOut)
def change_password(body: PasswordChangeIn, request: Request, response: Response) -> AccountOut:
    """Replace the verifier and key bundle; every other session ends, this one gets a new id."""
    caller = patient_caller(request, "patient.password")
    ctx = ctx_of(request)
    params = kdf_in(body.kdf)
    nkey = _ratelimit.name_key(caller.username)
    _guard(ctx, request, [nkey], "patient.password")
    now = ctx.now()
    with transaction(ctx.db) as s:
        account = _account(s, caller)
        pending = account.pending_salt
        if pending is None:
            failure = ApiError(
                409,
                "password_change_not_started",
                "Start the password change first (/api/v1/me/password/start).",
            )
        elif not _crypto.check_auth(
            ctx.pepper, account.salt, body.current_auth_key, account.verifier
        ):
            _ratelimit.record_failure(s, nkey, now)
            failure = invalid_credentials()
        else:
            account.salt = pending
            account.pending_salt = None
            account.verifier = _crypto.auth_verifier(ctx.pepper, pending, body.new_auth_key)
            account.kdf_memory_kib = params.memory_kib
            account.kdf_iterations = params.iterations
            account.kdf_parallelism = params.parallelism
            account.key_bundle = body.key_bundle
            account.password_changed_at = now
            s.execute(sa.delete(SessionRow).where(SessionRow.account_id == account.id))
            _open_session(s, ctx, account.id, request, response)
            ctx.audit(s, actor=caller.actor, action="patient.password", address=address_of(request))
            return AccountOut(
                username=account.username,
                handle=account.handle,
                pharmacy=_pharmacy_public(s.get_one(Pharmacy, account.pharmacy_id)),
                created_at=account.created_at,
                password_changed_at=now,
            )
        ctx.audit(
            s,
            actor=caller.actor,
            action="patient.password",
            address=address_of(request),
            outcome=f"refused:{failure.code}",
        )
    raise failure


@router.get("/me/sessions", response_model=SessionsOut)
def my_sessions(request: Request) -> SessionsOut:
    caller = patient_caller(request, "patient.sessions")
    ctx = ctx_of(request)
    now = ctx.now()
    idle = dt.timedelta(seconds=ctx.settings.session_idle_seconds)
    with read_transaction(ctx.db) as s:
        rows = (
            s.execute(
                sa.select(SessionRow)
                .where(
                    SessionRow.account_id == caller.account_id,
                    SessionRow.expires_at > now,
                    SessionRow.last_seen_at > now - idle,
                )
                .order_by(SessionRow.created_at)
            )
            .scalars()
            .all()
        )
    return SessionsOut(
        sessions=[
            SessionOut(
                id=r.public_id,
                created_at=r.created_at,
                last_seen_at=r.last_seen_at,
                expires_at=r.expires_at,
                address=r.address,
                user_agent=r.user_agent,
                current=r.id == caller.session_id,
            )
            for r in rows
        ]
    )


@router.delete("/me/sessions/{session_id}", status_code=204)
def end_session(
    session_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], request: Request
) -> None:
    """End one of the patient's own sessions."""
    caller = patient_caller(request, "patient.session-end")
    ctx = ctx_of(request)
    with transaction(ctx.db) as s:
        deleted = s.execute(
            sa.delete(SessionRow).where(
                SessionRow.public_id == session_id, SessionRow.account_id == caller.account_id
            )
        )
        ok = bool(getattr(deleted, "rowcount", 0))
        ctx.audit(
            s,
            actor=caller.actor,
            action="patient.session-end",
            address=address_of(request),
            outcome="ok" if ok else "refused:not-found",
        )
    if not ok:
        raise not_found()
