"""Lockstep engine for the paper's comparison network (architecture "fc40"): 256 inputs, one fully connected
hidden layer of 40 units, 10 outputs (10,690 connections). Everything but the layer maths (seeds, draws,
shifted images, optimizers, the step's outline, output loss, evaluation's scoring, state) is the 1989
engine's; see lockstep.Population.

Layout (P = members): W1 (P, 256, 40) [pixel, unit], b1 (P, 1, 40), W2 (P, 40, 10), b2 (P, 1, 10).
"""

from __future__ import annotations

import torch

from repro.engines.population.layers import act_backward, linear, linear_backward, linear_invariant
from repro.engines.population.lockstep import PAD, Population

FC_SHAPES = {"W1": (256, 40), "b1": (1, 40), "W2": (40, 10), "b2": (1, 10)}
_iy, _ix = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
PIXELS = ((_iy + PAD) * 20 + (_ix + PAD)).reshape(256)  # the 16x16 image inside its 20x20 padded copy


class FCPopulation(Population):
    SHAPES = FC_SHAPES
    OUTPUT_BIAS = "b2"
    EVAL_CHUNK = None  # the whole split in one matmul

    def _init_layers(self) -> None:
        self.pixels = PIXELS.to(self.device)
        self.scratch = [None, None]

    def _to_engine(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"W1": params["H.weight"].T, "b1": params["H.bias"].reshape(1, -1),
                "W2": params["out.weight"].T, "b2": params["out.bias"].reshape(1, 10)}

    def _to_reference(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"H.weight": p["W1"].T.clone(), "H.bias": p["b1"].reshape(-1).clone(),
                "out.weight": p["W2"].T.clone(), "out.bias": p["b2"].reshape(10).clone()}

    def _forward(self, rows: torch.Tensor, keep_scale: torch.Tensor | None, v: dict[str, torch.Tensor] | None = None):
        """-> pre (P, 1, 10); the layers' inputs (pixels (P, 1, 256), h); the hidden activation h (P, 1, 40).
        v: as Population._forward's."""
        v = self.params.views if v is None else v
        x = self.images.index_select(0, rows)[:, self.pixels].unsqueeze(1)  # (P, 1, 256)
        h = self.hidden.forward(linear_invariant(x, v["W1"], v["b1"]))  # (P, 1, 40)
        pre = linear(h, v["W2"], v["b2"])  # (P, 1, 10)
        return pre, (x, h), (h,)

    def _backward(self, w, g, inputs, derivs, keep, scratch) -> None:
        """From the output delta in g["b2"] to the hidden layer (squared operands: SDLM's curvature)."""
        x, h = inputs
        (fh,) = derivs
        dh = linear_backward(h, g["b2"], w["W2"], g["W2"])  # (P, 1, 40)
        da1 = act_backward(dh, fh, g["b1"])
        linear_backward(x, da1, None, g["W1"])

    def _eval_pre(self, xb: torch.Tensor) -> torch.Tensor:
        v = self.params.views
        h = self.hidden.forward(torch.matmul(xb.reshape(len(xb), 256), v["W1"]) + v["b1"])  # (P, B, 40)
        return linear(h, v["W2"], v["b2"])  # (P, B, 10)
