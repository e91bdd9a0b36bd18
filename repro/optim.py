"""Update rules over flat parameter buffers (every member's tensors in one buffer), one op or a few per step:
SGD, AdamW (as torch.optim.AdamW's single-tensor path computes it) and SDLM (as sdlm.SDLM). The lockstep
engines use these; the reference loop keeps torch.optim (it is the oracle) and chooses through
`reference_optimizer`. An unknown name is a ValueError in both.

The step number t (1-based) is passed in rather than counted here: the fused engine advances a population
by a whole pass at once, and the population's step_count is the one count.
"""

from __future__ import annotations

import torch

from repro.config import Config
from repro.net.sdlm import SDLM as TorchSDLM


class SGD:
    """w <- w - lr g."""

    needs_curvature = False

    def __init__(self, cfg: Config, w: torch.Tensor):
        pass

    def step(self, w: torch.Tensor, grad: torch.Tensor, lr: float, t: int, curvature: torch.Tensor | None = None) -> None:
        w.sub_(grad, alpha=lr)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, d: dict[str, torch.Tensor]) -> None:
        _load(self, d)


class AdamW:
    """Decoupled weight decay, then Adam's bias-corrected moments; exp_avg and exp_avg_sq shaped like w."""

    needs_curvature = False

    def __init__(self, cfg: Config, w: torch.Tensor):
        self.beta1, self.beta2, self.eps, self.weight_decay = cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps, cfg.weight_decay
        self.exp_avg = torch.zeros_like(w)
        self.exp_avg_sq = torch.zeros_like(w)

    def step(self, w: torch.Tensor, grad: torch.Tensor, lr: float, t: int, curvature: torch.Tensor | None = None) -> None:
        b1, b2 = self.beta1, self.beta2
        w.mul_(1.0 - lr * self.weight_decay)
        self.exp_avg.lerp_(grad, 1.0 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
        denom = (self.exp_avg_sq.sqrt() / (1.0 - b2**t) ** 0.5).add_(self.eps)
        w.addcdiv_(self.exp_avg, denom, value=-lr / (1.0 - b1**t))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone()}

    def load_state_dict(self, d: dict[str, torch.Tensor]) -> None:
        _load(self, d)


class SDLM:
    """w <- w - lr g / (mu + h) (see sdlm.py). "running": h := the first step's curvature, then
    h <- (1 - gamma) h + gamma curvature at every step. "per_pass": h is given by `set_curvature` before each
    pass and held fixed (step() takes no curvature)."""

    needs_curvature = True

    def __init__(self, cfg: Config, w: torch.Tensor):
        self.mu, self.gamma = cfg.sdlm_mu, cfg.sdlm_gamma
        self.curvature_each_step = cfg.sdlm_curvature == "running"
        self.h = torch.zeros_like(w)

    def set_curvature(self, h: torch.Tensor) -> None:
        self.h.copy_(h)

    def step(self, w: torch.Tensor, grad: torch.Tensor, lr: float, t: int, curvature: torch.Tensor | None = None) -> None:
        if self.curvature_each_step:
            if t == 1:
                self.h.copy_(curvature)
            else:
                self.h.lerp_(curvature, self.gamma)
        w.addcdiv_(grad, self.h + self.mu, value=-lr)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"h": self.h.clone()}

    def load_state_dict(self, d: dict[str, torch.Tensor]) -> None:
        _load(self, d)


def _load(opt, d: dict[str, torch.Tensor]) -> None:
    want = set(opt.state_dict())
    if set(d) != want:
        raise ValueError(f"{type(opt).__name__} state needs {sorted(want)}, got {sorted(d)}")
    for k, v in d.items():
        getattr(opt, k).copy_(v)


FLAT_OPTIMIZERS = {"sgd": SGD, "adamw": AdamW, "sdlm": SDLM}


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown optimizer {name!r}; valid: {', '.join(FLAT_OPTIMIZERS)}")


def flat_optimizer(cfg: Config, w: torch.Tensor) -> SGD | AdamW | SDLM:
    """The update rule of cfg.optimizer for the flat buffer w (its state buffers shaped like w)."""
    if cfg.optimizer not in FLAT_OPTIMIZERS:
        raise _unknown(cfg.optimizer)
    return FLAT_OPTIMIZERS[cfg.optimizer](cfg, w)


def reference_optimizer(cfg: Config, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """torch.optim's (or sdlm.SDLM's) optimizer for the reference loop."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    if cfg.optimizer == "sdlm":  # its step() takes this pattern's curvature, see train_reference
        return TorchSDLM(params, lr=cfg.lr, mu=cfg.sdlm_mu, gamma=cfg.sdlm_gamma)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_eps,
                                 weight_decay=cfg.weight_decay)
    raise _unknown(cfg.optimizer)
