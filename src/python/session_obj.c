/* session_obj.c -- the Session type: one codeprof_session per object. */
#include <errno.h>
#include <string.h>

#include "python/ext.h"
#include "python/lineprof.h"
#include "core/warnings.h"
#include "memory/memsampler.h"
#include "report/output.h"
#include "python/memhook.h"
#include "python/tracer.h"

int cp_py_session_check(cp_py_session *self) {
    if (self->s)
        return 0;
    PyErr_SetString(PyExc_RuntimeError,
                    "Session is not initialised (Session.__init__ was not called)");
    return -1;
}

static PyObject *session_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    (void)args;
    (void)kwargs;
    cp_py_session *self = (cp_py_session *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->s = NULL;
    self->st = PyType_GetModuleState(type);
    if (!self->st) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* Stores a Python int keyword into a uint32 config field. */
static int cfg_u32(PyObject *o, const char *field, uint32_t *out) {
    if (!o)
        return 0;
    char what[96];
    snprintf(what, sizeof what, "Session(): %s", field);
    return cp_py_as_u32(o, what, out);
}

static int session_init(PyObject *op, PyObject *args, PyObject *kwargs) {
    cp_py_session *self = (cp_py_session *)op;
    static char *kwlist[] = {"buffer_events",
                             "max_nodes",
                             "max_samples",
                             "slow_function_s",
                             "memory_intensive_bytes",
                             "slow_data_loading_s",
                             "slow_preprocessing_s",
                             "slow_gpu_op_s",
                             "data_stall_fraction",
                             "scope_cpu",
                             "percentiles",
                             "report_top_functions",
                             "report_tree_max_nodes",
                             "report_tree_min_share",
                             "timeline_traced",
                             "timeline_traced_events",
                             "memory_mode",
                             "memory_stack_depth",
                             "memory_sample_bytes",
                             "memory_max_blocks",
                             "memory_max_stacks",
                             "memory_max_snapshots",
                             "memory_timeline_samples",
                             "memory_sample_interval_s",
                             "memory_snapshots",
                             "gc",
                             "sample_interval_s",
                             "sample_mode",
                             "sample_max_stacks",
                             "sample_native",
                             "lines",
                             "gpu",
                             "gpu_memory",
                             "gpu_sync",
                             "gpu_sample_interval_s",
                             "gpu_max_ops",
                             NULL};
    if (self->s) {
        PyErr_SetString(PyExc_RuntimeError, "Session.__init__(): the session is already "
                                            "initialised; create a new Session instead");
        return -1;
    }
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    PyObject *buffer_events = NULL, *max_nodes = NULL, *max_samples = NULL;
    PyObject *top_functions = NULL, *tree_max_nodes = NULL, *traced_events = NULL;
    int scope_cpu = 1, percentiles = 1, timeline_traced = 0, mem_snapshots = 0, gc = 0;
    PyObject *mem_mode = NULL, *mem_depth = NULL, *mem_sample_bytes = NULL, *mem_blocks = NULL;
    PyObject *mem_stacks = NULL, *mem_snaps = NULL, *mem_tl = NULL;
    PyObject *sample_mode = NULL, *sample_stacks = NULL, *gpu_ops = NULL;
    int sample_native = 0, lines = 0, gpu = 0, gpu_memory = 0, gpu_sync = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs,
                                     "|$OOOddddddppOOdpOOOOOOOOdppdOOpppppdO:Session", kwlist,
                                     &buffer_events, &max_nodes, &max_samples,
                                     &cfg.slow_function_s, &cfg.memory_intensive_bytes,
                                     &cfg.slow_data_loading_s, &cfg.slow_preprocessing_s,
                                     &cfg.slow_gpu_op_s, &cfg.data_stall_fraction, &scope_cpu,
                                     &percentiles, &top_functions, &tree_max_nodes,
                                     &cfg.report_tree_min_share, &timeline_traced,
                                     &traced_events, &mem_mode, &mem_depth, &mem_sample_bytes,
                                     &mem_blocks, &mem_stacks, &mem_snaps, &mem_tl,
                                     &cfg.memory_sample_interval_s, &mem_snapshots, &gc,
                                     &cfg.sample_interval_s, &sample_mode, &sample_stacks,
                                     &sample_native, &lines, &gpu, &gpu_memory, &gpu_sync,
                                     &cfg.gpu_sample_interval_s, &gpu_ops))
        return -1;
    if (mem_sample_bytes) {
        unsigned long long v = PyLong_AsUnsignedLongLong(mem_sample_bytes);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError,
                         "Session(): memory_sample_bytes must be an integer in [1, 2**40]");
            return -1;
        }
        cfg.memory_sample_bytes = (uint64_t)v;
    }
    if (cfg_u32(buffer_events, "buffer_events", &cfg.buffer_events) < 0 ||
        cfg_u32(max_nodes, "max_nodes", &cfg.max_nodes) < 0 ||
        cfg_u32(max_samples, "max_samples", &cfg.max_samples) < 0 ||
        cfg_u32(top_functions, "report_top_functions", &cfg.report_top_functions) < 0 ||
        cfg_u32(tree_max_nodes, "report_tree_max_nodes", &cfg.report_tree_max_nodes) < 0 ||
        cfg_u32(traced_events, "timeline_traced_events", &cfg.timeline_traced_events) < 0 ||
        cfg_u32(mem_mode, "memory_mode", &cfg.memory_mode) < 0 ||
        cfg_u32(mem_depth, "memory_stack_depth", &cfg.memory_stack_depth) < 0 ||
        cfg_u32(mem_blocks, "memory_max_blocks", &cfg.memory_max_blocks) < 0 ||
        cfg_u32(mem_stacks, "memory_max_stacks", &cfg.memory_max_stacks) < 0 ||
        cfg_u32(mem_snaps, "memory_max_snapshots", &cfg.memory_max_snapshots) < 0 ||
        cfg_u32(mem_tl, "memory_timeline_samples", &cfg.memory_timeline_samples) < 0 ||
        cfg_u32(sample_mode, "sample_mode", &cfg.sample_mode) < 0 ||
        cfg_u32(sample_stacks, "sample_max_stacks", &cfg.sample_max_stacks) < 0 ||
        cfg_u32(gpu_ops, "gpu_max_ops", &cfg.gpu_max_ops) < 0)
        return -1;
    cfg.flags = 0;
    if (scope_cpu)
        cfg.flags |= CODEPROF_CFG_SCOPE_CPU;
    if (percentiles)
        cfg.flags |= CODEPROF_CFG_PERCENTILES;
    if (timeline_traced)
        cfg.flags |= CODEPROF_CFG_TIMELINE_TRACED;
    if (mem_snapshots)
        cfg.flags |= CODEPROF_CFG_MEM_SNAPSHOTS;
    if (gc)
        cfg.flags |= CODEPROF_CFG_GC;
    if (sample_native)
        cfg.flags |= CODEPROF_CFG_SAMPLE_NATIVE;
    if (lines)
        cfg.flags |= CODEPROF_CFG_LINES;
    if (gpu)
        cfg.flags |= CODEPROF_CFG_GPU;
    if (gpu_memory)
        cfg.flags |= CODEPROF_CFG_GPU_MEMORY;
    if (gpu_sync)
        cfg.flags |= CODEPROF_CFG_GPU_SYNC;

    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_session *s = NULL;
    codeprof_status st = codeprof_session_new(&cfg, &s, &err);
    if (st != CODEPROF_OK) {
        cp_py_raise(st, &err, "Session(): invalid configuration", 0, NULL);
        return -1;
    }
    self->s = s;
    return 0;
}

static void session_dealloc(PyObject *op) {
    cp_py_session *self = (cp_py_session *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->s) {
        /* Hooks first: they point at the session we are about to free. */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        if (cp_py_tracer_stop(self) < 0)
            PyErr_WriteUnraisable(op);
        cp_py_memhooks_stop(self);
        cp_py_lineprof_session_stop(self);
        PyErr_Restore(et, ev, etb);
        codeprof_session *s = self->s;
        self->s = NULL;
        codeprof_session_free(s);
    }
    tp->tp_free(op);
    Py_DECREF(tp);
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                 */
/* ------------------------------------------------------------------------ */

static PyObject *session_start(PyObject *op, PyObject *args, PyObject *kwargs) {
    cp_py_session *self = (cp_py_session *)op;
    static char *kwlist[] = {"trace_python", NULL};
    int trace = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:start", kwlist, &trace))
        return NULL;
    if (cp_py_session_check(self) < 0)
        return NULL;
    if (trace && cp_py_tracer_check_free(self) < 0)
        return NULL;
    codeprof_status st = codeprof_session_start(self->s);
    if (st == CODEPROF_ESTATE)
        return cp_py_raise(st, NULL, "Session.start(): the session is already running", 0, NULL);
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "Session.start()", 0, NULL);
    if (trace && cp_py_tracer_start(self) < 0) {
        /* Leave the session as it was: stopped.  Keep the tracer's error. */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        codeprof_status st2 = codeprof_session_stop(self->s);
        (void)st2; /* it was started above; stop can only succeed */
        PyErr_Restore(et, ev, etb);
        return NULL;
    }
    cp_py_memhooks_start(self); /* allocator, numpy and gc hooks per the config */
    cp_py_lineprof_session_start(self); /* line timing (lines=True) */
    Py_RETURN_NONE;
}

static PyObject *session_stop(PyObject *op, PyObject *unused) {
    (void)unused;
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    if (!codeprof_session_is_running(self->s))
        return cp_py_raise(CODEPROF_ESTATE, NULL, "Session.stop(): the session is not running",
                           0, NULL);
    int tr = cp_py_tracer_stop(self);
    cp_py_memhooks_stop(self);
    cp_py_lineprof_session_stop(self);
    codeprof_status st;
    Py_BEGIN_ALLOW_THREADS
    st = codeprof_session_stop(self->s);
    Py_END_ALLOW_THREADS
    if (tr < 0)
        return NULL;
    if (st == CODEPROF_ESTATE)
        return cp_py_raise(st, NULL, "Session.stop(): the session is not running", 0, NULL);
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "Session.stop()", 0, NULL);
    Py_RETURN_NONE;
}

static PyObject *session_reset(PyObject *op, PyObject *unused) {
    (void)unused;
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    codeprof_status st = codeprof_session_reset(self->s);
    if (st == CODEPROF_ESTATE)
        return cp_py_raise(st, NULL,
                           "Session.reset(): the session is running; call stop() first", 0,
                           NULL);
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "Session.reset()", 0, NULL);
    Py_RETURN_NONE;
}

static PyObject *session_set_role(PyObject *op, PyObject *arg) {
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "Session.set_role(): role must be a str, got %.80s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    const char *role = PyUnicode_AsUTF8(arg);
    if (!role)
        return NULL;
    codeprof_status st = codeprof_session_set_role(self->s, role);
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "Session.set_role(): role", 0, NULL);
    Py_RETURN_NONE;
}

static PyObject *session_get_running(PyObject *op, void *closure) {
    (void)closure;
    cp_py_session *self = (cp_py_session *)op;
    return PyBool_FromLong(self->s && codeprof_session_is_running(self->s));
}

static PyObject *session_get_tracer(PyObject *op, void *closure) {
    (void)closure;
    return PyUnicode_FromString(cp_py_tracer_mode((cp_py_session *)op));
}

/* ------------------------------------------------------------------------ */
/* Scopes                                                                    */
/* ------------------------------------------------------------------------ */

/* Parses (site[, flags]) from a fastcall vector. */
static int parse_site_flags(PyObject *const *args, Py_ssize_t nargs, const char *fname,
                            uint32_t *site, uint32_t *flags) {
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "Session.%s() takes (site, flags=0), got %zd arguments",
                     fname, nargs);
        return -1;
    }
    *flags = 0;
    if (!PyLong_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "Session.%s(): site must be an int, got %.80s", fname,
                     Py_TYPE(args[0])->tp_name);
        return -1;
    }
    /* Fast path: small non-negative ints, no error text to build. */
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(args[0], &overflow);
    if (!overflow && v > 0 && v <= (long long)UINT32_MAX) {
        *site = (uint32_t)v;
    } else {
        char what[64];
        snprintf(what, sizeof what, "Session.%s(): site", fname);
        if (cp_py_as_u32(args[0], what, site) < 0)
            return -1;
    }
    if (nargs == 2) {
        v = PyLong_Check(args[1]) ? PyLong_AsLongLongAndOverflow(args[1], &overflow) : -1;
        if (!overflow && v >= 0 && v <= (long long)UINT32_MAX) {
            *flags = (uint32_t)v;
        } else {
            PyErr_Clear();
            char what[64];
            snprintf(what, sizeof what, "Session.%s(): flags", fname);
            if (cp_py_as_u32(args[1], what, flags) < 0)
                return -1;
        }
    }
    return 0;
}

static PyObject *session_scope(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    /* Accept flags= as a keyword too (not a hot path). */
    PyObject *vec[2] = {NULL, NULL};
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "Session.scope() takes (site, flags=0), got %zd arguments",
                     nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        vec[i] = args[i];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        int slot = PyUnicode_CompareWithASCIIString(k, "site") == 0    ? 0
                   : PyUnicode_CompareWithASCIIString(k, "flags") == 0 ? 1
                                                                        : -1;
        if (slot < 0 || vec[slot]) {
            PyErr_Format(PyExc_TypeError, "Session.scope(): unexpected or repeated keyword %R",
                         k);
            return NULL;
        }
        vec[slot] = args[nargs + i];
    }
    if (!vec[0]) {
        PyErr_SetString(PyExc_TypeError, "Session.scope(): missing argument 'site'");
        return NULL;
    }
    uint32_t site, flags;
    if (parse_site_flags(vec, vec[1] ? 2 : 1, "scope", &site, &flags) < 0)
        return NULL;
    return cp_py_scope_new(self, site, flags);
}

/* site(name, file=None, line=0, kind=SITE_SCOPE): a site of this
 * session's own table (freed with the session). */
static PyObject *session_site(PyObject *op, PyObject *args, PyObject *kwargs) {
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    return cp_py_intern_site(self->s, args, kwargs, "Session.site()");
}

static PyObject *session_enter(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    cp_py_session *self = (cp_py_session *)op;
    uint32_t site, flags;
    if (cp_py_session_check(self) < 0 || parse_site_flags(args, nargs, "enter", &site, &flags) < 0)
        return NULL;
    codeprof_scope_begin(self->s, site, flags);
    Py_RETURN_NONE;
}

static PyObject *session_exit(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    cp_py_session *self = (cp_py_session *)op;
    uint32_t site, flags;
    if (cp_py_session_check(self) < 0 || parse_site_flags(args, nargs, "exit", &site, &flags) < 0)
        return NULL;
    codeprof_scope_end(self->s, site, flags);
    Py_RETURN_NONE;
}

static PyObject *session_attr(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "Session.attr() takes (key, value), got %zd arguments",
                     nargs);
        return NULL;
    }
    uint32_t key;
    if (cp_py_as_u32(args[0], "Session.attr(): key", &key) < 0)
        return NULL;
    if (key < CODEPROF_ATTR_INDEX || key > CODEPROF_ATTR_CANCEL) {
        PyErr_Format(PyExc_ValueError,
                     "Session.attr(): key must be one of the ATTR_* constants, got %u",
                     key);
        return NULL;
    }
    long long v = PyLong_AsLongLong(args[1]);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    codeprof_scope_attr(self->s, (codeprof_attr_key)key, (int64_t)v);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* Reports                                                                   */
/* ------------------------------------------------------------------------ */

static PyObject *report(cp_py_session *self, codeprof_format fmt, const char *what) {
    if (cp_py_session_check(self) < 0)
        return NULL;
    char *out = NULL;
    size_t len = 0;
    codeprof_status st;
    Py_BEGIN_ALLOW_THREADS
    st = codeprof_session_report(self->s, fmt, &out, &len);
    Py_END_ALLOW_THREADS
    if (st != CODEPROF_OK) {
        codeprof_free(out);
        return cp_py_raise(st, NULL, what, 0, NULL);
    }
    if (!out)
        return cp_py_raise(CODEPROF_ENOMEM, NULL, what, 0, NULL);
    PyObject *r = PyUnicode_DecodeUTF8(out, (Py_ssize_t)len, "replace");
    codeprof_free(out);
    return r;
}

static PyObject *session_report_json(PyObject *op, PyObject *unused) {
    (void)unused;
    return report((cp_py_session *)op, CODEPROF_FORMAT_JSON, "Session.report_json()");
}

static PyObject *session_report_text(PyObject *op, PyObject *unused) {
    (void)unused;
    return report((cp_py_session *)op, CODEPROF_FORMAT_TEXT, "Session.report_text()");
}

static PyObject *session_model(PyObject *op, PyObject *unused) {
    (void)unused;
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    codeprof_status st;
    cp_model_ref *ref;
    Py_BEGIN_ALLOW_THREADS
    ref = cp_session_model(self->s, &st);
    Py_END_ALLOW_THREADS
    if (!ref)
        return cp_py_raise(st, NULL, "Session.model()", 0, NULL);
    return cp_py_model_new(self->st, ref);
}

static PyObject *session_model_counts(PyObject *op, PyObject *unused) {
    (void)unused;
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    uint64_t built, reused;
    cp_session_model_counts(self->s, &built, &reused);
    return Py_BuildValue("(KK)", (unsigned long long)built, (unsigned long long)reused);
}

static PyObject *session_save(PyObject *op, PyObject *args, PyObject *kwargs) {
    cp_py_session *self = (cp_py_session *)op;
    static char *kwlist[] = {"path", "format", NULL};
    PyObject *path_b = NULL; /* bytes, from PyUnicode_FSConverter */
    const char *format = "json";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|s:save", kwlist, PyUnicode_FSConverter,
                                     &path_b, &format))
        return NULL;
    if (cp_py_session_check(self) < 0) {
        Py_DECREF(path_b);
        return NULL;
    }
    codeprof_format fmt;
    if (codeprof_format_parse(format, &fmt) != CODEPROF_OK) {
        Py_DECREF(path_b);
        PyErr_Format(PyExc_ValueError,
                     "Session.save(): format must be one of 'json', 'text', 'pstats', "
                     "'speedscope', 'collapsed', 'trace', got '%s'", format);
        return NULL;
    }
    const char *path = PyBytes_AS_STRING(path_b);
    codeprof_error err;
    memset(&err, 0, sizeof err);
    codeprof_status st;
    int os_errno;
    Py_BEGIN_ALLOW_THREADS
    errno = 0;
    st = codeprof_session_save(self->s, path, fmt, &err);
    os_errno = errno;
    Py_END_ALLOW_THREADS
    if (st != CODEPROF_OK) {
        PyObject *fname = PyUnicode_DecodeFSDefault(path);
        Py_DECREF(path_b);
        if (!fname)
            return NULL;
        cp_py_raise(st, &err, NULL, st == CODEPROF_EIO ? os_errno : 0, fname);
        Py_DECREF(fname);
        return NULL;
    }
    Py_DECREF(path_b);
    Py_RETURN_NONE;
}

/* ---- data loading ------------------------------------------------------ */

static PyObject *session_describe_loader(PyObject *op, PyObject *args, PyObject *kwargs) {
    cp_py_session *self = (cp_py_session *)op;
    static char *kwlist[] = {"site",       "num_workers",        "batch_size", "prefetch_factor",
                             "pin_memory", "persistent_workers", "uses_gpu",   "iterable",
                             NULL};
    unsigned int site;
    int num_workers = 0, batch_size = 0, prefetch = 0;
    int pin = 0, persistent = 0, gpu = 0, iterable = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "I|iiipppp:describe_loader", kwlist, &site,
                                     &num_workers, &batch_size, &prefetch, &pin, &persistent,
                                     &gpu, &iterable))
        return NULL;
    if (cp_py_session_check(self) < 0)
        return NULL;
    if (num_workers < 0 || batch_size < 0 || prefetch < 0) {
        PyErr_Format(PyExc_ValueError,
                     "Session.describe_loader(): num_workers, batch_size and prefetch_factor "
                     "must be >= 0, got %d, %d, %d",
                     num_workers, batch_size, prefetch);
        return NULL;
    }
    codeprof_loader_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.num_workers = num_workers;
    d.batch_size = batch_size;
    d.prefetch_factor = prefetch;
    d.pin_memory = (uint8_t)pin;
    d.persistent_workers = (uint8_t)persistent;
    d.uses_gpu = (uint8_t)gpu;
    d.iterable = (uint8_t)iterable;
    codeprof_status st = codeprof_loader_describe(self->s, site, &d);
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "Session.describe_loader(): site", 0, NULL);
    Py_RETURN_NONE;
}

/* watch_process(pid, worker=-1, loader=0) -> bool (procmem, memsampler.c) */
static PyObject *session_watch_process(PyObject *op, PyObject *args, PyObject *kwargs) {
    cp_py_session *self = (cp_py_session *)op;
    static char *kwlist[] = {"pid", "worker", "loader", NULL};
    int pid, worker = -1;
    PyObject *loader_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|iO:watch_process", kwlist, &pid, &worker,
                                     &loader_obj))
        return NULL;
    if (cp_py_session_check(self) < 0)
        return NULL;
    unsigned long loader = 0;
    if (loader_obj != Py_None) {
        loader = PyLong_AsUnsignedLong(loader_obj);
        if (PyErr_Occurred() || loader > UINT32_MAX) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError,
                         "Session.watch_process(): loader must be a site id (int in [0, 2**32)) "
                         "or None, got %R", loader_obj);
            return NULL;
        }
    }
    if (pid <= 0) {
        PyErr_Format(PyExc_ValueError, "Session.watch_process(): pid must be > 0, got %d", pid);
        return NULL;
    }
    codeprof_status st = codeprof_session_watch_process(self->s, pid, worker, (uint32_t)loader);
    if (st == CODEPROF_ENOTSUP)
        Py_RETURN_FALSE; /* the session's memory sampler is off */
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "Session.watch_process(): pid", 0, NULL);
    Py_RETURN_TRUE;
}

/* describe_dataset_memory(loader, dataset, text, py_objects=0, array_bytes=0) -> bool */
static PyObject *session_describe_dataset_memory(PyObject *op, PyObject *args,
                                                 PyObject *kwargs) {
    cp_py_session *self = (cp_py_session *)op;
    static char *kwlist[] = {"loader", "dataset", "text", "py_objects", "array_bytes", NULL};
    unsigned int loader, dataset;
    const char *text;
    unsigned long long py_objects = 0, array_bytes = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "IIs|KK:describe_dataset_memory", kwlist,
                                     &loader, &dataset, &text, &py_objects, &array_bytes))
        return NULL;
    if (cp_py_session_check(self) < 0)
        return NULL;
    if (!loader) {
        PyErr_SetString(PyExc_ValueError,
                        "Session.describe_dataset_memory(): loader must be a loader site id, got 0");
        return NULL;
    }
    cp_memsampler *ms = cp_memsampler_of(self->s);
    if (!ms)
        Py_RETURN_FALSE;
    codeprof_status st = cp_memsampler_describe_dataset(ms, loader, dataset, text, py_objects,
                                                        array_bytes);
    if (st == CODEPROF_ENOMEM)
        Py_RETURN_FALSE; /* CP_MEM_MAX_DSNOTES loaders described already */
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "Session.describe_dataset_memory(): loader", 0, NULL);
    Py_RETURN_TRUE;
}

static PyObject *session_set_spool_dir(PyObject *op, PyObject *arg) {
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    PyObject *b = NULL;
    if (arg != Py_None && !PyUnicode_FSConverter(arg, &b))
        return NULL;
    codeprof_status st = codeprof_session_set_spool_dir(self->s, b ? PyBytes_AS_STRING(b) : NULL);
    Py_XDECREF(b);
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL, "Session.set_spool_dir(): dir", 0, NULL);
    Py_RETURN_NONE;
}

static PyObject *session_attach_worker(PyObject *op, PyObject *args) {
    cp_py_session *self = (cp_py_session *)op;
    PyObject *b = NULL;
    int worker_id;
    if (!PyArg_ParseTuple(args, "O&i:attach_worker", PyUnicode_FSConverter, &b, &worker_id))
        return NULL;
    if (cp_py_session_check(self) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    codeprof_error err;
    memset(&err, 0, sizeof err);
    errno = 0;
    codeprof_status st =
        codeprof_session_attach_worker(self->s, PyBytes_AS_STRING(b), worker_id, &err);
    int os_errno = errno;
    if (st != CODEPROF_OK) {
        PyObject *fname = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(b));
        Py_DECREF(b);
        if (!fname)
            return NULL;
        cp_py_raise(st, &err, NULL, st == CODEPROF_EIO ? os_errno : 0, fname);
        Py_DECREF(fname);
        return NULL;
    }
    Py_DECREF(b);
    Py_RETURN_NONE;
}

static PyObject *session_close_worker(PyObject *op, PyObject *unused) {
    (void)unused;
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    codeprof_session_close_worker(self->s);
    Py_RETURN_NONE;
}

static PyObject *session_warnings(PyObject *op, PyObject *unused) {
    (void)unused;
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    cp_warning *w = PyMem_Calloc(CP_WARNINGS_MAX, sizeof *w);
    if (!w)
        return PyErr_NoMemory();
    uint64_t dropped = 0;
    size_t n = cp_session_warnings(self->s, w, CP_WARNINGS_MAX, &dropped);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *item = Py_BuildValue("(ss)", w[i].code, w[i].message);
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    PyMem_Free(w);
    return list;
}

static PyObject *session_repr(PyObject *op) {
    cp_py_session *self = (cp_py_session *)op;
    const char *state = !self->s                              ? "uninitialised"
                        : codeprof_session_is_running(self->s) ? "running"
                                                               : "stopped";
    return PyUnicode_FromFormat("<code_profiler._core.Session at %p %s, tracer=%s>", op, state,
                                cp_py_tracer_mode(self));
}

/* Session.set_sampling(on): codeprof_session_sampling (a fork child or a
 * DataLoader worker turns the stack sampler off or on in its process). */
static PyObject *session_set_sampling(PyObject *op, PyObject *arg) {
    cp_py_session *self = (cp_py_session *)op;
    if (cp_py_session_check(self) < 0)
        return NULL;
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    codeprof_status st;
    Py_BEGIN_ALLOW_THREADS
    st = codeprof_session_sampling(self->s, on);
    Py_END_ALLOW_THREADS
    if (st != CODEPROF_OK)
        return cp_py_raise(st, NULL,
                           "Session.set_sampling(): the session has no stack sampler "
                           "(sample_interval_s is 0)",
                           0, NULL);
    Py_RETURN_NONE;
}

static PyMethodDef session_methods[] = {
    {"start", (PyCFunction)(void (*)(void))session_start, METH_VARARGS | METH_KEYWORDS,
     "start(trace_python=False)\n\nStart recording; RuntimeError if already running."},
    {"stop", session_stop, METH_NOARGS, "stop()\n\nStop recording and fold."},
    {"reset", session_reset, METH_NOARGS, "reset()\n\nDiscard recorded data."},
    {"set_sampling", session_set_sampling, METH_O,
     "set_sampling(on)\n\nTurn the stack sampler on or off in this process."},
    {"set_role", session_set_role, METH_O, "set_role(role)\n\nTag the process role."},
    {"scope", (PyCFunction)(void (*)(void))session_scope, METH_FASTCALL | METH_KEYWORDS,
     "scope(site, flags=0) -> Scope\n\nA C-implemented context manager timing `site`."},
    {"site", (PyCFunction)(void (*)(void))session_site, METH_VARARGS | METH_KEYWORDS,
     "site(name, file=None, line=0, kind=SITE_SCOPE)\n\nIntern a site in this session's own "
     "table (freed with the session; past max_sites names fold into one '(other ...)' site)."},
    {"enter", (PyCFunction)(void (*)(void))session_enter, METH_FASTCALL,
     "enter(site, flags=0)\n\nOpen a scope for `site` on this thread."},
    {"exit", (PyCFunction)(void (*)(void))session_exit, METH_FASTCALL,
     "exit(site, flags=0)\n\nClose the innermost scope for `site` on this thread."},
    {"attr", (PyCFunction)(void (*)(void))session_attr, METH_FASTCALL,
     "attr(key, value)\n\nAttach a value to the innermost open scope."},
    {"describe_loader", (PyCFunction)(void (*)(void))session_describe_loader,
     METH_VARARGS | METH_KEYWORDS,
     "describe_loader(site, num_workers=0, batch_size=0, prefetch_factor=0, pin_memory=False,\n"
     "                persistent_workers=False, uses_gpu=False, iterable=False)\n\n"
     "Record the configuration of the loader whose batch scopes use `site`."},
    {"watch_process", (PyCFunction)(void (*)(void))session_watch_process,
     METH_VARARGS | METH_KEYWORDS,
     "watch_process(pid, worker=-1, loader=None) -> bool\n\nFollow process `pid` (DataLoader "
     "worker `worker` of the loader site `loader`): RSS, PSS and USS sampled every "
     "memory_sample_interval_s until it exits.  False when the memory sampler is off."},
    {"describe_dataset_memory", (PyCFunction)(void (*)(void))session_describe_dataset_memory,
     METH_VARARGS | METH_KEYWORDS,
     "describe_dataset_memory(loader, dataset, text, py_objects=0, array_bytes=0) -> bool\n\n"
     "Describe the large containers of the dataset behind the loader site `loader` (for the "
     "copy-on-write rule CP-DATA-009).  False when the memory sampler is off."},
    {"set_spool_dir", session_set_spool_dir, METH_O,
     "set_spool_dir(dir)\n\nMerge worker spool files from `dir` into reports (None clears)."},
    {"attach_worker", session_attach_worker, METH_VARARGS,
     "attach_worker(dir, worker_id)\n\nIn a worker process: write data-loading records to a "
     "spool file in `dir`."},
    {"close_worker", session_close_worker, METH_NOARGS,
     "close_worker()\n\nMark this worker's spool complete (clean shutdown)."},
    {"warnings", session_warnings, METH_NOARGS,
     "warnings() -> list[tuple[str, str]]\n\nThe (code, message) warnings recorded so far "
     "(e.g. 'tracer_thread_lost'), oldest first."},
    {"report_json", session_report_json, METH_NOARGS,
     "report_json() -> str\n\nThe versioned JSON report of all data so far."},
    {"report_text", session_report_text, METH_NOARGS,
     "report_text() -> str\n\nHuman summary of all data so far."},
    {"model", session_model, METH_NOARGS,
     "model() -> Model\n\nThe report model of all data so far, with its findings: the "
     "cached one while nothing new was recorded, else a new snapshot."},
    {"model_counts", session_model_counts, METH_NOARGS,
     "model_counts() -> (built, reused)\n\nReport models built by this session and reports "
     "served from the cached one."},
    {"save", (PyCFunction)(void (*)(void))session_save, METH_VARARGS | METH_KEYWORDS,
     "save(path, format='json')\n\nWrite the report atomically."},
    {NULL, NULL, 0, NULL},
};

int cp_py_is_own_method(const PyMethodDef *ml) {
    /* Scope.__exit__ is called like any bound C method when a `with` block
     * ends; recording it would wrap the scope's own end event. */
    return (ml >= session_methods &&
            ml < session_methods + sizeof session_methods / sizeof session_methods[0]) ||
           cp_py_scope_is_own_method(ml) || cp_py_model_is_own_method(ml);
}

static PyGetSetDef session_getset[] = {
    {"running", session_get_running, NULL, "True while recording.", NULL},
    {"tracer", session_get_tracer, NULL,
     "'off', 'setprofile' or 'sys.monitoring': the tracer mechanism active for this session.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot session_slots[] = {
    {Py_tp_new, session_new},
    {Py_tp_init, session_init},
    {Py_tp_dealloc, session_dealloc},
    {Py_tp_repr, session_repr},
    {Py_tp_methods, session_methods},
    {Py_tp_getset, session_getset},
    {Py_tp_doc, "Session(**config)\n\nA libcodeprof session (codeprof_session). Keyword "
                "arguments are the fields of codeprof_config."},
    {0, NULL},
};

PyType_Spec cp_py_session_spec = {
    .name = "code_profiler._core.Session",
    .basicsize = sizeof(cp_py_session),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = session_slots,
};
