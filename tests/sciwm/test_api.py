"""``sciwm.open_campaign``: status, experiments, predict, rank and best on a real campaign."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sciwm
from sciwm.api_rank import NotRankable
from sciwm.errors import ParameterError, StoreError
from tests.sciwm.serve.campaigns import open_empty_campaign, run_small_campaign

pytestmark = pytest.mark.timeout(240)

NAME = "api-camp"


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("api")
    mp = pytest.MonkeyPatch()
    mp.chdir(folder)
    uri = run_small_campaign(folder, NAME)
    open_empty_campaign(folder, uri, "api-empty")
    open_empty_campaign(folder, uri, "api-mo", second_objective=True)
    yield uri
    mp.undo()


@pytest.fixture(scope="module")
def camp(uri: str) -> sciwm.Campaign:
    return sciwm.open_campaign(NAME, tracking_uri=uri)


def test_status_and_experiments_agree(camp: sciwm.Campaign) -> None:
    s = camp.status()
    frame = camp.experiments()
    assert s["n_experiments"] == len(frame) == 6
    assert s["counts"]["completed"] == 6
    assert list(frame.columns[:6]) == ["seq", "id", "status", "x", "y", "kind"]
    assert s["budget"]["spent"] == pytest.approx(frame["cost"].sum())
    assert s["budget"]["left"] == pytest.approx(s["budget"]["total"] - frame["cost"].sum())
    best_row = frame.loc[frame["f"].idxmax()]
    assert s["best"]["value"] == pytest.approx(best_row["f"])
    assert s["best"]["experiment_id"] == best_row["id"]
    assert camp.best() == s["best"]
    assert s["world_model"]["type"] == "gp" and s["world_model"]["logged_step"] >= 1
    # the predictions made before dispatch are there for the model-driven experiments
    assert frame["pred_f_mean"].notna().sum() >= 1


def test_predict_is_the_logged_world_model(camp: sciwm.Campaign) -> None:
    cands = [{"x": 0.3, "y": 0.7, "kind": "a"}, {"x": "0.9", "y": 0.1, "kind": "b"}]
    preds = camp.predict(cands)
    again = camp.store.load_world_model(NAME).predict(camp.validate(cands))
    assert [p.outcomes["f"].mean for p in preds] == pytest.approx(
        [p.outcomes["f"].mean for p in again]
    )
    assert all(p.cost.lower <= p.cost.mean <= p.cost.upper for p in preds)
    assert preds[0].outcomes["f"].level == camp.spec.scheduler.interval_level
    assert camp.predict(cands, level=0.5)[0].outcomes["f"].level == 0.5
    assert camp.predict([]) == []


def test_rank_orders_by_ei_per_cost_from_the_world_models_cost(camp: sciwm.Campaign) -> None:
    grid = [{"x": x / 4, "y": y / 4, "kind": k} for x in range(5) for y in range(5) for k in "ab"]
    ranked = camp.rank(grid)
    assert [r.rank for r in ranked] == list(range(1, len(grid) + 1))
    values = [r.value for r in ranked]
    assert values == sorted(values, reverse=True)
    assert sorted(map(str, (r.parameters for r in ranked))) == sorted(map(str, camp.validate(grid)))
    for r in ranked[:5]:
        # value = log EI - 0.5 * log(expected cost); the expected cost of a log-normal cost is
        # at least its median, the geometric mean of its interval's ends
        log_ei = float(re.search(r"log expected improvement of f (\S+)", r.why).group(1))
        log_cost = float(re.search(r"log expected cost (\S+)", r.why).group(1))
        median = math.sqrt(r.prediction.cost.lower * r.prediction.cost.upper)
        assert r.value == pytest.approx(log_ei - 0.5 * log_cost, rel=1e-3, abs=1e-3)
        assert math.log(median) - 1e-3 <= log_cost <= math.log(r.prediction.cost.upper)
        assert "predicted cost" in r.why and r.to_dict()["prediction"]["cost"]


@pytest.mark.parametrize(
    ("cands", "needle"),
    [
        ([{"x": 2.0, "y": 0.5, "kind": "a"}], "candidate 0: parameter 'x': 2.0 is out of range"),
        ([{"x": 0.2, "y": 0.5, "kind": "a"}, {"x": 0.2, "z": 1}], "candidate 1: unknown"),
        ([{"x": 0.2, "kind": "a"}], "missing value"),
        ({"x": 0.2, "y": 0.5, "kind": "a"}, "wrap it in a list"),
        ([[0.2, 0.5, "a"]], "expected a dict"),
    ],
)
def test_bad_candidates_say_which_and_why(camp: sciwm.Campaign, cands, needle: str) -> None:
    for ask in (camp.predict, camp.rank):
        with pytest.raises(ParameterError, match=re.escape(needle)):
            ask(cands)


def test_bad_level_and_unknown_campaign(camp: sciwm.Campaign, uri: str) -> None:
    with pytest.raises(ParameterError, match="strictly between 0 and 1"):
        camp.predict([{"x": 0.2, "y": 0.5, "kind": "a"}], level=1.5)
    with pytest.raises(StoreError, match="known campaigns: .*api-camp"):
        sciwm.open_campaign("nope", tracking_uri=uri)


def test_campaign_without_results_says_it_cannot_predict_yet(uri: str) -> None:
    empty = sciwm.open_campaign("api-empty", tracking_uri=uri)
    assert empty.status()["n_experiments"] == 0 and empty.best() is None
    assert len(empty.experiments()) == 0
    with pytest.raises(sciwm.api.NotReadyError, match="no fitted world model yet"):
        empty.predict([{"x": 0.2, "y": 0.5, "kind": "a"}])


def test_a_newer_logged_world_model_is_picked_up(uri: str) -> None:
    camp = sciwm.open_campaign(NAME, tracking_uri=uri, reload_check_s=0.0)
    first = camp.world_model()
    assert camp.world_model() is first  # cached while nothing new is logged
    records = [r for r in camp.records() if r.observation is not None][:3]
    newer = type(first)(first.space, first.outcomes, **first.settings)
    newer.fit([r.experiment for r in records], [r.observation for r in records])
    step = camp.logged_step()
    camp.store.log_world_model(NAME, newer, step + 1)
    try:
        reloaded = camp.world_model()
        assert reloaded is not first
        assert reloaded.summary.n_observations == 3 != first.summary.n_observations
    finally:
        camp.store.log_world_model(NAME, first, step + 2)  # leave the full model latest


def test_import_sciwm_stays_light() -> None:
    code = (
        "import sys, sciwm; sciwm.open_campaign; "
        "print(sorted(m for m in ('torch', 'mlflow', 'pandas', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr
    assert Path(sciwm.api.__file__).name == "api.py"


def test_rank_refuses_a_multi_objective_campaign(uri: str) -> None:
    mo = sciwm.open_campaign("api-mo", tracking_uri=uri)
    assert mo.spec.multi_objective
    with pytest.raises(NotRankable, match="several objectives.*Ask predict"):
        mo.rank([{"x": 0.2, "y": 0.5, "kind": "a"}])


def test_a_store_failing_while_checking_for_a_newer_model(uri: str, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "mlflow.db"
    shutil.copy(uri.removeprefix("sqlite:///"), copy)
    camp = sciwm.open_campaign(NAME, tracking_uri=f"sqlite:///{copy}", reload_check_s=0.0)
    camp.world_model()
    copy.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="failed while looking for the world model"):
        camp.world_model()
