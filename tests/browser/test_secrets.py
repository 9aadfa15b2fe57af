"""Secrets stay in the browser: no request carries the password or anything derived from it but
the auth key; the private key is a non-extractable CryptoKey; storage and cookies hold nothing
secret; after logout and after the idle lock the records are gone from the page. Hostile record
content is shown as text."""

from __future__ import annotations

import base64
import json
from typing import Any

from playwright.sync_api import Browser, Request, expect

from rxvault import format as fmt
from rxvault.format import _kdf
from rxvault.server._admin import Admin
from rxvault.server._db import transaction

from ._portal import PASSWORD, TIMEOUT, log_in, register, screen
from ._support import (
    LiveServer,
    Pharmacy,
    b64,
    make_document,
    make_fills,
)

CAPTURE_PRIVATE_KEYS = """
(() => {
  const subtle = crypto.subtle;
  const original = subtle.importKey.bind(subtle);
  window.__privateKeys = [];
  subtle.importKey = async (format, data, algorithm, extractable, usages) => {
    const key = await original(format, data, algorithm, extractable, usages);
    const name = typeof algorithm === "string" ? algorithm : algorithm.name;
    if (format === "pkcs8" && name === "X25519") window.__privateKeys.push(key);
    return key;
  };
})();
"""
MARKER_DRUG = "Quelvantide"


def fills_with_marker() -> list[dict[str, Any]]:
    fills = make_fills(8, seed=5)
    fills[0]["drug.drug_name"] = MARKER_DRUG
    return fills


def request_text(r: Request) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    return f"{r.method} {r.url}\n{headers}\n\n{r.post_data or ''}"


def test_no_secret_leaves_the_browser(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    code = pharmacy.enroll("sec-1")
    context = browser.new_context()
    context.add_init_script(CAPTURE_PRIVATE_KEYS)
    page = context.new_page()
    sent: list[Request] = []

    def record(request: Request) -> None:
        sent.append(request)

    page.on("request", record)
    register(page, server.url, code.compact, "secret.keeper")
    screen(page, "notice")
    pharmacy.publish("sec-1", make_document("Ada", "Keeper", fills_with_marker()))
    page.get_by_role("button", name="Log out").click()
    log_in(page, server.url, "secret.keeper")
    screen(page, "records")
    expect(page.locator("td[data-label=Drug]", has_text=MARKER_DRUG)).to_be_visible()

    # What the password derives to, computed here from the account's salt on the server.
    ctx = server.ctx
    with transaction(ctx.db) as s:
        account = Admin(s, ctx.audit_key, ctx.now()).account("secret.keeper")
        salt = account.salt
        params = fmt.KdfParams(
            account.kdf_memory_kib, account.kdf_iterations, account.kdf_parallelism
        )
    master = _kdf.derive_master_key(PASSWORD, salt, params)
    keys = fmt.derive_client_keys(PASSWORD, salt, params)
    forbidden = {
        "password": PASSWORD,
        "password (base64)": base64.b64encode(PASSWORD.encode()).decode(),
        "master key (hex)": master.hex(),
        "master key (base64url)": b64(master),
        "unlock key (hex)": keys.unlock_key.hex(),
        "unlock key (base64url)": b64(keys.unlock_key),
    }
    # The enrollment code (read from the URL fragment, which is never sent) and what only it
    # yields: the code in every written form, its secret bytes, the binding and pin keys.
    enrollment = fmt.derive_enrollment(code)
    for form in {code.compact, code.text, code.compact.lower(), code.text.lower()}:
        forbidden[f"enrollment code {form}"] = form
    for name, value in (
        ("code secret", code.secret),
        ("binding key", enrollment.binding_key),
        ("pin key", enrollment.pin_key),
    ):
        forbidden[f"{name} (hex)"] = value.hex()
        forbidden[f"{name} (base64url)"] = b64(value)
        forbidden[f"{name} (base64)"] = base64.b64encode(value).decode()
    texts = [request_text(r) for r in sent]
    assert any("/api/v1/login" in t for t in texts)
    assert any(enrollment.lookup_id in t for t in texts)  # what is sent in the code's place
    for what, value in forbidden.items():
        leaks = [t.split("\n", 1)[0] for t in texts if value in t]
        assert leaks == [], f"the {what} was sent in {leaks}"
    # The auth key goes only to registration and login, and those bodies hold nothing else secret.
    carrying = [r for r in sent if b64(keys.auth_key) in request_text(r)]
    assert [r.url.rsplit("/api/v1", 1)[1] for r in carrying] == ["/registration", "/login"]
    login_body = json.loads(carrying[1].post_data or "{}")
    assert set(login_body) == {"username", "auth_key"}
    registration = next(r for r in sent if r.url.endswith("/api/v1/registration"))
    assert set(json.loads(registration.post_data or "{}")) == {
        "lookup_id",
        "username",
        "kdf",
        "auth_key",
        "public_key",
        "binding",
        "key_bundle",
    }

    # The private key was imported non-extractable; exporting it fails in every format.
    result = page.evaluate(
        """async () => {
            const keys = window.__privateKeys;
            const out = {count: keys.length, exported: []};
            out.extractable = keys.map(k => k.extractable);
            for (const key of keys)
                for (const format of ["pkcs8", "jwk", "raw"])
                    try { await crypto.subtle.exportKey(format, key); out.exported.push(format); }
                    catch (e) { /* refused, as it must be */ }
            return out;
        }"""
    )
    assert result["count"] >= 1
    assert result["extractable"] == [False] * result["count"]
    assert result["exported"] == []

    # Storage and cookies hold nothing secret.
    storage = page.evaluate(
        """async () => ({
            local: Object.fromEntries(Object.entries(localStorage)),
            session: sessionStorage.length,
            databases: (await indexedDB.databases()).map(d => d.name),
            cookie: document.cookie,
        })"""
    )
    assert storage["session"] == 0
    assert storage["databases"] == []
    assert storage["cookie"] == ""  # the session cookie is HttpOnly
    for name, value in storage["local"].items():
        assert name.startswith(
            ("rxvault.seen-version.", "rxvault.seen-statement.", "rxvault.kdf-ms")
        ), name
        assert value.isdigit(), (name, value)
    cookies = context.cookies()
    assert [c["name"] for c in cookies] == ["__Host-rxvault-session"]
    assert cookies[0]["httpOnly"]
    assert cookies[0]["secure"]
    assert cookies[0]["sameSite"] == "Strict"
    assert cookies[0]["path"] == "/"

    # After logout the records are gone from the page.
    page.get_by_role("button", name="Log out").click()
    screen(page, "login")
    assert MARKER_DRUG not in page.content()
    assert "Keeper" not in page.content()
    context.close()


def test_idle_lock_removes_keys_and_records(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    code = pharmacy.enroll("sec-2")
    page = browser.new_context().new_page()
    register(page, server.url, code.compact, "idle.user")
    screen(page, "notice")
    pharmacy.publish("sec-2", make_document("Ida", "Idle", fills_with_marker()))
    page.evaluate("localStorage.setItem('rxvault.idle-seconds', '3')")
    page.reload()
    # Watch the page itself, so a slow test driver cannot miss the records before the lock.
    page.evaluate(
        """marker => {
            window.__seen = [];
            const main = document.querySelector("main");
            new MutationObserver(() => window.__seen.push(
                [main.dataset.screen, main.textContent.includes(marker)]
            )).observe(main, {childList: true, subtree: true, attributes: true});
        }""",
        MARKER_DRUG,
    )
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    # No input for three seconds: the page locks itself.
    expect(page.get_by_text("locked itself")).to_be_visible(timeout=TIMEOUT)
    screen(page, "unlock")
    seen = page.evaluate("window.__seen")
    assert ["records", True] in seen  # the records were shown, then removed
    assert MARKER_DRUG not in page.content()
    assert "Ida Idle" not in page.content()
    page.context.close()


def test_hostile_record_content_is_shown_as_text(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    code = pharmacy.enroll("sec-3")
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    register(page, server.url, code.compact, "hostile.user")
    screen(page, "notice")
    fills = make_fills(3, seed=6)
    fills[0]["drug.drug_name"] = "<script>window.__pwned = 1</script>"
    fills[1]["drug.drug_name"] = '<img src=x onerror="window.__pwned = 2">'
    fills[2]["sig"] = "<b>bold</b> & <a href='javascript:alert(1)'>link</a>"
    hostile_allergy = [
        {"allergen": "<iframe src=//evil.example>", "reaction": "</td>", "severity": ""}
    ]
    pharmacy.publish(
        "sec-3", make_document("<em>Eve</em>", "O'Hostile", fills, allergies=hostile_allergy)
    )
    page.reload()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    screen(page, "records")
    main = page.locator("main")
    expect(page.get_by_role("heading", level=1)).to_have_text("Records for <em>Eve</em> O'Hostile")
    expect(
        page.locator("td[data-label=Drug]", has_text="<script>window.__pwned = 1</script>")
    ).to_be_visible()
    expect(page.get_by_text("<iframe src=//evil.example>")).to_be_visible()
    assert page.evaluate("window.__pwned") is None
    for tag in ("script", "img", "iframe", "em", "b", "a"):
        assert main.locator(tag).count() == 0, tag
    assert errors == []
    page.context.close()


def test_going_back_to_the_page_does_not_show_the_records(
    browser: Browser, server: LiveServer, pharmacy: Pharmacy
) -> None:
    code = pharmacy.enroll("sec-4")
    page = browser.new_context().new_page()
    register(page, server.url, code.compact, "back.user")
    screen(page, "notice")
    pharmacy.publish("sec-4", make_document("Bea", "Back", fills_with_marker()))
    page.reload()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    screen(page, "records")
    page.goto(server.url + "/robots.txt")
    page.go_back()
    screen(page, "unlock")
    assert MARKER_DRUG not in page.content()
    assert "Bea Back" not in page.content()
    page.context.close()
