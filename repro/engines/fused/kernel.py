"""The fused training kernel (Triton): one program per member runs every step of a pass in one launch.

Why: at batch size 1 a step of the 1989 net is ~0.4 MFLOP, so a GPU step made of stock ops is all launch
overhead (CUDA graphs of stock ops saturate near 0.8 M steps/s on an H100; see the speed issue). Here one
program (thread block) per member loops over the pass's presentations, holding its activations in
registers; the weights live in a per-member slice of global memory that stays in L1/L2. This is the
persistent-kernel design of the speed issue, written in Triton so that the same source also runs on CPU in
Triton's interpreter, where the tests check it against the reference loop.

It computes what population.lockstep.Population.step computes (and population.fc40.FCPopulation's for architecture
fc40): same layer maths, same order of updates, SGD, AdamW or SDLM, in a padded layout (layout.LAYOUTS)
whose padding entries are zero and stay zero (updates store only the real entries). Every dot product is
IEEE fp32 (never TF32), so results match the CPU paths to float32 rounding, not bit for bit. Every setting,
the architecture included, is a per-member runtime value, so one launch trains members of any configuration.

Shapes, per member (padded sizes in brackets where they differ from the net's):
  net1989
    p1  (64, 25 [32])   H1 input patches          W1 (25 [32], 12 [16])   b1 (64, 12 [16])
    p2  (16, 300 [320]) H2 input patches, in 5 chunks of 64 entries       W2 (300 [320], 12 [16]) b2 (16, 12 [16])
    h2  (16 pos, 12 [16] maps), flattened pos-major W3 (16*16 [256], 30 [32])  b3 (30 [32])
    W4  (30 [32], 10 [16])                        b4 (10 [16])
  fc40
    x   (256,) the 16x16 image                    W1 (256, 40 [64])  b1 (40 [64])  W2 (40 [64], 10 [16])  b2 (10 [16])
"""

import triton
import triton.language as tl

from repro.engines import codes
from repro.engines.fused import layout as L


# Helpers are jitted (and inlined) for the GPU. In Triton's CPU interpreter every call of a jitted function
# re-patches the language module (about 1 ms, more than the rest of a call's work), so there they run as plain
# Python functions, with plain ints for constants: the same source and arithmetic, about 3x faster tests.
INTERPRETED = triton.knobs.runtime.interpret
helper = (lambda fn: fn) if INTERPRETED else triton.jit
const = (lambda v: v) if INTERPRETED else tl.constexpr


# The layout, sizes, settings columns and constants come from layout.py, the codes from codes.py (shared with
# the host code);
# a jitted function can read globals only as tl.constexpr, hence these copies.
def _offset(arch: str, name: str):
    return const(L.OFFSETS[arch][name])


O_W1, O_B1, O_W2, O_B2 = (_offset("net1989", n) for n in ("W1", "b1", "W2", "b2"))
O_W3, O_B3, O_W4, O_B4 = (_offset("net1989", n) for n in ("W3", "b3", "W4", "b4"))
FC_W1, FC_B1, FC_W2, FC_B2 = (_offset("fc40", n) for n in ("W1", "b1", "W2", "b2"))
ROW = const(L.ROW)
# padded sizes (powers of two, as tl.arange needs)
TAPS_P = const(L.PADDED["net1989"]["W1"][0])  # 32: H1's 25 taps
MAPS_P = const(L.PADDED["net1989"]["W1"][1])  # 16: 12 maps
H3_P = const(L.PADDED["net1989"]["W3"][1])  # 32: H3's 30 units
H3_IN_P = const(L.PADDED["net1989"]["W3"][0])  # 256: H2's 16 positions x 16 padded maps
OUT_P = const(L.PADDED["net1989"]["W4"][1])  # 16: 10 outputs
FC_HIDDEN_P = const(L.PADDED["fc40"]["W1"][1])  # 64: fc40's 40 hidden units
# real sizes
IMAGE, PAD, SIDE, PADDED_SIDE = const(L.IMAGE), const(L.PAD), const(L.SIDE), const(L.PADDED_SIDE)
MAPS, H1_TAPS, H1_UNITS = const(L.MAPS), const(L.H1_TAPS), const(L.H1_UNITS)
H1_ZERO, H1_SCRATCH, DP2_SCRATCH = const(L.H1_ZERO), const(L.H1_SCRATCH), const(L.DP2_SCRATCH)
H2_ENTRIES, H2_POSITIONS = const(L.H2_ENTRIES), const(L.H2_POSITIONS)
H2_CHUNK, H2_CHUNKS, H2_ROWS = const(L.H2_CHUNK), const(L.H2_CHUNKS), const(L.H2_CHUNKS * L.H2_CHUNK)
H1_READERS, KEEP_BYTES = const(L.H1_READERS), const(L.KEEP_BYTES)
H3_UNITS, OUTPUTS = const(L.H3_UNITS), const(L.OUTPUTS)
FC_INPUTS, FC_HIDDEN = const(L.FC_INPUTS), const(L.FC_HIDDEN)
# settings tables
I_ARCH, I_ACT, I_OUT, I_OPT = const(L.I_ARCH), const(L.I_ACT), const(L.I_OUT), const(L.I_OPT)
I_KEEP_ROW, I_LABEL_BASE = const(L.I_KEEP_ROW), const(L.I_LABEL_BASE)
I_CONN, I_FRESH, I_SCHEDULE = const(L.I_CONN), const(L.I_FRESH), const(L.I_SCHEDULE)
N_INT = const(L.N_INT)
F_LR, F_DECAY, F_ONE_MINUS_B1 = const(L.F_LR), const(L.F_DECAY), const(L.F_ONE_MINUS_B1)
F_B2, F_ONE_MINUS_B2, F_EPS = const(L.F_B2), const(L.F_ONE_MINUS_B2), const(L.F_EPS)
F_SDLM_MU, F_SDLM_GAMMA, F_KEEP_SCALE = const(L.F_SDLM_MU), const(L.F_SDLM_GAMMA), const(L.F_KEEP_SCALE)
F_TARGET = const(L.F_TARGET)
N_FLOAT = const(L.N_FLOAT)
# codes
ARCH_FC40 = const(codes.ARCHITECTURES["fc40"])
ACT_TANH, ACT_SCALED_TANH = const(codes.ACTIVATIONS["tanh"]), const(codes.ACTIVATIONS["scaled_tanh"])
OUT_SOFTMAX_CE = const(codes.OUTPUTS["softmax_ce"])
OPT_SGD, OPT_ADAMW, OPT_SDLM = (const(codes.OPTIMIZERS[name]) for name in ("sgd", "adamw", "sdlm"))
# constants of the net
SCALED_TANH_A, SCALED_TANH_S = const(L.SCALED_TANH_A), const(L.SCALED_TANH_S)
MSE_GRAD_SCALE = const(L.MSE_GRAD_SCALE)

# Each member's settings come as codes in a per-member table (repro.engines.codes, population.member_tables); the
# host refuses any value the kernel does not implement, so a branch's last case needs no check.


@helper
def _tanh(x):
    # tanh from exp (portable across backends and the interpreter); exp(-2|x|) never overflows.
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x >= 0, t, -t)


# Settings are runtime values, one set per member, so that members of different configurations (rungs,
# datasets) share one launch; a member's branch is uniform across its program, so no thread diverges.
@helper
def _act(a, code):
    if code == ACT_TANH:
        r = _tanh(a)
    elif code == ACT_SCALED_TANH:
        r = SCALED_TANH_A * _tanh(a * SCALED_TANH_S)
    else:  # ACT_RELU
        r = tl.maximum(a, 0.0)
    return r


@helper
def _act_grad(h, code):
    """Derivative of the activation in terms of its output h (as activations.ACTIVATIONS' grad_from_output)."""
    if code == ACT_TANH:
        r = 1.0 - h * h
    elif code == ACT_SCALED_TANH:
        r = (SCALED_TANH_A - h * h / SCALED_TANH_A) * SCALED_TANH_S
    else:  # ACT_RELU
        r = tl.where(h > 0, 1.0, 0.0)
    return r


@helper
def _output_delta(pre, label, out, target):
    """pre (OUT_P,) -> d loss / d pre and the output's Gauss-Newton d2 loss / d pre^2 (SDLM's curvature, see
    sdlm.py), as layers.output_delta computes them; zero on the padding outputs. target: the squared-error
    targets' magnitude."""
    c = tl.arange(0, OUT_P)
    valid = c < OUTPUTS
    if out == OUT_SOFTMAX_CE:
        z = tl.where(valid, pre, float("-inf"))
        e = tl.exp(z - tl.max(z, axis=0))
        p = e / tl.sum(e, axis=0)
        d = p - tl.where(c == label, 1.0, 0.0)
        curv = p * (1.0 - p)
    else:
        t = tl.where(c == label, target, -target)
        y = _act(pre, out)  # output 0 is tanh, 1 scaled tanh: the same codes as the hidden activations
        f = _act_grad(y, out)
        d = (y - t) * MSE_GRAD_SCALE * f
        curv = f * f * MSE_GRAD_SCALE
    return tl.where(valid, d, 0.0), tl.where(valid, curv, 0.0)


@helper
def _update(bufs, offset, offs, real, w, g, hyper, COPIES: tl.constexpr):
    """One optimizer step on the real entries (mask `real`) of one tensor, as repro.optim computes it. bufs:
    one member's rows of the parameters and of the two optimizer buffers (AdamW's moments; SDLM's h in the
    first); the tensor sits at offset + offs in each. w: its entries as this thread loaded them in this step
    (before a barrier, or in the layout of this store: no thread reads an entry another has written back).
    COPIES: the tensor is small enough that several threads may hold copies of an entry, so a read-modify-write
    of a buffer needs a barrier between its reads and writes. hyper: the optimizer's code, lr, AdamW's decay
    factor, step size, bias correction, 1 - beta1, beta2, 1 - beta2, eps, and SDLM's mu."""
    w_ptr, m_ptr, v_ptr = bufs
    opt, lr, decay, step_size, bc2, one_minus_b1, b2, one_minus_b2, eps, mu = hyper
    if opt == OPT_SGD:
        w = w - lr * g
    elif opt == OPT_ADAMW:  # as torch.optim.AdamW's single-tensor path
        w = w * decay
        m = tl.load(m_ptr + offset + offs, mask=real)
        v = tl.load(v_ptr + offset + offs, mask=real)
        if COPIES:  # every copy is read before any is written back
            tl.debug_barrier()
        m = m + one_minus_b1 * (g - m)  # lerp(m, g, 1 - beta1)
        v = v * b2 + one_minus_b2 * g * g
        tl.store(m_ptr + offset + offs, m, mask=real)
        tl.store(v_ptr + offset + offs, v, mask=real)
        w = w - step_size * (m / (tl.sqrt(v) / bc2 + eps))
    else:  # OPT_SDLM: h, this step's running curvature, was stored by _running_curvature
        h = tl.load(m_ptr + offset + offs, mask=real)
        w = w - lr * (g / (h + mu))  # addcdiv(w, g, h + mu, value=-lr)
    tl.store(w_ptr + offset + offs, w, mask=real)


@helper
def _running_curvature(h_ptr, offset, offs, real, hnew, fresh, gamma, COPIES: tl.constexpr):
    """SDLM's h of one tensor (real entries): h := hnew at the first step ever, then h <- h + gamma (hnew - h)
    (torch.lerp's formula for gamma < 0.5), as optim.SDLM keeps it."""
    h = tl.load(h_ptr + offset + offs, mask=real)
    if COPIES:  # every copy is read before any is written back
        tl.debug_barrier()
    h = tl.where(fresh, hnew, h + gamma * (hnew - h))
    tl.store(h_ptr + offset + offs, h, mask=real)


@helper
def _h2_patches(h1pad, idx2_at, c: tl.constexpr):
    """Chunk c of H2's input patches, entries c*H2_CHUNK... of every position -> (16, H2_CHUNK), gathered from
    the padded H1 planes; entries past the 300 real ones read the scratch's zero (see fused._index_tables).
    idx2_at: (16, H2_CHUNK) pointers to chunk 0 of the index table."""
    return tl.load(h1pad + tl.load(idx2_at + c * H2_CHUNK))


@helper
def _net1989_deltas(wp, dp2s, back_ptr, offs, top, f1, f2, f3, keep, SQUARED: tl.constexpr):
    """The backward pass from the output delta `top` (OUT_P,) down to H1: the deltas d3 (H3_P,), d2 (16, MAPS_P)
    and d1 (64, MAPS_P), with this step's (not yet updated) weights. f1, f2, f3: the hidden layers' activation
    derivatives; keep: the dropout scales of the H3 inputs (1 without dropout).

    SQUARED: the weights enter squared (the caller squares f1, f2, f3, keep and passes the output curvature as
    `top`): SDLM's curvature recursion of sdlm.py, as the population engine's second `_backward` computes it."""
    off_w3, off_w4, w2_at, off_p2, real_maps = offs
    w4 = tl.load(wp + O_W4 + off_w4)
    w3 = tl.load(wp + O_W3 + off_w3)
    if SQUARED:
        w4 = w4 * w4
        w3 = w3 * w3
    d3 = tl.sum(w4 * top[None, :], axis=1) * f3  # (H3_P,)
    dh2 = tl.reshape(tl.sum(w3 * d3[None, :], axis=1), (H2_POSITIONS, MAPS_P))
    d2 = dh2 * keep * f2  # (16, MAPS_P)
    # d loss / d H2's input patches, chunk by chunk, into the member's scratch (16, H2_ROWS): H1's units are
    # summed from it below, by a gather (deterministic) rather than a scatter-add. (Entries past the 300 real
    # ones come from W2's zero padding rows: zero, and never read.)
    dp2_at = dp2s + off_p2
    for c in tl.static_range(H2_CHUNKS):
        w2 = tl.load(w2_at + c * H2_CHUNK * MAPS_P)
        if SQUARED:
            w2 = w2 * w2
        tl.store(dp2_at + c * H2_CHUNK, tl.dot(d2, tl.trans(w2), input_precision="ieee"))
    tl.debug_barrier()  # the scratch is complete before H1's units gather from it
    # Each H1 unit sums the (position, tap) entries that read it, reader by reader: one (64, MAPS_P) gather
    # per reader accumulated in registers (a reduction over an axis split across every warp would cost a
    # shared-memory round trip with barriers for each of its steps). back (H1_READERS, 64): -1 past a unit's
    # last reader; the sum runs in the population engine's order.
    back = back_ptr + tl.arange(0, H1_UNITS)  # reader r's row of the table: back + r * H1_UNITS
    dp2_maps = dp2s + tl.arange(0, MAPS_P)[None, :]
    dh1 = tl.zeros((H1_UNITS, MAPS_P), dtype=tl.float32)
    for r in tl.static_range(H1_READERS):
        at = tl.load(back + r * H1_UNITS)[:, None]
        dh1 += tl.load(dp2_maps + at, mask=(at >= 0) & real_maps, other=0.0)
    d1 = dh1 * f1  # (64, MAPS_P)
    return d3, d2, d1


@helper
def _net1989_layout():
    """Offsets of each padded tensor of the 1989 net in a member's row, and which entries are real: only those
    are updated (the padding stays zero and is never written). Loads need no masks: padding entries are stored
    zeros. -> (off_w1, real_w1, off_b1, real_maps, off_w2c: one chunk of W2's rows, off_b2, off_w3, real_w3,
    real_b3, off_w4, real_w4, real_b4, off_p2: (16, H2_CHUNK) H2 patch entries, chunk 0)."""
    r16 = tl.arange(0, H2_POSITIONS)
    r64 = tl.arange(0, H1_UNITS)
    c16 = tl.arange(0, MAPS_P)
    c32 = tl.arange(0, TAPS_P)
    o16 = tl.arange(0, OUT_P)
    h32 = tl.arange(0, H3_P)
    k64 = tl.arange(0, H2_CHUNK)
    real_maps = c16[None, :] < MAPS
    off_w1 = c32[:, None] * MAPS_P + c16[None, :]
    real_w1 = (c32[:, None] < H1_TAPS) & real_maps
    off_b1 = r64[:, None] * MAPS_P + c16[None, :]
    off_w2c = k64[:, None] * MAPS_P + c16[None, :]
    off_b2 = r16[:, None] * MAPS_P + c16[None, :]
    off_w3 = tl.arange(0, H3_IN_P)[:, None] * H3_P + h32[None, :]
    real_w3 = ((tl.arange(0, H3_IN_P)[:, None] % MAPS_P) < MAPS) & (h32[None, :] < H3_UNITS)
    real_b3 = h32 < H3_UNITS
    off_w4 = h32[:, None] * OUT_P + o16[None, :]
    real_w4 = (h32[:, None] < H3_UNITS) & (o16[None, :] < OUTPUTS)
    real_b4 = o16 < OUTPUTS
    off_p2 = r16[:, None] * H2_ROWS + k64[None, :]
    return (off_w1, real_w1, off_b1, real_maps, off_w2c, off_b2, off_w3, real_w3, real_b3, off_w4, real_w4, real_b4,
            off_p2)


@helper
def _net1989_forward(wp, weights, h1pad, image, idx1_ptr, interior, idx2_at, w2_at, chunk_acc, keep, off_w3, act):
    """One step's forward: H1's input patches p1 (64, TAPS_P), the hidden activations h1 (64, MAPS_P), h2 (16,
    MAPS_P) and h3 (H3_P,), H3's input h2f (H3_IN_P,) after dropout (keep: (16, MAPS_P) scales of H2's units)
    and the output pre-activations (OUT_P,). image: the step's padded image; weights: (w1, b1, b2, b3, w4, b4)."""
    w1, b1, b2v, b3, w4, b4 = weights
    r64 = tl.arange(0, H1_UNITS)
    c16 = tl.arange(0, MAPS_P)
    c32 = tl.arange(0, TAPS_P)
    idx1 = tl.load(idx1_ptr + r64[:, None] * TAPS_P + c32[None, :])
    p1 = tl.load(image + idx1, mask=c32[None, :] < H1_TAPS, other=0.0)  # (64, TAPS_P)
    h1 = _act(tl.dot(p1, w1, input_precision="ieee") + b1, act)  # (64, MAPS_P)
    tl.store(h1pad + interior[:, None] * MAPS + c16[None, :], h1, mask=c16[None, :] < MAPS)
    tl.debug_barrier()  # H1 is complete before any thread gathers H2's patches from it
    # H2 over its 300 real entries in chunks, each its own dot (a separate accumulator): short independent
    # chains of multiply-adds instead of one over 512 padded entries. W2 is read where used, not held
    # through the step (registers).
    a2 = b2v
    for c in tl.static_range(H2_CHUNKS):
        w2 = tl.load(w2_at + c * H2_CHUNK * MAPS_P)
        a2 += tl.dot(_h2_patches(h1pad, idx2_at, c), w2, chunk_acc, input_precision="ieee")
    h2 = _act(a2, act)  # (16, MAPS_P) [position, map]
    h2f = tl.reshape(h2 * keep, (H3_IN_P,))
    h3 = _act(tl.sum(h2f[:, None] * tl.load(wp + O_W3 + off_w3), axis=0) + b3, act)  # (H3_P,)
    pre = tl.sum(h3[:, None] * w4, axis=0) + b4  # (OUT_P,)
    return p1, h1, h2, h3, h2f, pre


@helper
def _net1989_curvature(wp, h_ptr, dp2s, back_ptr, offs, lay, h1pad, idx2_at, conn_base, inputs, derivs, keep, c4,
                       fresh, gamma):
    """SDLM: this step's curvature (at this step's weights, before their update) into the running h at h_ptr.
    Each tensor's curvature is its gradient's formula with squared layer inputs and the curvature deltas.
    inputs: (p1, h2f, h3); derivs: (f1, f2, f3); c4: the output's curvature."""
    off_w1, real_w1, off_b1, real_maps, off_w2c, off_b2, off_w3, real_w3, real_b3, off_w4, real_w4, real_b4, _ = lay
    p1, h2f, h3 = inputs
    f1, f2, f3 = derivs
    h32 = tl.arange(0, H3_P)
    o16 = tl.arange(0, OUT_P)
    c3, c2, c1 = _net1989_deltas(wp, dp2s, back_ptr, offs, c4, f1 * f1, f2 * f2, f3 * f3, keep * keep, True)
    _running_curvature(h_ptr, O_W1, off_w1, real_w1, tl.dot(tl.trans(p1 * p1), c1, input_precision="ieee"),
                       fresh, gamma, True)
    _running_curvature(h_ptr, O_B1, off_b1, real_maps, c1, fresh, gamma, False)
    for c in tl.static_range(H2_CHUNKS):
        p2 = _h2_patches(h1pad, idx2_at, c)
        off_w2 = c * H2_CHUNK * MAPS_P + off_w2c
        real_w2 = (off_w2c < (H2_ENTRIES - c * H2_CHUNK) * MAPS_P) & real_maps
        hw2 = tl.dot(tl.trans(p2 * p2), c2, input_precision="ieee") * tl.load(conn_base + off_w2)
        _running_curvature(h_ptr, O_W2, off_w2, real_w2, hw2, fresh, gamma, False)
    _running_curvature(h_ptr, O_B2, off_b2, real_maps, c2, fresh, gamma, True)
    _running_curvature(h_ptr, O_W3, off_w3, real_w3, (h2f * h2f)[:, None] * c3[None, :], fresh, gamma, False)
    _running_curvature(h_ptr, O_B3, h32, real_b3, c3, fresh, gamma, True)
    _running_curvature(h_ptr, O_W4, off_w4, real_w4, (h3 * h3)[:, None] * c4[None, :], fresh, gamma, True)
    _running_curvature(h_ptr, O_B4, o16, real_b4, c4, fresh, gamma, True)
    tl.debug_barrier()  # h is stored, and the scratch read, before the backward reuses it


@helper
def _net1989_updates(wp, bufs, lay, h1pad, idx2_at, w2_at, conn_base, weights, inputs, deltas, hyper):
    """Each tensor's gradient (from its layer's input and delta) and update. weights: (w1, b1, b2, b3, w4, b4)
    as loaded at the step's start; inputs: (p1, h2f, h3); deltas: (d1, d2, d3, d4)."""
    off_w1, real_w1, off_b1, real_maps, off_w2c, off_b2, off_w3, real_w3, real_b3, off_w4, real_w4, real_b4, _ = lay
    w1, b1, b2v, b3, w4, b4 = weights
    p1, h2f, h3 = inputs
    d1, d2, d3, d4 = deltas
    h32 = tl.arange(0, H3_P)
    o16 = tl.arange(0, OUT_P)
    _update(bufs, O_W1, off_w1, real_w1, w1, tl.dot(tl.trans(p1), d1, input_precision="ieee"), hyper, True)
    _update(bufs, O_B1, off_b1, real_maps, b1, d1, hyper, False)
    for c in tl.static_range(H2_CHUNKS):
        # H2's patches again from the scratch copy of H1 (unchanged until the next step) instead of held;
        # W2 read a third time: nothing has written it in this step (each entry is read and written back
        # by the same thread, after the barrier that ended the backward's reads).
        p2 = _h2_patches(h1pad, idx2_at, c)
        off_w2 = c * H2_CHUNK * MAPS_P + off_w2c
        real_w2 = (off_w2c < (H2_ENTRIES - c * H2_CHUNK) * MAPS_P) & real_maps
        g_w2 = tl.dot(tl.trans(p2), d2, input_precision="ieee") * tl.load(conn_base + off_w2)  # absent: no gradient
        _update(bufs, O_W2, off_w2, real_w2, tl.load(w2_at + c * H2_CHUNK * MAPS_P), g_w2, hyper, False)
    _update(bufs, O_B2, off_b2, real_maps, b2v, d2, hyper, True)
    _update(bufs, O_W3, off_w3, real_w3, tl.load(wp + O_W3 + off_w3), h2f[:, None] * d3[None, :], hyper, False)
    _update(bufs, O_B3, h32, real_b3, b3, d3, hyper, True)
    _update(bufs, O_W4, off_w4, real_w4, w4, h3[:, None] * d4[None, :], hyper, True)
    _update(bufs, O_B4, o16, real_b4, b4, d4, hyper, True)


@helper
def _net1989_pass(
    wp, bufs, h1pad, dp2s, images_ptr, rows, keep_base, keep_row, keep_scale, labels, conn_base,
    idx1_ptr, idx2_ptr, back_ptr, interior_ptr, schedule, settings, n_steps,
):
    """Every step of one pass of one member of the 1989 net (see the module docstring for the shapes)."""
    act, out, opt, fresh_pass, lr, decay, one_minus_b1, b2, one_minus_b2, eps, mu, gamma, target = settings
    step_size_ptr, bc2_ptr = schedule
    lay = _net1989_layout()
    off_w1, real_w1, off_b1, real_maps, off_w2c, off_b2, off_w3, real_w3, real_b3, off_w4, real_w4, real_b4, off_p2 = lay
    r16 = tl.arange(0, H2_POSITIONS)
    r64 = tl.arange(0, H1_UNITS)
    c16 = tl.arange(0, MAPS_P)
    h32 = tl.arange(0, H3_P)
    o16 = tl.arange(0, OUT_P)
    idx2_at = idx2_ptr + off_p2
    w2_at = wp + O_W2 + off_w2c  # chunk c: w2_at + c * H2_CHUNK * MAPS_P
    offs = (off_w3, off_w4, w2_at, off_p2, real_maps)
    # The dropout bit of H2 unit [position, map] is H3 input map*16 + position in the reference's order.
    keep_bit = c16[None, :] * H2_POSITIONS + r16[:, None]
    keep_read = c16[None, :] < tl.where(keep_row >= 0, MAPS, 0)  # members without dropout read nothing: scale 1
    # Index tables are loaded where used, inside the loop, rather than held: they are L1 hits, and holding
    # them (with the weights) would push the kernel past its register budget into local-memory spills.
    interior = tl.load(interior_ptr + r64)
    # H2's chunks are summed from separate accumulators, each started from this zero: Triton folds
    # `x + dot(a, b)` (a dot from a literal zero) into dot(a, b, x), which would chain the chunks back into one
    # dependent sequence of 300 multiply-adds; a zero read from memory (the H1 scratch's) it cannot fold.
    chunk_acc = tl.zeros((H2_POSITIONS, MAPS_P), tl.float32) + tl.load(h1pad + H1_ZERO)

    for s in range(n_steps):
        row = tl.load(rows + s).to(tl.int64)
        label = tl.load(labels + s)
        weights = (tl.load(wp + O_W1 + off_w1), tl.load(wp + O_B1 + off_b1), tl.load(wp + O_B2 + off_b2),
                   tl.load(wp + O_B3 + h32), tl.load(wp + O_W4 + off_w4), tl.load(wp + O_B4 + o16))
        bits = tl.load(keep_base + s * KEEP_BYTES + (keep_bit >> 3), mask=keep_read, other=255).to(tl.int32)
        keep = tl.where(((bits >> (keep_bit & 7)) & 1) != 0, keep_scale, 0.0)  # 0 or 1/(1-p); 1 without dropout
        p1, h1, h2, h3, h2f, pre = _net1989_forward(wp, weights, h1pad, images_ptr + row * IMAGE, idx1_ptr, interior,
                                                    idx2_at, w2_at, chunk_acc, keep, off_w3, act)
        d4, c4 = _output_delta(pre, label, out, target)
        f1 = _act_grad(h1, act)
        f2 = _act_grad(h2, act)
        f3 = _act_grad(h3, act)
        # AdamW members only use these
        step_size = tl.load(step_size_ptr + s)
        bc2 = tl.load(bc2_ptr + s)
        hyper = (opt, lr, decay, step_size, bc2, one_minus_b1, b2, one_minus_b2, eps, mu)
        if opt == OPT_SDLM:
            _net1989_curvature(wp, bufs[1], dp2s, back_ptr, offs, lay, h1pad, idx2_at, conn_base, (p1, h2f, h3),
                               (f1, f2, f3), keep, c4, fresh_pass & (s == 0), gamma)
        # ---- backward, then each tensor's gradient and update
        d3, d2, d1 = _net1989_deltas(wp, dp2s, back_ptr, offs, d4, f1, f2, f3, keep, False)
        _net1989_updates(wp, bufs, lay, h1pad, idx2_at, w2_at, conn_base, weights, (p1, h2f, h3), (d1, d2, d3, d4),
                         hyper)
        tl.debug_barrier()  # every thread's stores land before the next step's loads


@helper
def _fc40_pass(wp, bufs, images_ptr, rows, labels, schedule, settings, n_steps):
    """Every step of one pass of one member of the fully connected comparison net (256 -> 40 -> 10), as
    population.fc40.FCPopulation computes it."""
    act, out, opt, fresh_pass, lr, decay, one_minus_b1, b2, one_minus_b2, eps, mu, gamma, target = settings
    step_size_ptr, bc2_ptr = schedule
    i256 = tl.arange(0, FC_INPUTS)
    u64 = tl.arange(0, FC_HIDDEN_P)
    o16 = tl.arange(0, OUT_P)
    pixels = (i256 // SIDE + PAD) * PADDED_SIDE + (i256 % SIDE + PAD)  # the image inside its padded copy
    off_w1 = i256[:, None] * FC_HIDDEN_P + u64[None, :]
    real_w1 = (i256[:, None] < FC_INPUTS) & (u64[None, :] < FC_HIDDEN)
    real_b1 = u64 < FC_HIDDEN
    off_w2 = u64[:, None] * OUT_P + o16[None, :]
    real_w2 = (u64[:, None] < FC_HIDDEN) & (o16[None, :] < OUTPUTS)
    real_b2 = o16 < OUTPUTS

    for s in range(n_steps):
        row = tl.load(rows + s).to(tl.int64)
        label = tl.load(labels + s)
        x = tl.load(images_ptr + row * IMAGE + pixels)  # (256,)
        b1 = tl.load(wp + FC_B1 + u64)
        w2 = tl.load(wp + FC_W2 + off_w2)
        bias2 = tl.load(wp + FC_B2 + o16)
        # padding hidden units have zero weights and bias, so activation 0 (every activation maps 0 to 0)
        h = _act(tl.sum(x[:, None] * tl.load(wp + FC_W1 + off_w1), axis=0) + b1, act)  # (FC_HIDDEN_P,)
        pre = tl.sum(h[:, None] * w2, axis=0) + bias2  # (OUT_P,)
        d2, c2 = _output_delta(pre, label, out, target)
        fh = _act_grad(h, act)
        step_size = tl.load(step_size_ptr + s)
        bc2 = tl.load(bc2_ptr + s)
        hyper = (opt, lr, decay, step_size, bc2, one_minus_b1, b2, one_minus_b2, eps, mu)
        if opt == OPT_SDLM:  # curvature at this step's weights into the running h, as for the 1989 net
            fresh = fresh_pass & (s == 0)
            h_ptr = bufs[1]
            c1 = tl.sum(w2 * w2 * c2[None, :], axis=1) * (fh * fh)
            _running_curvature(h_ptr, FC_W1, off_w1, real_w1, (x * x)[:, None] * c1[None, :], fresh, gamma, False)
            _running_curvature(h_ptr, FC_B1, u64, real_b1, c1, fresh, gamma, True)
            _running_curvature(h_ptr, FC_W2, off_w2, real_w2, (h * h)[:, None] * c2[None, :], fresh, gamma, False)
            _running_curvature(h_ptr, FC_B2, o16, real_b2, c2, fresh, gamma, True)
        d1 = tl.sum(w2 * d2[None, :], axis=1) * fh  # (FC_HIDDEN_P,)
        tl.debug_barrier()  # every read of this step's weights (and h) is done before any update is stored
        _update(bufs, FC_W1, off_w1, real_w1, tl.load(wp + FC_W1 + off_w1), x[:, None] * d1[None, :], hyper, False)
        _update(bufs, FC_B1, u64, real_b1, b1, d1, hyper, True)
        _update(bufs, FC_W2, off_w2, real_w2, w2, h[:, None] * d2[None, :], hyper, False)
        _update(bufs, FC_B2, o16, real_b2, bias2, d2, hyper, True)
        tl.debug_barrier()  # every thread's stores land before the next step's loads


@triton.jit(do_not_specialize=["n_steps"])
def train_pass_kernel(
    params_ptr, moment1_ptr, moment2_ptr,  # (P, ROW) each: parameters; AdamW's two moments, or SDLM's h in the first
    h1pad_ptr, dp2_ptr,  # net1989 scratch (P, H1_SCRATCH): H1 planes, background borders, then zeros; (P, DP2_SCRATCH)
    images_ptr,  # (R, 400) padded, flattened training images of every population (shifted versions too)
    rows_ptr,  # (P, n_steps) int32: the image row each member sees at each step
    keep_ptr,  # (K, n_steps, KEEP_BYTES) uint8: dropout masks as bits (reference order), members with dropout
    labels_ptr,  # (L,) int32: every population's training labels, one after another
    conn_ptr,  # (C, 320, 16) float 0/1: which H2 connections exist, per H2 scheme
    idx1_ptr,  # (64, 32) int32: H1 patch taps into a 400-pixel image (padding taps 0, masked)
    idx2_ptr,  # (16, 320) int32: H2 patch entries into the H1 scratch (past the 300 real ones: its zero)
    back_ptr,  # (H1_READERS, 64) int32: for each H1 unit, offsets pos*320 + tap*12 of the dp2 entries that read it, -1 after
    interior_ptr,  # (64,) int32: where each H1 unit sits in its padded 12x12 plane
    imeta_ptr,  # (P, N_INT) int32 per member: layout's I_* columns
    fmeta_ptr,  # (P, N_FLOAT) float per member: layout's F_* columns
    step_size_ptr, bc2_ptr,  # (S, n_steps) AdamW's per-step bias corrections, one row per AdamW population
    n_steps,
    ONLY_ARCH: tl.constexpr = -1, ONLY_OPT: tl.constexpr = -1,
):
    # ONLY_ARCH, ONLY_OPT >= 0 compile one path alone (kernel_check's per-path figures); what runs is the
    # default: every path, each member's chosen by its settings at run time.
    member = tl.program_id(0).to(tl.int64)
    ints = imeta_ptr + member * N_INT
    floats = fmeta_ptr + member * N_FLOAT
    if ONLY_ARCH >= 0:
        arch = ONLY_ARCH
    else:
        arch = tl.load(ints + I_ARCH)
    if ONLY_OPT >= 0:
        opt = ONLY_OPT
    else:
        opt = tl.load(ints + I_OPT)
    keep_row = tl.load(ints + I_KEEP_ROW).to(tl.int64)
    schedule_row = tl.maximum(tl.load(ints + I_SCHEDULE), 0).to(tl.int64)  # -1 (not AdamW): row 0, unused
    settings = (tl.load(ints + I_ACT), tl.load(ints + I_OUT), opt, tl.load(ints + I_FRESH) != 0,
                tl.load(floats + F_LR), tl.load(floats + F_DECAY), tl.load(floats + F_ONE_MINUS_B1),
                tl.load(floats + F_B2), tl.load(floats + F_ONE_MINUS_B2), tl.load(floats + F_EPS),
                tl.load(floats + F_SDLM_MU), tl.load(floats + F_SDLM_GAMMA), tl.load(floats + F_TARGET))
    schedule = (step_size_ptr + schedule_row * n_steps, bc2_ptr + schedule_row * n_steps)
    wp = params_ptr + member * ROW
    bufs = (wp, moment1_ptr + member * ROW, moment2_ptr + member * ROW)
    rows = rows_ptr + member * n_steps
    labels = labels_ptr + tl.load(ints + I_LABEL_BASE).to(tl.int64)
    if arch == ARCH_FC40:
        _fc40_pass(wp, bufs, images_ptr, rows, labels, schedule, settings, n_steps)
    else:
        _net1989_pass(
            wp, bufs, h1pad_ptr + member * H1_SCRATCH, dp2_ptr + member * DP2_SCRATCH,
            images_ptr, rows, keep_ptr + tl.maximum(keep_row, 0) * n_steps * KEEP_BYTES, keep_row,
            tl.load(floats + F_KEEP_SCALE), labels, conn_ptr + tl.load(ints + I_CONN).to(tl.int64) * (H2_ROWS * MAPS_P),
            idx1_ptr, idx2_ptr, back_ptr, interior_ptr, schedule, settings, n_steps,
        )
