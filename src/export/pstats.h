/* pstats.h -- the pstats export: the file cProfile's Stats.dump_stats
 * writes (Python's marshal format, version 4), which pstats.Stats,
 * snakeviz and other pstats readers load.  docs/exports.md describes it.
 *
 * The marshalled object is a dict
 *     {(file, line, name): (cc, nc, tt, ct, callers)}
 * with callers {(file, line, name): (nc, cc, tt, ct)}, as cProfile makes
 * them: nc counts every call, cc the primitive ones (a call whose site is
 * not already on its call path); tt is self time and ct inclusive time of
 * primitive calls, in seconds.  Callers come from the call-tree edges,
 * summed over threads and processes.  Sites without a file (native
 * functions, named scopes) get cProfile's built-in key ('~', 0, name);
 * native functions are named "<built-in method NAME>".
 */
#ifndef CP_EXPORT_PSTATS_H
#define CP_EXPORT_PSTATS_H

#include "model/model.h"
#include "report/strbuf.h"

/* Appends model `m`'s call trees as a pstats file to `out`.  Returns 0, or
 * -1 on OOM (then `out` may be in its oom state).  Reads `m` only. */
int cp_export_pstats(const cp_model *m, cp_strbuf *out);

#endif /* CP_EXPORT_PSTATS_H */
