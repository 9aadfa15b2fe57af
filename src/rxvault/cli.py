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


def _register() -> None:
    from rxvault.agent.cli import agent_group
    from rxvault.client.cli import patient_group
    from rxvault.dbf.cli import dbf_group
    from rxvault.demo.cli import demo_command
    from rxvault.server.cli import serve_command, server_group

    main.add_command(dbf_group)
    main.add_command(demo_command)
    main.add_command(server_group)
    main.add_command(serve_command)
    main.add_command(patient_group)
    main.add_command(agent_group)


_register()
