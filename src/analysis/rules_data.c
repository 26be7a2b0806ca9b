/* rules_data.c -- the data-loading rules (rules_data.h; listed in rules.h
 * and docs/report-schema.md).  Every rule reads only m->data and m->cfg. */
#include "analysis/rules_data.h"

#include "analysis/rule_util.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MIN_SEVERITY 1.01
#define STAGE_DOMINANT_SHARE 0.5  /* CP-DATA-003/004: share of item time     */
#define OUTLIER_SHARE 0.05        /* CP-DATA-002: outliers' share of item time */
#define STARTUP_SHARE 0.10        /* CP-DATA-005: start-up share of loader time */
#define BURST_RATIO 4.0           /* CP-DATA-006: p95 / p50 of waits            */
#define MIN_STALL_BATCHES 3       /* CP-DATA-001: batches needed to judge      */

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

static const char *name_of(const cp_model *m, uint32_t site) {
    const cp_msite *si = cp_model_site(m, site);
    return si ? si->name : "?";
}

static unsigned kind_of(const cp_model *m, uint32_t site) {
    const cp_msite *si = cp_model_site(m, site);
    return si ? (unsigned)si->kind : (unsigned)CODEPROF_SITE_SCOPE;
}

/* A bounded text being assembled (truncates silently at its capacity). */
typedef struct msg {
    char s[400];
    size_t n;
} msg;

static void mcat(msg *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mcat(msg *b, const char *fmt, ...) {
    if (b->n >= sizeof b->s - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->n += (size_t)k < sizeof b->s - b->n ? (size_t)k : sizeof b->s - b->n - 1;
}

static const char *secs(double v, char *buf, size_t n) { return cp_rule_secs(v, buf, n); }

static double ns_s(uint64_t ns) { return (double)ns / 1e9; }

/* Case-insensitive substring test. */
static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

static int is_decode_name(const char *name) {
    return contains_ci(name, "decode") || contains_ci(name, "read") || contains_ci(name, "load");
}

#define MIN_STEADY_BATCHES 2      /* CP-DATA-001: batches after each epoch's first */

static double at_least(double sev) { return sev > MIN_SEVERITY ? sev : MIN_SEVERITY; }

static double clamp01(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

/* A loader's steady state: every batch but the first of each epoch (whose
 * wait is worker start-up and warm-up, reported by CP-DATA-005). */
static uint64_t steady_batches(const cp_mloader *L) {
    return L->batches > L->epochs ? L->batches - L->epochs : 0;
}

static uint64_t steady_wait_ns(const cp_mloader *L) {
    return L->wait_ns > L->first_wait_ns ? L->wait_ns - L->first_wait_ns : 0;
}

/* A loader whose stall can be judged: enough batches, and enough of them
 * past each epoch's first. */
static int judged(const cp_mloader *L) {
    return L->batches >= MIN_STALL_BATCHES && steady_batches(L) >= MIN_STEADY_BATCHES;
}

/* CP-DATA-002's view of a dataset. */
typedef struct outl {
    int fires;
    int by_share;      /* outlier loads > OUTLIER_SHARE of item time */
    double share;      /* outlier loads / item time of the dataset    */
    double excess_s;   /* outlier loads' time above the median         */
} outl;

static outl outliers_of(const cp_model *m, const cp_mdataset *ds) {
    outl o;
    memset(&o, 0, sizeof o);
    if (!ds->nbottlenecks || !ds->sum_ns)
        return o;
    double loads = 0, excess = 0;
    for (uint32_t k = 0; k < ds->nbottlenecks; k++) {
        /* the index's slowest load, once per epoch it was an outlier */
        double e = ds->bottleneck_epochs[k] ? (double)ds->bottleneck_epochs[k] : 1.0;
        loads += (double)ds->bottleneck_ns[k] * e;
        if (ds->bottleneck_ns[k] > ds->p50_ns)
            excess += (double)(ds->bottleneck_ns[k] - ds->p50_ns) * e;
    }
    o.share = clamp01(loads / (double)ds->sum_ns);
    o.excess_s = excess / 1e9;
    if (o.excess_s > ns_s(ds->sum_ns))
        o.excess_s = ns_s(ds->sum_ns);
    o.by_share = o.share > OUTLIER_SHARE;
    o.fires = o.by_share || ns_s(ds->max_ns) > m->cfg.slow_data_loading_s;
    return o;
}

/* Run-wide facts every rule shares. */
typedef struct dctx {
    uint64_t items;        /* item loads over all datasets */
    double t_item;         /* mean item load time (s); 0 if no items */
    int have_loader;       /* some loader delivered a batch */
    int have_judged;       /* some loader's stall can be judged (judged()) */
    double worst_stall;    /* largest stall fraction of a judged loader */
    int data_bound;        /* worst_stall > cfg.data_stall_fraction */
    int workers;           /* num_workers of the worst loader (0: in the loop / unknown) */
    double steady_wait_s;  /* judged loaders' steady-state waits, summed */
    double wait_s;         /* every loader's waits, first batches included */
    double outlier_part;   /* item time that is outlier excess (firing datasets), 0..1 */
} dctx;

static dctx context(const cp_model *m) {
    dctx c;
    memset(&c, 0, sizeof c);
    const cp_mdata *d = &m->data;
    double excess = 0;
    for (uint32_t i = 0; i < d->ndatasets; i++) {
        c.items += d->datasets[i].items;
        outl o = outliers_of(m, &d->datasets[i]);
        if (o.fires)
            excess += o.excess_s;
    }
    if (c.items)
        c.t_item = ns_s(d->item_ns_total) / (double)c.items;
    if (d->item_ns_total)
        c.outlier_part = clamp01(excess / ns_s(d->item_ns_total));
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        if (!L->batches)
            continue;
        c.have_loader = 1;
        c.wait_s += ns_s(L->wait_ns);
        if (!judged(L))
            continue;
        c.have_judged = 1;
        c.steady_wait_s += ns_s(steady_wait_ns(L));
        if (L->stall_fraction > c.worst_stall) {
            c.worst_stall = L->stall_fraction;
            c.workers = L->desc.described && L->desc.num_workers > 0 ? L->desc.num_workers : 0;
        }
    }
    c.data_bound = c.have_loader && c.worst_stall > m->cfg.data_stall_fraction;
    return c;
}

/* The severity multiplier of the stage rules: how much of the loop's time
 * item cost actually reaches (1 without a loader to judge by). */
static double stall_mult(const dctx *c) { return c->have_loader ? c->worst_stall : 1.0; }

/* The loop's steady waits that ordinary item cost explains (the rest is the
 * outliers' share, CP-DATA-002's saving). */
static double ordinary_wait_s(const dctx *c) { return c->steady_wait_s * (1.0 - c->outlier_part); }

/* CP-DATA-003/004 saving: with a loader, the stage's share of the waits
 * ordinary items cause, at most the stage's time spread over the workers;
 * without one, the stage's whole time. */
static double stage_saving(const dctx *c, const cp_mstage *st) {
    double t = ns_s(st->sum_ns);
    if (!c->have_loader)
        return t;
    double spread = t / (double)(c->workers > 1 ? c->workers : 1);
    double part = ordinary_wait_s(c) * st->share_of_item_time;
    return spread < part ? spread : part;
}

uint32_t cp_data_needed_workers(double batch, double t_item_s, double t_step_s, uint32_t cpus) {
    if (!(batch > 0) || !(t_item_s > 0) || !(t_step_s > 0))
        return 0;
    double need = batch * t_item_s / t_step_s;
    /* a hair of slack so that 8 x 10 ms / 20 ms is 4, not 5 */
    double n = ceil(need - 1e-9 * (need > 1 ? need : 1));
    if (n < 1)
        n = 1;
    if (cpus > 0 && n > (double)cpus)
        n = (double)cpus;
    if (n > 1e6)
        n = 1e6;
    return (uint32_t)n;
}

/* What "vectorize it" advice becomes for a site that waits: -1 CPU share
 * (not measured) or >= CP_RULE_WAIT_CPU_SHARE computes; below, it waits. */
static int waits_not_computes(const cp_model *m, uint32_t site, double *cpu) {
    *cpu = cp_rule_cpu_share(m, site);
    return *cpu >= 0 && *cpu < CP_RULE_WAIT_CPU_SHARE;
}

/* "decode takes 72% of item time (avg 7.20 ms per call): decode once
 * offline and cache decoded frames" for the stage with the largest share,
 * or a generic hint without stages. */
static void stage_hint(const cp_model *m, char *buf, size_t n) {
    const cp_mdata *d = &m->data;
    if (!d->nstages || !d->stages[0].calls || !d->item_ns_total) {
        snprintf(buf, n,
                 "profile the item's stages (profile_preprocessing / profile_augmentation) to "
                 "see what an item costs, and cache decoded items");
        return;
    }
    const cp_mstage *st = &d->stages[0]; /* sorted by sum_ns: largest share */
    const char *name = name_of(m, st->site);
    unsigned kind = kind_of(m, st->site);
    char avg[32];
    double cpu;
    secs(ns_s(st->sum_ns) / (double)st->calls, avg, sizeof avg);
    const char *fix;
    if (is_decode_name(name))
        fix = "decode once offline / cache decoded frames (store tensors and load those)";
    else if (waits_not_computes(m, st->site, &cpu))
        fix = "it waits rather than computes: remove or overlap the wait (cache or prefetch "
              "its input)";
    else if (kind == CODEPROF_SITE_AUGMENT)
        fix = "use cheaper augmentations or apply them on the GPU to whole batches";
    else if (kind == CODEPROF_SITE_PREPROCESS)
        fix = "precompute it offline, vectorize it or move it to the GPU on whole batches";
    else
        fix = "cache its results or vectorize it";
    snprintf(buf, n, "%s takes %.0f%% of item time (avg %s per call): %s", name,
             100.0 * st->share_of_item_time, avg, fix);
}

/* ------------------------------------------------------------------------ */
/* CP-DATA-001 data stall                                                    */
/* ------------------------------------------------------------------------ */

int cp_rule_data_stall(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    double thr = m->cfg.data_stall_fraction;
    dctx c = context(m);
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        if (!judged(L) || !(L->stall_fraction > thr))
            continue;
        const char *name = name_of(m, L->site);
        double t_step = L->steps ? ns_s(L->step_ns) / (double)L->steps : 0;
        double t_wait = ns_s(steady_wait_ns(L)) / (double)steady_batches(L);
        double B = L->desc.described && L->desc.batch_size > 0 ? (double)L->desc.batch_size
                   : L->items ? (double)L->items / (double)L->batches
                              : 0;
        int known_w = L->desc.described && L->desc.num_workers >= 0;
        uint32_t W = known_w ? (uint32_t)L->desc.num_workers : 0;
        uint32_t C = d->cpu_count;
        uint32_t N = cp_data_needed_workers(B, c.t_item, t_step, C);
        uint32_t N_uncapped = cp_data_needed_workers(B, c.t_item, t_step, 0);
        /* Loading a batch is a real share of a step when, done in the loop,
         * it would stall the loop beyond the threshold itself. */
        double loading = B * c.t_item;
        int loading_real = N && loading / (loading + t_step) > thr;

        char vw[32], vs[32], vi[32], vl[32], hint[320];
        msg head = {"", 0}, tail = {"", 0};
        mcat(&head,
             "the training loop waits for data from %s %.0f%% of its time (avg wait %s per "
             "batch vs %s of compute per step, %llu batches; each epoch's first batch, "
             "start-up, left out)",
             name, 100.0 * L->stall_fraction, secs(t_wait, vw, sizeof vw),
             secs(t_step, vs, sizeof vs), (unsigned long long)L->batches);
        stage_hint(m, hint, sizeof hint);
        if (!N) {
            /* per-item cost or step time unknown */
            if (known_w)
                mcat(&tail, "raise num_workers (now %u, this machine has %u CPUs) or make items "
                            "cheaper; wrap the dataset with profile_dataset() to measure what "
                            "an item costs",
                     W, C);
            else
                mcat(&tail, "use DataLoader worker processes (num_workers > 0) or make items "
                            "cheaper; wrap the dataset with profile_dataset() to measure what "
                            "an item costs");
        } else if (!loading_real) {
            mcat(&tail,
                 "item loading does not explain the waits (%.0f items x %s = %s of loading per "
                 "%s step), so more workers would not help: look at what else next() does "
                 "(collate_fn, pin_memory, sending large batches from the workers: return "
                 "smaller or uint8 tensors)",
                 B, secs(c.t_item, vi, sizeof vi), secs(loading, vl, sizeof vl), vs);
        } else if (!known_w || (W < N && W < C)) {
            mcat(&tail, "raise num_workers ");
            if (known_w)
                mcat(&tail, "from %u ", W);
            mcat(&tail,
                 "to %u (%.0f items x %s per batch = %s of loading per %s step; this machine "
                 "has %u CPUs)",
                 N, B, secs(c.t_item, vi, sizeof vi), secs(loading, vl, sizeof vl), vs, C);
            if (N_uncapped > N)
                mcat(&tail, "; even %u workers cannot keep up (%u needed): also %s", N,
                     N_uncapped, hint);
        } else {
            mcat(&tail,
                 "adding workers cannot help (num_workers=%u, %u needed for %.0f items x %s "
                 "per %s step, %u CPUs): make items cheaper: %s",
                 W, N_uncapped, B, secs(c.t_item, vi, sizeof vi), vs, C, hint);
        }
        /* saving: the steady waits that overlapping loading would hide, less
         * the outliers' share (CP-DATA-002's) */
        double saving = ns_s(steady_wait_ns(L)) * (1.0 - c.outlier_part);
        if (cp_rule_add(m, info, name, L->stall_fraction, thr, "fraction",
                        at_least(L->stall_fraction * 10.0), saving, "%s: %s.", head.s,
                        tail.s) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-DATA-002 slow / outlier indices                                        */
/* ------------------------------------------------------------------------ */

int cp_rule_data_outliers(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    double slow = m->cfg.slow_data_loading_s;
    dctx c = context(m);
    for (uint32_t i = 0; i < d->ndatasets; i++) {
        const cp_mdataset *ds = &d->datasets[i];
        outl o = outliers_of(m, ds);
        if (!o.fires)
            continue;
        const char *name = name_of(m, ds->site);

        char v[32], med[32];
        msg list = {"", 0};
        uint32_t shown = ds->nbottlenecks < 5 ? ds->nbottlenecks : 5;
        for (uint32_t k = 0; k < shown; k++) {
            mcat(&list, "%sindex %lld (%s", k ? ", " : "", (long long)ds->bottleneck_indices[k],
                 secs(ns_s(ds->bottleneck_ns[k]), v, sizeof v));
            if (ds->p50_ns)
                mcat(&list, ", %.0fx the median",
                     (double)ds->bottleneck_ns[k] / (double)ds->p50_ns);
            mcat(&list, ")");
        }
        char more[48] = "";
        if (ds->nbottlenecks > shown)
            snprintf(more, sizeof more, " and %u more", ds->nbottlenecks - shown);
        const char *fix =
            ds->repeat_slow
                ? "indices slow in more than one epoch are expensive in themselves: cache "
                  "them after the first load (or re-encode those clips: lower resolution, "
                  "shorter GOP)"
                : "each was slow in one epoch only, which points at storage (cold cache, "
                  "network file system): prefetch or cache the files locally";
        char repeat[64] = "";
        if (ds->repeat_slow)
            snprintf(repeat, sizeof repeat, "; %u of them slow in 2 or more epochs",
                     ds->repeat_slow);
        /* saving: their time above the median, at most the part of the
         * loop's waits that is theirs (their share of item time) */
        double saving = o.excess_s;
        if (c.have_loader && d->item_ns_total) {
            double part = c.wait_s * o.excess_s / ns_s(d->item_ns_total);
            if (part < saving)
                saving = part;
        }
        int rc = cp_rule_add(
            m, info, name, o.by_share ? o.share : ns_s(ds->max_ns),
            o.by_share ? OUTLIER_SHARE : slow, o.by_share ? "fraction" : "s",
            at_least(o.share * 10.0), saving,
            "%s has %u outlier item%s costing %.0f%% of its item time (median load %s"
            "%s): %s%s; %s.",
            name, ds->nbottlenecks, ds->nbottlenecks == 1 ? "" : "s", 100.0 * o.share,
            secs(ns_s(ds->p50_ns), med, sizeof med), repeat, list.s, more, fix);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-DATA-003 decode/read dominates, CP-DATA-004 slow stage                 */
/* ------------------------------------------------------------------------ */

/* 1 if CP-DATA-003 fires for stage `st` (CP-DATA-004 then leaves it). */
static int decode_fires(const cp_model *m, const cp_mstage *st, const dctx *c) {
    return (c->data_bound || !c->have_loader) && st->calls &&
           st->share_of_item_time > STAGE_DOMINANT_SHARE && is_decode_name(name_of(m, st->site));
}

static void stall_clause(const dctx *c, char *buf, size_t n) {
    if (c->have_judged)
        snprintf(buf, n, ", and the training loop waits for data %.0f%% of its time",
                 100.0 * c->worst_stall);
    else
        buf[0] = '\0';
}

int cp_rule_data_decode(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    dctx c = context(m);
    for (uint32_t i = 0; i < d->nstages; i++) {
        const cp_mstage *st = &d->stages[i];
        if (!decode_fires(m, st, &c))
            continue;
        const char *name = name_of(m, st->site);
        char avg[32], sc[96];
        secs(ns_s(st->sum_ns) / (double)st->calls, avg, sizeof avg);
        stall_clause(&c, sc, sizeof sc);
        if (cp_rule_add(m, info, name, st->share_of_item_time, STAGE_DOMINANT_SHARE, "fraction",
                        at_least(st->share_of_item_time * 10.0 * stall_mult(&c)),
                        stage_saving(&c, st),
                        "%s takes %.0f%% of item time (avg %s per call, %llu calls)%s: decode "
                        "once offline and store the frames/tensors (a PreprocessedDataset that "
                        "loads saved tensors), or cache decoded clips, so items only read ready "
                        "tensors.",
                        name, 100.0 * st->share_of_item_time, avg, (unsigned long long)st->calls,
                        sc) != 0)
            return -1;
    }
    return 0;
}

int cp_rule_data_slow_stage(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    double thr = m->cfg.slow_preprocessing_s;
    dctx c = context(m);
    for (uint32_t i = 0; i < d->nstages; i++) {
        const cp_mstage *st = &d->stages[i];
        unsigned kind = kind_of(m, st->site);
        if (!st->calls || (kind != CODEPROF_SITE_PREPROCESS && kind != CODEPROF_SITE_AUGMENT))
            continue;
        double avg = ns_s(st->sum_ns) / (double)st->calls;
        int in_items = d->item_ns_total > 0; /* called inside profiled item loads */
        int by_time = avg > thr;
        int by_share = in_items && st->share_of_item_time > STAGE_DOMINANT_SHARE && c.data_bound;
        if ((!by_time && !by_share) || decode_fires(m, st, &c))
            continue;
        const char *name = name_of(m, st->site);
        char vavg[32], vthr[32], sc[96], over[64] = "", share[48] = "";
        secs(avg, vavg, sizeof vavg);
        stall_clause(&c, sc, sizeof sc);
        if (by_time)
            snprintf(over, sizeof over, ", above the %s threshold", secs(thr, vthr, sizeof vthr));
        if (in_items)
            snprintf(share, sizeof share, ", %.0f%% of item time",
                     100.0 * st->share_of_item_time);
        double cpu;
        char fixbuf[200];
        const char *fix;
        if (waits_not_computes(m, st->site, &cpu)) {
            snprintf(fixbuf, sizeof fixbuf,
                     "it waits (I/O, sleep, a lock) rather than computes (on a CPU %.0f%% of "
                     "its time), so vectorizing would not help: remove the wait or overlap it "
                     "(prefetch or cache its input, read asynchronously)",
                     100.0 * cpu);
            fix = fixbuf;
        } else if (kind == CODEPROF_SITE_AUGMENT) {
            fix = "use a cheaper augmentation, or apply it on the GPU to whole batches";
        } else {
            fix = "vectorize it (NumPy/torch operations on whole frames), resize before the "
                  "heavy work, or move it to the GPU on whole batches";
        }
        if (cp_rule_add(m, info, name, by_time ? avg : st->share_of_item_time,
                        by_time ? thr : STAGE_DOMINANT_SHARE, by_time ? "s" : "fraction",
                        at_least(st->share_of_item_time * 10.0 * stall_mult(&c)),
                        in_items ? stage_saving(&c, st) : ns_s(st->sum_ns),
                        "%s (%s) takes avg %s per call%s (%llu calls)%s%s: %s.", name,
                        kind == CODEPROF_SITE_AUGMENT ? "augmentation" : "preprocessing", vavg,
                        over, (unsigned long long)st->calls, share, in_items ? sc : "",
                        fix) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-DATA-005 first-batch latency, CP-DATA-006 bursty waits                  */
/* ------------------------------------------------------------------------ */

int cp_rule_data_worker_startup(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        /* persistent workers help only where workers are started again each
         * epoch; a start-up paid once (one epoch, persistent workers) or an
         * in-loop loader has no such fix */
        if (L->epochs < 2 || !L->desc.described || L->desc.persistent_workers ||
            L->desc.num_workers <= 0 || !(L->wait_ns + L->step_ns) || !steady_batches(L))
            continue;
        /* start-up: what the first waits take beyond a steady wait each */
        double steady = ns_s(steady_wait_ns(L)) / (double)steady_batches(L);
        double excess = ns_s(L->first_wait_ns) - steady * (double)L->epochs;
        if (excess < 0)
            excess = 0;
        double share = excess / ns_s(L->wait_ns + L->step_ns);
        if (!(share > STARTUP_SHARE))
            continue;
        const char *name = name_of(m, L->site);
        char per[32], saved[32], st[32];
        double per_epoch = excess / (double)L->epochs;
        double saving = per_epoch * (double)(L->epochs - 1);
        secs(saving, saved, sizeof saved);
        if (cp_rule_add(m, info, name, share, STARTUP_SHARE, "fraction", at_least(share * 10.0),
                        saving,
                        "set persistent_workers=True on %s: the first batch of each epoch "
                        "waits %s longer than a steady one (%s): worker start-up costs %.0f%% "
                        "of loader time over %llu epochs with num_workers=%d; persistent "
                        "workers start once, saving about %s (more workers would not shorten "
                        "a start-up).",
                        name, secs(per_epoch, per, sizeof per), secs(steady, st, sizeof st),
                        100.0 * share, (unsigned long long)L->epochs, (int)L->desc.num_workers,
                        saved) != 0)
            return -1;
    }
    return 0;
}

int cp_rule_data_bursty(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    double thr = m->cfg.data_stall_fraction;
    dctx c = context(m);
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        if (!judged(L) || !(L->stall_fraction > thr) || !L->desc.described ||
            L->desc.num_workers <= 0 || !L->steps)
            continue;
        double p50 = ns_s(L->wait_p50_ns), p95 = ns_s(L->wait_p95_ns);
        double t_step = ns_s(L->step_ns) / (double)L->steps;
        /* most batches are ready (median wait under a tenth of a step), yet
         * the tail waits long: workers deliver in bursts */
        if (!(p50 < 0.1 * t_step) || !(p95 > BURST_RATIO * p50))
            continue;
        const char *name = name_of(m, L->site);
        int P = L->desc.prefetch_factor > 0 ? L->desc.prefetch_factor : 2;
        char v50[32], v95[32], vst[32];
        /* saving: the steady waits beyond the median one */
        double saving = ns_s(steady_wait_ns(L)) - p50 * (double)steady_batches(L);
        saving *= 1.0 - c.outlier_part;
        if (cp_rule_add(m, info, name, p95, BURST_RATIO * p50, "s",
                        at_least(L->stall_fraction * 5.0), saving,
                        "%s delivers batches in bursts: median wait %s but p95 %s (step %s, "
                        "loop waits %.0f%% of its time, num_workers=%d): raise prefetch_factor "
                        "from %d to %d so every worker keeps more batches ready.",
                        name, secs(p50, v50, sizeof v50), secs(p95, v95, sizeof v95),
                        secs(t_step, vst, sizeof vst), 100.0 * L->stall_fraction,
                        (int)L->desc.num_workers, P, 2 * P) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-DATA-007 pin_memory, CP-DATA-008 failures                              */
/* ------------------------------------------------------------------------ */

int cp_rule_data_pin_memory(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        if (!L->batches || !L->desc.described || !L->desc.uses_gpu || L->desc.pin_memory)
            continue;
        const char *name = name_of(m, L->site);
        /* saving unknown (the copies are not timed): 0 */
        if (cp_rule_add(m, info, name, 0.0, 1.0, "flag", MIN_SEVERITY, 0.0,
                        "set pin_memory=True on %s: its %llu batches are copied to the GPU from "
                        "pageable memory; pinned memory makes the copies faster and lets them "
                        "overlap compute (.to(device, non_blocking=True)).",
                        name, (unsigned long long)L->batches) != 0)
            return -1;
    }
    return 0;
}

int cp_rule_data_failures(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    for (uint32_t i = 0; i < d->ndatasets; i++) {
        const cp_mdataset *ds = &d->datasets[i];
        if (!ds->failures)
            continue;
        const char *name = name_of(m, ds->site);
        double pct = ds->items ? 100.0 * (double)ds->failures / (double)ds->items : 0;
        /* a correctness problem, not a time one: saving 0 */
        if (cp_rule_add(m, info, name, (double)ds->failures, 0.0, "items", MIN_SEVERITY, 0.0,
                        "%llu of %llu item loads of %s raised (%.1f%%): fix or filter the "
                        "broken items (a corrupt clip fails again every epoch); failed loads "
                        "are included in the load-time statistics.",
                        (unsigned long long)ds->failures, (unsigned long long)ds->items, name,
                        pct) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-DATA-009 copy-on-write growth of DataLoader workers                    */
/* ------------------------------------------------------------------------ */

#define COW_MIN_GROWTH (64.0 * 1024 * 1024) /* bytes of USS growth per worker  */
#define COW_MIN_RATIO 0.10                  /* and this share of its first USS */
#define COW_MIN_OBJECTS 10000               /* Python objects in containers    */

static const cp_mds_note *note_of(const cp_model *m, uint32_t loader) {
    for (uint32_t i = 0; i < m->mem.ndsnotes; i++)
        if (m->mem.dsnotes[i].loader == loader)
            return &m->mem.dsnotes[i];
    return NULL;
}

/* USS growth of a sampled worker (0 when it did not grow or has one reading). */
static double uss_growth(const cp_mproc *p) {
    if (p->nsamples < 2 || p->uss_last <= p->uss_first)
        return 0;
    return (double)(p->uss_last - p->uss_first);
}

static int cow_grows(const cp_mproc *p) {
    double g = uss_growth(p);
    return g >= COW_MIN_GROWTH && g >= COW_MIN_RATIO * (double)p->uss_first;
}

int cp_rule_data_cow(cp_model *m, const cp_rule_info *info) {
    const cp_mmem *mm = &m->mem;
    for (uint32_t n = 0; n < mm->ndsnotes; n++) {
        const cp_mds_note *note = &mm->dsnotes[n];
        if (note->py_objects < COW_MIN_OBJECTS || note_of(m, note->loader) != note)
            continue;
        /* the loader's workers whose private memory grew */
        uint32_t nworkers = 0, ngrew = 0;
        double max_growth = 0, sum_growth = 0;
        msg per;
        memset(&per, 0, sizeof per);
        for (uint32_t i = 0; i < mm->nprocs; i++) {
            const cp_mproc *p = &mm->procs[i];
            if (p->worker < 0 || p->loader != note->loader || p->nsamples < 2)
                continue;
            nworkers++;
            if (!cow_grows(p))
                continue;
            double g = uss_growth(p);
            ngrew++;
            sum_growth += g;
            if (g > max_growth)
                max_growth = g;
            if (ngrew <= 4) {
                mcat(&per, "%sworker %d %.0f -> %.0f MiB", ngrew > 1 ? ", " : "", (int)p->worker,
                     cp_rule_mib((double)p->uss_first), cp_rule_mib((double)p->uss_last));
                if (p->items)
                    mcat(&per, " (%.1f KiB per item)", g / 1024.0 / (double)p->items);
            }
        }
        if (!ngrew)
            continue;
        if (ngrew > 4)
            mcat(&per, ", ...");
        const char *loader = name_of(m, note->loader);
        const char *dataset = note->dataset ? name_of(m, note->dataset) : "its dataset";
        /* a memory problem, not a time one: saving 0; severity grows with
         * the share of the machine the copies take */
        double sev = MIN_SEVERITY;
        if (mm->machine_bytes)
            sev = at_least(10.0 * sum_growth / (double)mm->machine_bytes);
        char subject[256];
        snprintf(subject, sizeof subject, "%s", loader);
        if (cp_rule_add(m, info, subject, max_growth, COW_MIN_GROWTH, "bytes", sev, 0.0,
                        "%u of %u workers of %s grew their private memory (USS) while reading "
                        "%s [%.160s]: %s. Reading a Python object writes its reference count, "
                        "so each worker copies the pages of the parent's objects it touches "
                        "(copy-on-write): up to one copy of the dataset per worker. Keep the "
                        "data in numpy arrays or shared memory (torch tensors, np.frombuffer "
                        "over an mmap, Arrow) instead of lists of Python objects.",
                        ngrew, nworkers, loader, dataset, note->text, per.s) != 0)
            return -1;
    }
    return 0;
}
