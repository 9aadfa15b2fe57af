"""``rxvault demo``: see rxvault work end to end on one machine, in one command.

- ``rxvault demo`` (= ``rxvault demo up``): sets up the demo pharmacy, the server, the agent,
  a few enrolled patients and one registered patient, syncs, then serves the portal.
- ``rxvault demo next-day``: a day of pharmacy work, then the agent's sync.
- ``rxvault demo tables``: every table of the demo pharmacy as rxvault's reader sees it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from rxvault._cli_errors import UserError

if TYPE_CHECKING:
    from rxvault.demo._stack import DemoPaths

DEFAULT_DIR = Path(".demo")

DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="The demo's directory (pharmacy, server, agent, letters).",
)


@click.group(name="demo", invoke_without_command=True)
@click.pass_context
def demo_command(ctx: click.Context) -> None:
    """Run rxvault end to end on a generated demo pharmacy (`rxvault demo` = `demo up`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(up_command)


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@demo_command.command(name="up")
@DIR_OPTION
@click.option(
    "--database-url",
    default=None,
    help="The server's database, e.g. postgresql://user@host/db or mysql://user@host/db "
    "(MariaDB); default: SQLite in --dir. --reset drops the tables the demo made there.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port."
)
@click.option(
    "--patients",
    type=click.IntRange(min=1, max=2_000_000),
    default=50,
    show_default=True,
    help="Size of the generated pharmacy (first run).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generator.")
@click.option(
    "--reset",
    is_flag=True,
    help="Start over: remove the demo's files and its tables (on the same database unless "
    "--database-url is given).",
)
@click.option("--no-serve", is_flag=True, help="Set up and sync, then exit without serving.")
def up_command(  # noqa: PLR0917 (click passes every option)
    directory: Path = DEFAULT_DIR,
    database_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    patients: int = 50,
    seed: int = 1,
    reset: bool = False,
    no_serve: bool = False,
) -> None:
    """Set up the demo (first run) or reuse it, sync, and serve the portal on localhost."""
    from rxvault.demo import _stack

    started = time.monotonic()
    paths = _stack.DemoPaths(directory)
    if not no_serve:
        if _stack.serving_url(paths):
            raise UserError(
                f"the demo in {directory} is already being served",
                hint="open its portal, or stop the other `rxvault demo up` first",
            )
        _stack.check_port_free(host, port)
    options = _stack.UpOptions(directory, database_url, host, port, patients, seed, reset)
    try:
        state = _stack.set_up(options, click.echo)
    except KeyboardInterrupt:
        click.echo("\ninterrupted; run `rxvault demo up` again to finish setting up", err=True)
        sys.exit(130)
    portal = _stack.portal_url(host, port)
    click.echo()
    click.echo(f"Ready in {time.monotonic() - started:.1f} s.")
    click.echo(f"  portal     {portal}" + ("  (not served: --no-serve)" if no_serve else ""))
    if state.registered:
        click.echo(f"  log in as  {state.username} / {state.password}")
        click.echo(f"             (patient #{state.patient_id} {state.patient_name})")
    if state.letters:
        click.echo(
            f"  letters    {paths.letters} ({len(state.letters)} more patients: open a letter's "
            "link to register one)"
        )
    if port != state.port:
        click.echo(f"  note       the letters' links and the agent use port {state.port}")
    if host not in _stack.LOOPBACK:
        click.echo(
            "  note       browsers log in over plain http only on localhost; elsewhere put a "
            "TLS proxy in front (docs/operations.md)"
        )
    if not _stack.portal_built():
        click.echo(
            "  note       the portal's web files are not built: the server answers with a page "
            "saying so (build them with `make web`)"
        )
    if no_serve:
        click.echo("Next: `rxvault demo up` serves the portal.")
        return
    click.echo(
        "Next: log in; register a letter's patient; run `rxvault demo next-day` in another "
        "terminal, then reload the portal. Ctrl-C stops the server."
    )
    _serve(paths, host, port, portal)


def _serve(paths: DemoPaths, host: str, port: int, portal: str) -> None:
    from rxvault.demo import _stack

    settings = _stack.server_settings(paths)
    server = _stack.DemoServer(settings, host, port)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        try:
            server.start()
            with _stack.serving_marker(paths, server.url):
                click.echo(f"Serving the portal at {portal}")
                server.wait()
        except KeyboardInterrupt:
            click.echo("\nstopping…")
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C while stopping
            server.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo("stopped.")


@demo_command.command(name="next-day")
@DIR_OPTION
@click.option(
    "--days",
    type=click.IntRange(min=1, max=3650),
    default=1,
    show_default=True,
    help="How many days of pharmacy work to apply before the sync.",
)
@click.option("--pack", is_flag=True, help="PACK the tables at the end of the last day.")
def next_day_command(directory: Path, days: int, pack: bool) -> None:
    """A day of pharmacy work (new fills, edits, deletions), then the agent's sync."""
    from rxvault.dbf import DbfError
    from rxvault.demo import _stack

    paths = _stack.DemoPaths(directory)
    state = _stack.load_state(paths)
    try:
        changes = _stack.apply_days(paths, state, days, pack)
    except DbfError as exc:
        raise UserError(str(exc), hint="start over with `rxvault demo up --reset`") from None
    for c in changes:
        deleted = sum(len(r) for r in c.deleted.values())
        click.echo(
            f"{c.day:%Y-%m-%d}: {c.new_fills} new fills, {len(c.picked_up_fill_ids)} picked up, "
            f"{len(c.edited_patient_ids)} patients edited, {deleted} records deleted"
            + (f" (packed {sum(c.packed.values())})" if c.packed else "")
            + f": {len(c.patient_ids)} patients changed"
        )
    url = _stack.serving_url(paths)
    if url:
        click.echo(f"Agent sync (to the demo server at {url}):")
        summary = _stack.run_agent_sync(paths, url)
    else:
        click.echo("Agent sync (the demo server is not running: through a private one):")
        with _stack.private_server(_stack.server_settings(paths)) as server:
            summary = _stack.run_agent_sync(paths, server.url)
    for line in summary.lines():
        click.echo(f"    {line}")
    pid = state.patient_id
    if state.registered and pid is not None:
        mine = _stack.new_fills_of(paths.pharmacy, changes, pid)
        touched = any(int(pid) in c.patient_ids for c in changes)
        if mine:
            click.echo(
                f"{state.username} (patient #{pid}) has "
                + ("a new fill" if mine == 1 else f"{mine} new fills")
                + ": reload the portal."
            )
        elif touched:
            click.echo(f"{state.username} (patient #{pid}) changed: reload the portal.")
        else:
            click.echo(f"{state.username} (patient #{pid}) did not change.")


@demo_command.command(name="tables")
@DIR_OPTION
@click.option(
    "--patients",
    type=click.IntRange(min=1, max=2_000_000),
    default=50,
    show_default=True,
    help="Size of a newly generated pharmacy.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generator.")
@click.option("--reset", is_flag=True, help="Generate the pharmacy again even if it exists.")
@click.option(
    "--next-day",
    "days",
    type=click.IntRange(min=0, max=3650),
    default=0,
    show_default=True,
    help="Then apply this many days of pharmacy work (new fills, edits, deletions) in place.",
)
@click.option("--pack", is_flag=True, help="PACK the tables at the end of the last day.")
@click.option(
    "--samples",
    type=click.IntRange(min=0, max=100),
    default=3,
    show_default=True,
    help="How many sample patients to show.",
)
def tables_command(  # noqa: PLR0917 (click passes every option)
    directory: Path,
    patients: int,
    seed: int,
    reset: bool,
    days: int,
    pack: bool,
    samples: int,
) -> None:
    """Print every table of the demo pharmacy as rxvault's reader sees it.

    Generates the demo pharmacy (seeded, so always the same) into DIR/pharmacy when missing,
    or reuses the one there, then reads every table and shows what it found.
    """
    from rxvault.dbf import DbfError
    from rxvault.demo._generate import generate
    from rxvault.demo._next_day import next_day
    from rxvault.demo._report import describe_pharmacy
    from rxvault.demo._schema import DBC_NAME

    if reset and (directory / "demo.json").exists():
        raise UserError(
            f"{directory / 'pharmacy'} belongs to the demo set up in {directory}: generating it "
            "again under the agent would make its next sync refuse an older pharmacy",
            hint="start the whole demo over with `rxvault demo up --reset`",
        )
    directory = directory / "pharmacy"
    dbc = directory / DBC_NAME
    if reset or not dbc.exists():
        if directory.exists() and not directory.is_dir():
            raise UserError(f"{directory} is not a directory", hint="choose another --dir")
        try:
            info = generate(directory, patients=patients, seed=seed)
        except OSError as exc:
            raise UserError(
                f"cannot write the demo pharmacy to {directory}: {exc.strerror}",
                hint="choose a writable --dir",
            ) from None
        click.echo(
            f"Generated the demo pharmacy in {directory} "
            f"({info.patients:,} patients, seed {info.seed}, as of {info.as_of:%Y-%m-%d})."
        )
    else:
        click.echo(f"Using the demo pharmacy in {directory} (--reset generates it again).")
    try:
        for day in range(days):
            changes = next_day(directory, seed=seed, pack=pack and day == days - 1)
            packed = ", ".join(f"{n} {t}" for t, n in changes.packed.items() if n)
            click.echo(
                f"{changes.day:%Y-%m-%d}: {changes.new_fills} new fills "
                f"({changes.new_prescriptions} of them new prescriptions), "
                f"{len(changes.picked_up_fill_ids)} picked up, "
                f"{len(changes.edited_patient_ids)} patients edited, "
                f"{len(changes.memos_in_place)} memos rewritten in place and "
                f"{len(changes.memos_moved)} moved, "
                f"{sum(len(r) for r in changes.deleted.values())} records deleted; "
                f"{len(changes.patient_ids)} patients changed"
                + (f"; packed: {packed} removed" if changes.packed else "")
            )
        click.echo()
        for line in describe_pharmacy(directory, samples=samples):
            click.echo(line)
    except DbfError as exc:
        raise UserError(str(exc), hint="generate the pharmacy again with --reset") from None
