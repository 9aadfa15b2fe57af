"""Request and response bodies (pydantic), which also make the published OpenAPI schema.

Binary values travel as base64url without padding (RFC 4648 section 5); padding is accepted.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema


def b64encode(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def b64decode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a base64url string")
    text = value.strip().rstrip("=")
    if len(text) % 4 == 1 or any(c in text for c in "+/"):
        raise ValueError("not valid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64url") from None


B64 = Annotated[
    bytes,
    BeforeValidator(b64decode),
    PlainSerializer(b64encode, return_type=str),
    WithJsonSchema({"type": "string", "contentEncoding": "base64url"}),
]


def _sized(max_len: int, min_len: int = 1) -> Any:
    return Field(min_length=min_len, max_length=max_len)


Key32 = Annotated[B64, Field(min_length=32, max_length=32)]
HEX_ID = r"^[0-9a-f]{32}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- shared -------------------------------------------------------------------------------


class Kdf(Strict):
    """Argon2id parameters, in the format's JSON form (docs/spec): memory in KiB, passes, lanes."""

    alg: Literal["argon2id"] = "argon2id"
    m: int = Field(ge=1, le=4 * 1024 * 1024)
    t: int = Field(ge=1, le=1000)
    p: int = Field(ge=1, le=64)


class ErrorDetail(BaseModel):
    field: str
    problem: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    request_id: str
    details: list[ErrorDetail] | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


# --- agent --------------------------------------------------------------------------------


class PharmacyKeyIn(Strict):
    public_key: Key32


class PharmacyOut(BaseModel):
    slug: str
    name: str
    key_id: str | None
    public_key: B64 | None


class EnrollmentIn(Strict):
    lookup_id: str = Field(pattern=HEX_ID)
    handle: str = Field(pattern=HEX_ID)
    pin_tag: Key32
    expires_at: dt.datetime


class EnrollmentsIn(Strict):
    enrollments: list[EnrollmentIn] = Field(min_length=1)


class EnrollmentsOut(BaseModel):
    created: int
    existing: int


class DirectoryEntry(BaseModel):
    seq: int
    handle: str
    lookup_id: str
    public_key: B64
    binding: B64
    registered_at: dt.datetime


class DirectoryOut(BaseModel):
    entries: list[DirectoryEntry]
    next_cursor: int
    more: bool


class HandleVersion(BaseModel):
    handle: str
    version: int


class StaleItem(BaseModel):
    handle: str
    version: int
    current_version: int
    kind: Literal["block", "tombstone"]


class BatchResult(BaseModel):
    batch_id: str
    digest: str
    received_at: dt.datetime
    applied: list[HandleVersion]
    deleted: list[HandleVersion]
    stale: list[StaleItem]


class RecordOut(BaseModel):
    handle: str
    state: str
    version: int
    block_version: int | None
    restorable_until: dt.datetime | None


class UnlockOut(BaseModel):
    handle: str
    was_locked: bool


class StatementIn(Strict):
    """A signed sync statement (format spec: ``make_statement``)."""

    statement: Annotated[B64, _sized(4096)]


class StatementOut(BaseModel):
    seq: int
    size: int
    root: str
    as_of: dt.datetime
    received_at: dt.datetime


class LeavesOut(BaseModel):
    """A page of the leaves of the pharmacy's records, as a statement's check computes them."""

    leaves: B64 = Field(
        description="41 bytes per record, in handle order: handle (32 ASCII hex), u64 version "
        "(big-endian), state (1 live, 2 deleted); the leaf bytes of the format spec"
    )
    count: int
    more: bool
    next_after: str | None = Field(description="the ``after`` of the next page, if ``more``")


# --- patient ------------------------------------------------------------------------------

# No control characters (PostgreSQL text cannot hold NUL; none belongs in a name).
Username = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class PreloginIn(Strict):
    username: Username


class PreloginOut(BaseModel):
    salt: B64
    kdf: Kdf


class RegistrationStartIn(Strict):
    lookup_id: str = Field(pattern=HEX_ID)


class PharmacyPublic(BaseModel):
    name: str
    key_id: str
    public_key: B64


class RegistrationStartOut(BaseModel):
    handle: str
    pin_tag: B64
    pharmacy: PharmacyPublic
    salt: B64
    kdf: Kdf
    server_share: B64
    expires_at: dt.datetime


class RegistrationIn(Strict):
    lookup_id: str = Field(pattern=HEX_ID)
    username: Username
    kdf: Kdf
    auth_key: Key32
    public_key: Key32
    binding: Key32
    key_bundle: Annotated[B64, _sized(64 * 1024)]


class LoginIn(Strict):
    username: Username
    auth_key: Key32


class AccountOut(BaseModel):
    username: str
    handle: str
    pharmacy: PharmacyPublic
    created_at: dt.datetime
    password_changed_at: dt.datetime


class KeyBundleOut(BaseModel):
    key_bundle: B64
    server_share: B64
    public_key: B64
    pharmacy_public_key: B64
    handle: str
    username: str


class InclusionProofOut(BaseModel):
    """Where the patient's handle is in the statement's snapshot: leaf ``index`` with the
    leaf's ``version`` and state, and the RFC 9162 audit path (hex, leaf side first)."""

    index: int
    version: int
    deleted: bool
    path: list[str]


class BlockOut(BaseModel):
    state: Literal["live", "deleted", "pending"]
    handle: str
    version: int | None = None
    envelope: B64 | None = None
    tombstone: B64 | None = None
    statement: B64 | None = None
    proof: InclusionProofOut | None = None


class PasswordStartOut(BaseModel):
    salt: B64
    kdf: Kdf
    server_share: B64


class PasswordChangeIn(Strict):
    current_auth_key: Key32
    new_auth_key: Key32
    kdf: Kdf
    key_bundle: Annotated[B64, _sized(64 * 1024)]


class SessionOut(BaseModel):
    id: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    address: str
    user_agent: str
    current: bool


class SessionsOut(BaseModel):
    sessions: list[SessionOut]


class Empty(Strict):
    pass
