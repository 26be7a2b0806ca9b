/* rules_gpu.c -- the GPU rules CP-GPU-001..005 (rules_gpu.h). */
#include "analysis/rules_gpu.h"

#include <stdio.h>
#include <string.h>

#include "analysis/rule_util.h"
#include "report/report_gpu.h"

#define MIB (1024.0 * 1024.0)

static const char *site_name(const cp_model *m, uint32_t site) {
    const cp_msite *si = cp_model_site(m, site);
    return si ? si->name : "?";
}

static double ns_s(uint64_t ns) { return (double)ns / 1e9; }

static const char *plural(uint64_t n) { return n == 1 ? "" : "s"; }

/* ------------------------------------------------------------------------ */
/* CP-GPU-001 slow GPU operation                                             */
/* ------------------------------------------------------------------------ */

int cp_rule_gpu_slow(cp_model *m, const cp_rule_info *r) {
    const cp_mgpu *g = &m->gpu;
    double thr = m->cfg.slow_gpu_op_s;
    for (uint32_t i = 0; i < g->nops; i++) {
        const cp_mgpu_op *o = &g->ops[i];
        if (!o->calls)
            continue;
        int timed = o->timed > 0;
        double vmax = ns_s(timed ? o->device_max_ns : o->host_max_ns);
        if (!(vmax > thr))
            continue;
        uint64_t n = timed ? o->timed : o->calls;
        double total = ns_s(cp_report_gpu_op_total_ns(o));
        double avg = total / (double)n;
        /* saving: the kept slow operations of this site, at least the longest */
        double saving = 0;
        uint32_t ns = g->nslow < CP_GPU_MAX_SLOW ? g->nslow : CP_GPU_MAX_SLOW;
        for (uint32_t k = 0; k < ns; k++)
            if (g->slow[k].site == o->site)
                saving += ns_s(cp_report_gpu_span_ns(&g->slow[k]));
        if (saving < vmax)
            saving = vmax;
        const char *name = site_name(m, o->site);
        char smax[32], savg[32], stot[32], sthr[32], srest[32];
        cp_rule_secs(vmax, smax, sizeof smax);
        cp_rule_secs(avg, savg, sizeof savg);
        cp_rule_secs(total, stot, sizeof stot);
        cp_rule_secs(thr, sthr, sizeof sthr);
        const char *what = timed ? "on the GPU"
                                 : "on the host (device time not measured: see the gpu "
                                   "section's reason; host time includes launching and any "
                                   "wait for the GPU)";
        /* one outlier: the others average below a tenth of it */
        double rest = n > 1 ? (total - vmax) / (double)(n - 1) : 0;
        cp_rule_secs(rest, srest, sizeof srest);
        int rc;
        if (n > 1 && o->slow <= 1 && rest < vmax / 10.0) {
            rc = cp_rule_add(m, r, name, vmax, thr, "s", vmax / thr, saving,
                             "GPU operation %s took %s %s once, while its other %llu call%s "
                             "average %s (%llu calls, %s in total; threshold %s): a one-off "
                             "cost such as lazy CUDA initialization, cuDNN autotuning "
                             "(torch.backends.cudnn.benchmark) or the caching allocator "
                             "growing; run a warm-up step before the timed loop.",
                             name, smax, what, (unsigned long long)(n - 1), plural(n - 1), srest,
                             (unsigned long long)o->calls, stot, sthr);
        } else {
            rc = cp_rule_add(m, r, name, vmax, thr, "s", vmax / thr, saving,
                             "GPU operation %s took up to %s %s (%llu of %llu call%s above the "
                             "%s threshold; avg %s, %s in total): reduce the work per call: "
                             "mixed precision (torch.autocast), smaller inputs or batches per "
                             "call, fused operations (torch.compile), channels_last for "
                             "convolutions; torch.profiler shows which kernels inside it "
                             "dominate.",
                             name, smax, what, (unsigned long long)o->slow,
                             (unsigned long long)o->calls, plural(o->calls), sthr, savg, stot);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* data evidence (CP-GPU-002 / 005)                                          */
/* ------------------------------------------------------------------------ */

/* The stalling loader: the one named by a CP-DATA-001 finding with the
 * largest stall (*finding = 1), else a loader with >= 3 batches whose
 * stall fraction is above cfg.data_stall_fraction (the largest).  NULL:
 * no data evidence. */
static const cp_mloader *stalling_loader(const cp_model *m, int *finding) {
    const cp_mloader *best = NULL;
    *finding = 0;
    for (uint32_t i = 0; i < m->nfindings; i++) {
        const cp_finding *f = &m->findings[i];
        if (strcmp(f->rule, "CP-DATA-001") != 0)
            continue;
        for (uint32_t k = 0; k < m->data.nloaders; k++) {
            const cp_mloader *L = &m->data.loaders[k];
            if (strcmp(site_name(m, L->site), f->subject) == 0 &&
                (!best || L->stall_fraction > best->stall_fraction)) {
                best = L;
                *finding = 1;
            }
        }
    }
    if (best)
        return best;
    for (uint32_t k = 0; k < m->data.nloaders; k++) {
        const cp_mloader *L = &m->data.loaders[k];
        if (L->batches >= 3 && L->stall_fraction > m->cfg.data_stall_fraction &&
            (!best || L->stall_fraction > best->stall_fraction))
            best = L;
    }
    return best;
}

/* A device whose utilization can be judged. */
static int judged(const cp_mgpu_device *d) {
    return d->samples >= CP_GPU_MIN_UTIL_SAMPLES && d->util_max > 0;
}

static void dev_subject(const cp_mgpu_device *d, char *buf, size_t n) {
    char name[sizeof d->name + 1];
    memcpy(name, d->name, sizeof d->name);
    name[sizeof d->name] = '\0';
    if (name[0])
        snprintf(buf, n, "GPU %d (%s)", (int)d->index, name);
    else
        snprintf(buf, n, "GPU %d", (int)d->index);
}

/* ------------------------------------------------------------------------ */
/* CP-GPU-002 data-bound GPU                                                 */
/* ------------------------------------------------------------------------ */

int cp_rule_gpu_data_bound(cp_model *m, const cp_rule_info *r) {
    int finding = 0;
    const cp_mloader *L = stalling_loader(m, &finding);
    if (!L)
        return 0; /* never without the data evidence */
    const char *loader = site_name(m, L->site);
    for (uint32_t i = 0; i < m->gpu.ndevices; i++) {
        const cp_mgpu_device *d = &m->gpu.devices[i];
        if (!judged(d) || !(d->util_mean < CP_GPU_DATA_BOUND_UTIL))
            continue;
        char subj[160];
        dev_subject(d, subj, sizeof subj);
        double sev = L->stall_fraction * 10.0;
        if (cp_rule_add(m, r, subj, d->util_mean, CP_GPU_DATA_BOUND_UTIL, "percent",
                        sev > 1.01 ? sev : 1.01, 0.0,
                        "%s was busy %.0f%% of the time on average (max %.0f%%, %llu NVML "
                        "samples, %llu at 0%%) while the training loop waited for data from %s "
                        "%.0f%% of its time: the run is data-bound, so a faster model or a "
                        "larger GPU would not help; feed the GPU faster first%s%s%s.",
                        subj, d->util_mean, d->util_max, (unsigned long long)d->samples,
                        (unsigned long long)d->idle_samples, loader,
                        100.0 * L->stall_fraction,
                        finding ? " (see the CP-DATA-001 finding for " : "",
                        finding ? loader : " (more DataLoader workers, cheaper items)",
                        finding ? ": what to change in data loading)" : "") != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-GPU-003 frequent host syncs                                            */
/* ------------------------------------------------------------------------ */

static const char *sync_advice(unsigned kind) {
    switch (kind) {
    case CP_GPU_SYNC_MEMCPY:
        return "a blocking device-to-host copy (.item(), .cpu(), .numpy(), .tolist(), printing "
               "a CUDA tensor): keep running values on the GPU (accumulate loss.detach()) and "
               "read them once every N steps, or copy with non_blocking=True into pinned memory";
    case CP_GPU_SYNC_DEVICE:
        return "torch.cuda.synchronize() (or cudaDeviceSynchronize): remove it from the loop; "
               "time GPU work with CUDA events (profile_cuda_operation) instead";
    case CP_GPU_SYNC_STREAM:
        return "a stream synchronize: make the consumer stream wait on the GPU "
               "(torch.cuda.current_stream().wait_stream(s)) instead of blocking the host";
    case CP_GPU_SYNC_EVENT:
        return "an event synchronize: use stream.wait_event(e) so the GPU waits, not the host";
    default:
        return "a host synchronization: remove .item()/.cpu()/synchronize from the loop";
    }
}

int cp_rule_gpu_sync(cp_model *m, const cp_rule_info *r) {
    const cp_mgpu *g = &m->gpu;
    double run = ns_s(m->duration_ns);
    if (!(run > 0))
        return 0;
    for (uint32_t i = 0; i < g->nsyncs; i++) {
        const cp_mgpu_sync *y = &g->syncs[i];
        double blocked = ns_s(y->blocked_ns), share = blocked / run;
        int by_count = y->count >= CP_GPU_SYNC_MIN_COUNT && share >= CP_GPU_SYNC_COUNT_SHARE;
        if (!by_count && !(share >= CP_GPU_SYNC_SHARE))
            continue;
        const cp_msite *si = y->site ? cp_model_site(m, y->site) : NULL;
        char where[320], sb[32], sper[32];
        if (si && si->file[0])
            snprintf(where, sizeof where, "%s:%u (%s)", si->file, y->line, si->name);
        else
            snprintf(where, sizeof where, "%s", si ? si->name : "an unknown line");
        cp_rule_secs(blocked, sb, sizeof sb);
        cp_rule_secs(blocked / (double)(y->count ? y->count : 1), sper, sizeof sper);
        double thr = by_count ? CP_GPU_SYNC_COUNT_SHARE * run : CP_GPU_SYNC_SHARE * run;
        if (cp_rule_add(m, r, where, blocked, thr, "s", blocked / thr, blocked,
                        "%s blocked the host on the GPU %llu time%s for %s in all (%.1f%% of the "
                        "%.2f s run, %s per sync, kind %s): it is %s.",
                        where, (unsigned long long)y->count, plural(y->count), sb, 100.0 * share,
                        run, sper, cp_report_gpu_sync_kind_name(y->kind),
                        sync_advice(y->kind)) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CP-GPU-004 GPU memory pressure                                            */
/* ------------------------------------------------------------------------ */

int cp_rule_gpu_memory(cp_model *m, const cp_rule_info *r) {
    const cp_mgpu *g = &m->gpu;
    uint64_t peak = 0;
    for (uint32_t i = 0; i < g->nops; i++)
        if (g->ops[i].mem_count && g->ops[i].mem_peak > peak)
            peak = g->ops[i].mem_peak;
    double best = 0, used = 0, total = 0;
    char subj[160] = "GPU memory";
    const char *src = "";
    if (g->device_mem_total && peak) {
        best = (double)peak / (double)g->device_mem_total;
        used = (double)peak;
        total = (double)g->device_mem_total;
        src = cp_report_gpu_mem_source(g) == CP_GPU_MEM_TORCH ? "torch's peak allocated memory"
                                                               : "peak memory in use (driver)";
    }
    for (uint32_t i = 0; i < g->ndevices; i++) {
        const cp_mgpu_device *d = &g->devices[i];
        if (!d->mem_total || !d->samples)
            continue;
        double s = (double)d->mem_used_max / (double)d->mem_total;
        if (s > best) {
            best = s;
            used = (double)d->mem_used_max;
            total = (double)d->mem_total;
            src = "NVML's largest memory used (all processes on the device)";
            dev_subject(d, subj, sizeof subj);
        }
    }
    if (!(best > CP_GPU_MEM_SHARE))
        return 0;
    return cp_rule_add(m, r, subj, best, CP_GPU_MEM_SHARE, "fraction", best / CP_GPU_MEM_SHARE, 0.0,
                       "%s reached %.0f%% of the device's memory (%.1f of %.1f MiB, %s): the "
                       "next larger input risks an out-of-memory error and the caching "
                       "allocator is retrying. Lower the peak: gradient checkpointing "
                       "(torch.utils.checkpoint) for training, mixed precision "
                       "(torch.autocast, bfloat16/float16 halves activations), a smaller batch "
                       "size, and free references to tensors you no longer need.",
                       subj, 100.0 * best, used / MIB, total / MIB, src);
}

/* ------------------------------------------------------------------------ */
/* CP-GPU-005 low utilization, low memory: larger batch                       */
/* ------------------------------------------------------------------------ */

int cp_rule_gpu_batch(cp_model *m, const cp_rule_info *r) {
    int finding = 0;
    if (stalling_loader(m, &finding))
        return 0; /* data-bound: CP-GPU-002's case, a larger batch would not help */
    for (uint32_t i = 0; i < m->gpu.ndevices; i++) {
        const cp_mgpu_device *d = &m->gpu.devices[i];
        if (!judged(d) || !d->mem_total || !(d->util_mean < CP_GPU_LOW_UTIL))
            continue;
        double share = (double)d->mem_used_max / (double)d->mem_total;
        if (!(share < CP_GPU_LOW_MEM_SHARE))
            continue;
        char subj[160];
        dev_subject(d, subj, sizeof subj);
        if (cp_rule_add(m, r, subj, d->util_mean, CP_GPU_LOW_UTIL, "percent",
                        CP_GPU_LOW_UTIL / (d->util_mean > 1.0 ? d->util_mean : 1.0), 0.0,
                        "%s was busy only %.0f%% of the time on average (max %.0f%%, %llu NVML "
                        "samples) and used at most %.1f of %.1f MiB (%.0f%%), with no data "
                        "stall measured: the GPU gets too little work per launch. Raise the "
                        "batch size (the memory allows up to about %.1fx the peak; scale the "
                        "learning rate with it) or run several inputs per step.",
                        subj, d->util_mean, d->util_max, (unsigned long long)d->samples,
                        (double)d->mem_used_max / MIB, (double)d->mem_total / MIB, 100.0 * share,
                        d->mem_used_max ? 0.9 * (double)d->mem_total / (double)d->mem_used_max
                                        : 2.0) != 0)
            return -1;
    }
    return 0;
}
