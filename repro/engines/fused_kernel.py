"""The fused training kernel (Triton): one program per member runs every step of a pass in one launch.

Why: at batch size 1 a step of the 1989 net is ~0.4 MFLOP, so a GPU step made of stock ops is all launch
overhead (CUDA graphs of stock ops saturate near 0.8 M steps/s on an H100; see the speed issue). Here one
program (thread block) per member loops over the pass's presentations, holding its activations in
registers; the weights live in a per-member slice of global memory that stays in L1/L2. This is the
persistent-kernel design of the speed issue, written in Triton so that the same source also runs on CPU in
Triton's interpreter, where the tests check it against the reference loop.

It computes what population.Population.step computes (same layer maths, same order of updates), in a padded
layout (fused_layout.LAYOUT) whose padding entries are zero and stay zero. Every dot product is
IEEE fp32 (never TF32), so results match the CPU paths to float32 rounding, not bit for bit.

Shapes, per member (padded sizes in brackets where they differ from the net's):
    p1  (64, 25 [32])   H1 input patches          W1 (25 [32], 12 [16])   b1 (64, 12 [16])
    p2  (16, 300 [512]) H2 input patches          W2 (300 [512], 12 [16]) b2 (16, 12 [16])
    h2  (16 pos, 12 [16] maps), flattened pos-major W3 (16*16 [256], 30 [32])  b3 (30 [32])
    W4  (30 [32], 10 [16])                        b4 (10 [16])
"""

import triton
import triton.language as tl

from repro.engines import fused_layout as L

# The layout, settings columns, codes and constants come from fused_layout (shared with the host code);
# a jitted function can read globals only as tl.constexpr, hence these copies.
O_W1, O_B1, O_W2, O_B2, O_W3, O_B3, O_W4, O_B4 = (tl.constexpr(L.OFFSET[n]) for n in L.PADDED)
ROW = tl.constexpr(L.ROW)
I_ACT, I_OUT, I_OPT = tl.constexpr(L.I_ACT), tl.constexpr(L.I_OUT), tl.constexpr(L.I_OPT)
I_KEEP_ROW, I_LABEL_BASE, I_CONN = tl.constexpr(L.I_KEEP_ROW), tl.constexpr(L.I_LABEL_BASE), tl.constexpr(L.I_CONN)
N_INT = tl.constexpr(L.N_INT)
F_LR, F_DECAY, F_ONE_MINUS_B1 = tl.constexpr(L.F_LR), tl.constexpr(L.F_DECAY), tl.constexpr(L.F_ONE_MINUS_B1)
F_B2, F_ONE_MINUS_B2, F_EPS = tl.constexpr(L.F_B2), tl.constexpr(L.F_ONE_MINUS_B2), tl.constexpr(L.F_EPS)
N_FLOAT = tl.constexpr(L.N_FLOAT)
ACT_TANH, ACT_SCALED_TANH = tl.constexpr(L.ACT_TANH), tl.constexpr(L.ACT_SCALED_TANH)
OUT_SOFTMAX_CE = tl.constexpr(L.OUT_SOFTMAX_CE)
OPT_SGD = tl.constexpr(L.OPT_SGD)
SCALED_TANH_A, SCALED_TANH_S = tl.constexpr(L.SCALED_TANH_A), tl.constexpr(L.SCALED_TANH_S)
MSE_GRAD_SCALE = tl.constexpr(L.MSE_GRAD_SCALE)

# Each member's settings come as codes in a per-member table (fused_layout.CODES, fused.member_tables); the
# host refuses any value the kernel does not implement, so a branch's last case needs no check.


@triton.jit
def _tanh(x):
    # tanh from exp (portable across backends and the interpreter); exp(-2|x|) never overflows.
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x >= 0, t, -t)


# Settings are runtime values, one set per member, so that members of different configurations (rungs,
# datasets) share one launch; a member's branch is uniform across its program, so no thread diverges.
@triton.jit
def _act(a, code):
    if code == ACT_TANH:
        r = _tanh(a)
    elif code == ACT_SCALED_TANH:
        r = SCALED_TANH_A * _tanh(a * SCALED_TANH_S)
    else:  # ACT_RELU
        r = tl.maximum(a, 0.0)
    return r


@triton.jit
def _act_grad(h, code):
    """Derivative of the activation in terms of its output h (as activations.ACTIVATIONS' grad_from_output)."""
    if code == ACT_TANH:
        r = 1.0 - h * h
    elif code == ACT_SCALED_TANH:
        r = (SCALED_TANH_A - h * h / SCALED_TANH_A) * SCALED_TANH_S
    else:  # ACT_RELU
        r = tl.where(h > 0, 1.0, 0.0)
    return r


@triton.jit
def _update(bufs, offset, offs, w, g, hyper):
    """One optimizer step on one tensor, as repro.optim computes it. bufs: one member's rows of the
    parameters and the two AdamW moments; the tensor sits at offset + offs in each. hyper: the optimizer's
    code, lr, AdamW's decay factor, step size, bias correction, 1 - beta1, beta2, 1 - beta2, eps."""
    w_ptr, m_ptr, v_ptr = bufs
    opt, lr, decay, step_size, bc2, one_minus_b1, b2, one_minus_b2, eps = hyper
    if opt == OPT_SGD:
        w = w - lr * g
    else:  # OPT_ADAMW, as torch.optim.AdamW's single-tensor path
        w = w * decay
        m = tl.load(m_ptr + offset + offs)
        v = tl.load(v_ptr + offset + offs)
        # Small tensors are held by several threads at once; every copy is read before any is written back.
        tl.debug_barrier()
        m = m + one_minus_b1 * (g - m)  # lerp(m, g, 1 - beta1)
        v = v * b2 + one_minus_b2 * g * g
        tl.store(m_ptr + offset + offs, m)
        tl.store(v_ptr + offset + offs, v)
        w = w - step_size * (m / (tl.sqrt(v) / bc2 + eps))
    tl.store(w_ptr + offset + offs, w)


@triton.jit
def train_pass_kernel(
    params_ptr, exp_avg_ptr, exp_avg_sq_ptr,  # (P, ROW) each; the moments only matter for AdamW members
    h1pad_ptr, dp2_ptr,  # scratch (P, 144*12) with background borders, (P, 16*300)
    images_ptr,  # (R, 400) padded, flattened training images of every population (shifted versions too)
    rows_ptr,  # (P, n_steps) int32: the image row each member sees at each step
    keep_ptr,  # (K, n_steps, 192) dropout scales in engine order (position-major), for members with dropout
    labels_ptr,  # (L,) int32: every population's training labels, one after another
    conn_ptr,  # (C, 512, 16) float 0/1: which H2 connections exist, per H2 scheme
    idx1_ptr,  # (64, 32) int32: H1 patch taps into a 400-pixel image (padding taps 0, masked)
    idx2_ptr,  # (16, 512) int32: H2 patch entries into the (144*12) padded H1 scratch
    back_ptr,  # (64, 16) int32: for each H1 unit, offsets pos*300 + tap*12 of the dp2 entries that read it, -1 after
    interior_ptr,  # (64,) int32: where each H1 unit sits in its padded 12x12 plane
    imeta_ptr,  # (P, 6) int32 per member: activation, output, optimizer, keep row (-1: none), label base, conn index
    fmeta_ptr,  # (P, 6) float per member: lr, AdamW's decay factor, 1 - beta1, beta2, 1 - beta2, eps
    step_size_ptr, bc2_ptr,  # (P, n_steps) AdamW's per-step bias corrections (unused for SGD members)
    n_steps,
):
    member = tl.program_id(0).to(tl.int64)
    ints = imeta_ptr + member * N_INT
    floats = fmeta_ptr + member * N_FLOAT
    act = tl.load(ints + I_ACT)
    out = tl.load(ints + I_OUT)
    opt = tl.load(ints + I_OPT)
    keep_row = tl.load(ints + I_KEEP_ROW).to(tl.int64)
    label_base = tl.load(ints + I_LABEL_BASE).to(tl.int64)
    conn_base = conn_ptr + tl.load(ints + I_CONN).to(tl.int64) * (512 * 16)
    lr = tl.load(floats + F_LR)
    decay = tl.load(floats + F_DECAY)
    one_minus_b1 = tl.load(floats + F_ONE_MINUS_B1)
    b2 = tl.load(floats + F_B2)
    one_minus_b2 = tl.load(floats + F_ONE_MINUS_B2)
    eps = tl.load(floats + F_EPS)
    keep_maps = tl.where(keep_row >= 0, 12, 0)  # how many maps' scales to read: none without dropout
    keep_base = keep_ptr + tl.maximum(keep_row, 0) * n_steps * 192
    wp = params_ptr + member * ROW
    bufs = (wp, exp_avg_ptr + member * ROW, exp_avg_sq_ptr + member * ROW)
    h1pad = h1pad_ptr + member * (144 * 12)
    dp2s = dp2_ptr + member * (16 * 300)

    r64 = tl.arange(0, 64)
    r16 = tl.arange(0, 16)
    c16 = tl.arange(0, 16)
    c32 = tl.arange(0, 32)
    k512 = tl.arange(0, 512)
    r256 = tl.arange(0, 256)
    # Offsets of each padded tensor (loads need no masks: padding entries are stored zeros).
    off_w1 = c32[:, None] * 16 + c16[None, :]  # (32, 16)
    off_b1 = r64[:, None] * 16 + c16[None, :]  # (64, 16)
    off_w2 = k512[:, None] * 16 + c16[None, :]  # (512, 16)
    off_b2 = r16[:, None] * 16 + c16[None, :]  # (16, 16)
    off_w3 = r256[:, None] * 32 + c32[None, :]  # (256, 32)
    off_w4 = c32[:, None] * 16 + c16[None, :]  # (32, 16)
    # Index tables are loaded where used, inside the loop, rather than held: they are L1 hits, and holding
    # them (with the weights) would push the kernel past its register budget into local-memory spills.
    interior = tl.load(interior_ptr + r64)

    for s in range(n_steps):
        row = tl.load(rows_ptr + member * n_steps + s).to(tl.int64)
        label = tl.load(labels_ptr + label_base + s)
        w1 = tl.load(wp + O_W1 + off_w1)
        b1 = tl.load(wp + O_B1 + off_b1)
        b2v = tl.load(wp + O_B2 + off_b2)
        b3 = tl.load(wp + O_B3 + c32)
        w4 = tl.load(wp + O_W4 + off_w4)
        b4 = tl.load(wp + O_B4 + c16)

        # ---- forward
        idx1 = tl.load(idx1_ptr + r64[:, None] * 32 + c32[None, :])
        p1 = tl.load(images_ptr + row * 400 + idx1, mask=c32[None, :] < 25, other=0.0)  # (64, 32)
        h1 = _act(tl.dot(p1, w1, input_precision="ieee") + b1, act)  # (64, 16)
        tl.store(h1pad + interior[:, None] * 12 + c16[None, :], h1, mask=c16[None, :] < 12)
        tl.debug_barrier()  # H1 is complete before any thread gathers H2's patches from it
        idx2 = tl.load(idx2_ptr + r16[:, None] * 512 + k512[None, :])
        p2 = tl.load(h1pad + idx2, mask=k512[None, :] < 300, other=0.0)  # (16, 512)
        # W2 and W3 (8,192 entries each, padded) are read where used, not held through the step (registers)
        h2 = _act(tl.dot(p2, tl.load(wp + O_W2 + off_w2), input_precision="ieee") + b2v, act)  # (16, 16) [position, map]
        # A member without dropout gets scales of exactly 1 (masked loads), so one code path serves both.
        keep = tl.load(keep_base + s * 192 + r16[:, None] * 12 + c16[None, :], mask=c16[None, :] < keep_maps,
                       other=1.0)
        h2in = h2 * keep
        h2f = tl.reshape(h2in, (256,))
        h3 = _act(tl.sum(h2f[:, None] * tl.load(wp + O_W3 + off_w3), axis=0) + b3, act)  # (32,)
        pre = tl.sum(h3[:, None] * w4, axis=0) + b4  # (16,)

        # ---- output delta: d loss / d pre
        valid = c16 < 10
        if out == OUT_SOFTMAX_CE:
            z = tl.where(valid, pre, float("-inf"))
            e = tl.exp(z - tl.max(z, axis=0))
            d4 = e / tl.sum(e, axis=0) - tl.where(c16 == label, 1.0, 0.0)
        else:
            target = tl.where(c16 == label, 1.0, -1.0)
            y = _act(pre, out)  # output 0 is tanh, 1 scaled tanh: the same codes as the hidden activations
            d4 = (y - target) * MSE_GRAD_SCALE * _act_grad(y, out)
        d4 = tl.where(valid, d4, 0.0)

        # ---- backward. Weight gradients are formed at the update below, from the deltas and layer inputs,
        # so that no big gradient tensor is held across the barrier.
        d3 = tl.sum(w4 * d4[None, :], axis=1) * _act_grad(h3, act)  # (32,)
        dh2 = tl.reshape(tl.sum(tl.load(wp + O_W3 + off_w3) * d3[None, :], axis=1), (16, 16))
        d2 = dh2 * keep * _act_grad(h2, act)  # (16, 16)
        dp2 = tl.dot(d2, tl.trans(tl.load(wp + O_W2 + off_w2)), input_precision="ieee")  # (16, 512)
        tl.store(dp2s + r16[:, None] * 300 + k512[None, :], dp2, mask=k512[None, :] < 300)
        tl.debug_barrier()  # dp2 is complete before it is summed back onto H1 (a gather: deterministic)
        back = tl.load(back_ptr + r64[:, None] * 16 + c16[None, :])  # (64, 16)
        back3 = back[:, :, None] + c16[None, None, :]  # (64, 16, 16) [unit, reader, map]
        back3_mask = (back[:, :, None] >= 0) & (c16[None, None, :] < 12)
        dh1 = tl.sum(tl.load(dp2s + back3, mask=back3_mask, other=0.0), axis=1)  # (64, 16)
        d1 = dh1 * _act_grad(h1, act)
        g_w1 = tl.dot(tl.trans(p1), d1, input_precision="ieee")  # (32, 16)
        # H2's patches again from the scratch copy of H1 (unchanged until the next step) instead of holding them
        p2 = tl.load(h1pad + tl.load(idx2_ptr + r16[:, None] * 512 + k512[None, :]), mask=k512[None, :] < 300, other=0.0)
        g_w2 = tl.dot(tl.trans(p2), d2, input_precision="ieee") * tl.load(conn_base + off_w2)  # absent connections: no gradient
        g_w3 = h2f[:, None] * d3[None, :]
        g_w4 = h3[:, None] * d4[None, :]

        # ---- update every tensor from the gradients of the weights this step read
        step_size = tl.load(step_size_ptr + member * n_steps + s)  # AdamW members only use these
        bc2 = tl.load(bc2_ptr + member * n_steps + s)
        hyper = (opt, lr, decay, step_size, bc2, one_minus_b1, b2, one_minus_b2, eps)
        _update(bufs, O_W1, off_w1, w1, g_w1, hyper)
        _update(bufs, O_B1, off_b1, b1, d1, hyper)
        # W2 and W3 are read a third time for their update: nothing has written them yet in this step (each
        # entry is read and written back by the same thread).
        _update(bufs, O_W2, off_w2, tl.load(wp + O_W2 + off_w2), g_w2, hyper)
        _update(bufs, O_B2, off_b2, b2v, d2, hyper)
        _update(bufs, O_W3, off_w3, tl.load(wp + O_W3 + off_w3), g_w3, hyper)
        _update(bufs, O_B3, c32, b3, d3, hyper)
        _update(bufs, O_W4, off_w4, w4, g_w4, hyper)
        _update(bufs, O_B4, c16, b4, d4, hyper)
        tl.debug_barrier()  # every thread's stores land before the next step's loads
