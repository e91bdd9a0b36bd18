"""The activation functions, in one table: every engine, the SDLM curvature and the fused kernel's constants
read them here, and an unknown name is a ValueError wherever it is looked up.

Each entry gives the function, its derivative written in terms of the function's output h (what a backward
pass that kept the layer outputs has at hand) and in terms of the pre-activation a (what the reference
curvature recursion keeps). All three work elementwise on any shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

SCALED_TANH_A = 1.7159  # LeCun et al. (1998), "Efficient BackProp": f(a) = 1.7159 tanh(2a/3)
SCALED_TANH_S = 2.0 / 3.0

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Activation:
    name: str
    forward: Fn  # a -> f(a)
    grad_from_output: Fn  # h = f(a) -> f'(a)
    grad_from_pre: Fn  # a -> f'(a)


def _scaled_tanh(a: torch.Tensor) -> torch.Tensor:
    return torch.tanh(a * SCALED_TANH_S) * SCALED_TANH_A  # not in place: the reference loop differentiates it


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", torch.tanh, lambda h: 1.0 - h * h, lambda a: 1.0 - torch.tanh(a) ** 2),
    # f'(a) = A*S*(1 - tanh(S a)^2), and tanh(S a) = h/A
    "scaled_tanh": Activation("scaled_tanh", _scaled_tanh,
                              lambda h: (SCALED_TANH_A - h * h / SCALED_TANH_A) * SCALED_TANH_S,
                              lambda a: SCALED_TANH_A * SCALED_TANH_S * (1.0 - torch.tanh(SCALED_TANH_S * a) ** 2)),
    "relu": Activation("relu", torch.relu, lambda h: (h > 0).to(h.dtype), lambda a: (a > 0).to(a.dtype)),
}


def get(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}") from None


def activation(name: str, a: torch.Tensor) -> torch.Tensor:
    return get(name).forward(a)
