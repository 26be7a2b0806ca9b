/* sample_est.c -- error bars of sampled estimates (sample_est.h). */
#include "report/sample_est.h"

#include <math.h>
#include <stdlib.h>

#include "model/model.h"

cp_samp_totals cp_samp_totals_run(const cp_model *m) {
    cp_samp_totals t = {0, 0};
    for (uint32_t i = 0; i < m->nnodes; i++) {
        t.n += m->nodes[i].samples_self;
        t.weight_ns += m->nodes[i].sampled_self_ns;
    }
    return t;
}

int cp_samp_totals_threads(const cp_model *m, cp_samp_totals *out) {
    for (uint32_t t = 0; t < m->nthreads; t++)
        out[t] = (cp_samp_totals){0, 0};
    if (!m->nnodes)
        return 0;
    uint32_t *stack = malloc((size_t)m->nnodes * sizeof *stack);
    if (!stack)
        return -1;
    for (uint32_t t = 0; t < m->nthreads; t++) {
        uint32_t r = m->threads[t].root, sp = 0;
        if (r >= m->nnodes)
            continue;
        stack[sp++] = r;
        /* sp <= nnodes holds for a tree; the bound guards a cyclic model */
        for (uint64_t steps = 0; sp && steps < m->nnodes; steps++) {
            uint32_t x = stack[--sp];
            out[t].n += m->nodes[x].samples_self;
            out[t].weight_ns += m->nodes[x].sampled_self_ns;
            for (uint32_t c = m->nodes[x].first_child; c < m->nnodes && sp < m->nnodes;
                 c = m->nodes[c].next_sibling)
                stack[sp++] = c;
        }
    }
    free(stack);
    return 0;
}

double cp_samp_error_ns(uint64_t n, const cp_samp_totals *t) {
    if (!t->n || !n)
        return 0.0;
    double p = (double)n / (double)t->n;
    if (p > 1.0)
        p = 1.0;
    return (double)t->weight_ns * sqrt(p * (1.0 - p) / (double)t->n);
}
