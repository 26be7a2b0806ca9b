/* build_mem.c -- the memory section of a model (cp_model.mem) from a
 * session's memory instruments (mem_state.h): the tracker's totals, live
 * groups and snapshots (heap.h), the memory sink's per-context figures
 * (memsink.h), GC counters (gcstats.h) and the process sampler
 * (memsampler.h).  Called by cp_model_finish with agg_mu held.
 *
 * Allocation stacks are mapped into model sites: a Python frame's site id
 * through the build's site mapping, a native return address to its symbol
 * (dladdr) or "dso+0xoffset", a model site of kind NATIVE whose file is
 * the shared object.  Only stacks that a kept group refers to are kept.
 * While building, this thread's allocator-hook flag is held, so what the
 * build allocates is not recorded as the user's. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/session.h"
#include "core/u32map.h"
#include "cpu/scope_heap.h"
#include "memory/gcstats.h"
#include "memory/heap.h"
#include "memory/mem_session.h"
#include "memory/mem_state.h"
#include "model/build.h"
#include "data/datalog.h"
#include "model/model.h"

typedef struct bgroup {
    uint32_t stack; /* builder stack index */
    uint32_t site;  /* the context's recorded site id (0: none) */
    int open;
    uint64_t bytes, blocks;
} bgroup;

typedef struct bstate {
    cp_model *m;
    int oom;
    /* stacks, deduplicated by content */
    cp_mmem_stack *stk;
    uint32_t nstk, cap_stk;
    uint32_t *hash; /* index + 1 per slot */
    uint32_t hcap;
    /* groups of the live ledger */
    bgroup *g;
    uint32_t ng, cap_g;
    uint32_t other_site; /* model site of "(other stacks)" */
    /* snapshot groups being filled */
    cp_mmem *mm;
} bstate;

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    uint32_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, (size_t)nc * elem);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

/* Index of `s` in the builder's stacks (added if new); CP_NONE on OOM. */
static uint32_t stack_add(bstate *b, const cp_mmem_stack *s) {
    if ((b->nstk + 1) * 2 > b->hcap) {
        uint32_t nh = b->hcap ? b->hcap * 2 : 256;
        uint32_t *h = calloc(nh, sizeof *h);
        if (!h)
            return CP_NONE;
        for (uint32_t i = 0; i < b->nstk; i++) {
            uint32_t j = cp_mmem_stack_hash(&b->stk[i]) & (nh - 1);
            while (h[j])
                j = (j + 1) & (nh - 1);
            h[j] = i + 1;
        }
        free(b->hash);
        b->hash = h;
        b->hcap = nh;
    }
    uint32_t j = cp_mmem_stack_hash(s) & (b->hcap - 1);
    for (; b->hash[j]; j = (j + 1) & (b->hcap - 1))
        if (cp_mmem_stack_eq(&b->stk[b->hash[j] - 1], s))
            return b->hash[j] - 1;
    if (grow((void **)&b->stk, &b->cap_stk, b->nstk + 1, sizeof *b->stk) != 0)
        return CP_NONE;
    b->stk[b->nstk] = *s;
    b->hash[j] = b->nstk + 1;
    return b->nstk++;
}

/* The model site of a native return address. */
static uint32_t native_site(cp_model *m, uint64_t pc) {
    Dl_info info;
    char name[512];
    const char *file = "";
    memset(&info, 0, sizeof info);
    if (dladdr((void *)(uintptr_t)pc, &info) && info.dli_fname) {
        file = info.dli_fname;
        if (info.dli_sname)
            snprintf(name, sizeof name, "%s", info.dli_sname);
        else {
            const char *base = strrchr(info.dli_fname, '/');
            snprintf(name, sizeof name, "%s+0x%llx", base ? base + 1 : info.dli_fname,
                     (unsigned long long)(pc - (uint64_t)(uintptr_t)info.dli_fbase));
        }
    } else {
        snprintf(name, sizeof name, "0x%llx", (unsigned long long)pc);
    }
    return cp_model_intern_site(m, name, file, 0, CODEPROF_SITE_NATIVE);
}

/* Maps a tracker stack into a model stack; CP_NONE on OOM. */
static uint32_t map_stack(bstate *b, const cp_heap_frame *fr, uint32_t n) {
    cp_mmem_stack s;
    memset(&s, 0, sizeof s);
    if (n > CP_MEM_STACK_DEPTH)
        n = CP_MEM_STACK_DEPTH;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t site;
        if (fr[i].pc == CP_HEAP_PC_OTHER) {
            if (!b->other_site)
                b->other_site =
                    cp_model_intern_site(b->m, "(other stacks)", "", 0, CODEPROF_SITE_SCOPE);
            site = b->other_site;
        } else if (fr[i].pc) {
            site = native_site(b->m, fr[i].pc);
        } else if (fr[i].site) {
            site = cp_model_map_site(b->m, fr[i].site);
        } else {
            continue; /* a Python frame the stack callback could not name */
        }
        if (!site)
            return CP_NONE;
        s.site[s.nframes] = site;
        s.line[s.nframes] = fr[i].line;
        s.nframes++;
    }
    return stack_add(b, &s);
}

static void on_group(void *arg, const cp_heap_frame *frames, uint32_t nframes, uint32_t ctx_site,
                     int ctx_open, uint64_t live_bytes, uint64_t live_blocks) {
    bstate *b = arg;
    if (b->oom)
        return;
    uint32_t st = map_stack(b, frames, nframes);
    if (st == CP_NONE || grow((void **)&b->g, &b->cap_g, b->ng + 1, sizeof *b->g) != 0) {
        b->oom = 1;
        return;
    }
    b->g[b->ng++] = (bgroup){st, ctx_site, ctx_open, live_bytes, live_blocks};
}

static int cmp_group_bytes(const void *x, const void *y) {
    const bgroup *a = x, *b = y;
    return (a->bytes < b->bytes) - (a->bytes > b->bytes);
}

/* The snapshot being read: its groups go to mm->snap_groups. */
typedef struct snapctx {
    bstate *b;
    uint32_t cap;
} snapctx;

static void on_snap_group(void *arg, const cp_heap_frame *frames, uint32_t nframes,
                          uint32_t ctx_site, int ctx_open, uint64_t live_bytes,
                          uint64_t live_blocks) {
    (void)ctx_site, (void)ctx_open;
    snapctx *sc = arg;
    bstate *b = sc->b;
    cp_mmem *mm = b->mm;
    if (b->oom)
        return;
    uint32_t st = map_stack(b, frames, nframes);
    if (st == CP_NONE ||
        grow((void **)&mm->snap_groups, &sc->cap, mm->nsnap_groups + 1, sizeof *mm->snap_groups)) {
        b->oom = 1;
        return;
    }
    mm->snap_groups[mm->nsnap_groups++] =
        (cp_mmem_group){st, CP_NONE, live_bytes, live_blocks};
}

typedef struct ctxmap {
    cp_model *m;
    cp_mmem *mm;
    cp_u32map raw; /* recorded site id -> ctx index + 1 */
    int oom;
} ctxmap;

static void on_ctx(void *arg, const cp_mmem_ctx *c) {
    ctxmap *cm = arg;
    if (cm->oom)
        return;
    uint32_t site = cp_model_map_site(cm->m, c->site);
    if (!site) {
        cm->oom = 1;
        return;
    }
    cp_mmem_ctx *o = &cm->mm->ctxs[cm->mm->nctxs];
    *o = *c;
    o->site = site;
    if (cp_u32map_put(&cm->raw, c->site, cm->mm->nctxs + 1) != 0) {
        cm->oom = 1;
        return;
    }
    cm->mm->nctxs++;
}

static uint32_t ctx_of(const ctxmap *cm, uint32_t raw_site) {
    uint32_t v;
    return raw_site && cp_u32map_get(&cm->raw, raw_site, &v) ? v - 1 : CP_NONE;
}

/* Keeps only the stacks referenced by sites, leaks and snapshot groups,
 * renumbered in first-use order; moves them into mm->stacks. */
static int compact_stacks(bstate *b, cp_mmem *mm) {
    uint32_t *map = malloc((size_t)(b->nstk ? b->nstk : 1) * sizeof *map);
    if (!map)
        return -1;
    for (uint32_t i = 0; i < b->nstk; i++)
        map[i] = CP_NONE;
    uint32_t n = 0;
    cp_mmem_group *lists[3] = {mm->sites, mm->leaks, mm->snap_groups};
    uint32_t counts[3] = {mm->nsites, mm->nleaks, mm->nsnap_groups};
    for (int l = 0; l < 3; l++)
        for (uint32_t i = 0; i < counts[l]; i++) {
            uint32_t st = lists[l][i].stack;
            if (map[st] == CP_NONE)
                map[st] = n++;
            lists[l][i].stack = map[st];
        }
    cp_mmem_stack *out = calloc(n ? n : 1, sizeof *out);
    if (!out) {
        free(map);
        return -1;
    }
    for (uint32_t i = 0; i < b->nstk; i++)
        if (map[i] != CP_NONE)
            out[map[i]] = b->stk[i];
    free(map);
    mm->stacks = out;
    mm->nstacks = n;
    return 0;
}

static int build_heap(cp_model *m, cp_session *s, struct cp_mem_state *st, ctxmap *cm) {
    cp_mmem *mm = &m->mem;
    bstate b;
    memset(&b, 0, sizeof b);
    b.m = m;
    b.mm = mm;
    int rc = -1;
    cp_heap_foreach_live(on_group, &b);
    if (b.oom)
        goto out;
    if (b.ng > 1)
        qsort(b.g, b.ng, sizeof *b.g, cmp_group_bytes);
    uint32_t ns = b.ng < CP_MEM_MAX_SITES ? b.ng : CP_MEM_MAX_SITES;
    uint32_t nl = 0;
    for (uint32_t i = 0; i < b.ng; i++)
        nl += !b.g[i].open && b.g[i].site;
    if (nl > CP_MEM_MAX_LEAKS)
        nl = CP_MEM_MAX_LEAKS;
    mm->sites = calloc(ns ? ns : 1, sizeof *mm->sites);
    mm->leaks = calloc(nl ? nl : 1, sizeof *mm->leaks);
    if (!mm->sites || !mm->leaks)
        goto out;
    for (uint32_t i = 0; i < ns; i++)
        mm->sites[mm->nsites++] =
            (cp_mmem_group){b.g[i].stack, ctx_of(cm, b.g[i].site), b.g[i].bytes, b.g[i].blocks};
    for (uint32_t i = 0; i < b.ng; i++) {
        const bgroup *g = &b.g[i];
        if (g->open || !g->site)
            continue;
        uint32_t c = ctx_of(cm, g->site);
        if (c != CP_NONE) {
            mm->ctxs[c].leaked_bytes += g->bytes;
            mm->ctxs[c].leaked_blocks += g->blocks;
        }
        if (mm->nleaks < nl)
            mm->leaks[mm->nleaks++] = (cp_mmem_group){g->stack, c, g->bytes, g->blocks};
    }
    /* snapshots */
    uint32_t nsnap = cp_heap_snapshot_count();
    if (nsnap) {
        mm->snaps = calloc(nsnap, sizeof *mm->snaps);
        if (!mm->snaps)
            goto out;
        snapctx sc = {&b, 0};
        for (uint32_t i = 0; i < nsnap; i++) {
            cp_heap_snapshot_info info;
            uint32_t first = mm->nsnap_groups;
            if (cp_heap_snapshot_get(i, &info, on_snap_group, &sc) != 0)
                break;
            if (b.oom)
                goto out;
            uint32_t site = cp_model_map_site(m, info.ctx_site);
            mm->snaps[mm->nsnaps++] = (cp_msnap){site, info.t_ns, info.live_bytes, first,
                                                 mm->nsnap_groups - first};
        }
    }
    if (compact_stacks(&b, mm) != 0)
        goto out;
    rc = 0;
out:
    (void)s, (void)st;
    free(b.stk);
    free(b.hash);
    free(b.g);
    return rc;
}

static int build(cp_model *m, cp_session *s) {
    cp_mmem *mm = &m->mem;
    if (s->cfg.flags & CODEPROF_CFG_GC)
        cp_gcstats_read(&mm->gc);
    struct cp_mem_state *st = s->mem;
    if (!st)
        return 0;
    mm->dropped_marks += cp_scope_heap_overflow();
    int owns = cp_mem_session_owns_ledger(s);
    if (owns) {
        cp_heap_totals t;
        cp_heap_get_totals(&t);
        mm->mode = (int)t.mode;
        mm->estimated = t.mode == CP_HEAP_SAMPLED;
        mm->native = t.native;
        mm->sample_bytes = t.sample_bytes;
        mm->stack_depth = t.stack_depth;
        for (int d = 0; d < CP_MEM_NDOMAINS && d < CP_HEAP_NDOMAINS; d++) {
            const cp_heap_domain_totals *o = &t.dom[d];
            mm->domains[d] = (cp_mmem_domain){o->alloc_count, o->alloc_bytes, o->free_count,
                                              o->free_bytes,  o->live_bytes,  o->live_blocks,
                                              o->peak_bytes};
        }
        mm->live_bytes = t.live_bytes;
        mm->peak_bytes = t.peak_bytes;
        mm->own_bytes += t.own_bytes;
        mm->dropped_blocks += t.dropped_blocks;
        mm->dropped_stacks += t.dropped_stacks;
        mm->dropped_snapshots += t.dropped_snapshots;
        mm->dropped_marks += t.dropped_marks;
    } else {
        mm->sample_bytes = s->cfg.memory_sample_bytes;
        mm->stack_depth = s->cfg.memory_stack_depth;
    }
    /* contexts */
    ctxmap cm;
    memset(&cm, 0, sizeof cm);
    cm.m = m;
    cm.mm = mm;
    uint32_t nc = cp_memsink_count(st->sink);
    mm->ctxs = calloc(nc ? nc : 1, sizeof *mm->ctxs);
    if (!mm->ctxs)
        return -1;
    cp_memsink_foreach(st->sink, on_ctx, &cm);
    int rc = cm.oom ? -1 : 0;
    if (rc == 0 && owns)
        rc = build_heap(m, s, st, &cm);
    cp_u32map_free(&cm.raw);
    if (rc != 0)
        return -1;
    cp_memsink_stats ss;
    cp_memsink_stats_get(st->sink, &ss);
    mm->dropped_ctxs += ss.dropped_ctxs;
    mm->own_bytes += ss.own_bytes;
    /* with no sampler (interval 0) it still fills machine_bytes */
    if (cp_memsampler_fill_model(st->sampler, m) != 0)
        return -1;
    if (ss.rss_peak > mm->rss_peak)
        mm->rss_peak = ss.rss_peak;
    if (!mm->rss_last)
        mm->rss_last = ss.rss_last;
    return 0;
}

int cp_mem_model_build(struct cp_model *m, struct codeprof_session *s) {
    /* what the build allocates is the profiler's, not the user's */
    int entered = cp_heap_hook_enter();
    int rc = build(m, s);
    /* snapshot times are written relative to the run's start */
    if (rc == 0 && atomic_load(&s->start_tick))
        m->mem.t0_ns = cp_tick_to_mono_ns(atomic_load(&s->start_tick));
    if (entered)
        cp_heap_hook_leave();
    return rc;
}
