"""The whole chain with the real agent: it enrolls and syncs the demo pharmacy against the real
server; patients register from the QR link, log in and see exactly their own published rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from rxvault.agent import (
    AgentContext,
    Reporter,
    SyncOptions,
    enroll,
    init_home,
    prepare,
    read_source,
    run_sync,
)
from rxvault.demo import generate
from rxvault.server._admin import Admin
from rxvault.server._db import transaction

from ._portal import PASSWORD, register, screen, unlock
from ._support import LiveServer


def published(ctx: AgentContext, patient_id: str) -> dict[str, Any]:
    """The document the agent publishes for a patient (what the portal must show)."""
    mapping = ctx.mapping()
    docs = prepare(mapping, read_source(mapping, ctx.config.source_dir), ctx.config.pharmacy_name)
    index = docs.index_of(patient_id)
    assert index is not None
    [(_, raw)] = list(docs.build([index]))
    return json.loads(raw)


def test_agent_enrolls_and_syncs_then_each_patient_sees_only_their_rows(
    browser: Browser, server: LiveServer, tmp_path: Path
) -> None:
    source = tmp_path / "pharmacy"
    generate(source, patients=40, seed=5)
    ctx_ = server.ctx
    with transaction(ctx_.db) as s:
        admin = Admin(s, ctx_.audit_key, ctx_.now())
        admin.create_pharmacy("main-street", "Main Street Pharmacy")
        token, _ = admin.create_token("main-street")
    home = tmp_path / "agent"
    init_home(
        home,
        pharmacy_name="Main Street Pharmacy",
        server_url=server.url,
        portal_url=server.url,
        source_dir=source,
        token=token,
    )
    agent = AgentContext.load(home)
    mapping = agent.mapping()
    ids = prepare(
        mapping, read_source(mapping, agent.config.source_dir), agent.config.pharmacy_name
    ).patient_ids
    docs = {pid: published(agent, pid) for pid in ids[:12]}
    # Two patients with prescriptions, of different counts.
    with_fills = sorted(
        (pid for pid, d in docs.items() if d["sections"][0]["rows"]),
        key=lambda pid: len(docs[pid]["sections"][0]["rows"]),
    )
    first, second = with_fills[-1], with_fills[0]
    made = {e.patient_id: e for e in enroll(agent, [first, second], days=30)}

    pages = {}
    for pid, username in ((first, "first.patient"), (second, "second.patient")):
        page = browser.new_context().new_page()
        url = made[pid].url
        assert "#enroll=" in url
        page.goto(url)
        screen(page, "register")
        register(page, server.url, made[pid].code_text, username)
        screen(page, "notice")
        pages[pid] = page

    summary = run_sync(agent, SyncOptions(), Reporter(interactive=False, quiet=True))
    assert summary.uploaded == 2

    for pid, page in pages.items():
        doc = docs[pid]
        rows = doc["sections"][0]["rows"]
        values = doc["patient"]["values"]
        page.reload()
        unlock(page, PASSWORD)
        screen(page, "records")
        name = " ".join(
            str(values[f["id"]]).strip()
            for f in doc["patient"]["fields"]
            if f["role"] in ("given_name", "middle_name", "family_name") and values[f["id"]]
        )
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Records for {name}")
        expect(page.get_by_test_id("pharmacy-name")).to_have_text("Main Street Pharmacy")
        # The agent's sync statement, verified with the patient's inclusion proof.
        expect(page.get_by_test_id("last-update")).to_be_visible()
        shown = min(25, len(rows))
        expect(page.locator(".summary")).to_have_text(
            f"Showing 1\u2013{shown} of {len(rows)} prescriptions."
        )
        others = [p for p in pages if p != pid]
        other_rx = {str(r["rx_number"]) for o in others for r in docs[o]["sections"][0]["rows"]}
        own_rx = {str(r["rx_number"]) for r in rows}
        visible = set(page.locator("table.history td[data-label='Rx number']").all_inner_texts())
        assert visible
        assert visible <= own_rx
        assert not visible & (other_rx - own_rx)
        page.context.close()
