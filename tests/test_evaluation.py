"""Every engine scores a split the same way (net/metrics.py): an error is a pattern whose label's output value
is not strictly on top (a tie counts as an error), and a member's mean loss is the exact sum of its
per-pattern losses over n, so it does not depend on its population or the thread count. (The per-pattern
outputs of the 1989 net's batched evaluation do depend, in the last bits, on how many patterns go through
at once, so the chunk size is a fixed constant, Population.EVAL_CHUNK.)"""

import math

import pytest
import torch

from repro.config import Config
from repro.engines import reference
from repro.engines.population import FCPopulation, Population

CONFIGS = {
    "net1989": Config(),
    "net1989-ce": Config(output="softmax_ce", hidden_activation="relu"),
    "fc40": Config(architecture="fc40"),
    "fc40-scaled": Config(architecture="fc40", hidden_activation="scaled_tanh", output="scaled_tanh_mse"),
}


def make(cfg, seeds, usps):
    cls = FCPopulation if cfg.architecture == "fc40" else Population
    return cls(cfg, seeds, usps.x_train[:10], usps.y_train[:10])


@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_a_members_evaluation_alone_equals_inside_a_group_of_four(label, usps):
    cfg = CONFIGS[label]
    alone, group = make(cfg, [2], usps), make(cfg, [0, 1, 2, 3], usps)
    a, g = alone.evaluate(usps.x_test, usps.y_test), group.evaluate(usps.x_test, usps.y_test)
    assert a.loss[0].item() == g.loss[2].item() and a.error[0].item() == g.error[2].item()


@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_one_or_two_threads_give_the_same_bits(label, usps):
    pop = make(CONFIGS[label], [0, 1], usps)
    try:
        torch.set_num_threads(1)
        one = pop.evaluate(usps.x_train, usps.y_train)
        torch.set_num_threads(2)
        two = pop.evaluate(usps.x_train, usps.y_train)
    finally:
        torch.set_num_threads(2)
    assert torch.equal(one.loss, two.loss) and torch.equal(one.error, two.error)


@pytest.mark.parametrize("label", sorted(CONFIGS))
def test_the_loss_is_the_exact_sum_of_the_pattern_losses(label, usps):
    """Pins the reduction itself: a float32 running sum (the old reduction) misses this by rounding."""
    cfg = CONFIGS[label]
    pop = make(cfg, [0, 1], usps)
    ev = pop.evaluate(usps.x_test, usps.y_test, keep_outputs=True)
    for m in range(2):
        out = ev.outputs[m]
        if cfg.output_activation:
            per_pattern = ((out - (torch.nn.functional.one_hot(usps.y_test, 10) * 2 - 1)) ** 2).mean(dim=1)
            want = math.fsum(per_pattern.tolist()) / len(usps.y_test)
            assert ev.loss[m].item() == want
        ref_loss, ref_error = reference.evaluate(pop.member_params(m), usps.x_test, usps.y_test, cfg)
        assert ev.loss[m].item() == pytest.approx(ref_loss, rel=1e-6)
        assert ev.error[m].item() == pytest.approx(ref_error, abs=1.5 / len(usps.y_test))


# Output layer forced to constant pre-activations: outputs 0 and 1 tie at the top for every pattern. With
# squared error they differ before the tanh (12 and 10, both 1.0 in float32 after it), so an argmax of
# the pre-activations would call every label-0 pattern right; with softmax they are equal, and an argmax
# would pick index 0.
TIED_BIAS = {"tanh_mse": [12.0, 10.0] + [-1.0] * 8, "softmax_ce": [5.0, 5.0] + [-1.0] * 8}


def _lockstep_engines():
    from repro.engines import registry

    out = ["population", "fc40"]
    if not registry.get("fused").available("cpu"):
        out.append("fused")
    return out


@pytest.mark.parametrize("output", sorted(TIED_BIAS))
@pytest.mark.parametrize("engine", ["reference"] + _lockstep_engines())
def test_a_tie_for_the_top_output_is_an_error(engine, output, usps):
    cfg = Config(output=output, architecture="fc40" if engine == "fc40" else "net1989")
    x, y = usps.x_test[:300], usps.y_test[:300]
    assert (y == 0).any()
    bias = torch.tensor(TIED_BIAS[output])
    if engine == "reference":
        from repro.net.model import init_params, run_generator

        params = init_params(cfg, run_generator(0))
        params["out.weight"].zero_()
        params["out.bias"].copy_(bias)
        loss, error = reference.evaluate(params, x, y, cfg)
    else:
        if engine == "fused":
            from repro.engines.fused.population import FusedPopulation as cls
        else:
            cls = FCPopulation if engine == "fc40" else Population
        pop = cls(cfg, [0, 1], usps.x_train[:10], usps.y_train[:10])
        out_w = list(pop.SHAPES)[-2]
        pop.params.views[out_w].zero_()
        pop.params.views[pop.OUTPUT_BIAS][:] = bias.view(1, 10)
        error = pop.evaluate(x, y).error[1].item()
    assert error == 1.0
