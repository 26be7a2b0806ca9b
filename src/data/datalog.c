/* datalog.c -- memory and spool-file record logs (datalog.h). */
#include "data/datalog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/errors.h"
#include "core/site.h"

#define CHUNK_BYTES ((size_t)CP_DLOG_CHUNK * sizeof(cp_drec))

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
    return log;
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
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)sizeof(cp_spool_header)) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        cp_error_set(err, CODEPROF_EIO, "dir", "cannot create worker spool '%s': %s", path,
                     strerror(e));
        free(path);
        free(log);
        return NULL;
    }
    /* The header shares the first page with nothing else: map it alone. */
    cp_spool_header *h =
        mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) {
        int e = errno;
        close(fd);
        cp_error_set(err, CODEPROF_EIO, "dir", "cannot map worker spool '%s': %s", path,
                     strerror(e));
        free(path);
        free(log);
        return NULL;
    }
    memcpy(h->magic, CP_SPOOL_MAGIC, 8);
    h->version = 1;
    h->pid = (int32_t)getpid();
    h->worker = worker;
    h->closed = 0;
    h->start_ns = cp_clock_mono_ns();
    log->fd = fd;
    log->hdr = h;
    log->path = path;
    return log;
}

void cp_datalog_free(cp_datalog *log) {
    if (!log)
        return;
    for (uint32_t i = 0; i < log->nchunks; i++) {
        if (log->fd >= 0)
            munmap(log->chunks[i], CHUNK_BYTES);
        else
            free(log->chunks[i]);
    }
    if (log->hdr)
        munmap(log->hdr, sizeof *log->hdr);
    if (log->fd >= 0)
        close(log->fd);
    free(log->chunks);
    free(log->described);
    free(log->path);
    free(log);
}

void cp_datalog_close(cp_datalog *log) {
    if (!log || !log->hdr)
        return;
    atomic_thread_fence(memory_order_release);
    log->hdr->closed = 1;
}

/* Returns the slot for the next record, growing by a chunk if needed. */
static cp_drec *next_slot(cp_datalog *log) {
    uint32_t ci = (uint32_t)(log->n / CP_DLOG_CHUNK);
    if (ci >= log->nchunks) {
        if (log->nchunks == log->cap_chunks) {
            uint32_t ncap = log->cap_chunks ? log->cap_chunks * 2 : 16;
            cp_drec **nc = realloc(log->chunks, (size_t)ncap * sizeof *nc);
            if (!nc)
                return NULL;
            log->chunks = nc;
            log->cap_chunks = ncap;
        }
        cp_drec *c;
        if (log->fd >= 0) {
            off_t off = (off_t)sizeof(cp_spool_header) + (off_t)ci * (off_t)CHUNK_BYTES;
            /* The header is mapped on its own page; records start at a page
             * boundary so chunk mappings are page aligned. */
            off = (off_t)4096 + (off_t)ci * (off_t)CHUNK_BYTES;
            if (ftruncate(log->fd, off + (off_t)CHUNK_BYTES) != 0)
                return NULL;
            c = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, log->fd, off);
            if (c == MAP_FAILED)
                return NULL;
        } else {
            c = calloc(CP_DLOG_CHUNK, sizeof *c);
            if (!c)
                return NULL;
        }
        log->chunks[log->nchunks++] = c;
    }
    return &log->chunks[ci][log->n % CP_DLOG_CHUNK];
}

static void put(cp_datalog *log, const cp_drec *rec) {
    cp_drec *slot = next_slot(log);
    if (!slot) {
        log->oom++;
        return;
    }
    slot->type = rec->type;
    slot->flags = rec->flags;
    slot->u = rec->u;
    log->n++;
    /* commit last, so a reader (or a kill) never sees half a record */
    __atomic_store_n(&slot->commit, CP_DREC_COMMITTED, __ATOMIC_RELEASE);
}

static void describe(cp_datalog *log, uint32_t site) {
    if (site < log->cap_described && log->described[site])
        return;
    if (site >= log->cap_described) {
        uint32_t ncap = log->cap_described ? log->cap_described : 256;
        while (ncap <= site)
            ncap *= 2;
        uint8_t *nd = realloc(log->described, ncap);
        if (!nd) {
            log->oom++;
            return;
        }
        memset(nd + log->cap_described, 0, ncap - log->cap_described);
        log->described = nd;
        log->cap_described = ncap;
    }
    const cp_site_info *si = cp_site_get(site);
    if (!si)
        return;
    size_t ln = strlen(si->name) + 1, lf = strlen(si->file) + 1;
    cp_drec r = {0};
    r.type = CP_DREC_SITE;
    r.flags = si->kind;
    r.u.r.site = site;
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
    log->described[site] = 1;
}

void cp_datalog_append(cp_datalog *log, const cp_drec *rec) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    if (log->fd >= 0 && rec->type != CP_DREC_SITE && rec->type != CP_DREC_STR)
        describe(log, rec->u.r.site);
    put(log, rec);
    pthread_mutex_unlock(&log->mu);
}

void cp_datalog_foreach(cp_datalog *log, cp_drec_fn fn, void *ctx) {
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    for (uint64_t i = 0; i < log->n; i++) {
        const cp_drec *r = &log->chunks[i / CP_DLOG_CHUNK][i % CP_DLOG_CHUNK];
        if (__atomic_load_n(&r->commit, __ATOMIC_ACQUIRE) == CP_DREC_COMMITTED)
            fn(r, ctx);
    }
    pthread_mutex_unlock(&log->mu);
}
