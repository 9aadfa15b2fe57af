"""The column hashes behind the digests: a value's hash depends on the value only."""

from __future__ import annotations

import decimal

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from rxvault.agent._digest import hash_column

texts = st.lists(st.one_of(st.none(), st.text(max_size=40)), min_size=1, max_size=30)


@settings(deadline=None)  # timing is for benchmarks; a loaded machine must not fail this
@given(texts, texts)
def test_a_string_hashes_the_same_whatever_its_neighbours(left: list, right: list) -> None:
    value = left[0]
    alone = hash_column(pa.array([value], pa.string()), 11)[0]
    among = hash_column(pa.array([*right, value, *left], pa.string()), 11)
    assert among[len(right)] == alone
    sliced = pa.array([*right, value, *left], pa.string()).slice(len(right))
    assert hash_column(sliced, 11)[0] == alone


@settings(deadline=None)
@given(texts)
def test_different_strings_hash_differently(values: list) -> None:
    hashes = hash_column(pa.array(values, pa.string()), 3).tolist()
    distinct = {v for v in values}
    assert len(set(hashes)) == len(distinct)


def test_chunking_and_types_do_not_matter_but_values_do() -> None:
    chunked = pa.chunked_array([["a", "bb"], [None, "a" * 100]])
    flat = pa.array(["a", "bb", None, "a" * 100])
    assert hash_column(chunked, 5).tolist() == hash_column(flat, 5).tolist()
    dec = pa.array([decimal.Decimal("1.50"), None, decimal.Decimal("-2.25")], pa.decimal128(9, 2))
    assert hash_column(dec, 5)[0] == hash_column(dec.slice(0, 1), 5)[0]
    assert len(set(hash_column(dec, 5).tolist())) == 3
    assert hash_column(pa.array(["x"]), 1)[0] != hash_column(pa.array(["x"]), 2)[0]
