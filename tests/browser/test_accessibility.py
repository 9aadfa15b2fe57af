"""Accessibility: axe-core finds no serious or critical violation on any screen, desktop and
phone; the main flow works with the keyboard alone. Screenshots of each screen at both sizes are
saved under build/screenshots/ for the docs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from ._portal import PASSWORD, register, screen
from ._support import (
    PORTAL_ROOT,
    SCREENSHOTS,
    TEST_PAGES,
    LiveServer,
    Pharmacy,
    live_server,
    make_document,
    make_fills,
    require_build,
)

SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_build(PORTAL_ROOT)
    require_build(TEST_PAGES)
    with live_server(tmp_path_factory.mktemp("a11y"), PORTAL_ROOT) as live:
        yield live


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now (WCAG 2.1 A and AA)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, which the page's CSP does not govern.
        page.evaluate((TEST_PAGES / "axe.min.js").read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
                resultTypes: ["violations"],
            });
            return r.violations.map(v => ({id: v.id, impact: v.impact,
                nodes: v.nodes.map(n => n.target.join(" "))}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def check(page: Page, name: str, size: str) -> list[str]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
    return [f"{name} ({size}): {v['id']} at {v['nodes'][:3]}" for v in axe_violations(page)]


@pytest.mark.parametrize("size", list(SIZES))
def test_every_screen_passes_axe_and_is_photographed(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy, size: str
) -> None:
    problems: list[str] = []
    patient = f"a11y-{size}"
    code = pharmacy.enroll(patient)
    page = browser.new_context(**SIZES[size]).new_page()  # type: ignore[arg-type]

    page.goto(server.url + "/")
    screen(page, "login")
    # axe really runs here: an unlabelled field added for a moment is reported.
    page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    assert "label" in [v["id"] for v in axe_violations(page)]
    page.evaluate("document.querySelector('main > input:last-child').remove()")
    problems += check(page, "login", size)

    page.goto(f"{server.url}/#enroll={code.compact}")
    screen(page, "register")
    problems += check(page, "register", size)
    page.get_by_role("button", name="Create my account").click()  # every field missing
    expect(page.get_by_text("Please correct the highlighted fields.")).to_be_visible()
    problems += check(page, "register-errors", size)

    register(page, server.url, code.compact, f"user.{size}")
    screen(page, "notice")
    problems += check(page, "registered", size)

    pharmacy.publish(patient, make_document("Margaret", "Example", make_fills(120, seed=7)))
    page.reload()
    screen(page, "unlock")
    problems += check(page, "unlock", size)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    screen(page, "records")
    problems += check(page, "records", size)

    page.get_by_role("button", name="Account").click()
    screen(page, "account")
    expect(page.get_by_text("This device", exact=True)).to_be_visible()
    problems += check(page, "account", size)

    page.get_by_role("button", name="My records").click()
    screen(page, "records")
    page.emulate_media(media="print")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    page.screenshot(path=str(SCREENSHOTS / f"print-{size}.png"), full_page=True)
    page.emulate_media(media="screen")
    page.evaluate("window.dispatchEvent(new Event('afterprint'))")

    page.route(
        "**/api/v1/me/block",
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            body='{"state": "live", "handle": "00000000000000000000000000000000", "version": 1,'
            ' "envelope": "UlhCAQ"}',
        ),
    )
    page.reload()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    screen(page, "problem")
    problems += check(page, "error", size)
    page.context.close()
    assert problems == []


def tab_to(page: Page, predicate: str, limit: int = 80) -> None:
    """Press Tab until the focused element (``el``) satisfies the JS predicate."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el => {predicate})(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached an element where {predicate}")


def test_main_flow_with_the_keyboard_alone(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    code = pharmacy.enroll("a11y-keys")
    page = browser.new_context().new_page()
    page.goto(f"{server.url}/#enroll={code.compact}")
    screen(page, "register")
    tab_to(page, "el.name === 'username'")
    page.keyboard.type("keyboard.user")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    tab_to(page, "el.name === 'confirm-password'")
    page.keyboard.type(PASSWORD)
    tab_to(page, "el.type === 'checkbox'")
    page.keyboard.press("Space")
    tab_to(page, "el.textContent === 'Create my account'")
    page.keyboard.press("Enter")
    screen(page, "notice")
    pharmacy.publish("a11y-keys", make_document("Kay", "Board", make_fills(40, seed=8)))

    tab_to(page, "el.textContent === 'Log out'")
    page.keyboard.press("Enter")
    screen(page, "login")
    tab_to(page, "el.name === 'username'")
    page.keyboard.type("keyboard.user")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    screen(page, "records")

    tab_to(page, "el.type === 'search'")
    page.keyboard.type("lisinopril")
    expect(page.locator(".summary")).to_contain_text("(filtered from 40)")
    tab_to(page, "el.classList.contains('sort') && el.textContent.startsWith('Drug')")
    page.keyboard.press("Enter")
    expect(page.locator("th[data-col='drug.drug_name']")).to_have_attribute(
        "aria-sort", "ascending"
    )
    tab_to(page, "el.textContent === 'Account'")
    page.keyboard.press("Enter")
    screen(page, "account")
    tab_to(page, "el.textContent === 'Log out' && el.closest('main')")
    page.keyboard.press("Enter")
    screen(page, "login")
    page.context.close()
