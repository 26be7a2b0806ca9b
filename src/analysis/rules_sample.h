/* rules_sample.h -- the rules that read sampled estimates and line
 * figures (CP-PERF-002, CP-PERF-003).  Called from the rules[] table of
 * rules.c, after CP-PERF-001 (CP-PERF-003 reads the slow-function findings
 * already made).  Return 0, or -1 on OOM.  A finding fires when its value
 * is strictly above its threshold.
 *
 *   CP-PERF-002 slow_functions  a function seen only by the sampler (no
 *               traced call: cp_mfunc.calls == 0, samples > 0) of a
 *               python/native/function/scope site whose estimated time X
 *               (its inclusive sampled time) is above cfg.slow_function_s
 *               even at the low end of its 95% interval: X - 1.96 x error
 *               > slow_function_s, error as in report/sample_est.h (run
 *               totals), so sampling noise does not fire it.  Not for
 *               import machinery ("<module>" bodies, importlib., runpy.)
 *               nor the profiler's own code (code_profiler.*).  Chains: a
 *               function whose direct callees that fire themselves hold
 *               >= 50% of its samples' time is not reported (the callee
 *               is).  Value: X (s).  The advice follows the samples: idle
 *               in > 50% of them -> it waits (remove or overlap the wait);
 *               else its own code holds >= 50% (self) -> optimize its own
 *               code; else -> its largest callee, named with its estimate.
 *   CP-PERF-003 hot_lines  one line of a function reported by CP-PERF-001
 *               or CP-PERF-002 holds >= 50% of the function's measured line
 *               time (value: that share, "fraction"; threshold 0.5), the
 *               function having >= 2 lines measured.  Line time is the line
 *               profiler's (m->lines rows with hits) when the function was
 *               line-profiled, else the sampled time of the rows.  The
 *               recommendation names the line, its file:line and its text.
 */
#ifndef CP_RULES_SAMPLE_H
#define CP_RULES_SAMPLE_H

#include "analysis/rules.h"
#include "model/model.h"

int cp_rule_sampled_slow(cp_model *m, const cp_rule_info *info);
int cp_rule_hot_line(cp_model *m, const cp_rule_info *info);

#endif /* CP_RULES_SAMPLE_H */
