"""Shared fixtures for the format tests: fixed keys so failures are reproducible."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rxvault import format as fmt


@pytest.fixture(scope="session")
def pharmacy() -> fmt.PharmacyKey:
    return fmt.PharmacyKey.from_private_bytes(bytes(range(32)))


@pytest.fixture(scope="session")
def other_pharmacy() -> fmt.PharmacyKey:
    return fmt.PharmacyKey.from_private_bytes(bytes(range(1, 33)))


@pytest.fixture(scope="session")
def patient() -> tuple[bytes, bytes]:
    private = bytes.fromhex("77" * 32)
    return private, fmt.patient_public_key(private)


@pytest.fixture(scope="session")
def handle() -> str:
    return fmt.patient_handle(bytes(32), "PAT-0001")


@pytest.fixture(scope="session")
def as_of() -> datetime:
    return datetime(2026, 12, 4, 9, 30, 0, tzinfo=UTC)
