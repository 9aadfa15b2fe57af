#!/usr/bin/env python3
"""Coverage-guided fuzzing of the DBF reader (``rxvault.dbf``) over a DBF + memo pair.

Engine: atheris (libFuzzer for Python; a dev dependency), with Python coverage of
``rxvault.dbf`` as its guide. Each input is one *blob* holding a table and its memo file (see
:func:`unpack`). The target opens the table strict and lenient (and with ``decode_errors=
"replace"`` and a code page override when the blob asks for one), reads every column of every
record, live and deleted, into Arrow, iterates the rows, and runs ``rxvault dbf inspect``'s
scan. Allowed outcomes: success, or a :class:`rxvault.dbf.DbfError`. Anything else is a crash:

- any other exception (IndexError, OverflowError, ValueError, MemoryError …);
- a hang (libFuzzer ``-timeout``, seconds of CPU per input);
- a memory blow-up: Arrow output larger than ``AMPLIFICATION`` times the input plus 4 MiB, or
  an RSS above ``-rss_limit_mb``.

Usage::

    .venv/bin/python tools/fuzz_dbf.py --seconds 3600          # the long run (nice it)
    .venv/bin/python tools/fuzz_dbf.py --replay FILE_OR_DIR …  # run inputs once, report
    .venv/bin/python tools/fuzz_dbf.py --seeds DIR             # write the seed inputs
    .venv/bin/python tools/fuzz_dbf.py --line-coverage DIR …   # lines of rxvault/dbf run

The fuzzing run is a supervisor: it starts a libFuzzer worker, and when the worker stops on a
crash it saves the input under ``--crashes`` and starts again, until the time is up. New
inputs go to a work directory; at the end the ones that add coverage are merged into
``--corpus`` (the corpus kept in the repository, replayed by
``tests/reliability/test_dbf_fuzz_corpus.py``) unless ``--no-merge``. It prints a summary:
executions, coverage (libFuzzer's edge count of ``rxvault.dbf``), corpus entries added,
crashes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT / "tests" / "reliability" / "dbf_fuzz_corpus"
MAX_LEN = 16384  # bytes per input: large enough for a few dozen records and memos
AMPLIFICATION = 64  # Arrow bytes allowed per input byte (a 1-byte N field is a 16-byte decimal)
SLACK = 4 * 1024 * 1024
# Code pages the blob can force onto the table: wrong ones on purpose (a multi-byte one too).
CODEPAGE_OVERRIDES = (None, "cp1252", "cp437", "cp866", "cp936", "cp1253", "utf-8", None)
MAGIC = b"RXF1"


class Amplification(Exception):
    """The reader's output is out of proportion to its input (a memory blow-up)."""


@dataclass(frozen=True)
class Case:
    """What one blob stands for."""

    dbf: bytes
    memo: bytes | None  # None: no memo file at all
    memo_ext: str  # ".fpt" or ".dbt"
    codepage: str | None
    dbc: bytes | None = None  # a database container written beside the table as db.dbc
    dct: bytes | None = None  # ... and its memo file db.dct


def _split(data: bytes) -> tuple[bytes, bytes]:
    """A u32 LE length, that many bytes (clamped to what there is), the rest."""
    if len(data) < 4:
        return data, b""
    n = min(struct.unpack_from("<I", data, 0)[0], len(data) - 4)
    return data[4 : 4 + n], data[4 + n :]


def pack(
    dbf: bytes,
    memo: bytes | None,
    *,
    memo_ext: str = ".fpt",
    codepage: int = 0,
    dbc: tuple[bytes, bytes] | None = None,
) -> bytes:
    """A blob: MAGIC, an option byte, the DBF length (u32 LE), the DBF, then the memo file.

    Option byte: bit 0 = memo file is ``.dbt`` (else ``.fpt``); bit 1 = no memo file; bits
    2..4 = index into ``CODEPAGE_OVERRIDES``; bit 5 = a DBC follows: then the memo part is
    the memo's length (u32 LE), the memo, the DBC's length, the DBC, and its ``.dct``.
    """
    opts = (1 if memo_ext == ".dbt" else 0) | (2 if memo is None else 0) | ((codepage & 7) << 2)
    rest = memo or b""
    if dbc is not None:
        opts |= 0x20
        rest = struct.pack("<I", len(rest)) + rest + struct.pack("<I", len(dbc[0])) + b"".join(dbc)
    return MAGIC + bytes([opts]) + struct.pack("<I", len(dbf)) + dbf + rest


def unpack(blob: bytes) -> Case:
    """Any byte string is a valid blob (the fuzzer mutates all of it, the framing too)."""
    body = blob[4:] if blob[:4] == MAGIC else blob
    if len(body) < 5:
        return Case(body, None, ".fpt", None)
    opts = body[0]
    dbf, memo = _split(body[1:])
    dbc = dct = None
    if opts & 0x20:
        memo, rest = _split(memo)
        dbc, dct = _split(rest)
    return Case(
        dbf,
        None if opts & 2 else memo,
        ".dbt" if opts & 1 else ".fpt",
        CODEPAGE_OVERRIDES[(opts >> 2) & 7],
        dbc,
        dct,
    )


def _output_bytes(table: Any) -> int:
    return int(table.nbytes)


def run_one(blob: bytes, workdir: Path) -> dict[str, Any]:
    """Run the target on one blob. Returns what happened; raises only on a crash."""
    import rxvault.dbf as dbf_module
    from rxvault._cli_errors import UserError
    from rxvault.dbf.cli import _inspect_one

    case = unpack(blob)
    for p in workdir.iterdir():
        p.unlink()
    table_path = workdir / "t.dbf"
    table_path.write_bytes(case.dbf)
    if case.memo is not None:
        (workdir / ("t" + case.memo_ext)).write_bytes(case.memo)
    if case.dbc is not None:
        (workdir / "db.dbc").write_bytes(case.dbc)
        (workdir / "db.dct").write_bytes(case.dct or b"")
    limit = AMPLIFICATION * len(blob) + SLACK
    outcome: dict[str, Any] = {}
    variants: list[tuple[str, dict[str, Any]]] = [
        ("strict", {"strict": True}),
        ("lenient", {"strict": False}),
        ("replace", {"strict": False, "decode_errors": "replace", "threads": 2}),
    ]
    if case.codepage is not None:
        variants.append(("codepage", {"strict": True, "codepage": case.codepage}))
    for name, kwargs in variants:
        try:
            with dbf_module.open_table(table_path, **kwargs) as t:
                out = t.read(include_deleted=True, with_recno=True)
                out.validate(full=True)  # no invalid Arrow data (a decimal past its precision …)
                size = _output_bytes(out)
                if size > limit:
                    raise Amplification(
                        f"{name}: {size} bytes of Arrow output from a {len(blob)}-byte input"
                    )
                del out
                if name == "lenient":  # Python values (dates, decimals …) once per input
                    for i, _row in enumerate(t.rows()):
                        if i > 4 * len(blob) + 1000:
                            raise Amplification(f"{name}: more rows than the input can hold")
                if name == "strict":  # small batches: the batch seams (memos, varchar …)
                    for batch in t.iter_batches(batch_size=7):
                        if batch.nbytes > limit:
                            raise Amplification(f"{name}: a batch of {batch.nbytes} bytes")
                if not t.strict:
                    for a in t.anomalies:
                        if not a.message or str(workdir) not in a.message:
                            raise AssertionError(f"anomaly without the file name: {a!r}")
                outcome[name] = "ok"
        except dbf_module.DbfError as exc:
            message = str(exc)
            if not message.startswith(str(table_path)) and str(workdir) not in message:
                raise AssertionError(f"DbfError not naming the file: {message!r}") from exc
            outcome[name] = type(exc).__name__
    try:
        _inspect_one(table_path, case.codepage)
        outcome["inspect"] = "ok"
    except UserError:
        outcome["inspect"] = "UserError"
    return outcome


# -- seeds ------------------------------------------------------------------------------------


def _descriptor(name: str, ftype: str, offset: int, length: int, decimals: int = 0) -> bytes:
    return struct.pack(
        "<11scIBBB13x", name.encode("latin-1"), ftype.encode(), offset, length, decimals, 0
    )


def _dbase_bytes(version: int, fields: list[tuple[str, str, int, int]], recs: list[bytes]) -> bytes:
    """A dBase III/IV table (no backlink), built by hand for the seeds the writer cannot make."""
    descriptors, offset = b"", 1
    for name, ftype, length, dec in fields:
        descriptors += _descriptor(name, ftype, offset, length, dec)
        offset += length
    hl = 32 + len(descriptors) + 1
    head = struct.pack("<B3BIHH20x", version, 124, 12, 4, len(recs), hl, offset)
    return head + descriptors + b"\r" + b"".join(b" " + r for r in recs) + b"\x1a"


def _dbt(memos: list[bytes], *, dbase4: bool) -> tuple[bytes, list[int]]:
    """A dBase memo file: 512-byte blocks; dBase IV blocks start with FF FF 08 00 + length."""
    blocks, data = [], bytearray(512)
    for m in memos:
        blocks.append(len(data) // 512)
        body = (b"\xff\xff\x08\x00" + struct.pack("<I", len(m) + 8) + m) if dbase4 else m
        body += b"\x1a\x1a"
        data += body.ljust(-(-len(body) // 512) * 512, b"\0")
    struct.pack_into("<I", data, 0, len(data) // 512)
    if dbase4:
        struct.pack_into("<H", data, 20, 512)
    return bytes(data), blocks


def seed_blobs() -> dict[str, bytes]:
    """Small valid tables of every kind the reader knows, as blobs (written, not copied)."""
    import datetime as dt
    from decimal import Decimal

    from rxvault.dbf import FieldSpec, write_dbc, write_table

    seeds: dict[str, bytes] = {}
    every = [
        FieldSpec("NAME", "C", 12, nullable=True),
        FieldSpec("QTY", "N", 8, 2),
        FieldSpec("RATIO", "F", 10, 3),
        FieldSpec("BORN", "D", nullable=True),
        FieldSpec("OK", "L"),
        FieldSpec("NOTES", "M", nullable=True),
        FieldSpec("ID", "I", autoincrement=True),
        FieldSpec("DBL", "B"),
        FieldSpec("PRICE", "Y"),
        FieldSpec("AT", "T"),
        FieldSpec("VC", "V", 10, nullable=True),
        FieldSpec("VB", "Q", 6),
        FieldSpec("BLOB", "W"),
        FieldSpec("GEN", "G"),
        FieldSpec("RAW", "C", 4, binary=True),
        FieldSpec("MB", "M", binary=True),
    ]
    first = {
        "NAME": "Zoë Müller",
        "QTY": Decimal("12.30"),
        "RATIO": Decimal("-1.250"),
        "BORN": dt.date(1950, 2, 28),
        "OK": True,
        "NOTES": "penicillin\r\nsulfa",
        "DBL": 2.5,
        "PRICE": Decimal("19.9900"),
        "AT": dt.datetime(2024, 2, 29, 23, 59, 59),
        "VC": "short",
        "VB": b"\x00\x01",
        "BLOB": b"\x00" * 9,
        "GEN": b"OLE",
        "RAW": b"\xff\x00ab",
        "MB": b"\x00\x1a\xff",
    }
    rows = [
        first,
        {**first, "NAME": None, "NOTES": None, "VC": None, "OK": False, "BORN": None},
        {**first, "NAME": "x" * 12, "NOTES": "ñ" * 70, "MB": b"m" * 200, "QTY": Decimal("-0.01")},
    ]
    simple = [FieldSpec("NAME", "C", 8), FieldSpec("NOTE", "M"), FieldSpec("N", "N", 3)]
    simple_rows = [{"NAME": f"p{i}", "NOTE": "memo " * i, "N": i} for i in range(6)]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for bs in (1, 33, 64, 512):
            p = d / f"every{bs}.dbf"
            write_table(p, every, rows, memo_block_size=bs, deleted=[False, True, False])
            seeds[f"vfp-every-block{bs}"] = pack(p.read_bytes(), p.with_suffix(".fpt").read_bytes())
        p = d / "simple.dbf"
        write_table(p, simple, simple_rows, codepage="cp437", deleted=[False, True] * 3)
        seeds["vfp-simple-cp437"] = pack(p.read_bytes(), p.with_suffix(".fpt").read_bytes())
        seeds["vfp-simple-no-memo-file"] = pack(p.read_bytes(), None)
        seeds["vfp-simple-cp936"] = pack(
            p.read_bytes(), p.with_suffix(".fpt").read_bytes(), codepage=4
        )
        p = d / "dbase3.dbf"
        write_table(p, simple, simple_rows, version=0x03)
        memo = next(q for q in d.iterdir() if q.stem == "dbase3" and q.suffix != ".dbf")
        seeds["dbase3-writer"] = pack(p.read_bytes(), memo.read_bytes(), memo_ext=memo.suffix)
        p = d / "plain.dbf"
        write_table(p, [FieldSpec("A", "C", 3), FieldSpec("B", "N", 5, 1)], [{"A": "x", "B": 1}])
        seeds["vfp-no-memo"] = pack(p.read_bytes(), None)
        p = d / "bound.dbf"
        write_table(
            p, [FieldSpec("long_field_name", "C", 5)], [{"long_field_name": "v"}], dbc=d / "db.dbc"
        )
        write_dbc(d / "db.dbc", {"t": (p, ["long_field_name"])})
        seeds["vfp-dbc-bound"] = pack(p.read_bytes(), None)
        seeds["vfp-dbc-bound-with-dbc"] = pack(
            p.read_bytes(), None, dbc=((d / "db.dbc").read_bytes(), (d / "db.dct").read_bytes())
        )
        p = d / "bound2.dbf"
        long_fields = [FieldSpec("patient_identifier", "I"), FieldSpec("allergy_notes", "M")]
        write_table(
            p,
            long_fields,
            [{"patient_identifier": 1, "allergy_notes": "sulfa"}],
            dbc=d / "db2.dbc",
        )
        write_dbc(d / "db2.dbc", {"t": (p, [f.name for f in long_fields])})  # run_one: t.dbf
        data = bytearray(p.read_bytes())
        hl = int.from_bytes(data[8:10], "little")
        data[hl - 263 : hl] = b"db.dbc".ljust(263, b"\0")  # the name run_one writes it under
        seeds["vfp-dbc-bound-memo-with-dbc"] = pack(
            bytes(data),
            p.with_suffix(".fpt").read_bytes(),
            dbc=((d / "db2.dbc").read_bytes(), (d / "db2.dct").read_bytes()),
        )
        seeds["dbc-container"] = pack((d / "db.dbc").read_bytes(), (d / "db.dct").read_bytes())
    fields3 = [("NAME", "C", 6, 0), ("NOTE", "M", 10, 0), ("D", "D", 8, 0), ("L", "L", 1, 0)]
    for version, dbase4 in ((0x83, False), (0x8B, True)):
        memo, blocks = _dbt([b"first memo", b"second\r\nmemo" * 50], dbase4=dbase4)
        recs = [
            b"alice " + str(blocks[0]).rjust(10).encode() + b"19991231" + b"T",
            b"bob   " + str(blocks[1]).rjust(10).encode() + b"        " + b"?",
            b"carol " + b" " * 10 + b"20000229" + b"F",
        ]
        seeds[f"dbase-{version:02x}"] = pack(
            _dbase_bytes(version, fields3, recs), memo, memo_ext=".dbt"
        )
    foxpro = _dbase_bytes(
        0xF5,
        [("C", "C", 3, 0), ("N", "N", 6, 2), ("F", "F", 6, 2)],
        [b"abc 12.30  1.50", b"   -1.00 -0.01"],
    )
    seeds["foxpro2"] = pack(foxpro, None)
    return seeds


def write_seeds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, blob in seed_blobs().items():
        p = directory / f"seed-{name}"
        p.write_bytes(blob)
        written.append(p)
    return written


# -- replay -----------------------------------------------------------------------------------


def replay(paths: list[Path]) -> dict[str, Any]:
    """Run every input once; count outcomes; raise on the first crash (naming the input)."""
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p])
    outcomes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="rxvault-fuzz-") as tmp:
        for f in files:
            try:
                result = run_one(f.read_bytes(), Path(tmp))
            except Exception as exc:
                raise RuntimeError(f"crash on {f}: {type(exc).__name__}: {exc}") from exc
            for key, value in result.items():
                outcomes[f"{key}:{value}"] = outcomes.get(f"{key}:{value}", 0) + 1
    return {"inputs": len(files), "outcomes": dict(sorted(outcomes.items()))}


#: the writer's modules (the reader never runs them)
WRITER_MODULES = frozenset(
    [
        "_dbc_writer",
        "_decimal_values",
        "_edit_state",
        "_editor",
        "_field_spec",
        "_memo_blocks",
        "_records",
        "_scalar_values",
        "_text_values",
        "_values",
        "_writer",
    ]
)


def line_coverage(paths: list[Path]) -> dict[str, Any]:
    """Lines of the reader's functions in ``rxvault/dbf`` that replaying ``paths`` executes
    (sys.settrace), per file; the writer's modules are left out."""
    import inspect
    import threading
    import types

    import rxvault.dbf
    import rxvault.dbf.cli

    package = Path(rxvault.dbf.__file__).parent
    executable: dict[str, set[int]] = {}
    for f in sorted(package.glob("*.py")):
        if f.stem in WRITER_MODULES:
            continue
        lines: set[int] = set()
        todo = [compile(f.read_text(encoding="utf-8"), str(f), "exec")]
        while todo:
            code = todo.pop()
            if code.co_flags & inspect.CO_NEWLOCALS:  # function bodies, not import-time code
                lines |= {line for _, _, line in code.co_lines() if line is not None}
            todo += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        executable[str(f)] = lines
    hit: dict[str, set[int]] = {name: set() for name in executable}

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            hit[frame.f_code.co_filename].add(frame.f_lineno)
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename in hit:
            hit[frame.f_code.co_filename].add(frame.f_lineno)
            return local
        return None

    sys.settrace(tracer)
    threading.settrace(tracer)
    try:
        summary = replay(paths)
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]
    per_file = {
        Path(name).name: f"{len(hit[name] & lines)}/{len(lines)}"
        for name, lines in executable.items()
    }
    total_hit = sum(len(hit[n] & lines) for n, lines in executable.items())
    total = sum(len(lines) for lines in executable.values())
    return {**summary, "lines": f"{total_hit}/{total}", "per_file": per_file}


# -- the libFuzzer worker ----------------------------------------------------------------------


def crash_signature(exc: BaseException) -> str:
    """Exception type and the innermost frame in rxvault (or the tool) that raised it."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "rxvault" in f.filename or "fuzz_dbf" in f.filename]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    place = f"{Path(where.filename).name}:{where.lineno}" if where else "?"
    return f"{type(exc).__name__}@{place}"


def worker(libfuzzer_args: list[str], crashes: Path | None) -> None:
    """The libFuzzer process. A crash with a new signature is saved under ``crashes`` and the
    run goes on (so one bug does not stop an hour's run); hangs and memory blow-ups stop the
    process (libFuzzer writes the input) and the supervisor starts a new one."""
    import atheris

    with atheris.instrument_imports(include=["rxvault.dbf"]):
        import rxvault.dbf
        import rxvault.dbf.cli  # noqa: F401
    workdir = Path(tempfile.mkdtemp(prefix="rxvault-fuzz-"))
    seen: set[str] = set()
    if crashes is not None:
        crashes.mkdir(parents=True, exist_ok=True)
        seen = {p.name.split("--")[0] for p in crashes.glob("*--*")}

    def target(data: bytes) -> None:
        try:
            run_one(data, workdir)
        except Exception as exc:
            if crashes is None:
                raise
            sig = crash_signature(exc)
            key = re.sub(r"[^\w.@:-]", "_", sig).replace(":", "_")
            if key not in seen:
                seen.add(key)
                (crashes / f"{key}--{digest(data)}").write_bytes(data)
                print(f"\n=== NEW CRASH {sig}: {type(exc).__name__}: {exc}", flush=True)

    script = Path(__file__).resolve()
    # libFuzzer re-runs argv[0] through the shell for -merge; make that start this worker again
    argv0 = f"{sys.executable} {script} --worker"
    atheris.Setup([argv0, *libfuzzer_args], target)
    try:
        atheris.Fuzz()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


_STAT = re.compile(r"^stat::(\w+):\s*(\d+)")
_COV = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)")


@dataclass
class Stats:
    executions: int = 0
    coverage: int = 0
    features: int = 0
    crashes: int = 0
    workers: int = 0
    failed: bool = False


def _run_worker(args: list[str], log: Path, stats: Stats, nice: int, crashes: Path) -> int:
    env = {**os.environ, "RXVAULT_FUZZ_CRASHES": str(crashes)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--", *args]
    start = log.stat().st_size if log.exists() else 0
    with log.open("a") as fh:
        fh.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(  # noqa: S603 (this script, with its own arguments)
            cmd,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,  # noqa: PLW1509
        )
        rc = proc.wait()
    last_execs = 0
    with log.open("rb") as fh:
        fh.seek(start)
        text = fh.read().decode(errors="replace")
    for line in text.splitlines():
        m = _COV.search(line)
        if m:
            last_execs = int(m.group(1))
            stats.coverage = max(stats.coverage, int(m.group(2)))
            stats.features = max(stats.features, int(m.group(3)))
        s = _STAT.match(line)
        if s and s.group(1) == "number_of_executed_units":
            last_execs = int(s.group(2))
    stats.executions += last_execs
    stats.workers += 1
    return rc


_ALONE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_CPU, (int(sys.argv[3]), int(sys.argv[3])))
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[4]) << 20, int(sys.argv[4]) << 20))
sys.path.insert(0, sys.argv[1])
import fuzz_dbf
from pathlib import Path
fuzz_dbf.replay([Path(sys.argv[2])])
"""


def _replays_alone(path: Path, timeout: int, rss_mb: int) -> bool:
    """True if ``path`` runs cleanly in a fresh process within ``timeout`` s of CPU and twice
    ``rss_mb`` of address space (numpy and Arrow reserve more than they touch)."""
    args = [str(Path(__file__).resolve().parent), str(path), str(timeout), str(2 * rss_mb)]
    proc = subprocess.run(  # noqa: S603 (this interpreter, with its own arguments)
        [sys.executable, "-c", _ALONE, *args], capture_output=True, check=False
    )
    return proc.returncode == 0


def fuzz(
    seconds: int,
    corpus: Path,
    crashes: Path,
    workdir: Path,
    *,
    merge: bool,
    extra_seeds: list[Path],
    timeout: int,
    rss_mb: int,
    nice: int,
    runs: int = 0,
    seed: int = 1,
) -> dict[str, Any]:
    crashes.mkdir(parents=True, exist_ok=True)
    corpus.mkdir(parents=True, exist_ok=True)
    work = workdir / "corpus"
    work.mkdir(parents=True, exist_ok=True)
    seeds = workdir / "seeds"
    write_seeds(seeds)
    log = workdir / "fuzz.log"
    stats = Stats()
    before = {p.name for p in corpus.iterdir()} if corpus.is_dir() else set()
    deadline = time.monotonic() + seconds
    crash_files: set[str] = set()
    while (left := int(deadline - time.monotonic())) > 5:
        # a fresh worker every 5 minutes: under atheris the worker's memory grows with the run
        # (about 60 KB per input; none without the instrumentation)
        span = min(left, 300)
        rc = _run_worker(
            [
                str(work),
                str(corpus),
                str(seeds),
                *map(str, extra_seeds),
                *([f"-runs={runs}", f"-seed={seed}"] if runs else [f"-max_total_time={span}"]),
                f"-timeout={timeout}",
                f"-rss_limit_mb={rss_mb}",
                f"-max_len={MAX_LEN}",
                f"-artifact_prefix={crashes}/",
                "-print_final_stats=1",
                "-reload=0",
            ],
            log,
            stats,
            nice,
            crashes,
        )
        # libFuzzer also saves inputs slower than 10 s as slow-unit-*: on a loaded machine
        # that is the scheduler, not a hang (a hang is -timeout's timeout-*); listed apart
        found = {p.name for p in crashes.iterdir() if not p.name.startswith("slow-unit-")}
        found -= crash_files
        crash_files |= found
        stats.crashes += len(found)
        if rc != 0 and not found:
            print(f"worker exited {rc} without an artifact; see {log}", file=sys.stderr)
            stats.failed = True
            break
        if runs:
            break
    # An out-of-memory or timeout stop is the reader's fault only if the input does it alone:
    # replay each in a fresh child under the same limits (the worker's own memory grows with
    # the run under atheris's instrumentation, and a loaded machine stalls)
    not_reproduced = sorted(
        name
        for name in crash_files
        if name.startswith(("oom-", "timeout-")) and _replays_alone(crashes / name, timeout, rss_mb)
    )
    crash_files -= set(not_reproduced)
    added: list[str] = []
    if merge:
        corpus.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 (this script, with its own arguments)
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                "--",
                "-merge=1",
                f"-max_len={MAX_LEN}",
                f"-timeout={timeout}",
                str(corpus),
                str(work),
            ],
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            check=False,
        )
        added = sorted({p.name for p in corpus.iterdir()} - before)
    return {
        "seconds": seconds,
        "executions": stats.executions,
        "coverage_edges": stats.coverage,
        "features": stats.features,
        "worker_runs": stats.workers,
        "work_corpus": len(list(work.iterdir())),
        "corpus_added": len(added),
        "corpus_size_bytes": sum(p.stat().st_size for p in corpus.iterdir())
        if corpus.is_dir()
        else 0,
        "crashes": sorted(crash_files),
        "slow_units": sorted(p.name for p in crashes.glob("slow-unit-*")),
        "oom_or_timeout_not_reproduced": not_reproduced,
        "worker_failed": stats.failed,
        "crash_dir": str(crashes),
        "log": str(log),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        rest = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        env = os.environ.get("RXVAULT_FUZZ_CRASHES")
        worker(rest, Path(env) if env else None)
        return 0
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--seconds", type=int, default=int(os.environ.get("RXVAULT_FUZZ_SECONDS", "60"))
    )
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--crashes", type=Path, default=None)
    ap.add_argument(
        "--workdir", type=Path, default=None, help="kept after the run (default: temporary)"
    )
    ap.add_argument(
        "--seed-dir", type=Path, action="append", default=[], help="extra seed inputs (blobs)"
    )
    ap.add_argument("--no-merge", action="store_true", help="do not add new inputs to --corpus")
    ap.add_argument("--timeout", type=int, default=30, help="seconds per input before it is a hang")
    ap.add_argument("--rss-mb", type=int, default=2048)
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--runs", type=int, default=0, help="a fixed number of inputs (not --seconds)")
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer's seed, with --runs")
    ap.add_argument("--replay", type=Path, nargs="+", help="run these inputs once and report")
    ap.add_argument("--seeds", type=Path, help="write the seed inputs into this directory")
    ap.add_argument(
        "--line-coverage", type=Path, nargs="+", help="lines of rxvault/dbf these inputs run"
    )
    ns = ap.parse_args(argv)
    if ns.seeds:
        for p in write_seeds(ns.seeds):
            print(p)
        return 0
    if ns.line_coverage:
        print(json.dumps(line_coverage(ns.line_coverage), indent=2))
        return 0
    if ns.replay:
        print(json.dumps(replay(ns.replay), indent=2))
        return 0
    with contextlib.ExitStack() as stack:
        workdir = ns.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="rxvault-fuzz-"))
        )
        crashes = ns.crashes or workdir / "crashes"
        result = fuzz(
            ns.seconds,
            ns.corpus,
            crashes,
            workdir,
            merge=not ns.no_merge,
            extra_seeds=ns.seed_dir,
            timeout=ns.timeout,
            rss_mb=ns.rss_mb,
            nice=ns.nice,
            runs=ns.runs,
            seed=ns.seed,
        )
        if result["crashes"] and ns.workdir is None:
            keep = Path(tempfile.mkdtemp(prefix="rxvault-fuzz-crashes-"))
            for name in result["crashes"]:
                shutil.copy(crashes / name, keep / name)
            result["crash_dir"] = str(keep)
        print(json.dumps(result, indent=2))
        return 1 if result["crashes"] or result["worker_failed"] else 0


def digest(blob: bytes) -> str:
    return hashlib.sha1(blob, usedforsecurity=False).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
