/* data_session.c -- the data-loading parts of the session API: loader
 * descriptions, the parent's spool directory, and a worker's spool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "core/errors.h"
#include "core/session.h"
#include "data/datalog.h"
#include "model/model.h"
#include "model/model_io.h"

codeprof_status codeprof_loader_describe(codeprof_session *s, uint32_t site,
                                         const codeprof_loader_desc *desc) {
    if (!s || !desc || desc->struct_size != sizeof *desc || site == 0)
        return CODEPROF_EINVAL;
    pthread_mutex_lock(&s->mu);
    codeprof_status st = CODEPROF_OK;
    uint32_t i = 0;
    while (i < s->nloaders && s->loaders[i].site != site)
        i++;
    if (i == s->nloaders) {
        if (s->nloaders == s->cap_loaders) {
            uint32_t ncap = s->cap_loaders ? s->cap_loaders * 2 : 4;
            cp_loader_entry *n = realloc(s->loaders, (size_t)ncap * sizeof *n);
            if (!n) {
                st = CODEPROF_ENOMEM;
                goto out;
            }
            s->loaders = n;
            s->cap_loaders = ncap;
        }
        s->nloaders++;
    }
    s->loaders[i].site = site;
    s->loaders[i].desc = *desc;
out:
    pthread_mutex_unlock(&s->mu);
    return st;
}

codeprof_status codeprof_session_set_spool_dir(codeprof_session *s, const char *dir) {
    if (!s)
        return CODEPROF_EINVAL;
    char *copy = NULL;
    if (dir && !(copy = strdup(dir)))
        return CODEPROF_ENOMEM;
    pthread_mutex_lock(&s->mu);
    free(s->spool_dir);
    s->spool_dir = copy;
    pthread_mutex_unlock(&s->mu);
    return CODEPROF_OK;
}

codeprof_status codeprof_session_attach_worker(codeprof_session *s, const char *dir,
                                               int worker_id, codeprof_error *err) {
    if (!s)
        return cp_error_set(err, CODEPROF_EINVAL, "session", "session is NULL");
    if (worker_id < 0)
        return cp_error_set(err, CODEPROF_EINVAL, "worker_id",
                            "worker_id must be >= 0, got %d", worker_id);
    /* agg_mu: the fold reads s->log (lock order agg_mu, then mu). */
    pthread_mutex_lock(&s->agg_mu);
    pthread_mutex_lock(&s->mu);
    codeprof_status st = CODEPROF_OK;
    if (s->log && s->log->fd >= 0) {
        st = cp_error_set(err, CODEPROF_ESTATE, "worker_id",
                          "this process is already attached as worker %d", s->worker_id);
        goto out;
    }
    cp_datalog *spool = cp_datalog_new_spool(dir, worker_id, err);
    if (!spool) {
        st = err ? err->code : CODEPROF_EIO;
        goto out;
    }
    /* Folds on other threads may still append to the old log: retire it
     * instead of freeing it. */
    cp_datalog_free(s->retired);
    s->retired = s->log;
    s->log = spool;
    s->worker_id = worker_id;
    snprintf(s->role, sizeof s->role, "worker-%d", worker_id);
out:
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->agg_mu);
    return st;
}

/* The directory of a file log: "<dir>/<pid>.cpspool" -> "<dir>"; NULL on
 * OOM or for a path without a directory. */
static char *log_dir(const cp_datalog *log) {
    if (!log || !log->path)
        return NULL;
    const char *slash = strrchr(log->path, '/');
    if (!slash)
        return NULL;
    size_t n = slash == log->path ? 1 : (size_t)(slash - log->path);
    char *dir = malloc(n + 1);
    if (dir) {
        memcpy(dir, log->path, n);
        dir[n] = '\0';
    }
    return dir;
}

/* A worker's model, written next to its spool as "<pid>.cpmodel" for the
 * parent to merge (model_io.h).  Its data section is built but not
 * written: the spool carries it.  Sibling spools are not read for it: the
 * session's spool directory is set aside while the model is built. */
static codeprof_status write_worker_model(cp_session *s, const char *dir) {
    pthread_mutex_lock(&s->agg_mu);
    pthread_mutex_lock(&s->mu);
    char *spool_dir = s->spool_dir;
    s->spool_dir = NULL;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->agg_mu);

    cp_model *m = cp_session_snapshot(s);
    codeprof_status st = CODEPROF_ENOMEM;
    if (m) {
        codeprof_error err;
        st = cp_model_write_file(m, dir, (int32_t)s->worker_id, NULL, &err) == CP_MIO_OK
                 ? CODEPROF_OK
                 : err.code;
        cp_model_free(m);
    }

    pthread_mutex_lock(&s->agg_mu);
    pthread_mutex_lock(&s->mu);
    if (!s->spool_dir)
        s->spool_dir = spool_dir;
    else
        free(spool_dir); /* set again meanwhile: the newer one wins */
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->agg_mu);
    return st;
}

codeprof_status codeprof_session_close_worker(codeprof_session *s) {
    if (!s)
        return CODEPROF_EINVAL;
    cp_session_flush_self(s);
    /* First close of an attached worker: its call tree goes to the parent
     * before the spool says "closed", so a parent that sees a cleanly
     * closed spool also sees the model (or its absence: a failed write). */
    codeprof_status st = CODEPROF_OK;
    pthread_mutex_lock(&s->mu);
    int first = s->worker_id >= 0 && s->log && s->log->hdr && !s->log->hdr->closed;
    char *dir = first ? log_dir(s->log) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (first)
        st = dir ? write_worker_model(s, dir) : CODEPROF_ENOMEM;
    free(dir);
    pthread_mutex_lock(&s->mu);
    if (s->log)
        cp_datalog_close(s->log);
    pthread_mutex_unlock(&s->mu);
    return st;
}
