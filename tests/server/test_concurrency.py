"""Concurrent requests on one database: the same batch sent twice at once is applied once;
racing batches of one pharmacy cannot pass the daily deletion cap together; registrations at
the same time get distinct, gap-free key directory positions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rxvault.server import Limits

from .conftest import PharmacySide

PASSWORD = "correct horse battery staple"


def test_same_batch_at_once_is_applied_once(server, pharmacy, patient_client) -> None:
    patient_client().register(pharmacy.enroll("P1"), "kim", PASSWORD)
    batch_id, data = pharmacy.batch([pharmacy.block("P1", b'{"x": 1}')])
    clients = [server.client() for _ in range(4)]
    for c in clients:
        c.headers["Authorization"] = pharmacy.http.headers["Authorization"]

    def send(c):
        return c.put(
            f"/api/v1/agent/batches/{batch_id}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(send, clients))
    assert [r.status_code for r in responses] == [200] * 4
    bodies = {r.text for r in responses}
    assert len(bodies) == 1
    with server.admin() as admin:
        from rxvault.server._models import Batch

        assert admin.session.query(Batch).count() == 1


def test_racing_batches_cannot_pass_the_daily_cap(make_server) -> None:
    srv = make_server(limits=Limits(delete_cap_per_batch=10, delete_cap_per_day=10))
    side = PharmacySide(srv)
    side.register_key()
    batches = [side.batch([], [side.tombstone(f"{k}{i}") for i in range(6)]) for k in "ABCD"]
    clients = [srv.client() for _ in batches]
    for c in clients:
        c.headers["Authorization"] = side.http.headers["Authorization"]

    def send(args):
        c, (bid, data) = args
        return c.put(
            f"/api/v1/agent/batches/{bid}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        ).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(send, zip(clients, batches, strict=True)))
    assert sorted(statuses) == [200, 409, 409, 409]


def test_concurrent_registrations_get_distinct_directory_positions(
    server, pharmacy, patient_client
) -> None:
    codes = [pharmacy.enroll(f"P{i}") for i in range(4)]
    clients = [patient_client() for _ in codes]

    def register(args):
        i, (client, code) = args
        client.register(code, f"racer{i}", PASSWORD)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(register, enumerate(zip(clients, codes, strict=True))))
    entries = pharmacy.http.get("/api/v1/agent/key-directory").json()["entries"]
    assert sorted(e["seq"] for e in entries) == [1, 2, 3, 4]
    assert len({e["handle"] for e in entries}) == 4
