"""The lockstep engines against the plain reference loop: for every rung (and the extra rungs), a member
trained inside a population ends where the reference loop, run alone with the same seed, ends. Every
lockstep engine of the registry runs here where it is available and supports the rung; the fused engine's
other tests are in test_fused.py."""

import pytest
import torch

from repro.config import Config
from repro.engines import registry
from repro.engines.population import Population
from repro.engines.population.lockstep import to_engine, to_reference
from repro.net.model import forward, init_params, run_generator
from repro.engines.reference import evaluate, train_reference
from tests.conftest import (
    CONFIGS, DEVICES, FLOAT32_TOLERANCE, N_SUBSET, N_SUBSET_INTERPRETED, assert_params_match_in_float64,
    float32_comparable,
    float64)

LOCKSTEP = [name for name in registry.NAMES if registry.get(name).lockstep]
# Engines whose arithmetic is torch's own ops, in torch's default dtype: compared with the reference loop in
# float64 (conftest.FLOAT64_TOLERANCE says why), where the last bits of torch's CPU kernels, which depend on
# the CPU's code path, are far below the tolerance. The native engine (float32 only, the same bits on every
# CPU) and the fused kernel are compared with the float32 reference loop (conftest.FLOAT32_TOLERANCE).
TORCH_ARITHMETIC = {"population", "generic"}


def lockstep_class(name: str, cfg: Config, device: str) -> type:
    """The registry's class for engine `name`, or a skip saying why it cannot run here."""
    engine = registry.get(name)
    why = engine.available(device) or engine.supports(cfg)
    if why:
        pytest.skip(why)
    return engine.population_class(cfg)


@pytest.mark.parametrize("engine", LOCKSTEP)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_member_in_population_matches_reference_loop(label, device, engine, usps, reference_run):
    """Every engine on every device (the fused kernel on CPU in Triton's interpreter, on CUDA compiled)."""
    cfg = CONFIGS[label]
    cls = lockstep_class(engine, cfg, device)
    if engine in TORCH_ARITHMETIC:
        return _matches_reference_in_float64(cfg, cls, device, usps, reference_run)
    cfg = float32_comparable(cfg)
    n = N_SUBSET_INTERPRETED if (engine, device) == ("fused", "cpu") else N_SUBSET
    x, y = usps.x_train[:n], usps.y_train[:n]
    seed = 11
    ref = reference_run(cfg, n, seed)
    pop = cls(cfg, [3, seed, 5], x, y, device=device)  # the member of interest sits between two others
    for p in range(cfg.passes):
        pop.train_pass(p)
    got = pop.member_params(1)
    for name, want in ref.params.items():
        torch.testing.assert_close(got[name], want.detach(), **FLOAT32_TOLERANCE, msg=f"{label}: {name}")
    # batched evaluation agrees with the reference's
    ev = pop.evaluate(usps.x_test[:500], usps.y_test[:500])
    loss, err = evaluate(ref.params, usps.x_test[:500], usps.y_test[:500], cfg)
    assert ev.loss.device.type == device
    assert ev.loss[1].item() == pytest.approx(loss, rel=1e-4, abs=1e-6)
    assert ev.error[1].item() == pytest.approx(err, abs=1.5 / 500)  # at most a borderline flip


def _matches_reference_in_float64(cfg: Config, cls: type, device: str, usps, reference_run) -> None:
    """See TORCH_ARITHMETIC: a member ends where the reference loop ends, and evaluates as it does."""
    ref = reference_run(cfg, N_SUBSET, 11, in_float64=True)
    x, y = usps.x_train[:N_SUBSET].double(), usps.y_train[:N_SUBSET]
    x_test, y_test = usps.x_test[:500].double(), usps.y_test[:500]
    with float64():
        pop = cls(cfg, [3, 11, 5], x, y, device=device)
        for p in range(cfg.passes):
            pop.train_pass(p)
        assert_params_match_in_float64(pop.member_params(1), ref.params, cfg.hidden_activation)
        ev = pop.evaluate(x_test, y_test)
        loss, err = evaluate(ref.params, x_test, y_test, cfg)
    assert ev.loss[1].item() == pytest.approx(loss, rel=1e-7)  # parameters within FLOAT64_TOLERANCE
    assert ev.error[1].item() == err


def test_the_ladder_covers_every_mechanism():
    cfgs = list(CONFIGS.values())
    assert {c.hidden_activation for c in cfgs} >= {"tanh", "relu"}
    assert {c.optimizer for c in cfgs} == {"sgd", "adamw"}
    assert any(c.lr_schedule == "linear" for c in cfgs) and any(c.dropout > 0 for c in cfgs)
    assert any(c.shift > 0 for c in cfgs) and any(c.output == "softmax_ce" for c in cfgs)


@pytest.mark.parametrize("patch", [{"hidden_activation": "scaled_tanh"}, {"shift": 1, "shift_mode": "pad", "dropout": 0.5}, {"init": "fan_in", "lr": 0.1}, {"h2_scheme": "cyclic"},
    {"hidden_activation": "scaled_tanh", "output": "scaled_tanh_mse", "optimizer": "sdlm", "lr": 1e-3, "init": "fan_in"},
    {"target": 0.8}])
def test_options_outside_the_ladder_match_too(patch, usps, reference_run):
    cfg = Config(passes=1).replace(**patch)
    ref = reference_run(cfg, 200, 2, in_float64=True)
    with float64():
        pop = Population(cfg, [2], usps.x_train[:200].double(), usps.y_train[:200])
        pop.train_pass(0)
        assert_params_match_in_float64(pop.member_params(0), ref.params, str(patch))


@pytest.mark.parametrize("scheme", ["block", "cyclic"])
def test_layout_round_trip(scheme):
    p = init_params(Config(), run_generator(4))
    back = to_reference(to_engine(p, scheme), scheme)
    assert all(torch.equal(p[k], back[k]) for k in p)


def test_evaluation_matches_reference_forward(usps):
    cfg = Config(hidden_activation="relu")
    pop = Population(cfg, [0, 1, 2], usps.x_train[:10], usps.y_train[:10])
    ev = pop.evaluate(usps.x_test, usps.y_test, keep_outputs=True)
    for m in range(3):
        want = torch.tanh(forward(pop.member_params(m), usps.x_test, cfg))
        torch.testing.assert_close(ev.outputs[m], want, atol=1e-5, rtol=1e-5)


def test_population_is_deterministic(usps):
    cfg = Config(passes=1, dropout=0.25, shift=1)
    x, y = usps.x_train[:100], usps.y_train[:100]
    a, b = Population(cfg, [0, 1], x, y), Population(cfg, [0, 1], x, y)
    a.train_pass(0)
    b.train_pass(0)
    assert torch.equal(a.params.flat, b.params.flat)


def test_divergent_member_does_not_touch_the_others(usps):
    x, y = usps.x_train[:300], usps.y_train[:300]
    cfg = Config(passes=1)
    alone = Population(cfg, [1], x, y)
    alone.train_pass(0)
    mixed = Population(cfg, [0, 1], x, y)
    mixed.params.views["W3"][0].fill_(float("nan"))  # member 0 is broken from the start
    mixed.train_pass(0)
    assert torch.isnan(mixed.params.views["W3"][0]).all()
    torch.testing.assert_close(mixed.params.views["W3"][1], alone.params.views["W3"][0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("label", ["baseline", "shift"])
def test_a_member_does_not_depend_on_its_neighbours(label, usps):
    """Bit for bit: a member trained alone equals the same member inside a population (so a run split over
    processes writes the same records as one process)."""
    cfg = CONFIGS[label].replace(passes=1)
    x, y = usps.x_train[:400], usps.y_train[:400]
    alone, crowd = Population(cfg, [2], x, y), Population(cfg, [0, 1, 2, 3, 4], x, y)
    alone.train_pass(0)
    crowd.train_pass(0)
    for k, v in alone.params.views.items():
        assert torch.equal(v[0], crowd.params.views[k][2]), k
    a = alone.evaluate(usps.x_test, usps.y_test, keep_outputs=True)
    c = crowd.evaluate(usps.x_test, usps.y_test, keep_outputs=True)
    assert torch.equal(a.outputs[0], c.outputs[2]) and a.error[0] == c.error[2]
