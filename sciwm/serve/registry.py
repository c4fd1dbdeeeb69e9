"""The campaigns a running service answers for: opened once, each with its cached world model."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from sciwm.api import Campaign
from sciwm.errors import StoreError
from sciwm.serve.errors import ServeError

#: The report's plots, by the name the API uses.
PLOTS = ("best_vs_cost", "predicted_vs_measured")


class CampaignRegistry:
    """Open campaigns of one record store, and their report plots.

    A campaign is opened (its spec read) on first use and kept; its world model is loaded on
    the first question and reloaded when the campaign logs a newer one (see
    :meth:`sciwm.api.Campaign.world_model`). Plots are redrawn when the campaign has more
    finished experiments than when they were drawn.

    Args:
        tracking_uri: The MLflow store (``None``: the default).
        reload_check_s: Seconds between checks for a newer world model.

    Raises:
        StoreError: If the store cannot be reached.
    """

    def __init__(self, tracking_uri: str | None, reload_check_s: float) -> None:
        from sciwm.store import RecordStore

        self.store = RecordStore(tracking_uri)
        self.reload_check_s = reload_check_s
        self._open: dict[str, Campaign] = {}
        self._lock = threading.Lock()
        self._plot_lock = threading.Lock()
        self._plots_dir = tempfile.TemporaryDirectory(prefix="sciwm-serve-plots-")
        self._plots_drawn: dict[str, int] = {}

    def names(self) -> list[str]:
        """The store's campaigns, sorted."""
        return self.store.campaigns()

    def get(self, name: str) -> Campaign:
        """The open campaign ``name``.

        Raises:
            ServeError: 404 if the store holds no such campaign (the message lists them).
        """
        with self._lock:
            camp = self._open.get(name)
            if camp is not None:
                return camp
            known = self.names()
            if name not in known:
                raise ServeError(
                    404,
                    "unknown_campaign",
                    f"no campaign named {name!r} in the store; known campaigns: "
                    f"{known or 'none'}. Use one of them (GET /api/campaigns lists them), or "
                    "start the service on the store that holds it (--tracking-uri)",
                )
            camp = Campaign(self.store, name, self.reload_check_s, background=True)
            self._open[name] = camp
            return camp

    def plot(self, name: str, plot: str) -> Path:
        """The PNG file of one of the campaign's report plots, drawn when out of date.

        Raises:
            ServeError: 404 for an unknown plot or campaign; 409 when nothing is finished yet.
        """
        if plot not in PLOTS:
            raise ServeError(
                404, "unknown_plot", f"no plot named {plot!r}; the plots are {list(PLOTS)}"
            )
        camp = self.get(name)
        from sciwm.report import write_report

        n_finished = sum(r.observation is not None for r in camp.records())
        folder = Path(self._plots_dir.name) / _safe(name)
        with self._plot_lock:
            if self._plots_drawn.get(name) != n_finished:
                try:
                    write_report(self.store, name, folder)
                except StoreError as exc:
                    if "no completed experiment" in str(exc):
                        raise ServeError(409, "no_results_yet", str(exc)) from None
                    raise
                self._plots_drawn[name] = n_finished
        return folder / f"{plot}.png"

    def close(self) -> None:
        """Remove the drawn plots."""
        self._plots_dir.cleanup()

    def describe(self, camp: Campaign) -> dict[str, Any]:
        """Facts about the world model answering for ``camp`` (after it was loaded)."""
        model = camp.world_model()
        summary = model.summary
        return {
            "type": model.name,
            "trained_on": None if summary is None else summary.n_observations,
            "fitted_at": None if summary is None else summary.fitted_at,
        }


def _safe(name: str) -> str:
    """A campaign name as a folder name (names are letters, digits, ``_ - .`` already)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name) or "_"
