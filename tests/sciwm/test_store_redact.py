"""Passwords in a tracking URI never reach a message."""

from __future__ import annotations

import pytest

from sciwm.errors import StoreError
from sciwm.store import RecordStore
from sciwm.store.connection import redact_uri, without_secrets


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "postgresql://team:hunter2@db.lab:5432/mlflow",
            "postgresql://team:***@db.lab:5432/mlflow",
        ),
        ("https://u:p%40ss@mlflow.lab/", "https://u:***@mlflow.lab/"),
        (
            "postgresql://db/mlflow?user=a&password=hunter2",
            "postgresql://db/mlflow?user=a&password=***",
        ),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("postgresql://team@db/mlflow", "postgresql://team@db/mlflow"),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_without_secrets_scrubs_the_password_anywhere() -> None:
    uri = "postgresql://team:hunter2@db.lab/mlflow"
    text = f"could not connect to {uri} (password hunter2 rejected)"
    assert "hunter2" not in without_secrets(text, uri)


def test_an_unreachable_store_hides_the_password() -> None:
    uri = "postgresql+psycopg://team:hunter2@127.0.0.1:1/mlflow"  # port 1: nothing listens
    with pytest.raises(StoreError) as info:
        RecordStore(uri)
    assert "hunter2" not in str(info.value)
    assert "team:***@127.0.0.1:1/mlflow" in str(info.value)
