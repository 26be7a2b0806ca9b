/* linesink.c -- the line-timing sink (linesink.h). */
#include "cpu/linesink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/session.h"
#include "core/site.h"
#include "core/tbuf.h"
#include "core/u32map.h"
#include "model/model.h"

/* One open frame of a thread. */
typedef struct ls_frame {
    uint64_t id;    /* the event's aux                          */
    uint64_t start; /* tick the current line started            */
    uint32_t site;
    uint32_t line; /* current line; 0 = none yet               */
} ls_frame;

typedef struct ls_thread {
    uint64_t token; /* cp_tbuf.token                            */
    ls_frame *fr;
    uint32_t depth, cap;
} ls_thread;

/* One (site, line) row. */
typedef struct ls_row {
    uint64_t key; /* site << 32 | line; 0 = empty             */
    uint64_t hits;
    uint64_t ticks;
} ls_row;

struct cp_linesink {
    ls_row *rows; /* open addressing, power-of-two size        */
    uint32_t rows_cap, nrows;
    ls_thread *threads;
    uint32_t nthreads, cap_threads;
    uint32_t last; /* index of the last thread looked up         */
    uint64_t events;
    uint64_t dropped;
};

cp_linesink *cp_linesink_new(void) {
    return calloc(1, sizeof(cp_linesink));
}

void cp_linesink_reset(cp_linesink *k) {
    free(k->rows);
    k->rows = NULL;
    k->rows_cap = k->nrows = 0;
    for (uint32_t i = 0; i < k->nthreads; i++)
        free(k->threads[i].fr);
    free(k->threads);
    k->threads = NULL;
    k->nthreads = k->cap_threads = k->last = 0;
    k->events = 0;
    k->dropped = 0;
}

void cp_linesink_free(cp_linesink *k) {
    if (!k)
        return;
    cp_linesink_reset(k);
    free(k);
}

uint64_t cp_linesink_count(const cp_linesink *k) {
    return k ? k->events : 0;
}
uint64_t cp_linesink_dropped(const cp_linesink *k) {
    return k ? k->dropped : 0;
}

static inline uint32_t row_hash(uint64_t key) {
    key ^= key >> 31;
    key *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(key >> 32);
}

static int rows_grow(cp_linesink *k) {
    uint32_t ncap = k->rows_cap ? 2 * k->rows_cap : 256;
    ls_row *nv = calloc(ncap, sizeof *nv);
    if (!nv)
        return -1;
    for (uint32_t i = 0; i < k->rows_cap; i++) {
        if (!k->rows[i].key)
            continue;
        uint32_t j = row_hash(k->rows[i].key) & (ncap - 1);
        while (nv[j].key)
            j = (j + 1) & (ncap - 1);
        nv[j] = k->rows[i];
    }
    free(k->rows);
    k->rows = nv;
    k->rows_cap = ncap;
    return 0;
}

/* The row of (site, line), created; NULL when full or OOM (counted). */
static ls_row *row_for(cp_linesink *k, uint32_t site, uint32_t line) {
    uint64_t key = (uint64_t)site << 32 | line;
    if (k->rows_cap) {
        uint32_t j = row_hash(key) & (k->rows_cap - 1);
        while (k->rows[j].key) {
            if (k->rows[j].key == key)
                return &k->rows[j];
            j = (j + 1) & (k->rows_cap - 1);
        }
    }
    if (k->nrows >= CP_LINESINK_MAX_ROWS) {
        k->dropped++;
        return NULL;
    }
    if (2 * (k->nrows + 1) > k->rows_cap && rows_grow(k) != 0) {
        k->dropped++;
        return NULL;
    }
    uint32_t j = row_hash(key) & (k->rows_cap - 1);
    while (k->rows[j].key)
        j = (j + 1) & (k->rows_cap - 1);
    k->rows[j].key = key;
    k->nrows++;
    return &k->rows[j];
}

static ls_thread *thread_for(cp_linesink *k, uint64_t token) {
    if (k->last < k->nthreads && k->threads[k->last].token == token)
        return &k->threads[k->last];
    for (uint32_t i = 0; i < k->nthreads; i++)
        if (k->threads[i].token == token) {
            k->last = i;
            return &k->threads[i];
        }
    if (k->nthreads >= CP_LINESINK_MAX_THREADS) {
        /* A thread with no open frame holds no state: its slot is reused
         * (threads that exited leave theirs so). */
        for (uint32_t i = 0; i < k->nthreads; i++)
            if (k->threads[i].depth == 0) {
                k->threads[i].token = token;
                k->last = i;
                return &k->threads[i];
            }
        return NULL;
    }
    if (k->nthreads == k->cap_threads) {
        uint32_t ncap = k->cap_threads ? 2 * k->cap_threads : 8;
        ls_thread *nv = realloc(k->threads, (size_t)ncap * sizeof *nv);
        if (!nv)
            return NULL;
        k->threads = nv;
        k->cap_threads = ncap;
    }
    ls_thread *t = &k->threads[k->nthreads];
    memset(t, 0, sizeof *t);
    t->token = token;
    k->last = k->nthreads++;
    return t;
}

/* Closes the current line of `f` at `tick`. */
static void close_line(cp_linesink *k, ls_frame *f, uint64_t tick) {
    if (!f->line)
        return;
    ls_row *r = row_for(k, f->site, f->line);
    if (r)
        r->ticks += tick > f->start ? tick - f->start : 0;
    f->line = 0;
}

/* Pops frames above depth `d` (they ended unseen), closing their lines. */
static void pop_to(cp_linesink *k, ls_thread *t, uint32_t d, uint64_t tick) {
    while (t->depth > d) {
        close_line(k, &t->fr[t->depth - 1], tick);
        t->depth--;
    }
}

static void on_line(cp_linesink *k, ls_thread *t, const cp_event *e) {
    /* The frame: almost always the top one. */
    uint32_t d = t->depth;
    while (d > 0 && t->fr[d - 1].id != e->aux)
        d--;
    uint32_t line = (uint32_t)e->value;
    if (d == 0) { /* not open */
        if (line == 0)
            return;
        if (t->depth >= CP_LINESINK_MAX_DEPTH) {
            k->dropped++;
            return;
        }
        if (t->depth == t->cap) {
            uint32_t ncap = t->cap ? 2 * t->cap : 16;
            ls_frame *nv = realloc(t->fr, (size_t)ncap * sizeof *nv);
            if (!nv) {
                k->dropped++;
                return;
            }
            t->fr = nv;
            t->cap = ncap;
        }
        ls_frame *f = &t->fr[t->depth++];
        f->id = e->aux;
        f->site = e->site;
        f->line = 0;
        d = t->depth;
    } else {
        pop_to(k, t, d, e->tick);
    }
    ls_frame *f = &t->fr[d - 1];
    close_line(k, f, e->tick);
    if (line == 0) {
        t->depth--;
        return;
    }
    f->site = e->site;
    f->line = line;
    f->start = e->tick;
    if (!(e->flags & CP_LINEF_RESUME)) {
        ls_row *r = row_for(k, e->site, line);
        if (r)
            r->hits++;
    }
}

void cp_linesink_consume(cp_linesink *k, const cp_tbuf *tb, const cp_event *ev, uint32_t n) {
    ls_thread *t = NULL;
    int looked = 0;
    for (uint32_t i = 0; i < n; i++) {
        const cp_event *e = &ev[i];
        if (e->kind != CP_EV_LINE)
            continue;
        k->events++;
        if (!looked) {
            t = thread_for(k, tb ? tb->token : 0);
            looked = 1;
        }
        if (!t) {
            k->dropped++;
            continue;
        }
        on_line(k, t, e);
    }
}

/* ---- the session sink ---- */

static void sink_consume(void *ctx, const cp_tbuf *t, const cp_event *ev, uint32_t n) {
    cp_linesink_consume(ctx, t, ev, n);
}
static void sink_reset(void *ctx) {
    cp_linesink_reset(ctx);
}
static void sink_destroy(void *ctx) {
    cp_linesink_free(ctx);
}

cp_linesink *cp_linesink_register(struct codeprof_session *s) {
    cp_linesink *k = cp_linesink_new();
    if (!k)
        return NULL;
    cp_sink sk = {.name = "lines",
                  .ctx = k,
                  .consume = sink_consume,
                  .reset = sink_reset,
                  .destroy = sink_destroy};
    if (cp_session_add_sink(s, &sk) != 0) {
        free(k);
        return NULL;
    }
    return k;
}

/* ---- the model ---- */

/* Maps a recorded site id to the model's index (0 when unknown). */
static uint32_t model_site(cp_model *m, cp_u32map *map, uint32_t id) {
    uint32_t v;
    if (cp_u32map_get(map, id, &v))
        return v;
    const cp_site_info *si = cp_site_get(id);
    v = si ? cp_model_intern_site(m, si->name, si->file, si->line, si->kind) : 0;
    if (v)
        (void)cp_u32map_put(map, id, v);
    return v;
}

int cp_linesink_fill_model(cp_linesink *k, struct cp_model *m) {
    int rc = 0;
    if (k) {
        cp_u32map map = {0};
        for (uint32_t i = 0; i < k->rows_cap; i++) {
            const ls_row *r = &k->rows[i];
            if (!r->key)
                continue;
            uint32_t site = model_site(m, &map, (uint32_t)(r->key >> 32));
            if (!site) {
                m->lines.dropped++;
                continue;
            }
            if (cp_mlines_add(&m->lines, site, (uint32_t)r->key, r->hits,
                              cp_clock_ticks_to_ns(r->ticks), 0, 0) != 0) {
                rc = -1;
                break;
            }
        }
        cp_u32map_free(&map);
        m->lines.exact = 1;
        m->lines.dropped += k->dropped;
    }
    cp_linesink_read_text(m);
    return rc;
}

/* ---- source text ---- */

typedef struct ls_file {
    char *buf; /* the file's bytes, NUL-terminated; NULL: unreadable */
    size_t len;
    const char *name; /* borrowed from the model                          */
} ls_file;

static void file_load(ls_file *f, const char *name) {
    free(f->buf);
    f->buf = NULL;
    f->len = 0;
    f->name = name;
    if (!name || !*name || name[0] == '<')
        return;
    FILE *fp = fopen(name, "rb");
    if (!fp)
        return;
    struct stat st;
    size_t want = CP_LINESINK_MAX_FILE_BYTES;
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < want)
        want = (size_t)st.st_size;
    char *buf = malloc(want + 1);
    if (buf) {
        size_t n = fread(buf, 1, want, fp);
        buf[n] = '\0';
        f->buf = buf;
        f->len = n;
    }
    fclose(fp);
}

/* Line `line` (1-based) of the loaded file, its length in *len; NULL when
 * the file has fewer lines (or past the bytes read). */
static const char *file_line(const ls_file *f, uint32_t line, size_t *len) {
    if (!f->buf || line == 0)
        return NULL;
    const char *p = f->buf, *end = f->buf + f->len;
    for (uint32_t l = 1; l < line; l++) {
        p = memchr(p, '\n', (size_t)(end - p));
        if (!p)
            return NULL;
        p++;
    }
    if (p >= end)
        return NULL;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    return p;
}

void cp_linesink_read_text(struct cp_model *m) {
    cp_mlines *ml = &m->lines;
    cp_mlines_finish(ml);
    ls_file f = {0};
    int loaded = 0;
    uint32_t given = 0;
    for (uint32_t i = 0; i < ml->n && given < CP_LINESINK_MAX_TEXT_ROWS; i++) {
        if (ml->v[i].text != CP_MLINE_NOTEXT)
            continue;
        const cp_msite *s = cp_model_site(m, ml->v[i].site);
        const char *file = s ? s->file : NULL;
        if (!file)
            continue;
        if (!loaded || !f.name || strcmp(f.name, file) != 0) {
            file_load(&f, file);
            loaded = 1;
        }
        size_t len = 0;
        const char *t = file_line(&f, ml->v[i].line, &len);
        if (t && cp_mlines_set_text(ml, i, t, len) == 0)
            given++;
    }
    free(f.buf);
}
