"""Statistics of the report, without scipy: Student's t distribution (from the regularised incomplete beta
function), summaries over seeds and Welch's interval for a difference of means."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CI_LEVEL = 0.95
CI_METHOD = (
    "95% Welch t-interval for the difference of means (Welch-Satterthwaite degrees of freedom; "
    "t quantile from the regularised incomplete beta function); runs are treated as independent samples"
)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df > 0 degrees of freedom (df may be fractional or inf)."""
    if math.isinf(df):
        return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with t_cdf(t, df) = p, by bisection (to ~1e-12 relative)."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for n < 2
    min: float
    max: float


def summarize(values) -> Summary:
    v = np.asarray(list(values), dtype=np.float64)
    if len(v) == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    std = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
    return Summary(len(v), float(np.mean(v)), std, float(np.min(v)), float(np.max(v)))


@dataclass(frozen=True)
class Interval:
    diff: float  # mean(b) - mean(a)
    low: float
    high: float
    df: float


def welch_interval(a, b, level: float = CI_LEVEL) -> Interval:
    """Confidence interval for mean(b) - mean(a) by Welch's t-interval. nan bounds when a side has < 2 values."""
    a, b = np.asarray(list(a), dtype=np.float64), np.asarray(list(b), dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan)
    diff = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2:
        return Interval(diff, math.nan, math.nan, math.nan)
    va, vb = float(a.var(ddof=1)) / len(a), float(b.var(ddof=1)) / len(b)
    se2 = va + vb
    if se2 == 0.0:
        return Interval(diff, diff, diff, math.inf)
    df = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t_quantile(0.5 + level / 2.0, df) * math.sqrt(se2)
    return Interval(diff, diff - half, diff + half, df)
