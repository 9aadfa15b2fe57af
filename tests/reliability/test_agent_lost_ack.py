"""Harness 3 (issue 8): lost acknowledgements, the same batch at once, the same id changed.

- **Lost acknowledgement**: the agent talks to the real server process over a socket through an
  httpx transport that, for a batch upload, lets the request through, reads the server's whole
  answer (so the server has committed) and then drops it, as a broken connection would. The
  agent retries the same bytes under the same batch id; the server answers with the stored
  result; the agent learns it. One copy is stored (one batch row per id, every version 1), and
  the local state agrees with the server. When every answer is lost the run fails with exit code
  3 and the local state claims nothing the server has not acknowledged; the next run learns the
  stored results from the outbox and applies nothing twice.
- **The same batch, ten times at once**: ten threads PUT the same signed batch over the socket;
  all get the same answer, one batch row, one version.
- **The same id, other bytes**: refused with 409 ``batch_conflict``; nothing on the server moves.

The last two run on every database of ``RXVAULT_TEST_DATABASES`` (sqlite, postgresql, mariadb).
Short form: all of the above. Long form (``-m long``): ``RXVAULT_SOAK_AGENT_LOST_ACK_ROUNDS``
rounds (default 20) of ten concurrent senders of ten different batches each time, on each
database, each batch checked as above.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from agent.conftest import Harness, make_agent
from rxvault import format as fmt
from rxvault.agent import AgentContext, SyncOptions, run_sync
from rxvault.agent._api import ServerUnavailable
from rxvault.server._models import AuditEntry, Batch, Pharmacy
from server.conftest import scratch_database as any_database
from server.conftest import selected
from server_process import server_process

from ._agent import (
    QUIET,
    Case,
    Server,
    check_local,
    check_not_ahead,
    database_server,
    make_source,
    new_case,
    patient_ids,
    records,
    reference_views,
)


class LosingTransport(httpx.HTTPTransport):
    """Lets every request reach the server; drops the answers of the first ``lose`` uploads
    of each batch id (``lose=None``: all of them) after reading them whole."""

    def __init__(self, lose: int | None) -> None:
        super().__init__()
        self.lose = lose
        self.seen: dict[str, int] = {}
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        path = request.url.path
        if request.method == "PUT" and "/agent/batches/" in path:
            response.read()  # the server has answered: its transaction is committed
            n = self.seen[path] = self.seen.get(path, 0) + 1
            if self.lose is None or n <= self.lose:
                response.close()
                self.lost += 1
                raise httpx.ReadError("connection lost before the answer arrived", request=request)
        return response


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with database_server(tmp_path_factory.mktemp("lost-ack"), socket=True) as s:
        yield s


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(tmp_path_factory.mktemp("lost-ack-source") / "pharmacy", patients=60)


def _context(case: Case, transport: LosingTransport) -> AgentContext:
    return AgentContext.load(
        case.home, lambda base: httpx.Client(transport=transport, base_url=base, timeout=60)
    )


def _batches(server: Server, slug: str) -> list[tuple[str, dict[str, object]]]:
    with server.harness.session() as s:
        rows = s.execute(
            sa.select(Batch)
            .join(Pharmacy, Pharmacy.id == Batch.pharmacy_id)
            .where(Pharmacy.slug == slug)
        ).scalars()
        return [(b.batch_id, json.loads(b.result)) for b in rows]


def _replays(server: Server) -> int:
    with server.harness.session() as s:
        return int(
            s.execute(
                sa.select(sa.func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "agent.batch", AuditEntry.outcome == "replayed")
            ).scalar_one()
        )


def test_lost_acknowledgements_are_learned_not_applied_twice(
    server: Server, source: Path, tmp_path: Path
) -> None:
    secret = os.urandom(32)
    ids = patient_ids(source)[:10]
    (reference,) = reference_views(tmp_path / "reference", source, secret, ids)
    case = new_case(server, tmp_path / "home", source, secret=secret, ids=ids)
    transport = LosingTransport(lose=1)
    replays = _replays(server)
    summary = run_sync(_context(case, transport), SyncOptions(), QUIET)
    assert transport.lost == 3  # three batches of at most 4 blocks, each answer lost once
    assert summary.uploaded == 10
    assert _replays(server) == replays + 3
    batches = _batches(server, case.slug)
    assert len(batches) == 3  # one copy of each
    assert sum(len(result["applied"]) for _, result in batches) == 10
    view = case.view()
    assert view == reference
    assert {v[1] for v in view.values()} == {1}
    check_local(case, view)


def test_every_answer_lost_then_the_next_run_learns(
    server: Server, source: Path, tmp_path: Path
) -> None:
    secret = os.urandom(32)
    ids = patient_ids(source)[:10]
    (reference,) = reference_views(tmp_path / "reference", source, secret, ids)
    case = new_case(server, tmp_path / "home", source, secret=secret, ids=ids)
    transport = LosingTransport(lose=None)
    with pytest.raises(ServerUnavailable) as failed:
        run_sync(_context(case, transport), SyncOptions(), QUIET)
    assert failed.value.exit_code == 3
    assert "did not answer" in str(failed.value)
    assert transport.lost == 2  # retries = 2 in these homes: the first batch, twice
    check_not_ahead(case)
    assert records(server.harness, case.slug)  # the server did apply the first batch
    summary = case.sync()
    # the second batch was already in the outbox (written while the first was with the server)
    # and never sent: the sender stops at the first failure
    assert summary.outbox_resent == 2  # type: ignore[attr-defined]
    view = case.view()
    assert view == reference
    assert {v[1] for v in view.values()} == {1}
    check_local(case, view)
    assert len(_batches(server, case.slug)) == 3


# --- the same batch at once; the same id with other bytes ------------------------------------


def _signed_batch(
    ctx: AgentContext, batch_id: str, documents: dict[str, bytes], version: int
) -> bytes:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    blocks = []
    for pid, document in documents.items():
        _, public = fmt.generate_patient_keypair()
        blocks.append(
            fmt.seal_block(
                document,
                pharmacy_key=ctx.key,
                handle=ctx.handle(pid),
                version=version,
                as_of=now,
                recipient_public_key=public,
            )
        )
    return fmt.make_batch(
        pharmacy_key=ctx.key, batch_id=batch_id, blocks=blocks, tombstones=[], created_at=now
    )


def _server_state(harness: Harness, slug: str) -> tuple[object, ...]:
    recs = records(harness, slug)
    with harness.session() as s:
        batches = sorted(
            (b.batch_id, b.digest, b.result)
            for b in s.execute(
                sa.select(Batch)
                .join(Pharmacy, Pharmacy.id == Batch.pharmacy_id)
                .where(Pharmacy.slug == slug)
            ).scalars()
        )
    return (
        sorted((h, r.state, r.version, r.envelope) for h, r in recs.items()),
        batches,
    )


def _put(url: str, token: str, batch_id: str, data: bytes) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=120) as c:
        return c.put(
            f"/api/v1/agent/batches/{batch_id}",
            content=data,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
            },
        )


def _concurrent_rounds(
    harness: Harness, url: str, tmp: Path, source: Path, rounds: int, senders: int = 10
) -> None:
    slug = "concurrent"
    token = harness.add_pharmacy(slug)
    agent = make_agent(harness, tmp / "home", source, token=token)
    ctx = agent.context()
    ids = patient_ids(source)
    for r in range(rounds):
        batch_id = fmt.new_batch_id()
        docs = {pid: json.dumps({"round": r, "patient": pid}).encode() for pid in ids[:5]}
        data = _signed_batch(ctx, batch_id, docs, r + 1)
        barrier = threading.Barrier(senders)

        def send(
            _: int,
            batch_id: str = batch_id,
            data: bytes = data,
            barrier: threading.Barrier = barrier,
        ) -> httpx.Response:
            barrier.wait()
            return _put(url, token, batch_id, data)

        with ThreadPoolExecutor(senders) as pool:
            answers = list(pool.map(send, range(senders)))
        assert [a.status_code for a in answers] == [200] * senders, [a.text for a in answers]
        results = [a.json() for a in answers]
        assert all(res == results[0] for res in results)
        assert len(results[0]["applied"]) == 5
        assert results[0]["stale"] == []
        before = _server_state(harness, slug)
        assert sum(1 for b in before[1] if b[0] == batch_id) == 1
        assert {v for _, _, v, _ in before[0]} == {r + 1}  # each round applied exactly once
        # The same id with other bytes (validly signed): refused, nothing moves.
        other = _signed_batch(ctx, batch_id, {p: b'{"other": true}' for p in ids[:5]}, r + 1)
        refused = _put(url, token, batch_id, other)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "batch_conflict"
        assert _server_state(harness, slug) == before
        # Sent again whole, it gets the stored result.
        again = _put(url, token, batch_id, data)
        assert again.status_code == 200
        assert again.json() == results[0]


@pytest.fixture(params=selected())
def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Harness, str]]:
    with any_database(request.param, tmp_path) as db:
        harness = Harness(db)
        try:
            with server_process(harness.url, harness.pepper) as url:
                yield harness, url
        finally:
            harness.close()


def test_same_batch_ten_times_at_once_and_changed_body(
    any_server: tuple[Harness, str], source: Path, tmp_path: Path
) -> None:
    harness, url = any_server
    _concurrent_rounds(harness, url, tmp_path, source, rounds=2)


@pytest.mark.long
def test_long_concurrent_rounds(
    any_server: tuple[Harness, str], source: Path, tmp_path: Path
) -> None:
    rounds = int(os.environ.get("RXVAULT_SOAK_AGENT_LOST_ACK_ROUNDS", "20"))
    harness, url = any_server
    _concurrent_rounds(harness, url, tmp_path, source, rounds=rounds)
    print(
        f"concurrent identical uploads: {rounds} rounds x 10 senders on {harness.url.split(':')[0]}"
    )
