"""When the loop logs its world model: first fit, every 10% more results, and at the end."""

from __future__ import annotations

from types import SimpleNamespace

from flows.loop_fit import REFIT_FRACTION, fit_now, log_latest
from flows.loop_state import LoopState


class _LoggingStore:
    """Test double of the record store: notes each ``log_world_model`` call."""

    def __init__(self) -> None:
        self.logged: list[tuple[int, int]] = []  # (step, results the model was fitted on)

    def log_world_model(self, campaign: str, model: object, step: int) -> str:
        self.logged.append((step, model.n))  # type: ignore[attr-defined]
        return f"world_model/{step:04d}"


class _CountingModel:
    """Test double of a world model: its fit notes how many results it saw."""

    n = 0
    is_fitted = False

    def fit(self, experiments: list, observations: list) -> None:
        self.n, self.is_fitted = len(experiments), True


def _loop() -> SimpleNamespace:
    state = LoopState()
    loop = SimpleNamespace(
        state=state, store=_LoggingStore(), model=_CountingModel(), spec=SimpleNamespace(name="c")
    )
    loop.history = lambda: (list(range(len(state.finished))), list(range(len(state.finished))))
    return loop


def test_a_model_refitted_on_every_result_is_logged_every_tenth_of_its_results() -> None:
    loop = _loop()
    for _ in range(100):
        loop.state.finished.append(object())
        assert fit_now(loop)
    steps = [s for s, _ in loop.store.logged]
    ons = [n for _, n in loop.store.logged]
    assert loop.state.fits == 100 and steps[0] == 1  # the first fit is logged
    assert len(steps) < 40  # not all 100 fits (~6 MB each for a pretrained ML-run model)
    for a, b in zip(ons, ons[1:], strict=False):  # each after REFIT_FRACTION more results
        assert b - a >= max(1, REFIT_FRACTION * a) and b - a <= max(1, REFIT_FRACTION * a) + 1
    log_latest(loop)  # the campaign ends: its last fit is logged, once
    log_latest(loop)
    assert loop.store.logged[-1] == (100, 100)
    assert [s for s, _ in loop.store.logged].count(100) == 1


def test_nothing_is_logged_before_a_fit() -> None:
    loop = _loop()
    log_latest(loop)
    assert loop.store.logged == []
