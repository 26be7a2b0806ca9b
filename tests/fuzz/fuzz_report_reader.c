/* fuzz_report_reader.c -- libFuzzer harness for the saved-report reader
 * (src/report/jsonr.c, src/model/model_json.c).  Any byte string is a
 * report candidate: the reader must return, never read out of bounds
 * (ASan), never overflow (UBSan); a report it rejects leaves no model and
 * an error message; a model it accepts must hold the invariants every
 * writer relies on: each thread's tree is walked from its root without
 * looping and reaches every node exactly once, parents and depths agree,
 * every site index resolves, the memory section's indices resolve and
 * its arrays keep their caps, and the model renders as JSON, text and a
 * diff against itself; the JSON it renders reads back to the same shape
 * (memory: as many groups, processes and snapshots, no more stacks).
 * A violation aborts, which libFuzzer reports with the input.
 *
 * Built by CMake with -DCODEPROF_BUILD_FUZZ=ON and clang; run by
 * `make test-fuzz` for a bounded time over tests/fuzz/corpus/report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_json.h"
#include "report/report.h"
#include "report/report_diff.h"
#include "report/strbuf.h"

static uint32_t walk(const cp_model *m, uint32_t root) {
    uint32_t steps = 0, cur = root;
    if (root >= m->nnodes || m->nodes[root].parent != CP_NONE || m->nodes[root].depth != 0)
        abort();
    while (cur != CP_NONE) {
        if (cur >= m->nnodes || ++steps > m->nnodes)
            abort();
        const cp_mnode *n = &m->nodes[cur];
        if (cur != root) {
            if (!cp_model_site(m, n->site) || n->parent >= m->nnodes ||
                n->depth != m->nodes[n->parent].depth + 1)
                abort();
        }
        if (n->first_child != CP_NONE) {
            if (n->first_child >= m->nnodes || m->nodes[n->first_child].parent != cur)
                abort();
            cur = n->first_child;
            continue;
        }
        while (cur != root && m->nodes[cur].next_sibling == CP_NONE)
            cur = m->nodes[cur].parent;
        cur = cur == root ? CP_NONE : m->nodes[cur].next_sibling;
    }
    return steps;
}

static void render(const cp_model *m, int (*fn)(const cp_model *, cp_strbuf *), cp_strbuf *sb) {
    cp_strbuf_init(sb);
    if (fn(m, sb) != 0 || !cp_strbuf_ok(sb))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cp_model *m = NULL;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_status st = cp_model_from_json((const char *)data, size, "fuzz.json", &m, &err);
    if (st != CODEPROF_OK) {
        if (m || (st != CODEPROF_EFORMAT && st != CODEPROF_ENOMEM) || !err.message[0] ||
            !memchr(err.message, '\0', sizeof err.message))
            abort();
        return 0;
    }
    if (!m || m->builder)
        abort();
    uint64_t reached = 0;
    for (uint32_t t = 0; t < m->nthreads; t++)
        reached += walk(m, m->threads[t].root);
    if (reached != m->nnodes)
        abort();
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (!cp_model_site(m, m->funcs[i].site) ||
            (i && m->funcs[i].incl_ns > m->funcs[i - 1].incl_ns))
            abort();
    for (uint32_t i = 0; i < m->data.ndatasets; i++)
        if (!cp_model_site(m, m->data.datasets[i].site) ||
            m->data.datasets[i].nbottlenecks > CP_MAX_BOTTLENECKS)
            abort();

    /* the memory section: every index resolves, every array within its cap */
    const cp_mmem *mm = &m->mem;
    if (mm->nsites > CP_MEM_MAX_SITES || mm->nleaks > CP_MEM_MAX_LEAKS ||
        mm->nprocs > CP_MEM_MAX_PROCS || mm->nctxs > CP_MEM_MAX_CTXS + CP_MEM_MAX_SITES +
                                                         CP_MEM_MAX_LEAKS)
        abort();
    for (uint32_t i = 0; i < mm->nctxs; i++)
        if (!cp_model_site(m, mm->ctxs[i].site))
            abort();
    for (uint32_t i = 0; i < mm->nstacks; i++) {
        if (mm->stacks[i].nframes > CP_MEM_STACK_DEPTH)
            abort();
        for (uint32_t f = 0; f < mm->stacks[i].nframes; f++)
            if (!cp_model_site(m, mm->stacks[i].site[f]))
                abort();
    }
    for (uint32_t i = 0; i < mm->nsites + mm->nleaks; i++) {
        const cp_mmem_group *g = i < mm->nsites ? &mm->sites[i] : &mm->leaks[i - mm->nsites];
        if ((g->stack != CP_NONE && g->stack >= mm->nstacks) ||
            (g->ctx != CP_NONE && g->ctx >= mm->nctxs))
            abort();
    }
    for (uint32_t i = 0; i < mm->nsnaps; i++)
        if (mm->snaps[i].n > CP_MEM_SNAP_SITES ||
            (uint64_t)mm->snaps[i].first + mm->snaps[i].n > mm->nsnap_groups)
            abort();

    cp_strbuf json, text, diff;
    render(m, cp_report_json, &json);
    render(m, cp_report_text, &text);
    cp_strbuf_init(&diff);
    if (cp_report_diff_text(m, m, "a", "b", &diff) != 0 ||
        cp_report_diff_json(m, m, "a", "b", &diff) != 0)
        abort();

    /* what the writer wrote reads back, with as many threads and no more nodes (an
     * "other" node stands for at least one node it folded) */
    cp_model *again = NULL;
    if (cp_model_from_json(json.data, json.len, "again.json", &again, &err) != CODEPROF_OK ||
        again->nthreads != m->nthreads || again->nnodes > m->nnodes ||
        again->nfindings != m->nfindings || again->mem.nsites != m->mem.nsites ||
        again->mem.nleaks != m->mem.nleaks || again->mem.nprocs != m->mem.nprocs ||
        again->mem.nsnaps != m->mem.nsnaps || again->mem.nstacks > m->mem.nstacks ||
        again->mem.mode != m->mem.mode)
        abort();
    cp_model_free(again);
    cp_strbuf_free(&json);
    cp_strbuf_free(&text);
    cp_strbuf_free(&diff);
    cp_model_free(m);
    return 0;
}
