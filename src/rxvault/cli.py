"""The ``rxvault`` command line: a thin layer over the library packages.

Each area registers its own click group here. User mistakes surface as
``rxvault: error: …`` plus an optional ``rxvault: hint: …`` and a documented exit code,
never as a traceback.
"""

from __future__ import annotations

import sys

import click

from rxvault import __version__
from rxvault._cli_errors import UserError


class _Root(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"rxvault: error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"rxvault: hint: {exc.hint}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Root)
@click.version_option(__version__, prog_name="rxvault")
def main() -> None:
    """rxvault: a pharmacy's Visual FoxPro records, readable only by each patient."""


# (module, attribute, command name, the extra it needs: None for the base install)
_COMMANDS = [
    ("rxvault.dbf.cli", "dbf_group", "dbf", None),
    ("rxvault.demo.cli", "demo_command", "demo", "server,agent"),
    ("rxvault.server.cli", "server_group", "server", "server"),
    ("rxvault.server.cli", "serve_command", "serve", "server"),
    ("rxvault.client.cli", "patient_group", "patient", "agent"),
    ("rxvault.agent.cli", "agent_group", "agent", "agent"),
]


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


def _register() -> None:
    import importlib

    for module, attribute, name, extra in _COMMANDS:
        try:
            command = getattr(importlib.import_module(module), attribute)
        except ModuleNotFoundError as exc:
            missing = exc.name or "?"
            if extra is None or missing.split(".")[0] == "rxvault":
                raise  # a bug, not a missing extra
            command = _needs_extra(name, extra, missing)
        main.add_command(command, name)


_register()
