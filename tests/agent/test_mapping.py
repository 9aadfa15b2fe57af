"""The mapping: the demo's parses and matches the demo pharmacy; every mistake names its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rxvault.agent import MappingError, parse_mapping, prepare, read_source
from rxvault.agent._setup import demo_mapping_text

DEMO = demo_mapping_text()


def line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def check(text: str, tmp_path: Path, source: Path | None = None) -> MappingError:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")

    def attempt() -> None:
        mapping = parse_mapping(text, path)
        if source is not None:
            prepare(mapping, read_source(mapping, source), "Test Pharmacy")

    with pytest.raises(MappingError) as info:
        attempt()
    return info.value


def test_demo_mapping_builds_documents(source: Path, tmp_path: Path) -> None:
    mapping = parse_mapping(DEMO, tmp_path / "demo.toml")
    docs = prepare(mapping, read_source(mapping, source), "Test Pharmacy")
    assert len(docs) > 0
    assert len(set(docs.digests.tolist())) == len(docs)


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ('role = "drug_name"', 'role = "drug_nam"', 'role = "drug_nam"', "unknown role"),
        ('table = "drugs"', 'table = "drug"', 'table = "drug"', "unknown table 'drug'"),
        (
            '"drug.strength" = {',
            '"drg.strength" = {',
            '"drg.strength"',
            "join 'drg'",
        ),
        ('order_by = ["allergen"]', 'order_by = ["allergen sideways"]', "sideways", "order_by"),
        ('file = "drug.dbf"', 'file = "../drug.dbf"', '"../drug.dbf"', "relative"),
        (
            'filter = [{ field = "active", equals = true }]',
            'filter = [{ field = "active", equal = true }]',
            "equal = true",
            "exactly one of",
        ),
        ("[sections.allergies.fields]", "[sections.allergies.feilds]", "feilds", "unknown key"),
    ],
)
def test_mistakes_name_the_line(old, new, needle, message, tmp_path: Path) -> None:
    assert old in DEMO
    text = DEMO.replace(old, new, 1)
    error = check(text, tmp_path)
    assert error.message.startswith(f"{tmp_path / 'mapping.toml'}:{line_of(text, needle)}:")
    assert message in error.message


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        # a field the table does not have
        ("sig = {", "sigg = {", "sigg = {", "has no field 'sigg'"),
        # a type that does not fit the role
        (
            'date_written = { label = "Written on", role = "written_date" }',
            'date_written = { label = "Written on", role = "quantity" }',
            "date_written = {",
            "holds date values, but role 'quantity' needs decimal or integer",
        ),
        # a join with no match
        ('key = "prescriber_id"', 'key = "drug_id"', 'table = "prescribers"', "finds a match"),
        # a filter value of the wrong type
        ("equals = true", 'equals = "yes"', 'equals = "yes"', "do not fit"),
    ],
)
def test_mistakes_found_in_the_data_name_the_line(
    old, new, needle, message, tmp_path: Path, source: Path
) -> None:
    assert old in DEMO
    text = DEMO.replace(old, new, 1)
    if "prescriber" in old and "key" in old:
        # point the join at the prescribers table with a key of other ids
        text = text.replace('on = "prescriber_id"', 'on = "npi"', 1)
    error = check(text, tmp_path, source)
    line = line_of(text, needle)
    if "finds a match" in message:
        line -= 1  # the join's [table] header line
    assert error.message.startswith(f"{tmp_path / 'mapping.toml'}:{line}:"), error.message
    assert message in error.message


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    error = check("format = 1\n[tables\n", tmp_path)
    assert "not valid TOML" in error.message


def test_document_json_is_canonical_json(source: Path, tmp_path: Path) -> None:
    from rxvault.agent._documents import document_json
    from rxvault.format import canonical_json, parse_json

    mapping = parse_mapping(DEMO, tmp_path / "demo.toml")
    docs = prepare(mapping, read_source(mapping, source), "Pharmacie « Ça va » \u2028 \x07")
    count = 0
    for _, data in docs.build(range(len(docs))):
        document = parse_json(data)
        assert canonical_json(document) == data
        assert document_json(document) == data
        count += 1
    assert count == len(docs)
    tricky = {"b": ['\x00\x1f"\\\t\n\r\b\f\u2028\U0001f600é', 2**53 - 1, None, True], "a": {}}
    assert document_json(tricky) == canonical_json(tricky)
