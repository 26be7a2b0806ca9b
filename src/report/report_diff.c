/* report_diff.c -- two models compared (report_diff.h).  The comparison is
 * built once as rows of (A, B) pairs, then written as text or JSON. */
#include "report/report_diff.h"
#include "report/report_diff_gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/jsonw.h"
#include "report/report.h"
#include "report/report_mem.h"

/* One compared figure (report_diff.h). */
typedef cp_diff_pair pair;

static pair mk(int has_a, double a, int has_b, double b) {
    pair p = {has_a ? a : 0, has_b ? b : 0, has_a, has_b};
    return p;
}

static int ratio_of(pair p, double *r) {
    if (!p.has_a || !p.has_b || p.a == 0)
        return 0;
    *r = p.b / p.a;
    return 1;
}

/* A row: the entry's sites on each side (NULL when absent) and up to four figures. */
enum { MAXF = 4 };
typedef struct row {
    const cp_msite *sa, *sb;
    const char *label; /* loaders/datasets/findings: the name */
    const cp_finding *fa, *fb;
    pair f[MAXF];
    const cp_model *ma; /* snapshots: the model `stack` indexes */
    uint32_t stack;     /* snapshots: the group's stack          */
    int32_t worker;     /* processes: worker id (-1 main)        */
    uint8_t est_a, est_b; /* functions: the side's times are sampled estimates */
    double order; /* sort key, descending */
    size_t seq;   /* order added: ties keep it */
} row;

typedef struct rows {
    row *v;
    size_t n, cap;
    int oom;
} rows;

static row *add_row(rows *rs) {
    if (rs->n == rs->cap) {
        size_t ncap = rs->cap ? rs->cap * 2 : 32;
        row *nv = realloc(rs->v, ncap * sizeof *nv);
        if (!nv) {
            rs->oom = 1;
            return NULL;
        }
        rs->v = nv;
        rs->cap = ncap;
    }
    row *r = &rs->v[rs->n];
    memset(r, 0, sizeof *r);
    r->seq = rs->n++;
    return r;
}

static int cmp_row(const void *x, const void *y) {
    const row *a = x, *b = y;
    if (a->order != b->order)
        return a->order < b->order ? 1 : -1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static const cp_msite unknown_site = {"?", "", 0, CODEPROF_SITE_SCOPE};

static const cp_msite *site_of(const cp_model *m, uint32_t id) {
    const cp_msite *s = cp_model_site(m, id);
    return s ? s : &unknown_site;
}

static double sec(uint64_t ns) {
    return (double)ns / 1e9;
}
static double mean_s(uint64_t sum_ns, uint64_t n) {
    return n ? (double)sum_ns / 1e9 / (double)n : 0;
}

/* ---- functions: matched by (name, file, line) through sorted indices ------ */

typedef struct fref {
    const cp_model *m;
    const cp_mfunc *f;
    const cp_msite *s;
} fref;

static int cmp_key(const cp_msite *x, const cp_msite *y) {
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    c = strcmp(x->file, y->file);
    if (c)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

static int cmp_fref(const void *x, const void *y) {
    return cmp_key(((const fref *)x)->s, ((const fref *)y)->s);
}

static fref *sorted_funcs(const cp_model *m, size_t *n) {
    fref *v = malloc(((size_t)m->nfuncs + 1) * sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (m->funcs[i].calls || m->funcs[i].samples) /* traced or sampled */
            v[k++] = (fref){m, &m->funcs[i], site_of(m, m->funcs[i].site)};
    qsort(v, k, sizeof *v, cmp_fref);
    *n = k;
    return v;
}

static void func_row(rows *rs, const fref *a, const fref *b) {
    row *r = add_row(rs);
    if (!r)
        return;
    r->sa = a ? a->s : NULL;
    r->sb = b ? b->s : NULL;
    const cp_mfunc *fa = a ? a->f : NULL, *fb = b ? b->f : NULL;
    r->f[0] = mk(fa != NULL, fa ? sec(fa->incl_ns) : 0, fb != NULL, fb ? sec(fb->incl_ns) : 0);
    r->f[1] = mk(fa != NULL, fa ? sec(fa->self_ns) : 0, fb != NULL, fb ? sec(fb->self_ns) : 0);
    r->f[2] = mk(fa != NULL, fa ? (double)fa->calls : 0, fb != NULL, fb ? (double)fb->calls : 0);
    /* a sampled-only function compares by its estimated times (incl/self
     * hold them) and is marked */
    r->est_a = fa && !fa->calls && fa->samples;
    r->est_b = fb && !fb->calls && fb->samples;
    r->order = fabs(r->f[0].b - r->f[0].a);
}

static int diff_functions(const cp_model *a, const cp_model *b, rows *rs) {
    size_t na = 0, nb = 0;
    fref *va = sorted_funcs(a, &na), *vb = sorted_funcs(b, &nb);
    if (!va || !vb) {
        free(va);
        free(vb);
        return -1;
    }
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        int c = i == na ? 1 : j == nb ? -1 : cmp_key(va[i].s, vb[j].s);
        /* a key repeated on one side (same name/file/line, another kind) pairs in order */
        if (c == 0)
            func_row(rs, &va[i++], &vb[j++]);
        else if (c < 0)
            func_row(rs, &va[i++], NULL);
        else
            func_row(rs, NULL, &vb[j++]);
    }
    free(va);
    free(vb);
    if (rs->oom)
        return -1;
    if (rs->n > 1)
        qsort(rs->v, rs->n, sizeof *rs->v, cmp_row);
    return 0;
}

/* ---- stages, loaders, datasets: small lists, matched linearly ------------ */

static int same_stage(const cp_msite *x, const cp_msite *y) {
    return x->kind == y->kind && cmp_key(x, y) == 0;
}

static int diff_stages(const cp_model *a, const cp_model *b, rows *rs) {
    const cp_mdata *da = &a->data, *db = &b->data;
    uint8_t *used = calloc((size_t)db->nstages + 1, 1);
    if (!used)
        return -1;
    for (uint32_t i = 0; i < da->nstages + db->nstages; i++) {
        const cp_mstage *sa = NULL, *sb = NULL;
        if (i < da->nstages) {
            sa = &da->stages[i];
            for (uint32_t j = 0; j < db->nstages && !sb; j++)
                if (!used[j] && same_stage(site_of(a, sa->site), site_of(b, db->stages[j].site))) {
                    sb = &db->stages[j];
                    used[j] = 1;
                }
        } else {
            uint32_t j = i - da->nstages;
            if (used[j])
                continue;
            sb = &db->stages[j];
        }
        row *r = add_row(rs);
        if (!r)
            break;
        r->sa = sa ? site_of(a, sa->site) : NULL;
        r->sb = sb ? site_of(b, sb->site) : NULL;
        r->f[0] = mk(sa != NULL, sa ? sec(sa->sum_ns) : 0, sb != NULL, sb ? sec(sb->sum_ns) : 0);
        r->f[1] =
            mk(sa != NULL, sa ? (double)sa->calls : 0, sb != NULL, sb ? (double)sb->calls : 0);
        r->f[2] = mk(sa != NULL, sa ? mean_s(sa->sum_ns, sa->calls) : 0, sb != NULL,
                     sb ? mean_s(sb->sum_ns, sb->calls) : 0);
        r->order = fabs(r->f[0].b - r->f[0].a);
    }
    free(used);
    if (rs->oom)
        return -1;
    if (rs->n > 1)
        qsort(rs->v, rs->n, sizeof *rs->v, cmp_row);
    return 0;
}

static void loader_figs(row *r, const cp_mloader *La, const cp_mloader *Lb) {
    r->f[0] = mk(La != NULL, La ? mean_s(La->wait_ns, La->batches) : 0, Lb != NULL,
                 Lb ? mean_s(Lb->wait_ns, Lb->batches) : 0);
    r->f[1] = mk(La != NULL, La ? La->stall_fraction : 0, Lb != NULL, Lb ? Lb->stall_fraction : 0);
    r->f[2] = mk(La != NULL, La ? La->samples_per_s : 0, Lb != NULL, Lb ? Lb->samples_per_s : 0);
    r->f[3] =
        mk(La != NULL, La ? (double)La->batches : 0, Lb != NULL, Lb ? (double)Lb->batches : 0);
}

static void dataset_figs(row *r, const cp_mdataset *x, const cp_mdataset *y) {
    r->f[0] = mk(x != NULL, x ? mean_s(x->sum_ns, x->items) : 0, y != NULL,
                 y ? mean_s(y->sum_ns, y->items) : 0);
    r->f[1] = mk(x != NULL, x ? sec(x->p95_ns) : 0, y != NULL, y ? sec(y->p95_ns) : 0);
    r->f[2] = mk(x != NULL, x ? (double)x->items : 0, y != NULL, y ? (double)y->items : 0);
    r->f[3] = mk(x != NULL, x ? (double)x->failures : 0, y != NULL, y ? (double)y->failures : 0);
}

/* Loaders (kind LOADER) or datasets, matched by name. */
static int diff_named(const cp_model *a, const cp_model *b, int loaders, rows *rs) {
    uint32_t na = loaders ? a->data.nloaders : a->data.ndatasets;
    uint32_t nb = loaders ? b->data.nloaders : b->data.ndatasets;
    uint8_t *used = calloc((size_t)nb + 1, 1);
    if (!used)
        return -1;
#define SITE_A(i) (loaders ? a->data.loaders[i].site : a->data.datasets[i].site)
#define SITE_B(i) (loaders ? b->data.loaders[i].site : b->data.datasets[i].site)
    for (uint32_t i = 0; i < na + nb; i++) {
        int32_t ia = -1, ib = -1;
        if (i < na) {
            ia = (int32_t)i;
            for (uint32_t j = 0; j < nb && ib < 0; j++)
                if (!used[j] &&
                    strcmp(site_of(a, SITE_A(i))->name, site_of(b, SITE_B(j))->name) == 0) {
                    ib = (int32_t)j;
                    used[j] = 1;
                }
        } else if (!used[i - na]) {
            ib = (int32_t)(i - na);
        } else {
            continue;
        }
        row *r = add_row(rs);
        if (!r)
            break;
        r->label = ia >= 0 ? site_of(a, SITE_A(ia))->name : site_of(b, SITE_B(ib))->name;
        if (loaders)
            loader_figs(r, ia >= 0 ? &a->data.loaders[ia] : NULL,
                        ib >= 0 ? &b->data.loaders[ib] : NULL);
        else
            dataset_figs(r, ia >= 0 ? &a->data.datasets[ia] : NULL,
                         ib >= 0 ? &b->data.datasets[ib] : NULL);
    }
#undef SITE_A
#undef SITE_B
    free(used);
    return rs->oom ? -1 : 0;
}

/* ---- findings: matched by (rule, subject) --------------------------------- */

static int same_finding(const cp_finding *x, const cp_finding *y) {
    return strncmp(x->rule, y->rule, sizeof x->rule) == 0 &&
           strncmp(x->subject, y->subject, sizeof x->subject) == 0;
}

static int diff_findings(const cp_model *a, const cp_model *b, rows *rs) {
    uint8_t *used = calloc((size_t)b->nfindings + 1, 1);
    if (!used)
        return -1;
    for (uint32_t i = 0; i < a->nfindings + b->nfindings; i++) {
        const cp_finding *fa = NULL, *fb = NULL;
        if (i < a->nfindings) {
            fa = &a->findings[i];
            for (uint32_t j = 0; j < b->nfindings && !fb; j++)
                if (!used[j] && same_finding(fa, &b->findings[j])) {
                    fb = &b->findings[j];
                    used[j] = 1;
                }
        } else if (!used[i - a->nfindings]) {
            fb = &b->findings[i - a->nfindings];
        } else {
            continue;
        }
        row *r = add_row(rs);
        if (!r)
            break;
        r->fa = fa;
        r->fb = fb;
        r->f[0] = mk(fa != NULL, fa ? fa->value : 0, fb != NULL, fb ? fb->value : 0);
        r->f[1] = mk(fa != NULL, fa ? fa->saving_s : 0, fb != NULL, fb ? fb->saving_s : 0);
    }
    free(used);
    return rs->oom ? -1 : 0;
}

/* ---- memory: contexts by name, domains, workers, snapshot stacks ---------- */

static double mib(double b) { return b / (1024.0 * 1024.0); }

/* In mode rss (no allocation tracking) a context's figures are the RSS
 * ones, as in the report (report_mem.h). */
static double ctx_delta(const cp_model *m, const cp_mmem_ctx *c) {
    return (double)cp_report_mem_ctx_delta(&m->mem, c);
}
static double ctx_peak(const cp_model *m, const cp_mmem_ctx *c) {
    return (double)cp_report_mem_ctx_peak(&m->mem, c);
}

static void ctx_figs(row *r, const cp_model *a, const cp_mmem_ctx *x, const cp_model *b,
                     const cp_mmem_ctx *y) {
    r->f[0] = mk(x != NULL, x ? ctx_delta(a, x) : 0, y != NULL, y ? ctx_delta(b, y) : 0);
    r->f[1] = mk(x != NULL, x ? ctx_peak(a, x) : 0, y != NULL, y ? ctx_peak(b, y) : 0);
    r->f[2] = mk(x != NULL, x ? (double)x->count : 0, y != NULL, y ? (double)y->count : 0);
    r->order = fabs(r->f[1].b - r->f[1].a);
}

/* Contexts with calls, matched by name; largest change of peak first. */
static int diff_mem_contexts(const cp_model *a, const cp_model *b, rows *rs) {
    const cp_mmem *ma = &a->mem, *mb = &b->mem;
    uint8_t *used = calloc((size_t)mb->nctxs + 1, 1);
    if (!used)
        return -1;
    for (uint32_t i = 0; i < ma->nctxs + mb->nctxs; i++) {
        const cp_mmem_ctx *x = NULL, *y = NULL;
        if (i < ma->nctxs) {
            x = &ma->ctxs[i];
            if (!x->count)
                continue;
            const char *name = site_of(a, x->site)->name;
            for (uint32_t j = 0; j < mb->nctxs && !y; j++)
                if (!used[j] && mb->ctxs[j].count &&
                    strcmp(name, site_of(b, mb->ctxs[j].site)->name) == 0) {
                    y = &mb->ctxs[j];
                    used[j] = 1;
                }
        } else {
            uint32_t j = i - ma->nctxs;
            if (used[j] || !mb->ctxs[j].count)
                continue;
            y = &mb->ctxs[j];
        }
        row *r = add_row(rs);
        if (!r)
            break;
        r->label = x ? site_of(a, x->site)->name : site_of(b, y->site)->name;
        ctx_figs(r, a, x, b, y);
    }
    free(used);
    if (rs->oom)
        return -1;
    if (rs->n > 1)
        qsort(rs->v, rs->n, sizeof *rs->v, cmp_row);
    return 0;
}

/* Domains that allocated on either side: peak bytes. */
static int diff_mem_domains(const cp_model *a, const cp_model *b, rows *rs) {
    for (unsigned d = 0; d < CP_MEM_NDOMAINS; d++) {
        const cp_mmem_domain *x = &a->mem.domains[d], *y = &b->mem.domains[d];
        int ha = x->alloc_count || x->peak_bytes, hb = y->alloc_count || y->peak_bytes;
        if (!ha && !hb)
            continue;
        row *r = add_row(rs);
        if (!r)
            return -1;
        r->label = cp_report_mem_domain_name(d);
        r->f[0] = mk(ha, (double)x->peak_bytes, hb, (double)y->peak_bytes);
        r->f[1] = mk(ha, (double)x->live_bytes, hb, (double)y->live_bytes);
    }
    return 0;
}

static double uss_growth(const cp_mproc *p) {
    return (double)p->uss_last - (double)p->uss_first;
}

/* Sampled processes matched by worker id (-1: the main process; pids
 * differ between runs), in order: USS growth first -> last, USS max. */
static int diff_mem_procs(const cp_model *a, const cp_model *b, rows *rs) {
    const cp_mmem *ma = &a->mem, *mb = &b->mem;
    uint32_t na = ma->nprocs < CP_MEM_MAX_PROCS ? ma->nprocs : CP_MEM_MAX_PROCS;
    uint32_t nb = mb->nprocs < CP_MEM_MAX_PROCS ? mb->nprocs : CP_MEM_MAX_PROCS;
    uint8_t used[CP_MEM_MAX_PROCS] = {0};
    for (uint32_t i = 0; i < na + nb; i++) {
        const cp_mproc *x = NULL, *y = NULL;
        if (i < na) {
            x = &ma->procs[i];
            for (uint32_t j = 0; j < nb && !y; j++)
                if (!used[j] && mb->procs[j].worker == x->worker) {
                    y = &mb->procs[j];
                    used[j] = 1;
                }
        } else if (!used[i - na]) {
            y = &mb->procs[i - na];
        } else {
            continue;
        }
        row *r = add_row(rs);
        if (!r)
            return -1;
        r->worker = x ? x->worker : y->worker;
        r->f[0] = mk(x != NULL, x ? uss_growth(x) : 0, y != NULL, y ? uss_growth(y) : 0);
        r->f[1] = mk(x != NULL, x ? (double)x->uss_max : 0, y != NULL, y ? (double)y->uss_max : 0);
        r->f[2] = mk(x != NULL, x ? (double)x->pss_max : 0, y != NULL, y ? (double)y->pss_max : 0);
    }
    return 0;
}

/* Two stacks of two models are the same when their frames have the same
 * function, file and line. */
static int same_stack(const cp_model *a, uint32_t sa, const cp_model *b, uint32_t sb) {
    if (sa >= a->mem.nstacks || sb >= b->mem.nstacks)
        return sa >= a->mem.nstacks && sb >= b->mem.nstacks;
    const cp_mmem_stack *x = &a->mem.stacks[sa], *y = &b->mem.stacks[sb];
    if (x->nframes != y->nframes)
        return 0;
    for (uint32_t f = 0; f < x->nframes && f < CP_MEM_STACK_DEPTH; f++) {
        const cp_msite *p = site_of(a, x->site[f]), *q = site_of(b, y->site[f]);
        if (x->line[f] != y->line[f] || strcmp(p->name, q->name) || strcmp(p->file, q->file))
            return 0;
    }
    return 1;
}

/* The last snapshot of the context named `name` in `m`, or NULL. */
static const cp_msnap *last_snap(const cp_model *m, const char *name) {
    const cp_msnap *best = NULL;
    for (uint32_t i = 0; i < m->mem.nsnaps; i++) {
        const cp_msnap *s = &m->mem.snaps[i];
        if (strcmp(site_of(m, s->ctx_site)->name, name) == 0 && (!best || s->t_ns >= best->t_ns))
            best = s;
    }
    return best;
}

/* A snapshot's groups within the model's array. */
static uint32_t snap_span(const cp_mmem *mm, const cp_msnap *s) {
    if (!s || s->first >= mm->nsnap_groups)
        return 0;
    uint32_t n = s->n < CP_MEM_SNAP_SITES ? s->n : CP_MEM_SNAP_SITES;
    return n < mm->nsnap_groups - s->first ? n : mm->nsnap_groups - s->first;
}

/* When both models hold snapshots: for each context snapshotted in both,
 * live bytes by stack in its last snapshot on each side; largest change
 * first. */
static int diff_mem_snaps(const cp_model *a, const cp_model *b, rows *rs) {
    const cp_mmem *ma = &a->mem, *mb = &b->mem;
    if (!ma->nsnaps || !mb->nsnaps)
        return 0;
    for (uint32_t i = 0; i < ma->nsnaps; i++) {
        const char *name = site_of(a, ma->snaps[i].ctx_site)->name;
        const cp_msnap *x = last_snap(a, name);
        if (x != &ma->snaps[i]) /* each context once, at its last snapshot */
            continue;
        const cp_msnap *y = last_snap(b, name);
        if (!y)
            continue;
        uint32_t nx = snap_span(ma, x), ny = snap_span(mb, y);
        uint8_t used[CP_MEM_SNAP_SITES] = {0};
        for (uint32_t k = 0; k < nx + ny; k++) {
            const cp_mmem_group *gx = NULL, *gy = NULL;
            if (k < nx) {
                gx = &ma->snap_groups[x->first + k];
                for (uint32_t j = 0; j < ny && !gy; j++)
                    if (!used[j] &&
                        same_stack(a, gx->stack, b, mb->snap_groups[y->first + j].stack)) {
                        gy = &mb->snap_groups[y->first + j];
                        used[j] = 1;
                    }
            } else if (!used[k - nx]) {
                gy = &mb->snap_groups[y->first + (k - nx)];
            } else {
                continue;
            }
            row *r = add_row(rs);
            if (!r)
                return -1;
            r->label = name;
            r->ma = gx ? a : b;
            r->stack = gx ? gx->stack : gy->stack;
            r->f[0] = mk(gx != NULL, gx ? (double)gx->live_bytes : 0, gy != NULL,
                         gy ? (double)gy->live_bytes : 0);
            r->f[1] = mk(gx != NULL, gx ? (double)gx->live_blocks : 0, gy != NULL,
                         gy ? (double)gy->live_blocks : 0);
            r->order = fabs(r->f[0].b - r->f[0].a);
        }
    }
    if (rs->n > 1)
        qsort(rs->v, rs->n, sizeof *rs->v, cmp_row);
    return 0;
}

static uint64_t gc_total(const cp_mgc *g, int time) {
    return time ? g->time_ns[0] + g->time_ns[1] + g->time_ns[2]
                : g->collections[0] + g->collections[1] + g->collections[2];
}

/* ---- the whole comparison ------------------------------------------------- */

typedef struct diff {
    rows funcs, stages, loaders, datasets, findings;
    rows mctx, mdom, mproc, msnap;
    pair duration, calls, nfindings;
    int mem; /* either side profiled memory */
    pair peak, rss_peak, gc_n, gc_s;
} diff;

static void diff_free(diff *d) {
    free(d->mctx.v);
    free(d->mdom.v);
    free(d->mproc.v);
    free(d->msnap.v);
    free(d->funcs.v);
    free(d->stages.v);
    free(d->loaders.v);
    free(d->datasets.v);
    free(d->findings.v);
}

static uint64_t total_calls(const cp_model *m) {
    uint64_t c = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++)
        c += m->funcs[i].calls;
    return c;
}

static int diff_build(diff *d, const cp_model *a, const cp_model *b) {
    memset(d, 0, sizeof *d);
    d->duration = mk(1, sec(a->duration_ns), 1, sec(b->duration_ns));
    d->calls = mk(1, (double)total_calls(a), 1, (double)total_calls(b));
    d->nfindings = mk(1, a->nfindings, 1, b->nfindings);
    int ea = cp_report_mem_enabled(&a->mem), eb = cp_report_mem_enabled(&b->mem);
    d->mem = ea || eb;
    d->peak = mk(ea, (double)a->mem.peak_bytes, eb, (double)b->mem.peak_bytes);
    d->rss_peak = mk(ea, (double)a->mem.rss_peak, eb, (double)b->mem.rss_peak);
    d->gc_n = mk(a->mem.gc.enabled, (double)gc_total(&a->mem.gc, 0), b->mem.gc.enabled,
                 (double)gc_total(&b->mem.gc, 0));
    d->gc_s = mk(a->mem.gc.enabled, sec(gc_total(&a->mem.gc, 1)), b->mem.gc.enabled,
                 sec(gc_total(&b->mem.gc, 1)));
    if (diff_functions(a, b, &d->funcs) || diff_stages(a, b, &d->stages) ||
        diff_named(a, b, 1, &d->loaders) || diff_named(a, b, 0, &d->datasets) ||
        diff_findings(a, b, &d->findings) || diff_mem_contexts(a, b, &d->mctx) ||
        diff_mem_domains(a, b, &d->mdom) || diff_mem_procs(a, b, &d->mproc) ||
        diff_mem_snaps(a, b, &d->msnap)) {
        diff_free(d);
        return -1;
    }
    return 0;
}

/* ---- text ------------------------------------------------------------------ */

/* "%10.4f %10.4f %8s" for a pair: '-' for a missing side or ratio. */
static void put_pair(cp_strbuf *sb, pair p, const char *fmt) {
    char buf[32];
    if (p.has_a)
        cp_strbuf_printf(sb, fmt, p.a);
    else
        cp_strbuf_printf(sb, "%10s", "-");
    cp_strbuf_putc(sb, ' ');
    if (p.has_b)
        cp_strbuf_printf(sb, fmt, p.b);
    else
        cp_strbuf_printf(sb, "%10s", "-");
    double r;
    if (ratio_of(p, &r))
        snprintf(buf, sizeof buf, "%.2fx", r);
    else
        snprintf(buf, sizeof buf, "%s", !p.has_a ? "new" : !p.has_b ? "gone" : "-");
    cp_strbuf_printf(sb, " %8s", buf);
}

static void put_site_text(cp_strbuf *sb, const cp_msite *s, int with_kind) {
    cp_strbuf_put_clean(sb, s->name);
    if (with_kind)
        cp_strbuf_printf(sb, " (%s)", cp_report_kind_name(s->kind));
    if (s->file[0]) {
        cp_strbuf_puts(sb, "  ");
        cp_strbuf_put_clean(sb, s->file);
        if (s->line)
            cp_strbuf_printf(sb, ":%u", s->line);
    }
}

/* One table row: three figures (each A, B, B/A) and the site. */
static void put_row_text(cp_strbuf *out, const row *r, const char *f0, const char *f1,
                         const char *f2, int with_kind) {
    put_pair(out, r->f[0], f0);
    cp_strbuf_putc(out, ' ');
    put_pair(out, r->f[1], f1);
    cp_strbuf_putc(out, ' ');
    put_pair(out, r->f[2], f2);
    cp_strbuf_puts(out, r->est_a || r->est_b ? " ~" : "  ");
    if (r->est_a || r->est_b)
        cp_strbuf_printf(out, "%s ", r->est_a && r->est_b ? "" : r->est_a ? "A" : "B");
    put_site_text(out, r->sa ? r->sa : r->sb, with_kind);
    cp_strbuf_putc(out, '\n');
}

static void text_finding_list(cp_strbuf *out, const diff *d, const char *title, int which) {
    size_t n = 0;
    for (size_t i = 0; i < d->findings.n; i++) {
        const row *r = &d->findings.v[i];
        int match = which == 0   ? (!r->fa && r->fb)
                    : which == 1 ? (r->fa && !r->fb)
                                 : (r->fa && r->fb);
        if (!match)
            continue;
        if (!n++)
            cp_strbuf_printf(out, "\n%s\n", title);
        const cp_finding *f = r->fb ? r->fb : r->fa;
        cp_strbuf_puts(out, "  ");
        cp_strbuf_put_clean(out, f->rule);
        cp_strbuf_puts(out, "  ");
        cp_strbuf_put_clean(out, f->subject);
        cp_strbuf_puts(out, ": value ");
        if (which == 2) {
            double ratio;
            cp_strbuf_printf(out, "%.6g -> %.6g %s", r->fa->value, r->fb->value, f->unit);
            if (ratio_of(r->f[0], &ratio))
                cp_strbuf_printf(out, " (%.2fx)", ratio);
        } else {
            cp_strbuf_printf(out, "%.6g %s", f->value, f->unit);
            if (which == 0 && f->recommendation[0]) {
                cp_strbuf_puts(out, "\n      ");
                cp_strbuf_put_clean(out, f->recommendation);
            }
        }
        cp_strbuf_putc(out, '\n');
    }
}

/* Bytes as MiB, for a pair. */
static pair in_mib(pair p) {
    p.a = mib(p.a);
    p.b = mib(p.b);
    return p;
}


static void text_memory(cp_strbuf *out, const diff *d) {
    if (!d->mem)
        return;
    cp_strbuf_printf(out, "\nMemory\n%-28s %10s %10s %8s\n", "", "A", "B", "B/A");
    cp_strbuf_printf(out, "%-28s ", "tracked peak MiB");
    put_pair(out, in_mib(d->peak), "%10.1f");
    cp_strbuf_printf(out, "\n%-28s ", "RSS peak MiB");
    put_pair(out, in_mib(d->rss_peak), "%10.1f");
    cp_strbuf_printf(out, "\n%-28s ", "GC collections");
    put_pair(out, d->gc_n, "%10.0f");
    cp_strbuf_printf(out, "\n%-28s ", "GC time s");
    put_pair(out, d->gc_s, "%10.3f");
    cp_strbuf_putc(out, '\n');
    size_t nc = d->mctx.n < CP_DIFF_MAX_FUNCTIONS ? d->mctx.n : CP_DIFF_MAX_FUNCTIONS;
    if (nc) {
        cp_strbuf_printf(out,
                         "\nMemory contexts, largest change of peak first (%zu of %zu)\n"
                         "%10s %10s %8s %10s %10s %8s %10s %10s %8s  %s\n",
                         nc, d->mctx.n, "delta A", "delta B", "B/A", "peak A", "peak B", "B/A",
                         "calls A", "calls B", "B/A", "context (MiB)");
        for (size_t i = 0; i < nc; i++) {
            const row *r = &d->mctx.v[i];
            put_pair(out, in_mib(r->f[0]), "%+10.1f");
            cp_strbuf_putc(out, ' ');
            put_pair(out, in_mib(r->f[1]), "%10.1f");
            cp_strbuf_putc(out, ' ');
            put_pair(out, r->f[2], "%10.0f");
            cp_strbuf_puts(out, "  ");
            cp_strbuf_put_clean(out, r->label);
            cp_strbuf_putc(out, '\n');
        }
    }
    if (d->mdom.n) {
        cp_strbuf_printf(out, "\nAllocator domains\n%10s %10s %8s %10s %10s %8s  %s\n",
                         "peak A MiB", "peak B MiB", "B/A", "live A MiB", "live B MiB", "B/A",
                         "domain");
        for (size_t i = 0; i < d->mdom.n; i++) {
            put_pair(out, in_mib(d->mdom.v[i].f[0]), "%10.1f");
            cp_strbuf_putc(out, ' ');
            put_pair(out, in_mib(d->mdom.v[i].f[1]), "%10.1f");
            cp_strbuf_printf(out, "  %s\n", d->mdom.v[i].label);
        }
    }
    if (d->mproc.n) {
        cp_strbuf_printf(out,
                         "\nProcess memory (USS growth first -> last sample)\n"
                         "%10s %10s %8s %10s %10s %8s  %s\n",
                         "growth A", "growth B", "B/A", "USS max A", "USS max B", "B/A",
                         "process (MiB)");
        for (size_t i = 0; i < d->mproc.n; i++) {
            const row *r = &d->mproc.v[i];
            put_pair(out, in_mib(r->f[0]), "%+10.1f");
            cp_strbuf_putc(out, ' ');
            put_pair(out, in_mib(r->f[1]), "%10.1f");
            if (r->worker < 0)
                cp_strbuf_puts(out, "  main\n");
            else
                cp_strbuf_printf(out, "  worker %d\n", (int)r->worker);
        }
    }
    size_t ns = d->msnap.n < CP_DIFF_MAX_FUNCTIONS ? d->msnap.n : CP_DIFF_MAX_FUNCTIONS;
    if (ns) {
        cp_strbuf_printf(out,
                         "\nLast snapshot of each context, live bytes by allocation stack, "
                         "largest change first (%zu of %zu)\n%10s %10s %8s  %s\n",
                         ns, d->msnap.n, "A MiB", "B MiB", "B/A", "context  stack");
        for (size_t i = 0; i < ns; i++) {
            const row *r = &d->msnap.v[i];
            put_pair(out, in_mib(r->f[0]), "%10.2f");
            cp_strbuf_puts(out, "  ");
            cp_strbuf_put_clean(out, r->label);
            cp_strbuf_puts(out, "  ");
            cp_report_mem_put_stack(out, r->ma, r->stack);
            cp_strbuf_putc(out, '\n');
        }
    }
}

int cp_report_diff_text(const cp_model *a, const cp_model *b, const char *name_a,
                        const char *name_b, cp_strbuf *out) {
    diff d;
    if (diff_build(&d, a, b) != 0) {
        out->oom = 1;
        return -1;
    }
    cp_strbuf_puts(out, "codeprof diff\n  A: ");
    cp_strbuf_put_clean(out, name_a ? name_a : "A");
    cp_strbuf_puts(out, "\n  B: ");
    cp_strbuf_put_clean(out, name_b ? name_b : "B");
    cp_strbuf_printf(out, "\n\n%-28s %10s %10s %8s\n", "run", "A", "B", "B/A");
    cp_strbuf_printf(out, "%-28s ", "duration s");
    put_pair(out, d.duration, "%10.3f");
    cp_strbuf_printf(out, "\n%-28s ", "calls (listed functions)");
    put_pair(out, d.calls, "%10.0f");
    cp_strbuf_printf(out, "\n%-28s ", "findings");
    put_pair(out, d.nfindings, "%10.0f");
    cp_strbuf_putc(out, '\n');

    size_t nf = d.funcs.n < CP_DIFF_MAX_FUNCTIONS ? d.funcs.n : CP_DIFF_MAX_FUNCTIONS;
    cp_strbuf_printf(out, "\nFunctions, largest change of inclusive time first (%zu of %zu)\n", nf,
                     d.funcs.n);
    if (nf) {
        cp_strbuf_printf(out, "%10s %10s %8s %10s %10s %8s %10s %10s %8s  %s\n", "incl A s",
                         "incl B s", "B/A", "self A s", "self B s", "B/A", "calls A", "calls B",
                         "B/A", "function  file:line");
        int est = 0;
        for (size_t i = 0; i < nf; i++) {
            put_row_text(out, &d.funcs.v[i], "%10.4f", "%10.4f", "%10.0f", 0);
            est |= d.funcs.v[i].est_a || d.funcs.v[i].est_b;
        }
        if (est)
            cp_strbuf_puts(out, "~: times estimated from samples (no traced call), in both "
                                "reports or only in A or B\n");
    }
    if (d.stages.n) {
        cp_strbuf_printf(out, "\nStages\n%10s %10s %8s %10s %10s %8s %10s %10s %8s  %s\n",
                         "total A s", "total B s", "B/A", "calls A", "calls B", "B/A", "mean A s",
                         "mean B s", "B/A", "stage (kind)");
        for (size_t i = 0; i < d.stages.n; i++)
            put_row_text(out, &d.stages.v[i], "%10.4f", "%10.0f", "%10.6f", 1);
    }
    static const char *const lnames[] = {"mean wait s", "data stall fraction", "samples/s",
                                         "batches"};
    static const char *const lfmt[] = {"%10.6f", "%10.3f", "%10.1f", "%10.0f"};
    static const char *const dnames[] = {"mean load s", "p95 load s", "items", "failures"};
    static const char *const dfmt[] = {"%10.6f", "%10.6f", "%10.0f", "%10.0f"};
    for (int pass = 0; pass < 2; pass++) {
        const rows *rs = pass == 0 ? &d.loaders : &d.datasets;
        for (size_t i = 0; i < rs->n; i++) {
            cp_strbuf_puts(out, pass == 0 ? "\nLoader " : "\nDataset ");
            cp_strbuf_put_clean(out, rs->v[i].label);
            cp_strbuf_printf(out, "\n%-28s %10s %10s %8s\n", "", "A", "B", "B/A");
            for (int k = 0; k < 4; k++) {
                cp_strbuf_printf(out, "%-28s ", pass == 0 ? lnames[k] : dnames[k]);
                put_pair(out, rs->v[i].f[k], pass == 0 ? lfmt[k] : dfmt[k]);
                cp_strbuf_putc(out, '\n');
            }
        }
    }
    text_memory(out, &d);
    cp_report_diff_gpu_text(a, b, out);
    text_finding_list(out, &d, "Findings that appeared in B", 0);
    text_finding_list(out, &d, "Findings that disappeared in B", 1);
    text_finding_list(out, &d, "Findings in both", 2);
    diff_free(&d);
    return cp_strbuf_ok(out) ? 0 : -1;
}

/* ---- JSON ------------------------------------------------------------------- */

void cp_diff_json_pair(cp_jsonw *w, const char *key, cp_diff_pair p) {
    cp_jsonw_key(w, key);
    cp_jsonw_begin_object(w);
    cp_jsonw_key(w, "a");
    if (p.has_a)
        cp_jsonw_double(w, p.a);
    else
        cp_jsonw_null(w);
    cp_jsonw_key(w, "b");
    if (p.has_b)
        cp_jsonw_double(w, p.b);
    else
        cp_jsonw_null(w);
    double r;
    cp_jsonw_key(w, "ratio");
    if (ratio_of(p, &r))
        cp_jsonw_double(w, r);
    else
        cp_jsonw_null(w);
    cp_jsonw_end_object(w);
}

static void json_site(cp_jsonw *w, const cp_msite *s) {
    cp_jsonw_kv_s(w, "function", s->name);
    cp_jsonw_kv_s(w, "file", s->file);
    cp_jsonw_kv_u(w, "line", s->line);
    cp_jsonw_kv_s(w, "kind", cp_report_kind_name(s->kind));
}

/* One functions/stages entry: the site and three figures (each A, B, B/A). */
static void json_row(cp_jsonw *w, const row *r, const char *const keys[3]) {
    cp_jsonw_begin_object(w);
    json_site(w, r->sa ? r->sa : r->sb);
    for (int k = 0; k < 3; k++)
        cp_diff_json_pair(w, keys[k], r->f[k]);
    if (r->est_a || r->est_b) { /* functions: sampled estimates on a side */
        cp_jsonw_kv_bool(w, "estimated_a", r->est_a);
        cp_jsonw_kv_bool(w, "estimated_b", r->est_b);
    }
    cp_jsonw_end_object(w);
}

static void json_findings(cp_jsonw *w, const diff *d, const char *key, int which) {
    cp_jsonw_key(w, key);
    cp_jsonw_begin_array(w);
    for (size_t i = 0; i < d->findings.n; i++) {
        const row *r = &d->findings.v[i];
        int match = which == 0   ? (!r->fa && r->fb)
                    : which == 1 ? (r->fa && !r->fb)
                                 : (r->fa && r->fb);
        if (!match)
            continue;
        const cp_finding *f = r->fb ? r->fb : r->fa;
        cp_jsonw_begin_object(w);
        cp_jsonw_key(w, "rule");
        cp_jsonw_string_n(w, f->rule, strnlen(f->rule, sizeof f->rule));
        cp_jsonw_key(w, "category");
        cp_jsonw_string_n(w, f->category, strnlen(f->category, sizeof f->category));
        cp_jsonw_key(w, "subject");
        cp_jsonw_string_n(w, f->subject, strnlen(f->subject, sizeof f->subject));
        cp_jsonw_key(w, "unit");
        cp_jsonw_string_n(w, f->unit, strnlen(f->unit, sizeof f->unit));
        cp_diff_json_pair(w, "value", r->f[0]);
        cp_diff_json_pair(w, "saving_s", r->f[1]);
        cp_jsonw_key(w, "recommendation");
        cp_jsonw_string_n(w, f->recommendation,
                          strnlen(f->recommendation, sizeof f->recommendation));
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
}

static void json_stack(cp_jsonw *w, const cp_model *m, uint32_t s) {
    cp_jsonw_key(w, "frames");
    cp_jsonw_begin_array(w);
    if (m && s < m->mem.nstacks) {
        const cp_mmem_stack *st = &m->mem.stacks[s];
        for (uint32_t f = 0; f < st->nframes && f < CP_MEM_STACK_DEPTH; f++) {
            const cp_msite *si = site_of(m, st->site[f]);
            cp_jsonw_begin_object(w);
            cp_jsonw_kv_s(w, "function", si->name);
            cp_jsonw_key(w, "file");
            if (si->file[0])
                cp_jsonw_string(w, si->file);
            else
                cp_jsonw_null(w);
            cp_jsonw_kv_u(w, "line", st->line[f]);
            cp_jsonw_end_object(w);
        }
    }
    cp_jsonw_end_array(w);
}

static void json_memory(cp_jsonw *w, const diff *d) {
    cp_jsonw_key(w, "memory");
    cp_jsonw_begin_object(w);
    cp_jsonw_key(w, "enabled");
    cp_jsonw_bool(w, d->mem);
    cp_diff_json_pair(w, "peak_bytes", d->peak);
    cp_diff_json_pair(w, "rss_peak_bytes", d->rss_peak);
    cp_diff_json_pair(w, "gc_collections", d->gc_n);
    cp_diff_json_pair(w, "gc_time_s", d->gc_s);
    size_t nc = d->mctx.n < CP_DIFF_MAX_FUNCTIONS ? d->mctx.n : CP_DIFF_MAX_FUNCTIONS;
    cp_jsonw_key(w, "contexts");
    cp_jsonw_begin_array(w);
    for (size_t i = 0; i < nc; i++) {
        const row *r = &d->mctx.v[i];
        cp_jsonw_begin_object(w);
        cp_jsonw_kv_s(w, "context", r->label);
        cp_diff_json_pair(w, "memory_delta", r->f[0]);
        cp_diff_json_pair(w, "peak", r->f[1]);
        cp_diff_json_pair(w, "calls", r->f[2]);
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
    cp_jsonw_kv_u(w, "contexts_omitted", d->mctx.n - nc);
    cp_jsonw_key(w, "domains");
    cp_jsonw_begin_array(w);
    for (size_t i = 0; i < d->mdom.n; i++) {
        cp_jsonw_begin_object(w);
        cp_jsonw_kv_s(w, "domain", d->mdom.v[i].label);
        cp_diff_json_pair(w, "peak_bytes", d->mdom.v[i].f[0]);
        cp_diff_json_pair(w, "live_bytes", d->mdom.v[i].f[1]);
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
    cp_jsonw_key(w, "processes");
    cp_jsonw_begin_array(w);
    for (size_t i = 0; i < d->mproc.n; i++) {
        const row *r = &d->mproc.v[i];
        cp_jsonw_begin_object(w);
        cp_jsonw_key(w, "worker");
        cp_jsonw_int(w, r->worker);
        cp_diff_json_pair(w, "uss_growth", r->f[0]);
        cp_diff_json_pair(w, "uss_max", r->f[1]);
        cp_diff_json_pair(w, "pss_max", r->f[2]);
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
    size_t ns = d->msnap.n < CP_DIFF_MAX_FUNCTIONS ? d->msnap.n : CP_DIFF_MAX_FUNCTIONS;
    cp_jsonw_key(w, "snapshots");
    cp_jsonw_begin_array(w);
    for (size_t i = 0; i < ns; i++) {
        const row *r = &d->msnap.v[i];
        cp_jsonw_begin_object(w);
        cp_jsonw_kv_s(w, "context", r->label);
        json_stack(w, r->ma, r->stack);
        cp_diff_json_pair(w, "live_bytes", r->f[0]);
        cp_diff_json_pair(w, "live_blocks", r->f[1]);
        cp_jsonw_end_object(w);
    }
    cp_jsonw_end_array(w);
    cp_jsonw_kv_u(w, "snapshots_omitted", d->msnap.n - ns);
    cp_jsonw_end_object(w);
}

int cp_report_diff_json(const cp_model *a, const cp_model *b, const char *name_a,
                        const char *name_b, cp_strbuf *out) {
    diff d;
    if (diff_build(&d, a, b) != 0) {
        out->oom = 1;
        return -1;
    }
    cp_jsonw w;
    cp_jsonw_init(&w, out);
    cp_jsonw_begin_object(&w);
    cp_jsonw_kv_s(&w, "schema", "codeprof-diff");
    cp_jsonw_kv_u(&w, "schema_version", 1);
    cp_jsonw_kv_s(&w, "a", name_a ? name_a : "A");
    cp_jsonw_kv_s(&w, "b", name_b ? name_b : "B");
    cp_jsonw_key(&w, "run");
    cp_jsonw_begin_object(&w);
    cp_diff_json_pair(&w, "duration_s", d.duration);
    cp_diff_json_pair(&w, "calls", d.calls);
    cp_diff_json_pair(&w, "findings", d.nfindings);
    cp_jsonw_end_object(&w);

    size_t nf = d.funcs.n < CP_DIFF_MAX_FUNCTIONS ? d.funcs.n : CP_DIFF_MAX_FUNCTIONS;
    cp_jsonw_key(&w, "functions");
    cp_jsonw_begin_array(&w);
    static const char *const fkeys[3] = {"inclusive_s", "self_s", "calls"};
    for (size_t i = 0; i < nf; i++)
        json_row(&w, &d.funcs.v[i], fkeys);
    cp_jsonw_end_array(&w);
    cp_jsonw_kv_u(&w, "functions_omitted", d.funcs.n - nf);

    cp_jsonw_key(&w, "stages");
    cp_jsonw_begin_array(&w);
    static const char *const skeys[3] = {"total_time", "calls", "avg_time"};
    for (size_t i = 0; i < d.stages.n; i++)
        json_row(&w, &d.stages.v[i], skeys);
    cp_jsonw_end_array(&w);

    static const char *const lkeys[] = {"avg_wait_time", "data_stall_fraction", "samples_per_s",
                                        "batches"};
    static const char *const dkeys[] = {"avg_load_time", "p95", "count", "failures"};
    for (int pass = 0; pass < 2; pass++) {
        const rows *rs = pass == 0 ? &d.loaders : &d.datasets;
        cp_jsonw_key(&w, pass == 0 ? "loaders" : "datasets");
        cp_jsonw_begin_array(&w);
        for (size_t i = 0; i < rs->n; i++) {
            cp_jsonw_begin_object(&w);
            cp_jsonw_kv_s(&w, "name", rs->v[i].label);
            for (int k = 0; k < 4; k++)
                cp_diff_json_pair(&w, pass == 0 ? lkeys[k] : dkeys[k], rs->v[i].f[k]);
            cp_jsonw_end_object(&w);
        }
        cp_jsonw_end_array(&w);
    }
    json_memory(&w, &d);
    cp_report_diff_gpu_json(a, b, &w);
    cp_jsonw_key(&w, "findings");
    cp_jsonw_begin_object(&w);
    json_findings(&w, &d, "appeared", 0);
    json_findings(&w, &d, "disappeared", 1);
    json_findings(&w, &d, "persisting", 2);
    cp_jsonw_end_object(&w);
    cp_jsonw_end_object(&w);
    diff_free(&d);
    return cp_jsonw_finish(&w);
}
