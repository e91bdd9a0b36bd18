/* The native engine's C interface (what engine.py calls, built and loaded by build.py): it checks the Spec and hands a pass's training to
 * the members-in-lanes kernel (kernel.c) or, where asked and possible, to each member alone (solo.c), and
 * evaluation to kernel.c; draws.c makes a member's random draws for a pass. The build compiles this file,
 * which includes the other three. */
#include "kernel.c"
#include "solo.c"
#include "draws.c"

/* the C interface's version (codes.NATIVE_ABI), passed by the build */
#ifndef NATIVE_ABI
#error "build with -DNATIVE_ABI=<repro.engines.codes.NATIVE_ABI>"
#endif

static int spec_ok(const Spec *s) {
    if (s->arch == ARCH_NET1989 && s->nparam != N_NP * 1) return 0;
    if (s->arch == ARCH_FC40 && s->nparam != F_NP) return 0;
    if (s->arch != ARCH_NET1989 && s->arch != ARCH_FC40) return 0;
    /* each code up to its enum's last value (tests/test_codes.py checks these are the last) */
    if (s->act < 0 || s->act > ACT_RELU || s->out < 0 || s->out > OUT_SOFTMAX_CE) return 0;
    if (s->opt < 0 || s->opt > OPT_SDLM_ESTIMATE) return 0;
    if (s->arch == ARCH_NET1989)
        for (int r = 0; r < 96; r++)
            if (s->scheme[r] < 0 || s->scheme[r] > 11) return 0;
    if (s->alone != 0 && s->alone != 1) return 0;
    return 1;
}

int native_abi_version(void) { return NATIVE_ABI; }
int native_lanes(void) { return LANES; }
/* whether native_train trains each member alone (solo.c): asked for, and the options allow it */
int native_trains_alone(const Spec *s) { return spec_ok(s) && solo_chosen(s); }
int native_sizeof_spec(void) { return (int)sizeof(Spec); }

/* the count (from 1) of the first step that takes AdamW's settled rule (kernel.c's step_rule: the bias
 * correction rounds to 1.0f) and every later step does too, as the correction only grows; 0 where no step
 * before 2^62 does (not AdamW). For timing: a run's steps before it cost more. */
int64_t native_settled_step(const Spec *s) {
    Upd u;
    int64_t lo = 0, hi = (int64_t)1 << 62; /* lo: 0 or an unsettled count; hi: a settled count */
    if (s->opt != OPT_ADAMW) return 0;
    make_upd(s, hi, &u);
    if (step_rule(&u, s->opt) != RULE_ADAMW_SETTLED) return 0;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        make_upd(s, mid, &u);
        if (step_rule(&u, s->opt) == RULE_ADAMW_SETTLED) hi = mid; else lo = mid;
    }
    return hi;
}

/* one pass of n steps for every member (rows: (members, n) image rows; keep: (members, n, 24) dropout bits or
 * NULL): in groups, members in the lanes (kernel.c), or each member alone (solo.c) where Spec.alone asks for it */
int native_train(const Spec *s, float *params, float *st1, float *st2, int32_t members, const float *images,
                 const int64_t *rows, const uint8_t *keep, const int64_t *labels, int32_t n, int32_t nthreads) {
    if (!spec_ok(s)) return -2;
    if ((s->opt == OPT_ADAMW && (!st1 || !st2)) || (s->opt >= OPT_SDLM && !st1)) return -3;
    TrainCtx c = {s, params, st1, st2, members, n, images, rows, keep, labels};
    int64_t groups = (members + LANES - 1) / LANES;
    const int alone = solo_chosen(s);
    /* each worker, the calling thread included, sets the kernel's floating-point mode and restores its own */
    return alone ? pool_run(solo_task, &c, members, nthreads) : pool_run(train_task, &c, groups, nthreads);
}

int native_eval(const Spec *s, const float *params, float *wide, int32_t members, const float *images,
                const int64_t *labels, int32_t n, float *outs, float *losses, int32_t nthreads) {
    if (!spec_ok(s)) return -2;
    return eval_population(s, params, wide, members, images, labels, n, outs, losses, nthreads);
}
