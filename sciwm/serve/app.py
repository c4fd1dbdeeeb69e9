"""The FastAPI application of ``sciwm serve``: campaigns, status, experiments, predict, rank.

Endpoints (all JSON but the plots and the page):

- ``GET /api/health`` — ``{"status": "ok"}``; needs no token.
- ``GET /api/campaigns`` — the store's campaigns.
- ``GET /api/campaigns/{name}`` — its status (:meth:`sciwm.api.Campaign.status`).
- ``GET /api/campaigns/{name}/experiments`` — every experiment.
- ``POST /api/campaigns/{name}/predict`` — predictions for a batch of candidates.
- ``POST /api/campaigns/{name}/rank`` — the batch in the agent's order, with why.
- ``GET /api/campaigns/{name}/plots/{plot}.png`` — a plot of the campaign's report.
- ``GET /`` — the page; ``GET /openapi.json`` — this API's description.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from sciwm import __version__
from sciwm.serve.errors import ServeError, install_handlers
from sciwm.serve.guard import BearerToken, BodyLimit
from sciwm.serve.registry import CampaignRegistry
from sciwm.serve.settings import ServeSettings

Value = float | int | str


class Question(BaseModel):
    """A batch of candidate experiments to ask the world model about."""

    model_config = ConfigDict(extra="forbid")

    candidates: list[dict[str, Any]] = Field(
        description="Candidates, each a full assignment of the campaign's parameters.",
        examples=[[{"x": 0.3, "y": 0.7, "kind": "a"}]],
    )
    level: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Interval coverage (default: the campaign's scheduler.interval_level).",
    )


class EstimateOut(BaseModel):
    """Mean, standard deviation and central interval of one predicted quantity."""

    mean: float
    std: float
    lower: float
    upper: float
    level: float


class PredictionOut(BaseModel):
    """The world model's answer for one candidate."""

    parameters: dict[str, Value]
    outcomes: dict[str, EstimateOut]
    cost: EstimateOut
    extrapolating: bool = Field(
        description="True where the candidate lies outside the world model's data."
    )
    notes: list[str]


class WorldModelOut(BaseModel):
    """The world model that answered."""

    type: str
    trained_on: int | None
    fitted_at: float | None


class Predictions(BaseModel):
    """Reply of ``predict``."""

    campaign: str
    cost_unit: str
    world_model: WorldModelOut
    predictions: list[PredictionOut]
    elapsed_ms: float


class RankedOut(PredictionOut):
    """One candidate of ``rank``."""

    rank: int
    value: float | None = Field(description="Acquisition value; higher is better.")
    why: str


class Ranking(BaseModel):
    """Reply of ``rank``."""

    campaign: str
    cost_unit: str
    acquisition: str
    world_model: WorldModelOut
    ranked: list[RankedOut]
    elapsed_ms: float


class ErrorOut(BaseModel):
    """Body of every error reply."""

    error: str
    message: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (401, "missing or wrong bearer token"),
        (404, "unknown campaign"),
        (409, "the world model cannot predict yet"),
        (413, "batch or body too large"),
        (422, "bad parameters or malformed body"),
    )
}


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The service's ASGI app on the store ``settings.tracking_uri``.

    The store is opened on the first request (so that the OpenAPI description can be made
    without one).
    """
    settings = settings or ServeSettings()
    state: dict[str, CampaignRegistry] = {}
    lock = threading.Lock()

    def registry() -> CampaignRegistry:
        with lock:
            if "r" not in state:
                state["r"] = CampaignRegistry(settings.tracking_uri, settings.reload_check_s)
            return state["r"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if "r" in state:
            state["r"].close()

    app = FastAPI(
        title="sciwm prediction service",
        version=__version__,
        description="Ask a campaign's world model what an experiment would give and cost.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_handlers(app)

    @app.get("/api/health", tags=["service"])
    def health() -> dict[str, str]:
        """Whether the service is up."""
        return {"status": "ok"}

    @app.get("/api/campaigns", tags=["campaigns"], responses=ERRORS)
    def campaigns() -> dict[str, list[str]]:
        """The campaigns of the record store."""
        return {"campaigns": registry().names()}

    @app.get("/api/campaigns/{name}", tags=["campaigns"], responses=ERRORS)
    def status(name: str) -> dict[str, Any]:
        """A campaign's status: counts, budget, best so far, world model, parameters."""
        return _finite(registry().get(name).status())

    @app.get("/api/campaigns/{name}/experiments", tags=["campaigns"], responses=ERRORS)
    def experiments(name: str) -> dict[str, Any]:
        """Every experiment: parameters, outcomes, cost, the prediction made before dispatch."""
        frame = registry().get(name).experiments()
        rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return {"campaign": name, "experiments": _finite(rows)}

    @app.post("/api/campaigns/{name}/predict", tags=["world model"], responses=ERRORS)
    def predict(name: str, question: Question) -> Predictions:
        """The world model's prediction for each candidate; nothing real runs."""
        t0 = time.perf_counter()
        camp = _checked(registry(), name, question, settings.max_batch)
        params = camp.validate(question.candidates)
        preds = camp.predict_valid(params, level=question.level)
        return Predictions(
            campaign=name,
            cost_unit=camp.spec.budget.unit,
            world_model=registry().describe(camp),
            predictions=[_pred(p, pr) for p, pr in zip(params, preds, strict=True)],
            elapsed_ms=(time.perf_counter() - t0) * 1e3,
        )

    @app.post("/api/campaigns/{name}/rank", tags=["world model"], responses=ERRORS)
    def rank(name: str, question: Question) -> Ranking:
        """The candidates in the agent's order (its value per unit of predicted cost)."""
        t0 = time.perf_counter()
        camp = _checked(registry(), name, question, settings.max_batch)
        ranked = camp.rank(question.candidates, level=question.level)
        return Ranking(
            campaign=name,
            cost_unit=camp.spec.budget.unit,
            acquisition=camp.spec.scheduler.acquisition,
            world_model=registry().describe(camp),
            ranked=[
                RankedOut(
                    **_pred(r.parameters, r.prediction).model_dump(),
                    rank=r.rank,
                    value=r.value if math.isfinite(r.value) else None,
                    why=r.why,
                )
                for r in ranked
            ],
            elapsed_ms=(time.perf_counter() - t0) * 1e3,
        )

    @app.get(
        "/api/campaigns/{name}/plots/{plot}.png",
        tags=["campaigns"],
        responses={**ERRORS, 200: {"content": {"image/png": {}}}},
        response_class=FileResponse,
    )
    def plot(name: str, plot: str) -> FileResponse:
        """A plot of the campaign's report: best_vs_cost or predicted_vs_measured."""
        return FileResponse(registry().plot(name, plot), media_type="image/png")

    static = resources.files("sciwm.serve").joinpath("static")

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(static.joinpath("index.html").read_text())

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    # outermost first: CORS (only when origins are given), then the token, then the size limit
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.token is not None:
        app.add_middleware(BearerToken, token=settings.token)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _checked(reg: CampaignRegistry, name: str, question: Question, max_batch: int) -> Any:
    """The campaign, once the batch is within the limit."""
    n = len(question.candidates)
    if n > max_batch:
        raise ServeError(
            413,
            "batch_too_large",
            f"{n} candidates in one request, over this service's limit of {max_batch}; split "
            "them into several requests (or start the service with a larger --max-batch)",
        )
    return reg.get(name)


def _pred(params: dict[str, Any], pred: Any) -> PredictionOut:
    return PredictionOut(parameters=params, **pred.to_dict())


def _finite(data: Any) -> Any:
    """``data`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data
