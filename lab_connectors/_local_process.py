"""Inspecting a detached worker process and its output files."""

from __future__ import annotations

import os
from pathlib import Path


def process_runs(pid: int, exp_dir: Path) -> bool:
    """Whether ``pid`` is a live (not zombie) worker for ``exp_dir``; guards pid reuse."""
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():  # no procfs (macOS): best effort
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        stat = (proc / "stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0] if ")" in stat else "?"
    return state not in ("Z", "X") and os.fsencode(str(exp_dir)) in cmdline


def tail(path: Path, lines: int = 10) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    if not text:
        return ""
    return "; stderr tail:\n" + "\n".join(text.splitlines()[-lines:])


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no error output"
