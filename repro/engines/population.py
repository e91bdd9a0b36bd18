"""Lockstep engine: many members (seeds of one config) trained at batch size 1, each exactly as the
reference loop would train it alone, with every layer one batched matmul over members.

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

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from repro.config import Config
from repro.net.model import (
    BACKGROUND,
    PAD,
    SCALED_TANH_A,
    SCALED_TANH_S,
    draw_pass_randomness,
    h2_scheme,
    init_params,
    pad_background,
    run_generator,
    set_float_mode,
    shift_images,
)

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


def _act(name: str, a: torch.Tensor) -> torch.Tensor:
    if name == "tanh":
        return torch.tanh(a)
    if name == "scaled_tanh":
        return torch.tanh(a * SCALED_TANH_S).mul_(SCALED_TANH_A)
    return torch.relu(a)


def _act_grad(name: str, h: torch.Tensor) -> torch.Tensor:
    """Derivative of the activation, written in terms of its output h."""
    if name == "tanh":
        return 1.0 - h * h
    if name == "scaled_tanh":  # A*S*(1 - tanh^2) with tanh = h/A
        return (SCALED_TANH_A - h * h / SCALED_TANH_A) * SCALED_TANH_S
    return (h > 0).to(h.dtype)


@dataclass
class EvalResult:
    loss: torch.Tensor  # (P,) mean loss over the split
    error: torch.Tensor  # (P,) error fraction
    outputs: torch.Tensor | None = None  # (P, N, 10) output values when asked for


class Population:
    """P members of one config, each with its own seed, trained in lockstep on one dataset.

    This class computes the 1989 net; engine_fc.FCPopulation reuses everything but the layer maths for the
    paper's fully connected comparison network (SHAPES, the layout conversions, step and evaluate).
    """

    SHAPES = SHAPES

    def __init__(self, cfg: Config, seeds: list[int], x_train: torch.Tensor, y_train: torch.Tensor, device="cpu"):
        set_float_mode()
        self.cfg, self.seeds, self.device = cfg, list(seeds), torch.device(device)
        P = self.members = len(self.seeds)
        self.n_train = len(x_train)
        self.generators = [run_generator(s) for s in self.seeds]
        self.params = FlatParams(P, self.device, self.SHAPES)
        for m, gen in enumerate(self.generators):  # same init draws as the reference loop
            for k, v in self._to_engine(init_params(cfg, gen)).items():
                self.params.views[k][m] = v
        self.grads = FlatParams(P, self.device, self.SHAPES)
        if cfg.optimizer == "sdlm":  # see sdlm.py: this step's curvature, its running average, squared weights
            self.curv = FlatParams(P, self.device, self.SHAPES)
            self.h_avg = torch.zeros_like(self.params.flat)
            self.w_sq = FlatParams(P, self.device, self.SHAPES)
            self.ddh1_padded = torch.zeros(P, 144, 12, device=self.device)
        if cfg.optimizer == "adamw":
            self.exp_avg = torch.zeros_like(self.params.flat)
            self.exp_avg_sq = torch.zeros_like(self.params.flat)
        self.step_count = 0
        self.mask = h2_mask(cfg.h2_scheme).to(self.device)
        self.h1_patches = H1_PATCHES.to(self.device)
        self.h2_patches = H2_PATCHES.reshape(-1).to(self.device)
        self.h1_interior = H1_INTERIOR.to(self.device)
        # Training images, padded and flattened; with shifts, one copy per possible (dy, dx).
        s = cfg.shift
        offsets = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)]  # row-major, as _pass_inputs codes them
        versions = [shift_images(x_train, dy, dx, cfg.shift_mode) for dy, dx in offsets]
        padded = torch.nn.functional.pad(torch.stack(versions), (PAD,) * 4, value=BACKGROUND)
        self.images = padded.reshape(len(versions) * self.n_train, 400).to(self.device)  # (S*N, 400)
        self.targets = (torch.nn.functional.one_hot(y_train, 10).float() * 2 - 1).to(self.device)  # (N, 10)
        self.labels = y_train.to(self.device)
        # Scratch: H1 planes padded with background; only the interior is rewritten each step.
        self.h1_padded = torch.full((P, 144, 12), BACKGROUND, device=self.device)
        self.dh1_padded = torch.zeros(P, 144, 12, device=self.device)

    def _to_engine(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return to_engine(params, self.cfg.h2_scheme)

    # --- one pass ----------------------------------------------------------------------------------
    def _pass_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-member image rows (P, N) into self.images and dropout scales (P, N, 192), from each member's
        own generator in the reference loop's order, on the engine's device."""
        rows, scale = self._draw_pass()
        return rows.to(self.device), None if scale is None else scale.to(self.device)

    def _draw_pass(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As `_pass_inputs`, on the CPU (where the generators are)."""
        N, cfg = self.n_train, self.cfg
        rows, keeps = [], []
        side = 2 * cfg.shift + 1
        for gen in self.generators:
            shifts, keep = draw_pass_randomness(gen, N, cfg)
            code = torch.zeros(N, dtype=torch.int64) if shifts is None else (shifts[:, 0] + cfg.shift) * side + (shifts[:, 1] + cfg.shift)
            rows.append(code * N + torch.arange(N))
            if keep is not None:
                keeps.append(keep[:, ENGINE_FROM_REFERENCE_192] / (1.0 - cfg.dropout))
        return torch.stack(rows), torch.stack(keeps) if keeps else None

    def train_pass(self, pass_index: int) -> None:
        rows, scale = self._pass_inputs()
        lr = self.cfg.lr_at_pass(pass_index)
        for i in range(self.n_train):
            self.step(rows[:, i], i, None if scale is None else scale[:, i], lr)

    # --- one step for all members --------------------------------------------------------------------
    def step(self, rows: torch.Tensor, i: int, keep_scale: torch.Tensor | None, lr: float) -> None:
        cfg, v, g = self.cfg, self.params.views, self.grads.views
        act = cfg.hidden_activation
        P = self.members
        # forward
        x = self.images.index_select(0, rows)  # (P, 400)
        p1 = x[:, self.h1_patches]  # (P, 64, 25)
        h1 = _act(act, torch.baddbmm(v["b1"], p1, v["W1"]))  # (P, 64, 12)
        self.h1_padded[:, self.h1_interior] = h1
        p2 = self.h1_padded[:, self.h2_patches].view(P, 16, 300)  # (P, 16, 25*12)
        h2 = _act(act, torch.baddbmm(v["b2"], p2, v["W2"])).view(P, 1, 192)
        h2_in = h2 if keep_scale is None else h2 * keep_scale.unsqueeze(1)
        # (P,1,192)@(P,192,30) as multiply-and-sum: bmm gives a member different rounding depending on its
        # place in the batch for this shape, and a member's numbers must not depend on its neighbours.
        h3 = _act(act, (h2_in.transpose(1, 2) * v["W3"]).sum(1, keepdim=True) + v["b3"])  # (P, 1, 30)
        pre = torch.baddbmm(v["b4"], h3, v["W4"])  # (P, 1, 10)
        # backward: d loss / d pre, written straight into the output bias gradient
        sdlm = cfg.optimizer == "sdlm"
        self._output_delta(pre, i, g["b4"], self.curv.views["b4"] if sdlm else None)
        da4 = g["b4"]
        f3, f2, f1 = _act_grad(act, h3), _act_grad(act, h2).view(P, 16, 12), _act_grad(act, h1)
        torch.bmm(h3.transpose(1, 2), da4, out=g["W4"])
        torch.mul(torch.bmm(da4, v["W4"].transpose(1, 2)), f3, out=g["b3"])
        da3 = g["b3"]
        torch.bmm(h2_in.transpose(1, 2), da3, out=g["W3"])
        dh2 = torch.bmm(da3, v["W3"].transpose(1, 2))  # (P, 1, 192)
        if keep_scale is not None:
            dh2 = dh2 * keep_scale.unsqueeze(1)
        torch.mul(dh2.view(P, 16, 12), f2, out=g["b2"])
        da2 = g["b2"]
        torch.bmm(p2.transpose(1, 2), da2, out=g["W2"])
        g["W2"].mul_(self.mask)  # connections the scheme leaves out do not exist: no gradient
        dp2 = torch.bmm(da2, v["W2"].transpose(1, 2)).view(P, 400, 12)
        self.dh1_padded.zero_()
        self.dh1_padded.index_add_(1, self.h2_patches, dp2)
        torch.mul(self.dh1_padded[:, self.h1_interior], f1, out=g["b1"])
        torch.bmm(p1.transpose(1, 2), g["b1"], out=g["W1"])
        if sdlm:
            self._curvature(p1, p2, h2_in, h3, f1, f2, f3, keep_scale)
        self._update(lr)

    def _output_delta(self, pre: torch.Tensor, i: int, delta: torch.Tensor, curvature: torch.Tensor | None) -> None:
        """d loss / d pre of pattern i into `delta`; with SDLM also the output's Gauss-Newton d2L/dpre^2."""
        cfg = self.cfg
        if cfg.output_activation:
            y = _act(cfg.output_activation, pre)
            f = _act_grad(cfg.output_activation, y)
            torch.mul((y - self.targets[i]) * (2.0 / 10.0), f, out=delta)
            if curvature is not None:  # (2/10) f'(pre)^2
                torch.mul(f * f, 2.0 / 10.0, out=curvature)
        else:
            prob = torch.softmax(pre, dim=-1)
            if curvature is not None:  # diagonal of the cross-entropy Gauss-Newton matrix: p (1 - p)
                torch.mul(prob, 1.0 - prob, out=curvature)
            prob[:, :, self.labels[i]] -= 1.0
            delta.copy_(prob)

    def _curvature(self, p1, p2, h2_in, h3, f1, f2, f3, keep_scale) -> None:
        """SDLM's second backward pass (see sdlm.py): the backward above with squared weights, squared
        inputs and squared activation derivatives, into self.curv; curv.views["b4"] is already set."""
        c, P = self.curv.views, self.members
        torch.mul(self.params.flat, self.params.flat, out=self.w_sq.flat)  # every weight squared, in one op
        wsq = self.w_sq.views
        dd4 = c["b4"]
        torch.bmm((h3 * h3).transpose(1, 2), dd4, out=c["W4"])
        torch.mul(torch.bmm(dd4, wsq["W4"].transpose(1, 2)), f3 * f3, out=c["b3"])
        dd3 = c["b3"]
        torch.bmm((h2_in * h2_in).transpose(1, 2), dd3, out=c["W3"])
        ddh2 = torch.bmm(dd3, wsq["W3"].transpose(1, 2))  # (P, 1, 192)
        if keep_scale is not None:
            ddh2 = ddh2 * (keep_scale * keep_scale).unsqueeze(1)
        torch.mul(ddh2.view(P, 16, 12), f2 * f2, out=c["b2"])
        dd2 = c["b2"]
        torch.bmm((p2 * p2).transpose(1, 2), dd2, out=c["W2"])
        c["W2"].mul_(self.mask)  # masked connections do not exist: their h stays 0
        ddp2 = torch.bmm(dd2, wsq["W2"].transpose(1, 2)).view(P, 400, 12)  # masked W2 are 0, so are their squares
        self.ddh1_padded.zero_()
        self.ddh1_padded.index_add_(1, self.h2_patches, ddp2)
        torch.mul(self.ddh1_padded[:, self.h1_interior], f1 * f1, out=c["b1"])
        torch.bmm((p1 * p1).transpose(1, 2), c["b1"], out=c["W1"])

    def _update(self, lr: float) -> None:
        w, grad, cfg = self.params.flat, self.grads.flat, self.cfg
        self.step_count += 1
        if cfg.optimizer == "sgd":
            w.sub_(grad, alpha=lr)
            return
        if cfg.optimizer == "sdlm":  # as sdlm.SDLM: h from the first pattern, then a running average
            if self.step_count == 1:
                self.h_avg.copy_(self.curv.flat)
            else:
                self.h_avg.lerp_(self.curv.flat, cfg.sdlm_gamma)
            w.addcdiv_(grad, self.h_avg + cfg.sdlm_mu, value=-lr)
            return
        # AdamW exactly as torch.optim.AdamW (single-tensor path) computes it
        b1, b2, t = cfg.adam_beta1, cfg.adam_beta2, self.step_count
        w.mul_(1.0 - lr * cfg.weight_decay)
        self.exp_avg.lerp_(grad, 1.0 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
        denom = (self.exp_avg_sq.sqrt() / (1.0 - b2**t) ** 0.5).add_(cfg.adam_eps)
        w.addcdiv_(self.exp_avg, denom, value=-lr / (1.0 - b1**t))

    # --- evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, keep_outputs: bool = False) -> EvalResult:
        """Every member on a whole split, batched over images (in chunks that bound memory)."""
        v, cfg, P = self.params.views, self.cfg, self.members
        act = cfg.hidden_activation
        x, y = x.to(self.device), y.to(self.device)
        # Evaluation has a batch, so other ops win than in a step (measured on 2 CPU cores): H1 as one
        # gather + matmul for all members at once, H2 as one dense (masked) convolution per member, which
        # beats a grouped convolution over members by about 5x.
        w1 = v["W1"].transpose(0, 1).reshape(25, P * 12)  # (25, P*12)
        w2 = v["W2"].view(P, 5, 5, 12, 12).permute(0, 4, 3, 1, 2).contiguous()  # (P, out, in, 5, 5)
        b1 = v["b1"].view(P, 8, 8, 12).permute(0, 3, 1, 2)  # (P, 12, 8, 8)
        b2 = v["b2"].transpose(1, 2).reshape(P, 12, 4, 4)
        chunk = 2048
        losses, wrong, outs = torch.zeros(P, device=self.device), torch.zeros(P, device=self.device), []
        for start in range(0, len(x), chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            B = len(xb)
            p1 = pad_background(xb).reshape(B, 400)[:, self.h1_patches]  # (B, 64, 25)
            a1 = (p1.reshape(B * 64, 25) @ w1).view(B, 8, 8, P, 12).permute(3, 0, 4, 1, 2)  # (P, B, 12, 8, 8)
            h1 = pad_background(_act(act, a1 + b1.unsqueeze(1)))  # (P, B, 12, 12, 12)
            h2 = torch.stack([F.conv2d(h1[m], w2[m], stride=2) for m in range(P)])  # (P, B, 12, 4, 4)
            h2 = _act(act, h2 + b2.unsqueeze(1)).permute(0, 1, 3, 4, 2).reshape(P, B, 192)  # position-major
            h3 = _act(act, torch.baddbmm(v["b3"], h2, v["W3"]))
            pre = torch.baddbmm(v["b4"], h3, v["W4"])  # (P, B, 10)
            out, loss_sum = self._outputs_and_loss(pre, yb)
            losses += loss_sum
            wrong += (pre.argmax(dim=2) != yb).float().sum(dim=1)
            if keep_outputs:
                outs.append(out)
        n = len(x)
        return EvalResult(losses / n, wrong / n, torch.cat(outs, dim=1) if keep_outputs else None)

    def _outputs_and_loss(self, pre: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pre (P, B, 10), labels (B,) -> output values (P, B, 10) and each member's summed loss (P,)."""
        cfg, P, B = self.cfg, pre.shape[0], pre.shape[1]
        if cfg.output_activation:
            out = _act(cfg.output_activation, pre)
            target = F.one_hot(y, 10).float() * 2 - 1
            return out, ((out - target) ** 2).mean(dim=2).sum(dim=1)
        logp = torch.log_softmax(pre, dim=2)
        return torch.softmax(pre, dim=2), -logp.gather(2, y.view(1, B, 1).expand(P, B, 1)).sum(dim=(1, 2))

    def member_params(self, m: int) -> dict[str, torch.Tensor]:
        """Paper-named parameters of member m (for checkpoints and tests)."""
        return self._to_reference({k: t[m].detach().cpu() for k, t in self.params.views.items()})

    def _to_reference(self, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return to_reference(p, self.cfg.h2_scheme)
