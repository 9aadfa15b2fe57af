"""``rxvault server …`` (administration) and ``rxvault serve`` (run the server).

Settings come from ``--config FILE`` (or ``RXVAULT_CONFIG``) and ``RXVAULT_*`` variables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rxvault._cli_errors import EXIT_FAILED, UserError

if TYPE_CHECKING:
    from rxvault.server._admin import Admin
    from rxvault.server._settings import Settings

CONFIG_OPTION = click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    envvar="RXVAULT_CONFIG",
    help="Settings file (TOML). Default: RXVAULT_CONFIG, then environment variables only.",
)


def _settings(config: Path | None) -> Settings:
    from rxvault.server._settings import SettingsError, load_settings

    try:
        return load_settings(config)
    except SettingsError as exc:
        raise UserError(exc.message, hint=exc.hint) from None


@contextlib.contextmanager
def _admin(config: Path | None) -> Iterator[Admin]:
    from rxvault.server._admin import Admin, AdminError
    from rxvault.server._audit import audit_key
    from rxvault.server._db import (
        DatabaseError,
        check_schema,
        create_db_engine,
        session_factory,
        transaction,
    )
    from rxvault.server._settings import SettingsError

    settings = _settings(config)
    try:
        pepper = settings.require_pepper()
    except SettingsError as exc:
        raise UserError(exc.message, hint=exc.hint) from None
    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        check_schema(engine)
        with transaction(session_factory(engine)) as session:
            yield Admin(session, audit_key(pepper), dt.datetime.now(dt.UTC))
    except DatabaseError as exc:
        raise UserError(str(exc), hint="run `rxvault server migrate`") from None
    except AdminError as exc:
        raise UserError(str(exc)) from None
    finally:
        engine.dispose()


@click.group(name="server")
def server_group() -> None:
    """Administer the rxvault server (database, pharmacies, tokens, accounts, audit)."""


@server_group.command(name="init")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(),
    show_default=True,
    help="Where to write rxvault-server.toml, pepper.key and (for SQLite) rxvault.db.",
)
@click.option("--database-url", default=None, help="Default: SQLite file rxvault.db in --dir.")
@click.option("--public-origin", default=None, help="e.g. https://portal.example-pharmacy.com")
def init_command(directory: Path, database_url: str | None, public_origin: str | None) -> None:
    """Create the settings file, the pepper file (mode 0600) and the database."""
    from rxvault.server._db import create_db_engine, migrate
    from rxvault.server._settings import new_pepper_text

    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "rxvault-server.toml"
    pepper = directory / "pepper.key"
    for path in (config, pepper):
        if path.exists():
            raise UserError(
                f"{path} already exists; refusing to overwrite it",
                hint="to upgrade the database schema use `rxvault server migrate`",
            )
    fd = os.open(pepper, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(new_pepper_text() + "\n")
    url = database_url or "sqlite:///rxvault.db"
    lines = [
        "# rxvault server settings. RXVAULT_* environment variables override these.",
        "[server]",
        f'database_url = "{url}"',
        'pepper_file = "pepper.key"  # keep it outside the database backups; mode 0600',
        f'public_origin = "{public_origin}"' if public_origin else '# public_origin = "https://…"',
        "frame_ancestors = \"'none'\"",
        "",
        "[limits]",
        "delete_cap_per_batch = 50",
        "delete_cap_per_day = 200",
        "",
    ]
    config.write_text("\n".join(lines), encoding="utf-8")
    settings = _settings(config)

    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        migrate(engine)
    except Exception as exc:
        raise UserError(f"cannot create the database schema: {exc}") from None
    finally:
        engine.dispose()
    click.echo(f"wrote {config} and {pepper} (mode 0600); database ready")
    click.echo("back up pepper.key separately from the database: without it no one can log in")
    click.echo(f"next: export RXVAULT_CONFIG={config.resolve()}")
    click.echo("      rxvault server pharmacies create SLUG --name NAME; rxvault serve")


@server_group.command(name="migrate")
@CONFIG_OPTION
def migrate_command(config: Path | None) -> None:
    """Bring the database schema up to date."""
    from rxvault.server._db import create_db_engine, current_revision, head_revision, migrate

    settings = _settings(config)
    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        before = current_revision(engine)
        migrate(engine)
    except Exception as exc:
        raise UserError(f"migration failed: {exc}") from None
    finally:
        engine.dispose()
    click.echo(f"database schema: {before or 'empty'} -> {head_revision()}")


@server_group.group(name="pharmacies")
def pharmacies_group() -> None:
    """Create and list pharmacies."""


@pharmacies_group.command(name="create")
@CONFIG_OPTION
@click.argument("slug")
@click.option("--name", required=True, help="The pharmacy's name as patients know it.")
def pharmacies_create(config: Path | None, slug: str, name: str) -> None:
    """Create a pharmacy and its first API token (shown once)."""

    with _admin(config) as admin:
        admin.create_pharmacy(slug, name)
        token, row = admin.create_token(slug, label="initial")
    click.echo(f"pharmacy {slug} created; API token {row.id} (shown only now):")
    click.echo(token)


@pharmacies_group.command(name="list")
@CONFIG_OPTION
def pharmacies_list(config: Path | None) -> None:
    """List pharmacies (id, name, key id, created)."""

    with _admin(config) as admin:
        for p in admin.list_pharmacies():
            state = "disabled" if p.disabled_at else "active"
            click.echo(
                f"{p.slug}\t{p.name}\tkey={p.key_id or '-'}\t{state}\t"
                f"created={p.created_at:%Y-%m-%d}"
            )


@pharmacies_group.command(name="disable")
@CONFIG_OPTION
@click.argument("slug")
@click.option("--enable", is_flag=True, help="Enable a disabled pharmacy again.")
def pharmacies_disable(config: Path | None, slug: str, enable: bool) -> None:
    """Disable a pharmacy: its API tokens stop working and its codes no longer register."""
    with _admin(config) as admin:
        admin.set_pharmacy_disabled(slug, not enable)
    click.echo(f"pharmacy {slug} {'enabled' if enable else 'disabled'}")


@pharmacies_group.command(name="reset-key")
@CONFIG_OPTION
@click.argument("slug")
def pharmacies_reset_key(config: Path | None, slug: str) -> None:
    """Forget the pharmacy's public key so that the agent can register a new one."""

    with _admin(config) as admin:
        admin.reset_pharmacy_key(slug)
    click.echo(f"pharmacy {slug}: public key forgotten; patients must re-register")


@server_group.group(name="tokens")
def tokens_group() -> None:
    """Create, list, rotate and revoke a pharmacy's API tokens."""


@tokens_group.command(name="create")
@CONFIG_OPTION
@click.argument("slug")
@click.option("--scopes", default=None, help="Comma-separated; default: all.")
@click.option("--label", default="", help="A note to recognise the token by.")
def tokens_create(config: Path | None, slug: str, scopes: str | None, label: str) -> None:
    """Create an API token (printed once; only its hash is stored)."""
    from rxvault.server._tokens import SCOPES, parse_scopes

    try:
        chosen = parse_scopes(scopes) if scopes else SCOPES
    except ValueError as exc:
        raise UserError(f"--scopes: {exc}") from None
    with _admin(config) as admin:
        token, row = admin.create_token(slug, chosen, label)
    click.echo(f"token {row.id} for {slug} ({' '.join(chosen)}), shown only now:")
    click.echo(token)


@tokens_group.command(name="list")
@CONFIG_OPTION
@click.argument("slug")
def tokens_list(config: Path | None, slug: str) -> None:
    """List a pharmacy's tokens (never the tokens themselves)."""

    with _admin(config) as admin:
        for t in admin.list_tokens(slug):
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            click.echo(f"{t.id}\t{t.prefix}…\t{t.scopes}\t{state}\tlast used {used}\t{t.label}")


@tokens_group.command(name="rotate")
@CONFIG_OPTION
@click.argument("slug")
@click.argument("token_id", type=int)
def tokens_rotate(config: Path | None, slug: str, token_id: int) -> None:
    """Revoke a token and print its replacement (same scopes)."""

    with _admin(config) as admin:
        token, row = admin.rotate_token(slug, token_id)
    click.echo(f"token {token_id} revoked; new token {row.id}, shown only now:")
    click.echo(token)


@tokens_group.command(name="revoke")
@CONFIG_OPTION
@click.argument("slug")
@click.argument("token_id", type=int)
def tokens_revoke(config: Path | None, slug: str, token_id: int) -> None:
    """Revoke a token at once."""

    with _admin(config) as admin:
        admin.revoke_token(slug, token_id)
    click.echo(f"token {token_id} of {slug} revoked")


@server_group.group(name="enrollments")
def enrollments_group() -> None:
    """List and revoke enrollment codes (by lookup id; the codes are never stored)."""


@enrollments_group.command(name="list")
@CONFIG_OPTION
@click.argument("slug")
def enrollments_list(config: Path | None, slug: str) -> None:
    """List a pharmacy's enrollments: lookup id, handle, state, expiry."""

    with _admin(config) as admin:
        now = admin.now
        for e in admin.list_enrollments(slug):
            if e.used_at:
                state = f"used {e.used_at:%Y-%m-%d}"
            elif e.revoked_at:
                state = "revoked"
            elif e.expires_at <= now:
                state = "expired"
            else:
                state = "waiting"
            click.echo(f"{e.lookup_id}\t{e.handle}\t{state}\texpires {e.expires_at:%Y-%m-%d}")


@enrollments_group.command(name="revoke")
@CONFIG_OPTION
@click.argument("lookup_id")
def enrollments_revoke(config: Path | None, lookup_id: str) -> None:
    """Revoke an unused enrollment code."""

    with _admin(config) as admin:
        admin.revoke_enrollment(lookup_id)
    click.echo(f"enrollment {lookup_id} revoked")


@server_group.group(name="accounts")
def accounts_group() -> None:
    """List, unlock and revoke patient accounts (no health data is shown or stored)."""


@accounts_group.command(name="list")
@CONFIG_OPTION
@click.option("--pharmacy", "slug", default=None)
def accounts_list(config: Path | None, slug: str | None) -> None:
    """List accounts: username, pharmacy, handle, state, created."""

    with _admin(config) as admin:
        for account, pslug in admin.list_accounts(slug):
            if account.revoked_at:
                state = "revoked"
            elif account.locked_at:
                state = "locked"
            else:
                state = "active"
            click.echo(
                f"{account.username}\t{pslug}\t{account.handle}\t{state}\t"
                f"created={account.created_at:%Y-%m-%d}"
            )


@accounts_group.command(name="unlock")
@CONFIG_OPTION
@click.argument("username")
def accounts_unlock(config: Path | None, username: str) -> None:
    """Lift the lock placed after too many failed logins."""
    from rxvault.server._accounts import normalize_username

    with _admin(config) as admin:
        admin.unlock_account(normalize_username(username))
    click.echo(f"account {username} unlocked")


@accounts_group.command(name="revoke")
@CONFIG_OPTION
@click.argument("username")
def accounts_revoke(config: Path | None, username: str) -> None:
    """Disable an account and end its sessions."""
    from rxvault.server._accounts import normalize_username

    with _admin(config) as admin:
        admin.revoke_account(normalize_username(username))
    click.echo(f"account {username} revoked; its sessions ended")


@server_group.group(name="records")
def records_group() -> None:
    """Restore deleted blocks and purge expired ones."""


@records_group.command(name="restore")
@CONFIG_OPTION
@click.argument("slug")
@click.argument("handle")
def records_restore(config: Path | None, slug: str, handle: str) -> None:
    """Make a block deleted in the last 30 days live again."""

    with _admin(config) as admin:
        record = admin.restore_record(slug, handle)
    click.echo(f"{handle}: restored (block version {record.block_version})")


@records_group.command(name="purge")
@CONFIG_OPTION
def records_purge(config: Path | None) -> None:
    """Drop deleted blocks whose 30-day restore window has passed."""

    with _admin(config) as admin:
        count = admin.purge()
    click.echo(f"purged {count} deleted block(s)")


@server_group.group(name="audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command(name="verify")
@CONFIG_OPTION
def audit_verify(config: Path | None) -> None:
    """Check every entry of the audit chain; exits 2 if anything was edited or removed."""
    from rxvault.server import _audit

    with _admin(config) as admin:
        report = _audit.verify(admin.session, admin.audit_key)
    if not report.ok:
        for problem in report.problems:
            click.echo(f"rxvault: audit: {problem}", err=True)
        raise UserError(
            f"the audit log failed verification ({len(report.problems)} problem(s))",
            hint="restore the database from a backup and investigate who had write access",
            exit_code=EXIT_FAILED,
        )
    click.echo(f"audit log OK: {report.entries} entries; head {report.head_seq} {report.head_mac}")
    click.echo(
        "record the head line elsewhere: a later verify must show the same or a longer chain"
    )


#: How long an idle HTTP connection stays open. Longer than the idle timeout of the clients
#: and proxies in front (uvicorn's own default, 5 s, equals httpx's: a request sent on a
#: connection the server is closing then fails; found by tests/reliability/test_load.py).
KEEP_ALIVE_SECONDS = 75

#: glibc malloc arenas per server process. By default glibc gives each thread that allocates
#: concurrently an arena of its own (up to 8 per core), and the request threads' arenas keep
#: the freed memory of their peaks: in the soak of tests/reliability/test_load.py the process
#: that ingests the batches grew step by step (+29 % in 30 minutes) with no growth of live
#: Python objects (tracemalloc); with 2 arenas it stayed flat. Set unless the operator already
#: set ``MALLOC_ARENA_MAX``.
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Cap glibc's malloc arenas in this process (``mallopt``) and, through the environment, in
    the worker processes uvicorn starts. No effect where the C library is not glibc."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX


@click.command(name="serve")
@CONFIG_OPTION
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
@click.option(
    "--proxy-headers/--no-proxy-headers",
    default=False,
    show_default=True,
    help="Believe X-Forwarded-Proto from trusted_proxies.",
)
def serve_command(
    config: Path | None, host: str, port: int, workers: int, proxy_headers: bool
) -> None:
    """Run the server (uvicorn). Put it behind a TLS proxy: its cookies need HTTPS."""
    import uvicorn

    from rxvault.server._app import create_app
    from rxvault.server._db import DatabaseError
    from rxvault.server._settings import SettingsError

    settings = _settings(config)
    try:
        create_app(settings)  # fail fast, with a clear message, before uvicorn starts
    except SettingsError as exc:
        raise UserError(exc.message, hint=exc.hint) from None
    except DatabaseError as exc:
        raise UserError(str(exc), hint="run `rxvault server migrate`") from None
    if config is not None:
        os.environ["RXVAULT_CONFIG"] = str(config)
    import copy

    from uvicorn.config import LOGGING_CONFIG

    # uvicorn's access log would print query strings; rxvault's own request log prints only
    # method, path, status, time and request id.
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["rxvault"] = {"handlers": ["default"], "level": "INFO"}
    limit_malloc_arenas()
    uvicorn.run(
        "rxvault.server._asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        server_header=False,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        log_config=log_config,
        log_level="info",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
