"""How a net's outputs are scored: the error convention, the exact loss reduction, the paper's rejection.

One error convention for every engine, the error rate and the rejection alike: a pattern is classified
correctly when the output value of its label is strictly larger than every other output value (the values
the net emits: tanh or scaled tanh for squared error, softmax probabilities for cross-entropy). A tie for
the top, as among outputs saturated at exactly 1.0 in float32, counts as an error: the net did not name one
class. (An argmax of the pre-activations would break such ties by unit order, and argmax of the values by
the first index; neither is what the net said.)

Losses are summed exactly (math.fsum over the float32 per-pattern losses, rounded once to float64), so a
member's reported loss does not depend on how many members share its population, on their order, or on
the number of threads. (Per-pattern outputs of a batched evaluation may still depend on its batch shape, so
each engine evaluates in fixed chunks.)
"""

from __future__ import annotations

import math

import torch

REJECTION_TARGET = 0.01  # the paper reports the rejection needed for 1% error on the rest
# error levels at which each run's record stores the rejection needed (its error-rejection curve)
REJECTION_CURVE_ERRORS = (0.0, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05)


def is_wrong(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(..., N, 10) output values and (N,) labels -> (..., N) bool: not strictly the label's output on top."""
    own = outputs.gather(-1, labels.expand(outputs.shape[:-1]).unsqueeze(-1))  # (..., N, 1)
    rivals = outputs.masked_fill(torch.nn.functional.one_hot(labels, outputs.shape[-1]).bool(), -math.inf)
    return ~(own.squeeze(-1) > rivals.max(dim=-1).values)  # NaN outputs compare false: wrong


def exact_sum(values: torch.Tensor) -> torch.Tensor:
    """(P, N) per-pattern numbers -> (P,) float64 sums, each exactly rounded (independent of order)."""
    rows = values.detach().to("cpu", torch.float64).tolist()
    return torch.tensor([math.fsum(r) for r in rows], dtype=torch.float64)


def margins(outputs: torch.Tensor) -> torch.Tensor:
    """(..., N, 10) output values -> (..., N) gap between the two most active output units."""
    top2 = outputs.topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


def rejection_for_error(outputs: torch.Tensor, labels: torch.Tensor, target: float = REJECTION_TARGET) -> float:
    """Smallest share of patterns to reject so that the error on the rest is at most `target`.

    As in the paper, patterns are rejected by the gap between their two largest outputs, smallest gaps first.
    Patterns whose gaps tie (saturated float32 outputs give whole blocks of exactly equal gaps) are one thing
    to the net: a threshold that falls on such a block may accept any k of its n patterns, which ones being
    arbitrary, and the error counted for them is the block's expected share, k * (block errors) / n. Between
    distinct gaps this is the plain threshold rule. The answer is 1.0 only when no accepted set reaches the
    target: when the patterns with the largest gap already err above it (every rule that sees only the
    outputs then fails too).
    """
    gap = margins(outputs)
    wrong = is_wrong(outputs, labels).double()
    order = torch.argsort(gap, descending=True, stable=True)
    gap, wrong = gap[order], wrong[order]
    n = len(gap)
    _, sizes = torch.unique_consecutive(gap, return_counts=True)
    ends = sizes.cumsum(0)
    cum_wrong = torch.cat([torch.zeros(1, dtype=torch.float64), wrong.cumsum(0)])
    block_wrong = cum_wrong[ends] - cum_wrong[ends - sizes]
    before = (ends - sizes).double()  # patterns accepted ahead of each block
    wrong_before = cum_wrong[ends - sizes]
    size = sizes.double()
    slack = target * before - wrong_before  # errors the patterns ahead leave to spare (>= 0: they meet target)
    excess = block_wrong / size - target  # how much each accepted pattern of the block overshoots the target
    tol = 1e-9  # float64 noise in `target * count`: an exact hit counts as meeting the target
    whole = wrong_before + block_wrong <= target * (before + size) + tol
    part = torch.where(excess > 0, torch.floor((slack + tol) / excess.clamp(min=1e-300)), size).clamp(0, None)
    part = torch.minimum(part, size)
    accepted = torch.where(whole, before + size, torch.where(slack >= -tol, before + part, torch.zeros_like(size)))
    return 1.0 - float(accepted.max()) / n

