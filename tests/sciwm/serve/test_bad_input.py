"""Every bad request gets a 4xx JSON reply saying what was wrong and how to fix it.

No reply is a 500 or holds a traceback, and the token appears in no reply and no log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sciwm.errors import SciwmError
from sciwm.serve.app import create_app
from sciwm.serve.settings import TOKEN_ENV, ServeSettings, read_token
from tests.sciwm.serve.conftest import EMPTY, MULTI, NAME, TOKEN

pytestmark = pytest.mark.timeout(240)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD = {"x": 0.3, "y": 0.7, "kind": "a"}


@pytest.fixture(scope="module")
def client(store_uri: str) -> Iterator[TestClient]:
    settings = ServeSettings(tracking_uri=store_uri, token=TOKEN, max_batch=50)
    settings = ServeSettings(**{**settings.__dict__, "max_body_bytes": 20_000})
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _check(reply, status: int, code: str, *needles: str) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"error", "message"} and body["error"] == code
    for needle in needles:
        assert needle in body["message"], body["message"]
    assert "Traceback" not in reply.text and TOKEN not in reply.text
    return body


def _predict(client: TestClient, name: str = NAME, **kw):
    return client.post(f"/api/campaigns/{name}/predict", headers=AUTH, **kw)


@pytest.mark.parametrize("endpoint", ["predict", "rank"])
@pytest.mark.parametrize(
    ("candidates", "needles"),
    [
        ([{**GOOD, "z": 1}], ["candidate 0", "unknown parameter", "'z'", "the space has"]),
        ([GOOD, {**GOOD, "x": 2.0}], ["candidate 1", "'x'", "out of range [0.0, 1.0]"]),
        ([{"x": 0.3, "kind": "a"}], ["missing value", "'y'"]),
        ([{**GOOD, "kind": "c"}], ["'c' is not one of ['a', 'b']"]),
        ([{**GOOD, "x": "abc"}], ["'abc' is not a number"]),
        ([{**GOOD, "x": True}], ["boolean"]),
        ([{**GOOD, "x": None}], ["not a number"]),
    ],
)
def test_bad_parameters(client: TestClient, endpoint: str, candidates, needles) -> None:
    reply = client.post(
        f"/api/campaigns/{NAME}/{endpoint}", headers=AUTH, json={"candidates": candidates}
    )
    _check(reply, 422, "bad_parameters", *needles)


def test_unknown_campaign_lists_the_known_ones(client: TestClient) -> None:
    for reply in (
        client.get("/api/campaigns/nope", headers=AUTH),
        client.get("/api/campaigns/nope/experiments", headers=AUTH),
        client.get("/api/campaigns/nope/plots/best_vs_cost.png", headers=AUTH),
        _predict(client, "nope", json={"candidates": [GOOD]}),
    ):
        _check(reply, 404, "unknown_campaign", "'nope'", NAME, "GET /api/campaigns")


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, "JSON"),
        ({"json": [GOOD]}, "candidates"),
        ({"json": {"candidate": [GOOD]}}, "candidates: Field required"),
        ({"json": {"candidates": GOOD}}, "candidates: Input should be a valid list"),
        ({"json": {"candidates": [[0.3, 0.7, "a"]]}}, "valid dictionary"),
        ({"json": {"candidates": [GOOD], "level": 1.5}}, "level: Input should be less than 1"),
        ({"json": {"candidates": [GOOD], "levle": 0.5}}, "levle: Extra inputs"),
    ],
)
def test_malformed_body(client: TestClient, kw: dict, needle: str) -> None:
    headers = {**AUTH, **kw.pop("headers", {})}
    reply = client.post(f"/api/campaigns/{NAME}/predict", headers=headers, **kw)
    _check(reply, 422, "malformed_body", needle, "/openapi.json")


def test_oversized_batch_and_body(client: TestClient) -> None:
    _check(
        _predict(client, json={"candidates": [GOOD] * 51}),
        413,
        "batch_too_large",
        "51 candidates",
        "limit of 50",
        "split",
    )
    big = {"candidates": [{**GOOD, "kind": "a" * 30_000}]}
    _check(_predict(client, json=big), 413, "body_too_large", "limit of 20000")

    def chunks() -> Iterator[bytes]:  # streamed, with no Content-Length to go by
        yield b'{"candidates": ['
        for _ in range(1000):
            yield b'{"x": 0.3, "y": 0.7, "kind": "a"},'
        yield b"]}"

    streamed = client.post(
        f"/api/campaigns/{NAME}/predict",
        headers={**AUTH, "Content-Type": "application/json"},
        content=chunks(),
    )
    _check(streamed, 413, "body_too_large")


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        ({"Authorization": "Bearer wrong-token-wrong-token"}, "wrong"),
        ({"Authorization": f"Basic {TOKEN}"}, "missing"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "wrong"),
    ],
)
def test_missing_or_wrong_token(client: TestClient, headers: dict, why: str) -> None:
    for reply in (
        client.get("/api/campaigns", headers=headers),
        client.get(f"/api/campaigns/{NAME}/plots/best_vs_cost.png", headers=headers),
        client.post(f"/api/campaigns/{NAME}/predict", headers=headers, json={"candidates": [GOOD]}),
    ):
        body = _check(reply, 401, "unauthorized", f"token is {why}", "Authorization: Bearer")
        assert reply.headers["www-authenticate"] == "Bearer"
        assert "wrong-token" not in body["message"]
    assert client.get("/api/health").status_code == 200  # the health check needs none
    assert client.get("/").status_code == 200  # nor the page itself (it holds no data)


def test_world_model_not_fitted_yet(client: TestClient) -> None:
    for endpoint in ("predict", "rank"):
        reply = client.post(
            f"/api/campaigns/{EMPTY}/{endpoint}", headers=AUTH, json={"candidates": [GOOD]}
        )
        _check(reply, 409, "world_model_not_ready", "no fitted world model yet", "campaign run")
    plot = client.get(f"/api/campaigns/{EMPTY}/plots/best_vs_cost.png", headers=AUTH)
    _check(plot, 409, "no_results_yet", "no completed experiment")


def test_rank_of_a_multi_objective_campaign(client: TestClient) -> None:
    reply = client.post(f"/api/campaigns/{MULTI}/rank", headers=AUTH, json={"candidates": [GOOD]})
    _check(reply, 422, "not_rankable", "several objectives", "predict")


def test_unknown_plot_endpoint_and_method(client: TestClient) -> None:
    _check(
        client.get(f"/api/campaigns/{NAME}/plots/nope.png", headers=AUTH),
        404,
        "unknown_plot",
        "best_vs_cost",
    )
    _check(client.get("/api/nothing", headers=AUTH), 404, "not_found", "/openapi.json")
    _check(
        client.get(f"/api/campaigns/{NAME}/predict", headers=AUTH),
        405,
        "method_not_allowed",
        "GET",
    )


def test_no_secret_in_the_log(store_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ServeSettings(tracking_uri=store_uri, token=TOKEN)
    assert TOKEN not in repr(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        c.get("/api/campaigns", headers={"Authorization": "Bearer wrong-token-wrong-token"})
        c.post(f"/api/campaigns/{NAME}/predict", headers=AUTH, json={"candidates": [GOOD]})
        c.post(f"/api/campaigns/{NAME}/predict", headers=AUTH, content=b"{")
    assert caplog.records  # the capture works (MLflow and the app log at DEBUG)
    assert TOKEN not in caplog.text and "wrong-token" not in caplog.text


# -- settings ---------------------------------------------------------------------------------
def test_beyond_loopback_needs_a_token() -> None:
    for host in ("0.0.0.0", "192.0.2.1", "::", "example.org"):
        with pytest.raises(SciwmError, match=f"--host {host} is not a loopback.*{TOKEN_ENV}"):
            ServeSettings(host=host)
        assert ServeSettings(host=host, token=TOKEN).host == host
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert ServeSettings(host=host).token is None
    with pytest.raises(SciwmError, match="too short") as err:
        ServeSettings(token="short-secret")
    assert "short-secret" not in str(err.value)


def test_token_from_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert read_token(None) is None
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    assert read_token(None) == TOKEN
    f = tmp_path / "token"
    f.write_text(f"  {TOKEN}x\n")
    assert read_token(f) == TOKEN + "x"  # the file wins over the environment
    f.write_text("\n")
    with pytest.raises(SciwmError, match="is empty"):
        read_token(f)
    with pytest.raises(SciwmError, match="cannot read the token file"):
        read_token(tmp_path / "missing")


def test_a_store_that_fails_gets_503_not_a_traceback(store_uri: str, tmp_path: Path) -> None:
    """The loaded world model keeps answering; what needs the store gets 503."""
    import shutil

    db = Path(store_uri.removeprefix("sqlite:///"))
    copy = tmp_path / "mlflow.db"
    shutil.copy(db, copy)
    settings = ServeSettings(tracking_uri=f"sqlite:///{copy}", reload_check_s=0.0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        assert _predict(c, json={"candidates": [GOOD]}).status_code == 200
        copy.write_bytes(b"this is not a database" * 100)
        for _ in range(3):  # the background checks fail and are logged; answers go on
            assert _predict(c, json={"candidates": [GOOD]}).status_code == 200
        _check(c.get(f"/api/campaigns/{NAME}"), 503, "store_unavailable", "failed while")
        _check(c.get("/api/campaigns"), 503, "store_unavailable", "failed while")
