/* spool_reader.h -- the parent's reader of worker spool files.
 *
 * The reader is total: whatever bytes a spool holds (a crafted file, a
 * truncated one, one still being written), decoding terminates in time
 * linear in the bytes read, allocates memory bounded by the bytes read,
 * never reads outside them and never overflows.  Every field that comes
 * from the file is checked before use:
 *
 *   - header: magic, version (1 or 2), record offset (a multiple of 64 in
 *     [64, CP_SPOOL_MAX_REC_OFF]);
 *   - site ids: < CP_SPOOL_MAX_SITE_ID; the writer-to-local map is a hash
 *     table holding at most one entry per SITE record read;
 *   - SITE text: length in [2, CP_SPOOL_MAX_SITE_TEXT], both the name and
 *     the file NUL-terminated inside it, kind < CODEPROF_SITE_KIND_COUNT_,
 *     line <= UINT32_MAX;
 *   - times: t_ns <= CP_SPOOL_MAX_T_NS, dur_ns <= CP_SPOOL_MAX_DUR_NS, and
 *     the durations of one spool sum to at most CP_SPOOL_MAX_SUM_NS, so no
 *     sum the model makes over at most CP_SPOOL_MAX_FILES spools can wrap;
 *   - batch item counts <= CP_SPOOL_MAX_BATCH_ITEMS.
 * A record that fails a check is skipped and counted (cp_spool_info.bad).
 *
 * Files are opened O_NONBLOCK|O_NOFOLLOW and must be regular (a FIFO or a
 * device named *.cpspool is refused, never blocks); at most
 * CP_SPOOL_MAX_BYTES are read, in fixed-size blocks, with read(2): the
 * parent never maps a spool (a truncated mapping would raise SIGBUS). */
#ifndef CP_SPOOL_READER_H
#define CP_SPOOL_READER_H

#include <stddef.h>
#include <stdint.h>

#include "codeprof/codeprof.h"
#include "data/datalog.h"

#define CP_SPOOL_MAX_SITE_ID (1u << 30)
#define CP_SPOOL_MAX_SITE_TEXT 8192u
#define CP_SPOOL_MAX_REC_OFF (1u << 20)
#define CP_SPOOL_MAX_BYTES ((uint64_t)8 << 30)
#define CP_SPOOL_MAX_T_NS ((uint64_t)1 << 62)
#define CP_SPOOL_MAX_DUR_NS ((uint64_t)1 << 46)  /* ~19.5 hours per record  */
#define CP_SPOOL_MAX_SUM_NS ((uint64_t)1 << 50)  /* ~13 days per spool      */
#define CP_SPOOL_MAX_BATCH_ITEMS ((int64_t)1 << 32)
#define CP_SPOOL_MAX_FILES 4096u                 /* spools read per report  */

/* What the header and the decoding said about one spool. */
typedef struct cp_spool_info {
    uint32_t version;
    int32_t pid;
    int32_t worker;
    int closed;          /* the worker closed it cleanly                    */
    int32_t error;       /* errno that stopped the worker spooling; 0: none */
    uint32_t error_op;   /* CP_SPOOL_OP_*: what failed                      */
    uint64_t dropped;    /* records the worker could not spool              */
    uint64_t records;    /* committed records delivered                     */
    uint64_t bad;        /* committed records skipped by a check            */
    int truncated;       /* more than CP_SPOOL_MAX_BYTES, or a read error   */
} cp_spool_info;

/* The consumer.  `site` maps a writer's site description to a local site
 * id (0: ignore records of that site); `record` gets each valid ITEM,
 * STAGE or BATCH record with u.r.site already mapped (never 0). */
typedef struct cp_spool_visitor {
    uint32_t (*site)(void *ctx, const char *name, const char *file, uint32_t line,
                     codeprof_site_kind kind);
    void (*record)(void *ctx, const cp_drec *rec);
    void *ctx;
} cp_spool_visitor;

typedef enum cp_spool_status {
    CP_SPOOL_OK = 0,
    CP_SPOOL_EOPEN = -1,    /* cannot open / stat                 */
    CP_SPOOL_ENOTREG = -2,  /* not a regular file                 */
    CP_SPOOL_EHEADER = -3,  /* short file, bad magic/version/offset */
    CP_SPOOL_ENOMEM = -4,   /* out of memory while decoding       */
} cp_spool_status;

/* Decodes a whole spool held in memory (the fuzz harness's entry point).
 * `info` is filled as far as the header allows.  `v` may have NULL
 * callbacks. */
cp_spool_status cp_spool_decode(const void *buf, size_t len, const cp_spool_visitor *v,
                                cp_spool_info *info);

/* Opens, checks and decodes the spool at `path`, reading it in blocks. */
cp_spool_status cp_spool_read_file(const char *path, const cp_spool_visitor *v,
                                   cp_spool_info *info);

/* A short text for an error_op (e.g. "posix_fallocate"). */
const char *cp_spool_op_name(uint32_t op);

#endif /* CP_SPOOL_READER_H */
