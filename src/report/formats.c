/* formats.c -- report formats: their names, the file endings that ask for
 * them, and the one dispatch from a format to its writer.  Every writer
 * reads a finished model (with its findings) and appends to a buffer. */
#include <string.h>

#include "codeprof/codeprof.h"
#include "export/collapsed.h"
#include "export/pstats.h"
#include "export/speedscope.h"
#include "export/trace.h"
#include "report/formats.h"
#include "report/report.h"

static const char *const format_names[CODEPROF_FORMAT_COUNT_] = {
    [CODEPROF_FORMAT_JSON] = "json",           [CODEPROF_FORMAT_TEXT] = "text",
    [CODEPROF_FORMAT_PSTATS] = "pstats",       [CODEPROF_FORMAT_SPEEDSCOPE] = "speedscope",
    [CODEPROF_FORMAT_COLLAPSED] = "collapsed", [CODEPROF_FORMAT_TRACE] = "trace",
};

/* File endings, longest first where one ends another. */
static const struct {
    const char *suffix;
    codeprof_format fmt;
} endings[] = {
    {".speedscope.json", CODEPROF_FORMAT_SPEEDSCOPE},
    {".perfetto.json", CODEPROF_FORMAT_TRACE},
    {".trace.json", CODEPROF_FORMAT_TRACE},
    {".json", CODEPROF_FORMAT_JSON},
    {".txt", CODEPROF_FORMAT_TEXT},
    {".pstats", CODEPROF_FORMAT_PSTATS},
    {".prof", CODEPROF_FORMAT_PSTATS},
    {".collapsed", CODEPROF_FORMAT_COLLAPSED},
};

const char *codeprof_format_name(codeprof_format fmt) {
    return (unsigned)fmt < CODEPROF_FORMAT_COUNT_ ? format_names[fmt] : NULL;
}

codeprof_status codeprof_format_parse(const char *name, codeprof_format *fmt) {
    if (!name || !fmt)
        return CODEPROF_EINVAL;
    for (unsigned i = 0; i < CODEPROF_FORMAT_COUNT_; i++)
        if (strcmp(name, format_names[i]) == 0) {
            *fmt = (codeprof_format)i;
            return CODEPROF_OK;
        }
    return CODEPROF_EINVAL;
}

codeprof_status codeprof_format_for_path(const char *path, codeprof_format *fmt) {
    if (!path || !fmt)
        return CODEPROF_EINVAL;
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof endings / sizeof endings[0]; i++) {
        size_t k = strlen(endings[i].suffix);
        if (n > k && memcmp(path + n - k, endings[i].suffix, k) == 0) {
            *fmt = endings[i].fmt;
            return CODEPROF_OK;
        }
    }
    return CODEPROF_EINVAL;
}

codeprof_status cp_format_write(const cp_model *m, const struct cp_pruned_tree *pt,
                                codeprof_format fmt, cp_strbuf *out) {
    int rc;
    switch (fmt) {
    case CODEPROF_FORMAT_JSON:
        rc = cp_report_json_with(m, pt, out);
        break;
    case CODEPROF_FORMAT_TEXT:
        rc = cp_report_text(m, out);
        break;
    case CODEPROF_FORMAT_PSTATS:
        rc = cp_export_pstats(m, out);
        break;
    case CODEPROF_FORMAT_SPEEDSCOPE:
        rc = cp_export_speedscope(m, out);
        break;
    case CODEPROF_FORMAT_COLLAPSED:
        rc = cp_export_collapsed(m, out);
        break;
    case CODEPROF_FORMAT_TRACE:
        rc = cp_export_trace(m, out);
        break;
    default:
        return CODEPROF_EINVAL;
    }
    return rc == 0 && cp_strbuf_ok(out) ? CODEPROF_OK : CODEPROF_ENOMEM;
}
