"""Fault figures of the Slurm connector and the PostgreSQL-backed store, on real services.

``python -m tests.integration.connector_figures --out FILE.json [--quick]`` starts a
single-node Slurm, PostgreSQL and ``mlflow server`` on loopback (the integration fixtures'
classes), then measures, in rows of the benchmark format (``problem``, ``method``,
``metric``, ``value``):

- ``slurm_jobs``: N experiments straight through the ``slurm`` connector, a mix of good ones,
  failing ones, ones cancelled while queued or running (``scancel``), ones whose process is
  killed with SIGKILL under the running job, ones stopped at their cost cap, and one that
  Slurm stops at its time limit (TIMEOUT);
  ``lost`` (no final observation), ``duplicated`` (ran more than once, or more than one Slurm
  job), ``throughput_per_s`` (experiments finished per second);
- ``slurm_sigkill``: one campaign (``sciwm campaign run`` on Slurm) killed with SIGKILL K
  times and resumed each time; ``lost`` and ``duplicated`` as above plus recorded-once;
- ``mlflow_postgres``: 4 campaign processes on one ``mlflow server`` backed by PostgreSQL,
  ``lost``/``duplicated``; and the store's ``write_throughput_per_s`` (experiments recorded
  from proposal to result per second) on that server, on the ``postgresql://`` URI directly
  and on SQLite.

Needs root and the packages of ``.ci/services/install-slurm.sh`` and
``install-postgresql.sh``. Not a test: it measures and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab_connectors.slurm import SlurmConnector
from sciwm.experiment import Experiment, Observation, Status
from sciwm.store import RecordStore
from tests.flows.conftest import write_campaign
from tests.integration.conftest import ROOT
from tests.integration.services.postgres import MlflowServer, PostgresServer
from tests.integration.services.slurm import SlurmCluster
from tests.integration.slurm.test_slurm_campaign import write_campaign as slurm_campaign

FNS = "tests.lab_connectors.fixtures_fns"


def row(problem: str, metric: str, value: float, **extra) -> dict:
    return {"problem": problem, "method": "sciwm", "metric": metric, "value": value, **extra}


def slurm_jobs(scratch: Path, n: int) -> list[dict]:
    """N experiments through the connector: good, failing, cancelled, stopped at the cap."""
    conn = SlurmConnector(
        scratch / "jobs",
        function=f"{FNS}:slow_quadratic",
        python=sys.executable,
        env={"PYTHONPATH": str(ROOT)},
        parallelism=n,
    )
    limited = SlurmConnector(  # one job that Slurm itself stops at a 1-minute limit
        scratch / "jobs",
        function=f"{FNS}:slow_quadratic",
        python=sys.executable,
        env={"PYTHONPATH": str(ROOT)},
        time_limit_min=1,
    )
    rng = random.Random(0)
    kinds = (["good"] * 6 + ["fail", "cancel", "capped", "killed"]) * (n // 10 + 1)
    kinds = ["slurm_timeout", *kinds[: n - 1]]
    plan = []
    for i, kind in enumerate(kinds):
        params = {"x": rng.random(), "delay": 0.2}
        cap = None
        if kind == "fail":
            params["fail"] = True
        elif kind == "cancel":
            params["delay"] = 60.0
        elif kind == "capped":
            params["delay"], cap = 30.0, 1.5
        elif kind in ("killed", "slurm_timeout"):
            params["delay"] = 600.0
        plan.append((kind, Experiment.create("fig-jobs", i, params, cap)))
    start = time.monotonic()
    handles = {
        exp.id: (limited if kind == "slurm_timeout" else conn).submit(exp) for kind, exp in plan
    }
    to_kill = {exp.id for kind, exp in plan if kind == "killed"}
    for kind, exp in plan:
        if kind == "cancel":
            conn.cancel(handles[exp.id])
    for _, exp in plan:  # a second submit of each must not start anything
        assert conn.submit(exp) == handles[exp.id]
    pending = dict(handles)
    deadline = time.monotonic() + 60 + 10 * n
    while pending and time.monotonic() < deadline:
        for exp_id in list(to_kill):  # the experiment's process dies under the job (kill -9)
            claim = conn.config.shared_dir / exp_id / "claimed"
            if claim.exists():
                os.kill(json.loads(claim.read_text())["pid"], signal.SIGKILL)
                to_kill.discard(exp_id)
        for exp_id, handle in list(pending.items()):
            if conn.poll(handle).finished:
                del pending[exp_id]
        time.sleep(0.2)
    wall = time.monotonic() - start
    observed: dict[str, Observation] = {}
    for _, exp in plan:
        if exp.id not in pending:
            observed[exp.id] = conn.fetch(handles[exp.id])
    expected = {"good": Status.COMPLETED, "cancel": Status.CANCELLED}
    expected.update(dict.fromkeys(("fail", "capped", "killed", "slurm_timeout"), Status.FAILED))
    wrong = sum(
        1
        for kind, exp in plan
        if exp.id in observed and observed[exp.id].status is not expected[kind]
    )
    runs = [conn.config.shared_dir / exp.id / "runs.txt" for _, exp in plan]
    duplicated = sum(1 for r in runs if r.exists() and len(r.read_text().splitlines()) > 1)
    jobs = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%j"], capture_output=True, text=True
    ).stdout.split()
    duplicated += sum(1 for _, exp in plan if jobs.count(f"sciwm-{exp.id}") > 1)
    by_kind = {k: sum(1 for kind, _ in plan if kind == k) for k in expected}
    return [
        *(row("slurm_jobs", f"experiments_{k}", v) for k, v in by_kind.items()),
        row("slurm_jobs", "experiments", n),
        row("slurm_jobs", "lost", len(pending)),
        row("slurm_jobs", "duplicated", duplicated),
        row("slurm_jobs", "wrong_status", wrong),
        row("slurm_jobs", "throughput_per_s", n / wall),
        row("slurm_jobs", "wall_s", wall),
    ]


def _campaign_proc(folder: Path, spec: Path, calls: Path, uri: str | None = None):
    env = dict(os.environ, SCIWM_TEST_CALL_LOG=str(calls), PYTHONPATH=str(ROOT))
    env.pop("MLFLOW_TRACKING_URI", None)
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return subprocess.Popen(
        [sys.executable, "-m", "sciwm.cli", "campaign", "run", spec.name, "--no-prefect"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _counts(uri: str, name: str, calls: Path, before: set[str]) -> tuple[int, int, int]:
    records = RecordStore(uri).records(name)
    ids = [r.experiment.id for r in records]
    lines = calls.read_text().splitlines() if calls.exists() else []
    lost = len(before - set(ids)) + sum(1 for r in records if not r.status.finished)
    duplicated = (len(ids) - len(set(ids))) + (len(lines) - len(set(lines)))
    return lost, duplicated, len(records)


def slurm_sigkill(scratch: Path, kills: int, n: int) -> list[dict]:
    """One campaign on Slurm killed with SIGKILL ``kills`` times, resumed each time."""
    folder = scratch / "sigkill"
    folder.mkdir()
    name = "fig-sigkill"
    spec = slurm_campaign(folder, name, n)
    calls = folder / "calls.log"
    uri = f"sqlite:///{folder}/mlflow.db"
    seen: set[str] = set()
    done_kills = 0
    rng = random.Random(1)
    for _ in range(kills):
        proc = _campaign_proc(folder, spec, calls)
        time.sleep(rng.uniform(4.0, 12.0))  # sciwm's start-up is ~5-8 s here
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_kills += 1
        try:
            seen |= {r.experiment.id for r in RecordStore(uri).records(name)}
        except Exception:  # noqa: BLE001 - killed before the campaign was opened
            pass
    proc = _campaign_proc(folder, spec, calls)
    proc.wait(timeout=900)
    lost, duplicated, recorded = _counts(uri, name, calls, seen)
    return [
        row("slurm_sigkill", "kills", done_kills),
        row("slurm_sigkill", "experiments", recorded),
        row("slurm_sigkill", "lost", lost + (n - recorded)),
        row("slurm_sigkill", "duplicated", duplicated),
        row("slurm_sigkill", "exit_status", proc.returncode),
    ]


def mlflow_postgres(scratch: Path, server: MlflowServer, n: int) -> list[dict]:
    """Four campaign processes at once on one mlflow server backed by PostgreSQL."""
    names = [f"fig-team-{i}" for i in range(4)]
    procs = {}
    start = time.monotonic()
    for name in names:
        folder = scratch / name
        folder.mkdir()
        spec = write_campaign(folder, name, acquisition="random", initial=n, max_experiments=n)
        procs[name] = _campaign_proc(folder, spec, folder / "calls.log", server.url)
    codes = [p.wait(timeout=900) for p in procs.values()]
    wall = time.monotonic() - start
    lost = duplicated = 0
    for name in names:
        lo, du, recorded = _counts(server.url, name, scratch / name / "calls.log", set())
        lost += lo + (n - recorded)
        duplicated += du
    return [
        row("mlflow_postgres", "campaign_processes", len(names)),
        row("mlflow_postgres", "experiments", n * len(names)),
        row("mlflow_postgres", "lost", lost),
        row("mlflow_postgres", "duplicated", duplicated),
        row("mlflow_postgres", "failed_processes", sum(c != 0 for c in codes)),
        row("mlflow_postgres", "wall_s", wall),
    ]


def write_throughput(uri: str, store_name: str, n: int) -> dict:
    """Experiments recorded from proposal to result per second through one RecordStore."""
    from sciwm.spec import parse_spec

    spec_path = write_campaign(Path(tempfile.mkdtemp()), f"fig-writes-{store_name}")
    import tomllib

    text = spec_path.read_text()
    spec = parse_spec(tomllib.loads(text), str(spec_path), check_world_model=False)
    store = RecordStore(uri)
    store.open_campaign(spec, text)
    start = time.monotonic()
    for i in range(n):
        exp = Experiment.create(spec.name, i, {"x": i / n, "y": 0.5, "kind": "a"})
        rec = store.record_proposal(exp, None)
        rec = store.record_submitted(rec, {"n": i})
        store.record_observation(rec, Observation(exp.id, Status.COMPLETED, {"f": -i}, cost=1.0))
    rate = n / (time.monotonic() - start)
    return row("store_writes", "write_throughput_per_s", rate, store=store_name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="20 jobs, 3 kills, 3 per campaign")
    args = parser.parse_args(argv)
    jobs, kills, per_campaign, campaign_n, writes = (
        (20, 3, 3, 8, 20) if args.quick else (100, 10, 6, 20, 100)
    )
    scratch = Path(tempfile.mkdtemp(prefix="sciwm-figures-"))
    os.chmod(scratch, 0o755)
    cluster = SlurmCluster(scratch / "slurm")
    pg = PostgresServer(scratch / "pg")
    server = None
    rows: list[dict] = []
    try:
        cluster.start()
        os.environ.update(cluster.env)
        rows += slurm_jobs(scratch, jobs)
        rows += slurm_sigkill(scratch, kills, campaign_n)
        pg.start()
        server = MlflowServer(pg.create_database("figures"), scratch / "mlflow").start()
        rows += mlflow_postgres(scratch, server, per_campaign)
        rows.append(write_throughput(server.url, "mlflow_server_postgresql", writes))
        rows.append(write_throughput(pg.create_database("writes"), "postgresql_direct", writes))
        rows.append(write_throughput(f"sqlite:///{scratch}/writes.db", "sqlite", writes))
    finally:
        if server is not None:
            server.stop()
        pg.stop()
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    out = {
        "suite": "connectors",
        "rows": rows,
        "config": {"quick": args.quick, "jobs": jobs, "kills": kills},
        "env": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    args.out.write_text(json.dumps(out, indent=1))
    for r in rows:
        extra = f" ({r['store']})" if "store" in r else ""
        print(f"{r['problem']:<16} {r['metric']:<24} {r['value']:>10.4g}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
