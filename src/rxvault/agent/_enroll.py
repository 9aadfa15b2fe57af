"""Enrollment at the counter: one-time codes registered with the server, and printable letters.

For each patient the agent makes a code (128 random bits), derives its lookup id, binding key
and pin tag, registers (lookup id, handle, pin tag, expiry) with the server, and keeps the
binding key (to verify the key the patient registers). The code itself is not kept: it is shown
once, on screen or in the letter. A patient who loses it is simply enrolled again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rxvault._cli_errors import UserError
from rxvault.agent._api import b64
from rxvault.agent._context import AgentContext
from rxvault.agent._documents import prepare
from rxvault.agent._source import read_source
from rxvault.agent._state import now_text, open_state
from rxvault.format import derive_enrollment, enrollment_url, new_enrollment_code, pin_tag

__all__ = ["Enrollment", "enroll"]

MAX_PER_REQUEST = 500


@dataclass(frozen=True, repr=False)
class Enrollment:
    patient_id: str
    display_name: str
    code_text: str
    url: str
    expires_at: dt.datetime

    def __repr__(self) -> str:
        return f"Enrollment(patient_id={self.patient_id!r})"


def _display_names(ctx: AgentContext, patient_ids: list[str]) -> dict[str, str]:
    """The patients' names for the letters (from the published fields with name roles)."""
    mapping = ctx.mapping()
    source = read_source(
        mapping,
        ctx.config.source_dir,
        attempts=ctx.config.sync.read_attempts,
        wait=ctx.config.sync.read_wait,
    )
    docs = prepare(mapping, source, ctx.config.pharmacy_name)
    missing = [p for p in patient_ids if docs.index_of(p) is None]
    if missing:
        raise UserError(
            f"patient {missing[0]!r} is not in the source (or is filtered out by the mapping)",
            hint="check the id with `rxvault agent preview ID`",
        )
    roles = {f.role: f.source for f in mapping.patient.fields if f.role}
    table = docs._patients
    out: dict[str, str] = {}
    for pid in patient_ids:
        index = docs.index_of(pid)
        assert index is not None
        parts = []
        for role in ("given_name", "family_name"):
            source_name = roles.get(role)
            if source_name:
                value = table.column(source_name)[index].as_py()
                if value:
                    parts.append(str(value).strip())
        out[pid] = " ".join(parts)
    return out


def enroll(ctx: AgentContext, patient_ids: list[str], *, days: int) -> list[Enrollment]:
    if not 1 <= days <= 366:
        raise UserError("--expires-days must be between 1 and 366")
    ids = list(dict.fromkeys(p.strip() for p in patient_ids if p.strip()))
    if not ids:
        raise UserError("no patient id given")
    names = _display_names(ctx, ids)
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
    public = ctx.key.public_bytes()
    made: list[Enrollment] = []
    rows: list[tuple[str, str, str, bytes, str, str]] = []
    payload = []
    for pid in ids:
        code = new_enrollment_code()
        secrets_ = derive_enrollment(code)
        handle = ctx.handle(pid)
        payload.append(
            {
                "lookup_id": secrets_.lookup_id,
                "handle": handle,
                "pin_tag": b64(pin_tag(code, public)),
                "expires_at": expires.isoformat(),
            }
        )
        rows.append(
            (secrets_.lookup_id, pid, handle, secrets_.binding_key, now_text(), expires.isoformat())
        )
        made.append(
            Enrollment(
                pid, names[pid], code.text, enrollment_url(ctx.config.portal_url, code), expires
            )
        )
    state = open_state(ctx.config.state_path)
    api = ctx.api()
    try:
        # The binding keys are stored before the server knows the codes: a code the server
        # knows but the agent forgot could register a key the agent can never verify.
        with state.transaction() as c:
            c.executemany(
                "INSERT INTO enrollments (lookup_id, patient_id, handle, binding_key, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        for start in range(0, len(payload), MAX_PER_REQUEST):
            api.post_enrollments(payload[start : start + MAX_PER_REQUEST])
    finally:
        api.close()
        state.close()
    return made
