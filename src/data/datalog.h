/* datalog.h -- data-loading records: items, their stages, batches.
 *
 * The fold (src/cpu/cct.c) appends one 64-byte record when an item scope,
 * a stage scope inside an item, or a batch scope ends.  A session's log
 * lives in memory in the main process.  In a DataLoader worker it is a
 * file, "<spool dir>/<pid>.cpspool", written through MAP_SHARED chunks: a
 * record is in the page cache as soon as it is written, so a worker killed
 * by SIGTERM or SIGKILL loses at most the item it was loading.  Each record
 * is committed by a final store of its `commit` word; readers skip
 * uncommitted records.  The parent reads spool files at report time
 * (src/data/data_model.c) and never writes them.
 *
 * File: a 64-byte header (cp_spool_header) alone on the first page, then
 * records from header.rec_off (the writer's page size) on.  Site ids are the
 * writer's; a spool describes each site once (a SITE record followed by STR
 * records carrying "name\\0file\\0") before the first record that uses it.
 */
#ifndef CP_DATALOG_H
#define CP_DATALOG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "codeprof/codeprof.h"
#include "core/u32map.h"

#define CP_SPOOL_MAGIC "CPSPOOL1"
#define CP_SPOOL_SUFFIX ".cpspool"
#define CP_DREC_COMMITTED 0x434f4d4du /* "COMM" */

enum cp_drec_type {
    CP_DREC_ITEM = 1,  /* site, index, t_ns, dur_ns, epoch, flags FAILED */
    CP_DREC_STAGE = 2, /* site, index (enclosing item), dur_ns           */
    CP_DREC_BATCH = 3, /* site, index = items, t_ns, dur_ns (wait), epoch */
    CP_DREC_SITE = 4,  /* site, flags = kind, index = line, aux = text bytes */
    CP_DREC_STR = 5,   /* text[56]                                        */
};
enum { CP_DRECF_FAILED = 1 };

typedef struct cp_drec {
    uint32_t commit;  /* CP_DREC_COMMITTED once complete */
    uint16_t type;
    uint16_t flags;
    union {
        struct {
            uint32_t site;
            uint32_t epoch;
            int64_t index;
            uint64_t t_ns;   /* CLOCK_MONOTONIC ns at start */
            uint64_t dur_ns;
            uint64_t aux;
            uint64_t reserved;
        } r;
        char text[56];
    } u;
} cp_drec;
_Static_assert(sizeof(cp_drec) == 64, "cp_drec must stay 64 bytes");

typedef struct cp_spool_header {
    char magic[8];
    uint32_t version;    /* CP_SPOOL_VERSION                                  */
    int32_t pid;
    int32_t worker;
    uint32_t closed;     /* 1 after a clean close */
    uint64_t start_ns;
    uint32_t rec_off;    /* v2: byte offset of the first record (a page)     */
    int32_t error;       /* v2: errno that stopped spooling; 0: none          */
    uint32_t error_op;   /* v2: CP_SPOOL_OP_* that failed                     */
    uint32_t reserved32;
    uint64_t dropped;    /* v2: records not spooled after the error           */
    uint64_t reserved;
} cp_spool_header;
_Static_assert(sizeof(cp_spool_header) == 64, "spool header must stay 64 bytes");

/* Version 2: the header says where records start (rec_off, the writer's
 * page size; version 1 had 4096 hard-coded) and why spooling stopped. */
#define CP_SPOOL_VERSION 2u

/* What failed when a worker stopped spooling (cp_spool_header.error_op). */
enum cp_spool_op {
    CP_SPOOL_OP_NONE = 0,
    CP_SPOOL_OP_FALLOCATE = 1, /* posix_fallocate of a chunk (ENOSPC, EIO, ...) */
    CP_SPOOL_OP_MMAP = 2,      /* mmap of a chunk                               */
    CP_SPOOL_OP_NOMEM = 3,     /* the chunk table could not grow                */
};

#define CP_DLOG_CHUNK 4096 /* records per chunk of a memory log (256 KiB) */
/* A file log maps chunks of growing size: the first is 16 KiB, each next
 * one twice the previous, up to 1 MiB (sizes rounded up to the page size),
 * so a small filesystem still takes a few records and a long run needs few
 * mappings. */
#define CP_SPOOL_CHUNK_MIN ((size_t)16 * 1024)
#define CP_SPOOL_CHUNK_MAX ((size_t)1024 * 1024)

/* Records past a memory log's cap, folded per (type, site): item loads per
 * dataset, stages per stage site, batch waits per loader. */
typedef struct cp_dagg {
    uint16_t type;         /* CP_DREC_ITEM, _STAGE or _BATCH              */
    uint32_t site;
    uint64_t count, sum_ns, min_ns, max_ns;
    uint64_t failures;     /* items whose load raised                     */
    uint64_t slow;         /* items above the log's slow_ns               */
    uint64_t items;        /* batches: items they held                    */
    uint64_t t_lo, t_hi;   /* items: first start, last end (ns)           */
    /* batches: the loader's epochs and steps, as data_model.c counts them */
    uint64_t epochs, first_wait_ns, steps, step_ns;
    uint32_t last_epoch;
    uint64_t last_end_ns;
} cp_dagg;

/* Default cap of a memory log (codeprof_config.max_data_records). */
#define CP_DLOG_DEFAULT_MAX_RECORDS 1000000u

typedef struct cp_datalog {
    pthread_mutex_t mu;
    cp_drec **chunks;
    uint32_t nchunks, cap_chunks;
    uint64_t n;            /* records appended */
    int fd;                /* -1: memory log */
    cp_spool_header *hdr;  /* mapped header of a file log */
    char *path;            /* file log path */
    /* file log: site id (any 32-bit value: session-local ids have the top
     * bit set) -> the spool's own dense id, given when first described */
    cp_u32map described;
    uint64_t oom;
    /* file log only */
    size_t page;           /* sysconf(_SC_PAGESIZE): header size, rec_off  */
    size_t *chunk_bytes;   /* bytes of each mapped chunk                    */
    uint64_t last_base;    /* index of the last chunk's first record        */
    uint64_t file_end;     /* bytes reserved (posix_fallocate) so far       */
    int spool_errno;       /* errno that stopped spooling; 0: spooling      */
    uint64_t dropped;      /* records not spooled after spool_errno was set */
    /* memory log only: bounded (cp_datalog_set_limits) */
    uint64_t max_records;  /* records stored; later ones are aggregated     */
    uint64_t slow_ns;      /* item loads above it count as slow in aggregates */
    cp_dagg *agg;
    uint32_t nagg, cap_agg;
    uint64_t aggregated;   /* records folded into agg instead of stored     */
} cp_datalog;

/* A memory log; NULL on OOM.  Free with cp_datalog_free. */
cp_datalog *cp_datalog_new_memory(void);
/* A file log "<dir>/<pid>.cpspool" for worker `worker`; NULL on failure
 * with `err` naming the file. */
cp_datalog *cp_datalog_new_spool(const char *dir, int worker, codeprof_error *err);
/* Sets a memory log's cap (0: CP_DLOG_DEFAULT_MAX_RECORDS) and the slow
 * threshold used for aggregated item loads.  The session calls it with
 * cfg.max_data_records and cfg.slow_data_loading_s; until then the default
 * cap and 1 s apply.  No-op for file logs (bounded by the disk). */
void cp_datalog_set_limits(cp_datalog *log, uint64_t max_records, uint64_t slow_ns);

/* cp_datalog_set_limits from a validated config: max_data_records and
 * slow_data_loading_s (converted with saturation, never undefined). */
void cp_datalog_apply_config(cp_datalog *log, const codeprof_config *cfg);

/* Unmaps/frees; does not delete a spool file. */
void cp_datalog_free(cp_datalog *log);
/* Marks a file log closed cleanly (no-op for memory logs). */
void cp_datalog_close(cp_datalog *log);

/* Appends one record (copied; `commit` is set here).  Describes `site`
 * first in a file log.  Thread-safe.  Never raises a signal: file space is
 * reserved with posix_fallocate before a chunk is mapped, and when that or
 * the mapping fails (ENOSPC, EIO, ...) the log stops spooling, records the
 * errno in the header (error, error_op) and counts later records in
 * `dropped`; the caller keeps running. */
void cp_datalog_append(cp_datalog *log, const cp_drec *rec);

/* Calls fn for every committed record, in order. */
typedef void (*cp_drec_fn)(const cp_drec *rec, void *ctx);
void cp_datalog_foreach(cp_datalog *log, cp_drec_fn fn, void *ctx);

/* Calls fn for every aggregate (records past the cap), in no set order. */
typedef void (*cp_dagg_fn)(const cp_dagg *agg, void *ctx);
void cp_datalog_foreach_agg(cp_datalog *log, cp_dagg_fn fn, void *ctx);

/* Records aggregated past the cap, and records lost to out of memory. */
void cp_datalog_counters(cp_datalog *log, uint64_t *aggregated, uint64_t *oom);

/* Monotonic ns for an event tick (same clock in every process). */
uint64_t cp_tick_to_mono_ns(uint64_t tick);

#endif /* CP_DATALOG_H */
