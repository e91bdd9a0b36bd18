/* The kernel's expf and logf (repro/engines/native/mathf.c) against the C library's, with denormals flushed
 * as the kernel runs them (x86-64: MXCSR FTZ + DAZ; AArch64: FPCR.FZ).
 *
 *   mathf_check all     every one of the 2^32 float inputs: prints how many differ from this C library's
 *                       expf and logf, and how many expf inputs have a result (before its rounding to float)
 *                       in [2^-126 (1 - 2^-25), 2^-126), where x86-64 and AArch64 would flush differently
 *   mathf_check digest  every 257th input, and every 31st of the kernel's own ranges: a digest of the
 *                       kernel's results, the same on every CPU where the functions give the same bits
 *   mathf_check flush   the kernel's floating-point mode (fpmode.c) at the smallest normal float: a denormal
 *                       input, a product far below 2^-126, and the one product that fpmode.c says the two
 *                       architectures flush differently (exactly 2^-126 (1 - 2^-46)), as float bits
 *
 * Built by tests/test_native_arm64.py with the kernel's flags (no contraction). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mathf.c"
#include "fpmode.c"

typedef struct {
    uint64_t lo, hi, step;
    uint64_t exp_diff, log_diff, window, digest;
} Range;

static void *check_range(void *arg) {
    Range *r = arg;
    flush_denormals();
    const double top = 0x1p-126, bottom = 0x1p-126 * (1.0 - 0x1p-25);
    uint64_t digest = 1469598103934665603ull;
    for (uint64_t u = r->lo; u < r->hi; u += r->step) {
        const float x = bits_float((uint32_t)u);
        const float e = kernel_expf(x), l = kernel_logf(x);
        if (r->step == 1) {
            const float ge = expf(x), gl = logf(x);
            r->exp_diff += float_bits(e) != float_bits(ge);
            r->log_diff += float_bits(l) != float_bits(gl);
            if (fabsf(x) < 88.0f) {
                const double y = expf_unrounded(x);
                r->window += y >= bottom && y < top;
            }
        }
        digest = (digest ^ float_bits(e)) * 1099511628211ull;
        digest = (digest ^ float_bits(l)) * 1099511628211ull;
    }
    r->digest = digest;
    return NULL;
}

/* the kernel's own inputs: expf on [-104, 0] (x - max), logf on [1, 10] (a sum of ten exps) */
static uint64_t kernel_ranges_digest(void) {
    flush_denormals();
    uint64_t digest = 1469598103934665603ull;
    for (uint32_t u = float_bits(-0.0f); u <= float_bits(-104.0f); u += 31)
        digest = (digest ^ float_bits(kernel_expf(bits_float(u)))) * 1099511628211ull;
    for (uint32_t u = float_bits(1.0f); u <= float_bits(10.0f); u += 31)
        digest = (digest ^ float_bits(kernel_logf(bits_float(u)))) * 1099511628211ull;
    return digest;
}

static int flush_cases(void) {
    flush_denormals();
    volatile float denormal = 0x1p-127f, one = 1.0f, tiny = 0x1p-70f;
    volatile float a = 0x1p-63f * (1.0f + 0x1p-23f), b = 0x1p-63f * (1.0f - 0x1p-23f); /* both normal */
    printf("denormal_times_one %08x\nfar_below %08x\nwindow_product %08x\n", (unsigned)float_bits(denormal * one),
           (unsigned)float_bits(tiny * tiny), (unsigned)float_bits(a * b));
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "flush") == 0) return flush_cases();
    const int all = argc > 1 && strcmp(argv[1], "all") == 0;
    if (!all && !(argc > 1 && strcmp(argv[1], "digest") == 0)) {
        fprintf(stderr, "usage: mathf_check all|digest|flush\n");
        return 2;
    }
    enum { THREADS = 2 };
    Range r[THREADS];
    pthread_t th[THREADS];
    const uint64_t step = all ? 1 : 257, half = (1ull << 32) / THREADS;
    for (int t = 0; t < THREADS; t++) {
        r[t] = (Range){t * half, (t + 1) * half, step, 0, 0, 0, 0};
        r[t].lo += (step - r[t].lo % step) % step; /* the same inputs however the range is split */
        pthread_create(&th[t], NULL, check_range, &r[t]);
    }
    uint64_t exp_diff = 0, log_diff = 0, window = 0, digest = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        exp_diff += r[t].exp_diff, log_diff += r[t].log_diff, window += r[t].window;
        digest = digest * 31 + r[t].digest;
    }
    if (all)
        printf("expf_differs %llu\nlogf_differs %llu\nexpf_flush_window %llu\n", (unsigned long long)exp_diff,
               (unsigned long long)log_diff, (unsigned long long)window);
    else
        printf("digest %016llx %016llx\n", (unsigned long long)digest, (unsigned long long)kernel_ranges_digest());
    return 0;
}
