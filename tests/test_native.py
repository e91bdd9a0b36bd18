"""The native (C) engine: against the reference loop for every rung and option, and its own guarantees:
a member's numbers do not depend on its neighbours, its lane, its group, the thread count or whether it trains
alone (bit for bit);
runs are deterministic; a diverging member leaves the others alone; a run resumes bit for bit from its
state_dict. Skipped only where no C compiler exists (then the engine reports itself unavailable)."""

import math
import os
import subprocess
import sys

import pytest
import torch

from repro.config import Config, ConfigError
from repro.engines.native import build as native_build
from repro.engines.native import engine as native
from repro.engines.native.engine import NativePopulation
from repro.engines.reference import evaluate, train_reference
from repro.net.metrics import exact_sum, is_wrong
from repro.net.model import forward, outputs
from tests.conftest import CONFIGS, FLOAT32_TOLERANCE, N_SUBSET, float32_comparable

pytestmark = pytest.mark.skipif(native_build._compiler() is None, reason="no C compiler: the native engine is unavailable")

FC40_PATCHES = [{}, {"optimizer": "adamw", "lr": 3e-4, "hidden_activation": "relu", "shift": 1},
                {"optimizer": "sdlm", "lr": 1e-3, "hidden_activation": "scaled_tanh", "output": "scaled_tanh_mse",
                 "init": "fan_in"},
                {"output": "softmax_ce", "optimizer": "sdlm", "lr": 1e-3},
                {"optimizer": "sdlm", "lr": 1e-3, "sdlm_curvature": "per_pass", "sdlm_estimate_patterns": 100,
                 "target": 0.8}]
OUTSIDE_THE_LADDER = [{"hidden_activation": "scaled_tanh"}, {"shift": 1, "shift_mode": "pad", "dropout": 0.5},
                      {"init": "fan_in", "lr": 0.1}, {"h2_scheme": "cyclic"},
                      {"hidden_activation": "scaled_tanh", "output": "scaled_tanh_mse", "optimizer": "sdlm", "lr": 1e-3,
                       "init": "fan_in"},
                      {"hidden_activation": "scaled_tanh", "output": "scaled_tanh_mse", "optimizer": "sdlm", "lr": 1e-3,
                       "init": "fan_in", "sdlm_curvature": "per_pass", "sdlm_estimate_patterns": 150, "shift": 1,
                       "dropout": 0.25},
                      {"target": 0.8, "output": "scaled_tanh_mse"}]


def test_the_kernel_builds_here():
    assert native.available() is None
    assert native.available("cpu") is None
    assert "CPU only" in native.available("cuda")


def _assert_params_close(got, ref, msg=""):
    for name, want in ref.items():
        torch.testing.assert_close(got[name], want.detach(), **FLOAT32_TOLERANCE, msg=f"{msg}: {name}")


@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_member_matches_reference_loop(label, usps, reference_run):
    cfg = float32_comparable(CONFIGS[label])
    x, y = usps.x_train[:N_SUBSET], usps.y_train[:N_SUBSET]
    ref = reference_run(cfg, N_SUBSET, 11)
    pop = NativePopulation(cfg, [3, 11, 5], x, y)  # the member of interest between two others
    for p in range(cfg.passes):
        pop.train_pass(p)
    _assert_params_close(pop.member_params(1), ref.params, label)
    ev = pop.evaluate(usps.x_test[:500], usps.y_test[:500])
    loss, err = evaluate(ref.params, usps.x_test[:500], usps.y_test[:500], cfg)
    assert ev.loss[1].item() == pytest.approx(loss, rel=1e-4, abs=1e-6)
    assert ev.error[1].item() == pytest.approx(err, abs=1.5 / 500)


@pytest.mark.parametrize("patch", OUTSIDE_THE_LADDER)
def test_options_outside_the_ladder_match(patch, usps, reference_run):
    cfg = Config(passes=1).replace(**patch)
    x, y = usps.x_train[:200], usps.y_train[:200]
    ref = reference_run(cfg, 200, 2)
    pop = NativePopulation(cfg, [2], x, y)
    pop.train_pass(0)
    _assert_params_close(pop.member_params(0), ref.params, str(patch))


@pytest.mark.parametrize("patch", FC40_PATCHES)
def test_fc40_matches_reference_loop(patch, usps):
    cfg = Config(architecture="fc40", passes=2).replace(**patch)
    x, y = usps.x_train[:150], usps.y_train[:150]
    ref = train_reference(cfg, x, y, x, y, seed=4)
    pop = NativePopulation(cfg, [1, 4], x, y)
    for p in range(cfg.passes):
        pop.train_pass(p)
    _assert_params_close(pop.member_params(1), ref.params, str(patch))
    ev = pop.evaluate(usps.x_test[:300], usps.y_test[:300], keep_outputs=True)
    want = outputs(cfg, forward(ref.params, usps.x_test[:300], cfg)).detach()
    torch.testing.assert_close(ev.outputs[1], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("patch", [{}, {"output": "softmax_ce", "hidden_activation": "relu"},
                                   {"hidden_activation": "scaled_tanh", "output": "scaled_tanh_mse"}])
def test_evaluation_matches_reference_forward_and_scoring(patch, usps):
    """Output values as the reference forward's; loss = exact sum of per-pattern losses; error by is_wrong."""
    cfg = Config().replace(**patch)
    pop = NativePopulation(cfg, [0, 1, 2], usps.x_train[:10], usps.y_train[:10])
    x, y = usps.x_test[:700], usps.y_test[:700]
    ev = pop.evaluate(x, y, keep_outputs=True)
    for m in range(3):
        pre = forward(pop.member_params(m), x, cfg)
        torch.testing.assert_close(ev.outputs[m], outputs(cfg, pre), atol=1e-5, rtol=1e-5)
        if cfg.output_activation:
            per = ((outputs(cfg, pre) - (torch.nn.functional.one_hot(y, 10) * 2.0 - 1.0)) ** 2).mean(dim=1)
        else:
            per = torch.nn.functional.cross_entropy(pre, y, reduction="none")
        assert ev.loss[m].item() == pytest.approx(exact_sum(per[None])[0].item() / len(y), rel=1e-5)
        assert ev.error[m].item() == is_wrong(ev.outputs[m], y).double().mean().item()


def test_ties_count_as_errors(usps):
    """Saturated tanh outputs tie at exactly 1.0: such a pattern is wrong (metrics.is_wrong)."""
    pop = NativePopulation(Config(), [0], usps.x_train[:10], usps.y_train[:10])
    k = pop.member_params(0)
    off = sum(v.numel() for name, v in k.items() if name not in ("out.weight", "out.bias"))
    pop.params[0, off:, 0] = 0.0
    pop.params[0, -10:, 0] = 50.0  # every output bias saturates its tanh at exactly 1.0
    ev = pop.evaluate(usps.x_test[:50], usps.y_test[:50], keep_outputs=True)
    assert torch.all(ev.outputs[0] == 1.0) and ev.error[0].item() == 1.0


def test_vectorized_tanh_is_within_a_few_ulp():
    """Output values of a net whose outputs are tanh of chosen pre-activations, against torch.tanh."""
    pre = torch.cat([torch.linspace(-12, 12, 20001), torch.logspace(-8, 1, 2000), -torch.logspace(-8, 1, 2000)])
    pre = torch.cat([pre, torch.zeros((-len(pre)) % 10)]).reshape(-1, 10)
    cfg = Config(architecture="fc40")
    pop = NativePopulation(cfg, [0], torch.zeros(1, 16, 16), torch.zeros(1, dtype=torch.int64))
    p = pop.params
    p.zero_()  # W1 = 0, b1 = 0 -> h = 0; W2 = 0; out bias = pre per pattern: one pattern at a time
    got = []
    for row in pre:
        p[0, -10:, 0] = row
        got.append(pop.evaluate(torch.zeros(1, 16, 16), torch.zeros(1, dtype=torch.int64), keep_outputs=True).outputs[0, 0])
    got = torch.stack(got)
    want = torch.tanh(pre)
    ulp = (want.abs().clamp_min(1e-30).log2().floor() - 23).exp2()
    assert ((got - want).abs() / ulp).max().item() <= 4
    assert torch.equal(got[pre.abs() > 9.1], want[pre.abs() > 9.1])  # saturates to exactly +-1 where torch does


@pytest.mark.parametrize("patch", [{}, {"optimizer": "adamw", "lr": 3e-4, "hidden_activation": "relu", "shift": 1,
                                        "dropout": 0.25},
                                   {"optimizer": "sdlm", "lr": 1e-3, "output": "softmax_ce"},
                                   {"architecture": "fc40", "optimizer": "sdlm", "lr": 1e-3}])
def test_a_member_does_not_depend_on_its_neighbours_lane_group_or_threads(patch, usps):
    """Bit for bit: seed 7 alone, as lane 2 of a population of 4, as lane 0 of the second group of 9, and
    with 1 or 2 threads."""
    cfg = Config(passes=1).replace(**patch)
    x, y = usps.x_train[:120], usps.y_train[:120]
    xt, yt = usps.x_test[:100], usps.y_test[:100]
    runs = [(NativePopulation(cfg, [7], x, y, threads=1), 0), (NativePopulation(cfg, [7], x, y, threads=2), 0),
            (NativePopulation(cfg, [1, 2, 7, 3], x, y), 2), (NativePopulation(cfg, [0, 1, 2, 3, 4, 5, 6, 8, 7], x, y), 8)]
    results = []
    for pop, m in runs:
        pop.train_pass(0)
        ev = pop.evaluate(xt, yt, keep_outputs=True)
        results.append((pop.member_params(m), ev.outputs[m], ev.loss[m].item(), ev.error[m].item()))
    p0, o0, l0, e0 = results[0]
    for p, o, loss, err in results[1:]:
        assert all(torch.equal(p0[k], p[k]) for k in p0)
        assert torch.equal(o0, o) and loss == l0 and err == e0


def test_runs_are_deterministic(usps):
    cfg = Config(passes=1, dropout=0.25, shift=1)
    x, y = usps.x_train[:100], usps.y_train[:100]
    a, b = NativePopulation(cfg, [0, 1], x, y), NativePopulation(cfg, [0, 1], x, y)
    a.train_pass(0)
    b.train_pass(0)
    assert torch.equal(a.params, b.params)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "sdlm"])
def test_a_diverging_member_does_not_touch_the_others(optimizer, usps):
    cfg = Config(passes=1, optimizer=optimizer, lr=0.03 if optimizer == "sgd" else 1e-3)
    x, y = usps.x_train[:150], usps.y_train[:150]
    alone = NativePopulation(cfg, [1], x, y)
    alone.train_pass(0)
    mixed = NativePopulation(cfg, [0, 1], x, y)
    mixed.params[0, :, 0] = float("nan")  # member 0 is broken from the start
    mixed.train_pass(0)
    assert torch.isnan(mixed.params[0, :, 0]).all()
    assert torch.equal(mixed.params[0, :, 1], alone.params[0, :, 0])
    ev = mixed.evaluate(usps.x_test[:50], usps.y_test[:50])
    assert math.isnan(ev.loss[0].item()) and math.isfinite(ev.loss[1].item())


@pytest.mark.parametrize("patch", [{"optimizer": "adamw", "lr": 3e-4, "dropout": 0.25, "shift": 1},
                                   {"optimizer": "sdlm", "lr": 1e-3, "lr_schedule": "linear"},
                                   {"architecture": "fc40"}])
def test_resume_from_state_dict_is_bit_for_bit(patch, usps):
    cfg = Config(passes=3).replace(**patch)
    x, y = usps.x_train[:80], usps.y_train[:80]
    straight = NativePopulation(cfg, [0, 5, 9], x, y)
    straight.train_pass(0)
    straight.train_pass(1)
    first = NativePopulation(cfg, [0, 5, 9], x, y)
    first.train_pass(0)
    state = first.state_dict()
    resumed = NativePopulation(cfg, [0, 5, 9], x, y)
    resumed.load_state_dict(state)
    resumed.train_pass(1)
    assert torch.equal(straight.params, resumed.params)
    for a, b in ((straight.state1, resumed.state1), (straight.state2, resumed.state2)):
        assert (a is None and b is None) or torch.equal(a, b)
    with pytest.raises(ValueError):
        NativePopulation(cfg, [0, 5], x, y).load_state_dict(state)


def _first_step_with_bias_correction_one(beta2: float) -> int:
    """Independently of the kernel: the first step t whose float32 sqrt(1 - beta2^t) is 1 (bisection)."""
    settled = lambda t: float(torch.tensor(math.pow(1.0 - math.pow(beta2, t), 0.5), dtype=torch.float32)) == 1.0
    lo, hi = 0, 1 << 40
    while hi - lo > 1:
        lo, hi = (lo, (lo + hi) // 2) if settled((lo + hi) // 2) else ((lo + hi) // 2, hi)
    return hi


@pytest.mark.parametrize("beta2", [0.999, 0.99, 0.9999])
def test_adamw_steps_settle_where_the_bias_correction_rounds_to_one(beta2, usps):
    x, y = usps.x_train[:4], usps.y_train[:4]
    pop = NativePopulation(Config(optimizer="adamw", lr=3e-4, adam_beta2=beta2), [0], x, y)
    assert pop.settled_from_step == _first_step_with_bias_correction_one(beta2)
    if beta2 == 0.999:  # the figure kernel.c's comment gives
        assert pop.settled_from_step == 16_628
    assert NativePopulation(Config(), [0], x, y).settled_from_step is None


def test_a_small_population_trains_alone_where_the_options_allow(usps):
    x, y = usps.x_train[:20], usps.y_train[:20]
    assert NativePopulation(Config(), [0], x, y, threads=2).trains_alone
    assert NativePopulation(Config(optimizer="adamw", lr=3e-4), [0, 1, 2, 3], x, y, threads=2).trains_alone
    assert not NativePopulation(Config(), list(range(16)), x, y, threads=2).trains_alone
    assert not NativePopulation(Config(), [0], x, y, lane_use="members").trains_alone
    assert NativePopulation(Config(), list(range(16)), x, y, lane_use="alone").trains_alone
    for patch in ({"optimizer": "sdlm", "lr": 1e-3}, {"architecture": "fc40"}):  # in the lanes: solo.c lacks them
        assert not NativePopulation(Config().replace(**patch), [0], x, y, lane_use="alone").trains_alone
    with pytest.raises(ValueError, match="lane_use"):
        NativePopulation(Config(), [0], x, y, lane_use="sideways")


def test_a_state_saved_in_other_lanes_resumes_bit_for_bit(usps):
    """A state_dict from an 8-lane kernel (members in the lanes) resumes in this machine's default kernel (alone,
    16 lanes where the CPU has AVX-512), and the other way round."""
    cfg = Config(passes=2, optimizer="adamw", lr=3e-4)
    x, y = usps.x_train[:60], usps.y_train[:60]
    eight = native_build.Build("x86-64-v3", 8)
    straight = NativePopulation(cfg, [0, 5, 9], x, y, build=eight, lane_use="members")
    for p in range(2):
        straight.train_pass(p)
    for first_build, first_use in ((eight, "members"), (None, "auto")):
        first = NativePopulation(cfg, [0, 5, 9], x, y, build=first_build, lane_use=first_use)
        first.train_pass(0)
        other = (None, "auto") if first_build else (eight, "members")
        resumed = NativePopulation(cfg, [0, 5, 9], x, y, build=other[0], lane_use=other[1])
        resumed.load_state_dict(first.state_dict())
        resumed.train_pass(1)
        for m in range(3):
            assert all(torch.equal(a, b) for a, b in zip(straight.member_params(m).values(),
                                                         resumed.member_params(m).values()))


def test_unknown_options_and_devices_are_refused(usps):
    """Config itself refuses a value outside its lists (the native engine implements every value in them)."""
    x, y = usps.x_train[:10], usps.y_train[:10]
    for field, value in [("optimizer", "rmsprop"), ("hidden_activation", "gelu"), ("output", "hinge"),
                         ("architecture", "lenet5"), ("shift_mode", "mirror"), ("h2_scheme", "random"),
                         ("lr_schedule", "cosine"), ("init", "xavier")]:
        with pytest.raises(ConfigError, match=field):
            Config(**{field: value})
    assert native.supports(Config()) is None
    with pytest.raises(ValueError, match="CPU"):
        NativePopulation(Config(), [0], x, y, device="cuda")


def test_without_a_compiler_import_works_and_the_engine_says_why(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CC"}
    env.update(PATH=str(tmp_path), LECUN1989_NATIVE_CACHE=str(tmp_path / "cache"))
    code = "import repro.engines.native.engine as n; r = n.available(); print(r); assert r and 'compiler' in r"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_a_native_run_does_not_import_the_population_engine():
    """What members share (generators, initial weights, images, draws) comes from repro.engines.members: a native
    population trains and evaluates without the torch lockstep engine loaded."""
    code = ("import sys, torch\n"
            "from repro.config import Config\n"
            "from repro.engines.native.engine import NativePopulation\n"
            "x, y = torch.rand(8, 16, 16) * 2 - 1, torch.arange(8) % 10\n"
            "pop = NativePopulation(Config(passes=1, dropout=0.5, shift=1), [0, 1], x, y)\n"
            "pop.train_pass(0)\n"
            "pop.evaluate(x, y)\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('repro.engines.population'))\n"
            "assert not loaded, loaded\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
