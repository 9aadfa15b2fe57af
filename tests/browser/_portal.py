"""Driving the portal's screens the way a patient does (labels and roles, not CSS internals)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

PASSWORD = "maple river lantern 42"
TIMEOUT = 30_000
DASH = "\u2013"  # the portal writes ranges with an en dash: "Showing 1\u201325 of 60"


def screen(page: Page, name: str) -> None:
    expect(page.locator(f"main[data-screen={name}]")).to_be_visible(timeout=TIMEOUT)


def register(page: Page, url: str, code_text: str, username: str, password: str = PASSWORD) -> None:
    """Open the QR link (code in the fragment) and create the account."""
    page.goto(f"{url}/#enroll={code_text}")
    screen(page, "register")
    expect(page.get_by_label("Enrollment code")).not_to_have_value("")
    page.get_by_label("Choose a username").fill(username)
    page.get_by_label("Choose a password").fill(password)
    page.get_by_label("Type the password again").fill(password)
    page.get_by_label("I understand that my password cannot be recovered.").check()
    page.get_by_role("button", name="Create my account").click()


def log_in(page: Page, url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(url + "/")
    screen(page, "login")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def unlock(page: Page, password: str = PASSWORD) -> None:
    screen(page, "unlock")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Unlock").click()
