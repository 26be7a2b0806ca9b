/* fuzz_model_reader.c -- libFuzzer harness for the worker model reader
 * (src/model/model_io.c).  Any byte string is a model file candidate: the
 * reader must return, never read out of bounds (ASan), never overflow
 * (UBSan), and a model it accepts must hold the documented invariants: its
 * trees are walked from every thread's root without looping, every site
 * index resolves, it merges into another model, and it encodes and decodes
 * again to the same shape.  A violation aborts, which libFuzzer reports
 * with the input.
 *
 * Built by CMake with -DCODEPROF_BUILD_FUZZ=ON and clang; run by
 * `make test-fuzz` for a bounded time over tests/fuzz/corpus/model. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_io.h"

/* Nodes reached from `root` by first_child/next_sibling, or aborts after
 * more steps than nodes (a loop). */
static uint32_t walk(const cp_model *m, uint32_t root) {
    uint32_t steps = 0, cur = root;
    while (cur != CP_NONE) {
        if (cur >= m->nnodes || ++steps > m->nnodes)
            abort();
        if (cur != root && !cp_model_site(m, m->nodes[cur].site))
            abort();
        if (m->nodes[cur].first_child != CP_NONE) {
            cur = m->nodes[cur].first_child;
            continue;
        }
        while (cur != root && m->nodes[cur].next_sibling == CP_NONE)
            cur = m->nodes[cur].parent;
        cur = cur == root ? CP_NONE : m->nodes[cur].next_sibling;
    }
    return steps;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cp_model *m = NULL;
    int32_t worker = 0;
    cp_mio_status st = cp_model_decode(data, size, &m, &worker);
    if (st != CP_MIO_OK) {
        if (m)
            abort();
        return 0;
    }
    if (!m || worker < -1 || m->builder)
        abort();
    uint64_t reached = 0;
    for (uint32_t t = 0; t < m->nthreads; t++)
        reached += walk(m, m->threads[t].root);
    if (reached != m->nnodes)
        abort();
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (!cp_model_site(m, m->funcs[i].site))
            abort();

    /* merges into an empty finished model */
    cp_model *dst = calloc(1, sizeof *dst);
    if (!dst)
        abort();
    if (cp_model_merge(dst, m, worker) != 0 || dst->nnodes != m->nnodes ||
        dst->nthreads != m->nthreads)
        abort();
    cp_model_free(dst);

    /* encodes and decodes again to the same shape */
    void *buf = NULL;
    size_t len = 0;
    uint64_t cut = 0;
    if (cp_model_encode(m, worker, 0, &buf, &len, &cut) != CP_MIO_OK || cut != 0)
        abort();
    cp_model *again = NULL;
    int32_t w2 = 0;
    if (cp_model_decode(buf, len, &again, &w2) != CP_MIO_OK || w2 != worker ||
        again->nnodes != m->nnodes || again->nthreads != m->nthreads ||
        again->nfuncs != m->nfuncs || again->sites.n != m->sites.n)
        abort();
    free(buf);
    cp_model_free(again);
    cp_model_free(m);
    return 0;
}
