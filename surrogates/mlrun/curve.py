"""The partial learning curve: hand-made summary features and a small learned encoder.

A partial curve is what a run has shown so far: scores (and train times) at the training-set
sizes (anchors) already reached. :func:`curve_features` turns it into a fixed-length vector
that states, relative to the target size, where the curve is and where it is heading (last
value, slope in log size, a power-law extrapolation, the extrapolated log train time);
:class:`surrogates.mlrun.heads.GaussianHeads` learns a small encoder on top of it.
:func:`power_law_extrapolate` is also the power-law baseline of the benchmark.
"""

from __future__ import annotations

import math

import numpy as np

#: Length of :func:`curve_features`' vector.
N_CURVE_FEATURES = 8


def _fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``y = a + b x`` (``b = 0`` for a single point)."""
    if len(x) < 2 or np.ptp(x) == 0:
        return float(np.mean(y)), 0.0
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def power_law_extrapolate(
    anchors: np.ndarray, scores: np.ndarray, target: float, last_k: int = 5
) -> float:
    """Extrapolate a score curve to ``target`` with an error power law ``1 - s = c n^b``.

    Fits ``log(1 - s)`` linearly in ``log n`` on the last ``last_k`` points; the exponent is
    clipped to ``[-1, 0]`` (error does not grow with more data; no faster than ``1/n``).

    Args:
        anchors: ``k`` training sizes, increasing.
        scores: ``k`` scores in [0, 1].
        target: Size to extrapolate to.

    Returns:
        The extrapolated score in [0, 1] (the last score when ``k == 1``).
    """
    if len(anchors) == 0:
        raise ValueError("power_law_extrapolate needs at least one observed point")
    x = np.log(np.asarray(anchors[-last_k:], float))
    err = np.clip(1.0 - np.asarray(scores[-last_k:], float), 1e-4, 1.0)
    a, b = _fit_line(x, np.log(err))
    b = min(0.0, max(-1.0, b))
    # Anchor the law at the last point, so a poor fit cannot jump away from what was seen.
    log_err = math.log(err[-1]) + b * (math.log(target) - x[-1])
    return float(np.clip(1.0 - math.exp(log_err), 0.0, 1.0))


def extrapolate_log_time(anchors: np.ndarray, times: np.ndarray, target: float) -> float:
    """Log train time at ``target`` from a line in log-log space (slope clipped to [0.5, 2.5])."""
    x = np.log(np.asarray(anchors, float))
    y = np.log(np.clip(np.asarray(times, float), 1e-4, None))
    if len(x) < 2:
        return float(y[-1] + (math.log(target) - x[-1]))  # linear in n
    k = min(len(x), 4)
    _, b = _fit_line(x[-k:], y[-k:])
    b = min(2.5, max(0.5, b))
    return float(y[-1] + b * (math.log(target) - x[-1]))


def curve_features(
    anchors: np.ndarray | None,
    scores: np.ndarray | None,
    times: np.ndarray | None,
    target: float,
) -> np.ndarray:
    """Fixed-length summary of a partial curve, relative to the target training size.

    Args:
        anchors: ``k`` observed training sizes (increasing), or ``None``/empty for none.
        scores: ``k`` observed scores.
        times: ``k`` observed train times in seconds (may be ``None``).
        target: The training size whose outcome is predicted.

    Returns:
        A float32 vector of length :data:`N_CURVE_FEATURES`: ``[observed, last score,
        log2(target / last size), slope per doubling, power-law score, best score,
        extrapolated log time, log2(number of points)]``; all zeros when nothing is observed.
    """
    out = np.zeros(N_CURVE_FEATURES, dtype=np.float32)
    if anchors is None or len(anchors) == 0:
        return out
    a = np.asarray(anchors, float)
    s = np.asarray(scores, float)
    if not (np.isfinite(a).all() and np.isfinite(s).all()):
        raise ValueError("a partial curve holds NaN or infinite values")
    slope = 0.0
    if len(a) >= 2 and a[-1] > a[-2]:
        slope = (s[-1] - s[-2]) / math.log2(a[-1] / a[-2])
    log_t = 0.0
    if times is not None and len(times):
        log_t = extrapolate_log_time(a, np.asarray(times, float), target)
    out[:] = [
        1.0,
        s[-1],
        math.log2(max(target, a[-1]) / a[-1]),
        slope,
        power_law_extrapolate(a, s, target),
        s.max(),
        log_t,
        math.log2(len(a)),
    ]
    return out
