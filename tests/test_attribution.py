"""The factorial mode and the attribution analysis: plans, Shapley values, interactions, bootstrap intervals and
the report's attribution files, on synthetic records (no training)."""

from __future__ import annotations

import json
import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repro.config import Config, ConfigError
from repro.report import attribution, attribution_text
from repro.report.attribution import Factorial, attribute, find_factorial, shapley_matrix
from repro.report.build import write_report
from repro.report.records import group_records, load_records
from repro.jobs.ladder import factorial_label, load_rungs, plan, read_rung

from .test_report import is_png, make_record, write

CHANGES = ("relu", "adamw", "dropout")
PATCHES = {"relu": {"hidden_activation": "relu"}, "adamw": {"optimizer": "adamw", "lr": 3e-4}, "dropout": {"dropout": 0.25}}


# ----------------------------------------------------------------------------------------- plan
def test_factorial_plan_of_the_default_ladder():
    rungs = load_rungs()
    planned = plan(rungs, "factorial")
    assert len(planned) == 64
    assert len({p.config for p in planned}) == 64 and len({p.config.digest() for p in planned}) == 64
    assert len({p.label for p in planned}) == 64
    by_label = {p.label: p.config for p in planned}
    assert by_label["f:baseline"] == Config() == plan(rungs)[0].config
    full = "f:relu+adamw+lr-decay+dropout+shift+long"
    assert by_label[full] == {p.label: p.config for p in plan(rungs)}["long"]
    for p in planned:
        names = p.changes
        assert p.mode == "factorial" and factorial_label(names) == p.label and p.rung.name == p.label
        assert p.config.passes == (80 if "long" in names else 23)
        assert (p.config.optimizer, p.config.lr) == (("adamw", 3e-4) if "adamw" in names else ("sgd", 0.03))
        assert p.config.lr_schedule == ("linear" if "lr-decay" in names else "constant")
        assert p.config.hidden_activation == ("relu" if "relu" in names else "tanh")
        assert p.config.dropout == (0.25 if "dropout" in names else 0.0)
        assert p.config.shift == (1 if "shift" in names else 0)
    # single and leave-one-out are members of the factorial: same configurations, same digests
    digests = {p.config.digest() for p in planned}
    assert {p.config.digest() for p in plan(rungs, "single") + plan(rungs, "leave-one-out")} <= digests


def test_factorial_plan_over_named_changes_and_its_rules(tmp_path):
    rungs = load_rungs()
    planned = plan(rungs, "factorial", only=["long", "relu"])
    assert [p.label for p in planned] == ["f:baseline", "f:relu", "f:long", "f:relu+long"]
    assert [p.changes for p in planned] == [(), ("relu",), ("long",), ("relu", "long")]
    (tmp_path / "x.toml").write_text('name = "lr-up"\ntitle = "t"\nrationale = "r"\nsource = "s"\n[patch]\nlr = 0.1\n')
    clash = read_rung(tmp_path / "x.toml", 9)
    with pytest.raises(ConfigError, match="both set 'lr'"):
        plan(rungs, "factorial", only=["adamw", "lr-up"], extras=[clash])
    with pytest.raises(ConfigError, match="at least one change"):
        plan(rungs, "factorial", only=["baseline"])


# ----------------------------------------------------------------------------------------- analysis
def synthetic(mean_of, changes=CHANGES, seeds: int = 8, noise: float = 0.0, seed: int = 0) -> Factorial:
    """A factorial whose configuration S has runs mean_of(S) + the same noise vector in every configuration
    (so configuration means are exactly mean_of(S) + a constant)."""
    shared = np.random.default_rng(seed).normal(0.0, noise, seeds)
    shared -= shared.mean()
    subsets = [frozenset(c for i, c in enumerate(changes) if k >> i & 1) for k in range(2 ** len(changes))]
    return Factorial("usps", tuple(changes), tuple(factorial_label([c for c in changes if c in s]) for s in subsets),
                     tuple(mean_of(s) + shared for s in subsets), tuple(0 for _ in subsets))


def test_shapley_of_an_additive_model_is_each_change_effect():
    effect = {"relu": 0.4, "adamw": -1.1, "dropout": -0.3}
    att = attribute(synthetic(lambda s: 6.0 + sum(effect[c] for c in s), noise=0.2))
    for e in att.effects:
        assert e.shapley.value == pytest.approx(effect[e.change], abs=1e-12)
        assert e.alone.value == pytest.approx(effect[e.change]) and e.last.value == pytest.approx(effect[e.change])
        assert e.ladder_step.value == pytest.approx(effect[e.change])
    assert sum(e.shapley.value for e in att.effects) == pytest.approx(att.full - att.baseline, abs=1e-12)
    assert all(abs(it.index.value) < 1e-12 for it in att.interactions)
    assert att.conflicts == ()


def test_shapley_values_sum_to_full_minus_baseline_for_any_means():
    rng = np.random.default_rng(3)
    for n in (1, 2, 4, 6):
        means = rng.uniform(1.0, 9.0, 2 ** n)
        phi = shapley_matrix(n) @ means
        assert phi.sum() == pytest.approx(means[-1] - means[0], abs=1e-12)


def test_shapley_equals_the_average_step_over_all_orders():
    from itertools import permutations

    rng = np.random.default_rng(5)
    n = 4
    means = rng.uniform(1.0, 9.0, 2 ** n)
    steps = np.zeros(n)
    orders = list(permutations(range(n)))
    for order in orders:
        k = 0
        for i in order:
            steps[i] += means[k | 1 << i] - means[k]
            k |= 1 << i
    np.testing.assert_allclose(shapley_matrix(n) @ means, steps / len(orders), atol=1e-12)


def test_a_pure_pairwise_interaction_shows_in_the_interaction_table():
    att = attribute(synthetic(lambda s: 5.0 - 0.8 * ({"relu", "dropout"} <= s), noise=0.1))
    top = att.interactions[0]
    assert {top.a, top.b} == {"relu", "dropout"}
    assert top.index.value == pytest.approx(-0.8) and top.index.significant
    assert all(abs(it.index.value) < 1e-12 for it in att.interactions[1:])
    phi = {e.change: e.shapley.value for e in att.effects}
    assert phi["relu"] == pytest.approx(-0.4) and phi["dropout"] == pytest.approx(-0.4) and abs(phi["adamw"]) < 1e-12
    table = att.interaction_table()
    assert list(table.columns) == ["game", "a", "b", "interaction", "low", "high", "holm"]
    assert len(table[table.game == "mixture"]) == 3
    # The ladder adds relu (step 0) before dropout (step -0.8): the ladder's order moves the credit.
    text = " ".join(att.conflicts)
    assert "`relu`" in text and "`dropout`" in text


def test_t_intervals_contain_the_estimate_and_bold_follows_holm():
    rng = np.random.default_rng(11)
    fac = synthetic(lambda s: 5.0 - 0.5 * len(s), noise=0.0)
    fac = Factorial(fac.dataset, fac.changes, fac.labels,
                    tuple(e + rng.normal(0.0, 0.4, len(e)) for e in fac.errors), fac.diverged)
    a = attribute(fac)
    assert a == attribute(fac)  # no random draws: the same records give the same intervals
    ests = [x for e in a.effects for x in (e.shapley, e.alone, e.last, e.ladder_step)] + [i.index for i in a.interactions]
    for est in ests:
        assert est.low <= est.value <= est.high and est.low < est.high
        assert not est.significant or est.excludes_zero  # Holm only ever removes bold
    assert all(e.shapley.significant for e in a.effects)  # -0.5 pp each, 8 runs of sd 0.4 per configuration


def coverage(truth: np.ndarray, draw, reps: int, seed: int) -> float:
    """Share of the 95% intervals of the stable game's Shapley values that hold the true values, over `reps`
    factorials drawn by draw(rng) (per configuration: that configuration's runs)."""
    rng = np.random.default_rng(seed)
    hits = total = 0
    for _ in range(reps):
        fac = draw(rng)
        game, why = attribution.stable_game(fac)
        assert why is None
        for e, true in zip(game.effects, truth):
            hits += e.shapley.low <= true <= e.shapley.high
            total += 1
    return hits / total


def _factorial_of(errors: list[np.ndarray], changes=CHANGES) -> Factorial:
    labels = tuple(factorial_label([c for i, c in enumerate(changes) if k >> i & 1]) for k in range(2 ** len(changes)))
    return Factorial("usps", tuple(changes), labels, tuple(errors), tuple(0 for _ in errors))


def test_stable_game_intervals_cover_at_the_seed_count_on_synthetic_runs():
    """Skewed, unequal-variance synthetic runs (gamma noise) at 8 and 16 seeds: the t intervals' coverage of
    the true Shapley values is close to 95%."""
    means = 5.0 + np.random.default_rng(0).normal(0.0, 1.0, 8)
    scales = np.linspace(0.2, 0.8, 8)
    players = [i for i, c in enumerate(CHANGES) if c != attribution.STABLE_FIXED]
    sub = [k for k in range(8) if k >> CHANGES.index(attribution.STABLE_FIXED) & 1]
    true = shapley_matrix(len(players)) @ np.array([means[k] for k in sub])
    for seeds in (8, 16):
        def draw(rng, seeds=seeds):
            return _factorial_of([means[k] + scales[k] * (rng.gamma(2.0, 1.0, seeds) - 2.0) / math.sqrt(2.0)
                                  for k in range(8)])
        assert 0.92 <= coverage(true, draw, reps=600, seed=seeds) <= 0.98


COMMITTED_RUNS = Path(__file__).resolve().parent.parent / "results" / "runs"


def test_stable_game_intervals_cover_when_our_records_are_resampled():
    """The committed usps factorial's runs with AdamW on, taken as the population: factorials of 16 runs per
    configuration drawn from them (with replacement) give intervals that hold the population's Shapley values
    about 95% of the time."""
    groups = group_records([r for r in load_records(COMMITTED_RUNS.parent).records if r["mode"] == "factorial"])
    fac, why = find_factorial(groups, "usps", [r.name for r in load_rungs()])
    if fac is None:
        pytest.skip(f"no complete committed usps factorial ({why})")
    game, _ = attribution.stable_game(fac)
    index = [fac.labels.index(lb) for lb in game.labels]
    population = [fac.stable_errors()[k] for k in index]
    true = np.array([e.shapley.value for e in game.effects])

    def draw(rng):
        errors = list(fac.stable_errors())
        for k, pop in zip(index, population):
            errors[k] = rng.choice(pop, size=16, replace=True)
        return Factorial(fac.dataset, fac.changes, fac.labels, tuple(errors), fac.diverged)

    assert 0.92 <= coverage(true, draw, reps=150, seed=1) <= 0.98


def test_collapse_game_intervals_cover_at_the_committed_collapse_rates():
    """Factorials of 16 runs per configuration whose runs collapse at the committed usps factorial's rates
    (Bernoulli draws): the collapse game's intervals hold the true Shapley values and interactions about 95% of
    the time."""
    groups = group_records([r for r in load_records(COMMITTED_RUNS.parent).records if r["mode"] == "factorial"])
    fac, why = find_factorial(groups, "usps", [r.name for r in load_rungs()])
    if fac is None:
        pytest.skip(f"no complete committed usps factorial ({why})")
    k, runs = fac.collapse_counts()
    rate = k / runs
    pairs, inter = attribution.interaction_matrix(fac.n)
    true = np.concatenate([shapley_matrix(fac.n) @ (100 * rate), inter @ (100 * rate)])
    rng = np.random.default_rng(2)
    hits = total = 0
    for _ in range(60):
        drawn = rng.binomial(16, rate)
        sample = Factorial(fac.dataset, fac.changes, fac.labels, tuple(np.zeros(16) for _ in rate),
                           tuple(0 for _ in rate), tuple(np.zeros(16 - c) for c in drawn), tuple(int(c) for c in drawn))
        game = attribution.collapse_game(sample)
        index = {(it.a, it.b): it.index for it in game.interactions}
        ests = [e.shapley for e in game.effects] + [index[(fac.changes[i], fac.changes[j])] for i, j in pairs]
        hits += sum(e.low <= t <= e.high for e, t in zip(ests, true))
        total += len(ests)
    assert 0.92 <= hits / total <= 0.98


def test_collapse_and_stable_games_from_records_with_collapses():
    """ReLU with SGD collapses (test error 100%) in every run; with AdamW it does not: the collapse game gives
    ReLU and AdamW the collapse odds, the stable game (AdamW on) sees only the stable runs."""
    errors, collapsed = [], []
    for k in range(8):
        s = {c for i, c in enumerate(CHANGES) if k >> i & 1}
        bad = "relu" in s and "adamw" not in s
        errors.append(np.full(8, 100.0) if bad else 5.0 - 0.5 * ("dropout" in s) + np.linspace(-0.2, 0.2, 8))
        collapsed.append(8 if bad else 0)
    fac = _factorial_of(errors)
    fac = Factorial(fac.dataset, fac.changes, fac.labels, fac.errors, fac.diverged,
                    tuple(e[:0] if c else e for e, c in zip(errors, collapsed)), tuple(collapsed))
    att = attribute(fac)
    col = {e.change: e.shapley.value for e in att.collapse.effects}
    assert col["relu"] == pytest.approx(50.0) and col["adamw"] == pytest.approx(-50.0) and col["dropout"] == pytest.approx(0.0, abs=1e-12)
    stable = {e.change: e.shapley.value for e in att.stable.effects}
    assert set(stable) == {"relu", "dropout"} and att.stable.fixed == ("adamw",)
    assert stable["dropout"] == pytest.approx(-0.5) and stable["relu"] == pytest.approx(0.0, abs=1e-12)
    assert att.stable.collapsed_inside == 0 and att.collapse.collapsed_inside == 16
    table = att.table()
    assert math.isnan(table.set_index("change").loc["adamw", "stable_shapley"])


def test_the_mixture_is_paired_by_seed_where_every_configuration_ran_the_same_seeds():
    """Errors that share a per-seed offset: paired contrasts remove it, so the mixture's intervals are narrower
    than Welch's, its correlation over seeds is reported, and the point values are the same."""
    offset = np.linspace(-1.0, 1.0, 8)
    errors = [5.0 - 0.5 * (k & 1) + offset + 0.05 * np.cos(np.arange(8) * (k + 1)) for k in range(8)]
    welch = attribute(_factorial_of(errors))
    fac = _factorial_of(errors)
    paired = attribute(Factorial(fac.dataset, fac.changes, fac.labels, fac.errors, fac.diverged,
                                 run_seeds=tuple(tuple(range(8)) for _ in errors)))
    for w, p in zip(welch.effects, paired.effects):
        assert p.shapley.value == pytest.approx(w.shapley.value)
        assert p.shapley.high - p.shapley.low < 0.5 * (w.shapley.high - w.shapley.low)
    assert math.isnan(welch.mixture_game.seed_corr) and paired.mixture_game.seed_corr > 0.9


# ----------------------------------------------------------------------------------------- records and report
LADDER = ("baseline",) + CHANGES


@pytest.fixture
def ladder_dir(tmp_path) -> Path:
    d = tmp_path / "ladder"
    d.mkdir()
    for i, name in enumerate(LADDER):
        patch = "".join(f"{k} = {json.dumps(v)}\n" for k, v in PATCHES.get(name, {}).items())
        (d / f"{i:02d}-{name}.toml").write_text(
            f'name = "{name}"\ntitle = "Rung {name}"\nrationale = "test"\nsource = "test"\n\n[patch]\n{patch}')
    return d


EFFECT = {"relu": 0.004, "adamw": -0.011, "dropout": -0.003}


def factorial_records(ladder_dir: Path, seeds: int = 3, skip: tuple[str, ...] = ()) -> list[dict]:
    """Records of a factorial over CHANGES: error fractions additive in the changes, plus a seed term."""
    out = []
    for p in plan(load_rungs(ladder_dir), "factorial"):
        if p.label in skip:
            continue
        names = p.changes
        for seed in range(seeds):
            err = 0.06 + sum(EFFECT[c] for c in names) + 0.001 * (seed - 1)
            rec = make_record("usps", "baseline", seed, test_error=err, passes=3)
            cfg = p.config.replace(passes=3)
            rec.update(label=p.label, rung=p.rung.name, mode="factorial", changes=list(names),
                       rung_title=p.rung.title, config=cfg.to_dict(), config_digest=cfg.digest())
            out.append(rec)
    return out


def test_find_factorial_reads_records_and_reports_gaps(tmp_path, ladder_dir):
    recs = factorial_records(ladder_dir)
    for i, r in enumerate(recs):
        r["_file"] = f"usps/{i}.json"
    fac, why = find_factorial(group_records(recs), "usps", list(LADDER))
    assert why is None and fac.changes == CHANGES and fac.labels[0] == "f:baseline"
    assert fac.labels[-1] == "f:relu+adamw+dropout" and all(len(e) == 3 for e in fac.errors)
    att = attribute(fac)
    for e in att.effects:
        assert e.shapley.value == pytest.approx(100 * EFFECT[e.change])
    partial = [r for r in recs if r["label"] != "f:relu+dropout"]
    fac, why = find_factorial(group_records(partial), "usps", list(LADDER))
    assert fac is None and "7 of 8" in why and "`f:relu+dropout`" in why
    assert find_factorial(group_records(recs), "mnist16", list(LADDER)) == (None, None)


def _paper(tmp_path: Path) -> Path:
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "paper.md").write_text("# P\n\n<!-- report:attribution:start -->\nplaceholder\n<!-- report:attribution:end -->\n")
    return paper


def test_report_writes_the_attribution_files(tmp_path, ladder_dir):
    results = tmp_path / "results"
    for rec in factorial_records(ladder_dir) + [make_record("usps", "baseline", s, passes=3) for s in range(3)]:
        write(results, rec)
    paper = _paper(tmp_path)
    outcome = write_report(results, study=True, paper_dir=paper, ladder_dir=ladder_dir,
                           data_dir=str(tmp_path / "no-data"))
    names = {p.relative_to(tmp_path).as_posix() for p in outcome.written}
    for name in ("paper/tables/attribution-usps.csv", "paper/tables/interactions-usps.csv",
                 "paper/tables/factorial-usps.csv", "paper/figures/attribution_usps.png",
                 "paper/figures/interactions_usps.png", "paper/paper.md"):
        assert name in names
    assert is_png(paper / "figures" / "attribution_usps.png") and is_png(paper / "figures" / "interactions_usps.png")
    assert is_png(paper / "figures" / "attribution_stable_usps.png")  # the game with adamw on
    table = pd.read_csv(paper / "tables" / "attribution-usps.csv")
    assert list(table.change) == list(CHANGES)
    assert table.shapley.sum() == pytest.approx(100 * sum(EFFECT.values()))
    configs = pd.read_csv(paper / "tables" / "factorial-usps.csv")
    assert len(configs) == 8 and set(configs.runs) == {3}
    text = (results / "results.md").read_text()
    assert "## What each change buys, whatever the order (factorial)" in text
    assert "figures/attribution_usps.png" in text
    main = pd.read_csv(paper / "tables" / "usps.csv")
    assert not any(lb.startswith("f:") for lb in main.label)  # the factorial stays out of the ladder's table
    block = (paper / "paper.md").read_text()
    assert "placeholder" not in block and "Shapley value" in block and "(figures/attribution_usps.png)" in block
    # the same records give the same files
    first = {p: p.read_bytes() for p in outcome.written}
    again = write_report(results, study=True, paper_dir=paper, ladder_dir=ladder_dir, data_dir=str(tmp_path / "no-data"))
    assert {p: p.read_bytes() for p in again.written} == first

    ws = write_report(results, out_dir=tmp_path / "ws", ladder_dir=ladder_dir, data_dir=str(tmp_path / "no-data"))
    ws_names = {p.relative_to(tmp_path / "ws").as_posix() for p in ws.written}
    assert {"tables/attribution-usps.csv", "figures/attribution_usps.png"} <= ws_names
    assert "(figures/attribution_usps.png)" in (tmp_path / "ws" / "report.md").read_text()


def test_report_without_a_complete_factorial(tmp_path, ladder_dir):
    results = tmp_path / "results"
    for s in range(3):
        write(results, make_record("usps", "baseline", s, passes=3))
    paper = _paper(tmp_path)
    before = (paper / "paper.md").read_text()
    outcome = write_report(results, study=True, paper_dir=paper, ladder_dir=ladder_dir, data_dir=str(tmp_path / "no-data"))
    assert not [p for p in outcome.written if "attribution" in p.name or "interactions" in p.name or "factorial" in p.name]
    assert (paper / "paper.md").read_text() == before
    assert "factorial" not in (results / "results.md").read_text()

    for rec in factorial_records(ladder_dir, skip=("f:adamw",)):
        write(results, rec)
    lines: list[str] = []
    outcome = write_report(results, study=True, paper_dir=paper, ladder_dir=ladder_dir,
                           data_dir=str(tmp_path / "no-data"), warn=lines.append)
    assert not [p for p in outcome.written if "attribution" in p.name or "interactions" in p.name]
    assert (paper / "paper.md").read_text() == before
    assert "factorial incomplete" in "\n".join(lines) and "`f:adamw`" in (results / "results.md").read_text()


def test_diverged_runs_are_left_out_and_counted(tmp_path, ladder_dir):
    recs = factorial_records(ladder_dir)
    i = next(i for i, r in enumerate(recs) if r["label"] == "f:relu" and r["seed"] == 2)
    bad = make_record("usps", "baseline", 2, passes=3, diverged_at=2)
    bad.update({k: recs[i][k] for k in ("label", "rung", "mode", "changes", "rung_title", "config", "config_digest")})
    recs[i] = bad
    for j, r in enumerate(recs):
        r["_file"] = f"usps/{j}.json"
    fac, _ = find_factorial(group_records(recs), "usps", list(LADDER))
    k = fac.labels.index("f:relu")
    assert fac.diverged[k] == 1 and len(fac.errors[k]) == 2
    assert math.isclose(fac.errors[k].mean(), 100 * (0.06 + EFFECT["relu"] - 0.0005))
    assert "`f:relu` 1" in attribution_text.dataset_markdown(attribute(fac), {})


def test_interaction_index_of_a_product_is_its_coefficient():
    pairs, w = attribution.interaction_matrix(4)
    assert len(pairs) == len(list(combinations(range(4), 2)))
    ones = np.zeros(16)
    for k in range(16):
        ones[k] = 1.0 if (k & 0b11) == 0b11 else 0.0  # E = [0 in S][1 in S]
    assert (w @ ones)[pairs.index((0, 1))] == pytest.approx(1.0)
