"""After a realistic session, no table and no log line holds a password, a derived key, a
private key, the pepper, an enrollment code or any plaintext of a record."""

from __future__ import annotations

import base64
import logging

import pytest
import sqlalchemy as sa

from rxvault import format as fmt
from rxvault.client import ClientError
from rxvault.server._models import Base

PASSWORD = "Tr0ub4dor&3-unique-password"
NEW_PASSWORD = "a-second-unique-passphrase-77"
MARKER = "ZETA-PLAINTEXT-RX-8472 Amoxicillin 500mg Dr. Quinnell"


def _forms(secret: bytes) -> list[bytes]:
    forms = [secret, secret.hex().encode(), base64.b64encode(secret).rstrip(b"=")]
    forms.append(base64.urlsafe_b64encode(secret).rstrip(b"="))
    return [f for f in forms if len(f) >= 8]


def _dump(engine: sa.Engine) -> bytes:
    chunks: list[bytes] = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def test_no_secret_in_any_table_or_log(server, pharmacy, patient_client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    code_text = pharmacy.enroll("P-SECRET")
    code = fmt.parse_enrollment_code(code_text)
    enrollment = fmt.derive_enrollment(code)
    client = patient_client()
    client.register(code_text, "harriet", PASSWORD)
    document = fmt.canonical_json({"name": MARKER, "rx": [{"drug": MARKER}]})
    pharmacy.upload(*pharmacy.batch([pharmacy.block("P-SECRET", document)]))
    client.login("harriet", PASSWORD)
    assert client.fetch().document == document
    client.change_password(PASSWORD, NEW_PASSWORD)
    client.login("harriet", NEW_PASSWORD)
    # A failed login with a wrong password is part of a realistic session too.
    other = patient_client()
    with pytest.raises(ClientError, match="invalid_credentials"):
        other.login("harriet", "Wrong-Password-Guess-99")
    assert client.unlocked is not None
    private_key = client.unlocked.private_key
    assert fmt.patient_public_key(private_key)  # a real X25519 private key
    client.logout()
    assert client.unlocked is None  # logged out: the client forgot the keys
    secrets = {
        "password": PASSWORD.encode(),
        "new password": NEW_PASSWORD.encode(),
        "wrong password": b"Wrong-Password-Guess-99",
        "plaintext": MARKER.encode(),
        "document": document,
        "code text": code_text.encode(),
        "code secret": code.secret,
        "binding key": enrollment.binding_key,
        "pin key": enrollment.pin_key,
        "pharmacy private key": pharmacy.key.private_bytes(),
        "handle secret": pharmacy.handle_secret,
        "pepper": server.pepper,
    }
    for i, (auth_key, unlock_key) in enumerate(client._auth_cache.values()):
        secrets[f"auth key {i}"] = auth_key
        secrets[f"unlock key {i}"] = unlock_key
    for i, (auth_key, unlock_key) in enumerate(other._auth_cache.values()):
        secrets[f"guess auth key {i}"] = auth_key
        secrets[f"guess unlock key {i}"] = unlock_key
    secrets["patient private key"] = private_key

    dump = _dump(server.app.app.state.engine)
    logs = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert logs, "the request log was not captured"
    assert b"/api/v1/login" in logs
    for name, secret in secrets.items():
        for form in _forms(secret):
            assert form not in dump, f"{name} found in the database"
            assert form not in logs, f"{name} found in the logs"
