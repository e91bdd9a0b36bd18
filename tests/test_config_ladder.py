"""Config patches and rung files: locked fields, clear errors, cumulative/single/leave-one-out plans."""

from pathlib import Path

import pytest
import torch

from repro.config import Config, ConfigError, apply_patch
from repro.jobs.ladder import DEFAULT_LADDER_DIR, extra_rungs, guess_rungs, load_rungs, plan, read_rung

LADDER = ["baseline", "relu", "adamw", "lr-decay", "dropout", "shift", "long"]


def test_defaults_are_the_1989_procedure():
    c = Config()
    assert (c.passes, c.optimizer, c.lr, c.hidden_activation, c.output) == (23, "sgd", 0.03, "tanh", "tanh_mse")
    assert (c.dropout, c.shift, c.lr_schedule) == (0.0, 0, "constant")


@pytest.mark.parametrize(
    "patch, words",
    [
        ({"lrate": 0.1}, ["unknown field 'lrate'", "valid fields", "lr"]),
        ({"lr": "fast"}, ["'lr' must be float"]),
        ({"passes": 2.5}, ["'passes' must be int"]),
        ({"lr": -0.1}, ["out of range"]),
        ({"dropout": 1.0}, ["out of range", "< 1.0"]),
        ({"passes": 0}, ["out of range"]),
        ({"optimizer": "lbfgs"}, ["valid values", "sgd", "adamw"]),
        ({"output": "softmax_ce", "target": 0.8}, ["'target'", "softmax_ce"]),
        ({"target": 0.0}, ["out of range"]),
        ({"sdlm_curvature": "lenet"}, ["valid values", "running", "per_pass"]),
        ({"sdlm_estimate_patterns": 0}, ["out of range"]),
    ],
)
def test_bad_patches_are_clear_errors(patch, words):
    with pytest.raises(ConfigError) as e:
        apply_patch(Config(), patch, source="my.toml")
    msg = str(e.value)
    assert msg.startswith("my.toml")
    for w in words:
        assert w in msg


def test_int_is_accepted_for_float_fields():
    assert apply_patch(Config(), {"lr": 1}).lr == 1.0
    assert isinstance(Config(lr=1).lr, float) and Config(lr=1) == Config(lr=1.0)


@pytest.mark.parametrize("fields, words", [
    ({"optimizer": "rmsprop"}, ["'optimizer'", "valid values", "sgd, adamw, sdlm"]),
    ({"lr": -0.1}, ["'lr'", "out of range"]),
    ({"passes": 2.0}, ["'passes'", "must be int"]),
    ({"architecture": "fc40", "dropout": 0.25}, ["fc40", "H3"]),
    ({"init": "repro2022", "h2_scheme": "cyclic"}, ["repro2022", "cyclic"]),
])
def test_config_itself_refuses_what_a_patch_would(fields, words):
    """The checks live in Config: a Config made directly is held to the same lists, ranges and rules."""
    with pytest.raises(ConfigError) as e:
        Config(**fields)
    for w in words:
        assert w in str(e.value)


def test_lr_schedule():
    c = Config(passes=3, lr=0.3, lr_schedule="linear", lr_final_factor=1 / 3)
    assert [round(c.lr_at_pass(p), 6) for p in range(3)] == [0.3, 0.2, 0.1]
    assert Config().lr_at_pass(22) == 0.03


def test_default_ladder_order_and_cumulative_patches():
    rungs = load_rungs()
    assert [r.name for r in rungs] == LADDER
    cfgs = {p.label: p.config for p in plan(rungs)}
    assert cfgs["baseline"] == Config()
    assert cfgs["relu"].hidden_activation == "relu" and cfgs["relu"].optimizer == "sgd"
    top = cfgs["long"]
    assert (top.hidden_activation, top.optimizer, top.lr, top.lr_schedule, top.dropout, top.shift, top.passes) == (
        "relu", "adamw", 3e-4, "linear", 0.25, 1, 80)
    for r in rungs:
        assert r.title and r.rationale and r.source


def test_single_and_leave_one_out_modes():
    rungs = load_rungs()
    single = {p.label: p.config for p in plan(rungs, "single")}
    assert single["single:dropout"] == Config(dropout=0.25)
    loo = {p.label: p.config for p in plan(rungs, "leave-one-out")}
    assert loo["minus:relu"].hidden_activation == "tanh" and loo["minus:relu"].passes == 80
    assert loo["full"] == {p.label: p.config for p in plan(rungs)}["long"]


def test_each_planned_configuration_carries_its_mode_and_changes():
    rungs = load_rungs()
    extras = extra_rungs(DEFAULT_LADDER_DIR)
    names = [r.name for r in rungs]
    cumulative = {p.label: p for p in plan(rungs, "cumulative", names + ["softmax-ce"], extras)}
    assert {p.mode for p in cumulative.values()} == {"cumulative"}
    assert cumulative["baseline"].changes == () and cumulative["adamw"].changes == ("relu", "adamw")
    assert cumulative["long"].changes == tuple(names[1:]) and cumulative["softmax-ce"].changes == ("softmax-ce",)
    single = {p.label: p for p in plan(rungs, "single")}
    assert single["single:dropout"].mode == "single" and single["single:dropout"].changes == ("dropout",)
    assert single["baseline"].changes == ()
    loo = {p.label: p for p in plan(rungs, "leave-one-out")}
    assert {p.mode for p in loo.values()} == {"leave-one-out"} and loo["full"].changes == tuple(names[1:])
    assert loo["minus:adamw"].changes == tuple(n for n in names[1:] if n != "adamw")
    faithful = DEFAULT_LADDER_DIR / "faithful"
    on, *guesses = plan(load_rungs(faithful), "guesses", guesses=guess_rungs(faithful), on="paper")
    assert (on.label, on.mode, on.changes) == ("paper", "cumulative", ("scaled-tanh", "literal-init", "paper"))
    assert all(g.mode == "guesses" and g.changes == on.changes + (g.rung.name,) for g in guesses)


def _write(d: Path, name: str, body: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(body)
    return p


BASE = 'name = "baseline"\ntitle = "t"\nrationale = "r"\nsource = "s"\n[patch]\n'


def test_user_can_add_a_rung(tmp_path):
    _write(tmp_path, "00-baseline.toml", BASE)
    _write(tmp_path, "10-wide-lr.toml", 'name = "fast"\ntitle = "t"\nrationale = "r"\nsource = "s"\n[patch]\nlr = 0.1\n')
    rungs = load_rungs(tmp_path)
    assert [r.name for r in rungs] == ["baseline", "fast"]
    assert plan(rungs)[-1].config.lr == 0.1


@pytest.mark.parametrize(
    "name, body, words",
    [
        ("01-x.toml", 'name = "x"\ntitle = "t"\nrationale = "r"\nsource = "s"\n[patch]\nlearning_rate = 1.0\n', ["01-x.toml", "unknown field 'learning_rate'", "valid fields"]),
        ("01-x.toml", 'name = "x"\ntitle = "t"\nrationale = "r"\nsource = "s"\n[patch]\nlr = "big"\n', ["01-x.toml", "'lr' must be float"]),
        ("01-x.toml", 'name = "x"\ntitle = "t"\nrationale = "r"\nsource = "s"\n[patch]\ndropout = 1.5\n', ["out of range"]),
        ("01-x.toml", 'name = "x"\ntitle = "t"\n', ["'rationale' must be a non-empty string"]),
        ("01-x.toml", 'name = "x"\nzzz = 1\n', ["unknown key"]),
        ("01-x.toml", 'name = "x\n', ["not valid TOML"]),
        ("x.toml", BASE, ["NN-name.toml"]),
        ("00-again.toml", BASE.replace("baseline", "again"), ["order number 0 is also used"]),
    ],
)
def test_bad_rung_files(tmp_path, name, body, words):
    _write(tmp_path, "00-baseline.toml", BASE)
    _write(tmp_path, name, body)
    with pytest.raises(ConfigError) as e:
        load_rungs(tmp_path)
    for w in words:
        assert w in str(e.value)


def test_unknown_rung_name_lists_choices():
    with pytest.raises(ConfigError) as e:
        plan(load_rungs(), only=["baseline", "nope"])
    assert "nope" in str(e.value) and "dropout" in str(e.value)


def test_target_scales_the_squared_error_targets():
    from repro.net.model import loss_per_example

    pre = torch.tensor([[0.3, -0.2] + [0.1] * 8])
    cfg = Config(output="scaled_tanh_mse", target=0.8)
    y = 1.7159 * torch.tanh(pre * 2 / 3)
    want = ((y - torch.tensor([-0.8, 0.8] + [-0.8] * 8)) ** 2).mean()
    torch.testing.assert_close(loss_per_example(cfg, pre, torch.tensor([1]))[0], want)
