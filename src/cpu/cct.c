/* cct.c -- fold a thread's events into its calling-context tree (cct.h). */
#include "core/bigmem.h"
#include "cpu/cct.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/site.h"
#include "data/datalog.h"

static uint64_t key_hash(uint32_t parent, uint32_t site) {
    uint64_t k = ((uint64_t)parent << 32) | site;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static uint32_t func_index(cp_thread_tree *t, uint32_t site);

static void node_init(cp_tnode *n, uint32_t site, uint32_t parent, uint32_t depth) {
    memset(n, 0, sizeof *n);
    n->site = site;
    n->parent = parent;
    n->first_child = CP_TREE_NO_NODE;
    n->next_sibling = CP_TREE_NO_NODE;
    n->last_hit = CP_TREE_NO_NODE;
    n->depth = depth;
    n->func = CP_TREE_NO_NODE;
    n->min_t = UINT64_MAX;
}

cp_thread_tree *cp_tree_new(uint32_t max_nodes, uint32_t max_samples, int percentiles) {
    cp_thread_tree *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->max_nodes = max_nodes < 2 ? 2 : max_nodes;
    t->max_samples = max_samples ? max_samples : 1;
    t->percentiles = percentiles;
    t->rng = 0x2545f4914f6cdd1dull;
    t->cap_nodes = 64;
    t->nodes = cp_big_alloc(t->cap_nodes * sizeof *t->nodes);
    t->hash_cap = 128;
    t->hash = cp_big_calloc(t->hash_cap, sizeof *t->hash);
    t->cap_stack = 64;
    t->stack = malloc(t->cap_stack * sizeof *t->stack);
    if (!t->nodes || !t->hash || !t->stack) {
        cp_tree_free(t);
        return NULL;
    }
    node_init(&t->nodes[0], 0, CP_TREE_NO_NODE, 0);
    t->nnodes = 1;
    t->item_top = CP_TREE_NO_NODE;
    return t;
}

void cp_tree_set_datalog(cp_thread_tree *t, struct cp_datalog *const *logp) { t->logp = logp; }

void cp_tree_set_budget(cp_thread_tree *t, uint64_t *budget) { t->budget = budget; }

/* Frees every reservoir, giving its samples back to the budget. */
static void free_data(cp_thread_tree *t) {
    uint64_t held = 0;
    for (uint32_t i = 0; i < t->nnodes; i++) {
        held += t->nodes[i].res.cap;
        cp_reservoir_free(&t->nodes[i].res);
    }
    if (t->budget)
        *t->budget += held;
}

void cp_tree_free(cp_thread_tree *t) {
    if (!t)
        return;
    if (t->nodes)
        free_data(t);
    cp_big_free(t->nodes);
    cp_big_free(t->hash);
    free(t->stack);
    cp_big_free(t->funcs);
    cp_big_free(t->fhash);
    free(t);
}

void cp_tree_reset(cp_thread_tree *t) {
    free_data(t);
    memset(t->hash, 0, t->hash_cap * sizeof *t->hash);
    cp_big_free(t->funcs);
    cp_big_free(t->fhash);
    t->funcs = NULL;
    t->fhash = NULL;
    t->nfuncs = t->cap_funcs = t->fhash_cap = 0;
    node_init(&t->nodes[0], 0, CP_TREE_NO_NODE, 0);
    t->nnodes = 1;
    t->depth = 0;
    t->item_top = CP_TREE_NO_NODE;
    t->last_tick = 0;
    t->dropped_nodes = t->dropped_samples = t->unmatched_exits = t->truncated = t->oom = 0;
}

static int hash_grow(cp_thread_tree *t) {
    uint32_t ncap = t->hash_cap * 2;
    uint32_t *nh = cp_big_calloc(ncap, sizeof *nh);
    if (!nh)
        return -1;
    for (uint32_t i = 1; i < t->nnodes; i++) {
        uint32_t j = (uint32_t)key_hash(t->nodes[i].parent, t->nodes[i].site) & (ncap - 1);
        while (nh[j])
            j = (j + 1) & (ncap - 1);
        nh[j] = i + 1;
    }
    cp_big_free(t->hash);
    t->hash = nh;
    t->hash_cap = ncap;
    return 0;
}

/* Finds or creates the child of `parent` for `site`; CP_TREE_NO_NODE past
 * the node cap or on OOM. */
static uint32_t child_of(cp_thread_tree *t, uint32_t parent, uint32_t site) {
    cp_tnode *p = &t->nodes[parent];
    if (p->last_hit != CP_TREE_NO_NODE && t->nodes[p->last_hit].site == site)
        return p->last_hit;
    uint32_t j = (uint32_t)key_hash(parent, site) & (t->hash_cap - 1);
    while (t->hash[j]) {
        uint32_t i = t->hash[j] - 1;
        if (t->nodes[i].site == site && t->nodes[i].parent == parent) {
            t->nodes[parent].last_hit = i;
            return i;
        }
        j = (j + 1) & (t->hash_cap - 1);
    }
    if (t->nnodes >= t->max_nodes) {
        t->dropped_nodes++;
        return CP_TREE_NO_NODE;
    }
    if (t->nnodes == t->cap_nodes) {
        uint32_t ncap = t->cap_nodes * 2;
        cp_tnode *nn = cp_big_realloc(t->nodes, (size_t)ncap * sizeof *nn);
        if (!nn) {
            t->oom++;
            return CP_TREE_NO_NODE;
        }
        t->nodes = nn;
        t->cap_nodes = ncap;
    }
    uint32_t i = t->nnodes++;
    cp_tnode *n = &t->nodes[i];
    cp_tnode *pp = &t->nodes[parent];
    node_init(n, site, parent, pp->depth + 1);
    const cp_site_info *si = cp_site_get(site);
    n->stage_kind = si && (si->kind == CODEPROF_SITE_PREPROCESS || si->kind == CODEPROF_SITE_AUGMENT);
    n->func = func_index(t, site);
    n->next_sibling = pp->first_child;
    pp->first_child = i;
    pp->last_hit = i;
    t->hash[j] = i + 1;
    if ((t->nnodes - 1) * 2 > t->hash_cap && hash_grow(t) != 0)
        t->oom++; /* the table still works, just fuller */
    return i;
}

/* ---- flat per-site table: dense entries + a site -> index hash ---- */

static uint32_t site_hash32(uint32_t site) {
    uint64_t k = site * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(k >> 32);
}

static int fhash_grow(cp_thread_tree *t) {
    uint32_t ncap = t->fhash_cap ? t->fhash_cap * 2 : 256;
    uint32_t *nh = cp_big_calloc(ncap, sizeof *nh);
    if (!nh)
        return -1;
    for (uint32_t i = 0; i < t->nfuncs; i++) {
        uint32_t j = site_hash32(t->funcs[i].site) & (ncap - 1);
        while (nh[j])
            j = (j + 1) & (ncap - 1);
        nh[j] = i + 1;
    }
    cp_big_free(t->fhash);
    t->fhash = nh;
    t->fhash_cap = ncap;
    return 0;
}

/* Index of `site` in funcs[], created if new; CP_TREE_NO_NODE on OOM. */
static uint32_t func_index(cp_thread_tree *t, uint32_t site) {
    if ((t->nfuncs + 1) * 2 > t->fhash_cap && fhash_grow(t) != 0) {
        t->oom++;
        return CP_TREE_NO_NODE;
    }
    uint32_t j = site_hash32(site) & (t->fhash_cap - 1);
    while (t->fhash[j]) {
        uint32_t i = t->fhash[j] - 1;
        if (t->funcs[i].site == site)
            return i;
        j = (j + 1) & (t->fhash_cap - 1);
    }
    if (t->nfuncs == t->cap_funcs) {
        uint32_t ncap = t->cap_funcs ? t->cap_funcs * 2 : 64;
        cp_tfunc *nf = cp_big_realloc(t->funcs, (size_t)ncap * sizeof *nf);
        if (!nf) {
            t->oom++;
            return CP_TREE_NO_NODE;
        }
        t->funcs = nf;
        t->cap_funcs = ncap;
    }
    uint32_t i = t->nfuncs++;
    memset(&t->funcs[i], 0, sizeof t->funcs[i]);
    t->funcs[i].site = site;
    t->fhash[j] = i + 1;
    return i;
}

void cp_tree_func_foreach(const cp_thread_tree *t, cp_tree_func_fn fn, void *ctx) {
    for (uint32_t i = 0; i < t->nfuncs; i++)
        fn(t->funcs[i].site, &t->funcs[i], ctx);
}

static void push(cp_thread_tree *t, const cp_event *e) {
    if (t->depth == t->cap_stack) {
        uint32_t ncap = t->cap_stack * 2;
        cp_frame *ns = realloc(t->stack, (size_t)ncap * sizeof *ns);
        if (!ns) {
            t->oom++;
            return;
        }
        t->stack = ns;
        t->cap_stack = ncap;
    }
    uint32_t parent = 0;
    if (t->depth) {
        parent = t->stack[t->depth - 1].node;
        /* below a node past the cap, stay past the cap */
    }
    uint32_t node = (t->depth && parent == CP_TREE_NO_NODE) ? CP_TREE_NO_NODE
                                                            : child_of(t, parent, e->site);
    if (t->depth && parent == CP_TREE_NO_NODE)
        t->dropped_nodes++;
    cp_frame *f = &t->stack[t->depth++];
    f->node = node;
    f->site = e->site;
    f->t0 = e->tick;
    f->child_t = 0;
    f->has_cpu = (e->flags & CP_EVF_CPU) != 0;
    f->cpu0 = e->aux;
    f->has_rss0 = f->has_rss1 = 0;
    f->evflags = e->flags;
    if (__builtin_expect(e->flags & (CP_EVF_ITEM | CP_EVF_BATCH), 0)) {
        f->failed = 0;
        f->epoch = 0;
        f->index = -1;
        if (e->flags & CP_EVF_ITEM) {
            f->prev_item = t->item_top;
            t->item_top = t->depth - 1;
        }
    }
    f->func = node != CP_TREE_NO_NODE ? t->nodes[node].func : func_index(t, e->site);
    if (f->func != CP_TREE_NO_NODE)
        t->funcs[f->func].active++;
}

static inline void add_duration(cp_thread_tree *t, uint64_t *count, uint64_t *min_t, uint64_t *max_t,
                         cp_reservoir *res, uint64_t dur) {
    (*count)++;
    if (dur < *min_t || *count == 1)
        *min_t = dur;
    if (dur > *max_t)
        *max_t = dur;
    if (!res || !t->percentiles)
        return;
    uint32_t limit = t->max_samples;
    if (__builtin_expect(res->n == res->cap && res->n < limit, 0) && t->budget) {
        /* The reservoir must grow: only while the session's budget lasts;
         * past it the node keeps sampling uniformly at the size it has. */
        if (*t->budget == 0) {
            t->dropped_samples++;
            if (res->n == 0)
                return;
            limit = res->n;
        }
        uint32_t before = res->cap;
        if (cp_reservoir_push(res, dur, *count, limit, &t->rng) != 0)
            t->oom++;
        uint64_t grown = res->cap - before;
        *t->budget = *t->budget > grown ? *t->budget - grown : 0;
        return;
    }
    if (cp_reservoir_push(res, dur, *count, limit, &t->rng) != 0)
        t->oom++;
}

/* Appends the data-loading record of a popped frame (datalog.h).  `f` is
 * the frame just popped (still valid: stack[depth]). */
__attribute__((noinline)) static void data_record(cp_thread_tree *t, const cp_frame *f,
                                                  uint64_t dur_t) {
    uint16_t type;
    if (f->evflags & CP_EVF_ITEM) {
        t->item_top = f->prev_item;
        type = CP_DREC_ITEM;
    } else if (f->evflags & CP_EVF_BATCH) {
        type = CP_DREC_BATCH;
    } else if (t->item_top != CP_TREE_NO_NODE) {
        type = CP_DREC_STAGE;
    } else {
        /* The common case, an explicit scope outside any item: only
         * preprocessing/augmentation scopes are stages there (e.g. a
         * transform applied in the training loop). */
        int stage;
        if (f->node != CP_TREE_NO_NODE) {
            stage = t->nodes[f->node].stage_kind;
        } else {
            const cp_site_info *si = cp_site_get(f->site);
            stage = si && (si->kind == CODEPROF_SITE_PREPROCESS ||
                           si->kind == CODEPROF_SITE_AUGMENT);
        }
        if (!stage)
            return;
        type = CP_DREC_STAGE;
    }
    cp_datalog *log = t->logp ? *t->logp : NULL;
    if (!log || (type != CP_DREC_STAGE && f->failed == 2))
        return;
    cp_drec r = {0};
    r.type = type;
    r.u.r.site = f->site;
    r.u.r.dur_ns = cp_clock_ticks_to_ns(dur_t);
    if (type == CP_DREC_ITEM) {
        r.flags = f->failed ? CP_DRECF_FAILED : 0;
        r.u.r.index = f->index;
        r.u.r.t_ns = cp_tick_to_mono_ns(f->t0);
    } else if (type == CP_DREC_BATCH) {
        r.flags = f->failed ? CP_DRECF_FAILED : 0; /* next() raised: not a batch */
        r.u.r.index = f->index; /* items in the batch, -1 unknown */
        r.u.r.epoch = f->epoch;
        r.u.r.t_ns = cp_tick_to_mono_ns(f->t0);
    } else {
        r.u.r.index = t->item_top != CP_TREE_NO_NODE ? t->stack[t->item_top].index : -1;
    }
    cp_datalog_append(log, &r);
}

/* Pops the top frame, ending it at tick t_end. */
static void pop(cp_thread_tree *t, uint64_t t_end, int has_cpu_end, uint64_t cpu_end,
                int truncated) {
    cp_frame *f = &t->stack[--t->depth];
    uint64_t dur = t_end > f->t0 ? t_end - f->t0 : 0; /* ticks; ns at model build */
    uint64_t self = dur > f->child_t ? dur - f->child_t : 0;
    int cpu_ok = f->has_cpu && has_cpu_end && cpu_end >= f->cpu0;
    uint64_t cpu = cpu_ok ? cpu_end - f->cpu0 : 0;
    int rss_ok = f->has_rss0 && f->has_rss1;
    int64_t rss = rss_ok ? f->rss1 - f->rss0 : 0;
    if (f->node != CP_TREE_NO_NODE) {
        cp_tnode *n = &t->nodes[f->node];
        n->incl_t += dur;
        n->self_t += self;
        add_duration(t, &n->count, &n->min_t, &n->max_t, &n->res, dur);
        if (cpu_ok) {
            n->cpu_ns += cpu;
            n->cpu_count++;
        }
        if (rss_ok) {
            n->rss_delta_sum += rss;
            if (n->rss_count == 0 || rss > n->rss_delta_max)
                n->rss_delta_max = rss;
            n->rss_count++;
        }
        if (truncated)
            n->truncated++;
    }
    cp_tfunc *fn = f->func != CP_TREE_NO_NODE ? &t->funcs[f->func] : NULL;
    if (fn) {
        fn->self_t += self;
        /* per-site percentiles come from the node reservoirs at model build */
        add_duration(t, &fn->calls, &fn->min_t, &fn->max_t, NULL, dur);
        if (fn->active && --fn->active == 0)
            fn->incl_t += dur;
        if (cpu_ok) {
            fn->cpu_ns += cpu;
            fn->cpu_count++;
        }
        if (rss_ok) {
            fn->rss_delta_sum += rss;
            if (fn->rss_count == 0 || rss > fn->rss_delta_max)
                fn->rss_delta_max = rss;
            fn->rss_count++;
        }
    }
    if (truncated)
        t->truncated++;
    /* Data records: items, batches, and explicit scopes inside an item or
     * of a stage kind; the common explicit scope is decided inline. */
    if (__builtin_expect(f->evflags & (CP_EVF_ITEM | CP_EVF_BATCH), 0) ||
        (f->evflags & CP_EVF_EXPLICIT &&
         (t->item_top != CP_TREE_NO_NODE || f->node == CP_TREE_NO_NODE ||
          t->nodes[f->node].stage_kind)))
        data_record(t, f, dur);
    if (t->depth)
        t->stack[t->depth - 1].child_t += dur;
}

static void on_exit_event(cp_thread_tree *t, const cp_event *e) {
    if (t->depth && t->stack[t->depth - 1].site == e->site) {
        pop(t, e->tick, (e->flags & CP_EVF_CPU) != 0, e->aux, 0);
        return;
    }
    uint32_t i = t->depth;
    while (i > 0 && t->stack[i - 1].site != e->site)
        i--;
    if (i == 0) {
        t->unmatched_exits++;
        return;
    }
    while (t->depth > i)
        pop(t, e->tick, 0, 0, 1);
    pop(t, e->tick, (e->flags & CP_EVF_CPU) != 0, e->aux, 0);
}

void cp_tree_fold(cp_thread_tree *t, const cp_event *ev, uint32_t n) {
    if (n)
        t->last_tick = ev[n - 1].tick;
    for (uint32_t k = 0; k < n; k++) {
        const cp_event *e = &ev[k];
        switch (e->kind) {
        case CP_EV_ENTER:
            push(t, e);
            break;
        case CP_EV_EXIT:
            on_exit_event(t, e);
            break;
        case CP_EV_RSS:
            if (t->depth) {
                cp_frame *f = &t->stack[t->depth - 1];
                if (!f->has_rss0) {
                    f->rss0 = e->value;
                    f->has_rss0 = 1;
                } else {
                    f->rss1 = e->value;
                    f->has_rss1 = 1;
                }
            }
            break;
        case CP_EV_ATTR:
            if (t->depth) {
                cp_frame *f = &t->stack[t->depth - 1];
                switch (e->flags) {
                case CODEPROF_ATTR_INDEX:
                case CODEPROF_ATTR_ITEMS:
                    f->index = e->value;
                    break;
                case CODEPROF_ATTR_EPOCH:
                    f->epoch = (uint32_t)e->value;
                    break;
                case CODEPROF_ATTR_FAILED:
                    f->failed = e->value != 0;
                    break;
                case CODEPROF_ATTR_CANCEL:
                    f->failed = 2;
                    break;
                default:
                    break;
                }
            }
            break;
        default:
            /* MARK and the reserved kinds are folded by the modules
             * that produce them (data, memory, gpu) as they land. */
            break;
        }
    }
}

void cp_tree_close_all(cp_thread_tree *t, uint64_t t_end) {
    while (t->depth)
        pop(t, t_end, 0, 0, 1);
}

uint64_t cp_tree_last_tick(const cp_thread_tree *t) { return t->last_tick; }

static void add_stats(uint64_t *count, uint64_t *min_t, uint64_t *max_t, uint64_t scount,
                      uint64_t smin, uint64_t smax) {
    if (!scount)
        return;
    if (*count == 0 || smin < *min_t)
        *min_t = smin;
    if (smax > *max_t)
        *max_t = smax;
    *count += scount;
}

int cp_tree_merge(cp_thread_tree *dst, const cp_thread_tree *src) {
    int rc = 0;
    uint32_t *map = cp_big_alloc((size_t)(src->nnodes ? src->nnodes : 1) * sizeof *map);
    if (!map) {
        dst->oom++;
        return -1;
    }
    map[0] = 0;
    /* A child is always created after its parent, so parents map first. */
    for (uint32_t i = 1; i < src->nnodes; i++) {
        const cp_tnode *sn = &src->nodes[i];
        uint32_t parent = sn->parent < i ? map[sn->parent] : CP_TREE_NO_NODE;
        uint32_t d = parent == CP_TREE_NO_NODE ? CP_TREE_NO_NODE : child_of(dst, parent, sn->site);
        map[i] = d;
        if (d == CP_TREE_NO_NODE) {
            dst->dropped_nodes += sn->count;
            continue;
        }
        cp_tnode *dn = &dst->nodes[d];
        add_stats(&dn->count, &dn->min_t, &dn->max_t, sn->count, sn->min_t, sn->max_t);
        dn->incl_t += sn->incl_t;
        dn->self_t += sn->self_t;
        dn->cpu_ns += sn->cpu_ns;
        dn->cpu_count += sn->cpu_count;
        dn->truncated += sn->truncated;
        if (sn->rss_count) {
            if (dn->rss_count == 0 || sn->rss_delta_max > dn->rss_delta_max)
                dn->rss_delta_max = sn->rss_delta_max;
            dn->rss_delta_sum += sn->rss_delta_sum;
            dn->rss_count += sn->rss_count;
        }
        /* Samples: as many as the node's bound and the budget allow. */
        if (dst->percentiles && sn->res.n) {
            uint32_t room = dn->res.n < dst->max_samples ? dst->max_samples - dn->res.n : 0;
            uint32_t take = sn->res.n < room ? sn->res.n : room;
            if (dst->budget && *dst->budget < take) {
                dst->dropped_samples += take - *dst->budget;
                take = (uint32_t)*dst->budget;
            }
            if (take) {
                cp_reservoir part = sn->res;
                part.n = take;
                uint32_t before = dn->res.cap;
                if (cp_reservoir_extend(&dn->res, &part) != 0) {
                    dst->oom++;
                    rc = -1;
                } else if (dst->budget) {
                    uint64_t grown = dn->res.cap - before;
                    *dst->budget = *dst->budget > grown ? *dst->budget - grown : 0;
                }
            }
        }
    }
    cp_big_free(map);
    for (uint32_t i = 0; i < src->nfuncs; i++) {
        const cp_tfunc *sf = &src->funcs[i];
        uint32_t fi = func_index(dst, sf->site);
        if (fi == CP_TREE_NO_NODE) {
            rc = -1;
            continue;
        }
        cp_tfunc *df = &dst->funcs[fi];
        add_stats(&df->calls, &df->min_t, &df->max_t, sf->calls, sf->min_t, sf->max_t);
        df->incl_t += sf->incl_t;
        df->self_t += sf->self_t;
        df->cpu_ns += sf->cpu_ns;
        df->cpu_count += sf->cpu_count;
        if (sf->rss_count) {
            if (df->rss_count == 0 || sf->rss_delta_max > df->rss_delta_max)
                df->rss_delta_max = sf->rss_delta_max;
            df->rss_delta_sum += sf->rss_delta_sum;
            df->rss_count += sf->rss_count;
        }
    }
    dst->dropped_nodes += src->dropped_nodes;
    dst->dropped_samples += src->dropped_samples;
    dst->unmatched_exits += src->unmatched_exits;
    dst->truncated += src->truncated;
    dst->oom += src->oom;
    if (src->last_tick > dst->last_tick)
        dst->last_tick = src->last_tick;
    return rc;
}
