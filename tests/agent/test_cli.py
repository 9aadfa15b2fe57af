"""The `rxvault agent` commands: errors with hints and exit codes, init, inspect, preview,
enrollment letters, schedule and status."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from rxvault.agent import enroll
from rxvault.agent._letters import write_letters
from rxvault.cli import main

from .conftest import Agent, Harness
from .test_sync_flow import documents, sync


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_missing_home_is_a_clear_error(tmp_path: Path) -> None:
    code, out, err = run("agent", "--home", str(tmp_path / "nowhere"), "sync")
    assert code == 2
    assert out == ""
    assert err.startswith("rxvault: error: ")
    assert "no agent configuration here" in err
    assert "rxvault: hint: run `rxvault agent init` first" in err


def test_init_creates_owner_only_secrets(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    code, out, err = run(
        "agent",
        "--home",
        str(home),
        "init",
        "--pharmacy-name",
        "Corner Pharmacy",
        "--server",
        "https://portal.example",
        "--source",
        str(source),
        "--no-register",
    )
    assert code == 0, err
    assert "pharmacy key id:" in out
    for name in ("pharmacy.key", "handle.secret"):
        path = home / "keys" / name
        assert path.stat().st_size > 0
        if os.name == "posix":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A second init never replaces the keys.
    before = (home / "keys" / "pharmacy.key").read_bytes()
    code, _, _ = run(
        "agent",
        "--home",
        str(home),
        "init",
        "--pharmacy-name",
        "Corner Pharmacy",
        "--server",
        "https://portal.example",
        "--source",
        str(source),
        "--no-register",
    )
    assert code == 0
    assert (home / "keys" / "pharmacy.key").read_bytes() == before
    # A key file others can read is refused.
    if os.name == "posix":
        os.chmod(home / "keys" / "pharmacy.key", 0o644)
        code, _, err = run("agent", "--home", str(home), "enroll", "1")
        assert code == 2
        assert "readable by other users" in err
        assert "chmod 600" in err


def test_inspect_lists_tables_and_fields(agent: Agent) -> None:
    code, out, err = run("agent", "--home", str(agent.home), "inspect")
    assert code == 0, err
    assert "rxfill.dbf:" in out
    assert "records" in out
    assert "sig" in out
    assert "patient_id" in out


def test_preview_shows_the_published_document(agent: Agent) -> None:
    docs = documents(agent)
    pid = docs.patient_ids[3]
    code, out, err = run("agent", "--home", str(agent.home), "preview", pid, "--compact")
    assert code == 0, err
    assert out.strip().encode() == next(d for _, d in docs.build([docs.index_of(pid)]))
    code, out, _ = run("agent", "--home", str(agent.home), "preview", pid)
    assert json.loads(out)["patient"]["values"]
    code, _, err = run("agent", "--home", str(agent.home), "preview", "no-such-patient")
    assert code == 2
    assert "is not published" in err


def test_letters_pdf(harness: Harness, agent: Agent, tmp_path: Path) -> None:
    ctx = agent.context()
    ids = documents(agent).patient_ids[:3]
    made = enroll(ctx, ids, days=30)
    out = tmp_path / "letters.pdf"
    write_letters(out, made, pharmacy_name="Main Street Pharmacy", portal_url="https://p.test/")
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") == len(ids)
    for e in made:
        assert e.url.startswith("https://portal.test/#enroll=")
        assert e.url.endswith(e.code_text.replace("-", ""))


def test_enroll_unknown_patient_is_refused(agent: Agent) -> None:
    code, _, err = run("agent", "--home", str(agent.home), "enroll", "999999")
    assert code == 2
    assert "is not in the source" in err


@pytest.mark.parametrize("kind", ["windows", "systemd", "cron"])
def test_schedule(agent: Agent, kind: str) -> None:
    code, out, err = run(
        "agent", "--home", str(agent.home), "schedule", "--kind", kind, "--at", "3:05"
    )
    assert code == 0, err
    if kind == "windows":
        xml = (agent.home / "rxvault-agent-task.xml").read_text(encoding="utf-16")
        assert "<StartWhenAvailable>true</StartWhenAvailable>" in xml
        assert "<DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>" in xml
        assert "<StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>" in xml
        assert "T03:05:00" in xml
        assert "schtasks" in out
    elif kind == "systemd":
        timer = (agent.home / "rxvault-agent.timer").read_text(encoding="utf-8")
        assert "OnCalendar=*-*-* 03:05:00" in timer
        assert "Persistent=true" in timer
        service = (agent.home / "rxvault-agent.service").read_text(encoding="utf-8")
        assert f"--home {agent.home}" in service
    else:
        assert out.startswith("5 3 * * * ")
        assert "agent --home" in out
    code, _, err = run("agent", "--home", str(agent.home), "schedule", "--at", "25:00")
    assert code == 2
    assert "--at" in err


def test_status_after_a_sync(harness: Harness, agent: Agent) -> None:
    ctx = agent.context()
    ids = documents(agent).patient_ids[:2]
    made = enroll(ctx, ids, days=30)
    harness.register_fast(made[0].code_text)
    sync(agent)
    code, out, err = run("agent", "--home", str(agent.home), "status")
    assert code == 0, err
    assert "sync: exit 0" in out
    assert "enrollments waiting for the patient: 1" in out
    assert f"patient {ids[1]}" in out
    assert "batches waiting in the outbox: 0" in out


@pytest.mark.parametrize(
    "url",
    [
        "https://portal.example",
        "https://203.0.113.5:8443",
        "http://127.0.0.1:8000",
        "http://127.8.9.10",
        "http://localhost:8000",
        "http://LOCALHOST",
        "http://[::1]:8000",
    ],
)
def test_server_url_over_https_or_to_this_machine_is_accepted(url: str) -> None:
    from rxvault._cli_errors import UserError
    from rxvault.agent._api import check_server_url

    try:
        check_server_url(url)
    except UserError as exc:  # pragma: no cover - the failure message
        pytest.fail(f"{url} refused: {exc.message}")


@pytest.mark.parametrize(
    "url",
    [
        "http://portal.example",
        "http://203.0.113.5",
        "http://128.0.0.1",
        "http://localhost.example.org",
        "http://[::2]",
        "http://0.0.0.0",
        "ftp://portal.example",
        "portal.example",
        "https://",
    ],
)
def test_server_url_in_clear_to_another_machine_is_refused(url: str) -> None:
    from rxvault._cli_errors import UserError
    from rxvault.agent._api import ServerApi, check_server_url

    with pytest.raises(UserError) as info:
        check_server_url(url)
    assert url in info.value.message or repr(url) in info.value.message
    assert info.value.hint
    with pytest.raises(UserError):
        ServerApi(url, "token-never-sent")


def test_init_and_config_refuse_a_plain_http_server(tmp_path: Path, source: Path) -> None:
    home = tmp_path / "home"
    args = ("--pharmacy-name", "Corner Pharmacy", "--source", str(source), "--no-register")
    code, out, err = run(
        "agent", "--home", str(home), "init", "--server", "http://portal.example", *args
    )
    assert code == 2
    assert out == ""
    assert err.startswith("rxvault: error: http://portal.example: the server URL must start")
    assert "rxvault: hint: use the server's https:// address" in err
    assert not home.exists() or not any(home.iterdir())  # nothing written

    # A configuration edited by hand to plain http is refused when it is loaded.
    code, _, err = run("agent", "--home", str(home), "init", "--server", "https://p.example", *args)
    assert code == 0, err
    config = home / "agent.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'url = "https://p.example"', 'url = "http://p.example"'
        ),
        encoding="utf-8",
    )
    code, out, err = run("agent", "--home", str(home), "status")
    assert code == 2
    assert err.startswith(f"rxvault: error: {config}: [server] url: http://p.example: ")
    assert "rxvault: hint: " in err
