/* model_mem.c -- the model's memory section: freeing and merging
 * (model_mem.h). */
#include "model/model_mem.h"

#include <stdlib.h>
#include <string.h>

#include "core/u32map.h"
#include "model/model.h"

void cp_mmem_free(cp_mmem *mm) {
    free(mm->ctxs);
    free(mm->stacks);
    free(mm->sites);
    free(mm->leaks);
    free(mm->procs);
    free(mm->snaps);
    free(mm->snap_groups);
    memset(mm, 0, sizeof *mm);
}

static inline uint32_t map_site(const uint32_t *smap, uint32_t site) {
    return site && site != CP_NONE ? smap[site] : site;
}

/* Folds the figures of context b into a (same site). */
static void ctx_add(cp_mmem_ctx *a, const cp_mmem_ctx *b) {
    if (b->count) {
        if (!a->count || b->delta_min < a->delta_min)
            a->delta_min = b->delta_min;
        if (!a->count || b->delta_max > a->delta_max)
            a->delta_max = b->delta_max;
    }
    if (b->rss_delta_max > a->rss_delta_max)
        a->rss_delta_max = b->rss_delta_max;
    double n = (double)a->count + (double)b->count;
    a->floor_slope = n > 0 ? (a->floor_slope * (double)a->count +
                              b->floor_slope * (double)b->count) / n
                           : 0.0;
    a->count += b->count;
    a->delta_sum += b->delta_sum;
    if (b->peak_max > a->peak_max)
        a->peak_max = b->peak_max;
    a->rss_delta_sum += b->rss_delta_sum;
    if (b->rss_peak_max > a->rss_peak_max)
        a->rss_peak_max = b->rss_peak_max;
    a->floor_last = b->floor_last; /* src comes later in the merged order */
    a->floor_rises += b->floor_rises;
    a->leaked_bytes += b->leaked_bytes;
    a->leaked_blocks += b->leaked_blocks;
    a->gc_collections += b->gc_collections;
    a->estimated |= b->estimated;
}

uint32_t cp_mmem_stack_hash(const cp_mmem_stack *s) {
    uint64_t h = 0xcbf29ce484222325ull ^ s->nframes;
    for (uint32_t i = 0; i < s->nframes && i < CP_MEM_STACK_DEPTH; i++) {
        h = (h ^ s->site[i]) * 0x100000001b3ull;
        h = (h ^ s->line[i]) * 0x100000001b3ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

int cp_mmem_stack_eq(const cp_mmem_stack *a, const cp_mmem_stack *b) {
    return a->nframes == b->nframes &&
           memcmp(a->site, b->site, a->nframes * sizeof a->site[0]) == 0 &&
           memcmp(a->line, b->line, a->nframes * sizeof a->line[0]) == 0;
}

/* Interns stacks[i] into hash (cap hcap, index+1 per slot); returns its
 * index in stacks (which already holds it at position n when new). */
static uint32_t stack_intern(cp_mmem_stack *stacks, uint32_t *n, uint32_t *hash, uint32_t hcap,
                             const cp_mmem_stack *s) {
    uint32_t j = cp_mmem_stack_hash(s) & (hcap - 1);
    for (; hash[j]; j = (j + 1) & (hcap - 1))
        if (cp_mmem_stack_eq(&stacks[hash[j] - 1], s))
            return hash[j] - 1;
    stacks[*n] = *s;
    hash[j] = ++*n;
    return *n - 1;
}

static int cmp_group(const void *x, const void *y) {
    const cp_mmem_group *a = x, *b = y;
    if (a->live_bytes != b->live_bytes)
        return (a->live_bytes < b->live_bytes) - (a->live_bytes > b->live_bytes);
    if (a->stack != b->stack)
        return (a->stack > b->stack) - (a->stack < b->stack);
    return (a->ctx > b->ctx) - (a->ctx < b->ctx);
}

/* dst groups + src groups remapped, equal (stack, ctx) summed, largest
 * first, at most `cap`.  NULL on OOM. */
static cp_mmem_group *merge_groups(const cp_mmem_group *a, uint32_t na, const cp_mmem_group *b,
                                   uint32_t nb, const uint32_t *stk_map, const uint32_t *ctx_map,
                                   uint32_t cap, uint32_t *nout) {
    uint32_t n = na + nb;
    cp_mmem_group *g = malloc((size_t)(n ? n : 1) * sizeof *g);
    if (!g)
        return NULL;
    if (na)
        memcpy(g, a, (size_t)na * sizeof *g);
    for (uint32_t i = 0; i < nb; i++) {
        g[na + i] = b[i];
        g[na + i].stack = stk_map[b[i].stack];
        g[na + i].ctx = b[i].ctx == CP_NONE ? CP_NONE : ctx_map[b[i].ctx];
    }
    /* sum duplicates: sort by (stack, ctx), fold, then by bytes */
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            if (g[j].live_blocks && g[i].live_blocks && g[j].stack == g[i].stack &&
                g[j].ctx == g[i].ctx) {
                g[i].live_bytes += g[j].live_bytes;
                g[i].live_blocks += g[j].live_blocks;
                g[j].live_blocks = 0;
                g[j].live_bytes = 0;
            }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (g[i].live_blocks || g[i].live_bytes)
            g[k++] = g[i];
    qsort(g, k, sizeof *g, cmp_group);
    *nout = k < cap ? k : cap;
    return g;
}

int cp_mmem_merge(cp_mmem *dst, const cp_mmem *src, const uint32_t *smap) {
    cp_mmem_ctx *ctxs = NULL;
    cp_mmem_stack *stacks = NULL;
    uint32_t *hash = NULL, *stk_map = NULL, *ctx_map = NULL;
    cp_mmem_group *sites = NULL, *leaks = NULL, *sgroups = NULL;
    cp_mproc *procs = NULL;
    cp_msnap *snaps = NULL;
    cp_u32map bysite = {0};
    uint32_t nctx = 0, nstk = 0, nsites = 0, nleaks = 0;
    uint64_t dropped_ctxs = 0;
    int rc = -1;

    /* contexts by site */
    uint32_t cap_ctx = dst->nctxs + src->nctxs;
    ctxs = malloc((size_t)(cap_ctx ? cap_ctx : 1) * sizeof *ctxs);
    ctx_map = malloc((size_t)(src->nctxs ? src->nctxs : 1) * sizeof *ctx_map);
    if (!ctxs || !ctx_map)
        goto out;
    for (uint32_t i = 0; i < dst->nctxs; i++) {
        ctxs[nctx] = dst->ctxs[i];
        if (dst->ctxs[i].site && cp_u32map_put(&bysite, dst->ctxs[i].site, nctx + 1) != 0)
            goto out;
        nctx++;
    }
    for (uint32_t i = 0; i < src->nctxs; i++) {
        cp_mmem_ctx c = src->ctxs[i];
        c.site = map_site(smap, c.site);
        uint32_t v;
        if (c.site && cp_u32map_get(&bysite, c.site, &v)) {
            ctx_add(&ctxs[v - 1], &c);
            ctx_map[i] = v - 1;
        } else if (nctx < CP_MEM_MAX_CTXS) {
            ctxs[nctx] = c;
            if (c.site && cp_u32map_put(&bysite, c.site, nctx + 1) != 0)
                goto out;
            ctx_map[i] = nctx++;
        } else {
            ctx_map[i] = CP_NONE;
            dropped_ctxs++;
        }
    }

    /* stacks, re-interned with remapped frames */
    uint32_t cap_stk = dst->nstacks + src->nstacks;
    uint32_t hcap = 16;
    while (hcap < cap_stk * 2)
        hcap *= 2;
    stacks = malloc((size_t)(cap_stk ? cap_stk : 1) * sizeof *stacks);
    hash = calloc(hcap, sizeof *hash);
    stk_map = malloc((size_t)(src->nstacks ? src->nstacks : 1) * sizeof *stk_map);
    if (!stacks || !hash || !stk_map)
        goto out;
    for (uint32_t i = 0; i < dst->nstacks; i++) {
        /* dst stacks keep their indices (they are distinct already) */
        uint32_t j = stack_intern(stacks, &nstk, hash, hcap, &dst->stacks[i]);
        if (j != i) { /* a duplicate in dst: keep the slot anyway */
            stacks[nstk++] = dst->stacks[i];
        }
    }
    for (uint32_t i = 0; i < src->nstacks; i++) {
        cp_mmem_stack s = src->stacks[i];
        for (uint32_t f = 0; f < s.nframes && f < CP_MEM_STACK_DEPTH; f++)
            s.site[f] = map_site(smap, s.site[f]);
        stk_map[i] = stack_intern(stacks, &nstk, hash, hcap, &s);
    }

    sites = merge_groups(dst->sites, dst->nsites, src->sites, src->nsites, stk_map, ctx_map,
                         CP_MEM_MAX_SITES, &nsites);
    leaks = merge_groups(dst->leaks, dst->nleaks, src->leaks, src->nleaks, stk_map, ctx_map,
                         CP_MEM_MAX_LEAKS, &nleaks);
    if (!sites || !leaks)
        goto out;

    /* processes appended */
    uint32_t np = dst->nprocs + src->nprocs;
    uint64_t dropped_procs = 0;
    if (np > CP_MEM_MAX_PROCS) {
        dropped_procs = np - CP_MEM_MAX_PROCS;
        np = CP_MEM_MAX_PROCS;
    }
    procs = malloc((size_t)(np ? np : 1) * sizeof *procs);
    if (!procs)
        goto out;
    if (dst->nprocs)
        memcpy(procs, dst->procs, (size_t)dst->nprocs * sizeof *procs);
    for (uint32_t i = dst->nprocs; i < np; i++) {
        procs[i] = src->procs[i - dst->nprocs];
        procs[i].loader = map_site(smap, procs[i].loader);
    }

    /* snapshots appended */
    uint32_t nsn = dst->nsnaps + src->nsnaps;
    uint32_t nsg = dst->nsnap_groups + src->nsnap_groups;
    snaps = malloc((size_t)(nsn ? nsn : 1) * sizeof *snaps);
    sgroups = malloc((size_t)(nsg ? nsg : 1) * sizeof *sgroups);
    if (!snaps || !sgroups)
        goto out;
    if (dst->nsnaps)
        memcpy(snaps, dst->snaps, (size_t)dst->nsnaps * sizeof *snaps);
    if (dst->nsnap_groups)
        memcpy(sgroups, dst->snap_groups, (size_t)dst->nsnap_groups * sizeof *sgroups);
    for (uint32_t i = 0; i < src->nsnaps; i++) {
        cp_msnap s = src->snaps[i];
        s.ctx_site = map_site(smap, s.ctx_site);
        s.first += dst->nsnap_groups;
        snaps[dst->nsnaps + i] = s;
    }
    for (uint32_t i = 0; i < src->nsnap_groups; i++) {
        cp_mmem_group g = src->snap_groups[i];
        g.stack = stk_map[g.stack];
        g.ctx = g.ctx == CP_NONE ? CP_NONE : ctx_map[g.ctx];
        sgroups[dst->nsnap_groups + i] = g;
    }

    /* commit: nothing below fails */
    for (int d = 0; d < CP_MEM_NDOMAINS; d++) {
        cp_mmem_domain *a = &dst->domains[d];
        const cp_mmem_domain *b = &src->domains[d];
        a->alloc_count += b->alloc_count;
        a->alloc_bytes += b->alloc_bytes;
        a->free_count += b->free_count;
        a->free_bytes += b->free_bytes;
        a->live_bytes += b->live_bytes;
        a->live_blocks += b->live_blocks;
        if (b->peak_bytes > a->peak_bytes)
            a->peak_bytes = b->peak_bytes;
    }
    if (src->mode > dst->mode)
        dst->mode = src->mode;
    dst->estimated |= src->estimated;
    dst->native |= src->native;
    if (!dst->sample_bytes)
        dst->sample_bytes = src->sample_bytes;
    if (src->stack_depth > dst->stack_depth)
        dst->stack_depth = src->stack_depth;
    dst->live_bytes += src->live_bytes;
    if (src->peak_bytes > dst->peak_bytes)
        dst->peak_bytes = src->peak_bytes;
    if (src->rss_peak > dst->rss_peak)
        dst->rss_peak = src->rss_peak;
    if (!dst->rss_last)
        dst->rss_last = src->rss_last;
    if (src->machine_bytes > dst->machine_bytes)
        dst->machine_bytes = src->machine_bytes;
    for (int g = 0; g < 3; g++) {
        dst->gc.collections[g] += src->gc.collections[g];
        dst->gc.collected[g] += src->gc.collected[g];
        dst->gc.uncollectable[g] += src->gc.uncollectable[g];
        dst->gc.time_ns[g] += src->gc.time_ns[g];
    }
    if (src->gc.max_pause_ns > dst->gc.max_pause_ns)
        dst->gc.max_pause_ns = src->gc.max_pause_ns;
    dst->gc.enabled |= src->gc.enabled;
    dst->own_bytes += src->own_bytes;
    dst->dropped_blocks += src->dropped_blocks;
    dst->dropped_stacks += src->dropped_stacks;
    dst->dropped_snapshots += src->dropped_snapshots;
    dst->dropped_marks += src->dropped_marks;
    dst->dropped_ctxs += src->dropped_ctxs + dropped_ctxs;
    dst->dropped_samples += src->dropped_samples;
    dst->dropped_procs += src->dropped_procs + dropped_procs;
    for (uint32_t i = 0; i < src->ndsnotes; i++) {
        if (dst->ndsnotes == CP_MEM_MAX_DSNOTES)
            break;
        cp_mds_note n = src->dsnotes[i];
        n.loader = map_site(smap, n.loader);
        n.dataset = map_site(smap, n.dataset);
        dst->dsnotes[dst->ndsnotes++] = n;
    }

    free(dst->ctxs);
    dst->ctxs = ctxs;
    dst->nctxs = nctx;
    ctxs = NULL;
    free(dst->stacks);
    dst->stacks = stacks;
    dst->nstacks = nstk;
    stacks = NULL;
    free(dst->sites);
    dst->sites = sites;
    dst->nsites = nsites;
    sites = NULL;
    free(dst->leaks);
    dst->leaks = leaks;
    dst->nleaks = nleaks;
    leaks = NULL;
    free(dst->procs);
    dst->procs = procs;
    dst->nprocs = np;
    procs = NULL;
    free(dst->snaps);
    dst->snaps = snaps;
    dst->nsnaps = nsn;
    snaps = NULL;
    free(dst->snap_groups);
    dst->snap_groups = sgroups;
    dst->nsnap_groups = nsg;
    sgroups = NULL;
    rc = 0;
out:
    free(ctxs);
    free(stacks);
    free(hash);
    free(stk_map);
    free(ctx_map);
    free(sites);
    free(leaks);
    free(procs);
    free(snaps);
    free(sgroups);
    cp_u32map_free(&bysite);
    return rc;
}

/* A frame of a library (the standard library, site-packages, frozen
 * modules): what the user's code called, not the line they would change. */
static int library_file(const char *f) {
    return f[0] == '<' || strstr(f, "/site-packages/") || strstr(f, "/dist-packages/") ||
           strstr(f, "/lib/python3");
}

uint32_t cp_mmem_stack_frame(const struct cp_model *m, uint32_t s) {
    if (!m || s >= m->mem.nstacks || !m->mem.stacks[s].nframes)
        return UINT32_MAX;
    const cp_mmem_stack *st = &m->mem.stacks[s];
    uint32_t nf = st->nframes < CP_MEM_STACK_DEPTH ? st->nframes : CP_MEM_STACK_DEPTH;
    uint32_t with_file = UINT32_MAX;
    for (uint32_t f = 0; f < nf; f++) {
        const cp_msite *si = cp_model_site(m, st->site[f]);
        if (!si || !si->file[0])
            continue;
        if (!library_file(si->file))
            return f;
        if (with_file == UINT32_MAX)
            with_file = f;
    }
    return with_file == UINT32_MAX ? 0 : with_file;
}
