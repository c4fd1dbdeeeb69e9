"""The service's endpoints on a real campaign: answers, plots, the page, reloads, CORS."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

import sciwm
from sciwm.serve.app import create_app
from sciwm.serve.settings import ServeSettings
from tests.sciwm.serve.conftest import EMPTY, MULTI, NAME

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def client(store_uri: str) -> TestClient:
    with TestClient(create_app(ServeSettings(tracking_uri=store_uri))) as c:
        yield c


def test_campaigns_status_and_experiments(client: TestClient, store_uri: str) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    assert client.get("/api/campaigns").json() == {"campaigns": sorted([NAME, EMPTY, MULTI])}
    status = client.get(f"/api/campaigns/{NAME}").json()
    expected = sciwm.open_campaign(NAME, store_uri).status()
    assert status == json.loads(json.dumps(expected))
    assert [p["name"] for p in status["parameters"]] == ["x", "y", "kind"]
    rows = client.get(f"/api/campaigns/{NAME}/experiments").json()["experiments"]
    assert len(rows) == status["n_experiments"] == 6
    assert sum(r["cost"] for r in rows) == pytest.approx(status["budget"]["spent"])


def test_predict_a_batch_answers_as_the_python_api(
    client: TestClient, store_uri: str, good: dict
) -> None:
    cands = [good, {"x": 0.9, "y": 0.1, "kind": "b"}, {"x": "0.5", "y": 0, "kind": "a"}]
    reply = client.post(f"/api/campaigns/{NAME}/predict", json={"candidates": cands})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    local = sciwm.open_campaign(NAME, store_uri).predict(cands)
    assert [p["outcomes"]["f"]["mean"] for p in body["predictions"]] == pytest.approx(
        [p.outcomes["f"].mean for p in local]
    )
    assert body["predictions"][2]["parameters"] == {"x": 0.5, "y": 0.0, "kind": "a"}
    assert body["cost_unit"] == "s" and body["world_model"]["type"] == "gp"
    assert body["world_model"]["trained_on"] == 6
    assert all(isinstance(p["extrapolating"], bool) for p in body["predictions"])
    half = client.post(f"/api/campaigns/{NAME}/predict", json={"candidates": [good], "level": 0.5})
    est = half.json()["predictions"][0]["outcomes"]["f"]
    assert est["level"] == 0.5
    assert (
        est["upper"] - est["lower"]
        < body["predictions"][0]["outcomes"]["f"]["upper"]
        - (body["predictions"][0]["outcomes"]["f"]["lower"])
    )


def test_rank_returns_the_batch_in_the_agents_order(client: TestClient, store_uri: str) -> None:
    cands = [
        {"x": x / 3, "y": y / 3, "kind": "ab"[(x + y) % 2]} for x in range(4) for y in range(4)
    ]
    body = client.post(f"/api/campaigns/{NAME}/rank", json={"candidates": cands}).json()
    local = sciwm.open_campaign(NAME, store_uri).rank(cands)
    assert [r["parameters"] for r in body["ranked"]] == [r.parameters for r in local]
    assert [r["rank"] for r in body["ranked"]] == list(range(1, 17))
    assert body["acquisition"] == "ei_per_cost" and "predicted cost" in body["ranked"][0]["why"]


def test_plots_are_pngs(client: TestClient) -> None:
    for plot in ("best_vs_cost", "predicted_vs_measured"):
        reply = client.get(f"/api/campaigns/{NAME}/plots/{plot}.png")
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "image/png"
        assert reply.content[:8] == b"\x89PNG\r\n\x1a\n" and len(reply.content) > 5000


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "/api/campaigns" in js.text
    assert client.get("/static/style.css").status_code == 200


def test_a_newer_world_model_is_loaded_without_restart(store_uri: str, good: dict) -> None:
    settings = ServeSettings(tracking_uri=store_uri, reload_check_s=0.0)
    with TestClient(create_app(settings)) as c:
        ask = {"candidates": [good]}
        first = c.post(f"/api/campaigns/{NAME}/predict", json=ask).json()
        assert first["world_model"]["trained_on"] == 6
        camp = sciwm.open_campaign(NAME, store_uri)
        full = camp.world_model()
        records = [r for r in camp.records() if r.observation is not None][:4]
        newer = type(full)(full.space, full.outcomes, **full.settings)
        newer.fit([r.experiment for r in records], [r.observation for r in records])
        step = camp.logged_step()
        camp.store.log_world_model(NAME, newer, step + 1)
        try:  # the current model answers while the newer one loads in the background
            assert _trained_on_soon(c, ask, 4)
        finally:
            camp.store.log_world_model(NAME, full, step + 2)
        assert _trained_on_soon(c, ask, 6)
        third = c.post(f"/api/campaigns/{NAME}/predict", json=ask).json()
        assert third["predictions"] == first["predictions"]


def _trained_on_soon(client: TestClient, ask: dict, n: int, timeout_s: float = 30.0) -> bool:
    """Whether the service answers with a world model trained on ``n`` within the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reply = client.post(f"/api/campaigns/{NAME}/predict", json=ask).json()
        if reply["world_model"]["trained_on"] == n:
            return True
        time.sleep(0.05)
    return False


def test_cors_is_off_by_default_and_on_for_named_origins(store_uri: str) -> None:
    origin = {"Origin": "http://127.0.0.1:9999"}
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(ServeSettings(tracking_uri=store_uri))) as c:
        assert "access-control-allow-origin" not in c.get("/api/campaigns", headers=origin).headers
        opt = c.options(f"/api/campaigns/{NAME}/predict", headers=preflight)
        assert "access-control-allow-origin" not in opt.headers
    allowed = ServeSettings(tracking_uri=store_uri, cors_origins=("http://127.0.0.1:9999",))
    with TestClient(create_app(allowed)) as c:
        got = c.get("/api/campaigns", headers=origin).headers
        assert got["access-control-allow-origin"] == "http://127.0.0.1:9999"
        other = c.get("/api/campaigns", headers={"Origin": "http://127.0.0.1:1"}).headers
        assert "access-control-allow-origin" not in other


def test_committed_openapi_is_the_apps(repo_root) -> None:
    from sciwm.serve.openapi import dump

    committed = (repo_root / "docs" / "serve_openapi.json").read_text()
    assert committed == dump(), (
        "docs/serve_openapi.json is out of date: run "
        "`python -m sciwm.serve.openapi docs/serve_openapi.json`"
    )
    paths = json.loads(committed)["paths"]
    assert {"/api/campaigns/{name}/predict", "/api/campaigns/{name}/rank"} <= set(paths)
