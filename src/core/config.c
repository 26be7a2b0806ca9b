/* config.c -- codeprof_config defaults and validation. */
#include <stdio.h>
#include <string.h>

#include "codeprof/codeprof.h"
#include "core/errors.h"

void codeprof_config_init(codeprof_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = (uint32_t)sizeof *cfg;
    cfg->flags = CODEPROF_CFG_SCOPE_CPU | CODEPROF_CFG_PERCENTILES;
    cfg->buffer_events = 16384;
    cfg->max_nodes = 1u << 20;
    cfg->max_samples = 10000;
    cfg->slow_function_s = 1.0;
    cfg->memory_intensive_bytes = 100.0 * 1024 * 1024;
    cfg->slow_data_loading_s = 1.0;
    cfg->slow_preprocessing_s = 0.5;
    cfg->slow_gpu_op_s = 0.1;
    cfg->data_stall_fraction = 0.2;
    cfg->max_data_records = 1000000;
    cfg->pool_buffers = 256;
    cfg->max_sites = 1u << 18;
    cfg->sample_budget = 1u << 22;
    cfg->timeline_events = 1u << 18;
    cfg->report_top_functions = 50;
    cfg->report_tree_max_nodes = 2000;
    cfg->report_tree_min_share = 0.001;
    cfg->timeline_traced_events = 1u << 18;
    cfg->memory_mode = 0;
    cfg->memory_stack_depth = 8;
    cfg->memory_sample_bytes = 256u * 1024;
    cfg->memory_max_blocks = 1u << 22;
    cfg->memory_max_stacks = 1u << 16;
    cfg->memory_max_snapshots = 64;
    cfg->memory_timeline_samples = 10000;
    cfg->memory_sample_interval_s = 0;
    cfg->sample_interval_s = 0;
    cfg->sample_mode = 0;
    cfg->sample_max_stacks = 1u << 16;
    cfg->gpu_sample_interval_s = 0;
    cfg->gpu_max_ops = 1u << 16;
}

static codeprof_status check_u32(uint32_t v, uint32_t lo, uint32_t hi, const char *field,
                                 codeprof_error *err) {
    if (v >= lo && v <= hi)
        return CODEPROF_OK;
    return cp_error_set(err, CODEPROF_ECONFIG, field, "%s must be an integer in [%u, %u], got %u",
                        field, lo, hi, v);
}

/* Bounds of the thresholds.  Every value inside them is representable where
 * the core uses it: a time threshold becomes a uint64 count of nanoseconds
 * (1e9 s is 1e18 ns, below 2^63), and at least 1 ns; a byte threshold is
 * compared with RSS deltas as a double and stays an exact integer up to
 * 2^53.  python/code_profiler/config.py mirrors these numbers. */
#define CP_THRESHOLD_S_MIN     1e-9
#define CP_THRESHOLD_S_MAX     1e9
#define CP_THRESHOLD_BYTES_MIN 1.0
#define CP_THRESHOLD_BYTES_MAX 9007199254740992.0 /* 2^53 */

/* lo <= v <= hi, false for NaN (every comparison with NaN is false). */
static codeprof_status check_range(double v, double lo, double hi, const char *unit,
                                   const char *field, codeprof_error *err) {
    if (v >= lo && v <= hi)
        return CODEPROF_OK;
    return cp_error_set(err, CODEPROF_ECONFIG, field,
                        "%s must be a finite number > 0, in [%g, %g] %s, got %g", field, lo, hi,
                        unit, v);
}

static codeprof_status check_seconds(double v, const char *field, codeprof_error *err) {
    return check_range(v, CP_THRESHOLD_S_MIN, CP_THRESHOLD_S_MAX, "seconds", field, err);
}

codeprof_status codeprof_config_validate(const codeprof_config *cfg, codeprof_error *err) {
    codeprof_status st;
    if (!cfg)
        return cp_error_set(err, CODEPROF_EINVAL, "cfg", "config pointer is NULL");
    if (cfg->struct_size != sizeof *cfg)
        return cp_error_set(err, CODEPROF_ECONFIG, "struct_size",
                            "struct_size must be %zu (call codeprof_config_init), got %u",
                            sizeof *cfg, cfg->struct_size);
    if (cfg->flags & ~(uint32_t)(CODEPROF_CFG_SCOPE_CPU | CODEPROF_CFG_PERCENTILES |
                                 CODEPROF_CFG_TIMELINE_TRACED | CODEPROF_CFG_MEM_SNAPSHOTS |
                                 CODEPROF_CFG_GC | CODEPROF_CFG_SAMPLE_NATIVE | CODEPROF_CFG_LINES |
                                 CODEPROF_CFG_GPU | CODEPROF_CFG_GPU_MEMORY |
                                 CODEPROF_CFG_GPU_SYNC))
        return cp_error_set(err, CODEPROF_ECONFIG, "flags", "flags has unknown bits 0x%x",
                            cfg->flags);
    if ((st = check_u32(cfg->buffer_events, 1024, 1u << 24, "buffer_events", err)) ||
        (st = check_u32(cfg->max_nodes, 16, 1u << 26, "max_nodes", err)) ||
        (st = check_u32(cfg->max_samples, 1, 1u << 20, "max_samples", err)) ||
        (st = check_u32(cfg->pool_buffers, 2, 1u << 16, "pool_buffers", err)) ||
        (st = check_u32(cfg->max_sites, 16, (1u << 20) - 16, "max_sites", err)) ||
        (st = check_u32(cfg->sample_budget, 0, 1u << 28, "sample_budget", err)) ||
        (st = check_u32(cfg->timeline_events, 0, 1u << 24, "timeline_events", err)) ||
        (st = check_u32(cfg->timeline_traced_events, 0, 1u << 24, "timeline_traced_events",
                        err)) ||
        (st = check_u32(cfg->report_top_functions, 0, 1u << 24, "report_top_functions", err)) ||
        (st = check_u32(cfg->report_tree_max_nodes, 0, 1u << 26, "report_tree_max_nodes", err)) ||
        (st = check_u32(cfg->memory_mode, 0, 2, "memory_mode", err)) ||
        (st = check_u32(cfg->memory_stack_depth, 1, 16, "memory_stack_depth", err)) ||
        (st = check_u32(cfg->memory_max_blocks, 1024, 1u << 28, "memory_max_blocks", err)) ||
        (st = check_u32(cfg->memory_max_stacks, 16, 1u << 24, "memory_max_stacks", err)) ||
        (st = check_u32(cfg->memory_max_snapshots, 0, 1u << 16, "memory_max_snapshots", err)) ||
        (st = check_u32(cfg->memory_timeline_samples, 0, 1u << 24, "memory_timeline_samples",
                        err)) ||
        (st = check_seconds(cfg->slow_function_s, "slow_function_s", err)) ||
        (st = check_range(cfg->memory_intensive_bytes, CP_THRESHOLD_BYTES_MIN,
                          CP_THRESHOLD_BYTES_MAX, "bytes", "memory_intensive_bytes", err)) ||
        (st = check_seconds(cfg->slow_data_loading_s, "slow_data_loading_s", err)) ||
        (st = check_seconds(cfg->slow_preprocessing_s, "slow_preprocessing_s", err)) ||
        (st = check_seconds(cfg->slow_gpu_op_s, "slow_gpu_op_s", err)))
        return st;
    if (cfg->memory_sample_bytes < 1 || cfg->memory_sample_bytes > (1ull << 40))
        return cp_error_set(err, CODEPROF_ECONFIG, "memory_sample_bytes",
                            "memory_sample_bytes must be an integer in [1, 2^40] bytes, got %llu",
                            (unsigned long long)cfg->memory_sample_bytes);
    if (!(cfg->memory_sample_interval_s == 0 ||
          (cfg->memory_sample_interval_s >= 0.001 && cfg->memory_sample_interval_s <= 3600)))
        return cp_error_set(err, CODEPROF_ECONFIG, "memory_sample_interval_s",
                            "memory_sample_interval_s must be 0 (off) or a number of seconds in "
                            "[0.001, 3600], got %g",
                            cfg->memory_sample_interval_s);
    if (!(cfg->sample_interval_s == 0 ||
          (cfg->sample_interval_s >= 0.001 && cfg->sample_interval_s <= 60)))
        return cp_error_set(err, CODEPROF_ECONFIG, "sample_interval_s",
                            "sample_interval_s must be 0 (off) or a number of seconds in "
                            "[0.001, 60] (the sampler's shortest period is 1 ms), got %g",
                            cfg->sample_interval_s);
    if (!(cfg->gpu_sample_interval_s == 0 ||
          (cfg->gpu_sample_interval_s >= 0.001 && cfg->gpu_sample_interval_s <= 3600)))
        return cp_error_set(err, CODEPROF_ECONFIG, "gpu_sample_interval_s",
                            "gpu_sample_interval_s must be 0 (off) or a number of seconds in "
                            "[0.001, 3600], got %g",
                            cfg->gpu_sample_interval_s);
    if ((st = check_u32(cfg->sample_mode, 0, 1, "sample_mode", err)) ||
        (st = check_u32(cfg->sample_max_stacks, 16, 1u << 24, "sample_max_stacks", err)) ||
        (st = check_u32(cfg->gpu_max_ops, 0, 1u << 24, "gpu_max_ops", err)))
        return st;
    /* Written so that NaN fails too. */
    if (!(cfg->data_stall_fraction > 0 && cfg->data_stall_fraction < 1))
        return cp_error_set(err, CODEPROF_ECONFIG, "data_stall_fraction",
                            "data_stall_fraction must be a number in (0, 1) (exclusive), got %g",
                            cfg->data_stall_fraction);
    if (!(cfg->report_tree_min_share >= 0 && cfg->report_tree_min_share <= 1))
        return cp_error_set(err, CODEPROF_ECONFIG, "report_tree_min_share",
                            "report_tree_min_share must be a number in [0, 1], got %g",
                            cfg->report_tree_min_share);
    if (cfg->max_data_records < 1 || cfg->max_data_records > ((uint64_t)1 << 32))
        return cp_error_set(err, CODEPROF_ECONFIG, "max_data_records",
                            "max_data_records must be an integer in [1, 4294967296], got %llu",
                            (unsigned long long)cfg->max_data_records);
    return CODEPROF_OK;
}
