"""The campaign as a Prefect flow: each fit and each dispatch is a task run.

Without ``PREFECT_API_URL`` the flow runs in-process against Prefect's temporary local API;
with it, against that server (``prefect server start`` on loopback, or a remote one).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.loop import CampaignLoop
from flows.loop_state import CampaignResult, ProgressFn
from scheduler.gate import Decision
from sciwm.spec import load_spec
from sciwm.store import RecordStore, default_tracking_uri


@task(name="fit-world-model", cache_policy=NO_CACHE)
def fit_world_model(loop: CampaignLoop) -> bool:
    """Refit the campaign's world model on every finished experiment and log it to MLflow."""
    return CampaignLoop.fit(loop)


@task(name="propose-gate-dispatch", cache_policy=NO_CACHE)
def propose_gate_dispatch(loop: CampaignLoop, n: int) -> list[Decision]:
    """Propose ``n`` candidates, gate them on value and budget, submit the ones let through."""
    return CampaignLoop.dispatch(loop, n)


class PrefectCampaignLoop(CampaignLoop):
    """The loop whose fit and dispatch steps are Prefect task runs."""

    def fit(self) -> bool:
        if not self.refit_due():
            return False
        return fit_world_model(self)

    def dispatch(self, n: int) -> list[Decision]:
        return propose_gate_dispatch(self, n)


@flow(name="sciwm-campaign", log_prints=False, validate_parameters=False)
def campaign_flow(
    spec_path: str,
    root: str,
    tracking_uri: str | None = None,
    progress: ProgressFn | None = None,
) -> CampaignResult:
    """Run (or resume) the campaign in ``spec_path`` until it ends.

    Args:
        spec_path: Campaign TOML file.
        root: Working directory; connector state goes to ``root/.sciwm/<campaign>``.
        tracking_uri: MLflow tracking URI (default: ``sqlite:///root/mlflow.db`` or
            ``MLFLOW_TRACKING_URI``).
        progress: Optional callback after every loop step.
    """
    return build_loop(spec_path, root, tracking_uri, progress, PrefectCampaignLoop).run()


def build_loop(
    spec_path: str | Path,
    root: str | Path,
    tracking_uri: str | None = None,
    progress: ProgressFn | None = None,
    cls: type[CampaignLoop] = CampaignLoop,
) -> CampaignLoop:
    """Read the campaign file, open the store and build the loop (resuming if recorded)."""
    path = Path(spec_path)
    spec = load_spec(path)
    root = Path(root).resolve()
    store = RecordStore(tracking_uri or spec.store.tracking_uri or default_tracking_uri(root))
    workdir = root / ".sciwm" / spec.name
    return cls(spec, path.read_text(), store, workdir, progress)


def run_campaign(
    spec_path: str | Path,
    root: str | Path | None = None,
    tracking_uri: str | None = None,
    *,
    use_prefect: bool = True,
    progress: ProgressFn | None = None,
) -> CampaignResult:
    """Run or resume a campaign: the Python entry point behind ``sciwm campaign run``.

    Args:
        spec_path: Campaign TOML file.
        root: Working directory (default: the current directory).
        tracking_uri: MLflow tracking URI override.
        use_prefect: Run as a Prefect flow (default) or as the plain loop.
        progress: Optional callback after every loop step.
    """
    root = Path(root or Path.cwd()).resolve()
    if use_prefect:
        return campaign_flow(str(spec_path), str(root), tracking_uri, progress)
    return build_loop(spec_path, root, tracking_uri, progress).run()
