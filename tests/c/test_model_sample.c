/* test_model_sample.c -- merging models' sampling sections
 * (cp_msamp_merge, model_sample.c) and the sample fields of the flat-table
 * merge (cp_model_merge). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_sample.h"

/* A section with `nst` stacks of one frame each (site base+i, line i) and
 * timeline samples at t0, t0+step, ... on stack 1 + i % nst. */
static void section(cp_msampling *ms, uint32_t nst, uint32_t base, uint32_t nt, uint64_t t0,
                    uint64_t step, int32_t worker) {
    memset(ms, 0, sizeof *ms);
    ms->enabled = 1;
    ms->interval_ns = 1000000;
    ms->nstacks = nst + 1;
    ms->stacks = calloc(ms->nstacks, sizeof *ms->stacks);
    ms->nframes = nst;
    ms->frames = calloc(nst ? nst : 1, sizeof *ms->frames);
    for (uint32_t i = 0; i < nst; i++) {
        ms->frames[i] = (cp_msframe){base + i, i + 1};
        ms->stacks[i + 1] = (cp_mstack){i, 1};
    }
    ms->ntimeline = nt;
    ms->timeline = calloc(nt ? nt : 1, sizeof *ms->timeline);
    for (uint32_t i = 0; i < nt; i++)
        ms->timeline[i] = (cp_msample){.t_ns = t0 + i * step, .os_tid = 5, .pid = 1,
                                       .worker = worker, .stack = 1 + i % nst, .weight_ns = 7};
    ms->samples = nt;
    ms->samples_running = nt;
    ms->threads = 1;
    ms->ticks = nt;
    ms->dropped_stacks = 1;
}

static void test_merge_remaps_and_orders(void **state) {
    (void)state;
    cp_msampling d, s;
    section(&d, 2, 1, 4, 100, 10, -1); /* 100 110 120 130 */
    section(&s, 3, 1, 3, 105, 10, -1); /* 105 115 125 */
    uint32_t smap[4] = {0, 7, 8, 9};   /* src sites 1..3 -> dst 7..9 */
    assert_int_equal(cp_msamp_merge(&d, &s, smap, 3, 100), 0);
    assert_int_equal(d.nstacks, 3 + 4);
    assert_int_equal(d.nframes, 5);
    assert_int_equal(d.ntimeline, 7);
    assert_int_equal(d.samples, 7);
    assert_int_equal(d.threads, 2);
    assert_int_equal(d.dropped_stacks, 2);
    assert_int_equal(d.timeline_dropped, 0);
    uint64_t want_t[7] = {100, 105, 110, 115, 120, 125, 130};
    for (uint32_t i = 0; i < 7; i++)
        assert_int_equal(d.timeline[i].t_ns, want_t[i]);
    /* a src sample: worker tagged, its stack re-mapped to the src frames */
    const cp_msample *x = &d.timeline[1];
    assert_int_equal(x->worker, 3);
    const cp_mstack *st = &d.stacks[x->stack];
    assert_int_equal(st->n, 1);
    assert_int_equal(d.frames[st->first].site, 7); /* src site 1 */
    assert_int_equal(d.frames[st->first].line, 1);
    x = &d.timeline[3]; /* src's second sample: stack 2 -> site 2 -> 8 */
    assert_int_equal(d.frames[d.stacks[x->stack].first].site, 8);
    /* a dst sample untouched */
    assert_int_equal(d.timeline[0].worker, -1);
    assert_int_equal(d.frames[d.stacks[d.timeline[0].stack].first].site, 1);
    assert_int_equal(d.stacks[0].n, 0); /* (other stacks) */
    cp_msamp_free(&d);
    cp_msamp_free(&s);
}

/* cap 4 over 7 samples: the first 2 and the last 2 of the merged run. */
static void test_merge_bounds_the_timeline(void **state) {
    (void)state;
    cp_msampling d, s;
    section(&d, 1, 1, 4, 100, 10, -1);
    section(&s, 1, 1, 3, 105, 10, 2);
    d.timeline_dropped = 5;
    s.timeline_dropped = 1;
    uint32_t smap[2] = {0, 1};
    assert_int_equal(cp_msamp_merge(&d, &s, smap, 9, 4), 0);
    assert_int_equal(d.ntimeline, 4);
    assert_int_equal(d.timeline[0].t_ns, 100);
    assert_int_equal(d.timeline[1].t_ns, 105);
    assert_int_equal(d.timeline[2].t_ns, 125);
    assert_int_equal(d.timeline[3].t_ns, 130);
    assert_int_equal(d.timeline[1].worker, 2); /* a worker's own tag is kept */
    assert_int_equal(d.timeline_dropped, 5 + 1 + 3);
    cp_msamp_free(&d);
    cp_msamp_free(&s);
}

static void test_merge_of_empty_src_keeps_dst(void **state) {
    (void)state;
    cp_msampling d, s;
    section(&d, 2, 1, 4, 100, 10, -1);
    memset(&s, 0, sizeof s);
    s.samples = 0;
    cp_msframe *f = d.frames;
    assert_int_equal(cp_msamp_merge(&d, &s, NULL, 1, 100), 0);
    assert_ptr_equal(d.frames, f);
    assert_int_equal(d.ntimeline, 4);
    assert_int_equal(d.nstacks, 3);
    cp_msamp_free(&d);
}

/* The flat table: the five sample fields add by site. */
static void test_model_merge_adds_sample_fields(void **state) {
    (void)state;
    cp_model *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    codeprof_config_init(&a->cfg);
    codeprof_config_init(&b->cfg);
    uint32_t fa = cp_model_intern_site(a, "f", "x.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t fb = cp_model_intern_site(b, "f", "x.py", 1, CODEPROF_SITE_PYTHON);
    uint32_t gb = cp_model_intern_site(b, "g", "x.py", 9, CODEPROF_SITE_PYTHON);
    a->funcs = calloc(1, sizeof *a->funcs);
    a->nfuncs = 1;
    a->funcs[0] = (cp_mfunc){.site = fa, .calls = 2, .incl_ns = 100, .self_ns = 100, .samples = 3,
                             .samples_self = 2, .samples_running = 1, .sampled_ns = 30,
                             .sampled_self_ns = 20};
    b->funcs = calloc(2, sizeof *b->funcs);
    b->nfuncs = 2;
    b->funcs[0] = (cp_mfunc){.site = gb, .incl_ns = 500, .self_ns = 500, .samples = 50,
                             .samples_self = 50, .sampled_ns = 500, .sampled_self_ns = 500};
    b->funcs[1] = (cp_mfunc){.site = fb, .samples = 4, .samples_self = 4, .samples_running = 4,
                             .sampled_ns = 40, .sampled_self_ns = 40, .incl_ns = 40,
                             .self_ns = 40};
    assert_int_equal(cp_model_merge(a, b, 1), 0);
    assert_int_equal(a->nfuncs, 2);
    const cp_mfunc *g = &a->funcs[0], *f = &a->funcs[1]; /* sorted: g 500, f 140 */
    assert_string_equal(cp_model_site(a, g->site)->name, "g");
    assert_int_equal(g->calls, 0);
    assert_int_equal(g->samples, 50);
    assert_int_equal(f->calls, 2);
    assert_int_equal(f->samples, 7);
    assert_int_equal(f->samples_self, 6);
    assert_int_equal(f->samples_running, 5);
    assert_int_equal(f->sampled_ns, 70);
    assert_int_equal(f->sampled_self_ns, 60);
    cp_model_free(a);
    cp_model_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_remaps_and_orders),
        cmocka_unit_test(test_merge_bounds_the_timeline),
        cmocka_unit_test(test_merge_of_empty_src_keeps_dst),
        cmocka_unit_test(test_model_merge_adds_sample_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
