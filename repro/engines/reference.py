"""The 1989 training procedure as a plain loop: the oracle every faster engine is tested against.

One pattern at a time, in the constant order of the training file, loss = squared error averaged over the
10 outputs, weights updated after every pattern, 23 passes, train and test error measured after each pass.
Read `train_reference` top to bottom: it is the paper's procedure with nothing in between.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from repro.config import Config
from repro.net.metrics import exact_sum, is_wrong
from repro.net.model import (draw_pass_randomness, forward, init_params, loss_per_example, outputs, run_generator,
                             set_float_mode, shift_images)
from repro.net.sdlm import estimate_curvature, gauss_newton_diagonal
from repro.optim import reference_optimizer


@dataclass
class PassMetrics:
    train_loss: float
    train_error: float
    test_loss: float
    test_error: float


@dataclass
class TrainedRun:
    params: dict[str, torch.Tensor]
    history: list[PassMetrics] = field(default_factory=list)
    wall_time_s: float = 0.0
    optimizer: torch.optim.Optimizer | None = None  # its state (moments, SDLM's h) for tests and inspection


@torch.no_grad()
def evaluate(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, cfg: Config) -> tuple[float, float]:
    """(mean loss, error fraction) over a whole split, in one batched forward pass; errors by
    metrics.is_wrong on the output values, the loss an exact sum of the per-pattern losses."""
    pre = forward(params, x, cfg)
    loss = float(exact_sum(loss_per_example(cfg, pre, y).unsqueeze(0))[0]) / len(y)
    error = is_wrong(outputs(cfg, pre), y).double().mean().item()
    return loss, error


def train_reference(
    cfg: Config,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    seed: int,
    max_steps: int | None = None,
    on_pass: Callable[[int, PassMetrics], None] | None = None,
    device: torch.device | str = "cpu",
) -> TrainedRun:
    """Train one network exactly as the paper describes. `max_steps` stops early (for equivalence tests);
    `device` puts the loop on a GPU (for `repro bench`: the baseline every engine is compared with)."""
    start = time.perf_counter()
    set_float_mode()
    gen = run_generator(seed)  # random draws stay on the CPU generator; their results move to `device`
    params = {k: v.to(device).requires_grad_() for k, v in init_params(cfg, gen).items()}
    x_train, y_train, x_test, y_test = (t.to(device) for t in (x_train, y_train, x_test, y_test))
    optimizer = reference_optimizer(cfg, list(params.values()))
    run = TrainedRun(params, optimizer=optimizer)
    n = len(x_train)
    steps = 0
    per_pass_curvature = cfg.optimizer == "sdlm" and cfg.sdlm_curvature == "per_pass"
    for pass_index in range(cfg.passes):
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr_at_pass(pass_index)
        if per_pass_curvature:  # LeNet-5's way: h from a window of patterns, fixed through the pass
            h = estimate_curvature(params, x_train, cfg, pass_index)
            optimizer.set_curvature([h[k] for k in params])
        shifts, keep = draw_pass_randomness(gen, n, cfg)
        for i in range(n):  # constant order: the order of the training file
            x = x_train[i : i + 1]
            if shifts is not None:
                x = shift_images(x, int(shifts[i, 0]), int(shifts[i, 1]), cfg.shift_mode)
            keep_i = keep[i : i + 1].to(device) if keep is not None else None
            pre = forward(params, x, cfg, keep_i)
            loss = loss_per_example(cfg, pre, y_train[i : i + 1]).sum()
            optimizer.zero_grad()
            loss.backward()
            if per_pass_curvature:
                optimizer.step()
            elif cfg.optimizer == "sdlm":  # the paper's diagonal Newton step needs this pattern's curvature too
                curvature = gauss_newton_diagonal(params, x, cfg, keep_i)
                optimizer.step([curvature[k] for k in params])
            else:
                optimizer.step()  # one update per pattern
            steps += 1
            if max_steps is not None and steps >= max_steps:
                run.wall_time_s = time.perf_counter() - start
                return run
        train_loss, train_error = evaluate(params, x_train, y_train, cfg)
        test_loss, test_error = evaluate(params, x_test, y_test, cfg)
        metrics = PassMetrics(train_loss, train_error, test_loss, test_error)
        run.history.append(metrics)
        if on_pass is not None:
            on_pass(pass_index, metrics)
    run.wall_time_s = time.perf_counter() - start
    return run


def supports(cfg: Config) -> str | None:
    """Why the reference loop cannot train `cfg` (never: it is the definition), or None."""
    return None


def available(device: torch.device) -> str | None:
    return None
