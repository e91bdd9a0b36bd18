"""Lockstep engine for the paper's comparison network (architecture "fc40"): 256 inputs, one fully connected
hidden layer of 40 units, 10 outputs (10,690 connections). Everything but the layer maths (seeds, draws,
shifted images, optimizers, output loss) is the 1989 engine's; see engine.Population.

Layout (P = members): W1 (P, 256, 40) [pixel, unit], b1 (P, 1, 40), W2 (P, 40, 10), b2 (P, 1, 10).
"""

from __future__ import annotations

import torch

from repro.engines.population import PAD, EvalResult, Population, _act, _act_grad

FC_SHAPES = {"W1": (256, 40), "b1": (1, 40), "W2": (40, 10), "b2": (1, 10)}
_iy, _ix = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
PIXELS = ((_iy + PAD) * 20 + (_ix + PAD)).reshape(256)  # the 16x16 image inside its 20x20 padded copy


class FCPopulation(Population):
    SHAPES = FC_SHAPES

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pixels = PIXELS.to(self.device)

    def _to_engine(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"W1": params["H.weight"].T, "b1": params["H.bias"].reshape(1, -1),
                "W2": params["out.weight"].T, "b2": params["out.bias"].reshape(1, 10)}

    def _to_reference(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"H.weight": p["W1"].T.clone(), "H.bias": p["b1"].reshape(-1).clone(),
                "out.weight": p["W2"].T.clone(), "out.bias": p["b2"].reshape(10).clone()}

    def step(self, rows: torch.Tensor, i: int, keep_scale: torch.Tensor | None, lr: float) -> None:
        cfg, v, g = self.cfg, self.params.views, self.grads.views
        act = cfg.hidden_activation
        x = self.images.index_select(0, rows)[:, self.pixels].unsqueeze(1)  # (P, 1, 256)
        # multiply-and-sum rather than bmm for (1,256)@(256,40): batch-invariant rounding (see engine.py)
        h = _act(act, (x.transpose(1, 2) * v["W1"]).sum(1, keepdim=True) + v["b1"])  # (P, 1, 40)
        pre = torch.baddbmm(v["b2"], h, v["W2"])  # (P, 1, 10)
        sdlm = cfg.optimizer == "sdlm"
        self._output_delta(pre, i, g["b2"], self.curv.views["b2"] if sdlm else None)
        fh = _act_grad(act, h)
        torch.bmm(h.transpose(1, 2), g["b2"], out=g["W2"])
        torch.mul(torch.bmm(g["b2"], v["W2"].transpose(1, 2)), fh, out=g["b1"])
        torch.bmm(x.transpose(1, 2), g["b1"], out=g["W1"])
        if sdlm:  # the same backward with squared weights, inputs and derivatives (see sdlm.py)
            c = self.curv.views
            torch.bmm((h * h).transpose(1, 2), c["b2"], out=c["W2"])
            torch.mul(torch.bmm(c["b2"], (v["W2"] * v["W2"]).transpose(1, 2)), fh * fh, out=c["b1"])
            torch.bmm((x * x).transpose(1, 2), c["b1"], out=c["W1"])
        self._update(lr)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, keep_outputs: bool = False) -> EvalResult:
        v, act = self.params.views, self.cfg.hidden_activation
        x, y = x.to(self.device).reshape(len(x), 256), y.to(self.device)
        h = _act(act, torch.matmul(x, v["W1"]) + v["b1"])  # (P, N, 40)
        pre = torch.baddbmm(v["b2"], h, v["W2"])  # (P, N, 10)
        out, loss_sum = self._outputs_and_loss(pre, y)
        n = len(x)
        wrong = (pre.argmax(dim=2) != y).float().sum(dim=1)
        return EvalResult(loss_sum / n, wrong / n, out if keep_outputs else None)


def population_class(architecture: str) -> type[Population]:
    return FCPopulation if architecture == "fc40" else Population
