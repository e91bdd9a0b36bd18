"""The fused engine (one Triton kernel launch per pass) against the plain reference loop and the population
engine; its per-rung equivalence test for the main ladder is test_engine's, which runs every engine.

On CPU the kernel runs in Triton's interpreter (conftest chooses it before anything imports Triton), so CI
checks the kernel's arithmetic on every rung without a GPU. Every test that trains runs on each device of
DEVICES: on CUDA, compiled, where a device is present (`pytest -k cuda tests/test_fused.py tests/test_engine.py`
on the GPU machine, as scripts/gpu-check.sh does); without one those cases are skipped. The interpreter is
slow (about 25 member-steps/s), so the tests train a few members on a few dozen patterns.
"""

import importlib.util
import json

import pytest
import torch

pytest.importorskip("triton", reason="the fused engine's tests need Triton (`pip install triton`)")

from repro.config import Config  # noqa: E402
from repro.engines import codes  # noqa: E402
from repro.engines.fused import layout  # noqa: E402
from repro.engines.fused.population import (  # noqa: E402
    FusedEngineError,
    FusedFCPopulation,
    FusedGroup,
    FusedPopulation,
    pack,
    supports,
    unpack,
)
from repro.engines.population import Population  # noqa: E402
from repro.engines.population.lockstep import ENGINE_FROM_REFERENCE_192, flat_views  # noqa: E402
from repro.engines.reference import train_reference  # noqa: E402
from repro.jobs.ladder import DEFAULT_LADDER_DIR, MODES, PlannedConfig, Rung, extra_rungs, load_rungs, plan  # noqa: E402
from repro.jobs.runner import RunContext, train_configuration  # noqa: E402

from tests.conftest import CONFIGS, DEVICES, REPO  # noqa: E402

FAITHFUL_DIR = DEFAULT_LADDER_DIR / "faithful"
# what the kernel does not do (a small curvature window: the fallback engine is quick)
PER_PASS = Config(passes=1, optimizer="sdlm", lr=1e-3, sdlm_curvature="per_pass", sdlm_estimate_patterns=4)


def faithful_configs() -> dict:
    planned = plan(load_rungs(FAITHFUL_DIR), "cumulative", None, extra_rungs(FAITHFUL_DIR))
    planned += plan(load_rungs(FAITHFUL_DIR), "cumulative", [r.name for r in extra_rungs(FAITHFUL_DIR)],
                    extra_rungs(FAITHFUL_DIR))
    return {p.label: p.config.replace(passes=2) for p in planned}


FAITHFUL = faithful_configs()
# The faithful ladder's top rungs hold every option the main ladder (test_engine) does not: SDLM, the scaled
# tanh and literal init (alone also in test_fused_options_outside_the_ladder), the target magnitude, and fc40.
FAITHFUL_TOP = ["target-1.2", "fc40"]


def assert_members_match_reference(pop, seeds, cfg, x, y, member):
    ref = train_reference(cfg, x, y, x, y, seed=seeds[member])
    got = pop.member_params(member)
    for name, want in ref.params.items():
        torch.testing.assert_close(got[name], want.detach(), atol=2e-5, rtol=1e-4, msg=name)
    if cfg.optimizer == "sdlm":  # the running curvature too
        h = pop._to_reference({k: v[member].cpu() for k, v in flat_views(pop.optimizer.h, pop.members, pop.SHAPES).items()})
        for name, p in ref.params.items():
            torch.testing.assert_close(h[name], ref.optimizer.state[p]["h"], atol=2e-6, rtol=1e-4, msg=f"h of {name}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("label", FAITHFUL_TOP)
def test_faithful_ladder_matches_reference_loop(label, device, usps):
    """SDLM (its running curvature included) in both nets, the scaled tanh, literal init and the target
    magnitude: a member beside another, over 2 passes (SDLM's h is set from the first step only), ends where
    the reference loop ends."""
    cfg = FAITHFUL[label]
    x, y = usps.x_train[:20], usps.y_train[:20]
    pop = FusedPopulation(cfg, [3, 11], x, y, device=device)
    assert isinstance(pop, FusedFCPopulation) == (cfg.architecture == "fc40")
    for p in range(cfg.passes):
        pop.train_pass(p)
    assert_members_match_reference(pop, [3, 11], cfg, x, y, member=1)


def test_every_configuration_of_both_ladders_runs_fused():
    """Every configuration of both ladders (extras included), in every mode but guesses, is one the kernel
    implements, so a fused job trains them all together."""
    for directory in (DEFAULT_LADDER_DIR, FAITHFUL_DIR):
        rungs, extras = load_rungs(directory), extra_rungs(directory)
        names = [r.name for r in rungs + extras]
        for mode in (m for m in MODES if m != "guesses"):
            for p in plan(rungs, mode, names if mode == "cumulative" else None, extras):
                assert supports(p.config) is None, (directory.name, mode, p.label)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("patch", [{"hidden_activation": "scaled_tanh", "output": "scaled_tanh_mse", "init": "fan_in"},
                                   {"h2_scheme": "cyclic", "shift": 1, "shift_mode": "pad", "dropout": 0.5},
                                   {"optimizer": "sdlm", "lr": 1e-3, "dropout": 0.5, "output": "softmax_ce"}])
def test_fused_options_outside_the_ladder(patch, device, usps):
    cfg = Config(passes=1).replace(**patch)
    x, y = usps.x_train[:30], usps.y_train[:30]
    ref = train_reference(cfg, x, y, x, y, seed=2)
    pop = FusedPopulation(cfg, [2], x, y, device=device)
    pop.train_pass(0)
    for name, want in ref.params.items():
        torch.testing.assert_close(pop.member_params(0)[name], want.detach(), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cfg", [CONFIGS["dropout"], FAITHFUL["paper"], FAITHFUL["fc40"]], ids=["adamw", "sdlm", "fc40"])
def test_padding_stays_zero_and_layout_round_trips(cfg, device, usps):
    """AdamW's weight decay and moments, and SDLM's h, touch every entry they are given: only real ones are."""
    pop = FusedPopulation(cfg, [0, 1], usps.x_train[:12], usps.y_train[:12], device=device)
    pop.train_pass(0)
    arch = cfg.architecture
    ones = {k: torch.ones_like(v[:1]) for k, v in pop.params.views.items()}
    marks = torch.zeros(1, layout.ROW, device=device)
    pack(ones, marks, arch)
    real = marks[0] == 1
    assert int(real.sum()) == sum(v[0].numel() for v in pop.params.views.values())
    for buf in (pop.packed, pop.packed_avg, pop.packed_avg_sq):
        assert torch.count_nonzero(buf[:, ~real]) == 0
    assert torch.count_nonzero(pop.packed_avg[:, real]) > 0  # the moments (or h) were really used
    views = {k: torch.empty_like(v) for k, v in pop.params.views.items()}
    unpack(pop.packed, views, arch)
    assert all(torch.equal(views[k], pop.params.views[k]) for k in views)
    assert set(layout.LAYOUTS[arch]) == set(pop.params.views)


@pytest.mark.parametrize("device", DEVICES)
def test_fused_member_does_not_depend_on_its_neighbours(device, usps):
    cfg = CONFIGS["shift"].replace(passes=1)
    x, y = usps.x_train[:30], usps.y_train[:30]
    alone, crowd = FusedPopulation(cfg, [2], x, y, device=device), FusedPopulation(cfg, [0, 2, 4], x, y, device=device)
    alone.train_pass(0)
    crowd.train_pass(0)
    for k, v in alone.params.views.items():
        assert torch.equal(v[0], crowd.params.views[k][1]), k


def test_unsupported_configs_are_refused_with_the_way_out(usps):
    with pytest.raises(FusedEngineError, match="sdlm_curvature = 'per_pass'.*--engine population"):
        FusedPopulation(PER_PASS, [0], usps.x_train[:10], usps.y_train[:10])


def _small(ds, n):
    return type(ds)(ds.name, ds.x_train[:n], ds.y_train[:n], ds.x_test[:200], ds.y_test[:200], ds.fingerprint)


@pytest.mark.parametrize("device", DEVICES)
def test_runner_records_the_engine_and_falls_back_where_fused_cannot_run(device, usps, tmp_path, capsys):
    ds = _small(usps, 30)
    rung = Rung(0, "baseline", "test", "", "test")
    fused = PlannedConfig("baseline", rung, Config(passes=2))
    dev = torch.device(device)
    [path] = train_configuration(fused, ds, [5], RunContext(tmp_path / "a", device=dev, engine="fused"))
    rec = json.loads(path.read_text())
    [path] = train_configuration(fused, ds, [5], RunContext(tmp_path / "b", device=dev, engine="population"))
    plain = json.loads(path.read_text())
    assert rec["engine"] == "fused" and plain["engine"] == "population"
    for key in ("train_loss", "test_loss"):
        assert rec[key] == pytest.approx(plain[key], rel=1e-4)
    per_pass = PlannedConfig("per-pass", rung, PER_PASS)
    [path] = train_configuration(per_pass, _small(usps, 8), [5], RunContext(tmp_path / "c", device=torch.device(device),
                                                                    engine="fused"))
    assert json.loads(path.read_text())["engine"] == "population"
    assert "does not implement sdlm_curvature = 'per_pass'" in capsys.readouterr().err


@pytest.mark.parametrize("device", DEVICES)
def test_fused_and_population_engines_agree_on_a_population(device, usps):
    """Several members at once, compared member by member with the population engine."""
    cfg = CONFIGS["lr-decay"]
    x, y = usps.x_train[:30], usps.y_train[:30]
    a, b = Population(cfg, [0, 1, 2], x, y, device=device), FusedPopulation(cfg, [0, 1, 2], x, y, device=device)
    for p in range(2):
        a.train_pass(p)
        b.train_pass(p)
    torch.testing.assert_close(b.params.flat, a.params.flat, atol=2e-5, rtol=1e-4)
    assert a.step_count == b.step_count == 60


def test_kernel_compiles_for_the_gpu_without_one():
    """The real GPU compilation (Triton -> PTX -> cubin for sm_90, with Triton's own ptxas, the JIT's
    specialization): errors the interpreter cannot see (shapes or ops the GPU backend rejects) fail here. Run
    in a fresh process: this one has Triton in interpreter mode."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "kernel_check.py"), "--arch", "90"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train_pass_kernel: sm_90" in done.stdout and "registers/thread" in done.stdout
    assert "spills" in done.stdout and "barriers" in done.stdout


@pytest.mark.parametrize("device", DEVICES)
def test_the_kernels_arguments_are_what_kernel_check_compiles_for(device, usps, monkeypatch):
    """kernel_check compiles the binary a launch runs only if it assumes the launch's argument types and
    16-byte alignment (the JIT specializes on both): checked on a real launch's arguments."""
    from repro.engines.fused.kernel import train_pass_kernel

    spec = importlib.util.spec_from_file_location("kernel_check", REPO / "scripts" / "kernel_check.py")
    kernel_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kernel_check)

    pops = [FusedPopulation(cfg, [0], usps.x_train[:2], usps.y_train[:2], device=device)
            for cfg in (CONFIGS["dropout"], FAITHFUL["fc40"])]
    group = FusedGroup(pops)
    seen = {}
    monkeypatch.setattr(group, "kernel", {(2,): lambda *args, **kw: seen.update(zip(train_pass_kernel.arg_names, args))})
    group.train_pass([0, 0])
    sig, attrs = kernel_check.signature(train_pass_kernel)
    dtypes = {torch.float32: "*fp32", torch.int32: "*i32", torch.uint8: "*u8"}
    for name, value in seen.items():
        if isinstance(value, torch.Tensor):
            assert dtypes[value.dtype] == sig[name], name
            assert value.is_contiguous() and value.data_ptr() % kernel_check.ALIGNED == 0, name
        else:
            assert sig[name] == "i32" and isinstance(value, int), name


@pytest.mark.parametrize("device", DEVICES)
def test_a_group_of_configs_and_datasets_trains_each_as_alone(device, usps, mnist16):
    """Heterogeneous members in one launch: different rungs of both ladders (activation, optimizer, SDLM,
    dropout, shifts, output, target, fc40) and both datasets, at different passes, some left out of a launch;
    each population ends bit for bit where it ends trained alone (SDLM's h and AdamW's moments too)."""
    n = 16
    specs = [(CONFIGS["baseline"], [0, 1], usps), (CONFIGS["shift"], [2], mnist16), (CONFIGS["softmax-ce"], [3], usps),
             (CONFIGS["dropout"], [4], mnist16), (FAITHFUL["target-1.2"], [5], usps), (FAITHFUL["fc40"], [6], mnist16),
             (CONFIGS["relu"].replace(architecture="fc40"), [7], usps)]
    make = lambda: [FusedPopulation(c, s, d.x_train[:n], d.y_train[:n], device=device) for c, s, d in specs]  # noqa: E731
    grouped, alone = make(), make()
    schedule = [[0, 0, None, 0, 0, 0, None], [1, 1, 0, None, 1, None, 0], [None, 2, 1, 1, None, 1, 1]]
    group = FusedGroup(grouped, draw_ahead=True)  # as on a GPU: next passes drawn while the launch runs
    for passes in schedule:
        group.train_pass(passes)
        for pop, k in zip(alone, passes):
            if k is not None:
                pop.train_pass(k)
    for g, a in zip(grouped, alone):
        assert g.step_count == a.step_count
        assert torch.equal(g.params.flat, a.params.flat), g.cfg
        for mine, theirs in zip(g._optimizer_buffers(), a._optimizer_buffers()):
            assert torch.equal(mine[0], theirs[0]), g.cfg


@pytest.mark.parametrize("device", DEVICES)
def test_run_together_writes_the_records_of_one_by_one_runs(device, usps, tmp_path):
    """`ablate --engine fused`'s way: every population in one launch per pass, records written as each
    finishes; the same numbers as running each configuration alone, and unsupported ones fall back."""
    from repro.jobs.runner import train_configurations_in_one_launch

    ds = _small(usps, 20)
    rung = Rung(0, "r", "test", "", "test")
    jobs = [(PlannedConfig("a", rung, CONFIGS["baseline"].replace(passes=1)), ds),
            (PlannedConfig("b", rung, CONFIGS["dropout"].replace(passes=2)), ds),
            (PlannedConfig("c", rung, FAITHFUL["fc40"].replace(passes=1)), ds),
            (PlannedConfig("d", rung, PER_PASS), _small(usps, 8))]
    dev = torch.device(device)
    train_configurations_in_one_launch(jobs, [0, 1], RunContext(tmp_path / "together", device=dev, engine="fused"))
    for planned, data in jobs:
        alone = train_configuration(planned, data, [0, 1], RunContext(tmp_path / "alone", device=dev, engine="fused"))
        for path in alone:
            want = json.loads(path.read_text())
            got = json.loads((tmp_path / "together" / path.relative_to(tmp_path / "alone")).read_text())
            assert got["engine"] == want["engine"] == ("population" if planned.label == "d" else "fused")
            for key in ("train_loss", "train_error", "test_loss", "test_error", "final"):
                assert got[key] == want[key], (planned.label, key)


@pytest.mark.parametrize("device", DEVICES)
def test_passes_out_of_order_are_refused(device, usps):
    """The next pass's draws are made ahead; asking for another pass would silently change the random stream."""
    pop = FusedPopulation(CONFIGS["dropout"], [0], usps.x_train[:4], usps.y_train[:4], device=device)
    group = FusedGroup([pop], draw_ahead=True)
    group.train_pass([0])
    with pytest.raises(RuntimeError, match="pass 1 was drawn ahead, but pass 0 was asked for"):
        group.train_pass([0])


def test_draws_are_the_population_engines_as_bits(usps):
    """The masks travel as bits in the reference's order; unpacked, reordered and scaled as the kernel does,
    they are bit for bit Population's dropout scales, and the image rows its rows (members drawn in threads)."""
    cfg = Config(dropout=0.25, shift=1)
    x, y = usps.x_train[:50], usps.y_train[:50]
    fused, plain = FusedPopulation(cfg, [0, 1, 2, 3], x, y), Population(cfg, [0, 1, 2, 3], x, y)
    for _ in range(2):  # the streams stay in step from pass to pass
        rows, bits = fused._draw_pass()
        want_rows, want_scale = plain._draw_pass()
        assert bits.dtype == torch.uint8 and bits.shape == (4, 50, layout.KEEP_BYTES)
        assert torch.equal(rows.long(), want_rows)
        kept = (bits.unsqueeze(-1) >> torch.arange(8, dtype=torch.uint8)) & 1  # bit b of byte j: entry 8j + b
        kept = kept.reshape(4, 50, 192)[:, :, ENGINE_FROM_REFERENCE_192].bool()
        from repro.engines.members import keep_scale

        scale = torch.where(kept, torch.tensor(keep_scale(cfg)), torch.tensor(0.0))
        assert torch.equal(scale, want_scale)


@pytest.mark.parametrize("device", DEVICES)
def test_the_benchs_timed_pass_draws_once_and_times_the_kernel(device, usps, monkeypatch):
    """bench.fused_pass_seconds: one pass's draws and no next pass's (a GPU group draws ahead by default), and
    the kernel's time beside the wall time."""
    from repro.jobs import bench

    calls = []
    original = FusedPopulation._draw_pass
    monkeypatch.setattr(FusedPopulation, "_draw_pass", lambda self: calls.append(1) or original(self))
    ds = _small(usps, 4)
    wall, kernel = bench.fused_pass_seconds(CONFIGS["dropout"], ds, 1, 4, torch.device(device))
    assert len(calls) == 1
    assert 0 < kernel <= wall


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cfg", [CONFIGS["dropout"], FAITHFUL["paper"].replace(dropout=0.25)], ids=["adamw", "sdlm"])
def test_state_dict_continues_bit_for_bit(cfg, device, usps):
    """2 passes straight == 1 pass, state saved, a new population loaded, 1 more pass; also with the next
    pass's draws made ahead (as on a GPU), which the saved generator states must not include. SDLM: h comes
    back, and is averaged into (not set from the resumed pass's first step)."""
    import io

    cfg = cfg.replace(passes=2)
    x, y = usps.x_train[:8], usps.y_train[:8]
    straight = FusedPopulation(cfg, [0, 1], x, y, device=device)
    for p in range(2):
        straight.train_pass(p)
    first = FusedPopulation(cfg, [0, 1], x, y, device=device)
    FusedGroup([first], draw_ahead=True).train_pass([0])
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    resumed = FusedPopulation(cfg, [0, 1], x, y, device=device)
    resumed.load_state_dict(torch.load(buf))
    resumed.train_pass(1)
    assert torch.equal(resumed.params.flat, straight.params.flat)
    for mine, theirs in zip(resumed._optimizer_buffers(), straight._optimizer_buffers()):
        assert torch.equal(mine[0], theirs[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_more_members_than_the_gpu_has_sms_cuda(usps):
    """A launch of more programs than SMs runs in waves: members of the second wave (the same seeds as some
    of the first) end bit for bit where their twins do, and every member where the population engine ends."""
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    seeds = list(range(sms + 1)) * 2  # e.g. 266 members on an H100 (132 SMs)
    cfg = CONFIGS["dropout"].replace(passes=1)
    x, y = usps.x_train[:20], usps.y_train[:20]
    fused, plain = FusedPopulation(cfg, seeds, x, y, device="cuda"), Population(cfg, seeds, x, y, device="cuda")
    fused.train_pass(0)
    plain.train_pass(0)
    half = sms + 1
    for k, v in fused.params.views.items():
        assert torch.equal(v[:half], v[half:]), k
    torch.testing.assert_close(fused.params.flat, plain.params.flat, atol=2e-5, rtol=1e-4)


def test_layout_matches_the_kernels_offsets():
    """The kernel's constexpr copies are made from fused_layout, the host's one source."""
    from repro.engines.fused import kernel

    value = lambda c: getattr(c, "value", c)  # noqa: E731  (constexpr compiled, plain int interpreted)
    names = ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    assert [layout.LAYOUTS["net1989"][n][0] for n in names] == [value(getattr(kernel, f"O_{n.upper()}")) for n in names]
    assert [layout.LAYOUTS["fc40"][n][0] for n in names[:4]] == [value(getattr(kernel, f"FC_{n.upper()}")) for n in names[:4]]
    for arch, tensors in layout.LAYOUTS.items():
        assert layout.ROW >= sum(rows * cols for _, rows, cols in tensors.values()), arch
    assert value(kernel.ROW) == layout.ROW
    assert value(kernel.N_INT) == layout.N_INT and value(kernel.I_SCHEDULE) == layout.I_SCHEDULE
    assert value(kernel.N_FLOAT) == layout.N_FLOAT and value(kernel.F_TARGET) == layout.F_TARGET
    assert value(kernel.MSE_GRAD_SCALE) == 2.0 / 10.0 and value(kernel.SCALED_TANH_A) == 1.7159
    assert layout.H2_CHUNKS * layout.H2_CHUNK >= layout.H2_ENTRIES and layout.KEEP_BYTES * 8 == 192


def test_settings_the_kernel_does_not_implement_are_refused_on_the_host():
    assert codes.code("optimizer", "sdlm") == codes.OPTIMIZERS["sdlm"]
    assert codes.code("architecture", "fc40") == codes.ARCHITECTURES["fc40"]
    per_pass = Config(optimizer="sdlm", sdlm_curvature="per_pass")
    assert "sdlm_curvature = 'per_pass'" in supports(per_pass)
    with pytest.raises(FusedEngineError, match="sdlm_curvature = 'per_pass'"):
        FusedPopulation(per_pass, [0], torch.zeros(4, 16, 16), torch.zeros(4, dtype=torch.int64))
