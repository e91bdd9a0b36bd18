"""Error measures beyond plain error rate, starting with the paper's rejection criterion."""

from __future__ import annotations

import torch

REJECTION_TARGET = 0.01  # the paper reports the rejection needed for 1% error on the rest
# error levels at which each run's record stores the rejection needed (its error-rejection curve)
REJECTION_CURVE_ERRORS = (0.0, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05)


def margins(outputs: torch.Tensor) -> torch.Tensor:
    """(..., N, 10) output values -> (..., N) gap between the two most active output units."""
    top2 = outputs.topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


def rejection_for_error(outputs: torch.Tensor, labels: torch.Tensor, target: float = REJECTION_TARGET) -> float:
    """Smallest share of patterns to reject so that the error on the rest is at most `target`.

    As in the paper, a pattern is rejected when the gap between its two largest outputs is below a
    threshold; a threshold can only fall between distinct gap values, so ties are accepted or rejected
    together.
    """
    gap = margins(outputs)
    wrong = (outputs.argmax(dim=-1) != labels).double()
    order = torch.argsort(gap, descending=True, stable=True)
    gap, wrong = gap[order], wrong[order]
    n = len(gap)
    accepted = torch.arange(1, n + 1, dtype=torch.float64)
    error = wrong.cumsum(0) / accepted
    # a cut after position k (k accepted) is possible only where the next gap is strictly smaller
    cut_ok = torch.ones(n, dtype=torch.bool)
    cut_ok[:-1] = gap[1:] < gap[:-1]
    good = cut_ok & (error <= target)
    if not bool(good.any()):
        return 1.0
    k = int(accepted[good].max())
    return 1.0 - k / n


def rejection_curve(outputs: torch.Tensor, labels: torch.Tensor, targets: tuple[float, ...]) -> list[float]:
    return [rejection_for_error(outputs, labels, t) for t in targets]
