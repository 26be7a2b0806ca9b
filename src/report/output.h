/* output.h -- the session's report model: snapshot + rules, built once and
 * reused until new data arrives (output.c).  Every report entry point
 * (codeprof_session_report / _save in every format, the extension's
 * _core.Model views) renders from it.
 *
 * Reuse: with the model the session keeps a fingerprint of what the
 * session had recorded when the model was built: per thread the events
 * aggregated and dropped, exited threads, the data log's record count, the
 * loader descriptions, the role, the warnings, the run state and run
 * time, the process id, and the worker files of the spool directory
 * (name, inode, size, mtime; any spool not yet closed by its worker makes
 * the model never reusable, since a live worker's records land in shared
 * mappings without changing the file).  The fingerprint is taken before
 * the model is built (after consuming every published event), so a reused
 * model always holds at least what the session holds.  While the session
 * is running and nothing is recorded, a reused model's duration is the
 * one it was built with.
 */
#ifndef CP_OUTPUT_H
#define CP_OUTPUT_H

#include <stdint.h>

#include "codeprof/codeprof.h"
#include "model/model.h"

/* A counted reference to a finished model with its findings. */
typedef struct cp_model_ref cp_model_ref;

/* The session's current report model: the cached one when nothing was
 * recorded since it was built, else a new snapshot with the rules run
 * (which replaces the cached one).  Returns a new reference (release with
 * cp_model_ref_release); NULL with *st = CODEPROF_ENOMEM on OOM, or
 * CODEPROF_EINVAL when `s` is NULL.  Thread-safe; concurrent callers are
 * serialised. */
cp_model_ref *cp_session_model(codeprof_session *s, codeprof_status *st);

/* The model (valid while the reference is held).  Never NULL. */
const cp_model *cp_model_ref_get(const cp_model_ref *r);

struct cp_pruned_tree;

/* The model's call tree pruned by its report policy (tree_prune.h), built
 * on first use and kept with the model, so the views of one model prune
 * once.  NULL on OOM.  Thread-safe; valid while the reference is held. */
const struct cp_pruned_tree *cp_model_ref_pruned(cp_model_ref *r);

/* Drops a reference; the last one frees the model.  NULL is a no-op.
 * Thread-safe. */
void cp_model_ref_release(cp_model_ref *r);

/* Models built for reports by this session in this process so far, and
 * reports served from the cached one (for tests and benchmarks). */
void cp_session_model_counts(codeprof_session *s, uint64_t *built, uint64_t *reused);

#endif /* CP_OUTPUT_H */
