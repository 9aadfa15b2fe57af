"""A Python client of the patient protocol (docs/spec/protocol.md), mirroring the portal.

All cryptography happens here, on the patient's machine, through :mod:`rxvault.format`: the
password and the keys derived from it never leave this process, except the auth key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import unicodedata
from typing import Any

import httpx

from rxvault.client._errors import ClientError
from rxvault.client._seen import SeenVersions
from rxvault.format import (
    DecryptionFailed,
    FormatError,
    KdfParams,
    Leaf,
    OpenedBlock,
    RollbackRefused,
    Statement,
    WithholdingDetected,
    check_not_withheld,
    derive_client_keys,
    derive_enrollment,
    generate_patient_keypair,
    open_block,
    parse_enrollment_code,
    pharmacy_id,
    pin_tag,
    unwrap_key_bundle,
    verify_inclusion,
    verify_statement,
    verify_tombstone,
    wrap_key_bundle,
)
from rxvault.format import binding_mac as make_binding_mac

API = "/api/v1"


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def canonical_username(raw: str) -> str:
    """The account name as the server stores it (and as the key bundle is bound to)."""
    return unicodedata.normalize("NFKC", raw).strip().casefold()


SESSION_COOKIE = "__Host-rxvault-session"
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _http_client(base_url: str, timeout: float) -> httpx.Client:
    """An HTTPS client; plain HTTP only to this computer (as browsers allow for localhost).

    On loopback HTTP the session cookie is carried by hand: a cookie jar rightly keeps a
    ``Secure`` cookie off ``http://`` URLs, while browsers treat localhost as secure.
    """
    url = httpx.URL(base_url)
    if url.scheme == "https":
        return httpx.Client(base_url=base_url, timeout=timeout)
    if url.scheme != "http" or url.host not in _LOOPBACK:
        raise ValueError(f"{base_url}: the server address must start with https://")
    cookie: dict[str, str] = {}

    def on_request(request: httpx.Request) -> None:
        if SESSION_COOKIE in cookie:
            request.headers["Cookie"] = f"{SESSION_COOKIE}={cookie[SESSION_COOKIE]}"

    def on_response(response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name.strip() == SESSION_COOKIE:
                value = rest.split(";")[0].strip().strip('"')
                if value:
                    cookie[SESSION_COOKIE] = value
                else:
                    cookie.pop(SESSION_COOKIE, None)

    return httpx.Client(
        base_url=base_url,
        timeout=timeout,
        event_hooks={"request": [on_request], "response": [on_response]},
    )


def _kdf(value: dict[str, Any]) -> KdfParams:
    return KdfParams.from_dict(value)


@dataclasses.dataclass(frozen=True, repr=False)
class Unlocked:
    """The patient's keys after login, in this process's memory only."""

    username: str
    handle: str
    private_key: bytes
    pharmacy_public_key: bytes

    def __repr__(self) -> str:
        return f"Unlocked(username={self.username!r}, handle={self.handle!r})"


@dataclasses.dataclass(frozen=True)
class Records:
    """What ``fetch`` found: a live block (opened), a signed deletion, or nothing yet, and the
    pharmacy's sync statement when the server has one."""

    state: str
    handle: str
    version: int | None
    document: bytes | None
    opened: OpenedBlock | None = None
    as_of: dt.datetime | None = None
    statement: Statement | None = None

    @property
    def updated_at(self) -> dt.datetime | None:
        """When the pharmacy last updated the server: the statement's time, else the block's."""
        if self.statement is not None:
            return self.statement.as_of
        return self.as_of

    def age_hours(self, now: dt.datetime | None = None) -> float | None:
        """How old the pharmacy's last update is (signed time), or None without records."""
        if self.updated_at is None or self.state != "live":
            return None
        return ((now or dt.datetime.now(dt.UTC)) - self.updated_at).total_seconds() / 3600


STALE_HOURS = 48


class PatientClient:
    """One patient's conversation with the server (one session cookie).

    Pass ``http`` to use a prepared ``httpx.Client`` (for example one bound to the app
    in-process); otherwise one is made for ``base_url``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        min_version: int = 0,
        key_cache: dict[tuple[str, bytes, KdfParams], tuple[bytes, bytes]] | None = None,
        seen: SeenVersions | None = None,
    ) -> None:
        if http is None:
            if base_url is None:
                raise ValueError("give base_url or http")
            http = _http_client(base_url, timeout)
        self.http = http
        self.unlocked: Unlocked | None = None
        # The highest block version accepted (or known from before, given by the caller): a
        # later block must not be older, and a deletion must be newer (format spec, "The
        # tombstone"), so a server cannot replay an old deletion in place of newer records.
        self.min_version = min_version
        # The newest deletion accepted, so an older deletion cannot be replayed after it, nor
        # a block older than it.
        self._deletion_version = 0
        # What earlier runs on this computer showed (per server and handle), if kept in a file.
        self.seen = seen
        # The highest sync statement number accepted for the pharmacy: a later answer must not
        # carry an older one, nor none at all.
        self.statement_seq = 0
        # Derived keys by (password, salt, parameters), so one Argon2id run serves repeated
        # logins of this process; pass a shared dict to share it between clients.
        self._auth_cache = {} if key_cache is None else key_cache

    def close(self) -> None:
        self.http.close()

    # --- transport ---------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if method != "GET":
            headers["Content-Type"] = "application/json"
        response = self.http.request(
            method, API + path, json=body if method != "GET" else None, headers=headers
        )
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise ClientError(response.status_code, error["code"], error["message"])
            except (ValueError, KeyError, TypeError):
                raise ClientError(
                    response.status_code, "http_error", f"HTTP {response.status_code}"
                ) from None
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _keys(self, password: str, salt: bytes, params: KdfParams) -> tuple[bytes, bytes]:
        key = (password, salt, params)
        if key not in self._auth_cache:
            keys = derive_client_keys(password, salt, params)
            self._auth_cache[key] = (keys.auth_key, keys.unlock_key)
        return self._auth_cache[key]

    # --- registration and login ----------------------------------------------------------

    def register(self, code_text: str, username: str, password: str) -> dict[str, Any]:
        """Register with an enrollment code: a new key pair, wrapped under the password."""
        code = parse_enrollment_code(code_text)
        secrets_ = derive_enrollment(code)
        start = self._call("POST", "/registration/start", {"lookup_id": secrets_.lookup_id})
        pharmacy_key = unb64(start["pharmacy"]["public_key"])
        tag = unb64(start["pin_tag"])
        if pin_tag(code, pharmacy_key) != tag:
            raise ClientError(
                0,
                "pin_tag_invalid",
                "The server's pharmacy key does not match the enrollment code.",
            )
        salt = unb64(start["salt"])
        params = _kdf(start["kdf"])
        account = canonical_username(username)
        auth_key, unlock_key = self._keys(password, salt, params)
        private_key, public_key = generate_patient_keypair()
        bundle = wrap_key_bundle(
            unlock_key=unlock_key,
            server_share=unb64(start["server_share"]),
            account=account,
            patient_private_key=private_key,
            pharmacy_public_key=pharmacy_key,
        )
        handle = start["handle"]
        result: dict[str, Any] = self._call(
            "POST",
            "/registration",
            {
                "lookup_id": secrets_.lookup_id,
                "username": account,
                "kdf": params.to_dict(),
                "auth_key": b64(auth_key),
                "public_key": b64(public_key),
                "binding": b64(make_binding_mac(secrets_.binding_key, handle, public_key)),
                "key_bundle": b64(bundle),
            },
        )
        self.unlocked = Unlocked(account, handle, private_key, pharmacy_key)
        self._recall()
        return result

    def login(self, username: str, password: str) -> dict[str, Any]:
        """Log in and unlock the key bundle (fetched with the server share after login)."""
        account = canonical_username(username)
        pre = self._call("POST", "/prelogin", {"username": account})
        salt, params = unb64(pre["salt"]), _kdf(pre["kdf"])
        auth_key, unlock_key = self._keys(password, salt, params)
        result: dict[str, Any] = self._call(
            "POST", "/login", {"username": account, "auth_key": b64(auth_key)}
        )
        bundle = self._call("GET", "/me/key-bundle")
        try:
            keys = unwrap_key_bundle(
                unb64(bundle["key_bundle"]),
                unlock_key=unlock_key,
                server_share=unb64(bundle["server_share"]),
                account=bundle["username"],
            )
        except DecryptionFailed:
            raise ClientError(0, "bundle_invalid", "The key bundle does not open.") from None
        # The pharmacy key pinned at registration (inside the bundle) is the one used to verify
        # blocks; the copy the server sends is never trusted.
        self.unlocked = Unlocked(
            bundle["username"],
            bundle["handle"],
            keys.patient_private_key,
            keys.pharmacy_public_key,
        )
        self._recall()
        return result

    def logout(self) -> None:
        self._call("POST", "/logout", {})
        self.unlocked = None

    # --- records -------------------------------------------------------------------------

    def _seen_key(self) -> str:
        assert self.unlocked is not None
        return f"{str(self.http.base_url).rstrip('/')} {self.unlocked.handle}"

    def _statement_key(self) -> str:
        assert self.unlocked is not None
        server = str(self.http.base_url).rstrip("/")
        return f"{server} pharmacy {pharmacy_id(self.unlocked.pharmacy_public_key)}"

    def _recall(self) -> None:
        """Take up the versions this computer showed for this patient before."""
        if self.seen is not None:
            block, deletion = self.seen.get(self._seen_key())
            self.min_version = max(self.min_version, block)
            self._deletion_version = max(self._deletion_version, deletion)
            self.statement_seq = max(self.statement_seq, self.seen.statement(self._statement_key()))

    def _remember(self) -> None:
        if self.seen is not None:
            self.seen.remember(self._seen_key(), self.min_version, self._deletion_version)
            if self.statement_seq:
                self.seen.remember_statement(self._statement_key(), self.statement_seq)

    def _check_statement(
        self,
        block: dict[str, Any],
        served: tuple[int, dt.datetime] | None,
    ) -> Statement | None:
        """The sync statement rules (format spec, "The sync statement", client checks).

        ``served`` is the (version, signed time) of the block or deletion served, or None for a
        pending answer. Returns the verified statement, or None when the server has none.
        """
        assert self.unlocked is not None
        raw = block.get("statement")
        withholding = "The server may be withholding newer records: please call your pharmacy."
        if raw is None:
            if self.statement_seq:
                raise ClientError(
                    0,
                    "statement_missing",
                    "The server sent no sync statement of your pharmacy, but this computer has "
                    f"seen one (number {self.statement_seq}); your records are not shown. "
                    + withholding,
                )
            return None
        try:
            statement = verify_statement(unb64(raw), self.unlocked.pharmacy_public_key)
        except (FormatError, ValueError, TypeError, binascii.Error) as exc:
            raise ClientError(
                0, "statement_invalid", f"The pharmacy's sync statement was refused: {exc}"
            ) from None
        if statement.seq < self.statement_seq:
            raise ClientError(
                0,
                "statement_rollback",
                f"The server sent an older sync statement of your pharmacy (number "
                f"{statement.seq}) than one already seen (number {self.statement_seq}); your "
                "records are not shown. " + withholding,
            )
        proof = block.get("proof")
        if served is None:
            return statement
        version, signed_at = served
        if proof is None:
            # A statement covers every handle the server held when it was made; a record
            # signed at or after that time may be newer than the statement (nothing to prove).
            if signed_at >= statement.as_of:
                return statement
            raise ClientError(
                0,
                "withholding_detected",
                "The server sent your pharmacy's sync statement without the proof that covers "
                "your records; they are not shown. " + withholding,
            )
        try:
            if type(proof["deleted"]) is not bool:
                raise TypeError("proof: deleted must be true or false")
            leaf = Leaf(self.unlocked.handle, proof["version"], proof["deleted"])
            path = [bytes.fromhex(node) for node in proof["path"]]
            verify_inclusion(statement, leaf, proof["index"], path)
            check_not_withheld(leaf, version)
        except WithholdingDetected:
            raise ClientError(
                0,
                "withholding_detected",
                f"The server is withholding newer records: your pharmacy's sync statement of "
                f"{statement.as_of:%Y-%m-%d %H:%M} UTC proves version {leaf.version}, but the "
                f"server sent version {version}; it is not shown. Please call your pharmacy.",
            ) from None
        except (FormatError, ValueError, TypeError, KeyError) as exc:
            raise ClientError(
                0,
                "statement_invalid",
                f"The proof that the pharmacy's sync statement covers your records was "
                f"refused: {exc}",
            ) from None
        return statement

    def fetch(self) -> Records:
        """Fetch, verify against the pinned pharmacy key and decrypt the patient's block.

        Never older than what was shown: a block must not be older than a block already
        accepted, and must be newer than a deletion already accepted; a deletion must be newer
        than any block accepted and not older than a deletion accepted (format spec, "The
        tombstone"; protocol, section 4).
        """
        if self.unlocked is None:
            raise ClientError(0, "locked", "Log in first.")
        block = self._call("GET", "/me/block")
        state = block["state"]
        handle = self.unlocked.handle
        if block["handle"] != handle:
            raise ClientError(0, "wrong_handle", "The server sent another patient's block.")
        if state == "live":
            try:
                opened = open_block(
                    unb64(block["envelope"]),
                    recipient_private_key=self.unlocked.private_key,
                    pharmacy_public_key=self.unlocked.pharmacy_public_key,
                    expected_handle=handle,
                    min_version=self.min_version,
                )
                if opened.header.version <= self._deletion_version:
                    raise RollbackRefused(
                        f"block: version {opened.header.version} is not newer than the "
                        f"deletion (version {self._deletion_version}) already seen"
                    )
            except RollbackRefused as exc:
                raise ClientError(
                    0,
                    "rollback_refused",
                    "The server sent an older copy of your records than one already shown "
                    f"({exc}); it is not shown. The server may be withholding newer records: "
                    "please call your pharmacy.",
                ) from None
            except FormatError as exc:
                raise ClientError(0, "block_invalid", f"The block was refused: {exc}") from None
            statement = self._check_statement(block, (opened.header.version, opened.header.as_of))
            self.min_version = max(self.min_version, opened.header.version)
            self._accept(statement)
            return Records(
                "live",
                handle,
                opened.header.version,
                opened.document,
                opened,
                as_of=opened.header.as_of,
                statement=statement,
            )
        if state == "deleted":
            try:
                header = verify_tombstone(
                    unb64(block["tombstone"]), self.unlocked.pharmacy_public_key
                )
            except FormatError as exc:
                raise ClientError(0, "block_invalid", f"The deletion was refused: {exc}") from None
            if header.handle != handle:
                raise ClientError(0, "block_invalid", "The deletion is for another patient.")
            if header.version <= self.min_version or header.version < self._deletion_version:
                seen = max(self.min_version, self._deletion_version)
                raise ClientError(
                    0,
                    "block_invalid",
                    f"The deletion was refused: its version {header.version} is not newer "
                    f"than version {seen} already seen.",
                )
            statement = self._check_statement(block, (header.version, header.deleted_at))
            self._deletion_version = header.version
            self._accept(statement)
            return Records("deleted", handle, header.version, None, statement=statement)
        statement = self._check_statement(block, None)
        self._accept(statement)
        return Records("pending", handle, None, None, statement=statement)

    def _accept(self, statement: Statement | None) -> None:
        if statement is not None:
            self.statement_seq = max(self.statement_seq, statement.seq)
        self._remember()

    # --- account -------------------------------------------------------------------------

    def change_password(self, current_password: str, new_password: str) -> dict[str, Any]:
        """Re-wrap the key bundle under a new password; other sessions end."""
        if self.unlocked is None:
            raise ClientError(0, "locked", "Log in first.")
        account = self.unlocked.username
        pre = self._call("POST", "/prelogin", {"username": account})
        current_auth, _ = self._keys(current_password, unb64(pre["salt"]), _kdf(pre["kdf"]))
        start = self._call("POST", "/me/password/start", {})
        salt, params = unb64(start["salt"]), _kdf(start["kdf"])
        new_auth, new_unlock = self._keys(new_password, salt, params)
        bundle = wrap_key_bundle(
            unlock_key=new_unlock,
            server_share=unb64(start["server_share"]),
            account=account,
            patient_private_key=self.unlocked.private_key,
            pharmacy_public_key=self.unlocked.pharmacy_public_key,
        )
        result: dict[str, Any] = self._call(
            "POST",
            "/me/password",
            {
                "current_auth_key": b64(current_auth),
                "new_auth_key": b64(new_auth),
                "kdf": params.to_dict(),
                "key_bundle": b64(bundle),
            },
        )
        return result

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/me")
        return result

    def sessions(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/me/sessions")["sessions"]
        return result

    def end_session(self, session_id: str) -> None:
        self._call("DELETE", f"/me/sessions/{session_id}", {})
