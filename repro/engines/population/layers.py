"""One forward and one backward function per layer kind, over the lockstep engines' layout: every tensor
carries the members first, (P, rows, cols). The training step, the SDLM curvature (the same backward called
with squared weights, inputs and derivatives) and, where its ops allow, evaluation all call these.

A layer's delta (d loss / d pre-activation) lives in its bias gradient buffer: with one bias per unit the
two are the same numbers, so the backward writes it there once.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from repro.config import Config
from repro.net import activations
from repro.net.loss import MSE_GRAD_SCALE


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x (P, R, I) @ w (P, I, O) + b (P, R or 1, O) -> (P, R, O)."""
    return torch.baddbmm(b, x, w)


def linear_invariant(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """As `linear` for one row, x (P, 1, I), as multiply-and-sum: bmm gives a member different rounding
    depending on its place in the batch for (1, 192) @ (192, 30) and (1, 256) @ (256, 40), and a member's
    numbers must not depend on its neighbours."""
    return (x.transpose(1, 2) * w).sum(1, keepdim=True) + b


@contextmanager
def one_blas_thread(device: torch.device):
    """Evaluation's matrix products on one thread (CPU): MKL's AVX2 kernels (an AVX2-only Intel CPU, or
    MKL_ENABLE_INSTRUCTIONS=AVX2) split a product over threads in a way that changes its rounding, so that a
    member evaluated to other bits on two threads than on one, and alone than in a group of four; on one
    thread a product of the same shape rounds the same way wherever it runs. (Per member and pass, evaluation
    is a small part of training; the training step's products are already per member, `linear_invariant`.)"""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def linear_backward(x: torch.Tensor, delta: torch.Tensor, w: torch.Tensor | None,
                    grad_w: torch.Tensor) -> torch.Tensor | None:
    """x (P, R, I) the layer input, delta (P, R, O) -> weight gradient into grad_w (P, I, O); returns
    d loss / d x (P, R, I), or None when w is None (the first layer needs no input gradient)."""
    torch.bmm(x.transpose(1, 2), delta, out=grad_w)
    return None if w is None else torch.bmm(delta, w.transpose(1, 2))


def act_backward(grad_out: torch.Tensor, deriv: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """d loss / d output of the activation times its derivative -> `delta` (P, R, O), returned."""
    return torch.mul(grad_out.view(deriv.shape), deriv, out=delta)


def gather_patches(plane: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """plane (P, S, C) with index (K,) -> (P, K, C): the entries each output position reads."""
    return plane[:, index]


def scatter_patches(grad_patches: torch.Tensor, index: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Inverse of `gather_patches` for gradients: grad_patches (P, K, C) summed onto out (P, S, C), which is
    zeroed first; a deterministic index_add (the sum order is fixed)."""
    out.zero_()
    return out.index_add_(1, index, grad_patches)


def output_delta(cfg: Config, pre: torch.Tensor, target: torch.Tensor, label: torch.Tensor,
                 delta: torch.Tensor, curvature: torch.Tensor | None) -> None:
    """pre (P, 1, 10) -> d loss / d pre into `delta`; with `curvature`, also the output's Gauss-Newton
    d2L/dpre^2 (see sdlm.py). target (10,) in +-cfg.target for squared error; label () for cross-entropy."""
    if cfg.output_activation:
        act = activations.get(cfg.output_activation)
        y = act.forward(pre)
        f = act.grad_from_output(y)
        torch.mul((y - target) * MSE_GRAD_SCALE, f, out=delta)
        if curvature is not None:  # (2/10) f'(pre)^2
            torch.mul(f * f, MSE_GRAD_SCALE, out=curvature)
    else:
        prob = torch.softmax(pre, dim=-1)
        if curvature is not None:  # diagonal of the cross-entropy Gauss-Newton matrix: p (1 - p)
            torch.mul(prob, 1.0 - prob, out=curvature)
        prob[:, :, label] -= 1.0
        delta.copy_(prob)
