"""Statistics of the report, without scipy: Student's t distribution (from the regularised incomplete beta
function), summaries over seeds, t intervals for a mean and for any linear combination of group means (Welch's
interval for a difference is one), exact (Clopper-Pearson) intervals for a count of collapses, and Holm's
correction for a family of tests. Every interval is right at the seed count (t quantiles, not a bootstrap)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CI_LEVEL = 0.95
CI_METHOD = (
    "95% t-interval for the difference of means, paired by seed where both configurations ran the same seeds "
    "and none of their runs collapsed (runs of one seed share their random stream, so their errors correlate: "
    "the measured correlation is in the table's file, `delta_corr`), else Welch's (Welch-Satterthwaite degrees "
    "of freedom); t quantiles from the regularised incomplete beta function"
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


def beta_quantile(p: float, a: float, b: float) -> float:
    """The x with I_x(a, b) = p, by bisection (to ~1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if betainc(a, b, mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13:
            break
    return 0.5 * (lo + hi)


def clopper_pearson(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Exact binomial interval for a proportion from k successes in n trials (nan, nan for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    alpha = 1.0 - level
    low = 0.0 if k == 0 else beta_quantile(alpha / 2.0, k, n - k + 1)
    high = 1.0 if k == n else beta_quantile(1.0 - alpha / 2.0, k + 1, n - k)
    return low, high


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for n < 2
    min: float
    max: float
    median: float = math.nan


def summarize(values) -> Summary:
    v = np.asarray(list(values), dtype=np.float64)
    if len(v) == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    std = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
    return Summary(len(v), float(np.mean(v)), std, float(np.min(v)), float(np.max(v)), float(np.median(v)))


FAR_MADS = 3.0  # a run this many (normal-scaled) median absolute deviations from its row's median is "far"
FAR_MIN_PP = 1.0  # ... and at least this many points away: seeds that agree to 0.1 pp have a tiny MAD


def far_runs(values) -> list[float]:
    """The runs of a row that lie far from the rest (FAR_MADS scaled MADs and FAR_MIN_PP points from the
    median): a row holding such runs is bimodal or has a tail, and its mean ± std describes no run."""
    v = np.asarray(list(values), dtype=np.float64)
    if len(v) < 3:
        return []
    med = float(np.median(v))
    mad = 1.4826 * float(np.median(np.abs(v - med)))
    return sorted(float(x) for x in v if abs(x - med) > max(FAR_MADS * mad, FAR_MIN_PP))


def mean_interval(values, level: float = CI_LEVEL) -> tuple[float, float]:
    """t interval for the mean of `values` (nan, nan for fewer than 2)."""
    v = np.asarray(list(values), dtype=np.float64)
    if len(v) < 2:
        return math.nan, math.nan
    half = t_quantile(0.5 + level / 2.0, len(v) - 1) * float(np.std(v, ddof=1)) / math.sqrt(len(v))
    return float(v.mean()) - half, float(v.mean()) + half


@dataclass(frozen=True)
class Contrast:
    """A linear combination of group means with its t interval and two-sided p-value (against 0)."""
    value: float
    low: float
    high: float
    df: float
    p: float


def contrast(weights, means, variances, counts, level: float = CI_LEVEL) -> Contrast:
    """sum_k w_k mean_k with a Welch-Satterthwaite t interval: variance sum_k w_k^2 s_k^2 / n_k, degrees of
    freedom (sum_k w_k^2 s_k^2/n_k)^2 / sum_k (w_k^2 s_k^2/n_k)^2 / (n_k - 1). Groups are independent samples.
    With zero variance the interval is the point and p is 0 (or 1 when the value is 0)."""
    w, m = np.asarray(weights, float), np.asarray(means, float)
    v, n = np.asarray(variances, float), np.asarray(counts, float)
    # Sums by math.fsum (correctly rounded, so independent of the order of the terms): `w @ m` goes to the BLAS,
    # whose kernel and so whose summation order depends on the CPU, and a Shapley value that is 0 came out as
    # +1e-16 on one CPU and -1e-16 on another (printed +0.00 and -0.00; near-ties sorted apart).
    value = math.fsum(w * m)
    parts = w ** 2 * v / n
    se2 = math.fsum(parts)
    if se2 == 0.0:
        return Contrast(value, value, value, math.inf, 1.0 if value == 0.0 else 0.0)
    df = se2 ** 2 / math.fsum(parts ** 2 / np.maximum(n - 1, 1))
    se = math.sqrt(se2)
    half = t_quantile(0.5 + level / 2.0, df) * se
    p = 2.0 * (1.0 - t_cdf(abs(value) / se, df))
    return Contrast(value, value - half, value + half, df, min(1.0, max(0.0, p)))


@lru_cache(maxsize=4096)
def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test for k1 of n1 against k2 of n2: the probability, with the margins
    fixed, of a table as probable as the observed one or less (exact integer arithmetic, math.comb)."""
    total, k = n1 + n2, k1 + k2
    lo, hi = max(0, k - n2), min(k, n1)
    weights = {x: math.comb(n1, x) * math.comb(n2, k - x) for x in range(lo, hi + 1)}
    observed = weights[k1]
    # Relative tolerance as in common implementations: tables equally probable up to rounding count as extreme.
    extreme = sum(w for w in weights.values() if w <= observed * (1 + 1e-7))
    return min(1.0, extreme / math.comb(total, k))


def wilson(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Wilson's score interval for a share of k in n (well behaved at 0 and n, unlike p +- z sqrt(p(1-p)/n))."""
    z = t_quantile(0.5 + level / 2.0, math.inf)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def share_difference(k1: int, n1: int, k2: int, n2: int, level: float = CI_LEVEL) -> Contrast:
    """k2/n2 - k1/n1 with Newcombe's hybrid score interval (from the two Wilson intervals; it stays wide where
    a share is 0 or 1, where a t interval collapses to the point) and the two-sided p-value of Fisher's exact
    test; as a fraction (not %)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, level)
    l2, u2 = wilson(k2, n2, level)
    d = p2 - p1
    low = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return Contrast(d, low, high, math.inf, fisher_exact(k1, n1, k2, n2))


def holm(pvalues, alpha: float = 1.0 - CI_LEVEL) -> list[bool]:
    """Holm's step-down correction: which of the family's hypotheses are rejected at family-wise level alpha
    (nan p-values are never rejected and do not count in the family)."""
    ps = [(p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    ps.sort()
    out = [False] * len(pvalues)
    for rank, (p, i) in enumerate(ps):
        if p > alpha / (len(ps) - rank):
            break
        out[i] = True
    return out


HOLM_TEXT = ("bold: the difference is significant at 5% family-wise error after Holm's correction over the {k} "
             "comparisons of this table (Welch t tests)")


@dataclass(frozen=True)
class Interval:
    diff: float  # mean(b) - mean(a)
    low: float
    high: float
    df: float
    p: float = math.nan  # two-sided Welch t test of no difference


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
    c = contrast([-1.0, 1.0], [a.mean(), b.mean()], [a.var(ddof=1), b.var(ddof=1)], [len(a), len(b)], level)
    return Interval(diff, diff + (c.low - c.value), diff + (c.high - c.value), c.df, c.p)


def paired_interval(a, b, level: float = CI_LEVEL) -> Interval:
    """Confidence interval for mean(b - a) over aligned pairs (a[i], b[i]): the t interval of the differences
    (n - 1 degrees of freedom) and the two-sided paired t test. nan bounds for fewer than 2 pairs."""
    a, b = np.asarray(list(a), dtype=np.float64), np.asarray(list(b), dtype=np.float64)
    if len(a) != len(b):
        raise ValueError(f"paired_interval needs aligned pairs ({len(a)} against {len(b)} values)")
    if len(a) == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan)
    d = b - a
    diff = float(d.mean())
    if len(d) < 2:
        return Interval(diff, math.nan, math.nan, math.nan)
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    if se == 0.0:
        return Interval(diff, diff, diff, math.inf, 1.0 if diff == 0.0 else 0.0)
    df = len(d) - 1
    half = t_quantile(0.5 + level / 2.0, df) * se
    p = 2.0 * (1.0 - t_cdf(abs(diff) / se, df))
    return Interval(diff, diff - half, diff + half, df, min(1.0, max(0.0, p)))


def paired_contrast(weights, per_seed, level: float = CI_LEVEL) -> Contrast:
    """sum_k w_k mean_k where every configuration k ran the same seeds: per_seed is (configurations, seeds),
    column s the runs of seed s. The contrast is computed per seed and its t interval taken over the seeds
    (n - 1 degrees of freedom), so the correlation between configurations sharing a seed is accounted for."""
    w = np.asarray(weights, float)
    c = w @ np.asarray(per_seed, float)  # one value of the contrast per seed
    n, value = len(c), float(c.mean())
    se = float(c.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    if not se > 0.0:
        return Contrast(value, value, value, math.inf, 1.0 if value == 0.0 else 0.0)
    half = t_quantile(0.5 + level / 2.0, n - 1) * se
    p = 2.0 * (1.0 - t_cdf(abs(value) / se, n - 1))
    return Contrast(value, value - half, value + half, n - 1, min(1.0, max(0.0, p)))


def mean_correlation(per_seed) -> float:
    """The mean Pearson correlation over seeds between two configurations' values, over every pair of rows of
    per_seed (configurations, seeds): how much runs of one seed have in common across configurations."""
    m = np.asarray(per_seed, float)
    r = np.corrcoef(m)
    upper = r[np.triu_indices(len(m), k=1)]
    return float(np.nanmean(upper)) if len(upper) else math.nan
