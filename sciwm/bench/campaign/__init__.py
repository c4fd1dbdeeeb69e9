"""Campaign benchmark: real cost spent to reach the optimum, sciwm vs cost-blind BO vs random.

Every method runs the same simulated lab, side by side in one run with the same seeds:

- ``sciwm``: the real sciwm parts in-process: :class:`surrogates.gp.GPWorldModel` refitted on
  every result, :class:`scheduler.agent.Agent` with the ``ei_per_cost`` acquisition (log
  qLogNEI minus predicted log cost; the search restarts after 10 results without a real
  improvement, see :mod:`scheduler.restart`), and :class:`scheduler.gate.DispatchGate` holding the
  run's budget cap (an experiment that would overrun its reservation is stopped at it, as a
  connector would, and its result is lost).
- ``gp_cost_blind``: a plain botorch loop: the same scrambled Sobol initial design (same
  seed, same size), the same GP (``SingleTaskGP``, Matern-5/2 ARD, ``Standardize``, fitted
  with ``fit_gpytorch_mll``), ``qLogNoisyExpectedImprovement`` maximised by ``optimize_acqf``
  with the same restarts and raw samples. It ignores cost.
- ``random``: uniform random search.
- ``sciwm_ei``: sciwm's own loop with the cost term switched off (acquisition ``"ei"``): it
  separates the effect of the cost term from everything else that differs between sciwm and
  the plain botorch loop (optimiser seeds, duplicate checks, the posterior adapter), i.e. it
  shows how far two cost-blind implementations of the same method differ by chance.

Problems are botorch test functions (minimised), with a cost per experiment that varies
smoothly over the space. With ``u`` the point in the unit cube (``u_1`` the first coordinate,
``u_d`` the last)::

    cost(u) = 10 ** ((u_1 + u_d) / 2)        # in [1, 10]: log-linear, spans exactly 10x

The cheapest corner is ``u_1 = u_d = 0``, the dearest ``u_1 = u_d = 1``; the median cost over
the space is ``10 ** 0.5 = 3.16`` and the mean about 3.5. Where the optima lie relative to
cost (nothing was chosen to make them cheap):

- ``branin`` (2-D, x1 in [-5, 10], x2 in [0, 15]): the three global minima (value 0.3979) cost
  2.96 at (-pi, 12.275), 2.22 at (pi, 2.275) and 3.66 at (9.425, 2.475), all near the median.
- ``hartmann6`` (6-D, [0, 1]^6): the global minimum (-3.3224) at u_1 = 0.202, u_6 = 0.657
  costs 2.69 (near the median); the second-best local minimum (-3.2032), a trap for BO, costs
  1.66, i.e. the trap is cheaper than the optimum.

``cost_to_target`` is the real cost spent (initial design included) up to and including the
first experiment whose value lies within 1% of the function's value range of the optimum:
``f(x) <= f* + 0.01 * (f_max - f*)``, with ``f_max`` the largest value over the domain
(found numerically; constants below). A run that does not get there within the cap is
"not reached": its cost counts as infinite for the median and the quartiles, so a median
over seeds is reported only when at least half the seeds reached the target; otherwise the
value is ``null`` and the row says ``censored``. ``ratio_to_sciwm`` is a baseline's median
over sciwm's; when the baseline's median is censored it is the lower bound ``cap / sciwm's
median`` (``bound: "lower"``).

How hard the targets are: 5.8% of Branin's domain lies within its target (2 M uniform
samples), so random search's median is about 12 experiments (geometric law, p = 0.058),
some 30-40 in cost; a model-based method spends 5 experiments on its initial design alone, so
on Branin no method that has to learn where the optimum is can be 5x cheaper than random
search. None of 2 M uniform samples of Hartmann6 lies within its target.

Random search costs nothing to simulate, so it runs with a cap ``random_cap_factor`` (1000)
times larger than the model-based methods': its median is then measured rather than censored
at the common cap, which can only favour it, and its rows carry the cap it ran with.

Tuning: :class:`Settings` takes ``seed_offset`` (tune on seeds such as 1000.. and report the
benchmark's 0..), ``methods`` (run a subset) and ``acquisition`` (sciwm's acquisition, e.g.
``"gittins"``); ``sciwm bench campaign`` always runs the defaults. The modules: ``problems``
(test functions, cost surface, targets), ``methods`` (the loops), ``report`` (summary
statistics and table), ``runner`` (:func:`run`).
"""

from __future__ import annotations

from sciwm.bench.campaign.methods import (
    METHODS,
    RUNNERS,
    RunResult,
    Settings,
    run_gp_cost_blind,
    run_random,
    run_sciwm,
    run_sciwm_ei,
)
from sciwm.bench.campaign.problems import COST_MIN, COST_SPAN, OBJECTIVE, PROBLEMS, Problem, cost_of
from sciwm.bench.campaign.report import TABLE_METRICS, summarize, target_check
from sciwm.bench.campaign.runner import SUITE, run

__all__ = [
    "COST_MIN",
    "COST_SPAN",
    "METHODS",
    "OBJECTIVE",
    "PROBLEMS",
    "RUNNERS",
    "SUITE",
    "TABLE_METRICS",
    "Problem",
    "RunResult",
    "Settings",
    "cost_of",
    "run",
    "run_gp_cost_blind",
    "run_random",
    "run_sciwm",
    "run_sciwm_ei",
    "summarize",
    "target_check",
]
