"""Harnesses 4 and 9 in the portal (real Chromium): what ``test_attacks.py`` does not cover yet.

The server rewrites its answers: a ciphertext of its own inside the genuine header and signature
(anyone can encrypt to the patient's key), a deletion signed by a key of its own, another
patient's key bundle, a block older than a deletion already shown, an old deletion over newer
records, an older block after logging out and in again (the version shown is kept per account in
this browser's ``localStorage``), and "nothing published" after records were shown; and, with
the pharmacy's sync statement, an older block next to a statement proving a newer version, an
older statement than one shown, and no statement after one was shown. A new device without a
statement accepts an older genuine block: the documented limit (threat model §6.3.1).
"""

from __future__ import annotations

import datetime as dt
import json
import os

import httpx
from playwright.sync_api import Browser, Page, Route, expect

from rxvault import format as fmt
from rxvault.format._hpke import seal_base
from rxvault.format._padding import compress, pad

from ._portal import PASSWORD, log_in, screen, unlock
from ._support import LiveServer, Pharmacy, b64
from .test_attacks import SECRET_DRUG, assert_refused, document, registered, statement_for


def serve(page: Page, body: dict[str, object] | None) -> None:
    """From now on ``/me/block`` answers ``body`` (None: the genuine answer)."""
    page.unroute("**/api/v1/me/block")
    if body is None:
        return

    def handler(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=json.dumps({**response.json(), **body}))

    page.route("**/api/v1/me/block", handler)


def tombstone(pharmacy: Pharmacy, patient_id: str, *, upload: bool = True, key=None) -> bytes:
    handle = pharmacy.handle(patient_id)
    version = pharmacy.versions.get(handle, 0) + 1
    data = fmt.make_tombstone(
        pharmacy_key=key or pharmacy.key,
        handle=handle,
        version=version,
        deleted_at=dt.datetime.now(dt.UTC),
    )
    if upload:
        pharmacy.versions[handle] = version
        batch_id = fmt.new_batch_id()
        batch = fmt.make_batch(
            pharmacy_key=pharmacy.key,
            batch_id=batch_id,
            blocks=[],
            tombstones=[data],
            created_at=dt.datetime.now(dt.UTC),
        )
        r = pharmacy.http.put(
            f"/api/v1/agent/batches/{batch_id}",
            content=batch,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 200, r.text
    return data


def relock(page: Page) -> None:
    page.reload()
    unlock(page)


def test_forgeries_are_refused(browser: Browser, server: LiveServer, pharmacy: Pharmacy) -> None:
    page, patient_id = registered(browser, server, pharmacy)
    handle = pharmacy.handle(patient_id)
    genuine = pharmacy.seal(patient_id, document("Alice"), version=1)
    # The genuine header and signature around the server's own ciphertext to the patient's key.
    public_key = pharmacy.directory()[handle]
    end = 6 + int.from_bytes(genuine[4:6], "big")
    forged_doc = document("Mallory")
    enc, ciphertext = seal_base(
        public_key, genuine[:end], pad(compress(forged_doc)), os.urandom(32)
    )
    serve(
        page, {"state": "live", "envelope": b64(genuine[:end] + enc + ciphertext + genuine[-64:])}
    )
    relock(page)
    assert_refused(page, "SignatureInvalid")
    assert "Mallory" not in page.content()
    # A deletion signed by a key of the server's own.
    forged = tombstone(pharmacy, patient_id, upload=False, key=fmt.generate_pharmacy_key())
    serve(page, {"state": "deleted", "tombstone": b64(forged), "version": 2})
    relock(page)
    assert_refused(page, "SignatureInvalid")
    # Another patient's key bundle at login: it does not open, nothing is shown.
    other_page, _ = registered(browser, server, pharmacy)
    cookie = next(c for c in other_page.context.cookies() if c["name"] == "__Host-rxvault-session")
    other_bundle = httpx.get(
        server.url + "/api/v1/me/key-bundle",
        headers={"Cookie": f"__Host-rxvault-session={cookie['value']}"},
    ).json()
    other_page.context.close()
    serve(page, None)

    def swap_bundle(route: Route) -> None:
        response = route.fetch()
        body = {**response.json(), "key_bundle": other_bundle["key_bundle"]}
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/me/key-bundle", swap_bundle)
    page.get_by_role("button", name="Log out").first.click()
    log_in(page, server.url, f"user.{patient_id}")
    assert_refused(page, "DecryptionFailed")
    page.context.close()


def test_no_going_back_on_this_device(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    page, patient_id = registered(browser, server, pharmacy)
    v1 = pharmacy.seal(patient_id, document("Alice"), version=1)
    relock(page)
    screen(page, "records")  # version 1 shown
    # A deletion (version 2) is shown; the older block is then refused.
    old_deletion = tombstone(pharmacy, patient_id)  # version 2
    relock(page)
    screen(page, "notice")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Your records were removed by your pharmacy"
    )
    serve(page, {"state": "live", "envelope": b64(v1), "version": 1})
    relock(page)
    assert_refused(page, "RollbackRefused")
    # Records again (version 3); the old deletion (version 2) replayed over them is refused.
    serve(page, None)
    pharmacy.publish(patient_id, document("Alice"), version=3)
    relock(page)
    screen(page, "records")
    serve(page, {"state": "deleted", "tombstone": b64(old_deletion), "version": 2})
    relock(page)
    assert_refused(page, "RollbackRefused")
    # After logging out and in again, in this browser, the old block is still refused.
    serve(page, None)
    relock(page)
    screen(page, "records")
    page.get_by_role("button", name="Log out").first.click()
    serve(page, {"state": "live", "envelope": b64(v1), "version": 1})
    log_in(page, server.url, f"user.{patient_id}")
    assert_refused(page, "RollbackRefused")
    # "Nothing published" after records were shown is said plainly.
    serve(page, {"state": "pending"})
    page.get_by_role("button", name="Log out").first.click()
    log_in(page, server.url, f"user.{patient_id}")
    screen(page, "notice")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Your records are not available right now"
    )
    expect(page.get_by_text("may be withholding them")).to_be_visible()
    page.context.close()

    # A new device has no memory: the older genuine block is shown (the documented limit),
    # with its own as-of time.
    fresh = browser.new_context().new_page()
    serve(fresh, {"state": "live", "envelope": b64(v1), "version": 1})
    log_in(fresh, server.url, f"user.{patient_id}", PASSWORD)
    screen(fresh, "records")
    assert SECRET_DRUG in fresh.content()
    fresh.context.close()


def test_withholding_shown_by_the_statement_is_refused(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    page, patient_id = registered(browser, server, pharmacy)
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    v1 = pharmacy.seal(patient_id, document("Alice"), version=1, as_of=yesterday)
    pharmacy.publish(patient_id, document("Alice"), version=2)
    # The server serves the genuine v1 with the pharmacy's fresh statement, which proves v2.
    proving_v2 = statement_for(pharmacy, patient_id, 2, seq=5)
    serve(page, {"state": "live", "envelope": b64(v1), "version": 1, **proving_v2})
    relock(page)
    assert_refused(page, "WithholdingDetected")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "The server is not showing your latest records"
    )
    expect(page.get_by_text("version 2")).to_be_visible()  # the technical detail
    # Without the proof, the v1 block (older than the statement) is refused as well.
    serve(page, {"state": "live", "envelope": b64(v1), "version": 1, **proving_v2, "proof": None})
    relock(page)
    assert_refused(page, "WithholdingDetected")
    # A damaged proof: refused.
    bad = dict(proving_v2["proof"])  # type: ignore[arg-type]
    bad["path"] = ["00" * 32, *bad["path"][1:]]
    serve(page, {**proving_v2, "proof": bad})
    relock(page)
    assert_refused(page, "InclusionInvalid")
    # Served honestly: v2 with the statement is shown, and statement 5 is remembered.
    serve(page, proving_v2)
    relock(page)
    screen(page, "records")
    expect(page.get_by_text("Your pharmacy last updated this website on")).to_be_visible()
    # An older statement (4), or none at all, after this device showed number 5: refused.
    serve(page, statement_for(pharmacy, patient_id, 2, seq=4))
    relock(page)
    assert_refused(page, "RollbackRefused")
    expect(page.get_by_text("number 4")).to_be_visible()
    serve(page, {"statement": None, "proof": None})
    relock(page)
    assert_refused(page, "RollbackRefused")
    expect(page.get_by_text("no sync statement")).to_be_visible()
    # A statement signed by another key, or damaged: refused.
    forged = statement_for(pharmacy, patient_id, 2, seq=9, key=fmt.generate_pharmacy_key())
    serve(page, forged)
    relock(page)
    assert_refused(page, "SignatureInvalid")
    serve(page, {**proving_v2, "statement": b64(b"RXS\x01" + b"\x00" * 8)})
    relock(page)
    assert_refused(page, "MalformedObject")
    page.context.close()
