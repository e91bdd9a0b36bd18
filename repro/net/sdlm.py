"""Stochastic diagonal Levenberg-Marquardt (SDLM): the paper's "special version of Newton's algorithm that
uses a positive, diagonal approximation of the Hessian" (LeCun 1987; Becker & LeCun 1988), as described in
LeCun, Bottou, Orr & Mueller, "Efficient BackProp" (1998), and used for LeNet-5 (LeCun et al. 1998).

Each parameter w_k gets its own step size

    w_k <- w_k - lr * g_k / (mu + h_k)          lr = cfg.lr (the global eta), mu = cfg.sdlm_mu

where g_k is the gradient on the current pattern and h_k a running average of the Gauss-Newton diagonal
of the Hessian of the loss:

    h_k <- (1 - gamma) h_k + gamma * hnew_k     gamma = cfg.sdlm_gamma,   h_k := hnew_k at the first step

Two ways of keeping h (Config.sdlm_curvature; the 1989 paper leaves it open):
- "running" (default): h is updated at *every* step from the *current* pattern, at the current weights,
  before the update of that step, and it is initialised from the first pattern (not from zero, which would
  make the first steps lr/mu times the gradient).
- "per_pass" (LeNet-5, LeCun et al. 1998: "re-estimated on 500 patterns before each training pass"): before
  each pass, h := the mean of hnew over k = cfg.sdlm_estimate_patterns training patterns at the current
  weights, then h is held fixed through the pass (gamma is unused). Which k patterns is not given; here pass p
  uses training patterns p*k .. p*k + k - 1 (modulo the set's size; `curvature_window`), so the estimates
  walk through the whole set, need no random draw, and are the same in every engine. The estimate sees the
  patterns as stored: no shift and no dropout (it measures the net, not a noisy presentation of it); the sum
  is taken in float32 in pattern order, then divided by k. hnew comes from a second backward pass over the same forward activations that
propagates second derivatives with squared weights and squared activation derivatives, dropping
off-diagonal terms (the Gauss-Newton / "positive" approximation):

    output, *_mse:       d2L/da^2 = (2/10) f'(a)^2       (L = mean over 10 outputs of (f(a) - t)^2, f the
                                                         output's tanh or scaled tanh)
    output, softmax_ce:  d2L/da^2 = p (1 - p)            (diagonal of the cross-entropy GN matrix diag(p) - pp^T)
    hidden:              d2L/dx_j^2 = sum_i w_ij^2 d2L/da_i^2,   d2L/da_j^2 = f'(a_j)^2 d2L/dx_j^2
    weight w:            hnew = sum over the connections (j -> i) sharing w of x_j^2 d2L/da_i^2
    bias of unit i:      hnew = d2L/da_i^2

A dropout mask and its 1/(1-p) scale multiply the H3 inputs x_j, so they enter squared, as in the gradient.
For H3 and the output layer the recursion is the exact Gauss-Newton diagonal; for H1 and H2 it is not
(cross terms between units that share a downstream unit are dropped; see tests/test_sdlm.py for the gap).

With the loss averaged over 10 outputs, gradients and h are 10x smaller than with LeNet-5's summed loss;
where h << mu the step is ~ lr/mu * g, so lr for SDLM is far smaller than for SGD: short sweeps on usps
training error picked lr = 1e-3 with the default mu and gamma (the faithful ladder's sweep is in
ablations/faithful/03-paper.toml).

This file is the readable version (paper layout, one pattern) used by the reference loop; the population
engine computes the same h for many members at once and is tested against it.
"""

from __future__ import annotations

import torch
from torch.nn.grad import conv2d_input, conv2d_weight

from repro.config import Config
from repro.net import activations
from repro.net.loss import MSE_GRAD_SCALE
from repro.net.model import forward_layers, h2_scheme

def activation_grad(name: str, a: torch.Tensor) -> torch.Tensor:
    """f'(a) for the hidden activation, from the pre-activation a."""
    return activations.get(name).grad_from_pre(a)


@torch.no_grad()
def gauss_newton_diagonal(
    params: dict[str, torch.Tensor], x: torch.Tensor, cfg: Config, keep: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """hnew for every parameter (same names and shapes as `params`) on ONE pattern x (1, 16, 16).

    keep: the (1, 192) dropout mask of this presentation, as given to model.forward.
    """
    act = cfg.hidden_activation
    if cfg.architecture == "fc40":
        return _fc40_gauss_newton_diagonal(params, x, cfg)
    W1, W2, W3, W4 = (params[f"{n}.weight"] for n in ("H1", "H2", "H3", "out"))
    scheme = h2_scheme(cfg.h2_scheme)
    f = forward_layers(params, x, cfg, keep)  # each layer's input and pre-activation
    x0, a1, x1, a2, x2, a3, x3, a4 = f.x0, f.a1, f.x1, f.a2, f.x2, f.a3, f.x3, f.a4
    drop = 1.0 if keep is None else keep / (1.0 - cfg.dropout)  # dropout factor on the H3 inputs

    h = {}
    # output layer
    d4 = _output_curvature(cfg, a4)
    h["out.weight"] = d4.T @ x3**2
    h["out.bias"] = d4[0]
    # H3
    d3 = activation_grad(act, a3) ** 2 * (d4 @ W4**2)
    h["H3.weight"] = d3.T @ x2**2
    h["H3.bias"] = d3[0]
    # H2: a convolution, so its h is the convolution's weight "gradient" with squared inputs, summed over
    # the 16 positions that share each weight
    dx2 = (d3 @ W3**2) * drop**2  # (1, 192)
    d2 = activation_grad(act, a2) ** 2 * dx2.view(1, 12, 4, 4)
    h["H2.weight"] = conv2d_weight(x1**2, W2.shape, d2, stride=2, groups=12)
    h["H2.bias"] = d2[0]
    # H1: back through H2 with squared weights, then sum the 8 H2 groups' contributions onto the 12 H1 maps
    dx1_read = conv2d_input(x1.shape, W2**2, d2, stride=2, groups=12)  # (1, 96, 12, 12)
    dx1 = torch.zeros(1, 12, 12, 12).index_add_(1, scheme.flatten(), dx1_read)[:, :, 2:-2, 2:-2]  # drop padding
    d1 = activation_grad(act, a1) ** 2 * dx1  # (1, 12, 8, 8)
    h["H1.weight"] = conv2d_weight(x0**2, W1.shape, d1, stride=2)
    h["H1.bias"] = d1[0]
    return {k: h[k] for k in params}


def _output_curvature(cfg: Config, a: torch.Tensor) -> torch.Tensor:
    """d2L/da^2 of the output units (Gauss-Newton), for squared error or softmax cross-entropy."""
    if cfg.output_activation:
        return MSE_GRAD_SCALE * activation_grad(cfg.output_activation, a) ** 2
    p = torch.softmax(a, dim=-1)
    return p * (1.0 - p)


def _fc40_gauss_newton_diagonal(params: dict[str, torch.Tensor], x: torch.Tensor, cfg: Config) -> dict[str, torch.Tensor]:
    """The same recursion for the fully connected comparison network (256 -> 40 -> 10)."""
    f = forward_layers(params, x, cfg)
    x0, a1, x1 = f.x0, f.a1, f.x1
    d2 = _output_curvature(cfg, f.a2)  # (1, 10)
    d1 = activation_grad(cfg.hidden_activation, a1) ** 2 * (d2 @ params["out.weight"] ** 2)  # (1, 40)
    h = {"out.weight": d2.T @ x1**2, "out.bias": d2[0], "H.weight": d1.T @ x0**2, "H.bias": d1[0]}
    return {k: h[k] for k in params}


def curvature_window(pass_index: int, n_train: int, k: int) -> torch.Tensor:
    """Indices of the k training patterns whose mean curvature is h for pass `pass_index` ("per_pass")."""
    return (torch.arange(k, dtype=torch.int64) + pass_index * k) % n_train


@torch.no_grad()
def estimate_curvature(params: dict[str, torch.Tensor], x_train: torch.Tensor, cfg: Config,
                       pass_index: int) -> dict[str, torch.Tensor]:
    """h for pass `pass_index` under "per_pass": the mean of hnew over the pass's curvature window."""
    window = curvature_window(pass_index, len(x_train), cfg.sdlm_estimate_patterns)
    total = None
    for i in window.tolist():  # in order: the float32 sum every engine takes
        hnew = gauss_newton_diagonal(params, x_train[i : i + 1], cfg)
        total = hnew if total is None else {k: total[k] + hnew[k] for k in total}
    return {k: v / len(window) for k, v in total.items()}


class SDLM(torch.optim.Optimizer):
    """w <- w - lr * grad / (mu + h): h the running average of the curvature handed to `step`, or, after
    `set_curvature` ("per_pass"), the given h, held fixed (step() without curvature)."""

    def __init__(self, params, lr: float, mu: float, gamma: float):
        super().__init__(params, dict(lr=lr, mu=mu, gamma=gamma))

    @torch.no_grad()
    def set_curvature(self, h: list[torch.Tensor]) -> None:
        """h for each parameter, in the order the parameters were given, used as is by later steps."""
        (group,) = self.param_groups
        for p, hp in zip(group["params"], h, strict=True):
            self.state[p]["h"] = hp.clone()

    @torch.no_grad()
    def step(self, curvature: list[torch.Tensor] | None = None) -> None:  # type: ignore[override]
        """curvature: hnew for each parameter, in the order the parameters were given; None keeps h."""
        (group,) = self.param_groups
        for i, p in enumerate(group["params"]):
            state = self.state[p]
            if curvature is None:
                if "h" not in state:
                    raise RuntimeError("SDLM.step() without curvature needs set_curvature() first")
            elif "h" not in state:
                state["h"] = curvature[i].clone()  # initialised from the first pattern
            else:
                state["h"].lerp_(curvature[i], group["gamma"])  # (1 - gamma) h + gamma hnew
            p.addcdiv_(p.grad, state["h"] + group["mu"], value=-group["lr"])
