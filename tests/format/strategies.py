"""Hypothesis strategies shared by the format tests."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from rxvault.format._canonical import MAX_SAFE_INTEGER

counters = st.integers(min_value=1, max_value=MAX_SAFE_INTEGER)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)
handles = st.binary(min_size=16, max_size=16).map(bytes.hex)
keys32 = st.binary(min_size=32, max_size=32)
json_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | json_text,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(json_text, children, max_size=5)
    ),
    max_leaves=25,
)


def whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
