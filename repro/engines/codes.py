"""The one table of what the compiled kernels (native/kernel.c, fused/kernel.py) are told about a config: the
code of each coded setting, the flat parameter layout of one member (the reference tensors, flattened in this
order), and the version of the native kernel's C interface. The codes are the positions of the values in
repro.config's value lists, which are the only lists of them. kernel.c writes the same numbers as enums (ARCH_*,
ACT_*, OUT_*, OPT_*, and the offsets N_* of the 1989 net, F_* of fc40) and native.c checks a Spec's codes against
the last of each: tests/test_codes.py reads their text and checks both against this table.

This module imports only repro.config, so every engine may read it.
"""

from __future__ import annotations

import math

from repro import config

# The version of the native kernel's C interface (native.c's functions and its Spec, native/build.py's Spec):
# raised whenever either changes; the build passes it to the compiler (-DNATIVE_ABI) and checks that the loaded
# library reports it.
NATIVE_ABI = 8


def _numbered(values: tuple[str, ...]) -> dict[str, int]:
    return {value: number for number, value in enumerate(values)}


ARCHITECTURES = _numbered(config.ARCHITECTURES)
ACTIVATIONS = _numbered(config.HIDDEN_ACTIVATIONS)
OUTPUTS = _numbered(config.OUTPUTS)  # squared error: its activation's code
OPTIMIZERS = _numbered(config.OPTIMIZERS)
# SDLM with per-pass curvature is two kernel calls a pass (native only): one adds each pattern's curvature
# into the state and leaves the weights alone (ESTIMATE), the other trains the pass with it (FIXED).
SDLM_FIXED, SDLM_ESTIMATE = len(OPTIMIZERS), len(OPTIMIZERS) + 1

CODES = {  # Config field -> value -> code
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
    """The kernels' code for cfg.<setting> = value (a Config holds only values that have one)."""
    return CODES[setting][value]
