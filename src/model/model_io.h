/* model_io.h -- a model on disk: the binary file a DataLoader worker writes
 * at a clean exit ("<spool dir>/<pid>.cpmodel") and the parent's total
 * reader, which merges each file into its report model (cp_model_merge,
 * threads tagged with the worker id).
 *
 * What a file holds: the model's sites with their strings, threads, tree
 * nodes (with their sample fields), the flat per-site table, the meta
 * counters, the sampling section (m->samp: counters, sampled stacks, the
 * bounded timeline of samples) and the line table (m->lines, with source
 * text).  Not the findings (the rules run on the merged model) and not the
 * data section (a worker's data-loading records reach the parent through
 * its spool), nor the scope timeline.
 *
 * Format (version 2, every integer little-endian; a file of any other
 * version is refused with CP_MIO_EVERSION, counted in spool_errors and named
 * in a "worker_model_refused" warning of the merged model):
 *
 *   header   "CPMODEL\0", u32 version, u32 flags (0), u64 file length,
 *            i32 pid, i32 worker, u32 nsites, nthreads, nnodes, nfuncs,
 *            CP_MIO_NCOUNTERS x u64 meta counters (model_io.c)
 *   sites    nsites x { u32 line, u16 kind, u16 0, u32 name_len,
 *            u32 file_len, name, NUL, file, NUL }   (model indices 1..nsites)
 *   threads  nthreads x { u64 os_tid, i32 pid, i32 worker, u32 index,
 *            u32 root, u64 events, u64 dropped }
 *   nodes    nnodes x { u32 site, parent, first_child, next_sibling, depth,
 *            u64 count, incl, self, cpu, cpu_count, min, max, p50, p95, p99,
 *            truncated, i64 rss_delta_sum, rss_delta_max, u64 rss_count,
 *            samples, samples_self, samples_running, sampled_ns,
 *            sampled_self_ns }
 *   funcs    nfuncs x { u32 site, u64 calls, incl, self, cpu, cpu_count, min,
 *            max, p50, p95, p99, i64 rss_delta_sum, rss_delta_max,
 *            u64 rss_count, samples, samples_self, samples_running,
 *            sampled_ns, sampled_self_ns }
 *   sampling u32 enabled, mode, native (0/1 each), nframes, nstacks,
 *            ntimeline, 13 x u64 (interval_ns, samples, samples_running,
 *            samples_idle, samples_gil, ticks, missed_ticks, read_errors,
 *            dropped_stacks, dropped_samples, timeline_dropped, threads,
 *            sampler_cpu_ns),
 *            nframes x { u32 site (0..nsites), u32 line },
 *            nstacks x { u32 first, u32 n }  (first + n <= nframes, n <= 256),
 *            ntimeline x { u64 t_ns, u64 os_tid, i32 pid, i32 worker,
 *            u32 stack (< nstacks), u32 weight_ns, u16 state, u16 0 }
 *            (t_ns non-decreasing)
 *   lines    u32 exact (0/1), u32 nrows (<= CP_MAX_LINES), u64 dropped,
 *            nrows x { u32 site (1..nsites), u32 line, u64 hits, time_ns,
 *            samples, sampled_ns, u32 text_len (<= 200, or 0xffffffff: no
 *            text), text (no NUL, no newline) }, rows sorted by (site, line)
 *            without duplicates
 *   trailer  "CPMEND\0\0"
 *
 * Nodes are written in preorder, thread by thread, so in a valid file a
 * node's parent has a smaller index and its first child and next sibling
 * larger ones.  The writer keeps at most CP_MIO_MAX_NODES nodes: once the
 * budget is spent the remaining subtrees (in preorder) are cut, their time
 * stays in their ancestors' inclusive time, and the number of nodes cut is
 * added to the model's dropped_nodes when the file is read.
 *
 * The reader is total: whatever the bytes, it terminates in time linear in
 * them, allocates memory bounded by them, never reads outside them and
 * never overflows.  It checks the magic, version, flags, the stated length
 * against the real one, every count against its bound and against the
 * bytes left, every string (length bound, NUL-terminated where stated, no
 * NUL inside), every site kind and index, every link (in range, ordered as
 * above, consistent with the parent, each node reached exactly once from
 * its thread's root) and every value (times, counts and RSS at most
 * CP_MIO_MAX_VALUE in magnitude, so sums over CP_MIO_MAX_FILES models
 * cannot wrap).  Anything else rejects the whole file. */
#ifndef CP_MODEL_IO_H
#define CP_MODEL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "codeprof/codeprof.h"
#include "model/model.h"

#define CP_MODEL_SUFFIX    ".cpmodel"
#define CP_MIO_VERSION     2u
#define CP_MIO_MAX_NODES   (1u << 20) /* written per file; ~150 MiB at most  */
#define CP_MIO_MAX_THREADS (1u << 16)
#define CP_MIO_MAX_SITES   (1u << 21)
#define CP_MIO_MAX_TEXT    8192u /* bytes of a site name or file name  */
#define CP_MIO_MAX_BYTES   ((uint64_t)1 << 30)
#define CP_MIO_MAX_VALUE   ((uint64_t)1 << 50) /* ~13 days in ns              */
#define CP_MIO_MAX_FILES   4096u               /* model files read per report        */
#define CP_MIO_MAX_SSTACKS ((1u << 24) + 1)     /* sampled stacks (+ "(other stacks)") */
#define CP_MIO_MAX_SFRAMES (1u << 26)           /* their frames                        */
#define CP_MIO_MAX_SDEPTH  256u                 /* frames of one stack                 */
#define CP_MIO_MAX_STIMELINE (1u << 21)         /* samples on the timeline             */

typedef enum cp_mio_status {
    CP_MIO_OK = 0,
    CP_MIO_EOPEN = -1,   /* cannot open / stat / read                  */
    CP_MIO_ENOTREG = -2, /* not a regular file                         */
    CP_MIO_EFORMAT = -3, /* a check failed: corrupt or truncated       */
    CP_MIO_ENOMEM = -4,
    CP_MIO_ETOOBIG = -5, /* larger than CP_MIO_MAX_BYTES / a bound     */
    CP_MIO_EWRITE = -6,  /* writing or renaming the file failed        */
    CP_MIO_EVERSION = -7, /* another format version (an older release's) */
} cp_mio_status;

/* A sentence saying what a status means (static text). */
const char *cp_mio_status_text(cp_mio_status st);

/* Encodes finished model `m` as worker `worker` into a new buffer (free
 * with free()), keeping at most `max_nodes` nodes (0: CP_MIO_MAX_NODES;
 * never more); *cut gets the number of nodes left out.  Fails with
 * CP_MIO_ETOOBIG when the model has more sites than CP_MIO_MAX_SITES. */
cp_mio_status cp_model_encode(const cp_model *m, int32_t worker, uint32_t max_nodes, void **out,
                              size_t *len, uint64_t *cut);

/* Writes `m` to "<dir>/<m->pid>.cpmodel" atomically: a temporary file in
 * the same directory (O_EXCL, O_NOFOLLOW), then rename.  On any failure
 * (ENOSPC, EIO, ...) the temporary file is removed, nothing is left under
 * the final name, `err` names the file and the reason, and the call
 * returns: it never raises a signal.  *cut (may be NULL) as above. */
cp_mio_status cp_model_write_file(const cp_model *m, const char *dir, int32_t worker, uint64_t *cut,
                                  codeprof_error *err);

/* Decodes a whole file (version CP_MIO_VERSION only: any other version is
 * refused with CP_MIO_EVERSION) held in memory (the fuzz harness's entry point)
 * into a new finished model (free with cp_model_free); *worker gets the
 * worker id of the header.  The model's cfg holds the defaults, its
 * clock_source is "", its role "worker-<id>". */
cp_mio_status cp_model_decode(const void *buf, size_t len, cp_model **out, int32_t *worker);

/* Opens `path` (O_RDONLY|O_NONBLOCK|O_NOFOLLOW), refuses anything but a
 * regular file of at most CP_MIO_MAX_BYTES, reads it and decodes it. */
cp_mio_status cp_model_read_file(const char *path, cp_model **out, int32_t *worker);

/* Merges every "*.cpmodel" file of `dir` except "<self_pid>.cpmodel" into
 * finished model `m` (cp_model_merge with the file's worker id), at most
 * CP_MIO_MAX_FILES of them.  A file that cannot be read, is corrupt, or
 * cannot be merged (out of memory) is skipped and counted in
 * m->data.spool_errors, and so is a worker of m->data.workers that closed
 * its spool cleanly (it writes its model first) but has no model here: its
 * write failed.  Returns the number of models merged. */
uint32_t cp_model_merge_dir(cp_model *m, const char *dir, int self_pid);

#endif /* CP_MODEL_IO_H */
