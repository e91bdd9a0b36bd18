"""The generic engine (autograd in lockstep) and rungs with their own code (repro.rung_code): a member
equals the reference loop on the stock net, does not depend on its neighbours, the hooks run, and bad code
stops before any training with the rung and the hook named."""

import os
import textwrap
from pathlib import Path

import pytest
import torch

from repro.config import Config, ConfigError
from repro.engines import registry
from repro.engines.generic import generic_class
from repro.engines.reference import evaluate, train_reference
from repro.jobs.ladder import extra_rungs, load_rungs, plan
from repro.rung_code import RungCodeError
from tests.conftest import assert_params_match_in_float64, float64

REPO = Path(__file__).resolve().parents[1]
BASELINE = (REPO / "ablations" / "00-baseline.toml").read_text()

# tanh-based configs for the two-pass comparison; ReLU ones below run one short pass
TANH_CASES = {
    "sgd": {},
    "adamw": {"optimizer": "adamw", "lr": 3e-4},
    "linear-lr": {"lr_schedule": "linear"},
    "dropout": {"dropout": 0.25},
    "shift": {"shift": 1},
    "softmax-ce": {"output": "softmax_ce"},
}
RELU_CASES = {"relu-sgd": {"hidden_activation": "relu"},
              "relu-adamw": {"hidden_activation": "relu", "optimizer": "adamw", "lr": 3e-4}}


def _train(cfg, seeds, x, y, passes=None):
    pop = generic_class(cfg.architecture)(cfg, seeds, x, y)
    for p in range(passes or cfg.passes):
        pop.train_pass(p)
    return pop


def _assert_matches_reference(cfg, x, y, usps):
    """A member of cfg (with its code, if any) ends where the reference loop ends on cfg without code, both in
    float64 (see conftest.FLOAT64_TOLERANCE), and evaluates as the reference does."""
    ref_cfg = cfg.replace(code="")
    x_test, y_test = usps.x_test[:300].double(), usps.y_test[:300]
    with float64():
        x = x.double()
        ref = train_reference(ref_cfg, x, y, x, y, seed=11)
        pop = _train(cfg, [3, 11, 5], x, y)  # the member of interest between two others
        assert_params_match_in_float64(pop.member_params(1), ref.params, cfg.code or "stock")
        ev = pop.evaluate(x_test, y_test)
        loss, err = evaluate(ref.params, x_test, y_test, ref_cfg)
    assert ev.loss[1].item() == pytest.approx(loss, rel=1e-7)  # parameters within FLOAT64_TOLERANCE
    assert ev.error[1].item() == err


@pytest.mark.parametrize("case", sorted(TANH_CASES))
def test_member_matches_reference_loop(case, usps):
    cfg = Config(passes=2).replace(**TANH_CASES[case])
    _assert_matches_reference(cfg, usps.x_train[:120], usps.y_train[:120], usps)


@pytest.mark.parametrize("case", sorted(RELU_CASES))
def test_relu_member_matches_reference_loop_on_one_short_pass(case, usps):
    cfg = Config(passes=1).replace(**RELU_CASES[case])
    _assert_matches_reference(cfg, usps.x_train[:60], usps.y_train[:60], usps)


def test_fc40_matches_reference_loop(usps):
    _assert_matches_reference(Config(passes=2, architecture="fc40"), usps.x_train[:120], usps.y_train[:120], usps)


# --- rungs with code --------------------------------------------------------------------------------------

def _ladder(tmp_path: Path, rungs: dict[str, tuple[str, str]], folder: str = "extra") -> Path:
    """A ladder folder: the stock baseline and, in `folder`, one rung per name: (TOML body after the name,
    Python code or "" for none)."""
    root = tmp_path / "ladder"
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "00-baseline.toml").write_text(BASELINE)
    for i, (name, (toml, code)) in enumerate(rungs.items(), start=1):
        stem = f"{i:02d}-{name}"
        head = f'name = "{name}"\ntitle = "{name}"\nrationale = "test"\nsource = "test"\n'
        if code:
            head += f'code = "{stem}.py"\n'
            (root / folder / f"{stem}.py").write_text(textwrap.dedent(code))
        (root / folder / f"{stem}.toml").write_text(head + textwrap.dedent(toml))
    return root


def _config(root: Path, name: str, **overrides) -> Config:
    (planned,) = plan(load_rungs(root), "cumulative", [name], extra_rungs(root))
    return planned.config.replace(**overrides)


SWISH = "import torch\ndef activation(a):\n    return a * torch.sigmoid(a)\n"
MOMENTUM = "import torch\ndef optimizer(params, lr):\n    return torch.optim.SGD(params, lr=lr, momentum=0.9)\n"
FLIP = """\
import torch
def augment(images, generator):
    flip = torch.rand(len(images), generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1), images.flip(-1), images)
"""
SMOOTH = """\
import torch.nn.functional as F
def loss(pre, labels):
    return F.cross_entropy(pre, labels, label_smoothing=0.1, reduction="none")
"""


def test_code_is_in_the_config_digest_and_record(tmp_path):
    root = _ladder(tmp_path, {"swish": ("", SWISH)})
    cfg = _config(root, "swish")
    assert cfg.code.startswith("01-swish.py@") and cfg.digest() != Config().digest()
    assert Config().digest() == Config(code="").digest()  # configs without code keep their digests
    (root / "extra" / "01-swish.py").write_text(SWISH + "# changed\n")
    assert _config(root, "swish").digest() != cfg.digest()  # a changed file is a new configuration


def test_registry_picks_the_generic_engine_for_code(tmp_path):
    cfg = _config(_ladder(tmp_path, {"swish": ("", SWISH)}), "swish")
    for name in ("auto", "population", "generic"):
        engine, _ = registry.choose(name, cfg, "cpu")
        assert engine.name == "generic"


def test_a_member_with_code_does_not_depend_on_its_neighbours(tmp_path, usps):
    """Bit for bit, with an activation, an update rule from torch.optim and an augmentation as code."""
    root = _ladder(tmp_path, {"swish": ("", SWISH), "momentum": ("[patch]\nlr = 0.003\n", MOMENTUM),
                              "flip": ("[patch]\ndropout = 0.25\nshift = 1\n", FLIP)})
    rungs = load_rungs(root)
    (planned,) = [p for p in plan(rungs, "factorial", ["swish", "momentum", "flip"], extra_rungs(root))
                  if p.label == "f:swish+momentum+flip"]
    cfg = planned.config.replace(passes=2)
    x, y = usps.x_train[:100], usps.y_train[:100]
    alone, crowd = _train(cfg, [2], x, y), _train(cfg, [0, 1, 2, 3, 4], x, y)
    for k, v in alone.params.views.items():
        assert torch.equal(v[0], crowd.params.views[k][2]), k
    a = alone.evaluate(usps.x_test[:300], usps.y_test[:300], keep_outputs=True)
    c = crowd.evaluate(usps.x_test[:300], usps.y_test[:300], keep_outputs=True)
    assert torch.equal(a.outputs[0], c.outputs[2]) and a.loss[0] == c.loss[2]


STOCK_AS_CODE = """\
import torch
import torch.nn.functional as F
def activation(a):
    return torch.tanh(a)
def forward(params, x, stock):
    return stock(params, x)
def loss(pre, labels):
    return F.cross_entropy(pre, labels, reduction="none")
def update(param, grad, state, lr, step):
    param.sub_(grad, alpha=lr)
"""


def test_stock_as_code_matches_the_reference_loop(tmp_path, usps):
    """Hooks that restate the stock choices (tanh, the net, cross-entropy, SGD) train as the reference loop
    trains the config without them."""
    root = _ladder(tmp_path, {"stock": ('[patch]\noutput = "softmax_ce"\ndropout = 0.25\n', STOCK_AS_CODE)})
    _assert_matches_reference(_config(root, "stock", passes=2), usps.x_train[:80], usps.y_train[:80], usps)


def test_label_smoothing_and_init_hooks_run(tmp_path, usps):
    init = "def init(params, generator):\n    return {k: v * 0.5 for k, v in params.items()}\n"
    root = _ladder(tmp_path, {"smooth": ('[patch]\noutput = "softmax_ce"\n', SMOOTH), "half": ("", init)})
    x, y = usps.x_train[:50], usps.y_train[:50]
    half = generic_class("net1989")(_config(root, "half"), [0], x, y)
    stock = generic_class("net1989")(Config(), [0], x, y)
    torch.testing.assert_close(half.member_params(0)["H3.weight"], stock.member_params(0)["H3.weight"] * 0.5)
    pop = _train(_config(root, "smooth", passes=1), [0, 1], x, y)
    assert torch.isfinite(pop.evaluate(x, y).loss).all()


def test_resuming_with_a_torch_optimizer_is_bit_for_bit(tmp_path, usps):
    cfg = _config(_ladder(tmp_path, {"momentum": ("", MOMENTUM)}), "momentum", passes=2)
    x, y = usps.x_train[:60], usps.y_train[:60]
    straight = _train(cfg, [0, 1], x, y)
    first = _train(cfg, [0, 1], x, y, passes=1)
    resumed = generic_class("net1989")(cfg, [0, 1], x, y)
    resumed.load_state_dict(first.state_dict())
    resumed.train_pass(1)
    assert torch.equal(straight.params.flat, resumed.params.flat)


# --- errors, before any training ---------------------------------------------------------------------------

@pytest.mark.parametrize("code, words", [
    ("def activation(a):\n    return a +\n", ["does not load", "SyntaxError"]),
    ("import no_such_module_here\n", ["does not load", "ModuleNotFoundError"]),
    ("def activation(a, b):\n    return a\n", ["hook 'activation'", "activation(a)"]),
    ("def loss(pre):\n    return pre\n", ["hook 'loss'", "loss(pre, labels)"]),
    ("def activation(a):\n    return a.sum(-1)\n", ["hook 'activation'", "shape"]),
    ("def loss(pre, labels):\n    return pre\n", ["hook 'loss'", "(1,)"]),
    ("def forward(params, x, stock):\n    return stock(params, x)[:, :5]\n", ["hook 'forward'", "(1, 10)"]),
    ("import torch\ndef optimizer(params, lr):\n    return torch.optim.LBFGS(params, lr=lr)\n", ["hook 'optimizer'"]),
    ("def update(param, grad, state, lr, step):\n    param.sub_(grad.mean() * lr)\n", ["hook 'update'", "on its own"]),
    ("x = 1\n", ["defines none of the hooks"]),
])
def test_bad_code_is_an_error_naming_the_rung_and_the_hook(tmp_path, code, words):
    root = _ladder(tmp_path, {"bad": ("", code)})
    with pytest.raises(RungCodeError) as err:
        extra_rungs(root)
    assert "rung 'bad'" in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_code_only_from_the_rungs_own_folder(tmp_path):
    root = _ladder(tmp_path, {})
    (tmp_path / "elsewhere.py").write_text(SWISH)
    (root / "extra" / "01-out.toml").write_text('name = "out"\ntitle = "t"\nrationale = "r"\nsource = "s"\n'
                                               'code = "../../elsewhere.py"\n')
    with pytest.raises(ConfigError, match="rung's own folder"):
        extra_rungs(root)


def test_code_not_loaded_is_an_error_before_training(usps):
    cfg = Config(code="never-loaded.py@0123456789abcdef")
    with pytest.raises(RungCodeError, match="not loaded"):
        generic_class("net1989")(cfg, [0], usps.x_train[:10], usps.y_train[:10])


@pytest.mark.parametrize("mode", ["cumulative", "factorial"])
def test_two_rungs_with_the_same_hook_cannot_be_combined(tmp_path, mode):
    relu_like = "import torch\ndef activation(a):\n    return torch.relu(a) + 0.01 * a\n"
    root = _ladder(tmp_path, {"swish": ("", SWISH), "leaky": ("", relu_like)}, folder=".")
    with pytest.raises(RungCodeError) as err:
        plan(load_rungs(root), mode)
    assert "'swish'" in str(err.value) and "'leaky'" in str(err.value) and "activation" in str(err.value)


def test_rungs_with_different_hooks_combine(tmp_path):
    root = _ladder(tmp_path, {"swish": ("", SWISH), "momentum": ("", MOMENTUM)}, folder=".")
    planned = {p.label: p.config for p in plan(load_rungs(root), "factorial")}
    both = planned["f:swish+momentum"].code.split(", ")
    assert [e.split("@")[0] for e in both] == ["01-swish.py", "02-momentum.py"]


def test_the_python_api_reads_a_rung_with_code():
    from repro import api

    cfg = api.rung_config("momentum", ladder_dir=REPO / "ablations" / "examples", passes=2)
    assert cfg.code.startswith("03-momentum.py@") and cfg.lr == 0.003 and cfg.passes == 2
    assert registry.choose("auto", cfg, "cpu")[0].name == "generic"


# --- the compiled step (repro.engines.generic_compile) ------------------------------------------------------

def test_compiled_member_alone_and_in_a_group_of_four_are_the_same_bits(tmp_path, usps):
    """Compiled code is generated per population size (fused loops may differ): a member's numbers must not."""
    cfg = _config(_ladder(tmp_path, {"swish": ('[patch]\ndropout = 0.25\n', SWISH)}), "swish", passes=1)
    x, y = usps.x_train[:40], usps.y_train[:40]
    alone, group = _train(cfg, [2], x, y), _train(cfg, [0, 1, 2, 3], x, y)
    assert alone._compiled is not None and group._compiled is not None  # compiled, not fallen back
    for k, v in alone.params.views.items():
        assert torch.equal(v[0], group.params.views[k][2]), k


@pytest.mark.parametrize("options", [{"dropout": 0.25}, {"optimizer": "adamw", "lr": 3e-4}])
def test_compiled_and_eager_steps_agree(options, usps):
    """The same training op by op and compiled: equal within float32 rounding of a reordered sum."""
    cfg = Config(passes=1).replace(**options)
    x, y = usps.x_train[:60], usps.y_train[:60]
    compiled = _train(cfg, [0, 1], x, y)
    eager = generic_class("net1989", compiled=False)(cfg, [0, 1], x, y)
    eager.train_pass(0)
    assert compiled._compiled is not None and eager._compiled is None
    torch.testing.assert_close(compiled.params.flat, eager.params.flat, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("members", [1, 3, 4])
def test_the_sgd_update_on_each_tensor_is_the_flat_rules_bits(members, usps):
    """The step's update with per-tensor gradients (SGD: the flat rule's op on each tensor) gives the bits of
    repro.optim.SGD on the flat buffer, whatever the population's size (each tensor ends in a partial vector
    where the flat buffer does not)."""
    from repro.engines.population.lockstep import flat_views
    from repro.optim import SGD

    pop = generic_class("net1989")(Config(), list(range(members)), usps.x_train[:8], usps.y_train[:8])
    gen = torch.Generator().manual_seed(members)
    pop.params.flat.copy_(torch.randn(pop.params.flat.shape, generator=gen))
    grad = torch.randn(pop.params.flat.shape, generator=gen)
    flat = pop.params.flat.clone()
    SGD(pop.cfg, flat).step(flat, grad, 0.03, 1)
    grads = tuple(v.clone() for v in flat_views(grad, members).values())
    pop._update(grads, 0.03)
    assert torch.equal(pop.params.flat, flat)


UNTRACEABLE = """\
import torch
import torch._dynamo
def activation(a):
    torch._dynamo.graph_break()
    return torch.tanh(a)
"""


def test_a_hook_that_cannot_be_compiled_runs_eagerly_with_a_message_naming_it(tmp_path, usps, capsys):
    cfg = _config(_ladder(tmp_path, {"breaks": ("", UNTRACEABLE)}), "breaks", passes=1)
    x, y = usps.x_train[:20], usps.y_train[:20]
    pop = _train(cfg, [0, 1], x, y)
    err = capsys.readouterr().err
    assert "hook 'activation' cannot be compiled" in err and "running the eager step" in err
    eager = generic_class("net1989", compiled=False)(cfg, [0, 1], x, y)
    eager.train_pass(0)
    assert pop._compiled is None and torch.equal(pop.params.flat, eager.params.flat)


def test_an_unwritable_compile_cache_falls_back_to_a_private_folder(tmp_path, monkeypatch):
    from repro.engines import generic_compile

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache folder would lie under a file
    generic_compile.prepare.cache_clear()
    try:
        note = generic_compile.prepare()
        assert note and "cannot be written" in note
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] in note and os.access(os.environ["TORCHINDUCTOR_CACHE_DIR"], os.W_OK)
    finally:
        generic_compile.prepare.cache_clear()


def test_the_generic_eager_engine_is_a_registry_name(tmp_path):
    cfg = _config(_ladder(tmp_path, {"swish": ("", SWISH)}), "swish")
    engine, note = registry.choose("generic-eager", cfg, "cpu")
    assert engine.name == "generic-eager" and note is None
    assert engine.population_class(cfg).COMPILED is False and registry.get("generic").population_class(cfg).COMPILED


def test_the_estimate_counts_each_configurations_compilation():
    from repro.jobs.plan import Throughput, estimate_text

    rate = Throughput(1000.0, "a bench file", compile_s=30.0)
    assert estimate_text(60_000, rate, configurations=2).startswith("~2m00s")  # 60 s training + 2 x 30 s
    assert "2 configurations x 30 s" in estimate_text(60_000, rate, configurations=2)
    assert estimate_text(60_000, Throughput(1000.0, "a bench file")) == "~1m00s (estimated from a bench file)"
