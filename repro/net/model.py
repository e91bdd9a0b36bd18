"""The 1989 network ("Net-1989"), written as plain functions over a dict of tensors.

    input 16x16, padded with -1 (background) to 20x20
    H1   12 maps of 8x8: 5x5 kernels at stride 2, weights shared within a map, one bias per *unit*
    H2   12 maps of 4x4: each map reads 8 of the 12 H1 maps (padded with -1) through 5x5 kernels at stride 2,
         one bias per unit
    H3   30 units, fully connected to H2
    out  10 units, fully connected to H3

Parameter names follow the paper's layers (H1, H2, H3, out) and are also the checkpoint keys. This file is
the readable definition used by the reference loop; the lockstep engines (repro/engines) compute the same
function for many members at once and are tested against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from repro.config import Config
from repro.net.activations import activation
from repro.net.loss import squared_error_targets

PAD = 2  # 5x5 kernels centred near the border need 2 pixels of background on each side
BACKGROUND = -1.0

# Which 8 of the 12 H1 maps each H2 map reads; the paper does not say. Each scheme: 12 rows of 8 indices.
H2_SCHEMES: dict[str, tuple[tuple[int, ...], ...]] = {
    # Earlier reproductions: H2 maps 0-3 read H1 maps 0-7, maps 4-7 read 4-11, maps 8-11 read 0-3 and 8-11.
    "block": tuple([tuple(range(0, 8))] * 4 + [tuple(range(4, 12))] * 4 + [tuple(range(0, 4)) + tuple(range(8, 12))] * 4),
    # Cyclic: H2 map j reads H1 maps j, j+1, ..., j+7 (mod 12). Same balance as "block" (every H1 map is read
    # by exactly 8 H2 maps) but no two H2 maps read the same set, so the 12 maps see 12 different
    # combinations of features (the spirit of LeNet-5's later, hand-made C3 table) rather than 3.
    "cyclic": tuple(tuple((j + k) % 12 for k in range(8)) for j in range(12)),
}


@dataclass(frozen=True)
class LayerShape:
    name: str
    units: int
    taps_per_unit: int  # incoming weighted connections of one unit (padding positions included)
    weights: int  # free weight parameters
    biases: int  # free bias parameters

    @property
    def connections(self) -> int:  # the paper counts the bias as a connection
        return self.units * (self.taps_per_unit + 1)

    @property
    def parameters(self) -> int:
        return self.weights + self.biases

    @property
    def macs(self) -> int:  # multiply-accumulates in one forward pass
        return self.units * self.taps_per_unit


def h2_scheme(name: str) -> torch.Tensor:
    """(12, 8) int64 tensor: row j lists the H1 maps read by H2 map j."""
    return torch.tensor(H2_SCHEMES[name], dtype=torch.int64)


def layer_shapes(params: dict[str, torch.Tensor]) -> list[LayerShape]:
    """Sizes of each layer, derived from the parameter tensors (so `repro info` is computed, not typed)."""
    out = []
    if "H.weight" in params:  # the fully connected comparison network
        return [LayerShape(n, params[f"{n}.bias"].numel(), params[f"{n}.weight"].shape[1],
                           params[f"{n}.weight"].numel(), params[f"{n}.bias"].numel()) for n in ("H", "out")]
    w1, b1 = params["H1.weight"], params["H1.bias"]
    out.append(LayerShape("H1", b1.numel(), w1[0].numel(), w1.numel(), b1.numel()))
    w2, b2 = params["H2.weight"], params["H2.bias"]
    out.append(LayerShape("H2", b2.numel(), w2[0].numel(), w2.numel(), b2.numel()))
    for name in ("H3", "out"):
        w, b = params[f"{name}.weight"], params[f"{name}.bias"]
        out.append(LayerShape(name, b.numel(), w.shape[1], w.numel(), b.numel()))
    return out


def fan_ins() -> dict[str, int]:
    return {"H1": 1 * 25, "H2": 8 * 25, "H3": 12 * 4 * 4, "out": 30}


FC40_HIDDEN = 40  # the paper's comparison network: 256 -> 40 -> 10, fully connected (10,690 connections)


def _uniform_weights(cfg: Config, gen: torch.Generator, shapes: dict[str, tuple[int, ...]],
                     fan_in: dict[str, int]) -> dict[str, torch.Tensor]:
    params = {}
    for name, shape in shapes.items():
        bound = cfg.init_scale / (math.sqrt(fan_in[name]) if cfg.init == "sqrt_fan_in" else fan_in[name])
        params[f"{name}.weight"] = _in_default_dtype((_rand32(shape, gen) * 2.0 - 1.0) * bound)
    return params


def _rand32(shape, gen: torch.Generator) -> torch.Tensor:
    """Uniform draws in float32 whatever torch's default dtype: a float64 run (the tests' oracle for the
    float32 engines) then starts from the same weights and draws the same dropout masks as a float32 run."""
    return torch.rand(shape, generator=gen, dtype=torch.float32)


def _in_default_dtype(w: torch.Tensor) -> torch.Tensor:
    return w.to(torch.get_default_dtype())


def _repro2022_weights(cfg: Config, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The earlier reproduction's weights (Karpathy's repro.py, 2022), draw for draw and rounding for rounding.

    It draws `(rand(shape) - 0.5) * 2 * 2.4 / fan_in ** 0.5` after torch.manual_seed(1337), in the order H1,
    H2, H3, out, and keeps H3 and out as (inputs, outputs) matrices: drawn in that shape here, then transposed
    into ours. H3's input index is map * 16 + position in both (H2 flattened map-major). `gen` seeded with s
    gives the stream of torch.manual_seed(s), so seed 1337 is its run.
    """
    fan_in = fan_ins()
    draw = {"H1": (12, 1, 5, 5), "H2": (12, 8, 5, 5), "H3": (12 * 4 * 4, 30), "out": (30, 10)}
    params = {}
    for name, shape in draw.items():
        w = _in_default_dtype((_rand32(shape, gen) - 0.5) * 2 * cfg.init_scale / fan_in[name] ** 0.5)
        params[f"{name}.weight"] = w.T.contiguous() if name in ("H3", "out") else w
    return params


def init_params(cfg: Config, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Fresh weights for one run, drawn from the run's generator (see `run_generator`) in paper order."""
    if cfg.architecture == "fc40":
        params = _uniform_weights(cfg, gen, {"H": (FC40_HIDDEN, 256), "out": (10, FC40_HIDDEN)},
                                  {"H": 256, "out": FC40_HIDDEN})
        params["H.bias"] = torch.zeros(FC40_HIDDEN)
        params["out.bias"] = torch.full((10,), cfg.output_bias_init)
        return params
    if cfg.init == "repro2022":
        params = _repro2022_weights(cfg, gen)
    else:
        shapes = {"H1": (12, 1, 5, 5), "H2": (12, 8, 5, 5), "H3": (30, 12 * 4 * 4), "out": (10, 30)}
        params = _uniform_weights(cfg, gen, shapes, fan_ins())
    params["H1.bias"] = torch.zeros(12, 8, 8)  # one bias per unit, not per map
    params["H2.bias"] = torch.zeros(12, 4, 4)
    params["H3.bias"] = torch.zeros(30)
    params["out.bias"] = torch.full((10,), cfg.output_bias_init)
    return params


def set_float_mode() -> None:
    """Flush denormal floats to zero, process-wide; the engine and the reference loop both call this.

    Why: with AdamW, the moment estimates of parameters whose gradient is exactly zero (dead ReLU units)
    decay geometrically into the denormal range (< 1.2e-38), where CPU arithmetic is 10-100x slower; a
    23-pass run then crawls. Values that small change no result we report.

    On CUDA, convolutions and matmuls must not use TF32 (10-bit mantissas; cuDNN allows it by default in
    this torch): evaluation would then differ from the CPU's float32 by far more than the equivalence tests
    allow.
    """
    torch.set_flush_denormal(True)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def run_generator(seed: int) -> torch.Generator:
    """The one random stream of a run: the seed fixes the initial weights, then every pass's draws."""
    return torch.Generator().manual_seed(seed)


def draw_pass_randomness(
    gen: torch.Generator, n: int, cfg: Config
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """All random numbers one pass needs, drawn up front in a fixed order: shifts, then dropout masks.

    Returns shifts (n, 2) int64 of (dy, dx) in [-shift, shift] or None, and keep (n, 192) float 0/1 masks for
    the input of H3 (map-major order, as `forward` flattens H2) or None. Drawing a whole pass at once lets
    the engine hand every member its own stream without one generator call per step.
    """
    shifts = torch.randint(-cfg.shift, cfg.shift + 1, (n, 2), generator=gen) if cfg.shift > 0 else None
    keep = (_rand32((n, 192), gen) >= cfg.dropout).float() if cfg.dropout > 0 else None
    return shifts, keep


def pad_background(x: torch.Tensor) -> torch.Tensor:
    """Pad the last two dims by PAD pixels of background (-1)."""
    return F.pad(x, (PAD, PAD, PAD, PAD), mode="constant", value=BACKGROUND)


def shift_images(x: torch.Tensor, dy: int, dx: int, mode: str) -> torch.Tensor:
    """Shift (..., 16, 16) images by dy rows and dx columns; "wrap" rolls, "pad" fills with background."""
    if mode == "wrap":
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    h, w = x.shape[-2:]
    out = torch.full_like(x, BACKGROUND)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


@dataclass
class Layers:
    """One forward pass, layer by layer (B patterns). Each layer's input xk and pre-activation ak:
    1989 net: x0 (B, 1, 20, 20) padded image, a1 (B, 12, 8, 8), x1 (B, 96, 12, 12) the 8 H1 maps each H2
    map reads (padded), a2 (B, 12, 4, 4), x2 (B, 192) H3's input (after dropout), a3 (B, 30), x3 (B, 30),
    a4 (B, 10). fc40: x0 (B, 256), a1 (B, 40), x1 (B, 40), a2 (B, 10); the rest None."""

    x0: torch.Tensor
    a1: torch.Tensor
    x1: torch.Tensor
    a2: torch.Tensor
    x2: torch.Tensor | None = None
    a3: torch.Tensor | None = None
    x3: torch.Tensor | None = None
    a4: torch.Tensor | None = None

    @property
    def pre(self) -> torch.Tensor:
        """(B, 10) output pre-activations."""
        return self.a2 if self.a4 is None else self.a4


def forward_layers(
    params: dict[str, torch.Tensor], x: torch.Tensor, cfg: Config, keep: torch.Tensor | None = None
) -> Layers:
    """x: (B, 16, 16) images -> every layer's input and pre-activation (see Layers).

    keep: optional (B, 192) 0/1 dropout mask on the input of H3 (already drawn by the caller, so that the
    reference loop and the engine consume identical random numbers); kept units are scaled by 1/(1-p).
    """
    act = cfg.hidden_activation
    if cfg.architecture == "fc40":  # the comparison network: one fully connected hidden layer of 40 units
        x0 = x.flatten(1)  # (B, 256)
        a1 = x0 @ params["H.weight"].T + params["H.bias"]
        x1 = activation(act, a1)  # (B, 40)
        return Layers(x0, a1, x1, x1 @ params["out.weight"].T + params["out.bias"])  # a2 (B, 10)
    x0 = pad_background(x.unsqueeze(1))  # (B, 1, 20, 20)
    a1 = F.conv2d(x0, params["H1.weight"], stride=2) + params["H1.bias"]  # (B, 12, 8, 8)
    # Gather, for each H2 map, the 8 H1 maps it reads, then one grouped convolution (group j = H2 map j). An
    # index_select: its gradient adds in index order (indexing with a list would add in thread order).
    x1 = pad_background(activation(act, a1)).index_select(1, h2_scheme(cfg.h2_scheme).flatten())  # (B, 96, 12, 12)
    a2 = F.conv2d(x1, params["H2.weight"], stride=2, groups=12) + params["H2.bias"]  # (B, 12, 4, 4)
    x2 = activation(act, a2).flatten(1)  # (B, 192), map-major
    if keep is not None:
        x2 = x2 * keep / (1.0 - cfg.dropout)
    a3 = x2 @ params["H3.weight"].T + params["H3.bias"]  # (B, 30)
    x3 = activation(act, a3)
    return Layers(x0, a1, x1, a2, x2, a3, x3, x3 @ params["out.weight"].T + params["out.bias"])  # a4 (B, 10)


def forward(
    params: dict[str, torch.Tensor], x: torch.Tensor, cfg: Config, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """x: (B, 16, 16) images -> (B, 10) output pre-activations (keep: as forward_layers)."""
    return forward_layers(params, x, cfg, keep).pre


def outputs(cfg: Config, pre: torch.Tensor) -> torch.Tensor:
    """The output units' values: (scaled) tanh for squared error, softmax probabilities for cross-entropy."""
    if cfg.output_activation:
        return activation(cfg.output_activation, pre)
    return torch.softmax(pre, dim=-1)


def loss_per_example(cfg: Config, pre: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) loss: squared error averaged over the 10 outputs (targets +-cfg.target), or softmax cross-entropy."""
    if cfg.output_activation:
        target = squared_error_targets(labels, cfg.target).to(pre.dtype)
        return ((activation(cfg.output_activation, pre) - target) ** 2).mean(dim=-1)
    return F.cross_entropy(pre, labels, reduction="none")
