/* build.h -- building a cp_model from recorded state.  The only code that
 * reads the session, thread trees and the process-wide site table
 * (core/site.h) on behalf of a model; it maps global site ids to model
 * indices.  Never called by rules or writers.
 *
 * Construction in three steps, so the engine can hand over each thread's
 * tree when it has it (a drain thread, a thread that exited):
 *
 *   cp_model *m = cp_model_begin(&cfg, pid, role, start_unix_ns);
 *   cp_model_add_tree(m, tree, os_tid, index, events, dropped);  // per tree
 *   cp_model_finish(m, session);
 *
 * cp_model_add_tree copies what it needs; the tree may be freed or reset
 * right after.  Not thread-safe: one thread builds a given model.  On any
 * failure the caller frees the model with cp_model_free (also valid on an
 * unfinished model).
 */
#ifndef CP_MODEL_BUILD_H
#define CP_MODEL_BUILD_H

#include "core/session.h"
#include "cpu/cct.h"
#include "model/model.h"

/* A new, empty model under construction; NULL on OOM.  `role` may be NULL
 * (""); it is copied. */
cp_model *cp_model_begin(const codeprof_config *cfg, int pid, const char *role,
                         uint64_t start_unix_ns);

/* Adds one thread's tree: its nodes (times converted to ns, node
 * percentiles computed), its per-site table (read through
 * cp_tree_func_foreach) summed into the model's flat table, and its
 * counters (dropped nodes, unmatched exits, truncated scopes, allocation
 * failures) plus `events`
 * and `dropped` into meta.  The thread is tagged with the model's pid and
 * worker -1.  Returns 0, or -1 on OOM (the model is then only fit for
 * cp_model_free). */
int cp_model_add_tree(cp_model *m, const cp_thread_tree *t, uint64_t os_tid, uint32_t index,
                      uint64_t events, uint64_t dropped);

/* Completes the model: the flat table (percentiles from the union of the
 * node samples, sorted by inclusive time), threads ordered by index, the
 * duration and the data section from `s` (NULL: no data section, duration
 * left as is).  Frees the construction state.  Returns 0, or -1 on OOM. */
int cp_model_finish(cp_model *m, cp_session *s);

/* The model index of process-wide site id `gid`, interning the site into
 * the model on first use; 0 for gid 0, or on OOM.  For build code only
 * (data_model.c maps the main process's data records with it). */
uint32_t cp_model_map_site(cp_model *m, uint32_t gid);

struct cp_timeline;
/* Appends the events of a counter store (a sampler thread's own bounded
 * store: the memory sampler's RSS, the NVML sampler's readings) to
 * m->timeline with their sites mapped into the model.  0, or -1 on OOM. */
int cp_model_append_counters(cp_model *m, const struct cp_timeline *tl);

/* Room for `need` nodes in m->nodes / `need` threads in m->threads of a
 * model under construction (build code that appends nodes itself:
 * build_sample.c).  0, or -1 on OOM (arrays unchanged). */
int cp_model_reserve_nodes(cp_model *m, uint64_t need);
int cp_model_reserve_threads(cp_model *m, uint32_t need);

/* cp_model_begin + cp_model_add_tree for every thread of `s` in
 * registration order + cp_model_finish.  Called by cp_session_snapshot
 * with the session mutex held and every buffer folded.  Returns a new
 * model (free with cp_model_free) or NULL on OOM. */
cp_model *cp_model_build(cp_session *s);

#endif
