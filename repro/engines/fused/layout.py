"""What the fused kernel and its host code (population.py) must agree on, defined once: the padded parameter
layouts of both architectures, the net's sizes, the columns of the per-member settings tables and the numeric constants of the net. Plain ints and floats; kernel.py turns them into
tl.constexpr.
"""

from __future__ import annotations

from repro.net.activations import SCALED_TANH_A, SCALED_TANH_S  # noqa: F401  (the kernel's copies)
from repro.net.loss import MSE_GRAD_SCALE  # noqa: F401
from repro.net.model import PAD  # noqa: F401  (fc40 reads the 16x16 image inside its 20x20 padded copy)

# --- sizes of the nets (the real entries; everything beyond them in a padded tensor is zero) ----------------
SIDE = 16  # an image is SIDE x SIDE pixels
PADDED_SIDE = SIDE + 2 * PAD  # with PAD pixels of background around it, as the engines keep the images
IMAGE = PADDED_SIDE * PADDED_SIDE  # 400: one row of the images table
MAPS = 12  # feature maps of H1 and of H2
H1_TAPS = 25  # 5x5 kernel taps of H1 (one input plane)
H1_UNITS = 64  # positions of an H1 map (8x8)
H2_ENTRIES = 300  # inputs of an H2 unit in the engine layout: 25 taps x 12 H1 maps (absent connections masked)
H2_POSITIONS = 16  # positions of an H2 map (4x4)
H1_PLANE = 144  # the padded 12x12 H1 plane H2 gathers its patches from
H3_UNITS = 30
OUTPUTS = 10
FC_INPUTS = SIDE * SIDE  # fc40: the 16x16 image
FC_HIDDEN = 40
# H2's forward and backward dot products run over the 300 real entries in chunks of H2_CHUNK (a power of two,
# as tl.dot needs) with separate accumulators: 5 x 64 = 320 rows instead of one 512-row padded chain.
H2_CHUNK = 64
H2_CHUNKS = -(-H2_ENTRIES // H2_CHUNK)
# Per-member scratch of the 1989 net: H1's padded planes (H1_PLANE x MAPS, background borders) and after them
# zeros, which the padding entries of H2's patches read (H1_ZERO); d loss / d H2's patches, (16, chunked rows).
H1_ZERO = H1_PLANE * MAPS
H1_SCRATCH = H1_ZERO + 16
DP2_SCRATCH = H2_POSITIONS * H2_CHUNKS * H2_CHUNK
# An H1 unit is read by at most 3x3 H2 positions (5x5 kernels at stride 2): H1's backward gathers that many.
H1_READERS = 9
# Dropout masks travel as bits: one byte holds 8 of a step's 192 H3 inputs, in the reference's (map-major)
# order; the kernel reorders them and applies the 1/(1-p) scale.
H3_INPUTS = MAPS * H2_POSITIONS
KEEP_BYTES = H3_INPUTS // 8

# --- padded layouts: tensor name -> (padded rows, padded columns), in the order they sit in a member's row ---
# net1989: W3's rows are position*16 + map (maps padded 12 -> 16), not the population engine's position*12 + map.
PADDED = {
    "net1989": {
        "W1": (32, 16),
        "b1": (64, 16),
        "W2": (H2_CHUNKS * H2_CHUNK, 16),
        "b2": (16, 16),
        "W3": (256, 32),
        "b3": (1, 32),
        "W4": (32, 16),
        "b4": (1, 16),
    },
    "fc40": {
        "W1": (256, 64),
        "b1": (1, 64),
        "W2": (64, 16),
        "b2": (1, 16),
    },
}


def _offsets(padded: dict[str, tuple[int, int]]) -> dict[str, int]:
    out, at = {}, 0
    for name, (rows, cols) in padded.items():
        out[name] = at
        at += rows * cols
    return out


OFFSETS = {arch: _offsets(p) for arch, p in PADDED.items()}
# name: (offset, rows, cols), per architecture
LAYOUTS = {arch: {n: (OFFSETS[arch][n], r, c) for n, (r, c) in p.items()} for arch, p in PADDED.items()}
# Floats per member: both architectures' members share one buffer (one launch), so a row fits the larger.
ROW = max(sum(r * c for r, c in p.values()) for p in PADDED.values())

# --- per-member settings tables --------------------------------------------------------------------------
# Columns of the (P, N_INT) int32 table.
I_ARCH, I_ACT, I_OUT, I_OPT, I_KEEP_ROW, I_LABEL_BASE, I_CONN, I_FRESH, I_SCHEDULE = range(9)
N_INT = 9
# I_KEEP_ROW: the member's row in the table of dropout bits, -1 without dropout. I_LABEL_BASE: where its
# population's labels start. I_CONN: its population's row of H2 connection masks. I_FRESH: 1 when SDLM's h has
# never been set (step 0): the pass's first step sets h := its curvature instead of averaging it in.
# I_SCHEDULE: its population's row of AdamW's per-step tables (-1: not AdamW).
# Columns of the (P, N_FLOAT) float32 table (a member uses those of its optimizer).
F_LR, F_DECAY, F_ONE_MINUS_B1, F_B2, F_ONE_MINUS_B2, F_EPS, F_SDLM_MU, F_SDLM_GAMMA, F_KEEP_SCALE, F_TARGET = range(10)
N_FLOAT = 10
# F_KEEP_SCALE: 1/(1-p) as population.lockstep.Population rounds it to float32, for a kept H3 input (1.0 without dropout).
# F_TARGET: the squared-error targets' magnitude (Config.target): +target for the label, -target elsewhere.
