/* spool_reader.c -- total decoding of worker spool files (spool_reader.h). */
#include "data/spool_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC ((size_t)sizeof(cp_drec))
#define BLOCK_BYTES ((size_t)64 * 1024) /* read(2) block: a multiple of REC */

_Static_assert(BLOCK_BYTES % sizeof(cp_drec) == 0, "blocks hold whole records");

/* Writer site id -> local site id: open addressing, keys stored +1 (0 is
 * empty).  Holds at most one entry per SITE record decoded. */
typedef struct sitemap {
    uint32_t *keys, *vals;
    size_t cap, n;
} sitemap;

typedef struct decoder {
    const cp_spool_visitor *v;
    cp_spool_info *info;
    sitemap map;
    uint64_t sum_ns;
    int oom;
    /* a SITE record waiting for its STR records */
    int pending;
    uint32_t p_site, p_line;
    uint16_t p_kind;
    size_t p_len, p_got;
    char text[CP_SPOOL_MAX_SITE_TEXT + sizeof(cp_drec) + 1];
} decoder;

static size_t slot_of(uint32_t key, size_t cap) {
    uint32_t h = key * 2654435761u;
    return (size_t)h & (cap - 1);
}

static uint32_t map_get(const sitemap *m, uint32_t wsite) {
    if (!m->cap)
        return 0;
    uint32_t key = wsite + 1;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == 0)
            return 0;
    }
}

static int map_put(sitemap *m, uint32_t wsite, uint32_t local) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        uint32_t *nk = calloc(ncap, sizeof *nk), *nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = slot_of(m->keys[i], ncap);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    uint32_t key = wsite + 1;
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = key;
    m->vals[i] = local;
    return 0;
}

static void finish_site(decoder *d) {
    d->pending = 0;
    size_t len = d->p_len;
    d->text[len] = '\0';
    size_t nl = strnlen(d->text, len);
    if (nl == 0 || nl >= len) { /* empty name, or no NUL inside the text */
        d->info->bad++;
        return;
    }
    const char *file = d->text + nl + 1;
    size_t rest = len - nl - 1;
    if (rest == 0 || strnlen(file, rest) >= rest) { /* file not NUL-terminated */
        d->info->bad++;
        return;
    }
    uint32_t local = 0;
    if (d->v && d->v->site)
        local = d->v->site(d->v->ctx, d->text, file, d->p_line, (codeprof_site_kind)d->p_kind);
    if (map_put(&d->map, d->p_site, local) != 0)
        d->oom = 1;
}

static int valid_site_record(const cp_drec *r) {
    return r->u.r.site != 0 && r->u.r.site < CP_SPOOL_MAX_SITE_ID && r->u.r.aux >= 2 &&
           r->u.r.aux <= CP_SPOOL_MAX_SITE_TEXT && r->flags < CODEPROF_SITE_KIND_COUNT_ &&
           r->u.r.index >= 0 && r->u.r.index <= (int64_t)UINT32_MAX;
}

static void data_record(decoder *d, const cp_drec *r) {
    uint32_t wsite = r->u.r.site;
    uint32_t local = wsite && wsite < CP_SPOOL_MAX_SITE_ID ? map_get(&d->map, wsite) : 0;
    if (!local || r->u.r.t_ns > CP_SPOOL_MAX_T_NS || r->u.r.dur_ns > CP_SPOOL_MAX_DUR_NS ||
        r->u.r.dur_ns > CP_SPOOL_MAX_SUM_NS - d->sum_ns) {
        d->info->bad++;
        return;
    }
    if (r->type == CP_DREC_BATCH &&
        (r->u.r.index < 0 || r->u.r.index > CP_SPOOL_MAX_BATCH_ITEMS)) {
        d->info->bad++;
        return;
    }
    d->sum_ns += r->u.r.dur_ns;
    cp_drec out;
    memset(&out, 0, sizeof out);
    out.commit = CP_DREC_COMMITTED;
    out.type = r->type;
    out.flags = r->flags & CP_DRECF_FAILED;
    out.u.r.site = local;
    out.u.r.epoch = r->u.r.epoch;
    out.u.r.index = r->u.r.index;
    out.u.r.t_ns = r->u.r.t_ns;
    out.u.r.dur_ns = r->u.r.dur_ns;
    d->info->records++;
    if (d->v && d->v->record)
        d->v->record(d->v->ctx, &out);
}

/* One 64-byte record, possibly unaligned in `p`. */
static void feed(decoder *d, const void *p) {
    cp_drec r;
    memcpy(&r, p, sizeof r);
    if (r.commit != CP_DREC_COMMITTED) {
        if (d->pending) { /* a site description cut short */
            d->pending = 0;
            d->info->bad++;
        }
        return;
    }
    if (d->pending) {
        if (r.type == CP_DREC_STR) {
            size_t take = d->p_len - d->p_got;
            if (take > sizeof r.u.text)
                take = sizeof r.u.text;
            memcpy(d->text + d->p_got, r.u.text, take);
            d->p_got += take;
            if (d->p_got == d->p_len)
                finish_site(d);
            return;
        }
        d->pending = 0;
        d->info->bad++;
    }
    switch (r.type) {
    case CP_DREC_SITE:
        if (!valid_site_record(&r)) {
            d->info->bad++;
            return;
        }
        d->pending = 1;
        d->p_site = r.u.r.site;
        d->p_line = (uint32_t)r.u.r.index;
        d->p_kind = r.flags;
        d->p_len = (size_t)r.u.r.aux;
        d->p_got = 0;
        return;
    case CP_DREC_ITEM:
    case CP_DREC_STAGE:
    case CP_DREC_BATCH:
        data_record(d, &r);
        return;
    default: /* an orphan STR, or an unknown type */
        d->info->bad++;
        return;
    }
}

static cp_spool_status parse_header(const void *buf, size_t len, cp_spool_info *info,
                                    size_t *rec_off) {
    if (len < sizeof(cp_spool_header))
        return CP_SPOOL_EHEADER;
    cp_spool_header h;
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, CP_SPOOL_MAGIC, sizeof h.magic) != 0)
        return CP_SPOOL_EHEADER;
    info->version = h.version;
    info->pid = h.pid;
    info->worker = h.worker;
    info->closed = h.closed == 1;
    if (h.version == 1) {
        *rec_off = 4096;
        return CP_SPOOL_OK;
    }
    if (h.version != CP_SPOOL_VERSION || h.rec_off < sizeof(cp_spool_header) ||
        h.rec_off > CP_SPOOL_MAX_REC_OFF || h.rec_off % REC != 0)
        return CP_SPOOL_EHEADER;
    *rec_off = h.rec_off;
    info->error = h.error;
    info->error_op = h.error_op;
    info->dropped = h.dropped;
    return CP_SPOOL_OK;
}

static decoder *decoder_new(const cp_spool_visitor *v, cp_spool_info *info) {
    decoder *d = calloc(1, sizeof *d);
    if (d) {
        d->v = v;
        d->info = info;
    }
    return d;
}

static cp_spool_status decoder_end(decoder *d) {
    if (d->pending)
        d->info->bad++;
    int oom = d->oom;
    free(d->map.keys);
    free(d->map.vals);
    free(d);
    return oom ? CP_SPOOL_ENOMEM : CP_SPOOL_OK;
}

cp_spool_status cp_spool_decode(const void *buf, size_t len, const cp_spool_visitor *v,
                                cp_spool_info *info) {
    memset(info, 0, sizeof *info);
    if (!buf)
        return CP_SPOOL_EHEADER;
    size_t rec_off = 0;
    cp_spool_status st = parse_header(buf, len, info, &rec_off);
    if (st != CP_SPOOL_OK)
        return st;
    if (len > CP_SPOOL_MAX_BYTES) {
        len = (size_t)CP_SPOOL_MAX_BYTES;
        info->truncated = 1;
    }
    decoder *d = decoder_new(v, info);
    if (!d)
        return CP_SPOOL_ENOMEM;
    const char *p = buf;
    for (size_t off = rec_off; off <= len && len - off >= REC && !d->oom; off += REC)
        feed(d, p + off);
    return decoder_end(d);
}

/* Reads up to `want` bytes at `off`; returns the count (short at EOF or on
 * an error, which sets *err). */
static size_t read_full(int fd, char *dst, size_t want, uint64_t off, int *err) {
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, dst + got, want - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *err = 1;
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return got;
}

cp_spool_status cp_spool_read_file(const char *path, const cp_spool_visitor *v,
                                   cp_spool_info *info) {
    memset(info, 0, sizeof *info);
    if (!path)
        return CP_SPOOL_EOPEN;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0)
        return CP_SPOOL_EOPEN;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return CP_SPOOL_EOPEN;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return CP_SPOOL_ENOTREG;
    }
    uint64_t size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
    int truncated = 0;
    if (size > CP_SPOOL_MAX_BYTES) {
        size = CP_SPOOL_MAX_BYTES;
        truncated = 1;
    }
    char head[sizeof(cp_spool_header)];
    int rerr = 0;
    size_t rec_off = 0;
    size_t hn = read_full(fd, head, sizeof head, 0, &rerr);
    cp_spool_status rc = parse_header(head, hn, info, &rec_off);
    if (rc != CP_SPOOL_OK) {
        close(fd);
        return rc;
    }
    char *block = malloc(BLOCK_BYTES);
    decoder *d = block ? decoder_new(v, info) : NULL;
    if (!d) {
        free(block);
        close(fd);
        return CP_SPOOL_ENOMEM;
    }
    for (uint64_t off = rec_off; off < size && !d->oom && !rerr;) {
        size_t want = size - off < BLOCK_BYTES ? (size_t)(size - off) : BLOCK_BYTES;
        size_t got = read_full(fd, block, want, off, &rerr);
        for (size_t k = 0; k + REC <= got && !d->oom; k += REC)
            feed(d, block + k);
        if (got < want) /* the file shrank, or a read error */
            break;
        off += got;
    }
    free(block);
    close(fd);
    info->truncated = truncated || rerr;
    return decoder_end(d);
}

const char *cp_spool_op_name(uint32_t op) {
    switch (op) {
    case CP_SPOOL_OP_FALLOCATE:
        return "posix_fallocate";
    case CP_SPOOL_OP_MMAP:
        return "mmap";
    case CP_SPOOL_OP_NOMEM:
        return "out of memory";
    default:
        return "spool";
    }
}
