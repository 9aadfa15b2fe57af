"""The agent API: tokens and scopes, pharmacy key, enrollments, key directory, batches with
their caps and limits, tombstones and restore, re-enrollment."""

from __future__ import annotations

import datetime as dt

import pytest

from rxvault import format as fmt
from rxvault.client import ClientError

PASSWORD = "correct horse battery staple"


def _code(r) -> str:
    return r.json()["error"]["code"]


def test_tokens_are_required_and_scoped(server, pharmacy) -> None:
    anonymous = server.client()
    assert anonymous.get("/api/v1/agent/pharmacy").status_code == 401
    bad = server.client()
    bad.headers["Authorization"] = "Bearer rxvat_not-a-real-token"
    r = bad.get("/api/v1/agent/pharmacy")
    assert r.status_code == 401
    assert _code(r) == "invalid_token"
    with server.admin() as admin:
        read_only, _ = admin.create_token(pharmacy.slug, ("directory",))
    limited = server.client()
    limited.headers["Authorization"] = f"Bearer {read_only}"
    assert limited.get("/api/v1/agent/key-directory").status_code == 200
    batch_id, data = pharmacy.batch([])
    r = limited.put(
        f"/api/v1/agent/batches/{batch_id}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 403
    assert _code(r) == "insufficient_scope"


def test_revoked_and_rotated_tokens_stop_working(server, pharmacy) -> None:
    with server.admin() as admin:
        token_id = admin.list_tokens(pharmacy.slug)[0].id
        new_token, _ = admin.rotate_token(pharmacy.slug, token_id)
    assert pharmacy.http.get("/api/v1/agent/pharmacy").status_code == 401
    pharmacy.http.headers["Authorization"] = f"Bearer {new_token}"
    assert pharmacy.http.get("/api/v1/agent/pharmacy").json()["slug"] == pharmacy.slug


def test_pharmacy_key_is_registered_once(server, pharmacy) -> None:
    pharmacy.register_key()  # the same key again is fine
    other = fmt.generate_pharmacy_key()
    r = pharmacy.http.put(
        "/api/v1/agent/pharmacy-key", json={"public_key": _b64(other.public_bytes())}
    )
    assert r.status_code == 409
    assert _code(r) == "pharmacy_key_exists"
    info = pharmacy.http.get("/api/v1/agent/pharmacy").json()
    assert info["key_id"] == fmt.pharmacy_id(pharmacy.key.public_bytes())


def test_enrollments_are_idempotent_and_conflicts_refused(server, pharmacy) -> None:
    code = fmt.new_enrollment_code()
    lookup = fmt.derive_enrollment(code).lookup_id
    item = {
        "lookup_id": lookup,
        "handle": pharmacy.handle("P9"),
        "pin_tag": _b64(fmt.pin_tag(code, pharmacy.key.public_bytes())),
        "expires_at": (server.clock.now() + dt.timedelta(days=10)).isoformat(),
    }
    first = pharmacy.http.post("/api/v1/agent/enrollments", json={"enrollments": [item]})
    assert first.json() == {"created": 1, "existing": 0}
    again = pharmacy.http.post("/api/v1/agent/enrollments", json={"enrollments": [item]})
    assert again.json() == {"created": 0, "existing": 1}
    changed = dict(item, handle=pharmacy.handle("P10"))
    r = pharmacy.http.post("/api/v1/agent/enrollments", json={"enrollments": [changed]})
    assert r.status_code == 409
    past = dict(
        item,
        lookup_id="ab" * 16,
        expires_at=(server.clock.now() - dt.timedelta(days=1)).isoformat(),
    )
    r = pharmacy.http.post("/api/v1/agent/enrollments", json={"enrollments": [past]})
    assert r.status_code == 422


def test_enrollment_codes_are_single_use_and_expire(server, pharmacy, patient_client) -> None:
    code = pharmacy.enroll("P1", days=2)
    patient_client().register(code, "first", PASSWORD)
    with pytest.raises(ClientError) as info:
        patient_client().register(code, "second", PASSWORD)
    assert info.value.code == "enrollment_invalid"
    late = pharmacy.enroll("P2", days=1)
    server.clock.advance(days=1, seconds=1)
    with pytest.raises(ClientError) as info:
        patient_client().register(late, "late", PASSWORD)
    assert info.value.code == "enrollment_invalid"


def test_key_directory_pages_by_cursor_and_bindings_verify(server, pharmacy, patient_client):
    for i in range(3):
        patient_client().register(pharmacy.enroll(f"P{i}"), f"user{i}", PASSWORD)
    r = pharmacy.http.get("/api/v1/agent/key-directory", params={"after": 0, "limit": 2})
    page = r.json()
    assert [e["seq"] for e in page["entries"]] == [1, 2]
    assert page["more"] is True
    rest = pharmacy.http.get(
        "/api/v1/agent/key-directory", params={"after": page["next_cursor"]}
    ).json()
    assert [e["seq"] for e in rest["entries"]] == [3]
    assert rest["more"] is False
    keys = pharmacy.directory()
    assert set(keys) == {pharmacy.handle(f"P{i}") for i in range(3)}


def test_re_enrollment_replaces_key_account_and_block(server, pharmacy, patient_client):
    first = patient_client()
    first.register(pharmacy.enroll("P1"), "dana", PASSWORD)
    bid, data = pharmacy.batch([pharmacy.block("P1", b'{"old": true}')])
    assert pharmacy.upload(bid, data).status_code == 200
    # Forgotten password: the pharmacy re-enrolls; the old block goes with the old key.
    second = patient_client()
    second.register(pharmacy.enroll("P1"), "dana2", PASSWORD)
    assert first.http.get("/api/v1/me").status_code == 401
    with pytest.raises(ClientError):
        patient_client().login("dana", PASSWORD)
    assert second.fetch().state == "pending"
    entries = pharmacy.http.get("/api/v1/agent/key-directory").json()["entries"]
    assert [e["handle"] for e in entries] == [pharmacy.handle("P1")] * 2
    # The next sync encrypts to the new key with a higher version.
    bid, data = pharmacy.batch([pharmacy.block("P1", b'{"new": true}')])
    assert pharmacy.upload(bid, data).json()["applied"][0]["version"] == 2
    assert second.fetch().document == b'{"new": true}'


def test_re_enrolled_patient_may_keep_the_username(server, pharmacy, patient_client):
    patient_client().register(pharmacy.enroll("P1"), "gail", PASSWORD)
    patient_client().register(pharmacy.enroll("P2"), "hank", PASSWORD)
    # Another patient's name stays taken, even for a re-enrollment.
    with pytest.raises(ClientError) as info:
        patient_client().register(pharmacy.enroll("P2"), "gail", PASSWORD)
    assert info.value.code == "username_taken"
    # The patient's own name is free for the registration that replaces their account.
    again = patient_client()
    again.register(pharmacy.enroll("P1"), "gail", "a new password for gail 2026")
    assert again.http.get("/api/v1/me").json()["username"] == "gail"
    with pytest.raises(ClientError):
        patient_client().login("gail", PASSWORD)
    patient_client().login("gail", "a new password for gail 2026")


def test_tombstones_delete_and_restore_within_30_days(server, pharmacy, patient_client):
    client = patient_client()
    client.register(pharmacy.enroll("P1"), "erin", PASSWORD)
    bid, data = pharmacy.batch([pharmacy.block("P1", b'{"rx": 1}')])
    pharmacy.upload(bid, data)
    bid, data = pharmacy.batch([], [pharmacy.tombstone("P1")])
    result = pharmacy.upload(bid, data).json()
    assert result["deleted"] == [{"handle": pharmacy.handle("P1"), "version": 2}]
    records = client.fetch()
    assert (records.state, records.version, records.document) == ("deleted", 2, None)
    state = pharmacy.http.get(f"/api/v1/agent/records/{pharmacy.handle('P1')}").json()
    assert state["state"] == "deleted"
    server.clock.advance(days=29)
    r = pharmacy.http.post(f"/api/v1/agent/records/{pharmacy.handle('P1')}/restore", json={})
    assert r.status_code == 200, r.text
    # The device that showed the deletion refuses the older block; a device that never saw the
    # deletion shows the restored records.
    client.login("erin", PASSWORD)  # the old session has long expired
    with pytest.raises(ClientError) as refused:
        client.fetch()
    assert refused.value.code == "rollback_refused"
    other_device = patient_client()
    other_device.login("erin", PASSWORD)
    restored = other_device.fetch()
    assert (restored.state, restored.version, restored.document) == ("live", 1, b'{"rx": 1}')


def test_deleted_blocks_are_purged_after_30_days(server, pharmacy, patient_client) -> None:
    patient_client().register(pharmacy.enroll("P1"), "finn", PASSWORD)
    pharmacy.upload(*pharmacy.batch([pharmacy.block("P1", b"{}")]))
    pharmacy.upload(*pharmacy.batch([], [pharmacy.tombstone("P1")]))
    server.clock.advance(days=31)
    with server.admin() as admin:
        assert admin.purge() == 1
    r = pharmacy.http.post(f"/api/v1/agent/records/{pharmacy.handle('P1')}/restore", json={})
    assert r.status_code == 404
    assert _code(r) == "not_restorable"


def test_deletion_caps_hold_per_batch_and_per_day(make_server) -> None:
    from rxvault.server import Limits

    from .conftest import PharmacySide

    srv = make_server(limits=Limits(delete_cap_per_batch=3, delete_cap_per_day=5))
    side = PharmacySide(srv)
    side.register_key()
    too_many = [side.tombstone(f"P{i}") for i in range(4)]
    r = side.upload(*side.batch([], too_many))
    assert r.status_code == 409
    assert _code(r) == "deletion_cap_exceeded"
    assert (
        side.upload(*side.batch([], [side.tombstone(f"Q{i}") for i in range(3)])).status_code == 200
    )
    r = side.upload(*side.batch([], [side.tombstone(f"R{i}") for i in range(3)]))
    assert r.status_code == 409
    assert _code(r) == "deletion_cap_exceeded"
    assert (
        side.upload(*side.batch([], [side.tombstone(f"S{i}") for i in range(2)])).status_code == 200
    )
    srv.clock.advance(hours=24, seconds=1)
    assert (
        side.upload(*side.batch([], [side.tombstone(f"T{i}") for i in range(3)])).status_code == 200
    )


def test_size_limits(make_server) -> None:
    from rxvault.server import Limits

    from .conftest import PharmacySide

    srv = make_server(limits=Limits(max_batch_bytes=4000, max_blocks_per_batch=2))
    side = PharmacySide(srv)
    side.register_key()
    r = side.upload(*side.batch([], [side.tombstone(f"P{i}") for i in range(3)]))
    assert r.status_code == 413
    r = side.upload("a" * 22, b"\0" * 5000)
    assert r.status_code == 413
    assert _code(r) == "batch_too_large"


def test_bad_signatures_and_mismatched_ids_are_refused(server, pharmacy) -> None:
    bid, data = pharmacy.batch([], [pharmacy.tombstone("P1")])
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    r = pharmacy.upload(bid, tampered)
    assert r.status_code == 422
    assert _code(r) == "signature_invalid"
    r = pharmacy.upload("x" * 22, data)
    assert r.status_code == 422
    r = pharmacy.upload(bid, b"garbage")
    assert r.status_code == 422


def test_upload_without_pharmacy_key_is_refused(server) -> None:
    from .conftest import PharmacySide

    side = PharmacySide(server, slug="no-key-yet")
    r = side.upload(*side.batch([]))
    assert r.status_code == 409
    assert _code(r) == "pharmacy_key_missing"


def _b64(value: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def test_agent_requests_without_a_body_need_no_content_type(server, pharmacy) -> None:
    code = fmt.new_enrollment_code()
    lookup = fmt.derive_enrollment(code).lookup_id
    item = {
        "lookup_id": lookup,
        "handle": pharmacy.handle("P5"),
        "pin_tag": _b64(fmt.pin_tag(code, pharmacy.key.public_bytes())),
        "expires_at": (server.clock.now() + dt.timedelta(days=10)).isoformat(),
    }
    pharmacy.http.post("/api/v1/agent/enrollments", json={"enrollments": [item]})
    r = pharmacy.http.delete(f"/api/v1/agent/enrollments/{lookup}")
    assert r.status_code == 204
    r = pharmacy.http.post(
        "/api/v1/agent/enrollments", content=b"x=1", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415


def test_a_disabled_pharmacy_cannot_upload_or_register(server, pharmacy, patient_client) -> None:
    code = pharmacy.enroll("P1")
    with server.admin() as admin:
        admin.set_pharmacy_disabled(pharmacy.slug, True)
    r = pharmacy.upload(*pharmacy.batch([], [pharmacy.tombstone("P1")]))
    assert r.status_code == 401
    with pytest.raises(ClientError) as info:
        patient_client().register(code, "quinn", PASSWORD)
    assert info.value.code == "enrollment_invalid"
    with server.admin() as admin:
        admin.set_pharmacy_disabled(pharmacy.slug, False)
    patient_client().register(code, "quinn", PASSWORD)
