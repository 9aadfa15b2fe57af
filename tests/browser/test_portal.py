"""End to end in real Chromium: the pharmacy enrolls and publishes, a patient registers from the
QR link, logs in, sees exactly their rows, searches, sorts, prints, exports and logs out; another
patient cannot see them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle
from playwright.sync_api import Browser, Page, expect

from ._portal import DASH, PASSWORD, TIMEOUT, log_in, register, screen, unlock
from ._support import (
    LiveServer,
    Pharmacy,
    make_document,
    make_fills,
)


def new_page(browser: Browser, **options: object) -> Page:
    context = browser.new_context(accept_downloads=True, **options)  # type: ignore[arg-type]
    return context.new_page()


def test_register_log_in_read_search_sort_export_log_out(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy, tmp_path: Path
) -> None:
    code = pharmacy.enroll("100234")
    page = new_page(browser)
    # Nothing the portal does is blocked by the server's CSP, and no script error happens.
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    # The QR link carries the code in the fragment; lower case and dashes are forgiven.
    register(page, server.url, code.text.lower(), "jane.doe")
    screen(page, "notice")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account is ready")
    assert "enroll" not in page.url  # the code does not stay in the address bar

    fills = make_fills(60, seed=3)
    pharmacy.publish("100234", make_document("Jane", "Doe", fills))

    # After a reload the page is locked: the session is still valid, the key is gone.
    page.reload()
    unlock(page)
    screen(page, "records")
    expect(page.get_by_role("heading", level=1)).to_have_text("Records for Jane Doe")
    expect(page.get_by_test_id("pharmacy-name")).to_have_text("Main Street Pharmacy")
    expect(page.locator(".summary")).to_have_text(
        f"Showing 1{DASH}25 of {len(fills)} prescriptions."
    )
    expect(page.locator("table.history tbody tr")).to_have_count(25)
    expect(page.get_by_text("Penicillin")).to_be_visible()

    # Search narrows to the rows that mention the word (computed here from the published rows).
    expected = [f for f in fills if "metformin" in f["drug.drug_name"].lower()]
    page.get_by_role("searchbox", name="Search").fill("metformin")
    expect(page.locator(".summary")).to_have_text(
        f"Showing 1{DASH}{min(25, len(expected))} of {len(expected)} prescriptions "
        f"(filtered from {len(fills)})."
    )
    drugs = page.locator("table.history tbody tr td[data-label=Drug]").all_inner_texts()
    assert drugs
    assert all(d.startswith("Metformin") for d in drugs)
    page.get_by_role("button", name="Clear filters").click()

    # Filter by status, then sort by quantity ascending.
    page.get_by_label("Status").select_option("Cancelled")
    cancelled = [f for f in fills if f["status"] == "Cancelled"]
    expect(page.locator(".summary")).to_contain_text(f"of {len(cancelled)} prescriptions")
    page.get_by_label("Status").select_option("")
    page.get_by_role("button", name="Filled on").click()  # now oldest first
    oldest = min(f["fill_date"] for f in fills)
    first_date = page.locator("table.history tbody tr").first.locator("th").inner_text()
    assert first_date == _us_date(oldest)

    # Exports are made in the browser.
    with page.expect_download() as info:
        page.get_by_role("button", name="Download spreadsheet (CSV)").click()
    rows = list(csv.reader(io.StringIO(_read(info.value, tmp_path).decode("utf-8-sig"))))
    assert rows[0][:3] == ["Rx number", "Fill", "Filled on"]
    assert len(rows) == len(fills) + 1
    assert sorted(r[2] for r in rows[1:]) == sorted(f["fill_date"] for f in fills)

    with page.expect_download() as info:
        page.get_by_role("button", name="Download for another health app (FHIR)").click()
    bundle = json.loads(_read(info.value, tmp_path))
    Bundle.model_validate(bundle)  # an R4 model library validates it
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("MedicationDispense") == len(fills)
    assert kinds.count("Patient") == 1
    assert kinds.count("AllergyIntolerance") == 1
    assert kinds.count("MedicationRequest") == len({f["rx_number"] for f in fills})

    with page.expect_download() as info:
        page.get_by_role("button", name="Download PDF").click()
    pdf = _read(info.value, tmp_path)
    assert pdf.startswith(b"%PDF-1.4")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert b"Jane Doe" in pdf
    check_pdf_structure(pdf)

    # Print view: every row, no controls.
    page.emulate_media(media="print")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    expect(page.locator("table.history tbody tr")).to_have_count(len(fills))
    expect(page.locator(".filters")).to_be_hidden()
    expect(page.locator(".site-header")).to_be_hidden()
    page.evaluate("window.dispatchEvent(new Event('afterprint'))")
    page.emulate_media(media="screen")

    assert problems == []
    page.get_by_role("button", name="Log out").first.click()
    screen(page, "login")
    assert "Metformin" not in page.content()
    assert "Jane" not in page.locator("main").inner_text()
    page.context.close()

    # Another patient registers and sees only their own records.
    other = pharmacy.enroll("100999")
    page2 = new_page(browser)
    register(page2, server.url, other.compact, "sam.roe")
    screen(page2, "notice")
    pharmacy.publish("100999", make_document("Sam", "Roe", make_fills(3, seed=9)))
    page2.get_by_role("button", name="Log out").click()
    log_in(page2, server.url, "sam.roe")
    screen(page2, "records")
    expect(page2.get_by_role("heading", level=1)).to_have_text("Records for Sam Roe")
    expect(page2.locator(".summary")).to_have_text(f"Showing 1{DASH}3 of 3 prescriptions.")
    assert "Jane" not in page2.locator("main").inner_text()
    page2.context.close()


def test_wrong_password_and_typo_in_code(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    code = pharmacy.enroll("200001")
    page = new_page(browser)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url))
    # One wrong symbol: the check character catches it before anything is sent.
    text = code.compact
    typo = text[:5] + ("A" if text[5] != "A" else "B") + text[6:]
    register(page, server.url, typo, "pat.typo")
    expect(page.get_by_text("This code has a typing mistake somewhere.").first).to_be_visible()
    assert not [u for u in sent if "/registration" in u]
    page.get_by_label("Enrollment code").fill(text)
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_label("Type the password again").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    screen(page, "notice")
    page.get_by_role("button", name="Log out").click()
    log_in(page, server.url, "pat.typo", "not the right password")
    expect(page.get_by_role("alert").filter(has_text="not right")).to_be_visible(timeout=TIMEOUT)
    page.context.close()

    # A taken username is said so next to the field; another one then works with the same code.
    again = pharmacy.enroll("200002")
    page = new_page(browser)
    register(page, server.url, again.text, "pat.typo")
    expect(page.get_by_role("alert").filter(has_text="This username is taken")).to_be_visible(
        timeout=TIMEOUT
    )
    page.get_by_label("Choose a username").fill("pat.other")
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_label("Type the password again").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    screen(page, "notice")
    page.context.close()


def check_pdf_structure(pdf: bytes) -> None:
    """The cross-reference table points at every object, and every page is in the page tree."""
    start = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    assert pdf[start:].startswith(b"xref")
    lines = pdf[start:].split(b"\n")
    count = int(lines[1].split()[1])
    for number in range(1, count):
        offset = int(lines[2 + number].split()[0])
        assert pdf[offset:].startswith(f"{number} 0 obj".encode()), number
    pages = pdf.count(b"/Type /Page ")
    assert pages >= 1
    assert f"/Count {pages}".encode() in pdf


def _us_date(iso: str) -> str:
    import datetime as dt

    d = dt.date.fromisoformat(iso)
    return f"{d:%b} {d.day}, {d.year}"


def _read(download: object, tmp: Path) -> bytes:
    path = tmp / download.suggested_filename  # type: ignore[attr-defined]
    download.save_as(path)  # type: ignore[attr-defined]
    return path.read_bytes()
