"""``rxvault agent inspect``: the source's tables, fields, types, counts and anomalies."""

from __future__ import annotations

from pathlib import Path

from rxvault.dbf import DbfError, open_table

__all__ = ["inspect_directory"]


def inspect_directory(directory: Path) -> list[str]:
    """Lines describing every DBF table in ``directory`` (read leniently: anomalies listed)."""
    lines: list[str] = []
    tables = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".dbf")
    if not tables:
        lines.append(f"{directory}: no .dbf tables here")
        return lines
    for path in tables:
        try:
            with open_table(path, strict=False) as t:
                memo = f", memo {t.memo.path.name}" if t.memo is not None else ""
                lines.append(
                    f"{path.name}: {t.version_name}, {t.record_count} records "
                    f"({t.deleted_count} deleted), code page {t.codepage}, "
                    f"last update {t.last_update or '-'}{memo}"
                )
                for f in t.fields:
                    name = f.long_name or f.name
                    size = f"{f.length},{f.decimals}" if f.decimals else f"{f.length}"
                    flags = [
                        flag
                        for flag, on in (
                            ("null", f.nullable),
                            ("binary", f.binary),
                            ("autoinc", f.autoincrement),
                        )
                        if on
                    ]
                    extra = f" [{', '.join(flags)}]" if flags else ""
                    lines.append(f"    {name:<24} {f.type} {size:<6} {f.arrow_type}{extra}")
                for anomaly in t.anomalies:
                    lines.append(f"    anomaly: {anomaly}")
        except DbfError as exc:
            lines.append(f"{path.name}: cannot be read: {exc}")
    return lines
