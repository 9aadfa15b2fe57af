"""``rxvault agent schedule``: a daily run for Windows Task Scheduler, systemd, or cron."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = ["cron_line", "systemd_units", "windows_task_xml"]


def _program() -> str:
    """The ``rxvault`` launcher next to this Python (``Scripts\\rxvault.exe`` on Windows)."""
    name = "rxvault.exe" if sys.platform == "win32" else "rxvault"
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which("rxvault") or name


def _command(home: Path) -> list[str]:
    return [_program(), "agent", "--home", str(home), "sync"]


def windows_task_xml(home: Path, at: str) -> str:
    """A Task Scheduler task: daily, start when available, run on battery, not stopped on it."""
    exe, *args = _command(home)
    arguments = " ".join(f'"{a}"' if " " in a else a for a in args)
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.4" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>rxvault: publish the pharmacy's records to the patient portal (daily)</Description>
  </RegistrationInfo>
  <Triggers>
    <CalendarTrigger>
      <StartBoundary>2000-01-01T{at}:00</StartBoundary>
      <Enabled>true</Enabled>
      <ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>
    </CalendarTrigger>
  </Triggers>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <ExecutionTimeLimit>PT4H</ExecutionTimeLimit>
    <RestartOnFailure><Interval>PT30M</Interval><Count>3</Count></RestartOnFailure>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(exe)}</Command>
      <Arguments>{escape(arguments)}</Arguments>
      <WorkingDirectory>{escape(str(home))}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"""


def systemd_units(home: Path, at: str) -> dict[str, str]:
    command = shlex.join(_command(home))
    return {
        "rxvault-agent.service": (
            "[Unit]\nDescription=rxvault agent: publish the pharmacy's records\n"
            "Wants=network-online.target\nAfter=network-online.target\n\n"
            f"[Service]\nType=oneshot\nExecStart={command}\n"
        ),
        "rxvault-agent.timer": (
            "[Unit]\nDescription=rxvault agent, daily\n\n"
            f"[Timer]\nOnCalendar=*-*-* {at}:00\nPersistent=true\nRandomizedDelaySec=300\n\n"
            "[Install]\nWantedBy=timers.target\n"
        ),
    }


def cron_line(home: Path, at: str) -> str:
    hour, minute = at.split(":")
    return f"{int(minute)} {int(hour)} * * * {shlex.join(_command(home))} >/dev/null 2>&1\n"
