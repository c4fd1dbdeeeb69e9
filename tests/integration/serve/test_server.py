"""``sciwm serve`` as a real process: token from a file, limits and errors through uvicorn."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from sciwm.bench.serve_process import ServiceProcess
from tests.integration.serve.conftest import NAME

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SECRET = "file-token-0123456789-abcdefghij"
GOOD = {"x": 0.3, "y": 0.7, "kind": "a"}


def test_token_file_limits_and_errors(store_uri: str, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    args = ("--token-file", str(token_file), "--max-batch", "5", "--max-body-bytes", "4096")
    with ServiceProcess(store_uri, args=args) as proc:
        assert proc.request("GET", "/api/health") == (200, {"status": "ok"})
        status, body = proc.request("GET", "/api/campaigns")
        assert status == 401 and body["error"] == "unauthorized"
        status, body = proc.request("GET", "/api/campaigns", token=SECRET)
        assert status == 200 and NAME in body["campaigns"]
        path = f"/api/campaigns/{NAME}/predict"
        status, body = proc.request("POST", path, {"candidates": [GOOD] * 6}, token=SECRET)
        assert status == 413 and body["error"] == "batch_too_large"
        status, body = proc.request("POST", path, {"candidates": [GOOD] * 5}, token=SECRET)
        assert status == 200 and len(body["predictions"]) == 5
        big = {"candidates": [{**GOOD, "kind": "a" * 5000}]}
        assert proc.request("POST", path, big, token=SECRET)[1]["error"] == "body_too_large"
        conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=30)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"}
        conn.request("POST", path, body=b'{"candidates": [', headers=headers)
        reply = conn.getresponse()
        text = reply.read().decode()
        assert reply.status == 422 and '"malformed_body"' in text and "Traceback" not in text
        conn.close()
        log = proc.log()
    assert "bearer token required" in log and SECRET not in log


def test_concurrent_questions_all_get_the_same_answers(server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = f"/api/campaigns/{NAME}/predict"
    cands = [{"x": i / 10, "y": 1 - i / 10, "kind": "ab"[i % 2]} for i in range(10)]
    expected = server.request("POST", path, {"candidates": cands})[1]["predictions"]

    def ask(i: int) -> tuple[int, list]:
        status, body = server.request("POST", path, {"candidates": cands[i % 10 :] or cands})
        return status, body["predictions"] if status == 200 else body

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(ask, range(40)))
    for i, (status, preds) in enumerate(replies):
        assert status == 200, preds
        want = expected[i % 10 :]
        assert [p["parameters"] for p in preds] == [p["parameters"] for p in want]
        assert [p["extrapolating"] for p in preds] == [p["extrapolating"] for p in want]
        for got, exp in zip(preds, want, strict=True):  # a batch's size moves the last digits
            for key in ("mean", "lower", "upper"):
                assert got["cost"][key] == pytest.approx(exp["cost"][key], rel=1e-6)
                f, g = got["outcomes"]["f"][key], exp["outcomes"]["f"][key]
                assert f == pytest.approx(g, rel=1e-6, abs=1e-9)
