"""A malicious server (the test rewrites its responses): a flipped byte, a block moved from
another patient, an older version replayed, a block signed with a swapped pharmacy key, a swapped
pharmacy key at registration. Each ends on an error screen, with no record shown. Also how fresh
the records are said to be: from the block's time, or from the pharmacy's sync statement."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from playwright.sync_api import Browser, Page, Route, expect

from rxvault import format as fmt

from ._portal import register, screen, unlock
from ._support import (
    LiveServer,
    Pharmacy,
    b64,
    make_document,
    make_fills,
    unb64,
)

SECRET_DRUG = "Zyxorimab"  # a drug name that appears only inside the patient's records


def document(first: str) -> bytes:
    fills = make_fills(5, seed=4)
    for f in fills:
        f["drug.drug_name"] = SECRET_DRUG
    return make_document(first, "Target", fills)


counter = iter(range(1000))


def registered(browser: Browser, server: LiveServer, pharmacy: Pharmacy) -> tuple[Page, str]:
    """A patient registered in a fresh browser, with one published block (version 1)."""
    patient_id = f"att-{next(counter)}"
    code = pharmacy.enroll(patient_id)
    page = browser.new_context().new_page()
    register(page, server.url, code.compact, f"user.{patient_id}")
    screen(page, "notice")
    pharmacy.publish(patient_id, document("Alice"))
    return page, patient_id


def statement_for(
    pharmacy: Pharmacy,
    patient_id: str,
    version: int,
    *,
    seq: int,
    as_of: dt.datetime | None = None,
    deleted: bool = False,
    key: fmt.PharmacyKey | None = None,
) -> dict[str, object]:
    """The ``statement`` and ``proof`` members of a ``/me/block`` answer: a sync statement over
    the patient's leaf (``version``) and a few other patients', signed by the pharmacy."""
    handle = pharmacy.handle(patient_id)
    entries = {pharmacy.handle(f"other-{n}"): (n + 1, n == 2) for n in range(6)}
    entries[handle] = (version, deleted)
    leaves = [fmt.Leaf(h, v, d) for h, (v, d) in sorted(entries.items())]
    index = next(i for i, leaf in enumerate(leaves) if leaf.handle == handle)
    tree = fmt.merkle_tree(leaves)
    statement = fmt.make_statement(
        pharmacy_key=key or pharmacy.key,
        seq=seq,
        as_of=as_of or dt.datetime.now(dt.UTC),
        leaves=leaves,
    )
    proof = {
        "index": index,
        "version": version,
        "deleted": deleted,
        "path": [node.hex() for node in tree.proof(index)],
    }
    return {"statement": b64(statement), "proof": proof}


def rewrite_block(page: Page, change: Callable[[dict[str, object]], None]) -> None:
    def handler(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        change(body)
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/me/block", handler)


def assert_refused(page: Page, kind: str) -> None:
    screen(page, "problem")
    expect(page.locator("main")).to_have_attribute("data-problem", kind)
    expect(page.get_by_role("alert")).to_be_visible()
    assert SECRET_DRUG not in page.content()
    assert page.locator("table").count() == 0


def test_flipped_byte_is_refused(browser: Browser, server: LiveServer, pharmacy: Pharmacy) -> None:
    page, _ = registered(browser, server, pharmacy)

    def flip(body: dict[str, object]) -> None:
        envelope = bytearray(unb64(str(body["envelope"])))
        envelope[len(envelope) // 2] ^= 0x01  # inside the ciphertext
        body["envelope"] = b64(bytes(envelope))

    rewrite_block(page, flip)
    page.reload()
    unlock(page)
    assert_refused(page, "SignatureInvalid")
    page.context.close()


def test_block_moved_from_another_patient_is_refused(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    page, _ = registered(browser, server, pharmacy)
    other_page, other_id = registered(browser, server, pharmacy)
    other_page.context.close()
    others_block = pharmacy.seal(other_id, document("Bob"))

    def swap(body: dict[str, object]) -> None:
        body["envelope"] = b64(others_block)  # the server keeps this patient's handle in the JSON

    rewrite_block(page, swap)
    page.reload()
    unlock(page)
    assert_refused(page, "HandleMismatch")
    page.context.close()


def test_older_version_replayed_is_refused(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    page, patient_id = registered(browser, server, pharmacy)
    old = pharmacy.seal(patient_id, document("Alice"), version=1)
    pharmacy.publish(patient_id, document("Alice"))  # version 2
    page.reload()
    unlock(page)
    screen(page, "records")  # version 2 shown: this device remembers it
    expect(page.get_by_role("heading", level=1)).to_have_text("Records for Alice Target")

    def replay(body: dict[str, object]) -> None:
        body["envelope"] = b64(old)
        body["version"] = 1

    rewrite_block(page, replay)
    page.reload()
    unlock(page)
    assert_refused(page, "RollbackRefused")
    page.context.close()


def test_block_signed_with_a_swapped_pharmacy_key_is_refused(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    page, patient_id = registered(browser, server, pharmacy)
    forged = pharmacy.seal(patient_id, document("Mallory"), key=fmt.generate_pharmacy_key())

    def swap(body: dict[str, object]) -> None:
        body["envelope"] = b64(forged)

    rewrite_block(page, swap)
    page.reload()
    unlock(page)
    assert_refused(page, "SignatureInvalid")
    assert "Mallory" not in page.content()
    page.context.close()


def test_swapped_pharmacy_key_at_registration_is_refused(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    code = pharmacy.enroll("att-pin")
    page = browser.new_context().new_page()
    attacker = fmt.generate_pharmacy_key()
    registrations: list[str] = []
    page.on(
        "request",
        lambda r: registrations.append(r.url) if r.url.endswith("/registration") else None,
    )

    def swap_key(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["pharmacy"]["public_key"] = b64(attacker.public_bytes())
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/registration/start", swap_key)
    register(page, server.url, code.compact, "user.pin")
    assert_refused(page, "PinTagInvalid")
    # Nothing was registered with the attacker's key.
    assert [u for u in registrations if u.endswith("/api/v1/registration")] == []
    page.context.close()


def test_stale_records_show_a_warning(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    page, patient_id = registered(browser, server, pharmacy)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=5)
    pharmacy.publish(patient_id, document("Alice"), as_of=old)
    page.reload()
    unlock(page)
    screen(page, "records")
    expect(page.get_by_text("last updated 5 days ago")).to_be_visible()
    page.context.close()


def test_weak_password_hashing_parameters_are_refused(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    page, _ = registered(browser, server, pharmacy)
    logins: list[str] = []
    page.on("request", lambda r: logins.append(r.url))

    def weaken(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["kdf"] = {"alg": "argon2id", "m": 1024, "p": 1, "t": 1}
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/prelogin", weaken)
    page.reload()
    unlock(page)
    assert_refused(page, "WeakKdfParameters")
    # The password was not used: nothing derived from it was sent.
    assert [u for u in logins if u.endswith(("/api/v1/login", "/api/v1/me/key-bundle"))] == []
    page.context.close()


def test_a_fresh_statement_dates_old_records(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    """A patient whose records did not change keeps an old block; the pharmacy's statement of
    its last sync says the website is up to date: no warning. An old statement: warned."""
    page, patient_id = registered(browser, server, pharmacy)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=5)
    pharmacy.publish(patient_id, document("Alice"), as_of=old)  # version 2
    fresh = statement_for(pharmacy, patient_id, 2, seq=1)
    rewrite_block(page, lambda body: body.update(fresh))
    page.reload()
    unlock(page)
    screen(page, "records")
    expect(page.get_by_text("Your pharmacy last updated this website on")).to_be_visible()
    expect(page.get_by_test_id("last-update")).to_be_visible()
    expect(page.get_by_text("out of date")).to_have_count(0)
    stale = statement_for(
        pharmacy, patient_id, 2, seq=2, as_of=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    )
    page.unroute("**/api/v1/me/block")
    rewrite_block(page, lambda body: body.update(stale))
    page.reload()
    unlock(page)
    screen(page, "records")
    expect(page.get_by_text("last updated this website 3 days ago")).to_be_visible()
    page.context.close()
