"""Process-wide settings applied before MLflow or Prefect are imported."""

from __future__ import annotations

import os
from pathlib import Path


def configure_environment(root: str | Path | None = None) -> Path:
    """Make MLflow and Prefect local, quiet and self-contained under ``root/.sciwm``.

    Only unset variables are filled in, so a user's ``PREFECT_API_URL``,
    ``MLFLOW_TRACKING_URI`` or ``PREFECT_HOME`` win.

    Args:
        root: Working directory of the campaign (default: the current directory).

    Returns:
        The ``.sciwm`` state directory.
    """
    state = Path(root or Path.cwd()).resolve() / ".sciwm"
    state.mkdir(parents=True, exist_ok=True)
    defaults = {
        "PREFECT_HOME": str(state / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_LOGGERS_PREFECT_LEVEL": "WARNING",
        "PREFECT_UI_ENABLED": "false",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "GIT_PYTHON_REFRESH": "quiet",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    return state
