"""The key directory (``GET /agent/key-directory``): the exact ``DirectoryOut`` body, its order,
cursor and page limits, and the agent's paging against servers with the smaller page limit."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from typing import Any

import httpx
import sqlalchemy as sa

from rxvault.agent._api import OLD_DIRECTORY_PAGE, ServerApi
from rxvault.server._agent_api import MAX_DIRECTORY_PAGE
from rxvault.server._db import transaction
from rxvault.server._models import KeyRegistration, Pharmacy
from rxvault.server._schemas import DirectoryEntry, DirectoryOut

from .conftest import PharmacySide, Server

URL = "/api/v1/agent/key-directory"


def _insert(server: Server, slug: str, seqs: list[int], at: dt.datetime) -> None:
    with transaction(server.ctx.db) as s:
        pid = s.execute(sa.select(Pharmacy.id).where(Pharmacy.slug == slug)).scalar_one()
        s.execute(
            sa.insert(KeyRegistration),
            [
                {
                    "pharmacy_id": pid,
                    "seq": seq,
                    "handle": secrets.token_hex(16),
                    "lookup_id": secrets.token_hex(16),
                    "public_key": os.urandom(32),
                    "binding": os.urandom(32),
                    "registered_at": at + dt.timedelta(microseconds=seq % 3 * 250_001),
                }
                for seq in seqs
            ],
        )


def _expected(server: Server, slug: str, after: int, limit: int) -> dict[str, Any]:
    """The page as the pydantic models write it (the documented schema)."""
    with transaction(server.ctx.db) as s:
        rows = (
            s.execute(
                sa.select(KeyRegistration)
                .join(Pharmacy, Pharmacy.id == KeyRegistration.pharmacy_id)
                .where(Pharmacy.slug == slug, KeyRegistration.seq > after)
                .order_by(KeyRegistration.seq)
            )
            .scalars()
            .all()
        )
        entries = [
            DirectoryEntry(
                seq=r.seq,
                handle=r.handle,
                lookup_id=r.lookup_id,
                public_key=r.public_key,
                binding=r.binding,
                registered_at=r.registered_at,
            )
            for r in rows[:limit]
        ]
    cursor = entries[-1].seq if entries else after
    out = DirectoryOut(entries=entries, next_cursor=cursor, more=len(rows) > limit)
    return out.model_dump(mode="json")


def test_pages_are_the_documented_body_in_seq_order(server: Server) -> None:
    mine = PharmacySide(server, slug="mine")
    PharmacySide(server, slug="theirs")
    # Inserted out of order, interleaved with another pharmacy's entries.
    _insert(server, "mine", [5, 1, 4, 2, 3, 7, 6], server.clock.now())
    _insert(server, "theirs", [1, 2, 3, 4, 9], server.clock.now())
    for after, limit in [(0, 3), (3, 3), (6, 3), (7, 3), (0, 7), (0, 500), (2, 1), (100, 5)]:
        r = mine.http.get(URL, params={"after": after, "limit": limit})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.json() == _expected(server, "mine", after, limit), (after, limit)
    page = mine.http.get(URL, params={"after": 0, "limit": 3}).json()
    assert [e["seq"] for e in page["entries"]] == [1, 2, 3]
    assert (page["next_cursor"], page["more"]) == (3, True)
    # Times in UTC with a Z, microseconds only when there are any; keys base64url unpadded.
    times = {e["seq"]: e["registered_at"] for e in page["entries"]}
    assert times[3] == "2026-03-01T09:00:00Z"
    assert times[1] == "2026-03-01T09:00:00.250001Z"
    assert all(len(e["public_key"]) == 43 and "=" not in e["binding"] for e in page["entries"])
    last = mine.http.get(URL, params={"after": 7}).json()
    assert last == {"entries": [], "next_cursor": 7, "more": False}


def test_page_limit(server: Server) -> None:
    mine = PharmacySide(server, slug="mine")
    _insert(server, "mine", list(range(1, 1202)), server.clock.now())
    default = mine.http.get(URL).json()
    assert len(default["entries"]) == 500
    assert default["more"] is True
    big = mine.http.get(URL, params={"limit": MAX_DIRECTORY_PAGE}).json()
    assert [e["seq"] for e in big["entries"]] == list(range(1, 1202))
    assert big["more"] is False
    for limit in (0, MAX_DIRECTORY_PAGE + 1):
        r = mine.http.get(URL, params={"limit": limit})
        assert r.status_code == 422, limit
        assert r.json()["error"]["code"] == "invalid_request"


def test_openapi_documents_the_body(server: Server) -> None:
    schema = server.app.app.openapi()  # type: ignore[attr-defined]
    op = schema["paths"][URL]["get"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/DirectoryOut"}
    limit = next(p for p in op["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == MAX_DIRECTORY_PAGE


def test_agent_pages_through_a_server_with_the_old_page_limit() -> None:
    """A server from before the larger page refuses it with 422; the agent then asks for the
    old maximum and still gets every entry, in order."""
    asked: list[int] = []
    total = 2 * OLD_DIRECTORY_PAGE + 5

    def old_server(request: httpx.Request) -> httpx.Response:
        after = int(request.url.params["after"])
        limit = int(request.url.params["limit"])
        asked.append(limit)
        if limit > OLD_DIRECTORY_PAGE:
            error = {"code": "invalid_request", "message": "The request is not valid."}
            return httpx.Response(422, json={"error": {**error, "request_id": "x"}})
        seqs = list(range(after + 1, min(after + limit, total) + 1))
        entries = [{"seq": seq} for seq in seqs]
        cursor = seqs[-1] if seqs else after
        return httpx.Response(
            200, json={"entries": entries, "next_cursor": cursor, "more": cursor < total}
        )

    client = httpx.Client(transport=httpx.MockTransport(old_server), base_url="https://s.test")
    api = ServerApi("https://s.test", "rxvat_x", client=client, sleep=lambda _: None)
    seqs = [e["seq"] for page in api.key_directory_pages(0) for e in page]
    assert seqs == list(range(1, total + 1))
    assert asked[0] > OLD_DIRECTORY_PAGE
    assert asked[1:] == [OLD_DIRECTORY_PAGE] * 3
