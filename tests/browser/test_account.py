"""Account: password change re-wraps the key bundle and ends the other sessions; the sessions
list ends a session; refill-due dates come from fill date, days supply and refills left."""

from __future__ import annotations

import datetime as dt
from typing import Any

from playwright.sync_api import Browser, expect

from ._portal import PASSWORD, TIMEOUT, log_in, register, screen
from ._support import (
    LiveServer,
    Pharmacy,
    make_document,
    make_fills,
)

NEW_PASSWORD = "copper kettle orchard 7"


def test_change_password_rewraps_and_ends_other_sessions(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    code = pharmacy.enroll("acct-1")
    first = browser.new_context().new_page()
    register(first, server.url, code.compact, "change.me")
    screen(first, "notice")
    pharmacy.publish("acct-1", make_document("Cora", "Change", make_fills(4, seed=2)))
    second = browser.new_context().new_page()
    log_in(second, server.url, "change.me")
    screen(second, "records")

    first.get_by_role("button", name="Account").click()
    screen(first, "account")
    expect(first.locator(".session-list > li")).to_have_count(2)
    first.get_by_label("Current password").fill(PASSWORD)
    first.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    first.get_by_label("Type the new password again").fill(NEW_PASSWORD)
    first.get_by_role("button", name="Change password").click()
    expect(first.get_by_text("Your password was changed.")).to_be_visible(timeout=TIMEOUT)
    expect(first.locator(".session-list > li")).to_have_count(1)

    # The other browser's session was ended by the change.
    second.reload()
    screen(second, "login")
    log_in(second, server.url, "change.me")  # the old password no longer works
    expect(second.get_by_role("alert").filter(has_text="not right")).to_be_visible(timeout=TIMEOUT)
    log_in(second, server.url, "change.me", NEW_PASSWORD)  # the re-wrapped key opens
    screen(second, "records")
    expect(second.get_by_role("heading", level=1)).to_have_text("Records for Cora Change")

    # Ending a session from the list logs that browser out.
    first.get_by_role("button", name="Account").click()
    screen(first, "account")
    expect(first.locator(".session-list > li")).to_have_count(2)
    first.get_by_role("button", name="End this session").click()
    expect(first.locator(".session-list > li")).to_have_count(1)
    second.reload()
    screen(second, "login")
    first.context.close()
    second.context.close()


def fill(rx: int, drug: str, days_ago: int, days: int, left: int, status: str) -> dict[str, Any]:
    row = make_fills(1)[0]
    row.update(
        {
            "rx_number": rx,
            "drug.drug_name": drug,
            "drug.strength": "10 mg",
            "fill_date": (dt.date.today() - dt.timedelta(days=days_ago)).isoformat(),
            "days_supply": days,
            "refills_remaining": left,
            "status": status,
        }
    )
    return row


def test_refill_due_dates(browser: Browser, server: LiveServer, pharmacy: Pharmacy) -> None:
    code = pharmacy.enroll("acct-2")
    page = browser.new_context().new_page()
    register(page, server.url, code.compact, "refill.user")
    screen(page, "notice")
    fills = [
        fill(1, "Lisinopril", 20, 30, 2, "Picked up"),  # due in 10 days
        fill(2, "Metformin", 40, 30, 1, "Picked up"),  # due 10 days ago: due now
        fill(2, "Metformin", 70, 30, 2, "Picked up"),  # an older fill of the same Rx
        fill(3, "Atorvastatin", 10, 30, 0, "Picked up"),  # no refills left
        fill(4, "Amoxicillin", 5, 10, 3, "Cancelled"),  # cancelled
        fill(5, "Omeprazole", 400, 30, 4, "Picked up"),  # long overdue: no longer taken
    ]
    pharmacy.publish("acct-2", make_document("Rita", "Refill", fills))
    page.reload()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    screen(page, "records")
    items = page.locator("ul.refills > li").all_inner_texts()
    due_metformin = dt.date.today() - dt.timedelta(days=10)
    due_lisinopril = dt.date.today() + dt.timedelta(days=10)
    assert len(items) == 2
    assert items[0].startswith(f"Metformin 10 mg: due {due_metformin:%b} {due_metformin.day},")
    assert "(due now)" in items[0]
    assert "1 refill left" in items[0]
    assert items[1].startswith(f"Lisinopril 10 mg: due {due_lisinopril:%b} {due_lisinopril.day},")
    assert "2 refills left" in items[1]
    page.context.close()


def test_password_meter_refuses_common_patterns_and_rates_passphrases_strong(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    code = pharmacy.enroll("acct-meter")
    page = browser.new_context().new_page()
    page.goto(f"{server.url}/#enroll={code.compact}")
    screen(page, "register")
    page.get_by_label("Choose a username").fill("meter.check")
    page.get_by_label("I understand that my password cannot be recovered.").check()
    password = page.get_by_label("Choose a password")
    meter = page.get_by_role("meter", name="Password strength")
    refused = page.get_by_text("This password is too easy to guess.")
    for weak in ("Password123!", "Summer2024!"):
        password.fill(weak)
        assert meter.evaluate("m => m.value") <= 1, weak
        expect(page.locator(".meter")).to_contain_text("eak")  # "Very weak" or "Weak"
        page.get_by_label("Type the password again").fill(weak)
        page.get_by_role("button", name="Create my account").click()
        expect(refused).to_be_visible(timeout=TIMEOUT)
        screen(page, "register")
    passphrase = "violet harbor quietly juggles 58"
    password.fill(passphrase)
    assert meter.evaluate("m => m.value") == 4
    expect(page.locator(".meter")).to_contain_text("Strong")
