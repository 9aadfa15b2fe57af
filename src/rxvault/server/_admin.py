"""Administration (used by ``rxvault server …``): pharmacies, tokens, enrollments, accounts.

Every change is written to the audit log with the actor ``admin``. Listings never include
health data (there is none in the database) nor secrets (tokens are shown once, at creation).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rxvault.server import _audit, _ingest, _ratelimit
from rxvault.server._errors import ApiError
from rxvault.server._models import (
    Account,
    ApiToken,
    Enrollment,
    Pharmacy,
    PharmacyStatement,
    Record,
    StatementLeaves,
)
from rxvault.server._models import Session as SessionRow
from rxvault.server._tokens import SCOPES, new_api_token

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class AdminError(Exception):
    """A refused administrative operation; the message says what and why."""


@dataclasses.dataclass(frozen=True)
class Admin:
    """Administrative operations in one caller-provided transaction."""

    session: Session
    audit_key: bytes
    now: dt.datetime
    actor: str = "admin"

    def _audit(self, action: str, target: str, detail: str = "") -> None:
        _audit.append(
            self.session,
            self.audit_key,
            at=self.now,
            actor=self.actor,
            action=action,
            target=target,
            address="cli",
            detail=detail,
        )

    def pharmacy(self, slug: str) -> Pharmacy:
        row = self.session.execute(
            sa.select(Pharmacy).where(Pharmacy.slug == slug)
        ).scalar_one_or_none()
        if row is None:
            raise AdminError(f"no pharmacy named {slug!r}")
        return row

    def create_pharmacy(self, slug: str, name: str) -> Pharmacy:
        if not SLUG_PATTERN.fullmatch(slug):
            raise AdminError(f"pharmacy id {slug!r} must be 2-63 characters of a-z, 0-9 and '-'")
        exists = self.session.execute(
            sa.select(Pharmacy.id).where(Pharmacy.slug == slug)
        ).scalar_one_or_none()
        if exists is not None:
            raise AdminError(f"a pharmacy named {slug!r} already exists")
        if not name.strip() or len(name) > 200:
            raise AdminError("the pharmacy name must be 1-200 characters")
        pharmacy = Pharmacy(slug=slug, name=name.strip(), directory_seq=0, created_at=self.now)
        self.session.add(pharmacy)
        self.session.flush()
        self._audit("admin.pharmacy-create", f"pharmacy:{slug}")
        return pharmacy

    def list_pharmacies(self) -> list[Pharmacy]:
        return list(self.session.execute(sa.select(Pharmacy).order_by(Pharmacy.slug)).scalars())

    def set_pharmacy_disabled(self, slug: str, disabled: bool) -> None:
        """Disable (its tokens stop working, no new registrations) or enable a pharmacy."""
        pharmacy = self.pharmacy(slug)
        pharmacy.disabled_at = self.now if disabled else None
        action = "admin.pharmacy-disable" if disabled else "admin.pharmacy-enable"
        self._audit(action, f"pharmacy:{slug}")

    def reset_pharmacy_key(self, slug: str) -> None:
        pharmacy = self.pharmacy(slug)
        pharmacy.public_key = None
        pharmacy.key_id = None
        # the sync statement was signed with the old key: the new key's agent sends the next
        for model in (PharmacyStatement, StatementLeaves):
            self.session.execute(sa.delete(model).where(model.pharmacy_id == pharmacy.id))
        self._audit("admin.pharmacy-reset-key", f"pharmacy:{slug}")

    def create_token(
        self, slug: str, scopes: tuple[str, ...] = SCOPES, label: str = ""
    ) -> tuple[str, ApiToken]:
        """A new token for the pharmacy: (the token text, shown once; its row)."""
        pharmacy = self.pharmacy(slug)
        text, token_hash, prefix = new_api_token()
        row = ApiToken(
            pharmacy_id=pharmacy.id,
            token_hash=token_hash,
            prefix=prefix,
            scopes=" ".join(scopes),
            label=label[:100],
            created_at=self.now,
        )
        self.session.add(row)
        self.session.flush()
        self._audit(
            "admin.token-create",
            f"pharmacy:{slug}/token:{row.id}",
            detail=f"scopes={' '.join(scopes)}",
        )
        return text, row

    def list_tokens(self, slug: str) -> list[ApiToken]:
        pharmacy = self.pharmacy(slug)
        stmt = sa.select(ApiToken).where(ApiToken.pharmacy_id == pharmacy.id)
        return list(self.session.execute(stmt.order_by(ApiToken.id)).scalars())

    def _token(self, slug: str, token_id: int) -> ApiToken:
        pharmacy = self.pharmacy(slug)
        row = self.session.get(ApiToken, token_id)
        if row is None or row.pharmacy_id != pharmacy.id:
            raise AdminError(f"pharmacy {slug!r} has no token {token_id}")
        return row

    def revoke_token(self, slug: str, token_id: int) -> None:
        row = self._token(slug, token_id)
        if row.revoked_at is None:
            row.revoked_at = self.now
        self._audit("admin.token-revoke", f"pharmacy:{slug}/token:{token_id}")

    def rotate_token(self, slug: str, token_id: int) -> tuple[str, ApiToken]:
        """Revoke a token and create one with the same scopes and label."""
        old = self._token(slug, token_id)
        scopes = tuple(old.scopes.split())
        self.revoke_token(slug, token_id)
        return self.create_token(slug, scopes, old.label)

    def list_enrollments(self, slug: str) -> list[Enrollment]:
        pharmacy = self.pharmacy(slug)
        stmt = sa.select(Enrollment).where(Enrollment.pharmacy_id == pharmacy.id)
        return list(self.session.execute(stmt.order_by(Enrollment.id)).scalars())

    def revoke_enrollment(self, lookup_id: str) -> None:
        row = self.session.execute(
            sa.select(Enrollment).where(Enrollment.lookup_id == lookup_id)
        ).scalar_one_or_none()
        if row is None:
            raise AdminError(f"no enrollment with lookup id {lookup_id}")
        if row.revoked_at is None:
            row.revoked_at = self.now
        self._audit("admin.enrollment-revoke", lookup_id)

    def list_accounts(self, slug: str | None = None) -> list[tuple[Account, str]]:
        stmt = sa.select(Account, Pharmacy.slug).join(Pharmacy, Pharmacy.id == Account.pharmacy_id)
        if slug is not None:
            stmt = stmt.where(Pharmacy.slug == slug)
        rows = self.session.execute(stmt.order_by(Account.id)).all()
        return [(account, pslug) for account, pslug in rows]

    def account(self, username: str) -> Account:
        row = self.session.execute(
            sa.select(Account).where(Account.username == username)
        ).scalar_one_or_none()
        if row is None:
            raise AdminError(f"no account named {username!r}")
        return row

    def unlock_account(self, username: str) -> None:
        """Lift the lock after too many failed logins (and any waiting time)."""
        account = self.account(username)
        account.locked_at = None
        _ratelimit.reset(self.session, _ratelimit.name_key(account.username))
        self._audit("admin.account-unlock", f"account:{account.id}")

    def revoke_account(self, username: str) -> None:
        """Disable an account and end its sessions (the pharmacy re-enrolls the patient)."""
        account = self.account(username)
        if account.revoked_at is None:
            account.revoked_at = self.now
        self.session.execute(sa.delete(SessionRow).where(SessionRow.account_id == account.id))
        self._audit("admin.account-revoke", f"account:{account.id}")

    def restore_record(self, slug: str, handle: str) -> Record:
        pharmacy = self.pharmacy(slug)
        try:
            record = _ingest.restore(self.session, pharmacy.id, handle, self.now)
        except ApiError as exc:
            raise AdminError(exc.message) from None
        self._audit("admin.restore", f"pharmacy:{slug}/handle:{handle}")
        return record

    def purge(self, session_idle_seconds: int = 15 * 60) -> int:
        """Drop expired deleted blocks (returns how many) and expired sessions."""
        count = _ingest.purge_expired(self.session, None, self.now)
        idle = dt.timedelta(seconds=session_idle_seconds)
        self.session.execute(
            sa.delete(SessionRow).where(
                sa.or_(
                    SessionRow.expires_at <= self.now, SessionRow.last_seen_at <= self.now - idle
                )
            )
        )
        self._audit("admin.purge", "", detail=f"purged={count}")
        return count
