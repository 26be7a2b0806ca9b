/* model_json.c -- a saved v2 or v3 JSON report read back into a cp_model
 * (model_json.h).  Walks the document from src/report/jsonr.c, keeping
 * the JSON path of the value being read so that every error names it. */
#include "model/model_json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codeprof/version.h"
#include "core/errors.h"
#include "report/jsonr.h"
#include "report/report.h"
#include "report/report_mem.h"

/* The reader follows the writer: a new schema version needs this reader
 * updated (and its tests) before the build passes again. */
_Static_assert(CP_MODEL_JSON_SCHEMA_VERSION == CODEPROF_REPORT_SCHEMA_VERSION,
               "model_json.c reads another report schema version than report_json.c writes");

typedef struct rd {
    const char *name; /* the source, for messages */
    char path[768];   /* JSON path of the value being read */
    size_t plen;
    codeprof_error *err;
    codeprof_status st; /* first failure */
    cp_model *m;
    uint32_t *site_map; /* performance.sites[i] -> model site */
    uint32_t nsites;
    uint32_t other_site; /* "(other)", interned on first use */
    uint32_t cap_nodes;
    uint32_t cap_ctxs; /* memory contexts allocated */
} rd;

/* ---- paths and errors ----------------------------------------------------- */

static size_t enter_key(rd *r, const char *key) {
    size_t old = r->plen;
    int n = snprintf(r->path + r->plen, sizeof r->path - r->plen, "%s%s", r->plen ? "." : "", key);
    if (n > 0)
        r->plen = r->plen + (size_t)n < sizeof r->path ? r->plen + (size_t)n : sizeof r->path - 1;
    return old;
}

static size_t enter_index(rd *r, uint32_t i) {
    size_t old = r->plen;
    int n = snprintf(r->path + r->plen, sizeof r->path - r->plen, "[%u]", i);
    if (n > 0)
        r->plen = r->plen + (size_t)n < sizeof r->path ? r->plen + (size_t)n : sizeof r->path - 1;
    return old;
}

static void leave(rd *r, size_t old) {
    r->plen = old;
    r->path[old] = '\0';
}

__attribute__((format(printf, 2, 3))) static int bad(rd *r, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->st = cp_error_set(r->err, CODEPROF_EFORMAT, r->path, "%s: %s: %s", r->name,
                         r->plen ? r->path : "(top level)", msg);
    return -1;
}

static int nomem(rd *r) {
    r->st = cp_error_set(r->err, CODEPROF_ENOMEM, r->path, "%s: out of memory reading %s", r->name,
                         r->plen ? r->path : "the report");
    return -1;
}

static const char *got(const cp_jval *v) {
    return cp_jsonr_type_name(v->type);
}

/* ---- typed members (absent or null: the default stays) ----------------- */

/* The member `key` of `obj`, or NULL when absent or null. */
static const cp_jval *member(const cp_jval *obj, const char *key) {
    const cp_jval *v = cp_jsonr_get(obj, key);
    return v && v->type != CP_JNULL ? v : NULL;
}

static int want(rd *r, const cp_jval *v, cp_jtype t, const char *what) {
    if (v->type == t)
        return 0;
    return bad(r, "expected %s, got %s", what, got(v));
}

static int get_u64(rd *r, const cp_jval *obj, const char *key, uint64_t *out) {
    const cp_jval *v = member(obj, key);
    if (!v)
        return 0;
    if (cp_jsonr_u64(v, out) == 0)
        return 0;
    size_t o = enter_key(r, key);
    int rc = v->type == CP_JNUMBER
                 ? bad(r, "expected a non-negative integer below 2^64, got %.40s", v->u.str)
                 : bad(r, "expected a non-negative integer, got %s", got(v));
    leave(r, o);
    return rc;
}

static int get_u32(rd *r, const cp_jval *obj, const char *key, uint32_t *out) {
    uint64_t u = *out;
    if (get_u64(r, obj, key, &u) != 0)
        return -1;
    if (u > UINT32_MAX) {
        size_t o = enter_key(r, key);
        bad(r, "expected an integer below 2^32, got %llu", (unsigned long long)u);
        leave(r, o);
        return -1;
    }
    *out = (uint32_t)u;
    return 0;
}

static int get_i64(rd *r, const cp_jval *obj, const char *key, int64_t *out) {
    const cp_jval *v = member(obj, key);
    if (!v)
        return 0;
    if (cp_jsonr_i64(v, out) == 0)
        return 0;
    size_t o = enter_key(r, key);
    int rc = bad(r, "expected an integer in the int64 range, got %.40s",
                 v->type == CP_JNUMBER ? v->u.str : got(v));
    leave(r, o);
    return rc;
}

static int get_i32(rd *r, const cp_jval *obj, const char *key, int32_t *out) {
    int64_t x = *out;
    if (get_i64(r, obj, key, &x) != 0)
        return -1;
    if (x < INT32_MIN || x > INT32_MAX) {
        size_t o = enter_key(r, key);
        bad(r, "expected a 32-bit integer, got %lld", (long long)x);
        leave(r, o);
        return -1;
    }
    *out = (int32_t)x;
    return 0;
}

static int get_double(rd *r, const cp_jval *obj, const char *key, double *out) {
    const cp_jval *v = member(obj, key);
    if (!v)
        return 0;
    if (cp_jsonr_double(v, out) == 0 && isfinite(*out))
        return 0;
    size_t o = enter_key(r, key);
    int rc = v->type == CP_JNUMBER ? bad(r, "expected a finite number, got %.40s", v->u.str)
                                   : bad(r, "expected a number, got %s", got(v));
    leave(r, o);
    return rc;
}

/* Seconds as ns; *present (may be NULL) tells whether a number was there. */
static int get_ns(rd *r, const cp_jval *obj, const char *key, uint64_t *out, int *present) {
    const cp_jval *v = member(obj, key);
    if (present)
        *present = v != NULL;
    if (!v)
        return 0;
    if (cp_jsonr_ns(v, out) == 0)
        return 0;
    size_t o = enter_key(r, key);
    int rc =
        v->type == CP_JNUMBER
            ? bad(r, "expected a non-negative number of seconds below 2^64 ns, got %.40s", v->u.str)
            : bad(r, "expected a number of seconds, got %s", got(v));
    leave(r, o);
    return rc;
}

static int get_bool(rd *r, const cp_jval *obj, const char *key, int *out) {
    const cp_jval *v = member(obj, key);
    if (!v)
        return 0;
    size_t o = enter_key(r, key);
    int rc = want(r, v, CP_JBOOL, "true or false");
    leave(r, o);
    if (rc == 0)
        *out = v->boolean;
    return rc;
}

/* A string member, or NULL (absent or null: *ok stays 1; wrong type: 0). */
static const char *get_str(rd *r, const cp_jval *obj, const char *key, int *ok) {
    const cp_jval *v = member(obj, key);
    if (!v)
        return NULL;
    if (v->type != CP_JSTRING) {
        size_t o = enter_key(r, key);
        bad(r, "expected a string, got %s", got(v));
        leave(r, o);
        *ok = 0;
        return NULL;
    }
    if (strlen(v->u.str) != v->len) {
        /* names and paths are C strings: "a\u0000b" would read back as "a",
         * merging sites the file keeps apart */
        size_t o = enter_key(r, key);
        bad(r, "expected a string without NUL characters (\\u0000)");
        leave(r, o);
        *ok = 0;
        return NULL;
    }
    return v->u.str;
}

/* Copies `s` into a fixed field, cut at a UTF-8 character boundary. */
static void copy_field(char *dst, size_t cap, const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
}

static int get_field(rd *r, const cp_jval *obj, const char *key, char *dst, size_t cap) {
    int ok = 1;
    const char *s = get_str(r, obj, key, &ok);
    if (!ok)
        return -1;
    if (s)
        copy_field(dst, cap, s);
    return 0;
}

/* An array member (absent or null: NULL, no error). */
static int get_array(rd *r, const cp_jval *obj, const char *key, const cp_jval **out) {
    *out = member(obj, key);
    if (!*out)
        return 0;
    size_t o = enter_key(r, key);
    int rc = want(r, *out, CP_JARRAY, "an array");
    leave(r, o);
    return rc;
}

static int get_object(rd *r, const cp_jval *obj, const char *key, const cp_jval **out) {
    *out = member(obj, key);
    if (!*out)
        return 0;
    size_t o = enter_key(r, key);
    int rc = want(r, *out, CP_JOBJECT, "an object");
    leave(r, o);
    return rc;
}

static int parse_kind(rd *r, const cp_jval *obj, uint16_t *kind) {
    int ok = 1;
    const char *s = get_str(r, obj, "kind", &ok);
    if (!ok)
        return -1;
    *kind = CODEPROF_SITE_SCOPE;
    if (!s)
        return 0;
    for (unsigned k = 0; k < CODEPROF_SITE_KIND_COUNT_; k++)
        if (strcmp(s, cp_report_kind_name(k)) == 0) {
            *kind = (uint16_t)k;
            return 0;
        }
    size_t o = enter_key(r, "kind");
    bad(r,
        "expected one of scope, python, native, function, dataset, loader, preprocess, "
        "augment, gpu; got \"%.40s\"",
        s);
    leave(r, o);
    return -1;
}

/* Interns the site named by members function/file/line/kind of `obj`
 * (`name_key` names the name member).  Returns the site, 0 on error. */
static uint32_t site_of_object(rd *r, const cp_jval *obj, const char *name_key, uint16_t kind,
                               int kind_from_json) {
    int ok = 1;
    const char *name = get_str(r, obj, name_key, &ok);
    const char *file = get_str(r, obj, "file", &ok);
    uint32_t line = 0;
    if (!ok || get_u32(r, obj, "line", &line) != 0)
        return 0;
    if (kind_from_json && parse_kind(r, obj, &kind) != 0)
        return 0;
    uint32_t id = cp_model_intern_site(r->m, name ? name : "?", file ? file : "", line, kind);
    if (!id)
        nomem(r);
    return id;
}

/* ---- sections --------------------------------------------------------------- */

static const char *clock_name(const char *s) {
    static const char *const known[] = {"tsc", "monotonic", "fake"};
    if (!s)
        return NULL;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i]) == 0)
            return known[i];
    return "unknown";
}

static int read_warnings(rd *r, const cp_jval *arr) {
    cp_model *m = r->m;
    if (!arr || !arr->len)
        return 0;
    m->warnings = calloc(arr->len, sizeof *m->warnings);
    if (!m->warnings)
        return nomem(r);
    for (uint32_t i = 0; i < arr->len; i++) {
        const cp_jval *w = &arr->u.kids[i];
        size_t o = enter_index(r, i);
        if (want(r, w, CP_JOBJECT, "an object {code, message, unix_s}") != 0)
            return -1;
        cp_mwarning *mw = &m->warnings[m->nwarnings];
        if (get_field(r, w, "code", mw->code, sizeof mw->code) != 0 ||
            get_field(r, w, "message", mw->message, sizeof mw->message) != 0 ||
            get_ns(r, w, "unix_s", &mw->unix_ns, NULL) != 0)
            return -1;
        m->nwarnings++;
        leave(r, o);
    }
    return 0;
}

static int read_meta(rd *r, const cp_jval *meta) {
    cp_model *m = r->m;
    size_t o = enter_key(r, "meta");
    int64_t pid = 0;
    int ok = 1;
    const char *role = get_str(r, meta, "role", &ok);
    const char *clock = get_str(r, meta, "clock", &ok);
    const cp_jval *warnings = NULL;
    if (!ok || get_i64(r, meta, "pid", &pid) != 0 ||
        get_ns(r, meta, "start_unix_s", &m->start_unix_ns, NULL) != 0 ||
        get_ns(r, meta, "duration_s", &m->duration_ns, NULL) != 0 ||
        get_u64(r, meta, "events", &m->events_total) != 0 ||
        get_u64(r, meta, "dropped_events", &m->dropped_events) != 0 ||
        get_u64(r, meta, "dropped_nodes", &m->dropped_nodes) != 0 ||
        get_u64(r, meta, "unmatched_exits", &m->unmatched_exits) != 0 ||
        get_u64(r, meta, "truncated_scopes", &m->truncated) != 0 ||
        get_u64(r, meta, "allocation_failures", &m->alloc_failures) != 0 ||
        get_u32(r, meta, "merged_models", &m->merged) != 0 ||
        get_bool(r, meta, "approximate_percentiles", &m->approx_percentiles) != 0 ||
        get_u64(r, meta, "dropped_buffer_full", &m->dropped_full) != 0 ||
        get_u64(r, meta, "dropped_reentrant", &m->dropped_reentrant) != 0 ||
        get_u64(r, meta, "dropped_no_thread_buffer", &m->dropped_nothread) != 0 ||
        get_u64(r, meta, "dropped_samples", &m->dropped_samples) != 0 ||
        get_u64(r, meta, "dropped_sites", &m->dropped_sites) != 0 ||
        get_u32(r, meta, "exited_threads", &m->exited_threads) != 0 ||
        get_u32(r, meta, "event_buffers", &m->pool_buffers) != 0 ||
        get_u64(r, meta, "timeline_dropped", &m->timeline_dropped) != 0 ||
        get_u64(r, meta, "timeline_traced_dropped", &m->timeline_traced_dropped) != 0 ||
        get_u64(r, meta, "warnings_dropped", &m->warnings_dropped) != 0 ||
        get_bool(r, meta, "python_traced", &m->python_traced) != 0 ||
        get_u64(r, meta, "hidden_calls", &m->hidden_calls) != 0 ||
        get_array(r, meta, "warnings", &warnings) != 0)
        return -1;
    if (pid < INT32_MIN || pid > INT32_MAX) {
        enter_key(r, "pid");
        return bad(r, "expected a process id, got %lld", (long long)pid);
    }
    m->pid = (int)pid;
    copy_field(m->role, sizeof m->role, role ? role : "");
    m->clock_source = clock_name(clock);
    size_t k = enter_key(r, "warnings");
    if (read_warnings(r, warnings) != 0)
        return -1;
    leave(r, k);
    leave(r, o);
    return 0;
}

static int read_config(rd *r, const cp_jval *c) {
    codeprof_config *cfg = &r->m->cfg;
    size_t o = enter_key(r, "config");
    int scope_cpu = -1, pct = -1, tl = -1, snaps = -1, gc = -1;
    if (get_u32(r, c, "flags", &cfg->flags) != 0 ||
        get_u32(r, c, "buffer_events", &cfg->buffer_events) != 0 ||
        get_u32(r, c, "max_nodes", &cfg->max_nodes) != 0 ||
        get_u32(r, c, "max_samples", &cfg->max_samples) != 0 ||
        get_double(r, c, "slow_function_s", &cfg->slow_function_s) != 0 ||
        get_double(r, c, "memory_intensive_bytes", &cfg->memory_intensive_bytes) != 0 ||
        get_double(r, c, "slow_data_loading_s", &cfg->slow_data_loading_s) != 0 ||
        get_double(r, c, "slow_preprocessing_s", &cfg->slow_preprocessing_s) != 0 ||
        get_double(r, c, "slow_gpu_op_s", &cfg->slow_gpu_op_s) != 0 ||
        get_double(r, c, "data_stall_fraction", &cfg->data_stall_fraction) != 0 ||
        get_bool(r, c, "scope_cpu", &scope_cpu) != 0 || get_bool(r, c, "percentiles", &pct) != 0 ||
        get_bool(r, c, "timeline_traced", &tl) != 0 ||
        get_u32(r, c, "pool_buffers", &cfg->pool_buffers) != 0 ||
        get_u32(r, c, "max_sites", &cfg->max_sites) != 0 ||
        get_u32(r, c, "sample_budget", &cfg->sample_budget) != 0 ||
        get_u32(r, c, "timeline_events", &cfg->timeline_events) != 0 ||
        get_u64(r, c, "max_data_records", &cfg->max_data_records) != 0 ||
        get_u32(r, c, "report_top_functions", &cfg->report_top_functions) != 0 ||
        get_u32(r, c, "report_tree_max_nodes", &cfg->report_tree_max_nodes) != 0 ||
        get_double(r, c, "report_tree_min_share", &cfg->report_tree_min_share) != 0 ||
        get_u32(r, c, "timeline_traced_events", &cfg->timeline_traced_events) != 0 ||
        get_u32(r, c, "memory_mode", &cfg->memory_mode) != 0 ||
        get_u32(r, c, "memory_stack_depth", &cfg->memory_stack_depth) != 0 ||
        get_u64(r, c, "memory_sample_bytes", &cfg->memory_sample_bytes) != 0 ||
        get_u32(r, c, "memory_max_blocks", &cfg->memory_max_blocks) != 0 ||
        get_u32(r, c, "memory_max_stacks", &cfg->memory_max_stacks) != 0 ||
        get_u32(r, c, "memory_max_snapshots", &cfg->memory_max_snapshots) != 0 ||
        get_u32(r, c, "memory_timeline_samples", &cfg->memory_timeline_samples) != 0 ||
        get_double(r, c, "memory_sample_interval_s", &cfg->memory_sample_interval_s) != 0 ||
        get_bool(r, c, "memory_snapshots", &snaps) != 0 || get_bool(r, c, "gc", &gc) != 0)
        return -1;
    /* the spelled-out flags win over "flags" where both are present */
    const struct {
        int v;
        uint32_t bit;
    } bits[] = {{scope_cpu, CODEPROF_CFG_SCOPE_CPU},
                {pct, CODEPROF_CFG_PERCENTILES},
                {tl, CODEPROF_CFG_TIMELINE_TRACED},
                {snaps, CODEPROF_CFG_MEM_SNAPSHOTS},
                {gc, CODEPROF_CFG_GC}};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        if (bits[i].v == 1)
            cfg->flags |= bits[i].bit;
        else if (bits[i].v == 0)
            cfg->flags &= ~bits[i].bit;
    }
    leave(r, o);
    return 0;
}

static int read_sites(rd *r, const cp_jval *perf) {
    const cp_jval *files = NULL, *sites = NULL;
    if (get_array(r, perf, "files", &files) != 0 || get_array(r, perf, "sites", &sites) != 0)
        return -1;
    if (files) {
        for (uint32_t i = 0; i < files->len; i++) {
            size_t o = enter_key(r, "files");
            enter_index(r, i);
            if (want(r, &files->u.kids[i], CP_JSTRING, "a file path string") != 0)
                return -1;
            if (strlen(files->u.kids[i].u.str) != files->u.kids[i].len)
                return bad(r, "expected a file path without NUL characters (\\u0000)");
            leave(r, o);
        }
    }
    if (!sites || !sites->len)
        return 0;
    r->site_map = calloc(sites->len, sizeof *r->site_map);
    if (!r->site_map)
        return nomem(r);
    r->nsites = sites->len;
    for (uint32_t i = 0; i < sites->len; i++) {
        const cp_jval *s = &sites->u.kids[i];
        size_t o = enter_key(r, "sites");
        enter_index(r, i);
        if (want(r, s, CP_JOBJECT, "an object {function, file, line, kind}") != 0)
            return -1;
        int ok = 1;
        const char *name = get_str(r, s, "function", &ok);
        if (!ok)
            return -1;
        const char *file = "";
        const cp_jval *fv = member(s, "file");
        if (fv) {
            uint64_t fi;
            if (cp_jsonr_u64(fv, &fi) != 0 || !files || fi >= files->len) {
                enter_key(r, "file");
                return bad(r, "expected an index into performance.files (0..%u) or null",
                           files && files->len ? files->len - 1 : 0);
            }
            file = files->u.kids[fi].u.str;
        }
        uint32_t line = 0;
        uint16_t kind;
        if (get_u32(r, s, "line", &line) != 0 || parse_kind(r, s, &kind) != 0)
            return -1;
        r->site_map[i] = cp_model_intern_site(r->m, name ? name : "?", file, line, kind);
        if (!r->site_map[i])
            return nomem(r);
        leave(r, o);
    }
    return 0;
}

static int cmp_func(const void *a, const void *b) {
    const cp_mfunc *x = a, *y = b;
    if (x->incl_ns != y->incl_ns)
        return x->incl_ns < y->incl_ns ? 1 : -1;
    return (x->site > y->site) - (x->site < y->site);
}

static int read_functions(rd *r, const cp_jval *perf) {
    cp_model *m = r->m;
    const cp_jval *fns = NULL;
    if (get_array(r, perf, "functions", &fns) != 0)
        return -1;
    if (!fns || !fns->len)
        return 0;
    m->funcs = calloc(fns->len, sizeof *m->funcs);
    if (!m->funcs)
        return nomem(r);
    for (uint32_t i = 0; i < fns->len; i++) {
        const cp_jval *f = &fns->u.kids[i];
        size_t o = enter_key(r, "functions");
        enter_index(r, i);
        if (want(r, f, CP_JOBJECT, "an object") != 0)
            return -1;
        cp_mfunc *mf = &m->funcs[m->nfuncs];
        mf->site = site_of_object(r, f, "function", 0, 1);
        if (!mf->site)
            return -1;
        int cpu = 0;
        const cp_jval *md = member(f, "memory_delta"), *mt = member(f, "memory_delta_total");
        if (get_u64(r, f, "calls", &mf->calls) != 0 ||
            get_ns(r, f, "inclusive_s", &mf->incl_ns, NULL) != 0 ||
            get_ns(r, f, "self_s", &mf->self_ns, NULL) != 0 ||
            get_ns(r, f, "cpu_s", &mf->cpu_ns, &cpu) != 0 ||
            get_ns(r, f, "min_s", &mf->min_ns, NULL) != 0 ||
            get_ns(r, f, "max_s", &mf->max_ns, NULL) != 0 ||
            get_ns(r, f, "p50_s", &mf->p50_ns, NULL) != 0 ||
            get_ns(r, f, "p95_s", &mf->p95_ns, NULL) != 0 ||
            get_ns(r, f, "p99_s", &mf->p99_ns, NULL) != 0 ||
            get_i64(r, f, "memory_delta", &mf->rss_delta_max) != 0 ||
            get_i64(r, f, "memory_delta_total", &mf->rss_delta_sum) != 0 ||
            get_u64(r, f, "samples", &mf->samples) != 0 || /* v4; absent before */
            get_ns(r, f, "sampled_s", &mf->sampled_ns, NULL) != 0)
            return -1;
        mf->cpu_count = cpu ? mf->calls : 0;
        mf->rss_count = (md || mt) ? (mf->calls ? mf->calls : 1) : 0;
        m->nfuncs++;
        leave(r, o);
    }
    /* one entry per site (the writer lists each once): site ids are dense */
    uint32_t *first = calloc((size_t)m->sites.n + 1, sizeof *first);
    if (!first)
        return nomem(r);
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        uint32_t site = m->funcs[i].site;
        if (site <= m->sites.n && first[site]) {
            uint32_t j = first[site] - 1;
            free(first);
            size_t o = enter_key(r, "functions");
            enter_index(r, i);
            int rc = bad(r,
                         "expected one entry per site: same function, file, line and kind as "
                         "performance.functions[%u]",
                         j);
            leave(r, o);
            return rc;
        }
        if (site <= m->sites.n)
            first[site] = i + 1;
    }
    free(first);
    qsort(m->funcs, m->nfuncs, sizeof *m->funcs, cmp_func);
    return 0;
}

/* Appends a node; returns its index or CP_NONE (error set). */
static uint32_t new_node(rd *r, uint32_t parent, uint32_t site) {
    cp_model *m = r->m;
    if (m->nnodes == UINT32_MAX - 1) {
        bad(r, "expected fewer than 2^32-1 call-tree nodes");
        return CP_NONE;
    }
    if (m->nnodes == r->cap_nodes) {
        uint32_t ncap = r->cap_nodes ? r->cap_nodes * 2 : 64;
        if (ncap < r->cap_nodes || ncap > UINT32_MAX - 1)
            ncap = UINT32_MAX - 1;
        cp_mnode *nn = realloc(m->nodes, (size_t)ncap * sizeof *nn);
        if (!nn) {
            nomem(r);
            return CP_NONE;
        }
        m->nodes = nn;
        r->cap_nodes = ncap;
    }
    uint32_t idx = m->nnodes++;
    cp_mnode *n = &m->nodes[idx];
    memset(n, 0, sizeof *n);
    n->site = site;
    n->parent = parent;
    n->first_child = n->next_sibling = CP_NONE;
    n->depth = parent == CP_NONE ? 0 : m->nodes[parent].depth + 1;
    return idx;
}

static int read_children(rd *r, const cp_jval *obj, uint32_t parent);

static int read_node(rd *r, const cp_jval *v, uint32_t parent, uint32_t *out) {
    if (want(r, v, CP_JOBJECT, "a call-tree node object") != 0)
        return -1;
    uint32_t site;
    const cp_jval *other = member(v, "other");
    if (other) {
        uint64_t folded;
        if (get_u64(r, v, "other", &folded) != 0)
            return -1;
        if (!r->other_site) {
            r->other_site =
                cp_model_intern_site(r->m, CP_MODEL_JSON_OTHER_NAME, "", 0, CODEPROF_SITE_SCOPE);
            if (!r->other_site)
                return nomem(r);
        }
        site = r->other_site;
    } else {
        const cp_jval *sv = member(v, "site");
        uint64_t si;
        if (!sv || cp_jsonr_u64(sv, &si) != 0 || si >= r->nsites) {
            size_t o = enter_key(r, "site");
            if (!r->nsites)
                bad(r, "expected an index into performance.sites, which is empty");
            else
                bad(r, "expected an index into performance.sites (0..%u), got %.40s", r->nsites - 1,
                    !sv                      ? "nothing"
                    : sv->type == CP_JNUMBER ? sv->u.str
                                             : got(sv));
            leave(r, o);
            return -1;
        }
        site = r->site_map[si];
    }
    uint32_t idx = new_node(r, parent, site);
    if (idx == CP_NONE)
        return -1;
    cp_mnode *n = &r->m->nodes[idx];
    uint64_t count = 0, incl = 0, self = 0, cpu = 0;
    uint64_t smp = 0, smp_self = 0, smp_ns = 0, smp_self_ns = 0; /* v4; absent before */
    int has_cpu = 0, has_self = 0;
    if (get_u64(r, v, "calls", &count) != 0 || get_ns(r, v, "inclusive_s", &incl, NULL) != 0 ||
        get_ns(r, v, "self_s", &self, &has_self) != 0 || get_ns(r, v, "cpu_s", &cpu, &has_cpu) != 0 ||
        get_u64(r, v, "samples", &smp) != 0 || get_u64(r, v, "samples_self", &smp_self) != 0 ||
        get_ns(r, v, "sampled_s", &smp_ns, NULL) != 0 ||
        get_ns(r, v, "sampled_self_s", &smp_self_ns, NULL) != 0)
        return -1;
    n = &r->m->nodes[idx];
    n->samples = smp;
    n->samples_self = smp_self;
    n->sampled_ns = smp_ns;
    n->sampled_self_ns = smp_self_ns;
    n->count = count;
    n->incl_ns = incl;
    n->self_ns = has_self ? self : incl;
    n->cpu_ns = cpu;
    n->cpu_count = has_cpu ? count : 0;
    *out = idx;
    return other ? 0 : read_children(r, v, idx);
}

static int read_children(rd *r, const cp_jval *obj, uint32_t parent) {
    const cp_jval *kids = NULL;
    if (get_array(r, obj, "children", &kids) != 0)
        return -1;
    if (!kids)
        return 0;
    uint32_t last = CP_NONE;
    for (uint32_t i = 0; i < kids->len; i++) {
        size_t o = enter_key(r, "children");
        enter_index(r, i);
        uint32_t idx = CP_NONE;
        if (read_node(r, &kids->u.kids[i], parent, &idx) != 0)
            return -1;
        if (last == CP_NONE)
            r->m->nodes[parent].first_child = idx;
        else
            r->m->nodes[last].next_sibling = idx;
        last = idx;
        leave(r, o);
    }
    return 0;
}

static int read_call_tree(rd *r, const cp_jval *perf) {
    cp_model *m = r->m;
    const cp_jval *tree = NULL;
    if (get_array(r, perf, "call_tree", &tree) != 0)
        return -1;
    if (!tree || !tree->len)
        return 0;
    m->threads = calloc(tree->len, sizeof *m->threads);
    if (!m->threads)
        return nomem(r);
    for (uint32_t t = 0; t < tree->len; t++) {
        const cp_jval *th = &tree->u.kids[t];
        size_t o = enter_key(r, "call_tree");
        enter_index(r, t);
        if (want(r, th, CP_JOBJECT, "a thread object") != 0)
            return -1;
        cp_mthread *mt = &m->threads[m->nthreads];
        mt->worker = -1;
        mt->pid = m->pid;
        if (get_u32(r, th, "thread", &mt->index) != 0 || get_u64(r, th, "os_tid", &mt->os_tid) ||
            get_u64(r, th, "events", &mt->events) != 0 ||
            get_u64(r, th, "dropped", &mt->dropped) != 0 || get_i32(r, th, "pid", &mt->pid) != 0 ||
            get_i32(r, th, "worker", &mt->worker) != 0)
            return -1;
        uint32_t root = new_node(r, CP_NONE, 0);
        if (root == CP_NONE)
            return -1;
        mt->root = root;
        m->nthreads++;
        if (read_children(r, th, root) != 0)
            return -1;
        uint64_t sum = 0;
        for (uint32_t c = m->nodes[root].first_child; c != CP_NONE; c = m->nodes[c].next_sibling)
            sum = sum + m->nodes[c].incl_ns < sum ? UINT64_MAX : sum + m->nodes[c].incl_ns;
        m->nodes[root].incl_ns = sum;
        leave(r, o);
    }
    return 0;
}

static int read_performance(rd *r, const cp_jval *perf) {
    if (!perf)
        return 0;
    size_t o = enter_key(r, "performance");
    if (read_sites(r, perf) != 0 || read_functions(r, perf) != 0 || read_call_tree(r, perf) != 0)
        return -1;
    leave(r, o);
    return 0;
}

/* ---- data_loading ------------------------------------------------------------ */

static int read_datasets(rd *r, const cp_jval *arr) {
    cp_mdata *d = &r->m->data;
    if (!arr || !arr->len)
        return 0;
    d->datasets = calloc(arr->len, sizeof *d->datasets);
    if (!d->datasets)
        return nomem(r);
    for (uint32_t i = 0; i < arr->len; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t o = enter_key(r, "datasets");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a dataset object") != 0)
            return -1;
        cp_mdataset *ds = &d->datasets[d->ndatasets];
        ds->site = site_of_object(r, v, "name", CODEPROF_SITE_DATASET, 0);
        if (!ds->site)
            return -1;
        d->ndatasets++; /* counted now: its arrays are freed with the model */
        const cp_jval *bn = NULL;
        if (get_u64(r, v, "count", &ds->items) != 0 || get_ns(r, v, "min", &ds->min_ns, NULL) ||
            get_ns(r, v, "p50", &ds->p50_ns, NULL) || get_ns(r, v, "p95", &ds->p95_ns, NULL) ||
            get_ns(r, v, "p99", &ds->p99_ns, NULL) || get_ns(r, v, "max", &ds->max_ns, NULL) ||
            get_ns(r, v, "total_time", &ds->sum_ns, NULL) ||
            get_u64(r, v, "slow_loads", &ds->slow_loads) ||
            get_u64(r, v, "failures", &ds->failures) ||
            get_u64(r, v, "distinct_indices", &ds->distinct_indices) ||
            get_u32(r, v, "repeat_slow_indices", &ds->repeat_slow) ||
            get_array(r, v, "bottlenecks", &bn) != 0)
            return -1;
        uint32_t nb = bn ? bn->len : 0;
        if (nb > CP_MAX_BOTTLENECKS)
            nb = CP_MAX_BOTTLENECKS;
        if (nb) {
            ds->bottleneck_indices = calloc(nb, sizeof *ds->bottleneck_indices);
            ds->bottleneck_ns = calloc(nb, sizeof *ds->bottleneck_ns);
            ds->bottleneck_epochs = calloc(nb, sizeof *ds->bottleneck_epochs);
            if (!ds->bottleneck_indices || !ds->bottleneck_ns || !ds->bottleneck_epochs)
                return nomem(r);
        }
        for (uint32_t k = 0; k < nb; k++) {
            const cp_jval *b = &bn->u.kids[k];
            size_t ob = enter_key(r, "bottlenecks");
            enter_index(r, k);
            if (want(r, b, CP_JOBJECT, "an object {index, load_time, epochs_slow}") != 0 ||
                get_i64(r, b, "index", &ds->bottleneck_indices[k]) != 0 ||
                get_ns(r, b, "load_time", &ds->bottleneck_ns[k], NULL) != 0 ||
                get_u32(r, b, "epochs_slow", &ds->bottleneck_epochs[k]) != 0)
                return -1;
            ds->nbottlenecks++;
            leave(r, ob);
        }
        leave(r, o);
    }
    return 0;
}

static int opt_i32(rd *r, const cp_jval *v, const char *key, int32_t *out, int *described) {
    if (member(v, key))
        *described = 1;
    return get_i32(r, v, key, out);
}

static int opt_bool(rd *r, const cp_jval *v, const char *key, int *out, int *described) {
    if (member(v, key))
        *described = 1;
    return get_bool(r, v, key, out);
}

static int read_loaders(rd *r, const cp_jval *arr) {
    cp_mdata *d = &r->m->data;
    if (!arr || !arr->len)
        return 0;
    d->loaders = calloc(arr->len, sizeof *d->loaders);
    if (!d->loaders)
        return nomem(r);
    for (uint32_t i = 0; i < arr->len; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t o = enter_key(r, "loaders");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a loader object") != 0)
            return -1;
        cp_mloader *L = &d->loaders[d->nloaders];
        L->site = site_of_object(r, v, "name", CODEPROF_SITE_LOADER, 0);
        if (!L->site)
            return -1;
        uint64_t first_mean = 0;
        cp_mloader_desc *c = &L->desc;
        if (get_u64(r, v, "batches", &L->batches) || get_u64(r, v, "items", &L->items) ||
            get_u64(r, v, "epochs", &L->epochs) ||
            get_ns(r, v, "total_wait_time", &L->wait_ns, NULL) ||
            get_ns(r, v, "total_step_time", &L->step_ns, NULL) ||
            get_ns(r, v, "first_batch_latency", &first_mean, NULL) ||
            get_ns(r, v, "wait_p50", &L->wait_p50_ns, NULL) ||
            get_ns(r, v, "wait_p95", &L->wait_p95_ns, NULL) ||
            get_ns(r, v, "wait_max", &L->wait_max_ns, NULL) ||
            get_double(r, v, "data_stall_fraction", &L->stall_fraction) ||
            get_double(r, v, "samples_per_s", &L->samples_per_s) ||
            get_double(r, v, "batches_per_s", &L->batches_per_s) ||
            opt_i32(r, v, "num_workers", &c->num_workers, &c->described) ||
            opt_i32(r, v, "batch_size", &c->batch_size, &c->described) ||
            opt_i32(r, v, "prefetch_factor", &c->prefetch_factor, &c->described) ||
            opt_bool(r, v, "pin_memory", &c->pin_memory, &c->described) ||
            opt_bool(r, v, "persistent_workers", &c->persistent_workers, &c->described) ||
            opt_bool(r, v, "uses_gpu", &c->uses_gpu, &c->described) ||
            opt_bool(r, v, "iterable", &c->iterable, &c->described))
            return -1;
        /* the report keeps the mean first-batch wait; the sum is mean x epochs
         * (exact up to the writer's rounding to the ns) */
        L->first_wait_ns =
            L->epochs && first_mean <= UINT64_MAX / L->epochs ? first_mean * L->epochs : 0;
        if (L->first_wait_ns > L->wait_ns)
            L->first_wait_ns = L->wait_ns;
        L->steps = L->batches > L->epochs ? L->batches - L->epochs : 0;
        d->nloaders++;
        leave(r, o);
    }
    return 0;
}

static int read_workers(rd *r, const cp_jval *arr) {
    cp_mdata *d = &r->m->data;
    if (!arr || !arr->len)
        return 0;
    d->workers = calloc(arr->len, sizeof *d->workers);
    if (!d->workers)
        return nomem(r);
    for (uint32_t i = 0; i < arr->len; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t o = enter_key(r, "workers");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a worker object") != 0)
            return -1;
        cp_mworker *w = &d->workers[d->nworkers];
        w->worker = -1;
        if (get_i32(r, v, "worker", &w->worker) || get_i32(r, v, "pid", &w->pid) ||
            get_u64(r, v, "items", &w->items) || get_u64(r, v, "failures", &w->failures) ||
            get_ns(r, v, "busy_time", &w->busy_ns, NULL) ||
            get_ns(r, v, "span", &w->span_ns, NULL) ||
            get_bool(r, v, "incomplete", &w->incomplete) ||
            get_field(r, v, "incomplete_reason", w->reason, sizeof w->reason) ||
            get_i32(r, v, "spool_errno", &w->spool_errno) ||
            get_u64(r, v, "spool_dropped_records", &w->spool_dropped) ||
            get_u64(r, v, "spool_invalid_records", &w->spool_bad))
            return -1;
        d->nworkers++;
        leave(r, o);
    }
    return 0;
}

static int read_stages(rd *r, const cp_jval *arr) {
    cp_mdata *d = &r->m->data;
    if (!arr || !arr->len)
        return 0;
    d->stages = calloc(arr->len, sizeof *d->stages);
    if (!d->stages)
        return nomem(r);
    for (uint32_t i = 0; i < arr->len; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t o = enter_key(r, "stages");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a stage object") != 0)
            return -1;
        cp_mstage *st = &d->stages[d->nstages];
        st->site = site_of_object(r, v, "function", 0, 1);
        if (!st->site || get_u64(r, v, "calls", &st->calls) ||
            get_ns(r, v, "total_time", &st->sum_ns, NULL) ||
            get_ns(r, v, "max_time", &st->max_ns, NULL) ||
            get_double(r, v, "share_of_item_time", &st->share_of_item_time))
            return -1;
        d->nstages++;
        leave(r, o);
    }
    return 0;
}

static int read_data(rd *r, const cp_jval *dl) {
    if (!dl)
        return 0;
    cp_mdata *d = &r->m->data;
    size_t o = enter_key(r, "data_loading");
    const cp_jval *datasets, *loaders, *workers, *stages;
    if (get_array(r, dl, "datasets", &datasets) || get_array(r, dl, "loaders", &loaders) ||
        get_array(r, dl, "workers", &workers) || get_array(r, dl, "stages", &stages) ||
        get_u32(r, dl, "cpu_count", &d->cpu_count) ||
        get_u64(r, dl, "spool_errors", &d->spool_errors) ||
        get_u64(r, dl, "aggregated_records", &d->aggregated_records) ||
        get_u64(r, dl, "records_lost_oom", &d->records_lost_oom) || read_datasets(r, datasets) ||
        read_loaders(r, loaders) || read_workers(r, workers) || read_stages(r, stages))
        return -1;
    d->item_ns_total = 0;
    for (uint32_t i = 0; i < d->ndatasets; i++) {
        uint64_t s = d->datasets[i].sum_ns;
        d->item_ns_total = d->item_ns_total + s < s ? UINT64_MAX : d->item_ns_total + s;
    }
    leave(r, o);
    return 0;
}

/* ---- memory (schema 3) -------------------------------------------------------- */

/* The context index of the model's memory section for the context named
 * `name` (a context the report listed; else a new entry without calls, so
 * the name survives a round trip).  CP_NONE on OOM or a full table. */
static uint32_t ctx_named(rd *r, const char *name) {
    cp_mmem *mm = &r->m->mem;
    for (uint32_t i = 0; i < mm->nctxs; i++) {
        const cp_msite *si = cp_model_site(r->m, mm->ctxs[i].site);
        if (si && strcmp(si->name, name) == 0)
            return i;
    }
    if (mm->nctxs >= r->cap_ctxs)
        return CP_NONE;
    uint32_t site = cp_model_intern_site(r->m, name, "", 0, CODEPROF_SITE_SCOPE);
    if (!site) {
        nomem(r);
        return CP_NONE;
    }
    cp_mmem_ctx *c = &mm->ctxs[mm->nctxs];
    memset(c, 0, sizeof *c);
    c->site = site;
    return mm->nctxs++;
}

static int read_mem_contexts(rd *r, const cp_jval *arr) {
    cp_mmem *mm = &r->m->mem;
    uint32_t n = arr ? arr->len : 0;
    if (n > CP_MEM_MAX_CTXS)
        n = CP_MEM_MAX_CTXS;
    for (uint32_t i = 0; i < n; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t o = enter_key(r, "memory_intensive_contexts");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a context object {context, file, line, kind, calls, ...}"))
            return -1;
        cp_mmem_ctx *c = &mm->ctxs[mm->nctxs];
        memset(c, 0, sizeof *c);
        c->site = site_of_object(r, v, "context", 0, 1);
        int64_t delta = 0, max_delta = 0;
        uint64_t peak = 0;
        if (!c->site || get_u64(r, v, "calls", &c->count) ||
            get_i64(r, v, "memory_delta", &delta) ||
            get_i64(r, v, "max_memory_delta", &max_delta) || get_u64(r, v, "peak", &peak) ||
            get_i64(r, v, "rss_delta", &c->rss_delta_sum) ||
            get_u64(r, v, "rss_peak", &c->rss_peak_max) ||
            get_u64(r, v, "leaked_bytes", &c->leaked_bytes) ||
            get_u64(r, v, "leaked_blocks", &c->leaked_blocks) ||
            get_double(r, v, "floor_growth_per_call", &c->floor_slope) ||
            get_u64(r, v, "gc_collections", &c->gc_collections) ||
            get_bool(r, v, "estimated", &c->estimated))
            return -1;
        if (mm->mode == 0 && !mm->native) { /* mode rss: the figures are the RSS ones */
            c->rss_delta_sum = delta;
            c->rss_delta_max = max_delta;
            c->rss_peak_max = peak;
        } else {
            c->delta_sum = delta;
            c->delta_max = max_delta;
            c->peak_max = peak;
        }
        c->delta_min = c->delta_max;
        mm->nctxs++;
        leave(r, o);
    }
    return 0;
}

/* Three per-generation integers (absent or null: zeros). */
static int get_gen3(rd *r, const cp_jval *obj, const char *key, uint64_t out[3], int seconds) {
    const cp_jval *a;
    if (get_array(r, obj, key, &a) != 0)
        return -1;
    if (!a)
        return 0;
    size_t o = enter_key(r, key);
    if (a->len != 3)
        return bad(r, "expected 3 values (generations 0, 1, 2), got %u", a->len);
    for (uint32_t g = 0; g < 3; g++) {
        const cp_jval *v = &a->u.kids[g];
        int ok = seconds ? cp_jsonr_ns(v, &out[g]) == 0 : cp_jsonr_u64(v, &out[g]) == 0;
        if (!ok) {
            enter_index(r, g);
            return bad(r, seconds ? "expected a non-negative number of seconds, got %.40s"
                                  : "expected a non-negative integer, got %.40s",
                       v->type == CP_JNUMBER ? v->u.str : got(v));
        }
    }
    leave(r, o);
    return 0;
}

static int read_mem_gc(rd *r, const cp_jval *gcv) {
    cp_mgc *gc = &r->m->mem.gc;
    if (!gcv)
        return 0;
    size_t o = enter_key(r, "gc_statistics");
    if (get_bool(r, gcv, "enabled", &gc->enabled) ||
        get_gen3(r, gcv, "collections", gc->collections, 0) ||
        get_gen3(r, gcv, "collected", gc->collected, 0) ||
        get_gen3(r, gcv, "uncollectable", gc->uncollectable, 0) ||
        get_gen3(r, gcv, "time_s_by_generation", gc->time_ns, 1) ||
        get_ns(r, gcv, "max_pause_s", &gc->max_pause_ns, NULL))
        return -1;
    leave(r, o);
    return 0;
}

static int read_mem_domains(rd *r, const cp_jval *doms) {
    if (!doms)
        return 0;
    size_t o = enter_key(r, "domains");
    for (unsigned d = 0; d < CP_MEM_NDOMAINS; d++) {
        const char *name = cp_report_mem_domain_name(d);
        const cp_jval *v;
        if (get_object(r, doms, name, &v) != 0)
            return -1;
        if (!v)
            continue;
        cp_mmem_domain *x = &r->m->mem.domains[d];
        size_t k = enter_key(r, name);
        if (get_u64(r, v, "alloc_count", &x->alloc_count) ||
            get_u64(r, v, "alloc_bytes", &x->alloc_bytes) ||
            get_u64(r, v, "free_count", &x->free_count) ||
            get_u64(r, v, "free_bytes", &x->free_bytes) ||
            get_i64(r, v, "live_bytes", &x->live_bytes) ||
            get_u64(r, v, "live_blocks", &x->live_blocks) ||
            get_u64(r, v, "peak_bytes", &x->peak_bytes))
            return -1;
        leave(r, k);
    }
    leave(r, o);
    return 0;
}

static int read_mem_stacks(rd *r, const cp_jval *arr) {
    cp_mmem *mm = &r->m->mem;
    if (!arr || !arr->len)
        return 0;
    mm->stacks = calloc(arr->len, sizeof *mm->stacks);
    if (!mm->stacks)
        return nomem(r);
    for (uint32_t i = 0; i < arr->len; i++) {
        const cp_jval *v = &arr->u.kids[i], *frames;
        size_t o = enter_key(r, "stacks");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a stack object {frames}") != 0 ||
            get_array(r, v, "frames", &frames) != 0)
            return -1;
        cp_mmem_stack *st = &mm->stacks[mm->nstacks];
        uint32_t nf = frames ? frames->len : 0;
        if (nf > CP_MEM_STACK_DEPTH) /* the writer keeps at most this many */
            nf = CP_MEM_STACK_DEPTH;
        for (uint32_t f = 0; f < nf; f++) {
            const cp_jval *fr = &frames->u.kids[f];
            size_t of = enter_key(r, "frames");
            enter_index(r, f);
            if (want(r, fr, CP_JOBJECT, "a frame object {function, file, line}") != 0)
                return -1;
            uint32_t line = 0;
            if (get_u32(r, fr, "line", &line) != 0)
                return -1;
            /* a frame's site: its function and file (the line is the frame's) */
            int ok = 1;
            const char *name = get_str(r, fr, "function", &ok);
            const char *file = get_str(r, fr, "file", &ok);
            if (!ok)
                return -1;
            st->site[f] = cp_model_intern_site(r->m, name ? name : "?", file ? file : "", 0,
                                               CODEPROF_SITE_PYTHON);
            if (!st->site[f])
                return nomem(r);
            st->line[f] = line;
            leave(r, of);
        }
        st->nframes = nf;
        mm->nstacks++;
        leave(r, o);
    }
    return 0;
}

/* One group {stack, context?, live_bytes, live_blocks} of `arr`[i]. */
static int read_group(rd *r, const cp_jval *v, int with_ctx, cp_mmem_group *g) {
    cp_mmem *mm = &r->m->mem;
    memset(g, 0, sizeof *g);
    g->stack = CP_NONE;
    g->ctx = CP_NONE;
    if (want(r, v, CP_JOBJECT, "a group object {stack, live_bytes, live_blocks}") != 0 ||
        get_u64(r, v, "live_bytes", &g->live_bytes) ||
        get_u64(r, v, "live_blocks", &g->live_blocks))
        return -1;
    const cp_jval *sv = member(v, "stack");
    if (sv) {
        uint64_t s;
        if (cp_jsonr_u64(sv, &s) != 0 || s >= mm->nstacks) {
            enter_key(r, "stack");
            return bad(r, "expected an index into memory.stacks (%u stacks) or null",
                       mm->nstacks);
        }
        g->stack = (uint32_t)s;
    }
    if (with_ctx) {
        int ok = 1;
        const char *name = get_str(r, v, "context", &ok);
        if (!ok)
            return -1;
        if (name && (g->ctx = ctx_named(r, name)) == CP_NONE && r->st != CODEPROF_OK)
            return -1;
    }
    return 0;
}

static int read_mem_groups(rd *r, const cp_jval *arr, const char *key, cp_mmem_group **out,
                           uint32_t *n, uint32_t cap) {
    uint32_t len = arr ? arr->len : 0;
    if (len > cap)
        len = cap;
    if (!len)
        return 0;
    *out = calloc(len, sizeof **out);
    if (!*out)
        return nomem(r);
    for (uint32_t i = 0; i < len; i++) {
        size_t o = enter_key(r, key);
        enter_index(r, i);
        if (read_group(r, &arr->u.kids[i], 1, &(*out)[*n]) != 0)
            return -1;
        (*n)++;
        leave(r, o);
    }
    return 0;
}

static int read_mem_procs(rd *r, const cp_jval *arr) {
    cp_mmem *mm = &r->m->mem;
    uint32_t len = arr ? arr->len : 0;
    if (len > CP_MEM_MAX_PROCS)
        len = CP_MEM_MAX_PROCS;
    if (!len)
        return 0;
    mm->procs = calloc(len, sizeof *mm->procs);
    if (!mm->procs)
        return nomem(r);
    for (uint32_t i = 0; i < len; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t o = enter_key(r, "processes");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a process object {pid, worker, ...}") != 0)
            return -1;
        cp_mproc *p = &mm->procs[mm->nprocs];
        p->worker = -1;
        int ok = 1;
        const char *loader = get_str(r, v, "loader", &ok);
        const char *source = ok ? get_str(r, v, "source", &ok) : NULL;
        int exited = 0;
        if (!ok || get_bool(r, v, "exited", &exited))
            return -1;
        p->exited = exited;
        if (source && (p->source = cp_report_mem_source_parse(source)) < 0) {
            size_t k = enter_key(r, "source");
            bad(r, "expected one of \"none\", \"rollup\", \"smaps\", \"statm\", got \"%.40s\"",
                source);
            leave(r, k);
            return -1;
        }
        if (get_i32(r, v, "pid", &p->pid) || get_i32(r, v, "worker", &p->worker) ||
            get_u32(r, v, "samples", &p->nsamples) ||
            get_ns(r, v, "duration_s", &p->t_last_ns, NULL) ||
            get_u64(r, v, "rss_first", &p->rss_first) || get_u64(r, v, "rss_last", &p->rss_last) ||
            get_u64(r, v, "rss_max", &p->rss_max) || get_u64(r, v, "pss_first", &p->pss_first) ||
            get_u64(r, v, "pss_last", &p->pss_last) || get_u64(r, v, "pss_max", &p->pss_max) ||
            get_u64(r, v, "uss_first", &p->uss_first) ||
            get_u64(r, v, "uss_last", &p->uss_last) || get_u64(r, v, "uss_max", &p->uss_max) ||
            get_u64(r, v, "items", &p->items))
            return -1;
        if (loader &&
            !(p->loader = cp_model_intern_site(r->m, loader, "", 0, CODEPROF_SITE_LOADER)))
            return nomem(r);
        mm->nprocs++;
        leave(r, o);
    }
    return 0;
}

static int read_mem_snaps(rd *r, const cp_jval *arr) {
    cp_mmem *mm = &r->m->mem;
    if (!arr || !arr->len)
        return 0;
    uint64_t ngroups = 0;
    for (uint32_t i = 0; i < arr->len; i++) {
        const cp_jval *g = member(&arr->u.kids[i], "groups");
        if (g && g->type == CP_JARRAY)
            ngroups += g->len < CP_MEM_SNAP_SITES ? g->len : CP_MEM_SNAP_SITES;
    }
    mm->snaps = calloc(arr->len, sizeof *mm->snaps);
    mm->snap_groups = calloc(ngroups ? ngroups : 1, sizeof *mm->snap_groups);
    if (!mm->snaps || !mm->snap_groups)
        return nomem(r);
    for (uint32_t i = 0; i < arr->len; i++) {
        const cp_jval *v = &arr->u.kids[i], *groups;
        size_t o = enter_key(r, "snapshots");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a snapshot object {context, t_s, live_bytes, groups}") != 0)
            return -1;
        cp_msnap *s = &mm->snaps[mm->nsnaps];
        int ok = 1;
        const char *ctx = get_str(r, v, "context", &ok);
        if (!ok || get_ns(r, v, "t_s", &s->t_ns, NULL) ||
            get_i64(r, v, "live_bytes", &s->live_bytes) || get_array(r, v, "groups", &groups))
            return -1;
        if (ctx && !(s->ctx_site = cp_model_intern_site(r->m, ctx, "", 0, CODEPROF_SITE_SCOPE)))
            return nomem(r);
        s->first = mm->nsnap_groups;
        uint32_t ng = groups ? groups->len : 0;
        if (ng > CP_MEM_SNAP_SITES)
            ng = CP_MEM_SNAP_SITES;
        for (uint32_t k = 0; k < ng; k++) {
            size_t og = enter_key(r, "groups");
            enter_index(r, k);
            if (read_group(r, &groups->u.kids[k], 0, &mm->snap_groups[mm->nsnap_groups]) != 0)
                return -1;
            mm->nsnap_groups++;
            s->n++;
            leave(r, og);
        }
        mm->nsnaps++;
        leave(r, o);
    }
    return 0;
}

static int read_mode(rd *r, const cp_jval *mem) {
    static const struct {
        const char *name;
        int mode;
    } modes[] = {{"off", 0}, {"rss", 0}, {"sampled", 1}, {"all", 2}};
    int ok = 1;
    const char *s = get_str(r, mem, "mode", &ok);
    if (!ok)
        return -1;
    if (!s)
        return 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(s, modes[i].name) == 0) {
            r->m->mem.mode = modes[i].mode;
            return 0;
        }
    size_t o = enter_key(r, "mode");
    bad(r, "expected one of off, rss, sampled, all; got \"%.40s\"", s);
    leave(r, o);
    return -1;
}

/* ---- the sampling section (schema v4; the "sampleviews" engineer) ---- */

static int read_sampling_body(rd *r, const cp_jval *v);

static int read_sampling(rd *r, const cp_jval *v) {
    if (!v)
        return 0;
    size_t o = enter_key(r, "sampling");
    if (read_sampling_body(r, v) != 0)
        return -1;
    leave(r, o);
    return 0;
}

static int read_sampling_body(rd *r, const cp_jval *v) {
    cp_msampling *s = &r->m->samp;
    const cp_jval *dr = NULL;
    int ok = 1;
    const char *mode = get_str(r, v, "mode", &ok);
    if (!ok)
        return -1;
    if (mode && strcmp(mode, "wall") != 0 && strcmp(mode, "cpu") != 0) {
        size_t o = enter_key(r, "mode");
        int rc = bad(r, "expected \"wall\" or \"cpu\", got \"%.40s\"", mode);
        leave(r, o);
        return rc;
    }
    s->mode = mode && strcmp(mode, "cpu") == 0;
    if (get_bool(r, v, "enabled", &s->enabled) != 0 || get_bool(r, v, "native", &s->native) != 0 ||
        get_ns(r, v, "interval_s", &s->interval_ns, NULL) != 0 ||
        get_u64(r, v, "samples", &s->samples) != 0 ||
        get_u64(r, v, "running", &s->samples_running) != 0 ||
        get_u64(r, v, "idle", &s->samples_idle) != 0 ||
        get_u64(r, v, "gil_wait", &s->samples_gil) != 0 ||
        get_u64(r, v, "threads", &s->threads) != 0 || get_u64(r, v, "ticks", &s->ticks) != 0 ||
        get_u64(r, v, "missed_ticks", &s->missed_ticks) != 0 ||
        get_u64(r, v, "read_errors", &s->read_errors) != 0 ||
        get_ns(r, v, "sampler_cpu_s", &s->sampler_cpu_ns, NULL) != 0 ||
        get_object(r, v, "dropped", &dr) != 0)
        return -1;
    if (dr) {
        size_t o = enter_key(r, "dropped");
        if (get_u64(r, dr, "stacks", &s->dropped_stacks) != 0 ||
            get_u64(r, dr, "samples", &s->dropped_samples) != 0 ||
            get_u64(r, dr, "timeline", &s->timeline_dropped) != 0)
            return -1;
        leave(r, o);
    }
    return 0;
}

/* ---- end of the sampling section ---- */


/* ---- the lines section (schema v4; the "lines" engineer) ---- */

/* One function of lines.functions: its rows into m->lines. */
static int read_lines_func(rd *r, const cp_jval *f) {
    if (want(r, f, CP_JOBJECT, "a function object {function, file, line, total_s, lines}"))
        return -1;
    uint32_t site = site_of_object(r, f, "function", CODEPROF_SITE_PYTHON, 0);
    const cp_jval *rows;
    if (!site || get_array(r, f, "lines", &rows))
        return -1;
    uint32_t n = rows ? rows->len : 0;
    for (uint32_t i = 0; i < n; i++) {
        const cp_jval *v = &rows->u.kids[i];
        size_t o = enter_key(r, "lines");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a line object {line, hits, time_s, samples, sampled_s, ...}"))
            return -1;
        uint32_t line = 0;
        uint64_t hits = 0, time_ns = 0, samples = 0, sampled_ns = 0;
        int present = 0, ok = 1;
        if (get_u32(r, v, "line", &line) || get_u64(r, v, "hits", &hits) ||
            get_ns(r, v, "time_s", &time_ns, &present) || get_u64(r, v, "samples", &samples) ||
            get_ns(r, v, "sampled_s", &sampled_ns, &present))
            return -1;
        const char *text = get_str(r, v, "text", &ok);
        if (!ok)
            return -1;
        cp_mlines *ml = &r->m->lines;
        if (cp_mlines_add(ml, site, line, hits, time_ns, samples, sampled_ns) != 0)
            return nomem(r);
        if (text && cp_mlines_set_text(ml, ml->n - 1, text, strlen(text)) != 0)
            return nomem(r);
        leave(r, o);
    }
    return 0;
}

static int read_lines(rd *r, const cp_jval *v) {
    if (!v)
        return 0;
    size_t o = enter_key(r, "lines");
    const cp_jval *fs;
    cp_mlines *ml = &r->m->lines;
    if (get_bool(r, v, "exact", &ml->exact) || get_u64(r, v, "dropped", &ml->dropped) ||
        get_array(r, v, "functions", &fs))
        return -1;
    uint32_t n = fs ? fs->len : 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t o2 = enter_key(r, "functions");
        enter_index(r, i);
        if (read_lines_func(r, &fs->u.kids[i]))
            return -1;
        leave(r, o2);
    }
    cp_mlines_finish(ml);
    leave(r, o);
    return 0;
}

/* ---- end of the lines section ---- */


/* ---- the gpu section (schema v4; the "gpuviews" engineer) ---- */

#include "report/report_gpu.h"

/* Read bounds: past them entries are ignored and counted in gpu.dropped
 * (operations, sync_sites); devices past the bound are ignored. */
#define GPU_READ_MAX_OPS 4096u
#define GPU_READ_MAX_DEVICES 64u

/* Milliseconds (a non-negative finite number below 2^64 ns) as ns. */
static int gpu_get_ms(rd *r, const cp_jval *obj, const char *key, uint64_t *out) {
    const cp_jval *v = member(obj, key);
    if (!v)
        return 0;
    double d;
    if (cp_jsonr_double(v, &d) == 0 && isfinite(d) && d >= 0 &&
        d * 1e6 + 0.5 < 18446744073709551616.0) { /* 2^64 */
        *out = (uint64_t)(d * 1e6 + 0.5);
        return 0;
    }
    size_t o = enter_key(r, key);
    int rc = v->type == CP_JNUMBER
                 ? bad(r, "expected a non-negative number of milliseconds below 2^64 ns, got %.40s",
                       v->u.str)
                 : bad(r, "expected a number of milliseconds, got %s", got(v));
    leave(r, o);
    return rc;
}

/* A name member parsed by `parse` into *out (absent or null: unchanged). */
static int gpu_get_enum(rd *r, const cp_jval *obj, const char *key, int (*parse)(const char *),
                        const char *allowed, int *out) {
    int ok = 1;
    const char *s = get_str(r, obj, key, &ok);
    if (!ok)
        return -1;
    if (!s)
        return 0;
    int x = parse(s);
    if (x < 0) {
        size_t o = enter_key(r, key);
        bad(r, "expected one of %s; got \"%.40s\"", allowed, s);
        leave(r, o);
        return -1;
    }
    *out = x;
    return 0;
}

static int gpu_read_lib(rd *r, const cp_jval *libs, const char *key, cp_mgpu_lib *l) {
    const cp_jval *v;
    if (get_object(r, libs, key, &v) != 0)
        return -1;
    if (!v)
        return 0;
    size_t o = enter_key(r, key);
    if (gpu_get_enum(r, v, "status", cp_report_gpu_lib_status_parse,
                     "ok, not_found, too_old, init_failed, no_context, disabled, not_tried",
                     &l->status) ||
        get_field(r, v, "path", l->path, sizeof l->path) ||
        get_i32(r, v, "version", &l->version) ||
        get_field(r, v, "reason", l->reason, sizeof l->reason))
        return -1;
    leave(r, o);
    return 0;
}

static int gpu_read_ops(rd *r, const cp_jval *arr) {
    cp_mgpu *g = &r->m->gpu;
    if (!arr)
        return 0;
    uint32_t n = arr->len < GPU_READ_MAX_OPS ? arr->len : GPU_READ_MAX_OPS;
    g->ops_dropped += arr->len - n;
    g->ops = calloc((size_t)n + 1, sizeof *g->ops);
    if (!g->ops)
        return nomem(r);
    for (uint32_t i = 0; i < n; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t o = enter_key(r, "operations");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "an operation object {context, file, line, calls, ...}"))
            return -1;
        cp_mgpu_op *op = &g->ops[g->nops];
        memset(op, 0, sizeof *op);
        uint16_t kind = CODEPROF_SITE_GPU;
        if (member(v, "kind") && parse_kind(r, v, &kind) != 0)
            return -1;
        op->site = site_of_object(r, v, "context", kind, 0);
        uint64_t total = 0, mn = 0, mx = 0;
        if (!op->site || get_u64(r, v, "calls", &op->calls) || get_u64(r, v, "timed", &op->timed) ||
            gpu_get_ms(r, v, "total_time_ms", &total) || gpu_get_ms(r, v, "min_time_ms", &mn) ||
            gpu_get_ms(r, v, "max_time_ms", &mx) || gpu_get_ms(r, v, "host_time_ms", &op->host_ns) ||
            gpu_get_ms(r, v, "host_max_ms", &op->host_max_ns) ||
            get_i64(r, v, "memory_delta", &op->mem_delta_sum) ||
            get_i64(r, v, "max_memory_delta", &op->mem_delta_max) ||
            get_u64(r, v, "peak_memory", &op->mem_peak) ||
            get_i64(r, v, "reserved_delta", &op->reserved_delta_sum) ||
            get_u64(r, v, "reserved_peak", &op->reserved_peak) ||
            get_u64(r, v, "memory_measured", &op->mem_count) ||
            gpu_get_enum(r, v, "memory_source", cp_report_gpu_mem_source_parse,
                         "none, torch, driver", &op->mem_source) ||
            get_u32(r, v, "streams", &op->streams) || get_u32(r, v, "threads", &op->threads) ||
            get_u64(r, v, "slow", &op->slow))
            return -1;
        if (op->timed > op->calls)
            return bad(r, "expected timed <= calls, got %llu > %llu",
                       (unsigned long long)op->timed, (unsigned long long)op->calls);
        if (op->timed) {
            op->device_ns = total;
            op->device_min_ns = mn;
            op->device_max_ns = mx;
        } else if (!member(v, "host_max_ms")) {
            op->host_max_ns = mx;
        }
        for (uint32_t k = 0; k < g->nops; k++)
            if (g->ops[k].site == op->site)
                return bad(r, "expected one entry per operation, got a second \"%.60s\"",
                           cp_model_site(r->m, op->site) ? cp_model_site(r->m, op->site)->name
                                                         : "?");
        g->nops++;
        leave(r, o);
    }
    return 0;
}

/* The site of an operation named `name` (read from the operations list),
 * else a new GPU site of that name; 0 on OOM. */
static uint32_t gpu_op_site(rd *r, const char *name) {
    const cp_mgpu *g = &r->m->gpu;
    for (uint32_t k = 0; k < g->nops; k++) {
        const cp_msite *si = cp_model_site(r->m, g->ops[k].site);
        if (si && strcmp(si->name, name) == 0)
            return g->ops[k].site;
    }
    uint32_t id = cp_model_intern_site(r->m, name, "", 0, CODEPROF_SITE_GPU);
    if (!id)
        nomem(r);
    return id;
}

static int gpu_read_slow(rd *r, const cp_jval *arr) {
    cp_mgpu *g = &r->m->gpu;
    if (!arr)
        return 0;
    uint32_t n = arr->len < CP_GPU_MAX_SLOW ? arr->len : CP_GPU_MAX_SLOW;
    g->slow = calloc((size_t)n + 1, sizeof *g->slow);
    if (!g->slow)
        return nomem(r);
    for (uint32_t i = 0; i < n; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t o = enter_key(r, "slow_gpu_operations");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a slow operation object {context, elapsed_time_ms, ...}"))
            return -1;
        cp_mgpu_span *s = &g->slow[g->nslow];
        memset(s, 0, sizeof *s);
        int ok = 1, timed = 1;
        const char *name = get_str(r, v, "context", &ok);
        uint64_t elapsed = 0, host = 0;
        s->device = -1;
        if (!ok || gpu_get_ms(r, v, "elapsed_time_ms", &elapsed) ||
            gpu_get_ms(r, v, "host_time_ms", &host) || get_u64(r, v, "stream", &s->stream) ||
            get_i32(r, v, "device", &s->device) || get_ns(r, v, "t_s", &s->host_start_ns, NULL) ||
            get_bool(r, v, "timed", &timed) || get_i64(r, v, "memory_delta", &s->mem_delta))
            return -1;
        s->site = gpu_op_site(r, name ? name : "?");
        if (!s->site)
            return -1;
        if (s->host_start_ns + host < s->host_start_ns)
            return bad(r, "expected t_s + host_time_ms below 2^64 ns");
        s->host_end_ns = s->host_start_ns + host;
        s->timed = timed != 0;
        if (s->timed)
            s->device_ns = elapsed;
        g->nslow++;
        leave(r, o);
    }
    return 0;
}

static int gpu_read_sync(rd *r, const cp_jval *sync) {
    cp_mgpu *g = &r->m->gpu;
    if (!sync)
        return 0;
    size_t o = enter_key(r, "synchronization");
    const cp_jval *arr;
    if (gpu_get_enum(r, sync, "source", cp_report_gpu_sync_source_parse, "none, cupti, fallback",
                     &g->sync_source) ||
        get_array(r, sync, "points", &arr))
        return -1;
    uint32_t n = arr ? (arr->len < CP_GPU_MAX_SYNC_SITES ? arr->len : CP_GPU_MAX_SYNC_SITES) : 0;
    if (arr)
        g->syncs_dropped += arr->len - n;
    g->syncs = calloc((size_t)n + 1, sizeof *g->syncs);
    if (!g->syncs)
        return nomem(r);
    for (uint32_t i = 0; i < n; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t k = enter_key(r, "points");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a sync point object {function, file, line, kind, ...}"))
            return -1;
        cp_mgpu_sync *y = &g->syncs[g->nsyncs];
        memset(y, 0, sizeof *y);
        int ok = 1, kind = CP_GPU_SYNC_OTHER;
        const char *fn = get_str(r, v, "function", &ok);
        const char *file = get_str(r, v, "file", &ok);
        if (!ok || get_u32(r, v, "line", &y->line) ||
            gpu_get_enum(r, v, "kind", cp_report_gpu_sync_kind_parse,
                         "device, stream, event, memcpy, other", &kind) ||
            get_u64(r, v, "count", &y->count) || gpu_get_ms(r, v, "blocked_ms", &y->blocked_ns) ||
            gpu_get_ms(r, v, "max_ms", &y->max_ns))
            return -1;
        y->kind = (uint32_t)kind;
        if (fn) {
            y->site = cp_model_intern_site(r->m, fn, file ? file : "", 0, CODEPROF_SITE_PYTHON);
            if (!y->site)
                return nomem(r);
        }
        for (uint32_t j = 0; j < g->nsyncs; j++)
            if (g->syncs[j].site == y->site && g->syncs[j].line == y->line &&
                g->syncs[j].kind == y->kind)
                return bad(r, "expected one entry per (function, file, line, kind), got a "
                              "second one");
        g->nsyncs++;
        leave(r, k);
    }
    leave(r, o);
    return 0;
}

static int gpu_read_util(rd *r, const cp_jval *u) {
    cp_mgpu *g = &r->m->gpu;
    if (!u)
        return 0;
    size_t o = enter_key(r, "utilization");
    const cp_jval *arr;
    if (get_array(r, u, "devices", &arr) || gpu_get_ms(r, u, "idle_gap_ms", &g->idle_gap_ns) ||
        gpu_get_ms(r, u, "idle_gap_max_ms", &g->idle_gap_max_ns) ||
        get_u64(r, u, "idle_gaps", &g->idle_gaps) || gpu_get_ms(r, u, "busy_ms", &g->busy_ns) ||
        gpu_get_ms(r, u, "span_ms", &g->span_ns) ||
        get_ns(r, u, "sampler_cpu_s", &g->sampler_cpu_ns, NULL))
        return -1;
    uint32_t n = arr ? (arr->len < GPU_READ_MAX_DEVICES ? arr->len : GPU_READ_MAX_DEVICES) : 0;
    g->devices = calloc((size_t)n + 1, sizeof *g->devices);
    if (!g->devices)
        return nomem(r);
    for (uint32_t i = 0; i < n; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t k = enter_key(r, "devices");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a device object {index, name, samples, util_mean, ...}"))
            return -1;
        cp_mgpu_device *d = &g->devices[g->ndevices];
        memset(d, 0, sizeof *d);
        if (get_i32(r, v, "index", &d->index) || get_field(r, v, "name", d->name, sizeof d->name) ||
            get_u64(r, v, "memory_total", &d->mem_total) || get_u64(r, v, "samples", &d->samples) ||
            get_double(r, v, "util_mean", &d->util_mean) ||
            get_double(r, v, "util_max", &d->util_max) ||
            get_double(r, v, "mem_util_mean", &d->mem_util_mean) ||
            get_u64(r, v, "memory_used_mean", &d->mem_used_mean) ||
            get_u64(r, v, "memory_used_max", &d->mem_used_max) ||
            get_double(r, v, "power_mean_w", &d->power_mean_w) ||
            get_double(r, v, "power_max_w", &d->power_max_w) ||
            get_double(r, v, "temperature_max_c", &d->temp_max_c) ||
            get_double(r, v, "sm_clock_mean_mhz", &d->sm_clock_mean_mhz) ||
            get_u64(r, v, "idle_samples", &d->idle_samples) ||
            get_ns(r, v, "longest_idle_s", &d->longest_idle_ns, NULL))
            return -1;
        for (uint32_t j = 0; j < g->ndevices; j++)
            if (g->devices[j].index == d->index)
                return bad(r, "expected one entry per device index, got a second %d",
                           (int)d->index);
        g->ndevices++;
        leave(r, k);
    }
    leave(r, o);
    return 0;
}

static int read_gpu(rd *r, const cp_jval *v) {
    if (!v)
        return 0;
    cp_mgpu *g = &r->m->gpu;
    size_t o = enter_key(r, "gpu");
    const cp_jval *libs, *slow, *mem, *ops, *sync, *util, *dropped;
    if (get_bool(r, v, "enabled", &g->enabled) || get_bool(r, v, "available", &g->available) ||
        get_field(r, v, "reason", g->reason, sizeof g->reason) ||
        get_object(r, v, "libraries", &libs) || get_array(r, v, "slow_gpu_operations", &slow) ||
        get_object(r, v, "memory_statistics", &mem) || get_array(r, v, "operations", &ops) ||
        get_object(r, v, "synchronization", &sync) || get_object(r, v, "utilization", &util) ||
        get_object(r, v, "dropped", &dropped))
        return -1;
    if (libs) {
        size_t k = enter_key(r, "libraries");
        if (gpu_read_lib(r, libs, "driver", &g->driver) || gpu_read_lib(r, libs, "nvml", &g->nvml) ||
            gpu_read_lib(r, libs, "cupti", &g->cupti))
            return -1;
        leave(r, k);
    }
    if (mem) {
        size_t k = enter_key(r, "memory_statistics");
        if (get_u64(r, mem, "device_total", &g->device_mem_total))
            return -1;
        leave(r, k);
    }
    if (dropped) {
        size_t k = enter_key(r, "dropped");
        if (get_u64(r, dropped, "operations", &g->ops_dropped) ||
            get_u64(r, dropped, "unresolved", &g->ops_unresolved) ||
            get_u64(r, dropped, "host_only", &g->ops_host_only) ||
            get_u64(r, dropped, "sync_sites", &g->syncs_dropped) ||
            get_u64(r, dropped, "samples", &g->samples_dropped))
            return -1;
        leave(r, k);
    }
    /* the figures of gpu_statistics and memory_statistics are sums over the
     * operations: the writer derives them again */
    if (gpu_read_ops(r, ops) || gpu_read_slow(r, slow) || gpu_read_sync(r, sync) ||
        gpu_read_util(r, util))
        return -1;
    leave(r, o);
    return 0;
}

/* ---- end of the gpu section ---- */


static int read_memory(rd *r, const cp_jval *mem) {
    if (!mem)
        return 0;
    cp_mmem *mm = &r->m->mem;
    size_t o = enter_key(r, "memory");
    const cp_jval *stats, *ctxs, *gc, *doms, *stacks, *tops, *leaks, *procs, *snaps, *dropped;
    if (read_mode(r, mem) || get_bool(r, mem, "estimated", &mm->estimated) ||
        get_bool(r, mem, "native", &mm->native) ||
        get_u64(r, mem, "sample_bytes", &mm->sample_bytes) ||
        get_u32(r, mem, "stack_depth", &mm->stack_depth) ||
        get_u64(r, mem, "own_bytes", &mm->own_bytes) ||
        get_object(r, mem, "memory_statistics", &stats) ||
        get_array(r, mem, "memory_intensive_contexts", &ctxs) ||
        get_object(r, mem, "gc_statistics", &gc) || get_object(r, mem, "domains", &doms) ||
        get_array(r, mem, "stacks", &stacks) || get_array(r, mem, "top_allocations", &tops) ||
        get_array(r, mem, "leaks", &leaks) || get_array(r, mem, "processes", &procs) ||
        get_array(r, mem, "snapshots", &snaps) || get_object(r, mem, "dropped", &dropped))
        return -1;
    if (stats) {
        size_t k = enter_key(r, "memory_statistics");
        if (get_i64(r, stats, "live_bytes", &mm->live_bytes) ||
            get_u64(r, stats, "peak_bytes", &mm->peak_bytes) ||
            get_u64(r, stats, "rss_bytes", &mm->rss_last) ||
            get_u64(r, stats, "rss_peak_bytes", &mm->rss_peak) ||
            get_u64(r, stats, "machine_bytes", &mm->machine_bytes))
            return -1;
        leave(r, k);
    }
    if (dropped) {
        size_t k = enter_key(r, "dropped");
        if (get_u64(r, dropped, "blocks", &mm->dropped_blocks) ||
            get_u64(r, dropped, "stacks", &mm->dropped_stacks) ||
            get_u64(r, dropped, "snapshots", &mm->dropped_snapshots) ||
            get_u64(r, dropped, "marks", &mm->dropped_marks) ||
            get_u64(r, dropped, "contexts", &mm->dropped_ctxs) ||
            get_u64(r, dropped, "samples", &mm->dropped_samples) ||
            get_u64(r, dropped, "procs", &mm->dropped_procs))
            return -1;
        leave(r, k);
    }
    /* contexts: the listed ones, then one per other context a group names */
    uint64_t cap = (ctxs ? (ctxs->len < CP_MEM_MAX_CTXS ? ctxs->len : CP_MEM_MAX_CTXS) : 0) +
                   (uint64_t)CP_MEM_MAX_SITES + CP_MEM_MAX_LEAKS;
    mm->ctxs = calloc(cap, sizeof *mm->ctxs);
    if (!mm->ctxs)
        return nomem(r);
    r->cap_ctxs = (uint32_t)cap;
    if (read_mem_contexts(r, ctxs) || read_mem_gc(r, gc) || read_mem_domains(r, doms) ||
        read_mem_stacks(r, stacks) ||
        read_mem_groups(r, tops, "top_allocations", &mm->sites, &mm->nsites, CP_MEM_MAX_SITES) ||
        read_mem_groups(r, leaks, "leaks", &mm->leaks, &mm->nleaks, CP_MEM_MAX_LEAKS) ||
        read_mem_procs(r, procs) || read_mem_snaps(r, snaps))
        return -1;
    leave(r, o);
    return 0;
}

static int read_findings(rd *r, const cp_jval *arr) {
    if (!arr)
        return 0;
    for (uint32_t i = 0; i < arr->len; i++) {
        const cp_jval *v = &arr->u.kids[i];
        size_t o = enter_key(r, "findings");
        enter_index(r, i);
        if (want(r, v, CP_JOBJECT, "a finding object") != 0)
            return -1;
        cp_finding f;
        memset(&f, 0, sizeof f);
        if (get_field(r, v, "rule", f.rule, sizeof f.rule) ||
            get_field(r, v, "category", f.category, sizeof f.category) ||
            get_field(r, v, "subject", f.subject, sizeof f.subject) ||
            get_double(r, v, "value", &f.value) || get_double(r, v, "threshold", &f.threshold) ||
            get_field(r, v, "unit", f.unit, sizeof f.unit) ||
            get_double(r, v, "severity", &f.severity) ||
            get_field(r, v, "recommendation", f.recommendation, sizeof f.recommendation) ||
            get_double(r, v, "saving_s", &f.saving_s))
            return -1;
        if (cp_model_add_finding(r->m, &f) != 0)
            return nomem(r);
        leave(r, o);
    }
    return 0;
}

/* ---- entry points ------------------------------------------------------------ */

static int read_report(rd *r, const cp_jval *root) {
    if (root->type != CP_JOBJECT)
        return bad(r, "expected a JSON object (a codeprof report), got %s", got(root));
    int ok = 1;
    const char *schema = get_str(r, root, "schema", &ok);
    if (!ok)
        return -1;
    if (!schema || strcmp(schema, "codeprof-report") != 0) {
        enter_key(r, "schema");
        return bad(r, "expected \"codeprof-report\": this is not a codeprof JSON report");
    }
    uint64_t version = 0;
    const cp_jval *vv = member(root, "schema_version");
    enter_key(r, "schema_version");
    if (!vv || cp_jsonr_u64(vv, &version) != 0)
        return bad(r, "expected the integer %d (or %d)", CP_MODEL_JSON_SCHEMA_VERSION,
                   CP_MODEL_JSON_MIN_SCHEMA_VERSION);
    if (version < CP_MODEL_JSON_MIN_SCHEMA_VERSION)
        return bad(r,
                   "the report has schema version %llu, older than the %d..%d this codeprof "
                   "reads: profile the run again with this version",
                   (unsigned long long)version, CP_MODEL_JSON_MIN_SCHEMA_VERSION,
                   CP_MODEL_JSON_SCHEMA_VERSION);
    if (version > CP_MODEL_JSON_SCHEMA_VERSION)
        return bad(r,
                   "the report has schema version %llu, newer than the %d this codeprof reads: "
                   "read it with the codeprof that wrote it, or a newer one",
                   (unsigned long long)version, CP_MODEL_JSON_SCHEMA_VERSION);
    leave(r, 0);
    const cp_jval *meta, *config, *perf, *dl, *mem = NULL, *findings;
    const cp_jval *samp = NULL, *lines = NULL, *gpu = NULL;
    if (get_object(r, root, "meta", &meta) || get_object(r, root, "config", &config) ||
        get_object(r, root, "performance", &perf) || get_object(r, root, "data_loading", &dl) ||
        (version >= 3 && get_object(r, root, "memory", &mem)) ||
        (version >= 4 && get_object(r, root, "sampling", &samp)) ||
        (version >= 4 && get_object(r, root, "lines", &lines)) ||
        (version >= 4 && get_object(r, root, "gpu", &gpu)) ||
        get_array(r, root, "findings", &findings))
        return -1;
    /* a version 2 report has no memory section, a version 3 one no
     * sampling, lines or gpu section: the model's stay empty */
    if ((meta && read_meta(r, meta)) || (config && read_config(r, config)) ||
        read_performance(r, perf) || read_data(r, dl) || read_memory(r, mem) ||
        read_sampling(r, samp) || read_lines(r, lines) || read_gpu(r, gpu))
        return -1;
    return read_findings(r, findings);
}

codeprof_status cp_model_from_json(const char *text, size_t len, const char *name, cp_model **out,
                                   codeprof_error *err) {
    if (out)
        *out = NULL;
    if (!out || (!text && len))
        return cp_error_set(err, CODEPROF_EINVAL, "text", "report text or output is NULL");
    if (!name)
        name = "report";
    cp_jsonr_doc *doc = NULL;
    cp_jsonr_error jerr = {0, ""};
    int prc = cp_jsonr_parse(text, len, NULL, &doc, &jerr);
    if (prc == -2)
        return cp_error_set(err, CODEPROF_ENOMEM, "", "%s: out of memory parsing the JSON", name);
    if (prc != 0)
        return cp_error_set(err, CODEPROF_EFORMAT, "", "%s: byte %zu: %s", name, jerr.offset,
                            jerr.message);
    rd r;
    memset(&r, 0, sizeof r);
    r.name = name;
    r.err = err;
    r.m = calloc(1, sizeof *r.m);
    if (!r.m) {
        cp_jsonr_free(doc);
        return cp_error_set(err, CODEPROF_ENOMEM, "", "%s: out of memory", name);
    }
    codeprof_config_init(&r.m->cfg);
    r.m->clock_source = NULL;
    int rc = read_report(&r, cp_jsonr_root(doc));
    free(r.site_map);
    cp_jsonr_free(doc);
    if (rc != 0) {
        cp_model_free(r.m);
        return r.st != CODEPROF_OK ? r.st : CODEPROF_EFORMAT;
    }
    if (r.m->nnodes < r.cap_nodes) { /* give the slack back */
        cp_mnode *nn = realloc(r.m->nodes, (size_t)(r.m->nnodes ? r.m->nnodes : 1) * sizeof *nn);
        if (nn)
            r.m->nodes = nn;
    }
    *out = r.m;
    return CODEPROF_OK;
}

codeprof_status cp_model_read_json_file(const char *path, cp_model **out, codeprof_error *err,
                                        int *os_errno) {
    if (os_errno)
        *os_errno = 0;
    if (out)
        *out = NULL;
    if (!path || !*path || !out)
        return cp_error_set(err, CODEPROF_EINVAL, "path", "report path is empty or NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat stt;
    if (fd < 0 || fstat(fd, &stt) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (os_errno)
            *os_errno = e;
        return cp_error_set(err, CODEPROF_EIO, "path", "%s: cannot open the report: %s", path,
                            strerror(e));
    }
    if (!S_ISREG(stt.st_mode)) {
        close(fd);
        if (os_errno)
            *os_errno = S_ISDIR(stt.st_mode) ? EISDIR : EINVAL;
        return cp_error_set(err, CODEPROF_EIO, "path",
                            "%s: expected a regular file (a JSON report)", path);
    }
    if ((uint64_t)stt.st_size > CP_JSONR_MAX_BYTES) {
        close(fd);
        return cp_error_set(err, CODEPROF_EFORMAT, "path",
                            "%s: the file is %lld bytes: expected a report of at most %zu bytes",
                            path, (long long)stt.st_size, CP_JSONR_MAX_BYTES);
    }
    size_t cap = (size_t)stt.st_size, len = 0;
    char *buf = malloc(cap ? cap : 1);
    if (!buf) {
        close(fd);
        return cp_error_set(err, CODEPROF_ENOMEM, "path", "%s: out of memory reading the report",
                            path);
    }
    for (;;) {
        if (len == cap) { /* the file grew (or st_size was 0): read on, within the cap */
            if (cap >= CP_JSONR_MAX_BYTES + 1)
                break;
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > CP_JSONR_MAX_BYTES + 1)
                ncap = CP_JSONR_MAX_BYTES + 1;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                close(fd);
                return cp_error_set(err, CODEPROF_ENOMEM, "path",
                                    "%s: out of memory reading the report", path);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            if (os_errno)
                *os_errno = e;
            return cp_error_set(err, CODEPROF_EIO, "path", "%s: cannot read the report: %s", path,
                                strerror(e));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    codeprof_status st = cp_model_from_json(buf, len, path, out, err);
    free(buf);
    return st;
}
