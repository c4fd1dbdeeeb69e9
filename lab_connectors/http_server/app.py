"""The reference lab server's FastAPI application: the sciwm HTTP lab protocol over a backend.

Every route except ``GET /v1/health`` needs ``Authorization: Bearer <token>`` when the app is
built with a token; a missing or wrong token gets 401 (the token is compared in constant time
and never written anywhere).
"""

import hmac
from typing import Annotated

from fastapi import Depends, FastAPI, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lab_connectors.http_protocol import (
    ID_PATTERN,
    PREFIX,
    PROTOCOL,
    Capacity,
    ErrorBody,
    ExperimentState,
    Health,
    Result,
    SubmitRequest,
)
from lab_connectors.http_server.backend import LabBackend, LabError
from sciwm.errors import SciwmError

_ERRORS = {
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
    404: {"model": ErrorBody, "description": "No experiment with this id."},
    409: {"model": ErrorBody, "description": "Conflict (see the route)."},
    422: {"model": ErrorBody, "description": "The request body or path does not validate."},
    503: {"model": ErrorBody, "description": "The lab's backend failed; try again."},
}

ExperimentId = Annotated[str, Path(pattern=ID_PATTERN, description="The experiment's id.")]


def create_app(backend: LabBackend | None, token: str | None = None) -> FastAPI:
    """The protocol's routes over ``backend``; bearer ``token`` required unless ``None``.

    ``backend=None`` builds the app only to describe it (:func:`openapi_document`).
    """
    app = FastAPI(
        title="sciwm HTTP lab protocol",
        version="1.0.0",
        description=(
            f"Protocol {PROTOCOL}: a lab runs experiments that sciwm submits, idempotently by "
            "experiment id, and reports their status, result and capacity. See docs/http-lab.md."
        ),
    )

    bearer = HTTPBearer(auto_error=False, description="The lab's token.")

    def authorised(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
    ) -> None:
        if token is None:
            return
        given = creds.credentials if creds is not None else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise LabError(401, "missing or wrong bearer token")

    auth = [Depends(authorised)]

    @app.exception_handler(LabError)
    async def _lab_error(request: Request, exc: LabError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)

    @app.exception_handler(SciwmError)
    async def _backend_error(request: Request, exc: SciwmError) -> JSONResponse:
        return JSONResponse({"detail": f"the lab's backend failed: {exc}"}, 503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": detail}, 422)

    @app.get(f"{PREFIX}/health", response_model=Health, tags=["lab"])
    def health() -> Health:
        """The lab is up and speaks this protocol (no token needed)."""
        return Health(status="ok", protocol=PROTOCOL, lab=backend.name)

    @app.get(f"{PREFIX}/capacity", response_model=Capacity, dependencies=auth, tags=["lab"])
    def capacity() -> Capacity:
        """How many more experiments the lab runs at once right now."""
        return backend.capacity()

    @app.post(
        f"{PREFIX}/experiments",
        response_model=ExperimentState,
        status_code=201,
        dependencies=auth,
        tags=["experiments"],
        responses={
            200: {"model": ExperimentState, "description": "Known id: nothing new started."},
            **_ERRORS,
        },
    )
    def submit(request: SubmitRequest, response: Response) -> ExperimentState:
        """Run an experiment. The same id again starts nothing new and answers 200 with its
        state; the same id with other content answers 409."""
        state, created = backend.submit(request)
        response.status_code = 201 if created else 200
        return state

    @app.get(
        f"{PREFIX}/experiments/{{experiment_id}}",
        response_model=ExperimentState,
        dependencies=auth,
        tags=["experiments"],
        responses=_ERRORS,
    )
    def status(experiment_id: ExperimentId) -> ExperimentState:
        """Where the experiment is: queued, running, completed, failed or cancelled."""
        return backend.status(experiment_id)

    @app.get(
        f"{PREFIX}/experiments/{{experiment_id}}/result",
        response_model=Result,
        dependencies=auth,
        tags=["experiments"],
        responses=_ERRORS,
    )
    def result(experiment_id: ExperimentId) -> Result:
        """The result of a finished experiment; 409 while it is queued or running."""
        return backend.result(experiment_id)

    @app.post(
        f"{PREFIX}/experiments/{{experiment_id}}/cancel",
        response_model=ExperimentState,
        dependencies=auth,
        tags=["experiments"],
        responses=_ERRORS,
    )
    def cancel(experiment_id: ExperimentId) -> ExperimentState:
        """Stop the experiment; a finished one is left as it is (cancel is idempotent)."""
        return backend.cancel(experiment_id)

    return app


def openapi_document() -> dict:
    """The protocol's OpenAPI description, as committed in ``docs/http_lab_openapi.json``."""
    return create_app(None, token="").openapi()
