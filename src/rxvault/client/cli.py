"""``rxvault patient …``: a patient's own records without the web page.

The password is asked for (or read from ``RXVAULT_PASSWORD``); it never leaves this computer,
only a key derived from it does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rxvault._cli_errors import EXIT_FAILED, EXIT_UNAVAILABLE, UserError

SERVER_OPTION = click.option(
    "--server",
    "server",
    required=True,
    envvar="RXVAULT_SERVER",
    help="The portal's address, e.g. https://portal.example-pharmacy.com (or RXVAULT_SERVER).",
)
USERNAME_OPTION = click.option("--username", required=True, help="Your portal username.")


def _password(prompt: str = "Password", confirm: bool = False) -> str:
    from_env = os.environ.get("RXVAULT_PASSWORD")
    if from_env:
        return from_env
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value


def _run(action: Callable[[], Any]) -> Any:
    import httpx

    from rxvault.client._errors import ClientError
    from rxvault.format import FormatError

    try:
        return action()
    except ClientError as exc:
        raise UserError(exc.message, hint=_hint(exc.code)) from None
    except FormatError as exc:
        raise UserError(str(exc)) from None
    except httpx.HTTPError as exc:
        raise UserError(
            f"cannot reach the server: {exc}",
            hint="check --server and your connection, then try again",
            exit_code=EXIT_UNAVAILABLE,
        ) from None


def _hint(code: str) -> str | None:
    return {
        "invalid_credentials": "check the username and password (the password is case-sensitive)",
        "too_many_attempts": "wait a while; if the account is locked, ask your pharmacy",
        "enrollment_invalid": "ask your pharmacy for a new enrollment letter",
        "username_taken": "choose another username",
        "rollback_refused": "call your pharmacy: the server may be withholding your records",
        "withholding_detected": "call your pharmacy: the server is not showing its latest update",
        "statement_rollback": "call your pharmacy: the server may be withholding your records",
        "statement_missing": "call your pharmacy: the server may be withholding your records",
        "statement_invalid": "call your pharmacy: the records did not pass the checks",
        "block_invalid": "call your pharmacy: the records did not pass the checks",
        "seen_versions_unreadable": "repair or restore that file (see --state-file)",
    }.get(code)


def _client(server: str, state_file: Path | None = None) -> Any:
    from rxvault.client._client import PatientClient
    from rxvault.client._seen import SeenVersions

    seen = _run(lambda: SeenVersions(state_file)) if state_file is not None else None
    try:
        return PatientClient(server, seen=seen)
    except ValueError as exc:
        raise UserError(str(exc), hint="use the portal's https:// address") from None


@click.group(name="patient")
def patient_group() -> None:
    """Register, log in, fetch and decrypt your own records (without the web page)."""


@patient_group.command(name="register")
@SERVER_OPTION
@USERNAME_OPTION
@click.option("--code", required=True, help="The enrollment code from your pharmacy's letter.")
def register_command(server: str, username: str, code: str) -> None:
    """Create your account with the one-time code from your pharmacy."""
    password = _password("Choose a password", confirm=True)
    if len(password) < 10:
        raise UserError("the password must be at least 10 characters")
    client = _client(server)
    try:
        account = _run(lambda: client.register(code, username, password))
    finally:
        client.close()
    click.echo(f"registered {account['username']} at {account['pharmacy']['name']}")


@patient_group.command(name="fetch")
@SERVER_OPTION
@USERNAME_OPTION
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the decrypted records (JSON) to this file instead of the screen.",
)
@click.option(
    "--state-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where this computer remembers the newest records version and pharmacy sync statement "
    "shown, so that an older copy is refused later (default: RXVAULT_PATIENT_STATE, else "
    "~/.local/state/rxvault/patient-versions.json).",
)
def fetch_command(server: str, username: str, output: Path | None, state_file: Path | None) -> None:
    """Log in, fetch your records, verify the pharmacy's signature, decrypt and export them."""
    from rxvault.client._client import STALE_HOURS
    from rxvault.client._seen import default_seen_path

    password = _password()
    client = _client(server, state_file or default_seen_path())
    try:
        _run(lambda: client.login(username, password))
        records = _run(client.fetch)
        _run(client.logout)
    finally:
        client.close()
    if records.state == "pending":
        if client.min_version or client._deletion_version:
            raise UserError(
                "the server has no records for you now, but this computer has shown version "
                f"{max(client.min_version, client._deletion_version)} before",
                hint="if you registered again recently, they appear after the pharmacy's next "
                "daily update; otherwise the server may be withholding them: call your pharmacy",
                exit_code=EXIT_FAILED,
            )
        raise UserError(
            "your pharmacy has not published your records yet",
            hint="they appear after the pharmacy's next daily update",
            exit_code=EXIT_FAILED,
        )
    if records.state == "deleted":
        raise UserError("your pharmacy has removed your records from the portal")
    assert records.document is not None
    assert records.as_of is not None
    assert records.updated_at is not None
    age = records.age_hours() or 0.0
    click.echo(f"records as of {records.as_of.isoformat()} (version {records.version})", err=True)
    if records.statement is not None:
        click.echo(
            f"your pharmacy last updated the server on {records.updated_at.isoformat()} "
            f"(sync {records.statement.seq})",
            err=True,
        )
    if age > STALE_HOURS:
        click.echo(
            f"warning: your pharmacy last updated the server {int(age // 24)} days ago; these "
            "records may be out of date; call your pharmacy if something is missing",
            err=True,
        )
    document = json.loads(records.document)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote {output} (records version {records.version})", err=True)


@patient_group.command(name="sessions")
@SERVER_OPTION
@USERNAME_OPTION
@click.option("--end-others", is_flag=True, help="End every session but this one.")
def sessions_command(server: str, username: str, end_others: bool) -> None:
    """List your sessions (and optionally end the others)."""
    password = _password()
    client = _client(server)
    try:
        _run(lambda: client.login(username, password))
        sessions = _run(client.sessions)
        for s in sessions:
            mark = "this one" if s["current"] else ""
            click.echo(f"{s['id']}\t{s['created_at']}\t{s['address']}\t{s['user_agent']}\t{mark}")
            if end_others and not s["current"]:
                session_id: str = s["id"]
                _run(lambda: client.end_session(session_id))  # noqa: B023 - called at once
        _run(client.logout)
    finally:
        client.close()


@patient_group.command(name="password")
@SERVER_OPTION
@USERNAME_OPTION
def password_command(server: str, username: str) -> None:
    """Change your password (your other sessions end)."""
    current = _password("Current password")
    new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    if len(new) < 10:
        raise UserError("the password must be at least 10 characters")
    client = _client(server)
    try:
        _run(lambda: client.login(username, current))
        _run(lambda: client.change_password(current, new))
        _run(client.logout)
    finally:
        client.close()
    click.echo("password changed")
