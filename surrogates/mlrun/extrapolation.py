"""Whether a run lies outside the run predictor's training data, and why.

A run is *far from the data* (``Prediction.extrapolating``) when its learner segment's
embedding is unlike every training text, its training size is above the largest trained on,
or another numeric input (meta-feature, extra number) lies beyond the training range by more
than :data:`RANGE_MARGIN` standard deviations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from surrogates.mlrun.heads import Inputs

#: Standardised numeric features beyond the training range by more than this are
#: "far from the data".
RANGE_MARGIN = 0.5
#: Text embeddings with a cosine similarity below this to every training text are unseen.
TEXT_SIMILARITY = 0.97


def far_reasons(
    stats: Mapping[str, Tensor],
    learner_dim: int,
    names: Sequence[str],
    raw: Inputs,
    x: Inputs,
) -> list[str | None]:
    """Why each of ``n`` runs is outside the training data, or ``None``.

    Args:
        stats: The predictor's training statistics: ``text_bank`` (``u x e`` unique training
            texts), ``num_min`` / ``num_max`` (``k``, standardised), ``num_mean`` /
            ``num_std`` (``k``).
        learner_dim: Width of the learner segment at the start of each text row (a new
            data set is expected, so the data segment is not compared).
        names: The ``k`` numeric inputs' names, for the messages.
        raw: The runs' unstandardised inputs (``raw.text`` is ``n x e``).
        x: The same runs standardised (``x.numeric`` is ``n x k``, column 0 the log2 size).

    Returns:
        ``n`` reasons, ``None`` for a run inside the training data.
    """
    s = stats
    q = torch.nn.functional.normalize(raw.text[:, :learner_dim], dim=-1)
    bank = torch.nn.functional.normalize(s["text_bank"][:, :learner_dim], dim=-1)
    similarity = (q @ bank.T).max(-1).values
    num = x.numeric.detach()
    low, high = num < s["num_min"] - RANGE_MARGIN, num > s["num_max"] + RANGE_MARGIN
    high[:, 0] = num[:, 0] > s["num_max"][0] + 1e-4  # training size: any larger one
    # the checks as whole columns, then one Python pass over plain lists
    unlike = (similarity < TEXT_SIMILARITY).tolist()
    above = high[:, 0].tolist()
    out_of_range = low | high
    outside = out_of_range.any(-1).tolist()
    first = out_of_range.to(torch.uint8).argmax(-1)  # the first column out of range
    below = low.gather(1, first.unsqueeze(-1)).squeeze(-1).tolist()
    first = first.tolist()
    sizes = (num[:, 0] * s["num_std"][0] + s["num_mean"][0]).tolist()
    sims = similarity.tolist()
    top = 2 ** float(s["num_max"][0] * s["num_std"][0] + s["num_mean"][0])
    out: list[str | None] = []
    for i in range(len(num)):
        if unlike[i]:
            out.append(f"a learner unlike any trained on (similarity {sims[i]:.2f})")
        elif above[i]:
            out.append(
                f"training size {2 ** sizes[i]:.0f} is above the largest trained on ({top:.0f})"
            )
        elif outside[i]:
            side = "below" if below[i] else "above"
            out.append(f"{names[first[i]]} is {side} the range of the training data")
        else:
            out.append(None)
    return out
