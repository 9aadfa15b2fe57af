"""``rxvault agent …``: the pharmacy-side commands (a thin layer over the agent modules).

Exit codes (docs/operations.md): 0 ok, 1 finished with warnings, 2 failed (bad input or
configuration, or a refused operation), 3 the server could not be reached (retry later),
4 internal error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from rxvault._cli_errors import EXIT_INTERNAL, UserError

HOME_HELP = "the agent's home directory (default: RXVAULT_AGENT_HOME or a per-user folder)"


@click.group(name="agent")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), help=HOME_HELP)
@click.pass_context
def agent_group(ctx: click.Context, home: Path | None) -> None:
    """The pharmacy agent: read the VFP tables, encrypt each patient's records, upload."""
    from rxvault.agent._config import default_home

    ctx.obj = {"home": home or default_home()}


@agent_group.command(name="init")
@click.option("--pharmacy-name", required=True, help="shown to patients (portal, letters)")
@click.option("--server", "server_url", required=True, help="the rxvault server's URL")
@click.option(
    "--source",
    "source_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="the folder with the pharmacy's .dbf tables",
)
@click.option("--portal-url", help="the portal address printed on letters (default: server URL)")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a file holding the API token (or set RXVAULT_AGENT_TOKEN)",
)
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a mapping to start from (default: the demo pharmacy's)",
)
@click.option("--no-register", is_flag=True, help="do not contact the server yet")
@click.pass_obj
def init_command(
    obj: dict[str, Path],
    *,
    pharmacy_name: str,
    server_url: str,
    source_dir: Path,
    portal_url: str | None,
    token_file: Path | None,
    mapping_file: Path | None,
    no_register: bool,
) -> None:
    """Create the pharmacy's keys and configuration, and register the public key."""
    from rxvault.agent._setup import init_home

    token = token_file.read_text(encoding="utf-8").strip() if token_file else None
    if token is None and os.environ.get("RXVAULT_AGENT_TOKEN"):
        token = os.environ["RXVAULT_AGENT_TOKEN"]
    result = init_home(
        obj["home"],
        pharmacy_name=pharmacy_name,
        server_url=server_url,
        source_dir=source_dir.resolve(),
        portal_url=portal_url,
        token=token,
        mapping_text=mapping_file.read_text(encoding="utf-8") if mapping_file else None,
        register=not no_register,
    )
    for name in result.created:
        click.echo(f"created {result.home / name}")
    click.echo(f"pharmacy key id: {result.pharmacy_id}")
    if result.registered:
        click.echo("public key registered with the server")
    click.echo(
        "next: edit mapping.toml (see `rxvault agent inspect`), check `rxvault agent preview "
        "ID`, then `rxvault agent sync --dry-run`"
    )


@agent_group.command(name="inspect")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def inspect_command(obj: dict[str, Path], directory: Path | None) -> None:
    """List the source's tables, fields, types, counts and anomalies."""
    from rxvault.agent._config import load_config
    from rxvault.agent._inspect import inspect_directory

    if directory is None:
        directory = load_config(obj["home"]).source_dir
    if not directory.is_dir():
        raise UserError(f"{directory}: not a directory")
    for line in inspect_directory(directory):
        click.echo(line)


@agent_group.command(name="preview")
@click.argument("patient_id")
@click.option("--compact", is_flag=True, help="print the exact canonical JSON bytes")
@click.pass_obj
def preview_command(obj: dict[str, Path], patient_id: str, compact: bool) -> None:
    """Print exactly the document that would be published for PATIENT_ID."""
    from rxvault.agent._context import AgentContext
    from rxvault.agent._documents import prepare
    from rxvault.agent._source import read_source

    ctx = AgentContext.load(obj["home"])
    mapping = ctx.mapping()
    s = ctx.config.sync
    source = read_source(mapping, ctx.config.source_dir, attempts=s.read_attempts, wait=s.read_wait)
    docs = prepare(mapping, source, ctx.config.pharmacy_name)
    index = docs.index_of(patient_id.strip())
    if index is None:
        raise UserError(
            f"patient {patient_id!r} is not published: not in table "
            f"{mapping.patient.table!r}, or filtered out by the mapping",
        )
    ((_, document),) = list(docs.build([index]))
    if compact:
        click.echo(document.decode("utf-8"))
    else:
        click.echo(json.dumps(json.loads(document), indent=2, ensure_ascii=False))


@agent_group.command(name="enroll")
@click.argument("patient_ids", nargs=-1, required=True)
@click.option(
    "--letters",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write printable letters (PDF) here",
)
@click.option(
    "--expires-days", default=60, show_default=True, type=int, help="days the codes stay valid"
)
@click.pass_obj
def enroll_command(
    obj: dict[str, Path], patient_ids: tuple[str, ...], letters: Path | None, expires_days: int
) -> None:
    """Issue one-time enrollment codes for PATIENT_IDS (and print letters)."""
    from rxvault.agent._context import AgentContext
    from rxvault.agent._enroll import enroll
    from rxvault.agent._letters import write_letters

    ctx = AgentContext.load(obj["home"])
    made = enroll(ctx, list(patient_ids), days=expires_days)
    if letters is not None:
        write_letters(
            letters, made, pharmacy_name=ctx.config.pharmacy_name, portal_url=ctx.config.portal_url
        )
        click.echo(f"{len(made)} letters written to {letters}")
    else:
        for e in made:
            click.echo(f"{e.patient_id}\t{e.code_text}\t{e.url}")
    click.echo(f"codes valid until {made[0].expires_at:%Y-%m-%d}", err=True)


@agent_group.command(name="sync")
@click.option("--dry-run", is_flag=True, help="report what would be uploaded; change nothing")
@click.option(
    "--allow-deletions",
    type=int,
    metavar="N",
    help="allow exactly N deletions beyond the caps (for this run)",
)
@click.option(
    "--accept-new-source",
    is_flag=True,
    help="accept a source whose table structure changed since the last run",
)
@click.option("--quiet", is_flag=True, help="only errors and warnings")
@click.pass_obj
def sync_command(
    obj: dict[str, Path],
    *,
    dry_run: bool,
    allow_deletions: int | None,
    accept_new_source: bool,
    quiet: bool,
) -> None:
    """The daily run: read, diff, encrypt the changed patients, upload, commit."""
    from rxvault.agent._context import AgentContext
    from rxvault.agent._report import Reporter, log, setup_log
    from rxvault.agent._sync import SyncOptions, run_sync

    ctx = AgentContext.load(obj["home"])
    handler = setup_log(ctx.config.log_path)
    reporter = Reporter(quiet=quiet)
    options = SyncOptions(dry_run, allow_deletions, accept_new_source)
    try:
        try:
            summary = run_sync(ctx, options, reporter)
        except UserError:
            raise
        except Exception as exc:
            log.exception("internal error")
            raise UserError(
                f"internal error: {type(exc).__name__}: {exc}",
                hint=f"details are in {ctx.config.log_path}; please report this",
                exit_code=EXIT_INTERNAL,
            ) from None
    finally:
        log.removeHandler(handler)
        handler.close()
    for line in summary.lines():
        if line.startswith("warning: "):
            click.echo(f"rxvault: {line}", err=True)
        elif not quiet:
            click.echo(line)
    sys.exit(summary.exit_code)


@agent_group.command(name="status")
@click.pass_obj
def status_command(obj: dict[str, Path]) -> None:
    """Last runs, counts, waiting enrollments, refused keys, anything stuck in the outbox."""
    from rxvault.agent._status import status_lines

    for line in status_lines(obj["home"]):
        click.echo(line)


@agent_group.command(name="schedule")
@click.option("--at", "at", default="02:30", show_default=True, help="local time, HH:MM")
@click.option(
    "--kind",
    type=click.Choice(["auto", "windows", "systemd", "cron"]),
    default="auto",
    show_default=True,
)
@click.option("--install", is_flag=True, help="install the task, not only print it")
@click.pass_obj
def schedule_command(obj: dict[str, Path], at: str, kind: str, install: bool) -> None:
    """Write (and with --install, install) a daily task running `rxvault agent sync`."""
    from rxvault.agent._schedule import cron_line, systemd_units, windows_task_xml

    parts = at.split(":")
    if (
        len(parts) != 2
        or not all(p.isdigit() for p in parts)
        or int(parts[0]) > 23
        or int(parts[1]) > 59
    ):
        raise UserError(f"--at {at!r}: expected a time such as 02:30")
    at = f"{int(parts[0]):02d}:{int(parts[1]):02d}"
    home = obj["home"].resolve()
    if kind == "auto":
        kind = (
            "windows"
            if sys.platform == "win32"
            else ("systemd" if shutil.which("systemctl") else "cron")
        )
    if kind == "windows":
        xml = windows_task_xml(home, at)
        target = home / "rxvault-agent-task.xml"
        target.write_text(xml, encoding="utf-16")
        click.echo(f"wrote {target}")
        command = ["schtasks", "/Create", "/TN", "rxvault agent", "/XML", str(target), "/F"]
        if install:
            subprocess.run(command, check=True)  # noqa: S603 - fixed program, no shell
            click.echo("installed the task 'rxvault agent'")
        else:
            click.echo("install it with: " + " ".join(f'"{c}"' if " " in c else c for c in command))
    elif kind == "systemd":
        units = systemd_units(home, at)
        unit_dir = Path.home() / ".config" / "systemd" / "user" if install else home
        unit_dir.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            (unit_dir / name).write_text(text, encoding="utf-8")
            click.echo(f"wrote {unit_dir / name}")
        enable = ["systemctl", "--user", "enable", "--now", "rxvault-agent.timer"]
        if install:
            subprocess.run(["systemctl", "--user", "daemon-reload"], check=True)  # noqa: S607 - PATH
            subprocess.run(enable, check=True)  # noqa: S603
            click.echo("enabled rxvault-agent.timer")
        else:
            click.echo(f"install: copy both to ~/.config/systemd/user/, then: {' '.join(enable)}")
    else:
        line = cron_line(home, at)
        if install:
            current = subprocess.run(
                ["crontab", "-l"],  # noqa: S607 - the system's crontab, found on PATH
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            if line not in current:
                with tempfile.NamedTemporaryFile("w", suffix=".cron", delete=False) as fh:
                    fh.write(current + ("" if current.endswith("\n") or not current else "\n"))
                    fh.write(line)
                subprocess.run(["crontab", fh.name], check=True)  # noqa: S603, S607
                Path(fh.name).unlink()
            click.echo("installed the cron line")
        else:
            click.echo(line, nl=False)
