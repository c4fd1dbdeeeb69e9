"""Campaign files: a valid TOML parses; each kind of mistake gives a SpecError naming where."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from sciwm.errors import SpecError
from sciwm.space import Parameter, SearchSpace
from sciwm.spec import CampaignSpec, load_spec

VALID = textwrap.dedent(
    """
    outcomes = ["rmsd"]  # top-level keys come before the first table

    [campaign]
    name = "folding-demo"
    description = "a small test campaign"
    seed = 7

    [[parameters]]
    name = "temperature"
    type = "float"
    low = 280.0
    high = 360.0

    [[parameters]]
    name = "learning_rate"
    type = "float"
    low = 1e-4
    high = 0.1
    log = true

    [[parameters]]
    name = "layers"
    type = "int"
    low = 1
    high = 6

    [[parameters]]
    name = "solvent"
    type = "categorical"
    choices = ["water", "ethanol"]

    [[parameters]]
    name = "steps"
    type = "int"
    low = 100
    high = 10000
    log = true
    fidelity = true

    [[objectives]]
    name = "energy"
    direction = "minimize"

    [budget]
    total = 3600.0
    unit = "s"

    [connector]
    type = "local"

    [connector.settings]
    command = ["python", "-m", "sim"]
    timeout_s = 60

    [world_model]
    type = "gp"

    [world_model.settings]
    min_points = 3

    [scheduler]
    acquisition = "ei_per_cost"
    batch_size = 2
    parallelism = 4
    initial_experiments = 4
    interval_level = 0.8

    [stopping]
    max_experiments = 30
    patience = 5
    target = -12.5

    [store]
    tracking_uri = "sqlite:///mlflow.db"
    """
)


def write(tmp_path: Path, text: str, name: str = "campaign.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def edited(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


def test_valid_file_parses(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID))
    assert isinstance(spec, CampaignSpec)
    assert spec.name == "folding-demo" and spec.campaign.seed == 7
    assert spec.outcome_names == ["energy", "rmsd"]
    assert spec.maximize is False
    assert spec.budget.total == 3600.0
    assert spec.connector.type == "local"
    assert spec.connector.settings == {"command": ["python", "-m", "sim"], "timeout_s": 60}
    assert spec.world_model.settings == {"min_points": 3}
    assert (spec.scheduler.batch_size, spec.scheduler.parallelism) == (2, 4)
    assert spec.scheduler.interval_level == 0.8
    assert (spec.stopping.max_experiments, spec.stopping.patience) == (30, 5)
    assert spec.stopping.target == -12.5
    assert spec.store.tracking_uri == "sqlite:///mlflow.db"
    space = spec.space()
    assert isinstance(space, SearchSpace)
    assert space.names == ["temperature", "learning_rate", "layers", "solvent", "steps"]
    assert space["learning_rate"] == Parameter("learning_rate", "float", 1e-4, 0.1, log=True)
    assert space["solvent"].choices == ("water", "ethanol")
    assert space.fidelity_indices == [4]
    assert space["layers"].validate(3) == 3


def test_defaults_fill_optional_tables(tmp_path: Path) -> None:
    minimal = textwrap.dedent(
        """
        [campaign]
        name = "m"
        [[parameters]]
        name = "x"
        type = "float"
        low = 0
        high = 1
        [[objectives]]
        name = "y"
        [budget]
        total = 10
        [connector]
        type = "local"
        """
    )
    spec = load_spec(write(tmp_path, minimal))
    assert spec.maximize is True
    assert spec.world_model.type == "gp"
    assert spec.scheduler.batch_size == 1 and spec.scheduler.interval_level == 0.9
    assert spec.store.tracking_uri is None
    assert spec.outcome_names == ["y"]
    # left out: the agent's and the gate's own defaults apply (each defined once, there)
    sched = spec.scheduler
    assert sched.initial_experiments is None and sched.cost_safety_factor is None
    assert sched.agent_settings() == {}


def test_world_model_settings_are_checked_at_load(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, edited("min_points = 3", "min_points = 1")))
    assert str(info.value) == (
        f"invalid campaign file {tmp_path / 'campaign.toml'}: world_model.settings.min_points: "
        "must be at least 2, got 1 (a setting of the 'gp' world model)"
    )
    with pytest.raises(SpecError, match=r"world_model\.settings: unknown setting\(s\) \['mni'\]"):
        load_spec(write(tmp_path, edited("min_points = 3", "mni = 3")))
    with pytest.raises(SpecError, match="world_model.type: unknown world model type 'gpp'"):
        load_spec(write(tmp_path, edited('type = "gp"', 'type = "gpp"')))
    with pytest.raises(SpecError, match="world_model.type: .*has no attribute 'Nope'"):
        load_spec(write(tmp_path, edited('type = "gp"', 'type = "surrogates.gp:Nope"')))


def test_a_world_model_without_a_settings_type_is_not_checked_at_load(tmp_path: Path) -> None:
    """Its constructor checks its settings; loading the file only finds the class."""
    text = edited('type = "gp"', 'type = "tests.flows.prior_double:PriorWorldModelDouble"')
    spec = load_spec(write(tmp_path, text))
    assert spec.world_model.settings == {"min_points": 3}


def test_spec_is_frozen(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID))
    with pytest.raises(Exception, match="frozen"):
        spec.budget.total = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "location", "message"),
    [
        pytest.param(
            edited('[budget]\ntotal = 3600.0\nunit = "s"\n', ""),
            "budget",
            "required but missing",
            id="missing-budget",
        ),
        pytest.param(
            edited("total = 3600.0", "totl = 3600.0"),
            "budget.totl",
            "unknown key",
            id="typo-in-key",
        ),
        pytest.param(
            edited("[world_model]\n", "[wold_model]\n"),
            "wold_model",
            "unknown key",
            id="typo-in-table",
        ),
        pytest.param(
            edited("low = 280.0", "low = 360.0"),
            "parameters.0",
            "'temperature': low (360.0) must be below high (360.0)",
            id="low-not-below-high",
        ),
        pytest.param(
            edited("batch_size = 2", "batch_size = 8"),
            "scheduler",
            "batch_size (8) exceeds parallelism (4)",
            id="batch-over-parallelism",
        ),
        pytest.param(
            edited(
                'acquisition = "ei_per_cost"', 'acquisition = "ei_per_cost"\ncost_exponent = -1'
            ),
            "scheduler.cost_exponent",
            "greater than or equal to 0",
            id="negative-cost-exponent",
        ),
        pytest.param(
            edited('acquisition = "ei_per_cost"', 'acquisition = "ucb"'),
            "scheduler.acquisition",
            "'ei_per_cost', 'gittins', 'ei' or 'random'",
            id="unknown-acquisition",
        ),
        pytest.param(
            edited('name = "layers"', 'name = "temperature"'),
            "parameters",
            "unique; repeated: ['temperature']",
            id="duplicate-parameter",
        ),
        pytest.param(
            edited(
                'direction = "minimize"', 'direction = "minimize"\n[[objectives]]\nname = "energy"'
            ),
            "objectives",
            "objective names must be unique; repeated: ['energy']",
            id="two-objectives-same-name",
        ),
        pytest.param(
            edited("low = 1e-4", "low = 0.0"),
            "parameters.1",
            "'learning_rate': a log scale needs low > 0",
            id="log-with-low-zero",
        ),
        pytest.param(
            edited('name = "energy"', 'name = "layers"'),
            "objectives",
            "both as parameter and outcome: ['layers']",
            id="objective-named-like-parameter",
        ),
        pytest.param(
            edited('outcomes = ["rmsd"]', 'outcomes = ["solvent"]'),
            "outcomes",
            "both as parameter and outcome: ['solvent']",
            id="outcome-named-like-parameter",
        ),
        pytest.param(
            edited('outcomes = ["rmsd"]', 'outcomes = ["energy"]'),
            "outcomes",
            "outcome names must be unique",
            id="outcome-repeats-objective",
        ),
        pytest.param(
            edited('type = "float"', 'type = "flaot"'),
            "parameters.0.type",
            "'float', 'int' or 'categorical'",
            id="bad-parameter-type",
        ),
        pytest.param(
            edited('choices = ["water", "ethanol"]', 'choices = ["water", "ethanol"]\nlow = 0.0'),
            "parameters.3",
            "numeric types only",
            id="bounds-on-categorical",
        ),
        pytest.param(
            edited("high = 6", "high = 6\nchoices = [1, 2]"),
            "parameters.2",
            "'choices' apply to categorical parameters only",
            id="choices-on-int",
        ),
        pytest.param(
            edited("total = 3600.0", "total = -1.0"),
            "budget.total",
            "greater than 0",
            id="negative-budget",
        ),
        pytest.param(
            edited('name = "folding-demo"', 'name = "folding demo!"'),
            "campaign.name",
            "letters, digits",
            id="bad-campaign-name",
        ),
    ],
)
def test_bad_file_names_the_location(
    tmp_path: Path, text: str, location: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    text_out = str(info.value)
    assert str(path) in text_out
    lines = [ln.strip() for ln in text_out.splitlines() if ln.strip().startswith("- ")]
    hits = [ln for ln in lines if ln.startswith(f"- {location}:")]
    assert hits, f"no error located at {location!r} in:\n{text_out}"
    assert any(message in ln for ln in hits), text_out


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = edited("total = 3600.0", "totl = 3600.0").replace("batch_size = 2", "batch_size = 0")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text))
    locations = re.findall(r"^\s+- ([\w.]+):", str(info.value), flags=re.MULTILINE)
    assert {"budget.totl", "budget.total", "scheduler.batch_size"} <= set(locations)


def test_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[campaign\nname = demo\n")
    with pytest.raises(SpecError, match="is not valid TOML") as info:
        load_spec(path)
    assert str(path) in str(info.value)
    assert "line 1" in str(info.value)  # tomllib's position survives


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "campaign.toml"
    path.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(SpecError, match="not a text file"):
        load_spec(path)


def test_nonexistent_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(SpecError, match="does not exist") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)
