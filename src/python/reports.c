/* reports.c -- saved reports read back (src/model/model_json.h) and
 * rendered, re-exported or compared: _core.render_report, _core.save_report
 * and _core.diff_reports, the functions `codeprof report` and `codeprof
 * diff` are built on.  The GIL is released while files are read and
 * reports rendered. */
#include <stdlib.h>
#include <string.h>

#include "model/model_json.h"
#include "python/ext.h"
#include "report/atomic_file.h"
#include "report/formats.h"
#include "report/report_diff.h"
#include "report/strbuf.h"

/* Parses an optional format name; NULL/None leaves *fmt and sets *given 0. */
static int parse_format(PyObject *o, const char *fname, codeprof_format *fmt, int *given) {
    *given = 0;
    if (!o || o == Py_None)
        return 0;
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: format must be a str, got %.80s", fname,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    const char *s = PyUnicode_AsUTF8(o);
    if (!s)
        return -1;
    if (codeprof_format_parse(s, fmt) != CODEPROF_OK) {
        PyErr_Format(PyExc_ValueError,
                     "%s: format must be one of 'json', 'text', 'pstats', 'speedscope', "
                     "'collapsed', 'trace', got '%s'",
                     fname, s);
        return -1;
    }
    *given = 1;
    return 0;
}

/* Reads the report at `path` (bytes from PyUnicode_FSConverter) into a model,
 * without the GIL; raises and returns NULL on failure. */
static cp_model *read_model(PyObject *path_b, PyObject *path_obj, const char *fname) {
    const char *path = PyBytes_AS_STRING(path_b);
    cp_model *m = NULL;
    codeprof_error err;
    memset(&err, 0, sizeof err);
    int os_errno = 0;
    codeprof_status st;
    Py_BEGIN_ALLOW_THREADS st = cp_model_read_json_file(path, &m, &err, &os_errno);
    Py_END_ALLOW_THREADS if (st != CODEPROF_OK) {
        cp_py_raise(st, &err, fname, os_errno, path_obj);
        return NULL;
    }
    return m;
}

/* Renders `m` in `fmt` into `sb` without the GIL. */
static codeprof_status render(const cp_model *m, codeprof_format fmt, cp_strbuf *sb) {
    codeprof_status st;
    Py_BEGIN_ALLOW_THREADS st = cp_format_write(m, NULL, fmt, sb);
    Py_END_ALLOW_THREADS return st;
}

static PyObject *render_error(codeprof_status st, codeprof_format fmt, const char *fname) {
    codeprof_error err;
    memset(&err, 0, sizeof err);
    if (st == CODEPROF_ENOTSUP)
        snprintf(err.message, sizeof err.message, "no writer for the format '%s' in this build",
                 codeprof_format_name(fmt));
    return cp_py_raise(st, &err, fname, 0, NULL);
}

PyObject *cp_py_render_report(PyObject *mod, PyObject *args, PyObject *kwargs) {
    (void)mod;
    static char *kwlist[] = {"in_path", "format", NULL};
    PyObject *path_b = NULL, *fmt_o = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|O:render_report", kwlist,
                                     PyUnicode_FSConverter, &path_b, &fmt_o))
        return NULL;
    codeprof_format fmt = CODEPROF_FORMAT_TEXT;
    int given;
    PyObject *path_obj = PyTuple_Size(args) > 0 ? PyTuple_GET_ITEM(args, 0) : NULL;
    if (parse_format(fmt_o, "render_report()", &fmt, &given) != 0) {
        Py_DECREF(path_b);
        return NULL;
    }
    cp_model *m = read_model(path_b, path_obj, "render_report()");
    Py_DECREF(path_b);
    if (!m)
        return NULL;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    codeprof_status st = render(m, fmt, &sb);
    cp_model_free(m);
    if (st != CODEPROF_OK) {
        cp_strbuf_free(&sb);
        return render_error(st, fmt, "render_report()");
    }
    const char *data = sb.data ? sb.data : "";
    PyObject *res = fmt == CODEPROF_FORMAT_PSTATS
                        ? PyBytes_FromStringAndSize(data, (Py_ssize_t)sb.len)
                        : PyUnicode_DecodeUTF8(data, (Py_ssize_t)sb.len, "replace");
    cp_strbuf_free(&sb);
    return res;
}

PyObject *cp_py_save_report(PyObject *mod, PyObject *args, PyObject *kwargs) {
    (void)mod;
    static char *kwlist[] = {"in_path", "out_path", "format", NULL};
    PyObject *in_b = NULL, *out_b = NULL, *fmt_o = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&|O:save_report", kwlist,
                                     PyUnicode_FSConverter, &in_b, PyUnicode_FSConverter, &out_b,
                                     &fmt_o))
        return NULL;
    PyObject *res = NULL;
    cp_model *m = NULL;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    const char *out_path = PyBytes_AS_STRING(out_b);
    codeprof_format fmt = CODEPROF_FORMAT_JSON, by_path;
    int given;
    int has_ending = codeprof_format_for_path(out_path, &by_path) == CODEPROF_OK;
    if (parse_format(fmt_o, "save_report()", &fmt, &given) != 0)
        goto out;
    if (!given && !has_ending) {
        PyErr_Format(PyExc_ValueError,
                     "save_report(): %s: cannot tell the format from the file name: expected an "
                     "ending .json, .txt, .prof/.pstats, .speedscope.json, "
                     ".trace.json/.perfetto.json or .collapsed, or a format argument",
                     out_path);
        goto out;
    }
    if (given && has_ending && by_path != fmt) {
        PyErr_Format(PyExc_ValueError,
                     "save_report(): %s: the file name asks for the format '%s' but '%s' was "
                     "requested: change the ending or the format",
                     out_path, codeprof_format_name(by_path), codeprof_format_name(fmt));
        goto out;
    }
    if (!given)
        fmt = by_path;
    m = read_model(in_b, PyTuple_Size(args) > 0 ? PyTuple_GET_ITEM(args, 0) : NULL,
                   "save_report()");
    if (!m)
        goto out;
    codeprof_status st = render(m, fmt, &sb);
    if (st != CODEPROF_OK) {
        render_error(st, fmt, "save_report()");
        goto out;
    }
    codeprof_error err;
    memset(&err, 0, sizeof err);
    Py_BEGIN_ALLOW_THREADS st =
        cp_write_file_atomic(out_path, sb.data ? sb.data : "", sb.len, &err);
    Py_END_ALLOW_THREADS if (st != CODEPROF_OK) {
        cp_py_raise(st, &err, "save_report()", 0,
                    PyTuple_Size(args) > 1 ? PyTuple_GET_ITEM(args, 1) : NULL);
        goto out;
    }
    res = PyUnicode_FromString(codeprof_format_name(fmt));
out:
    cp_strbuf_free(&sb);
    cp_model_free(m);
    Py_DECREF(in_b);
    Py_DECREF(out_b);
    return res;
}

PyObject *cp_py_diff_reports(PyObject *mod, PyObject *args, PyObject *kwargs) {
    (void)mod;
    static char *kwlist[] = {"a_path", "b_path", "format", NULL};
    PyObject *a_b = NULL, *b_b = NULL;
    const char *format = "text";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&|s:diff_reports", kwlist,
                                     PyUnicode_FSConverter, &a_b, PyUnicode_FSConverter, &b_b,
                                     &format))
        return NULL;
    PyObject *res = NULL;
    cp_model *a = NULL, *b = NULL;
    int json = strcmp(format, "json") == 0;
    if (!json && strcmp(format, "text") != 0) {
        PyErr_Format(PyExc_ValueError, "diff_reports(): format must be 'text' or 'json', got '%s'",
                     format);
        goto out;
    }
    a = read_model(a_b, PyTuple_Size(args) > 0 ? PyTuple_GET_ITEM(args, 0) : NULL,
                   "diff_reports()");
    if (!a)
        goto out;
    b = read_model(b_b, PyTuple_Size(args) > 1 ? PyTuple_GET_ITEM(args, 1) : NULL,
                   "diff_reports()");
    if (!b)
        goto out;
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    int rc;
    const char *na = PyBytes_AS_STRING(a_b), *nb = PyBytes_AS_STRING(b_b);
    Py_BEGIN_ALLOW_THREADS rc =
        json ? cp_report_diff_json(a, b, na, nb, &sb) : cp_report_diff_text(a, b, na, nb, &sb);
    Py_END_ALLOW_THREADS if (rc != 0 || !cp_strbuf_ok(&sb)) PyErr_NoMemory();
    else res = PyUnicode_DecodeUTF8(sb.data ? sb.data : "", (Py_ssize_t)sb.len, "replace");
    cp_strbuf_free(&sb);
out:
    cp_model_free(a);
    cp_model_free(b);
    Py_DECREF(a_b);
    Py_DECREF(b_b);
    return res;
}
