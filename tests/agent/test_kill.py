"""A sync killed at any step and run again converges to the state of an uninterrupted run:
nothing lost, nothing applied twice. The agent runs as a real process (the `rxvault` command)
against the server over a real socket; RXVAULT_AGENT_CRASH_AT ends it abruptly at a step."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rxvault import format as fmt
from rxvault.agent import AgentContext, Reporter, SyncOptions, enroll, run_sync
from rxvault.agent._crash import CRASH_EXIT
from rxvault.agent._state import open_state
from rxvault.dbf import open_table
from rxvault.demo._next_day import next_day

from .conftest import Agent, Harness, make_agent, scratch_database, socket_server
from .test_sync_flow import documents

QUIET = Reporter(interactive=False, quiet=True)

# (step, occurrence): batches hold 4 blocks, so the first sync sends 3 batches.
CASES = [
    ("outbox-drained", 1),
    ("read", 1),
    ("keys", 1),
    ("sealed", 1),
    ("outbox-written", 1),
    ("outbox-written", 2),
    ("sent", 1),
    ("sent", 3),
    ("committed", 2),
    ("seen", 1),
]


def run_agent(home: Path, crash: str | None = None, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("RXVAULT_AGENT_CRASH_AT", None)
    if crash:
        env["RXVAULT_AGENT_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, "-m", "rxvault.agent", "--home", str(home), "sync", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def server_view(harness: Harness, agent: Agent, keys: dict[str, bytes]) -> dict[str, object]:
    """patient id -> (state, version, decrypted document): comparable across pharmacies."""
    ctx = agent.context()
    records = harness.records()
    view: dict[str, object] = {}
    for pid, private in keys.items():
        handle = ctx.handle(pid)
        if handle not in records:
            view[pid] = None
            continue
        state, version, envelope = records[handle]
        document = None
        if state == "live":
            document = fmt.open_block(
                envelope,
                recipient_private_key=private,
                pharmacy_public_key=ctx.key.public_bytes(),
                expected_handle=handle,
            ).document
        view[pid] = (state, version, document)
    return view


@dataclass
class Shared:
    harness: Harness
    url: str
    count: int = 0

    def pharmacy(self) -> str:
        self.count += 1
        return self.harness.add_pharmacy(f"pharmacy-{self.count}")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One server over a socket for the module; each test gets its own pharmacy on it."""
    tmp = tmp_path_factory.mktemp("kill")
    with scratch_database("sqlite", tmp) as db:
        harness = Harness(db)
        try:
            with socket_server(harness) as url:
                yield Shared(harness, url)
        finally:
            harness.close()


def setup(
    shared: Shared, home: Path, source: Path, ids: list[str] | None = None
) -> tuple[Agent, dict[str, bytes]]:
    harness = shared.harness
    agent = make_agent(harness, home, source, token=shared.pharmacy(), batch_items=4)
    ctx = agent.context()
    ids = ids or documents(agent).patient_ids[:10]
    keys = {e.patient_id: harness.register_fast(e.code_text) for e in enroll(ctx, ids, days=30)}
    config = home / "agent.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'url = "https://portal.test"', f'url = "{shared.url}"'
        ),
        encoding="utf-8",
    )
    return agent, keys


@pytest.fixture(scope="module")
def reference(shared: Shared, tmp_path_factory: pytest.TempPathFactory, demo_source: Path):
    """The server state after one uninterrupted run (by patient id, so comparable)."""
    tmp = tmp_path_factory.mktemp("reference")
    source = tmp / "pharmacy"
    shutil.copytree(demo_source, source)
    agent, keys = setup(shared, tmp / "home", source)
    done = run_agent(agent.home)
    assert done.returncode == 0, done.stderr
    view = server_view(shared.harness, agent, keys)
    assert all(v is not None and v[:2] == ("live", 1) for v in view.values())  # type: ignore[index]
    return view


@pytest.mark.parametrize(("step", "nth"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_killed_run_converges(
    step: str, nth: int, shared: Shared, reference, tmp_path: Path, source: Path
) -> None:
    agent, keys = setup(shared, tmp_path / "home", source)
    killed = run_agent(agent.home, f"{step}:{nth}")
    assert killed.returncode == CRASH_EXIT, killed.stderr
    again = run_agent(agent.home)
    assert again.returncode == 0, again.stderr
    assert server_view(shared.harness, agent, keys) == reference
    state = open_state(agent.home / "state.db")
    try:
        assert state.outbox() == []
    finally:
        state.close()
    assert list((agent.home / "outbox").iterdir()) == []
    # And nothing is left to do.
    last = run_sync(AgentContext.load(agent.home), SyncOptions(), QUIET)
    assert (last.uploaded, last.deleted, last.bytes_sent) == (0, 0, 0)


def test_killed_day_with_deletions_converges(shared: Shared, tmp_path: Path, source) -> None:
    scratch = tmp_path / "scratch"
    shutil.copytree(source, scratch)
    will_change = {str(p) for p in next_day(scratch, seed=11).patient_ids}
    with open_table(source / "patient.dbf") as t:
        everyone = [str(p) for p in t.read(columns=["patient_id"]).column(0).to_pylist()]
    changing = [p for p in everyone if p in will_change][:6]
    steady = [p for p in everyone if p not in will_change][:4]
    agent, keys = setup(shared, tmp_path / "home", source, changing + steady)
    assert run_agent(agent.home).returncode == 0
    changes = next_day(source, seed=11)
    killed = run_agent(agent.home, "sent:1")
    assert killed.returncode == CRASH_EXIT, killed.stderr
    again = run_agent(agent.home)
    assert again.returncode == 0, again.stderr
    view = server_view(shared.harness, agent, keys)
    after = documents(agent)
    for pid, value in view.items():
        index = after.index_of(pid)
        if index is None:
            assert value is not None
            assert value[0] == "deleted"  # type: ignore[index]
            continue
        state, version, document = value  # type: ignore[misc]
        assert state == "live"
        assert document == next(d for _, d in after.build([index]))
        assert version == (2 if int(pid) in changes.patient_ids else 1)


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_at_a_random_moment_converges(
    seed: int, shared: Shared, reference, tmp_path: Path, source: Path
) -> None:
    """Killed from outside (SIGKILL / TerminateProcess) at a random moment, then run again."""
    import random

    agent, keys = setup(shared, tmp_path / "home", source)
    env = dict(os.environ)
    env.pop("RXVAULT_AGENT_CRASH_AT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxvault.agent", "--home", str(agent.home), "sync", "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=random.Random(seed).uniform(0.5, 4.0))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    again = run_agent(agent.home)
    assert again.returncode == 0, again.stderr
    assert server_view(shared.harness, agent, keys) == reference
