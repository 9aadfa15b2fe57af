"""Harness 1 (issue 8): the daily run killed at every named step and at random moments.

The agent runs as a real process (``rxvault agent sync``, through ``_agent_entry.py``) against
the real server in its own process over a socket, and is killed with SIGKILL:

- at a named step (``RXVAULT_AGENT_CRASH_AT``, see ``rxvault.agent._crash``): after the read,
  after the key directory, after the diff, in the middle of sealing, after sealing, with a batch
  in the outbox not sent, after the server's acknowledgement and before the local commit, inside
  a local transaction before its ``COMMIT``, after a batch's commit, after the last commit;
- at a random moment (a timer, from the start of the process or from the moment it holds the run
  lock); sometimes the rerun is killed too.

Then it runs again, undisturbed. The server must end in exactly the state of an uninterrupted run
on a separate database (same handles, versions, decrypted documents and padded sizes: see
``_agent.py``), the local state must pass its integrity check, have an empty outbox and agree with
the server, and one more run must upload nothing. Two days are covered: the first sync (3 batches
of at most 4 blocks) and the next day's run (changes and signed deletions, after an undisturbed
first sync).

Short form (``make test``): one kill per kind of step, a double kill, 2 random moments.
Long form (``make soak``, ``-m long``): every occurrence of every named step on both days (N = 1,
2, ... until the run completes without reaching it), then ``RXVAULT_SOAK_AGENT_KILLS`` random
moments (default 200; ``RXVAULT_SOAK_AGENT_SEED`` picks the draw), in chains of up to
``RXVAULT_SOAK_AGENT_KILL_CHAIN`` kills (default 4: a killed run, its killed rerun, ...) before
the undisturbed rerun and the checks.
"""

from __future__ import annotations

import collections
import functools
import os
import random
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rxvault.agent._crash import crashed
from rxvault.demo._next_day import next_day

from ._agent import (
    Server,
    View,
    agent_command,
    agent_env,
    check_local,
    database_server,
    make_source,
    new_case,
    patient_ids,
    records,
    reference_views,
    run_agent,
    wait_for_lock,
)

DAY_SEED = 3  # this day deletes a patient, and changes 8 others

# The short form: one kill per kind of step (the long form sweeps every occurrence of each).
FIRST_DAY = [
    "read",
    "diff",
    "sealing:6",  # the middle of sealing
    "outbox-written:2",  # before the second upload
    "sent:3",  # acknowledged by the server, not committed locally
    "commit:4",  # inside the local commit of the first acknowledgement
    "committed:2",  # after the second upload's commit
    "seen",
]
NEXT_DAY = ["commit:3"]  # inside a local commit, the signed deletion in flight
STEPS = ["read", "keys", "diff", "sealing", "sealed", "outbox-written", "sent", "commit"]
STEPS += ["committed", "seen"]


@dataclass
class World:
    server: Server
    source: Path
    secret: bytes
    ids: list[str]
    reference: list[View]  # after day 1, after day 2
    run_seconds: float = 0.0  # an undisturbed run, process start to exit
    work_seconds: float = 0.0  # from taking the run lock to exit


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("agent-kill")
    source = make_source(tmp / "pharmacy", patients=120)
    scratch = tmp / "scratch"
    shutil.copytree(source, scratch)
    day = next_day(scratch, seed=DAY_SEED)
    gone = [str(p) for p in day.deleted_patient_ids][:2]
    changing = [str(p) for p in day.patient_ids if str(p) not in gone][:4]
    everyone = patient_ids(source)
    steady = [p for p in everyone if int(p) not in set(day.patient_ids)][:4]
    ids = gone + changing + steady
    assert len(gone) >= 1
    secret = os.urandom(32)
    reference = reference_views(
        tmp / "reference", source, secret, ids, [functools.partial(next_day, seed=DAY_SEED)]
    )
    # The day-2 reference must delete someone and change someone, or the sweep proves little.
    states = collections.Counter(v[0] for v in reference[1].values())
    assert states["deleted"] >= 1
    assert states["live"] >= 5
    assert any(reference[1][h][1] == 2 for h in reference[1] if reference[1][h][0] == "live")
    with database_server(tmp, socket=True) as server:
        w = World(server, source, secret, ids, reference)
        # Calibrate the random kills on one undisturbed run (which must match the reference).
        case = new_case(
            server,
            tmp / "calibrate" / "home",
            _copy(source, tmp / "calibrate"),
            secret=secret,
            ids=ids,
        )
        started = time.monotonic()
        proc = subprocess.Popen(agent_command(case.home), env=agent_env())
        locked = wait_for_lock(case.home, proc)
        assert proc.wait(timeout=240) == 0
        w.run_seconds = time.monotonic() - started
        w.work_seconds = max(0.05, w.run_seconds - locked)
        assert case.view() == reference[0]
        yield w


def _copy(source: Path, tmp: Path) -> Path:
    dest = tmp / "pharmacy"
    shutil.copytree(source, dest)
    return dest


Kill = Callable[[Path], str]
KILLS: collections.Counter[str] = collections.Counter()


def converge(world: World, tmp: Path, day: int, kill: Kill) -> str:
    """Set up a fresh pharmacy, kill its run of ``day`` with ``kill``, run again; check.
    Returns "finished" (the run was not killed) or where the killed run stopped."""
    source = _copy(world.source, tmp)
    case = new_case(world.server, tmp / "home", source, secret=world.secret, ids=world.ids)
    if day == 2:
        case.sync()
        next_day(source, seed=DAY_SEED)
    outcome = kill(case.home)
    if outcome != "finished":
        outcome = _stage(world, case.home, case.slug, day)
    again = run_agent(case.home)
    assert again.returncode == 0, (outcome, again.stderr)
    assert "Traceback" not in again.stderr
    view = case.view()
    assert view == world.reference[day - 1], outcome
    check_local(case, view)
    last = case.sync()
    assert (last.uploaded, last.deleted, last.bytes_sent) == (0, 0, 0), outcome  # type: ignore[attr-defined]
    return outcome


def named(step: str, *, must_reach: bool = True) -> Kill:
    def kill(home: Path) -> str:
        done = run_agent(home, step)
        assert "Traceback" not in done.stderr, done.stderr
        if must_reach:
            assert crashed(done.returncode), (step, done.returncode, done.stderr)
        else:
            assert crashed(done.returncode) or done.returncode == 0, done.stderr
        return "killed" if crashed(done.returncode) else "finished"

    return kill


def at_random(world: World, rng: random.Random, rounds: int | None = None) -> Kill:
    """Kill runs at random moments: one run (sometimes its rerun too), or ``rounds`` runs in a
    row (each run resumes what the killed one left), stopping when a run finishes."""

    def kill(home: Path) -> str:
        outcome = "finished"
        for _round in range(rounds or (2 if rng.random() < 0.25 else 1)):
            proc = subprocess.Popen(
                agent_command(home),
                env=agent_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if rng.random() < 0.25:
                delay = rng.uniform(0, world.run_seconds * 1.05)
            else:
                wait_for_lock(home, proc)
                delay = rng.uniform(0, world.work_seconds * 1.1)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL
                proc.wait()
                outcome = "killed"
                KILLS["random"] += 1
            else:
                break
        return outcome

    return kill


def _stage(world: World, home: Path, slug: str, day: int) -> str:
    """Where a killed run stopped, for the figures: how much of the reference the server had,
    and whether batches were left in the outbox."""
    on_server = records(world.server.harness, slug)
    reference = world.reference[day - 1]
    done = sum(1 for h, r in on_server.items() if reference[h][:2] == (r.state, r.version))
    share = "none" if done == 0 else "all" if done == len(reference) else "part"
    try:
        conn = sqlite3.connect(home / "state.db")
        try:
            waiting = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:  # killed before the state existed
        waiting = 0
    if day == 2:
        before = sum(
            1
            for h, r in on_server.items()
            if world.reference[0].get(h, ("",))[:2] == (r.state, r.version)
        )
        share = "none" if before == len(on_server) and done < len(reference) else share
    return f"killed: day {day}, {share} on the server, outbox {'empty' if not waiting else 'full'}"


@pytest.mark.parametrize("step", FIRST_DAY)
def test_first_sync_killed_at_a_step_converges(step: str, world: World, tmp_path: Path) -> None:
    converge(world, tmp_path, 1, named(step))


@pytest.mark.parametrize("step", NEXT_DAY)
def test_next_day_killed_at_a_step_converges(step: str, world: World, tmp_path: Path) -> None:
    converge(world, tmp_path, 2, named(step))


def test_killed_twice_resends_the_outbox_then_converges(world: World, tmp_path: Path) -> None:
    """Killed with batches acknowledged but not committed, then killed again right after the
    outbox was resent: the third run converges."""

    def twice(home: Path) -> str:
        assert crashed(run_agent(home, "sent:2").returncode)
        assert crashed(run_agent(home, "outbox-drained").returncode)
        return "killed twice"

    converge(world, tmp_path, 1, twice)


@pytest.mark.parametrize("seed", range(2))
def test_killed_at_a_random_moment_converges(seed: int, world: World, tmp_path: Path) -> None:
    rng = random.Random(f"short-{seed}")
    converge(world, tmp_path, 1 + seed % 2, at_random(world, rng))


@pytest.mark.long
def test_long_every_occurrence_of_every_step(world: World, tmp_path: Path) -> None:
    count = 0
    for day in (1, 2):
        for step in STEPS:
            n = 1
            while True:
                outcome = converge(
                    world,
                    tmp_path / f"d{day}-{step}-{n}",
                    day,
                    named(f"{step}:{n}", must_reach=False),
                )
                count += 1
                if outcome == "finished":
                    break
                assert outcome.startswith("killed")
                n += 1
            print(f"day {day}: {step} reached {n - 1} times")
    print(f"kill-point sweep: {count} runs converged")


@pytest.mark.long
def test_long_random_moments(world: World, tmp_path: Path) -> None:
    total = int(os.environ.get("RXVAULT_SOAK_AGENT_KILLS", "200"))
    chain = int(os.environ.get("RXVAULT_SOAK_AGENT_KILL_CHAIN", "4"))
    seed = os.environ.get("RXVAULT_SOAK_AGENT_SEED") or secrets.token_hex(4)
    rng = random.Random(seed)
    outcomes: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    KILLS.clear()
    i = 0
    while KILLS["random"] < total:
        outcome = converge(world, tmp_path / f"r{i}", 1 + i % 2, at_random(world, rng, chain))
        outcomes[outcome] += 1
        i += 1
        shutil.rmtree(tmp_path / f"r{i - 1}", ignore_errors=True)
    elapsed = time.monotonic() - started
    print(
        f"random kills (seed {seed}): {KILLS['random']} kills in {i} cases, each converged; "
        f"where the last kill of a case left things: {dict(outcomes)}; undisturbed run "
        f"{world.run_seconds:.2f} s (work {world.work_seconds:.2f} s); {elapsed:.0f} s"
    )
