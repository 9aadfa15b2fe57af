"""``rxvault dbf …``: inspect and export DBF tables."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import click

from rxvault._cli_errors import EXIT_WARNINGS, UserError

_HINT_LENIENT = "--lenient reads what can be read and lists every problem"


@click.group(name="dbf")
def dbf_group() -> None:
    """Inspect and export Visual FoxPro / dBase tables."""


def _flags(field: Any) -> str:
    names = [
        name
        for name, on in (
            ("nullable", field.nullable),
            ("binary", field.binary and field.type in "CVM"),
            ("autoinc", field.autoincrement),
            ("system", field.system),
        )
        if on
    ]
    return ",".join(names)


def _inspect_one(path: Path, codepage: str | None) -> dict[str, Any]:
    from rxvault.dbf import DbfError, open_table

    try:
        table = open_table(path, codepage=codepage, strict=False)
    except DbfError as exc:
        raise UserError(f"cannot read {path}: {exc.detail}", hint=_hint_for(exc)) from None
    except LookupError as exc:
        raise UserError(str(exc)) from None
    with table:
        for _ in table.iter_batches(include_deleted=True):
            pass  # a full scan, so every anomaly is listed
        memo = table.memo
        return {
            "path": str(path),
            "version": f"0x{table.version:02X}",
            "version_name": table.version_name,
            "last_update": table.last_update.isoformat() if table.last_update else None,
            "codepage": table.codepage,
            "language_driver": f"0x{table.language_driver:02X}",
            "backlink": table.backlink,
            "header_length": table.header_length,
            "record_length": table.record_length,
            "records_in_header": table.record_count,
            "live": table.live_count,
            "deleted": table.deleted_count,
            "memo": None
            if memo is None
            else {
                "path": str(memo.path),
                "kind": memo.kind,
                "block_size": memo.block_size,
                "next_free": memo.next_free,
                "size": memo.size,
            },
            "fields": [
                {
                    "name": f.name,
                    "long_name": f.long_name,
                    "type": f.type,
                    "length": f.length,
                    "decimals": f.decimals,
                    "flags": f.flags,
                    "flag_names": _flags(f),
                    "arrow_type": str(f.arrow_type),
                }
                for f in table.fields
            ],
            "anomalies": [
                {"kind": a.kind, "record": a.record, "field": a.field, "message": a.message}
                for a in table.anomalies
            ],
        }


def _hint_for(exc: Exception) -> str:
    from rxvault.dbf import DecodeError, MissingMemoError

    if isinstance(exc, DecodeError):
        return "give the table's real code page with --codepage (e.g. cp1252, cp850, cp866)"
    if isinstance(exc, MissingMemoError):
        return "put the .fpt/.dbt next to the table, or " + _HINT_LENIENT
    return _HINT_LENIENT


def _print_text(info: dict[str, Any]) -> None:
    echo = click.echo
    echo(f"{info['path']}")
    echo(f"  version      {info['version']} {info['version_name']}")
    echo(f"  last update  {info['last_update'] or '-'}")
    echo(f"  code page    {info['codepage'] or 'none (ASCII only)'} ({info['language_driver']})")
    if info["backlink"]:
        echo(f"  database     {info['backlink']}")
    echo(
        f"  records      {info['records_in_header']} in header: {info['live']} live, "
        f"{info['deleted']} deleted"
    )
    echo(f"  record size  {info['record_length']} bytes, header {info['header_length']} bytes")
    memo = info["memo"]
    if memo:
        echo(f"  memo file    {memo['path']} ({memo['kind']}, block size {memo['block_size']})")
    echo(f"  fields       {len(info['fields'])}")
    for f in info["fields"]:
        long = f" ({f['long_name']})" if f["long_name"] else ""
        size = f"{f['length']}" + (f",{f['decimals']}" if f["decimals"] else "")
        flags = f"  [{f['flag_names']}]" if f["flag_names"] else ""
        echo(f"    {f['name']:<12} {f['type']} {size:<7} {f['arrow_type']}{long}{flags}")
    anomalies = info["anomalies"]
    echo(f"  anomalies    {len(anomalies) or 'none'}")
    for a in anomalies[:50]:
        echo(f"    {a['kind']}: {a['message']}")
    if len(anomalies) > 50:
        echo(f"    … and {len(anomalies) - 50} more (--json lists all)")


@dbf_group.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per table).")
@click.option("--codepage", help="Read text with this code page instead of the header's.")
@click.pass_context
def inspect_command(
    ctx: click.Context, paths: tuple[Path, ...], as_json: bool, codepage: str | None
) -> None:
    """Show version, code page, fields, record counts, memo file and every anomaly.

    Exits 1 when a table has anomalies that a strict read would refuse.
    """
    infos = [_inspect_one(p, codepage) for p in paths]
    if as_json:
        click.echo(json.dumps(infos if len(infos) > 1 else infos[0], indent=2))
    else:
        for info in infos:
            _print_text(info)
    if any(a["kind"] != "Note" for info in infos for a in info["anomalies"]):
        ctx.exit(EXIT_WARNINGS)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _binary_as_base64(batch: Any) -> Any:
    import pyarrow as pa

    columns = []
    for column in batch.columns:
        if pa.types.is_binary(column.type):
            values = column.to_pylist()
            encoded = [None if v is None else base64.b64encode(v).decode() for v in values]
            columns.append(pa.array(encoded, type=pa.string()))
        else:
            columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


@dbf_group.command("export")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    required=True,
    help="Output format.",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Output file (default: stdout)."
)
@click.option("--codepage", help="Read text with this code page instead of the header's.")
@click.option("--include-deleted", is_flag=True, help="Also export deleted records (_deleted).")
@click.option("--recno", is_flag=True, help="Add the physical record number (_recno).")
@click.option("--lenient", is_flag=True, help="Read what can be read; report problems.")
@click.option("--replace-undecodable", is_flag=True, help="Write U+FFFD for undecodable bytes.")
def export_command(  # noqa: PLR0917 (click passes each option as an argument)
    path: Path,
    fmt: str,
    output: Path | None,
    codepage: str | None,
    include_deleted: bool,
    recno: bool,
    lenient: bool,
    replace_undecodable: bool,
) -> None:
    """Export a table as CSV, JSON lines or Parquet (binary values base64 in CSV/JSON)."""
    from rxvault.dbf import DbfError, open_table

    if fmt == "parquet" and output is None:
        raise UserError("parquet output needs a file", hint="add -o FILE.parquet")
    try:
        table = open_table(
            path,
            codepage=codepage,
            strict=not lenient,
            decode_errors="replace" if replace_undecodable else "strict",
        )
    except DbfError as exc:
        raise UserError(f"cannot read {path}: {exc.detail}", hint=_hint_for(exc)) from None
    except LookupError as exc:
        raise UserError(str(exc)) from None
    with table:
        batches = table.iter_batches(include_deleted=include_deleted, with_recno=recno)
        try:
            if fmt == "parquet":
                assert output is not None
                _write_parquet(batches, table, output, include_deleted, recno)
            elif output is None:
                _write_text(fmt, batches, sys.stdout)
            else:
                with output.open("w", encoding="utf-8", newline="") as fh:
                    _write_text(fmt, batches, fh)
        except DbfError as exc:
            raise UserError(f"cannot read {path}: {exc}", hint=_hint_for(exc)) from None
        for a in table.anomalies:
            click.echo(f"rxvault: warning: {a.message}", err=True)


def _write_parquet(
    batches: Iterator[Any], table: Any, output: Path, include_deleted: bool, recno: bool
) -> None:
    import pyarrow.parquet as pq

    schema = table.arrow_schema(include_deleted=include_deleted, with_recno=recno)
    with pq.ParquetWriter(output, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)


def _write_text(fmt: str, batches: Iterator[Any], out: IO[str]) -> None:
    import csv

    writer = None
    for batch in batches:
        if fmt == "jsonl":
            for row in batch.to_pylist():
                out.write(json.dumps(row, default=_json_default, ensure_ascii=False) + "\n")
            continue
        text_batch = _binary_as_base64(batch)
        if writer is None:
            writer = csv.writer(out)
            writer.writerow(text_batch.schema.names)
        for row in text_batch.to_pylist():
            writer.writerow(["" if v is None else _csv_value(v) for v in row.values()])


def _csv_value(value: object) -> object:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
