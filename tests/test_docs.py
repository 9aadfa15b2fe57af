"""The documentation is complete and true to the code.

The rule, checked here:

- docs/cli.md is the command reference, generated from the click command tree by
  tools/gen_cli_docs.py; it must be current (regenerate it after changing a command or option).
- Every command (``rxvault agent sync``, ``rxvault server tokens rotate`` …) is named, in full,
  and every option's long name (``--allow-deletions``) appears, in the guides written by hand:
  README.md and docs/*.md other than the generated docs/cli.md.
- Every key of the server's settings (``[server]``, ``[limits]``) and of the agent's ``[sync]``
  table is named in docs/operations.md.
- Every exit code in rxvault._cli_errors has a row in the exit code table of docs/operations.md,
  and the table has no other codes.
- The README's two commands are ``make demo`` and ``make test``; ``make test`` is what .ci/run
  runs, and the Makefile's ``demo`` target ends by running ``rxvault demo``.
- Relative links in README.md, SECURITY.md, CHANGELOG.md and docs/**/*.md point at files that
  exist, and ``#anchors`` at headings that exist; no code block is left open.

Each rule is a function below, also run on a bad example to show that it can fail.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import click
import pytest

from rxvault import _cli_errors
from rxvault.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _gen_cli_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "tools/gen_cli_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _guides() -> dict[Path, str]:
    """The documentation written by hand."""
    paths = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    return {p: p.read_text(encoding="utf-8") for p in paths if p.name != "cli.md"}


def _markdown_files() -> list[Path]:
    paths = [ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "CHANGELOG.md"]
    return paths + sorted(DOCS.rglob("*.md"))


# --- the rules -----------------------------------------------------------------------------


def commands_and_options(root: click.Command) -> list[tuple[str, list[str]]]:
    """(``rxvault agent sync``, [``--dry-run``, …]) for every command of the tree."""
    gen = _gen_cli_docs()
    found = []
    for path, command, _ in gen.walk(root, ("rxvault",)):
        options = [
            name
            for param in command.params
            if isinstance(param, click.Option)
            for name in param.opts + param.secondary_opts
            if name.startswith("--") and name not in {"--help"}
        ]
        found.append((" ".join(path), options))
    return found


def undocumented(root: click.Command, guides: Iterable[str]) -> list[str]:
    text = "\n".join(guides)
    missing = []
    for path, options in commands_and_options(root):
        if path != "rxvault" and not re.search(re.escape(path) + r"(?![\w-])", text):
            missing.append(f"command `{path}`")
        for option in options:
            if not re.search(re.escape(option) + r"(?![\w-])", text):
                missing.append(f"option `{option}` of `{path}`")
    return missing


def exit_code_table(operations: str) -> dict[int, str]:
    """The rows of the table under ``### Exit codes``: code -> meaning."""
    match = re.search(r"^#+ Exit codes\n(.*?)(?=^#)", operations + "\n#", re.M | re.S)
    assert match, "docs/operations.md has no 'Exit codes' section"
    rows = {}
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows[int(cells[0])] = cells[1]
    return rows


def exit_codes_in_code() -> dict[str, int]:
    return {
        name: value
        for name, value in vars(_cli_errors).items()
        if name.startswith("EXIT_") and isinstance(value, int)
    }


def readme_commands(readme: str) -> list[str]:
    """The commands of the README's first shell block (comments removed)."""
    match = re.search(r"```(?:sh|bash|shell)\n(.*?)```", readme, re.S)
    assert match, "README.md has no shell block"
    return [line.split("#")[0].strip() for line in match.group(1).splitlines() if line.strip()]


def ci_commands(script: str) -> list[str]:
    return [
        line.strip()
        for line in script.splitlines()
        if line.strip()
        and not line.lstrip().startswith("#")
        and not line.startswith(("set ", "cd "))
    ]


def make_recipe(makefile: str, target: str) -> list[str]:
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)*)", makefile, re.M)
    assert match, f"the Makefile has no target {target!r}"
    return [line.strip() for line in match.group(1).splitlines()]


def settings_names() -> set[str]:
    """Every key of the server's settings file and of the agent's ``[sync]`` table."""
    from rxvault.agent._config import SyncSettings
    from rxvault.server._settings import Limits, Settings

    server = {f.name for f in dataclasses.fields(Settings)} - {"pepper", "limits"}
    return (
        server
        | {"pepper_file"}
        | {f.name for f in dataclasses.fields(Limits)}
        | {f.name for f in dataclasses.fields(SyncSettings)}
    )


def undocumented_settings(names: Iterable[str], text: str) -> list[str]:
    return sorted(n for n in names if f"`{n}`" not in text and f"\n{n} = " not in text)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*", "", heading.strip()).lower()
    text = "".join(c for c in text if c in "-_ " or unicodedata.category(c)[0] in {"L", "N"})
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        match = re.match(r"#{1,6} (.*)", line)
        if match:
            base = github_anchor(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            result.add(base if n == 0 else f"{base}-{n}")
    return result


LINK = re.compile(
    r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)|(?:src|href)=\"([^\"]+)\""
)


def broken_links(path: Path, text: str) -> list[str]:
    problems = []
    without_code = re.sub(r"```.*?```", "", text, flags=re.S)
    without_code = re.sub(r"`[^`\n]*`", "", without_code)
    for match in LINK.finditer(without_code):
        target = match.group(1) or match.group(2) or match.group(3)
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{path.name}: {target}: no such file")
            continue
        if (
            fragment
            and linked.suffix == ".md"
            and fragment not in anchors(linked.read_text(encoding="utf-8"))
        ):
            problems.append(f"{path.name}: {target}: no such heading")
    return problems


# --- the checks ----------------------------------------------------------------------------


def test_cli_reference_is_current() -> None:
    gen = _gen_cli_docs()
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == gen.render(), (
        "docs/cli.md is out of date: run `.venv/bin/python tools/gen_cli_docs.py`"
    )


def test_cli_reference_lists_every_command() -> None:
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    for path, _ in commands_and_options(main):
        assert f"\n## {path}\n" in reference


def test_every_command_and_option_is_in_the_guides() -> None:
    assert undocumented(main, _guides().values()) == []


def test_every_exit_code_is_documented() -> None:
    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    assert undocumented_settings(["hsts_max_age", "retries"], "`hsts_max_age`\nretries = 5") == []
    assert undocumented_settings(["hsts_max_age", "retries"], "hsts_max_age, retries") == [
        "hsts_max_age",
        "retries",
    ]

    table = exit_code_table(operations)
    codes = exit_codes_in_code()
    assert set(table) == set(codes.values()), (table, codes)
    assert all(table.values())


def test_every_setting_is_documented() -> None:
    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    assert undocumented_settings(settings_names(), operations) == []


def test_environment_overrides_the_settings_file_as_documented(tmp_path: Path) -> None:
    """The guide: each key of the file "can be overridden by an environment variable".

    Regression: a key present in both (``server init`` writes ``database_url``) was refused as
    "unknown setting", so ``RXVAULT_DATABASE_URL`` could not keep a password out of the file.
    """
    from rxvault.server._settings import load_settings, new_pepper_text

    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    assert "`RXVAULT_DATABASE_URL`" in operations
    pepper = tmp_path / "pepper.key"
    pepper.write_text(new_pepper_text() + "\n", encoding="ascii")
    pepper.chmod(0o600)
    config = tmp_path / "rxvault-server.toml"
    config.write_text(
        '[server]\ndatabase_url = "sqlite:///rxvault.db"\npepper_file = "pepper.key"\n'
        "frame_ancestors = \"'none'\"\nhsts_max_age = 10\ndemo = false\n",
        encoding="utf-8",
    )
    settings = load_settings(
        config,
        environ={
            "RXVAULT_DATABASE_URL": "postgresql+psycopg://rxvault:secret@db/rxvault",
            "RXVAULT_FRAME_ANCESTORS": "https://www.example-pharmacy.com",
            "RXVAULT_HSTS_MAX_AGE": "20",
            "RXVAULT_DEMO": "true",
        },
    )
    assert settings.database_url == "postgresql+psycopg://rxvault:secret@db/rxvault"
    assert settings.frame_ancestors == "https://www.example-pharmacy.com"
    assert settings.hsts_max_age == 20
    assert settings.demo is True
    assert load_settings(config, environ={}).hsts_max_age == 10


def test_readme_commands_are_what_ci_and_the_demo_run() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_commands(readme) == ["make demo", "make test"]
    assert ci_commands((ROOT / ".ci/run").read_text(encoding="utf-8")) == ["make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert make_recipe(makefile, "demo")[-1] == "$(BIN)/rxvault demo"
    assert "rxvault demo" in readme


def test_readme_first_screen() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "make demo" in first_screen
    assert "make test" in first_screen
    if (DOCS / "img/portal.png").exists():
        assert 'src="docs/img/portal.png"' in first_screen
    for target in (
        "docs/operations.md",
        "docs/architecture.md",
        "docs/spec/",
        "docs/spec/threat-model.md",
        "bench/README.md",
        "SECURITY.md",
        "CHANGELOG.md",
    ):
        assert f"]({target})" in readme, target


def unbalanced_fences(text: str) -> bool:
    """A code block left open swallows the rest of the page."""
    return sum(1 for line in text.splitlines() if line.lstrip().startswith("```")) % 2 == 1


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    assert path.exists()
    text = path.read_text(encoding="utf-8")
    assert not unbalanced_fences(text)
    assert broken_links(path, text) == []


# --- each rule can fail --------------------------------------------------------------------


def test_the_rules_catch_mistakes(tmp_path: Path) -> None:
    @click.group()
    def root() -> None:
        pass

    @root.command(name="frobnicate")
    @click.option("--with-care", is_flag=True)
    def frobnicate(with_care: bool) -> None:
        pass

    assert undocumented(root, ["rxvault frobnicate --with-care"]) == []
    assert undocumented(root, ["rxvault frobnicate"]) == [
        "option `--with-care` of `rxvault frobnicate`"
    ]
    assert undocumented(root, ["rxvault frobnicated --with-care"]) == [
        "command `rxvault frobnicate`"
    ]

    assert undocumented_settings(["hsts_max_age", "retries"], "`hsts_max_age`\nretries = 5") == []
    assert undocumented_settings(["hsts_max_age", "retries"], "hsts_max_age, retries") == [
        "hsts_max_age",
        "retries",
    ]

    table = exit_code_table("## Exit codes\n\n| code | meaning |\n|---|---|\n| 0 | ok |\n\n## x\n")
    assert table == {0: "ok"}
    assert set(table) != set(exit_codes_in_code().values())

    assert readme_commands("```sh\nmake demo   # see it\nmake check\n```") == [
        "make demo",
        "make check",
    ]
    assert ci_commands("#!/bin/sh\nset -e\ncd x\nmake unit\n") == ["make unit"]
    assert make_recipe("demo: setup ## x\n\tmake web\n\t$(BIN)/rxvault demo tables\n", "demo") == [
        "make web",
        "$(BIN)/rxvault demo tables",
    ]

    assert unbalanced_fences("# x\n```sh\nmake demo\n```\n\n   ```toml\nformat = 1\n")
    assert not unbalanced_fences("# x\n```sh\nmake demo\n```\n")

    doc = tmp_path / "doc.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## Step `two`\n", encoding="utf-8")
    text = (
        "# Title\n[a](other.md) [b](other.md#step-two) [c](#title) [d](https://x.org/missing)\n"
        "[e](missing.md) [f](other.md#nowhere) ![g](img/none.png) `[h](not-a-link.md)`\n"
        '<a href="other.md"><img src="img/gone.png" width="9"></a>\n'
    )
    doc.write_text(text, encoding="utf-8")
    assert broken_links(doc, text) == [
        "doc.md: missing.md: no such file",
        "doc.md: other.md#nowhere: no such heading",
        "doc.md: img/none.png: no such file",
        "doc.md: img/gone.png: no such file",
    ]


def test_stale_reference_is_detected(tmp_path: Path) -> None:
    gen = _gen_cli_docs()
    text = gen.render()
    assert text.replace("--dry-run", "--dry-runs") != text
