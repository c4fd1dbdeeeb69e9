"""A campaign's world model for :mod:`sciwm.api` and the service: loaded once, reloaded when newer.

The store is asked at most every ``reload_check_s`` seconds for the fit number of the
campaign's latest logged world model (tag ``sciwm.latest_step`` of its ``world-model`` run); a
newer one replaces the cached model. A campaign that logged none gets a model fitted on its
results, refitted when more of them finish. In ``background`` mode (the service) the check
and the load run in a thread while the current model keeps answering.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from sciwm.errors import SciwmError, StoreError, WorldModelError

if TYPE_CHECKING:
    from sciwm.spec import CampaignSpec
    from sciwm.store import RecordStore
    from sciwm.world_model import WorldModel

log = logging.getLogger(__name__)

#: Seconds between two checks of the store for a newer world model.
RELOAD_CHECK_S = 2.0


class NotReadyError(WorldModelError):
    """The campaign's world model cannot predict yet: it logged none and has too few results."""


class ModelCache:
    """The latest world model of one campaign.

    Args:
        store: The record store.
        spec: The campaign.
        name: Its name.
        reload_check_s: Seconds between checks for a newer logged world model.
        background: Check and load in a background thread (the current model answers
            meanwhile); else in the asking call.
    """

    def __init__(
        self,
        store: RecordStore,
        spec: CampaignSpec,
        name: str,
        reload_check_s: float = RELOAD_CHECK_S,
        background: bool = False,
    ) -> None:
        self.store = store
        self.spec = spec
        self.name = name
        self.reload_check_s = float(reload_check_s)
        self.background = background
        self._lock = threading.Lock()
        self._model: WorldModel | None = None
        self._key: tuple[str, int] | None = None
        self._checked_at = -math.inf
        self._refreshing = False
        self._client: Any = None

    def get(self) -> WorldModel:
        """The current world model (loaded on first use).

        Raises:
            NotReadyError: If the world model cannot predict yet (too few results).
            StoreError: If the store cannot be read.
        """
        with self._lock:
            now = time.monotonic()
            current = self._model
            if current is not None and (
                self._refreshing or now - self._checked_at < self.reload_check_s
            ):
                return current
            self._checked_at = now
            if current is not None and self.background:
                self._refreshing = True
                threading.Thread(target=self._refresh, daemon=True).start()
                return current
            key = self._current_key()
            if current is None or key != self._key:
                self._model = self._load(key)
                self._key = key
            return self._model

    def logged_step(self) -> int | None:
        """The fit number of the latest logged world model, or ``None`` when none is logged.

        Raises:
            StoreError: If the store cannot be read.
        """
        try:
            if self._client is None:
                from mlflow.tracking import MlflowClient

                self._client = MlflowClient(self.store.tracking_uri)
            exp = self._client.get_experiment_by_name(self.name)
            if exp is None:
                return None
            runs = self._client.search_runs(
                [exp.experiment_id],
                "tags.`sciwm.kind` = 'world_model'",
                max_results=1,
                order_by=["attributes.start_time ASC"],  # the campaign's one world-model run
            )
            step = runs[0].data.tags.get("sciwm.latest_step") if runs else None
            return None if step is None else int(step)
        except Exception as exc:  # noqa: BLE001 - MLflow's errors, as one project error
            raise StoreError(
                f"the MLflow tracking store at {self.store.tracking_uri} failed while looking "
                f"for the world model of campaign {self.name!r} ({type(exc).__name__}); once "
                "it is reachable again, ask again"
            ) from exc

    def _refresh(self) -> None:
        """Load a newer world model if the store has one (the background check)."""
        try:
            key = self._current_key()
            if key != self._key:
                model = self._load(key)
                with self._lock:
                    self._model, self._key = model, key
        except SciwmError as exc:  # the current model keeps answering
            log.warning("campaign %r: no newer world model loaded: %s", self.name, exc)
        finally:
            self._refreshing = False

    def _current_key(self) -> tuple[str, int]:
        step = self.logged_step()
        if step is not None:
            return ("logged", step)
        records = self.store.records(self.name)
        return ("fresh", sum(r.observation is not None for r in records))

    def _load(self, key: tuple[str, int]) -> WorldModel:
        from sciwm.cli_inspect import fresh_world_model

        model = self.store.load_world_model(self.name) if key[0] == "logged" else None
        if model is not None:
            return model
        try:
            return fresh_world_model(self.store, self.spec, self.name)
        except SciwmError as exc:
            if type(exc) is SciwmError:  # too few results (a fit failure keeps its own type)
                raise NotReadyError(str(exc)) from None
            raise
