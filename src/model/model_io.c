/* model_io.c -- the binary model file: writer, total reader, and the
 * parent's merge of a directory of worker models (model_io.h). */
#include "model/model_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "model/model_lines.h"
#include "model/model_sample.h"

static const char mio_magic[8] = {'C', 'P', 'M', 'O', 'D', 'E', 'L', '\0'};
static const char mio_trailer[8] = {'C', 'P', 'M', 'E', 'N', 'D', '\0', '\0'};

/* Meta counters of the header, in file order. */
enum {
    MC_START_UNIX_NS,
    MC_DURATION_NS,
    MC_EVENTS_TOTAL,
    MC_DROPPED_EVENTS,
    MC_DROPPED_NODES,
    MC_UNMATCHED_EXITS,
    MC_TRUNCATED,
    MC_ALLOC_FAILURES,
    MC_DROPPED_FULL,
    MC_DROPPED_REENTRANT,
    MC_DROPPED_NOTHREAD,
    MC_DROPPED_SAMPLES,
    MC_DROPPED_SITES,
    MC_NODES_CUT,
    MC_EXITED_THREADS,
    MC_POOL_BUFFERS,
    MC_MERGED,
    MC_APPROX_PERCENTILES,
    CP_MIO_NCOUNTERS
};

/* 32-bit counters of the model that merges sum: small enough that
 * CP_MIO_MAX_FILES of them fit in 32 bits. */
#define MIO_MAX_U32_COUNTER (1u << 19)

#define HDR_BYTES     (8u + 4 + 4 + 8 + 4 + 4 + 4 * 4 + 8u * CP_MIO_NCOUNTERS)
#define SITE_FIXED    16u /* + name + NUL + file + NUL */
#define THREAD_BYTES  40u
#define NODE_BYTES    (5u * 4 + 11u * 8 + 2u * 8 + 8 + 5u * 8)
#define FUNC_BYTES    (4u + 10u * 8 + 2u * 8 + 8 + 5u * 8)
/* version 2: the sampling section and the lines section */
#define SAMP_NCOUNTERS 13u
#define SAMP_HDR_BYTES (6u * 4 + 8u * SAMP_NCOUNTERS)
#define SFRAME_BYTES   8u
#define SSTACK_BYTES   8u
#define SSAMPLE_BYTES  (8u + 8 + 4 + 4 + 4 + 4 + 2 + 2)
#define LINES_HDR_BYTES (4u + 4 + 8)
#define LINE_FIXED     (4u + 4 + 4u * 8 + 4) /* + text */
#define LINE_NOTEXT    UINT32_MAX
#define LINE_MAX_TEXT  200u
#define TRAILER_BYTES 8u

/* ---- encoding ---------------------------------------------------------- */

static uint8_t *put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

/* Values are saturated to what the reader accepts. */
static uint8_t *put_val(uint8_t *p, uint64_t v) {
    return put_u64(p, v > CP_MIO_MAX_VALUE ? CP_MIO_MAX_VALUE : v);
}

static uint8_t *put_sval(uint8_t *p, int64_t v) {
    int64_t lim = (int64_t)CP_MIO_MAX_VALUE;
    return put_u64(p, (uint64_t)(v > lim ? lim : v < -lim ? -lim : v));
}

static uint8_t *put_count32(uint8_t *p, uint32_t v) {
    return put_u64(p, v > MIO_MAX_U32_COUNTER ? MIO_MAX_U32_COUNTER : v);
}

static uint32_t link_of(const uint32_t *nmap, uint32_t nnodes, uint32_t old) {
    return old < nnodes ? nmap[old] : CP_NONE;
}

/* What of the sampling section is written: all of it within the reader's
 * bounds, else the counters only (the arrays not written are counted as
 * dropped: stacks in dropped_stacks, samples in timeline_dropped). */
typedef struct samp_keep {
    uint32_t nframes, nstacks, ntimeline;
} samp_keep;

static samp_keep samp_plan(const cp_msampling *ms) {
    samp_keep k = {ms->nframes, ms->nstacks, ms->ntimeline};
    if (k.nstacks > CP_MIO_MAX_SSTACKS || k.nframes > CP_MIO_MAX_SFRAMES)
        k.nframes = k.nstacks = k.ntimeline = 0; /* samples would name no stack */
    if (k.ntimeline > CP_MIO_MAX_STIMELINE || k.nstacks == 0)
        k.ntimeline = 0;
    for (uint32_t i = 1; i < k.ntimeline; i++)
        if (ms->timeline[i].t_ns < ms->timeline[i - 1].t_ns) {
            k.ntimeline = 0; /* the reader takes samples in time order only */
            break;
        }
    return k;
}

static uint8_t *put_sampling(uint8_t *p, const cp_msampling *ms, uint32_t nsites,
                             const samp_keep *k) {
    p = put_u32(p, ms->enabled ? 1 : 0);
    p = put_u32(p, ms->mode ? 1 : 0);
    p = put_u32(p, ms->native ? 1 : 0);
    p = put_u32(p, k->nframes);
    p = put_u32(p, k->nstacks);
    p = put_u32(p, k->ntimeline);
    p = put_val(p, ms->interval_ns);
    p = put_val(p, ms->samples);
    p = put_val(p, ms->samples_running);
    p = put_val(p, ms->samples_idle);
    p = put_val(p, ms->samples_gil);
    p = put_val(p, ms->ticks);
    p = put_val(p, ms->missed_ticks);
    p = put_val(p, ms->read_errors);
    p = put_val(p, ms->dropped_stacks + (k->nstacks < ms->nstacks ? ms->nstacks : 0));
    p = put_val(p, ms->dropped_samples);
    p = put_val(p, ms->timeline_dropped + (ms->ntimeline - k->ntimeline));
    p = put_val(p, ms->threads);
    p = put_val(p, ms->sampler_cpu_ns);
    for (uint32_t i = 0; i < k->nframes; i++) {
        p = put_u32(p, ms->frames[i].site <= nsites ? ms->frames[i].site : 0);
        p = put_u32(p, ms->frames[i].line);
    }
    for (uint32_t i = 0; i < k->nstacks; i++) {
        const cp_mstack *st = &ms->stacks[i];
        int ok = st->n <= CP_MIO_MAX_SDEPTH && (uint64_t)st->first + st->n <= k->nframes;
        p = put_u32(p, ok ? st->first : 0);
        p = put_u32(p, ok ? st->n : 0);
    }
    for (uint32_t i = 0; i < k->ntimeline; i++) {
        const cp_msample *x = &ms->timeline[i];
        p = put_u64(p, x->t_ns);
        p = put_u64(p, x->os_tid);
        p = put_u32(p, (uint32_t)x->pid);
        p = put_u32(p, (uint32_t)(x->worker < -1 ? -1 : x->worker));
        p = put_u32(p, x->stack < k->nstacks ? x->stack : 0);
        p = put_u32(p, x->weight_ns);
        p = put_u16(p, x->state);
        p = put_u16(p, 0);
    }
    return p;
}

/* A row is written when its site is one of the file's and the table holds
 * at most CP_MAX_LINES rows (a finished model's does). */
static int line_written(const cp_mlines *ml, uint32_t i, uint32_t nsites) {
    return ml->v[i].site >= 1 && ml->v[i].site <= nsites && i < CP_MAX_LINES;
}

static size_t line_text_len(const cp_mlines *ml, uint32_t i) {
    const char *t = cp_mlines_text(ml, i);
    if (!t)
        return 0;
    size_t n = strlen(t);
    return n > LINE_MAX_TEXT ? LINE_MAX_TEXT : n;
}

static size_t lines_bytes(const cp_mlines *ml, uint32_t nsites) {
    size_t b = LINES_HDR_BYTES;
    for (uint32_t i = 0; i < ml->n; i++)
        if (line_written(ml, i, nsites))
            b += LINE_FIXED + line_text_len(ml, i);
    return b;
}

static uint8_t *put_lines(uint8_t *p, const cp_mlines *ml, uint32_t nsites) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < ml->n; i++)
        n += line_written(ml, i, nsites);
    p = put_u32(p, ml->exact ? 1 : 0);
    p = put_u32(p, n);
    p = put_val(p, ml->dropped + (ml->n - n));
    for (uint32_t i = 0; i < ml->n; i++) {
        if (!line_written(ml, i, nsites))
            continue;
        const cp_mline *r = &ml->v[i];
        p = put_u32(p, r->site);
        p = put_u32(p, r->line);
        p = put_val(p, r->hits);
        p = put_val(p, r->time_ns);
        p = put_val(p, r->samples);
        p = put_val(p, r->sampled_ns);
        const char *t = cp_mlines_text(ml, i);
        size_t tl = line_text_len(ml, i);
        p = put_u32(p, t ? (uint32_t)tl : LINE_NOTEXT);
        if (tl) {
            memcpy(p, t, tl);
            p += tl;
        }
    }
    return p;
}

cp_mio_status cp_model_encode(const cp_model *m, int32_t worker, uint32_t max_nodes, void **out,
                              size_t *len, uint64_t *cut) {
    *out = NULL;
    *len = 0;
    *cut = 0;
    if (!m || m->builder)
        return CP_MIO_EFORMAT;
    uint32_t nsites = m->sites.n ? m->sites.n - 1 : 0;
    if (nsites > CP_MIO_MAX_SITES)
        return CP_MIO_ETOOBIG;
    if (max_nodes == 0 || max_nodes > CP_MIO_MAX_NODES)
        max_nodes = CP_MIO_MAX_NODES;

    /* Nodes kept: preorder, thread by thread, until the budget is spent. */
    uint32_t nn = m->nnodes;
    uint32_t *nmap = malloc((size_t)(nn ? nn : 1) * sizeof *nmap);
    uint32_t *order = malloc((size_t)(nn < max_nodes ? (nn ? nn : 1) : max_nodes) * sizeof *order);
    uint32_t *troot = malloc((size_t)(m->nthreads ? m->nthreads : 1) * sizeof *troot);
    uint32_t *depth = NULL;
    uint8_t *buf = NULL;
    cp_mio_status st = CP_MIO_ENOMEM;
    if (!nmap || !order || !troot)
        goto out;
    for (uint32_t i = 0; i < nn; i++)
        nmap[i] = CP_NONE;
    for (uint32_t t = 0; t < m->nthreads; t++)
        troot[t] = CP_NONE;
    uint32_t kept = 0, nthreads = 0;
    for (uint32_t t = 0; t < m->nthreads && nthreads < CP_MIO_MAX_THREADS; t++) {
        uint32_t root = m->threads[t].root;
        if (root >= nn || nmap[root] != CP_NONE || kept == max_nodes)
            continue;
        troot[t] = kept;
        nthreads++;
        uint32_t cur = root;
        while (cur != CP_NONE && kept < max_nodes && nmap[cur] == CP_NONE) {
            nmap[cur] = kept;
            order[kept++] = cur;
            uint32_t fc = m->nodes[cur].first_child;
            if (fc < nn) {
                cur = fc;
                continue;
            }
            /* climb until a node with a next sibling, stopping at the root */
            uint32_t next = CP_NONE;
            while (cur != root && cur < nn) {
                uint32_t sib = m->nodes[cur].next_sibling;
                if (sib < nn) {
                    next = sib;
                    break;
                }
                cur = m->nodes[cur].parent;
            }
            cur = next;
        }
    }
    *cut = nn - kept;

    size_t total =
        HDR_BYTES + (size_t)nthreads * THREAD_BYTES + (size_t)kept * NODE_BYTES + TRAILER_BYTES;
    uint32_t nfuncs = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++)
        if (m->funcs[i].site >= 1 && m->funcs[i].site <= nsites)
            nfuncs++;
    total += (size_t)nfuncs * FUNC_BYTES;
    samp_keep sk = samp_plan(&m->samp);
    total += SAMP_HDR_BYTES + (size_t)sk.nframes * SFRAME_BYTES +
             (size_t)sk.nstacks * SSTACK_BYTES + (size_t)sk.ntimeline * SSAMPLE_BYTES;
    total += lines_bytes(&m->lines, nsites);
    for (uint32_t i = 1; i <= nsites; i++) {
        const cp_msite *s = &m->sites.v[i];
        size_t ln = strlen(s->name), lf = strlen(s->file);
        if (ln == 0 || ln > CP_MIO_MAX_TEXT || lf > CP_MIO_MAX_TEXT) {
            st = CP_MIO_ETOOBIG;
            goto out;
        }
        total += SITE_FIXED + ln + lf + 2;
    }
    if (total > CP_MIO_MAX_BYTES) {
        st = CP_MIO_ETOOBIG;
        goto out;
    }
    buf = malloc(total);
    depth = malloc((size_t)(kept ? kept : 1) * sizeof *depth);
    if (!buf || !depth)
        goto out;

    uint8_t *p = buf;
    memcpy(p, mio_magic, 8);
    p += 8;
    p = put_u32(p, CP_MIO_VERSION);
    p = put_u32(p, 0);
    p = put_u64(p, total);
    p = put_u32(p, (uint32_t)m->pid);
    p = put_u32(p, (uint32_t)worker);
    p = put_u32(p, nsites);
    p = put_u32(p, nthreads);
    p = put_u32(p, kept);
    p = put_u32(p, nfuncs);
    p = put_u64(p, m->start_unix_ns > (UINT64_MAX >> 1) ? (UINT64_MAX >> 1) : m->start_unix_ns);
    p = put_val(p, m->duration_ns);
    p = put_val(p, m->events_total);
    p = put_val(p, m->dropped_events);
    p = put_val(p, m->dropped_nodes);
    p = put_val(p, m->unmatched_exits);
    p = put_val(p, m->truncated);
    p = put_val(p, m->alloc_failures);
    p = put_val(p, m->dropped_full);
    p = put_val(p, m->dropped_reentrant);
    p = put_val(p, m->dropped_nothread);
    p = put_val(p, m->dropped_samples);
    p = put_val(p, m->dropped_sites);
    p = put_val(p, *cut);
    p = put_count32(p, m->exited_threads);
    p = put_count32(p, m->pool_buffers);
    p = put_count32(p, m->merged);
    p = put_u64(p, m->approx_percentiles ? 1 : 0);

    for (uint32_t i = 1; i <= nsites; i++) {
        const cp_msite *s = &m->sites.v[i];
        uint32_t ln = (uint32_t)strlen(s->name), lf = (uint32_t)strlen(s->file);
        p = put_u32(p, s->line);
        p = put_u16(p, s->kind);
        p = put_u16(p, 0);
        p = put_u32(p, ln);
        p = put_u32(p, lf);
        memcpy(p, s->name, ln + 1);
        p += ln + 1;
        memcpy(p, s->file, lf + 1);
        p += lf + 1;
    }

    for (uint32_t t = 0, w = 0; t < m->nthreads && w < nthreads; t++) {
        const cp_mthread *th = &m->threads[t];
        if (th->root >= nn || nmap[th->root] != troot[t] || troot[t] >= kept)
            continue;
        w++;
        p = put_u64(p, th->os_tid);
        p = put_u32(p, (uint32_t)th->pid);
        p = put_u32(p, (uint32_t)(th->worker < -1 ? -1 : th->worker));
        p = put_u32(p, th->index);
        p = put_u32(p, troot[t]);
        p = put_val(p, th->events);
        p = put_val(p, th->dropped);
    }

    for (uint32_t k = 0; k < kept; k++) {
        const cp_mnode *n = &m->nodes[order[k]];
        uint32_t parent = link_of(nmap, nn, n->parent);
        int is_root = parent == CP_NONE || parent >= k;
        if (is_root)
            parent = CP_NONE;
        depth[k] = is_root ? 0 : depth[parent] + 1;
        p = put_u32(p, is_root ? 0 : (n->site <= nsites ? n->site : 0));
        p = put_u32(p, parent);
        p = put_u32(p, link_of(nmap, nn, n->first_child));
        p = put_u32(p, is_root ? CP_NONE : link_of(nmap, nn, n->next_sibling));
        p = put_u32(p, depth[k]);
        p = put_val(p, n->count);
        p = put_val(p, n->incl_ns);
        p = put_val(p, n->self_ns);
        p = put_val(p, n->cpu_ns);
        p = put_val(p, n->cpu_count);
        p = put_val(p, n->min_ns);
        p = put_val(p, n->max_ns);
        p = put_val(p, n->p50_ns);
        p = put_val(p, n->p95_ns);
        p = put_val(p, n->p99_ns);
        p = put_val(p, n->truncated);
        p = put_sval(p, n->rss_delta_sum);
        p = put_sval(p, n->rss_delta_max);
        p = put_val(p, n->rss_count);
        p = put_val(p, n->samples);
        p = put_val(p, n->samples_self);
        p = put_val(p, n->samples_running);
        p = put_val(p, n->sampled_ns);
        p = put_val(p, n->sampled_self_ns);
    }

    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_mfunc *f = &m->funcs[i];
        if (f->site < 1 || f->site > nsites)
            continue;
        p = put_u32(p, f->site);
        p = put_val(p, f->calls);
        p = put_val(p, f->incl_ns);
        p = put_val(p, f->self_ns);
        p = put_val(p, f->cpu_ns);
        p = put_val(p, f->cpu_count);
        p = put_val(p, f->min_ns);
        p = put_val(p, f->max_ns);
        p = put_val(p, f->p50_ns);
        p = put_val(p, f->p95_ns);
        p = put_val(p, f->p99_ns);
        p = put_sval(p, f->rss_delta_sum);
        p = put_sval(p, f->rss_delta_max);
        p = put_val(p, f->rss_count);
        p = put_val(p, f->samples);
        p = put_val(p, f->samples_self);
        p = put_val(p, f->samples_running);
        p = put_val(p, f->sampled_ns);
        p = put_val(p, f->sampled_self_ns);
    }
    p = put_sampling(p, &m->samp, nsites, &sk);
    p = put_lines(p, &m->lines, nsites);
    memcpy(p, mio_trailer, 8);
    p += 8;
    if ((size_t)(p - buf) != total) { /* cannot happen: sizes computed above */
        st = CP_MIO_EFORMAT;
        goto out;
    }
    *out = buf;
    *len = total;
    buf = NULL;
    st = CP_MIO_OK;
out:
    free(buf);
    free(depth);
    free(nmap);
    free(order);
    free(troot);
    return st;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

cp_mio_status cp_model_write_file(const cp_model *m, const char *dir, int32_t worker, uint64_t *cut,
                                  codeprof_error *err) {
    uint64_t cut_local = 0;
    if (!cut)
        cut = &cut_local;
    *cut = 0;
    if (!m || !dir) {
        cp_error_set(err, CODEPROF_EINVAL, "dir", "model and directory are required");
        return CP_MIO_EWRITE;
    }
    void *buf = NULL;
    size_t len = 0;
    cp_mio_status st = cp_model_encode(m, worker, 0, &buf, &len, cut);
    if (st != CP_MIO_OK) {
        cp_error_set(err, st == CP_MIO_ENOMEM ? CODEPROF_ENOMEM : CODEPROF_EIO, "model",
                     "cannot encode the worker model (%s)",
                     st == CP_MIO_ETOOBIG ? "more sites, text or bytes than a model file holds"
                                          : "out of memory");
        return st;
    }
    char path[4096], tmp[4096];
    int np = snprintf(path, sizeof path, "%s/%d%s", dir, m->pid, CP_MODEL_SUFFIX);
    int nt = snprintf(tmp, sizeof tmp, "%s/.%d%s.tmp", dir, m->pid, CP_MODEL_SUFFIX);
    if (np < 0 || nt < 0 || (size_t)np >= sizeof path || (size_t)nt >= sizeof tmp) {
        free(buf);
        cp_error_set(err, CODEPROF_EINVAL, "dir", "spool directory path too long (%zu bytes)",
                     strlen(dir));
        return CP_MIO_EWRITE;
    }
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(tmp, flags, 0600);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) /* left by a killed writer */
        fd = open(tmp, flags, 0600);
    int e = 0;
    const char *what = "create";
    if (fd < 0) {
        e = errno;
    } else {
        if (write_all(fd, buf, len) != 0) {
            e = errno;
            what = "write";
        }
        if (close(fd) != 0 && !e) {
            e = errno;
            what = "close";
        }
        if (!e && rename(tmp, path) != 0) {
            e = errno;
            what = "rename";
        }
        if (e)
            unlink(tmp);
    }
    free(buf);
    if (e) {
        cp_error_set(err, CODEPROF_EIO, "path", "cannot %s worker model '%s': %s", what,
                     fd < 0 ? tmp : path, strerror(e));
        return CP_MIO_EWRITE;
    }
    return CP_MIO_OK;
}

/* ---- decoding ---------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t left;
    int bad;
} rd;

static const uint8_t *take(rd *r, size_t n) {
    if (r->bad || r->left < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    r->left -= n;
    return q;
}

static uint16_t get_u16(rd *r) {
    const uint8_t *q = take(r, 2);
    return q ? (uint16_t)(q[0] | (uint16_t)q[1] << 8) : 0;
}

static uint32_t get_u32(rd *r) {
    const uint8_t *q = take(r, 4);
    uint32_t v = 0;
    for (int i = 0; q && i < 4; i++)
        v |= (uint32_t)q[i] << (8 * i);
    return v;
}

static uint64_t get_u64(rd *r) {
    const uint8_t *q = take(r, 8);
    uint64_t v = 0;
    for (int i = 0; q && i < 8; i++)
        v |= (uint64_t)q[i] << (8 * i);
    return v;
}

/* A value bounded by CP_MIO_MAX_VALUE. */
static uint64_t get_val(rd *r) {
    uint64_t v = get_u64(r);
    if (v > CP_MIO_MAX_VALUE)
        r->bad = 1;
    return v;
}

static int64_t get_sval(rd *r) {
    uint64_t u = get_u64(r);
    int64_t v = u > (uint64_t)INT64_MAX ? -(int64_t)(~u) - 1 : (int64_t)u; /* two's complement */
    int64_t lim = (int64_t)CP_MIO_MAX_VALUE;
    if (v > lim || v < -lim)
        r->bad = 1;
    return v;
}

static cp_mio_status decode_sites(rd *r, cp_model *m, uint32_t nsites) {
    for (uint32_t i = 1; i <= nsites; i++) {
        uint32_t line = get_u32(r);
        uint16_t kind = get_u16(r);
        uint16_t pad = get_u16(r);
        uint32_t ln = get_u32(r), lf = get_u32(r);
        if (r->bad || pad != 0 || kind >= CODEPROF_SITE_KIND_COUNT_ || ln == 0 ||
            ln > CP_MIO_MAX_TEXT || lf > CP_MIO_MAX_TEXT)
            return CP_MIO_EFORMAT;
        const char *name = (const char *)take(r, (size_t)ln + 1);
        const char *file = name ? (const char *)take(r, (size_t)lf + 1) : NULL;
        if (!name || !file || name[ln] != '\0' || file[lf] != '\0' || memchr(name, 0, ln) ||
            memchr(file, 0, lf))
            return CP_MIO_EFORMAT;
        uint32_t idx = cp_model_intern_site(m, name, file, line, kind);
        if (idx == 0)
            return CP_MIO_ENOMEM;
        if (idx != i) /* the same site twice */
            return CP_MIO_EFORMAT;
    }
    return CP_MIO_OK;
}

/* Every node reached exactly once from its thread's root, links ordered
 * (so no walk over them can loop), threads rooted at distinct roots. */
static cp_mio_status check_tree(const cp_model *m) {
    uint32_t nn = m->nnodes;
    uint8_t *seen = calloc(nn ? nn : 1, 1);
    if (!seen)
        return CP_MIO_ENOMEM;
    cp_mio_status st = CP_MIO_EFORMAT;
    for (uint32_t i = 0; i < nn; i++) {
        for (uint32_t c = m->nodes[i].first_child; c != CP_NONE; c = m->nodes[c].next_sibling) {
            /* c > i (first child) or c > previous sibling: checked at decode */
            if (m->nodes[c].parent != i || seen[c])
                goto out;
            seen[c] = 1;
        }
    }
    for (uint32_t t = 0; t < m->nthreads; t++) {
        uint32_t root = m->threads[t].root;
        if (m->nodes[root].parent != CP_NONE || seen[root])
            goto out;
        seen[root] = 2;
    }
    for (uint32_t i = 0; i < nn; i++)
        if (!seen[i]) /* unreachable, or a root no thread owns */
            goto out;
    st = CP_MIO_OK;
out:
    free(seen);
    return st;
}

/* The sampling section: counts checked against the bytes left before any
 * allocation, every frame's site, every stack's range, every sample's
 * stack index checked. */
static cp_mio_status decode_sampling(rd *r, cp_msampling *ms, uint32_t nsites) {
    uint32_t en = get_u32(r), mode = get_u32(r), native = get_u32(r);
    uint32_t nframes = get_u32(r), nstacks = get_u32(r), ntl = get_u32(r);
    uint64_t c[SAMP_NCOUNTERS];
    for (uint32_t i = 0; i < SAMP_NCOUNTERS; i++)
        c[i] = get_val(r);
    if (r->bad || en > 1 || mode > 1 || native > 1 || nframes > CP_MIO_MAX_SFRAMES ||
        nstacks > CP_MIO_MAX_SSTACKS || ntl > CP_MIO_MAX_STIMELINE || (ntl && !nstacks))
        return CP_MIO_EFORMAT;
    uint64_t need = (uint64_t)nframes * SFRAME_BYTES + (uint64_t)nstacks * SSTACK_BYTES +
                    (uint64_t)ntl * SSAMPLE_BYTES;
    if (need > r->left)
        return CP_MIO_EFORMAT;
    ms->enabled = (int)en;
    ms->mode = (int)mode;
    ms->native = (int)native;
    ms->interval_ns = c[0];
    ms->samples = c[1];
    ms->samples_running = c[2];
    ms->samples_idle = c[3];
    ms->samples_gil = c[4];
    ms->ticks = c[5];
    ms->missed_ticks = c[6];
    ms->read_errors = c[7];
    ms->dropped_stacks = c[8];
    ms->dropped_samples = c[9];
    ms->timeline_dropped = c[10];
    ms->threads = c[11];
    ms->sampler_cpu_ns = c[12];
    ms->frames = malloc((size_t)(nframes ? nframes : 1) * sizeof *ms->frames);
    ms->stacks = malloc((size_t)(nstacks ? nstacks : 1) * sizeof *ms->stacks);
    ms->timeline = malloc((size_t)(ntl ? ntl : 1) * sizeof *ms->timeline);
    if (!ms->frames || !ms->stacks || !ms->timeline)
        return CP_MIO_ENOMEM;
    for (uint32_t i = 0; i < nframes; i++) {
        ms->frames[i].site = get_u32(r);
        ms->frames[i].line = get_u32(r);
        if (ms->frames[i].site > nsites)
            return CP_MIO_EFORMAT;
    }
    ms->nframes = nframes;
    for (uint32_t i = 0; i < nstacks; i++) {
        ms->stacks[i].first = get_u32(r);
        ms->stacks[i].n = get_u32(r);
        if (ms->stacks[i].n > CP_MIO_MAX_SDEPTH ||
            (uint64_t)ms->stacks[i].first + ms->stacks[i].n > nframes)
            return CP_MIO_EFORMAT;
    }
    ms->nstacks = nstacks;
    uint64_t prev = 0;
    for (uint32_t i = 0; i < ntl; i++) {
        cp_msample *x = &ms->timeline[i];
        memset(x, 0, sizeof *x);
        x->t_ns = get_u64(r);
        x->os_tid = get_u64(r);
        x->pid = (int32_t)get_u32(r);
        x->worker = (int32_t)get_u32(r);
        x->stack = get_u32(r);
        x->weight_ns = get_u32(r);
        x->state = get_u16(r);
        uint16_t pad = get_u16(r);
        if (r->bad || pad != 0 || x->worker < -1 || x->stack >= nstacks || x->t_ns < prev)
            return CP_MIO_EFORMAT; /* in time order, as the merge needs */
        prev = x->t_ns;
    }
    ms->ntimeline = ntl;
    return r->bad ? CP_MIO_EFORMAT : CP_MIO_OK;
}

static cp_mio_status decode_lines(rd *r, cp_mlines *ml, uint32_t nsites) {
    uint32_t exact = get_u32(r), n = get_u32(r);
    uint64_t dropped = get_val(r);
    if (r->bad || exact > 1 || n > CP_MAX_LINES || (uint64_t)n * LINE_FIXED > r->left)
        return CP_MIO_EFORMAT;
    ml->exact = (int)exact;
    ml->dropped = dropped;
    uint32_t prev_site = 0, prev_line = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t site = get_u32(r), line = get_u32(r);
        uint64_t hits = get_val(r), t = get_val(r), smp = get_val(r), sns = get_val(r);
        uint32_t tl = get_u32(r);
        if (r->bad || site == 0 || site > nsites || (tl != LINE_NOTEXT && tl > LINE_MAX_TEXT))
            return CP_MIO_EFORMAT;
        /* rows of a finished table: sorted by (site, line), no duplicate */
        if (i > 0 && (site < prev_site || (site == prev_site && line <= prev_line)))
            return CP_MIO_EFORMAT;
        prev_site = site;
        prev_line = line;
        const char *text = NULL;
        if (tl != LINE_NOTEXT && tl > 0) {
            text = (const char *)take(r, tl);
            if (!text || memchr(text, 0, tl) || memchr(text, '\n', tl))
                return CP_MIO_EFORMAT;
        }
        if (ml->n != i || cp_mlines_add(ml, site, line, hits, t, smp, sns) != 0 || ml->n != i + 1)
            return CP_MIO_ENOMEM;
        ml->dropped = dropped; /* cp_mlines_add counts nothing on success */
        if (tl != LINE_NOTEXT && cp_mlines_set_text(ml, i, text ? text : "", tl) != 0)
            return CP_MIO_ENOMEM;
    }
    return CP_MIO_OK;
}

const char *cp_mio_status_text(cp_mio_status st) {
    switch (st) {
    case CP_MIO_OK:
        return "ok";
    case CP_MIO_EOPEN:
        return "cannot open or read the file";
    case CP_MIO_ENOTREG:
        return "not a regular file";
    case CP_MIO_EFORMAT:
        return "corrupt or truncated model file";
    case CP_MIO_ENOMEM:
        return "out of memory";
    case CP_MIO_ETOOBIG:
        return "larger than a model file may be";
    case CP_MIO_EWRITE:
        return "cannot write the model file";
    case CP_MIO_EVERSION:
        return "model file of another format version (written by another codeprof release)";
    }
    return "unknown status";
}

cp_mio_status cp_model_decode(const void *buf, size_t len, cp_model **out, int32_t *worker) {
    *out = NULL;
    *worker = -1;
    if (!buf || len < (size_t)HDR_BYTES + TRAILER_BYTES)
        return CP_MIO_EFORMAT;
    if ((uint64_t)len > CP_MIO_MAX_BYTES)
        return CP_MIO_ETOOBIG;
    rd r = {buf, len, 0};
    const uint8_t *mg = take(&r, 8);
    if (memcmp(mg, mio_magic, 8) != 0)
        return CP_MIO_EFORMAT;
    uint32_t version = get_u32(&r), flags = get_u32(&r);
    uint64_t stated = get_u64(&r);
    if (version != CP_MIO_VERSION)
        return CP_MIO_EVERSION;
    if (flags != 0 || stated != (uint64_t)len)
        return CP_MIO_EFORMAT;
    if (memcmp((const uint8_t *)buf + len - TRAILER_BYTES, mio_trailer, TRAILER_BYTES) != 0)
        return CP_MIO_EFORMAT;
    r.left -= TRAILER_BYTES; /* the sections end where the trailer starts */
    int32_t pid = (int32_t)get_u32(&r);
    int32_t wid = (int32_t)get_u32(&r);
    uint32_t nsites = get_u32(&r), nthreads = get_u32(&r), nnodes = get_u32(&r);
    uint32_t nfuncs = get_u32(&r);
    if (wid < -1 || nsites > CP_MIO_MAX_SITES || nthreads > CP_MIO_MAX_THREADS ||
        nnodes > CP_MIO_MAX_NODES || nfuncs > nsites || nnodes < nthreads ||
        (nthreads == 0) != (nnodes == 0))
        return CP_MIO_EFORMAT;
    uint64_t c[CP_MIO_NCOUNTERS];
    c[MC_START_UNIX_NS] = get_u64(&r);
    if (c[MC_START_UNIX_NS] > (UINT64_MAX >> 1))
        return CP_MIO_EFORMAT;
    for (int i = MC_START_UNIX_NS + 1; i < CP_MIO_NCOUNTERS; i++)
        c[i] = get_val(&r);
    if (r.bad || c[MC_EXITED_THREADS] > MIO_MAX_U32_COUNTER ||
        c[MC_POOL_BUFFERS] > MIO_MAX_U32_COUNTER || c[MC_MERGED] > MIO_MAX_U32_COUNTER ||
        c[MC_APPROX_PERCENTILES] > 1)
        return CP_MIO_EFORMAT;
    /* The counts must fit in what is left: bounds every allocation below by
     * the file's size (the products cannot overflow: counts < 2^22). */
    uint64_t need = (uint64_t)nsites * (SITE_FIXED + 2) + (uint64_t)nthreads * THREAD_BYTES +
                    (uint64_t)nnodes * NODE_BYTES + (uint64_t)nfuncs * FUNC_BYTES;
    if (need > r.left)
        return CP_MIO_EFORMAT;

    cp_model *m = calloc(1, sizeof *m);
    if (!m)
        return CP_MIO_ENOMEM;
    cp_mio_status st = CP_MIO_ENOMEM;
    codeprof_config_init(&m->cfg);
    m->pid = pid;
    snprintf(m->role, sizeof m->role, "worker-%d", (int)wid);
    m->clock_source = "";
    m->nodes = malloc((size_t)(nnodes ? nnodes : 1) * sizeof *m->nodes);
    m->threads = malloc((size_t)(nthreads ? nthreads : 1) * sizeof *m->threads);
    m->funcs = malloc((size_t)(nfuncs ? nfuncs : 1) * sizeof *m->funcs);
    if (!m->nodes || !m->threads || !m->funcs)
        goto fail;

    st = decode_sites(&r, m, nsites);
    if (st != CP_MIO_OK)
        goto fail;
    st = CP_MIO_EFORMAT;

    for (uint32_t i = 0; i < nthreads; i++) {
        cp_mthread *t = &m->threads[i];
        t->os_tid = get_u64(&r);
        t->pid = (int32_t)get_u32(&r);
        t->worker = (int32_t)get_u32(&r);
        t->index = get_u32(&r);
        t->root = get_u32(&r);
        t->events = get_val(&r);
        t->dropped = get_val(&r);
        if (r.bad || t->worker < -1 || t->root >= nnodes)
            goto fail;
        m->nthreads++;
    }

    for (uint32_t i = 0; i < nnodes; i++) {
        cp_mnode *n = &m->nodes[i];
        n->site = get_u32(&r);
        n->parent = get_u32(&r);
        n->first_child = get_u32(&r);
        n->next_sibling = get_u32(&r);
        n->depth = get_u32(&r);
        n->count = get_val(&r);
        n->incl_ns = get_val(&r);
        n->self_ns = get_val(&r);
        n->cpu_ns = get_val(&r);
        n->cpu_count = get_val(&r);
        n->min_ns = get_val(&r);
        n->max_ns = get_val(&r);
        n->p50_ns = get_val(&r);
        n->p95_ns = get_val(&r);
        n->p99_ns = get_val(&r);
        n->truncated = get_val(&r);
        n->rss_delta_sum = get_sval(&r);
        n->rss_delta_max = get_sval(&r);
        n->rss_count = get_val(&r);
        n->samples = get_val(&r);
        n->samples_self = get_val(&r);
        n->samples_running = get_val(&r);
        n->sampled_ns = get_val(&r);
        n->sampled_self_ns = get_val(&r);
        if (r.bad)
            goto fail;
        if (n->parent == CP_NONE) {
            if (n->site != 0 || n->depth != 0 || n->next_sibling != CP_NONE)
                goto fail;
        } else if (n->parent >= i || n->site == 0 || n->site > nsites ||
                   n->depth != m->nodes[n->parent].depth + 1) {
            goto fail;
        }
        if (n->first_child != CP_NONE && (n->first_child <= i || n->first_child >= nnodes))
            goto fail;
        if (n->next_sibling != CP_NONE && (n->next_sibling <= i || n->next_sibling >= nnodes))
            goto fail;
        m->nnodes++;
    }
    st = check_tree(m);
    if (st != CP_MIO_OK)
        goto fail;
    st = CP_MIO_EFORMAT;

    for (uint32_t i = 0; i < nfuncs; i++) {
        cp_mfunc *f = &m->funcs[i];
        f->site = get_u32(&r);
        f->calls = get_val(&r);
        f->incl_ns = get_val(&r);
        f->self_ns = get_val(&r);
        f->cpu_ns = get_val(&r);
        f->cpu_count = get_val(&r);
        f->min_ns = get_val(&r);
        f->max_ns = get_val(&r);
        f->p50_ns = get_val(&r);
        f->p95_ns = get_val(&r);
        f->p99_ns = get_val(&r);
        f->rss_delta_sum = get_sval(&r);
        f->rss_delta_max = get_sval(&r);
        f->rss_count = get_val(&r);
        f->samples = get_val(&r);
        f->samples_self = get_val(&r);
        f->samples_running = get_val(&r);
        f->sampled_ns = get_val(&r);
        f->sampled_self_ns = get_val(&r);
        if (r.bad || f->site == 0 || f->site > nsites)
            goto fail;
        m->nfuncs++;
    }
    st = decode_sampling(&r, &m->samp, nsites);
    if (st == CP_MIO_OK)
        st = decode_lines(&r, &m->lines, nsites);
    if (st != CP_MIO_OK)
        goto fail;
    st = CP_MIO_EFORMAT;
    if (r.left != 0) /* bytes between the sections and the trailer */
        goto fail;

    m->start_unix_ns = c[MC_START_UNIX_NS];
    m->duration_ns = c[MC_DURATION_NS];
    m->events_total = c[MC_EVENTS_TOTAL];
    m->dropped_events = c[MC_DROPPED_EVENTS];
    m->dropped_nodes = c[MC_DROPPED_NODES] + c[MC_NODES_CUT]; /* both <= 2^50 */
    m->unmatched_exits = c[MC_UNMATCHED_EXITS];
    m->truncated = c[MC_TRUNCATED];
    m->alloc_failures = c[MC_ALLOC_FAILURES];
    m->dropped_full = c[MC_DROPPED_FULL];
    m->dropped_reentrant = c[MC_DROPPED_REENTRANT];
    m->dropped_nothread = c[MC_DROPPED_NOTHREAD];
    m->dropped_samples = c[MC_DROPPED_SAMPLES];
    m->dropped_sites = c[MC_DROPPED_SITES];
    m->exited_threads = (uint32_t)c[MC_EXITED_THREADS];
    m->pool_buffers = (uint32_t)c[MC_POOL_BUFFERS];
    m->merged = (uint32_t)c[MC_MERGED];
    m->approx_percentiles = (int)c[MC_APPROX_PERCENTILES];
    *worker = wid;
    *out = m;
    return CP_MIO_OK;

fail:
    cp_model_free(m);
    return st;
}

cp_mio_status cp_model_read_file(const char *path, cp_model **out, int32_t *worker) {
    *out = NULL;
    *worker = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return CP_MIO_EOPEN;
    struct stat sb;
    cp_mio_status st = CP_MIO_EOPEN;
    uint8_t *buf = NULL;
    if (fstat(fd, &sb) != 0)
        goto out;
    st = CP_MIO_ENOTREG;
    if (!S_ISREG(sb.st_mode))
        goto out;
    st = CP_MIO_ETOOBIG;
    if (sb.st_size < 0 || (uint64_t)sb.st_size > CP_MIO_MAX_BYTES)
        goto out;
    /* One byte more than stat said: a file that grew is seen as too long. */
    size_t cap = (size_t)sb.st_size + 1, got = 0;
    st = CP_MIO_ENOMEM;
    buf = malloc(cap);
    if (!buf)
        goto out;
    st = CP_MIO_EOPEN;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    st = got == cap ? CP_MIO_EFORMAT : cp_model_decode(buf, got, out, worker);
out:
    free(buf);
    close(fd);
    return st;
}

/* A warning on the merged model (the report's warnings): a worker model
 * that was refused for its format version. */
static void warn_refused(cp_model *m, const char *name, cp_mio_status st) {
    if (m->nwarnings >= 64) {
        m->warnings_dropped++;
        return;
    }
    cp_mwarning *nw = realloc(m->warnings, ((size_t)m->nwarnings + 1) * sizeof *nw);
    if (!nw) {
        m->warnings_dropped++;
        return;
    }
    m->warnings = nw;
    cp_mwarning *w = &nw[m->nwarnings++];
    memset(w, 0, sizeof *w);
    snprintf(w->code, sizeof w->code, "%s", "worker_model_refused");
    snprintf(w->message, sizeof w->message, "worker model '%.200s' not merged: %s (this reader reads format %u)",
             name, cp_mio_status_text(st), CP_MIO_VERSION);
}

uint32_t cp_model_merge_dir(cp_model *m, const char *dir, int self_pid) {
    if (!m || !dir)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char self[32];
    snprintf(self, sizeof self, "%d%s", self_pid, CP_MODEL_SUFFIX);
    size_t sl = strlen(CP_MODEL_SUFFIX);
    uint32_t nread = 0, merged = 0;
    int32_t *pids = malloc(CP_MIO_MAX_FILES * sizeof *pids); /* of the models merged */
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (nl <= sl || strcmp(de->d_name + nl - sl, CP_MODEL_SUFFIX) != 0 ||
            de->d_name[0] == '.' || strcmp(de->d_name, self) == 0)
            continue;
        if (nread++ >= CP_MIO_MAX_FILES) { /* bounds the merged sums */
            m->data.spool_errors++;
            continue;
        }
        char path[4096];
        int np = snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        cp_model *wm = NULL;
        int32_t worker = -1;
        cp_mio_status rs = CP_MIO_EOPEN;
        if (np < 0 || (size_t)np >= sizeof path ||
            (rs = cp_model_read_file(path, &wm, &worker)) != CP_MIO_OK ||
            cp_model_merge(m, wm, worker) != 0) {
            m->data.spool_errors++;
            if (rs == CP_MIO_EVERSION)
                warn_refused(m, de->d_name, rs);
        } else {
            if (pids)
                pids[merged] = wm->pid;
            merged++;
        }
        cp_model_free(wm);
    }
    closedir(d);
    /* A worker that closed its spool cleanly wrote its model first: when
     * none is here, that write failed (ENOSPC, ...): count it. */
    for (uint32_t i = 0; pids && i < m->data.nworkers; i++) {
        const cp_mworker *w = &m->data.workers[i];
        if (w->worker < 0 || w->incomplete || w->pid == self_pid)
            continue;
        uint32_t k = 0;
        while (k < merged && pids[k] != w->pid)
            k++;
        if (k == merged)
            m->data.spool_errors++;
    }
    free(pids);
    return merged;
}
