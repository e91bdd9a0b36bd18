"""How often `repro report --check` flags an honest reproduction, and what it detects, from the records.

An honest reproduction is another `seeds` runs of every configuration drawn from the same distribution of
outcomes as the committed runs. Its model here: for each configuration, both sides of a check (the
reproduction and the reference it is checked against) are `seeds` runs drawn with replacement from that
configuration's committed runs (collapsed ones included), independently. Each draw is judged by the rule of
repro.report.compare (the collapse tests by Tarone's level over the configurations that can attain it, the error
tests at Holm's first threshold ERROR_ALPHA / m, where any false flag of a draw starts: under the null the family
is flagged exactly when its smallest p-value passes that threshold).

- `false_flag_rate`: the share of draws in which any configuration is flagged (the family-wise false-flag
  rate), with a 95% Clopper–Pearson interval (the Monte-Carlo error of the resampling), and how many draws a
  collapse test and an error test flag. Both sides are drawn from the same runs, so the interval holds the
  Monte-Carlo error only. With `halves=True` no run is on both sides: each draw splits every configuration's
  runs at random into two halves, the reproduction and the reference (half as many seeds a side, drawn without
  replacement): the check at that size on runs that are truly apart, with none of the ties that drawing with
  replacement makes.
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
    by_collapse: int = 0  # draws a collapse test flags
    by_error: int = 0  # draws an error test (test or train error) flags

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


def _draws(rng: np.random.Generator, o: Outcomes, seeds: int, resamples: int,
           halves: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Run indices (resamples x seeds) of the reproduction and of the reference: both drawn with replacement from
    all of the configuration's runs, or (halves) the two halves of a random order of them, `seeds` runs each."""
    n = len(o.test)
    if not halves:
        return rng.integers(0, n, (resamples, seeds)), rng.integers(0, n, (resamples, seeds))
    order = rng.permuted(np.tile(np.arange(n), (resamples, 1)), axis=1)
    return order[:, :seeds], order[:, seeds: 2 * seeds]


def _collapse_flags(collapsed: list[tuple[np.ndarray, np.ndarray]], seeds: int) -> np.ndarray:
    """Per draw: whether a collapse test flags it (Fisher's exact test of each configuration's collapse counts at
    Tarone's level over the configurations that can attain it, as repro.report.compare judges them)."""
    exact = np.array([[fisher_exact(a, seeds, b, seeds) for b in range(seeds + 1)] for a in range(seeds + 1)])
    attainable = np.array([fisher_min_p(k, seeds, seeds) for k in range(2 * seeds + 1)])
    ku = np.array([c for c, _ in collapsed])  # configurations x draws
    kr = np.array([c for _, c in collapsed])
    min_ps, ps = attainable[ku + kr], exact[ku, kr]
    level = np.full(ku.shape[1], COLLAPSE_ALPHA / max(1, len(ku)))  # tarone_level, for every draw at once
    settled = np.zeros(ku.shape[1], dtype=bool)
    for count in range(1, len(ku) + 1):
        fits = ~settled & ((min_ps <= COLLAPSE_ALPHA / count).sum(0) <= count)
        level[fits], settled = COLLAPSE_ALPHA / count, settled | fits
        if settled.all():
            break
    return (ps <= level).any(0)


def false_flag_rate(groups: dict[tuple[str, str], Group], seeds: int = 16, resamples: int = RESAMPLES,
                    rng_seed: int = RNG_SEED, halves: bool = False) -> Rate:
    """The share of resampled honest reproductions of `groups` that the check flags anywhere (module doc)."""
    outcomes = [Outcomes.of(k, g) for k, g in sorted(groups.items())]
    if halves:
        seeds = min(len(o.test) for o in outcomes) // 2
    rng = np.random.default_rng(rng_seed)
    tests = []
    for o in outcomes:
        iu, ir = _draws(rng, o, seeds, resamples, halves)
        tests.append((o, iu, ir, ~o.collapsed[iu], ~o.collapsed[ir]))
    # The family size of each draw: error tests testable (two per configuration with 2 stable runs a side).
    m = 2 * np.sum([np.minimum(su.sum(1), sr.sum(1)) >= 2 for _, _, _, su, sr in tests], axis=0)
    by_error = np.zeros(resamples, dtype=bool)
    for size in np.unique(m):
        rows = m == size
        critical = _Critical(ERROR_ALPHA / max(int(size), 1))
        for o, iu, ir, su, sr in tests:
            for values in (o.test, o.log_train):
                _, rej = _welch_rejects(values[iu][rows], values[ir][rows], su[rows], sr[rows], critical)
                by_error[rows] |= rej
    by_collapse = _collapse_flags([((~su).sum(1), (~sr).sum(1)) for _, _, _, su, sr in tests], seeds)
    k = int((by_error | by_collapse).sum())
    return Rate(k, resamples, *clopper_pearson(k, resamples), int(by_collapse.sum()), int(by_error.sum()))


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


def compared(groups: dict[tuple[str, str], Group]) -> dict[tuple[str, str], Group]:
    """The configurations whose runs `--check` tests in its families: those with 2 runs or more (a single run on a
    side is judged by a range rule outside them)."""
    return {k: g for k, g in groups.items() if len(g.records) >= 2}


def _share(k: int, rate: Rate) -> str:
    return f"{100 * k / rate.draws:.2f}%"


def _false_flag_lines(groups: dict[tuple[str, str], Group], core: dict[tuple[str, str], Group], seeds: int) -> list:
    """The README's statements of the false-flag rate: on every configuration compared, on the `core` ones, and
    with no run on both sides (halves)."""
    rate, core_rate = false_flag_rate(groups, seeds), false_flag_rate(core, seeds)
    halves = false_flag_rate(groups, seeds, halves=True)
    with_collapses = sum(g.n_collapsed > 0 for g in groups.values())

    def interval(r: Rate) -> str:
        return f"95% Clopper–Pearson interval {100 * r.low:.2f}–{100 * r.high:.2f}%, the Monte-Carlo error"

    def split(r: Rate) -> str:
        return (f"by a collapse test in {_share(r.by_collapse, r)} (that family's level: {COLLAPSE_ALPHA:.0%}), by an "
                f"error test in {_share(r.by_error, r)} (that family's level: {100 * ERROR_ALPHA:.1f}%)")

    return [
        f"- **False flags.** An honest {seeds}-seed reproduction of all {len(groups)} configurations `--check` "
        f"compares ({with_collapses} of them with collapsed runs) is flagged somewhere in {100 * rate.value:.2f}% "
        f"of {rate.draws:,} resampled reproductions ({interval(rate)}): {split(rate)}. Of the "
        f"{len(core)} configurations of the ladder, the faithfulness study and the extra rungs alone: "
        f"{100 * core_rate.value:.2f}% ({interval(core_rate)}).",
        f"- **The calibration's own uncertainty.** Both sides above are drawn with replacement from the same "
        f"{seeds} runs, which makes ties and lets one set of runs stand for the truth and the reference at once. "
        f"With no run on both sides (each configuration's runs split at random into two halves, the reproduction "
        f"and the reference, {min(len(g.records) for g in groups.values()) // 2} seeds a side), the check flags "
        f"{100 * halves.value:.2f}% of {halves.draws:,} splits ({interval(halves)}): {split(halves)}. Without the "
        f"ties that drawing with replacement makes, the error tests "
        + ("keep their level." if halves.by_error <= ERROR_ALPHA * halves.draws else "still exceed their level."),
    ]


def readme_block(groups: dict[tuple[str, str], Group], power_groups: dict[tuple[str, str], Group],
                 seeds: int = 16) -> str:
    """The README's statement of the check's false-flag rate on every configuration of `groups` it compares
    (and on `power_groups`: the ladder, faithfulness and extra configurations), of its power on `power_groups`,
    and of what it cannot see."""
    groups = compared(groups)
    shifts = detectable_shifts(power_groups, seeds)
    ok = [d for d in shifts if not math.isnan(d.test_shift_pp)]
    typical = float(np.median([d.test_shift_pp for d in ok])) if ok else math.nan
    ratios = [d.train_ratio for d in shifts if not math.isnan(d.train_ratio)]
    worst = max(ok, key=lambda d: d.test_shift_pp) if ok else None
    unreached = [d.key for d in shifts if math.isnan(d.test_shift_pp)]
    datasets = sorted({k[0] for k in groups})
    c0, c1 = smallest_flagged_collapses(0, seeds), smallest_flagged_collapses(1, seeds)
    lines = [
        f"How good the check is, measured by resampling the committed records (`repro.report.calibration`; "
        f"{len(groups)} configurations with 2 runs or more, {', '.join(datasets)}: the ladder, the faithfulness "
        f"study, the extra rungs, the factorial, the rungs with their own code and the guesses; an honest "
        f"reproduction is {seeds} new seeds per configuration drawn from the committed runs):",
        "",
        *_false_flag_lines(groups, compared(power_groups), seeds),
        f"- **Power at {seeds} seeds** (flagged in {POWER:.0%} of resampled reproductions, with the "
        f"{len(power_groups)} configurations of the ladder, the faithfulness study and the extra rungs compared): "
        f"a shift of the mean test "
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
    return "\n".join(lines)
