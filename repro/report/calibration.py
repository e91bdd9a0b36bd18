"""How often `repro report --check` flags an honest reproduction, and what it detects, from the records.

An honest reproduction is another `seeds` runs of every configuration drawn from the same distribution of
outcomes as the committed runs. Its model here: for each configuration, both sides of a check (the
reproduction and the reference it is checked against) are `seeds` runs drawn with replacement from that
configuration's committed runs (collapsed ones included), independently. Each draw is judged by the rule of
repro.report.compare (the collapse tests by Tarone's level over the configurations that can attain it, the error
tests at Holm's first threshold ERROR_ALPHA / m, where any false flag of a draw starts: under the null the family
is flagged exactly when its smallest p-value passes that threshold).

- `false_flag_rate`: the share of draws in which any configuration is flagged (the family-wise false-flag
  rate), with a 95% Clopper–Pearson interval.
- `detectable_shifts`: per configuration, the smallest shift of the reproduction's mean test error (points,
  added to its runs that did not collapse) and the smallest factor on its train error that the check flags in
  80% of draws, every other configuration compared as well (the threshold ERROR_ALPHA / m, where Holm can only
  be more lenient: the figures are upper bounds).

Draws with replacement make ties between runs, and 16 committed runs stand for a whole distribution: the
figures describe this study's distribution of outcomes, not a guarantee for others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from repro.report.compare import (
    COLLAPSE_ALPHA, ERROR_ALPHA, fisher_exact, fisher_min_p, log_train, tarone_level)
from repro.report.records import Group
from repro.report.stats import clopper_pearson, t_quantile

RESAMPLES = 10_000
POWER_RESAMPLES = 1000
POWER = 0.8
RNG_SEED = 1989
SHIFT_GRID_PP = np.round(np.arange(0.05, 5.0001, 0.05), 2)
RATIO_GRID = np.round(np.arange(1.05, 5.0001, 0.05), 2)


@dataclass(frozen=True)
class Outcomes:
    """One configuration's committed runs: test error (%), log train error (compare.log_train), collapsed (the
    records' field; a collapsed run's errors are never read)."""

    key: tuple[str, str]
    test: np.ndarray
    log_train: np.ndarray
    collapsed: np.ndarray

    @classmethod
    def of(cls, key: tuple[str, str], g: Group) -> Outcomes:
        collapsed = np.array([bool(r["collapsed"]) for r in g.records])
        final = [r["final"] if not c else {} for r, c in zip(g.records, collapsed)]
        test = np.array([100.0 * f.get("test_error", 0.0) for f in final])
        train = np.array(log_train([100.0 * f.get("train_error", 1.0) for f in final]))
        return cls(key, test, train, collapsed)


@dataclass(frozen=True)
class Rate:
    flagged: int
    draws: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.flagged / self.draws


class _Critical:
    """|t| at or above which Welch's two-sided test rejects at level `alpha`, for arrays of degrees of freedom
    (interpolated in 1/df between exact quantiles)."""

    def __init__(self, alpha: float):
        self.inv_df = np.linspace(0.0, 1.0, 401)  # df from 1 to infinity
        self.t = np.array([t_quantile(1.0 - alpha / 2.0, 1.0 / x if x > 0 else math.inf) for x in self.inv_df])

    def __call__(self, df: np.ndarray) -> np.ndarray:
        return np.interp(1.0 / np.maximum(df, 1.0), self.inv_df, self.t)


def _welch_rejects(u: np.ndarray, r: np.ndarray, su: np.ndarray, sr: np.ndarray, critical: _Critical) -> tuple:
    """(testable, rejected) per draw: Welch's test of the values `u` against `r` (draws x runs) over the runs
    marked stable (su, sr)."""
    nu, nr = su.sum(1), sr.sum(1)
    testable = (nu >= 2) & (nr >= 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu, mr = (u * su).sum(1) / nu, (r * sr).sum(1) / nr
        vu = (((u - mu[:, None]) ** 2) * su).sum(1) / (nu - 1) / nu
        vr = (((r - mr[:, None]) ** 2) * sr).sum(1) / (nr - 1) / nr
        se2 = vu + vr
        df = se2 ** 2 / (vu ** 2 / (nu - 1) + vr ** 2 / (nr - 1))
        t = np.abs(mu - mr) / np.sqrt(se2)
        flat = se2 <= 0.0
        rejected = np.where(flat, np.abs(mu - mr) > 0.0, t >= critical(np.where(flat, 1.0, df)))
    return testable, testable & rejected


def _draws(rng: np.random.Generator, o: Outcomes, seeds: int, resamples: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(o.test)
    return rng.integers(0, n, (resamples, seeds)), rng.integers(0, n, (resamples, seeds))


def false_flag_rate(groups: dict[tuple[str, str], Group], seeds: int = 16, resamples: int = RESAMPLES,
                    rng_seed: int = RNG_SEED) -> Rate:
    """The share of resampled honest reproductions of `groups` that the check flags anywhere (module doc)."""
    outcomes = [Outcomes.of(k, g) for k, g in sorted(groups.items())]
    rng = np.random.default_rng(rng_seed)
    draws = [_draws(rng, o, seeds, resamples) for o in outcomes]
    # The family sizes of each draw: error tests testable, collapse tests able to attain Tarone's level.
    tests, min_ps, collapse_ps = [], [], []
    for o, (iu, ir) in zip(outcomes, draws):
        su, sr = ~o.collapsed[iu], ~o.collapsed[ir]
        tests.append((o, iu, ir, su, sr))
        ku, kr = (~su).sum(1), (~sr).sum(1)
        min_ps.append(np.array([fisher_min_p(int(a + b), seeds, seeds) for a, b in zip(ku, kr)]))
        collapse_ps.append(np.array([fisher_exact(int(a), seeds, int(b), seeds) for a, b in zip(ku, kr)]))
    testable = [np.minimum(su.sum(1), sr.sum(1)) >= 2 for _, _, _, su, sr in tests]
    m = 2 * np.sum(testable, axis=0)
    flagged = np.zeros(resamples, dtype=bool)
    for size in np.unique(m):
        rows = m == size
        critical = _Critical(ERROR_ALPHA / max(int(size), 1))
        for o, iu, ir, su, sr in tests:
            for values in (o.test, o.log_train):
                _, rej = _welch_rejects(values[iu][rows], values[ir][rows], su[rows], sr[rows], critical)
                flagged[rows] |= rej
    min_ps, collapse_ps = np.array(min_ps), np.array(collapse_ps)
    for d in range(resamples):
        level = tarone_level(list(min_ps[:, d]), COLLAPSE_ALPHA)
        flagged[d] |= bool((collapse_ps[:, d] <= level).any())
    k = int(flagged.sum())
    return Rate(k, resamples, *clopper_pearson(k, resamples))


@dataclass(frozen=True)
class Detectable:
    key: tuple[str, str]
    test_shift_pp: float  # nan: not reached on the grid
    train_ratio: float


def detectable_shifts(groups: dict[tuple[str, str], Group], seeds: int = 16, resamples: int = POWER_RESAMPLES,
                      power: float = POWER, rng_seed: int = RNG_SEED) -> list[Detectable]:
    """Per configuration of `groups`: the smallest test-error shift (pp) and train-error factor flagged in a
    share `power` of resampled reproductions (module doc); the family is every configuration of `groups`."""
    critical = _Critical(ERROR_ALPHA / (2 * len(groups)))
    rng = np.random.default_rng(rng_seed)
    out = []
    for key, g in sorted(groups.items()):
        o = Outcomes.of(key, g)
        iu, ir = _draws(rng, o, seeds, resamples)
        su, sr = ~o.collapsed[iu], ~o.collapsed[ir]

        def smallest(values: np.ndarray, grid: np.ndarray, shift) -> float:
            for step in grid:
                _, rej = _welch_rejects(shift(values[iu], step), values[ir], su, sr, critical)
                if rej.mean() >= power:
                    return float(step)
            return math.nan

        out.append(Detectable(key, smallest(o.test, SHIFT_GRID_PP, lambda v, s: v + s),
                              smallest(o.log_train, RATIO_GRID, lambda v, s: v + math.log(s))))
    return out


def smallest_flagged_collapses(reference_collapsed: int, seeds: int = 16) -> int | None:
    """The fewest collapses among `seeds` runs flagged against `reference_collapsed` of `seeds` when it is the only
    configuration with collapses (Tarone's level is then COLLAPSE_ALPHA itself); None: none is."""
    for k in range(reference_collapsed + 1, seeds + 1):
        if fisher_exact(k, seeds, reference_collapsed, seeds) <= COLLAPSE_ALPHA:
            return k
    return None


def readme_block(groups: dict[tuple[str, str], Group], seeds: int = 16,
                 uncovered: dict[str, int] | None = None) -> str:
    """The README's statement of the check's false-flag rate and power on `groups` (the committed study's ladder,
    faithfulness and extra configurations), of the configurations `--check` also compares that the calibration
    leaves out (`uncovered`: what they are -> how many), and of what it cannot see."""
    rate = false_flag_rate(groups, seeds)
    shifts = detectable_shifts(groups, seeds)
    ok = [d for d in shifts if not math.isnan(d.test_shift_pp)]
    typical = float(np.median([d.test_shift_pp for d in ok])) if ok else math.nan
    ratios = [d.train_ratio for d in shifts if not math.isnan(d.train_ratio)]
    worst = max(ok, key=lambda d: d.test_shift_pp) if ok else None
    unreached = [d.key for d in shifts if math.isnan(d.test_shift_pp)]
    datasets = sorted({k[0] for k in groups})
    c0, c1 = smallest_flagged_collapses(0, seeds), smallest_flagged_collapses(1, seeds)
    lines = [
        f"How good the check is, measured by resampling the committed records (`repro.report.calibration`; "
        f"{len(groups)} configurations: the ladder, the faithfulness study and the extra rungs, {', '.join(datasets)}; an honest "
        f"reproduction is {seeds} new seeds per configuration drawn from the committed runs):",
        "",
        f"- **False flags.** An honest {seeds}-seed reproduction of all {len(groups)} is flagged somewhere in "
        f"{100 * rate.value:.2f}% of {rate.draws:,} resampled reproductions (95% Clopper–Pearson interval "
        f"{100 * rate.low:.2f}–{100 * rate.high:.2f}%).",
        f"- **Power at {seeds} seeds** (flagged in {POWER:.0%} of resampled reproductions): a shift of the mean test "
        f"error by {typical:.2f} points for a typical configuration (median over the {len(ok)} configurations; "
        + (f"{min(d.test_shift_pp for d in ok):.2f}–{worst.test_shift_pp:.2f} across them, the largest for "
           f"{worst.key[0]} `{worst.key[1]}`" if worst else "") + "); train error multiplied by a factor of "
        + (f"{float(np.median(ratios)):.2f} (median; {min(ratios):.2f}–{max(ratios):.2f})" if ratios else "n/a")
        + (f"; no shift up to {SHIFT_GRID_PP[-1]:g} points for " + ", ".join(f"{k[0]} `{k[1]}`" for k in unreached)
           + " (its spread between seeds)" if unreached else "")
        + "; collapses, in a configuration that is the only one with any: "
        + (f"{c0} of {seeds} against none" if c0 else "never against none")
        + (f", {c1} of {seeds} against 1 of {seeds}" if c1 else "") + ".",
        "- **What it cannot see**: smaller shifts than these; a change of the spread between seeds that leaves "
        "the mean where it was; anything but the final test and train error and the collapse count (learning "
        "curves, losses, rejection and the 10,000-digit MNIST score are shown, not tested); a rare collapse that "
        "becomes a little more or less rare; configurations absent from the committed study; and comparisons "
        "with a single run on a side, which are judged by a range rule outside the family-wise control.",
    ]
    if uncovered:
        parts = [f"{n:,} {what}" for what, n in uncovered.items()]
        listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
        lines.append(f"- **Not calibrated**: `--check` also compares {listed} when a workspace holds them; the "
                     "false-flag rate above does not cover them, and with them in the family it is not measured.")
    return "\n".join(lines)
