"""The ``sciwm`` command: run, inspect, report and query campaigns; the demo; benchmarks.

Heavy packages (Prefect, botorch) load only inside the commands that need them, so
``sciwm predict`` and ``sciwm campaign status`` answer without Prefect's start-up. The
commands that read a campaign back from the store live in :mod:`sciwm.cli_inspect`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from sciwm.cli_inspect import (
    fmt,
    list_campaigns,
    open_store,
    predict,
    predict_file,
    report,
    status,
)
from sciwm.errors import SciwmError
from sciwm.prediction import DEFAULT_LEVEL
from sciwm.runtime import configure_environment
from sciwm.serve.command import add_serve_arguments, run_serve

BENCH_SUITES = {
    "campaign": "sciwm.bench.campaign:run",
    "connectors": "sciwm.bench.connectors:run",
    "mlrun": "sciwm.bench.mlrun:run",
    "mlrun_world_model": "sciwm.bench.mlrun_world_model:run",
    "md": "sciwm.bench.md:run",
    "serve": "sciwm.bench.serve:run",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sciwm",
        description="Experiment campaigns under a budget, with learned world models in the loop.",
    )
    p.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every step")
    sub = p.add_subparsers(dest="command", required=True)

    camp = sub.add_parser("campaign", help="run and inspect campaigns")
    csub = camp.add_subparsers(dest="action", required=True)
    run = csub.add_parser("run", help="run a campaign file, or resume it where it stopped")
    run.add_argument("file", type=Path, help="campaign TOML file")
    run.add_argument(
        "--no-prefect", action="store_true", help="run the plain loop instead of a Prefect flow"
    )
    st = csub.add_parser("status", help="table of experiments, best so far, budget")
    st.add_argument("name")
    rep = csub.add_parser("report", help="write PNG plots of a campaign")
    rep.add_argument("name")
    rep.add_argument("--out", type=Path, default=None, help="folder (default: reports/NAME)")
    csub.add_parser("list", help="campaigns in the store")

    pred = sub.add_parser("predict", help="ask a campaign's world model; runs nothing real")
    pred.add_argument("name")
    pred.add_argument(
        "--param", "-p", action="append", default=[], metavar="K=V", help="a parameter value"
    )
    pred.add_argument("--level", type=float, default=DEFAULT_LEVEL, help="interval coverage (0-1)")
    pred.add_argument(
        "--file", type=Path, default=None, help="candidates, one per row (CSV) or a JSON list"
    )
    pred.add_argument(
        "--format", choices=("table", "csv", "json"), default=None, help="output (with --file)"
    )
    pred.add_argument("--out", type=Path, default=None, help="write the output here")

    srv = sub.add_parser("serve", help="a REST service and page asking the world models")
    add_serve_arguments(srv)

    demo = sub.add_parser("demo", help="tune a scikit-learn model for real, on defaults")
    demo.add_argument("--budget", type=float, default=None, help="seconds of training compute")
    demo.add_argument("--no-prefect", action="store_true", help=argparse.SUPPRESS)

    conn = sub.add_parser("connectors", help="list connectors; check that a backend is reachable")
    consub = conn.add_subparsers(dest="action", required=True)
    chk = consub.add_parser("check", help="check a connector NAME or a campaign FILE's connector")
    chk.add_argument("target", help="connector name (e.g. local, http) or campaign TOML file")
    chk.add_argument("--set", dest="settings", action="append", default=[], metavar="K=V")
    consub.add_parser("list", help="registered connectors")

    lab = sub.add_parser("lab", help="the reference HTTP lab server")
    lab_serve = lab.add_subparsers(dest="action", required=True).add_parser(
        "serve", help="serve a callable or a data set over the HTTP lab protocol"
    )
    from lab_connectors.http_server.serve import add_arguments

    add_arguments(lab_serve)

    bench = sub.add_parser("bench", help="run a benchmark suite")
    bench.add_argument("suite", choices=sorted(BENCH_SUITES))
    bench.add_argument("--out", type=Path, required=True, help="result JSON file")
    bench.add_argument("--quick", action="store_true", help="fewer seeds, a few minutes")
    bench.add_argument("--seeds", type=int, default=None, help="number of seeds")
    bench.add_argument(
        "--problems",
        default=None,
        help="campaign suite only: comma-separated problems (branin, hartmann6) and groups "
        "of real-data campaigns (lcdb, md); default all",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sciwm`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "mlflow", "botorch", "linear_operator", "gpytorch"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    configure_environment()
    try:
        return _dispatch(args)
    except SciwmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every recorded result is kept; run the same command again to resume",
            file=sys.stderr,
        )
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "campaign":
        if args.action == "run":
            return _run_campaign(args.file, args.tracking_uri, not args.no_prefect)
        if args.action == "status":
            return status(args.name, args.tracking_uri)
        if args.action == "report":
            return report(args.name, args.tracking_uri, args.out)
        if args.action == "list":
            return list_campaigns(args.tracking_uri)
    if args.command == "predict":
        if args.file is not None or args.format or args.out:
            return predict_file(
                args.name, args.file, args.level, args.tracking_uri, args.format, args.out
            )
        return predict(args.name, args.param, args.level, args.tracking_uri)
    if args.command == "serve":
        return run_serve(args)
    if args.command == "demo":
        return _demo(args.budget, args.tracking_uri, not args.no_prefect)
    if args.command == "connectors":
        from sciwm.cli_connectors import check_command, list_command

        if args.action == "check":
            return check_command(args.target, args.settings)
        return list_command()
    if args.command == "lab":
        from lab_connectors.http_server.serve import serve

        return serve(args)
    if args.command == "bench":
        return _bench(args.suite, args.out, args.quick, args.seeds, args.problems)
    raise AssertionError(args)


# -- campaign run ----------------------------------------------------------------------------
def _run_campaign(file: Path, tracking_uri: str | None, use_prefect: bool) -> int:
    from sciwm.spec import load_spec

    spec = load_spec(file)  # fail fast on a bad file, before any heavy import
    result = _run_with_progress(file, spec, tracking_uri, use_prefect)
    _print_result(result)
    return 0


def _run_with_progress(file: Path, spec: Any, tracking_uri: str | None, use_prefect: bool) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.campaign import run_campaign

    with Progress(
        TextColumn("[bold]{task.fields[name]}"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total:.0f} " + spec.budget.unit),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task("", total=spec.budget.total, name=spec.name, info="starting")

        def progress(state: Any, spent: float) -> None:
            from sciwm.experiment import Status

            done = [
                r.observation.outcomes.get(spec.objective.name)
                for r in state.finished
                if r.observation and r.observation.status is Status.COMPLETED
            ]
            done = [v for v in done if v is not None]
            best = (max if spec.maximize else min)(done) if done else None
            info = f"{len(state.finished)} done, {len(state.running)} running"
            if best is not None:
                info += f", best {spec.objective.name} {best:.4g}"
            bar.update(task, completed=min(spent, spec.budget.total), info=info)

        return run_campaign(
            file, Path.cwd(), tracking_uri, use_prefect=use_prefect, progress=progress
        )


def _print_result(result: Any) -> None:
    print()
    print(f"campaign {result.name}: {result.stop_reason}")
    print(
        f"  real experiments : {result.n_experiments} "
        f"({result.n_completed} completed, {result.n_failed} failed)"
    )
    print(f"  real cost spent  : {result.spent:.2f} of {result.budget:.2f}")
    if result.best_value is not None:
        print(f"  best objective   : {result.best_value:.6g}")
        params = ", ".join(f"{k}={fmt(v)}" for k, v in (result.best_parameters or {}).items())
        print(f"  best parameters  : {params}")
        if result.best_note:
            print(f"  note             : {result.best_note}")
    if result.pareto_front is not None:
        hv = "-" if result.hypervolume is None else f"{result.hypervolume:.6g}"
        print(f"  Pareto front     : {len(result.pareto_front)} results, hypervolume {hv}")
        for p in result.pareto_front:
            print("    " + ", ".join(f"{k}={fmt(v)}" for k, v in p["outcomes"].items()))
    if result.infeasible_note:
        print(f"  INFEASIBLE       : {result.infeasible_note}")
    print(f"  MLflow store     : {result.tracking_uri}")


# -- demo ------------------------------------------------------------------------------------
def _demo(budget: float | None, tracking_uri: str | None, use_prefect: bool) -> int:
    import tomllib

    from sciwm.spec import parse_spec

    text = resources.files("sciwm.examples").joinpath("demo_mlrun.toml").read_text()
    data = tomllib.loads(text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data["campaign"]["name"] = f"{data['campaign']['name']}-{stamp}"
    if budget is not None:
        data["budget"]["total"] = budget
    spec = parse_spec(data, "the embedded demo campaign")
    folder = Path(".sciwm") / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{spec.name}.toml"
    file.write_text(_retitle(text, spec.name, data["budget"]["total"]))
    print(
        "sciwm demo: choosing a learner and training size for scikit-learn's digits with an "
        "LCDB-pretrained language-model world model, "
        f"{spec.budget.total:.0f} s of real training compute, "
        f"{spec.scheduler.parallelism} runs at a time"
    )
    print(f"campaign file: {file}")
    t0 = time.time()
    result = _run_with_progress(file, spec, tracking_uri, use_prefect)
    wall = time.time() - t0
    from sciwm.report import write_report

    store = open_store(tracking_uri)
    plots = write_report(store, spec.name, Path("reports") / spec.name)
    print()
    rows = [
        ["best accuracy (held-out 20%)", fmt(result.best_value)],
        [
            "best configuration",
            ", ".join(f"{k}={fmt(v)}" for k, v in (result.best_parameters or {}).items()),
        ],
        [
            "real experiments run",
            f"{result.n_experiments} ({result.n_completed} completed, {result.n_failed} failed)",
        ],
        ["real compute spent", f"{result.spent:.1f} s of {result.budget:.0f} s budget"],
        ["wall time", f"{wall:.0f} s"],
        ["stopped because", result.stop_reason],
        ["MLflow store", result.tracking_uri],
        ["plots", ", ".join(str(p) for p in plots)],
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")
    uri = result.tracking_uri
    print(f"\nsee the runs: mlflow ui --backend-store-uri {uri}")
    print(
        f"ask the world model: sciwm predict {spec.name} -p learner=RandomForestClassifier "
        "-p train_size=1000"
    )
    return 0


def _retitle(text: str, name: str, budget: float) -> str:
    out = []
    for line in text.splitlines():
        if line.startswith(('name = "demo-digits"', 'name = "demo-mlrun"')):
            line = f'name = "{name}"'
        elif line.startswith("total = "):
            line = f"total = {float(budget)}          # seconds of real training compute"
        out.append(line)
    return "\n".join(out) + "\n"


# -- bench -----------------------------------------------------------------------------------
def _bench(
    suite: str, out: Path, quick: bool, seeds: int | None, problems: str | None = None
) -> int:
    from sciwm.registry import load_object

    run = load_object(BENCH_SUITES[suite], what="benchmark suite")
    if problems is not None and suite != "campaign":
        raise SciwmError("sciwm bench: --problems applies to the campaign suite only; drop it")
    extra = {} if problems is None else {"problems": [p.strip() for p in problems.split(",")]}
    run(quick=quick, seeds=seeds, out=out, **extra)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
