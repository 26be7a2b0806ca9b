/* session_fixture.h -- real sessions on a fake clock for the tests that
 * build models from recorded scopes (test_model.c, test_model_io.c).
 * Header-only, test code only: every helper is static. */
#ifndef CP_TEST_SESSION_FIXTURE_H
#define CP_TEST_SESSION_FIXTURE_H

#include <stdatomic.h>
#include <stdint.h>

#include "codeprof/codeprof.h"
#include "core/clock.h"

static _Atomic uint64_t fake_now = 1000000;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }
static void advance(uint64_t ns) { atomic_fetch_add(&fake_now, ns); }

/* cmocka group setup: installs the fake clock. */
static int setup(void **state) {
    (void)state;
    cp_clock_set_fake(fake_clock);
    return 0;
}

/* A stopped session with percentiles on. */
static codeprof_session *new_session(void) {
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.flags |= CODEPROF_CFG_PERCENTILES;
    codeprof_session *s = NULL;
    assert_int_equal(codeprof_session_new(&cfg, &s, NULL), CODEPROF_OK);
    return s;
}

/* A process-wide site (fails the test on OOM). */
static uint32_t gsite(const char *name, const char *file, uint32_t line, codeprof_site_kind k) {
    uint32_t id = codeprof_site(name, file, line, k);
    assert_true(id > 0);
    return id;
}

/* `n` calls of `site` lasting `ns` each on the calling thread. */
static void calls(codeprof_session *s, uint32_t site, int n, uint64_t ns) {
    for (int i = 0; i < n; i++) {
        codeprof_scope_begin(s, site, 0);
        advance(ns);
        codeprof_scope_end(s, site, 0);
    }
}

#endif /* CP_TEST_SESSION_FIXTURE_H */
