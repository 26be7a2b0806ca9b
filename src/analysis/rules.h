/* rules.h -- analysis rules: read a cp_model, append findings.
 *
 * Every rule is one entry of the static table in rules.c (id, category,
 * function, one-line summary); adding a rule is writing its function and
 * adding its entry.  A finding (model.h) carries the rule id, the category
 * (an identify_bottlenecks() key), the subject, the measured value, the
 * threshold it exceeded (strictly: a value equal to the threshold does not
 * fire), the unit, a severity (value / threshold, used to rank) and a
 * recommendation sentence quoting the numbers.
 *
 * Rules read thresholds from m->cfg, so a report re-rendered with other
 * thresholds reflects them.  The rules and their ids:
 *   CP-PERF-001 slow_functions             max single-call wall time of a
 *               python/native/function/scope site > cfg.slow_function_s.
 *   CP-MEM-001  memory_intensive_functions largest RSS growth over one call
 *               of any site that measured RSS > cfg.memory_intensive_bytes.
 */
#ifndef CP_RULES_H
#define CP_RULES_H

#include <stddef.h>

#include "model/model.h"

typedef struct cp_rule_info {
    const char *id;       /* stable id, e.g. "CP-PERF-001"        */
    const char *category; /* identify_bottlenecks() key           */
    const char *summary;  /* one line: what fires and when        */
} cp_rule_info;

/* Runs every rule over `m`, replacing m->findings' contents (so running
 * twice gives the same findings), then sorts them by severity,
 * descending.  Returns 0, or -1 on OOM (findings found so far are kept,
 * sorted).  `m` must not be NULL.  Not thread-safe for the same model. */
int cp_rules_run(cp_model *m);

/* Number of rules, and rule `i`'s description (NULL if out of range).
 * Static data; thread-safe. */
size_t cp_rules_count(void);
const cp_rule_info *cp_rule_at(size_t i);

#endif /* CP_RULES_H */
