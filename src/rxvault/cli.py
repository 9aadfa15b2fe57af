"""The ``rxvault`` command line: a thin layer over the library packages.

Each area's click group is registered here and imported only when used. User mistakes surface as
``rxvault: error: …`` plus an optional ``rxvault: hint: …`` and a documented exit code,
never as a traceback.
"""

from __future__ import annotations

import sys

import click

from rxvault import __version__
from rxvault._cli_errors import UserError

# command name -> (module, attribute, the extra it needs: None for the base install). Loaded only
# when used, so that `rxvault agent sync` does not import the server's web stack, and vice versa.
_COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "agent": ("rxvault.agent.cli", "agent_group", "agent"),
    "dbf": ("rxvault.dbf.cli", "dbf_group", None),
    "demo": ("rxvault.demo.cli", "demo_command", "server,agent"),
    "patient": ("rxvault.client.cli", "patient_group", "agent"),
    "serve": ("rxvault.server.cli", "serve_command", "server"),
    "server": ("rxvault.server.cli", "server_group", "server"),
}


def _needs_extra(name: str, extra: str, missing: str) -> click.Command:
    """A stand-in for a command whose extra (optional dependencies) is not installed."""

    @click.command(
        name=name,
        help=f"(not installed: needs rxvault[{extra}])",
        context_settings={"ignore_unknown_options": True, "help_option_names": []},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def stand_in(args: tuple[str, ...]) -> None:
        raise UserError(
            f"`rxvault {name}` needs the {extra} extra ({missing} is not installed)",
            hint=f'install it with: pip install "rxvault[{extra}]"',
        )

    return stand_in


def _load(name: str) -> click.Command:
    import importlib

    module, attribute, extra = _COMMANDS[name]
    try:
        command: click.Command = getattr(importlib.import_module(module), attribute)
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        if extra is None or missing.split(".")[0] == "rxvault":
            raise  # a bug, not a missing extra
        return _needs_extra(name, extra, missing)
    return command


class _Root(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            self.add_command(_load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            try:
                return super().invoke(ctx)
            except ModuleNotFoundError as exc:
                # A command that imports an extra's package only when it runs (`demo up`).
                missing = exc.name or "?"
                if missing.split(".")[0] == "rxvault":
                    raise
                name = ctx.invoked_subcommand or ""
                extra = _COMMANDS[name][2] if name in _COMMANDS else None
                raise UserError(
                    f"`rxvault {name}` needs {missing}, which is not installed",
                    hint=f'install it with: pip install "rxvault[{extra or "server,agent"}]"',
                ) from None
        except UserError as exc:
            click.echo(f"rxvault: error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"rxvault: hint: {exc.hint}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Root)
@click.version_option(__version__, prog_name="rxvault")
def main() -> None:
    """rxvault: a pharmacy's Visual FoxPro records, readable only by each patient."""
