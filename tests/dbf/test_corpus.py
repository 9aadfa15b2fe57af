"""Every table of the shared corpus (``<repo>/../shared/dbf-corpus``), against its reference.

Each table must either be read in strict mode and agree with the dbfread reference (every
difference explained by a caveat the corpus MANIFEST documents, see ``_corpus.py``) and with the
exact values in ``corpus_expectations.py``, or be refused with the declared error (and then be read
in lenient mode, with that error among the anomalies). The corpus is required: without it these
tests fail, they do not skip.
"""

from __future__ import annotations

import pytest
from _corpus import CORPUS, check, manifest, report

MISSING = "<corpus missing>"


def _tables() -> list[str]:
    if not (CORPUS / "manifest.json").is_file():
        return [MISSING]
    return [t["file"] for t in manifest()["tables"]]


def test_corpus_is_present() -> None:
    assert (CORPUS / "manifest.json").is_file(), (
        f"DBF corpus not found at {CORPUS} (set RXVAULT_DBF_CORPUS)"
    )
    assert len(manifest()["tables"]) >= 200


@pytest.mark.parametrize("rel", _tables())
def test_table(rel: str) -> None:
    if rel == MISSING:
        pytest.fail(f"DBF corpus not found at {CORPUS} (set RXVAULT_DBF_CORPUS)")
    entry = next(t for t in manifest()["tables"] if t["file"] == rel)
    outcome = check(entry)
    assert outcome.problems == []


def test_report(capsys: pytest.CaptureFixture[str]) -> None:
    """The corpus report adds up (run ``python tests/dbf/_corpus.py`` to print it)."""
    outcomes = [check(e) for e in manifest()["tables"]]
    text = report(outcomes)
    with capsys.disabled():
        print("\n" + text)
    assert sum(o.status == "match" for o in outcomes) >= 180
    assert all(not o.problems for o in outcomes)
    assert f"tables: {len(outcomes)}" in text
