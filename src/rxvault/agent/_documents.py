"""Every patient's published document, built from the source tables with vectorized joins.

:func:`prepare` does the work that every run needs, column by column: filters, the patient key,
joins (``pyarrow.compute.index_in``), the row → patient index, and one 64-bit digest per patient
(:mod:`rxvault.agent._digest`). :meth:`Documents.build` then makes the canonical JSON of just
the patients asked for (the changed ones, or the one being previewed), so an unchanged patient
costs a few vectorized operations and never a Python object.

The document (canonical JSON, docs/operations.md "The published document")::

    {"format": "rxvault.document/1",
     "pharmacy": {"name": …},
     "patient": {"label": …, "fields": [FIELD…], "values": {id: value}},
     "sections": [{"id": …, "label": …, "fields": [FIELD…], "rows": [{id: value}…]}…]}

    FIELD = {"id": "drug.drug_name", "label": "Drug", "role": "drug_name" | null,
             "type": "text" | "integer" | "decimal" | "date" | "datetime" | "boolean"}

Dates are ``YYYY-MM-DD``, times ``YYYY-MM-DDTHH:MM:SS`` (the pharmacy's local time, as stored),
decimals are strings (``"12.0800"``: exact, no float), codes with a ``values`` map are replaced
by their labels.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from rxvault.agent._digest import U64, combine, hash_column, mix, seed_of
from rxvault.agent._mapping import ROLES, FieldMap, Filter, Mapping, Section
from rxvault.agent._source import SourceRead
from rxvault.format import canonical_json

__all__ = ["DOCUMENT_FORMAT", "Documents", "key_strings", "prepare"]

DOCUMENT_FORMAT = "rxvault.document/1"
#: Part of every digest's seed: a new way of hashing, or of writing a document from the same
#: values, re-uploads every patient once. 4: times without the ".000" that Arrow's strftime
#: appended to millisecond timestamps (the documented form is YYYY-MM-DDTHH:MM:SS).
DIGEST_VERSION = "digest/4"
_PATIENT = "_p"
_ROWHASH = "_h"
#: patients whose rows :meth:`Documents.build_chunks` takes from the tables at once
BUILD_GROUP = 10_000


_MAX_SAFE_INTEGER = 2**53 - 1
_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)


def document_json(document: dict[str, Any]) -> bytes:
    """The canonical JSON of a document, byte for byte what :func:`canonical_json` gives.

    ``json``'s C encoder with sorted keys, no whitespace and UTF-8 output escapes exactly what
    the canonical form escapes; sorting by code points equals sorting by UTF-16 code units for
    the keys of a document (field ids are identifiers); documents hold no floats and only safe
    integers (larger ones are published as strings). ``tests/agent`` checks the equality on
    every document of the demo pharmacy, and the first document of every run is checked again
    with :func:`canonical_json`.
    """
    return _encoder.encode(document).encode("utf-8")


def kind_of(t: pa.DataType) -> str | None:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_decimal(t) or pa.types.is_floating(t):
        return "decimal"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "datetime"
    return None


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _datetime_text(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS`` of each timestamp (whole seconds, rounded down; nulls stay
    null), the documented form of a document's times. numpy formats them, several times
    faster than ``pyarrow.compute.strftime``, which also adds the fraction of a second of a
    millisecond timestamp (``.000``)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    ticks = np.asarray(
        pc.fill_null(array.view(pa.int64()), 0).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    seconds = np.floor_divide(ticks, _PER_SECOND[array.type.unit]).astype("datetime64[s]")
    text = np.datetime_as_string(seconds, unit="s")
    mask = None
    if array.null_count:
        mask = ~np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return pa.array(text, type=pa.string(), mask=mask)


def _json_column(array: pa.ChunkedArray | pa.Array, fmap: FieldMap) -> list[Any]:
    """Values ready for canonical JSON (strings for dates, times and decimals)."""
    t = array.type
    if pa.types.is_dictionary(t):
        array = array.cast(t.value_type)
        t = array.type
    if pa.types.is_integer(t) and len(array) - array.null_count:
        bounds = pc.min_max(array)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if max(abs(low), abs(high)) > _MAX_SAFE_INTEGER:
            array = array.cast(pa.string())
    if pa.types.is_timestamp(t):
        array = _datetime_text(array)
    elif pa.types.is_date(t) or pa.types.is_decimal(t) or pa.types.is_floating(t):
        array = array.cast(pa.string())
    values: list[Any] = array.to_pylist()
    if fmap.values:
        labels = fmap.values
        values = [labels.get(v, v) if isinstance(v, str) else v for v in values]
    return values


@dataclass(frozen=True)
class _Prepared:
    section: Section
    table: pa.Table  # filtered rows with _p (patient index) and _h (row hash)
    joined: dict[str, tuple[pa.Table, npt.NDArray[np.int64]]]  # join -> (table, row index)


class Documents:
    """The patients of one source read, their digests, and their documents on demand."""

    def __init__(
        self,
        mapping: Mapping,
        pharmacy_name: str,
        *,
        patient_ids: list[str],
        patients: pa.Table,
        sections: list[_Prepared],
        digests: U64,
    ) -> None:
        self.mapping = mapping
        self.pharmacy_name = pharmacy_name
        self.patient_ids = patient_ids
        self.digests = digests
        self._patients = patients
        self._sections = sections
        self._index: dict[str, int] | None = None
        self._fields_meta = self._meta()

    def __len__(self) -> int:
        return len(self.patient_ids)

    def patient_column(self, name: str) -> pa.ChunkedArray:
        """A column of the patients' records, in the order of ``patient_ids``."""
        return self._patients.column(name)

    def index_of(self, patient_id: str) -> int | None:
        if self._index is None:
            self._index = {p: i for i, p in enumerate(self.patient_ids)}
        return self._index.get(patient_id)

    def _meta(self) -> dict[str, list[dict[str, Any]]]:
        def field_meta(fmap: FieldMap, t: pa.DataType) -> dict[str, Any]:
            return {"id": fmap.source, "label": fmap.label, "role": fmap.role, "type": kind_of(t)}

        meta = {
            "": [
                field_meta(f, self._patients.schema.field(f.source).type)
                for f in self.mapping.patient.fields
            ]
        }
        for prepared in self._sections:
            out = []
            for f in prepared.section.fields:
                if f.join is None:
                    t = prepared.table.schema.field(f.source).type
                else:
                    t = prepared.joined[f.join][0].schema.field(f.column).type
                out.append(field_meta(f, t))
            meta[prepared.section.name] = out
        return meta

    def build(self, indices: Sequence[int] | npt.NDArray[np.int64]) -> Iterator[tuple[int, bytes]]:
        """(patient index, canonical JSON) for each index, in ascending index order.

        The JSON text is assembled column by column with Arrow string kernels (every value
        turned into its JSON literal at once, rows and documents joined with their keys), not
        by a JSON encoder per document. The first document of every call is also built the
        plain way (a dict through :func:`canonical_json`) and must be byte for byte the same.
        """
        for chunk in self.build_chunks(indices, len(indices) or 1):
            yield from chunk

    def build_chunks(
        self,
        indices: Sequence[int] | npt.NDArray[np.int64],
        chunk: int,
        *,
        group: int = BUILD_GROUP,
    ) -> Iterator[list[tuple[int, bytes]]]:
        """:meth:`build` in lists of at most ``chunk`` documents, in ascending index order.

        The rows of up to ``group`` patients are taken from the tables at once (a take from a
        million-row table costs about the same for 500 patients as for 5,000) and each chunk's
        documents are assembled from slices of them, so small chunks (a batch each, for uploads
        that overlap sealing) cost no more than large ones.
        """
        wanted_all = np.unique(np.asarray(indices, dtype=np.int64))
        chunk = max(1, chunk)
        group = max(chunk, group - group % chunk)
        for g in range(0, len(wanted_all), group):
            wanted = wanted_all[g : g + group]
            pat = self._patients.take(pa.array(wanted))
            rows = [self._rows(prepared, wanted) for prepared in self._sections]
            for start in range(0, len(wanted), chunk):
                stop = min(start + chunk, len(wanted))
                part: list[tuple[Section, npt.NDArray[np.int64], pa.Table]] = []
                for section, bounds, sub in rows:
                    lo, hi = int(bounds[start]), int(bounds[stop])
                    part.append((section, bounds[start : stop + 1] - lo, sub.slice(lo, hi - lo)))
                yield self._assemble(wanted[start:stop], pat.slice(start, stop - start), part)

    def _assemble(
        self,
        wanted: npt.NDArray[np.int64],
        pat: pa.Table,
        section_rows: list[tuple[Section, npt.NDArray[np.int64], pa.Table]],
    ) -> list[tuple[int, bytes]]:
        pfields = self.mapping.patient.fields
        parts: list[pa.Array | str] = [
            '{"format":'
            + _encoder.encode(DOCUMENT_FORMAT)
            + ',"patient":{"fields":'
            + _encoder.encode(self._fields_meta[""])
            + ',"label":'
            + _encoder.encode(self.mapping.patient.label)
            + ',"values":',
            _object_literals(pfields, [pat.column(f.source) for f in pfields], len(wanted)),
            '},"pharmacy":{"name":' + _encoder.encode(self.pharmacy_name) + '},"sections":[',
        ]
        for n, (section, bounds, sub) in enumerate(section_rows):
            fields = section.fields
            rows = _object_literals(fields, [sub.column(f.source) for f in fields], sub.num_rows)
            listed = pa.ListArray.from_arrays(pa.array(bounds.astype(np.int32)), rows)
            parts += [
                ("," if n else "")
                + '{"fields":'
                + _encoder.encode(self._fields_meta[section.name])
                + ',"id":'
                + _encoder.encode(section.name)
                + ',"label":'
                + _encoder.encode(section.label)
                + ',"rows":[',
                pc.binary_join(listed, ","),
                "]}",
            ]
        parts.append("]}")
        if not any(isinstance(part, pa.Array) for part in parts):
            raise AssertionError("a document has no patient values")
        joined = _join(parts)
        offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[
            joined.offset : joined.offset + len(joined) + 1
        ]
        text = memoryview(joined.buffers()[2] or b"")
        out: list[tuple[int, bytes]] = []
        for i, index in enumerate(wanted.tolist()):
            data = bytes(text[offsets[i] : offsets[i + 1]])
            if i == 0:
                doc = self._document(pat, section_rows, 0)
                if data != canonical_json(doc):
                    raise AssertionError("the assembled document differs from canonical_json")
            out.append((index, data))
        return out

    def _document(
        self,
        pat: pa.Table,
        section_rows: list[tuple[Section, npt.NDArray[np.int64], pa.Table]],
        i: int,
    ) -> dict[str, Any]:
        """The ``i``-th document of a :meth:`build` call as a dict (the plain way)."""
        values = {
            f.source: _json_column(pat.column(f.source).slice(i, 1), f)[0]
            for f in self.mapping.patient.fields
        }
        sections = []
        for section, bounds, sub in section_rows:
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            part = sub.slice(lo, hi - lo)
            cols = [(f.source, _json_column(part.column(f.source), f)) for f in section.fields]
            rows: list[dict[str, Any]] = [{} for _ in range(hi - lo)]
            for name, col in cols:
                for row, value in zip(rows, col, strict=True):
                    row[name] = value
            sections.append(
                {
                    "id": section.name,
                    "label": section.label,
                    "fields": self._fields_meta[section.name],
                    "rows": rows,
                }
            )
        return {
            "format": DOCUMENT_FORMAT,
            "pharmacy": {"name": self.pharmacy_name},
            "patient": {
                "label": self.mapping.patient.label,
                "fields": self._fields_meta[""],
                "values": values,
            },
            "sections": sections,
        }

    def _rows(
        self, prepared: _Prepared, wanted: npt.NDArray[np.int64]
    ) -> tuple[Section, npt.NDArray[np.int64], pa.Table]:
        """The section's rows of the wanted patients, in document order, and each patient's
        bounds in them (rows ``bounds[i]:bounds[i + 1]`` belong to ``wanted[i]``)."""
        section = prepared.section
        table = prepared.table
        p = table.column(_PATIENT).to_numpy()
        # a lookup by patient index (-1, no patient, reads the last entry, always False):
        # cheaper than np.isin over a million rows
        chosen = np.zeros(len(self.patient_ids) + 1, dtype=bool)
        chosen[wanted] = True
        rows_idx = np.flatnonzero(chosen[p])
        sub = table.take(pa.array(rows_idx))
        extra: dict[str, pa.Array] = {}
        for jname, (jtable, jindex) in prepared.joined.items():
            positions = jindex[rows_idx]
            mask = positions < 0
            take = pa.array(np.where(mask, 0, positions), mask=mask)
            for f in section.fields:
                if f.join == jname and f.source not in extra:
                    extra[f.source] = jtable.column(f.column).take(take)
            for src, _ in section.order_by:
                if src.startswith(jname + ".") and src not in extra:
                    extra[src] = jtable.column(src.split(".", 1)[1]).take(take)
        for name, array in extra.items():
            sub = sub.append_column(name, array)
        keys = [(_PATIENT, "ascending")]
        keys += [(src, "descending" if desc else "ascending") for src, desc in section.order_by]
        keys.append((_ROWHASH, "ascending"))
        sub = sub.sort_by(keys)
        sorted_p = np.asarray(sub.column(_PATIENT).to_numpy(), dtype=np.int64)
        bounds = np.searchsorted(sorted_p, np.append(wanted, np.iinfo(np.int64).max))
        bounds[-1] = len(sorted_p)
        return section, bounds, sub


@functools.lru_cache(maxsize=4096)
def _text(value: str) -> pa.Scalar:
    """A string scalar, made once per text: pyarrow turns a Python string argument into a
    scalar on every call, and each time tries to import modules that are not installed
    (``dateutil``), a search of the whole path (about 0.1 ms a call)."""
    return pa.scalar(value, type=pa.string())


def _join(parts: Sequence[pa.Array | str]) -> pa.Array:
    """Concatenate, element by element, arrays and constant texts."""
    items = [_text(p) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*items, _text(""))


_CONTROL = r"[\x00-\x1f]"
_ESCAPED = r'[\x00-\x1f"\\]'
_SHORT_ESCAPES = (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"), ("\f", "\\f"))


def _quoted(strings: pa.Array) -> pa.Array:
    """JSON string literals of ``strings`` (nulls stay null), escaped as canonical JSON does:
    ``\\``, ``\"``, the five short escapes, ``\\u00xx`` for the other control characters."""
    if not pc.any(pc.match_substring_regex(strings, _ESCAPED)).as_py():
        return _join(['"', strings, '"'])  # the usual case: one pass
    out = pc.replace_substring(strings, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    if pc.any(pc.match_substring_regex(out, _CONTROL)).as_py():
        for char, escape in _SHORT_ESCAPES:
            out = pc.replace_substring(out, char, escape)
        if pc.any(pc.match_substring_regex(out, _CONTROL)).as_py():
            # other control characters: rare; the encoder writes them as \u00xx
            return pa.array(
                [None if v is None else _encoder.encode(v) for v in strings.to_pylist()],
                type=pa.string(),
            )
    return _join(['"', out, '"'])


def _json_literals(column: pa.ChunkedArray | pa.Array, fmap: FieldMap) -> pa.Array:
    """Each value's JSON text, as :func:`_json_column` then the encoder would write it."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    t = array.type
    if pa.types.is_dictionary(t):
        array = array.cast(t.value_type)
        t = array.type
    text: pa.Array | None = None  # values that become JSON strings
    if pa.types.is_integer(t):
        if len(array) - array.null_count:
            bounds = pc.min_max(array)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if max(abs(low), abs(high)) > _MAX_SAFE_INTEGER:
                text = array.cast(pa.string())
        if text is None:
            return pc.fill_null(array.cast(pa.string()), "null")
    elif pa.types.is_boolean(t):
        return pc.fill_null(pc.if_else(array, _text("true"), _text("false")), "null")
    elif pa.types.is_timestamp(t):
        text = _datetime_text(array)
    elif (
        pa.types.is_date(t)
        or pa.types.is_decimal(t)
        or pa.types.is_floating(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
    ):
        text = array.cast(pa.string())
    if text is None:
        values = [_encoder.encode(v) for v in _json_column(array, fmap)]
        return pa.array(values, type=pa.string())
    if fmap.values:
        codes = pa.array(list(fmap.values), type=pa.string())
        labels = pa.array(list(fmap.values.values()), type=pa.string())
        text = pc.coalesce(pc.take(labels, pc.index_in(text, value_set=codes)), text)
    return pc.fill_null(_quoted(text), "null")


def _object_literals(
    fields: Sequence[FieldMap], columns: Sequence[pa.ChunkedArray | pa.Array], n: int
) -> pa.Array:
    """One JSON object per row: ``{"field id": value, …}``, keys sorted as canonical JSON sorts
    them (a field id named twice keeps its last column, as a dict would)."""
    last = {f.source: i for i, f in enumerate(fields)}
    if not last:
        return pc.fill_null(pa.nulls(n, pa.string()), "{}")
    parts: list[pa.Array | str] = []
    for j, key in enumerate(sorted(last)):
        i = last[key]
        parts.append(("{" if j == 0 else ",") + _encoder.encode(key) + ":")
        parts.append(_json_literals(columns[i], fields[i]))
    parts.append("}")
    return _join(parts)


def _filter_mask(
    mapping: Mapping, table: pa.Table, filters: tuple[Filter, ...], where: str
) -> pa.Array | None:
    mask: pa.Array | None = None
    for flt in filters:
        column = table.column(flt.field)
        try:
            values = pa.array(list(flt.values)).cast(column.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise mapping.error(
                flt.line,
                f"filter on {flt.field!r} of {where}: values {list(flt.values)!r} do not fit "
                f"the field's type ({column.type})",
            ) from None
        hit = pc.fill_null(pc.is_in(column, value_set=values), False)
        keep = hit if flt.op == "in" else pc.invert(hit)
        mask = keep if mask is None else pc.and_(mask, keep)
    return mask


def _check_field(mapping: Mapping, fmap: FieldMap, t: pa.DataType, where: str) -> None:
    kind = kind_of(t)
    if kind is None:
        raise mapping.error(
            fmap.line,
            f"field {fmap.source!r} of {where} is binary ({t}); binary fields cannot be published",
        )
    if fmap.role is not None and kind not in ROLES[fmap.role]:
        raise mapping.error(
            fmap.line,
            f"field {fmap.source!r} of {where} holds {kind} values, but role {fmap.role!r} "
            f"needs {' or '.join(sorted(ROLES[fmap.role]))}",
        )


def key_strings(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    return pc.utf8_trim_whitespace(array)


_hash_pool: ThreadPoolExecutor | None = None


def _hash_fields(table: pa.Table, sources: list[str], seed_parts: tuple[str, ...], n: int) -> U64:
    """One hash per row over ``sources``; columns are hashed on a few threads (numpy and Arrow
    release the GIL on whole columns), mixed in the mapping's order."""
    global _hash_pool  # noqa: PLW0603 - one small pool per process, made on first use
    if _hash_pool is None:
        _hash_pool = ThreadPoolExecutor(
            max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="rxvault-digest"
        )
    jobs = [(table.column(s), seed_of(*seed_parts, s)) for s in sources]
    if n < 50_000 or len(jobs) < 2:
        hashes = [hash_column(column, seed) for column, seed in jobs]
    else:
        hashes = list(_hash_pool.map(lambda job: hash_column(*job), jobs))
    return combine(hashes, seed_of(*seed_parts, "row"), n)


def prepare(
    mapping: Mapping, source: SourceRead, pharmacy_name: str, *, subset: bool = False
) -> Documents:
    """Check the mapping against the data and compute every patient's digest.

    ``subset``: the tables hold only some patients' records (the incremental read); the
    check that a join matches some row is left to full reads, where it means something."""
    base = (mapping.text_digest, DOCUMENT_FORMAT, DIGEST_VERSION, pharmacy_name)
    ptable_name = mapping.patient.table
    ptable = source.tables[ptable_name].data
    where = f"table {ptable_name!r}"
    for f in mapping.patient.fields:
        _check_field(mapping, f, ptable.schema.field(f.source).type, where)
    mask = _filter_mask(mapping, ptable, mapping.patient.filters, where)
    if mask is not None:
        ptable = ptable.filter(mask)
    keys = key_strings(ptable.column(mapping.patient.key))
    if keys.null_count or pc.any(pc.equal(keys, "")).as_py():
        raise mapping.error(
            mapping.patient.key_line,
            f"{where}: a record has an empty patient key {mapping.patient.key!r}",
            hint="every published patient needs an id; fix the record or filter it out",
        )
    n = len(keys)
    if len(pc.unique(keys)) != n:
        counts = pc.value_counts(keys)
        dup = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise mapping.error(
            mapping.patient.key_line,
            f"{where}: patient key {mapping.patient.key!r} value {dup!r} appears more than once",
            hint="the patient key must identify one record; use another field or a filter",
        )
    patient_ids: list[str] = keys.to_pylist()
    published = [f.source for f in mapping.patient.fields]
    digest = mix(_hash_fields(ptable, published, (*base, "patient"), n))
    key_column = ptable.column(mapping.patient.key).combine_chunks()
    prepared: list[_Prepared] = []
    for section in mapping.sections:
        where = f"section {section.name!r} (table {section.table!r})"
        stable = source.tables[section.table].data
        # The section's rows stay where they are: a row that is filtered out, or that belongs
        # to no published patient, gets patient index -1 and is never summed, built or sorted
        # (filtering a million-row table would copy every column).
        mask = _filter_mask(mapping, stable, section.filters, where)
        skey = stable.column(section.patient_key)
        if skey.type != key_column.type:
            skey = key_strings(skey)
            pkeys: pa.Array = keys
        else:
            pkeys = key_column
        pidx = pc.index_in(skey, value_set=pkeys)
        p = np.asarray(pc.fill_null(pidx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        if mask is not None:
            p[~np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)] = -1
        belongs = p >= 0
        rows = stable.num_rows
        own = [f for f in section.fields if f.join is None]
        for f in own:
            _check_field(mapping, f, stable.schema.field(f.source).type, where)
        row_hash = _hash_fields(stable, [f.source for f in own], (*base, section.name), rows)
        joined: dict[str, tuple[pa.Table, npt.NDArray[np.int64]]] = {}
        for join in section.joins:
            jtable = source.tables[join.table].data
            jwhere = f"join {join.name!r} (table {join.table!r})"
            jfields = [f for f in section.fields if f.join == join.name]
            for f in jfields:
                _check_field(mapping, f, jtable.schema.field(f.column).type, jwhere)
            local = stable.column(join.key)
            remote = jtable.column(join.on).combine_chunks()
            if local.type != remote.type:
                local, remote = key_strings(local), key_strings(jtable.column(join.on))
            jidx = pc.index_in(local, value_set=remote)
            index = np.asarray(
                pc.fill_null(jidx, -1).to_numpy(zero_copy_only=False), dtype=np.int64
            )
            has_key = np.asarray(local.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            if not subset and np.any(has_key & belongs) and not np.any((index >= 0) & belongs):
                raise mapping.error(
                    join.line,
                    f"{jwhere}: no row of {section.table!r} finds a match ({join.key} = "
                    f"{join.table}.{join.on})",
                    hint="check key and on: they must name fields holding the same ids",
                )
            jhash = _hash_fields(
                jtable, [f.column for f in jfields], (*base, section.name, join.name), len(jtable)
            )
            missing = mix(np.full(1, seed_of(*base, join.name, "missing"), dtype=np.uint64))
            taken = np.where(index >= 0, jhash[np.where(index >= 0, index, 0)], missing[0])
            row_hash = mix(row_hash ^ taken)
            joined[join.name] = (jtable, index)
        mine = p[belongs]
        sums = np.zeros(n, dtype=np.uint64)
        salted = mix(row_hash[belongs] ^ np.uint64(seed_of(*base, section.name, "sum")))
        np.add.at(sums, mine, salted)
        counts = np.bincount(mine, minlength=n).astype(np.uint64)
        digest = mix(digest ^ mix(sums ^ mix(counts ^ np.uint64(seed_of(section.name)))))
        stable = stable.append_column(_PATIENT, pa.array(p.astype(np.int32)))
        stable = stable.append_column(_ROWHASH, pa.array(row_hash))
        prepared.append(_Prepared(section, stable, joined))
    return Documents(
        mapping,
        pharmacy_name,
        patient_ids=patient_ids,
        patients=ptable,
        sections=prepared,
        digests=digest,
    )
