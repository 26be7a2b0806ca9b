/* warnings.c -- a session's bounded list of warnings (see warnings.h). */
#include "core/warnings.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cp_warnings {
    pthread_mutex_t mu;
    size_t n;
    uint64_t dropped;
    cp_warning items[CP_WARNINGS_MAX];
};

static uint64_t unix_now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Copies `src` into `dst` (capacity `cap` > 0), truncated, NUL-terminated. */
static void copy_trunc(char *dst, size_t cap, const char *src) {
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The session's list, created on first use under the session's mutex. */
static struct cp_warnings *warnings_of(cp_session *s, int create) {
    pthread_mutex_lock(&s->mu);
    struct cp_warnings *w = s->warnings;
    if (!w && create) {
        w = calloc(1, sizeof *w);
        if (w && pthread_mutex_init(&w->mu, NULL) != 0) {
            free(w);
            w = NULL;
        }
        s->warnings = w;
    }
    pthread_mutex_unlock(&s->mu);
    return w;
}

codeprof_status codeprof_session_warn(codeprof_session *s, const char *code,
                                      const char *message) {
    if (!s || !code || !message)
        return CODEPROF_EINVAL;
    struct cp_warnings *w = warnings_of(s, 1);
    if (!w)
        return CODEPROF_ENOMEM;
    pthread_mutex_lock(&w->mu);
    if (w->n < CP_WARNINGS_MAX) {
        cp_warning *it = &w->items[w->n++];
        copy_trunc(it->code, sizeof it->code, code);
        copy_trunc(it->message, sizeof it->message, message);
        it->unix_ns = unix_now_ns();
    } else {
        w->dropped++;
    }
    pthread_mutex_unlock(&w->mu);
    return CODEPROF_OK;
}

size_t cp_session_warnings(cp_session *s, cp_warning *out, size_t cap, uint64_t *dropped) {
    if (dropped)
        *dropped = 0;
    if (!s)
        return 0;
    struct cp_warnings *w = warnings_of(s, 0);
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    size_t n = w->n < cap ? w->n : cap;
    if (n && out)
        memcpy(out, w->items, n * sizeof *out);
    if (dropped)
        *dropped = w->dropped;
    pthread_mutex_unlock(&w->mu);
    return out ? n : 0;
}

void cp_warnings_free(struct cp_warnings *w) {
    if (!w)
        return;
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void cp_warnings_clear(struct cp_warnings *w) {
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->n = 0;
    w->dropped = 0;
    pthread_mutex_unlock(&w->mu);
}
