"""A Python client of rxvault's patient protocol: register, log in, fetch, verify, decrypt.

It does in Python what the portal does in the browser, so a patient (or a test) can read their
records without the web page. ``rxvault patient …`` is its command line.
"""

from __future__ import annotations

from rxvault.client._client import PatientClient, Records, Unlocked, canonical_username
from rxvault.client._errors import ClientError
from rxvault.client._seen import SeenVersions

__all__ = [
    "ClientError",
    "PatientClient",
    "Records",
    "SeenVersions",
    "Unlocked",
    "canonical_username",
]
