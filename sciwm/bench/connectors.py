"""``sciwm bench connectors``: fault figures and throughput of the HTTP lab connector.

Everything runs on this machine, on loopback: the reference lab server
(:mod:`lab_connectors.http_server`, uvicorn in a thread of this process) in front of
:class:`InstantLab`, a lab backend that answers after ``delay_s`` and counts how often each
experiment id reached it, and the ``http`` connector as a campaign uses it. Problems:

- ``http_faults``: N experiments (1,000; ``--quick`` 200) submitted, polled and fetched one
  after the other while the server injects faults into 20% of the requests (503, 502, a reply
  past the client's time-out, a dropped connection, a malformed body; half of them after the
  lab did the work); a failed call is handled as the campaign loop handles it
  (:func:`flows.faults.call_connector`; a pause and a new try on ``BackendUnavailable``).
  ``lost`` (no correct final result), ``duplicated`` (an id that reached the lab more than
  once), ``wrong`` (a result that differs from the lab's), ``throughput_per_s``;
- ``http_throughput``: the same without faults: experiments per second through the connector;
- ``http_sigkill``: one campaign (``sciwm campaign run --no-prefect`` on the HTTP lab) killed
  with SIGKILL K times (10; ``--quick`` 3) at random moments and resumed each time, then run
  to its end; ``lost`` (an experiment the lab ran that the store does not hold as finished,
  or a record never finished), ``duplicated`` (an id that reached the lab twice, or two
  records of one id or one sequence number).

The Slurm and PostgreSQL figures of the same kind come from
``python -m tests.integration.connector_figures`` (they need those services).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from sciwm.bench.common import Row, env_info, make_result, print_table, save_result
from sciwm.connector import Connector, Handle
from sciwm.errors import BackendUnavailable, ConnectorError
from sciwm.experiment import Experiment, Observation, Status

TOKEN_ENV = "SCIWM_BENCH_LAB_TOKEN"
ROOT = Path(__file__).resolve().parents[2]


def truth(x: float, y: float) -> float:
    """The lab's outcome ``f`` for parameters ``x``, ``y``."""
    return -((x - 0.3) ** 2) - (y - 0.7) ** 2


class InstantLab(Connector):
    """A lab backend that answers ``truth(x, y)`` after ``delay_s`` seconds, in memory.

    :attr:`reached` counts how many times each experiment id was submitted to it: the lab
    server in front of it must make that 1, however often sciwm resubmits.
    """

    name: ClassVar[str] = "instant_lab"

    def __init__(
        self, workdir: str | Path, delay_s: float = 0.0, log: str | None = None, **settings: Any
    ) -> None:
        super().__init__(workdir, delay_s=delay_s, log=log, **settings)
        self.delay_s = float(delay_s)
        self.log = None if log is None else open(log, "a", buffering=1)
        self.reached: Counter[str] = Counter()
        self._ready: dict[str, tuple[float, Experiment]] = {}

    def submit(self, experiment: Experiment) -> Handle:
        self.reached[experiment.id] += 1
        if self.log is not None:  # one line per time an id reached the lab
            self.log.write(experiment.id + "\n")
        self._ready.setdefault(experiment.id, (time.time() + self.delay_s, experiment))
        return {"experiment_id": experiment.id}

    def poll(self, handle: Handle) -> Status:
        ready, _ = self._ready[handle["experiment_id"]]
        return Status.COMPLETED if time.time() >= ready else Status.RUNNING

    def fetch(self, handle: Handle) -> Observation:
        ready, exp = self._ready[handle["experiment_id"]]
        p = exp.parameters
        return Observation(
            exp.id, Status.COMPLETED, {"f": truth(float(p["x"]), float(p["y"]))}, 0.01 + p["x"]
        )

    def cancel(self, handle: Handle) -> None:
        return None

    def capacity(self) -> int:
        return 1024


class _Lab:
    """``sciwm lab serve`` over an :class:`InstantLab`, in its own process, on loopback."""

    def __init__(self, folder: Path, token: str, faults: dict[str, Any] | None, delay_s: float):
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "reached.txt"
        self.cmd = [
            sys.executable, "-m", "lab_connectors.http_server",
            "--connector", "sciwm.bench.connectors:InstantLab",
            "--set", f"delay_s={delay_s}", "--set", f'log="{self.log}"',
            "--parallelism", "64", "--port", str(self.port), "--state-dir", str(folder),
            "--token-env", TOKEN_ENV,
        ]  # fmt: skip
        if faults:
            self.cmd += ["--inject-faults", str(faults["rate"]), "--fault-seed",
                         str(faults["seed"]), "--fault-slow-s", str(faults["slow_s"])]  # fmt: skip
        self.env = {**os.environ, TOKEN_ENV: token, "PYTHONPATH": str(ROOT)}
        self.faults_injected: dict[str, int] = {}

    def __enter__(self) -> _Lab:
        import httpx

        self.err = self.log.with_name("server.err")  # a file: a full pipe would block the lab
        with open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=err, text=True
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ConnectorError(f"the lab server did not start: {self.err.read_text()}")
            time.sleep(0.1)

    def reached(self) -> Counter[str]:
        """How many times each experiment id reached the lab's backend."""
        return Counter(self.log.read_text().split()) if self.log.exists() else Counter()

    def __exit__(self, *exc: Any) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        for line in self.err.read_text().splitlines():
            if line.startswith("injected faults: "):
                self.faults_injected = json.loads(line.removeprefix("injected faults: "))


def _patient(fn: Any, *args: Any) -> Any:
    """Call like the campaign loop: retries on ConnectorError; a pause on BackendUnavailable."""
    from flows.faults import call_connector

    for _ in range(200):
        try:
            return call_connector(fn, *args)
        except BackendUnavailable:
            time.sleep(0.05)
    raise ConnectorError("the lab stayed unavailable")


def through_connector(folder: Path, n: int, faults: dict[str, Any] | None, seed: int) -> list[Row]:
    """``n`` experiments submitted, polled and fetched through the ``http`` connector."""
    from flows.faults import call_connector  # noqa: F401 - imported before the clock starts
    from lab_connectors.http_lab import HTTPLabConnector

    token = secrets.token_hex(16)
    os.environ[TOKEN_ENV] = token
    rng = random.Random(seed)
    problem = "http_faults" if faults else "http_throughput"
    lost = wrong = 0
    with _Lab(folder / problem, token, faults, 0.0) as lab:
        conn = HTTPLabConnector(
            folder / "client", url=lab.url, token_env=TOKEN_ENV, timeout_s=0.25,
            retries=8, backoff_s=0.005, max_backoff_s=0.05,
        )  # fmt: skip
        experiments = [
            Experiment.create(problem, i, {"x": rng.random(), "y": rng.random()}, 10.0)
            for i in range(n)
        ]
        t0 = time.perf_counter()
        for exp in experiments:
            try:
                handle = _patient(conn.submit, exp)
                while not _patient(conn.poll, handle).finished:
                    pass
                obs = _patient(conn.fetch, handle)
            except ConnectorError:
                lost += 1
                continue
            if obs.status is not Status.COMPLETED:
                lost += 1
            elif obs.outcomes.get("f") != truth(exp.parameters["x"], exp.parameters["y"]):
                wrong += 1
        elapsed = time.perf_counter() - t0
        conn.close()
        reached = lab.reached()
    duplicated = sum(1 for c in reached.values() if c > 1)
    lost += sum(1 for e in experiments if reached[e.id] == 0)
    injected = lab.faults_injected
    rate = faults["rate"] if faults else 0.0
    extra = {"n": n, "fault_rate": rate, "faults_injected": sum(injected.values())}
    return [
        _row(problem, "lost", lost, **extra),
        _row(problem, "duplicated", duplicated, **extra),
        _row(problem, "wrong", wrong, **extra),
        _row(problem, "throughput_per_s", n / elapsed, **extra),
    ]


CAMPAIGN = """
[campaign]
name = "{name}"
seed = 3

[[parameters]]
name = "x"
type = "float"
low = 0.0
high = 1.0

[[parameters]]
name = "y"
type = "float"
low = 0.0
high = 1.0

[[objectives]]
name = "f"

[budget]
total = 1000.0

[connector]
type = "http"

[connector.settings]
url = "{url}"
token_env = "{token_env}"

[scheduler]
batch_size = 2
parallelism = 2
poll_interval_s = 0.05
num_restarts = 2
raw_samples = 32

[stopping]
max_experiments = {n}
"""


def sigkill_campaign(folder: Path, kills: int, n: int, seed: int) -> list[Row]:
    """A campaign on the HTTP lab killed ``kills`` times with SIGKILL, resumed each time."""
    from sciwm.store import RecordStore

    token = secrets.token_hex(16)
    rng = random.Random(seed)
    name = "http-sigkill"
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {**os.environ, TOKEN_ENV: token, "PYTHONPATH": str(ROOT)}
    done_kills = 0
    # the store's tables exist before the first kill: a kill while MLflow creates a new SQLite
    # store can leave it half-migrated, which is the store's matter, not the connector's
    RecordStore(uri).campaigns()
    with _Lab(folder / "lab", token, None, delay_s=0.3) as lab:
        spec = folder / f"{name}.toml"
        spec.write_text(CAMPAIGN.format(name=name, url=lab.url, token_env=TOKEN_ENV, n=n))
        cmd = [sys.executable, "-m", "sciwm.cli", "--tracking-uri", uri, "campaign", "run",
               str(spec), "--no-prefect"]  # fmt: skip
        t0 = time.perf_counter()
        while True:
            proc = subprocess.Popen(
                cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            if done_kills < kills:
                # kill mid-campaign: once this process has sent the lab something new, at a
                # random moment within the next 2 s (submits, polls and results in flight)
                before = sum(lab.reached().values())
                deadline = time.monotonic() + 300
                while (
                    proc.poll() is None
                    and sum(lab.reached().values()) == before
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 2.0))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    done_kills += 1
                    continue
            _, err = proc.communicate(timeout=1200)
            if proc.returncode != 0:
                raise ConnectorError(f"the campaign failed: {err.decode()[-2000:]}")
            break
        elapsed = time.perf_counter() - t0
        records = RecordStore(uri).records(name)
        reached = dict(lab.reached())
    finished = {r.experiment.id for r in records if r.status.finished}
    ids = Counter(r.experiment.id for r in records)
    seqs = Counter(r.experiment.seq for r in records)
    lost = sum(1 for i in reached if i not in finished) + sum(
        1 for r in records if not r.status.finished
    )
    duplicated = (
        sum(1 for c in reached.values() if c > 1)
        + sum(1 for c in ids.values() if c > 1)
        + sum(1 for c in seqs.values() if c > 1)
    )
    extra = {"kills": done_kills, "n": len(records), "wall_s": elapsed}
    return [
        _row("http_sigkill", "lost", lost, **extra),
        _row("http_sigkill", "duplicated", duplicated, **extra),
        _row(
            "http_sigkill", "completed", sum(r.status is Status.COMPLETED for r in records), **extra
        ),
    ]


def _row(problem: str, metric: str, value: float, **extra: Any) -> Row:
    return {"problem": problem, "method": "sciwm", "metric": metric, "value": value, **extra}


def run(quick: bool = False, seeds: int | None = None, out: Path | None = None) -> dict[str, Any]:
    """Run the suite, print its table and write the result (see the module docstring)."""
    seed = int(seeds or 0)
    n_faults, n_fast, kills, n_campaign = (200, 200, 3, 12) if quick else (1000, 1000, 10, 30)
    faults = {"rate": 0.2, "slow_s": 0.5, "seed": seed}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="sciwm-bench-connectors-") as tmp:
        folder = Path(tmp)
        for problem, job in (
            ("http_faults", lambda: through_connector(folder, n_faults, faults, seed)),
            ("http_throughput", lambda: through_connector(folder, n_fast, None, seed)),
            ("http_sigkill", lambda: sigkill_campaign(folder / "kill", kills, n_campaign, seed)),
        ):
            t0 = time.perf_counter()
            (folder / "kill").mkdir(exist_ok=True)
            rows += job()
            print(f"{problem}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    config = {
        "quick": quick,
        "seed": seed,
        "http_faults": {
            "n": n_faults,
            **faults,
            "kinds": ["503", "502", "slow", "drop", "malformed"],
        },
        "http_throughput": {"n": n_fast},
        "http_sigkill": {"kills": kills, "max_experiments": n_campaign},
        "client": {"timeout_s": 0.25, "retries": 8, "backoff_s": 0.005, "max_backoff_s": 0.05},
    }
    result = make_result("connectors", rows, config, env_info())
    print_table(rows, metrics=["lost", "duplicated", "wrong", "completed", "throughput_per_s"])
    if out is not None:
        save_result(out, result)
    return result
