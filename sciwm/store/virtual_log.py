"""Virtual answers and early stops: what the world model answered instead of a real run.

A proposal the value gate answers virtually is an MLflow run of its own, tagged
``sciwm.kind = virtual`` and ``sciwm.virtual = true``, holding the parameters, the
prediction (``pred.*`` metrics), the predicted cost it saved (``saved_cost``) and the reason.
It is never read back as an experiment (:meth:`RecordStore.records` reads only
``sciwm.kind = experiment``): a virtual answer is a prediction, never a measurement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow.entities import ViewType

from sciwm.prediction import Prediction
from sciwm.store.base import KIND_TAG, StoreBase
from sciwm.store.connection import log_batched
from sciwm.store.record import chunked, prediction_from_dict, prediction_metrics, unchunked

#: The ``sciwm.kind`` of a virtual answer's run.
VIRTUAL_KIND = "virtual"


@dataclass(frozen=True)
class VirtualRecord:
    """A virtual answer as the store holds it.

    Attributes:
        parameters: The proposal answered.
        prediction: The world model's answer.
        saved_cost: Predicted cost not spent.
        reason: Why it was not run.
        run_id: Its MLflow run.
    """

    parameters: dict[str, Any]
    prediction: Prediction
    saved_cost: float
    reason: str
    run_id: str


class VirtualLog(StoreBase):
    """The campaign's virtual answers (its arguments are those of ``RecordStore``)."""

    def record_virtual(
        self,
        campaign: str,
        parameters: Mapping[str, Any],
        prediction: Prediction,
        saved_cost: float,
        reason: str,
    ) -> VirtualRecord:
        """Record one virtual answer as a finished MLflow run tagged ``sciwm.virtual``."""
        exp_id = self._campaign_id(campaign)
        body = {
            "parameters": dict(parameters),
            "prediction": prediction.to_dict(),
            "saved_cost": float(saved_cost),
            "reason": reason,
        }
        with self._guard(f"recording a virtual answer of campaign {campaign!r}"):
            tags = {
                KIND_TAG: VIRTUAL_KIND,
                "sciwm.virtual": "true",
                "sciwm.reason": reason[:5000],
                **chunked("sciwm.answer", json.dumps(body, sort_keys=True, default=str)),
            }
            run = self._client.create_run(exp_id, tags=tags, run_name="virtual")
            run_id = run.info.run_id
            metrics = {**prediction_metrics(prediction), "saved_cost": float(saved_cost)}
            log_batched(
                self._client,
                run_id,
                params={k: str(v) for k, v in parameters.items()},
                metrics=metrics,
            )
            self._client.set_terminated(run_id, "FINISHED")
        return VirtualRecord(dict(parameters), prediction, float(saved_cost), reason, run_id)

    def virtual_answers(self, campaign: str) -> list[VirtualRecord]:
        """Every virtual answer of a campaign, oldest first."""
        exp_id = self._campaign_id(campaign)
        out: list[VirtualRecord] = []
        token = None
        with self._guard(f"reading the virtual answers of campaign {campaign!r}"):
            while True:
                page = self._client.search_runs(
                    [exp_id],
                    f"tags.`{KIND_TAG}` = '{VIRTUAL_KIND}'",
                    run_view_type=ViewType.ACTIVE_ONLY,
                    max_results=1000,
                    order_by=["attributes.start_time ASC"],
                    page_token=token,
                )
                for run in page:
                    body = json.loads(unchunked(run.data.tags, "sciwm.answer"))
                    out.append(
                        VirtualRecord(
                            dict(body["parameters"]),
                            prediction_from_dict(body["prediction"]),
                            float(body["saved_cost"]),
                            str(body["reason"]),
                            run.info.run_id,
                        )
                    )
                token = page.token
                if not token:
                    return out
