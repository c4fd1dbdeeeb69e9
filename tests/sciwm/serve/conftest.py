"""A finished campaign and an empty one in a SQLite store, shared by the service's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sciwm.serve.campaigns import open_empty_campaign, run_small_campaign

NAME = "serve-camp"
EMPTY = "serve-empty"
MULTI = "serve-two-objectives"
TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture(scope="package")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("serve")
    mp = pytest.MonkeyPatch()
    mp.chdir(folder)
    uri = run_small_campaign(folder, NAME)
    open_empty_campaign(folder, uri, EMPTY)
    open_empty_campaign(folder, uri, MULTI, second_objective=True)
    yield uri
    mp.undo()


@pytest.fixture
def good() -> dict:
    return {"x": 0.3, "y": 0.7, "kind": "a"}


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]
