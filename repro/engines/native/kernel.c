/* Members-in-lanes CPU kernel for the 1989 net and the fc40 comparison net, and the helpers solo.c shares
 * (native.c, the interface, includes both).
 *
 * LANES members (8 or 16) share one group: every number of the net is a LANES-float vector (gcc vector
 * extension, one AVX2 or AVX-512 register), lane l holding member l of the group. Every lane runs the same
 * instructions with its own data, and no operation mixes lanes, so a member's numbers never depend on its neighbours, on its
 * lane, on its group or on the number of threads. Groups train independently; threads take whole groups.
 * Evaluation turns the lanes around: LANES patterns of one member (see "evaluation" below), threads taking
 * (member, pattern range) pieces.
 *
 * Parameter layout of one member (float offsets, "NP" floats in all): the reference tensors flattened in
 * the order of model.init_params' names, H2 compact (12 maps x 8 read maps x 25 taps, as H2.weight):
 *   net1989: W1 [12][25] | b1 [12][64] | W2 [12][8][25] | b2 [12][16] | W3 [30][192] | b3 [30] | W4 [10][30] | b4 [10]
 *   fc40:    W1 [40][256] | b1 [40] | W2 [10][40] | b2 [10]
 * A group's block is [NP][LANES] (parameter-major, lane-minor); blocks of all groups follow each other.
 * Optimizer state (AdamW moments, SDLM's running curvature) uses the same layout.
 *
 * Per step: forward, output delta (and SDLM's output curvature), then per layer from the top: the lower
 * layer's delta with the old weights, then each weight's gradient (and curvature) and its update in the
 * same loop, so gradients are never stored.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fpmode.c"
#include "mathf.c"
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* LANES members per group, one per SIMD lane: 8 (one AVX2 register, or two NEON registers on AArch64) unless
 * the build says 16 (one AVX-512 register). Every operation below is one IEEE float32 operation per lane, the
 * same sequence whatever LANES, whatever -march and whatever the architecture: the build forbids the compiler
 * to contract a*b+c (-ffp-contract=off), every fused multiply-add is written out (fmadd), exp and log are the
 * kernel's own (mathf.c), so a member's numbers are the same bits on every x86-64 CPU and on AArch64 (see
 * fpmode.c for the one case of flushing denormals where the two could differ). */
#ifndef LANES
#define LANES 8
#endif
#if LANES != 8 && LANES != 16
#error "LANES must be 8 or 16"
#endif
typedef float vf __attribute__((vector_size(LANES * 4), aligned(LANES * 4)));
typedef int32_t vi __attribute__((vector_size(LANES * 4), aligned(LANES * 4)));
#define INLINE static inline __attribute__((always_inline))
#if defined(__aarch64__)
typedef union { vf v; float32x4_t q[LANES / 4]; } vq; /* a vector as NEON's 4-float registers */
#endif

enum { ARCH_NET1989 = 0, ARCH_FC40 = 1 };
enum { ACT_TANH = 0, ACT_SCALED_TANH = 1, ACT_RELU = 2 };
enum { OUT_TANH_MSE = 0, OUT_SCALED_TANH_MSE = 1, OUT_SOFTMAX_CE = 2 };
/* SDLM with per-pass curvature ("per_pass", see sdlm.py) is two calls a pass: ESTIMATE adds each pattern's
 * curvature into the state (the caller zeroes it before and divides after) and leaves the weights alone;
 * FIXED then trains the pass with that h and computes no curvature. */
enum { OPT_SGD = 0, OPT_ADAMW = 1, OPT_SDLM = 2, OPT_SDLM_FIXED = 3, OPT_SDLM_ESTIMATE = 4 };
/* An update rule inside the kernel only (never a Spec's opt): AdamW's steps once the square root of its second
 * moment's bias correction rounds to 1.0f (with beta2 = 0.999, from step 16,628 on: most of a study's steps).
 * sqrt(v) / 1 is sqrt(v) exactly, so the rule leaves that division out: the same bits, and about 7% less time
 * a 16-lane step (measured on the AVX-512 Xeon: 133 against 142 us). native_settled_step gives its first step. */
enum { RULE_ADAMW_SETTLED = 5 };

/* Offsets (in vf units within a group block). */
enum { N_W1 = 0, N_B1 = 300, N_W2 = 1068, N_B2 = 3468, N_W3 = 3660, N_B3 = 9420, N_W4 = 9450, N_B4 = 9750, N_NP = 9760 };
enum { F_W1 = 0, F_B1 = 10240, F_W2 = 10280, F_B2 = 10680, F_NP = 10690 };

typedef struct {
    int32_t arch, act, out, opt;
    int32_t nparam;     /* floats per member: N_NP or F_NP */
    int32_t scheme[96]; /* H1 map read by (H2 map j, slot k) at [j*8 + k] */
    /* hyperparameters as Python holds them (double); each scalar an update uses is derived in double and
     * rounded to float once, as torch does with Python scalars applied to float32 tensors */
    double lr, weight_decay, beta1, beta2, eps, sdlm_gamma, sdlm_mu, dropout;
    double keep_scale;  /* a kept H3 input's dropout scale, float32 1/(1-p) as the population engine rounds it */
    double target;      /* squared-error targets: +target for the label, -target elsewhere */
    int64_t step;       /* optimizer steps taken before this call */
    int32_t alone;      /* 1: train each member alone, its units in the lanes (solo.c), where the options allow */
} Spec;

static const float SCALED_A = 1.7159f;
static const float SCALED_S = (float)(2.0 / 3.0);

INLINE vf splat(float a) { /* one broadcast (gcc builds the lane loop as LANES masked inserts) */
#if LANES == 16 && defined(__AVX512F__)
    return (vf)_mm512_set1_ps(a);
#elif LANES == 8 && defined(__AVX__)
    return (vf)_mm256_set1_ps(a);
#else
    vf r;
    for (int l = 0; l < LANES; l++) r[l] = a;
    return r;
#endif
}

/* a * b + c, rounded once (the only fused operation in the kernel; see LANES above) */
INLINE vf fmadd(vf a, vf b, vf c) {
#if LANES == 16 && defined(__AVX512F__)
    return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif LANES == 8 && defined(__FMA__)
    return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#elif defined(__aarch64__)
    vq x = {a}, y = {b}, z = {c};
    for (int i = 0; i < LANES / 4; i++) z.q[i] = vfmaq_f32(z.q[i], x.q[i], y.q[i]);
    return z.v;
#else
    vf r;
    for (int l = 0; l < LANES; l++) r[l] = __builtin_fmaf(a[l], b[l], c[l]);
    return r;
#endif
}
INLINE vf sel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }
/* a < b ? a : b, and b where either is NaN (x86's min, one instruction) */
INLINE vf vmin(vf a, vf b) {
#if LANES == 16 && defined(__AVX512F__)
    return (vf)_mm512_min_ps((__m512)a, (__m512)b);
#elif LANES == 8 && defined(__AVX__)
    return (vf)_mm256_min_ps((__m256)a, (__m256)b);
#else
    return sel(a < b, a, b);
#endif
}

INLINE vf vsqrt(vf x) { /* correctly rounded on every CPU */
#if LANES == 16 && defined(__AVX512F__)
    return (vf)_mm512_sqrt_ps((__m512)x);
#elif LANES == 8 && defined(__AVX__)
    return (vf)_mm256_sqrt_ps((__m256)x);
#elif defined(__aarch64__)
    vq r = {x};
    for (int i = 0; i < LANES / 4; i++) r.q[i] = vsqrtq_f32(r.q[i]);
    return r.v;
#else
    vf r;
    for (int l = 0; l < LANES; l++) r[l] = sqrtf(x[l]);
    return r;
#endif
}

/* x / c for x >= 0 (a square root: never subnormal) and a constant c in (0, 1], correctly rounded as the
 * division is, without the divider: x * (1/c) in double, rounded once to float. The double product is within
 * 2^-52 (relative) of x/c, and a quotient of two floats is never closer than about 2^-49 to a midpoint between
 * floats (nor on one), so rounding the product gives the float nearest x/c: the division's bits on every CPU. */
INLINE vf vdiv_by_const(vf x, double inv_c) {
#if LANES == 16 && defined(__AVX512F__)
    __m512d r = _mm512_set1_pd(inv_c);
    __m512 xv = (__m512)x;
    __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(xv)), r));
    __m256 hi = _mm512_cvtpd_ps(_mm512_mul_pd(
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(xv), 1))), r));
    return (vf)_mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
#elif LANES == 8 && defined(__AVX__)
    __m256d r = _mm256_set1_pd(inv_c);
    __m256 xv = (__m256)x;
    __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(xv)), r));
    __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1)), r));
    return (vf)_mm256_set_m128(hi, lo);
#elif defined(__aarch64__)
    const float64x2_t r = vdupq_n_f64(inv_c);
    vq q = {x};
    for (int i = 0; i < LANES / 4; i++) {
        float32x2_t lo = vcvt_f32_f64(vmulq_f64(vcvt_f64_f32(vget_low_f32(q.q[i])), r));
        q.q[i] = vcvt_high_f32_f64(lo, vmulq_f64(vcvt_high_f64_f32(q.q[i]), r));
    }
    return q.v;
#else
    vf q;
    for (int l = 0; l < LANES; l++) q[l] = (float)((double)x[l] * inv_c);
    return q;
#endif
}

/* x truncated toward zero, as a float (x in [0, 2^31)) */
INLINE vf vtrunc(vf x) {
#if LANES == 16 && defined(__AVX512F__)
    return (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
#elif LANES == 8 && defined(__AVX__)
    return (vf)_mm256_round_ps((__m256)x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
#elif defined(__aarch64__)
    vq r = {x};
    for (int i = 0; i < LANES / 4; i++) r.q[i] = vrndq_f32(r.q[i]);
    return r.v;
#else
    return __builtin_convertvector(__builtin_convertvector(x, vi), vf);
#endif
}

/* y * 2^n for a whole float n, where the product is a normal float: exact, one instruction with AVX-512
 * (scalef), else n added to y's exponent bits */
INLINE vf vscale2(vf y, vf n) {
#if LANES == 16 && defined(__AVX512F__)
    return (vf)_mm512_scalef_ps((__m512)y, (__m512)n);
#elif LANES == 8 && defined(__AVX512VL__)
    return (vf)_mm256_scalef_ps((__m256)y, (__m256)n);
#else
    return (vf)((vi)y + (__builtin_convertvector(n, vi) << 23));
#endif
}

/* exp(t) for t in [0, 40] (Cephes expf: range reduction by ln 2, degree-6 polynomial, 2^n in the exponent).
 * Every step is exact or one rounding, so the instructions chosen (vtrunc, vscale2) never change a bit. */
INLINE vf vexp_pos(vf t) {
    vf fx = fmadd(t, splat(1.44269504088896341f), splat(0.5f));
    vf fn = vtrunc(fx); /* = floor for t >= 0 */
    vf r = fmadd(fn, splat(-0.693359375f), t);
    r = fmadd(fn, splat(2.12194440e-4f), r);
    vf r2 = r * r;
    vf y = fmadd(splat(1.9875691500e-4f), r, splat(1.3981999507e-3f));
    y = fmadd(y, r, splat(8.3334519073e-3f));
    y = fmadd(y, r, splat(4.1665795894e-2f));
    y = fmadd(y, r, splat(1.6666665459e-1f));
    y = fmadd(y, r, splat(5.0000001201e-1f));
    y = fmadd(y, r2, r) + 1.0f;
    return vscale2(y, fn);
}

/* tanh (Cephes tanhf): odd polynomial below |x| = 0.625, 1 - 2/(exp(2|x|) + 1) above; NaN stays NaN
 * (it takes the polynomial branch), and |x| >= ~9.01 gives exactly +-1 as float32 tanh does. */
INLINE vf vtanh(vf x) {
    vi sign = (vi)x & (int32_t)0x80000000;
    vf a = (vf)((vi)x & (int32_t)0x7fffffff);
    vf z = x * x;
    vf p = fmadd(splat(-5.70498872745e-3f), z, splat(2.06390887954e-2f));
    p = fmadd(p, z, splat(-5.37397155531e-2f));
    p = fmadd(p, z, splat(1.33314422036e-1f));
    p = fmadd(p, z, splat(-3.33332819422e-1f));
    p = fmadd(p * z, x, x);
    vf t = a + a;
    t = vmin(splat(40.0f), t); /* a NaN t stays NaN (and takes the polynomial branch) */
    vf e = vexp_pos(t);
    vf r = 1.0f - 2.0f / (e + 1.0f);
    r = (vf)((vi)r | sign);
    return sel(a >= 0.625f, r, p);
}

INLINE vf act_f(int act, vf a) {
    if (act == ACT_TANH) return vtanh(a);
    if (act == ACT_SCALED_TANH) return vtanh(a * SCALED_S) * SCALED_A;
    return sel(a <= 0.0f, splat(0.0f), a); /* NaN passes, as torch.relu: a diverged member must show it */
}

/* derivative of the activation from its output h */
INLINE vf act_d(int act, vf h) {
    if (act == ACT_TANH) return fmadd(-h, h, splat(1.0f));
    if (act == ACT_SCALED_TANH) return (SCALED_A - h * h / SCALED_A) * SCALED_S;
    return sel(h > 0.0f, splat(1.0f), splat(0.0f));
}

/* ---------------------------------------------------------------------------------------------- */
/* optimizer */

typedef struct {
    float lr;
    /* adamw */
    float decay, lerp1, beta2, one_minus_beta2, bc2_sqrt, eps, step_size;
    double inv_bc2_sqrt; /* 1 / bc2_sqrt, for vdiv_by_const */
    /* sdlm */
    float gamma, mu;
    int first;
} Upd;

static void make_upd(const Spec *s, int64_t t, Upd *u) { /* t: this step's count, from 1 */
    memset(u, 0, sizeof *u);
    u->lr = (float)s->lr;
    if (s->opt == OPT_ADAMW) { /* as torch.optim.AdamW (single tensor) */
        double lr = s->lr, b1 = s->beta1, b2 = s->beta2;
        u->decay = (float)(1.0 - lr * s->weight_decay);
        u->lerp1 = (float)(1.0 - b1);
        u->beta2 = (float)b2;
        u->one_minus_beta2 = (float)(1.0 - b2);
        u->bc2_sqrt = (float)pow(1.0 - pow(b2, (double)t), 0.5);
        u->inv_bc2_sqrt = 1.0 / (double)u->bc2_sqrt;
        u->step_size = (float)(lr / (1.0 - pow(b1, (double)t)));
        u->eps = (float)s->eps;
    } else if (s->opt == OPT_SDLM || s->opt == OPT_SDLM_FIXED) {
        u->gamma = (float)s->sdlm_gamma;
        u->mu = (float)s->sdlm_mu;
        u->first = t == 1;
    }
}

/* the rule of this step: RULE_ADAMW_SETTLED for AdamW's steps whose bias correction is 1.0f, else opt */
INLINE int step_rule(const Upd *u, int opt) {
    return opt == OPT_ADAMW && u->bc2_sqrt == 1.0f ? RULE_ADAMW_SETTLED : opt;
}

/* One parameter of LANES members: gradient g, curvature c (SDLM only). Each formula rounds as the torch ops
 * the population engine and the reference loop use: add with alpha and lerp fuse (fma); mul_, sqrt, div and
 * add_ round on their own; addcmul is self + (value*t1)*t2 and addcdiv self + (value*t1)/t2. */
INLINE void upd(const Upd *u, int opt, vf *w, vf *s1, vf *s2, vf g, vf c) {
    if (opt == OPT_SGD) {
        *w = fmadd(splat(-u->lr), g, *w);
    } else if (opt == OPT_ADAMW || opt == RULE_ADAMW_SETTLED) {
        vf p = *w * u->decay;
        vf m = *s1, v = *s2;
        m = fmadd(splat(u->lerp1), g - m, m);
        v = v * u->beta2;
        v = fmadd(u->one_minus_beta2 * g, g, v);
        *s1 = m;
        *s2 = v;
        vf root = vsqrt(v);
        vf denom = (opt == RULE_ADAMW_SETTLED ? root : vdiv_by_const(root, u->inv_bc2_sqrt)) + u->eps;
        *w = p + (-u->step_size * m) / denom;
    } else if (opt == OPT_SDLM) {
        vf h = u->first ? c : fmadd(splat(u->gamma), c - *s1, *s1);
        *s1 = h;
        *w = *w + (-u->lr * g) / (h + u->mu);
    } else if (opt == OPT_SDLM_FIXED) {
        *w = *w + (-u->lr * g) / (*s1 + u->mu);
    } else { /* OPT_SDLM_ESTIMATE */
        *s1 = *s1 + c;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* work space of one thread */

typedef struct {
    vf x[400];      /* padded 20x20 input */
    vf h1p[12 * 144]; /* H1 planes padded to 12x12 with background */
    vf h2[192], h2in[192], keep[192];
    vf h3[40];      /* H3 (30) or fc40's hidden layer (40) */
    vf pre[10], d4[10], c4[10];
    vf d3[40], c3[40];
    vf d2[192], c2[192];
    vf d1[768], c1[768];
} Work;

static Work *work_new(void) {
    Work *w = aligned_alloc(64, (sizeof(Work) + 63) / 64 * 64);
    if (!w) return NULL;
    memset(w, 0, sizeof *w);
    for (int i = 0; i < 12 * 144; i++) w->h1p[i] = splat(-1.0f);
    return w;
}

/* ---------------------------------------------------------------------------------------------- */
/* forward. The weights come in one of two layouts, chosen at compile time at each call (Wts.bcast):
 * training's, a group's block with one member per lane ([NP][LANES]), and evaluation's, one member's NP
 * floats broadcast to every lane while the lanes hold LANES patterns. Each lane computes the same operations
 * in the same order either way, so a pattern's outputs are the same bits in both. */

typedef struct {
    const float *p;
    int bcast; /* 0: p is a group's block, parameter k at p[k * LANES + lane]; 1: p[k] for every lane */
} Wts;

INLINE vf wt(Wts W, int k) { return W.bcast ? splat(W.p[k]) : ((const vf *)W.p)[k]; }

INLINE void fwd_h1(Wts P, const vf *x, vf *h1p, int act) {
    for (int m = 0; m < 12; m++) {
        for (int oy = 0; oy < 8; oy++) {
            vf acc[8];
            for (int ox = 0; ox < 8; ox++) acc[ox] = splat(0.0f);
            for (int ky = 0; ky < 5; ky++) {
                const vf *xr = x + (2 * oy + ky) * 20;
#pragma GCC unroll 5
                for (int kx = 0; kx < 5; kx++) {
                    vf wv = wt(P, N_W1 + m * 25 + ky * 5 + kx);
#pragma GCC unroll 8
                    for (int ox = 0; ox < 8; ox++) acc[ox] = fmadd(wv, xr[2 * ox + kx], acc[ox]);
                }
            }
            vf *dst = h1p + m * 144 + (oy + 2) * 12 + 2;
#pragma GCC unroll 8
            for (int ox = 0; ox < 8; ox++) dst[ox] = act_f(act, acc[ox] + wt(P, N_B1 + m * 64 + oy * 8 + ox));
        }
    }
}

INLINE void fwd_h2(Wts P, const int32_t *scheme, const vf *h1p, vf *h2, int act) {
    for (int j = 0; j < 12; j++) {
        for (int half = 0; half < 2; half++) {
            vf acc[8];
            for (int q = 0; q < 8; q++) acc[q] = splat(0.0f);
            for (int k = 0; k < 8; k++) {
                const vf *hp = h1p + scheme[j * 8 + k] * 144 + half * 4 * 12; /* rows 4*half.. */
                for (int ky = 0; ky < 5; ky++) {
#pragma GCC unroll 5
                    for (int kx = 0; kx < 5; kx++) {
                        vf wv = wt(P, N_W2 + (j * 8 + k) * 25 + ky * 5 + kx);
#pragma GCC unroll 2
                        for (int r = 0; r < 2; r++)
#pragma GCC unroll 4
                            for (int ox = 0; ox < 4; ox++)
                                acc[r * 4 + ox] = fmadd(wv, hp[(2 * r + ky) * 12 + 2 * ox + kx], acc[r * 4 + ox]);
                    }
                }
            }
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++)
                h2[j * 16 + half * 8 + q] = act_f(act, acc[q] + wt(P, N_B2 + j * 16 + half * 8 + q));
        }
    }
}

/* H3: 30 units over H2's 192 outputs (as they enter H3: after dropout, in training) */
INLINE void fwd_h3(Wts P, const vf *h2in, vf *h3, int act) {
    for (int u0 = 0; u0 < 30; u0 += 10) {
        vf acc[10];
        for (int u = 0; u < 10; u++) acc[u] = splat(0.0f);
        for (int q = 0; q < 192; q++) {
            vf hv = h2in[q];
#pragma GCC unroll 10
            for (int u = 0; u < 10; u++) acc[u] = fmadd(wt(P, N_W3 + (u0 + u) * 192 + q), hv, acc[u]);
        }
#pragma GCC unroll 10
        for (int u = 0; u < 10; u++) h3[u0 + u] = act_f(act, acc[u] + wt(P, N_B3 + u0 + u));
    }
}

/* the output pre-activations from nh hidden units h (net1989's H3, fc40's hidden layer); weights at wk
 * ([10][nh]), biases at bk */
INLINE void fwd_out(Wts P, int wk, int bk, int nh, const vf *h, vf *pre) {
    vf acc[10];
    for (int o = 0; o < 10; o++) acc[o] = splat(0.0f);
    for (int u = 0; u < nh; u++) {
        vf hv = h[u];
#pragma GCC unroll 10
        for (int o = 0; o < 10; o++) acc[o] = fmadd(wt(P, wk + o * nh + u), hv, acc[o]);
    }
    for (int o = 0; o < 10; o++) pre[o] = acc[o] + wt(P, bk + o);
}

/* fc40's hidden layer: 40 units over 256 inputs (the 16x16 interior of the padded image) */
INLINE void fwd_fc_hidden(Wts P, const vf *x, vf *h, int act) {
    for (int u0 = 0; u0 < 40; u0 += 10) {
        vf acc[10];
        for (int u = 0; u < 10; u++) acc[u] = splat(0.0f);
        for (int iy = 0; iy < 16; iy++) {
            const vf *xr = x + (iy + 2) * 20 + 2;
            for (int ix = 0; ix < 16; ix++) {
                vf xv = xr[ix];
#pragma GCC unroll 10
                for (int u = 0; u < 10; u++) acc[u] = fmadd(wt(P, F_W1 + (u0 + u) * 256 + iy * 16 + ix), xv, acc[u]);
            }
        }
#pragma GCC unroll 10
        for (int u = 0; u < 10; u++) h[u0 + u] = act_f(act, acc[u] + wt(P, F_B1 + u0 + u));
    }
}

/* the whole forward of the padded image x: output pre-activations in w->pre, hidden outputs kept for the backward. keep: dropout's
 * scales on H2's outputs (training only), or NULL */
INLINE void forward(const Spec *s, Wts P, const vf *x, Work *w, const vf *keep) {
    if (s->arch == ARCH_NET1989) {
        fwd_h1(P, x, w->h1p, s->act);
        fwd_h2(P, s->scheme, w->h1p, w->h2, s->act);
        if (keep)
            for (int q = 0; q < 192; q++) w->h2in[q] = w->h2[q] * keep[q];
        else
            memcpy(w->h2in, w->h2, sizeof w->h2);
        fwd_h3(P, w->h2in, w->h3, s->act);
        fwd_out(P, N_W4, N_B4, 30, w->h3, w->pre);
    } else {
        fwd_fc_hidden(P, x, w->h3, s->act);
        fwd_out(P, F_W2, F_B2, 40, w->h3, w->pre);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* output layer: d loss / d pre (and SDLM's d2 loss / d pre^2) of LANES lanes, label y */

INLINE void output_delta(int outk, int sdlm, float target, const vf *pre, int64_t label, vf *d, vf *c) {
    if (outk != OUT_SOFTMAX_CE) {
        int a = outk == OUT_TANH_MSE ? ACT_TANH : ACT_SCALED_TANH;
        for (int o = 0; o < 10; o++) {
            vf y = act_f(a, pre[o]);
            vf f = act_d(a, y);
            float t = o == label ? target : -target;
            d[o] = (y - t) * 0.2f * f;
            if (sdlm) c[o] = f * f * 0.2f;
        }
        return;
    }
    for (int l = 0; l < LANES; l++) {
        float mx = pre[0][l];
        for (int o = 1; o < 10; o++) mx = pre[o][l] > mx ? pre[o][l] : mx;
        float e[10], sum = 0.0f;
        for (int o = 0; o < 10; o++) {
            e[o] = kernel_expf(pre[o][l] - mx);
            sum += e[o];
        }
        for (int o = 0; o < 10; o++) {
            float p = e[o] / sum;
            if (sdlm) c[o][l] = p * (1.0f - p);
            d[o][l] = o == label ? p - 1.0f : p;
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* backward and update, one function per layer, from the top. Each computes the lower layer's delta (and
 * SDLM's curvature) with the old weights before it updates them; the updates of different parameters are
 * independent, so only each sum's own order matters for the bits. */

INLINE int wants_curvature(int opt) { return opt == OPT_SDLM || opt == OPT_SDLM_ESTIMATE; }

/* update of parameter k of the group (its optimizer state, where the optimizer has one, at the same offset) */
INLINE void upd_at(const Upd *u, int opt, vf *P, vf *S1, vf *S2, int k, vf g, vf c) {
    upd(u, opt, P + k, S1 ? S1 + k : NULL, S2 ? S2 + k : NULL, g, c);
}

/* output layer over nh hidden units h (net1989's H3, fc40's hidden layer): their delta dh (curvature ch) with
 * the old weights, then the weights (at wk, [10][nh]) and biases (at bk) */
INLINE void bwd_out(const Upd *u, const int opt, int act, vf *P, vf *S1, vf *S2, int wk, int bk, int nh,
                    const vf *h, const vf *d4, const vf *c4, vf *dh, vf *ch) {
    const int sdlm = wants_curvature(opt);
    const vf *W = P + wk;
    for (int uu = 0; uu < nh; uu++) {
        vf g = splat(0.0f), c = splat(0.0f);
        for (int o = 0; o < 10; o++) {
            g = fmadd(W[o * nh + uu], d4[o], g);
            if (sdlm) c = fmadd(W[o * nh + uu] * W[o * nh + uu], c4[o], c);
        }
        vf f = act_d(act, h[uu]);
        dh[uu] = g * f;
        if (sdlm) ch[uu] = c * (f * f);
    }
    for (int o = 0; o < 10; o++) {
        for (int uu = 0; uu < nh; uu++) {
            vf hv = h[uu];
            upd_at(u, opt, P, S1, S2, wk + o * nh + uu, d4[o] * hv, sdlm ? c4[o] * (hv * hv) : splat(0.0f));
        }
        upd_at(u, opt, P, S1, S2, bk + o, d4[o], sdlm ? c4[o] : splat(0.0f));
    }
}

/* H3: H2's delta with the old W3 while updating W3 (q blocks of 8), then b3. Dropout scaled H2's outputs by
 * keep on their way into H3, so their delta carries the same scale. */
INLINE void bwd_h3(const Upd *u, const int opt, int act, vf *P, vf *S1, vf *S2, Work *w, int dropout) {
    const int sdlm = wants_curvature(opt);
    const vf *W3 = P + N_W3;
    for (int q0 = 0; q0 < 192; q0 += 8) {
        vf dh[8], ch[8];
        for (int q = 0; q < 8; q++) dh[q] = ch[q] = splat(0.0f);
        for (int uu = 0; uu < 30; uu++) {
            vf d = w->d3[uu], cc = sdlm ? w->c3[uu] : splat(0.0f);
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++) {
                vf wv = W3[uu * 192 + q0 + q];
                dh[q] = fmadd(wv, d, dh[q]);
                if (sdlm) ch[q] = fmadd(wv * wv, cc, ch[q]);
                vf x = w->h2in[q0 + q];
                upd_at(u, opt, P, S1, S2, N_W3 + uu * 192 + q0 + q, d * x, sdlm ? cc * (x * x) : splat(0.0f));
            }
        }
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
            vf f = act_d(act, w->h2[q0 + q]);
            vf kp = dropout ? w->keep[q0 + q] : splat(1.0f);
            w->d2[q0 + q] = dropout ? dh[q] * kp * f : dh[q] * f;
            if (sdlm) w->c2[q0 + q] = (dropout ? ch[q] * (kp * kp) : ch[q]) * (f * f);
        }
    }
    for (int uu = 0; uu < 30; uu++)
        upd_at(u, opt, P, S1, S2, N_B3 + uu, w->d3[uu], sdlm ? w->c3[uu] : splat(0.0f));
}

/* H2: H1's delta with the old W2 (a gather over the H2 units each H1 unit feeds), then W2's gradient (and
 * curvature) and update, then b2 */
INLINE void bwd_h2(const Upd *u, const int opt, int act, const int32_t *scheme, vf *P, vf *S1, vf *S2, Work *w) {
    const int sdlm = wants_curvature(opt);
    const vf *W2 = P + N_W2;
    for (int i = 0; i < 12; i++) {
        int readers[8], nr = 0;
        for (int r = 0; r < 96; r++)
            if (scheme[r] == i && nr < 8) readers[nr++] = r;
        for (int y = 0; y < 8; y++) {
            const int yy = y + 2;
            vf acc[8], cacc[8];
            for (int x = 0; x < 8; x++) acc[x] = cacc[x] = splat(0.0f);
            for (int t = 0; t < nr; t++) {
                const int r = readers[t], j = r >> 3;
                const vf *wr0 = W2 + r * 25;
                const vf *d = w->d2 + j * 16, *cd = w->c2 + j * 16;
                for (int oy = 0; oy < 4; oy++) {
                    const int ky = yy - 2 * oy;
                    if (ky < 0 || ky > 4) continue;
                    const vf *wr = wr0 + ky * 5;
#pragma GCC unroll 4
                    for (int ox = 0; ox < 4; ox++) {
                        vf dv = d[oy * 4 + ox];
                        vf cv = sdlm ? cd[oy * 4 + ox] : splat(0.0f);
#pragma GCC unroll 5
                        for (int kx = 0; kx < 5; kx++) {
                            const int x = 2 * ox + kx - 2;
                            if (x < 0 || x > 7) continue;
                            acc[x] = fmadd(wr[kx], dv, acc[x]);
                            if (sdlm) cacc[x] = fmadd(wr[kx] * wr[kx], cv, cacc[x]);
                        }
                    }
                }
            }
#pragma GCC unroll 8
            for (int x = 0; x < 8; x++) {
                vf f = act_d(act, w->h1p[i * 144 + yy * 12 + x + 2]);
                w->d1[i * 64 + y * 8 + x] = acc[x] * f;
                if (sdlm) w->c1[i * 64 + y * 8 + x] = cacc[x] * (f * f);
            }
        }
    }
    for (int r = 0; r < 96; r++) {
        const vf *hp = w->h1p + scheme[r] * 144;
        const vf *d = w->d2 + (r >> 3) * 16, *cd = w->c2 + (r >> 3) * 16;
        for (int ky = 0; ky < 5; ky++) {
            vf g[2][5], c[2][5]; /* two partial sums (even and odd oy): twice the independent chains */
            for (int kx = 0; kx < 5; kx++) g[0][kx] = g[1][kx] = c[0][kx] = c[1][kx] = splat(0.0f);
#pragma GCC unroll 4
            for (int oy = 0; oy < 4; oy++) {
                const vf *row = hp + (2 * oy + ky) * 12;
#pragma GCC unroll 4
                for (int ox = 0; ox < 4; ox++) {
                    vf dv = d[oy * 4 + ox];
                    vf cv = sdlm ? cd[oy * 4 + ox] : splat(0.0f);
#pragma GCC unroll 5
                    for (int kx = 0; kx < 5; kx++) {
                        vf hv = row[2 * ox + kx];
                        g[oy & 1][kx] = fmadd(dv, hv, g[oy & 1][kx]);
                        if (sdlm) c[oy & 1][kx] = fmadd(cv, hv * hv, c[oy & 1][kx]);
                    }
                }
            }
#pragma GCC unroll 5
            for (int kx = 0; kx < 5; kx++)
                upd_at(u, opt, P, S1, S2, N_W2 + r * 25 + ky * 5 + kx, g[0][kx] + g[1][kx], c[0][kx] + c[1][kx]);
        }
    }
    for (int q = 0; q < 192; q++)
        upd_at(u, opt, P, S1, S2, N_B2 + q, w->d2[q], sdlm ? w->c2[q] : splat(0.0f));
}

/* H1: W1's gradient (and curvature) and update, then b1 */
INLINE void bwd_h1(const Upd *u, const int opt, vf *P, vf *S1, vf *S2, Work *w) {
    const int sdlm = wants_curvature(opt);
    for (int m = 0; m < 12; m++) {
        const vf *d = w->d1 + m * 64, *cd = w->c1 + m * 64;
        for (int ky = 0; ky < 5; ky++) {
            vf g[2][5], c[2][5]; /* two partial sums (even and odd ox) */
            for (int kx = 0; kx < 5; kx++) g[0][kx] = g[1][kx] = c[0][kx] = c[1][kx] = splat(0.0f);
            for (int oy = 0; oy < 8; oy++) {
                const vf *row = w->x + (2 * oy + ky) * 20;
#pragma GCC unroll 8
                for (int ox = 0; ox < 8; ox++) {
                    vf dv = d[oy * 8 + ox];
                    vf cv = sdlm ? cd[oy * 8 + ox] : splat(0.0f);
#pragma GCC unroll 5
                    for (int kx = 0; kx < 5; kx++) {
                        vf xv = row[2 * ox + kx];
                        g[ox & 1][kx] = fmadd(dv, xv, g[ox & 1][kx]);
                        if (sdlm) c[ox & 1][kx] = fmadd(cv, xv * xv, c[ox & 1][kx]);
                    }
                }
            }
#pragma GCC unroll 5
            for (int kx = 0; kx < 5; kx++)
                upd_at(u, opt, P, S1, S2, N_W1 + m * 25 + ky * 5 + kx, g[0][kx] + g[1][kx], c[0][kx] + c[1][kx]);
        }
    }
    for (int q = 0; q < 768; q++)
        upd_at(u, opt, P, S1, S2, N_B1 + q, w->d1[q], sdlm ? w->c1[q] : splat(0.0f));
}

/* fc40's hidden layer: W1's gradient (and curvature) and update, then b1 */
INLINE void bwd_fc_hidden(const Upd *u, const int opt, vf *P, vf *S1, vf *S2, Work *w) {
    const int sdlm = wants_curvature(opt);
    for (int uu = 0; uu < 40; uu++) {
        vf d = w->d3[uu], cc = sdlm ? w->c3[uu] : splat(0.0f);
        for (int iy = 0; iy < 16; iy++) {
            const vf *xr = w->x + (iy + 2) * 20 + 2;
#pragma GCC unroll 16
            for (int ix = 0; ix < 16; ix++) {
                vf xv = xr[ix];
                upd_at(u, opt, P, S1, S2, F_W1 + uu * 256 + iy * 16 + ix, d * xv, sdlm ? cc * (xv * xv) : splat(0.0f));
            }
        }
        upd_at(u, opt, P, S1, S2, F_B1 + uu, d, cc);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* one training step of one group */

INLINE void step_net(const Spec *s, const Upd *u, const int opt, vf *P, vf *S1, vf *S2, Work *w, int64_t label,
                     int dropout) {
    const int act = s->act;
    forward(s, (Wts){(const float *)P, 0}, w->x, w, dropout ? w->keep : NULL);
    output_delta(s->out, wants_curvature(opt), (float)s->target, w->pre, label, w->d4, w->c4);
    bwd_out(u, opt, act, P, S1, S2, N_W4, N_B4, 30, w->h3, w->d4, w->c4, w->d3, w->c3);
    bwd_h3(u, opt, act, P, S1, S2, w, dropout);
    bwd_h2(u, opt, act, s->scheme, P, S1, S2, w);
    bwd_h1(u, opt, P, S1, S2, w);
}

INLINE void step_fc(const Spec *s, const Upd *u, const int opt, vf *P, vf *S1, vf *S2, Work *w, int64_t label) {
    const int act = s->act;
    forward(s, (Wts){(const float *)P, 0}, w->x, w, NULL);
    output_delta(s->out, wants_curvature(opt), (float)s->target, w->pre, label, w->d4, w->c4);
    bwd_out(u, opt, act, P, S1, S2, F_W2, F_B2, 40, w->h3, w->d4, w->c4, w->d3, w->c3);
    bwd_fc_hidden(u, opt, P, S1, S2, w);
}

INLINE void step_group(const Spec *s, const Upd *u, const int opt, vf *P, vf *S1, vf *S2, Work *w, int64_t label,
                       int dropout) {
    if (s->arch == ARCH_NET1989)
        step_net(s, u, opt, P, S1, S2, w, label, dropout);
    else
        step_fc(s, u, opt, P, S1, S2, w, label);
}

/* ---------------------------------------------------------------------------------------------- */
/* threads */

typedef struct {
    int (*fn)(void *ctx, int64_t task, Work *w);
    void *ctx;
    int64_t ntasks;
    int64_t next; /* atomic */
    int failed;   /* atomic */
} Pool;

static void *pool_worker(void *arg) {
    Pool *p = arg;
    const fp_mode caller = fp_mode_enter(); /* denormals flushed (fpmode.c) */
    Work *w = work_new();
    if (!w) {
        __atomic_store_n(&p->failed, 1, __ATOMIC_SEQ_CST);
    } else {
        for (;;) {
            int64_t t = __atomic_fetch_add(&p->next, 1, __ATOMIC_SEQ_CST);
            if (t >= p->ntasks) break;
            if (p->fn(p->ctx, t, w)) __atomic_store_n(&p->failed, 1, __ATOMIC_SEQ_CST);
        }
        free(w);
    }
    fp_mode_leave(caller);
    return NULL;
}

static int pool_run(int (*fn)(void *, int64_t, Work *), void *ctx, int64_t ntasks, int nthreads) {
    Pool p = {fn, ctx, ntasks, 0, 0};
    if (nthreads < 1) nthreads = 1;
    if (nthreads > ntasks) nthreads = (int)ntasks;
    if (nthreads > 256) nthreads = 256;
    pthread_t th[256];
    int started = 0;
    for (int t = 1; t < nthreads; t++) {
        if (pthread_create(&th[started], NULL, pool_worker, &p) == 0) started++;
    }
    pool_worker(&p); /* the calling thread works too */
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    return p.failed ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* training: one pass, every group */

typedef struct {
    const Spec *s;
    float *params, *st1, *st2;
    int32_t members, n;
    const float *images;  /* (rows, 400) padded images */
    const int64_t *rows;  /* (members, n) image row of each member's step */
    const uint8_t *keep;  /* (members, n, 24) dropout masks, bit r of a pattern's 24 bytes for H3 input r (map-major), or NULL */
    const int64_t *labels; /* (n,) */
} TrainCtx;

/* the padded images of step i of the group from member m0, lane l holding member m0 + l's (the first image in
 * lanes past the population): one gather a pixel */
static void group_image(const TrainCtx *c, int64_t m0, int valid, int64_t i, vf *x) {
    vi at; /* each lane's image, in floats from the table's start (the table holds under 2^31 floats) */
    for (int l = 0; l < LANES; l++) at[l] = (int32_t)((l < valid ? c->rows[(m0 + l) * c->n + i] : 0) * 400);
    for (int p = 0; p < 400; p++) {
#if LANES == 16 && defined(__AVX512F__)
        x[p] = (vf)_mm512_i32gather_ps((__m512i)(at + p), c->images, 4);
#elif LANES == 8 && defined(__AVX2__)
        x[p] = (vf)_mm256_i32gather_ps(c->images, (__m256i)(at + p), 4);
#else
        for (int l = 0; l < LANES; l++) x[p][l] = c->images[at[l] + p];
#endif
    }
}

/* dropout's scales on H3's inputs for step i of the group from member m0: lane l of keep[r] is scale where bit r
 * of member m0 + l's mask is set, else 0, and 1 in lanes past the population. Each lane's 24 mask bytes are
 * read once; the bits become whole vectors. */
static void group_keep(const TrainCtx *c, int64_t m0, int valid, int64_t i, float scale, vf *keep) {
    vi bytes[24];
    vf scales;
    for (int l = 0; l < LANES; l++) {
        const uint8_t *kb = c->keep + ((m0 + l) * c->n + i) * 24;
        scales[l] = l < valid ? scale : 1.0f;
        for (int b = 0; b < 24; b++) bytes[b][l] = l < valid ? kb[b] : 0xff;
    }
    for (int r = 0; r < 192; r++) {
        vi bit = (bytes[r >> 3] >> (r & 7)) & 1;
        keep[r] = (vf)((vi)scales & -bit);
    }
}

#define TRAIN_VARIANT(NAME, OPT)                                                                         \
    static void NAME(const TrainCtx *c, int64_t g, Work *w) {                                            \
        const Spec *s = c->s;                                                                            \
        const int64_t np = s->nparam;                                                                    \
        vf *P = (vf *)c->params + g * np;                                                                \
        vf *S1 = c->st1 ? (vf *)c->st1 + g * np : NULL;                                                  \
        vf *S2 = c->st2 ? (vf *)c->st2 + g * np : NULL;                                                  \
        const int64_t m0 = g * LANES;                                                                    \
        int valid = (int)(c->members - m0 < LANES ? c->members - m0 : LANES);                            \
        const int dropout = c->keep != NULL && s->arch == ARCH_NET1989;                                  \
        const float scale = (float)s->keep_scale;                                                        \
        for (int64_t i = 0; i < c->n; i++) {                                                             \
            group_image(c, m0, valid, i, w->x);                                                          \
            if (dropout) group_keep(c, m0, valid, i, scale, w->keep);                                    \
            Upd u;                                                                                       \
            make_upd(s, s->step + i + 1, &u);                                                            \
            if (step_rule(&u, OPT) == RULE_ADAMW_SETTLED)                                                \
                step_group(s, &u, RULE_ADAMW_SETTLED, P, S1, S2, w, c->labels[i], dropout);              \
            else                                                                                         \
                step_group(s, &u, OPT, P, S1, S2, w, c->labels[i], dropout);                             \
        }                                                                                                \
    }

TRAIN_VARIANT(train_group_sgd, OPT_SGD)
TRAIN_VARIANT(train_group_adamw, OPT_ADAMW)
TRAIN_VARIANT(train_group_sdlm, OPT_SDLM)
TRAIN_VARIANT(train_group_sdlm_fixed, OPT_SDLM_FIXED)
TRAIN_VARIANT(train_group_sdlm_estimate, OPT_SDLM_ESTIMATE)

static int train_task(void *ctx, int64_t g, Work *w) {
    const TrainCtx *c = ctx;
    switch (c->s->opt) {
    case OPT_SGD: train_group_sgd(c, g, w); return 0;
    case OPT_ADAMW: train_group_adamw(c, g, w); return 0;
    case OPT_SDLM: train_group_sdlm(c, g, w); return 0;
    case OPT_SDLM_FIXED: train_group_sdlm_fixed(c, g, w); return 0;
    case OPT_SDLM_ESTIMATE: train_group_sdlm_estimate(c, g, w); return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* evaluation: every member on every pattern. Here the lanes hold patterns, not members: one member's
 * weights, broadcast, on LANES patterns at a time (Wts.bcast). Each lane does what training's forward does
 * for that member on that pattern, in the same order, so the outputs are the same bits; but a member's
 * weights (NP floats, not NP vectors) stay in the near caches, and a population of fewer than LANES members
 * fills every lane. */

typedef struct {
    const Spec *s;
    const float *mparams;  /* (members, NP): each member's parameters, contiguous */
    int32_t members, n;
    const vf *xt;          /* (blocks, 400): the padded images of LANES patterns per block, lane = pattern */
    const int64_t *labels;
    float *outs;           /* (members, n, 10) output values */
    float *losses;         /* (members, n) */
    int64_t chunk;         /* blocks per task */
    int64_t tasks_per_member;
} EvalCtx;

static int eval_task(void *ctx, int64_t task, Work *w) {
    const EvalCtx *c = ctx;
    const Spec *s = c->s;
    const int64_t m = task / c->tasks_per_member, part = task % c->tasks_per_member;
    const Wts P = {c->mparams + m * s->nparam, 1};
    const int64_t blocks = (c->n + LANES - 1) / LANES;
    const int64_t b0 = part * c->chunk, b1 = b0 + c->chunk < blocks ? b0 + c->chunk : blocks;
    const float target = (float)s->target;
    for (int64_t b = b0; b < b1; b++) {
        forward(s, P, c->xt + b * 400, w, NULL);
        vf y[10];
        if (s->out != OUT_SOFTMAX_CE) {
            int a = s->out == OUT_TANH_MSE ? ACT_TANH : ACT_SCALED_TANH;
            for (int o = 0; o < 10; o++) y[o] = act_f(a, w->pre[o]);
        }
        for (int l = 0; l < LANES && b * LANES + l < c->n; l++) {
            const int64_t p = b * LANES + l, lab = c->labels[p];
            float *out = c->outs + (m * c->n + p) * 10;
            float loss;
            if (s->out != OUT_SOFTMAX_CE) {
                float sum = 0.0f;
                for (int o = 0; o < 10; o++) {
                    float d = y[o][l] - (o == lab ? target : -target);
                    out[o] = y[o][l];
                    sum += d * d;
                }
                loss = sum / 10.0f;
            } else {
                float mx = w->pre[0][l];
                for (int o = 1; o < 10; o++) mx = w->pre[o][l] > mx ? w->pre[o][l] : mx;
                float e[10], sum = 0.0f;
                for (int o = 0; o < 10; o++) {
                    e[o] = kernel_expf(w->pre[o][l] - mx);
                    sum += e[o];
                }
                for (int o = 0; o < 10; o++) out[o] = e[o] / sum;
                loss = kernel_logf(sum) - (w->pre[lab][l] - mx);
            }
            c->losses[m * c->n + p] = loss;
        }
    }
    return 0;
}

/* every member on n patterns. params: the training layout, (groups, NP, LANES); wide: scratch of the same size */
static int eval_population(const Spec *s, const float *params, float *wide, int32_t members, const float *images,
                           const int64_t *labels, int32_t n, float *outs, float *losses, int32_t nthreads) {
    const int64_t np = s->nparam, blocks = (n + LANES - 1) / LANES;
    if (members < 1 || blocks < 1) return 0;
    /* each member's parameters contiguous */
    for (int64_t m = 0; m < members; m++) {
        const float *src = params + (m / LANES) * np * LANES + m % LANES;
        for (int64_t k = 0; k < np; k++) wide[m * np + k] = src[k * LANES];
    }
    /* the images in blocks of LANES patterns, lane-minor (lanes past the last pattern: background) */
    vf *xt = aligned_alloc(sizeof(vf), (size_t)blocks * 400 * sizeof(vf));
    if (!xt) return -1;
    for (int64_t b = 0; b < blocks; b++)
        for (int l = 0; l < LANES; l++) {
            const int64_t p = b * LANES + l;
            for (int q = 0; q < 400; q++) xt[b * 400 + q][l] = p < n ? images[p * 400 + q] : -1.0f;
        }
    /* tasks: (member, about 16 blocks), at least as many as threads */
    int64_t per_member = (blocks + 15) / 16;
    if (members * per_member < nthreads) per_member = (nthreads + members - 1) / members;
    if (per_member > blocks) per_member = blocks;
    const int64_t chunk = (blocks + per_member - 1) / per_member;
    per_member = (blocks + chunk - 1) / chunk;
    EvalCtx c = {s, wide, members, n, xt, labels, outs, losses, chunk, per_member};
    int rc = pool_run(eval_task, &c, members * per_member, nthreads); /* each worker restores its mode */
    free(xt);
    return rc;
}
