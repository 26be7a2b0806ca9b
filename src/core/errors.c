/* errors.c -- see errors.h. */
#include "core/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

codeprof_status cp_error_set(codeprof_error *err, codeprof_status code, const char *field,
                             const char *fmt, ...) {
    if (!err)
        return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}
