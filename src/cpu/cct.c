/* cct.c -- fold a thread's events into its calling-context tree (cct.h). */
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

static void node_init(cp_tnode *n, uint32_t site, uint32_t parent, uint32_t depth) {
    memset(n, 0, sizeof *n);
    n->site = site;
    n->parent = parent;
    n->first_child = CP_TREE_NO_NODE;
    n->next_sibling = CP_TREE_NO_NODE;
    n->last_hit = CP_TREE_NO_NODE;
    n->depth = depth;
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
    t->nodes = malloc(t->cap_nodes * sizeof *t->nodes);
    t->hash_cap = 128;
    t->hash = calloc(t->hash_cap, sizeof *t->hash);
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

static void free_data(cp_thread_tree *t) {
    for (uint32_t i = 0; i < t->nnodes; i++)
        cp_reservoir_free(&t->nodes[i].res);
}

void cp_tree_free(cp_thread_tree *t) {
    if (!t)
        return;
    if (t->nodes)
        free_data(t);
    free(t->nodes);
    free(t->hash);
    free(t->stack);
    free(t->funcs);
    free(t);
}

void cp_tree_reset(cp_thread_tree *t) {
    free_data(t);
    memset(t->hash, 0, t->hash_cap * sizeof *t->hash);
    if (t->funcs)
        memset(t->funcs, 0, t->cap_funcs * sizeof *t->funcs);
    node_init(&t->nodes[0], 0, CP_TREE_NO_NODE, 0);
    t->nnodes = 1;
    t->depth = 0;
    t->item_top = CP_TREE_NO_NODE;
    t->dropped_nodes = t->unmatched_exits = t->truncated = t->oom = 0;
}

static int hash_grow(cp_thread_tree *t) {
    uint32_t ncap = t->hash_cap * 2;
    uint32_t *nh = calloc(ncap, sizeof *nh);
    if (!nh)
        return -1;
    for (uint32_t i = 1; i < t->nnodes; i++) {
        uint32_t j = (uint32_t)key_hash(t->nodes[i].parent, t->nodes[i].site) & (ncap - 1);
        while (nh[j])
            j = (j + 1) & (ncap - 1);
        nh[j] = i + 1;
    }
    free(t->hash);
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
        cp_tnode *nn = realloc(t->nodes, (size_t)ncap * sizeof *nn);
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
    n->next_sibling = pp->first_child;
    pp->first_child = i;
    pp->last_hit = i;
    t->hash[j] = i + 1;
    if ((t->nnodes - 1) * 2 > t->hash_cap && hash_grow(t) != 0)
        t->oom++; /* the table still works, just fuller */
    return i;
}

static cp_tfunc *func_grow(cp_thread_tree *t, uint32_t site);

static inline cp_tfunc *func_of(cp_thread_tree *t, uint32_t site) {
    if (__builtin_expect(site < t->cap_funcs, 1))
        return &t->funcs[site];
    return func_grow(t, site);
}

static cp_tfunc *func_grow(cp_thread_tree *t, uint32_t site) {
    {
        uint32_t ncap = t->cap_funcs ? t->cap_funcs : 256;
        while (ncap <= site)
            ncap *= 2;
        cp_tfunc *nf = realloc(t->funcs, (size_t)ncap * sizeof *nf);
        if (!nf) {
            t->oom++;
            return NULL;
        }
        memset(nf + t->cap_funcs, 0, (size_t)(ncap - t->cap_funcs) * sizeof *nf);
        t->funcs = nf;
        t->cap_funcs = ncap;
    }
    return &t->funcs[site];
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
    cp_tfunc *fn = func_of(t, e->site);
    if (fn)
        fn->active++;
}

static inline void add_duration(cp_thread_tree *t, uint64_t *count, uint64_t *min_t, uint64_t *max_t,
                         cp_reservoir *res, uint64_t dur) {
    (*count)++;
    if (dur < *min_t || *count == 1)
        *min_t = dur;
    if (dur > *max_t)
        *max_t = dur;
    if (res && t->percentiles &&
        cp_reservoir_push(res, dur, *count, t->max_samples, &t->rng) != 0)
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
    cp_tfunc *fn = func_of(t, f->site);
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

void cp_tree_func_foreach(const cp_thread_tree *t, cp_tree_func_fn fn, void *ctx) {
    for (uint32_t site = 1; site < t->cap_funcs; site++)
        if (t->funcs[site].calls)
            fn(site, &t->funcs[site], ctx);
}
