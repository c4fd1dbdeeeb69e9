"""The connection every record-store part shares: its MLflow client, error guard, campaign ids."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sciwm.errors import SciwmError, StoreError
from sciwm.store.connection import (
    HINT,
    connect,
    default_tracking_uri,
    redact_uri,
    short_reason,
    sqlite_artifact_root,
    without_secrets,
)

#: The tag that tells a campaign, an experiment and the auxiliary runs apart.
KIND_TAG = "sciwm.kind"


class StoreBase:
    """An MLflow client on one tracking store, with the campaign lookups every part needs.

    Its arguments and errors are those of :class:`~sciwm.store.record_store.RecordStore`.
    """

    def __init__(self, tracking_uri: str | None = None, artifact_root: Path | None = None) -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri()
        #: The URI fit to show in messages and summaries: any password in it is ``***``.
        self.display_uri = redact_uri(self.tracking_uri)
        self._artifact_root = artifact_root or sqlite_artifact_root(self.tracking_uri)
        self._campaign_ids: dict[str, str] = {}
        self._client = connect(self.tracking_uri)

    def campaigns(self) -> list[str]:
        """Names of the campaigns in the store, sorted."""
        names: list[str] = []
        token = None
        with self._guard("listing campaigns"):
            while True:
                page = self._client.search_experiments(
                    max_results=1000,
                    filter_string=f"tags.`{KIND_TAG}` = 'campaign'",
                    page_token=token,
                )
                names.extend(e.name for e in page)
                token = page.token
                if not token:
                    return sorted(names)

    # -- internals ----------------------------------------------------------------------
    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn any failure of MLflow into one clear :class:`StoreError`."""
        try:
            yield
        except SciwmError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised as a project error
            raise StoreError(
                f"the MLflow tracking store at {self.display_uri} failed while {action}: "
                f"{without_secrets(short_reason(exc), self.tracking_uri)}. Everything recorded "
                "before is kept; once the store is reachable again, run the campaign again to "
                f"resume it. {HINT}."
            ) from exc

    def _campaign_id(self, name: str) -> str:
        if name not in self._campaign_ids:
            with self._guard(f"finding campaign {name!r}"):
                exp = self._client.get_experiment_by_name(name)
            if exp is None or exp.tags.get(KIND_TAG) != "campaign":
                raise self._unknown(name)
            self._campaign_ids[name] = exp.experiment_id
        return self._campaign_ids[name]

    def _unknown(self, name: str) -> StoreError:
        known = self.campaigns()
        return StoreError(
            f"no campaign named {name!r} in the MLflow tracking store at {self.display_uri}; "
            f"known campaigns: {known or 'none'}. Start it with `sciwm campaign run FILE.toml`, "
            "or point MLFLOW_TRACKING_URI / [store] tracking_uri at the store that holds it"
        )
