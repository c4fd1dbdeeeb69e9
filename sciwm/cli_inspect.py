"""The ``sciwm`` commands that read a campaign back from the record store.

``sciwm campaign status``, ``campaign list``, ``campaign report`` and ``predict`` answer from
the MLflow store and the campaign's logged world model; none of them runs a real experiment or
imports Prefect, so they start fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sciwm.errors import ParameterError, SciwmError


def open_store(tracking_uri: str | None) -> Any:
    """The record store at ``tracking_uri`` (default: :func:`~sciwm.store.default_tracking_uri`)."""
    from sciwm.store import RecordStore, default_tracking_uri

    return RecordStore(tracking_uri or default_tracking_uri())


def fmt(v: Any) -> str:
    """A value as a table cell: floats to 4 significant digits."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# -- status / list ---------------------------------------------------------------------------
def status(name: str, tracking_uri: str | None) -> int:
    """``sciwm campaign status``: every experiment, the best so far and the budget left.

    With several objectives it shows each objective's value and the Pareto front with its
    hypervolume; with ``[[constraints]]`` the best is the best feasible result, and a
    campaign with no feasible result says so.

    Args:
        name: The campaign.
        tracking_uri: The store (``None``: the default).

    Returns:
        The exit status (0).
    """
    from sciwm.summary import (
        campaign_summary,
        fidelity_note,
        gate_lines,
        gate_summary,
        infeasible_note,
    )

    store = open_store(tracking_uri)
    spec = store.campaign_spec(name)
    records = store.records(name)
    obj = spec.objective.name
    shown = [o.name for o in spec.objectives] if spec.multi_objective else [obj]
    shown += [c.outcome for c in spec.constraints if c.outcome not in shown]
    header = ["seq", "id", "status", *spec.space().names, *shown, "cost", "predicted", "note"]
    rows = []
    for r in records:
        o = r.observation
        pred = r.prediction.outcomes.get(obj) if r.prediction else None
        rows.append(
            [
                str(r.experiment.seq),
                r.experiment.id,
                r.status.value,
                *(fmt(r.experiment.parameters.get(n)) for n in spec.space().names),
                *(fmt(o.outcomes[k]) if o and k in o.outcomes else "-" for k in shown),
                fmt(o.cost) if o and o.cost is not None else "-",
                f"{pred.mean:.4g}±{pred.std:.2g}" if pred else "-",
                ((o.error or "") if o else "")[:60].replace("\n", " "),
            ]
        )
    print_table(header, rows)
    s = campaign_summary(
        records, maximize=spec.maximize, objective=obj, constraints=spec.constraints
    )
    spent = float(s.get("spent", 0.0))
    print()
    if spec.multi_objective:
        _print_front(records, spec)
    else:
        best = s.get("best_value")
        word = "best feasible" if spec.constraints else "best"
        print(f"{word} {obj}: {fmt(best) if best is not None else '-'}")
        if s.get("best_parameters"):
            print(
                "best parameters: "
                + ", ".join(f"{k}={fmt(v)}" for k, v in s["best_parameters"].items())
            )
            note = fidelity_note(spec.space(), s["best_parameters"])
            if note:
                print(f"note: {note}")
    completed = s["counts"].get("completed", 0)
    note = infeasible_note(completed, s["n_feasible"], spec.constraints)
    if note:
        print(f"INFEASIBLE: {note}")
    elif spec.constraints:
        print(f"feasible: {s['n_feasible']} of {completed} completed experiments")
    print(
        f"budget: spent {spent:.2f} {spec.budget.unit}, left {spec.budget.total - spent:.2f} "
        f"of {spec.budget.total:.2f}"
    )
    for line in gate_lines(gate_summary(records, store.virtual_answers(name)), spec.budget.unit):
        print(line)
    reason = store.stop_reason(name)
    if reason:
        print(f"stopped because: {reason}")
    return 0


def _print_front(records: list[Any], spec: Any) -> None:
    """The Pareto front, its hypervolume and reference point (several objectives)."""
    from sciwm.summary import pareto_summary

    p = pareto_summary(records, spec)
    names = [o.name for o in spec.objectives]
    if p["ref"] is None:
        print("Pareto front: no completed result yet")
        return
    ref = ", ".join(f"{n}={v:.4g}" for n, v in zip(names, p["ref"], strict=True))
    how = "inferred from the results" if p["ref_inferred"] else "from the campaign file"
    print(f"Pareto front: {len(p['front'])} of {p['n_feasible']} results")
    front_rows = [
        [
            pt["experiment_id"],
            *(fmt(pt["outcomes"][n]) for n in names),
            ", ".join(f"{k}={fmt(v)}" for k, v in pt["parameters"].items()),
        ]
        for pt in p["front"]
    ]
    print_table(["id", *names, "parameters"], front_rows)
    print(f"hypervolume: {p['hypervolume']:.6g} (reference point {ref}, {how})")
    if p["dominated_by_ref"]:
        print(
            "note: no result beats the reference point in every objective yet (hypervolume 0); "
            "check the objectives' 'ref' in the campaign file"
        )


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print ``rows`` under ``header`` in left-aligned columns."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def list_campaigns(tracking_uri: str | None) -> int:
    """``sciwm campaign list``: the campaigns in the store, one a line; returns 0."""
    store = open_store(tracking_uri)
    names = store.campaigns()
    if not names:
        print(f"no campaigns in {store.tracking_uri}")
    for n in names:
        print(n)
    return 0


# -- report ----------------------------------------------------------------------------------
def report(name: str, tracking_uri: str | None, out: Path | None) -> int:
    """``sciwm campaign report``: write the campaign's PNG plots to ``out``; returns 0."""
    from sciwm.report import write_report

    store = open_store(tracking_uri)
    paths = write_report(store, name, out or Path("reports") / name)
    for p in paths:
        print(f"wrote {p}")
    from sciwm.summary import gate_lines, gate_summary

    spec = store.campaign_spec(name)
    summary = gate_summary(store.records(name), store.virtual_answers(name))
    for line in gate_lines(summary, spec.budget.unit):
        print(line)
    return 0


# -- predict ---------------------------------------------------------------------------------
def predict(name: str, pairs: list[str], level: float, tracking_uri: str | None) -> int:
    """``sciwm predict``: the campaign's world model at one point; runs nothing real.

    Args:
        name: The campaign.
        pairs: ``name=value`` strings, one per parameter of the campaign's space.
        level: Interval coverage, strictly between 0 and 1.
        tracking_uri: The store (``None``: the default).

    Returns:
        The exit status (0).

    Raises:
        ParameterError: If ``level`` or a parameter value is not valid for the campaign.
        SciwmError: If the campaign has no world model that can predict yet.
    """
    if not 0 < level < 1:
        raise ParameterError(f"--level must lie strictly between 0 and 1, got {level}")
    store = open_store(tracking_uri)
    spec = store.campaign_spec(name)
    space = spec.space()
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ParameterError(f"--param {pair!r} is not of the form name=value")
        values[key.strip()] = value.strip()
    params = space.validate(values)
    model = store.load_world_model(name) or fresh_world_model(store, spec, name)
    t0 = time.perf_counter()
    (pred,) = model.predict([params], level=level)
    dt = (time.perf_counter() - t0) * 1000
    pct = f"{level:.0%}"
    header = ["quantity", "mean", "std", f"{pct} interval"]
    rows = [
        [k, f"{e.mean:.4g}", f"{e.std:.3g}", f"[{e.lower:.4g}, {e.upper:.4g}]"]
        for k, e in pred.outcomes.items()
    ]
    c = pred.cost
    rows.append(
        [
            f"cost ({spec.budget.unit})",
            f"{c.mean:.4g}",
            f"{c.std:.3g}",
            f"[{c.lower:.4g}, {c.upper:.4g}]",
        ]
    )
    print_table(header, rows)
    assert model.summary is not None
    print(
        f"\nworld model '{model.name}' trained on {model.summary.n_observations} experiments; "
        f"answered in {dt:.1f} ms; nothing real was run"
    )
    if pred.extrapolating:
        why = pred.extrapolating_reason or "this point is far from the training data"
        print(f"extrapolating: {why}; trust the intervals less")
    return 0


def fresh_world_model(store: Any, spec: Any, name: str) -> Any:
    """The campaign's world model fitted on its results, for a campaign that logged none."""
    from sciwm.registry import build_world_model

    model = build_world_model(spec.world_model, spec.space(), spec.outcome_names)
    finished = [r for r in store.records(name) if r.observation is not None]
    experiments = [r.experiment for r in finished]
    observations = [r.observation.checked(spec.outcome_names) for r in finished]
    if not model.can_fit(experiments, observations):
        raise SciwmError(
            f"campaign {name!r} has no fitted world model yet: its {spec.world_model.type!r} "
            f"world model cannot predict from {len(finished)} finished experiment(s); run "
            "`sciwm campaign run` until more have completed"
        )
    model.fit(experiments, observations)
    return model


# -- predict --file --------------------------------------------------------------------------
def predict_file(
    name: str,
    file: Path | None,
    level: float,
    tracking_uri: str | None,
    out_format: str | None = None,
    out: Path | None = None,
) -> int:
    """``sciwm predict NAME --file F``: the world model's prediction for every candidate in F.

    Args:
        name: The campaign.
        file: Candidates: a CSV file with a header row of parameter names, or a JSON list of
            objects (or ``{"candidates": [...]}``), by its suffix (``.csv`` / ``.json``).
        level: Interval coverage, strictly between 0 and 1.
        tracking_uri: The store (``None``: the default).
        out_format: ``"table"``, ``"csv"`` or ``"json"`` (default: from ``out``'s suffix, else
            a table).
        out: Where to write (default: standard output).

    Returns:
        The exit status (0).

    Raises:
        ParameterError: If the file, a row or ``level`` is not valid (the row is named).
        SciwmError: If the campaign has no world model that can predict yet.
    """
    from sciwm.api import open_campaign

    if file is None:
        raise ParameterError("--format and --out go with --file FILE (a CSV or JSON file)")
    if not 0 < level < 1:
        raise ParameterError(f"--level must lie strictly between 0 and 1, got {level}")
    fmt_ = out_format or _format_of(out)
    rows = read_candidates(file)
    camp = open_campaign(name, tracking_uri)
    params = []
    for i, row in enumerate(rows, start=1):
        try:
            params.append(camp.space.validate(row))
        except ParameterError as exc:
            raise ParameterError(f"{file}, candidate {i}: {exc}") from None
    t0 = time.perf_counter()
    preds = camp.world_model().predict(params, level=level) if params else []
    dt = (time.perf_counter() - t0) * 1000
    text = render_predictions(params, preds, fmt_)
    if out is None:
        print(text, end="")
    else:
        out.write_text(text)
        print(f"wrote {len(preds)} predictions to {out} ({dt:.0f} ms; nothing real was run)")
    if any(p.extrapolating for p in preds) and fmt_ == "table":
        print("warning: some candidates lie outside the world model's data (extrapolating=True)")
    return 0


def _format_of(out: Path | None) -> str:
    if out is None:
        return "table"
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in ("csv", "json"):
        raise ParameterError(f"--out {out}: name a .csv or .json file, or give --format csv|json")
    return suffix


def read_candidates(file: Path) -> list[dict[str, Any]]:
    """Candidate rows of a CSV (header row of names) or JSON (a list of objects) file.

    Raises:
        ParameterError: If the file is missing, of another kind, or malformed.
    """
    import csv
    import json

    suffix = file.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ParameterError(f"--file {file}: give a .csv or .json file of candidates")
    try:
        text = file.read_text()
    except OSError as exc:
        raise ParameterError(f"--file {file}: cannot read it ({exc.strerror})") from None
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in reader]
        if reader.fieldnames is None:
            raise ParameterError(f"--file {file}: empty; the first row must name the parameters")
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"--file {file}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and "candidates" in data:
        data = data["candidates"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ParameterError(
            f"--file {file}: expected a JSON list of objects of parameter values, e.g. "
            '[{"x": 0.5, "kind": "a"}]'
        )
    return data


def render_predictions(params: list[dict[str, Any]], preds: list[Any], out_format: str) -> str:
    """Predictions as a table, CSV or JSON text (one row or object per candidate)."""
    import csv
    import io
    import json

    if out_format == "json":
        items = [{"parameters": p, **pr.to_dict()} for p, pr in zip(params, preds, strict=True)]
        return json.dumps(items, indent=2) + "\n"
    flat = []
    for p, pr in zip(params, preds, strict=True):
        row: dict[str, Any] = dict(p)
        for key, est in [*pr.outcomes.items(), ("cost", pr.cost)]:
            for field in ("mean", "std", "lower", "upper"):
                row[f"{key}_{field}"] = getattr(est, field)
        row["extrapolating"] = pr.extrapolating
        flat.append(row)
    if not flat:
        return ""
    if out_format == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(flat[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
        return buf.getvalue()
    import contextlib

    header = list(flat[0])
    cells = [[fmt(r[h]) for h in header] for r in flat]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print_table(header, cells)
    return buf.getvalue()
