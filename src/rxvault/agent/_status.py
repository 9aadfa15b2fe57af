"""``rxvault agent status``: what the agent knows, without contacting anything."""

from __future__ import annotations

import json
from pathlib import Path

from rxvault.agent._config import load_config
from rxvault.agent._state import open_state

__all__ = ["status_lines"]


def status_lines(home: Path) -> list[str]:
    config = load_config(home)
    state = open_state(config.state_path)
    try:
        lines = [f"agent home: {home}", f"server: {config.server_url}", ""]
        runs = state.runs(5)
        if not runs:
            lines.append("no run yet: run `rxvault agent sync --dry-run`")
        lines.append("last runs:")
        for rid, started, finished, dry, code, summary in runs:
            info = json.loads(summary) if summary else {}
            what = "dry run" if dry else "sync"
            result = "running or killed" if finished is None else f"exit {code}"
            lines.append(
                f"  #{rid} {started} {what}: {result}; read {info.get('patients_read', '-')}, "
                f"uploaded {info.get('uploaded', '-')}, deleted {info.get('deleted', '-')}"
            )
        c = state.conn
        total, live, deleted = c.execute(
            "SELECT COUNT(*), SUM(server_state = 'live'), SUM(server_state = 'deleted') "
            "FROM patients WHERE in_source = 1 OR server_state != 'none'"
        ).fetchone()
        keys = c.execute("SELECT COUNT(*) FROM keys").fetchone()[0]
        lines += [
            "",
            f"patients known: {total or 0}; live on the server: {live or 0}; "
            f"deleted: {deleted or 0}; verified keys: {keys}",
        ]
        waiting = state.waiting_enrollments()
        lines.append(f"enrollments waiting for the patient: {len(waiting)}")
        for pid, created, expires in waiting[:20]:
            lines.append(f"  patient {pid}: issued {created}, expires {expires}")
        if len(waiting) > 20:
            lines.append(f"  … and {len(waiting) - 20} more")
        refused = list(
            c.execute("SELECT seq, handle, reason, seen_at FROM refused_keys ORDER BY seq")
        )
        lines.append(f"refused (unverifiable) keys: {len(refused)}")
        for seq, handle, reason, seen in refused:
            lines.append(f"  entry {seq}, handle {handle}: {reason} (seen {seen})")
        outbox = state.outbox()
        lines.append(f"batches waiting in the outbox: {len(outbox)}")
        for batch_id, _, items, attempts, error in outbox:
            lines.append(
                f"  {batch_id}: {len(items)} items, {attempts} failed attempts"
                + (f", last error: {error}" if error else "")
            )
        return lines
    finally:
        state.close()
