/* A pass's random draws for one member, from its torch CPU generator, as model.draw_pass_randomness makes them
 * (the same numbers, and the generator left in the same state), without torch's per-number overhead: a pass of
 * dropout masks is 1.4 M draws per member, which torch takes about 6 ms per member-pass to make and the
 * masks another 3 ms to compare and pack; here the whole pass takes about 1.3 ms (measured on the AVX-512 Xeon).
 *
 * torch's CPU generator is MT19937 (ATen's mt19937 engine: Cokus's form of the reference code). Its state comes
 * as torch.Generator.get_state() gives it (a CPUGeneratorImplState, 5,056 bytes) and is written back in place,
 * for set_state. The draws, in the order draw_pass_randomness makes them:
 *   shifts: randint(-shift, shift + 1, (n, 2)), row-major (dy, dx): each one 32-bit draw r, r % (2 shift + 1)
 *           - shift (a range below 2^32 takes one 32-bit draw);
 *   masks:  rand(n, 192) >= dropout, row-major: each one 32-bit draw r, the float (r & (2^24 - 1)) * 2^-24,
 *           compared in float32 with the probability rounded to float32 (the tensor's dtype, as torch compares
 *           a float32 tensor with a Python number).
 * tests/test_native_draws.py compares rows, bits and the state afterwards with torch's. */
#include <math.h>
#include <stdint.h>
#include <string.h>

enum { MT_N = 624, MT_M = 397 };

/* torch's CPUGeneratorImplState, as get_state lays it out on x86-64 and AArch64 (both LP64, little-endian) */
typedef struct {
    uint64_t the_initial_seed;
    int32_t left;
    int32_t seeded;
    uint64_t next;
    uint64_t state[MT_N];
    double normal_x, normal_y, normal_rho;
    int32_t normal_is_valid;
    float next_float_normal_sample;
    uint8_t is_next_float_normal_sample_valid;
} TorchCpuGeneratorState;

_Static_assert(sizeof(TorchCpuGeneratorState) == 5056, "torch's CPU generator state is 5,056 bytes");

typedef struct {
    uint32_t s[MT_N];
    int left;
    uint32_t next;
} Mt;

static inline uint32_t mt_twist(uint32_t u, uint32_t v) {
    return (((u & 0x80000000u) | (v & 0x7fffffffu)) >> 1) ^ (v & 1u ? 0x9908b0dfu : 0u);
}

/* the next 624 words, in place (the reference's recurrence; written with indices so that the compiler
 * vectorizes each loop: the first reads only words not yet rewritten, the second reads words rewritten at
 * least 227 places back) */
static void mt_next_state(Mt *g) {
    uint32_t *s = g->s;
    for (int i = 0; i < MT_N - MT_M; i++) s[i] = s[i + MT_M] ^ mt_twist(s[i], s[i + 1]);
    for (int i = MT_N - MT_M; i < MT_N - 1; i++) s[i] = s[i + MT_M - MT_N] ^ mt_twist(s[i], s[i + 1]);
    s[MT_N - 1] = s[MT_M - 1] ^ mt_twist(s[MT_N - 1], s[0]);
    g->left = MT_N;
    g->next = 0;
}

static inline uint32_t mt_temper(uint32_t y) {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* the generator's next n outputs, as n calls of ATen's mt19937 operator() give them and leaving (left, next)
 * as they leave it: a call with left == 1 makes the next 624 words and returns the first (left = 624,
 * next = 1); any other takes word `next` (left - 1, next + 1) */
static void mt_fill(Mt *g, uint32_t *out, int64_t n) {
    while (n > 0) {
        if (g->left == 1) {
            mt_next_state(g);
            g->next = 1;
            *out++ = mt_temper(g->s[0]);
            n--;
            continue;
        }
        const int64_t k = n < g->left - 1 ? n : g->left - 1;
        const uint32_t *src = g->s + g->next;
        for (int64_t j = 0; j < k; j++) out[j] = mt_temper(src[j]);
        g->next += (uint32_t)k;
        g->left -= (int)k;
        out += k;
        n -= k;
    }
}

/* One member's pass: the image row of each of its n steps (as members.shifted_rows: shifted copy
 * (dy + shift) * (2 shift + 1) + (dx + shift), n_train rows each, then the pattern) and, when dropout > 0, its
 * keep bits (n x 24 bytes, bit b of byte j for H3 input 8j + b, as keep_bits). `state` is updated in place.
 * Returns 0, or -1 for a state this code does not read (not seeded, or its position out of range). */
int native_draw_pass(uint8_t *state, int32_t n, int32_t shift, float dropout, int64_t n_train, int64_t *rows,
                     uint8_t *keep) {
    TorchCpuGeneratorState st;
    memcpy(&st, state, sizeof st);
    if (st.seeded != 1 || st.left < 1 || st.left > MT_N || st.next > MT_N) return -1;
    Mt g;
    for (int i = 0; i < MT_N; i++) g.s[i] = (uint32_t)st.state[i];
    g.left = st.left;
    g.next = (uint32_t)st.next;
    const uint32_t range = 2u * (uint32_t)shift + 1u;
    uint32_t r[192];
    for (int64_t i = 0; i < n; i++) {
        int64_t copy = 0;
        if (shift > 0) {
            mt_fill(&g, r, 2);
            const int64_t dy = (int64_t)(r[0] % range) - shift, dx = (int64_t)(r[1] % range) - shift;
            copy = (dy + shift) * range + (dx + shift);
        }
        rows[i] = copy * n_train + i;
    }
    if (dropout > 0.0f) {
        /* (r & (2^24 - 1)) * 2^-24 >= dropout, for a whole k = r & (2^24 - 1), is k >= dropout * 2^24 (exact: a
         * power of 2), that is k >= its ceiling */
        const float at_least = ceilf(dropout * 0x1p24f);
        const uint32_t threshold = at_least > 0x1p24f ? 0x1000000u : (uint32_t)at_least;
        for (int64_t i = 0; i < n; i++) {
            mt_fill(&g, r, 192);
            uint8_t *bytes = keep + i * 24;
            for (int j = 0; j < 24; j++) {
                uint8_t byte = 0;
                for (int b = 0; b < 8; b++) byte |= (uint8_t)(((r[8 * j + b] & 0xffffffu) >= threshold) << b);
                bytes[j] = byte;
            }
        }
    }
    for (int i = 0; i < MT_N; i++) st.state[i] = g.s[i];
    st.left = g.left;
    st.next = g.next;
    memcpy(state, &st, sizeof st);
    return 0;
}
