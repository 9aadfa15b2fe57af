"""``rxvault demo``: run rxvault on the embedded demo pharmacy."""

from __future__ import annotations

import click


@click.command(name="demo")
def demo_command() -> None:
    """Run rxvault on the embedded demo pharmacy."""
