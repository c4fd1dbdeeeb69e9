"""The Slurm connector's settings, checked once, and its job-script template."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab_connectors._local_settings import check_function_ref
from sciwm.errors import ConnectorError

#: Seconds in each cost unit the connector can report.
COST_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}
#: The job-script template shipped with sciwm (used when ``template`` is not set).
DEFAULT_TEMPLATE = Path(__file__).with_name("slurm_job.sh")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
#: Placeholders a template may use; ``run`` is required.
PLACEHOLDERS = ("directives", "setup", "run", "experiment_id", "experiment_dir", "job_name")
_MEM = re.compile(r"\d+[KMGT]?")

KNOWN = (
    "function",
    "shared_dir",
    "partition",
    "time_limit_min",
    "gpus",
    "cpus_per_task",
    "mem",
    "setup",
    "sbatch_options",
    "template",
    "python",
    "env",
    "outcome",
    "cost_unit",
    "parallelism",
    "slurm_bin",
)


@dataclass(frozen=True)
class SlurmSettings:
    """What ``[connector.settings]`` of a ``slurm`` connector may hold (see the class docs)."""

    function: str
    shared_dir: Path
    partition: str | None = None
    time_limit_min: int = 60
    gpus: int | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    setup: tuple[str, ...] = ()
    sbatch_options: tuple[str, ...] = ()
    template: str = ""
    python: str = sys.executable
    env: Mapping[str, str] = field(default_factory=dict)
    outcome: str = "objective"
    cost_unit: str = "s"
    parallelism: int = 1
    slurm_bin: Path | None = None

    def command(self, name: str) -> str:
        """Path of a Slurm client command (``sbatch``, ``squeue``, ...)."""
        return str(self.slurm_bin / name) if self.slurm_bin else name

    def limit_minutes(self, max_cost: float | None) -> int:
        """The job's time limit: the cost cap in whole minutes, else ``time_limit_min``."""
        if max_cost is None:
            return self.time_limit_min
        return max(1, math.ceil(max_cost * COST_UNITS[self.cost_unit] / 60.0 - 1e-9))

    def directives(self) -> str:
        """The ``#SBATCH`` lines that the settings ask for."""
        lines = []
        if self.partition:
            lines.append(f"--partition={self.partition}")
        if self.gpus:
            lines.append(f"--gpus={self.gpus}")
        if self.cpus_per_task:
            lines.append(f"--cpus-per-task={self.cpus_per_task}")
        if self.mem:
            lines.append(f"--mem={self.mem}")
        lines.extend(self.sbatch_options)
        return "\n".join(f"#SBATCH {line}" for line in lines)


def _fail(name: str, value: Any, want: str) -> ConnectorError:
    return ConnectorError(
        f"slurm connector setting {name}={value!r} is invalid; {want}. "
        "Fix [connector.settings] in the campaign file."
    )


def _whole(name: str, value: Any, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(name, value, "give a whole number >= 1")
    return value


def _lines(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise _fail(name, value, 'give a list of strings, e.g. ["module load cuda"]')
    if any("\n" in v for v in value):
        raise _fail(name, value, "give one line per list item")
    return tuple(value)


def parse_settings(workdir: Path, settings: Mapping[str, Any]) -> SlurmSettings:
    """Check ``[connector.settings]`` of a ``slurm`` connector.

    Raises:
        ConnectorError: Naming the first bad or unknown setting and what it should be.
    """
    unknown = sorted(set(settings) - set(KNOWN))
    if unknown:
        raise ConnectorError(
            f"unknown setting(s) {unknown} for the slurm connector; known settings: "
            f"{list(KNOWN)}. Fix [connector.settings] in the campaign file."
        )
    s = dict(settings)
    try:
        function = check_function_ref(s.get("function"))
    except ConnectorError as exc:
        raise ConnectorError(str(exc).replace("local connector", "slurm connector")) from None
    shared = Path(s.get("shared_dir") or workdir).expanduser().resolve()
    for name in ("partition", "mem", "python", "outcome", "template"):
        if s.get(name) is not None and (not isinstance(s[name], str) or not s[name].strip()):
            raise _fail(name, s[name], "give a non-empty string")
    if s.get("mem") is not None and not _MEM.fullmatch(s["mem"]):
        raise _fail("mem", s["mem"], 'give a Slurm memory size such as "4G" or "500M"')
    if s.get("partition") is not None and not re.fullmatch(r"[\w.\-,]+", s["partition"]):
        raise _fail("partition", s["partition"], "give a partition name (letters, digits, _-.)")
    cost_unit = s.get("cost_unit", "s")
    if cost_unit not in COST_UNITS:
        raise _fail("cost_unit", cost_unit, f"give one of {list(COST_UNITS)}")
    env = s.get("env") or {}
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and re.fullmatch(r"[A-Za-z_]\w*", k) and isinstance(v, str)
        for k, v in env.items()
    ):
        raise _fail(
            "env", env, 'give a table of string values, e.g. env = { OMP_NUM_THREADS = "1" }'
        )
    options = _lines("sbatch_options", s.get("sbatch_options", ()))
    if any(not o.startswith("-") for o in options):
        raise _fail("sbatch_options", list(options), 'give sbatch options such as "--qos=short"')
    template = load_template(s.get("template"))
    slurm_bin = s.get("slurm_bin")
    return SlurmSettings(
        function=function,
        shared_dir=shared,
        partition=s.get("partition"),
        time_limit_min=_whole("time_limit_min", s.get("time_limit_min", 60)),  # type: ignore[arg-type]
        gpus=_whole("gpus", s.get("gpus"), optional=True),
        cpus_per_task=_whole("cpus_per_task", s.get("cpus_per_task"), optional=True),
        mem=s.get("mem"),
        setup=_lines("setup", s.get("setup", ())),
        sbatch_options=options,
        template=template,
        python=s.get("python") or sys.executable,
        env=dict(env),
        outcome=s.get("outcome") or "objective",
        cost_unit=cost_unit,
        parallelism=_whole("parallelism", s.get("parallelism", 1)),  # type: ignore[arg-type]
        slurm_bin=Path(slurm_bin).expanduser() if slurm_bin else None,
    )


def load_template(path: str | None) -> str:
    """The text of a job-script template, checked to use only known placeholders.

    Raises:
        ConnectorError: If the file cannot be read, lacks ``{{ run }}`` or names an unknown
            placeholder.
    """
    file = Path(path).expanduser() if path else DEFAULT_TEMPLATE
    try:
        text = file.read_text()
    except OSError as exc:
        raise _fail("template", str(file), f"cannot read it ({exc.strerror})") from None
    names = _PLACEHOLDER.findall(text)
    bad = sorted(set(names) - set(PLACEHOLDERS))
    if bad:
        raise _fail(
            "template",
            str(file),
            f"it uses unknown placeholder(s) {bad}; known: {list(PLACEHOLDERS)}",
        )
    if "run" not in names:
        raise _fail(
            "template", str(file), "it must contain {{ run }}, the lines that run the experiment"
        )
    return text


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{{ name }}`` placeholders; shell ``$VARS`` and other braces are left alone."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
