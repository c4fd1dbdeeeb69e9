"""The campaign loop as plain Python: fit -> propose -> gate -> dispatch -> poll -> log -> refit.

Every step is a method with its inputs and outputs in the open, so the Prefect flow in
:mod:`flows.campaign` is a thin wrapper and tests can drive the loop step by step.

State lives in the record store, not in this object: a loop built on a campaign that was
killed mid-way reads every experiment back, re-attaches to the ones still running and
resubmits (idempotently) the ones recorded but not confirmed submitted (see flows/faults.py).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from flows.faults import FaultHandler, call_connector
from flows.loop_early import annotate, partial_points, stop_early
from flows.loop_fit import LAZY_FIT_S, REFIT_FRACTION, fit_now, log_latest, refit_due, refit_every
from flows.loop_gate import answer_virtually, build_value_gate
from flows.loop_state import CampaignResult, LoopState, ProgressFn, summarise
from flows.loop_stop import affordable, check_stop, end_round, record_stop_reason
from scheduler.agent import Agent, default_initial_experiments
from scheduler.constraints import OutcomeConstraint
from scheduler.gate import Candidate, Decision, DispatchGate
from scheduler.multiobjective import objectives_of
from scheduler.restart import default_restart_after
from scheduler.stopping import StoppingRule, best_gain_per_cost
from scheduler.warm_start import apply_prior, read_prior
from sciwm.connector import Connector
from sciwm.errors import BackendUnavailable
from sciwm.experiment import Experiment, Observation, Status
from sciwm.pareto import as_tensor, feasible, hypervolume_trace, reference_point
from sciwm.registry import build_connector, build_world_model
from sciwm.spec import CampaignSpec
from sciwm.store import Record, RecordStore
from sciwm.world_model import WorldModel

log = logging.getLogger("sciwm.campaign")

__all__ = ["LAZY_FIT_S", "REFIT_FRACTION", "CampaignLoop"]


class CampaignLoop:
    """One campaign's loop, built from its spec, a record store and a working directory.

    Args:
        spec: The validated campaign.
        spec_text: The campaign file's text (stored with the campaign).
        store: Where results are recorded and read back from.
        workdir: Directory for the connector's state (stable across restarts).
        progress: Called as ``progress(state, spent)`` after every step.
    """

    def __init__(
        self,
        spec: CampaignSpec,
        spec_text: str,
        store: RecordStore,
        workdir: Path,
        progress: ProgressFn | None = None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.space = spec.space()
        self.progress = progress
        store.open_campaign(spec, spec_text)
        sched = spec.scheduler
        self.model: WorldModel = build_world_model(spec.world_model, self.space, spec.outcome_names)
        warm = spec.warm_start
        self.prior = (
            None if warm is None else read_prior(store, self.space, warm.campaigns, warm.values)
        )
        self._warm_start(self.model)
        self.connector: Connector = build_connector(
            spec.connector, workdir, {"parallelism": sched.parallelism}
        )
        # settings left out of the campaign file take the agent's and the gate's defaults
        agent_settings = sched.agent_settings()
        agent_settings.setdefault("initial_experiments", default_initial_experiments(self.model))
        agent_settings.setdefault("restart_after", default_restart_after(self.model))
        objs = spec.objectives
        self.agent = Agent(
            self.space,
            spec.objective.name,
            spec.maximize,
            acquisition=sched.acquisition,
            seed=spec.campaign.seed,
            objectives=objectives_of(
                [o.name for o in objs], [o.maximize for o in objs], [o.ref for o in objs]
            )
            if spec.multi_objective
            else None,
            constraints=[OutcomeConstraint(c.outcome, c.op, c.bound) for c in spec.constraints],
            **agent_settings,
        )
        gate_settings = (
            {} if sched.cost_safety_factor is None else {"safety_factor": sched.cost_safety_factor}
        )
        self.gate = DispatchGate(
            spec.budget.total,
            default_reservation=sched.initial_reservation,
            parallelism=sched.parallelism,
            unit=spec.budget.unit,
            **gate_settings,
        )
        self.stopping = StoppingRule(
            max_experiments=spec.stopping.max_experiments,
            patience=spec.stopping.patience,
            target=spec.stopping.target,
            maximize=spec.maximize or spec.multi_objective,  # several: the hypervolume
            min_gain_per_cost=spec.stopping.min_gain_per_cost,
            gain_rounds=spec.stopping.gain_rounds,
        )
        self.faults = FaultHandler(spec.faults, store.display_uri)
        self.value_gate = build_value_gate(spec)
        self.state = self._load_state()
        self.faults.rebuild(self.state.finished, list(self.state.running.values()))
        # Small GP fits are fastest on one thread, and experiments need the other cores.
        torch.set_num_threads(int(os.environ.get("SCIWM_TORCH_THREADS", "1")))

    # -- state --------------------------------------------------------------------------
    def _load_state(self) -> LoopState:
        """Rebuild the loop's state from the store; resubmit what was never confirmed."""
        state = LoopState()
        records = self.store.records(self.spec.name)
        for rec in records:
            state.next_seq = max(state.next_seq, rec.experiment.seq + 1)
            if rec.status.finished:
                state.finished.append(rec)
            elif rec.status is Status.RUNNING and rec.handle is not None:
                state.running[rec.experiment.id] = rec
            else:  # proposed: the submit may or may not have happened; it is idempotent
                state.unsubmitted[rec.experiment.id] = rec  # submitted by the first step
        for answer in self.store.virtual_answers(self.spec.name):
            state.answered.append(answer.parameters)
            state.virtual_saved += answer.saved_cost
        if self.model_can_fit(state):
            self._try_load_model()
        return state

    def _try_load_model(self) -> None:
        try:
            logged = self.store.load_world_model(self.spec.name)
        except Exception as exc:  # noqa: BLE001 - an unreadable artifact only costs a refit
            log.warning("could not load the logged world model (%s); it will be refitted", exc)
            return
        if logged is not None:
            self.model = logged
            self._warm_start(self.model)

    def _warm_start(self, model: WorldModel) -> None:
        """Hand the earlier campaigns' results to the world model as its prior."""
        if self.prior is not None:
            apply_prior(model, self.prior, self.spec.world_model.type)

    @property
    def spent(self) -> float:
        """Real cost of finished experiments."""
        return sum(r.observation.cost or 0.0 for r in self.state.finished if r.observation)

    @property
    def n_started(self) -> int:
        """Experiments recorded as finished or running."""
        return len(self.state.finished) + len(self.state.in_flight())

    def running_reserved(self) -> list[float]:
        """Budget reserved by each running (or not yet accepted) experiment: its cost cap."""
        return [r.experiment.max_cost or 0.0 for r in self.state.in_flight()]

    def history(self, state: LoopState | None = None) -> tuple[list[Experiment], list[Observation]]:
        """Finished experiments and their observations, aligned."""
        state = state or self.state
        pairs = [(r.experiment, r.observation) for r in state.finished if r.observation]
        for r in state.finished:  # a run stopped early keeps its partial curve as data
            if r.status is Status.CANCELLED:
                pairs += partial_points(r, self.space)
        return [e for e, _ in pairs], [o for _, o in pairs]

    def objective_values(self) -> list[float]:
        """Objective of each completed, feasible experiment, in order of completion.

        With several objectives: the hypervolume of the results up to each of them (the
        reference point the campaign file's, or inferred from every result so far), so that
        ``patience`` counts results without a hypervolume gain.
        """
        names = [o.name for o in self.spec.objectives]
        done = [
            r.observation.outcomes
            for r in self.state.finished
            if r.observation
            and r.observation.status is Status.COMPLETED
            and all(n in r.observation.outcomes for n in names)
            and feasible(r.observation.outcomes, self.spec.constraints)
        ]
        if not self.spec.multi_objective:
            return [o[names[0]] for o in done]
        maximize = [o.maximize for o in self.spec.objectives]
        Y = as_tensor([[o[n] for n in names] for o in done], len(names))
        ref = reference_point(Y, maximize, [o.ref for o in self.spec.objectives])
        return [] if ref is None else hypervolume_trace(Y, maximize, ref)

    def model_can_fit(self, state: LoopState | None = None) -> bool:
        """Whether the world model can be fitted on the finished experiments (it says)."""
        return self.model.can_fit(*self.history(state))

    # -- steps --------------------------------------------------------------------------
    def poll(self) -> list[Record]:
        """Poll running experiments; record and return those that finished."""
        newly: list[Record] = []
        for exp_id, rec in list(self.state.running.items()):
            obs = self.faults.timed_out(rec, self.connector)  # cancelled past [faults] timeout_s
            if obs is None:
                if not self._call(self.connector.poll, rec.handle).finished:
                    continue
                obs = self._call(self.connector.fetch, rec.handle)
            obs = annotate(self, exp_id, obs.checked(self.spec.outcome_names))
            done = self.store.record_observation(rec, obs)
            del self.state.running[exp_id]
            self.state.finished.append(done)
            self.faults.finished(done, self.state.finished)
            self.state.refit_needed = True
            newly.append(done)
            if obs.status is not Status.COMPLETED:
                log.warning("experiment %s %s: %s", exp_id, obs.status.value, obs.error)
        return newly

    def refit_due(self) -> bool:
        """Whether enough results arrived since the last fit (see :mod:`flows.loop_fit`)."""
        return refit_due(self)

    def fit(self) -> bool:
        """Refit the world model on every finished experiment (logged to the store as
        :mod:`flows.loop_fit` says); ``False`` if not due."""
        return self.refit_due() and fit_now(self)

    def check_stop(self) -> str | None:
        """Why no further experiment should start, or ``None`` (see :mod:`flows.loop_stop`)."""
        return check_stop(self)

    def propose(self, n: int) -> list[Candidate]:
        """Ask the agent for up to ``n`` candidates, given what is pending.

        Once a round's every proposal was too dear for the budget left with nothing running
        (``state.budget_bound``), the agent proposes, while nothing runs, only candidates
        the dispatch gate can pay for (:func:`flows.loop_stop.affordable`).
        """
        experiments, observations = self.history()
        model = self.model if self.model.is_fitted else None
        sched = self.spec.scheduler
        pending = [r.experiment.parameters for r in self.state.in_flight()]
        if self.model.is_fitted and refit_every(self) > 1:
            pending += [  # results not yet in a lazily refitted model count as pending
                r.experiment.parameters
                for r in self.state.finished[self.state.fitted_on :]
                if r.status is Status.COMPLETED
            ]
        return self.agent.propose(
            model,
            experiments,
            observations,
            pending,
            n,
            level=sched.interval_level,
            slot_cost=self.slot_cost(),
            answered=self.state.answered,
            canonical=self.connector.resolve,
            admit=affordable(self) if self.state.budget_bound else None,
            # cost cooling: the cost term weighs the fraction of the budget not yet spent
            cost_weight=1.0 - self.spent / self.spec.budget.total if sched.cost_cooling else 1.0,
        )

    def slot_cost(self) -> float:
        """Budget left per experiment the campaign may still start (its experiment cap)."""
        slots_left = max(1, self.spec.stopping.max_experiments - self.n_started)
        left = self.gate.remaining(self.spent, self.running_reserved())
        return max(0.0, left) / slots_left

    def gate_and_dispatch(self, candidates: list[Candidate], capacity: int) -> list[Decision]:
        """Run the gate; record and submit the candidates it lets through."""
        decisions = self.gate.decide(
            candidates,
            spent=self.spent,
            running_reserved=self.running_reserved(),
            capacity=capacity,
        )
        for decision in decisions:
            if not decision.dispatch:
                log.info("not dispatched: %s", decision.reason)
                continue
            exp = Experiment.create(
                self.spec.name,
                self.state.next_seq,
                self.space.validate(decision.candidate.parameters),
                decision.max_cost,
            )
            self.state.next_seq += 1
            self.submit(self.store.record_proposal(exp, decision.candidate.prediction))
        return decisions

    def submit(self, rec: Record) -> None:
        """Submit a recorded proposal; while the backend is unavailable it waits, unsubmitted."""
        self.state.unsubmitted[rec.experiment.id] = rec
        handle = self._call(self.connector.submit, rec.experiment)
        del self.state.unsubmitted[rec.experiment.id]
        self.state.running[rec.experiment.id] = self.store.record_submitted(rec, handle)
        self.faults.submitted(rec.experiment.id)

    def dispatch(self, n: int) -> list[Decision]:
        """Propose ``n`` candidates and dispatch those the gate lets through.

        With ``[stopping] min_gain_per_cost`` set, the round's best expected gain per unit of
        cost is noted first; when that ends the campaign nothing is dispatched.
        """
        retries = self.faults.due(n)  # failed transiently: the same parameters again
        candidates = self.propose(n - len(retries)) if n > len(retries) else []
        if candidates and self.stopping.min_gain_per_cost is not None:
            self.state.gains.append(self.gain_per_cost(candidates))
            reason = self.stopping.check_gain(self.state.gains)
            if reason is not None:
                self.state.stop_reason = reason
                return []
        n_before = len(self.state.answered)
        candidates = answer_virtually(self, candidates)
        self.state.virtual_round = len(self.state.answered) - n_before
        if self.state.stop_reason is not None:
            return []
        return self.gate_and_dispatch(retries + candidates, n)

    def gain_per_cost(self, candidates: list[Candidate]) -> float | None:
        """The round's best expected gain per unit of cost (see :func:`best_gain_per_cost`)."""
        return best_gain_per_cost(
            self.model if self.model.is_fitted else None,
            self.spec.objective.name,
            self.spec.maximize,
            self.space,
            candidates,
            self.objective_values(),
        )

    def step(self) -> bool:
        """One pass of the loop; ``False`` once over. An unavailable backend pauses it."""
        try:
            go_on = self._step()
        except BackendUnavailable as exc:
            self.faults.pause(exc)
            return True
        self.faults.resumed()
        return go_on

    def _step(self) -> bool:
        for rec in list(self.state.unsubmitted.values()):
            self.submit(rec)
        stop_early(self)
        self.poll()
        reason = self.check_stop()
        if reason is not None:
            self.state.stop_reason = reason
            return bool(self.state.running)
        slots = min(
            self.spec.scheduler.parallelism - len(self.state.running),
            self._call(self.connector.capacity),
        )
        n = min(
            slots,
            self.spec.scheduler.batch_size,
            self.spec.stopping.max_experiments - self.n_started,
        )
        if n <= 0 or self.gate.remaining(self.spent, self.running_reserved()) <= 0:
            return True  # no slot, or all the budget reserved by running experiments: wait
        self.fit()
        decisions = self.dispatch(n)
        if self.state.stop_reason is not None:  # a stopping rule fired while proposing
            return bool(self.state.running)
        return end_round(self, decisions, n)

    def run(self) -> CampaignResult:
        """Loop until the budget, the stopping rule or the experiment cap ends the campaign."""
        interval = self.spec.scheduler.poll_interval_s
        try:
            while self.step():
                if self.progress:
                    self.progress(self.state, self.spent)
                time.sleep(interval if self.state.running else 0.0)
            self.fit()
            log_latest(self)
        finally:
            self.connector.close()
        record_stop_reason(self)
        if self.progress:
            self.progress(self.state, self.spent)
        return self.result()

    def result(self) -> CampaignResult:
        """The campaign's summary now."""
        return summarise(self.spec, self.state, self.n_started, self.spent, self.store.display_uri)

    # -- helpers ------------------------------------------------------------------------
    def _call(self, fn, *args):  # noqa: ANN001, ANN202 - see flows.faults.call_connector
        return call_connector(fn, *args, tracking_uri=self.store.display_uri)
