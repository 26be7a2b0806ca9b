/* lineprof.c -- line-level timing of registered code objects (lineprof.h).
 *
 * Hot path (one line started): a probe of a small open-addressing table
 * keyed by the code object's address (registered code objects only, held
 * alive by the table), one load of the target session and one cp_emit().
 * No allocation, no lock.  Registration, install and removal run with the
 * GIL, off the hot path.
 */
#include "python/lineprof.h"

#include <frameobject.h>
#include <stdint.h>
#include <string.h>

#include "cpu/linesink.h"
#include "python/tracer.h"

#if PY_VERSION_HEX >= 0x030C0000
#define LP_MONITORING 1
#else
#define LP_MONITORING 0
/* 3.11: a trace function reads the frame's code and switches its line
 * events off; the frame object's layout is in the internal header. */
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#undef Py_BUILD_CORE
#endif

/* Registered code objects: at most LP_MAX_CODES (more are refused and
 * counted); the table has twice as many slots. */
#define LP_MAX_CODES 2048u
#define LP_SLOTS     4096u

static struct {
    PyObject *codes[LP_SLOTS]; /* strong references; NULL = empty           */
    uint32_t sites[LP_SLOTS];
    uint32_t n;
    uint64_t refused;     /* registrations over LP_MAX_CODES           */
    cp_session *s;        /* session recorded into; NULL when off      */
    cp_py_session *owner; /* borrowed: the Session whose start armed it */
    int active;           /* hooks installed                            */
    int warned_taken;     /* "lines_trace_taken" given for this run      */
#if LP_MONITORING
    long tool_id;
    long ev_line, ev_resume, ev_return, ev_yield, ev_unwind;
    PyObject *cb_line, *cb_resume, *cb_leave;
#endif
} lp_g;

static inline uint32_t lp_slot(const void *p) {
    uint64_t h = (uint64_t)(uintptr_t)p >> 4;
    h *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 40) & (LP_SLOTS - 1);
}

/* The site of a registered code object, or 0. */
static inline uint32_t lp_site(const void *code) {
    uint32_t j = lp_slot(code);
    for (;;) {
        const PyObject *c = lp_g.codes[j];
        if (c == code)
            return lp_g.sites[j];
        if (!c)
            return 0;
        j = (j + 1) & (LP_SLOTS - 1);
    }
}

/* Emits a line event for the registered code `code` (site `site`). */
static inline void lp_emit(uint32_t site, uint16_t flags, uint32_t line, uint64_t frame) {
    cp_session *s = lp_g.s;
    if (s && site)
        cp_emit(s, CP_EV_LINE, flags, site, line, frame);
}

static void lp_warn(const char *code, const char *msg) {
    if (lp_g.s)
        (void)codeprof_session_warn(lp_g.s, code, msg);
}

/* ------------------------------------------------------------------------ */
/* 3.12+: sys.monitoring                                                     */
/* ------------------------------------------------------------------------ */
#if LP_MONITORING

static inline uint64_t frame_id(void) {
    PyThreadState *ts = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030D0000
    return (uint64_t)(uintptr_t)ts->current_frame;
#else
    return (uint64_t)(uintptr_t)ts->cframe->current_frame;
#endif
}

/* LINE(code, line_number) */
static PyObject *cb_line(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (__builtin_expect(nargs >= 2, 1)) {
        uint32_t site = lp_site(args[0]);
        if (site && lp_g.s) {
            long line = PyLong_AsLong(args[1]);
            if (line > 0)
                lp_emit(site, 0, (uint32_t)line, frame_id());
            else
                PyErr_Clear();
        }
    }
    Py_RETURN_NONE;
}

/* PY_RESUME(code, offset): a generator or coroutine continues mid-line. */
static PyObject *cb_resume(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs >= 2 && PyCode_Check(args[0])) {
        uint32_t site = lp_site(args[0]);
        if (site && lp_g.s) {
            long off = PyLong_AsLong(args[1]);
            int line = off >= 0 ? PyCode_Addr2Line((PyCodeObject *)args[0], (int)off) : -1;
            if (line > 0 && line != ((PyCodeObject *)args[0])->co_firstlineno)
                lp_emit(site, CP_LINEF_RESUME, (uint32_t)line, frame_id());
            PyErr_Clear();
        }
    }
    Py_RETURN_NONE;
}

/* PY_RETURN / PY_YIELD / PY_UNWIND(code, offset, value): the frame leaves. */
static PyObject *cb_leave(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs >= 1) {
        uint32_t site = lp_site(args[0]);
        if (site)
            lp_emit(site, 0, 0, frame_id());
    }
    Py_RETURN_NONE;
}

static PyMethodDef cb_line_def = {"_line_event", (PyCFunction)(void (*)(void))cb_line,
                                  METH_FASTCALL, NULL};
static PyMethodDef cb_resume_def = {"_line_resume", (PyCFunction)(void (*)(void))cb_resume,
                                    METH_FASTCALL, NULL};
static PyMethodDef cb_leave_def = {"_line_leave", (PyCFunction)(void (*)(void))cb_leave,
                                   METH_FASTCALL, NULL};

static PyObject *monitoring(void) {
    PyObject *mon = PySys_GetObject("monitoring"); /* borrowed */
    if (!mon)
        PyErr_SetString(PyExc_RuntimeError, "sys.monitoring is not available");
    return mon;
}

static int event_bit(PyObject *events, const char *name, long *out) {
    PyObject *v = PyObject_GetAttrString(events, name);
    if (!v)
        return -1;
    *out = PyLong_AsLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static long local_mask(void) {
    return lp_g.ev_line | lp_g.ev_resume | lp_g.ev_return | lp_g.ev_yield;
}

/* Sets the local events of one registered code object. */
static int code_events(PyObject *mon, PyObject *code, long mask) {
    PyObject *r = PyObject_CallMethod(mon, "set_local_events", "lOl", lp_g.tool_id, code, mask);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static void uninstall(void) {
    PyObject *mon = monitoring();
    if (!mon || lp_g.tool_id < 0) {
        PyErr_Clear();
        lp_g.active = 0;
        return;
    }
    for (uint32_t j = 0; j < LP_SLOTS; j++)
        if (lp_g.codes[j] && code_events(mon, lp_g.codes[j], 0) < 0)
            PyErr_Clear();
    PyObject *r = PyObject_CallMethod(mon, "set_events", "ll", lp_g.tool_id, 0L);
    Py_XDECREF(r);
    const long evs[] = {lp_g.ev_line, lp_g.ev_resume, lp_g.ev_return, lp_g.ev_yield,
                        lp_g.ev_unwind};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        r = PyObject_CallMethod(mon, "register_callback", "llO", lp_g.tool_id, evs[i], Py_None);
        Py_XDECREF(r);
    }
    r = PyObject_CallMethod(mon, "free_tool_id", "l", lp_g.tool_id);
    Py_XDECREF(r);
    PyErr_Clear();
    lp_g.tool_id = -1;
    lp_g.active = 0;
}

/* Takes a tool id, registers the callbacks and the events of every
 * registered code object.  0, 1 when no tool id is free (nothing done),
 * -1 with an exception set (nothing left installed). */
static int install(void) {
    static const long candidates[] = {5, 4, 3};
    PyObject *mon = monitoring();
    if (!mon)
        return -1;
    PyObject *events = PyObject_GetAttrString(mon, "events");
    if (!events)
        return -1;
    int bad = event_bit(events, "LINE", &lp_g.ev_line) ||
              event_bit(events, "PY_RESUME", &lp_g.ev_resume) ||
              event_bit(events, "PY_RETURN", &lp_g.ev_return) ||
              event_bit(events, "PY_YIELD", &lp_g.ev_yield) ||
              event_bit(events, "PY_UNWIND", &lp_g.ev_unwind);
    Py_DECREF(events);
    if (bad)
        return -1;
    if (!lp_g.cb_line) {
        lp_g.cb_line = PyCFunction_New(&cb_line_def, NULL);
        lp_g.cb_resume = PyCFunction_New(&cb_resume_def, NULL);
        lp_g.cb_leave = PyCFunction_New(&cb_leave_def, NULL);
        if (!lp_g.cb_line || !lp_g.cb_resume || !lp_g.cb_leave) {
            Py_CLEAR(lp_g.cb_line);
            Py_CLEAR(lp_g.cb_resume);
            Py_CLEAR(lp_g.cb_leave);
            return -1;
        }
    }
    lp_g.tool_id = -1;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && lp_g.tool_id < 0; i++) {
        PyObject *cur = PyObject_CallMethod(mon, "get_tool", "l", candidates[i]);
        if (!cur)
            return -1;
        int free_id = cur == Py_None;
        Py_DECREF(cur);
        if (!free_id)
            continue;
        PyObject *r =
            PyObject_CallMethod(mon, "use_tool_id", "ls", candidates[i], "codeprof-lines");
        if (!r) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError))
                return -1;
            PyErr_Clear(); /* taken meanwhile: try the next */
            continue;
        }
        Py_DECREF(r);
        lp_g.tool_id = candidates[i];
    }
    if (lp_g.tool_id < 0)
        return 1;
    lp_g.active = 1;
    struct {
        long ev;
        PyObject *cb;
    } regs[] = {{lp_g.ev_line, lp_g.cb_line},
                {lp_g.ev_resume, lp_g.cb_resume},
                {lp_g.ev_return, lp_g.cb_leave},
                {lp_g.ev_yield, lp_g.cb_leave},
                {lp_g.ev_unwind, lp_g.cb_leave}};
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++) {
        PyObject *r = PyObject_CallMethod(mon, "register_callback", "llO", lp_g.tool_id, regs[i].ev,
                                          regs[i].cb);
        if (!r)
            goto fail;
        Py_DECREF(r);
    }
    PyObject *r = PyObject_CallMethod(mon, "set_events", "ll", lp_g.tool_id, lp_g.ev_unwind);
    if (!r)
        goto fail;
    Py_DECREF(r);
    for (uint32_t j = 0; j < LP_SLOTS; j++)
        if (lp_g.codes[j] && code_events(mon, lp_g.codes[j], local_mask()) < 0)
            goto fail;
    return 0;
fail:;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    uninstall();
    PyErr_Restore(et, ev, etb);
    return -1;
}

/* A code object registered while the hooks are on. */
static int enable_code(PyObject *code) {
    PyObject *mon = monitoring();
    return mon ? code_events(mon, code, local_mask()) : -1;
}

static const char *mechanism(void) {
    return lp_g.active ? "sys.monitoring" : "off";
}

/* ------------------------------------------------------------------------ */
/* 3.11: the trace hook                                                      */
/* ------------------------------------------------------------------------ */
#else

static int lp_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    (void)arg;
    uint32_t site = lp_site(frame->f_frame->f_code);
    if (!site) {
        if (what == PyTrace_CALL)
            frame->f_trace_lines = 0; /* no line events for this frame */
        return 0;
    }
    switch (what) {
    case PyTrace_LINE:
        lp_emit(site, 0, (uint32_t)PyFrame_GetLineNumber(frame), (uint64_t)(uintptr_t)frame);
        break;
    case PyTrace_CALL:
        /* A generator or coroutine resumed mid-line (a fresh frame's first
         * line comes as a line event; so does a new generator's, whose
         * first resume stands on the def line). */
        if (PyFrame_GetLasti(frame) > 0) {
            int line = PyFrame_GetLineNumber(frame);
            if (line > 0 && line != frame->f_frame->f_code->co_firstlineno)
                lp_emit(site, CP_LINEF_RESUME, (uint32_t)line, (uint64_t)(uintptr_t)frame);
        }
        break;
    case PyTrace_RETURN: /* a return, a yield, or an exception unwinding */
        lp_emit(site, 0, 0, (uint64_t)(uintptr_t)frame);
        break;
    default:
        break;
    }
    return 0;
}

/* The calling thread's line_profile_enter() nesting, and whether the
 * outermost armed enter put our trace function on it. */
typedef struct lp_thread {
    uint32_t depth;
    int ours;
} lp_thread;
static _Thread_local lp_thread lp_tls;

/* Puts the trace function on the calling thread unless another tool holds
 * its trace slot (then warns once per run). */
static void trace_on(PyThreadState *t) {
    if (t->c_tracefunc == lp_trace) {
        lp_tls.ours = 1;
        return;
    }
    if (t->c_tracefunc != NULL) {
        if (!lp_g.warned_taken) {
            lp_g.warned_taken = 1;
            lp_warn("lines_trace_taken",
                    "line timing: another tool (sys.settrace: a debugger, coverage) holds the "
                    "trace hook of a thread that called a line-timed function; that thread's "
                    "lines are not timed");
        }
        return;
    }
    if (_PyEval_SetTrace(t, lp_trace, NULL) < 0)
        PyErr_Clear();
    else
        lp_tls.ours = 1;
}

static void trace_off(PyThreadState *t) {
    if (lp_tls.ours && t->c_tracefunc == lp_trace && _PyEval_SetTrace(t, NULL, NULL) < 0)
        PyErr_Clear();
    lp_tls.ours = 0;
}

/* line_profile_enter(): a line-timed function is about to run (a call or a
 * resume) on this thread. */
static PyObject *line_profile_enter(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    lp_tls.depth++;
    if (lp_g.active && !lp_tls.ours)
        trace_on(PyThreadState_Get());
    Py_RETURN_NONE;
}

/* line_profile_leave(): it returned, yielded or raised. */
static PyObject *line_profile_leave(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    if (lp_tls.depth > 0 && --lp_tls.depth == 0 && lp_tls.ours)
        trace_off(PyThreadState_Get());
    Py_RETURN_NONE;
}

static void uninstall(void) {
    /* Threads still inside a line-timed call keep the trace function until
     * they leave it (nothing is emitted meanwhile: no session). */
    if (lp_tls.ours && PyThreadState_Get()->c_tracefunc != lp_trace && !lp_g.warned_taken)
        lp_warn("lines_trace_taken", "line timing: another tool (sys.settrace) took this "
                                     "thread's trace hook during a line-timed call");
    trace_off(PyThreadState_Get());
    lp_g.active = 0;
}

static int install(void) {
    lp_g.active = 1; /* armed: line_profile_enter installs per thread */
    if (lp_tls.depth > 0)
        trace_on(PyThreadState_Get());
    return 0;
}

static int enable_code(PyObject *code) {
    (void)code; /* the trace function looks every frame up */
    return 0;
}

static const char *mechanism(void) {
    return lp_g.active ? "settrace" : "off";
}
#endif

/* ------------------------------------------------------------------------ */
/* Registration and the session hooks                                        */
/* ------------------------------------------------------------------------ */

static void arm(void);

static PyObject *line_profile_add(PyObject *mod, PyObject *obj) {
    (void)mod;
    PyObject *code = obj, *globals = NULL;
    if (PyFunction_Check(obj)) {
        code = PyFunction_GetCode(obj);       /* borrowed */
        globals = PyFunction_GetGlobals(obj); /* borrowed */
    }
    if (!PyCode_Check(code)) {
        PyErr_Format(PyExc_TypeError,
                     "line_profile_add(): expected a function or a code object, got %.80s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    uint32_t site = lp_site(code);
    if (site)
        return PyLong_FromUnsignedLong(site);
    if (lp_g.n >= LP_MAX_CODES) {
        lp_g.refused++;
        return PyLong_FromLong(0);
    }
    cp_py_tracer_classify_ready();
    site = cp_py_tracer_code_site((PyCodeObject *)code, globals, 1);
    if (site == CP_PY_CODE_SITE_OWN || site == 0)
        return PyLong_FromLong(0); /* the profiler's own code, or no site */
    uint32_t j = lp_slot(code);
    while (lp_g.codes[j])
        j = (j + 1) & (LP_SLOTS - 1);
    lp_g.codes[j] = Py_NewRef(code);
    lp_g.sites[j] = site;
    lp_g.n++;
    if (lp_g.active) {
        if (enable_code(code) < 0)
            return NULL;
    } else if (lp_g.owner) {
        arm(); /* the first function of a run that times lines */
    }
    return PyLong_FromUnsignedLong(site);
}

/* Unregisters every code object (after removing the hooks). */
static void clear_all(void) {
    if (lp_g.active)
        uninstall();
    for (uint32_t j = 0; j < LP_SLOTS; j++) {
        Py_CLEAR(lp_g.codes[j]);
        lp_g.sites[j] = 0;
    }
    lp_g.n = 0;
}

static PyObject *line_profile_clear(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    clear_all();
    Py_RETURN_NONE;
}

static PyObject *line_profile_state(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return Py_BuildValue("{s:I,s:K,s:O,s:s,s:l}", "registered", (unsigned)lp_g.n, "refused",
                         (unsigned long long)lp_g.refused, "active",
                         lp_g.active ? Py_True : Py_False, "mechanism", mechanism(), "tool_id",
#if LP_MONITORING
                         lp_g.active ? lp_g.tool_id : -1L
#else
                         -1L
#endif
    );
}

static PyMethodDef lp_methods[] = {
    {"line_profile_add", line_profile_add, METH_O,
     "line_profile_add(func_or_code) -> int\n\n"
     "Register a function (or code object) for line-level timing; returns its site id (0 "
     "when refused: the profiler's own code, or more than 2048 registered).  Lines are timed "
     "while a session created with lines=True runs."},
#if !LP_MONITORING
    {"line_profile_enter", line_profile_enter, METH_NOARGS,
     "line_profile_enter() -> None\n\n"
     "3.11: a line-timed function is about to run on this thread (the decorators call it "
     "around each call and resume): the trace hook is on the thread until the matching "
     "line_profile_leave()."},
    {"line_profile_leave", line_profile_leave, METH_NOARGS,
     "line_profile_leave() -> None\n\nThe matching end of line_profile_enter()."},
#endif
    {"line_profile_clear", line_profile_clear, METH_NOARGS,
     "line_profile_clear() -> None\n\n"
     "Unregister every function from line timing (hooks removed; a running session with "
     "lines=True stays armed for functions registered later)."},
    {"line_profile_state", line_profile_state, METH_NOARGS,
     "line_profile_state() -> dict\n\n"
     "registered, refused, active, mechanism ('sys.monitoring', 'settrace' or 'off'), "
     "tool_id."},
    {NULL, NULL, 0, NULL},
};

int cp_py_lineprof_init(PyObject *module) {
#if LP_MONITORING
    if (!lp_g.active)
        lp_g.tool_id = -1;
#endif
    return PyModule_AddFunctions(module, lp_methods);
}

/* Installs the hooks for the owner session; a failure becomes a session
 * warning and leaves line timing off for this run.  Never raises. */
static void arm(void) {
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    int rc = install();
    if (rc != 0) {
        if (rc > 0)
            lp_warn("lines_no_tool_id", "line timing is off: sys.monitoring tool ids 3, 4 and 5 "
                                        "are all taken by other tools");
        else
            lp_warn("lines_install_failed", "line timing is off: its hooks could not be "
                                            "installed");
        PyErr_Clear();
        lp_g.owner = NULL;
        lp_g.s = NULL;
    }
    PyErr_Restore(et, ev, etb);
}

void cp_py_lineprof_session_start(cp_py_session *self) {
    if (!self->s || !(self->s->cfg.flags & CODEPROF_CFG_LINES) || lp_g.owner)
        return;
    lp_g.owner = self;
    lp_g.s = self->s;
    lp_g.warned_taken = 0;
    /* Nothing registered yet: no hook at all (on 3.11 the trace hook would
     * slow every line of every thread); the first registration arms it. */
    if (lp_g.n > 0)
        arm();
}

void cp_py_lineprof_session_stop(cp_py_session *self) {
    if (!lp_g.owner || lp_g.owner != self)
        return;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (lp_g.active)
        uninstall();
    lp_g.owner = NULL;
    lp_g.s = NULL;
    PyErr_Restore(et, ev, etb);
}

void cp_py_lineprof_module_free(void) {
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    clear_all();
    lp_g.owner = NULL;
    lp_g.s = NULL;
#if LP_MONITORING
    Py_CLEAR(lp_g.cb_line);
    Py_CLEAR(lp_g.cb_resume);
    Py_CLEAR(lp_g.cb_leave);
#endif
    PyErr_Clear();
    PyErr_Restore(et, ev, etb);
}
