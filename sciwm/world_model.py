"""The ``WorldModel`` contract: what every surrogate of a real experiment provides."""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from botorch.models.model import Model
from botorch.posteriors import Posterior
from torch import Tensor

from sciwm.errors import SciwmError, WorldModelError
from sciwm.experiment import Experiment, Observation, Status
from sciwm.prediction import DEFAULT_LEVEL, Prediction
from sciwm.space import SearchSpace, space_from_dict, space_to_dict
from sciwm.world_model_settings import WorldModelSettings


@dataclass(frozen=True)
class TrainingSummary:
    """What a world model was trained on.

    Attributes:
        n_observations: Observations used (completed ones for outcomes).
        n_cost_observations: Observations with a measured cost (failures included).
        outcomes: Outcome names modelled.
        experiment_ids: Ids of the experiments trained on, in order.
        fitted_at: Unix time of the fit.
        extra: Model-specific facts (hyperparameters, data sources).
    """

    n_observations: int
    n_cost_observations: int
    outcomes: list[str]
    experiment_ids: list[str]
    fitted_at: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


class WorldModel(ABC):
    """A learned model of real experiments: outcomes, cost, and their uncertainty.

    Inputs in tensor form are points of the search space's unit cube (see
    :meth:`sciwm.space.SearchSpace.encode`). Outcomes are modelled in their natural sign
    (a campaign that minimises negates nothing here; the agent does that).

    Subclasses are built as ``cls(space, outcomes, **settings)`` where ``settings`` come from
    the campaign file's ``[world_model.settings]`` table; ``settings_type`` (a frozen
    :class:`~sciwm.world_model_settings.WorldModelSettings` dataclass) reads and checks them,
    and :meth:`check_settings` runs that check when the campaign file is loaded.
    """

    #: Short name used in campaign files (``[world_model] type = "..."``).
    name: ClassVar[str] = "abstract"
    #: The typed settings of ``[world_model.settings]``.
    settings_type: ClassVar[type[WorldModelSettings]] = WorldModelSettings

    @classmethod
    def check_settings(
        cls, settings: Mapping[str, Any] | None, space: SearchSpace | None = None
    ) -> WorldModelSettings:
        """Read and check ``[world_model.settings]`` (and that the files they name exist)
        without building the model.

        Raises:
            WorldModelError: Naming the setting that is wrong and what it should be.
        """
        out = cls.settings_type.from_mapping(settings, space)
        out.check_files()
        return out

    def __init__(self, space: SearchSpace, outcomes: Sequence[str], **settings: Any) -> None:
        if not outcomes:
            raise WorldModelError("a world model needs at least one outcome name")
        if len(set(outcomes)) != len(list(outcomes)):
            raise WorldModelError(f"outcome names must be unique, got {list(outcomes)}")
        self.space = space
        self.outcomes = list(outcomes)
        self.settings = dict(settings)
        self.summary: TrainingSummary | None = None

    # -- learning -----------------------------------------------------------------------
    @abstractmethod
    def fit(self, experiments: Sequence[Experiment], observations: Sequence[Observation]) -> None:
        """Train on real results.

        Args:
            experiments: The experiments, aligned with ``observations``.
            observations: What came back; completed ones train the outcome models, every one
                with a measured cost trains the cost model.
        """

    def can_fit(
        self, experiments: Sequence[Experiment], observations: Sequence[Observation]
    ) -> bool:
        """Whether :meth:`fit` on these results gives a model that can predict.

        The loop asks this instead of counting results, so a world model that predicts before
        any real result (pretrained, or physics-based) steers from the first proposal. The
        default needs two completed results.
        """
        return sum(o.status is Status.COMPLETED for o in observations) >= 2

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run (or a fitted model was loaded)."""
        return self.summary is not None

    def spawn(self) -> WorldModel:
        """A new, unfitted world model of the same kind and settings, to be fitted on other
        results (a restarted search's own, :mod:`scheduler.restart`).

        A model may hand the copy what makes its fits faster without fixing what it learns
        (the ML-run model: its residual GPs' hyperparameters, as a warm start).
        """
        return type(self)(self.space, self.outcomes, **self.settings)

    # -- querying -----------------------------------------------------------------------
    @abstractmethod
    def predict(
        self, parameters: Sequence[Mapping[str, Any]], level: float = DEFAULT_LEVEL
    ) -> list[Prediction]:
        """Predict outcomes and cost of candidate experiments.

        Args:
            parameters: ``n`` full parameter assignments (validated against the space).
            level: Coverage of the reported intervals, in (0, 1).

        Returns:
            ``n`` predictions.

        Raises:
            WorldModelError: If the model is not fitted or ``level`` is not in (0, 1) (see
                :func:`check_level`).
            ParameterError: If an assignment does not fit the space.
        """

    @abstractmethod
    def posterior(self, X: Tensor, outcome: str) -> Posterior:
        """Posterior of one outcome at unit-cube points.

        Args:
            X: A ``batch_shape x q x d`` tensor.
            outcome: Outcome name.

        Returns:
            A botorch posterior with event shape ``batch_shape x q x 1``.
        """

    @abstractmethod
    def log_cost_posterior(self, X: Tensor) -> Posterior:
        """Posterior of the natural log of the cost at unit-cube points.

        Args:
            X: A ``batch_shape x q x d`` tensor.

        Returns:
            A botorch posterior with event shape ``batch_shape x q x 1``.
        """

    def observation_std(self, X: Tensor, outcome: str) -> Tensor | None:
        """Std of a real measurement's noise about the latent outcome, at unit-cube points.

        For example the sampling noise of a simulation of finite length, or a GP's fitted
        noise. The agent uses it to value lower fidelities; ``None`` (the default) means the
        model does not say, and measurements count as exact.

        Args:
            X: An ``n x d`` tensor.
            outcome: Outcome name.

        Returns:
            An ``n`` tensor, or ``None``.
        """
        return None

    def outcome_model(self, outcome: str) -> Model:
        """A botorch ``Model`` for one outcome, usable by any acquisition function."""
        if outcome not in self.outcomes:
            raise WorldModelError(f"unknown outcome {outcome!r}; the model has {self.outcomes}")
        return PosteriorModel(lambda X: self.posterior(X, outcome))

    def log_cost_model(self) -> Model:
        """A botorch ``Model`` of the log cost."""
        return PosteriorModel(self.log_cost_posterior)

    # -- persistence --------------------------------------------------------------------
    @abstractmethod
    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Everything needed to rebuild the fitted model.

        Returns:
            ``(tensors, extra)``: named tensors (saved with ``torch.save``) and JSON-able
            facts. No arbitrary objects: loading uses ``torch.load(weights_only=True)``.
        """

    @abstractmethod
    def load_state(self, tensors: Mapping[str, Tensor], extra: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state` on a freshly built model of the same configuration."""

    def save(self, directory: str | Path) -> Path:
        """Write the model to ``directory`` (config JSON + tensor file, no pickle).

        Returns:
            The directory.
        """
        if self.summary is None:
            raise WorldModelError("cannot save a world model that has not been fitted")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors, extra = self.state()
        torch.save(tensors, directory / "state.pt")
        config = {
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "name": self.name,
            "space": space_to_dict(self.space),
            "outcomes": self.outcomes,
            "settings": self.settings,
            "extra": extra,
            "summary": self.summary.to_dict(),
        }
        (directory / "world_model.json").write_text(json.dumps(config, indent=2, default=str))
        return directory

    @staticmethod
    def load(directory: str | Path) -> WorldModel:
        """Rebuild a saved world model of any registered class.

        Raises:
            WorldModelError: If the directory does not hold a saved world model.
        """
        from sciwm.registry import world_model_class

        directory = Path(directory)
        config_path = directory / "world_model.json"
        if not config_path.is_file():
            raise WorldModelError(
                f"{directory} holds no saved world model (no world_model.json); "
                "save one with WorldModel.save or fit a campaign first"
            )
        try:
            config = json.loads(config_path.read_text())
            ref = config["class"]
            space = space_from_dict(config["space"])
            outcomes, settings = config["outcomes"], config["settings"]
            extra, summary = config["extra"], TrainingSummary(**config["summary"])
        except (ValueError, KeyError, TypeError, SciwmError) as exc:
            raise WorldModelError(
                f"{config_path} is not a valid saved world model ({type(exc).__name__}: {exc}); "
                "save it again with WorldModel.save"
            ) from None
        try:
            cls = world_model_class(ref)
        except WorldModelError as exc:
            raise WorldModelError(
                f"{config_path} names a class that cannot be used: {exc}"
            ) from None
        model = cls(space, outcomes, **settings)
        try:
            tensors = torch.load(directory / "state.pt", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - re-raised as a project error
            raise WorldModelError(f"cannot read {directory / 'state.pt'}: {exc}") from exc
        model.load_state(tensors, extra)
        model.summary = summary
        return model


def check_level(level: float) -> float:
    """Validate the coverage level of predictive intervals.

    Returns:
        ``level`` as a float.

    Raises:
        WorldModelError: If it is not strictly between 0 and 1 (a percentage such as 90 is a
            common slip).
    """
    if not 0.0 < float(level) < 1.0:
        raise WorldModelError(
            f"the interval level must lie strictly between 0 and 1 (e.g. 0.9), got {level}"
        )
    return float(level)


class PosteriorModel(Model):
    """A botorch ``Model`` whose posterior is any callable ``X -> Posterior``.

    It lets acquisition functions work on every world model through the contract.
    """

    def __init__(self, posterior_fn: Any) -> None:
        super().__init__()
        self._posterior_fn = posterior_fn

    @property
    def num_outputs(self) -> int:
        return 1

    def posterior(  # type: ignore[override]
        self,
        X: Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: Any = None,
        **kwargs: Any,
    ) -> Posterior:
        post = self._posterior_fn(X)
        if posterior_transform is not None:
            post = posterior_transform(post)
        return post

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size([])


def split_by_status(
    experiments: Sequence[Experiment], observations: Sequence[Observation]
) -> tuple[list[tuple[Experiment, Observation]], list[tuple[Experiment, Observation]]]:
    """Pairs with completed observations, and pairs with a measured cost (finite, > 0).

    Returns:
        ``(completed, costed)``.
    """
    if len(experiments) != len(observations):
        raise WorldModelError("experiments and observations must be aligned (same length)")
    pairs = list(zip(experiments, observations, strict=True))
    completed = [(e, o) for e, o in pairs if o.status is Status.COMPLETED]
    costed = [
        (e, o) for e, o in pairs if o.cost is not None and math.isfinite(o.cost) and o.cost > 0
    ]
    return completed, costed
