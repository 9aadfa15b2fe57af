"""Run the benchmarks and rewrite ``bench/README.md``: one section per area, and a header with
the command, the versions and the machine.

``python bench/run.py`` (or ``make bench``) runs every ``bench/bench_*.py`` with its defaults;
``python bench/run.py --only server`` (repeatable: ``--only read --only portal``) runs only
those areas and keeps the other sections of the README as they are, with when and at which
revision they were measured. Other arguments are passed to every script that runs (e.g.
``python bench/run.py --only sync --patients 20000``).

Each script accepts ``--markdown FILE`` and writes its section there (a ``## `` heading, its
tables, each row with its ratio against the alternative measured in the same run). In the
README every section sits between ``<!-- bench:AREA … -->`` and ``<!-- /bench:AREA -->``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"

#: area -> (script, what it measures), in the README's order.
AREAS: dict[str, tuple[str, str]] = {
    "read": ("bench_read.py", "reading the VFP tables"),
    "sync": ("bench_sync.py", "the agent's full sync and daily sync"),
    "server": ("bench_server.py", "server ingest, block fetch load, login"),
    "statement": ("bench_statement.py", "sync statements: the tree, the check, fetches"),
    "portal": ("bench_portal.py", "the portal in Chromium"),
}
LIBRARIES = [
    "cryptography",
    "numpy",
    "pyarrow",
    "SQLAlchemy",
    "alembic",
    "psycopg",
    "PyMySQL",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "dbfread",
    "playwright",
]
START = re.compile(r"<!-- bench:(\w+)(.*?)-->")

INTRO = """# Benchmarks

Performance is measured here, against an alternative measured in the same run, never in timed
unit tests. Reproduce every number below with:

```sh
make bench                                     # = .venv/bin/python bench/run.py: every area
.venv/bin/python bench/run.py --only server    # one area (read, sync, server, statement,
                                               # portal); the others are kept as they are
```

A single benchmark: `.venv/bin/python bench/bench_read.py --patients 100000 --repeat 3`.
Each benchmark's code also runs on a tiny input in `make test` (e.g.
`tests/dbf/test_bench_smoke.py`), so it does not rot; the numbers come only from here.
"""


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "bench"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (with uncommitted changes)" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def _database_versions() -> str:
    """The database servers the server benchmark uses (a short connect; absent ones noted)."""
    try:
        import sqlalchemy as sa
    except ImportError:
        return ""
    urls = {
        "PostgreSQL": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "MariaDB": "mysql+pymysql://root@127.0.0.1:3306/test",
    }
    out = [f"SQLite {__import__('sqlite3').sqlite_version}"]
    for name, url in urls.items():
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                version = conn.exec_driver_sql("SELECT version()").scalar()
            text = str(version).split(" on ")[0].split(",")[0]
            out.append(text if text.lower().startswith(name.lower()) else f"{name} {text}")
        except Exception:
            out.append(f"{name} not reachable")
        finally:
            engine.dispose()
    return ", ".join(out)


def versions() -> str:
    libs = []
    for name in LIBRARIES:
        try:
            libs.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(libs)


def parse_sections(text: str) -> dict[str, tuple[str, str]]:
    """area -> (marker attributes, section text) from a README, with or without markers."""
    sections: dict[str, tuple[str, str]] = {}
    if START.search(text):
        for match in START.finditer(text):
            area = match.group(1)
            end = text.find(f"<!-- /bench:{area} -->", match.end())
            if end < 0:
                continue
            sections[area] = (match.group(2).strip(), text[match.end() : end].strip("\n"))
        return sections
    # A README from before the markers: sections are "## " headings, named by their script.
    chunks = re.split(r"(?m)^(?=## )", text)
    for chunk in chunks[1:]:
        found = re.search(r"bench_(\w+)\.py", chunk)
        if found and found.group(1) in AREAS:
            when = re.search(r"measured (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", chunk)
            attrs = f'measured="{when.group(1)}"' if when else ""
            sections[found.group(1)] = (attrs, chunk.strip())
    return sections


def attribute(attrs: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', attrs)
    return found.group(1) if found else "-"


def render(
    sections: dict[str, tuple[str, str]], argv: list[str], load: tuple[str, str], rev: str
) -> str:
    lines = [INTRO, "## Command, versions and machine", ""]
    lines += [
        "| area | what | measured (UTC) | rxvault revision | command |",
        "|---|---|---|---|---|",
    ]
    for area, (script, what) in AREAS.items():
        attrs = sections.get(area, ("", ""))[0]
        lines.append(
            f"| {area} | {what} (`bench/{script}`) | {attribute(attrs, 'measured')} | "
            f"{attribute(attrs, 'rev')} | `{attribute(attrs, 'command')}` |"
        )
    lines += [
        "",
        f"Last run: `{' '.join(['.venv/bin/python', 'bench/run.py', *argv])}`, rxvault "
        f"{rev}, Python {platform.python_version()} ({platform.system()} "
        f"{platform.release()}).",
        "",
        f"Libraries: {versions()}.",
        "",
        f"Databases: {_database_versions()}.",
        "",
        f"Machine: {_cpu_model()}, {os.cpu_count()} logical CPUs, {_ram()} RAM; load average "
        f"(1 / 5 / 15 min) {load[0]} at the start of the last run, {load[1]} at its end. The "
        "machine is shared with other work: wall times vary with it, ratios much less.",
        "",
    ]
    for area in AREAS:
        if area in sections:
            attrs, body = sections[area]
            opening = f"<!-- bench:{area} {attrs}".rstrip() + " -->"
            lines += [opening, body, f"<!-- /bench:{area} -->", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(AREAS), default=[])
    args, rest = parser.parse_known_args(argv)
    chosen = args.only or list(AREAS)
    sections = parse_sections(README.read_text(encoding="utf-8")) if README.exists() else {}
    load_start = _load()
    rev = _git_revision()
    for area in chosen:
        script = HERE / AREAS[area][0]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "section.md"
            command = [sys.executable, str(script), "--markdown", str(out), *rest]
            print(f"running {script.name} …", file=sys.stderr, flush=True)
            subprocess.run(command, check=True)
            shown = shlex.join([".venv/bin/python", f"bench/{script.name}", *rest])
            measured = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
            attrs = f'measured="{measured}" rev="{rev}" command="{shown}"'
            sections[area] = (attrs, out.read_text(encoding="utf-8").strip("\n"))
        # Written after every area, so a failure later keeps what was measured.
        README.write_text(render(sections, argv, (load_start, _load()), rev), encoding="utf-8")
    print(f"wrote {README}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
