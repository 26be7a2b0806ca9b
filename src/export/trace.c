/* trace.c -- the Chrome Trace Event / Perfetto export (trace.h).  Written
 * by hand rather than through jsonw: a trace holds up to millions of
 * events, and fixed keys with hand-formatted numbers keep a million
 * events within a second. */
#include "export/trace.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codeprof/version.h"
#include "core/event.h"
#include "core/timeline.h"
#include "report/jsonw.h"

/* Track ids of the synthetic data-loading tracks of the main process:
 * above any Linux thread id (pid_max <= 2^22). */
#define TID_ITEMS 0x40000000u
#define TID_LOADER_BASE 0x40000001u
/* GPU tracks, one per (device, stream) of the kept GPU operations. */
#define TID_GPU_BASE 0x50000000u

typedef struct open_scope {
    uint32_t site;
    uint16_t flags;
    uint8_t has_index, has_items, has_epoch, has_bytes, failed;
    int64_t index, items, epoch, bytes;
    uint64_t t_ns;
} open_scope;

/* The two timeline streams (model.h): explicit scopes, traced calls. */
enum { ST_SCOPES = 0, ST_TRACED = 1 };

/* A written explicit scope: [start, end] in ns. */
typedef struct span {
    uint64_t start, end;
} span;

typedef struct tstack {
    uint32_t thread; /* cp_tl_event.thread */
    int stream;      /* ST_SCOPES or ST_TRACED: each pairs its own events */
    uint64_t tid;
    open_scope *v;
    uint32_t n, cap;
    uint64_t last_tick; /* of the last event of this thread in the stream */
    span *done;         /* ST_SCOPES: the scopes written, for the seam cut */
    uint32_t ndone, capdone;
} tstack;

typedef struct track {
    int64_t pid;
    uint64_t tid;
    uint32_t site;   /* names the track: loader site, or 0 */
    int kind;        /* 0 thread, 1 items, 2 loader, 3 worker, 4 process counters only, 5 GPU */
    int32_t worker;
    int32_t gpu_device;  /* kind 5: CUDA device ordinal (-1 unknown) */
    uint64_t gpu_stream; /* kind 5: CUstream value */
} track;

typedef struct tw {
    const cp_model *m;
    cp_strbuf *out;
    uint64_t t0;
    int first;            /* no event written yet */
    uint64_t events;
    uint32_t nsites;
    uint32_t *name_off;   /* escaped site names in `names`; UINT32_MAX: not yet */
    uint32_t *name_len;
    cp_strbuf names;
    tstack *stacks;
    uint32_t nstacks;
    track *tracks;
    uint32_t ntracks, cap_tracks;
    uint64_t unmatched[2], unfinished[2], written[2]; /* per stream */
    uint64_t last_ns; /* the last event of either stream */
    int oom;
} tw;

static void put_u64(cp_strbuf *sb, uint64_t v) {
    char b[24];
    int i = 24;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cp_strbuf_append(sb, b + i, (size_t)(24 - i));
}

static void put_i64(cp_strbuf *sb, int64_t v) {
    if (v < 0) {
        cp_strbuf_putc(sb, '-');
        put_u64(sb, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(sb, (uint64_t)v);
    }
}

/* ns as microseconds with three decimals ("12.345"). */
static void put_us(cp_strbuf *sb, uint64_t ns) {
    put_u64(sb, ns / 1000);
    uint32_t r = (uint32_t)(ns % 1000);
    char b[4] = {'.', (char)('0' + r / 100), (char)('0' + r / 10 % 10), (char)('0' + r % 10)};
    cp_strbuf_append(sb, b, 4);
}

/* ns as milliseconds with six decimals ("1.000500"). */
static void put_ms(cp_strbuf *sb, uint64_t ns) {
    put_u64(sb, ns / 1000000);
    uint32_t r = (uint32_t)(ns % 1000000);
    char b[7];
    b[0] = '.';
    for (int i = 6; i >= 1; i--, r /= 10)
        b[i] = (char)('0' + r % 10);
    cp_strbuf_append(sb, b, 7);
}

static void put_jstr(cp_strbuf *sb, const char *s) {
    cp_strbuf_putc(sb, '"');
    cp_json_escape_into(sb, s, strlen(s));
    cp_strbuf_putc(sb, '"');
}

/* The quoted, escaped name of a site (cached). */
static void put_site_name(tw *w, uint32_t site) {
    if (site >= w->nsites) {
        cp_strbuf_puts(w->out, "\"?\"");
        return;
    }
    if (w->name_off[site] == UINT32_MAX) {
        const cp_msite *s = cp_model_site(w->m, site);
        size_t before = w->names.len;
        put_jstr(&w->names, s ? s->name : "?");
        if (!cp_strbuf_ok(&w->names) || w->names.len > UINT32_MAX) {
            w->oom = 1;
            return;
        }
        w->name_off[site] = (uint32_t)before;
        w->name_len[site] = (uint32_t)(w->names.len - before);
    }
    cp_strbuf_append(w->out, w->names.data + w->name_off[site], w->name_len[site]);
}

static void begin_event(tw *w, char ph, const char *cat) {
    cp_strbuf *sb = w->out;
    cp_strbuf_puts(sb, w->first ? "\n{\"ph\":\"" : ",\n{\"ph\":\"");
    w->first = 0;
    cp_strbuf_putc(sb, ph);
    cp_strbuf_puts(sb, "\",\"cat\":\"");
    cp_strbuf_puts(sb, cat);
    cp_strbuf_puts(sb, "\",\"name\":");
    w->events++;
}

static void put_pid_tid_ts(tw *w, int64_t pid, uint64_t tid, uint64_t t_ns) {
    cp_strbuf *sb = w->out;
    cp_strbuf_puts(sb, ",\"pid\":");
    put_i64(sb, pid);
    cp_strbuf_puts(sb, ",\"tid\":");
    put_u64(sb, tid);
    cp_strbuf_puts(sb, ",\"ts\":");
    put_us(sb, t_ns >= w->t0 ? t_ns - w->t0 : 0);
}

static void put_dur(tw *w, uint64_t dur_ns) {
    cp_strbuf_puts(w->out, ",\"dur\":");
    put_us(w->out, dur_ns);
}

static int add_track(tw *w, int64_t pid, uint64_t tid, int kind, uint32_t site, int32_t worker) {
    for (uint32_t i = 0; i < w->ntracks; i++)
        if (w->tracks[i].pid == pid && w->tracks[i].tid == tid)
            return 0;
    if (w->ntracks == w->cap_tracks) {
        uint32_t ncap = w->cap_tracks ? 2 * w->cap_tracks : 16;
        track *nt = realloc(w->tracks, ncap * sizeof *nt);
        if (!nt)
            return -1;
        w->tracks = nt;
        w->cap_tracks = ncap;
    }
    w->tracks[w->ntracks++] = (track){pid, tid, site, kind, worker, -1, 0};
    return 0;
}

static tstack *stack_of(tw *w, uint32_t thread, int stream) {
    for (uint32_t i = 0; i < w->nstacks; i++)
        if (w->stacks[i].thread == thread && w->stacks[i].stream == stream)
            return &w->stacks[i];
    tstack *ns = realloc(w->stacks, (w->nstacks + 1) * sizeof *ns);
    if (!ns)
        return NULL;
    w->stacks = ns;
    tstack *st = &ns[w->nstacks++];
    memset(st, 0, sizeof *st);
    st->thread = thread;
    st->stream = stream;
    st->tid = thread; /* fallback when the model has no such thread */
    for (uint32_t i = 0; i < w->m->nthreads; i++)
        if (w->m->threads[i].index == thread && w->m->threads[i].pid == w->m->pid) {
            st->tid = w->m->threads[i].os_tid;
            break;
        }
    if (add_track(w, w->m->pid, st->tid, 0, 0, -1) != 0)
        return NULL;
    return st;
}

static const char *scope_cat(const cp_model *m, const open_scope *o) {
    if (o->flags & CP_EVF_ITEM)
        return "item";
    if (o->flags & CP_EVF_BATCH)
        return "batch";
    if (o->flags & CP_EVF_EXPLICIT) {
        const cp_msite *s = cp_model_site(m, o->site);
        if (s && s->kind == CODEPROF_SITE_FUNCTION)
            return "function";
        return "scope";
    }
    return "call";
}

static void emit_scope(tw *w, tstack *st, const open_scope *o, uint64_t end_ns,
                       int unfinished) {
    cp_strbuf *sb = w->out;
    w->written[st->stream]++;
    if (st->stream == ST_SCOPES && w->m->timeline_traced_seam) { /* for cut_at_seam */
        if (st->ndone == st->capdone) {
            uint32_t ncap = st->capdone ? 2 * st->capdone : 64;
            span *nd = realloc(st->done, ncap * sizeof *nd);
            if (!nd) {
                w->oom = 1;
                return;
            }
            st->done = nd;
            st->capdone = ncap;
        }
        st->done[st->ndone++] = (span){o->t_ns, end_ns};
    }
    begin_event(w, 'X', scope_cat(w->m, o));
    put_site_name(w, o->site);
    put_pid_tid_ts(w, w->m->pid, st->tid, o->t_ns);
    put_dur(w, end_ns > o->t_ns ? end_ns - o->t_ns : 0);
    if (o->has_index || o->has_items || o->has_epoch || o->has_bytes || o->failed || unfinished) {
        int comma = 0;
        cp_strbuf_puts(sb, ",\"args\":{");
#define ARG(flag, key, val)                                                                        \
    if (flag) {                                                                                    \
        cp_strbuf_puts(sb, comma ? ",\"" key "\":" : "\"" key "\":");                              \
        put_i64(sb, val);                                                                          \
        comma = 1;                                                                                 \
    }
        ARG(o->has_index, "index", o->index)
        ARG(o->has_items, "items", o->items)
        ARG(o->has_epoch, "epoch", o->epoch)
        ARG(o->has_bytes, "bytes", o->bytes)
#undef ARG
        if (o->failed) {
            cp_strbuf_puts(sb, comma ? ",\"failed\":true" : "\"failed\":true");
            comma = 1;
        }
        if (unfinished)
            cp_strbuf_puts(sb, comma ? ",\"unfinished\":true" : "\"unfinished\":true");
        cp_strbuf_putc(sb, '}');
    }
    cp_strbuf_putc(sb, '}');
}

static tstack *find_stack(tw *w, uint32_t thread, int stream) {
    for (uint32_t i = 0; i < w->nstacks; i++)
        if (w->stacks[i].thread == thread && w->stacks[i].stream == stream)
            return &w->stacks[i];
    return NULL;
}

/* The traced stream jumps over its dropped middle here: an EXIT after the
 * seam cannot be told from the EXIT of an older call of the same function
 * before it, so nothing pairs across it.  Every call still open is closed
 * at its thread's last event before the seam (flagged unfinished), or
 * later where an explicit scope that began inside the call before that
 * point ends later: the call is then closed at that scope's end, so the
 * scopes and the calls on the thread's track still nest. */
static void cut_at_seam(tw *w) {
    for (uint32_t s = 0; s < w->nstacks; s++) {
        tstack *st = &w->stacks[s];
        if (st->stream != ST_TRACED || !st->n)
            continue;
        uint64_t t_cut = st->last_tick;
        /* explicit scopes of this thread open at t_cut: the spans that
         * straddle it and the scopes still open (closed at the end) */
        const tstack *sc = find_stack(w, st->thread, ST_SCOPES);
        uint32_t nc = 0;
        span *cand = NULL;
        if (sc && (sc->ndone || sc->n)) {
            cand = malloc(((size_t)sc->ndone + sc->n) * sizeof *cand);
            if (!cand) {
                w->oom = 1;
                return;
            }
            for (uint32_t i = 0; i < sc->ndone; i++)
                if (sc->done[i].start <= t_cut && sc->done[i].end > t_cut)
                    cand[nc++] = sc->done[i];
            for (uint32_t i = 0; i < sc->n; i++)
                if (sc->v[i].t_ns <= t_cut)
                    cand[nc++] = (span){sc->v[i].t_ns, w->last_ns};
        }
        while (st->n) {
            const open_scope *o = &st->v[st->n - 1];
            uint64_t end = t_cut;
            for (uint32_t i = 0; i < nc; i++)
                if (cand[i].start >= o->t_ns && cand[i].end > end)
                    end = cand[i].end;
            emit_scope(w, st, o, end, 1);
            w->unfinished[ST_TRACED]++;
            st->n--;
        }
        free(cand);
    }
}

/* Writes one stream's events (`n` of `ev`, oldest first), pairing its
 * ENTER/EXIT per thread; `seam` (0: none) is where the stream jumps over
 * its dropped middle (only the traced stream is cut there). */
/* The DataLoader worker id of a process the memory sampler followed; -1
 * when it is not one. */
static int32_t worker_of_pid(const cp_model *m, int64_t pid) {
    for (uint32_t i = 0; i < m->mem.nprocs; i++)
        if (m->mem.procs[i].pid == pid)
            return m->mem.procs[i].worker;
    return -1;
}

/* A counter of a whole process (the memory sampler's readings: timeline.h
 * CP_TLF_PROCESS): a "C" event on that process, named by its site
 * ("memory.rss", ...); its `thread` is the pid, 0 for the model's own.
 * No thread track is made for it. */
static int process_counter(tw *w, const cp_tl_event *e) {
    const cp_model *m = w->m;
    int64_t pid = e->thread ? (int64_t)e->thread : (int64_t)m->pid;
    if (add_track(w, pid, 0, 4, 0, pid == m->pid ? -1 : worker_of_pid(m, pid)) != 0)
        return -1;
    const cp_msite *si = cp_model_site(m, e->site);
    int gpu = si && (strncmp(si->name, "gpu", 3) == 0 || strncmp(si->name, "GPU", 3) == 0);
    begin_event(w, 'C', gpu ? "gpu" : "memory"); /* NVML readings are named gpu... */
    put_site_name(w, e->site);
    put_pid_tid_ts(w, pid, 0, e->tick);
    cp_strbuf_puts(w->out, gpu ? ",\"args\":{\"value\":" : ",\"args\":{\"bytes\":");
    put_i64(w->out, e->value);
    cp_strbuf_puts(w->out, "}}");
    return w->oom || !cp_strbuf_ok(w->out) ? -1 : 0;
}

static int timeline_events(tw *w, const cp_tl_event *ev, uint32_t n, int stream,
                           uint32_t seam) {
    const cp_model *m = w->m;
    for (uint32_t i = 0; i < n; i++) {
        const cp_tl_event *e = &ev[i];
        if (i == seam && seam && stream == ST_TRACED) {
            cut_at_seam(w);
            if (w->oom)
                return -1;
        }
        if (e->kind == CP_EV_COUNTER && (e->flags & CP_TLF_PROCESS)) {
            if (process_counter(w, e) != 0)
                return -1;
            continue;
        }
        tstack *st = stack_of(w, e->thread, stream);
        if (!st)
            return -1;
        st->last_tick = e->tick;
        switch (e->kind) {
        case CP_EV_ENTER: {
            if (st->n == st->cap) {
                uint32_t ncap = st->cap ? 2 * st->cap : 32;
                open_scope *nv = realloc(st->v, ncap * sizeof *nv);
                if (!nv)
                    return -1;
                st->v = nv;
                st->cap = ncap;
            }
            open_scope *o = &st->v[st->n++];
            memset(o, 0, sizeof *o);
            o->site = e->site;
            o->flags = e->flags;
            o->t_ns = e->tick;
            break;
        }
        case CP_EV_EXIT: {
            uint32_t k = st->n;
            while (k && st->v[k - 1].site != e->site)
                k--;
            if (!k) { /* its ENTER was not kept */
                w->unmatched[stream]++;
                break;
            }
            /* Scopes above it never saw their exit: closed here. */
            while (st->n > k) {
                emit_scope(w, st, &st->v[st->n - 1], e->tick, 1);
                w->unfinished[stream]++;
                st->n--;
            }
            emit_scope(w, st, &st->v[k - 1], e->tick, 0);
            st->n--;
            break;
        }
        case CP_EV_ATTR:
            if (st->n) {
                open_scope *o = &st->v[st->n - 1];
                switch (e->flags) {
                case CODEPROF_ATTR_INDEX: o->has_index = 1; o->index = e->value; break;
                case CODEPROF_ATTR_ITEMS: o->has_items = 1; o->items = e->value; break;
                case CODEPROF_ATTR_EPOCH: o->has_epoch = 1; o->epoch = e->value; break;
                case CODEPROF_ATTR_BYTES: o->has_bytes = 1; o->bytes = e->value; break;
                case CODEPROF_ATTR_FAILED: o->failed = 1; break;
                default: break;
                }
            }
            break;
        case CP_EV_MARK:
            begin_event(w, 'i', "mark");
            put_site_name(w, e->site);
            put_pid_tid_ts(w, m->pid, st->tid, e->tick);
            cp_strbuf_puts(w->out, ",\"s\":\"t\"}");
            break;
        case CP_EV_COUNTER:
        case CP_EV_RSS:
            begin_event(w, 'C', e->kind == CP_EV_RSS ? "memory" : "counter");
            if (e->kind == CP_EV_RSS)
                cp_strbuf_puts(w->out, "\"RSS bytes\"");
            else
                put_site_name(w, e->site);
            put_pid_tid_ts(w, m->pid, st->tid, e->tick);
            cp_strbuf_puts(w->out, ",\"args\":{\"value\":");
            put_i64(w->out, e->value);
            cp_strbuf_puts(w->out, "}}");
            break;
        default:
            break; /* samples, allocations, GPU: not in this export yet */
        }
        if (w->oom || !cp_strbuf_ok(w->out))
            return -1;
    }
    return 0;
}

/* Closes what is still open, in both streams, at the last timeline event
 * of either (one end for all keeps the two streams nested). */
static int close_open(tw *w) {
    for (uint32_t s = 0; s < w->nstacks; s++) {
        tstack *st = &w->stacks[s];
        while (st->n) {
            emit_scope(w, st, &st->v[st->n - 1], w->last_ns, 1);
            w->unfinished[st->stream]++;
            st->n--;
        }
    }
    return w->oom || !cp_strbuf_ok(w->out) ? -1 : 0;
}

/* The loader's wait counter ("<loader> wait (ms)") set to `wait_ns` at
 * `t_ns`: a batch's wait at its start, back to 0 at its end. */
static void put_wait_counter(tw *w, const cp_model *m, const cp_mrecord *r, uint64_t tid,
                             uint64_t t_ns, uint64_t wait_ns) {
    const cp_msite *s = cp_model_site(m, r->site);
    char name[300];
    snprintf(name, sizeof name, "%s wait (ms)", s ? s->name : "loader");
    begin_event(w, 'C', "batch");
    put_jstr(w->out, name);
    put_pid_tid_ts(w, r->pid, tid, t_ns);
    cp_strbuf_puts(w->out, ",\"args\":{\"wait_ms\":");
    put_ms(w->out, wait_ns);
    cp_strbuf_puts(w->out, "}}");
}

/* Loader track ids follow the loader's position in the data section. */
static uint64_t loader_tid(const cp_model *m, uint32_t site) {
    for (uint32_t i = 0; i < m->data.nloaders; i++)
        if (m->data.loaders[i].site == site)
            return TID_LOADER_BASE + i;
    return TID_LOADER_BASE + m->data.nloaders;
}

static int record_events(tw *w) {
    const cp_model *m = w->m;
    const cp_mdata *d = &m->data;
    uint32_t nl = d->nloaders + 1;
    /* per loader: end of the previous batch wait and its epoch */
    uint64_t *prev_end = calloc(nl, sizeof *prev_end);
    uint32_t *prev_epoch = calloc(nl, sizeof *prev_epoch);
    if (!prev_end || !prev_epoch) {
        free(prev_end);
        free(prev_epoch);
        return -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < d->nrecords && rc == 0; i++) {
        const cp_mrecord *r = &d->records[i];
        cp_strbuf *sb = w->out;
        if (r->type == CP_MREC_ITEM) {
            int in_worker = r->worker >= 0 || r->pid != m->pid;
            uint64_t tid = in_worker ? (uint64_t)(uint32_t)r->pid : TID_ITEMS;
            if (add_track(w, r->pid, tid, in_worker ? 3 : 1, 0, r->worker) != 0) {
                rc = -1;
                break;
            }
            begin_event(w, 'X', "item");
            put_site_name(w, r->site);
            put_pid_tid_ts(w, r->pid, tid, r->t_ns);
            put_dur(w, r->dur_ns);
            cp_strbuf_puts(sb, ",\"args\":{\"index\":");
            put_i64(sb, r->index);
            if (r->failed)
                cp_strbuf_puts(sb, ",\"failed\":true");
            cp_strbuf_puts(sb, "}}");
        } else if (r->type == CP_MREC_BATCH) {
            uint64_t tid = loader_tid(m, r->site);
            uint32_t li = (uint32_t)(tid - TID_LOADER_BASE);
            if (add_track(w, r->pid, tid, 2, r->site, -1) != 0) {
                rc = -1;
                break;
            }
            if (prev_end[li] && prev_epoch[li] == r->epoch && r->t_ns > prev_end[li]) {
                begin_event(w, 'X', "step");
                cp_strbuf_puts(sb, "\"step\"");
                put_pid_tid_ts(w, r->pid, tid, prev_end[li]);
                put_dur(w, r->t_ns - prev_end[li]);
                cp_strbuf_puts(sb, ",\"args\":{\"epoch\":");
                put_u64(sb, r->epoch);
                cp_strbuf_puts(sb, "}}");
            }
            begin_event(w, 'X', "batch");
            cp_strbuf_puts(sb, "\"wait\"");
            put_pid_tid_ts(w, r->pid, tid, r->t_ns);
            put_dur(w, r->dur_ns);
            cp_strbuf_puts(sb, ",\"args\":{\"items\":");
            put_i64(sb, r->index);
            cp_strbuf_puts(sb, ",\"epoch\":");
            put_u64(sb, r->epoch);
            cp_strbuf_puts(sb, "}}");
            /* counter: this batch's wait, in ms */
            put_wait_counter(w, m, r, tid, r->t_ns, r->dur_ns);
            put_wait_counter(w, m, r, tid, r->t_ns + r->dur_ns, 0);
            prev_end[li] = r->t_ns + r->dur_ns;
            prev_epoch[li] = r->epoch;
        }
        if (w->oom || !cp_strbuf_ok(sb))
            rc = -1;
    }
    free(prev_end);
    free(prev_epoch);
    return rc;
}

/* The sampler's kept samples (m->samp.timeline) as instant events on
 * their threads' tracks: named after the innermost frame, with the whole
 * stack (outermost first, "file:line" per frame) and the thread's state in
 * args.  Perfetto draws them as ticks on the thread's track. */
static const char *const samp_state_names[4] = {"unknown", "running", "idle", "gil_wait"};

static int sample_events(tw *w) {
    const cp_msampling *ms = &w->m->samp;
    cp_strbuf *sb = w->out;
    for (uint32_t i = 0; i < ms->ntimeline; i++) {
        const cp_msample *s = &ms->timeline[i];
        if (s->stack >= ms->nstacks)
            continue; /* a corrupt index: not written */
        const cp_mstack *st = &ms->stacks[s->stack];
        if (st->first > ms->nframes || st->n > ms->nframes - st->first)
            continue;
        const cp_msframe *fr = ms->frames + st->first;
        if (add_track(w, s->pid, s->os_tid, 0, 0, s->worker) != 0)
            return -1;
        begin_event(w, 'i', "sample");
        if (st->n)
            put_site_name(w, fr[0].site);
        else
            cp_strbuf_puts(sb, "\"(no frame)\"");
        put_pid_tid_ts(w, s->pid, s->os_tid, s->t_ns);
        cp_strbuf_puts(sb, ",\"s\":\"t\",\"args\":{\"state\":\"");
        cp_strbuf_puts(sb, samp_state_names[s->state & CP_SAMPF_STATE_MASK]);
        cp_strbuf_puts(sb, "\",\"weight_ms\":");
        put_ms(sb, s->weight_ns);
        if (s->worker >= 0) {
            cp_strbuf_puts(sb, ",\"worker\":");
            put_i64(sb, s->worker);
        }
        cp_strbuf_puts(sb, ",\"stack\":[");
        for (uint32_t k = st->n; k-- > 0;) { /* "name (file:line)", outermost first */
            const cp_msite *si = cp_model_site(w->m, fr[k].site);
            const char *name = si ? si->name : "?", *file = si ? si->file : "";
            cp_strbuf_puts(sb, k + 1 == st->n ? "\"" : ",\"");
            cp_json_escape_into(sb, name, strlen(name));
            if (file[0]) {
                cp_strbuf_puts(sb, " (");
                cp_json_escape_into(sb, file, strlen(file));
                cp_strbuf_printf(sb, ":%u)", fr[k].line);
            }
            cp_strbuf_putc(sb, '"');
        }
        cp_strbuf_puts(sb, "]}}");
        if (w->oom || !cp_strbuf_ok(sb))
            return -1;
    }
    return 0;
}


/* ---- GPU operations: spans on a track per (device, stream) ---------------- */

/* Where a kept GPU operation starts on the trace: its device start when
 * known, else its host start. */
static uint64_t gpu_start(const cp_mgpu_span *s) {
    return s->device_start_ns ? s->device_start_ns : s->host_start_ns;
}

static uint64_t gpu_dur(const cp_mgpu_span *s) {
    if (s->timed)
        return s->device_ns;
    return s->host_end_ns > s->host_start_ns ? s->host_end_ns - s->host_start_ns : 0;
}

/* The track of (pid, device, stream), made on first use; 0 on OOM. */
static uint64_t gpu_tid(tw *w, int64_t pid, int32_t device, uint64_t stream, uint32_t *ngpu) {
    for (uint32_t i = 0; i < w->ntracks; i++) {
        const track *t = &w->tracks[i];
        if (t->kind == 5 && t->pid == pid && t->gpu_device == device && t->gpu_stream == stream)
            return t->tid;
    }
    uint64_t tid = TID_GPU_BASE + (*ngpu)++;
    if (add_track(w, pid, tid, 5, 0, -1) != 0)
        return 0;
    w->tracks[w->ntracks - 1].gpu_device = device;
    w->tracks[w->ntracks - 1].gpu_stream = stream;
    return tid;
}

static int gpu_events(tw *w) {
    const cp_model *m = w->m;
    const cp_mgpu *g = &m->gpu;
    uint32_t ngpu = 0;
    for (uint32_t i = 0; i < g->nspans; i++) {
        const cp_mgpu_span *s = &g->spans[i];
        int64_t pid = s->pid ? s->pid : m->pid;
        uint64_t tid = gpu_tid(w, pid, s->device, s->stream, &ngpu);
        if (!tid)
            return -1;
        cp_strbuf *sb = w->out;
        begin_event(w, 'X', "gpu");
        put_site_name(w, s->site);
        put_pid_tid_ts(w, pid, tid, gpu_start(s));
        put_dur(w, gpu_dur(s));
        cp_strbuf_puts(sb, ",\"args\":{\"device_ms\":");
        if (s->timed)
            put_ms(sb, s->device_ns);
        else
            cp_strbuf_puts(sb, "null");
        cp_strbuf_puts(sb, ",\"host_ms\":");
        put_ms(sb, s->host_end_ns > s->host_start_ns ? s->host_end_ns - s->host_start_ns : 0);
        cp_strbuf_puts(sb, ",\"memory_delta\":");
        put_i64(sb, s->mem_delta);
        cp_strbuf_puts(sb, ",\"host_tid\":");
        put_u64(sb, s->os_tid);
        cp_strbuf_puts(sb, "}}");
        if (w->oom || !cp_strbuf_ok(sb))
            return -1;
    }
    return 0;
}

static void meta_event(tw *w, const char *what, int64_t pid, uint64_t tid, const char *name) {
    cp_strbuf *sb = w->out;
    cp_strbuf_puts(sb, w->first ? "\n{\"ph\":\"M\",\"name\":\"" : ",\n{\"ph\":\"M\",\"name\":\"");
    w->first = 0;
    w->events++;
    cp_strbuf_puts(sb, what);
    cp_strbuf_puts(sb, "\",\"pid\":");
    put_i64(sb, pid);
    cp_strbuf_puts(sb, ",\"tid\":");
    put_u64(sb, tid);
    cp_strbuf_puts(sb, ",\"args\":{\"name\":");
    put_jstr(sb, name);
    cp_strbuf_puts(sb, "}}");
}

static void metadata(tw *w) {
    const cp_model *m = w->m;
    /* processes: the model's own and every pid a track uses */
    for (uint32_t i = 0; i < w->ntracks; i++) {
        const track *t = &w->tracks[i];
        int seen = 0;
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = w->tracks[j].pid == t->pid;
        if (seen)
            continue;
        char name[160];
        if (t->pid == m->pid)
            snprintf(name, sizeof name, "%s (pid %d)", m->role[0] ? m->role : "main", m->pid);
        else if (t->worker >= 0)
            snprintf(name, sizeof name, "DataLoader worker %d (pid %" PRId64 ")", (int)t->worker,
                     t->pid);
        else
            snprintf(name, sizeof name, "process %" PRId64, t->pid);
        meta_event(w, "process_name", t->pid, 0, name);
    }
    for (uint32_t i = 0; i < w->ntracks; i++) {
        const track *t = &w->tracks[i];
        char name[320];
        if (t->kind == 4)
            continue; /* counters belong to the process, not to a thread */
        switch (t->kind) {
        case 1:
            snprintf(name, sizeof name, "dataset items");
            break;
        case 2: {
            const cp_msite *s = cp_model_site(m, t->site);
            snprintf(name, sizeof name, "DataLoader %s", s ? s->name : "?");
            break;
        }
        case 3:
            snprintf(name, sizeof name, "item loads");
            break;
        case 5:
            if (t->gpu_device >= 0)
                snprintf(name, sizeof name, "GPU %d stream 0x%" PRIx64, (int)t->gpu_device,
                         t->gpu_stream);
            else
                snprintf(name, sizeof name, "GPU stream 0x%" PRIx64, t->gpu_stream);
            break;
        default:
            snprintf(name, sizeof name, "thread %" PRIu64, t->tid);
            break;
        }
        meta_event(w, "thread_name", t->pid, t->tid, name);
    }
}

int cp_export_trace(const cp_model *m, cp_strbuf *out) {
    tw w;
    memset(&w, 0, sizeof w);
    w.m = m;
    w.out = out;
    w.first = 1;
    w.nsites = m->sites.n ? m->sites.n : 1;
    w.name_off = malloc((size_t)w.nsites * sizeof *w.name_off);
    w.name_len = malloc((size_t)w.nsites * sizeof *w.name_len);
    int rc = -1;
    if (!w.name_off || !w.name_len)
        goto out;
    memset(w.name_off, 0xff, (size_t)w.nsites * sizeof *w.name_off);
    /* Time origin: the earliest event of the timeline or the records. */
    w.t0 = UINT64_MAX;
    for (uint32_t i = 0; i < m->ntimeline; i++)
        if (m->timeline[i].tick < w.t0)
            w.t0 = m->timeline[i].tick;
    for (uint32_t i = 0; i < m->ntimeline_traced; i++)
        if (m->timeline_traced[i].tick < w.t0)
            w.t0 = m->timeline_traced[i].tick;
    for (uint32_t i = 0; i < m->data.nrecords; i++)
        if (m->data.records[i].t_ns < w.t0)
            w.t0 = m->data.records[i].t_ns;
    for (uint32_t i = 0; i < m->samp.ntimeline; i++)
        if (m->samp.timeline[i].t_ns < w.t0)
            w.t0 = m->samp.timeline[i].t_ns;
    for (uint32_t i = 0; i < m->gpu.nspans; i++)
        if (gpu_start(&m->gpu.spans[i]) < w.t0)
            w.t0 = gpu_start(&m->gpu.spans[i]);
    if (w.t0 == UINT64_MAX)
        w.t0 = 0;
    for (uint32_t i = 0; i < m->ntimeline; i++)
        if (m->timeline[i].tick > w.last_ns)
            w.last_ns = m->timeline[i].tick;
    for (uint32_t i = 0; i < m->ntimeline_traced; i++)
        if (m->timeline_traced[i].tick > w.last_ns)
            w.last_ns = m->timeline_traced[i].tick;
    cp_strbuf_puts(out, "{\"traceEvents\":[");
    if (timeline_events(&w, m->timeline, m->ntimeline, ST_SCOPES, 0) != 0 ||
        timeline_events(&w, m->timeline_traced, m->ntimeline_traced, ST_TRACED,
                        m->timeline_traced_seam) != 0 ||
        close_open(&w) != 0 || record_events(&w) != 0 || sample_events(&w) != 0 ||
        gpu_events(&w) != 0)
        goto out;
    /* a trace with no events still names its process */
    if (w.ntracks == 0 && add_track(&w, m->pid, (uint64_t)(uint32_t)m->pid, 0, 0, -1) != 0)
        goto out;
    metadata(&w);
    cp_strbuf_puts(out, "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{");
    cp_strbuf_puts(out, "\"exporter\":\"codeprof " CODEPROF_VERSION_STRING "\",\"pid\":");
    put_i64(out, m->pid);
    cp_strbuf_puts(out, ",\"start_unix_ns\":");
    put_u64(out, m->start_unix_ns);
    cp_strbuf_puts(out, ",\"t0_monotonic_ns\":");
    put_u64(out, w.t0);
    cp_strbuf_puts(out, ",\"timeline_events\":");
    put_u64(out, m->ntimeline);
    cp_strbuf_puts(out, ",\"timeline_dropped\":");
    put_u64(out, m->timeline_dropped);
    cp_strbuf_puts(out, ",\"timeline_cap\":");
    put_u64(out, m->cfg.timeline_events);
    cp_strbuf_puts(out, ",\"records\":");
    put_u64(out, m->data.nrecords);
    cp_strbuf_puts(out, ",\"records_dropped\":");
    put_u64(out, m->data.records_dropped);
    cp_strbuf_puts(out, ",\"records_cap\":");
    put_u64(out, CP_MAX_DATA_RECORDS);
    cp_strbuf_puts(out, ",\"unmatched_exits\":");
    put_u64(out, w.unmatched[ST_SCOPES]);
    cp_strbuf_puts(out, ",\"unfinished_scopes\":");
    put_u64(out, w.unfinished[ST_SCOPES]);
    cp_strbuf_puts(out, ",\"timeline_traced_events\":");
    put_u64(out, m->ntimeline_traced);
    cp_strbuf_puts(out, ",\"timeline_traced_dropped\":");
    put_u64(out, m->timeline_traced_dropped);
    cp_strbuf_puts(out, ",\"timeline_traced_cap\":");
    put_u64(out, (m->cfg.flags & CODEPROF_CFG_TIMELINE_TRACED) ? m->cfg.timeline_traced_events : 0);
    cp_strbuf_puts(out, ",\"traced_calls\":");
    put_u64(out, w.written[ST_TRACED]);
    cp_strbuf_puts(out, ",\"traced_unmatched_exits\":");
    put_u64(out, w.unmatched[ST_TRACED]);
    cp_strbuf_puts(out, ",\"traced_unfinished_calls\":");
    put_u64(out, w.unfinished[ST_TRACED]);
    cp_strbuf_puts(out, ",\"samples\":");
    put_u64(out, m->samp.ntimeline);
    cp_strbuf_puts(out, ",\"samples_taken\":");
    put_u64(out, m->samp.samples);
    cp_strbuf_puts(out, ",\"samples_dropped\":");
    put_u64(out, m->samp.timeline_dropped);
    cp_strbuf_puts(out, ",\"samples_cap\":");
    put_u64(out, m->cfg.max_samples);
    cp_strbuf_puts(out, ",\"gpu_operations\":");
    put_u64(out, m->gpu.nspans);
    cp_strbuf_puts(out, ",\"gpu_operations_dropped\":");
    put_u64(out, m->gpu.ops_dropped);
    cp_strbuf_puts(out, ",\"events_written\":");
    put_u64(out, w.events);
    cp_strbuf_puts(out, ",\"policy\":\"timeline: first and last events of timeline_cap; traced "
                        "calls: first and last events of timeline_traced_cap; records: "
                        "first and last halves of records_cap; samples: first and most "
                        "recent halves of samples_cap; see docs/exports.md\"}}\n");
    rc = cp_strbuf_ok(out) ? 0 : -1;
out:
    for (uint32_t i = 0; i < w.nstacks; i++) {
        free(w.stacks[i].v);
        free(w.stacks[i].done);
    }
    free(w.stacks);
    free(w.tracks);
    free(w.name_off);
    free(w.name_len);
    cp_strbuf_free(&w.names);
    return rc;
}
