"""``sciwm bench serve``: the prediction service through HTTP on loopback.

For each world model (``problem``): a campaign is run to its end by ``sciwm campaign run``
with the file it ships (``gp``: the GP world model on the simulated lab's Hartmann6, the file
of ``sciwm bench campaign``; ``mlrun``: ``sciwm/examples/mlrun_campaign.toml``, the ML-run
world model on LCDB's MagicTelescope replayed), then ``sciwm serve`` is started on it as a
child process (:class:`~sciwm.bench.serve_process.ServiceProcess`) and asked through HTTP:

- ``first_answer_s``: from starting the process to its first prediction (imports, store,
  world model loaded);
- ``latency_p50_ms`` / ``latency_p99_ms``: one candidate per ``predict`` request, one request
  at a time over a kept-alive connection, as a client sees it (JSON both ways included);
- ``predictions_per_s``: batches of 1,000 candidates per request, one at a time;
- ``server_predictions_per_s``: the same batches timed inside the service (its
  ``elapsed_ms``: validation and the world model's ``predict``), so that the rest is HTTP and
  JSON.

Candidates are drawn uniformly from the campaign's space with a seed apart from the
campaign's. The service runs with 1 torch/OpenMP thread (the shipped default: method
``sciwm``) and with 2 (the machine's cores: ``sciwm_2_threads``); the 1-minute load average
before and after each measurement is kept in ``config``.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sciwm.bench.common import Row, env_info, print_table, write_result
from sciwm.bench.serve_process import ServiceProcess

PROBLEMS = ("gp", "mlrun")
METRICS = (
    "first_answer_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "predictions_per_s",
    "server_predictions_per_s",
)
BATCH = 1000
#: Targets of the issue: one-candidate p50, and batched throughput of the ML-run model.
TARGET_P50_MS, TARGET_PER_S = 20.0, 5000.0
CANDIDATE_SEED = 20_261_202


def run(
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    threads: tuple[int, ...] = (1, 2),
) -> dict[str, Any]:
    """Run the suite, print its table and write the result.

    Args:
        quick: Fewer requests and smaller campaigns (a few minutes).
        seeds: Unused (one campaign per world model); accepted for the CLI.
        out: Result JSON path (optional).
        threads: torch / OpenMP thread counts of the service process to measure (1: the
            shipped default, ``SCIWM_TORCH_THREADS``; 2: the machine's cores).

    Returns:
        The result dict ``{"suite": "serve", "rows": [...], "config": {...}, "env": {...}}``.
    """
    n_single = 200 if quick else 1000
    n_batches = 5 if quick else 20
    max_experiments = {"gp": 12 if quick else 30, "mlrun": 12 if quick else 40}
    config = {
        "quick": quick,
        "single_requests": n_single,
        "batch_size": BATCH,
        "batches": n_batches,
        "warmup_requests": 20,
        "service_threads": list(threads),
        "loadavg_1min": {},
        "max_experiments": max_experiments,
        "candidate_seed": CANDIDATE_SEED,
        "targets": {"latency_p50_ms": TARGET_P50_MS, "predictions_per_s_mlrun": TARGET_PER_S},
    }
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="sciwm-bench-serve-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root}/mlflow.db"
        for problem in PROBLEMS:
            t0 = time.perf_counter()
            name = _run_campaign(problem, root, uri, max_experiments[problem])
            print(f"[{problem}] campaign {name} ran in {time.perf_counter() - t0:.0f} s")
            for n_threads in threads:
                load = [os.getloadavg()[0]]
                measured = measure(uri, name, n_single, n_batches, n_threads)
                load.append(os.getloadavg()[0])
                setting = f"http_loopback_{n_threads}_threads"
                config["loadavg_1min"][f"{problem}/{setting}"] = load
                for metric in METRICS:
                    rows.append(
                        {
                            "problem": problem,
                            "method": "sciwm" if n_threads == 1 else f"sciwm_{n_threads}_threads",
                            "metric": metric,
                            "value": measured[metric],
                            "setting": setting,
                        }
                    )
                shown = ", ".join(f"{k}={measured[k]:.4g}" for k in METRICS)
                print(
                    f"[{problem}, {n_threads} threads] {shown} (load {load[0]:.1f}-{load[1]:.1f})"
                )
    print()
    print_table(rows, METRICS)
    result = write_result(out, "serve", rows, config) if out else None
    return result or {"suite": "serve", "rows": rows, "config": config, "env": env_info()}


def _run_campaign(problem: str, root: Path, uri: str, max_experiments: int) -> str:
    """Run the problem's campaign with ``sciwm campaign run``; returns its name."""
    from importlib import resources

    from sciwm.cli import main

    if problem == "gp":
        from sciwm.bench.campaign.product import campaign_file
        from sciwm.testing.problems import problem_named

        hartmann = problem_named("hartmann6")
        text = campaign_file(hartmann, seed=11, cap=1e6, max_experiments=max_experiments)
        name = text.split('name = "', 1)[1].split('"', 1)[0]
    else:
        text = resources.files("sciwm.examples").joinpath("mlrun_campaign.toml").read_text()
        name = "mlrun-replay-magic-serve"
        text = text.replace('name = "mlrun-replay-magic"', f'name = "{name}"')
        text = text.replace("max_experiments = 40", f"max_experiments = {max_experiments}")
    file = root / f"{problem}.toml"
    file.write_text(text)
    code = main(["--tracking-uri", uri, "campaign", "run", str(file), "--no-prefect"])
    if code != 0:
        raise RuntimeError(f"the {problem} campaign failed (exit status {code})")
    return name


def candidates(uri: str, name: str, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` candidates drawn uniformly from the campaign's space."""
    import torch

    from sciwm.store import RecordStore

    space = RecordStore(uri).campaign_spec(name).space()
    return space.sample(n, generator=torch.Generator().manual_seed(seed))


def measure(uri: str, name: str, n_single: int, n_batches: int, threads: int) -> dict[str, float]:
    """Start ``sciwm serve`` on the store and measure it (see the module doc)."""
    pool = candidates(uri, name, BATCH + n_single, CANDIDATE_SEED)
    singles, batch = pool[BATCH:], pool[:BATCH]
    env = {k: str(threads) for k in ("SCIWM_TORCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    # from this working directory, as a user starts it next to the campaign's files
    proc = ServiceProcess(uri, env=env, cwd=Path.cwd())
    try:
        proc.start()
        conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=300)
        path = f"/api/campaigns/{name}/predict"
        while True:  # the first answer: the world model is loaded on the first question
            status, _ = _post(conn, path, {"candidates": singles[:1]})
            if status == 200:
                break
            if status != 503:
                raise RuntimeError(f"the service answered {status}:\n{proc.log()}")
        first = time.perf_counter() - proc.started_at
        for c in singles[:20]:
            _post(conn, path, {"candidates": [c]})
        times = []
        for c in singles:
            t0 = time.perf_counter()
            status, _ = _post(conn, path, {"candidates": [c]})
            times.append(time.perf_counter() - t0)
            assert status == 200
        _post(conn, path, {"candidates": batch})  # warm the batched path once
        server_s = 0.0
        t0 = time.perf_counter()
        for _ in range(n_batches):
            status, body = _post(conn, path, {"candidates": batch})
            assert status == 200 and len(body["predictions"]) == BATCH
            server_s += body["elapsed_ms"] / 1e3
        per_s = n_batches * BATCH / (time.perf_counter() - t0)
        conn.close()
    finally:
        proc.close()
    return {
        "first_answer_s": first,
        "latency_p50_ms": 1e3 * statistics.median(times),
        "latency_p99_ms": 1e3 * _quantile(times, 0.99),
        "predictions_per_s": per_s,
        "server_predictions_per_s": n_batches * BATCH / server_s,
    }


def _post(conn: http.client.HTTPConnection, path: str, body: Any) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, json.loads(raw) if raw else None


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
