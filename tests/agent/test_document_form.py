"""Dates and times in a published document have the documented form (docs/operations.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rxvault.agent import prepare, read_source
from rxvault.agent._mapping import load_mapping

DEMO = Path(__file__).parents[2] / "src" / "rxvault" / "agent" / "mappings" / "demo.toml"
FORMS = {
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "datetime": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"),
}


def test_dates_and_times_have_the_documented_form(source: Path) -> None:
    mapping = load_mapping(DEMO)
    docs = prepare(mapping, read_source(mapping, source), "Main Street Pharmacy")
    seen = {"date": 0, "datetime": 0}
    for _, text in docs.build(range(len(docs))):
        document = json.loads(text)
        parts = [(document["patient"]["fields"], [document["patient"]["values"]])]
        parts += [(s["fields"], s["rows"]) for s in document["sections"]]
        for fields, rows in parts:
            for field in fields:
                form = FORMS.get(field["type"])
                if form is None:
                    continue
                for row in rows:
                    value = row[field["id"]]
                    if value is not None:
                        assert form.fullmatch(value), (field["id"], value)
                        seen[field["type"]] += 1
    assert seen["date"] > 0
    assert seen["datetime"] > 0


def test_documents_built_in_chunks_are_the_documents_built_one_by_one(source: Path) -> None:
    mapping = load_mapping(DEMO)
    docs = prepare(mapping, read_source(mapping, source), "Main Street Pharmacy")
    wanted = [*range(0, len(docs), 3), 1, 4]  # unsorted, as a retry round's are
    alone = {index: dict(docs.build([index]))[index] for index in wanted}
    for chunk, group in ((1, 1), (5, 12), (7, 10), (500, 10_000)):
        chunks = list(docs.build_chunks(wanted, chunk, group=group))
        assert all(1 <= len(c) <= chunk for c in chunks)
        flat = [item for c in chunks for item in c]
        assert [index for index, _ in flat] == sorted(set(wanted))
        assert dict(flat) == alone, (chunk, group)
