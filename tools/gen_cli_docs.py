"""Write docs/cli.md: every ``rxvault`` command's help, generated from the click command tree.

    .venv/bin/python tools/gen_cli_docs.py          # rewrite docs/cli.md
    .venv/bin/python tools/gen_cli_docs.py --check  # exit 1 if docs/cli.md is out of date

tests/test_docs.py fails when docs/cli.md is out of date, so a new command or option cannot go
unlisted. The help is rendered at a fixed width so the file does not depend on the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "cli.md"
WIDTH = 96

HEADER = """\
# Command reference

Every `rxvault` command and option, as `--help` prints it. This file is generated from the
command line itself by `tools/gen_cli_docs.py` (`.venv/bin/python tools/gen_cli_docs.py`); do not
edit it by hand: `tests/test_docs.py` fails when it is out of date. How and when to use the
commands: [operations.md](operations.md); exit codes: [operations.md](operations.md#exit-codes).
"""


def walk(
    command: click.Command, path: tuple[str, ...], parent: click.Context | None = None
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Every command of the tree, depth first, in the order ``--help`` lists them."""
    ctx = click.Context(
        command,
        info_name=path[-1],
        parent=parent,
        terminal_width=WIDTH,
        max_content_width=WIDTH,
    )
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, (*path, name), ctx)


def anchor(path: tuple[str, ...]) -> str:
    return "-".join(path)


def render() -> str:
    from rxvault.cli import main

    commands = list(walk(main, ("rxvault",)))
    out = [HEADER]
    for path, _, _ in commands:
        indent = "  " * (len(path) - 1)
        out.append(f"{indent}- [`{' '.join(path)}`](#{anchor(path)})")
    out.append("")
    for path, command, ctx in commands:
        out.append(f"## {' '.join(path)}")
        out.append("")
        out.append("```text")
        out.extend(line.rstrip() for line in command.get_help(ctx).splitlines())
        out.append("```")
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run tools/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
