/* collapsed.c -- the collapsed-stacks export (collapsed.h). */
#include "export/collapsed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/walk.h"

typedef struct cstate {
    cp_strbuf *out;
    uint64_t fold_ns;   /* nodes at or below it are folded (cp_export_fold_threshold) */
    const char *prefix; /* "pid P (role);thread T" of the thread walked */
    uint64_t cum_ns;    /* self time of every node written or skipped so far */
    uint64_t written_us;
    cp_strbuf frames;   /* each site's frame text, rendered once */
    uint32_t *frame_off, *frame_len; /* by site; frame_len 0: not yet */
    uint32_t nsites;
} cstate;

/* Appends `s` with ';' turned into ':' and control characters into ' '. */
static void put_frame_text(cp_strbuf *sb, const char *s) {
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ';' || c < 0x20 || c == 0x7f) {
            cp_strbuf_append(sb, run, (size_t)(s - run));
            cp_strbuf_putc(sb, c == ';' ? ':' : ' ');
            run = s + 1;
        }
    }
    cp_strbuf_append(sb, run, (size_t)(s - run));
}

static void render_frame(cp_strbuf *sb, const cp_model *m, uint32_t site) {
    const cp_msite *s = cp_model_site(m, site);
    if (!s) {
        cp_strbuf_puts(sb, "?");
        return;
    }
    put_frame_text(sb, s->name);
    if (s->file[0]) {
        const char *base = strrchr(s->file, '/');
        cp_strbuf_puts(sb, " (");
        put_frame_text(sb, base && base[1] ? base + 1 : s->file);
        cp_strbuf_printf(sb, ":%" PRIu32 ")", s->line);
    }
}

/* A site's frame text, from the cache. */
static void put_frame(cstate *st, const cp_model *m, uint32_t site) {
    if (site >= st->nsites) {
        cp_strbuf_putc(st->out, '?');
        return;
    }
    if (!st->frame_len[site]) {
        size_t before = st->frames.len;
        render_frame(&st->frames, m, site);
        if (!cp_strbuf_ok(&st->frames) || st->frames.len > UINT32_MAX)
            return; /* the caller sees the OOM through the frames buffer */
        st->frame_off[site] = (uint32_t)before;
        st->frame_len[site] = (uint32_t)(st->frames.len - before);
    }
    cp_strbuf_append(st->out, st->frames.data + st->frame_off[site], st->frame_len[site]);
}

/* One line: the path to the node at path[depth] (none for depth 0: the
 * thread itself), then `leaf` if not NULL, and `ns` of time carried into
 * whole microseconds. */
static int put_line(cstate *st, const cp_model *m, const uint32_t *path, uint32_t depth,
                    const char *leaf, uint64_t ns) {
    if (!ns)
        return 0;
    st->cum_ns += ns;
    uint64_t upto_us = (st->cum_ns + 500) / 1000;
    uint64_t v = upto_us - st->written_us;
    if (!v)
        return 0;
    st->written_us = upto_us;
    cp_strbuf_puts(st->out, st->prefix);
    for (uint32_t d = 1; d <= depth; d++) {
        cp_strbuf_putc(st->out, ';');
        put_frame(st, m, m->nodes[path[d]].site);
    }
    if (leaf) {
        cp_strbuf_putc(st->out, ';');
        cp_strbuf_puts(st->out, leaf);
    }
    cp_strbuf_printf(st->out, " %" PRIu64 "\n", v);
    return cp_strbuf_ok(st->out) && cp_strbuf_ok(&st->frames) ? 0 : -1;
}

static int on_node(const cp_model *m, const uint32_t *path, uint32_t depth, void *ctx) {
    cstate *st = ctx;
    const cp_mnode *n = &m->nodes[path[depth]];
    if (st->fold_ns && n->incl_ns <= st->fold_ns)
        return CP_WALK_SKIP; /* counted in its parent's "(other)" line */
    if (put_line(st, m, path, depth, NULL, n->self_ns) != 0 ||
        put_line(st, m, path, depth, "(other)", cp_export_folded_ns(m, path[depth], st->fold_ns)))
        return -1;
    return 0;
}

int cp_export_collapsed(const cp_model *m, cp_strbuf *out) {
    return cp_export_collapsed_paths(m, out, CP_EXPORT_MAX_PATHS);
}

int cp_export_collapsed_paths(const cp_model *m, cp_strbuf *out, uint32_t max_paths) {
    cstate st;
    memset(&st, 0, sizeof st);
    st.out = out;
    st.fold_ns = cp_export_fold_threshold(m, max_paths);
    st.nsites = m->sites.n ? m->sites.n : 1;
    st.frame_off = malloc((size_t)st.nsites * sizeof *st.frame_off);
    st.frame_len = calloc(st.nsites, sizeof *st.frame_len);
    int rc = -1;
    if (st.fold_ns == UINT64_MAX || !st.frame_off || !st.frame_len)
        goto out;
    for (uint32_t t = 0; t < m->nthreads; t++) {
        const cp_mthread *th = &m->threads[t];
        char prefix[256];
        char who[80];
        if (th->worker >= 0)
            snprintf(who, sizeof who, "worker %d", (int)th->worker);
        else
            snprintf(who, sizeof who, "%s", th->pid == m->pid && m->role[0] ? m->role : "main");
        for (char *p = who; *p; p++)
            if (*p == ';' || (unsigned char)*p < 0x20)
                *p = ':';
        if (th->index == UINT32_MAX)
            snprintf(prefix, sizeof prefix, "pid %d (%s);exited threads", (int)th->pid, who);
        else
            snprintf(prefix, sizeof prefix, "pid %d (%s);thread %" PRIu64, (int)th->pid, who,
                     th->os_tid);
        st.prefix = prefix;
        if (th->root < m->nnodes) {
            uint32_t root = th->root;
            if (put_line(&st, m, &root, 0, "(other)", cp_export_folded_ns(m, root, st.fold_ns)))
                goto out;
        }
        if (cp_export_walk(m, th, on_node, &st) != 0)
            goto out;
    }
    rc = cp_strbuf_ok(out) ? 0 : -1;
out:
    free(st.frame_off);
    free(st.frame_len);
    cp_strbuf_free(&st.frames);
    return rc;
}
