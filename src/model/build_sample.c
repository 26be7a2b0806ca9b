/* build_sample.c -- sampled stacks into the model (cp_samplesink_fill_model,
 * samplesink.h), called through cp_samp_model_build by cp_model_finish
 * after the flat table and the thread list are finished, with agg_mu held.
 *
 *  - Trees: each sampled thread's tree is folded into the model tree of
 *    the thread with the same OS tid (a new thread entry, index after the
 *    traced ones, when there is none).  A sampled frame whose site path
 *    already exists (the tracer and the sampler intern a code object as
 *    the same site) adds its sample fields to that node; otherwise a node
 *    with count 0 is appended under its parent.  Every node with count 0
 *    and samples > 0 (below a root) gets incl_ns/self_ns = sampled_ns/
 *    sampled_self_ns (the estimates); a root's incl_ns grows by the
 *    estimates of the sampled-only children appended under it.  Roots
 *    carry the thread's sample totals.
 *  - Flat table: per model site, samples/samples_running/sampled_ns count
 *    a stack once however often the function recurses in it (only the
 *    outermost node of that site on a path counts); self fields sum.
 *    Sites seen only by samples get an entry with calls 0 and the
 *    estimates as incl/self; the table is sorted again by incl_ns.
 *  - m->samp: settings, totals, the stack table as model sites (model
 *    stack index == stack id; index 0 is "(other stacks)", no frames) and
 *    the timeline of kept samples in CLOCK_MONOTONIC ns, sorted by time.
 *  - m->lines: one row per sampled (function, line) with samples and
 *    sampled_ns (hits/time 0).
 */
#include <stdlib.h>
#include <string.h>

#include "core/session.h"
#include "data/datalog.h"
#include "model/build.h"
#include "model/model.h"
#include "sampling/samplesink.h"
#include "sampling/samplesink_priv.h"
#include "sampling/stacktab.h"

#define OTHER_STACKS_NAME "(other stacks)"

static int cmp_func_incl(const void *a, const void *b) {
    const cp_mfunc *x = a, *y = b;
    if (x->incl_ns != y->incl_ns)
        return x->incl_ns < y->incl_ns ? 1 : -1;
    return (x->site > y->site) - (x->site < y->site);
}

static int cmp_msample(const void *a, const void *b) {
    const cp_msample *x = a, *y = b;
    if (x->t_ns != y->t_ns)
        return (x->t_ns > y->t_ns) - (x->t_ns < y->t_ns);
    return (x->os_tid > y->os_tid) - (x->os_tid < y->os_tid);
}

typedef struct site_acc {
    uint64_t samples, samples_self, samples_running, sampled_ns, sampled_self_ns;
} site_acc;

/* The stack table as model sites. */
static int fill_stacks(cp_samplesink *k, cp_model *m) {
    cp_msampling *ms = &m->samp;
    uint32_t nst = cp_stacktab_count(k->tab);
    uint64_t nfr = 0;
    for (uint32_t id = 1; id <= nst; id++) {
        const cp_sframe *f;
        uint32_t n;
        if (cp_stacktab_get(k->tab, id, &f, &n) == 0)
            nfr += n;
    }
    if (nfr > UINT32_MAX)
        return -1;
    ms->stacks = calloc((size_t)nst + 1, sizeof *ms->stacks);
    ms->frames = calloc(nfr ? nfr : 1, sizeof *ms->frames);
    if (!ms->stacks || !ms->frames)
        return -1;
    ms->nstacks = nst + 1;
    uint32_t at = 0;
    for (uint32_t id = 1; id <= nst; id++) {
        const cp_sframe *f;
        uint32_t n;
        if (cp_stacktab_get(k->tab, id, &f, &n) != 0 || at + (uint64_t)n > nfr)
            n = 0;
        ms->stacks[id].first = at;
        ms->stacks[id].n = n;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t site = f[i].site ? cp_model_map_site(m, f[i].site) : 0;
            if (f[i].site && !site)
                return -1;
            ms->frames[at + i] = (cp_msframe){site, f[i].line};
        }
        at += n;
    }
    ms->nframes = at;
    return 0;
}

static int fill_timeline(cp_samplesink *k, cp_model *m) {
    cp_msampling *ms = &m->samp;
    uint32_t n = k->nfirst + k->nring;
    if (!n)
        return 0;
    ms->timeline = calloc(n, sizeof *ms->timeline);
    if (!ms->timeline)
        return -1;
    uint32_t half2 = k->cap_timeline - k->cap_timeline / 2;
    uint32_t start = k->nring == half2 ? k->ring_next : 0;
    for (uint32_t i = 0; i < n; i++) {
        const cp_ssample *x = i < k->nfirst ? &k->first[i]
                                            : &k->ring[(start + (i - k->nfirst)) % k->nring];
        cp_msample *y = &ms->timeline[i];
        y->t_ns = cp_tick_to_mono_ns(x->tick);
        y->os_tid = x->os_tid;
        y->pid = m->pid;
        y->worker = -1;
        y->stack = x->stack < ms->nstacks ? x->stack : 0;
        y->weight_ns = x->weight_ns;
        y->state = x->state;
    }
    ms->ntimeline = n;
    qsort(ms->timeline, n, sizeof *ms->timeline, cmp_msample);
    return 0;
}

/* The model thread of os_tid, or a new one with an empty root; returns the
 * root node index, CP_NONE on OOM. */
static uint32_t model_root(cp_model *m, uint64_t os_tid, uint32_t *next_index) {
    for (uint32_t i = 0; os_tid && i < m->nthreads; i++)
        if (m->threads[i].os_tid == os_tid)
            return m->threads[i].root;
    if (cp_model_reserve_threads(m, m->nthreads + 1) != 0 ||
        cp_model_reserve_nodes(m, (uint64_t)m->nnodes + 1) != 0)
        return CP_NONE;
    uint32_t r = m->nnodes++;
    cp_mnode *mn = &m->nodes[r];
    memset(mn, 0, sizeof *mn);
    mn->parent = mn->first_child = mn->next_sibling = CP_NONE;
    cp_mthread *t = &m->threads[m->nthreads++];
    memset(t, 0, sizeof *t);
    t->os_tid = os_tid;
    t->pid = m->pid;
    t->worker = -1;
    t->index = (*next_index)++;
    t->root = r;
    return r;
}

/* Sampled trees into the model trees.  msite: model site per sink node. */
static int fold_trees(cp_samplesink *k, cp_model *m, const uint32_t *msite, uint32_t *mnode,
                      uint8_t *created) {
    int rc = -1;
    cp_skmap kids;
    memset(&kids, 0, sizeof kids);
    for (uint32_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].parent != CP_NONE &&
            cp_skmap_put(&kids, (uint64_t)m->nodes[i].parent << 32 | m->nodes[i].site, i) != 0)
            goto out;
    uint32_t next_index = 0;
    for (uint32_t i = 0; i < m->nthreads; i++)
        if (m->threads[i].index != UINT32_MAX && m->threads[i].index >= next_index)
            next_index = m->threads[i].index + 1;
    if (cp_model_reserve_nodes(m, (uint64_t)m->nnodes + k->nnodes) != 0)
        goto out;
    /* Parents come before children in the sink's node array. */
    for (uint32_t i = 0; i < k->nnodes; i++) {
        const cp_snode *sn = &k->nodes[i];
        uint32_t x;
        if (sn->parent == CP_SNODE_NONE) {
            uint64_t tid = 0;
            for (uint32_t t = 0; t < k->nthreads; t++)
                if (k->threads[t].root == i)
                    tid = k->threads[t].os_tid;
            x = model_root(m, tid, &next_index);
            if (x == CP_NONE)
                goto out;
        } else {
            uint32_t p = mnode[sn->parent];
            if (!cp_skmap_get(&kids, (uint64_t)p << 32 | msite[i], &x)) {
                if (cp_model_reserve_nodes(m, (uint64_t)m->nnodes + 1) != 0)
                    goto out;
                x = m->nnodes++;
                cp_mnode *mn = &m->nodes[x];
                memset(mn, 0, sizeof *mn);
                mn->site = msite[i];
                mn->parent = p;
                mn->depth = m->nodes[p].depth + 1;
                mn->first_child = CP_NONE;
                mn->next_sibling = m->nodes[p].first_child;
                m->nodes[p].first_child = x;
                created[i] = 1;
                if (cp_skmap_put(&kids, (uint64_t)p << 32 | msite[i], x) != 0)
                    goto out;
            }
        }
        mnode[i] = x;
        cp_mnode *mn = &m->nodes[x];
        mn->samples += sn->samples;
        mn->samples_self += sn->samples_self;
        mn->samples_running += sn->samples_running;
        mn->sampled_ns += sn->sampled_ns;
        mn->sampled_self_ns += sn->sampled_self_ns;
    }
    /* Estimates, deepest first so a parent's addition sees its children. */
    for (uint32_t i = k->nnodes; i-- > 0;) {
        const cp_snode *sn = &k->nodes[i];
        if (sn->parent == CP_SNODE_NONE)
            continue;
        cp_mnode *mn = &m->nodes[mnode[i]];
        if (mn->count == 0 && mn->samples > 0) {
            mn->incl_ns = mn->sampled_ns;
            mn->self_ns = mn->sampled_self_ns;
        }
        if (created[i] && k->nodes[sn->parent].parent == CP_SNODE_NONE)
            m->nodes[mnode[sn->parent]].incl_ns += mn->incl_ns;
    }
    rc = 0;
out:
    cp_skmap_free(&kids);
    return rc;
}

/* Sample fields of the flat table. */
static int fold_funcs(cp_samplesink *k, cp_model *m, const uint32_t *msite) {
    uint32_t nsites = m->sites.n;
    site_acc *acc = calloc(nsites ? nsites : 1, sizeof *acc);
    if (!acc)
        return -1;
    for (uint32_t i = 0; i < k->nnodes; i++) {
        const cp_snode *sn = &k->nodes[i];
        uint32_t site = msite[i];
        if (sn->parent == CP_SNODE_NONE || !site || site >= nsites)
            continue;
        site_acc *a = &acc[site];
        a->samples_self += sn->samples_self;
        a->sampled_self_ns += sn->sampled_self_ns;
        int outer = 1; /* no ancestor of the same function */
        for (uint32_t p = sn->parent; p != CP_SNODE_NONE && outer; p = k->nodes[p].parent)
            if (k->nodes[p].parent != CP_SNODE_NONE && msite[p] == site)
                outer = 0;
        if (outer) {
            a->samples += sn->samples;
            a->samples_running += sn->samples_running;
            a->sampled_ns += sn->sampled_ns;
        }
    }
    uint32_t fresh = 0;
    uint8_t *seen = calloc(nsites ? nsites : 1, 1);
    if (!seen) {
        free(acc);
        return -1;
    }
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        cp_mfunc *f = &m->funcs[i];
        if (f->site >= nsites)
            continue;
        seen[f->site] = 1;
        const site_acc *a = &acc[f->site];
        f->samples += a->samples;
        f->samples_self += a->samples_self;
        f->samples_running += a->samples_running;
        f->sampled_ns += a->sampled_ns;
        f->sampled_self_ns += a->sampled_self_ns;
    }
    for (uint32_t s = 1; s < nsites; s++)
        fresh += !seen[s] && acc[s].samples > 0;
    if (fresh) {
        cp_mfunc *nf = realloc(m->funcs, ((size_t)m->nfuncs + fresh) * sizeof *nf);
        if (!nf) {
            free(seen);
            free(acc);
            return -1;
        }
        m->funcs = nf;
        for (uint32_t s = 1; s < nsites; s++) {
            if (seen[s] || acc[s].samples == 0)
                continue;
            cp_mfunc *f = &m->funcs[m->nfuncs++];
            memset(f, 0, sizeof *f);
            f->site = s;
            f->samples = acc[s].samples;
            f->samples_self = acc[s].samples_self;
            f->samples_running = acc[s].samples_running;
            f->sampled_ns = acc[s].sampled_ns;
            f->sampled_self_ns = acc[s].sampled_self_ns;
            f->incl_ns = f->sampled_ns;
            f->self_ns = f->sampled_self_ns;
        }
    }
    qsort(m->funcs, m->nfuncs, sizeof *m->funcs, cmp_func_incl);
    free(seen);
    free(acc);
    return 0;
}

int cp_samplesink_fill_model(cp_samplesink *k, struct cp_model *m, struct codeprof_session *s) {
    cp_msampling *ms = &m->samp;
    uint64_t samples = cp_samplesink_count(k);
    ms->enabled = (s && s->cfg.sample_interval_s > 0) || samples > 0;
    ms->mode = k->mode;
    ms->native = k->native;
    ms->interval_ns = k->interval_ns;
    ms->samples = samples;
    ms->samples_running = k->running;
    ms->samples_idle = k->idle;
    ms->samples_gil = k->gil;
    ms->ticks = atomic_load(&k->ticks);
    ms->missed_ticks = atomic_load(&k->missed_ticks);
    ms->read_errors = atomic_load(&k->read_errors);
    ms->dropped_samples = atomic_load(&k->dropped_samples);
    ms->sampler_cpu_ns = atomic_load(&k->sampler_cpu_ns);
    ms->dropped_stacks = cp_stacktab_dropped(k->tab);
    ms->timeline_dropped = k->timeline_dropped;
    ms->threads = k->nthreads;
    m->dropped_nodes += k->dropped_nodes;
    m->alloc_failures += (uint64_t)k->oom;
    if (fill_stacks(k, m) != 0 || fill_timeline(k, m) != 0)
        return -1;
    if (!k->nnodes)
        return 0;

    int rc = -1;
    uint32_t *msite = calloc(k->nnodes, sizeof *msite);
    uint32_t *mnode = calloc(k->nnodes, sizeof *mnode);
    uint8_t *created = calloc(k->nnodes, 1);
    if (!msite || !mnode || !created)
        goto out;
    uint32_t other = 0;
    for (uint32_t i = 0; i < k->nnodes; i++) {
        const cp_snode *sn = &k->nodes[i];
        if (sn->parent == CP_SNODE_NONE)
            continue;
        if (sn->site == 0) {
            if (!other &&
                !(other = cp_model_intern_site(m, OTHER_STACKS_NAME, "", 0, CODEPROF_SITE_PYTHON)))
                goto out;
            msite[i] = other;
        } else if (!(msite[i] = cp_model_map_site(m, sn->site))) {
            goto out;
        }
    }
    if (fold_trees(k, m, msite, mnode, created) != 0 || fold_funcs(k, m, msite) != 0)
        goto out;
    for (uint32_t i = 0; i < k->nlines; i++) {
        uint32_t site = cp_model_map_site(m, k->lines[i].site);
        if (!site || cp_mlines_add(&m->lines, site, k->lines[i].line, 0, 0, k->lines[i].samples,
                                   k->lines[i].sampled_ns) != 0)
            goto out;
    }
    m->lines.dropped += k->dropped_lines;
    rc = 0;
out:
    free(msite);
    free(mnode);
    free(created);
    return rc;
}
