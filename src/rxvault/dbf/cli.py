"""``rxvault dbf …``: inspect and export DBF tables."""

from __future__ import annotations

import click


@click.group(name="dbf")
def dbf_group() -> None:
    """Inspect and export Visual FoxPro / dBase tables."""
