/* rules_data.c -- the data-loading rules (rules_data.h; listed in rules.h
 * and docs/report-schema.md).  Every rule reads only m->data and m->cfg. */
#include "analysis/rules_data.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
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

static void copy_field(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static double at_least(double sev) { return sev > MIN_SEVERITY ? sev : MIN_SEVERITY; }

static int add(cp_model *m, const cp_rule_info *info, const char *subject, double value,
               double threshold, const char *unit, double severity, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static int add(cp_model *m, const cp_rule_info *info, const char *subject, double value,
               double threshold, const char *unit, double severity, const char *fmt, ...) {
    cp_finding f;
    memset(&f, 0, sizeof f);
    copy_field(f.rule, sizeof f.rule, info->id);
    copy_field(f.category, sizeof f.category, info->category);
    copy_field(f.subject, sizeof f.subject, subject);
    copy_field(f.unit, sizeof f.unit, unit);
    f.value = value;
    f.threshold = threshold;
    f.severity = severity;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f.recommendation, sizeof f.recommendation, fmt, ap);
    va_end(ap);
    return cp_model_add_finding(m, &f);
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

/* Seconds with about three significant digits, in s, ms or us. */
static const char *secs(double s, char *buf, size_t n) {
    double a = s < 0 ? -s : s;
    const char *unit = "s";
    if (a > 0 && a < 1e-3) {
        s *= 1e6;
        a *= 1e6;
        unit = "us";
    } else if (a > 0 && a < 1.0) {
        s *= 1e3;
        a *= 1e3;
        unit = "ms";
    }
    int prec = a >= 100 ? 0 : a >= 10 ? 1 : 2;
    snprintf(buf, n, "%.*f %s", prec, s, unit);
    return buf;
}

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

/* Run-wide facts every rule shares. */
typedef struct dctx {
    uint64_t items;      /* item loads over all datasets */
    double t_item;       /* mean item load time (s); 0 if no items */
    int have_loader;     /* some loader delivered a batch */
    double worst_stall;  /* largest loader stall fraction */
    int data_bound;      /* worst_stall > cfg.data_stall_fraction */
} dctx;

static dctx context(const cp_model *m) {
    dctx c;
    memset(&c, 0, sizeof c);
    const cp_mdata *d = &m->data;
    for (uint32_t i = 0; i < d->ndatasets; i++)
        c.items += d->datasets[i].items;
    if (c.items)
        c.t_item = ns_s(d->item_ns_total) / (double)c.items;
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        if (!L->batches)
            continue;
        c.have_loader = 1;
        if (L->stall_fraction > c.worst_stall)
            c.worst_stall = L->stall_fraction;
    }
    c.data_bound = c.have_loader && c.worst_stall > m->cfg.data_stall_fraction;
    return c;
}

/* The severity multiplier of the stage rules: how much of the loop's time
 * item cost actually reaches (1 without a loader to judge by). */
static double stall_mult(const dctx *c) { return c->have_loader ? c->worst_stall : 1.0; }

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
    secs(ns_s(st->sum_ns) / (double)st->calls, avg, sizeof avg);
    const char *fix;
    if (is_decode_name(name))
        fix = "decode once offline / cache decoded frames (store tensors and load those)";
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
        if (L->batches < MIN_STALL_BATCHES || !(L->stall_fraction > thr))
            continue;
        const char *name = name_of(m, L->site);
        double t_step = L->steps ? ns_s(L->step_ns) / (double)L->steps : 0;
        double t_wait = ns_s(L->wait_ns) / (double)L->batches;
        double B = L->desc.described && L->desc.batch_size > 0 ? (double)L->desc.batch_size
                   : L->items ? (double)L->items / (double)L->batches
                              : 0;
        int known_w = L->desc.described && L->desc.num_workers >= 0;
        uint32_t W = known_w ? (uint32_t)L->desc.num_workers : 0;
        uint32_t C = d->cpu_count;
        uint32_t N = cp_data_needed_workers(B, c.t_item, t_step, C);
        uint32_t N_uncapped = cp_data_needed_workers(B, c.t_item, t_step, 0);

        char vw[32], vs[32], vi[32], vl[32], hint[320];
        msg head = {"", 0}, tail = {"", 0};
        mcat(&head,
             "the training loop waits for data from %s %.0f%% of its time (avg wait %s per "
             "batch vs %s "
             "of compute per step, %llu batches)",
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
        } else if (!known_w || (W < N && W < C)) {
            mcat(&tail, "raise num_workers ");
            if (known_w)
                mcat(&tail, "from %u ", W);
            mcat(&tail,
                 "to %u (%.0f items x %s per batch = %s of loading per %s step; this machine "
                 "has %u CPUs)",
                 N, B, secs(c.t_item, vi, sizeof vi), secs(B * c.t_item, vl, sizeof vl), vs, C);
            if (N_uncapped > N)
                mcat(&tail, "; even %u workers cannot keep up (%u needed): also %s", N,
                     N_uncapped, hint);
        } else {
            mcat(&tail,
                 "adding workers cannot help (num_workers=%u, %u needed for %.0f items x %s "
                 "per %s step, %u CPUs): make items cheaper: %s",
                 W, N_uncapped, B, secs(c.t_item, vi, sizeof vi), vs, C, hint);
        }
        if (add(m, info, name, L->stall_fraction, thr, "fraction",
                at_least(L->stall_fraction * 10.0), "%s: %s.", head.s, tail.s) != 0)
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
        if (!ds->nbottlenecks || !ds->sum_ns)
            continue;
        uint64_t bt = 0;
        for (uint32_t k = 0; k < ds->nbottlenecks; k++)
            bt += ds->bottleneck_ns[k];
        double share = (double)bt / (double)ds->sum_ns;
        int by_share = share > OUTLIER_SHARE;
        int by_slow = ns_s(ds->max_ns) > slow;
        if (!by_share && !by_slow)
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

        double sev = at_least(share * 10.0);
        if (c.data_bound && share < 0.2) {
            double stall_sev = at_least(c.worst_stall * 10.0);
            if (sev >= stall_sev)
                sev = stall_sev * 0.999;
        }
        int rc = add(m, info, name, by_share ? share : ns_s(ds->max_ns),
                     by_share ? OUTLIER_SHARE : slow, by_share ? "fraction" : "s", sev,
                     "%s has %u outlier item%s costing %.0f%% of its item time (median load %s"
                     "%s): %s%s; %s.",
                     name, ds->nbottlenecks, ds->nbottlenecks == 1 ? "" : "s", 100.0 * share,
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
    if (c->have_loader)
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
        if (add(m, info, name, st->share_of_item_time, STAGE_DOMINANT_SHARE, "fraction",
                at_least(st->share_of_item_time * 10.0 * stall_mult(&c)),
                "%s takes %.0f%% of item time (avg %s per call, %llu calls)%s: decode once "
                "offline and store the frames/tensors (a PreprocessedDataset that loads "
                "saved tensors), or cache decoded clips, so items only read ready tensors.",
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
        int by_time = avg > thr;
        int by_share = st->share_of_item_time > STAGE_DOMINANT_SHARE && c.data_bound;
        if ((!by_time && !by_share) || decode_fires(m, st, &c))
            continue;
        const char *name = name_of(m, st->site);
        char vavg[32], vthr[32], sc[96], over[64] = "";
        secs(avg, vavg, sizeof vavg);
        stall_clause(&c, sc, sizeof sc);
        if (by_time)
            snprintf(over, sizeof over, ", above the %s threshold", secs(thr, vthr, sizeof vthr));
        const char *fix =
            kind == CODEPROF_SITE_AUGMENT
                ? "use a cheaper augmentation, or apply it on the GPU to whole batches"
                : "vectorize it (NumPy/torch operations on whole frames), resize before the "
                  "heavy work, or move it to the GPU on whole batches";
        if (add(m, info, name, by_time ? avg : st->share_of_item_time,
                by_time ? thr : STAGE_DOMINANT_SHARE, by_time ? "s" : "fraction",
                at_least(st->share_of_item_time * 10.0 * stall_mult(&c)),
                "%s (%s) takes avg %s per call%s (%llu calls), %.0f%% of item time%s: %s.",
                name, kind == CODEPROF_SITE_AUGMENT ? "augmentation" : "preprocessing", vavg,
                over, (unsigned long long)st->calls, 100.0 * st->share_of_item_time, sc,
                fix) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-DATA-005 worker start-up, CP-DATA-006 bursty waits                      */
/* ------------------------------------------------------------------------ */

int cp_rule_data_worker_startup(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    dctx c = context(m);
    if (!c.data_bound) /* compute-bound: never tune workers */
        return 0;
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        if (L->epochs < 2 || !L->desc.described || L->desc.persistent_workers ||
            L->desc.num_workers <= 0 || !(L->wait_ns + L->step_ns))
            continue;
        double share = (double)L->first_wait_ns / (double)(L->wait_ns + L->step_ns);
        if (!(share > STARTUP_SHARE))
            continue;
        const char *name = name_of(m, L->site);
        char per[32], saved[32];
        double per_epoch = ns_s(L->first_wait_ns) / (double)L->epochs;
        secs(per_epoch * (double)(L->epochs - 1), saved, sizeof saved);
        if (add(m, info, name, share, STARTUP_SHARE, "fraction", at_least(share * 10.0),
                "set persistent_workers=True on %s: worker start-up costs %s per epoch (%.0f%% "
                "of loader time over %llu epochs with num_workers=%d); persistent workers start "
                "once, saving about %s.",
                name, secs(per_epoch, per, sizeof per), 100.0 * share,
                (unsigned long long)L->epochs, (int)L->desc.num_workers, saved) != 0)
            return -1;
    }
    return 0;
}

int cp_rule_data_bursty(cp_model *m, const cp_rule_info *info) {
    const cp_mdata *d = &m->data;
    double thr = m->cfg.data_stall_fraction;
    for (uint32_t i = 0; i < d->nloaders; i++) {
        const cp_mloader *L = &d->loaders[i];
        if (!L->batches || !(L->stall_fraction > thr) || !L->desc.described ||
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
        if (add(m, info, name, p95, BURST_RATIO * p50, "s",
                at_least(L->stall_fraction * 5.0),
                "%s delivers batches in bursts: median wait %s but p95 %s (step %s, loop "
                "waits %.0f%% of its time, num_workers=%d): raise prefetch_factor from %d to "
                "%d so every worker keeps more batches ready.",
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
        if (add(m, info, name, 0.0, 1.0, "flag", MIN_SEVERITY,
                "set pin_memory=True on %s: its %llu batches are copied to the GPU from "
                "pageable memory; pinned memory makes the copies faster and lets them overlap "
                "compute (.to(device, non_blocking=True)).",
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
        if (add(m, info, name, (double)ds->failures, 0.0, "items", MIN_SEVERITY,
                "%llu of %llu item loads of %s raised (%.1f%%): fix or filter the broken "
                "items (a corrupt clip fails again every epoch); failed loads are included in "
                "the load-time statistics.",
                (unsigned long long)ds->failures, (unsigned long long)ds->items, name,
                pct) != 0)
            return -1;
    }
    return 0;
}
