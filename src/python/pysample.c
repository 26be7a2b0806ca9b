/* pysample.c -- the stack sampler's reader for CPython 3.11-3.13
 * (pysample.h).
 *
 * Runs on the sampler thread (src/sampling/sampler.c), never with the GIL,
 * while the threads it reads keep running.  Every read of the
 * interpreter's memory goes through cp_py_safe_read (process_vm_readv on
 * our own pid: an unmapped page gives an error, never a fault; a pipe
 * write as the fallback where that call is refused), and everything read
 * is validated before use: a thread state must point back at our
 * interpreter, a code object's type must be &PyCode_Type, a function's
 * &PyFunction_Type, a string's length is bounded, stacks are capped at
 * CP_STACK_MAX_DEPTH frames and chains at a walk limit (cycle guard).  A
 * stale value (a frame popped under us) is caught by these checks or
 * gives a plausible but stale frame for one sample; failures are counted
 * in the sampler's read_errors.
 *
 * Sites: a code object is identified by its address and validated each
 * time by (co_name, co_filename, co_firstlineno, co_linetable) pointers.
 * On a miss its strings are copied and its site interned exactly as the
 * tracer does ("module.qualname", file, first line, CODEPROF_SITE_PYTHON;
 * the module is the frame's globals' __name__, read from the dict's first
 * entries, else the function's __module__), so traced and sampled nodes
 * share sites.  Code of the
 * code_profiler package is left out (the profiler is invisible).  Lines
 * come from the code object's location table (PEP 626/657 format, the
 * same in 3.11-3.13), copied once per code object.
 *
 * Finalization: an atexit hook closes the reader (and waits until no tick
 * is inside it) before the interpreter starts tearing down; the reader
 * also checks the runtime's finalizing flag each tick.
 */

#include "python/pysample.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/site.h"
#include "sampling/sample_session.h"
#include "sampling/sampler.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#error "pysample.c reads the interpreter's frames of CPython 3.11 to 3.13 only"
#endif

#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#undef Py_BUILD_CORE

#include "python/pygil.h"

/* A dict's keys object as 3.11-3.13 lay it out (pycore_dict.h, which
 * cannot be included here on 3.12+; free-threaded builds are not
 * supported).  Entries follow the index table of 1 << log2_index_bytes
 * bytes. */
typedef struct cp_dictkeys {
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size;
    uint8_t dk_log2_index_bytes;
    uint8_t dk_kind; /* 0: general keys (hash, key, value entries) */
    uint32_t dk_version;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
} cp_dictkeys;
typedef struct cp_dictentry_u {
    PyObject *me_key;
    PyObject *me_value;
} cp_dictentry_u;
typedef struct cp_dictentry_g {
    Py_hash_t me_hash;
    PyObject *me_key;
    PyObject *me_value;
} cp_dictentry_g;

/* ---- fault-safe reads ---- */

static atomic_int use_pipe_g; /* process_vm_readv refused: the pipe way */
static int pipe_g[2] = {-1, -1};

static int pipe_read(void *dst, const void *addr, size_t n) {
    if (pipe_g[0] < 0)
        return -1;
    /* write() from a bad address fails with EFAULT instead of faulting */
    char *d = dst;
    const char *a = addr;
    while (n) {
        size_t c = n > 4096 ? 4096 : n;
        ssize_t w = write(pipe_g[1], a, c);
        if (w <= 0)
            return -1;
        ssize_t r = read(pipe_g[0], d, (size_t)w);
        if (r != w)
            return -1;
        d += w;
        a += w;
        n -= (size_t)w;
    }
    return 0;
}

int cp_py_safe_read(void *dst, const void *addr, size_t n) {
    if (!addr)
        return -1;
    if (!atomic_load_explicit(&use_pipe_g, memory_order_relaxed)) {
        struct iovec l = {dst, n}, r = {(void *)addr, n};
        ssize_t got = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
        if (got == (ssize_t)n)
            return 0;
        if (got >= 0 || (errno != ENOSYS && errno != EPERM))
            return -1;
        if (pipe_g[0] < 0)
            return -1;
        atomic_store(&use_pipe_g, 1);
    }
    return pipe_read(dst, addr, n);
}

#define RD(dst, addr) cp_py_safe_read(&(dst), (const void *)(addr), sizeof(dst))

/* ---- version-dependent layout ---- */

#if PY_VERSION_HEX >= 0x030D0000
#define FRAME_CODE(f) ((PyObject *)(f).f_executable)
#define FRAME_INSTR(f) ((f).instr_ptr)
#define FRAME_FUNC(f) ((f).f_funcobj)
#elif PY_VERSION_HEX >= 0x030C0000
#define FRAME_CODE(f) ((PyObject *)(f).f_code)
#define FRAME_INSTR(f) ((f).prev_instr)
#define FRAME_FUNC(f) ((f).f_funcobj)
#else
#define FRAME_CODE(f) ((PyObject *)(f).f_code)
#define FRAME_INSTR(f) ((f).prev_instr)
#define FRAME_FUNC(f) ((PyObject *)(f).f_func)
#endif

/* The bytes of a frame we read (up to its locals). */
#define FRAME_HEAD offsetof(struct _PyInterpreterFrame, localsplus)
#define CODE_HEAD offsetof(PyCodeObject, co_code_adaptive)

static PyInterpreterState *interp_g;

/* ---- strings ---- */

/* Copies a str object's text (compact ASCII, cached UTF-8, or Latin-1)
 * into buf (NUL-terminated).  0 or -1. */
static int read_str(PyObject *o, char *buf, size_t cap) {
    PyCompactUnicodeObject u;
    if (!o || RD(u, o) != 0 || u._base.ob_base.ob_type != &PyUnicode_Type)
        return -1;
    if (!u._base.state.compact)
        return -1;
    Py_ssize_t len = u._base.length;
    if (len < 0 || (size_t)len >= cap)
        return -1;
    if (u._base.state.ascii) {
        if (cp_py_safe_read(buf, (const char *)o + sizeof(PyASCIIObject), (size_t)len) != 0)
            return -1;
        buf[len] = 0;
        return 0;
    }
    if (u.utf8 && u.utf8_length >= 0 && (size_t)u.utf8_length < cap) {
        if (cp_py_safe_read(buf, u.utf8, (size_t)u.utf8_length) != 0)
            return -1;
        buf[u.utf8_length] = 0;
        return 0;
    }
    if (u._base.state.kind == PyUnicode_1BYTE_KIND && (size_t)len * 2 < cap) {
        unsigned char tmp[512];
        if ((size_t)len > sizeof tmp ||
            cp_py_safe_read(tmp, (const char *)o + sizeof(PyCompactUnicodeObject), (size_t)len))
            return -1;
        size_t j = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            if (tmp[i] < 0x80) {
                buf[j++] = (char)tmp[i];
            } else {
                buf[j++] = (char)(0xC0 | (tmp[i] >> 6));
                buf[j++] = (char)(0x80 | (tmp[i] & 0x3F));
            }
        }
        buf[j] = 0;
        return 0;
    }
    return -1;
}

/* The str value of globals["__name__"] (a module's globals: "__name__"
 * is among its first keys, so only the first entries are looked at), into
 * buf.  0 or -1. */
static int read_modname(PyObject *globals, char *buf, size_t cap) {
    PyDictObject d;
    if (!globals || RD(d, globals) != 0 || Py_TYPE(&d) != &PyDict_Type || d.ma_values ||
        !d.ma_keys)
        return -1;
    cp_dictkeys k;
    if (cp_py_safe_read(&k, d.ma_keys, offsetof(cp_dictkeys, dk_indices)) != 0 ||
        k.dk_log2_index_bytes > 40)
        return -1;
    const char *ents = (const char *)d.ma_keys + offsetof(cp_dictkeys, dk_indices) +
                       ((size_t)1 << k.dk_log2_index_bytes);
    Py_ssize_t n = k.dk_nentries < 8 ? k.dk_nentries : 8;
    char key[16];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *kp, *vp;
        if (k.dk_kind != 0) {
            cp_dictentry_u e;
            if (RD(e, ents + (size_t)i * sizeof e) != 0)
                return -1;
            kp = e.me_key;
            vp = e.me_value;
        } else {
            cp_dictentry_g e;
            if (RD(e, ents + (size_t)i * sizeof e) != 0)
                return -1;
            kp = e.me_key;
            vp = e.me_value;
        }
        if (kp && read_str(kp, key, sizeof key) == 0 && strcmp(key, "__name__") == 0)
            return vp ? read_str(vp, buf, cap) : -1;
    }
    return -1;
}

/* ---- code objects ---- */

#define CODE_CACHE 4096u /* direct-mapped, by address */
#define CODE_LT_MAX 65536u /* location tables larger than this: no lines */
#define SITE_OWN UINT32_MAX

typedef struct code_ent {
    const void *addr;
    const void *name, *file, *lt;
    int firstlineno;
    uint32_t site;      /* SITE_OWN: the profiler's code */
    int firsttraceable; /* code units before the first traceable one */
    unsigned char *ltab; /* copy of the location table (malloc) */
    uint32_t ltlen;
    int memo_off, memo_line; /* last offset -> line */
} code_ent;

static code_ent code_cache_g[CODE_CACHE]; /* the sampler thread only */
static char own_prefix_g[1024];
static size_t own_len_g;

static inline uint32_t code_slot(const void *addr) {
    uint64_t h = (uint64_t)(uintptr_t)addr * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 52) & (CODE_CACHE - 1);
}

/* varint of the location table (6-bit chunks, 0x40 = more). */
static int lt_varint(const unsigned char *p, uint32_t len, uint32_t *i, unsigned *out) {
    unsigned v = 0, shift = 0;
    for (;;) {
        if (*i >= len || shift > 28)
            return -1;
        unsigned char b = p[(*i)++];
        v |= (unsigned)(b & 63) << shift;
        shift += 6;
        if (!(b & 64))
            break;
    }
    *out = v;
    return 0;
}
static int lt_svarint(const unsigned char *p, uint32_t len, uint32_t *i, int *out) {
    unsigned u;
    if (lt_varint(p, len, i, &u) != 0)
        return -1;
    *out = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
    return 0;
}

/* The line of code unit `off` (PEP 626 location table); 0: unknown. */
static int lt_line(const code_ent *c, int off) {
    const unsigned char *p = c->ltab;
    uint32_t len = c->ltlen, i = 0;
    int line = c->firstlineno, addr = 0;
    while (i < len) {
        unsigned char b = p[i++];
        if (!(b & 0x80))
            return 0; /* not at an entry start: corrupt */
        int code = (b >> 3) & 15, units = (b & 7) + 1;
        int delta = 0, noloc = 0;
        unsigned tmp;
        if (code == 15) {
            noloc = 1;
        } else if (code == 14) {
            if (lt_svarint(p, len, &i, &delta) || lt_varint(p, len, &i, &tmp) ||
                lt_varint(p, len, &i, &tmp) || lt_varint(p, len, &i, &tmp))
                return 0;
        } else if (code == 13) {
            if (lt_svarint(p, len, &i, &delta))
                return 0;
        } else if (code >= 10) {
            delta = code - 10;
            i += 2;
        } else {
            i += 1;
        }
        line += delta;
        if (off >= addr && off < addr + units)
            return noloc ? 0 : (line > 0 ? line : 0);
        addr += units;
    }
    return 0;
}

/* A code object's cache entry, validated or (re)built; NULL when `addr`
 * is not a readable code object.  `func` is the frame's function (for the
 * module name). */
static code_ent *code_get(const void *addr, const PyCodeObject *head, PyObject *func,
                          PyObject *globals) {
    PyCodeObject co;
    if (head)
        memcpy(&co, head, CODE_HEAD);
    else if (cp_py_safe_read(&co, addr, CODE_HEAD) != 0)
        return NULL;
    if (Py_TYPE(&co) != &PyCode_Type)
        return NULL;
    code_ent *c = &code_cache_g[code_slot(addr)];
    if (c->addr == addr && c->name == co.co_name && c->file == co.co_filename &&
        c->lt == co.co_linetable && c->firstlineno == co.co_firstlineno)
        return c;
    /* miss: resolve */
    char file[1024], qual[512], mod[256], name[800];
    if (read_str(co.co_filename, file, sizeof file) != 0)
        return NULL;
    uint32_t site = 0;
    if (own_len_g && strncmp(file, own_prefix_g, own_len_g) == 0) {
        site = SITE_OWN;
    } else {
        if (read_str(co.co_qualname ? co.co_qualname : co.co_name, qual, sizeof qual) != 0)
            return NULL;
        mod[0] = 0;
        PyFunctionObject fn;
        if (read_modname(globals, mod, sizeof mod) == 0) {
            /* as the tracer: globals' __name__ */
        } else if (func && RD(fn, func) == 0 && Py_TYPE(&fn) == &PyFunction_Type &&
            fn.func_code == (PyObject *)addr) {
            if (read_str(fn.func_module, mod, sizeof mod) != 0)
                mod[0] = 0;
        }
        if (mod[0])
            snprintf(name, sizeof name, "%s.%s", mod, qual);
        else
            snprintf(name, sizeof name, "%s", qual);
        int fl = co.co_firstlineno;
        site = codeprof_site(name, file, fl > 0 ? (uint32_t)fl : 0, CODEPROF_SITE_PYTHON);
        if (!site)
            return NULL;
    }
    /* the location table */
    unsigned char *lt = NULL;
    uint32_t ltlen = 0;
    PyBytesObject b;
    if (site != SITE_OWN && co.co_linetable && RD(b, co.co_linetable) == 0 &&
        Py_TYPE(&b) == &PyBytes_Type && Py_SIZE(&b) > 0 && Py_SIZE(&b) <= CODE_LT_MAX) {
        ltlen = (uint32_t)Py_SIZE(&b);
        lt = malloc(ltlen);
        if (lt && cp_py_safe_read(lt, (const char *)co.co_linetable +
                                          offsetof(PyBytesObject, ob_sval), ltlen) != 0) {
            free(lt);
            lt = NULL;
            ltlen = 0;
        }
    }
    /* fork-safe order: a child forked mid-update sees an empty entry,
     * never a freed table */
    unsigned char *old = c->ltab;
    c->addr = NULL;
    c->ltab = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    free(old);
    c->name = co.co_name;
    c->file = co.co_filename;
    c->lt = co.co_linetable;
    c->firstlineno = co.co_firstlineno;
    c->site = site;
    c->firsttraceable = co._co_firsttraceable;
    c->ltab = lt;
    c->ltlen = lt ? ltlen : 0;
    c->memo_off = -1;
    c->memo_line = 0;
    atomic_signal_fence(memory_order_seq_cst);
    c->addr = addr;
    return c;
}

/* ---- the reader ---- */

static atomic_int closed_g; /* atexit: stop touching thread states */

#if PY_VERSION_HEX >= 0x030D0000
#define RUNTIME_FINALIZING() Py_IsFinalizing()
#else
#define RUNTIME_FINALIZING() _Py_IsFinalizing()
#endif

#define MAX_THREADS_WALK 100000u
#define MAX_FRAMES_WALK 4096u

/* Frames of one thread live mostly side by side in its data-stack chunk,
 * below the innermost one: one read of the WINDOW bytes under it (page by
 * page from the top down, so an unmapped page below only shortens what is
 * read) serves most of them; the others (a generator's frame, an older
 * chunk) are read one by one.  Code object headers are then read in one
 * call for the whole stack. */
#define WINDOW_PAGES 3u
#define PAGE 4096u

typedef struct win {
    uintptr_t lo, hi; /* [lo, hi) was read into buf + (lo - base) */
    uintptr_t base;
    char buf[WINDOW_PAGES * PAGE];
} win;

static void win_read(win *w, uintptr_t top) {
    if (top < WINDOW_PAGES * PAGE || top > UINTPTR_MAX - FRAME_HEAD - PAGE) {
        w->base = w->lo = w->hi = 0; /* garbage: no window, every read checked */
        return;
    }
    uintptr_t hi = (top + FRAME_HEAD + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
    uintptr_t base = hi - WINDOW_PAGES * PAGE;
    struct iovec l[WINDOW_PAGES], r[WINDOW_PAGES];
    for (uint32_t i = 0; i < WINDOW_PAGES; i++) { /* top page first */
        uintptr_t pg = hi - (uintptr_t)(i + 1) * PAGE;
        l[i].iov_base = w->buf + (pg - base);
        l[i].iov_len = PAGE;
        r[i].iov_base = (void *)pg;
        r[i].iov_len = PAGE;
    }
    w->base = base;
    w->lo = w->hi = hi;
    if (atomic_load_explicit(&use_pipe_g, memory_order_relaxed))
        return;
    ssize_t got = process_vm_readv(getpid(), l, WINDOW_PAGES, r, WINDOW_PAGES, 0);
    if (got > 0)
        w->lo = hi - ((uintptr_t)got / PAGE) * PAGE;
}

static int frame_read(const win *w, struct _PyInterpreterFrame *dst, const void *fp) {
    uintptr_t a = (uintptr_t)fp;
    /* A pointer read from a frame being torn down may be anything (even
     * ~0): compare without overflowing, and leave what is outside the
     * window to the fault-safe copy. */
    if (a >= w->lo && w->hi >= FRAME_HEAD && a <= w->hi - FRAME_HEAD) {
        memcpy(dst, w->buf + (a - w->base), FRAME_HEAD);
        return 0;
    }
    return cp_py_safe_read(dst, fp, FRAME_HEAD);
}

typedef struct rawframe {
    PyObject *code, *func, *globals;
    const char *ip;
    char owner;
} rawframe;

/* The sampler thread's (or a probe's) scratch; reader_mu serialises them. */
static struct {
    win w;
    rawframe raw[CP_STACK_MAX_DEPTH];
    PyCodeObject *heads; /* CP_STACK_MAX_DEPTH headers of CODE_HEAD bytes */
    uint16_t slot[CP_STACK_MAX_DEPTH]; /* frame -> its code's header      */
} scratch_g;
static pthread_mutex_t reader_mu = PTHREAD_MUTEX_INITIALIZER;

/* Reads one thread's frames; returns frames kept, sets *err / *trunc. */
static uint32_t read_frames(struct _PyInterpreterFrame *fp, cp_sframe *out, int *err,
                            int *trunc) {
    if (!fp)
        return 0;
    win *w = &scratch_g.w;
    win_read(w, (uintptr_t)fp);
    rawframe *raw = scratch_g.raw;
    uint32_t nraw = 0, walked = 0;
    while (fp) {
        if (++walked > MAX_FRAMES_WALK) { /* a cycle, or garbage */
            *err = 1;
            break;
        }
        struct _PyInterpreterFrame f;
        if (frame_read(w, &f, fp) != 0) {
            *err = 1;
            break;
        }
        fp = f.previous;
#if PY_VERSION_HEX >= 0x030C0000
        if (f.owner == FRAME_OWNED_BY_CSTACK)
            continue;
#endif
        if (!FRAME_CODE(f))
            continue;
        if (nraw >= CP_STACK_MAX_DEPTH) {
            *trunc = 1; /* the innermost frames are kept */
            break;
        }
        raw[nraw].code = FRAME_CODE(f);
        raw[nraw].func = FRAME_FUNC(f);
        raw[nraw].globals = f.f_globals;
        raw[nraw].ip = (const char *)FRAME_INSTR(f);
        raw[nraw].owner = f.owner;
        nraw++;
    }
    /* every distinct code header in one call (recursion repeats them);
     * past a failed one, one by one */
    char *heads = (char *)scratch_g.heads;
    uint16_t *slot = scratch_g.slot;
    uint32_t ndist = 0;
    size_t done = 0;
    if (heads && nraw && !atomic_load_explicit(&use_pipe_g, memory_order_relaxed)) {
        struct iovec l[CP_STACK_MAX_DEPTH], r[CP_STACK_MAX_DEPTH];
        for (uint32_t i = 0; i < nraw; i++) {
            uint32_t j = 0;
            while (j < ndist && r[j].iov_base != (void *)raw[i].code)
                j++;
            if (j == ndist) {
                l[j].iov_base = heads + (size_t)j * CODE_HEAD;
                l[j].iov_len = CODE_HEAD;
                r[j].iov_base = raw[i].code;
                r[j].iov_len = CODE_HEAD;
                ndist++;
            }
            slot[i] = (uint16_t)j;
        }
        ssize_t got = process_vm_readv(getpid(), l, ndist, r, ndist, 0);
        done = got > 0 ? (size_t)got / CODE_HEAD : 0;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < nraw; i++) {
        const PyCodeObject *head =
            heads && ndist && slot[i] < done
                ? (const PyCodeObject *)(heads + (size_t)slot[i] * CODE_HEAD)
                : NULL;
        code_ent *c = code_get(raw[i].code, head, raw[i].func, raw[i].globals);
        if (!c) {
            *err = 1;
            continue;
        }
        const char *base = (const char *)raw[i].code + CODE_HEAD;
        const char *ip = raw[i].ip;
        long off = ip >= base ? (long)((ip - base) / (long)sizeof(_Py_CODEUNIT)) : -1;
        if (raw[i].owner != FRAME_OWNED_BY_GENERATOR && off < c->firsttraceable)
            continue; /* frame still being set up */
        if (c->site == SITE_OWN)
            continue;
        int line = 0;
        if (c->ltab && off >= 0) {
            if (c->memo_off == (int)off) {
                line = c->memo_line;
            } else {
                line = lt_line(c, (int)off);
                c->memo_off = (int)off;
                c->memo_line = line;
            }
        }
        out[n].site = c->site;
        out[n].line = line > 0 ? (uint32_t)line : 0;
        n++;
    }
    return n;
}

static int reader_locked(cp_sampler_visit *v);

static int reader(void *ctx, cp_sampler_visit *v) {
    (void)ctx;
    if (atomic_load(&closed_g) || !interp_g || RUNTIME_FINALIZING())
        return -1;
    pthread_mutex_lock(&reader_mu);
    int rc = reader_locked(v);
    pthread_mutex_unlock(&reader_mu);
    return rc;
}

static int reader_locked(cp_sampler_visit *v) {
    /* a plain read of the main interpreter's list head (that struct lives
     * as long as the process); everything reached from it is copied */
    PyThreadState *tsp = PyInterpreterState_ThreadHead(interp_g);
    cp_sframe frames[CP_STACK_MAX_DEPTH];
    uint32_t walked = 0;
    while (tsp) {
        if (++walked > MAX_THREADS_WALK)
            break;
        PyThreadState ts;
        if (RD(ts, tsp) != 0 || ts.interp != interp_g) {
            cp_sampler_read_error(v);
            break; /* the list changed under us: next tick */
        }
        PyThreadState *cur = tsp;
        tsp = ts.next;
        (void)cur;
        uint64_t tid = ts.native_thread_id;
        if (!tid)
            continue;
        if (!cp_sampler_want(v, tid))
            continue;
        struct _PyInterpreterFrame *top;
#if PY_VERSION_HEX >= 0x030D0000
        top = ts.current_frame;
#else
        _PyCFrame cf;
        top = NULL;
        if (ts.cframe && RD(cf, ts.cframe) == 0)
            top = cf.current_frame;
#endif
        int err = 0, trunc = 0;
        uint32_t n = read_frames(top, frames, &err, &trunc);
        cp_sampler_record(v, tid, frames, n, trunc ? CP_SAMPF_TRUNCATED : 0, err);
    }
    return 0;
}

/* ---- hooks ---- */

static PyObject *at_exit(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    atomic_store(&closed_g, 1);
    Py_BEGIN_ALLOW_THREADS
    cp_sampler_reader_quiesce();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *after_fork_child(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    cp_samp_after_fork_child();
    Py_RETURN_NONE;
}

static PyMethodDef at_exit_def = {"_sampler_atexit", at_exit, METH_NOARGS, NULL};
static PyMethodDef after_fork_def = {"_sampler_after_fork_child", after_fork_child, METH_NOARGS,
                                     NULL};

static int call_register(const char *modname, const char *fn, PyObject *arg, const char *kw) {
    PyObject *mod = PyImport_ImportModule(modname);
    if (!mod)
        return -1;
    PyObject *f = PyObject_GetAttrString(mod, fn);
    Py_DECREF(mod);
    if (!f)
        return -1;
    PyObject *r;
    if (kw) {
        PyObject *args = PyTuple_New(0), *kws = Py_BuildValue("{sO}", kw, arg);
        r = args && kws ? PyObject_Call(f, args, kws) : NULL;
        Py_XDECREF(args);
        Py_XDECREF(kws);
    } else {
        r = PyObject_CallOneArg(f, arg);
    }
    Py_DECREF(f);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ---- _core._sample_threads: the reader run on demand (tests) ---- */

#define PROBE_MAX 1024
typedef struct probe_rec {
    uint64_t tid;
    uint16_t flags;
    uint64_t weight;
    uint32_t n;
    cp_sframe fr[64];
} probe_rec;
typedef struct probe_out {
    probe_rec *r;
    uint32_t n;
} probe_out;

static void probe_capture(void *ctx, uint64_t tid, const cp_sframe *frames, uint32_t n,
                          uint16_t flags, uint64_t weight) {
    probe_out *o = ctx;
    if (o->n >= PROBE_MAX)
        return;
    probe_rec *r = &o->r[o->n++];
    r->tid = tid;
    r->flags = flags;
    r->weight = weight;
    r->n = n < 64 ? n : 64;
    memcpy(r->fr, frames, r->n * sizeof *frames);
}

static PyObject *site_tuple(const cp_sframe *f) {
    const cp_site_info *si = cp_site_get(f->site);
    if (!si)
        return Py_BuildValue("(sOII)", "?", Py_None, 0u, f->line);
    return Py_BuildValue("(ssII)", si->name, si->file, si->line, f->line);
}

static PyObject *sample_threads(PyObject *self, PyObject *args) {
    (void)self;
    int rounds = 2, native = 0;
    double gap = 0.05;
    if (!PyArg_ParseTuple(args, "|idp:_sample_threads", &rounds, &gap, &native))
        return NULL;
    if (rounds < 1 || rounds > 1000 || gap < 0 || gap > 10) {
        PyErr_SetString(PyExc_ValueError,
                        "_sample_threads(rounds, gap_s): rounds in [1, 1000], gap_s in [0, 10]");
        return NULL;
    }
    probe_out out = {calloc(PROBE_MAX, sizeof(probe_rec)), 0};
    if (!out.r)
        return PyErr_NoMemory();
    cp_sampler *p = cp_sampler_probe_new((uint64_t)(gap * 1e9), native, probe_capture, &out);
    if (!p) {
        free(out.r);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < rounds; i++) {
        if (i) {
            struct timespec ts = {(time_t)gap, (long)((gap - (double)(time_t)gap) * 1e9)};
            nanosleep(&ts, NULL);
        }
        out.n = 0;
        cp_sampler_tick(p);
    }
    Py_END_ALLOW_THREADS
    cp_sampler_stats st;
    cp_sampler_get_stats(p, &st);
    cp_sampler_free(p);
    PyObject *list = PyList_New(0);
    for (uint32_t i = 0; list && i < out.n; i++) {
        probe_rec *r = &out.r[i];
        uint16_t stt = r->flags & CP_SAMPF_STATE_MASK;
        const char *state = stt == CP_SAMPF_RUNNING ? "running" : stt == CP_SAMPF_GIL ? "gil" : "idle";
        PyObject *frames = PyList_New(0);
        for (uint32_t k = 0; frames && k < r->n; k++) {
            PyObject *t = site_tuple(&r->fr[k]);
            if (!t || PyList_Append(frames, t) < 0)
                Py_CLEAR(frames);
            Py_XDECREF(t);
        }
        PyObject *d = frames ? Py_BuildValue("{sKsssKsOsO}", "tid", (unsigned long long)r->tid,
                                             "state", state, "weight_ns",
                                             (unsigned long long)r->weight, "frames", frames,
                                             "native", (r->flags & CP_SAMPF_NATIVE) ? Py_True
                                                                                 : Py_False)
                             : NULL;
        Py_XDECREF(frames);
        if (!d || PyList_Append(list, d) < 0)
            Py_CLEAR(list);
        Py_XDECREF(d);
    }
    free(out.r);
    if (!list)
        return NULL;
    PyObject *res = Py_BuildValue("{sOsKsK}", "threads", list, "read_errors",
                                  (unsigned long long)st.read_errors, "skipped",
                                  (unsigned long long)st.skipped);
    Py_DECREF(list);
    return res;
}

static PyMethodDef sample_threads_def = {
    "_sample_threads", sample_threads, METH_VARARGS,
    "_sample_threads(rounds=2, gap_s=0.05, native=False) -> dict\n\nRuns the stack sampler's "
    "reader `rounds` times, gap_s apart, on the calling thread (GIL released) and returns the "
    "last round: {'threads': [{'tid', 'state', 'weight_ns', 'frames': [(name, file, "
    "first_line, line)], 'native'}], 'read_errors', 'skipped'}.  For tests."};

static int inited_g;

/* Fork child: the sampler thread that may have held reader_mu is gone. */
static void reader_atfork_child(void) {
    pthread_mutex_init(&reader_mu, NULL);
    /* the fallback pipe is shared with the parent after fork: a new one */
    if (pipe_g[0] >= 0) {
        close(pipe_g[0]);
        close(pipe_g[1]);
        if (pipe2(pipe_g, O_CLOEXEC | O_NONBLOCK) != 0)
            pipe_g[0] = pipe_g[1] = -1;
    }
}

int cp_py_sample_init(PyObject *module) {
    PyObject *stf = PyCFunction_New(&sample_threads_def, NULL);
    if (!stf || PyModule_AddObject(module, "_sample_threads", stf) < 0) {
        Py_XDECREF(stf);
        return -1;
    }
    if (inited_g)
        return 0; /* one reader per process (the main interpreter) */
    interp_g = PyInterpreterState_Main();
    if (pipe_g[0] < 0 && pipe2(pipe_g, O_CLOEXEC | O_NONBLOCK) != 0)
        pipe_g[0] = pipe_g[1] = -1;
    /* tests: the fallback a seccomp profile that refuses process_vm_readv
     * would select */
    const char *force = getenv("CODEPROF_SAMPLER_PIPE_READS");
    if (force && force[0] == '1' && pipe_g[0] >= 0)
        atomic_store(&use_pipe_g, 1);
    /* the profiler's own files: the package directory */
    PyObject *fn = PyModule_GetFilenameObject(module);
    if (fn) {
        const char *p = PyUnicode_AsUTF8(fn);
        const char *slash = p ? strrchr(p, '/') : NULL;
        if (slash && (size_t)(slash - p + 1) < sizeof own_prefix_g) {
            own_len_g = (size_t)(slash - p + 1);
            memcpy(own_prefix_g, p, own_len_g);
            own_prefix_g[own_len_g] = 0;
        }
        Py_DECREF(fn);
    } else {
        PyErr_Clear();
    }
    if (!scratch_g.heads)
        scratch_g.heads = malloc((size_t)CP_STACK_MAX_DEPTH * CODE_HEAD);
    pthread_atfork(NULL, NULL, reader_atfork_child);
    uintptr_t glo, ghi;
    if (cp_py_gil_range(&glo, &ghi) == 0)
        cp_sampler_set_gil_range(glo, ghi);
    PyObject *ex = PyCFunction_New(&at_exit_def, NULL);
    PyObject *af = PyCFunction_New(&after_fork_def, NULL);
    int rc = -1;
    if (ex && af && call_register("atexit", "register", ex, NULL) == 0 &&
        call_register("os", "register_at_fork", af, "after_in_child") == 0)
        rc = 0;
    Py_XDECREF(ex);
    Py_XDECREF(af);
    if (rc != 0)
        return -1;
    cp_sampler_set_reader(reader, NULL);
    inited_g = 1;
    return 0;
}
