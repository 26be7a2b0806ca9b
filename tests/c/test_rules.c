/* test_rules.c -- analysis rules (src/analysis/rules.c) over hand-built
 * models. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/rules.h"
#include "model_fixture.h"

static uint32_t site(cp_model *m, const char *name, codeprof_site_kind kind) {
    return fx_site(m, name, "rules_test.py", 1, kind);
}

static const char *site_name_of(const cp_model *m, uint32_t id) {
    const cp_msite *si = cp_model_site(m, id);
    assert_non_null(si);
    return si->name;
}

static const cp_finding *find(const cp_model *m, const char *category, const char *subject) {
    for (uint32_t i = 0; i < m->nfindings; i++)
        if (!strcmp(m->findings[i].category, category) &&
            !strcmp(m->findings[i].subject, subject))
            return &m->findings[i];
    return NULL;
}

static void test_slow_threshold_is_strict(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    fx_func(m, site(m, "above", CODEPROF_SITE_PYTHON), 3, FX_S(3.3), FX_S(3.3), FX_S(1.5));
    fx_func(m, site(m, "equal", CODEPROF_SITE_PYTHON), 2, FX_S(2), FX_S(2), FX_S(1.0));
    fx_func(m, site(m, "below", CODEPROF_SITE_PYTHON), 1, FX_S(0.999), FX_S(0.999), FX_S(0.999));
    fx_func(m, site(m, "just_above", CODEPROF_SITE_NATIVE), 1, 1000000001, 1000000001, 1000000001);
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 2);
    const cp_finding *f = find(m, "slow_functions", "above");
    assert_non_null(f);
    assert_string_equal(f->rule, "CP-PERF-001");
    assert_string_equal(f->unit, "s");
    assert_true(f->value == 1.5);
    assert_true(f->threshold == 1.0);
    assert_true(f->severity == 1.5);
    assert_non_null(find(m, "slow_functions", "just_above"));
    assert_null(find(m, "slow_functions", "equal"));
    assert_null(find(m, "slow_functions", "below"));
    cp_model_free(m);
}

static void test_slow_uses_configured_threshold(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_func(m, site(m, "medium", CODEPROF_SITE_FUNCTION), 1, FX_S(0.3), FX_S(0.3), FX_S(0.3));
    m->cfg.slow_function_s = 1.0;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 0);
    m->cfg.slow_function_s = 0.25;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 1);
    assert_true(m->findings[0].threshold == 0.25);
    assert_non_null(strstr(m->findings[0].recommendation, "250 ms threshold"));
    cp_model_free(m);
}

static void test_slow_only_code_kinds(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    fx_func(m, site(m, "scope_s", CODEPROF_SITE_SCOPE), 1, FX_S(2), FX_S(2), FX_S(2));
    fx_func(m, site(m, "item_load", CODEPROF_SITE_DATASET), 1, FX_S(2), FX_S(2), FX_S(2));
    fx_func(m, site(m, "batch_wait", CODEPROF_SITE_LOADER), 1, FX_S(2), FX_S(2), FX_S(2));
    fx_func(m, site(m, "matmul", CODEPROF_SITE_GPU), 1, FX_S(2), FX_S(2), FX_S(2));
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 1);
    assert_string_equal(m->findings[0].subject, "scope_s");
    cp_model_free(m);
}

static void test_recommendation_quotes_numbers(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    m->duration_ns = FX_S(10);
    /* no tree: neither callee nor self dominates -> the generic advice */
    fx_func(m, site(m, "training_epoch", CODEPROF_SITE_PYTHON), 5, FX_S(4.1), FX_S(1.0),
            FX_S(1.23));
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 1);
    const char *r = m->findings[0].recommendation;
    assert_non_null(strstr(r, "training_epoch took up to 1.23 s per call"));
    assert_non_null(strstr(r, "5 calls"));
    assert_non_null(strstr(r, "4.10 s total"));
    assert_non_null(strstr(r, "41% of the run"));
    assert_non_null(strstr(r, "1.00 s threshold"));
    assert_non_null(strstr(r, "enable_cprofile=True"));
    cp_model_free(m);
}

static void test_recommendation_names_heaviest_callee(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t train = site(m, "train_step", CODEPROF_SITE_PYTHON);
    uint32_t decode = site(m, "decode_clip", CODEPROF_SITE_NATIVE);
    uint32_t log = site(m, "log_metrics", CODEPROF_SITE_PYTHON);
    uint32_t resize = site(m, "resize_all", CODEPROF_SITE_PYTHON);
    /* train_step is reached on two paths; decode_clip dominates in sum but
     * no single decode call is slow, so train_step itself is reported */
    uint32_t root = fx_thread(m, 1);
    uint32_t a = fx_node(m, root, train, 2, FX_S(2), FX_S(0.2));
    fx_node(m, a, decode, 4, FX_S(1.5), FX_S(1.5));
    fx_node(m, a, log, 2, FX_S(0.3), FX_S(0.3));
    uint32_t b = fx_node(m, root, log, 1, FX_S(2.5), FX_S(0.1));
    uint32_t c = fx_node(m, b, train, 1, FX_S(2), FX_S(0.2));
    fx_node(m, c, decode, 2, FX_S(1.5), FX_S(1.5));
    fx_node(m, c, log, 1, FX_S(0.3), FX_S(0.3));
    fx_node(m, root, resize, 1, FX_S(3), FX_S(3));
    fx_func(m, train, 3, FX_S(4), FX_S(0.4), FX_S(2));
    fx_func(m, decode, 6, FX_S(3), FX_S(3), FX_S(0.75));
    fx_func(m, resize, 1, FX_S(3), FX_S(3), FX_S(3));
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find(m, "slow_functions", "train_step");
    assert_non_null(f);
    assert_non_null(strstr(f->recommendation, "callee decode_clip (3.00 s, 75% of its time)"));
    assert_null(find(m, "slow_functions", "decode_clip"));
    /* a leaf: its advice is about its own code */
    f = find(m, "slow_functions", "resize_all");
    assert_non_null(f);
    assert_non_null(strstr(f->recommendation, "its own code (self 3.00 s)"));
    assert_null(strstr(f->recommendation, "called from"));
    cp_model_free(m);
}

/* Builds exec -> <module> (import-time frames under the runner) and returns
 * the <module> node. */
static uint32_t script_frames(cp_model *m, uint32_t root, uint64_t ns) {
    uint32_t ex = fx_node(m, root, site(m, "builtins.exec", CODEPROF_SITE_NATIVE), 1, ns, 0);
    fx_func(m, m->nodes[ex].site, 1, ns, 0, ns);
    uint32_t mod = fx_node(m, ex, site(m, "__main__.<module>", CODEPROF_SITE_PYTHON), 1, ns, 0);
    fx_func(m, m->nodes[mod].site, 1, ns, 0, ns);
    return mod;
}

static uint32_t count_category(const cp_model *m, const char *category) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nfindings; i++)
        n += !strcmp(m->findings[i].category, category);
    return n;
}

/* a) a slow chain main -> train_epoch -> train_step -> forward is reported
 * once, at its deepest slow function, naming the chain's top. */
static void test_slow_chain_reports_deepest(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    m->duration_ns = FX_S(10);
    uint32_t mainf = site(m, "app.main", CODEPROF_SITE_PYTHON);
    uint32_t epoch = site(m, "app.train_epoch", CODEPROF_SITE_PYTHON);
    uint32_t step = site(m, "app.train_step", CODEPROF_SITE_PYTHON);
    uint32_t fwd = site(m, "app.forward", CODEPROF_SITE_PYTHON);
    uint32_t logf = site(m, "app.log", CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t mod = script_frames(m, root, FX_S(10));
    uint32_t n_main = fx_node(m, mod, mainf, 1, FX_S(10), FX_S(0.1));
    uint32_t n_epoch = fx_node(m, n_main, epoch, 1, FX_S(9.5), FX_S(0.2));
    fx_node(m, n_main, logf, 5, FX_S(0.4), FX_S(0.4));
    uint32_t n_step = fx_node(m, n_epoch, step, 10, FX_S(9.3), FX_S(0.3));
    m->nodes[n_step].max_ns = FX_S(1.6);
    uint32_t n_fwd = fx_node(m, n_step, fwd, 10, FX_S(9.0), FX_S(9.0));
    m->nodes[n_fwd].max_ns = FX_S(1.5);
    fx_func(m, mainf, 1, FX_S(10), FX_S(0.1), FX_S(10));
    fx_func(m, epoch, 1, FX_S(9.5), FX_S(0.2), FX_S(9.5));
    fx_func(m, step, 10, FX_S(9.3), FX_S(0.3), FX_S(1.6));
    fx_func(m, fwd, 10, FX_S(9.0), FX_S(9.0), FX_S(1.5));
    fx_func(m, logf, 5, FX_S(0.4), FX_S(0.4), FX_S(0.1));
    assert_int_equal(cp_rules_run(m), 0);
    /* the old rule reported all six ancestors too */
    assert_int_equal(count_category(m, "slow_functions"), 1);
    const cp_finding *f = find(m, "slow_functions", "app.forward");
    assert_non_null(f);
    assert_true(f->value == 1.5);
    assert_non_null(strstr(f->recommendation, "app.forward took up to 1.50 s per call"));
    assert_non_null(strstr(f->recommendation, "10 calls, 9.00 s total, 90% of the run"));
    assert_non_null(strstr(f->recommendation, "called from app.main"));
    assert_non_null(strstr(f->recommendation, "its own code (self 9.00 s)"));
    cp_model_free(m);
}

/* a) a caller whose time is split over several slow callees (epochs) is
 * not reported either; a callee under 50% alone does not hide its caller
 * when the rest of the caller's time is not slow. */
static void test_slow_callees_sum_and_share(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t run = site(m, "app.run", CODEPROF_SITE_PYTHON);
    uint32_t ep[3] = {site(m, "epoch_0", CODEPROF_SITE_SCOPE),
                      site(m, "epoch_1", CODEPROF_SITE_SCOPE),
                      site(m, "epoch_2", CODEPROF_SITE_SCOPE)};
    uint32_t step = site(m, "app.step", CODEPROF_SITE_FUNCTION);
    uint32_t setup = site(m, "app.setup", CODEPROF_SITE_PYTHON);
    uint32_t load = site(m, "app.load_weights", CODEPROF_SITE_PYTHON);
    uint32_t parse = site(m, "app.parse_cfg", CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t n_run = fx_node(m, root, run, 1, FX_S(7), FX_S(0.1));
    for (int i = 0; i < 3; i++) {
        uint32_t e = fx_node(m, n_run, ep[i], 1, FX_S(2.2), FX_S(0.2));
        fx_node(m, e, step, 10, FX_S(2.0), FX_S(0.1));
        fx_func(m, ep[i], 1, FX_S(2.2), FX_S(0.2), FX_S(2.2));
    }
    /* setup: a 1.2 s callee (40%) and 1.8 s of fast calls */
    uint32_t n_setup = fx_node(m, root, setup, 1, FX_S(3), FX_S(0.1));
    fx_node(m, n_setup, load, 1, FX_S(1.2), FX_S(1.2));
    fx_node(m, n_setup, parse, 100, FX_S(1.7), FX_S(1.7));
    fx_func(m, run, 1, FX_S(7), FX_S(0.1), FX_S(7));
    fx_func(m, step, 30, FX_S(6), FX_S(0.3), FX_S(0.3));
    fx_func(m, setup, 1, FX_S(3), FX_S(0.1), FX_S(3));
    fx_func(m, load, 1, FX_S(1.2), FX_S(1.2), FX_S(1.2));
    fx_func(m, parse, 100, FX_S(1.7), FX_S(1.7), FX_S(0.05));
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find(m, "slow_functions", "app.run"));
    for (int i = 0; i < 3; i++) {
        const cp_finding *f = find(m, "slow_functions", site_name_of(m, ep[i]));
        assert_non_null(f);
        assert_non_null(strstr(f->recommendation, "callee app.step (2.00 s, 91% of its time)"));
        assert_non_null(strstr(f->recommendation, "called from app.run"));
    }
    assert_non_null(find(m, "slow_functions", "app.setup"));
    const cp_finding *f = find(m, "slow_functions", "app.load_weights");
    assert_non_null(f);
    assert_null(strstr(f->recommendation, "called from")); /* its caller is reported */
    assert_int_equal(count_category(m, "slow_functions"), 5);
    cp_model_free(m);
}

/* a) indirect recursion (the importer calling itself through a module
 * body) neither counts a callee twice nor hides the whole cycle. */
static void test_slow_indirect_recursion(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t a = site(m, "pkg.load", CODEPROF_SITE_PYTHON);
    uint32_t b = site(m, "pkg.visit", CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t a1 = fx_node(m, root, a, 1, FX_S(4), FX_S(0.2));
    uint32_t b1 = fx_node(m, a1, b, 1, FX_S(3.8), FX_S(0.3));
    uint32_t a2 = fx_node(m, b1, a, 1, FX_S(3.5), FX_S(0.2));
    uint32_t b2 = fx_node(m, a2, b, 1, FX_S(3.3), FX_S(3.3));
    (void)b2;
    fx_func(m, a, 2, FX_S(4), FX_S(0.4), FX_S(4));
    fx_func(m, b, 2, FX_S(3.8), FX_S(3.6), FX_S(3.8));
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_category(m, "slow_functions"), 1);
    const cp_finding *f = find(m, "slow_functions", "pkg.visit");
    assert_non_null(f);
    assert_non_null(strstr(f->recommendation, "called from pkg.load"));
    /* shares are of the outermost calls: never above 100% */
    assert_null(strstr(f->recommendation, "178%"));
    cp_model_free(m);
}

/* Every "N% of the run" / "N% of its time" in the findings is <= 100. */
static void assert_percentages_at_most_100(const cp_model *m) {
    for (uint32_t i = 0; i < m->nfindings; i++) {
        const char *r = m->findings[i].recommendation;
        for (const char *p = strchr(r, '%'); p; p = strchr(p + 1, '%')) {
            const char *q = p;
            while (q > r && q[-1] >= '0' && q[-1] <= '9')
                q--;
            if (q < p)
                assert_true(atoi(q) <= 100);
        }
    }
}

/* b) blocking waits and run loops of background threads are not slow
 * functions; percentages never exceed 100%; a wait on the main thread is
 * its caller's cost. */
static void test_slow_background_waits(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    m->duration_ns = FX_S(10);
    uint32_t trun = site(m, "threading.Thread.run", CODEPROF_SITE_PYTHON);
    uint32_t feed = site(m, "multiprocessing.queues.Queue._feed", CODEPROF_SITE_PYTHON);
    uint32_t cwait = site(m, "threading.Condition.wait", CODEPROF_SITE_PYTHON);
    uint32_t acq = site(m, "_thread.lock.acquire", CODEPROF_SITE_NATIVE);
    uint32_t poll = site(m, "select.poll.poll", CODEPROF_SITE_NATIVE);
    uint32_t worker = site(m, "app.decode_worker", CODEPROF_SITE_PYTHON);
    uint32_t slow_fn = site(m, "app.slow_fn", CODEPROF_SITE_PYTHON);
    uint32_t sleep = site(m, "time.sleep", CODEPROF_SITE_NATIVE);
    uint32_t cclose = site(m, "multiprocessing.connection._ConnectionBase.close",
                           CODEPROF_SITE_PYTHON);
    uint32_t pclose = site(m, "posix.close", CODEPROF_SITE_NATIVE);
    uint32_t pmap = site(m, "multiprocessing.pool.Pool.map", CODEPROF_SITE_PYTHON);
    /* main thread: slow_fn sleeps 1.2 s; a pool map is the main thread's
     * own cost even though it is process machinery */
    uint32_t r0 = fx_thread(m, 100);
    uint32_t n = fx_node(m, r0, slow_fn, 1, FX_S(1.25), FX_S(0.05));
    fx_node(m, n, sleep, 1, FX_S(1.2), FX_S(1.2));
    fx_node(m, r0, pmap, 1, FX_S(2), FX_S(2));
    /* two feeder threads, 9.8 s each: Thread.run -> _feed -> wait -> acquire */
    for (int t = 0; t < 2; t++) {
        uint32_t r = fx_thread(m, 101 + (uint64_t)t);
        uint32_t x = fx_node(m, r, trun, 1, FX_S(9.8), FX_S(0.001));
        x = fx_node(m, x, feed, 1, FX_S(9.8), FX_S(0.01));
        uint32_t w = fx_node(m, x, cwait, 5, FX_S(9.7), FX_S(0.01));
        m->nodes[w].max_ns = FX_S(4);
        uint32_t k = fx_node(m, w, acq, 10, FX_S(9.69), FX_S(9.69));
        m->nodes[k].max_ns = FX_S(4);
        k = fx_node(m, x, poll, 3, FX_S(1.5), FX_S(1.5));
        m->nodes[k].max_ns = FX_S(1.2);
        /* closing the pipe at the end, stalled for the GIL */
        k = fx_node(m, x, cclose, 1, FX_S(1.3), FX_S(0.001));
        fx_node(m, k, pclose, 1, FX_S(1.3), FX_S(1.3));
    }
    /* two decoder threads, 8 s of real work each */
    for (int t = 0; t < 2; t++) {
        uint32_t r = fx_thread(m, 103 + (uint64_t)t);
        uint32_t x = fx_node(m, r, trun, 1, FX_S(8), FX_S(0.001));
        uint32_t d = fx_node(m, x, worker, 4, FX_S(8), FX_S(7.9));
        m->nodes[d].max_ns = FX_S(2.5);
    }
    fx_func(m, trun, 4, FX_S(35.6), FX_S(0.004), FX_S(9.8));
    fx_func(m, feed, 2, FX_S(19.6), FX_S(0.02), FX_S(9.8));
    fx_func(m, cwait, 10, FX_S(19.4), FX_S(0.02), FX_S(4));
    fx_func(m, acq, 20, FX_S(19.38), FX_S(19.38), FX_S(4));
    fx_func(m, worker, 8, FX_S(16), FX_S(15.8), FX_S(2.5));
    fx_func(m, poll, 6, FX_S(3), FX_S(3), FX_S(1.2));
    fx_func(m, slow_fn, 1, FX_S(1.25), FX_S(0.05), FX_S(1.25));
    fx_func(m, sleep, 1, FX_S(1.2), FX_S(1.2), FX_S(1.2));
    fx_func(m, cclose, 2, FX_S(2.6), FX_S(0.002), FX_S(1.3));
    fx_func(m, pclose, 2, FX_S(2.6), FX_S(2.6), FX_S(1.3));
    fx_func(m, pmap, 1, FX_S(2), FX_S(2), FX_S(2));
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find(m, "slow_functions", "posix.close"));
    assert_null(find(m, "slow_functions", "multiprocessing.connection._ConnectionBase.close"));
    assert_non_null(find(m, "slow_functions", "multiprocessing.pool.Pool.map"));
    assert_null(find(m, "slow_functions", "threading.Thread.run"));
    assert_null(find(m, "slow_functions", "multiprocessing.queues.Queue._feed"));
    assert_null(find(m, "slow_functions", "threading.Condition.wait"));
    assert_null(find(m, "slow_functions", "_thread.lock.acquire"));
    assert_null(find(m, "slow_functions", "select.poll.poll"));
    assert_null(find(m, "slow_functions", "time.sleep"));
    const cp_finding *f = find(m, "slow_functions", "app.decode_worker");
    assert_non_null(f);
    /* 8 s on each of two threads: 80% of the run, not 160% */
    assert_non_null(strstr(f->recommendation, "16.0 s total, 80% of the run"));
    f = find(m, "slow_functions", "app.slow_fn");
    assert_non_null(f);
    assert_true(f->value == 1.25);
    assert_non_null(
        strstr(f->recommendation, "waiting in its callee time.sleep (1.20 s, 96% of its time)"));
    assert_int_equal(count_category(m, "slow_functions"), 3);
    assert_percentages_at_most_100(m);
    cp_model_free(m);
}

/* b) a run loop whose own code is the cost is still reported; a function
 * on more threads than the run has time for is clamped to 100%. */
static void test_slow_loop_with_own_work_and_clamp(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    m->duration_ns = FX_S(5);
    uint32_t run = site(m, "app.Producer.run", CODEPROF_SITE_PYTHON);
    fx_thread(m, 200); /* main thread, idle */
    uint32_t r = fx_thread(m, 201);
    fx_node(m, r, run, 1, FX_S(6), FX_S(5.9)); /* thread clock ran past duration */
    fx_func(m, run, 1, FX_S(6), FX_S(5.9), FX_S(6));
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find(m, "slow_functions", "app.Producer.run");
    assert_non_null(f);
    assert_non_null(strstr(f->recommendation, "100% of the run"));
    assert_percentages_at_most_100(m);
    cp_model_free(m);
}

static uint32_t site_in(cp_model *m, const char *name, const char *file, codeprof_site_kind kind) {
    return fx_site(m, name, file, 7, kind);
}

/* c) the decorator's site and the tracer's frame of the same function are
 * reported once, as the decorated one. */
static void test_slow_decorated_twin_reported_once(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t deco = site_in(m, "train_step", "twin_test.py", CODEPROF_SITE_FUNCTION);
    uint32_t traced = site_in(m, "__main__.train_step", "twin_test.py", CODEPROF_SITE_PYTHON);
    uint32_t fwd = site_in(m, "__main__.forward", "twin_test.py", CODEPROF_SITE_PYTHON);
    uint32_t bwd = site_in(m, "__main__.backward", "twin_test.py", CODEPROF_SITE_PYTHON);
    /* same name suffix, other file: not a twin */
    uint32_t other = site_in(m, "lib.train_step", "other_lib.py", CODEPROF_SITE_PYTHON);
    /* same file, suffix not on a name boundary: not a twin */
    uint32_t near = site_in(m, "__main__.pretrain_step", "twin_test.py", CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t d = fx_node(m, root, deco, 3, FX_S(4.5), FX_S(0.01));
    uint32_t t = fx_node(m, d, traced, 3, FX_S(4.49), FX_S(0.09));
    fx_node(m, t, fwd, 3, FX_S(2.1), FX_S(2.1));
    fx_node(m, t, bwd, 3, FX_S(2.3), FX_S(2.3));
    fx_node(m, root, other, 1, FX_S(1.5), FX_S(1.5));
    fx_node(m, root, near, 1, FX_S(1.4), FX_S(1.4));
    fx_func(m, deco, 3, FX_S(4.5), FX_S(0.01), FX_S(1.6));
    fx_func(m, traced, 3, FX_S(4.49), FX_S(0.09), FX_S(1.59));
    fx_func(m, fwd, 3, FX_S(2.1), FX_S(2.1), FX_S(0.8));
    fx_func(m, bwd, 3, FX_S(2.3), FX_S(2.3), FX_S(0.8));
    fx_func(m, other, 1, FX_S(1.5), FX_S(1.5), FX_S(1.5));
    fx_func(m, near, 1, FX_S(1.4), FX_S(1.4), FX_S(1.4));
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find(m, "slow_functions", "__main__.train_step"));
    const cp_finding *f = find(m, "slow_functions", "train_step");
    assert_non_null(f);
    assert_true(f->value == 1.6);
    /* the traced twin is looked through: the real callees are named */
    assert_non_null(strstr(f->recommendation, "callee __main__.backward (2.30 s, 51% of"));
    assert_non_null(find(m, "slow_functions", "lib.train_step"));
    assert_non_null(find(m, "slow_functions", "__main__.pretrain_step"));
    assert_int_equal(count_category(m, "slow_functions"), 3);
    cp_model_free(m);
}

/* d) import-time frames are never reported themselves; a slow function
 * run at import time still is. */
static void test_slow_import_noise(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    const char *chain[] = {"importlib._bootstrap._find_and_load",
                           "importlib._bootstrap._load_unlocked",
                           "<frozen importlib._bootstrap_external>", NULL};
    uint32_t root = fx_thread(m, 1);
    uint32_t x = script_frames(m, root, FX_S(6));
    uint32_t imp = site(m, "builtins.__import__", CODEPROF_SITE_NATIVE);
    x = fx_node(m, x, imp, 1, FX_S(5), FX_S(0));
    fx_func(m, imp, 1, FX_S(5), 0, FX_S(5));
    for (int i = 0; chain[i]; i++) {
        uint32_t s = site(m, chain[i], CODEPROF_SITE_PYTHON);
        x = fx_node(m, x, s, 1, FX_S(5), FX_S(0.01));
        fx_func(m, s, 1, FX_S(5), FX_S(0.01), FX_S(5));
    }
    uint32_t ex = site(m, "builtins.exec", CODEPROF_SITE_NATIVE);
    x = fx_node(m, x, ex, 1, FX_S(4.9), FX_S(0.01));
    uint32_t body = site(m, "torch._dynamo.<module>", CODEPROF_SITE_PYTHON);
    x = fx_node(m, x, body, 1, FX_S(4.9), FX_S(1.5));
    fx_func(m, body, 1, FX_S(4.9), FX_S(1.5), FX_S(4.9));
    uint32_t init = site(m, "torch._dynamo.build_tables", CODEPROF_SITE_PYTHON);
    fx_node(m, x, init, 1, FX_S(3.4), FX_S(3.4));
    fx_func(m, init, 1, FX_S(3.4), FX_S(3.4), FX_S(3.4));
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_category(m, "slow_functions"), 1);
    const cp_finding *f = find(m, "slow_functions", "torch._dynamo.build_tables");
    assert_non_null(f);
    assert_null(strstr(f->recommendation, "called from")); /* only noise above it */
    /* the same frames, without a slow function inside: nothing */
    m->funcs[m->nfuncs - 1].max_ns = FX_S(0.5);
    m->nodes[m->nnodes - 1].max_ns = FX_S(0.5);
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(count_category(m, "slow_functions"), 0);
    cp_model_free(m);
}

/* A wait on the main thread right in the script's body has no caller
 * function to blame: it is reported itself; in a function it is not. */
static void test_slow_wait_in_module_body(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t sleep = site(m, "time.sleep", CODEPROF_SITE_NATIVE);
    uint32_t fn = site(m, "app.pause", CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t mod = script_frames(m, root, FX_S(4));
    fx_node(m, mod, sleep, 1, FX_S(1.2), FX_S(1.2));
    uint32_t n = fx_node(m, mod, fn, 1, FX_S(1.6), FX_S(0.1));
    fx_node(m, n, sleep, 1, FX_S(1.5), FX_S(1.5));
    fx_func(m, fn, 1, FX_S(1.6), FX_S(0.1), FX_S(1.6));
    fx_func(m, sleep, 2, FX_S(2.7), FX_S(2.7), FX_S(1.5));
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find(m, "slow_functions", "time.sleep");
    assert_non_null(f);
    /* its numbers are those of the body's call, not the one in app.pause */
    assert_true(f->value == 1.2);
    assert_non_null(strstr(f->recommendation, "(1 calls, 1.20 s total"));
    assert_non_null(strstr(f->recommendation, "top level of a module"));
    assert_non_null(find(m, "slow_functions", "app.pause"));
    assert_int_equal(count_category(m, "slow_functions"), 2);
    /* the body's sleep under the threshold: only the function remains */
    m->nodes[mod + 1].max_ns = FX_S(0.9);
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find(m, "slow_functions", "time.sleep"));
    assert_int_equal(count_category(m, "slow_functions"), 1);
    cp_model_free(m);
}

/* The profiler's own API (report building) is not the user's cost. */
static void test_slow_profiler_overhead(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t ib = site(m, "code_profiler.profiler.VideoOpusClipProfiler.identify_bottlenecks",
                       CODEPROF_SITE_PYTHON);
    uint32_t loads = site(m, "json.loads", CODEPROF_SITE_PYTHON);
    uint32_t prep = site(m, "app.read_manifest", CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t n = fx_node(m, root, ib, 1, FX_S(3), FX_S(0.1));
    uint32_t l = fx_node(m, n, loads, 2, FX_S(2.9), FX_S(2.9));
    m->nodes[l].max_ns = FX_S(2);
    n = fx_node(m, root, prep, 1, FX_S(1.3), FX_S(0.1));
    fx_node(m, n, loads, 1, FX_S(1.2), FX_S(1.2));
    fx_func(m, ib, 1, FX_S(3), FX_S(0.1), FX_S(3));
    fx_func(m, loads, 3, FX_S(4.1), FX_S(4.1), FX_S(2));
    fx_func(m, prep, 1, FX_S(1.3), FX_S(0.1), FX_S(1.3));
    assert_int_equal(cp_rules_run(m), 0);
    assert_null(find(m, "slow_functions", "code_profiler.profiler.VideoOpusClipProfiler."
                                          "identify_bottlenecks"));
    /* json.loads counts only the user's call: 1.20 s, not the report's 2 s */
    const cp_finding *f = find(m, "slow_functions", "json.loads");
    assert_non_null(f);
    assert_true(f->value == 1.2);
    assert_non_null(strstr(f->recommendation, "(1 calls, 1.20 s total"));
    assert_non_null(strstr(f->recommendation, "called from app.read_manifest"));
    assert_int_equal(count_category(m, "slow_functions"), 1);
    cp_model_free(m);
}

static void test_memory_rule(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.memory_intensive_bytes = 100.0 * 1024 * 1024;
    cp_mfunc *f = fx_func(m, site(m, "load_video", CODEPROF_SITE_PYTHON), 4, FX_S(0.1), FX_S(0.1),
                          FX_S(0.05));
    f->rss_count = 4;
    f->rss_delta_max = 200ll * 1024 * 1024;
    f->rss_delta_sum = 300ll * 1024 * 1024;
    f = fx_func(m, site(m, "not_measured", CODEPROF_SITE_PYTHON), 1, FX_S(0.01), FX_S(0.01),
                FX_S(0.01));
    f->rss_count = 0;
    f->rss_delta_max = 900ll * 1024 * 1024; /* ignored: nothing measured */
    f = fx_func(m, site(m, "exactly", CODEPROF_SITE_PYTHON), 1, FX_S(0.01), FX_S(0.01),
                FX_S(0.01));
    f->rss_count = 1;
    f->rss_delta_max = 100ll * 1024 * 1024;
    f = fx_func(m, site(m, "shrinks", CODEPROF_SITE_PYTHON), 1, FX_S(0.01), FX_S(0.01),
                FX_S(0.01));
    f->rss_count = 1;
    f->rss_delta_max = -500ll * 1024 * 1024;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 1);
    const cp_finding *x = &m->findings[0];
    assert_string_equal(x->rule, "CP-MEM-001");
    assert_string_equal(x->category, "memory_intensive_functions");
    assert_string_equal(x->subject, "load_video");
    assert_string_equal(x->unit, "bytes");
    assert_true(x->value == 200.0 * 1024 * 1024);
    assert_true(x->severity == 2.0);
    /* regression (issue 7): MiB printed as MiB, never "MB" */
    assert_non_null(strstr(x->recommendation, "up to 200.0 MiB in one call"));
    assert_non_null(strstr(x->recommendation, "4 calls measured"));
    assert_non_null(strstr(x->recommendation, "+300.0 MiB net"));
    assert_non_null(strstr(x->recommendation, "100.0 MiB threshold"));
    assert_null(strstr(x->recommendation, " MB"));
    assert_true(x->saving_s == 0); /* memory is not time */
    cp_model_free(m);
}

/* Findings are ranked by the time a fix would save (saving_s), then by
 * severity: a 9 s function whose longest call is 1.5 s (severity 1.5)
 * outranks a 3 s one (severity 3); memory findings save no time and come
 * last. */
static void test_saving_order_and_idempotence(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    m->cfg.memory_intensive_bytes = 1000;
    fx_func(m, site(m, "sev15", CODEPROF_SITE_PYTHON), 1, FX_S(9), FX_S(9), FX_S(1.5));
    fx_func(m, site(m, "sev3", CODEPROF_SITE_PYTHON), 1, FX_S(3), FX_S(3), FX_S(3));
    fx_func(m, site(m, "sev3b", CODEPROF_SITE_PYTHON), 1, FX_S(3), FX_S(3), FX_S(2));
    cp_mfunc *f = fx_func(m, site(m, "mem2", CODEPROF_SITE_PYTHON), 1, FX_S(0.1), FX_S(0.1),
                          FX_S(0.1));
    f->rss_count = 1;
    f->rss_delta_max = 2000;
    f->rss_delta_sum = 2000;
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 4);
    assert_string_equal(m->findings[0].subject, "sev15");
    assert_true(m->findings[0].saving_s > 8.99 && m->findings[0].saving_s < 9.01);
    /* equal savings: the higher severity first */
    assert_string_equal(m->findings[1].subject, "sev3");
    assert_string_equal(m->findings[2].subject, "sev3b");
    assert_true(m->findings[1].saving_s == m->findings[2].saving_s);
    assert_string_equal(m->findings[3].subject, "mem2");
    for (uint32_t i = 1; i < m->nfindings; i++)
        assert_true(m->findings[i - 1].saving_s >= m->findings[i].saving_s);
    /* running again replaces, never duplicates */
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 4);
    assert_string_equal(m->findings[0].subject, "sev15");
    cp_model_free(m);
}

/* A function whose time is spread over many small callees.  With the
 * tracer on (the flag, or traced Python frames in the tree) the callees
 * are in the tree already: no "enable the tracer" advice (issue 7). */
static cp_model *spread_model(codeprof_site_kind kind) {
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t run = site(m, "run_all", kind);
    uint32_t root = fx_thread(m, 1);
    uint32_t n = fx_node(m, root, run, 1, FX_S(2), FX_S(0.5));
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "part_%d", i);
        fx_node(m, n, site(m, name, kind), 1, FX_S(0.15), FX_S(0.15));
    }
    fx_func(m, run, 1, FX_S(2), FX_S(0.5), FX_S(2));
    return m;
}

static void test_no_tracer_advice_when_traced(void **state) {
    (void)state;
    cp_model *m = spread_model(CODEPROF_SITE_PYTHON); /* traced frames in the tree */
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find(m, "slow_functions", "run_all");
    assert_non_null(f);
    assert_null(strstr(f->recommendation, "enable_cprofile"));
    assert_null(strstr(f->recommendation, "codeprof run"));
    assert_non_null(strstr(f->recommendation, "spread over its callees"));
    assert_non_null(strstr(f->recommendation, "call tree"));
    cp_model_free(m);

    m = spread_model(CODEPROF_SITE_SCOPE); /* scopes only, tracer flag on */
    m->python_traced = 1;
    assert_int_equal(cp_rules_run(m), 0);
    f = find(m, "slow_functions", "run_all");
    assert_null(strstr(f->recommendation, "enable_cprofile"));
    /* the same scopes without the tracer: profiling the callees is the advice */
    m->python_traced = 0;
    assert_int_equal(cp_rules_run(m), 0);
    f = find(m, "slow_functions", "run_all");
    assert_non_null(strstr(f->recommendation, "enable_cprofile=True"));
    cp_model_free(m);
}

/* CPU time tells a function that sleeps from one that computes: "vectorize"
 * only for the latter (issue 7: "vectorize it" for a function that sleeps). */
static void test_waits_versus_computes(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    cp_mfunc *f = fx_func(m, site(m, "sleepy", CODEPROF_SITE_PYTHON), 1, FX_S(2), FX_S(2),
                          FX_S(2));
    f->cpu_count = 1;
    f->cpu_ns = FX_S(0.02);
    f = fx_func(m, site(m, "busy", CODEPROF_SITE_PYTHON), 2, FX_S(2), FX_S(2), FX_S(1.5));
    f->cpu_count = 2;
    f->cpu_ns = FX_S(1.8);
    f = fx_func(m, site(m, "unmeasured", CODEPROF_SITE_PYTHON), 1, FX_S(2), FX_S(2), FX_S(2));
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *x = find(m, "slow_functions", "sleepy");
    assert_non_null(x);
    assert_non_null(strstr(x->recommendation, "it waits (I/O, sleep, a lock), not computes"));
    assert_non_null(strstr(x->recommendation, "on a CPU 1% of its time"));
    assert_null(strstr(x->recommendation, "vectorized"));
    x = find(m, "slow_functions", "busy");
    assert_non_null(strstr(x->recommendation, "vectorized NumPy/torch"));
    assert_non_null(strstr(x->recommendation, "on a CPU 90% of its time"));
    assert_null(strstr(x->recommendation, "not computes"));
    x = find(m, "slow_functions", "unmeasured"); /* no CPU time: no claim either way */
    assert_null(strstr(x->recommendation, "on a CPU"));
    assert_null(strstr(x->recommendation, "not computes"));
    cp_model_free(m);

    /* a callee that waits (many calls, none slow by itself) */
    m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t outer = site(m, "outer", CODEPROF_SITE_PYTHON);
    uint32_t blob = site(m, "read_blob", CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t n = fx_node(m, root, outer, 1, FX_S(3), FX_S(0.3));
    fx_node(m, n, blob, 6, FX_S(2.7), FX_S(2.7));
    fx_func(m, outer, 1, FX_S(3), FX_S(0.3), FX_S(3));
    f = fx_func(m, blob, 6, FX_S(2.7), FX_S(2.7), FX_S(0.5));
    f->cpu_count = 6;
    f->cpu_ns = FX_S(0.1);
    assert_int_equal(cp_rules_run(m), 0);
    x = find(m, "slow_functions", "outer");
    assert_non_null(x);
    assert_non_null(strstr(x->recommendation, "waiting in its callee read_blob (2.70 s, 90%"));
    assert_null(strstr(x->recommendation, "vectorize"));
    cp_model_free(m);
}

/* A container's saving loses what a reported function inside it explains,
 * so the cause is not outranked by its container. */
static void test_container_discounted_by_nested_finding(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t epoch = site(m, "epoch_0", CODEPROF_SITE_SCOPE);
    uint32_t train = site(m, "train_step", CODEPROF_SITE_PYTHON);
    uint32_t exp = site(m, "export_checkpoint", CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t blob = site(m, "write_blob", CODEPROF_SITE_PYTHON);
    uint32_t e = fx_node(m, root, epoch, 1, FX_S(10), FX_S(1));
    fx_node(m, e, train, 10, FX_S(5), FX_S(5));
    uint32_t x = fx_node(m, e, exp, 1, FX_S(4), FX_S(2.5));
    fx_node(m, x, blob, 1, FX_S(1.5), FX_S(1.5));
    fx_func(m, epoch, 1, FX_S(10), FX_S(1), FX_S(10));
    fx_func(m, train, 10, FX_S(5), FX_S(5), FX_S(0.5));
    fx_func(m, exp, 1, FX_S(4), FX_S(2.5), FX_S(4));
    fx_func(m, blob, 1, FX_S(1.5), FX_S(1.5), FX_S(1.5));
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *fe = find(m, "slow_functions", "epoch_0");
    const cp_finding *fx = find(m, "slow_functions", "export_checkpoint");
    const cp_finding *fb = find(m, "slow_functions", "write_blob");
    assert_non_null(fe);
    assert_non_null(fx);
    assert_non_null(fb);
    assert_true(fb->saving_s > 1.49 && fb->saving_s < 1.51);
    assert_true(fx->saving_s > 2.49 && fx->saving_s < 2.51); /* 4 s less the 1.5 s inside */
    /* 10 s less export's 2.5 s and write_blob's 1.5 s: nesting counted once */
    assert_true(fe->saving_s > 5.99 && fe->saving_s < 6.01);
    assert_string_equal(m->findings[0].subject, "epoch_0");
    assert_string_equal(m->findings[1].subject, "export_checkpoint");
    assert_string_equal(m->findings[2].subject, "write_blob");
    cp_model_free(m);
}

/* The facade's loader wrapper (a code_profiler generator frame) sits
 * between an epoch scope and the loader's waits: it is looked through, and
 * the epoch's advice points at the data findings, never at the wrapper. */
static void test_loop_waiting_through_profiler_frame(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.slow_function_s = 1.0;
    uint32_t epoch = site(m, "epoch_0", CODEPROF_SITE_SCOPE);
    uint32_t wrap = site(m, "code_profiler.data.ProfiledDataLoader.__iter__", CODEPROF_SITE_PYTHON);
    uint32_t ld = site(m, "DataLoader(Clips)#1", CODEPROF_SITE_LOADER);
    uint32_t train = site(m, "train_step", CODEPROF_SITE_FUNCTION);
    uint32_t root = fx_thread(m, 1);
    uint32_t e = fx_node(m, root, epoch, 1, FX_S(5), FX_S(0.1));
    uint32_t w = fx_node(m, e, wrap, 20, FX_S(3.9), FX_S(0.1));
    fx_node(m, w, ld, 20, FX_S(3.8), FX_S(3.8));
    fx_node(m, e, train, 20, FX_S(1), FX_S(1));
    fx_func(m, epoch, 1, FX_S(5), FX_S(0.1), FX_S(5));
    fx_func(m, wrap, 20, FX_S(3.9), FX_S(0.1), FX_S(0.5));
    fx_func(m, ld, 20, FX_S(3.8), FX_S(3.8), FX_S(0.5));
    fx_func(m, train, 20, FX_S(1), FX_S(1), FX_S(0.05));
    assert_int_equal(cp_rules_run(m), 0);
    const cp_finding *f = find(m, "slow_functions", "epoch_0");
    assert_non_null(f);
    assert_non_null(strstr(f->recommendation,
                           "3.80 s of it (76%) is the loop waiting for batches from "
                           "DataLoader(Clips)#1"));
    assert_null(strstr(f->recommendation, "code_profiler"));
    cp_model_free(m);
}

static void test_empty_model(void **state) {
    (void)state;
    cp_model *m = fx_model();
    assert_int_equal(cp_rules_run(m), 0);
    assert_int_equal(m->nfindings, 0);
    cp_model_free(m);
}

static void test_rule_table(void **state) {
    (void)state;
    size_t n = cp_rules_count();
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        const cp_rule_info *r = cp_rule_at(i);
        assert_non_null(r);
        assert_true(strlen(r->id) > 0 && strlen(r->id) < sizeof(((cp_finding *)0)->rule));
        assert_true(strlen(r->category) > 0 &&
                    strlen(r->category) < sizeof(((cp_finding *)0)->category));
        assert_true(strlen(r->summary) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(cp_rule_at(j)->id, r->id);
    }
    assert_null(cp_rule_at(n));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_threshold_is_strict),
        cmocka_unit_test(test_slow_uses_configured_threshold),
        cmocka_unit_test(test_slow_only_code_kinds),
        cmocka_unit_test(test_recommendation_quotes_numbers),
        cmocka_unit_test(test_recommendation_names_heaviest_callee),
        cmocka_unit_test(test_slow_chain_reports_deepest),
        cmocka_unit_test(test_slow_callees_sum_and_share),
        cmocka_unit_test(test_slow_indirect_recursion),
        cmocka_unit_test(test_slow_background_waits),
        cmocka_unit_test(test_slow_loop_with_own_work_and_clamp),
        cmocka_unit_test(test_slow_decorated_twin_reported_once),
        cmocka_unit_test(test_slow_import_noise),
        cmocka_unit_test(test_slow_profiler_overhead),
        cmocka_unit_test(test_slow_wait_in_module_body),
        cmocka_unit_test(test_memory_rule),
        cmocka_unit_test(test_saving_order_and_idempotence),
        cmocka_unit_test(test_no_tracer_advice_when_traced),
        cmocka_unit_test(test_waits_versus_computes),
        cmocka_unit_test(test_container_discounted_by_nested_finding),
        cmocka_unit_test(test_loop_waiting_through_profiler_frame),
        cmocka_unit_test(test_empty_model),
        cmocka_unit_test(test_rule_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
