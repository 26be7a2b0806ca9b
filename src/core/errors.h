/* errors.h -- filling codeprof_error details (internal). */
#ifndef CP_ERRORS_H
#define CP_ERRORS_H

#include "codeprof/codeprof.h"

/* Fills `err` (if non-NULL) with code, field and a printf-style message;
 * returns `code` so callers can `return cp_error_set(...)`. */
codeprof_status cp_error_set(codeprof_error *err, codeprof_status code, const char *field,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
