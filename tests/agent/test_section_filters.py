"""A section's filter keeps rows out of documents and digests, without copying the table."""

from __future__ import annotations

import json
from pathlib import Path

from rxvault.agent import prepare, read_source
from rxvault.agent._mapping import parse_mapping
from rxvault.dbf import TableEditor, open_table
from rxvault.demo import TABLES

DEMO = Path(__file__).parents[2] / "src" / "rxvault" / "agent" / "mappings" / "demo.toml"
NOT_CANCELLED = '[sections.prescriptions]\nfilter = [{ field = "status", not_equals = "C" }]'


def _mapping(tmp_path: Path):  # type: ignore[no-untyped-def]
    text = DEMO.read_text(encoding="utf-8").replace("[sections.prescriptions]", NOT_CANCELLED, 1)
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return parse_mapping(text, path)


def _fills(source: Path) -> list[tuple[int, str, str, int]]:
    """(record number, patient id, status, quantity) of every live fill."""
    with open_table(source / "rxfill.dbf") as t:
        table = t.read(columns=["patient_id", "status", "quantity"], with_recno=True)
    return list(
        zip(
            table.column("_recno").to_pylist(),
            [str(p) for p in table.column("patient_id").to_pylist()],
            table.column("status").to_pylist(),
            table.column("quantity").to_pylist(),
            strict=True,
        )
    )


def _edit_quantity(source: Path, recno: int, quantity: int) -> None:
    with TableEditor(source / "rxfill.dbf", long_names=TABLES[3].long_names) as editor:
        editor.update(recno, {"quantity": quantity})


def test_filtered_rows_are_in_no_document_and_no_digest(tmp_path: Path, source: Path) -> None:
    mapping = _mapping(tmp_path)
    fills = _fills(source)
    cancelled = next(f for f in fills if f[2] == "C")
    pid = cancelled[1]
    kept = [f for f in fills if f[1] == pid and f[2] != "C"]
    assert kept, "the demo patient needs a fill that is not cancelled"

    docs = prepare(mapping, read_source(mapping, source), "Main Street Pharmacy")
    index = docs.index_of(pid)
    assert index is not None
    ((_, text),) = list(docs.build([index]))
    document = json.loads(text)
    section = next(s for s in document["sections"] if s["id"] == "prescriptions")
    assert len(section["rows"]) == len(kept)
    assert all(row["status"] != "Cancelled" for row in section["rows"])
    digest = int(docs.digests[index])

    # a filtered-out row may change: nobody's digest moves
    _edit_quantity(source, cancelled[0], int(cancelled[3] or 0) + 7)
    again = prepare(mapping, read_source(mapping, source), "Main Street Pharmacy")
    assert again.digests.tolist() == docs.digests.tolist()

    # a kept row of the same patient changes: that patient's digest moves, and only theirs
    _edit_quantity(source, kept[0][0], int(kept[0][3] or 0) + 7)
    after = prepare(mapping, read_source(mapping, source), "Main Street Pharmacy")
    moved = [
        p for p, a, b in zip(after.patient_ids, after.digests, docs.digests, strict=True) if a != b
    ]
    assert moved == [pid]
    assert int(after.digests[index]) != digest
