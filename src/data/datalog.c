/* datalog.c -- memory and spool-file record logs (datalog.h). */
#include "core/bigmem.h"
#include "data/datalog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/site.h"

uint64_t cp_tick_to_mono_ns(uint64_t tick) {
    if (cp_clock_g.fake || !cp_clock_g.use_tsc)
        return tick;
    if (tick >= cp_clock_g.tick0)
        return cp_clock_g.ns0 + cp_clock_ticks_to_ns(tick - cp_clock_g.tick0);
    uint64_t back = cp_clock_ticks_to_ns(cp_clock_g.tick0 - tick);
    return back < cp_clock_g.ns0 ? cp_clock_g.ns0 - back : 0;
}

cp_datalog *cp_datalog_new_memory(void) {
    cp_datalog *log = calloc(1, sizeof *log);
    if (!log)
        return NULL;
    pthread_mutex_init(&log->mu, NULL);
    log->fd = -1;
    log->max_records = CP_DLOG_DEFAULT_MAX_RECORDS;
    log->slow_ns = 1000000000ull;
    return log;
}

void cp_datalog_set_limits(cp_datalog *log, uint64_t max_records, uint64_t slow_ns) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    log->max_records = max_records ? max_records : CP_DLOG_DEFAULT_MAX_RECORDS;
    log->slow_ns = slow_ns;
    pthread_mutex_unlock(&log->mu);
}

static size_t page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    /* A page holds the header; records start on the next page. */
    return p >= (long)sizeof(cp_spool_header) && p <= (1L << 20) ? (size_t)p : 4096;
}

/* Creates "<path>" as a new regular file: never follows a symlink, never
 * opens a FIFO or a file someone else planted (a stale one of a recycled
 * pid is removed first). */
static int create_spool_file(const char *path) {
    int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(path, flags, 0600);
    if (fd < 0 && errno == EEXIST && unlink(path) == 0)
        fd = open(path, flags, 0600);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

cp_datalog *cp_datalog_new_spool(const char *dir, int worker, codeprof_error *err) {
    if (!dir || !*dir) {
        cp_error_set(err, CODEPROF_EINVAL, "dir", "spool directory is empty or NULL");
        return NULL;
    }
    cp_datalog *log = cp_datalog_new_memory();
    size_t n = strlen(dir) + 48;
    char *path = log ? malloc(n) : NULL;
    if (!path) {
        free(log);
        cp_error_set(err, CODEPROF_ENOMEM, "dir", "out of memory");
        return NULL;
    }
    snprintf(path, n, "%s/%d%s", dir, (int)getpid(), CP_SPOOL_SUFFIX);
    size_t page = page_size();
    int fd = create_spool_file(path);
    int e = fd < 0 ? errno : posix_fallocate(fd, 0, (off_t)page);
    /* The header is alone on the first page: map it alone. */
    cp_spool_header *h = MAP_FAILED;
    if (e == 0) {
        h = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (h == MAP_FAILED)
            e = errno;
    }
    if (e != 0) {
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        cp_error_set(err, CODEPROF_EIO, "dir", "cannot create worker spool '%s': %s", path,
                     strerror(e));
        free(path);
        free(log);
        return NULL;
    }
    memset(h, 0, sizeof *h);
    memcpy(h->magic, CP_SPOOL_MAGIC, 8);
    h->version = CP_SPOOL_VERSION;
    h->pid = (int32_t)getpid();
    h->worker = worker;
    h->closed = 0;
    h->start_ns = cp_clock_mono_ns();
    h->rec_off = (uint32_t)page;
    log->fd = fd;
    log->hdr = h;
    log->path = path;
    log->page = page;
    log->file_end = page;
    return log;
}

void cp_datalog_free(cp_datalog *log) {
    if (!log)
        return;
    for (uint32_t i = 0; i < log->nchunks; i++) {
        if (log->fd >= 0)
            munmap(log->chunks[i], log->chunk_bytes[i]);
        else
            cp_big_free(log->chunks[i]);
    }
    if (log->hdr)
        munmap(log->hdr, log->page);
    if (log->fd >= 0)
        close(log->fd);
    free(log->chunks);
    free(log->chunk_bytes);
    free(log->agg);
    cp_u32map_free(&log->described);
    free(log->path);
    free(log);
}

void cp_datalog_close(cp_datalog *log) {
    if (!log || !log->hdr)
        return;
    atomic_thread_fence(memory_order_release);
    log->hdr->closed = 1;
}

void cp_datalog_apply_config(cp_datalog *log, const codeprof_config *cfg) {
    if (!log || !cfg)
        return;
    double ns = cfg->slow_data_loading_s * 1e9;
    uint64_t slow_ns = !(ns > 0) ? 0 : ns >= 1.8e19 ? UINT64_MAX : (uint64_t)ns;
    cp_datalog_set_limits(log, cfg->max_data_records, slow_ns);
}

/* Stops spooling for good: the worker keeps running, the header says why. */
static void spool_fail(cp_datalog *log, int e, uint32_t op) {
    log->spool_errno = e ? e : EIO;
    if (log->hdr) {
        log->hdr->error_op = op;
        __atomic_store_n(&log->hdr->error, log->spool_errno, __ATOMIC_RELEASE);
    }
}

static int grow_table(cp_datalog *log) {
    if (log->nchunks < log->cap_chunks)
        return 0;
    uint32_t ncap = log->cap_chunks ? log->cap_chunks * 2 : 16;
    cp_drec **nc = realloc(log->chunks, (size_t)ncap * sizeof *nc);
    if (!nc)
        return -1;
    log->chunks = nc;
    if (log->fd >= 0) {
        size_t *nb = realloc(log->chunk_bytes, (size_t)ncap * sizeof *nb);
        if (!nb)
            return -1;
        log->chunk_bytes = nb;
    }
    log->cap_chunks = ncap;
    return 0;
}

/* The next chunk of a file log: space reserved first, so that a store into
 * the mapping can never fault (no SIGBUS on a full filesystem). */
static cp_drec *map_chunk(cp_datalog *log, size_t *bytes_out) {
    size_t bytes = CP_SPOOL_CHUNK_MIN;
    for (uint32_t i = 0; i < log->nchunks && bytes < CP_SPOOL_CHUNK_MAX; i++)
        bytes *= 2;
    bytes = (bytes + log->page - 1) / log->page * log->page;
    off_t off = (off_t)log->file_end;
    int e = posix_fallocate(log->fd, off, (off_t)bytes);
    if (e != 0) {
        spool_fail(log, e, CP_SPOOL_OP_FALLOCATE);
        return NULL;
    }
    cp_drec *c = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, log->fd, off);
    if (c == MAP_FAILED) {
        spool_fail(log, errno, CP_SPOOL_OP_MMAP);
        return NULL;
    }
    log->file_end += bytes;
    *bytes_out = bytes;
    return c;
}

/* Returns the slot for the next record, growing by a chunk if needed. */
static cp_drec *next_slot(cp_datalog *log) {
    if (log->fd >= 0) {
        if (log->spool_errno)
            return NULL;
        if (log->nchunks) {
            uint32_t last = log->nchunks - 1;
            uint64_t k = log->n - log->last_base;
            if (k < log->chunk_bytes[last] / sizeof(cp_drec))
                return &log->chunks[last][k];
        }
        if (grow_table(log) != 0) {
            spool_fail(log, ENOMEM, CP_SPOOL_OP_NOMEM);
            return NULL;
        }
        size_t bytes = 0;
        cp_drec *c = map_chunk(log, &bytes);
        if (!c)
            return NULL;
        log->chunks[log->nchunks] = c;
        log->chunk_bytes[log->nchunks] = bytes;
        log->nchunks++;
        log->last_base = log->n;
        return c;
    }
    uint32_t ci = (uint32_t)(log->n / CP_DLOG_CHUNK);
    if (ci >= log->nchunks) {
        if (grow_table(log) != 0)
            return NULL;
        cp_drec *c = cp_big_calloc(CP_DLOG_CHUNK, sizeof *c);
        if (!c)
            return NULL;
        log->chunks[log->nchunks++] = c;
    }
    return &log->chunks[ci][log->n % CP_DLOG_CHUNK];
}

static void put(cp_datalog *log, const cp_drec *rec) {
    cp_drec *slot = next_slot(log);
    if (!slot) {
        if (log->fd >= 0) {
            log->dropped++;
            if (log->hdr)
                __atomic_store_n(&log->hdr->dropped, log->dropped, __ATOMIC_RELAXED);
        } else {
            log->oom++;
        }
        return;
    }
    slot->type = rec->type;
    slot->flags = rec->flags;
    slot->u = rec->u;
    log->n++;
    /* commit last, so a reader (or a kill) never sees half a record */
    __atomic_store_n(&slot->commit, CP_DREC_COMMITTED, __ATOMIC_RELEASE);
}

/* The spool's id for `site` (dense from 1, whatever the process's id
 * looks like), describing the site (SITE + STR records) on first use.
 * 0 when it cannot be described. */
static uint32_t describe(cp_datalog *log, uint32_t site) {
    uint32_t sid;
    if (!site)
        return 0;
    if (cp_u32map_get(&log->described, site, &sid))
        return sid;
    const cp_site_info *si = cp_site_get(site);
    if (!si)
        return 0;
    sid = log->described.n + 1;
    if (cp_u32map_put(&log->described, site, sid) != 0) {
        log->oom++;
        return 0;
    }
    size_t ln = strlen(si->name) + 1, lf = strlen(si->file) + 1;
    cp_drec r = {0};
    r.type = CP_DREC_SITE;
    r.flags = si->kind;
    r.u.r.site = sid;
    r.u.r.index = si->line;
    r.u.r.aux = ln + lf;
    put(log, &r);
    char buf[sizeof r.u.text];
    size_t total = ln + lf, off = 0;
    while (off < total) {
        memset(buf, 0, sizeof buf);
        for (size_t k = 0; k < sizeof buf && off < total; k++, off++)
            buf[k] = off < ln ? si->name[off] : si->file[off - ln];
        cp_drec s = {0};
        s.type = CP_DREC_STR;
        memcpy(s.u.text, buf, sizeof buf);
        put(log, &s);
    }
    return sid;
}

/* Folds a record past the cap into its (type, site) aggregate. */
static void aggregate(cp_datalog *log, const cp_drec *rec) {
    if (rec->type != CP_DREC_ITEM && rec->type != CP_DREC_STAGE && rec->type != CP_DREC_BATCH)
        return;
    /* a batch wait that ended the epoch (StopIteration) is no batch */
    if (rec->type == CP_DREC_BATCH && (rec->flags & CP_DRECF_FAILED))
        return;
    uint32_t i = 0;
    while (i < log->nagg && (log->agg[i].type != rec->type || log->agg[i].site != rec->u.r.site))
        i++;
    if (i == log->nagg) {
        if (log->nagg == log->cap_agg) {
            uint32_t ncap = log->cap_agg ? log->cap_agg * 2 : 8;
            cp_dagg *na = realloc(log->agg, (size_t)ncap * sizeof *na);
            if (!na) {
                log->oom++;
                return;
            }
            log->agg = na;
            log->cap_agg = ncap;
        }
        memset(&log->agg[i], 0, sizeof log->agg[i]);
        log->agg[i].type = rec->type;
        log->agg[i].site = rec->u.r.site;
        log->agg[i].min_ns = UINT64_MAX;
        log->nagg++;
    }
    cp_dagg *a = &log->agg[i];
    uint64_t dur = rec->u.r.dur_ns;
    a->sum_ns = dur > UINT64_MAX - a->sum_ns ? UINT64_MAX : a->sum_ns + dur;
    if (dur > a->max_ns)
        a->max_ns = dur;
    if (dur < a->min_ns)
        a->min_ns = dur;
    if (rec->type == CP_DREC_ITEM) {
        a->failures += (rec->flags & CP_DRECF_FAILED) != 0;
        a->slow += dur > log->slow_ns;
        uint64_t end = rec->u.r.t_ns + dur < rec->u.r.t_ns ? UINT64_MAX : rec->u.r.t_ns + dur;
        if (a->count == 0 || rec->u.r.t_ns < a->t_lo)
            a->t_lo = rec->u.r.t_ns;
        if (end > a->t_hi)
            a->t_hi = end;
    } else if (rec->type == CP_DREC_BATCH) {
        if (rec->u.r.index > 0)
            a->items += (uint64_t)rec->u.r.index;
        if (a->count == 0 || rec->u.r.epoch != a->last_epoch) {
            a->epochs++;
            a->first_wait_ns += dur;
        } else {
            a->steps++;
            a->step_ns += rec->u.r.t_ns > a->last_end_ns ? rec->u.r.t_ns - a->last_end_ns : 0;
        }
        a->last_epoch = rec->u.r.epoch;
        a->last_end_ns = rec->u.r.t_ns + dur;
    }
    a->count++;
    log->aggregated++;
}

void cp_datalog_foreach_agg(cp_datalog *log, cp_dagg_fn fn, void *ctx) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    for (uint32_t i = 0; i < log->nagg; i++)
        fn(&log->agg[i], ctx);
    pthread_mutex_unlock(&log->mu);
}

void cp_datalog_counters(cp_datalog *log, uint64_t *aggregated, uint64_t *oom) {
    *aggregated = 0;
    *oom = 0;
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    *aggregated = log->aggregated;
    *oom = log->oom;
    pthread_mutex_unlock(&log->mu);
}


void cp_datalog_append(cp_datalog *log, const cp_drec *rec) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    if (log->fd >= 0 && log->spool_errno) { /* stopped spooling: count only */
        log->dropped++;
        if (log->hdr)
            __atomic_store_n(&log->hdr->dropped, log->dropped, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&log->mu);
        return;
    }
    if (log->fd < 0 && log->n >= log->max_records) {
        aggregate(log, rec); /* bounded: the log stores max_records at most */
        pthread_mutex_unlock(&log->mu);
        return;
    }
    if (log->fd >= 0 && rec->type != CP_DREC_SITE && rec->type != CP_DREC_STR) {
        cp_drec r = *rec; /* the spool speaks its own site ids */
        r.u.r.site = describe(log, rec->u.r.site);
        if (r.u.r.site)
            put(log, &r);
        pthread_mutex_unlock(&log->mu);
        return;
    }
    put(log, rec);
    pthread_mutex_unlock(&log->mu);
}

void cp_datalog_foreach(cp_datalog *log, cp_drec_fn fn, void *ctx) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    uint64_t i = 0;
    for (uint32_t c = 0; c < log->nchunks && i < log->n; c++) {
        uint64_t per = log->fd >= 0 ? log->chunk_bytes[c] / sizeof(cp_drec) : CP_DLOG_CHUNK;
        for (uint64_t k = 0; k < per && i < log->n; k++, i++) {
            const cp_drec *r = &log->chunks[c][k];
            if (__atomic_load_n(&r->commit, __ATOMIC_ACQUIRE) == CP_DREC_COMMITTED)
                fn(r, ctx);
        }
    }
    pthread_mutex_unlock(&log->mu);
}
