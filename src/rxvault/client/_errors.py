"""Errors of the patient client."""

from __future__ import annotations


class ClientError(Exception):
    """The server refused a request (``code`` and ``message`` come from its JSON error), or
    answered in a way the protocol does not allow."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
