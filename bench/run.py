"""Run every ``bench/bench_*.py`` and rewrite ``bench/README.md`` with their reports.

Each benchmark script accepts ``--markdown FILE`` and writes its section of the README there.
``python bench/run.py`` (or ``make bench``) runs them all with their defaults; extra arguments
are passed to every script (e.g. ``python bench/run.py --patients 20000``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

HEADER = """# Benchmarks

Performance is measured here, against the peers, never in timed unit tests. Reproduce every
number below with:

```sh
make bench   # = .venv/bin/python bench/run.py: every bench/bench_*.py, rewrites this file
```

A single benchmark: `.venv/bin/python bench/bench_read.py --patients 100000 --repeat 3`.
Each benchmark's code also runs on a tiny input in `make test` (e.g.
`tests/dbf/test_bench_smoke.py`), so it does not rot; the numbers come only from `make bench`.

"""


def main(argv: list[str]) -> int:
    sections = []
    for script in sorted(HERE.glob("bench_*.py")):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "section.md"
            print(f"running {script.name} …", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, str(script), "--markdown", str(out), *argv], check=True)
            sections.append(out.read_text(encoding="utf-8"))
    (HERE / "README.md").write_text(HEADER + "\n".join(sections), encoding="utf-8")
    print(f"wrote {HERE / 'README.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
