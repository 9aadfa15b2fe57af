"""``rxvault demo``: run rxvault on the embedded demo pharmacy.

For now it generates the demo pharmacy (a seeded Visual FoxPro database) and reads every table
with rxvault's own reader, showing what it found: versions, code pages, fields, counts, memo
files, anomalies and a few sample patients.
"""

from __future__ import annotations

from pathlib import Path

import click

from rxvault._cli_errors import UserError

DEFAULT_DIR = Path(".demo") / "pharmacy"


@click.command(name="demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Where the demo pharmacy lives (generated there when missing).",
)
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
def demo_command(  # noqa: PLR0917 (click passes every option)
    directory: Path,
    patients: int,
    seed: int,
    reset: bool,
    days: int,
    pack: bool,
    samples: int,
) -> None:
    """Run rxvault on the embedded demo pharmacy.

    Generates a realistic Visual FoxPro pharmacy database (seeded, so always the same) into
    --dir, or reuses the one there, then reads every table with rxvault's reader and shows
    what it found.
    """
    from rxvault.dbf import DbfError
    from rxvault.demo._generate import generate
    from rxvault.demo._next_day import next_day
    from rxvault.demo._report import describe_pharmacy
    from rxvault.demo._schema import DBC_NAME

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
