/* rules_data.h -- the data-loading analysis rules (CP-DATA-001..009).
 *
 * Each function reads m->data (and m->cfg thresholds) and appends one
 * finding per subject that fires, with `info`'s id and category (the
 * caller, the rules[] table in rules.c, owns both).  They return 0, or -1
 * on OOM.  `m` and `info` must not be NULL.  Not thread-safe for the same
 * model.  The list of rules, when each fires and its severity is in the
 * header comment of rules.h and in docs/report-schema.md.
 *
 * Shared definitions (all from the model, no live state):
 *   stall(L)     L->stall_fraction of a loader with at least one batch;
 *   data-bound   some loader's stall > cfg.data_stall_fraction;
 *   worst stall  the largest stall of any loader (the severity multiplier
 *                of CP-DATA-003/004; 1 when no loader was recorded);
 *   t_item       mean item load time over every dataset and process.
 * Severities are "share of the measured time the problem costs" x 10, so
 * they rank against each other and against CP-PERF-001; a rule that fires
 * has severity >= 1.01.
 */
#ifndef CP_RULES_DATA_H
#define CP_RULES_DATA_H

#include <stdint.h>

#include "analysis/rules.h"
#include "model/model.h"

int cp_rule_data_stall(cp_model *m, const cp_rule_info *info);          /* CP-DATA-001 */
int cp_rule_data_outliers(cp_model *m, const cp_rule_info *info);       /* CP-DATA-002 */
int cp_rule_data_decode(cp_model *m, const cp_rule_info *info);         /* CP-DATA-003 */
int cp_rule_data_slow_stage(cp_model *m, const cp_rule_info *info);     /* CP-DATA-004 */
int cp_rule_data_worker_startup(cp_model *m, const cp_rule_info *info); /* CP-DATA-005 */
int cp_rule_data_bursty(cp_model *m, const cp_rule_info *info);         /* CP-DATA-006 */
int cp_rule_data_pin_memory(cp_model *m, const cp_rule_info *info);     /* CP-DATA-007 */
int cp_rule_data_failures(cp_model *m, const cp_rule_info *info);       /* CP-DATA-008 */
/* CP-DATA-009 reads m->mem (procs, dsnotes, machine_bytes), not m->data. */
int cp_rule_data_cow(cp_model *m, const cp_rule_info *info);            /* CP-DATA-009 */

/* Producers needed to keep a loop fed: ceil(batch * t_item / t_step),
 * at least 1 and at most `cpus` (when cpus > 0).  0 when t_step <= 0 or
 * t_item <= 0 or batch <= 0 (unknown).  Exposed for the tests. */
uint32_t cp_data_needed_workers(double batch, double t_item_s, double t_step_s, uint32_t cpus);

#endif /* CP_RULES_DATA_H */
