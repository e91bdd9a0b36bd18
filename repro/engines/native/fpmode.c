/* The floating-point mode the kernel runs in: denormals flushed to zero, as torch.set_flush_denormal(True).
 *   x86-64:  MXCSR's FTZ (results) and DAZ (inputs).
 *   AArch64: FPCR.FZ (both). It flushes a result that is below 2^-126 *before* rounding, where x86 flushes one
 *            that is below 2^-126 after rounding: they differ only for an exact result in
 *            [2^-126 (1 - 2^-25), 2^-126), which x86 rounds up to 2^-126 and AArch64 flushes. A sum or
 *            difference of two floats never lies there (it is a multiple of 2^-149, and the interval is
 *            narrower than that below 2^-126); a product, fused multiply-add or quotient can. See README's
 *            "What is the same bits where".
 * fp_mode_enter() saves the caller's mode and sets the kernel's; fp_mode_leave() restores it. */
#ifndef LECUN1989_FPMODE_H
#define LECUN1989_FPMODE_H
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
typedef unsigned int fp_mode;
static inline fp_mode fp_mode_enter(void) {
    fp_mode old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ | DAZ */
    return old;
}
static inline void fp_mode_leave(fp_mode old) { _mm_setcsr(old); }
#elif defined(__aarch64__)
typedef uint64_t fp_mode;
static inline fp_mode fp_mode_enter(void) {
    fp_mode old;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(old));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(old | (1ull << 24))); /* FZ */
    return old;
}
static inline void fp_mode_leave(fp_mode old) { __asm__ __volatile__("msr fpcr, %0" : : "r"(old)); }
#else
#error "the native engine is built for x86-64 and AArch64"
#endif

static inline void flush_denormals(void) { (void)fp_mode_enter(); }
#endif
