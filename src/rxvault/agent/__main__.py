"""``python -m rxvault.agent …``: the agent's commands without the rest of the rxvault CLI
(what a scheduled task runs; starts faster)."""

from __future__ import annotations

import sys

import click

from rxvault._cli_errors import UserError
from rxvault.agent.cli import agent_group


def main() -> None:
    try:
        agent_group.main(prog_name="rxvault agent", standalone_mode=False)
    except UserError as exc:
        click.echo(f"rxvault: error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"rxvault: hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
