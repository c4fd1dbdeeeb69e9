"""Parameters and search spaces: validation and the unit-cube encoding used by botorch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from sciwm.errors import ParameterError
from sciwm.types import Value  # noqa: E402  (re-exported)

ParameterKind = Literal["float", "int", "categorical"]


@dataclass(frozen=True)
class Parameter:
    """One dimension of a search space.

    Attributes:
        name: Identifier used in campaign files, MLflow params and the CLI.
        kind: ``"float"``, ``"int"`` or ``"categorical"``.
        low: Lower bound (numeric kinds), inclusive.
        high: Upper bound (numeric kinds), inclusive.
        log: Encode on a log scale (numeric kinds; requires ``low > 0``).
        choices: Allowed values (categorical kind), in a fixed order.
        fidelity: Marks a fidelity dimension (e.g. simulation length, epochs); the highest
            value is the target fidelity.
    """

    name: str
    kind: ParameterKind
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Value, ...] = ()
    fidelity: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ParameterError(
                f"parameter name {self.name!r} is invalid: use letters, digits, '_' or '-'"
            )
        if self.kind in ("float", "int"):
            if self.low is None or self.high is None:
                raise ParameterError(f"parameter {self.name!r}: numeric kinds need low and high")
            if not (math.isfinite(self.low) and math.isfinite(self.high)):
                raise ParameterError(f"parameter {self.name!r}: low and high must be finite")
            if self.low >= self.high:
                raise ParameterError(
                    f"parameter {self.name!r}: low ({self.low}) must be below high ({self.high})"
                )
            if self.log and self.low <= 0:
                raise ParameterError(
                    f"parameter {self.name!r}: a log scale needs low > 0 (got {self.low})"
                )
            if self.kind == "int" and (self.low != int(self.low) or self.high != int(self.high)):
                raise ParameterError(f"parameter {self.name!r}: int bounds must be whole numbers")
        elif self.kind == "categorical":
            if len(self.choices) < 2:
                raise ParameterError(
                    f"parameter {self.name!r}: a categorical parameter needs at least 2 choices"
                )
            if len(set(self.choices)) != len(self.choices) or len(
                {str(c) for c in self.choices}
            ) != len(self.choices):
                raise ParameterError(
                    f"parameter {self.name!r}: choices must be distinct (also as text, since "
                    f"values typed on the command line are matched by text); got "
                    f"{list(self.choices)}"
                )
            if self.log:
                raise ParameterError(f"parameter {self.name!r}: log applies to numeric kinds only")
        else:
            raise ParameterError(
                f"parameter {self.name!r}: unknown kind {self.kind!r}; "
                "use 'float', 'int' or 'categorical'"
            )

    def validate(self, value: Any) -> Value:
        """Check one value and return it in canonical form.

        Args:
            value: A candidate value (strings are parsed for numeric kinds, as from the CLI).

        Returns:
            The value as ``float``, ``int`` or the matching choice.

        Raises:
            ParameterError: If the value has the wrong type or lies outside the bounds.
        """
        if self.kind == "categorical":
            for choice in self.choices:
                if value == choice or str(value) == str(choice):
                    return choice
            raise ParameterError(
                f"parameter {self.name!r}: {value!r} is not one of {list(self.choices)}"
            )
        if isinstance(value, bool):
            raise ParameterError(f"parameter {self.name!r}: {value!r} is a boolean, not a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"parameter {self.name!r}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ParameterError(f"parameter {self.name!r}: {value!r} is not finite")
        assert self.low is not None and self.high is not None
        if number < self.low or number > self.high:
            raise ParameterError(
                f"parameter {self.name!r}: {value!r} is out of range [{self.low}, {self.high}]"
            )
        if self.kind == "int":
            if number != int(number):
                raise ParameterError(f"parameter {self.name!r}: {value!r} is not a whole number")
            return int(number)
        return number

    def to_unit(self, value: Value) -> float:
        """Map a valid value to [0, 1]."""
        if self.kind == "categorical":
            return self.choices.index(value) / (len(self.choices) - 1)
        assert self.low is not None and self.high is not None
        if self.log:
            lo, hi, v = math.log(self.low), math.log(self.high), math.log(float(value))
        else:
            lo, hi, v = self.low, self.high, float(value)
        return (v - lo) / (hi - lo)

    def from_unit(self, u: float) -> Value:
        """Map a point of [0, 1] (clipped) back to a valid value, rounding where needed."""
        u = min(1.0, max(0.0, float(u)))
        if self.kind == "categorical":
            return self.choices[int(round(u * (len(self.choices) - 1)))]
        assert self.low is not None and self.high is not None
        if u in (0.0, 1.0):  # the bounds exactly (a log round trip would miss them by ulps)
            value = self.low if u == 0.0 else self.high
        elif self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            value = math.exp(lo + u * (hi - lo))
        else:
            value = self.low + u * (self.high - self.low)
        value = min(self.high, max(self.low, value))
        if self.kind == "int":
            return int(min(self.high, max(self.low, round(value))))
        return value


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameters.

    Attributes:
        parameters: The dimensions, in encoding order.
    """

    parameters: tuple[Parameter, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.parameters:
            raise ParameterError("a search space needs at least one parameter")
        names = [p.name for p in self.parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ParameterError(f"parameter names must be unique; repeated: {dupes}")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    @property
    def names(self) -> list[str]:
        """Parameter names in encoding order."""
        return [p.name for p in self.parameters]

    @property
    def dim(self) -> int:
        """Number of dimensions ``d`` of the unit-cube encoding."""
        return len(self.parameters)

    @property
    def fidelity_indices(self) -> list[int]:
        """Columns of the encoding that are fidelity dimensions."""
        return [i for i, p in enumerate(self.parameters) if p.fidelity]

    def __getitem__(self, name: str) -> Parameter:
        try:
            return self.parameters[self._index[name]]
        except KeyError:
            raise ParameterError(
                f"unknown parameter {name!r}; the space has {self.names}"
            ) from None

    def validate(self, values: Mapping[str, Any], *, partial: bool = False) -> dict[str, Value]:
        """Check a full assignment of values.

        Args:
            values: Parameter name to value.
            partial: Allow missing parameters (used for fixed features).

        Returns:
            A new dict in encoding order with canonical values.

        Raises:
            ParameterError: Naming every unknown or missing parameter, or the first bad value.
        """
        unknown = sorted(set(values) - set(self._index))
        if unknown:
            raise ParameterError(f"unknown parameter(s) {unknown}; the space has {self.names}")
        missing = [n for n in self.names if n not in values]
        if missing and not partial:
            raise ParameterError(f"missing value(s) for parameter(s) {missing}")
        return {p.name: p.validate(values[p.name]) for p in self.parameters if p.name in values}

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> Tensor:
        """Encode assignments into the unit cube.

        Args:
            rows: ``n`` full assignments.

        Returns:
            A ``n x d`` double tensor with entries in [0, 1].
        """
        return self.encode_valid([self.validate(row) for row in rows])

    def encode_valid(self, rows: Sequence[Mapping[str, Value]]) -> Tensor:
        """:meth:`encode` for assignments that :meth:`validate` already returned (canonical
        values; nothing is checked again).

        Args:
            rows: ``n`` validated full assignments.

        Returns:
            A ``n x d`` double tensor with entries in [0, 1].
        """
        units = [[p.to_unit(row[p.name]) for p in self.parameters] for row in rows]
        return torch.tensor(units, dtype=torch.double).reshape(len(rows), self.dim)

    def decode(self, X: Tensor) -> list[dict[str, Value]]:
        """Decode unit-cube points to assignments (rounding ints and categories).

        Args:
            X: A ``n x d`` tensor.

        Returns:
            ``n`` assignments in encoding order.
        """
        if X.dim() != 2 or X.shape[-1] != self.dim:
            raise ParameterError(f"expected an n x {self.dim} tensor, got shape {tuple(X.shape)}")
        return [
            {p.name: p.from_unit(float(x[j])) for j, p in enumerate(self.parameters)}
            for x in X.detach().tolist()
        ]

    def round_trip(self, X: Tensor) -> Tensor:
        """Snap unit-cube points onto the values the space can represent.

        Args:
            X: A ``n x d`` tensor.

        Returns:
            A ``n x d`` tensor: ``encode(decode(X))``.
        """
        return self.encode(self.decode(X))

    def bounds(self) -> Tensor:
        """The ``2 x d`` unit-cube bounds botorch optimisers expect."""
        return torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).double()

    def sample(self, n: int, generator: torch.Generator | None = None) -> list[dict[str, Value]]:
        """Draw ``n`` assignments uniformly in the encoding (log-uniform on log scales)."""
        X = torch.rand(n, self.dim, generator=generator, dtype=torch.double)
        return self.decode(X)


def parameter_to_dict(p: Parameter) -> dict[str, Any]:
    """JSON/TOML form of a parameter (the same keys as a campaign file's ``[[parameters]]``)."""
    out: dict[str, Any] = {"name": p.name, "type": p.kind}
    if p.kind == "categorical":
        out["choices"] = list(p.choices)
    else:
        out["low"], out["high"] = p.low, p.high
        if p.log:
            out["log"] = True
    if p.fidelity:
        out["fidelity"] = True
    return out


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """JSON form of a search space."""
    return {"parameters": [parameter_to_dict(p) for p in space.parameters]}


def space_from_dict(data: Mapping[str, Any]) -> SearchSpace:
    """Inverse of :func:`space_to_dict`."""
    params = []
    for raw in data["parameters"]:
        params.append(
            Parameter(
                name=raw["name"],
                kind=raw["type"],
                low=raw.get("low"),
                high=raw.get("high"),
                log=bool(raw.get("log", False)),
                choices=tuple(raw.get("choices", ())),
                fidelity=bool(raw.get("fidelity", False)),
            )
        )
    return SearchSpace(tuple(params))
