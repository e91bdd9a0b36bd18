"""Every knob of a run in one frozen dataclass.

The defaults are the 1989 procedure as the paper gives it; where the paper is silent the default is the
reading of earlier reproductions, and the field's comment says so. The value lists below are the only lists
of the options' values (the engines' codes are numbered from them), and every Config checks itself against
them when made (`__post_init__`: types, values, ranges and the rules between fields), however it is made. A
rung of the ablation ladder is a patch over these defaults (a dict of field -> value), applied with
`apply_patch`, which also rejects unknown fields, with a message that names where the patch came from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any

from repro.errors import ReproError

# The value lists of the coded settings (architecture, hidden_activation, output, optimizer) are also the
# compiled kernels' codes, in this order (repro.engines.codes numbers them; tests/test_codes.py checks kernel.c).
ARCHITECTURES = ("net1989", "fc40")
HIDDEN_ACTIVATIONS = ("tanh", "scaled_tanh", "relu")
OUTPUTS = ("tanh_mse", "scaled_tanh_mse", "softmax_ce")
# "repro2022": the earlier reproduction's own draw (its repro.py), so its single run can be retrained exactly
INITS = ("sqrt_fan_in", "fan_in", "repro2022")
H2_SCHEMES = ("block", "cyclic")  # see model.H2_SCHEMES; kept in sync by a test
OPTIMIZERS = ("sgd", "adamw", "sdlm")
LR_SCHEDULES = ("constant", "linear")
SHIFT_MODES = ("wrap", "pad")
SDLM_CURVATURES = ("running", "per_pass")


class ConfigError(ReproError, ValueError):
    """A config or patch that cannot be used; the message says where it came from and what is valid."""


@dataclass(frozen=True)
class Config:
    # --- model -------------------------------------------------------------------------------------
    architecture: str = "net1989"  # "fc40": the paper's comparison net, 256-40-10 fully connected
    hidden_activation: str = "tanh"  # paper: "scaled hyperbolic tangent" on all units; plain tanh as earlier repros
    output: str = "tanh_mse"  # squared error on tanh outputs, targets +-1 (earlier repros); "scaled_tanh_mse":
    # the paper's scaled tanh on the outputs too, so targets +-1 lie in its quasi-linear range
    init: str = "sqrt_fan_in"  # paper's text: U(+-2.4/F); earlier repros read U(+-2.4/sqrt(F)); "repro2022": the
    # same bounds drawn in the earlier reproduction's order and layout (its run is seed 1337; model.init_params)
    init_scale: float = 2.4  # paper
    target: float = 1.0  # paper: targets "within the quasi-linear range"; +-1 (earlier repros); squared error only
    output_bias_init: float = -1.0  # not in paper: 9 of 10 targets are -1 (earlier repros' choice)
    h2_scheme: str = "block"  # not in paper: which 8 of 12 H1 maps each H2 map reads
    # --- training ----------------------------------------------------------------------------------
    passes: int = 23  # paper
    optimizer: str = "sgd"  # paper used a diagonal-Hessian Newton method; plain SGD as earlier repros
    lr: float = 0.03  # not in paper: earlier repros' guess
    adam_beta1: float = 0.9  # torch defaults
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    weight_decay: float = 0.01  # AdamW's default decoupled weight decay (unused by SGD)
    # "sdlm" (the paper's diagonal-Hessian Newton method; see repro/net/sdlm.py): step lr / (sdlm_mu + h_kk)
    sdlm_mu: float = 0.02  # LeCun et al. 1998 (LeNet-5) used mu = 0.02; the 1989 paper gives no value
    sdlm_gamma: float = 0.01  # not in any paper: memory of the running average of h (~100 patterns)
    # how h is kept: "running": updated at every step from the current pattern, h := the first pattern's;
    # "per_pass": LeNet-5's way, re-estimated before each pass as the mean over sdlm_estimate_patterns
    # training patterns at the current weights, then held fixed through the pass
    sdlm_curvature: str = "running"
    sdlm_estimate_patterns: int = 500  # LeNet-5 (LeCun et al. 1998): "re-estimated on 500 patterns"
    lr_schedule: str = "constant"  # "linear": from lr (first pass) to lr*lr_final_factor (last pass)
    lr_final_factor: float = 1.0 / 3.0
    dropout: float = 0.0  # drop probability on the input of H3 (training only)
    shift: int = 0  # random shift of each presentation by -shift..+shift pixels in x and y
    shift_mode: str = "wrap"  # "wrap": torch.roll as earlier repros; "pad": background (-1) fill
    # --- a rung's own code (repro.rung_code) ------------------------------------------------
    # "<file>@<sha256 prefix>" per code file, joined by ", " when rungs are combined: a changed file is a new
    # configuration (digest) and the record names the exact code. Set by the ladder, never by a patch.
    code: str = ""

    def __post_init__(self) -> None:
        """Every field's type, value list and range, and the rules between fields: no Config holds a value
        outside them, however it was made."""
        for f in fields(self):
            value = _check_value(f.name, getattr(self, f.name), _KINDS[f.type])
            if value is not getattr(self, f.name):  # an int given for a float field, stored as the float
                object.__setattr__(self, f.name, value)
        _check_rules(self)

    def replace(self, **changes: Any) -> "Config":
        return apply_patch(self, changes, source="replace()")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """Short stable hash of every field, used to name and match result records.

        Fields added after the first committed records (LATER_FIELDS) count only when set away from their
        default, so adding a field does not rename, and so orphan, every earlier record.
        """
        d = self.to_dict()
        for name in LATER_FIELDS:
            if d[name] == getattr(Config, name):
                del d[name]
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    @property
    def output_activation(self) -> str | None:
        """Activation of the output units for squared-error outputs; None for softmax cross-entropy."""
        return {"tanh_mse": "tanh", "scaled_tanh_mse": "scaled_tanh"}.get(self.output)

    def lr_at_pass(self, pass_index: int) -> float:
        """Learning rate used throughout pass `pass_index` (0-based)."""
        if self.lr_schedule == "constant" or self.passes == 1:
            return self.lr
        frac = pass_index / (self.passes - 1)
        return self.lr * (1.0 + (self.lr_final_factor - 1.0) * frac)


LATER_FIELDS = ("architecture", "target", "sdlm_curvature", "sdlm_estimate_patterns", "code")  # append fields added from now on; see Config.digest

_CHOICES = {
    "architecture": ARCHITECTURES,
    "hidden_activation": HIDDEN_ACTIVATIONS,
    "output": OUTPUTS,
    "init": INITS,
    "h2_scheme": H2_SCHEMES,
    "optimizer": OPTIMIZERS,
    "lr_schedule": LR_SCHEDULES,
    "shift_mode": SHIFT_MODES,
    "sdlm_curvature": SDLM_CURVATURES,
}

# (low, high, low_inclusive, high_inclusive) for numeric fields
_RANGES = {
    "init_scale": (0.0, None, False, True),
    "passes": (1, None, True, True),
    "lr": (0.0, None, False, True),
    "adam_beta1": (0.0, 1.0, True, False),
    "adam_beta2": (0.0, 1.0, True, False),
    "adam_eps": (0.0, None, False, True),
    "weight_decay": (0.0, None, True, True),
    "sdlm_mu": (0.0, None, False, True),  # mu > 0: masked H2 weights have h = 0 and gradient 0
    "sdlm_gamma": (0.0, 1.0, False, True),
    "lr_final_factor": (0.0, None, False, True),
    "dropout": (0.0, 1.0, True, False),
    "shift": (0, 4, True, True),
    "target": (0.0, None, False, True),
    "sdlm_estimate_patterns": (1, None, True, True),
}


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]


_KINDS = {"str": str, "int": int, "float": float, "bool": bool}  # a field's annotation -> its type


def _check_value(name: str, value: Any, kind: type) -> Any:
    """`value` for field `name` (an int for a float field given as the float), or a ConfigError saying why not."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise ConfigError(f"field '{name}' must be {kind.__name__}, got {type(value).__name__} {value!r}")
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ConfigError(f"field '{name}' = {value!r}; valid values: {', '.join(_CHOICES[name])}")
    if name in _RANGES:
        lo, hi, lo_inc, hi_inc = _RANGES[name]
        bad = (lo is not None and (value < lo or (value == lo and not lo_inc))) or (
            hi is not None and (value > hi or (value == hi and not hi_inc))
        )
        if bad:
            lo_s = "" if lo is None else f"{'>=' if lo_inc else '>'} {lo}"
            hi_s = "" if hi is None else f"{'<=' if hi_inc else '<'} {hi}"
            raise ConfigError(
                f"field '{name}' = {value!r} is out of range (must be {' and '.join(s for s in (lo_s, hi_s) if s)})"
            )
    return value


def _check_rules(cfg: Config) -> None:
    """The rules between fields."""
    if cfg.architecture == "fc40" and cfg.dropout > 0:
        raise ConfigError("dropout acts on the input of H3, which architecture 'fc40' does not have")
    if cfg.init == "repro2022" and (cfg.architecture != "net1989" or cfg.h2_scheme != "block"):
        raise ConfigError(f"init 'repro2022' draws the earlier reproduction's net1989 with the 'block' H2 "
                          f"scheme; got architecture {cfg.architecture!r}, h2_scheme {cfg.h2_scheme!r}")
    if cfg.output == "softmax_ce" and cfg.target != 1.0:
        raise ConfigError("'target' sets the squared-error targets +-target; output 'softmax_ce' has none")


def apply_patch(base: Config, patch: dict[str, Any], source: str = "patch") -> Config:
    """Return `base` with the fields of `patch` replaced; unknown fields, wrong types, out-of-range values and
    broken rules between fields are a ConfigError whose message starts with `source`."""
    names = field_names()
    for name in patch:
        if name not in names:
            raise ConfigError(f"{source}: unknown field '{name}'; valid fields: {', '.join(names)}")
    try:
        return dataclasses.replace(base, **patch)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def config_from_dict(d: dict[str, Any], source: str = "record") -> Config:
    return apply_patch(Config(), d, source)
