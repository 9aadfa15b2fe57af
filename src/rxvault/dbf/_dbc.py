"""Long field names from a Visual FoxPro database container (``.dbc``).

A DBC is itself a table (memo file ``.dct``) with one row per object: ``OBJECTTYPE`` is
``Database``, ``Table``, ``Field``, ``Index`` …; a field's ``PARENTID`` is its table's
``OBJECTID``, and the field rows of a table are in field order. We read it with our own reader.
"""

from __future__ import annotations

from pathlib import Path

from rxvault.dbf._errors import DbfError


def find_case_insensitive(path: Path) -> Path | None:
    """``path`` itself, or a file in its folder whose name differs only in case.

    A name the system cannot even look up (too long, as a damaged backlink can be) is not
    found, rather than an ``OSError``.
    """
    try:
        if path.is_file():
            return path
        folder = path.parent
        if not folder.is_dir():
            return None
        wanted = path.name.lower()
        for candidate in sorted(folder.iterdir()):
            if candidate.name.lower() == wanted and candidate.is_file():
                return candidate
    except OSError:
        return None
    return None


def resolve_backlink(table_path: Path, backlink: str) -> Path | None:
    """The DBC file a table's backlink names (relative to the table's folder), if present."""
    parts = [p for p in backlink.replace("\\", "/").split("/") if p]
    if not parts or ":" in parts[0]:
        # an absolute Windows path: the DBC normally sits next to the table anyway
        parts = parts[-1:]
    candidate = table_path.parent.joinpath(*parts) if parts else None
    found = find_case_insensitive(candidate) if candidate else None
    if found is None and parts:
        found = find_case_insensitive(table_path.parent / parts[-1])
    return found


def long_field_names(dbc_path: Path, table_path: Path) -> list[str] | None:
    """The long names of the table's fields in field order, or None if the DBC has no entry."""
    from rxvault.dbf._table import open_table

    stem = table_path.stem.lower()
    with open_table(dbc_path, strict=False, long_names=False) as dbc:
        wanted = ["OBJECTID", "PARENTID", "OBJECTTYPE", "OBJECTNAME"]
        names = {f.name.upper(): f.name for f in dbc.fields}
        if not all(w in names for w in wanted):
            raise DbfError(dbc_path, "not a database container (no OBJECTID/OBJECTNAME fields)")
        data = dbc.read(columns=[names[w] for w in wanted]).to_pylist()
        table_ids = [
            row[names["OBJECTID"]]
            for row in data
            if str(row[names["OBJECTTYPE"]] or "").strip().lower() == "table"
            and str(row[names["OBJECTNAME"]] or "").strip().lower() == stem
        ]
        if not table_ids and "PROPERTY" in names:
            # the table's name in the DBC differs from its file name: find the file name in
            # the table objects' properties
            props = dbc.read(columns=[names["OBJECTID"], names["OBJECTTYPE"], names["PROPERTY"]])
            needle = table_path.name.lower().encode()
            for row in props.to_pylist():
                prop = row[names["PROPERTY"]]
                raw = prop.encode("latin-1", "replace") if isinstance(prop, str) else prop or b""
                if str(row[names["OBJECTTYPE"]] or "").strip().lower() == "table" and (
                    needle in raw.lower()
                ):
                    table_ids.append(row[names["OBJECTID"]])
        if len(table_ids) != 1:
            return None
        parent = table_ids[0]
        return [
            str(row[names["OBJECTNAME"]]).strip()
            for row in data
            if row[names["PARENTID"]] == parent
            and str(row[names["OBJECTTYPE"]] or "").strip().lower() == "field"
        ]
