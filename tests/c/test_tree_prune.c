/* test_tree_prune.c -- the report policy's pruned call tree
 * (src/report/tree_prune.c) and the bounded JSON report it feeds
 * (report_json.c) on hand-built models, up to 200k nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"
#include "report/report.h"
#include "report/strbuf.h"
#include "report/tree_prune.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static int cmp_func_incl(const void *a, const void *b) {
    const cp_mfunc *x = a, *y = b;
    return (x->incl_ns < y->incl_ns) - (x->incl_ns > y->incl_ns);
}

/* A model of `nthreads` threads with `n` nodes in all over `nsites`
 * sites: random shapes (parents drawn among recent nodes, so trees are
 * both deep and wide), consistent times (inclusive = self + children),
 * and a flat table summing nodes per site. */
static cp_model *big_model(uint32_t n, uint32_t nthreads, uint32_t nsites) {
    cp_model *m = fx_model();
    uint32_t *sites = malloc(nsites * sizeof *sites);
    assert_non_null(sites);
    char name[32];
    for (uint32_t i = 0; i < nsites; i++) {
        snprintf(name, sizeof name, "fn_%u", i);
        sites[i] = fx_site(m, name, i % 3 ? "pipeline/stage.py" : "", i, CODEPROF_SITE_PYTHON);
    }
    uint32_t per = n / nthreads;
    for (uint32_t t = 0; t < nthreads; t++) {
        uint32_t root = fx_thread(m, 1000 + t);
        for (uint32_t k = 0; k < per; k++) {
            uint32_t span = m->nnodes - root;
            uint32_t back = span < 64 ? span : 64;
            uint32_t parent = k < 4 ? root : m->nnodes - 1 - rnd(back);
            uint64_t self = 1000 + rnd(1000000);
            fx_node(m, parent, sites[rnd(nsites)], 1 + rnd(9), self, self);
        }
    }
    /* parents come before children: sum inclusive times upwards */
    for (uint32_t i = m->nnodes; i-- > 0;) {
        uint32_t p = m->nodes[i].parent;
        if (p != CP_NONE)
            m->nodes[p].incl_ns += m->nodes[i].incl_ns;
    }
    /* the flat table: per model site index */
    uint32_t nidx = m->sites.n + 1;
    uint64_t(*acc)[3] = calloc(nidx, sizeof *acc);
    assert_non_null(acc);
    for (uint32_t i = 0; i < m->nnodes; i++) {
        const cp_mnode *x = &m->nodes[i];
        if (x->parent == CP_NONE)
            continue;
        acc[x->site][0] += x->count;
        acc[x->site][1] += x->incl_ns;
        acc[x->site][2] += x->self_ns;
    }
    for (uint32_t s = 0; s < nsites; s++)
        if (acc[sites[s]][0])
            fx_func(m, sites[s], acc[sites[s]][0], acc[sites[s]][1], acc[sites[s]][2],
                    acc[sites[s]][1]);
    free(acc);
    qsort(m->funcs, m->nfuncs, sizeof *m->funcs, cmp_func_incl);
    free(sites);
    return m;
}

/* Checks what the writer relies on: every kept node's parent is kept;
 * at every kept node, kept children + the "other" child hold exactly the
 * children's calls, time and nodes; kept nodes fit the budget. */
static void check_exact(const cp_model *m, const cp_pruned_tree *pt, const cp_report_policy *p) {
    uint64_t kept = 0, accounted = 0, total_nodes = 0, others = 0;
    /* children's sums per parent, from the parent links (not via pt) */
    struct sums {
        uint64_t calls, incl, kcalls, kincl, nkept;
    } *sum = calloc(m->nnodes + 1, sizeof *sum);
    assert_non_null(sum);
    for (uint32_t c = 0; c < m->nnodes; c++) {
        uint32_t x = m->nodes[c].parent;
        if (x == CP_NONE)
            continue;
        sum[x].calls += m->nodes[c].count;
        sum[x].incl += m->nodes[c].incl_ns;
        if (pt->keep[c]) {
            sum[x].kcalls += m->nodes[c].count;
            sum[x].kincl += m->nodes[c].incl_ns;
            sum[x].nkept++;
        }
    }
    for (uint32_t t = 0; t < m->nthreads; t++)
        total_nodes += pt->below[m->threads[t].root];
    for (uint32_t x = 0; x < m->nnodes; x++) {
        const cp_mnode *n = &m->nodes[x];
        if (!pt->keep[x])
            continue;
        if (n->parent != CP_NONE) {
            kept++;
            assert_true(pt->keep[n->parent]);
        }
        if (cp_pruned_tree_elided(pt, m, p, x)) {
            accounted += pt->below[x];
            continue;
        }
        /* the written children come first, largest first */
        const uint32_t *kids;
        uint32_t nk = cp_pruned_tree_kept_children(pt, x, &kids);
        assert_int_equal(nk, sum[x].nkept);
        for (uint32_t k = 0; k < nk; k++) {
            assert_true(pt->keep[kids[k]]);
            assert_int_equal(m->nodes[kids[k]].parent, x);
            if (k)
                assert_true(m->nodes[kids[k - 1]].incl_ns >= m->nodes[kids[k]].incl_ns);
        }
        uint64_t calls = sum[x].calls, incl = sum[x].incl;
        uint64_t kcalls = sum[x].kcalls, kincl = sum[x].kincl;
        uint64_t on, oc, oi;
        uint32_t folded = cp_pruned_tree_other(pt, m, x, &on, &oc, &oi);
        others += folded > 0;
        assert_int_equal(kcalls + oc, calls);
        assert_int_equal(kincl + oi, incl);
        accounted += on;
    }
    free(sum);
    assert_true(kept <= p->tree_max_nodes);
    assert_int_equal(kept, pt->kept);
    assert_int_equal(kept + others, pt->written);
    assert_int_equal(kept + accounted, total_nodes);
}

static void test_big_model_is_bounded_and_exact(void **state) {
    (void)state;
    enum { N = 200000 };
    cp_model *m = big_model(N, 4, 5000);
    cp_report_policy p;
    cp_report_policy_of(&m->cfg, &p);
    cp_pruned_tree pt;
    assert_int_equal(cp_pruned_tree_build(&pt, m, &p), 0);
    check_exact(m, &pt, &p);
    assert_true(pt.kept > 0);
    cp_pruned_tree_free(&pt);

    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    /* 200k nodes: the report stays well under 1 MB */
    assert_true(sb.len < 1000000);
    char want[96];
    uint64_t calls = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++)
        calls += m->funcs[i].calls;
    snprintf(want, sizeof want, "\"total_functions_profiled\":%u,\"total_calls\":%llu,",
             m->nfuncs, (unsigned long long)calls);
    assert_non_null(strstr(sb.data, want));
    snprintf(want, sizeof want, "\"tree_nodes\":%u,", N);
    assert_non_null(strstr(sb.data, want));
    /* at most 50 + 50 functions listed, the rest counted */
    const char *funcs = strstr(sb.data, "\"functions\":[");
    const char *end = strstr(sb.data, "\"functions_omitted\":");
    assert_non_null(funcs);
    assert_non_null(end);
    unsigned listed = 0;
    for (const char *q = funcs; (q = strstr(q, "{\"function\":")) && q < end; q++)
        listed++;
    assert_true(listed >= 50 && listed <= 100);
    snprintf(want, sizeof want, "\"functions_omitted\":%u,", m->nfuncs - listed);
    assert_non_null(strstr(sb.data, want));
    cp_strbuf_free(&sb);

    /* a tighter policy is exact too */
    m->cfg.report_tree_max_nodes = 37;
    m->cfg.report_tree_min_share = 0;
    cp_report_policy_of(&m->cfg, &p);
    assert_int_equal(cp_pruned_tree_build(&pt, m, &p), 0);
    assert_int_equal(pt.kept, 37);
    check_exact(m, &pt, &p);
    cp_pruned_tree_free(&pt);
    cp_model_free(m);
}

static void test_share_threshold_folds_small_children(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.report_tree_min_share = 0.1;
    uint32_t a = fx_site(m, "a", "x.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t b = fx_site(m, "b", "x.py", 2, CODEPROF_SITE_PYTHON);
    uint32_t c = fx_site(m, "c", "x.py", 3, CODEPROF_SITE_PYTHON);
    uint32_t root = fx_thread(m, 1);
    uint32_t top = fx_node(m, root, a, 1, FX_S(10), FX_S(8.5));
    uint32_t at = fx_node(m, top, b, 3, FX_S(1), FX_S(1));      /* exactly 10%: kept  */
    uint32_t below = fx_node(m, top, c, 7, FX_S(0.5), FX_S(0.5)); /* 5%: folded        */
    cp_report_policy p;
    cp_report_policy_of(&m->cfg, &p);
    cp_pruned_tree pt;
    assert_int_equal(cp_pruned_tree_build(&pt, m, &p), 0);
    assert_true(pt.keep[top] && pt.keep[at]);
    assert_false(pt.keep[below]);
    assert_int_equal(pt.total_ns, FX_S(10));
    uint64_t on, oc, oi;
    assert_int_equal(cp_pruned_tree_other(&pt, m, top, &on, &oc, &oi), 1);
    assert_int_equal(on, 1);
    assert_int_equal(oc, 7);
    assert_int_equal(oi, FX_S(0.5));
    assert_int_equal(pt.written, 3);
    check_exact(m, &pt, &p);
    cp_pruned_tree_free(&pt);

    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    assert_non_null(strstr(sb.data, "{\"site\":0,\"calls\":1,\"inclusive_s\":10,\"self_s\":8.5,"
                                    "\"cpu_s\":null,\"samples\":0,\"estimated\":false,"
                                    "\"children\":[{\"site\":1,\"calls\":3,"
                                    "\"inclusive_s\":1,\"self_s\":1,\"cpu_s\":null,"
                                    "\"samples\":0,\"estimated\":false},"
                                    "{\"other\":1,\"calls\":7,\"inclusive_s\":0.5,"
                                    "\"self_s\":0.5,\"samples\":0,\"estimated\":false}]}"));
    /* the folded site is not in the site table */
    assert_null(strstr(sb.data, "\"function\":\"c\",\"file\":0"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_budget_is_spent_largest_first_across_threads(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.report_tree_max_nodes = 2;
    m->cfg.report_tree_min_share = 0;
    uint32_t s = fx_site(m, "s", "x.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t r1 = fx_thread(m, 1);
    uint32_t big = fx_node(m, r1, s, 1, FX_S(10), FX_S(1));
    uint32_t kid = fx_node(m, big, s, 1, FX_S(9), FX_S(9));
    uint32_t r2 = fx_thread(m, 2);
    uint32_t mid = fx_node(m, r2, s, 1, FX_S(8), FX_S(8));
    cp_report_policy p;
    cp_report_policy_of(&m->cfg, &p);
    cp_pruned_tree pt;
    assert_int_equal(cp_pruned_tree_build(&pt, m, &p), 0);
    assert_true(pt.keep[big] && pt.keep[kid]);
    assert_false(pt.keep[mid]); /* 8 s < 9 s: the budget went to the larger node */
    uint64_t on, oc, oi;
    assert_int_equal(cp_pruned_tree_other(&pt, m, r2, &on, &oc, &oi), 1);
    assert_int_equal(oi, FX_S(8));
    assert_int_equal(pt.thread_incl[1], FX_S(8));
    check_exact(m, &pt, &p);
    cp_pruned_tree_free(&pt);

    /* no budget: each thread keeps its time in one "other" node */
    m->cfg.report_tree_max_nodes = 0;
    cp_report_policy_of(&m->cfg, &p);
    assert_int_equal(cp_pruned_tree_build(&pt, m, &p), 0);
    assert_int_equal(pt.kept, 0);
    assert_int_equal(pt.written, 2);
    check_exact(m, &pt, &p);
    cp_pruned_tree_free(&pt);
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    assert_non_null(strstr(sb.data, "\"inclusive_s\":10,\"children\":[{\"other\":2,\"calls\":1,"
                                    "\"inclusive_s\":10,\"self_s\":10,\"samples\":0,"
                                    "\"estimated\":false}]}"));
    assert_non_null(strstr(sb.data, "\"sites\":[]"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_top_functions_by_inclusive_and_by_self(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.report_top_functions = 2;
    const char *names[] = {"A", "B", "C", "D", "E"};
    /* inclusive: A > B > C > D > E; self: E > D > C > B > A */
    for (int i = 0; i < 5; i++) {
        uint32_t s = fx_site(m, names[i], "f.py", (uint32_t)i, CODEPROF_SITE_PYTHON);
        fx_func(m, s, 1, FX_S(10 - i), FX_S(1 + i), FX_S(10 - i));
    }
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    const char *a = strstr(sb.data, "{\"function\":\"A\"");
    const char *b = strstr(sb.data, "{\"function\":\"B\"");
    const char *d = strstr(sb.data, "{\"function\":\"D\"");
    const char *e = strstr(sb.data, "{\"function\":\"E\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(d);
    assert_non_null(e);
    assert_true(a < b && b < d && d < e); /* in inclusive order */
    assert_null(strstr(sb.data, "{\"function\":\"C\""));
    assert_non_null(strstr(sb.data, "\"total_functions_profiled\":5,\"total_calls\":5,"));
    assert_non_null(strstr(sb.data, "\"functions_omitted\":1,"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

static void test_files_once_and_null_without_file(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->cfg.report_tree_min_share = 0;
    uint32_t root = fx_thread(m, 1);
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "f%d", i);
        uint32_t s = fx_site(m, name, i < 5 ? "same/file.py" : "", (uint32_t)i,
                             CODEPROF_SITE_PYTHON);
        fx_node(m, root, s, 1, FX_S(10 - i), FX_S(10 - i));
    }
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(cp_report_json(m, &sb), 0);
    assert_non_null(strstr(sb.data, "\"files\":[\"same/file.py\"],\"sites\":[{\"function\":\"f0\","
                                    "\"file\":0,\"line\":0,\"kind\":\"python\"}"));
    assert_non_null(strstr(sb.data, "{\"function\":\"f9\",\"file\":null,\"line\":9,"));
    cp_strbuf_free(&sb);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_model_is_bounded_and_exact),
        cmocka_unit_test(test_share_threshold_folds_small_children),
        cmocka_unit_test(test_budget_is_spent_largest_first_across_threads),
        cmocka_unit_test(test_top_functions_by_inclusive_and_by_self),
        cmocka_unit_test(test_files_once_and_null_without_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
