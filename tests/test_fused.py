"""The fused engine (one Triton kernel launch per pass) against the plain reference loop and the population
engine; its per-rung equivalence test is test_engine's, which runs every engine.

On CPU the kernel runs in Triton's interpreter (conftest chooses it before anything imports Triton), so CI
checks the kernel's arithmetic on every rung without a GPU. The same tests run on CUDA, compiled, where a
device is present (`pytest -k cuda tests/test_fused.py tests/test_engine.py` on the GPU machine); without one those cases are skipped.
"""

import json

import pytest
import torch

pytest.importorskip("triton", reason="the fused engine's tests need Triton (`pip install triton`)")

from repro.config import Config  # noqa: E402
from repro.engines.population import Population  # noqa: E402
from repro.engines.fused import (  # noqa: E402
    FUSED_LAYOUT,
    FUSED_ROW,
    FusedEngineError,
    FusedGroup,
    FusedPopulation,
    pack,
    unpack,
)
from repro.study.ladder import PlannedConfig, Rung  # noqa: E402
from repro.engines.reference import train_reference  # noqa: E402
from repro.study.runner import RunContext, run_planned  # noqa: E402

from .test_engine import CONFIGS, DEVICES  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("patch", [{"hidden_activation": "scaled_tanh", "output": "scaled_tanh_mse", "init": "fan_in"},
                                   {"h2_scheme": "cyclic", "shift": 1, "shift_mode": "pad", "dropout": 0.5}])
def test_fused_options_outside_the_ladder(patch, device, usps):
    cfg = Config(passes=1).replace(**patch)
    x, y = usps.x_train[:60], usps.y_train[:60]
    ref = train_reference(cfg, x, y, x, y, seed=2)
    pop = FusedPopulation(cfg, [2], x, y, device=device)
    pop.train_pass(0)
    for name, want in ref.params.items():
        torch.testing.assert_close(pop.member_params(0)[name], want.detach(), atol=2e-5, rtol=1e-4)


def test_padding_stays_zero_and_layout_round_trips(usps):
    cfg = CONFIGS["dropout"]  # AdamW's weight decay and moments touch every entry they are given
    pop = FusedPopulation(cfg, [0, 1], usps.x_train[:40], usps.y_train[:40])
    pop.train_pass(0)
    real = torch.zeros(FUSED_ROW, dtype=torch.bool)
    ones = {k: torch.ones_like(v[:1]) for k, v in pop.params.views.items()}
    marks = torch.zeros(1, FUSED_ROW)
    pack(ones, marks)
    real = marks[0] == 1
    assert int(real.sum()) == sum(v[0].numel() for v in pop.params.views.values())
    for buf in (pop.packed, pop.packed_avg, pop.packed_avg_sq):
        assert torch.count_nonzero(buf[:, ~real]) == 0
    assert torch.count_nonzero(pop.packed_avg_sq[:, real]) > 0  # the moments were really used
    views = {k: torch.empty_like(v) for k, v in pop.params.views.items()}
    unpack(pop.packed, views)
    assert all(torch.equal(views[k], pop.params.views[k]) for k in views)
    assert set(FUSED_LAYOUT) == set(pop.params.views)


def test_fused_member_does_not_depend_on_its_neighbours(usps):
    cfg = CONFIGS["shift"].replace(passes=1)
    x, y = usps.x_train[:50], usps.y_train[:50]
    alone, crowd = FusedPopulation(cfg, [2], x, y), FusedPopulation(cfg, [0, 2, 4], x, y)
    alone.train_pass(0)
    crowd.train_pass(0)
    for k, v in alone.params.views.items():
        assert torch.equal(v[0], crowd.params.views[k][1]), k


def test_unsupported_configs_are_refused_with_the_way_out(usps):
    with pytest.raises(FusedEngineError, match="optimizer = 'sdlm'.*--engine population"):
        FusedPopulation(Config(optimizer="sdlm", lr=1e-3), [0], usps.x_train[:10], usps.y_train[:10])
    with pytest.raises(FusedEngineError, match="architecture = 'fc40'"):
        FusedPopulation(Config(architecture="fc40"), [0], usps.x_train[:10], usps.y_train[:10])


def _small(ds, n):
    return type(ds)(ds.name, ds.x_train[:n], ds.y_train[:n], ds.x_test[:200], ds.y_test[:200], ds.fingerprint)


def test_runner_records_the_engine_and_falls_back_where_fused_cannot_run(usps, tmp_path, capsys):
    ds = _small(usps, 40)
    rung = Rung(0, "baseline", "test", "", "test")
    fused = PlannedConfig("baseline", rung, Config(passes=2))
    [path] = run_planned(fused, ds, [5], RunContext(tmp_path / "a", engine="fused"))
    rec = json.loads(path.read_text())
    [path] = run_planned(fused, ds, [5], RunContext(tmp_path / "b", engine="population"))
    plain = json.loads(path.read_text())
    assert rec["engine"] == "fused" and plain["engine"] == "population"
    for key in ("train_loss", "test_loss"):
        assert rec[key] == pytest.approx(plain[key], rel=1e-4)
    sdlm = PlannedConfig("sdlm", rung, Config(passes=1, optimizer="sdlm", lr=1e-3))
    [path] = run_planned(sdlm, ds, [5], RunContext(tmp_path / "c", engine="fused"))
    assert json.loads(path.read_text())["engine"] == "population"
    assert "does not implement optimizer = 'sdlm'" in capsys.readouterr().err


def test_fused_and_population_engines_agree_on_a_population(usps):
    """Several members at once, compared member by member with the population engine."""
    cfg = CONFIGS["lr-decay"]
    x, y = usps.x_train[:60], usps.y_train[:60]
    a, b = Population(cfg, [0, 1, 2], x, y), FusedPopulation(cfg, [0, 1, 2], x, y)
    for p in range(2):
        a.train_pass(p)
        b.train_pass(p)
    torch.testing.assert_close(b.params.flat, a.params.flat, atol=2e-5, rtol=1e-4)
    assert a.step_count == b.step_count == 120


def test_kernel_compiles_for_the_gpu_without_one():
    """The real GPU compilation (Triton -> PTX -> cubin for sm_90, with Triton's own ptxas): errors the
    interpreter cannot see (shapes or ops the GPU backend rejects) fail here. Run in a fresh process: this
    one has Triton in interpreter mode."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-m", "repro.engines.kernel_check", "--arch", "90"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train_pass_kernel: sm_90" in done.stdout and "registers/thread" in done.stdout


def test_a_group_of_configs_and_datasets_trains_each_as_alone(usps, mnist16):
    """Heterogeneous members in one launch: different rungs (activation, optimizer, dropout, shifts, output)
    and both datasets, at different passes, some left out of a launch; each population ends bit for bit
    where it ends trained alone."""
    n = 30
    specs = [(CONFIGS["baseline"], [0, 1], usps), (CONFIGS["shift"], [2], mnist16), (CONFIGS["softmax-ce"], [3], usps),
             (CONFIGS["lr-decay"], [4], mnist16)]
    make = lambda: [FusedPopulation(c, s, d.x_train[:n], d.y_train[:n]) for c, s, d in specs]  # noqa: E731
    grouped, alone = make(), make()
    schedule = [[0, 0, None, 0], [1, 1, 0, None], [None, 2, 1, 1]]
    group = FusedGroup(grouped, draw_ahead=True)  # as on a GPU: next passes drawn in worker threads
    for passes in schedule:
        group.train_pass(passes)
        for pop, k in zip(alone, passes):
            if k is not None:
                pop.train_pass(k)
    for g, a in zip(grouped, alone):
        assert g.step_count == a.step_count
        assert torch.equal(g.params.flat, a.params.flat), g.cfg
        if g.cfg.optimizer == "adamw":
            assert torch.equal(g.optimizer.exp_avg_sq, a.optimizer.exp_avg_sq)


def test_run_together_writes_the_records_of_one_by_one_runs(usps, tmp_path):
    """`ablate --engine fused`'s way: every population in one launch per pass, records written as each
    finishes; the same numbers as running each configuration alone, and unsupported ones fall back."""
    from repro.study.runner import run_together

    ds = _small(usps, 30)
    rung = Rung(0, "r", "test", "", "test")
    jobs = [(PlannedConfig("a", rung, CONFIGS["baseline"].replace(passes=1)), ds),
            (PlannedConfig("b", rung, CONFIGS["dropout"].replace(passes=2)), ds),
            (PlannedConfig("c", rung, Config(passes=1, optimizer="sdlm", lr=1e-3)), ds)]
    run_together(jobs, [0, 1], RunContext(tmp_path / "together", engine="fused"))
    for planned, _ in jobs:
        alone = run_planned(planned, ds, [0, 1], RunContext(tmp_path / "alone", engine="fused"))
        for path in alone:
            want = json.loads(path.read_text())
            got = json.loads((tmp_path / "together" / path.relative_to(tmp_path / "alone")).read_text())
            assert got["engine"] == want["engine"] == ("population" if planned.label == "c" else "fused")
            for key in ("train_loss", "train_error", "test_loss", "test_error", "final"):
                assert got[key] == want[key], (planned.label, key)


def test_passes_out_of_order_are_refused(usps):
    """The next pass's draws are made ahead; asking for another pass would silently change the random stream."""
    pop = FusedPopulation(CONFIGS["dropout"], [0], usps.x_train[:8], usps.y_train[:8])
    group = FusedGroup([pop], draw_ahead=True)
    group.train_pass([0])
    with pytest.raises(RuntimeError, match="pass 1 was drawn ahead, but pass 0 was asked for"):
        group.train_pass([0])


def test_layout_matches_the_kernels_offsets():
    """The kernel's constexpr copies are made from fused_layout, the host's one source."""
    from repro.engines import fused_kernel as kernel
    from repro.engines import fused_layout as layout

    names = ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    assert [FUSED_LAYOUT[n][0] for n in names] == [getattr(kernel, f"O_{n.upper()}").value for n in names]
    assert kernel.ROW.value == FUSED_ROW == sum(rows * cols for _, rows, cols in FUSED_LAYOUT.values())
    assert kernel.N_INT.value == layout.N_INT and kernel.I_CONN.value == layout.I_CONN
    assert kernel.MSE_GRAD_SCALE.value == 2.0 / 10.0 and kernel.SCALED_TANH_A.value == 1.7159


def test_settings_the_kernel_does_not_implement_are_refused_on_the_host():
    from repro.engines import fused_layout as layout

    assert layout.code("optimizer", "adamw") == layout.OPT_ADAMW
    with pytest.raises(ValueError, match="does not implement optimizer = 'sdlm'"):
        layout.code("optimizer", "sdlm")


def test_state_dict_continues_bit_for_bit(usps):
    """2 passes straight == 1 pass, state saved, a new population loaded, 1 more pass; also with the next
    pass's draws made ahead (as on a GPU), which the saved generator states must not include."""
    import io

    cfg = CONFIGS["dropout"]  # AdamW moments and a random stream that moves every pass
    x, y = usps.x_train[:12], usps.y_train[:12]
    straight = FusedPopulation(cfg, [0, 1], x, y)
    for p in range(2):
        straight.train_pass(p)
    first = FusedPopulation(cfg, [0, 1], x, y)
    FusedGroup([first], draw_ahead=True).train_pass([0])
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    resumed = FusedPopulation(cfg, [0, 1], x, y)
    resumed.load_state_dict(torch.load(buf))
    resumed.train_pass(1)
    assert torch.equal(resumed.params.flat, straight.params.flat)
    assert torch.equal(resumed.optimizer.exp_avg_sq, straight.optimizer.exp_avg_sq)
