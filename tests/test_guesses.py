"""Mode "guesses": planning (a rung, and each guess file's patch on top of it) and the report's rule, which
judges on training error and loss only."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from repro.config import Config, ConfigError
from repro.report.guesses import BETTER, SAME, WORSE, verdict
from repro.report.stats import Interval
from repro.jobs.ladder import guess_label, guess_parts, guess_rungs, load_rungs, plan

from .test_report import make_record, report, write


def _rung(folder, name, patch, order):
    body = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in patch.items())
    (folder / f"{order:02d}-{name}.toml").write_text(
        f'name = "{name}"\ntitle = "t"\nrationale = "r"\nsource = "s"\n\n[patch]\n{body}')


@pytest.fixture
def ladder(tmp_path):
    d = tmp_path / "ladder"
    (d / "guesses").mkdir(parents=True)
    _rung(d, "baseline", {}, 0)
    _rung(d, "scaled", {"hidden_activation": "scaled_tanh"}, 1)
    _rung(d, "sdlm", {"optimizer": "sdlm", "lr": 0.001}, 2)
    _rung(d / "guesses", "cyclic", {"h2_scheme": "cyclic"}, 1)
    _rung(d / "guesses", "mu", {"sdlm_mu": 0.1}, 2)
    return d


def test_guesses_are_planned_on_top_of_a_rung(ladder):
    rungs, guesses = load_rungs(ladder), guess_rungs(ladder)
    planned = plan(rungs, "guesses", guesses=guesses)
    assert [p.label for p in planned] == ["sdlm", "guess:sdlm+cyclic", "guess:sdlm+mu"]
    top = Config(hidden_activation="scaled_tanh", optimizer="sdlm", lr=0.001)
    assert planned[0].config == top
    assert planned[1].config == top.replace(h2_scheme="cyclic")
    assert planned[2].config == top.replace(sdlm_mu=0.1)
    on_scaled = plan(rungs, "guesses", ["mu"], guesses=guesses, on="scaled")
    assert [p.label for p in on_scaled] == ["scaled", "guess:scaled+mu"]
    assert on_scaled[1].config == Config(hidden_activation="scaled_tanh", sdlm_mu=0.1)
    assert guess_parts(guess_label("sdlm", "mu")) == ("sdlm", "mu")
    assert guess_parts("f:relu") is None and guess_parts("paper") is None


def test_guess_mistakes_are_clear_errors(ladder):
    rungs, guesses = load_rungs(ladder), guess_rungs(ladder)
    with pytest.raises(ConfigError, match="unknown rung 'nope'"):
        plan(rungs, "guesses", guesses=guesses, on="nope")
    with pytest.raises(ConfigError, match="unknown guess"):
        plan(rungs, "guesses", ["nope"], guesses=guesses)
    with pytest.raises(ConfigError, match="guesses/ folder"):
        plan(rungs, "guesses", guesses=[])
    with pytest.raises(ConfigError, match="for mode 'guesses' only"):
        plan(rungs, "cumulative", on="sdlm")
    _rung(ladder / "guesses", "same", {"optimizer": "sdlm"}, 3)
    with pytest.raises(ConfigError, match="unchanged"):
        plan(rungs, "guesses", guesses=guess_rungs(ladder))


def iv(low, high):
    return Interval((low + high) / 2, low, high, 10.0)


@pytest.mark.parametrize("d_err, d_loss, want", [
    (iv(-0.02, 0.01), iv(-3e-4, -1e-4), BETTER),     # lower loss, error not higher
    (iv(0.01, 0.03), iv(-3e-4, -1e-4), WORSE),       # lower loss but higher error
    (iv(-0.03, -0.01), iv(-1e-4, 1e-4), BETTER),     # lower error, loss not higher
    (iv(-0.03, -0.01), iv(1e-4, 2e-4), WORSE),       # lower error but higher loss
    (iv(-0.01, 0.01), iv(-1e-4, 1e-4), SAME),
    (iv(-0.01, 0.01), iv(1e-4, 2e-4), WORSE),
    (iv(-0.03, -0.01), None, BETTER),                # targets changed: error decides alone
    (iv(-0.01, 0.02), None, SAME),
])
def test_the_rule(d_err, d_loss, want):
    assert verdict(d_err, d_loss) == want


def test_too_few_seeds_is_said():
    assert "too few" in verdict(Interval(0.1, math.nan, math.nan, math.nan), None)


def test_report_judges_guesses_on_training_data_only(tmp_path, ladder):
    results = tmp_path / "results"
    for seed in range(6):
        jitter = 0.0005 * (seed % 3)
        write(results, make_record(label="baseline", seed=seed, train_error=0.010 + jitter, test_error=0.05))
        # lower training error and loss, much higher test error: the verdict must not look at test
        write(results, make_record(label="guess:baseline+better", seed=seed, train_error=0.006 + jitter,
                                   test_error=0.09, config_changes={"h2_scheme": "cyclic"}))
        write(results, make_record(label="guess:baseline+targets", seed=seed, train_error=0.010 + jitter,
                                   test_error=0.01, config_changes={"target": 0.8, "output": "scaled_tanh_mse"}))
    outcome, _ = report(tmp_path, ladder)
    table = pd.read_csv(tmp_path / "paper" / "tables" / "guesses.csv", keep_default_na=False)
    rows = {r.guess: r for r in table.itertuples()}
    assert rows["better"].verdict == BETTER
    assert rows["better"].changes == "h2_scheme = cyclic"
    assert rows["targets"].verdict == SAME
    assert table.set_index("guess").loc["targets", "Δ train loss [99% CI]"] == "not compared (other targets)"
    assert not any("test" in c for c in table.columns)
    ladder_rows = pd.read_csv(tmp_path / "paper" / "tables" / "usps.csv")["label"].tolist()
    assert not any(str(lb).startswith("guess:") for lb in ladder_rows)
    text = (tmp_path / "results" / "results.md").read_text()
    assert "## Guesses judged on training data" in text and "Better by the rule: on `baseline`: `better`." in text
