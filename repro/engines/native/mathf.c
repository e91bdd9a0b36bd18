/* expf and logf for the kernel (kernel.c includes this file), so that softmax's probabilities and the
 * cross-entropy loss are the same bits whatever C library the machine has (glibc, Apple's libm, musl...).
 *
 * They compute what glibc's expf and logf compute on x86-64 (glibc >= 2.27, the FMA variant that every CPU with
 * AVX2 and FMA runs): the same algorithm, in double with a small table, with each multiply-add that glibc's
 * build fuses written out as fma(). The committed study was trained with glibc's, so its records keep their
 * bits. tests/test_native_arm64.py checks both functions against this machine's C library on all 2^32 float
 * inputs (with flushing of denormals on, as the kernel runs them).
 *
 *   expf: x/ln2 = (k + r)/32 with k whole and |r| <= 1/2; exp(x) = 2^(k/32) * 2^(r/32), 2^(k/32) from the
 *         table (2^(i/32) rounded to double, exponent bits then moved by k), 2^(r/32) by a cubic.
 *   logf: x = 2^k z with z in [0x3f330000, 2 * that) as float bits, cut into 16 intervals; with c near the
 *         middle of z's interval (the table holds 1/c and log c), log(x) = log1p(z/c - 1) + log c + k ln2,
 *         log1p by a polynomial of degree 4.
 *
 * The kernel's inputs: expf sees x - max <= 0 and logf a sum in [1, 10]; both are written for every input.
 * On a result of expf near the smallest normal float, see fpmode.c: for no float input
 * does the double result before the final rounding lie in [2^-126 (1 - 2^-25), 2^-126), where x86-64 and
 * AArch64 flush differently (checked with the 2^32 inputs). */
#include <math.h>
#include <stdint.h>
#include <string.h>

static const uint64_t EXPF_TABLE[32] = { /* bits of 2^(i/32) rounded to double, minus i << 47 */
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
/* 2^(r/32) ~ 1 + r (C2 + r (C1 + r C0)) for |r| <= 1/2 */
static const double EXPF_C0 = 0x1.c6af84b912394p-5 / 32 / 32 / 32, EXPF_C1 = 0x1.ebfce50fac4f3p-3 / 32 / 32,
                    EXPF_C2 = 0x1.62e42ff0c52d6p-1 / 32;
static const double EXPF_32_OVER_LN2 = 0x1.71547652b82fep+0 * 32;
static const double EXPF_ROUNDER = 0x1.8p+52; /* adding it rounds a double below 2^51 to a whole number */

static inline uint32_t float_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline float bits_float(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }
static inline uint64_t double_bits(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
static inline double bits_double(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

/* exp(x) as a double before the final rounding, for the main path (|x| < 88) */
static double expf_unrounded(float x) {
    const double xd = (double)x;
    /* x * 32/ln2 = k + r: the product rounded to a whole number through the rounder (ties to even); k and r
     * each from one fused multiply-add of the same exact product, as glibc's FMA build computes them */
    const double shifted = fma(EXPF_32_OVER_LN2, xd, EXPF_ROUNDER);
    const uint64_t ki = double_bits(shifted);
    const double kd = shifted - EXPF_ROUNDER;
    const double r = fma(EXPF_32_OVER_LN2, xd, -kd);
    const double s = bits_double(EXPF_TABLE[ki % 32] + (ki << 47));
    const double z = fma(EXPF_C0, r, EXPF_C1);
    const double r2 = r * r;
    double y = fma(EXPF_C2, r, 1.0);
    y = fma(z, r2, y);
    return y * s;
}

static float kernel_expf(float x) {
    const uint32_t abstop = (float_bits(x) >> 20) & 0x7ff;
    if (abstop >= (float_bits(88.0f) >> 20)) { /* |x| >= 88, infinite or NaN */
        if (float_bits(x) == float_bits(-INFINITY)) return 0.0f;
        if (abstop >= (float_bits(INFINITY) >> 20)) return x + x;
        if (x > 0x1.62e42ep6f) return INFINITY;       /* above log(2^128) */
        if (x < -0x1.9fe368p6f) return 0.0f;          /* below log(2^-150) */
        if (x < -0x1.9d1d9ep6f) {                     /* below log(2^-149): the smallest subnormal, or 0 */
            volatile float tiny = 0x1.4p-75f;         /* flushed to 0 where the CPU flushes, as glibc's is */
            return tiny * tiny;
        }
    }
    return (float)expf_unrounded(x);
}

/* logf's table: 1/c and log(c) for each of the 16 intervals (c chosen so that the sums below round well) */
static const double LOGF_INVC[16] = {
    0x1.661ec79f8f3bep+0, 0x1.571ed4aaf883dp+0, 0x1.49539f0f010bp+0, 0x1.3c995b0b80385p+0,
    0x1.30d190c8864a5p+0, 0x1.25e227b0b8eap+0, 0x1.1bb4a4a1a343fp+0, 0x1.12358f08ae5bap+0,
    0x1.0953f419900a7p+0, 0x1p+0, 0x1.e608cfd9a47acp-1, 0x1.ca4b31f026aap-1,
    0x1.b2036576afce6p-1, 0x1.9c2d163a1aa2dp-1, 0x1.886e6037841edp-1, 0x1.767dcf5534862p-1,
};
static const double LOGF_LOGC[16] = {
    -0x1.57bf7808caadep-2, -0x1.2bef0a7c06ddbp-2, -0x1.01eae7f513a67p-2, -0x1.b31d8a68224e9p-3,
    -0x1.6574f0ac07758p-3, -0x1.1aa2bc79c81p-3, -0x1.a4e76ce8c0e5ep-4, -0x1.1973c5a611cccp-4,
    -0x1.252f438e10c1ep-5, 0x0p+0, 0x1.aa5aa5df25984p-5, 0x1.c5e53aa362eb4p-4,
    0x1.526e57720db08p-3, 0x1.bc2860d22477p-3, 0x1.1058bc8a07ee1p-2, 0x1.4043057b6ee09p-2,
};
static const double LOGF_LN2 = 0x1.62e42fefa39efp-1;
static const double LOGF_A0 = -0x1.00ea348b88334p-2, LOGF_A1 = 0x1.5575b0be00b6ap-2, LOGF_A2 = -0x1.ffffef20a4123p-2;
enum { LOGF_OFF = 0x3f330000 };

static float kernel_logf(float x) {
    uint32_t ix = float_bits(x);
    if (ix == 0x3f800000) return 0.0f;
    if (ix - 0x00800000 >= 0x7f800000 - 0x00800000) { /* below 2^-126, infinite or NaN */
        if (ix * 2 == 0) return -INFINITY;
        if (ix == 0x7f800000) return x;
        if (ix * 2 > 0xff000000) return x + x; /* NaN: the same NaN, quiet */
        if (ix & 0x80000000) return bits_float(0xffc00000); /* x < 0: 0/0's NaN on x86-64, as glibc's there */
        ix = float_bits(x * 0x1p23f); /* subnormal (where nothing flushed it): made normal */
        ix -= 23u << 23;
    }
    const uint32_t tmp = ix - LOGF_OFF;
    const int i = (int)((tmp >> 19) % 16);
    const int k = (int32_t)tmp >> 23;
    const uint32_t iz = ix - (tmp & 0x1ffu << 23);
    const double z = (double)bits_float(iz);
    const double r = fma(z, LOGF_INVC[i], -1.0);
    const double y0 = fma((double)k, LOGF_LN2, LOGF_LOGC[i]);
    const double r2 = r * r;
    double y = fma(LOGF_A1, r, LOGF_A2);
    y = fma(LOGF_A0, r2, y);
    y = fma(y, r2, y0 + r);
    return (float)y;
}
