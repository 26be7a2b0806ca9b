/* output.c -- the public report entry points: snapshot the session into a
 * model, run the analysis rules over it, render it with one writer, and
 * hand the text back or write it atomically.  This is the only place where
 * the stages meet; each stage only reads the output of the one before. */
#include <stdlib.h>

#include "analysis/rules.h"
#include "codeprof/codeprof.h"
#include "core/errors.h"
#include "core/session.h"
#include "model/model.h"
#include "report/atomic_file.h"
#include "report/formats.h"
#include "report/report.h"
#include "report/strbuf.h"

static codeprof_status render(codeprof_session *s, codeprof_format fmt, cp_strbuf *sb) {
    if ((unsigned)fmt >= CODEPROF_FORMAT_COUNT_)
        return CODEPROF_EINVAL;
    cp_model *m = cp_session_snapshot(s);
    if (!m)
        return CODEPROF_ENOMEM;
    codeprof_status st = cp_rules_run(m) == 0 ? cp_format_write(m, fmt, sb) : CODEPROF_ENOMEM;
    cp_model_free(m);
    return st;
}

codeprof_status codeprof_session_report(codeprof_session *s, codeprof_format fmt, char **out,
                                        size_t *len) {
    if (!s || !out)
        return CODEPROF_EINVAL;
    *out = NULL;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    codeprof_status st = render(s, fmt, &sb);
    if (st != CODEPROF_OK) {
        cp_strbuf_free(&sb);
        return st;
    }
    size_t n = 0;
    *out = cp_strbuf_detach(&sb, &n);
    if (!*out)
        return CODEPROF_ENOMEM;
    if (len)
        *len = n;
    return CODEPROF_OK;
}

codeprof_status codeprof_session_save(codeprof_session *s, const char *path, codeprof_format fmt,
                                      codeprof_error *err) {
    if (!s)
        return cp_error_set(err, CODEPROF_EINVAL, "session", "session is NULL");
    if (!path || !*path)
        return cp_error_set(err, CODEPROF_EINVAL, "path", "report path is empty or NULL");
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    codeprof_status st = render(s, fmt, &sb);
    if (st != CODEPROF_OK) {
        cp_strbuf_free(&sb);
        return cp_error_set(err, st, "format", "cannot render the report: %s",
                            codeprof_status_message(st));
    }
    st = cp_write_file_atomic(path, sb.data ? sb.data : "", sb.len, err);
    cp_strbuf_free(&sb);
    return st;
}
