"""Packaging: the wheel and sdist carry the built portal, and a clean environment runs them.

Builds an sdist and, from that sdist, a wheel (as ``python -m build`` and ``uv build`` do), checks
what each contains, then installs the wheel into fresh virtual environments with the extras
``[server,agent]``, ``[agent]`` alone and ``[server]`` alone, at the versions pinned in
``uv.lock`` (exported as constraints), and runs the installed ``rxvault``. Needs the built portal
(``make web``) and the package index (or uv's cache).

Also checks, from ``uv.lock`` alone, that every dependency of the agent has a wheel for Windows
(CPython 3.11 and 3.12, x86-64), so installing the agent on the pharmacy's PC needs no compiler.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rxvault import __version__

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "bin" / "uv"
WHEEL_NAME = f"rxvault-{__version__}-py3-none-any.whl"
SDIST_NAME = f"rxvault-{__version__}.tar.gz"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "RXVAULT_"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    return env


def _run(
    *args: str | Path, cwd: Path = ROOT, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_env() | (env or {}),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sdist, then a wheel built from that sdist (not from the working tree)."""
    assert UV.exists(), f"{UV} is missing: run `make setup`"
    out = tmp_path_factory.mktemp("dist")
    _run(UV, "build", "--sdist", "--out-dir", out)
    _run(UV, "build", "--wheel", "--out-dir", out, out / SDIST_NAME)
    assert (out / WHEEL_NAME).is_file()
    return out


@pytest.fixture(scope="module")
def constraints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The versions uv.lock pins for the extras (no dev or bench groups, not rxvault itself)."""
    path = tmp_path_factory.mktemp("constraints") / "constraints.txt"
    result = _run(
        UV,
        "export",
        "--frozen",
        "--no-hashes",
        "--all-extras",
        "--no-default-groups",
        "--no-emit-project",
        "--quiet",
    )
    path.write_text(result.stdout, encoding="utf-8")
    assert "fastapi==" in result.stdout
    assert "httpx==" in result.stdout
    return path


def _venv(dist: Path, constraints: Path, where: Path, extras: str) -> Path:
    """A fresh virtual environment with the wheel installed; returns its ``rxvault`` program."""
    _run(UV, "venv", "--quiet", "--python", sys.executable, where)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run(
        UV,
        "pip",
        "install",
        "--quiet",
        "--python",
        python,
        "--constraint",
        constraints,
        f"{dist / WHEEL_NAME}[{extras}]",
    )
    program = python.parent / ("rxvault.exe" if os.name == "nt" else "rxvault")
    assert program.exists()
    return program


def _wheel_names(dist: Path) -> list[str]:
    with zipfile.ZipFile(dist / WHEEL_NAME) as wheel:
        return wheel.namelist()


def _portal_assets(index_html: str) -> list[str]:
    """The /assets/… files the portal's page loads."""
    assets = []
    for part in index_html.split('"'):
        if part.startswith("/assets/"):
            assets.append(part.removeprefix("/"))
    return assets


def test_wheel_contains_the_portal_migrations_and_demo_mapping(dist: Path) -> None:
    names = _wheel_names(dist)
    assert "rxvault/web/index.html" in names
    with zipfile.ZipFile(dist / WHEEL_NAME) as wheel:
        index = wheel.read("rxvault/web/index.html").decode("utf-8")
    assets = _portal_assets(index)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert f"rxvault/web/{asset}" in names, f"index.html loads {asset}, not in the wheel"
    assert any(n.startswith("rxvault/web/assets/argon2-worker") for n in names)
    assert "rxvault/server/migrations/env.py" in names
    assert any(n.startswith("rxvault/server/migrations/versions/0001") for n in names)
    assert "rxvault/agent/mappings/demo.toml" in names
    assert "rxvault/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "no license file"
    for name in names:
        top = name.split("/")[0]
        assert top in {"rxvault", f"rxvault-{__version__}.dist-info"}, name
        assert "/tests/" not in name, name
        assert "__pycache__" not in name, name


def test_wheel_metadata_declares_the_extras(dist: Path) -> None:
    with zipfile.ZipFile(dist / WHEEL_NAME) as wheel:
        metadata = wheel.read(f"rxvault-{__version__}.dist-info/METADATA").decode("utf-8")
        entry_points = wheel.read(f"rxvault-{__version__}.dist-info/entry_points.txt").decode()
    assert "Provides-Extra: server" in metadata
    assert "Provides-Extra: agent" in metadata
    assert "rxvault = rxvault.cli:main" in entry_points


def test_sdist_contains_the_built_portal_and_no_development_files(dist: Path) -> None:
    with tarfile.open(dist / SDIST_NAME) as sdist:
        names = [n.split("/", 1)[1] for n in sdist.getnames() if "/" in n]
    assert "src/rxvault/web/index.html" in names
    assert any(n.startswith("src/rxvault/web/assets/app-") and n.endswith(".js") for n in names)
    assert "web/package-lock.json" in names  # the portal can be rebuilt from the sdist
    assert "hatch_build.py" in names
    assert "pyproject.toml" in names
    assert "LICENSE" in names
    for name in names:
        assert not name.startswith(("tests/", ".venv/", ".tools/", "bench/", ".demo/")), name
        assert "node_modules" not in name, name


def test_build_refuses_without_the_built_portal(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT / "src",
        tree / "src",
        ignore=lambda d, names: (
            [n for n in names if n in {"__pycache__"}]
            + (["web"] if Path(d).name == "rxvault" else [])
        ),
    )
    for name in ("pyproject.toml", "hatch_build.py", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    result = _run(UV, "build", "--wheel", "--out-dir", tmp_path / "out", cwd=tree, check=False)
    assert result.returncode != 0
    assert "run `make web`" in result.stderr + result.stdout
    assert not list((tmp_path / "out").glob("*.whl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _get(url: str, deadline: float) -> bytes:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_clean_venv_with_both_extras_runs_the_demo_and_serves_the_portal(
    dist: Path, constraints: Path, tmp_path: Path, served: list[subprocess.Popen[str]]
) -> None:
    rxvault = _venv(dist, constraints, tmp_path / "venv", "server,agent")
    version = _run(rxvault, "--version")
    assert version.stdout.strip() == f"rxvault, version {__version__}"

    demo_dir = tmp_path / "demo"
    demo = _run(
        rxvault,
        "demo",
        "up",
        "--no-serve",
        "--dir",
        demo_dir,
        "--port",
        str(_free_port()),
        cwd=tmp_path,
    )
    assert "Ready in" in demo.stdout
    assert "log in as" in demo.stdout
    assert any((demo_dir / "pharmacy").glob("*.dbf"))
    assert (demo_dir / "letters.pdf").read_bytes().startswith(b"%PDF")

    port = _free_port()  # serve the demo's server (its settings, pepper and SQLite database)
    served.append(
        subprocess.Popen(
            [
                str(rxvault),
                "serve",
                "--config",
                str(demo_dir / "server" / "rxvault-server.toml"),
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    )
    deadline = time.monotonic() + 90  # a loaded machine starts uvicorn slowly
    index = _get(f"http://127.0.0.1:{port}/", deadline).decode("utf-8")
    assert "<title>Pharmacy records</title>" in index
    assets = _portal_assets(index)
    assert assets
    for asset in assets:
        assert _get(f"http://127.0.0.1:{port}/{asset}", deadline)

    # The demo patient's records, fetched, verified and decrypted by the installed client.
    login = next(line for line in demo.stdout.splitlines() if "log in as" in line)
    username, password = login.split("log in as", 1)[1].strip().split(" / ")
    records = tmp_path / "records.json"
    _run(
        rxvault,
        "patient",
        "fetch",
        "--server",
        f"http://127.0.0.1:{port}",
        "--username",
        username,
        "--output",
        records,
        "--state-file",
        tmp_path / "seen.json",
        cwd=tmp_path,
        env={"RXVAULT_PASSWORD": password},
    )
    assert '"rxvault.document/1"' in records.read_text(encoding="utf-8")


def test_agent_extra_alone_runs_the_agent_and_names_the_missing_server_extra(
    dist: Path, constraints: Path, tmp_path: Path
) -> None:
    from rxvault.demo import generate

    rxvault = _venv(dist, constraints, tmp_path / "venv", "agent")
    source = tmp_path / "pharmacy"
    generate(source, patients=5)
    home = tmp_path / "agent-home"
    _run(
        rxvault,
        "agent",
        "--home",
        home,
        "init",
        "--pharmacy-name",
        "Test Pharmacy",
        "--server",
        "https://portal.example.org",
        "--source",
        source,
        "--no-register",
    )
    inspect = _run(rxvault, "agent", "--home", home, "inspect")
    assert "patient.dbf" in inspect.stdout.lower()
    previews = [
        _run(rxvault, "agent", "--home", home, "preview", str(i), check=False) for i in (1, 2, 3)
    ]  # a demo patient may be inactive (filtered out by the mapping)
    assert any('"format": "rxvault.document/1"' in p.stdout for p in previews), previews

    for command in ("server", "serve"):
        refused = _run(rxvault, command, "--help", check=False)
        assert refused.returncode == 2
        assert 'pip install "rxvault[server]"' in refused.stderr
        assert "Traceback" not in refused.stderr

    # `demo up` imports the server's packages only when it runs: a clear error all the same.
    refused = _run(rxvault, "demo", "up", "--no-serve", "--dir", tmp_path / "demo", check=False)
    assert refused.returncode == 2
    assert 'pip install "rxvault[server,agent]"' in refused.stderr
    assert "Traceback" not in refused.stderr


def test_server_extra_alone_runs_the_server_and_names_the_missing_agent_extra(
    dist: Path, constraints: Path, tmp_path: Path
) -> None:
    rxvault = _venv(dist, constraints, tmp_path / "venv", "server")
    server_dir = tmp_path / "server"
    _run(rxvault, "server", "init", "--dir", server_dir, cwd=tmp_path)
    config = str(server_dir / "rxvault-server.toml")
    created = _run(
        rxvault, "server", "pharmacies", "create", "main", "--name", "Main", "--config", config
    )
    assert "API token" in created.stdout
    assert "--proxy-headers" in _run(rxvault, "serve", "--help").stdout

    for command in ("agent", "patient"):
        refused = _run(rxvault, command, "--help", check=False)
        assert refused.returncode == 2
        assert 'pip install "rxvault[agent]"' in refused.stderr
        assert "Traceback" not in refused.stderr


def _wheel_tags(filename: str) -> tuple[str, str, str]:
    python, abi, platform = filename.removesuffix(".whl").split("-")[-3:]
    return python, abi, platform


def _fits_windows(filename: str, cpython: int) -> bool:
    """A wheel that installs on 64-bit Windows, CPython 3.<cpython>, without building."""
    python, abi, platform = _wheel_tags(filename)
    if not ({"any", "win_amd64"} & set(platform.split("."))):
        return False
    tags = python.split(".")
    if any(t in {"py3", "py2"} for t in tags):
        return True
    if f"cp3{cpython}" in tags:
        return True
    return abi == "abi3" and any(t.startswith("cp3") and int(t[3:]) <= cpython for t in tags)


def test_every_agent_dependency_has_a_windows_wheel_in_the_lock() -> None:
    """docs/operations.md promises an agent install on Windows that needs no compiler."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    packages = {(p["name"], p["version"]): p for p in lock["package"]}
    pinned = _run(
        UV,
        "export",
        "--frozen",
        "--no-hashes",
        "--extra",
        "agent",
        "--no-default-groups",
        "--no-emit-project",
        "--quiet",
    ).stdout
    checked = []
    for line in pinned.splitlines():
        if not line or line.startswith(("#", " ")):
            continue
        requirement, _, marker = line.partition(";")
        name, version = requirement.strip().split("==")
        wheels = [w["url"].rsplit("/", 1)[1] for w in packages[(name, version)].get("wheels", [])]
        for cpython in (11, 12):
            if "python_full_version < '3.12'" in marker and cpython >= 12:
                continue
            if "python_full_version >= '3.12'" in marker and cpython < 12:
                continue
            assert any(_fits_windows(w, cpython) for w in wheels), (
                f"{name} {version} has no wheel for Windows, CPython 3.{cpython}"
            )
        checked.append(name)
    assert {"numpy", "pyarrow", "cryptography", "httpx", "fpdf2", "segno"} <= set(checked)


def test_windows_wheel_rule_can_fail() -> None:
    assert _fits_windows("numpy-2.4.6-cp311-cp311-win_amd64.whl", 11)
    assert not _fits_windows("numpy-2.4.6-cp311-cp311-win_amd64.whl", 12)
    assert not _fits_windows("numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl", 12)
    assert _fits_windows("cryptography-50.0.2-cp311-abi3-win_amd64.whl", 12)
    assert _fits_windows("click-8.5.1-py3-none-any.whl", 12)


def test_a_missing_extra_is_named_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: the stand-in for a command whose module cannot be imported, and a command
    that imports a missing package only when it runs."""
    from click.testing import CliRunner

    from rxvault import cli

    (tmp_path / "rxvault_fake_side.py").write_text(
        "import click\n"
        "import rxvault_no_such_package  # noqa: F401\n"
        "fake = click.Command('fake')\n",
        encoding="utf-8",
    )
    (tmp_path / "rxvault_fake_late.py").write_text(
        "import click\n"
        "@click.command('late')\n"
        "def late():\n"
        "    import rxvault_no_such_package  # noqa: F401\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli._COMMANDS, "fake", ("rxvault_fake_side", "fake", "server"))
    monkeypatch.setitem(cli._COMMANDS, "late", ("rxvault_fake_late", "late", "agent"))
    monkeypatch.setattr(cli.main, "commands", dict(cli.main.commands))

    runner = CliRunner()
    listing = runner.invoke(cli.main, ["--help"])
    assert "(not installed: needs rxvault[server])" in listing.output
    for args, extra in ((["fake", "--help"], "server"), (["late"], "agent")):
        result = runner.invoke(cli.main, args)
        assert result.exit_code == 2, result.output
        assert f'pip install "rxvault[{extra}]"' in result.output
        assert "rxvault_no_such_package" in result.output
        assert not isinstance(result.exception, ModuleNotFoundError)
