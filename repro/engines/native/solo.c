/* One member alone, its units in the lanes (native.c includes it after kernel.c, whose helpers it uses).
 *
 * The members-in-lanes kernel trains LANES members in the time of one: a population of one leaves all but one
 * lane idle. Here one member's units fill the lanes instead. Every number is still computed by the same IEEE
 * float32 operations, and each sum adds the same terms in the same order, as the members-in-lanes step
 * does for that member (the comment at each sum says which loop of kernel.c it follows), so a member's
 * numbers are the same bits whichever way it trains. Lanes only change which numbers are computed side by
 * side. net1989 with SGD or AdamW; the other options train with members in the lanes.
 *
 * Layouts (a 4x4 plane is 16 lanes, NV16 vectors; an 8x8 H1 map is four phase planes, phase (py, px) holding
 * the units (2a + py, 2b + px), lane a*4 + b, so that every stride-2 window of H1 is a shifted 4x4 plane):
 *   parameters: the member's NP floats as in kernel.c, except b1, stored [12][phase][16];
 *   W3 and W4 also transposed (w3t, w4t), for the forward's lanes over units: kept equal to W3 and W4 after
 *   each update (SGD: the same update applied to the copy; AdamW: copied).
 * Gradients go to one buffer in the parameters' layout, and every parameter is updated at the end of the
 * step: each lower layer's delta uses the old weights, as in kernel.c.
 * Measured on a 2-core Intel Xeon (AVX-512), one SGD step: about 10 us alone against 75 us for a 16-lane
 * group (which trains 16 members in that time).
 */

#include <stddef.h>

#define NV16 (16 / LANES)
/* the vector at p: parameters start anywhere (b1 at float 300), so every access may be unaligned */
typedef float vfu __attribute__((vector_size(LANES * 4), aligned(4)));
#define VAT(p) (*(vfu *)(p))

/* base[idx[l]] in lane l: a plain load, no rounding */
INLINE vf gather(const float *base, vi idx) {
#if LANES == 16 && defined(__AVX512F__)
    return (vf)_mm512_i32gather_ps((__m512i)idx, base, 4);
#elif LANES == 8 && defined(__AVX2__)
    return (vf)_mm256_i32gather_ps(base, (__m256i)idx, 4);
#else
    vf r;
    for (int l = 0; l < LANES; l++) r[l] = base[idx[l]];
    return r;
#endif
}

/* base[idx[l]] = x[l] */
INLINE void scatter(float *base, vi idx, vf x) {
#if LANES == 16 && defined(__AVX512F__)
    _mm512_i32scatter_ps(base, (__m512i)idx, (__m512)x, 4);
#else
    for (int l = 0; l < LANES; l++) base[idx[l]] = x[l];
#endif
}

/* the first n floats of x (n <= LANES) to dst, the rest of dst untouched */
INLINE void store_first(float *dst, vf x, int n) {
#if LANES == 16 && defined(__AVX512F__)
    _mm512_mask_storeu_ps(dst, (__mmask16)((1u << n) - 1), (__m512)x);
#else
    for (int l = 0; l < n; l++) dst[l] = x[l];
#endif
}

/* a 4x4 plane (16 floats, lane a*4+b) shifted by s (solo_new's ix_sh, valid): lane (a, b) of the result is
 * the plane's (a + u, b + v), or fill where that is outside */
typedef struct Solo Solo;
INLINE vf shifted(const Solo *w, const float *plane, int s, int h, float fill);

/* lanes of m: a * b + c (rounded once, as fmadd); other lanes: c, untouched */
typedef struct {
#if LANES == 16 && defined(__AVX512F__)
    __mmask16 k;
#else
    vi k;
#endif
} Mask;

INLINE vf fmadd_where(Mask m, vf a, vf b, vf c) {
#if LANES == 16 && defined(__AVX512F__)
    return (vf)_mm512_mask3_fmadd_ps((__m512)a, (__m512)b, (__m512)c, m.k);
#else
    return sel(m.k, fmadd(a, b, c), c);
#endif
}

/* Spec.alone asks for this; net1989 with SGD or AdamW, every H1 map read by 8 H2 maps (both schemes), allows it */
INLINE int solo_chosen(const Spec *s) {
    int readers[12] = {0}, balanced = 1;
    for (int r = 0; r < 96; r++) readers[s->scheme[r] % 12]++;
    for (int i = 0; i < 12; i++) balanced &= readers[i] == 8;
    return s->alone && balanced && s->arch == ARCH_NET1989 && (s->opt == OPT_SGD || s->opt == OPT_ADAMW);
}

/* b1's index in the solo layout, from its place (map m, row y, column x) */
INLINE int solo_b1(int m, int y, int x) { return N_B1 + m * 64 + ((y & 1) * 2 + (x & 1)) * 16 + (y >> 1) * 4 + (x >> 1); }

struct Solo {
    float P[N_NP + 32], S1[N_NP + 32], S2[N_NP + 32], G[N_NP + 32]; /* + 32: a vector read past the end */
    float w3t[192][32], w4t[30][16];
    float xph[4][25][16];    /* H1's inputs: phase, tap ky*5+kx, lane: x[(4a + 2py + ky) * 20 + 4b + 2px + kx] */
    float xt[64][32];        /* W1's gradient: position oy*8+ox, tap (25 of 32): x[(2oy + ky) * 20 + 2ox + kx] */
    float h1[12][4][16];     /* H1's outputs by phase */
    float h1p[12][144];      /* the same, padded to 12x12 with background, row-major */
    float h1col[12][25][16]; /* H2's inputs: H1 map, tap, lane oy*4+ox: h1p[(2oy + ky) * 12 + 2ox + kx] */
    float h1t[12][16][32];   /* the same transposed, for W2's gradient: H1 map, position, tap */
    float h2[192], h2in[192], keep[192], d2[192];
    float h3[32], pre[16], d4[16], d3[32];
    float d2sh[12][9][16];   /* d2 of H2 map j shifted by (u, v) in {-1, 0, 1}^2, lane a*4+b: d2[j][a+u][b+v] */
    float d1[12][4][16];     /* H1's delta by phase */
    int32_t readers[12][8];  /* the H2 slots (j * 8 + k) reading each H1 map, ascending */
    Mask valid[9][NV16];     /* lanes (a, b) with (a+u, b+v) inside the 4x4 plane */
    /* gather and scatter offsets (see solo_new) */
    vi ix_ph[NV16], ix_t[32 / LANES], ih_col[NV16], ih_t[32 / LANES], ix_w3[32 / LANES], ix_w4[NV16], ix_sh[9][NV16];
};

_Static_assert(offsetof(Solo, w3t) % 64 == 0 && offsetof(Solo, w4t) % 64 == 0, "w3t and w4t rows are whole vectors");

INLINE vf shifted(const Solo *w, const float *plane, int s, int h, float fill) {
#if LANES == 16 && defined(__AVX512F__)
    (void)h;
    return (vf)_mm512_mask_permutexvar_ps(_mm512_set1_ps(fill), w->valid[s][0].k, (__m512i)w->ix_sh[s][0],
                                          _mm512_loadu_ps(plane));
#else
    return sel(w->valid[s][h].k, gather(plane, w->ix_sh[s][h]), splat(fill));
#endif
}

static Solo *solo_new(const Spec *s) {
    Solo *w = aligned_alloc(64, (sizeof(Solo) + 63) / 64 * 64);
    if (!w) return NULL;
    memset(w, 0, sizeof *w);
    for (int i = 0; i < 12 * 144; i++) (&w->h1p[0][0])[i] = -1.0f;
    for (int i = 0; i < 12; i++) {
        int nr = 0;
        for (int r = 0; r < 96; r++) /* as bwd_h2: readers in ascending r (8 each: solo_chosen) */
            if (s->scheme[r] == i && nr < 8) w->readers[i][nr++] = r;
    }
    for (int s9 = 0; s9 < 9; s9++)
        for (int l = 0; l < 16; l++) {
            const int a = (l >> 2) + s9 / 3 - 1, b = (l & 3) + s9 % 3 - 1, in = a >= 0 && a < 4 && b >= 0 && b < 4;
#if LANES == 16 && defined(__AVX512F__)
            w->valid[s9][0].k |= (__mmask16)(in << l);
#else
            w->valid[s9][l / LANES].k[l % LANES] = in ? -1 : 0;
#endif
            w->ix_sh[s9][l / LANES][l % LANES] = in ? a * 4 + b : 0;
        }
    for (int l = 0; l < 16; l++) {
        const int a = l >> 2, b = l & 3;
        w->ix_ph[l / LANES][l % LANES] = 80 * a + 4 * b; /* input (4a, 4b) */
        w->ih_col[l / LANES][l % LANES] = 24 * a + 2 * b; /* padded H1 (2a, 2b) */
        w->ix_w4[l / LANES][l % LANES] = l < 10 ? l * 30 : 0;
    }
    for (int k = 0; k < 32; k++) {
        w->ix_t[k / LANES][k % LANES] = k < 25 ? (k / 5) * 20 + k % 5 : 0; /* tap (ky, kx) of the input */
        w->ih_t[k / LANES][k % LANES] = k < 25 ? (k / 5) * 12 + k % 5 : 0; /* tap (ky, kx) of padded H1 */
        w->ix_w3[k / LANES][k % LANES] = k < 30 ? k * 192 : 0;
    }
    return w;
}

/* the member's parameters (and state) from lane `lane` of a group block, into the solo layout, or back */
static void solo_gather(float *dst, const float *block, int lane) {
    for (int k = 0; k < N_NP; k++) dst[k] = block[(int64_t)k * LANES + lane];
    for (int m = 0; m < 12; m++)
        for (int q = 0; q < 64; q++) dst[solo_b1(m, q >> 3, q & 7)] = block[(int64_t)(N_B1 + m * 64 + q) * LANES + lane];
}

static void solo_scatter(float *block, const float *src, int lane) {
    for (int k = 0; k < N_NP; k++) block[(int64_t)k * LANES + lane] = src[k];
    for (int m = 0; m < 12; m++)
        for (int q = 0; q < 64; q++) block[(int64_t)(N_B1 + m * 64 + q) * LANES + lane] = src[solo_b1(m, q >> 3, q & 7)];
}

/* lanes past the units (W3's 30 of 32, W4's 10 of 16) hold copies of other weights: finite, never used */
static void solo_transpose_top(Solo *w) {
    for (int q = 0; q < 192; q++)
        for (int v = 0; v < 32 / LANES; v++) VAT(&w->w3t[q][v * LANES]) = gather(&w->P[N_W3 + q], w->ix_w3[v]);
    for (int u = 0; u < 30; u++)
        for (int h = 0; h < NV16; h++) VAT(&w->w4t[u][h * LANES]) = gather(&w->P[N_W4 + u], w->ix_w4[h]);
}

/* the image's layouts: x is the padded 20x20 image */
static void solo_inputs(Solo *w, const float *x) {
    for (int ph = 0; ph < 4; ph++)
        for (int ky = 0; ky < 5; ky++)
            for (int kx = 0; kx < 5; kx++)
                for (int h = 0; h < NV16; h++)
                    VAT(&w->xph[ph][ky * 5 + kx][h * LANES]) =
                        gather(x + (2 * (ph >> 1) + ky) * 20 + 2 * (ph & 1) + kx, w->ix_ph[h]);
    for (int pos = 0; pos < 64; pos++) /* lanes past the 25 taps: copies of other inputs, never used */
        for (int v = 0; v < 32 / LANES; v++)
            VAT(&w->xt[pos][v * LANES]) = gather(x + 2 * (pos >> 3) * 20 + 2 * (pos & 7), w->ix_t[v]);
}

/* H1 (as fwd_h1: acc = sum over ky, kx of W1 * x, then the bias, then the activation) */
static void solo_fwd_h1(Solo *w, int act) {
    const float *P = w->P;
    for (int m0 = 0; m0 < 12; m0 += 3) {
        vf acc[3][4 * NV16];
        for (int a = 0; a < 3 * 4 * NV16; a++) (&acc[0][0])[a] = splat(0.0f);
        for (int k = 0; k < 25; k++)
#pragma GCC unroll 3
            for (int mm = 0; mm < 3; mm++) {
                vf wv = splat(P[N_W1 + (m0 + mm) * 25 + k]);
#pragma GCC unroll 8
                for (int a = 0; a < 4 * NV16; a++)
                    acc[mm][a] = fmadd(wv, VAT(&w->xph[a / NV16][k][(a % NV16) * LANES]), acc[mm][a]);
            }
        for (int mm = 0; mm < 3; mm++)
            for (int a = 0; a < 4 * NV16; a++) {
                const int m = m0 + mm, off = (a / NV16) * 16 + (a % NV16) * LANES;
                VAT(&w->h1[m][0][off]) = act_f(act, acc[mm][a] + VAT(&P[N_B1 + m * 64 + off]));
            }
    }
    for (int m = 0; m < 12; m++)
        for (int ph = 0; ph < 4; ph++)
            for (int h = 0; h < NV16; h++)
                scatter(&w->h1p[m][((ph >> 1) + 2) * 12 + (ph & 1) + 2], w->ih_col[h], VAT(&w->h1[m][ph][h * LANES]));
    for (int i = 0; i < 12; i++) {
        /* H2 unit (oy, ox) meets H1 unit (2oy + ky - 2, 2ox + kx - 2): phase (ky & 1, kx & 1), at (oy, ox) shifted
         * by (ky / 2 - 1, kx / 2 - 1); outside the map, the background */
        for (int ky = 0; ky < 5; ky++)
            for (int kx = 0; kx < 5; kx++)
                for (int h = 0; h < NV16; h++)
                    VAT(&w->h1col[i][ky * 5 + kx][h * LANES]) =
                        shifted(w, w->h1[i][(ky & 1) * 2 + (kx & 1)], (ky >> 1) * 3 + (kx >> 1), h, -1.0f);
        for (int l = 0; l < 16; l++) /* lanes past the 25 taps: copies of other units, never used */
            for (int v = 0; v < 32 / LANES; v++)
                VAT(&w->h1t[i][l][v * LANES]) = gather(&w->h1p[i][24 * (l >> 2) + 2 * (l & 3)], w->ih_t[v]);
    }
}

/* H2 (as fwd_h2: acc = sum over slots k, then ky, kx, of W2 * H1, then the bias, then the activation);
 * all 12 maps at once for 12 independent chains */
static void solo_fwd_h2(Solo *w, const int32_t *scheme, int act) {
    const float *P = w->P;
    vf acc[12][NV16];
    for (int j = 0; j < 12; j++)
        for (int h = 0; h < NV16; h++) acc[j][h] = splat(0.0f);
    for (int k = 0; k < 8; k++)
        for (int kk = 0; kk < 25; kk++)
#pragma GCC unroll 12
            for (int j = 0; j < 12; j++) {
                vf wv = splat(P[N_W2 + (j * 8 + k) * 25 + kk]);
                const float *col = w->h1col[scheme[j * 8 + k]][kk];
                for (int h = 0; h < NV16; h++) acc[j][h] = fmadd(wv, VAT(&col[h * LANES]), acc[j][h]);
            }
    for (int j = 0; j < 12; j++)
        for (int h = 0; h < NV16; h++)
            VAT(&w->h2[j * 16 + h * LANES]) = act_f(act, acc[j][h] + VAT(&P[N_B2 + j * 16 + h * LANES]));
}

/* H3 and the outputs (as fwd_h3 and fwd_out: sums over the inputs in order), lanes over units */
static void solo_fwd_top(Solo *w, int act) {
    const float *P = w->P;
    vf acc[32 / LANES];
    for (int v = 0; v < 32 / LANES; v++) acc[v] = splat(0.0f);
    for (int q = 0; q < 192; q++) {
        vf hv = splat(w->h2in[q]);
        for (int v = 0; v < 32 / LANES; v++) acc[v] = fmadd(VAT(&w->w3t[q][v * LANES]), hv, acc[v]);
    }
    for (int v = 0; v < 32 / LANES; v++) VAT(&w->h3[v * LANES]) = act_f(act, acc[v] + VAT(&P[N_B3 + v * LANES]));
    vf out[NV16];
    for (int h = 0; h < NV16; h++) out[h] = splat(0.0f);
    for (int u = 0; u < 30; u++) {
        vf hv = splat(w->h3[u]);
        for (int h = 0; h < NV16; h++) out[h] = fmadd(VAT(&w->w4t[u][h * LANES]), hv, out[h]);
    }
    for (int h = 0; h < NV16; h++) VAT(&w->pre[h * LANES]) = out[h] + VAT(&P[N_B4 + h * LANES]);
}

/* the output delta (as output_delta, lane by lane) */
static void solo_output_delta(Solo *w, int outk, float target, int64_t label) {
    if (outk != OUT_SOFTMAX_CE) {
        const int a = outk == OUT_TANH_MSE ? ACT_TANH : ACT_SCALED_TANH;
        for (int h = 0; h < NV16; h++) {
            vf t;
            for (int l = 0; l < LANES; l++) t[l] = h * LANES + l == label ? target : -target;
            vf y = act_f(a, VAT(&w->pre[h * LANES]));
            vf f = act_d(a, y);
            VAT(&w->d4[h * LANES]) = (y - t) * 0.2f * f;
        }
        for (int o = 10; o < 16; o++) w->d4[o] = 0.0f; /* as d3's spare lanes */
        return;
    }
    float mx = w->pre[0];
    for (int o = 1; o < 10; o++) mx = w->pre[o] > mx ? w->pre[o] : mx;
    float e[10], sum = 0.0f;
    for (int o = 0; o < 10; o++) {
        e[o] = kernel_expf(w->pre[o] - mx);
        sum += e[o];
    }
    for (int o = 0; o < 10; o++) {
        float p = e[o] / sum;
        w->d4[o] = o == label ? p - 1.0f : p;
    }
}

/* the top's deltas and gradients: H3's delta (as bwd_out), H2's (as bwd_h3), W4, b4, W3, b3 */
static void solo_bwd_top(Solo *w, int act, int dropout) {
    const float *P = w->P;
    float *G = w->G;
    for (int v = 0; v < 32 / LANES; v++) { /* lanes 30 and 31 read past W4's row: never used */
        vf g = splat(0.0f);
        for (int o = 0; o < 10; o++) g = fmadd(VAT(&P[N_W4 + o * 30 + v * LANES]), splat(w->d4[o]), g);
        VAT(&w->d3[v * LANES]) = g * act_d(act, VAT(&w->h3[v * LANES]));
    }
    w->d3[30] = w->d3[31] = 0.0f; /* lanes past the units: so that the transposed copies' spare lanes stay put */
    for (int o = 0; o < 10; o++) {
        for (int u = 0; u < 30; u++) G[N_W4 + o * 30 + u] = w->d4[o] * w->h3[u];
        G[N_B4 + o] = w->d4[o];
    }
    for (int v = 0; v < 192 / LANES; v++) {
        vf dh = splat(0.0f);
        for (int uu = 0; uu < 30; uu++) dh = fmadd(VAT(&P[N_W3 + uu * 192 + v * LANES]), splat(w->d3[uu]), dh);
        vf f = act_d(act, VAT(&w->h2[v * LANES]));
        VAT(&w->d2[v * LANES]) = dropout ? dh * VAT(&w->keep[v * LANES]) * f : dh * f;
    }
    for (int uu = 0; uu < 30; uu++) {
        vf d = splat(w->d3[uu]);
        for (int v = 0; v < 192 / LANES; v++) VAT(&G[N_W3 + uu * 192 + v * LANES]) = d * VAT(&w->h2in[v * LANES]);
        G[N_B3 + uu] = w->d3[uu];
    }
}

/* H1's delta (as bwd_h2's gather: for each H1 unit, over its readers t, then oy, then ox). For the unit
 * (2a + py, 2b + px), H2 unit (oy, ox) = (a + u, b + v) meets it at tap ky = py + 2 - 2u, kx = px + 2 - 2v:
 * one weight for the whole phase plane, times d2 shifted by (u, v), in lanes whose (a + u, b + v) exists. */
static void solo_bwd_h1_delta(Solo *w, int act) {
    const float *P = w->P;
    for (int j = 0; j < 12; j++) /* lanes outside the plane: 0, masked off below */
        for (int s = 0; s < 9; s++)
            for (int h = 0; h < NV16; h++) VAT(&w->d2sh[j][s][h * LANES]) = shifted(w, &w->d2[j * 16], s, h, 0.0f);
    for (int i0 = 0; i0 < 12; i0 += 2) { /* two maps: eight phase planes, eight independent sums */
        vf acc[2][4][NV16];
        for (int a = 0; a < 2 * 4 * NV16; a++) (&acc[0][0][0])[a] = splat(0.0f);
        for (int t = 0; t < 8; t++) /* solo_chosen: every H1 map has 8 readers */
#pragma GCC unroll 2
            for (int ii = 0; ii < 2; ii++) {
                const int r = w->readers[i0 + ii][t];
                const float *W = P + N_W2 + r * 25, *D = &w->d2sh[r >> 3][0][0];
#pragma GCC unroll 3
                for (int u = -1; u <= 1; u++)
#pragma GCC unroll 3
                    for (int v = -1; v <= 1; v++)
#pragma GCC unroll 4
                        for (int ph = 0; ph < 4; ph++) {
                            const int ky = (ph >> 1) + 2 - 2 * u, kx = (ph & 1) + 2 - 2 * v, s = (u + 1) * 3 + v + 1;
                            if (ky > 4 || kx > 4) continue; /* ky, kx >= 0 always */
                            vf wv = splat(W[ky * 5 + kx]);
                            for (int h = 0; h < NV16; h++)
                                acc[ii][ph][h] = fmadd_where(w->valid[s][h], wv, VAT(&D[s * 16 + h * LANES]), acc[ii][ph][h]);
                        }
            }
        for (int ii = 0; ii < 2; ii++)
            for (int ph = 0; ph < 4; ph++)
                for (int h = 0; h < NV16; h++) {
                    const int i = i0 + ii;
                    VAT(&w->d1[i][ph][h * LANES]) = acc[ii][ph][h] * act_d(act, VAT(&w->h1[i][ph][h * LANES]));
                }
    }
}

/* a weight's 25 taps, each the sum of its two partial sums (even + odd), to dst: lanes past 25 are not stored */
INLINE void store_taps(float *dst, const vf *even, const vf *odd) {
    for (int v = 0; v < 32 / LANES; v++)
        store_first(dst + v * LANES, even[v] + odd[v], 25 - v * LANES < LANES ? 25 - v * LANES : LANES);
}

/* W2's gradient (as bwd_h2's second loop: two partial sums, even and odd oy, each over oy then ox; lanes over
 * taps), b2's, W1's (as bwd_h1: even and odd ox) and b1's */
static void solo_bwd_grads(Solo *w, const int32_t *scheme) {
    float *G = w->G;
    for (int r = 0; r < 96; r++) {
        const float *d = w->d2 + (r >> 3) * 16;
        const int i = scheme[r];
        vf g[2][32 / LANES];
        for (int a = 0; a < 2 * 32 / LANES; a++) (&g[0][0])[a] = splat(0.0f);
#pragma GCC unroll 16
        for (int pos = 0; pos < 16; pos++) {
            vf dv = splat(d[pos]);
            const int par = (pos >> 2) & 1;
            for (int v = 0; v < 32 / LANES; v++) g[par][v] = fmadd(dv, VAT(&w->h1t[i][pos][v * LANES]), g[par][v]);
        }
        store_taps(&G[N_W2 + r * 25], g[0], g[1]);
    }
    memcpy(&G[N_B2], w->d2, sizeof w->d2);
    for (int m0 = 0; m0 < 12; m0 += 2) { /* two maps: eight independent sums */
        vf even[2][32 / LANES], odd[2][32 / LANES];
        for (int mm = 0; mm < 2; mm++)
            for (int v = 0; v < 32 / LANES; v++) even[mm][v] = odd[mm][v] = splat(0.0f);
        for (int oy = 0; oy < 8; oy++)
#pragma GCC unroll 4
            for (int ox = 0; ox < 8; ox += 2) { /* positions in order: (oy, ox) to the even sum, (oy, ox + 1) to the odd */
                const int lane = (oy >> 1) * 4 + (ox >> 1);
#pragma GCC unroll 2
                for (int mm = 0; mm < 2; mm++) {
                    vf de = splat(w->d1[m0 + mm][(oy & 1) * 2][lane]), dodd = splat(w->d1[m0 + mm][(oy & 1) * 2 + 1][lane]);
                    for (int v = 0; v < 32 / LANES; v++) {
                        even[mm][v] = fmadd(de, VAT(&w->xt[oy * 8 + ox][v * LANES]), even[mm][v]);
                        odd[mm][v] = fmadd(dodd, VAT(&w->xt[oy * 8 + ox + 1][v * LANES]), odd[mm][v]);
                    }
                }
            }
        for (int mm = 0; mm < 2; mm++) store_taps(&G[N_W1 + (m0 + mm) * 25], even[mm], odd[mm]);
    }
    memcpy(&G[N_B1], w->d1, sizeof w->d1);
}

/* SGD's update of the transposed copies, without transposing: each weight's gradient is the same product
 * (x * d = d * x) and upd's SGD rule updates it, so the copies stay equal to W3 and W4 (their rows are whole
 * vectors: see the assertion after Solo) */
static void solo_sgd_top_transposed(Solo *w, const Upd *u) {
    for (int q = 0; q < 192; q++) {
        vf x = splat(w->h2in[q]);
        for (int v = 0; v < 32 / LANES; v++)
            upd(u, OPT_SGD, (vf *)&w->w3t[q][v * LANES], NULL, NULL, x * VAT(&w->d3[v * LANES]), splat(0.0f));
    }
    for (int uu = 0; uu < 30; uu++) {
        vf x = splat(w->h3[uu]);
        for (int h = 0; h < NV16; h++)
            upd(u, OPT_SGD, (vf *)&w->w4t[uu][h * LANES], NULL, NULL, x * VAT(&w->d4[h * LANES]), splat(0.0f));
    }
}

INLINE void solo_step(const Spec *s, const Upd *u, const int opt, Solo *w, int64_t label, int dropout) {
    const int act = s->act;
    solo_fwd_h1(w, act);
    solo_fwd_h2(w, s->scheme, act);
    if (dropout)
        for (int q = 0; q < 192; q += LANES) VAT(&w->h2in[q]) = VAT(&w->h2[q]) * VAT(&w->keep[q]);
    else
        memcpy(w->h2in, w->h2, sizeof w->h2);
    solo_fwd_top(w, act);
    solo_output_delta(w, s->out, (float)s->target, label);
    solo_bwd_top(w, act, dropout);
    solo_bwd_h1_delta(w, act);
    solo_bwd_grads(w, s->scheme);
    vf *P = (vf *)w->P, *S1 = (vf *)w->S1, *S2 = (vf *)w->S2; /* each at the start of a 64-byte aligned block */
    const vf *G = (const vf *)w->G;
    if (step_rule(u, opt) == RULE_ADAMW_SETTLED)
        for (int k = 0; k < N_NP / LANES; k++) upd(u, RULE_ADAMW_SETTLED, P + k, S1 + k, S2 + k, G[k], splat(0.0f));
    else
        for (int k = 0; k < N_NP / LANES; k++) upd(u, opt, P + k, S1 + k, S2 + k, G[k], splat(0.0f));
    if (opt == OPT_SGD)
        solo_sgd_top_transposed(w, u);
    else
        solo_transpose_top(w);
}

#define SOLO_VARIANT(NAME, OPT)                                                                           \
    static void NAME(const TrainCtx *c, int64_t m, Solo *w) {                                            \
        const Spec *s = c->s;                                                                            \
        const int dropout = c->keep != NULL;                                                             \
        const float scale = (float)s->keep_scale;                                                        \
        for (int64_t i = 0; i < c->n; i++) {                                                             \
            solo_inputs(w, c->images + c->rows[m * c->n + i] * 400);                                     \
            if (dropout) {                                                                               \
                const uint8_t *kb = c->keep + (m * c->n + i) * 24;                                       \
                for (int r = 0; r < 192; r++) w->keep[r] = (kb[r >> 3] >> (r & 7)) & 1 ? scale : 0.0f;   \
            }                                                                                            \
            Upd u;                                                                                       \
            make_upd(s, s->step + i + 1, &u);                                                            \
            solo_step(s, &u, OPT, w, c->labels[i], dropout);                                             \
        }                                                                                                \
    }

SOLO_VARIANT(solo_train_sgd, OPT_SGD)
SOLO_VARIANT(solo_train_adamw, OPT_ADAMW)

/* one task: member m, alone */
static int solo_task(void *ctx, int64_t m, Work *unused) {
    (void)unused;
    const TrainCtx *c = ctx;
    const int64_t np = c->s->nparam, g = m / LANES;
    const int lane = (int)(m % LANES);
    Solo *w = solo_new(c->s);
    if (!w) return 1;
    float *blocks[3] = {c->params, c->st1, c->st2}, *mine[3] = {w->P, w->S1, w->S2};
    for (int b = 0; b < 3; b++)
        if (blocks[b]) solo_gather(mine[b], blocks[b] + g * np * LANES, lane);
    solo_transpose_top(w);
    if (c->s->opt == OPT_SGD)
        solo_train_sgd(c, m, w);
    else
        solo_train_adamw(c, m, w);
    for (int b = 0; b < 3; b++)
        if (blocks[b]) solo_scatter(blocks[b] + g * np * LANES, mine[b], lane);
    free(w);
    return 0;
}
