/* Replays the native engine's kernel calls, recorded from a Python run (tests/test_native_arm64.py), on this
 * build of the kernel, and writes what each call produced, so that two builds (x86-64 and AArch64 under
 * emulation) can be compared byte for byte.
 *
 *   replay JOB OUT
 *
 * JOB: "L89J", the number of calls, then each call: its kind (0: native_train, 1: native_eval, 2:
 * native_draw_pass), for 0 and 1 the Spec's size and bytes, and the call's inputs as the engine gave them
 * (parameters and optimizer state in the kernel's layout, the image rows the call reads, dropout bits, labels;
 * a torch generator's state). OUT, for each call in order: after native_train, the parameters and the optimizer
 * state; after native_eval, the outputs and the losses; after native_draw_pass, the generator's state, the rows
 * and the dropout bits. Every number little-endian, as both architectures store it.
 *
 * Built from the kernel's own sources (native.c includes the rest) with the flags the engine's build uses, but as a
 * program rather than a shared library. */
#include <stdio.h>

#include "native.c"

static FILE *job, *out;

static void fail(const char *what) {
    fprintf(stderr, "replay: %s\n", what);
    exit(1);
}

static void *read_n(size_t count, size_t size) {
    void *p = aligned_alloc(64, (count * size + 63) / 64 * 64 + 64);
    if (!p) fail("out of memory");
    if (count && fread(p, size, count, job) != count) fail("job file ends early");
    return p;
}

static int32_t read_i32(void) {
    int32_t v;
    if (fread(&v, 4, 1, job) != 1) fail("job file ends early");
    return v;
}

static void write_n(const void *p, size_t count, size_t size) {
    if (count && fwrite(p, size, count, out) != count) fail("cannot write the output");
}

static int replay_train(const Spec *s) {
    const int32_t members = read_i32(), n = read_i32(), lanes = read_i32(), nimg = read_i32();
    const int32_t has_st1 = read_i32(), has_st2 = read_i32(), has_keep = read_i32();
    if (lanes != LANES) fail("the job was recorded with another lane width than this build's");
    const size_t block = (size_t)((members + LANES - 1) / LANES) * s->nparam * LANES;
    float *params = read_n(block, 4), *st1 = has_st1 ? read_n(block, 4) : NULL, *st2 = has_st2 ? read_n(block, 4) : NULL;
    float *images = read_n((size_t)nimg * 400, 4);
    int64_t *rows = read_n((size_t)members * n, 8);
    uint8_t *keep = has_keep ? read_n((size_t)members * n * 24, 1) : NULL;
    int64_t *labels = read_n((size_t)n, 8);
    const int rc = native_train(s, params, st1, st2, members, images, rows, keep, labels, n, 2);
    write_n(params, block, 4);
    if (st1) write_n(st1, block, 4);
    if (st2) write_n(st2, block, 4);
    free(params), free(st1), free(st2), free(images), free(rows), free(keep), free(labels);
    return rc;
}

static int replay_eval(const Spec *s) {
    const int32_t members = read_i32(), n = read_i32(), lanes = read_i32();
    if (lanes != LANES) fail("the job was recorded with another lane width than this build's");
    const size_t block = (size_t)((members + LANES - 1) / LANES) * s->nparam * LANES;
    float *params = read_n(block, 4), *images = read_n((size_t)n * 400, 4);
    int64_t *labels = read_n((size_t)n, 8);
    float *wide = aligned_alloc(64, block * 4 + 64); /* eval_population's scratch */
    float *outs = aligned_alloc(64, (size_t)members * n * 10 * 4 + 64), *losses = aligned_alloc(64, (size_t)members * n * 4 + 64);
    if (!wide || !outs || !losses) fail("out of memory");
    const int rc = native_eval(s, params, wide, members, images, labels, n, outs, losses, 2);
    write_n(outs, (size_t)members * n * 10, 4);
    write_n(losses, (size_t)members * n, 4);
    free(params), free(wide), free(images), free(labels), free(outs), free(losses);
    return rc;
}

static int replay_draw(void) {
    const int32_t n = read_i32(), shift = read_i32(), has_keep = read_i32();
    float dropout;
    int64_t n_train;
    if (fread(&dropout, 4, 1, job) != 1 || fread(&n_train, 8, 1, job) != 1) fail("job file ends early");
    uint8_t *state = read_n(sizeof(TorchCpuGeneratorState), 1);
    int64_t *rows = aligned_alloc(64, (size_t)n * 8 + 64);
    uint8_t *keep = has_keep ? aligned_alloc(64, (size_t)n * 24 + 64) : NULL;
    if (!rows || (has_keep && !keep)) fail("out of memory");
    const int rc = native_draw_pass(state, n, shift, dropout, n_train, rows, keep);
    write_n(state, sizeof(TorchCpuGeneratorState), 1);
    write_n(rows, (size_t)n, 8);
    if (keep) write_n(keep, (size_t)n * 24, 1);
    free(state), free(rows), free(keep);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 3) fail("usage: replay JOB OUT");
    if (!(job = fopen(argv[1], "rb"))) fail("cannot open the job file");
    if (!(out = fopen(argv[2], "wb"))) fail("cannot open the output file");
    char magic[4];
    if (fread(magic, 1, 4, job) != 4 || memcmp(magic, "L89J", 4) != 0) fail("not a job file");
    const int32_t calls = read_i32();
    for (int32_t c = 0; c < calls; c++) {
        const int32_t kind = read_i32();
        int rc;
        if (kind == 2) {
            rc = replay_draw();
        } else {
            if (read_i32() != (int32_t)sizeof(Spec)) fail("the job's Spec is not this kernel's");
            Spec s;
            if (fread(&s, sizeof s, 1, job) != 1) fail("job file ends early");
            rc = kind == 0 ? replay_train(&s) : replay_eval(&s);
        }
        if (rc != 0) {
            fprintf(stderr, "replay: call %d failed (code %d)\n", c, rc);
            return 1;
        }
    }
    return fclose(out) == 0 ? 0 : 1;
}
