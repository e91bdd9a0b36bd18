"""The paper's comparison network (architecture "fc40"): its size, and the engine against the reference loop."""

import pytest
import torch

from repro.config import Config, ConfigError
from repro.engines.population import FCPopulation
from repro.net.model import forward, init_params, layer_shapes, outputs, run_generator
from repro.engines.reference import train_reference
from tests.conftest import FLOAT64_TOLERANCE, assert_params_match_in_float64, float64


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
    """Both in float64 (conftest.FLOAT64_TOLERANCE)."""
    cfg = Config(architecture="fc40", passes=2).replace(**patch)
    with float64():
        x, y = usps.x_train[:150].double(), usps.y_train[:150]
        ref = train_reference(cfg, x, y, x, y, seed=4)
        pop = FCPopulation(cfg, [1, 4], x, y)
        for p in range(cfg.passes):
            pop.train_pass(p)
        assert_params_match_in_float64(pop.member_params(1), ref.params, "fc40")
        x_test = usps.x_test[:300].double()
        ev = pop.evaluate(x_test, usps.y_test[:300], keep_outputs=True)
        torch.testing.assert_close(ev.outputs[1], outputs(cfg, forward(ref.params, x_test, cfg)).detach(),
                                   **FLOAT64_TOLERANCE)