/* output.c -- the public report entry points and the session's report
 * model (output.h): snapshot the session into a model, run the analysis
 * rules over it once, keep it while nothing new is recorded, render it
 * with one writer, and hand the text back or write it atomically.  This is
 * the only place where the stages meet; each stage only reads the output
 * of the one before. */
#include "report/output.h"
#include "gpu/gpu_session.h"
#include "memory/mem_session.h"
#include "sampling/sample_session.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis/rules.h"
#include "codeprof/codeprof.h"
#include "core/drain.h"
#include "core/errors.h"
#include "core/session.h"
#include "core/warnings.h"
#include "data/datalog.h"
#include "model/model.h"
#include "model/model_io.h"
#include "report/atomic_file.h"
#include "report/formats.h"
#include "report/report.h"
#include "report/strbuf.h"
#include "report/tree_prune.h"

struct cp_model_ref {
    _Atomic uint32_t refs;
    cp_model *m;
    pthread_mutex_t mu;    /* guards `pruned`                      */
    cp_pruned_tree *pruned; /* built on first use (cp_model_ref_pruned) */
};

const cp_model *cp_model_ref_get(const cp_model_ref *r) { return r->m; }

const cp_pruned_tree *cp_model_ref_pruned(cp_model_ref *r) {
    pthread_mutex_lock(&r->mu);
    if (!r->pruned) {
        cp_pruned_tree *pt = calloc(1, sizeof *pt);
        cp_report_policy p;
        cp_report_policy_of(&r->m->cfg, &p);
        if (pt && cp_pruned_tree_build(pt, r->m, &p) == 0) {
            r->pruned = pt;
        } else if (pt) {
            cp_pruned_tree_free(pt);
            free(pt);
        }
    }
    const cp_pruned_tree *out = r->pruned;
    pthread_mutex_unlock(&r->mu);
    return out;
}

void cp_model_ref_release(cp_model_ref *r) {
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        if (r->pruned) {
            cp_pruned_tree_free(r->pruned);
            free(r->pruned);
        }
        pthread_mutex_destroy(&r->mu);
        cp_model_free(r->m);
        free(r);
    }
}

static cp_model_ref *ref_acquire(cp_model_ref *r) {
    atomic_fetch_add(&r->refs, 1);
    return r;
}

typedef struct report_cache {
    pthread_mutex_t mu;
    int pid;             /* process that made it (a fork child makes its own) */
    cp_strbuf fp;        /* fingerprint of the session when `ref` was built   */
    cp_model_ref *ref;   /* NULL: nothing cached                              */
    uint64_t built, reused;
} report_cache;

static void cache_free(void *p) {
    report_cache *c = p;
    if (!c)
        return;
    if (c->pid == getpid()) {
        cp_model_ref_release(c->ref);
        cp_strbuf_free(&c->fp);
        pthread_mutex_destroy(&c->mu);
    }
    /* else: a fork child's copy of the parent's cache; abandoned like the
     * rest of the parent's state (its mutex may have been held). */
    free(c);
}

/* The session's cache for this process, created on first use.  A cache
 * inherited through fork is abandoned (never locked, never freed: its
 * mutex may have been held by a thread that does not exist here). */
static report_cache *cache_of(cp_session *s) {
    int pid = getpid();
    report_cache *c = atomic_load(&s->report_cache);
    if (c && c->pid == pid)
        return c;
    report_cache *fresh = calloc(1, sizeof *fresh);
    if (!fresh)
        return NULL;
    pthread_mutex_init(&fresh->mu, NULL);
    fresh->pid = pid;
    cp_strbuf_init(&fresh->fp);
    if (atomic_compare_exchange_strong(&s->report_cache, (void **)&c, fresh)) {
        /* only the winner writes it; read by codeprof_session_free */
        s->report_cache_free = cache_free;
        return fresh; /* an inherited cache (c) is left as it was */
    }
    cache_free(fresh);
    return c && c->pid == pid ? c : NULL;
}

static void put(cp_strbuf *fp, const void *p, size_t n) { cp_strbuf_append(fp, p, n); }
#define PUT(fp, v)                                                                                \
    do {                                                                                          \
        __typeof__(v) v_ = (v);                                                                   \
        put((fp), &v_, sizeof v_);                                                                \
    } while (0)

static int has_suffix(const char *name, const char *suffix) {
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && memcmp(name + n - k, suffix, k) == 0;
}

/* The worker files of the spool directory.  Returns 1 when a spool is
 * still open (its worker may append records without changing the file's
 * size or times): the model must not be reused. */
static int fingerprint_spools(const char *dir, cp_strbuf *fp) {
    DIR *d = opendir(dir);
    if (!d) {
        PUT(fp, (int)-1);
        return 0;
    }
    int live = 0;
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int spool = has_suffix(e->d_name, CP_SPOOL_SUFFIX);
        if (!spool && !has_suffix(e->d_name, CP_MODEL_SUFFIX))
            continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        put(fp, e->d_name, strlen(e->d_name) + 1);
        PUT(fp, (uint64_t)st.st_ino);
        PUT(fp, (uint64_t)st.st_size);
        PUT(fp, (int64_t)st.st_mtim.tv_sec);
        PUT(fp, (int64_t)st.st_mtim.tv_nsec);
        if (spool && S_ISREG(st.st_mode)) {
            cp_spool_header h;
            int fd = openat(dfd, e->d_name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0 || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || !h.closed)
                live = 1;
            if (fd >= 0)
                close(fd);
        }
    }
    closedir(d);
    return live;
}

/* What the session has recorded so far (see output.h).  Consumes every
 * published event first, as a snapshot would.  Returns 1 when the result
 * must not be used to reuse a model (a live worker spool), 0 otherwise;
 * OOM shows in fp->oom. */
static int fingerprint(cp_session *s, cp_strbuf *fp) {
    PUT(fp, (int)getpid());
    PUT(fp, (uint64_t)atomic_load(&s->id));
    PUT(fp, (int)atomic_load(&s->state));
    PUT(fp, (uint64_t)s->run_ticks);
    PUT(fp, (uint64_t)s->start_unix_ns);
    pthread_mutex_lock(&s->agg_mu);
    cp_drain_all(s, 1);
    PUT(fp, s->nexited);
    PUT(fp, s->exited_events);
    PUT(fp, s->exited_paused);
    PUT(fp, s->exited_full);
    PUT(fp, s->exited_reentrant);
    PUT(fp, (uint64_t)atomic_load(&s->dropped_nothread));
    pthread_mutex_lock(&s->mu);
    for (cp_tbuf *t = atomic_load(&s->bufs); t; t = t->next) {
        PUT(fp, t->token);
        PUT(fp, t->events_total);
        PUT(fp, (uint64_t)atomic_load(&t->dropped_paused));
        PUT(fp, (uint64_t)atomic_load(&t->dropped_full));
        PUT(fp, (uint64_t)atomic_load(&t->dropped_reentrant));
    }
    PUT(fp, s->nthreads);
    PUT(fp, s->nloaders);
    if (s->nloaders)
        put(fp, s->loaders, (size_t)s->nloaders * sizeof *s->loaders);
    put(fp, s->role, strnlen(s->role, sizeof s->role));
    PUT(fp, (uintptr_t)s->log);
    uint64_t records = 0;
    if (s->log) { /* lock order: agg_mu, mu, then the log's mutex */
        pthread_mutex_lock(&s->log->mu);
        records = s->log->n;
        pthread_mutex_unlock(&s->log->mu);
    }
    PUT(fp, records);
    PUT(fp, cp_mem_session_fingerprint(s));
    PUT(fp, cp_samp_session_fingerprint(s));
    PUT(fp, cp_gpu_session_fingerprint(s));
    char *dir = s->spool_dir ? strdup(s->spool_dir) : NULL;
    int no_dir = !s->spool_dir;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->agg_mu);
    uint64_t dropped = 0;
    cp_warning *w = malloc(CP_WARNINGS_MAX * sizeof *w);
    if (w) {
        size_t nw = cp_session_warnings(s, w, CP_WARNINGS_MAX, &dropped);
        PUT(fp, nw);
        if (nw)
            PUT(fp, w[nw - 1].unix_ns);
        free(w);
    } else {
        fp->oom = 1;
    }
    PUT(fp, dropped);
    int live = 0;
    if (dir) {
        put(fp, dir, strlen(dir) + 1);
        live = fingerprint_spools(dir, fp);
        free(dir);
    } else if (!no_dir) {
        fp->oom = 1; /* strdup failed */
    }
    return live;
}

cp_model_ref *cp_session_model(codeprof_session *s, codeprof_status *st) {
    codeprof_status dummy;
    if (!st)
        st = &dummy;
    *st = CODEPROF_OK;
    if (!s) {
        *st = CODEPROF_EINVAL;
        return NULL;
    }
    report_cache *c = cache_of(s);
    if (!c) {
        *st = CODEPROF_ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    cp_strbuf fp;
    cp_strbuf_init(&fp);
    int live = fingerprint(s, &fp);
    int usable = !live && cp_strbuf_ok(&fp);
    cp_model_ref *r = NULL;
    if (usable && c->ref && c->fp.len == fp.len && memcmp(c->fp.data, fp.data, fp.len) == 0) {
        c->reused++;
        r = ref_acquire(c->ref);
        cp_strbuf_free(&fp);
        pthread_mutex_unlock(&c->mu);
        return r;
    }
    cp_model *m = cp_session_snapshot(s);
    if (m && cp_rules_run(m) == 0 && (r = calloc(1, sizeof *r)) != NULL) {
        atomic_init(&r->refs, 1);
        pthread_mutex_init(&r->mu, NULL);
        r->m = m;
        m = NULL;
        c->built++;
        cp_model_ref_release(c->ref);
        c->ref = NULL;
        cp_strbuf_free(&c->fp);
        if (usable) { /* keep it for the next report */
            c->ref = ref_acquire(r);
            c->fp = fp;
            cp_strbuf_init(&fp);
        }
    } else {
        *st = CODEPROF_ENOMEM;
    }
    cp_model_free(m);
    cp_strbuf_free(&fp);
    pthread_mutex_unlock(&c->mu);
    return r;
}

void cp_session_model_counts(codeprof_session *s, uint64_t *built, uint64_t *reused) {
    *built = *reused = 0;
    report_cache *c = s ? cache_of(s) : NULL;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    *built = c->built;
    *reused = c->reused;
    pthread_mutex_unlock(&c->mu);
}

static codeprof_status render(codeprof_session *s, codeprof_format fmt, cp_strbuf *sb) {
    if ((unsigned)fmt >= CODEPROF_FORMAT_COUNT_)
        return CODEPROF_EINVAL;
    codeprof_status st;
    cp_model_ref *r = cp_session_model(s, &st);
    if (!r)
        return st;
    /* the cached model's pruned tree: its JSON is not pruned again */
    const cp_pruned_tree *pt = fmt == CODEPROF_FORMAT_JSON ? cp_model_ref_pruned(r) : NULL;
    st = cp_format_write(r->m, pt, fmt, sb);
    cp_model_ref_release(r);
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
