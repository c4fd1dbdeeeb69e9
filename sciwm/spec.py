"""Campaign files: TOML validated with pydantic into a frozen :class:`CampaignSpec`."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sciwm.errors import ParameterError, SciwmError, SpecError
from sciwm.space import Parameter, SearchSpace
from sciwm.spec_base import Frozen
from sciwm.spec_faults import FaultsSpec
from sciwm.spec_scheduler import SchedulerSpec, StoppingSpec


class CampaignInfo(Frozen):
    """``[campaign]``: identity of the campaign."""

    name: str = Field(description="Campaign name; the MLflow experiment is named after it.")
    description: str = ""
    seed: int = 0

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}", v):
            raise ValueError(
                "use 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit"
            )
        return v


class ParameterSpec(Frozen):
    """``[[parameters]]``: one dimension of the search space."""

    name: str
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[float | int | str] | None = None
    fidelity: bool = False

    @model_validator(mode="after")
    def _valid(self) -> ParameterSpec:
        if self.type == "categorical":
            given = [k for k in ("low", "high") if getattr(self, k) is not None]
            if given:
                raise ValueError(
                    f"parameter {self.name!r}: {given} apply to numeric types only; "
                    "a categorical parameter takes 'choices'"
                )
        elif self.choices is not None:
            raise ValueError(
                f"parameter {self.name!r}: 'choices' apply to categorical parameters only; "
                f"a {self.type} parameter takes 'low' and 'high' (or use type = \"categorical\")"
            )
        try:
            self.to_parameter()
        except ParameterError as exc:
            raise ValueError(str(exc)) from None
        return self

    def to_parameter(self) -> Parameter:
        return Parameter(
            self.name,
            self.type,
            self.low,
            self.high,
            self.log,
            tuple(self.choices or ()),
            self.fidelity,
        )


class ObjectiveSpec(Frozen):
    """``[[objectives]]``: an outcome to optimise.

    With several objectives the campaign seeks their Pareto front; ``ref`` is the objective's
    coordinate of the reference point of the hypervolume (a value the campaign must beat to
    count; left out: inferred from the results, see :mod:`sciwm.pareto`).
    """

    name: str
    direction: Literal["maximize", "minimize"] = "maximize"
    ref: float | None = Field(
        default=None,
        description="Reference-point coordinate of the hypervolume (several objectives only).",
    )

    @field_validator("ref")
    @classmethod
    def _finite_ref(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError(f"ref must be a finite number, got {v!r}")
        return v

    @property
    def maximize(self) -> bool:
        """Whether this objective is maximised."""
        return self.direction == "maximize"


class ConstraintSpec(Frozen):
    """``[[constraints]]``: an outcome that must stay on one side of a bound.

    A result is feasible when every constraint holds; proposals are weighted by the world
    model's probability of feasibility, and the best result reported is the best feasible one.
    """

    outcome: str
    op: Literal["<=", ">="]
    bound: float

    @field_validator("bound")
    @classmethod
    def _finite_bound(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"bound must be a finite number, got {v!r}")
        return v

    def holds(self, value: float) -> bool:
        """Whether ``value`` of the outcome satisfies the constraint."""
        return value <= self.bound if self.op == "<=" else value >= self.bound


class BudgetSpec(Frozen):
    """``[budget]``: the total cost the campaign may spend on real experiments."""

    total: float = Field(gt=0, description="Budget in cost units (wall seconds by default).")
    unit: str = "s"


class ConnectorSpec(Frozen):
    """``[connector]``: the real backend."""

    type: str = Field(description="Short name ('local') or import path 'pkg.mod:Class'.")
    settings: dict[str, Any] = Field(default_factory=dict)


class WorldModelSpec(Frozen):
    """``[world_model]``: the surrogate."""

    type: str = "gp"
    settings: dict[str, Any] = Field(default_factory=dict)


class WarmStartSpec(Frozen):
    """``[warm_start]``: earlier campaigns whose results the world model starts from.

    Their results are the world model's prior, never this campaign's measurements (see
    :mod:`scheduler.warm_start` for how parameters are matched).
    """

    campaigns: list[str] = Field(
        min_length=1, description="Names of earlier campaigns in the same record store."
    )
    values: dict[str, float | int | str] = Field(
        default_factory=dict,
        description="Values the earlier campaigns ran at for parameters they did not have.",
    )

    @field_validator("campaigns")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"campaign names must be unique, got {v}")
        return v


class StoreSpec(Frozen):
    """``[store]``: where results go (default ``sqlite:///./mlflow.db``, or MLFLOW_TRACKING_URI)."""

    tracking_uri: str | None = None


class CampaignSpec(Frozen):
    """A whole campaign file."""

    campaign: CampaignInfo
    parameters: list[ParameterSpec] = Field(min_length=1)
    objectives: list[ObjectiveSpec] = Field(min_length=1)
    outcomes: list[str] = Field(
        default_factory=list, description="Further outcomes to record and model."
    )
    constraints: list[ConstraintSpec] = Field(
        default_factory=list,
        description="Outcome constraints; an outcome not listed above is recorded and modelled.",
    )
    budget: BudgetSpec
    connector: ConnectorSpec
    world_model: WorldModelSpec = WorldModelSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    stopping: StoppingSpec = StoppingSpec()
    faults: FaultsSpec = FaultsSpec()
    store: StoreSpec = StoreSpec()
    warm_start: WarmStartSpec | None = None

    @field_validator("parameters")
    @classmethod
    def _unique_parameters(cls, v: list[ParameterSpec]) -> list[ParameterSpec]:
        names = [p.name for p in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"parameter names must be unique; repeated: {dupes}")
        return v

    @field_validator("objectives")
    @classmethod
    def _unique_objectives(
        cls, v: list[ObjectiveSpec], info: ValidationInfo
    ) -> list[ObjectiveSpec]:
        names = [o.name for o in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"objective names must be unique; repeated: {dupes}")
        if len(v) == 1 and v[0].ref is not None:
            raise ValueError(
                f"objective {v[0].name!r}: 'ref' (a hypervolume reference point) applies only "
                "with several [[objectives]]; remove it, or use [stopping] target"
            )
        _no_clash(names, info)
        return v

    @field_validator("outcomes")
    @classmethod
    def _unique_outcomes(cls, v: list[str], info: ValidationInfo) -> list[str]:
        names = [o.name for o in info.data.get("objectives", [])] + list(v)
        if len(set(names)) != len(names):
            raise ValueError(
                f"outcome names must be unique (the objective counts as one), got {names}"
            )
        _no_clash(v, info)
        return v

    @field_validator("constraints")
    @classmethod
    def _constraints_named(
        cls, v: list[ConstraintSpec], info: ValidationInfo
    ) -> list[ConstraintSpec]:
        _no_clash([c.outcome for c in v], info)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        try:
            self.space()
        except ParameterError as exc:
            raise ValueError(str(exc)) from None
        if self.multi_objective:
            if self.stopping.target is not None:
                raise ValueError(
                    "stopping.target applies to a single objective; with several "
                    "[[objectives]] stop on budget, max_experiments or patience (results "
                    "without a hypervolume gain)"
                )
            if self.stopping.min_gain_per_cost is not None:
                raise ValueError(
                    "stopping.min_gain_per_cost applies to a single objective; with several "
                    "[[objectives]] use patience (results without a hypervolume gain)"
                )
            if self.scheduler.acquisition == "gittins":
                raise ValueError(
                    "scheduler.acquisition 'gittins' supports one objective; use "
                    "'ei_per_cost' (hypervolume improvement per unit cost) or 'ei'"
                )
        if self.constraints and self.scheduler.acquisition == "gittins":
            raise ValueError(
                "scheduler.acquisition 'gittins' does not weigh [[constraints]]; use "
                "'ei_per_cost' or 'ei'"
            )
        if self.warm_start is not None and self.name in self.warm_start.campaigns:
            raise ValueError(
                "warm_start.campaigns names this campaign itself; its own results are used "
                "anyway, list only earlier campaigns"
            )
        return self

    # -- derived ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The campaign name."""
        return self.campaign.name

    def space(self) -> SearchSpace:
        """The search space the file defines."""
        return SearchSpace(tuple(p.to_parameter() for p in self.parameters))

    @property
    def objective(self) -> ObjectiveSpec:
        """The first (with one objective: the) objective."""
        return self.objectives[0]

    @property
    def multi_objective(self) -> bool:
        """Whether the campaign has several objectives (it seeks a Pareto front)."""
        return len(self.objectives) > 1

    @property
    def outcome_names(self) -> list[str]:
        """Every outcome: the objectives first, the further outcomes, then constrained ones
        listed nowhere else."""
        names = [*(o.name for o in self.objectives), *self.outcomes]
        return names + [c.outcome for c in self.constraints if c.outcome not in names]

    @property
    def maximize(self) -> bool:
        """Whether the objective is maximised."""
        return self.objective.direction == "maximize"


def _no_clash(outcomes: list[str], info: ValidationInfo) -> None:
    """Reject outcome names that are also parameter names (they share MLflow's namespace)."""
    params = {p.name for p in info.data.get("parameters", [])}
    clash = sorted(set(outcomes) & params)
    if clash:
        raise ValueError(f"names used both as parameter and outcome: {clash}; rename one of them")


def parse_spec(
    data: dict[str, Any], source: str = "<campaign>", check_world_model: bool = True
) -> CampaignSpec:
    """Validate a campaign given as a dict.

    Args:
        data: The campaign file's tables.
        source: Where it came from, for messages.
        check_world_model: Also find the world model's class through the registry and check
            its ``[world_model.settings]`` (:func:`check_world_model_settings`); off for a
            campaign read back from the record store, which was checked when it started.

    Raises:
        SpecError: Listing every problem with its location in the file and how to fix it.
    """
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check its spelling; see README 'The campaign file')"
            elif err["type"] == "missing":
                msg = "required but missing"
            lines.append(f"  - {loc}: {msg}")
        raise SpecError(f"invalid campaign file {source}:\n" + "\n".join(lines)) from None
    if check_world_model:
        check_world_model_settings(spec, source)
    return spec


def check_world_model_settings(spec: CampaignSpec, source: str = "<campaign>") -> None:
    """Find the world model's class and check its settings, before anything runs.

    The class comes from the registry (:func:`sciwm.registry.world_model_class`); its
    ``check_settings`` reads ``[world_model.settings]`` into its typed settings. A world model
    that declares no settings type of its own is not checked here (its constructor is).

    Raises:
        SpecError: ``invalid campaign file SOURCE: world_model.type: ...`` for a type that does
            not lead to a world model, ``... world_model.settings.KEY: ...`` for a bad setting.
    """
    from sciwm.registry import world_model_class
    from sciwm.world_model_settings import WorldModelSettings

    try:
        cls = world_model_class(spec.world_model.type)
    except SciwmError as exc:
        raise SpecError(f"invalid campaign file {source}: world_model.type: {exc}") from None
    if cls.settings_type is WorldModelSettings:
        return
    try:
        cls.check_settings(spec.world_model.settings, spec.space())
    except SciwmError as exc:
        raise SpecError(f"invalid campaign file {source}: {exc}") from None


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign TOML file.

    Raises:
        SpecError: If the file is missing, is not valid TOML, or fails validation.
    """
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"campaign file {path} is a directory; give the path of a .toml file")
    if not path.is_file():
        raise SpecError(f"campaign file {path} does not exist; give the path of a .toml file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"campaign file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SpecError(f"campaign file {path} is not a text file") from None
    return parse_spec(data, str(path))
