/* Time of each layer's forward and backward in one training step of the native kernel's members-in-lanes
 * group (repro/engines/native/kernel.c), for finding where a build spends its time. Builds the kernel's own
 * sources with the loader's flags and a chosen target and lane width:
 *
 *   N=repro/engines/native
 *   gcc -O3 -ffp-contract=off -fno-math-errno -fno-trapping-math -pthread -std=gnu11 -Wno-psabi -I$N \
 *       -march=x86-64-v3 -DLANES=8 scripts/native_layers.c -o /tmp/native_layers -lm
 *   /tmp/native_layers [optimizer: 0 sgd, 1 adamw, 2 sdlm] [steps]
 *
 * The net1989 ladder's baseline (tanh, squared error, the block H2 scheme) on random weights and one random
 * image; AdamW's steps are its settled ones (most of a run's). Timings only: nothing here is checked. */
#include "native.c"
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static float next_uniform(unsigned *seed) { /* in [-0.5, 0.5) */
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) / 16777216.0f - 0.5f;
}

static void block_scheme(int32_t *scheme) { /* H2 maps 0-3 read H1 0-7, 4-7 read 4-11, 8-11 read 0-3 and 8-11 */
    for (int j = 0; j < 12; j++)
        for (int k = 0; k < 8; k++) scheme[j * 8 + k] = j < 4 ? k : j < 8 ? k + 4 : (k < 4 ? k : k + 4);
}

enum { LAYERS = 8 };
static const char *NAMES[LAYERS] = {"fwd H1", "fwd H2", "fwd H3+out", "output delta", "bwd out", "bwd H3",
                                    "bwd H2", "bwd H1"};

static void time_steps(const Spec *s, vf *P, vf *S1, vf *S2, Work *w, int steps, double *t) {
    Upd u;
    make_upd(s, s->step + 1, &u);
    const int rule = step_rule(&u, s->opt), curv = wants_curvature(s->opt);
    for (int it = 0; it < steps; it++) {
        const Wts W = {(const float *)P, 0};
        double a = now(), b;
        fwd_h1(W, w->x, w->h1p, s->act);
        b = now(), t[0] += b - a;
        fwd_h2(W, s->scheme, w->h1p, w->h2, s->act);
        a = now(), t[1] += a - b;
        memcpy(w->h2in, w->h2, sizeof w->h2);
        fwd_h3(W, w->h2in, w->h3, s->act);
        fwd_out(W, N_W4, N_B4, 30, w->h3, w->pre);
        b = now(), t[2] += b - a;
        output_delta(s->out, curv, (float)s->target, w->pre, it % 10, w->d4, w->c4);
        a = now(), t[3] += a - b;
        bwd_out(&u, rule, s->act, P, S1, S2, N_W4, N_B4, 30, w->h3, w->d4, w->c4, w->d3, w->c3);
        b = now(), t[4] += b - a;
        bwd_h3(&u, rule, s->act, P, S1, S2, w, 0);
        a = now(), t[5] += a - b;
        bwd_h2(&u, rule, s->act, s->scheme, P, S1, S2, w);
        b = now(), t[6] += b - a;
        bwd_h1(&u, rule, P, S1, S2, w);
        a = now(), t[7] += a - b;
    }
}

int main(int argc, char **argv) {
    const int opt = argc > 1 ? atoi(argv[1]) : OPT_SGD, steps = argc > 2 ? atoi(argv[2]) : 2000;
    fp_mode_enter();
    Spec s = {.arch = ARCH_NET1989, .act = ACT_TANH, .out = OUT_TANH_MSE, .opt = opt, .nparam = N_NP,
              .lr = opt == OPT_ADAMW ? 3e-4 : opt == OPT_SDLM ? 1e-3 : 0.03, .weight_decay = 0.01, .beta1 = 0.9,
              .beta2 = 0.999, .eps = 1e-8, .sdlm_gamma = 0.01, .sdlm_mu = 0.02, .target = 1.0, .step = 100000};
    block_scheme(s.scheme);
    vf *P = aligned_alloc(64, N_NP * sizeof(vf)), *S1 = aligned_alloc(64, N_NP * sizeof(vf));
    vf *S2 = aligned_alloc(64, N_NP * sizeof(vf));
    Work *w = work_new();
    if (!P || !S1 || !S2 || !w) return 1;
    unsigned seed = 1;
    for (int k = 0; k < N_NP; k++)
        for (int l = 0; l < LANES; l++) P[k][l] = 0.3f * next_uniform(&seed), S1[k][l] = 1e-3f, S2[k][l] = 1e-6f;
    for (int i = 0; i < 400; i++)
        for (int l = 0; l < LANES; l++) w->x[i][l] = 2.0f * next_uniform(&seed);
    double t[LAYERS] = {0}, total = 0;
    time_steps(&s, P, S1, S2, w, steps / 10 + 1, t); /* warm-up */
    memset(t, 0, sizeof t);
    time_steps(&s, P, S1, S2, w, steps, t);
    for (int i = 0; i < LAYERS; i++) total += t[i];
    printf("%d lanes, optimizer %d: %.1f us a step of a group (%.0f member-steps/s on one thread)\n", LANES, opt,
           1e6 * total / steps, LANES * steps / total);
    for (int i = 0; i < LAYERS; i++)
        printf("  %-13s %7.2f us  %5.1f%%\n", NAMES[i], 1e6 * t[i] / steps, 100 * t[i] / total);
    return 0;
}
