"""What the fused kernel and its host code (fused.py) must agree on, defined once: the padded parameter
layout, the columns of the per-member settings tables, the codes of each setting, and the numeric constants
of the net. Plain ints and floats; fused_kernel.py turns them into tl.constexpr.
"""

from __future__ import annotations

from repro.net.activations import SCALED_TANH_A, SCALED_TANH_S  # noqa: F401  (the kernel's copies)
from repro.net.loss import MSE_GRAD_SCALE  # noqa: F401

# Tensor name -> (padded rows, padded columns), in the order they sit in a member's row of the buffer.
# W3's rows are position*16 + map (maps padded 12 -> 16), not the population engine's position*12 + map.
PADDED = {
    "W1": (32, 16),
    "b1": (64, 16),
    "W2": (512, 16),
    "b2": (16, 16),
    "W3": (256, 32),
    "b3": (1, 32),
    "W4": (32, 16),
    "b4": (1, 16),
}


def _offsets() -> dict[str, int]:
    out, at = {}, 0
    for name, (rows, cols) in PADDED.items():
        out[name] = at
        at += rows * cols
    return out


OFFSET = _offsets()
ROW = sum(rows * cols for rows, cols in PADDED.values())  # floats per member
LAYOUT = {name: (OFFSET[name], rows, cols) for name, (rows, cols) in PADDED.items()}  # name: (offset, rows, cols)

# Columns of the (P, N_INT) int32 settings table.
I_ACT, I_OUT, I_OPT, I_KEEP_ROW, I_LABEL_BASE, I_CONN = range(6)
N_INT = 6
# Columns of the (P, N_FLOAT) float32 settings table (AdamW's columns are unused by SGD members).
F_LR, F_DECAY, F_ONE_MINUS_B1, F_B2, F_ONE_MINUS_B2, F_EPS = range(6)
N_FLOAT = 6

# Codes of each setting. An output with squared error uses its activation's code.
ACT_TANH, ACT_SCALED_TANH, ACT_RELU = 0, 1, 2
OUT_SOFTMAX_CE = 2
OPT_SGD, OPT_ADAMW = 0, 1
CODES = {
    "hidden_activation": {"tanh": ACT_TANH, "scaled_tanh": ACT_SCALED_TANH, "relu": ACT_RELU},
    "output": {"tanh_mse": ACT_TANH, "scaled_tanh_mse": ACT_SCALED_TANH, "softmax_ce": OUT_SOFTMAX_CE},
    "optimizer": {"sgd": OPT_SGD, "adamw": OPT_ADAMW},
}


def code(setting: str, value: str) -> int:
    """The kernel's code for cfg.<setting> = value; a value the kernel does not implement is a ValueError."""
    table = CODES[setting]
    if value not in table:
        raise ValueError(f"the fused kernel does not implement {setting} = {value!r} (it implements {', '.join(table)})")
    return table[value]
