"""What each change of the ladder buys, whatever the order: attribution from a factorial set of runs
(`repro ablate --mode factorial`, labels `f:<change>+<change>...`, see repro.jobs.ladder).

Inputs: the groups of one dataset whose labels are factorial, complete: all 2^n subsets of the n changes named
in their labels, each with at least one finished run; otherwise the dataset is not analysed and a note says
which configurations are missing.

Notation: E[S] is the mean final test error (%) over the finished runs of the configuration baseline + the
changes in S; N is the set of all n changes. Every effect is what *adding* a change does to the test error, in
percentage points (pp): negative = the change lowers the error.

- Shapley value of change i: its step averaged over all n! orders of adding the changes,
      phi_i = sum over S in N\\{i} of |S|! (n-|S|-1)! / n! * (E[S + {i}] - E[S]).
  The phi_i sum exactly to E[N] - E[{}] (full recipe minus baseline).
- added alone (what `--mode single` measures):       E[{i}] - E[{}]
- added last (what `--mode leave-one-out` measures): E[N] - E[N \\ {i}], i.e. minus its loss when left out
- ladder step (the cumulative ladder's order l_1..l_n): E[{l_1..l_k}] - E[{l_1..l_(k-1)}] for i = l_k;
  the steps also sum to E[N] - E[{}], but each is one order's answer.
- Pairwise interaction: the Shapley interaction index (Grabisch 1997),
      I(a, b) = sum over S in N\\{a,b} of |S|! (n-|S|-2)! / (n-1)! * D_ab(S),
      D_ab(S) = E[S + {a,b}] - E[S + {a}] - E[S + {b}] + E[S],
  the effect of adding both beyond the sum of adding each, averaged with the weights of random orders (the
  weights sum to 1). Negative: together they lower the error more than their separate effects add up to;
  positive: they overlap or clash. For E[S] = c [a in S][b in S] it is c (and phi_a = phi_b = c/2).

Three games are played on the same lattice, because a collapse (repro.net.collapse) is an outcome of its own:

- *collapse*: E[S] = the share of the configuration's runs that collapsed (%), over all 2^n configurations:
  how each change moves the odds of a collapse;
- *stable*: E[S] = the mean test error of the runs that did not collapse, on the sub-lattice where every
  configuration holds STABLE_FIXED (`adamw`) on: the game over the other n-1 changes. It is fixed in advance
  by where collapses come from (ReLU trained by SGD); the report counts any collapse found inside it;
- *mixture*: E[S] = the mean test error of all finished runs, collapsed ones included (the values earlier
  versions reported): mostly a measure of collapse odds times the collapsed runs' error.

Every quantity is a fixed linear combination sum_k w_k E[S_k] of configuration means (a row of a contrast
matrix). Intervals: 95% t intervals with Welch-Satterthwaite degrees of freedom, the variance being
sum_k w_k^2 s_k^2 / n_k (repro.report.stats.contrast), right at the seed count. For the collapse share, s_k^2 is
p(1-p) with p = k/n (k collapses of n runs): drawing factorials of 16 runs per configuration at the committed
study's collapse rates, these intervals hold the true Shapley values and interactions about 95% of the time,
where shrinking p towards 1/2 ((k+1)/(n+2)) held them every time at 4-6 times the width (tests/test_attribution.py).
A single difference of two configurations' shares (alone, last, ladder step) gets Newcombe's hybrid score
interval and Fisher's exact test instead (repro.report.stats.share_difference): a t interval there collapses
to the point where both shares are 0 or 1 (0 of 16 against 16 of 16 is not a certain difference of 100 points). The stable game pairs configurations by seed where every configuration of
its sub-lattice ran the same seeds (runs of one seed share their random stream, and their errors correlate: the
mean correlation is reported beside the game), and so does the mixture where every configuration ran the same
seeds; the collapse game treats configurations as independent samples. Bold / "significant": the two-sided t test
rejects 0 after Holm's correction over the family of all effects and interactions of that game and dataset, but
the ladder steps, which form their own family (one family per question: the ladder's tables ask it too).

Diverged runs (non-finite loss, `diverged_at_pass` set) are collapses; the mixture leaves them out of its
means and counts them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations, permutations
from typing import Callable

import numpy as np
import pandas as pd

from repro.report import fmt
from repro.report.records import Group
from repro.report.stats import (
    Contrast, contrast, holm, mean_correlation, paired_contrast, share_difference, summarize)
from repro.jobs.ladder import factorial_label

TOP_INTERACTIONS = 5  # pairs shown in the text; the CSV and the heat map have all of them
STABLE_FIXED = "adamw"  # the stable game's sub-lattice: configurations with this change on
# A change meets a net that can collapse (ReLU trained by SGD) in the orders that add it after `relu` and before
# `adamw`: the table's `sgd_relu_orders` is that share of all orders, the weight of such steps in its Shapley value.
COLLAPSE_PRONE_BETWEEN = ("relu", STABLE_FIXED)
INTERVAL_TEXT = ("95% t intervals (Welch-Satterthwaite degrees of freedom over the configurations' runs); bold: "
                 "the effect differs from 0 after Holm's correction over all effects and interactions of that "
                 "game on that dataset, except the ladder steps, which form their own family (the ladder's "
                 "question, as in the ladder's tables)")


# ----------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Factorial:
    """The runs of a complete factorial on one dataset. Configuration k holds the changes whose bit is set in k
    (bit i = changes[i])."""

    dataset: str
    changes: tuple[str, ...]  # in ladder order
    labels: tuple[str, ...]  # per configuration
    errors: tuple[np.ndarray, ...]  # per configuration: final test error (%) of each finished run
    diverged: tuple[int, ...]  # per configuration: runs left out as diverged
    # per configuration, the final test error (%) of each run that did not collapse; and how many collapsed
    # (diverged ones included). None: no run collapsed (stable = errors).
    stable: tuple[np.ndarray, ...] | None = None
    collapsed: tuple[int, ...] | None = None
    seeds: tuple[tuple[int, ...], ...] | None = None  # per configuration, the seeds of its stable runs, in order
    run_seeds: tuple[tuple[int, ...], ...] | None = None  # per configuration, the seeds of `errors`, in order

    @property
    def n(self) -> int:
        return len(self.changes)

    def means(self) -> np.ndarray:
        return np.array([e.mean() for e in self.errors])

    def stable_errors(self) -> tuple[np.ndarray, ...]:
        return self.errors if self.stable is None else self.stable

    def collapse_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(collapsed runs, all runs) per configuration."""
        runs = np.array([len(e) + d for e, d in zip(self.errors, self.diverged)], dtype=float)
        k = np.array(self.diverged if self.collapsed is None else self.collapsed, dtype=float)
        return k, runs


def find_factorial(groups: dict[tuple[str, str], Group], dataset: str, ladder: list[str]) -> tuple[Factorial | None, str | None]:
    """The factorial runs of `dataset` among `groups`: (Factorial, None); (None, why) when there are some but
    they cannot be analysed; (None, None) when there are none."""
    subsets: dict[frozenset, Group] = {}
    for (ds, label), g in sorted(groups.items()):
        if ds != dataset or g.mode != "factorial":
            continue
        names = g.changes
        if len(set(names)) != len(names) or frozenset(names) in subsets:
            return None, f"{dataset}: factorial label `{label}` names a subset twice; attribution skipped"
        subsets[frozenset(names)] = g
    if not subsets:
        return None, None
    rank = {name: i for i, name in enumerate(ladder)}
    changes = tuple(sorted(set().union(*subsets), key=lambda c: (rank.get(c, len(rank)), c)))
    configs = [frozenset(c for i, c in enumerate(changes) if k >> i & 1) for k in range(2 ** len(changes))]
    labels = tuple(factorial_label([c for c in changes if c in s]) for s in configs)
    missing = [lb for s, lb in zip(configs, labels) if s not in subsets]
    if missing:
        return None, (f"{dataset}: factorial incomplete, {len(subsets)} of {len(configs)} configurations of "
                      f"{', '.join(changes)} have runs (missing: {_listing(missing)}); attribution skipped")
    empty = [lb for s, lb in zip(configs, labels) if not subsets[s].ok]
    if empty:
        return None, (f"{dataset}: factorial configuration(s) with no finished run: {_listing(empty)}; "
                      "attribution skipped")
    return Factorial(dataset, changes, tuple(subsets[s].label for s in configs),
                     tuple(np.array(subsets[s].values("test_error", 100.0)) for s in configs),
                     tuple(subsets[s].n_diverged for s in configs),
                     tuple(np.array(subsets[s].stable_values("test_error", 100.0)) for s in configs),
                     tuple(subsets[s].n_collapsed for s in configs),
                     tuple(tuple(r["seed"] for r in subsets[s].stable) for s in configs),
                     tuple(tuple(r["seed"] for r in subsets[s].ok) for s in configs)), None


def _listing(labels: list[str], most: int = 8) -> str:
    shown = ", ".join(f"`{lb}`" for lb in labels[:most])
    return shown + (f" and {len(labels) - most} more" if len(labels) > most else "")


# ----------------------------------------------------------------------------------------- contrasts
def shapley_matrix(n: int) -> np.ndarray:
    """(n, 2^n): row i applied to the configuration means gives change i's Shapley value."""
    w = np.zeros((n, 2 ** n))
    for i in range(n):
        for k in range(2 ** n):
            if k >> i & 1:
                continue
            s = bin(k).count("1")
            weight = math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
            w[i, k | 1 << i] += weight
            w[i, k] -= weight
    return w


def interaction_matrix(n: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The pairs (i < j) and (pairs, 2^n): each row gives that pair's Shapley interaction index."""
    pairs = list(combinations(range(n), 2))
    w = np.zeros((len(pairs), 2 ** n))
    for row, (i, j) in enumerate(pairs):
        for k in range(2 ** n):
            if k >> i & 1 or k >> j & 1:
                continue
            s = bin(k).count("1")
            weight = math.factorial(s) * math.factorial(n - s - 2) / math.factorial(n - 1)
            w[row, k | 1 << i | 1 << j] += weight
            w[row, k | 1 << i] -= weight
            w[row, k | 1 << j] -= weight
            w[row, k] += weight
    return pairs, w


def _step(n: int, before: int, after: int) -> np.ndarray:
    row = np.zeros(2 ** n)
    row[after] += 1.0
    row[before] -= 1.0
    return row


# ----------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Estimate:
    value: float  # from the configuration means
    low: float  # t interval (module docstring)
    high: float
    p: float = math.nan  # two-sided t test of 0
    significant: bool = False  # rejected after Holm's correction over the game's family

    @property
    def excludes_zero(self) -> bool:
        return not self.low <= 0.0 <= self.high


@dataclass(frozen=True)
class ChangeEffect:
    change: str
    shapley: Estimate
    alone: Estimate | None = None
    last: Estimate | None = None
    ladder_step: Estimate | None = None


@dataclass(frozen=True)
class Interaction:
    a: str
    b: str
    index: Estimate


@dataclass(frozen=True)
class Game:
    """One game on (part of) the factorial's lattice: its players, what E[S] is, the effects and interactions."""

    name: str  # "mixture", "collapse" or "stable"
    players: tuple[str, ...]
    fixed: tuple[str, ...]  # changes on in every configuration of the game
    labels: tuple[str, ...]  # the game's configurations, bit i = players[i]
    base: float  # E[{}] and E[all players]
    full: float
    effects: tuple[ChangeEffect, ...]
    interactions: tuple[Interaction, ...]  # largest |index| first
    collapsed_inside: int = 0  # collapsed runs in the game's configurations (the stable game leaves them out)
    seed_corr: float = math.nan  # paired by seed: the mean correlation over seeds between configurations


def _game(name: str, players: tuple[str, ...], labels: tuple[str, ...], means: np.ndarray, variances: np.ndarray,
          counts: np.ndarray, fixed: tuple[str, ...] = (), steps: bool = True, collapsed_inside: int = 0,
          step: Callable[[int, int], Contrast] | None = None, per_seed: np.ndarray | None = None) -> Game:
    """Shapley values (and, with steps, alone / last / ladder step) and interactions of the game whose
    configuration means are `means` (bit i = players[i]), each with a t interval, Holm over the game's family
    (the ladder steps apart, in theirs).
    `step(before, after)`, where given, estimates a difference of two configurations (alone, last, ladder
    step) in place of the t interval. `per_seed` (configurations, seeds), where every configuration ran the same
    seeds: contrasts paired by seed (repro.report.stats.paired_contrast) instead of Welch's."""
    n, full = len(players), 2 ** len(players) - 1
    pairs, inter = interaction_matrix(n)
    def estimate(row: np.ndarray) -> Contrast:
        return paired_contrast(row, per_seed) if per_seed is not None else contrast(row, means, variances, counts)

    cs = [estimate(row) for row in shapley_matrix(n)]
    if steps:
        for before, after in ([(0, 1 << i) for i in range(n)] + [(full & ~(1 << i), full) for i in range(n)]
                              + [((1 << i) - 1, (1 << (i + 1)) - 1) for i in range(n)]):
            cs.append(step(before, after) if step else estimate(_step(n, before, after)))
    at = len(cs)  # where the interactions start
    cs += [estimate(row) for row in (inter if pairs else [])]
    # One family per question: the ladder's steps are judged among themselves (the question of the ladder
    # table), everything else (Shapley values, alone, last, interactions) in the game's family.
    ladder = set(range(3 * n, 4 * n)) if steps else set()
    rest = [i for i in range(len(cs)) if i not in ladder]
    flags = dict(zip(rest, holm([cs[i].p for i in rest])))
    flags.update(zip(sorted(ladder), holm([cs[i].p for i in sorted(ladder)])))
    sig = [flags[i] for i in range(len(cs))]
    est = [Estimate(c.value, c.low, c.high, c.p, bool(g)) for c, g in zip(cs, sig)]
    effects = tuple(ChangeEffect(c, est[i], *((est[n + i], est[2 * n + i], est[3 * n + i]) if steps else ()))
                    for i, c in enumerate(players))
    # largest |index| first; equal ones (to 1e-9: equal up to rounding) in the players' order, not rounding's
    inters = sorted((Interaction(players[i], players[j], est[at + r]) for r, (i, j) in enumerate(pairs)),
                    key=lambda it: (-round(abs(it.index.value), 9), players.index(it.a), players.index(it.b)))
    return Game(name, players, fixed, labels, float(means[0]), float(means[-1]), effects, tuple(inters),
                collapsed_inside, mean_correlation(per_seed) if per_seed is not None else math.nan)


def _sample_variances(groups: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.array([e.var(ddof=1) if len(e) > 1 else math.nan for e in groups])


def _by_seed(errors: tuple[np.ndarray, ...], seeds) -> np.ndarray | None:
    """(configurations, seeds) of `errors` where every configuration ran the same seeds (more than 2): runs of
    one seed share their random stream, so contrasts are paired by seed; else None (Welch's)."""
    if seeds is None or len(set(seeds)) != 1 or len(seeds[0]) <= 2:
        return None
    return np.array(errors)


def mixture_game(fac: Factorial) -> Game:
    """E[S]: mean test error (%) of all finished runs, collapsed ones included."""
    counts = np.array([len(e) for e in fac.errors], dtype=float)
    return _game("mixture", fac.changes, fac.labels, fac.means(), _sample_variances(fac.errors), counts,
                 per_seed=_by_seed(fac.errors, fac.run_seeds))


def collapse_game(fac: Factorial) -> Game:
    """E[S]: share of runs that collapsed (%), over the whole lattice."""
    k, runs = fac.collapse_counts()
    share = k / runs

    def two_shares(before: int, after: int) -> Contrast:  # one difference: Newcombe's interval, Fisher's test
        c = share_difference(int(k[before]), int(runs[before]), int(k[after]), int(runs[after]))
        return Contrast(100.0 * c.value, 100.0 * c.low, 100.0 * c.high, c.df, c.p)

    return _game("collapse", fac.changes, fac.labels, 100.0 * share, 1e4 * share * (1.0 - share), runs,
                 collapsed_inside=int(k.sum()), step=two_shares)


def stable_game(fac: Factorial, fixed: str = STABLE_FIXED) -> tuple[Game | None, str | None]:
    """E[S]: mean test error (%) of the runs that did not collapse, on the sub-lattice with `fixed` on (the game
    over the other changes); (None, why) when `fixed` is not a change of the factorial or a configuration there
    has fewer than 2 such runs."""
    if fixed not in fac.changes or fac.n < 2:
        return None, f"{fac.dataset}: no `{fixed}` among the factorial's changes; the stable game is not played"
    f = fac.changes.index(fixed)
    players = tuple(c for c in fac.changes if c != fixed)
    index = []  # sub-configuration j (bits over players) -> full configuration
    for j in range(2 ** len(players)):
        k = 1 << f
        for i, c in enumerate(players):
            if j >> i & 1:
                k |= 1 << fac.changes.index(c)
        index.append(k)
    errors = tuple(fac.stable_errors()[k] for k in index)
    short = [fac.labels[k] for k, e in zip(index, errors) if len(e) < 2]
    if short:
        return None, (f"{fac.dataset}: configuration(s) with `{fixed}` with fewer than 2 runs that did not "
                      f"collapse: {_listing(short)}; the stable game is not played")
    k_collapsed, _ = fac.collapse_counts()
    per_seed = _by_seed(errors, None if fac.seeds is None else [fac.seeds[k] for k in index])
    return _game("stable", players, tuple(fac.labels[k] for k in index), np.array([e.mean() for e in errors]),
                 _sample_variances(errors), np.array([len(e) for e in errors], dtype=float), fixed=(fixed,),
                 steps=False, collapsed_inside=int(sum(k_collapsed[k] for k in index)), per_seed=per_seed), None


@dataclass(frozen=True)
class Attribution:
    factorial: Factorial
    effects: tuple[ChangeEffect, ...]  # the mixture game's, in ladder order
    interactions: tuple[Interaction, ...]  # the mixture game's, largest |index| first
    conflicts: tuple[str, ...]  # where the ladder's order changes a conclusion, one sentence each
    collapse: Game | None = None
    stable: Game | None = None
    notes: tuple[str, ...] = ()  # games that could not be played, and why
    mixture_corr: float = math.nan  # the mixture game's mean correlation over seeds, where it is paired

    @property
    def dataset(self) -> str:
        return self.factorial.dataset

    @property
    def baseline(self) -> float:
        return float(self.factorial.errors[0].mean())

    @property
    def full(self) -> float:
        return float(self.factorial.errors[-1].mean())

    def table(self) -> pd.DataFrame:
        """One row per change: each mixture effect with its interval, pp; then the collapse game's Shapley value
        (pp of collapse share) and the stable game's (pp of test error; empty for the change held on)."""
        rows = []
        games = [(g.name, {e.change: e.shapley for e in g.effects}) for g in (self.collapse, self.stable) if g]
        for e in self.effects:
            row = {"change": e.change}
            for key in ("shapley", "alone", "last", "ladder_step"):
                est = getattr(e, key)
                row.update({key: est.value, f"{key}_low": est.low, f"{key}_high": est.high,
                            f"{key}_holm": int(est.significant)})
            for name, by_change in games:
                est = by_change.get(e.change)
                row.update({f"{name}_shapley": est.value if est else math.nan,
                            f"{name}_shapley_low": est.low if est else math.nan,
                            f"{name}_shapley_high": est.high if est else math.nan,
                            f"{name}_shapley_holm": int(est.significant) if est else None})
            row["sgd_relu_orders"] = self.orders_between(e.change)
            rows.append(row)
        return pd.DataFrame(rows)

    def orders_between(self, change: str, first: str = COLLAPSE_PRONE_BETWEEN[0],
                       last: str = COLLAPSE_PRONE_BETWEEN[1]) -> float:
        """The share of all orders of adding the changes that add `change` after `first` and before `last` (NaN
        for `first` and `last` themselves, or when either is not a change of the factorial)."""
        changes = self.factorial.changes
        if change in (first, last) or first not in changes or last not in changes:
            return math.nan
        orders = list(permutations(changes))
        return sum(o.index(first) < o.index(change) < o.index(last) for o in orders) / len(orders)

    def interaction_table(self) -> pd.DataFrame:
        """One row per pair and game."""
        rows = []
        for g in (self.mixture_game, self.collapse, self.stable):
            if g:
                rows += [{"game": g.name, "a": it.a, "b": it.b, "interaction": it.index.value, "low": it.index.low,
                          "high": it.index.high, "holm": int(it.index.significant)} for it in g.interactions]
        return pd.DataFrame(rows, columns=["game", "a", "b", "interaction", "low", "high", "holm"])

    @property
    def mixture_game(self) -> Game:
        fac = self.factorial
        return Game("mixture", fac.changes, (), fac.labels, self.baseline, self.full, self.effects, self.interactions,
                    seed_corr=self.mixture_corr)

    def configuration_table(self) -> pd.DataFrame:
        """One row per configuration: its changes, its collapses, and the summary of its finished runs and of
        those that did not collapse (errors in %)."""
        fac = self.factorial
        k_collapsed, runs = fac.collapse_counts()
        rows = []
        for k, (label, e, st, div) in enumerate(zip(fac.labels, fac.errors, fac.stable_errors(), fac.diverged)):
            s, t = summarize(e), summarize(st)
            rows.append({"label": label, **{c: int(k >> i & 1) for i, c in enumerate(fac.changes)},
                         "runs": s.n, "diverged": div, "collapsed": int(k_collapsed[k]),
                         "test_error_mean": s.mean, "test_error_std": s.std,
                         "test_error_min": s.min, "test_error_max": s.max,
                         "stable_test_error_mean": t.mean, "stable_test_error_std": t.std,
                         "stable_test_error_median": t.median})
        return pd.DataFrame(rows)


def attribute(fac: Factorial) -> Attribution:
    """The three games (module docstring): the mixture's effects and interactions as before, the collapse game
    over the whole lattice, and the stable game on the sub-lattice with STABLE_FIXED on."""
    mix = mixture_game(fac)
    stable, why = stable_game(fac)
    return Attribution(fac, mix.effects, mix.interactions, tuple(_conflicts(mix.effects)), collapse_game(fac),
                       stable, (why,) if why else (), mix.seed_corr)


def estimate_text(e: Estimate) -> str:
    """`value [low, high]`, signed, in the unit of the game."""
    return f"{fmt.num(e.value, sign=True)} {fmt.interval(e.low, e.high)}"


def _verdict(e: Estimate) -> str:
    if not e.significant:
        return "not significant after Holm"
    return "lowers the error" if e.value < 0 else "raises the error"


def _settled(value: float) -> float:
    """`value` without floating-point noise (sums of weighted means that are 0 in exact arithmetic give ~1e-17),
    so that signs and rankings compare what the means say; ties then keep the ladder's order."""
    return round(value, 9) + 0.0


def _conflicts(effects: tuple[ChangeEffect, ...]) -> list[str]:
    """Changes whose ladder step and Shapley value differ in sign or in significance, then the ranking of gains
    when the two orders rank them differently."""
    out = []
    for e in effects:
        lad, sh = e.ladder_step, e.shapley
        sign = np.sign(_settled(lad.value)) != np.sign(_settled(sh.value))
        if sign or lad.significant != sh.significant:
            why = "sign" + (" and significance" if lad.significant != sh.significant else "") if sign else "significance"
            out.append(f"`{e.change}` ({why} differ): its ladder step is {estimate_text(lad)} pp ({_verdict(lad)}), its "
                       f"Shapley value {estimate_text(sh)} pp ({_verdict(sh)}).")
    by_ladder = [e.change for e in sorted(effects, key=lambda e: _settled(e.ladder_step.value))]
    by_shapley = [e.change for e in sorted(effects, key=lambda e: _settled(e.shapley.value))]
    if by_ladder != by_shapley:
        out.append("Ranked by gain (largest drop in error first), the ladder's steps give "
                   f"{' > '.join(f'`{c}`' for c in by_ladder)}; the Shapley values give "
                   f"{' > '.join(f'`{c}`' for c in by_shapley)}.")
    return out
