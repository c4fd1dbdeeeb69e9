"""Session-wide test settings."""

from __future__ import annotations

import os

import torch

# Small GP fits run several times faster on one thread on a busy 2-core machine.
torch.set_num_threads(1)
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
