"""Browser test support: the real server app on a free port (uvicorn in a thread, SQLite, a test
pepper) and Debian's Chromium driven by Playwright.

Playwright never downloads a browser here: Chromium is launched from ``/usr/bin/chromium``
(installed by ``make browser``). The portal's assets come from ``make web``; a missing build is a
test failure that says so, not a skip.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from rxvault import format as fmt
from rxvault.server import Settings, create_app, create_db_engine, migrate
from rxvault.server._admin import Admin
from rxvault.server._db import transaction

ROOT = Path(__file__).resolve().parents[2]
PORTAL_ROOT = ROOT / "src" / "rxvault" / "web"
TEST_PAGES = ROOT / "build" / "web-tests"
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_build(path: Path) -> None:
    if not (path / "index.html").is_file():
        pytest.fail(f"{path}: the portal is not built; run `make web` first")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """The real rxvault app served over HTTP on localhost."""

    url: str
    settings: Settings
    app: Any
    thread: threading.Thread
    server: uvicorn.Server

    @property
    def ctx(self) -> Any:
        return self.app.app.state.rxvault

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.app.state.engine.dispose()


@contextlib.contextmanager
def live_server(tmp: Path, web_root: Path, **overrides: Any) -> Iterator[LiveServer]:
    db = tmp / f"portal-{os.getpid()}-{time.monotonic_ns()}.db"
    url = f"sqlite:///{db}"
    engine = create_db_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    settings = Settings(database_url=url, pepper=os.urandom(32), web_root=web_root, **overrides)
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the rxvault server did not start")
        time.sleep(0.02)
    live = LiveServer(f"http://localhost:{port}", settings, app, thread, server)
    try:
        yield live
    finally:
        live.stop()


# --- the pharmacy's side, from rxvault.format and the agent API directly -------------------


def b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class Pharmacy:
    """What the agent does (enroll, verify bindings, seal, sign, upload), over HTTP."""

    def __init__(self, server: LiveServer, slug: str = "main-street", name: str = "") -> None:
        self.server = server
        self.name = name or f"{slug.replace('-', ' ').title()} Pharmacy"
        ctx = server.ctx
        with transaction(ctx.db) as s:
            admin = Admin(s, ctx.audit_key, ctx.now())
            admin.create_pharmacy(slug, self.name)
            self.token, _ = admin.create_token(slug)
        self.key = fmt.generate_pharmacy_key()
        self.handle_secret = fmt.generate_handle_secret()
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        self.versions: dict[str, int] = {}
        self.codes: dict[str, fmt.EnrollmentCode] = {}
        r = self.http.put(
            "/api/v1/agent/pharmacy-key", json={"public_key": b64(self.key.public_bytes())}
        )
        assert r.status_code == 200, r.text

    def close(self) -> None:
        self.http.close()

    def handle(self, patient_id: str) -> str:
        return fmt.patient_handle(self.handle_secret, patient_id)

    def enroll(self, patient_id: str) -> fmt.EnrollmentCode:
        code = fmt.new_enrollment_code()
        secrets_ = fmt.derive_enrollment(code)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        r = self.http.post(
            "/api/v1/agent/enrollments",
            json={
                "enrollments": [
                    {
                        "lookup_id": secrets_.lookup_id,
                        "handle": self.handle(patient_id),
                        "pin_tag": b64(fmt.pin_tag(code, self.key.public_bytes())),
                        "expires_at": expires.isoformat(),
                    }
                ]
            },
        )
        assert r.status_code == 200, r.text
        self.codes[patient_id] = code
        return code

    def directory(self) -> dict[str, bytes]:
        """Verified patient keys by handle (the agent encrypts only to these)."""
        r = self.http.get("/api/v1/agent/key-directory", params={"after": 0})
        assert r.status_code == 200, r.text
        by_lookup = {fmt.derive_enrollment(c).lookup_id: c for c in self.codes.values()}
        keys: dict[str, bytes] = {}
        for entry in r.json()["entries"]:
            code = by_lookup[entry["lookup_id"]]
            public_key = unb64(entry["public_key"])
            fmt.verify_binding(
                fmt.derive_enrollment(code).binding_key,
                entry["handle"],
                public_key,
                unb64(entry["binding"]),
            )
            keys[entry["handle"]] = public_key
        return keys

    def seal(
        self,
        patient_id: str,
        document: bytes,
        *,
        version: int | None = None,
        as_of: dt.datetime | None = None,
        key: fmt.PharmacyKey | None = None,
    ) -> bytes:
        handle = self.handle(patient_id)
        if version is None:
            version = self.versions.get(handle, 0) + 1
        self.versions[handle] = max(self.versions.get(handle, 0), version)
        return fmt.seal_block(
            document,
            pharmacy_key=key or self.key,
            handle=handle,
            version=version,
            as_of=as_of or dt.datetime.now(dt.UTC),
            recipient_public_key=self.directory()[handle],
        )

    def publish(self, patient_id: str, document: bytes, **kwargs: Any) -> bytes:
        block = self.seal(patient_id, document, **kwargs)
        batch_id = fmt.new_batch_id()
        data = fmt.make_batch(
            pharmacy_key=self.key,
            batch_id=batch_id,
            blocks=[block],
            tombstones=[],
            created_at=dt.datetime.now(dt.UTC),
        )
        r = self.http.put(
            f"/api/v1/agent/batches/{batch_id}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 200, r.text
        return block


# --- documents in the agent's published shape ("rxvault.document/1") ---------------------

PATIENT_FIELDS = [
    ("first_name", "First name", "given_name", "text"),
    ("last_name", "Last name", "family_name", "text"),
    ("date_of_birth", "Date of birth", "birth_date", "date"),
    ("sex", "Sex", "sex", "text"),
    ("address_line1", "Address", "address_line", "text"),
    ("city", "City", "city", "text"),
    ("state", "State", "state", "text"),
    ("zip_code", "ZIP code", "postal_code", "text"),
    ("phone", "Phone", "phone", "text"),
]
FILL_FIELDS = [
    ("rx_number", "Rx number", "rx_number", "integer"),
    ("fill_number", "Fill", "fill_number", "integer"),
    ("fill_date", "Filled on", "fill_date", "date"),
    ("drug.drug_name", "Drug", "drug_name", "text"),
    ("drug.strength", "Strength", "strength", "text"),
    ("drug.ndc", "NDC", "ndc", "text"),
    ("quantity", "Quantity", "quantity", "decimal"),
    ("days_supply", "Days supply", "days_supply", "integer"),
    ("refills_remaining", "Refills left", "refills_left", "integer"),
    ("prescriber.last_name", "Prescriber", "prescriber", "text"),
    ("sig", "Directions", "directions", "text"),
    ("status", "Status", "status", "text"),
]
ALLERGY_FIELDS = [
    ("allergen", "Allergen", "allergen", "text"),
    ("reaction", "Reaction", "reaction", "text"),
    ("severity", "Severity", "severity", "text"),
]
DRUGS = [
    ("Lisinopril", "10 mg", "00093-7339-01"),
    ("Metformin", "500 mg", "00093-1048-01"),
    ("Atorvastatin", "20 mg", "00378-3950-77"),
    ("Amoxicillin", "500 mg", "00093-3109-05"),
    ("Levothyroxine", "50 mcg", "00378-1803-01"),
    ("Omeprazole", "20 mg", "62175-0136-37"),
]
PRESCRIBERS = ["Nguyen", "Okafor", "Schmidt", "Garcia"]
STATUSES = ["Picked up", "Picked up", "Picked up", "Ready for pickup", "Cancelled"]


def _fields(spec: list[tuple[str, str, str, str]]) -> list[dict[str, Any]]:
    return [{"id": i, "label": label, "role": role, "type": t} for i, label, role, t in spec]


def make_fills(count: int, seed: int = 1, start: dt.date | None = None) -> list[dict[str, Any]]:
    """``count`` fills of a few prescriptions, newest first (deterministic for a seed)."""
    rng = random.Random(seed)
    first = start or dt.date(2024, 1, 1)
    rows = []
    for i in range(count):
        drug, strength, ndc = DRUGS[i % len(DRUGS)]
        rows.append(
            {
                "rx_number": 700000 + seed * 1000 + i % 40,
                "fill_number": i // 40,
                "fill_date": (first + dt.timedelta(days=(i * 7) % 900)).isoformat(),
                "drug.drug_name": drug,
                "drug.strength": strength,
                "drug.ndc": ndc,
                "quantity": f"{rng.choice([30, 60, 90])}.000",
                "days_supply": rng.choice([30, 30, 90]),
                "refills_remaining": rng.choice([0, 1, 2, 5]),
                "prescriber.last_name": PRESCRIBERS[i % len(PRESCRIBERS)],
                "sig": "Take 1 tablet by mouth daily",
                "status": STATUSES[i % len(STATUSES)],
            }
        )
    rows.sort(key=lambda r: (r["fill_date"], r["rx_number"]), reverse=True)
    return rows


def make_document(
    first: str,
    last: str,
    fills: list[dict[str, Any]],
    allergies: list[dict[str, Any]] | None = None,
    pharmacy_name: str = "Main Street Pharmacy",
) -> bytes:
    values = {
        "first_name": first,
        "last_name": last,
        "date_of_birth": "1948-05-17",
        "sex": "Female",
        "address_line1": "12 Elm Street",
        "city": "Springfield",
        "state": "IL",
        "zip_code": "62701",
        "phone": "(217) 555-0143",
    }
    doc = {
        "format": "rxvault.document/1",
        "pharmacy": {"name": pharmacy_name},
        "patient": {"label": "Patient", "fields": _fields(PATIENT_FIELDS), "values": values},
        "sections": [
            {
                "id": "prescriptions",
                "label": "Prescriptions",
                "fields": _fields(FILL_FIELDS),
                "rows": fills,
            },
            {
                "id": "allergies",
                "label": "Allergies",
                "fields": _fields(ALLERGY_FIELDS),
                "rows": allergies
                if allergies is not None
                else [{"allergen": "Penicillin", "reaction": "Hives", "severity": "Moderate"}],
            },
        ],
    }
    return fmt.canonical_json(doc)
