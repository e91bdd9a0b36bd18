"""init = "repro2022": the earlier reproduction's (Karpathy's repro.py, 2022) initial weights, checked against
its own lines written out here, and its forward pass and SGD steps checked against ours from those weights."""

import pytest
import torch
import torch.nn.functional as F

from repro.config import Config, ConfigError
from repro.engines.population import Population
from repro.engines.reference import train_reference
from repro.net.model import forward, init_params, run_generator

PEER = Config(init="repro2022")


def _peer_weights(seed: int) -> dict[str, torch.Tensor]:
    """repro.py's lines, in its order and shapes, on torch's global generator (restored afterwards)."""
    state = torch.get_rng_state()
    try:
        torch.manual_seed(seed)
        winit = lambda fan_in, *shape: (torch.rand(*shape) - 0.5) * 2 * 2.4 / fan_in**0.5  # noqa: E731
        w = {"H1w": winit(5 * 5 * 1, 12, 1, 5, 5), "H1b": torch.zeros(12, 8, 8),
             "H2w": winit(5 * 5 * 8, 12, 8, 5, 5), "H2b": torch.zeros(12, 4, 4),
             "H3w": winit(4 * 4 * 12, 4 * 4 * 12, 30), "H3b": torch.zeros(30),
             "outw": winit(30, 30, 10), "outb": -torch.ones(10)}
    finally:
        torch.set_rng_state(state)
    return w


def _peer_forward(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """repro.py's Net.forward up to the output's tanh: -1 padding, the block H2 scheme as three slices."""
    x = F.pad(x.unsqueeze(1), (2, 2, 2, 2), "constant", -1.0)
    x = torch.tanh(F.conv2d(x, w["H1w"], stride=2) + w["H1b"])
    x = F.pad(x, (2, 2, 2, 2), "constant", -1.0)
    s1 = F.conv2d(x[:, 0:8], w["H2w"][0:4], stride=2)
    s2 = F.conv2d(x[:, 4:12], w["H2w"][4:8], stride=2)
    s3 = F.conv2d(torch.cat((x[:, 0:4], x[:, 8:12]), dim=1), w["H2w"][8:12], stride=2)
    x = torch.tanh(torch.cat((s1, s2, s3), dim=1) + w["H2b"])
    x = torch.tanh(x.flatten(start_dim=1) @ w["H3w"] + w["H3b"])
    return x @ w["outw"] + w["outb"]


def test_run_generator_is_torch_manual_seed():
    torch.manual_seed(1337)
    a = torch.rand(1000)
    assert torch.equal(torch.rand(1000, generator=run_generator(1337)), a)


@pytest.mark.parametrize("seed", [1337, 0])
def test_draw_equals_the_peer_lines(seed):
    ours, peer = init_params(PEER, run_generator(seed)), _peer_weights(seed)
    assert torch.equal(ours["H1.weight"], peer["H1w"]) and torch.equal(ours["H2.weight"], peer["H2w"])
    assert torch.equal(ours["H3.weight"], peer["H3w"].T) and torch.equal(ours["out.weight"], peer["outw"].T)
    for ours_b, peer_b in (("H1.bias", "H1b"), ("H2.bias", "H2b"), ("H3.bias", "H3b"), ("out.bias", "outb")):
        assert torch.equal(ours[ours_b], peer[peer_b])


def test_forward_equals_the_peer_forward(usps):
    """The layouts agree, H3's input index (map * 16 + position) included."""
    x = usps.x_train[:64]
    ours = forward(init_params(PEER, run_generator(1337)), x, PEER)
    torch.testing.assert_close(ours, _peer_forward(_peer_weights(1337), x), atol=1e-6, rtol=1e-5)


def test_reference_loop_steps_like_the_peer(usps):
    """Twenty SGD steps of the reference loop against repro.py's step (loss mean of (y - t)^2, lr 0.03)."""
    n = 20
    x, y = usps.x_train[:n], usps.y_train[:n]
    ours = train_reference(PEER, x, y, x, y, seed=1337, max_steps=n).params
    w = {k: v.requires_grad_() for k, v in _peer_weights(1337).items()}
    opt = torch.optim.SGD(list(w.values()), lr=0.03)
    for i in range(n):
        t = -torch.ones(1, 10)
        t[0, y[i]] = 1.0
        loss = torch.mean((torch.tanh(_peer_forward(w, x[i : i + 1])) - t) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.testing.assert_close(ours["H3.weight"].detach(), w["H3w"].detach().T, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours["H1.weight"].detach(), w["H1w"].detach(), atol=1e-6, rtol=1e-5)


def test_lockstep_engines_start_from_the_same_weights(usps):
    pop = Population(PEER, [1337, 4], usps.x_train[:10], usps.y_train[:10])
    for m, seed in enumerate((1337, 4)):
        want = init_params(PEER, run_generator(seed))
        for k, v in pop.member_params(m).items():
            assert torch.equal(v, want[k]), (seed, k)


@pytest.mark.parametrize("patch", [{"h2_scheme": "cyclic"}, {"architecture": "fc40"}])
def test_needs_the_peer_architecture(patch):
    with pytest.raises(ConfigError, match="repro2022"):
        PEER.replace(**patch)
