"""The one table of what the compiled kernels (native/kernel.c, fused/kernel.py) are told about a config: the
code of each coded setting, and the flat parameter layout of one member (the reference tensors, flattened in
this order). kernel.c writes the same numbers as enums (ARCH_*, ACT_*, OUT_*, OPT_*, and the offsets N_* of the
1989 net, F_* of fc40): tests/test_codes.py reads kernel.c's text and checks that they equal this table.

This module imports nothing, so every engine may read it.
"""

from __future__ import annotations

import math

ARCHITECTURES = {"net1989": 0, "fc40": 1}
ACTIVATIONS = {"tanh": 0, "scaled_tanh": 1, "relu": 2}
OUTPUTS = {"tanh_mse": 0, "scaled_tanh_mse": 1, "softmax_ce": 2}  # squared error: its activation's code
OPTIMIZERS = {"sgd": 0, "adamw": 1, "sdlm": 2}
# SDLM with per-pass curvature is two kernel calls a pass (native only): one adds each pattern's curvature
# into the state and leaves the weights alone (ESTIMATE), the other trains the pass with it (FIXED).
SDLM_FIXED, SDLM_ESTIMATE = 3, 4

CODES = {  # Config field -> value -> code; a value missing here is one no kernel implements
    "architecture": ARCHITECTURES,
    "hidden_activation": ACTIVATIONS,
    "output": OUTPUTS,
    "optimizer": OPTIMIZERS,
}

# Parameter layout of one member: name -> the reference tensor's shape, in the order they are flattened.
LAYOUTS = {
    "net1989": {"H1.weight": (12, 1, 5, 5), "H1.bias": (12, 8, 8), "H2.weight": (12, 8, 5, 5), "H2.bias": (12, 4, 4),
                "H3.weight": (30, 192), "H3.bias": (30,), "out.weight": (10, 30), "out.bias": (10,)},
    "fc40": {"H.weight": (40, 256), "H.bias": (40,), "out.weight": (10, 40), "out.bias": (10,)},
}
NPARAM = {arch: sum(math.prod(s) for s in shapes.values()) for arch, shapes in LAYOUTS.items()}


def offsets(architecture: str) -> list[int]:
    """Where each tensor of the layout starts in a member's flat parameters, in layout order."""
    starts, at = [], 0
    for shape in LAYOUTS[architecture].values():
        starts.append(at)
        at += math.prod(shape)
    return starts


def code(setting: str, value: str) -> int:
    """The kernels' code for cfg.<setting> = value; a value they do not implement is a ValueError."""
    table = CODES[setting]
    if value not in table:
        raise ValueError(f"the kernel does not implement {setting} = {value!r} (it implements {', '.join(table)})")
    return table[value]


def missing_code(engine: str, cfg) -> str | None:
    """Why `engine` cannot train `cfg` because a coded setting has a value without a code, or None."""
    for setting, table in CODES.items():
        value = getattr(cfg, setting)
        if value not in table:
            return f"the {engine} engine does not implement {setting} = {value!r} (it implements {', '.join(table)})"
    return None
