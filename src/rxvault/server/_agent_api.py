"""The agent's API: the pharmacy key, enrollments, the key directory and batches.

Every route needs a bearer API token of the pharmacy with the route's scope.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pydantic_core
import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from rxvault.server import _crypto, _ingest, _ratelimit
from rxvault.server._db import read_transaction, transaction
from rxvault.server._deps import address_of, agent_caller, ctx_of
from rxvault.server._errors import ApiError, invalid_request
from rxvault.server._models import Account, Enrollment, KeyRegistration, Pharmacy, Record
from rxvault.server._schemas import (
    HEX_ID,
    BatchResult,
    DirectoryOut,
    EnrollmentsIn,
    EnrollmentsOut,
    PharmacyKeyIn,
    PharmacyOut,
    RecordOut,
    UnlockOut,
    b64encode,
)

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])

HexId = Annotated[str, Path(pattern=HEX_ID)]

MAX_ENROLLMENT_DAYS = 366
#: The largest key-directory page (``limit``) a client may ask for.
MAX_DIRECTORY_PAGE = 5000
BATCH_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def _pharmacy_out(p: Pharmacy) -> PharmacyOut:
    return PharmacyOut(slug=p.slug, name=p.name, key_id=p.key_id, public_key=p.public_key)


@router.get("/pharmacy", response_model=PharmacyOut)
def get_pharmacy(request: Request) -> PharmacyOut:
    """The pharmacy the token belongs to, and its registered public key."""
    caller = agent_caller(request, "directory")
    with transaction(ctx_of(request).db) as s:
        return _pharmacy_out(s.get_one(Pharmacy, caller.pharmacy_id))


@router.put("/pharmacy-key", response_model=PharmacyOut)
def put_pharmacy_key(body: PharmacyKeyIn, request: Request) -> PharmacyOut:
    """Register the pharmacy's Ed25519 public key (once; the same key again is accepted)."""
    caller = agent_caller(request, "pharmacy-key")
    ctx = ctx_of(request)
    if len(body.public_key) != 32:
        raise invalid_request("public_key must be a 32-byte Ed25519 public key")
    key_id = _crypto.pharmacy_id(body.public_key)
    with transaction(ctx.db) as s:
        pharmacy = _ingest.lock_pharmacy(s, caller.pharmacy_id)
        if pharmacy.public_key is not None and pharmacy.public_key != body.public_key:
            outcome = "refused:key-exists"
        else:
            outcome = "ok"
            pharmacy.public_key = body.public_key
            pharmacy.key_id = key_id
        ctx.audit(
            s,
            actor=caller.actor,
            action="agent.pharmacy-key",
            target=key_id,
            address=address_of(request),
            outcome=outcome,
        )
        out = _pharmacy_out(pharmacy)
    if outcome != "ok":
        raise ApiError(
            409,
            "pharmacy_key_exists",
            "Another public key is already registered for this pharmacy; an administrator "
            "must reset it (rxvault server pharmacies reset-key).",
        )
    return out


@router.post("/enrollments", response_model=EnrollmentsOut)
def post_enrollments(body: EnrollmentsIn, request: Request) -> EnrollmentsOut:
    """Register one-time enrollment codes (their lookup ids and pin tags, never the codes)."""
    caller = agent_caller(request, "enroll")
    ctx = ctx_of(request)
    limits = ctx.settings.limits
    if len(body.enrollments) > limits.max_enrollments_per_request:
        raise ApiError(
            413,
            "too_many_enrollments",
            f"At most {limits.max_enrollments_per_request} enrollments per request.",
        )
    now = ctx.now()
    for i, item in enumerate(body.enrollments):
        if item.expires_at.tzinfo is None:
            raise invalid_request(f"enrollments[{i}].expires_at needs a time zone")
        if not now < item.expires_at <= now + dt.timedelta(days=MAX_ENROLLMENT_DAYS):
            raise invalid_request(
                f"enrollments[{i}].expires_at must be in the future and within "
                f"{MAX_ENROLLMENT_DAYS} days"
            )
    created = existing = 0
    conflict: str | None = None
    try:
        with transaction(ctx.db) as s:
            ids = [e.lookup_id for e in body.enrollments]
            rows = {
                e.lookup_id: e
                for e in s.execute(
                    sa.select(Enrollment).where(Enrollment.lookup_id.in_(ids))
                ).scalars()
            }
            for item in body.enrollments:
                row = rows.get(item.lookup_id)
                if row is not None:
                    if (row.pharmacy_id, row.handle, row.pin_tag) != (
                        caller.pharmacy_id,
                        item.handle,
                        item.pin_tag,
                    ):
                        conflict = item.lookup_id
                        break
                    existing += 1
                    continue
                new = Enrollment(
                    pharmacy_id=caller.pharmacy_id,
                    lookup_id=item.lookup_id,
                    handle=item.handle,
                    pin_tag=item.pin_tag,
                    expires_at=item.expires_at,
                    created_at=now,
                )
                s.add(new)
                rows[item.lookup_id] = new
                created += 1
            if conflict is None:
                ctx.audit(
                    s,
                    actor=caller.actor,
                    action="agent.enrollments",
                    address=address_of(request),
                    detail=f"created={created}",
                )
    except IntegrityError:
        conflict = "(concurrent registration)"
    if conflict is not None:
        ctx.audit_alone(
            actor=caller.actor,
            action="agent.enrollments",
            address=address_of(request),
            outcome="refused:conflict",
        )
        raise ApiError(
            409,
            "enrollment_conflict",
            f"Enrollment {conflict} is already registered with other values.",
        )
    return EnrollmentsOut(created=created, existing=existing)


@router.delete("/enrollments/{lookup_id}", status_code=204)
def delete_enrollment(lookup_id: HexId, request: Request) -> None:
    """Revoke an enrollment code that has not been used."""
    caller = agent_caller(request, "enroll")
    ctx = ctx_of(request)
    with transaction(ctx.db) as s:
        row = s.execute(
            sa.select(Enrollment).where(
                Enrollment.lookup_id == lookup_id, Enrollment.pharmacy_id == caller.pharmacy_id
            )
        ).scalar_one_or_none()
        if row is not None and row.used_at is None and row.revoked_at is None:
            row.revoked_at = ctx.now()
            ctx.audit(
                s,
                actor=caller.actor,
                action="agent.enrollment-revoke",
                target=lookup_id,
                address=address_of(request),
            )
            return
    raise ApiError(404, "not_found", "No unused enrollment with this lookup id.")


_DIRECTORY = KeyRegistration.__table__
_DIRECTORY_COLUMNS = sa.select(
    _DIRECTORY.c.seq,
    _DIRECTORY.c.handle,
    _DIRECTORY.c.lookup_id,
    _DIRECTORY.c.public_key,
    _DIRECTORY.c.binding,
    _DIRECTORY.c.registered_at,
)


@router.get(
    "/key-directory",
    response_model=None,
    responses={200: {"model": DirectoryOut, "description": "Successful Response"}},
)
def get_key_directory(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_DIRECTORY_PAGE)] = 500,
) -> Response:
    """Patient key registrations after the cursor ``after``, oldest first."""
    # The body is a DirectoryOut built from plain columns and serialized once, without ORM
    # objects or a validation per entry: the agent's first sync reads every page.
    caller = agent_caller(request, "directory")
    with read_transaction(ctx_of(request).db) as s:
        rows = (
            s.connection()
            .execute(
                _DIRECTORY_COLUMNS.where(
                    _DIRECTORY.c.pharmacy_id == caller.pharmacy_id, _DIRECTORY.c.seq > after
                )
                .order_by(_DIRECTORY.c.seq)
                .limit(limit + 1)
            )
            .all()
        )
    more = len(rows) > limit
    rows = rows[:limit]
    entries = [
        {
            "seq": seq,
            "handle": handle,
            "lookup_id": lookup_id,
            "public_key": b64encode(public_key),
            "binding": b64encode(binding),
            "registered_at": registered_at,
        }
        for seq, handle, lookup_id, public_key, binding, registered_at in rows
    ]
    body = {"entries": entries, "next_cursor": rows[-1][0] if rows else after, "more": more}
    # pydantic's own JSON encoder: datetimes exactly as a DirectoryOut would write them.
    return Response(pydantic_core.to_json(body), media_type="application/json")


@router.put(
    "/batches/{batch_id}",
    response_model=BatchResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_batch(batch_id: str, request: Request) -> BatchResult:
    """Upload a signed batch (``application/octet-stream``, the bytes of ``make_batch``)."""
    ctx = ctx_of(request)
    caller = await run_in_threadpool(agent_caller, request, "upload")
    if not 1 <= len(batch_id) <= 128 or not set(batch_id) <= BATCH_ID_CHARS:
        raise invalid_request("the batch id must be 1-128 characters of A-Z a-z 0-9 - _ .")
    limit = ctx.settings.limits.max_batch_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "batch_too_large", f"A batch may be at most {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "batch_too_large", f"A batch may be at most {limit} bytes.")
        chunks.append(chunk)
    data = b"".join(chunks)
    return await run_in_threadpool(
        _ingest_batch, request, caller.pharmacy_id, caller.actor, batch_id, data
    )


def _ingest_batch(
    request: Request, pharmacy_id: int, actor: str, batch_id: str, data: bytes
) -> BatchResult:
    ctx = ctx_of(request)
    address = address_of(request)
    with transaction(ctx.db) as s:
        pharmacy = s.get_one(Pharmacy, pharmacy_id)
        public_key = pharmacy.public_key
    if public_key is None:
        raise ApiError(
            409,
            "pharmacy_key_missing",
            "Register the pharmacy's public key before uploading batches.",
        )
    refusal: ApiError | None = None
    try:
        batch = _crypto.verify_batch(data, public_key)
    except _crypto.FormatError:
        batch = None
        refusal = ApiError(
            422,
            "signature_invalid",
            "The batch is malformed or its signature does not verify with the "
            "pharmacy's registered key.",
        )
    if batch is not None:
        headers = [h for h, _ in batch.blocks]
        if batch.pharmacy_id != pharmacy.key_id or any(
            h.pharmacy_id != pharmacy.key_id for h in headers
        ):
            refusal = ApiError(403, "forbidden", "This request is not allowed.")
        elif batch.batch_id != batch_id:
            refusal = invalid_request("the batch id in the URL differs from the signed batch id")
    if refusal is not None or batch is None:
        ctx.audit_alone(
            actor=actor,
            action="agent.batch",
            target=batch_id,
            address=address,
            outcome=f"refused:{refusal.code if refusal else 'invalid'}",
        )
        raise refusal or invalid_request("invalid batch")
    try:
        _ingest.check_limits(batch, ctx.settings.limits)
        now = ctx.now()
        with transaction(ctx.db) as s:
            locked = _ingest.lock_pharmacy(s, pharmacy_id)
            existing = _ingest.stored_result(s, pharmacy_id, batch.batch_id)
            if existing is not None:
                result = _ingest.replay(existing, batch.digest)
                ctx.audit(
                    s,
                    actor=actor,
                    action="agent.batch",
                    target=batch_id,
                    address=address,
                    outcome="replayed",
                )
                return result
            result, _ = _ingest.apply(s, locked, batch, now=now, limits=ctx.settings.limits)
            ctx.audit(
                s,
                actor=actor,
                action="agent.batch",
                target=batch_id,
                address=address,
                detail=f"applied={len(result.applied)} deleted={len(result.deleted)} "
                f"stale={len(result.stale)}",
            )
            return result
    except ApiError as exc:
        ctx.audit_alone(
            actor=actor,
            action="agent.batch",
            target=batch_id,
            address=address,
            outcome=f"refused:{exc.code}",
        )
        raise


@router.get("/records/{handle}", response_model=RecordOut)
def get_record(handle: HexId, request: Request) -> RecordOut:
    """The state of one handle's block (no contents): for the agent's status and repairs."""
    caller = agent_caller(request, "directory")
    with transaction(ctx_of(request).db) as s:
        record = s.execute(
            sa.select(Record).where(
                Record.pharmacy_id == caller.pharmacy_id, Record.handle == handle
            )
        ).scalar_one_or_none()
        if record is None:
            raise ApiError(404, "not_found", "No block for this handle.")
        return _record_out(record)


def _record_out(record: Record) -> RecordOut:
    return RecordOut(
        handle=record.handle,
        state=record.state,
        version=record.version,
        block_version=record.block_version,
        restorable_until=record.purge_after if record.envelope is not None else None,
    )


@router.post("/records/{handle}/restore", response_model=RecordOut)
def restore_record(handle: HexId, request: Request) -> RecordOut:
    """Make a block deleted within the last 30 days live again."""
    caller = agent_caller(request, "upload")
    ctx = ctx_of(request)
    try:
        with transaction(ctx.db) as s:
            record = _ingest.restore(s, caller.pharmacy_id, handle, ctx.now())
            ctx.audit(
                s,
                actor=caller.actor,
                action="agent.restore",
                target=handle,
                address=address_of(request),
            )
            return _record_out(record)
    except ApiError as exc:
        ctx.audit_alone(
            actor=caller.actor,
            action="agent.restore",
            target=handle,
            address=address_of(request),
            outcome=f"refused:{exc.code}",
        )
        raise


@router.post("/accounts/{handle}/unlock", response_model=UnlockOut)
def unlock_account(handle: HexId, request: Request) -> UnlockOut:
    """Lift the lock placed on a patient's account after too many failed logins."""
    caller = agent_caller(request, "enroll")
    ctx = ctx_of(request)
    with transaction(ctx.db) as s:
        account = s.execute(
            sa.select(Account).where(
                Account.pharmacy_id == caller.pharmacy_id, Account.handle == handle
            )
        ).scalar_one_or_none()
        if account is not None:
            was_locked = account.locked_at is not None
            account.locked_at = None
            _ratelimit.reset(s, _ratelimit.name_key(account.username))
            ctx.audit(
                s,
                actor=caller.actor,
                action="agent.unlock",
                target=f"account:{account.id}",
                address=address_of(request),
            )
            return UnlockOut(handle=handle, was_locked=was_locked)
    ctx.audit_alone(
        actor=caller.actor,
        action="agent.unlock",
        target=handle,
        address=address_of(request),
        outcome="refused:not-found",
    )
    raise ApiError(404, "not_found", "No account for this handle.")
