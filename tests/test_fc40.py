"""The paper's comparison network (architecture "fc40"): its size, and the engine against the reference loop."""

import pytest
import torch

from repro.config import Config, ConfigError
from repro.engines.population import FCPopulation
from repro.net.model import init_params, layer_shapes, run_generator
from repro.engines.reference import train_reference


def test_fc40_has_the_papers_10690_connections():
    shapes = layer_shapes(init_params(Config(architecture="fc40"), run_generator(0)))
    assert sum(s.connections for s in shapes) == 10_690
    assert [s.units for s in shapes] == [40, 10]


def test_default_digest_is_stable():
    # adding a config field must not rename every committed record (see Config.digest)
    assert Config().digest() == "3d618be72a"


def test_fc40_rejects_dropout():
    with pytest.raises(ConfigError, match="fc40"):
        Config().replace(architecture="fc40", dropout=0.25)


@pytest.mark.parametrize("patch", [{}, {"optimizer": "adamw", "lr": 3e-4, "hidden_activation": "relu", "shift": 1},
                                   {"optimizer": "sdlm", "lr": 1e-3, "hidden_activation": "scaled_tanh",
                                    "output": "scaled_tanh_mse", "init": "fan_in"},
                                   {"output": "softmax_ce", "optimizer": "sdlm", "lr": 1e-3}])
def test_fc40_member_matches_reference_loop(patch, usps):
    cfg = Config(architecture="fc40", passes=2).replace(**patch)
    x, y = usps.x_train[:150], usps.y_train[:150]
    ref = train_reference(cfg, x, y, x, y, seed=4)
    pop = FCPopulation(cfg, [1, 4], x, y)
    for p in range(cfg.passes):
        pop.train_pass(p)
    got = pop.member_params(1)
    for name, want in ref.params.items():
        torch.testing.assert_close(got[name], want.detach(), atol=2e-5, rtol=1e-4, msg=name)
    ev = pop.evaluate(usps.x_test[:300], usps.y_test[:300], keep_outputs=True)
    from repro.net.model import forward, outputs

    torch.testing.assert_close(ev.outputs[1], outputs(cfg, forward(ref.params, usps.x_test[:300], cfg)).detach(),
                               atol=1e-5, rtol=1e-5)
