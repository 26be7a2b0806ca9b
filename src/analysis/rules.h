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
 *               python/native/function/scope site > cfg.slow_function_s,
 *               reported only where it names a real cost:
 *               - chains: a function whose direct callees that are
 *                 themselves over the threshold (their longest call in this
 *                 function's calls) account for >= 50% of its inclusive time
 *                 is not reported; the callee is.  Callees are summed over
 *                 the function's outermost tree nodes (recursive
 *                 self-nesting excluded; a call back into an enclosing frame
 *                 is not a slow callee).  The deepest slow function of a
 *                 chain is reported, and its recommendation says "called
 *                 from X", X being the chain's highest suppressed caller.
 *               - import noise: PYTHON/NATIVE frames named "<module>" or
 *                 "*.<module>", starting with "importlib.", "<frozen
 *                 importlib" or "runpy.", and the natives builtins.exec,
 *                 builtins.__import__ and _imp.* are never reported
 *                 themselves (a slow function they call still is).
 *               - waits: PYTHON/NATIVE frames whose last name component is
 *                 acquire, wait, wait_for, waitpid, get, join, _feed,
 *                 select, poll, _poll, sleep, recv, recv_bytes, _recv,
 *                 _recv_bytes, recv_into, accept or _wait_for_tstate_lock
 *                 are not reported themselves (except a main-thread wait
 *                 over the threshold made right in a "*<module>" body, where
 *                 no caller function is there to report).  On the main
 *                 thread (the first registered) a wait callee does not count
 *                 as a slow callee, so the function that waits (e.g. one
 *                 calling time.sleep) is reported.  On other threads a wait callee
 *                 counts, and a function whose calls all ran on other threads
 *                 is not reported when it is a run loop (last component run,
 *                 _bootstrap, _bootstrap_inner, run_forever, serve_forever,
 *                 _worker_loop, _pin_memory_loop) whose self time is < 50%
 *                 of its time, stdlib thread/process machinery (names
 *                 starting with threading., multiprocessing., queue.,
 *                 concurrent.futures., selectors., asyncio., socket.,
 *                 select., _thread., _queue., _multiprocessing.), or a native
 *                 call made directly by a wait, run loop or such machinery.
 *               - duplicates: a PYTHON site with the file of a FUNCTION
 *                 (decorated) site whose name ends with the function's name
 *                 on a "." boundary is not reported; the decorated one is.
 *               - profiler overhead: frames named "code_profiler.*" and
 *                 every call made under them are left out; a function is
 *                 judged on its other calls only (not reported if none).
 *               The recommendation quotes the longest call, calls, total
 *               and "% of the run" = the function's largest per-thread
 *               inclusive time / duration, clamped to 100%; callee shares
 *               are of the function's own time, clamped to 100%.  Callees
 *               are named through the profiler's own frames (looked
 *               through).  The advice follows from the numbers: a loader's
 *               batch waits >= 20% of its time -> the data findings; a
 *               callee >= 20% that waits (a wait name, or CPU share <
 *               CP_RULE_WAIT_CPU_SHARE) -> remove/overlap the wait; another
 *               callee >= 20% -> optimize it; self >= 50% with CPU share <
 *               CP_RULE_WAIT_CPU_SHARE -> "waits, not computes" (never
 *               "vectorize"); self >= 50% otherwise -> compute advice (CPU
 *               share quoted when measured); else, with Python traced
 *               (cp_rules_python_traced) -> follow its subtree in the call
 *               tree, and only without it -> trace its callees.
 *               saving_s: its inclusive time (counted calls), less what
 *               findings inside it explain (see Ranking).
 *   CP-PERF-002 slow_functions (a sampled-only function whose estimate
 *               minus 1.96 x its error exceeds cfg.slow_function_s) and
 *               CP-PERF-003 hot_lines (one line >= 50% of a reported slow
 *               function's line time): rules_sample.c; rules_sample.h.
 *   CP-MEM-001..004 memory rules (rules_mem.c; rules_mem.h says when each
 *               fires): memory_intensive_functions (a memory context's peak
 *               or net growth in one call, else a function's largest
 *               one-call RSS growth, > cfg.memory_intensive_bytes),
 *               memory_leaks, gc_overhead, memory_pressure; printed in MiB.
 *               saving_s 0 (memory is not time) except gc_overhead's.
 *
 * Data-loading rules (rules_data.c; rules_data.h defines the steady state,
 * "data-bound", "worst stall", t_item and the outliers' part e).  Severity
 * is the share of the measured time the problem costs x 10, at least 1.01
 * when a rule fires (the tie-break after saving_s):
 *   CP-DATA-001 slow_data_loading  a loader with >= 3 batches, >= 2 of them
 *               past each epoch's first, whose steady-state stall fraction
 *               (first waits left out) > cfg.data_stall_fraction.  Advice:
 *               N = ceil(B * t_item / t_step) workers (capped to the CPU
 *               count); "raise num_workers from W to N" only when loading
 *               a batch is a real share of a step (B*t_item / (B*t_item +
 *               t_step) > the threshold) and W < N and W < CPUs; "item
 *               loading does not explain the waits" when it is not; else
 *               "adding workers cannot help" plus the stage with the
 *               largest share of item time.  saving_s: the steady waits x
 *               (1 - e).
 *   CP-DATA-002 slow_data_loading  a dataset with outlier indices (src/data/
 *               outliers.h: median + k x MAD) whose loads sum to > 5% of
 *               its item time, or whose max load > cfg.slow_data_loading_s;
 *               names up to 5 indices (time, x median); repeat-slow indices
 *               -> cache / re-encode.  saving_s: the outlier loads' time
 *               above the median, at most (with a loader) the loop's waits
 *               x that excess / item time.
 *   CP-DATA-003 slow_preprocessing a stage named *decode*, *read* or *load*
 *               (any case) with share_of_item_time > 0.5, in a data-bound run
 *               or one without a loader -> decode offline.  Severity
 *               share x 10 x worst stall (x 1 without a loader).  saving_s:
 *               with a loader min(stage time / workers, steady waits x
 *               (1 - e) x share), without one its whole time.
 *   CP-DATA-004 slow_preprocessing a preprocess/augment stage with average
 *               time > cfg.slow_preprocessing_s, or share > 0.5 in a
 *               data-bound run (stages CP-DATA-003 reports are left to it).
 *               No "% of item time" for a stage called outside item loads;
 *               "waits, not computes" advice when its CPU share is low.
 *               Severity and saving_s as CP-DATA-003.
 *   CP-DATA-005 slow_data_loading  first-batch latency: a described loader
 *               with >= 2 epochs, num_workers > 0, not persistent, whose
 *               first waits exceed a steady wait each by > 10% of wait +
 *               step -> persistent_workers (the one fix for a start-up;
 *               never "add workers").  Any run, compute-bound included.
 *               saving_s: the excess of all epochs but one.
 *   CP-DATA-006 slow_data_loading  a data-bound described loader with
 *               num_workers > 0, median wait < a tenth of the step and
 *               p95 wait > 4 x median -> double prefetch_factor.
 *               Severity stall x 5.  saving_s: steady waits beyond the
 *               median one, x (1 - e).
 *   CP-DATA-007 slow_data_loading  a described loader with uses_gpu and not
 *               pin_memory that delivered batches.  Severity 1.01,
 *               saving_s 0 (copies are not timed).
 *   CP-DATA-008 slow_data_loading  a dataset whose item loads raised.
 *               Severity 1.01, saving_s 0 (a correctness problem).
 *   CP-DATA-009 slow_data_loading  a loader whose dataset the facade
 *               described with >= 10000 Python objects in containers
 *               (m->mem.dsnotes) and at least one sampled worker whose USS
 *               grew by >= 64 MiB and >= 10% of its first reading (the
 *               copy-on-write of reference counts).  Value: the largest
 *               growth (bytes).  Severity 10 x the summed growth / machine
 *               memory, at least 1.01; saving_s 0 (memory, not time).
 * A compute-bound run (no loader's stall above the threshold) never gets
 * CP-DATA-001 or 006: it is never told to add workers or tune prefetching.
 *
 * GPU rules (rules_gpu.c; rules_gpu.h says when each fires; they run after
 * the data rules, whose findings CP-GPU-002/005 read):
 *   CP-GPU-001 slow_gpu_operations  an operation longer than slow_gpu_op_s;
 *   CP-GPU-002 gpu_utilization      low utilization while a loader stalls;
 *   CP-GPU-003 gpu_synchronization  frequent or costly host syncs;
 *   CP-GPU-004 gpu_memory           peak GPU memory > 90% of the device;
 *   CP-GPU-005 gpu_utilization      low utilization, low memory: larger batch.
 *
 * Ranking.  saving_s is an upper bound of the time a fix would save: the
 * time that would be gone if the named cause cost nothing.  A CP-PERF-001
 * finding is a container (an epoch scope contains the loop's waits and the
 * functions it calls): its saving loses the loader waits under it (at most
 * what the data findings save together) and the time of other reported
 * functions under it (at most their savings), smaller containers first.
 * Findings are then sorted by saving_s, then severity, descending, so the
 * cause ranks above its container.
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
 * twice gives the same findings), takes from each CP-PERF-001 finding's
 * saving_s the time findings inside it explain (see "Ranking" above), then
 * sorts them by saving_s, then severity, descending.  Returns 0, or -1 on
 * OOM (findings found so far are kept, sorted).  `m` must not be NULL.
 * Not thread-safe for the same model. */
int cp_rules_run(cp_model *m);

/* 1 if Python calls were traced into the model: m->python_traced, or a
 * PYTHON site in the call tree (models built before the flag existed). */
int cp_rules_python_traced(const cp_model *m);

/* Number of rules, and rule `i`'s description (NULL if out of range).
 * Static data; thread-safe. */
size_t cp_rules_count(void);
const cp_rule_info *cp_rule_at(size_t i);

#endif /* CP_RULES_H */
