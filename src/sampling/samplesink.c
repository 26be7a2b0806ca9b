/* samplesink.c -- the sample sink (samplesink.h): sampled trees, sampled
 * lines and the bounded timeline of samples.  Runs on the aggregation side
 * only (agg_mu), so nothing here locks; the sample count and the sampler's
 * figures are atomics because the report cache and the sampler read or
 * write them from other threads. */
#include "sampling/samplesink.h"

#include <stdlib.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "core/session.h"
#include "core/tbuf.h"
#include "model/model_lines.h"
#include "sampling/samplesink_priv.h"
#include "sampling/stacktab.h"

/* ---- the 64-bit key map ---- */

static uint32_t hash64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return (uint32_t)k;
}

int cp_skmap_get(const cp_skmap *m, uint64_t key, uint32_t *val) {
    if (!m->cap)
        return 0;
    for (uint32_t j = hash64(key) & (m->cap - 1); m->vals[j]; j = (j + 1) & (m->cap - 1))
        if (m->keys[j] == key) {
            *val = m->vals[j] - 1;
            return 1;
        }
    return 0;
}

static void put_raw(uint64_t *keys, uint32_t *vals, uint32_t cap, uint64_t key, uint32_t v1) {
    uint32_t j = hash64(key) & (cap - 1);
    while (vals[j] && keys[j] != key)
        j = (j + 1) & (cap - 1);
    keys[j] = key;
    vals[j] = v1;
}

int cp_skmap_put(cp_skmap *m, uint64_t key, uint32_t val) {
    if (val == UINT32_MAX)
        return -1;
    if ((uint64_t)(m->n + 1) * 2 > m->cap) {
        uint32_t ncap = m->cap ? m->cap * 2 : 64;
        if (ncap < m->cap)
            return -1;
        uint64_t *nk = calloc(ncap, sizeof *nk);
        uint32_t *nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return -1;
        }
        for (uint32_t i = 0; i < m->cap; i++)
            if (m->vals[i])
                put_raw(nk, nv, ncap, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    uint32_t old;
    if (!cp_skmap_get(m, key, &old))
        m->n++;
    put_raw(m->keys, m->vals, m->cap, key, val + 1);
    return 0;
}

void cp_skmap_free(cp_skmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- growth helpers ---- */

static int grow(void **v, uint32_t *cap, uint32_t need, size_t elem, uint32_t limit) {
    if (need <= *cap)
        return 0;
    if (need > limit)
        return -1;
    uint64_t nc = *cap ? (uint64_t)*cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    if (nc > limit)
        nc = limit;
    void *p = realloc(*v, (size_t)nc * elem);
    if (!p)
        return -1;
    *v = p;
    *cap = (uint32_t)nc;
    return 0;
}

/* ---- folding ---- */

static uint32_t new_node(cp_samplesink *k, uint32_t site, uint32_t parent) {
    if (k->nnodes >= k->max_nodes ||
        grow((void **)&k->nodes, &k->cap_nodes, k->nnodes + 1, sizeof *k->nodes, k->max_nodes) != 0)
        return CP_SNODE_NONE;
    uint32_t i = k->nnodes;
    if (parent != CP_SNODE_NONE &&
        cp_skmap_put(&k->children, (uint64_t)parent << 32 | site, i) != 0)
        return CP_SNODE_NONE;
    cp_snode *n = &k->nodes[k->nnodes++];
    memset(n, 0, sizeof *n);
    n->site = site;
    n->parent = parent;
    n->first_child = n->next_sibling = CP_SNODE_NONE;
    if (parent != CP_SNODE_NONE) {
        cp_snode *p = &k->nodes[parent];
        n->depth = p->depth + 1;
        n->next_sibling = p->first_child;
        p->first_child = i;
    }
    return i;
}

static uint32_t thread_root(cp_samplesink *k, uint64_t tid) {
    uint32_t ti;
    if (cp_skmap_get(&k->tids, tid, &ti))
        return k->threads[ti].root;
    if (grow((void **)&k->threads, &k->cap_threads, k->nthreads + 1, sizeof *k->threads,
             UINT32_MAX / 2) != 0)
        return CP_SNODE_NONE;
    uint32_t root = new_node(k, 0, CP_SNODE_NONE);
    if (root == CP_SNODE_NONE)
        return CP_SNODE_NONE;
    if (cp_skmap_put(&k->tids, tid, k->nthreads) != 0) {
        k->nnodes--; /* the root just made */
        return CP_SNODE_NONE;
    }
    k->threads[k->nthreads++] = (cp_sthread){tid, root, 0};
    return root;
}

static uint32_t child_of(cp_samplesink *k, uint32_t parent, uint32_t site) {
    uint32_t c;
    if (cp_skmap_get(&k->children, (uint64_t)parent << 32 | site, &c))
        return c;
    return new_node(k, site, parent);
}

static void add_line(cp_samplesink *k, uint32_t site, uint32_t line, uint64_t w) {
    if (!line)
        return;
    uint64_t key = (uint64_t)site << 32 | line;
    uint32_t i;
    if (!cp_skmap_get(&k->linemap, key, &i)) {
        if (k->nlines >= CP_MAX_LINES ||
            grow((void **)&k->lines, &k->cap_lines, k->nlines + 1, sizeof *k->lines,
                 CP_MAX_LINES) != 0 ||
            cp_skmap_put(&k->linemap, key, k->nlines) != 0) {
            k->dropped_lines++;
            return;
        }
        i = k->nlines++;
        k->lines[i] = (cp_sline){site, line, 0, 0};
    }
    k->lines[i].samples++;
    k->lines[i].sampled_ns += w;
}

static void keep_sample(cp_samplesink *k, const cp_ssample *x) {
    uint32_t half1 = k->cap_timeline / 2, half2 = k->cap_timeline - half1;
    if (k->nfirst < half1) {
        if (grow((void **)&k->first, &k->cap_first, k->nfirst + 1, sizeof *k->first, half1) != 0) {
            k->timeline_dropped++;
            return;
        }
        k->first[k->nfirst++] = *x;
        return;
    }
    if (half2 == 0) {
        k->timeline_dropped++;
        return;
    }
    if (k->nring < half2) {
        if (grow((void **)&k->ring, &k->cap_ring, k->nring + 1, sizeof *k->ring, half2) != 0) {
            k->timeline_dropped++;
            return;
        }
        k->ring[k->nring++] = *x;
        k->ring_next = k->nring % half2;
        return;
    }
    k->ring[k->ring_next] = *x; /* replaces the oldest */
    k->ring_next = (k->ring_next + 1) % half2;
    k->timeline_dropped++;
}

static void on_sample(cp_samplesink *k, const cp_event *e) {
    uint32_t stack = (uint32_t)((uint64_t)e->value & 0xffffffffu);
    uint64_t w = (uint64_t)e->value >> 32;
    unsigned state = e->flags & CP_SAMPF_STATE_MASK;
    int running = state == CP_SAMPF_RUNNING;
    atomic_fetch_add_explicit(&k->samples, 1, memory_order_relaxed);
    k->running += state == CP_SAMPF_RUNNING;
    k->idle += state == CP_SAMPF_IDLE;
    k->gil += state == CP_SAMPF_GIL;
    k->truncated += (e->flags & CP_SAMPF_TRUNCATED) != 0;

    const cp_sframe *f = NULL;
    uint32_t n = 0;
    int other = stack == CP_STACK_OTHER || cp_stacktab_get(k->tab, stack, &f, &n) != 0;
    if (other)
        stack = CP_STACK_OTHER;

    uint32_t node = thread_root(k, e->aux);
    if (node == CP_SNODE_NONE) {
        k->dropped_nodes++;
        k->oom = 1;
    } else {
        uint64_t lk = (uint64_t)node << 32 | stack;
        uint32_t leaf;
        if (!cp_skmap_get(&k->leaves, lk, &leaf)) {
            /* first time on this thread: make the path, outermost first */
            uint32_t depth = other ? 1 : n, d = 0;
            for (; d < depth; d++) {
                uint32_t c = child_of(k, node, other ? 0 : f[n - 1 - d].site);
                if (c == CP_SNODE_NONE) {
                    k->dropped_nodes++;
                    break;
                }
                node = c;
            }
            leaf = node;
            if (d == depth)
                (void)cp_skmap_put(&k->leaves, lk, leaf); /* a miss only costs time */
        }
        /* the leaf and every ancestor up to the root */
        for (uint32_t x = leaf; x != CP_SNODE_NONE; x = k->nodes[x].parent) {
            cp_snode *y = &k->nodes[x];
            y->samples++;
            y->sampled_ns += w;
            y->samples_running += running;
        }
        node = leaf;
        cp_snode *x = &k->nodes[node];
        x->samples_self++;
        x->sampled_self_ns += w;
    }
    if (!other && n)
        add_line(k, f[0].site, f[0].line, w);
    cp_ssample s = {e->tick, e->aux, stack, (uint32_t)w, (uint16_t)e->flags, {0, 0, 0}};
    keep_sample(k, &s);
}

void cp_samplesink_consume(cp_samplesink *k, uint64_t emitter_tid, const cp_event *ev, uint32_t n) {
    uint64_t seen = 0;
    for (uint32_t i = 0; i < n; i++)
        if (__builtin_expect(ev[i].kind == CP_EV_SAMPLE, 0)) {
            on_sample(k, &ev[i]);
            seen++;
        }
    if (!seen)
        return;
    for (uint32_t i = 0; i < k->nemitters; i++)
        if (k->emitters[i].os_tid == emitter_tid) {
            k->emitters[i].events += seen;
            return;
        }
    if (k->nemitters < sizeof k->emitters / sizeof k->emitters[0])
        k->emitters[k->nemitters++] = (cp_semitter){emitter_tid, seen};
}

int cp_samplesink_only_samples(const cp_samplesink *k, uint64_t os_tid, uint64_t events_total) {
    for (uint32_t i = 0; k && i < k->nemitters; i++)
        if (k->emitters[i].os_tid == os_tid)
            return k->emitters[i].events >= events_total;
    return 0;
}

void cp_samplesink_reset(cp_samplesink *k) {
    if (!k)
        return;
    free(k->nodes);
    free(k->threads);
    free(k->lines);
    free(k->first);
    free(k->ring);
    cp_skmap_free(&k->children);
    cp_skmap_free(&k->leaves);
    cp_skmap_free(&k->tids);
    cp_skmap_free(&k->linemap);
    k->nodes = NULL;
    k->threads = NULL;
    k->lines = NULL;
    k->first = k->ring = NULL;
    k->nnodes = k->cap_nodes = k->nthreads = k->cap_threads = k->nlines = k->cap_lines = 0;
    k->nfirst = k->cap_first = k->nring = k->ring_next = k->cap_ring = 0;
    k->nemitters = 0;
    k->timeline_dropped = k->running = k->idle = k->gil = 0;
    k->dropped_nodes = k->dropped_lines = k->truncated = 0;
    k->oom = 0;
    atomic_store(&k->samples, 0);
    atomic_store(&k->ticks, 0);
    atomic_store(&k->missed_ticks, 0);
    atomic_store(&k->read_errors, 0);
    atomic_store(&k->dropped_samples, 0);
    atomic_store(&k->sampler_cpu_ns, 0);
}

cp_samplesink *cp_samplesink_new(const codeprof_config *cfg, struct cp_stacktab *tab) {
    cp_samplesink *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->tab = tab;
    k->max_nodes = cfg->max_nodes ? cfg->max_nodes : (1u << 20);
    k->cap_timeline = cfg->max_samples;
    k->mode = cfg->sample_mode == 1;
    k->native = (cfg->flags & CODEPROF_CFG_SAMPLE_NATIVE) != 0;
    k->interval_ns = (uint64_t)(cfg->sample_interval_s * 1e9 + 0.5);
    return k;
}

void cp_samplesink_free(cp_samplesink *k) {
    if (!k)
        return;
    cp_samplesink_reset(k);
    free(k);
}

static void consume_cb(void *ctx, const struct cp_tbuf *t, const cp_event *ev, uint32_t n) {
    cp_samplesink_consume(ctx, t ? t->os_tid : 0, ev, n);
}
static void reset_cb(void *ctx) { cp_samplesink_reset(ctx); }
static void destroy_cb(void *ctx) { cp_samplesink_free(ctx); }

cp_samplesink *cp_samplesink_register(struct codeprof_session *s, struct cp_stacktab *tab) {
    cp_samplesink *k = cp_samplesink_new(&s->cfg, tab);
    if (!k)
        return NULL;
    cp_sink sk = {"sampling", k, consume_cb, reset_cb, destroy_cb};
    if (cp_session_add_sink(s, &sk) != 0) {
        cp_samplesink_free(k);
        return NULL;
    }
    return k;
}

uint64_t cp_samplesink_count(const cp_samplesink *k) {
    return k ? atomic_load_explicit(&((cp_samplesink *)k)->samples, memory_order_relaxed) : 0;
}

void cp_samplesink_add_sampler_stats(cp_samplesink *k, uint64_t ticks, uint64_t missed_ticks,
                                     uint64_t read_errors, uint64_t dropped_samples,
                                     uint64_t sampler_cpu_ns) {
    if (!k)
        return;
    atomic_fetch_add(&k->ticks, ticks);
    atomic_fetch_add(&k->missed_ticks, missed_ticks);
    atomic_fetch_add(&k->read_errors, read_errors);
    atomic_fetch_add(&k->dropped_samples, dropped_samples);
    atomic_fetch_add(&k->sampler_cpu_ns, sampler_cpu_ns);
}

uint64_t cp_samplesink_bytes(const cp_samplesink *k) {
    if (!k)
        return 0;
    return sizeof *k + (uint64_t)k->cap_nodes * sizeof(cp_snode) +
           (uint64_t)k->cap_threads * sizeof(cp_sthread) +
           (uint64_t)k->cap_lines * sizeof(cp_sline) +
           ((uint64_t)k->cap_first + k->cap_ring) * sizeof(cp_ssample) +
           ((uint64_t)k->children.cap + k->leaves.cap + k->tids.cap + k->linemap.cap) *
               (sizeof(uint64_t) + sizeof(uint32_t));
}
