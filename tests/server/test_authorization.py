"""The authorization sweep: every cross-account and cross-pharmacy attempt gets a uniform
refusal and leaves an audit entry; and the audit chain detects edits and removals."""

from __future__ import annotations

import sqlalchemy as sa

from rxvault.server import _audit
from rxvault.server._models import AuditEntry

from .conftest import PharmacySide

PASSWORD = "correct horse battery staple"


def _entries(server) -> list[AuditEntry]:
    with server.admin() as admin:
        return list(admin.session.execute(sa.select(AuditEntry).order_by(AuditEntry.seq)).scalars())


def _refusals(server, action: str) -> list[AuditEntry]:
    return [e for e in _entries(server) if e.action == action and e.outcome.startswith("refused")]


def test_patients_cannot_reach_each_other(server, pharmacy, patient_client) -> None:
    a, b = patient_client(), patient_client()
    a.register(pharmacy.enroll("A"), "patient-a", PASSWORD)
    b.register(pharmacy.enroll("B"), "patient-b", PASSWORD)
    pharmacy.upload(
        *pharmacy.batch([pharmacy.block("A", b'{"a": 1}'), pharmacy.block("B", b'{"b": 2}')])
    )
    b_handle = pharmacy.handle("B")
    # The block and key bundle routes serve only the session's own account; parameters that
    # name another patient are ignored.
    r = a.http.get("/api/v1/me/block", params={"handle": b_handle})
    assert r.json()["handle"] == pharmacy.handle("A")
    r = a.http.get("/api/v1/me/key-bundle", params={"username": "patient-b"})
    assert r.json()["username"] == "patient-a"
    # B's session cannot be ended (or even confirmed to exist) by A.
    b_session = b.sessions()[0]["id"]
    r = a.http.request("DELETE", f"/api/v1/me/sessions/{b_session}", json={})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert b.http.get("/api/v1/me").status_code == 200
    assert _refusals(server, "patient.session-end")
    # A patient's cookie opens no agent route.
    for method, path in (
        ("GET", "/api/v1/agent/key-directory"),
        ("GET", f"/api/v1/agent/records/{b_handle}"),
        ("POST", f"/api/v1/agent/records/{b_handle}/restore"),
    ):
        r = a.http.request(method, path, json={} if method == "POST" else None)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_token"
    assert len([e for e in _entries(server) if e.outcome == "refused:token"]) >= 3


def test_forged_and_stale_cookies_are_refused_and_audited(server, pharmacy, patient_client):
    a = patient_client()
    a.register(pharmacy.enroll("A"), "patient-a", PASSWORD)
    forged = server.client()
    forged.cookies.set("__Host-rxvault-session", "A" * 43, domain="portal.test")
    for path in ("/api/v1/me/block", "/api/v1/me/key-bundle", "/api/v1/me/sessions"):
        r = forged.get(path)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "not_authenticated"
    assert len([e for e in _entries(server) if e.outcome == "refused:session"]) == 3


def test_one_pharmacy_cannot_act_for_another(server, pharmacy, patient_client) -> None:
    other = PharmacySide(server, slug="other-town")
    other.register_key()
    patient_client().register(other.enroll("Y1"), "other-patient", PASSWORD)
    other.upload(*other.batch([other.block("Y1", b'{"y": 1}')]))
    y_handle = other.handle("Y1")
    # X's token with a batch signed by Y's key: refused, nothing applied.
    bid, data = other.batch([other.block("Y1", b'{"forged": 1}')])
    r = pharmacy.upload(bid, data)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "signature_invalid"
    # X's token cannot see or restore Y's records, nor its key directory entries.
    assert pharmacy.http.get(f"/api/v1/agent/records/{y_handle}").status_code == 404
    r = pharmacy.http.post(f"/api/v1/agent/records/{y_handle}/restore", json={})
    assert r.status_code == 404
    assert pharmacy.http.get("/api/v1/agent/key-directory").json()["entries"] == []
    state = other.http.get(f"/api/v1/agent/records/{y_handle}").json()
    assert state["version"] == 1
    assert _refusals(server, "agent.batch")
    assert _refusals(server, "agent.restore")


def test_audit_chain_verifies_and_detects_tampering(server, pharmacy, patient_client) -> None:
    patient_client().register(pharmacy.enroll("A"), "patient-a", PASSWORD)
    patient_client().login("patient-a", PASSWORD)
    key = server.ctx.audit_key
    with server.admin() as admin:
        report = _audit.verify(admin.session, key)
    assert report.ok, report.problems
    assert report.entries >= 4
    entries = _entries(server)
    # No usernames, passwords or record contents in the log.
    text = " ".join(f"{e.actor} {e.target} {e.detail}" for e in entries)
    assert "patient-a" not in text
    table = AuditEntry.__table__
    with server.ctx.db.begin() as s:
        s.execute(table.update().where(table.c.seq == 2).values(outcome="edited"))
    with server.admin() as admin:
        problems = _audit.verify(admin.session, key).problems
    assert any("entry 2 was altered" in p for p in problems)
    with server.ctx.db.begin() as s:
        s.execute(table.update().where(table.c.seq == 2).values(outcome=entries[1].outcome))
        s.execute(table.delete().where(table.c.seq == 3))
    with server.admin() as admin:
        problems = _audit.verify(admin.session, key).problems
    assert any("missing" in p for p in problems)
    assert any("altered" in p for p in problems)  # entry 4's MAC no longer chains
    last = entries[-1].seq
    with server.ctx.db.begin() as s:
        s.execute(table.delete().where(table.c.seq >= 3))
    with server.admin() as admin:
        problems = _audit.verify(admin.session, key).problems
    assert any(f"head says {last}" in p or "head" in p for p in problems)
