"""Shared pieces of the benchmark suites: machine facts, the result file, the printed table.

A result file is ``{"suite": ..., "rows": [...], "config": {...}, "env": {...}}`` where every
row is one measured number ``{"problem", "method", "metric", "value", ...qualifiers}``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def env_info() -> dict[str, Any]:
    """Facts about the machine and software a benchmark ran on.

    Returns:
        Python, torch, botorch and gpytorch versions, CPU model and count, torch threads,
        CUDA availability and device name, platform, and the time of the run.
    """
    import botorch
    import gpytorch
    import torch

    try:
        cpus_usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus_usable = os.cpu_count() or 1
    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": cpus_usable,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "botorch": botorch.__version__,
        "gpytorch": gpytorch.__version__,
        "cuda": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become ``None`` (JSON has no inf/nan)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def make_result(
    suite: str, rows: Sequence[Row], config: Mapping[str, Any], env: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The result dict of a suite (non-finite numbers turned into ``None``)."""
    return _clean(
        {
            "suite": suite,
            "rows": list(rows),
            "config": dict(config),
            "env": dict(env) if env is not None else env_info(),
        }
    )


def write_result(
    path: str | Path, suite: str, rows: Sequence[Row], config: Mapping[str, Any]
) -> dict[str, Any]:
    """Write a suite's result file (parent folders are created).

    Args:
        path: Where to write the JSON.
        suite: Suite name, e.g. ``"campaign"``.
        rows: Tidy rows.
        config: Settings of the run (seeds, caps, optimiser settings, ...).

    Returns:
        The dict written.
    """
    result = make_result(suite, rows, config)
    save_result(path, result)
    return result


def save_result(path: str | Path, result: Mapping[str, Any]) -> None:
    """Write an already assembled result dict as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(dict(result)), indent=2) + "\n")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def format_table(
    rows: Sequence[Row],
    metrics: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    cell: Any = None,
) -> str:
    """A fixed-width table: one line per problem x method, one column per metric.

    Args:
        rows: Tidy rows; rows with qualifiers beyond the standard keys are still shown (the
            last one wins when several share problem, method and metric).
        metrics: Columns, in order (default: every metric in order of appearance).
        methods: Method order (default: order of appearance).
        cell: Optional ``f(row) -> str`` to render a value (default: the number).

    Returns:
        The table as text.
    """
    metrics = (
        list(metrics) if metrics is not None else list(dict.fromkeys(r["metric"] for r in rows))
    )
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    order = list(methods) if methods is not None else list(dict.fromkeys(r["method"] for r in rows))
    table: dict[tuple[str, str, str], str] = {}
    for r in rows:
        table[(r["problem"], r["method"], r["metric"])] = cell(r) if cell else _fmt(r["value"])
    header = ["problem", "method", *metrics]
    lines = []
    for p in problems:
        for m in order:
            if not any((p, m, k) in table for k in metrics):
                continue
            lines.append([p, m, *[table.get((p, m, k), "") for k in metrics]])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    prev = None
    for line in lines:
        if prev is not None and line[0] != prev:
            out.append("")
        prev = line[0]
        out.append(
            "  ".join(
                (s.ljust(w) if i < 2 else s.rjust(w))
                for i, (s, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    return "\n".join(out)


def print_table(
    rows: Sequence[Row],
    metrics: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    cell: Any = None,
) -> None:
    """Print :func:`format_table` to standard output."""
    print(format_table(rows, metrics, methods, cell))
