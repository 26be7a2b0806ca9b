/* rule_util.h -- what every rule shares (rules.c, rules_data.c): one way
 * to append a finding, one way to print seconds and MiB, and the CPU share
 * of a site's time (to tell waiting from computing).  Internal. */
#ifndef CP_RULE_UTIL_H
#define CP_RULE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/rules.h"
#include "model/model.h"

/* Appends a finding with `info`'s id and category; the recommendation is
 * printf-formatted (truncated at its capacity).  Returns 0, or -1 on OOM. */
int cp_rule_add(cp_model *m, const cp_rule_info *info, const char *subject, double value,
                double threshold, const char *unit, double severity, double saving_s,
                const char *fmt, ...) __attribute__((format(printf, 9, 10)));

/* Seconds with about three significant digits in s, ms or us, the unit
 * chosen by magnitude ("0 s" for 0): "1.52 s", "38.3 ms", "104 us".
 * Returns buf. */
const char *cp_rule_secs(double s, char *buf, size_t n);

/* Bytes as MiB (2^20 bytes), the number only. */
double cp_rule_mib(double bytes);

/* The share of wall time `site`'s measured calls spent on a CPU (thread
 * CPU time / wall time of the calls that measured it, from the model's
 * flat table), or -1 when no call of the site measured CPU time. */
double cp_rule_cpu_share(const cp_model *m, uint32_t site);

/* Below this CPU share a function waits (I/O, sleep, a lock) rather than
 * computes; at or above it, compute advice applies.  Low on purpose: on a
 * loaded machine a computing thread waits for a core too (the planted
 * pipelines measured 25% CPU for pure computation on 2 oversubscribed
 * cores), while a sleep or a blocking read measures a few percent. */
#define CP_RULE_WAIT_CPU_SHARE 0.1

#endif /* CP_RULE_UTIL_H */
