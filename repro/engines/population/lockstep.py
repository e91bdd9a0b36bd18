"""The base of every torch lockstep engine (population, fused, generic): many members (seeds of one config)
trained at batch size 1, each exactly as the reference loop would train it alone, with every layer one batched
matmul over members. Population computes the 1989 net; fc40.FCPopulation swaps in the comparison net's layer
maths. What members share with every engine (generators, initial weights, images, draws) is
repro.engines.members.

Why hand-written: the 1989 net is ~64k multiply-adds, so a step costs its number of ops, not its
arithmetic. Generic per-sample autodiff (vmap(grad)) issues many small ops; here the forward and backward
are written out (about 40 ops per step for all members together) and checked against autograd in tests.

Layouts (P = members). Images are padded to 20x20 and flattened; H1 patches are gathered by a fixed
index, H2 patches likewise from H1 padded to 12x12 with background:
    W1 (P, 25, 12)   [tap, map]             b1 (P, 64, 12)  [position, map]  (one bias per unit)
    W2 (P, 300, 12)  [tap*12 + H1 map, H2 map], zero where the H2 scheme has no connection (masked)
    b2 (P, 16, 12)
    W3 (P, 192, 30)  [position*12 + map, unit]           b3 (P, 1, 30)
    W4 (P, 30, 10)                                        b4 (P, 1, 10)
All parameters live in one flat buffer (and gradients in a twin), so an optimizer step is a few ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from repro.config import Config
from repro.engines.members import EvalResult, Members, draw_threads
from repro.optim import flat_optimizer
from repro.engines.population.layers import (
    act_backward,
    gather_patches,
    linear,
    linear_backward,
    linear_invariant,
    one_blas_thread,
    output_delta,
    scatter_patches,
)
from repro.net import activations
from repro.net.metrics import exact_sum, is_wrong
from repro.net.loss import squared_error_targets
from repro.net.sdlm import curvature_window
from repro.net.model import BACKGROUND, PAD, h2_scheme, pad_background, set_float_mode

SHAPES = {
    "W1": (25, 12),
    "b1": (64, 12),
    "W2": (300, 12),
    "b2": (16, 12),
    "W3": (192, 30),
    "b3": (1, 30),
    "W4": (30, 10),
    "b4": (1, 10),
}


def _patch_index(in_size: int, out_size: int) -> torch.Tensor:
    """(out_size**2, 25) flat indices into a padded in_size x in_size plane: 5x5 taps at stride 2."""
    oy, ox, ky, kx = torch.meshgrid(*(torch.arange(n) for n in (out_size, out_size, 5, 5)), indexing="ij")
    return ((2 * oy + ky) * in_size + (2 * ox + kx)).reshape(out_size * out_size, 25)


H1_PATCHES = _patch_index(20, 8)  # (64, 25) into the 20x20 padded input
H2_PATCHES = _patch_index(12, 4)  # (16, 25) into the 12x12 padded H1 planes
_iy, _ix = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
H1_INTERIOR = ((_iy + PAD) * 12 + (_ix + PAD)).reshape(64)  # where H1's 8x8 sits in its 12x12 padded plane
# H2 flattening: the reference is map-major (map*16 + position), the engine position-major (position*12 + map).
ENGINE_FROM_REFERENCE_192 = torch.arange(192).reshape(12, 16).T.reshape(192)


def h2_mask(scheme_name: str) -> torch.Tensor:
    """(300, 12) 0/1: entry [tap*12 + i, j] is 1 when H2 map j reads H1 map i."""
    scheme = h2_scheme(scheme_name)
    reads = torch.zeros(12, 12)
    reads[torch.arange(12).repeat_interleave(8), scheme.flatten()] = 1.0  # [H2 map, H1 map]
    return reads.T.unsqueeze(0).expand(25, 12, 12).reshape(300, 12).contiguous()


def to_engine(params: dict[str, torch.Tensor], scheme_name: str) -> dict[str, torch.Tensor]:
    """Reference (paper-named) parameters of one member -> engine layout."""
    scheme = h2_scheme(scheme_name)
    w2 = torch.zeros(25, 12, 12)  # [tap, H1 map, H2 map]
    ref_w2 = params["H2.weight"].reshape(12, 8, 25)  # [H2 map, k, tap]
    for j in range(12):
        w2[:, scheme[j], j] = ref_w2[j].T
    return {
        "W1": params["H1.weight"].reshape(12, 25).T,
        "b1": params["H1.bias"].reshape(12, 64).T,
        "W2": w2.reshape(300, 12),
        "b2": params["H2.bias"].reshape(12, 16).T,
        "W3": params["H3.weight"].T[ENGINE_FROM_REFERENCE_192],
        "b3": params["H3.bias"].reshape(1, 30),
        "W4": params["out.weight"].T,
        "b4": params["out.bias"].reshape(1, 10),
    }


def to_reference(p: dict[str, torch.Tensor], scheme_name: str) -> dict[str, torch.Tensor]:
    """Engine layout of one member -> reference (paper-named) parameters; inverse of `to_engine`."""
    scheme = h2_scheme(scheme_name)
    w2 = p["W2"].reshape(25, 12, 12)
    h2w = torch.stack([w2[:, scheme[j], j].T for j in range(12)]).reshape(12, 8, 5, 5)
    h3w = torch.empty(30, 192)
    h3w[:, ENGINE_FROM_REFERENCE_192] = p["W3"].T
    return {
        "H1.weight": p["W1"].T.reshape(12, 1, 5, 5).clone(),
        "H1.bias": p["b1"].T.reshape(12, 8, 8).clone(),
        "H2.weight": h2w.clone(),
        "H2.bias": p["b2"].T.reshape(12, 4, 4).clone(),
        "H3.weight": h3w,
        "H3.bias": p["b3"].reshape(30).clone(),
        "out.weight": p["W4"].T.clone(),
        "out.bias": p["b4"].reshape(10).clone(),
    }


def flat_views(flat: torch.Tensor, members: int, shapes: dict[str, tuple[int, int]] = SHAPES) -> dict[str, torch.Tensor]:
    """Per-tensor views (P, *shape) of a flat buffer laid out as FlatParams lays out its buffer."""
    views, offset = {}, 0
    for k, s in shapes.items():
        n = members * s[0] * s[1]
        views[k] = flat[offset : offset + n].view(members, *s)
        offset += n
    return views


class FlatParams:
    """One contiguous buffer holding every member's tensors; `views[name]` is (P, *SHAPES[name])."""

    def __init__(self, members: int, device: torch.device, shapes: dict[str, tuple[int, int]] = SHAPES):
        self.flat = torch.zeros(sum(members * s[0] * s[1] for s in shapes.values()), device=device)
        self.views = flat_views(self.flat, members, shapes)


class Population:
    """P members of one config, each with its own seed, trained in lockstep on one dataset.

    This class computes the 1989 net; fc40.FCPopulation reuses everything but the layer maths
    (SHAPES, the layout conversions, `_forward`, `_backward`, `_eval_pre`) for the paper's fully connected
    comparison network.
    """

    SHAPES = SHAPES
    ENGINE = "population"  # the registry's name, recorded in state_dict
    OUTPUT_BIAS = "b4"  # the output layer's bias: its gradient buffer holds d loss / d pre
    EVAL_CHUNK: int | None = 2048  # images per evaluation chunk (bounds memory); None: the whole split at once

    def __init__(self, cfg: Config, seeds: list[int], x_train: torch.Tensor, y_train: torch.Tensor, device="cpu"):
        set_float_mode()
        self.cfg, self.seeds, self.device = cfg, list(seeds), torch.device(device)
        P = self.members = len(self.seeds)
        self.n_train = len(x_train)
        self.hidden = activations.get(cfg.hidden_activation)
        # generators, initial weights, the image table and each pass's draws: what every engine's members share
        self.shared = Members(cfg, self.seeds, x_train, self.device)
        self.generators, self.images = self.shared.generators, self.shared.images  # images: (S*N, 400)
        self.params = FlatParams(P, self.device, self.SHAPES)
        for m, initial in enumerate(self.shared.initial_params):  # the reference loop's initial weights
            for k, v in self._to_engine(initial).items():
                self.params.views[k][m] = v
        self.grads = FlatParams(P, self.device, self.SHAPES)
        self.optimizer = flat_optimizer(cfg, self.params.flat)
        self.curv = self.w_sq = None
        if self.optimizer.needs_curvature:  # see sdlm.py: this step's curvature, and the squared weights
            self.curv = FlatParams(P, self.device, self.SHAPES)
            self.w_sq = FlatParams(P, self.device, self.SHAPES)
        # SDLM "running" computes the curvature at every step; "per_pass" only in estimate_curvature
        self.curvature_each_step = self.curv is not None and self.optimizer.curvature_each_step
        self.step_count = 0
        self.targets = squared_error_targets(y_train, cfg.target).to(self.device)  # (N, 10)
        self.labels = y_train.to(self.device)
        self._init_layers()

    def _init_layers(self) -> None:
        """Index tables and scratch buffers of the layer maths."""
        P = self.members
        self.mask = h2_mask(self.cfg.h2_scheme).to(self.device)
        self.h1_patches = H1_PATCHES.to(self.device)
        self.h2_patches = H2_PATCHES.reshape(-1).to(self.device)
        self.h1_interior = H1_INTERIOR.to(self.device)
        # gradient (and, for SDLM, curvature) summed back onto the padded H1 planes
        self.scratch = [torch.zeros(P, 144, 12, device=self.device) for _ in range(2)]

    def _to_engine(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return to_engine(params, self.cfg.h2_scheme)

    # --- one pass ----------------------------------------------------------------------------------
    def _pass_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-member image rows (P, N) into self.images and dropout scales (P, N, 192), from each member's
        own generator in the reference loop's order, on the engine's device."""
        rows, scale = self._draw_pass()
        return rows.to(self.device), None if scale is None else scale.to(self.device)

    def _draw_pass(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As `_pass_inputs`, on the CPU (where the generators are). Members draw in parallel threads (a pass
        of dropout masks is 1.4 M draws per member, measured as a quarter of a native dropout pass when drawn
        serially)."""
        N, cfg = self.n_train, self.cfg
        rows = torch.empty(self.members, N, dtype=torch.int64)
        scale = torch.empty(self.members, N, 192) if cfg.dropout > 0 else None

        def store(m: int, shifts: torch.Tensor | None, keep: torch.Tensor | None) -> None:
            rows[m] = self.shared.image_rows(torch.arange(N), shifts)
            if keep is not None:
                torch.div(keep[:, ENGINE_FROM_REFERENCE_192], 1.0 - cfg.dropout, out=scale[m])

        self.shared.draw(store, draw_threads())
        return rows, scale

    def train_pass(self, pass_index: int) -> None:
        if self.curv is not None and not self.curvature_each_step:
            self.estimate_curvature(pass_index)
        rows, scale = self._pass_inputs()
        lr = self.cfg.lr_at_pass(pass_index)
        for i in range(self.n_train):
            self.step(rows[:, i], i, None if scale is None else scale[:, i], lr)

    def estimate_curvature(self, pass_index: int) -> None:
        """SDLM "per_pass": h := the mean curvature over the pass's window of patterns (sdlm.curvature_window),
        unshifted and without dropout, at the current weights (see sdlm.py)."""
        k = self.cfg.sdlm_estimate_patterns
        torch.mul(self.params.flat, self.params.flat, out=self.w_sq.flat)
        total = torch.zeros_like(self.curv.flat)
        g, curv, out = self.grads.views, self.curv.views, self.OUTPUT_BIAS
        for j in curvature_window(pass_index, self.n_train, k).tolist():
            rows = self.shared.image_rows(torch.full((self.members,), j, dtype=torch.int64, device=self.device))
            pre, inputs, hidden = self._forward(rows, None)
            derivs = [self.hidden.grad_from_output(h) for h in hidden]
            output_delta(self.cfg, pre, self.targets[j], self.labels[j], g[out], curv[out])
            self._curvature_backward(inputs, derivs, None)
            total += self.curv.flat
        self.optimizer.set_curvature(total.div_(k))

    # --- one step for all members --------------------------------------------------------------------
    def step(self, rows: torch.Tensor, i: int, keep_scale: torch.Tensor | None, lr: float) -> None:
        """Pattern i for every member: rows (P,) its (shifted) image rows, keep_scale (P, 192) or None."""
        pre, inputs, hidden = self._forward(rows, keep_scale)
        derivs = [self.hidden.grad_from_output(h) for h in hidden]
        g, out = self.grads.views, self.OUTPUT_BIAS
        each_step = self.curvature_each_step
        curv = self.curv.views if each_step else None
        output_delta(self.cfg, pre, self.targets[i], self.labels[i], g[out], None if curv is None else curv[out])
        self._backward(self.params.views, g, inputs, derivs, keep_scale, self.scratch[0])
        if each_step:
            torch.mul(self.params.flat, self.params.flat, out=self.w_sq.flat)  # every weight squared, in one op
            self._curvature_backward(inputs, derivs, keep_scale)
        self.step_count += 1
        self.optimizer.step(self.params.flat, self.grads.flat, lr, self.step_count,
                            self.curv.flat if each_step else None)

    def _curvature_backward(self, inputs, derivs, keep_scale) -> None:
        """SDLM's curvature into self.curv, from the output's in curv[OUTPUT_BIAS]: the same backward with
        everything squared (see sdlm.py); self.w_sq must hold the squared weights."""
        sq = lambda t: None if t is None else t * t  # noqa: E731
        self._backward(self.w_sq.views, self.curv.views, [sq(t) for t in inputs], [sq(f) for f in derivs],
                       sq(keep_scale), self.scratch[1])

    def _forward(self, rows: torch.Tensor, keep_scale: torch.Tensor | None, v: dict[str, torch.Tensor] | None = None):
        """-> pre (P, 1, 10); the layers' inputs (p1, p2, h3's input, the output layer's input); the hidden
        activations (h1 (P, 64, 12), h2 (P, 16, 12), h3 (P, 1, 30)), shaped like their deltas.
        v: the parameters' views (default: the population's own; the generic engine passes those it differentiates).
        No op writes into a tensor it did not make, so torch.func can trace it."""
        v, P = self.params.views if v is None else v, self.members
        x = self.images.index_select(0, rows)  # (P, 400)
        p1 = gather_patches(x, self.h1_patches)  # (P, 64, 25)
        h1 = self.hidden.forward(linear(p1, v["W1"], v["b1"]))  # (P, 64, 12)
        h1_padded = F.pad(h1.view(P, 8, 8, 12), (0, 0, PAD, PAD, PAD, PAD), value=BACKGROUND).view(P, 144, 12)
        p2 = gather_patches(h1_padded, self.h2_patches).view(P, 16, 300)  # (P, 16, 25*12)
        h2 = self.hidden.forward(linear(p2, v["W2"], v["b2"]))  # (P, 16, 12)
        h2_in = h2.view(P, 1, 192) if keep_scale is None else h2.view(P, 1, 192) * keep_scale.unsqueeze(1)
        h3 = self.hidden.forward(linear_invariant(h2_in, v["W3"], v["b3"]))  # (P, 1, 30)
        pre = linear(h3, v["W4"], v["b4"])  # (P, 1, 10)
        return pre, (p1, p2, h2_in, h3), (h1, h2, h3)

    def _backward(self, w, g, inputs, derivs, keep, scratch: torch.Tensor) -> None:
        """From the output delta in g["b4"] down to H1, into g (a FlatParams' views). With w, inputs, derivs
        and keep (dropout scales (P, 192) or None) squared, g receives SDLM's curvature instead."""
        P = self.members
        p1, p2, h2_in, h3 = inputs
        f1, f2, f3 = derivs
        dh3 = linear_backward(h3, g["b4"], w["W4"], g["W4"])  # (P, 1, 30)
        da3 = act_backward(dh3, f3, g["b3"])
        dh2 = linear_backward(h2_in, da3, w["W3"], g["W3"])  # (P, 1, 192)
        if keep is not None:
            dh2 = dh2 * keep.unsqueeze(1)
        da2 = act_backward(dh2, f2, g["b2"])  # (P, 16, 12)
        dp2 = linear_backward(p2, da2, w["W2"], g["W2"]).view(P, 400, 12)  # masked W2 are 0, so are their squares
        g["W2"].mul_(self.mask)  # connections the scheme leaves out do not exist: no gradient, no curvature
        dh1 = scatter_patches(dp2, self.h2_patches, scratch)[:, self.h1_interior]  # (P, 64, 12)
        da1 = act_backward(dh1, f1, g["b1"])
        linear_backward(p1, da1, None, g["W1"])

    # --- evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, keep_outputs: bool = False) -> EvalResult:
        """Every member on a whole split, batched over images (in chunks that bound memory).

        A member's numbers do not depend on its population: errors by metrics.is_wrong on the output values,
        the loss an exact sum of the per-pattern losses (metrics.exact_sum), float64.
        """
        x, y = x.to(self.device), y.to(self.device)
        with one_blas_thread(self.device):
            return self._evaluate(x, y, keep_outputs)

    def _evaluate(self, x: torch.Tensor, y: torch.Tensor, keep_outputs: bool) -> EvalResult:
        chunk = self.EVAL_CHUNK or max(len(x), 1)
        losses, wrong, outs = [], torch.zeros(self.members, dtype=torch.int64, device=self.device), []
        for start in range(0, len(x), chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            out, loss = self._outputs_and_losses(self._eval_pre(xb), yb)
            losses.append(loss)
            wrong += is_wrong(out, yb).sum(dim=1)
            if keep_outputs:
                outs.append(out)
        n = len(x)
        mean_loss = (exact_sum(torch.cat(losses, dim=1)) / n).to(self.device)
        return EvalResult(mean_loss, wrong.double() / n, torch.cat(outs, dim=1) if keep_outputs else None)

    def _eval_pre(self, xb: torch.Tensor) -> torch.Tensor:
        """Images (B, 16, 16) -> every member's output pre-activations (P, B, 10)."""
        v, P, act = self.params.views, self.members, self.hidden.forward
        # Evaluation has a batch, so other ops win than in a step (measured on 2 CPU cores): H1 as one
        # gather + a batched matmul, H2 as one dense (masked) convolution per member, which
        # beats a grouped convolution over members by about 5x.
        w2 = v["W2"].view(P, 5, 5, 12, 12).permute(0, 4, 3, 1, 2).contiguous()  # (P, out, in, 5, 5)
        b1 = v["b1"].view(P, 8, 8, 12).permute(0, 3, 1, 2)  # (P, 12, 8, 8)
        b2 = v["b2"].transpose(1, 2).reshape(P, 12, 4, 4)
        B = len(xb)
        p1 = pad_background(xb).reshape(B, 400)[:, self.h1_patches]  # (B, 64, 25)
        # one product per member (a product over all members at once, (B*64, 25) @ (25, P*12), is blocked by
        # the BLAS according to P: see one_blas_thread)
        a1 = torch.bmm(p1.reshape(1, B * 64, 25).expand(P, -1, -1), v["W1"])  # (P, B*64, 12)
        a1 = a1.view(P, B, 8, 8, 12).permute(0, 1, 4, 2, 3)  # (P, B, 12, 8, 8)
        h1 = pad_background(act(a1 + b1.unsqueeze(1)))  # (P, B, 12, 12, 12)
        h2 = torch.stack([F.conv2d(h1[m], w2[m], stride=2) for m in range(P)])  # (P, B, 12, 4, 4)
        h2 = act(h2 + b2.unsqueeze(1)).permute(0, 1, 3, 4, 2).reshape(P, B, 192)  # position-major
        h3 = act(linear(h2, v["W3"], v["b3"]))  # (P, B, 30)
        return linear(h3, v["W4"], v["b4"])  # (P, B, 10)

    def _outputs_and_losses(self, pre: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pre (P, B, 10), labels (B,) -> output values (P, B, 10) and per-pattern losses (P, B)."""
        cfg, P, B = self.cfg, pre.shape[0], pre.shape[1]
        if cfg.output_activation:
            out = activations.get(cfg.output_activation).forward(pre)
            target = squared_error_targets(y, cfg.target)
            return out, ((out - target) ** 2).mean(dim=2)
        logp = torch.log_softmax(pre, dim=2)
        return torch.softmax(pre, dim=2), -logp.gather(2, y.view(1, B, 1).expand(P, B, 1)).squeeze(2)

    # --- members and state ----------------------------------------------------------------------------
    def member_params(self, m: int) -> dict[str, torch.Tensor]:
        """Paper-named parameters of member m (for checkpoints and tests)."""
        return self._to_reference({k: t[m].detach().cpu() for k, t in self.params.views.items()})

    def _to_reference(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return to_reference(p, self.cfg.h2_scheme)

    def _generator_states(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def state_dict(self) -> dict:
        """Everything needed to continue training bit for bit from here (between passes): the flat
        parameters (on the CPU), the optimizer's buffers, the step count and each member's random stream."""
        return {
            "engine": self.ENGINE,
            "seeds": list(self.seeds),
            "config_digest": self.cfg.digest(),
            "params": self.params.flat.detach().cpu().clone(),
            "optimizer": {k: v.cpu() for k, v in self.optimizer.state_dict().items()},
            "step_count": self.step_count,
            "generators": self._generator_states(),
        }

    def load_state_dict(self, d: dict) -> None:
        """Inverse of `state_dict`, into a population built with the same config, seeds and training set."""
        if (d.get("engine"), list(d["seeds"]), d["config_digest"]) != (self.ENGINE, self.seeds, self.cfg.digest()):
            raise ValueError(f"state of the {d.get('engine')} engine, seeds {d['seeds']}, config {d['config_digest']} does "
                             f"not fit this {self.ENGINE} engine of seeds {self.seeds}, config {self.cfg.digest()}")
        if d["params"].shape != self.params.flat.shape:
            raise ValueError(f"state params have shape {tuple(d['params'].shape)}, expected {tuple(self.params.flat.shape)}")
        self.params.flat.copy_(d["params"])
        self.optimizer.load_state_dict(d["optimizer"])
        self.step_count = int(d["step_count"])
        for g, s in zip(self.generators, d["generators"], strict=True):
            g.set_state(s)
