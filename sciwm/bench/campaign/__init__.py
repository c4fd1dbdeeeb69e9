"""Campaign benchmark: real cost spent to reach the optimum, sciwm vs cost-blind BO vs random.

Every method works on the same synthetic problems (:mod:`sciwm.testing.problems`), side by
side in one run with the same seeds:

- ``sciwm``: the product. For each problem and seed the benchmark writes a campaign file
  (:func:`~sciwm.bench.campaign.product.campaign_file`) for the simulated lab
  (:class:`sciwm.testing.simulated_lab.SimulatedLab`) with the ``gp`` world model and the
  shipped ``[scheduler]`` defaults, and runs it through the loop behind ``sciwm campaign
  run`` (:class:`flows.loop.CampaignLoop`): world model -> agent (``ei_per_cost``, restarts
  of a stalled search) -> dispatch gate -> connector -> a SQLite MLflow record store. An
  experiment that would overrun its reservation is stopped there by the lab and its result
  is lost, as with a real connector.
- ``sciwm_ei``: the same campaign with ``acquisition = "ei"`` (the cost term off): it
  separates the effect of the cost term from everything else the product adds.
- ``sciwm_cooled``: the same campaign with ``[scheduler] cost_cooling = true``, a variant
  users can select: the cost term weighs the fraction of the budget left, so the search
  turns cost-blind as the budget runs out.
- ``gp_cost_blind``: a plain botorch loop that ignores cost (qLogNEI on a ``SingleTaskGP``),
  with the product's initial design size and optimiser effort; see
  :mod:`~sciwm.bench.campaign.baselines`.
- ``optuna_tpe``: Optuna's TPE sampler with its defaults, cost-blind (needs ``optuna``, the
  ``bench`` extra; left out with a note where it is not installed).
- ``random``: uniform random search.

Problems are botorch test functions (minimised), with the simulated cost per experiment
``cost(u) = 10 ** ((u_1 + u_d) / 2)`` (``u`` the point in the unit cube: 1 to 10, median
3.16, mean about 3.5). Where the optima lie relative to cost (nothing was chosen to make
them cheap):

- ``branin`` (2-D, x1 in [-5, 10], x2 in [0, 15]): the three global minima (value 0.3979) cost
  2.96 at (-pi, 12.275), 2.22 at (pi, 2.275) and 3.66 at (9.425, 2.475), all near the median.
- ``hartmann6`` (6-D, [0, 1]^6): the global minimum (-3.3224) at u_1 = 0.202, u_6 = 0.657
  costs 2.69 (near the median); the second-best local minimum (-3.2032), a trap for BO, costs
  1.66, i.e. the trap is cheaper than the optimum.
- ``hartmann6_dear``: Hartmann6 mirrored along u_1, so that its global minimum sits at
  u_1 = 0.798, u_6 = 0.657 and costs 5.34, well above the median: where the optimum is dear,
  cost awareness must not cost the campaign its optimum (target: sciwm's median no more than
  ``sciwm_ei``'s). Its budget is 400, twice Hartmann6's, as its optimum costs twice as much.

``cost_to_target`` is the cost spent (initial design included) up to and including the
first experiment whose value lies within 1% of the function's value range of the optimum:
``f(x) <= f* + 0.01 * (f_max - f*)``. A run that does not get there within the cap is
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

Overhead: rows ``loop_s_per_experiment`` (a run's wall time per experiment),
``store_s_per_experiment`` (record store), ``fit_s_per_experiment`` (world-model fits) and
``propose_s_per_experiment`` (acquisition optimisation) show what the product's own parts
cost, next to the same figures of the plain botorch loop (and Optuna's proposal time).

Tuning: :class:`Settings` takes ``seed_offset`` (tune on seeds such as 1000.. and report the
benchmark's 0..), ``methods`` (run a subset) and ``scheduler`` (``[scheduler]`` settings for
the product's campaigns, e.g. ``{"acquisition": "gittins"}``); ``sciwm bench campaign``
always runs the defaults. The modules: ``product`` (the campaign files and the timed loop),
``baselines`` (the simple loops), ``methods`` (names, settings, a run's result), ``report``
(summary statistics and table), ``runner`` (:func:`run`).
"""

from __future__ import annotations

from sciwm.bench.campaign.baselines import run_gp_cost_blind, run_optuna_tpe, run_random
from sciwm.bench.campaign.methods import METHODS, PRODUCT_METHODS, RunResult, Settings
from sciwm.bench.campaign.product import campaign_file, run_product
from sciwm.bench.campaign.report import TABLE_METRICS, summarize, target_check
from sciwm.bench.campaign.runner import RUNNERS, SUITE, run
from sciwm.testing.problems import COST_MIN, COST_SPAN, OBJECTIVE, PROBLEMS, Problem, cost_of

__all__ = [
    "COST_MIN",
    "COST_SPAN",
    "METHODS",
    "OBJECTIVE",
    "PROBLEMS",
    "PRODUCT_METHODS",
    "RUNNERS",
    "SUITE",
    "TABLE_METRICS",
    "Problem",
    "RunResult",
    "Settings",
    "campaign_file",
    "cost_of",
    "run",
    "run_gp_cost_blind",
    "run_optuna_tpe",
    "run_product",
    "run_random",
    "summarize",
    "target_check",
]
