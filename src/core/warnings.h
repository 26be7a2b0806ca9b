/* warnings.h -- a session's warnings: short (code, message) notes that a
 * component records while profiling (e.g. "the tracer lost thread N") and
 * that the report shows in meta.warnings.
 *
 * Bounded: the first CP_WARNINGS_MAX are kept (strings copied), the rest are
 * only counted.  Thread-safe (one mutex per session's list).  The list is
 * created on the first codeprof_session_warn() and freed with the session
 * (cp_warnings_free from codeprof_session_free). */
#ifndef CP_WARNINGS_H
#define CP_WARNINGS_H

#include <stddef.h>
#include <stdint.h>

#include "core/session.h"

#define CP_WARNINGS_MAX 64
#define CP_WARNING_CODE_MAX 64     /* bytes kept of a code, NUL included    */
#define CP_WARNING_MESSAGE_MAX 512 /* bytes kept of a message, NUL included */

typedef struct cp_warning {
    char code[CP_WARNING_CODE_MAX];
    char message[CP_WARNING_MESSAGE_MAX];
    uint64_t unix_ns; /* wall clock when recorded */
} cp_warning;

/* Copies up to `cap` of the session's warnings (oldest first) into `out`
 * and returns how many were copied; `*dropped` (may be NULL) receives the
 * number not kept because the list was full.  A session without warnings
 * gives 0.  Thread-safe. */
size_t cp_session_warnings(cp_session *s, cp_warning *out, size_t cap, uint64_t *dropped);

/* Empties a session's list (reset).  NULL is a no-op.  Thread-safe. */
void cp_warnings_clear(struct cp_warnings *w);

/* Frees a session's list (NULL is a no-op).  Only from codeprof_session_free. */
void cp_warnings_free(struct cp_warnings *w);

#endif /* CP_WARNINGS_H */
