/* formats.h -- the dispatch from a report format to its writer
 * (formats.c); format names and file endings are public
 * (codeprof_format_name / _parse / _for_path in codeprof.h). */
#ifndef CP_FORMATS_H
#define CP_FORMATS_H

#include "codeprof/codeprof.h"
#include "model/model.h"
#include "report/strbuf.h"

/* Appends model `m` (finished, rules run) rendered in `fmt` to `out`.
 * CODEPROF_OK; CODEPROF_EINVAL for an unknown format; CODEPROF_ENOMEM
 * when `out` ran out of memory (then it must be freed). */
codeprof_status cp_format_write(const cp_model *m, codeprof_format fmt, cp_strbuf *out);

#endif /* CP_FORMATS_H */
