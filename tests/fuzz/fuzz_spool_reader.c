/* fuzz_spool_reader.c -- libFuzzer harness for the worker spool reader
 * (src/data/spool_reader.c).  Any byte string is a spool candidate: the
 * reader must return, never read out of bounds (ASan), never overflow
 * (UBSan), and every record it delivers must satisfy the documented bounds;
 * a violation aborts, which libFuzzer reports with the input.
 *
 * Built by CMake with -DCODEPROF_BUILD_FUZZ=ON and clang; run by
 * `make test-fuzz` for a bounded time over tests/fuzz/corpus/spool. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/spool_reader.h"

typedef struct state {
    uint32_t next_site;
    uint64_t sum_ns;
} state;

static uint32_t on_site(void *ctx, const char *name, const char *file, uint32_t line,
                        codeprof_site_kind kind) {
    state *st = ctx;
    (void)line;
    /* name and file are NUL-terminated, non-empty strings of bounded size */
    size_t ln = strlen(name), lf = strlen(file);
    if (ln == 0 || ln + lf + 2 > CP_SPOOL_MAX_SITE_TEXT ||
        (unsigned)kind >= CODEPROF_SITE_KIND_COUNT_)
        abort();
    return ++st->next_site;
}

static void on_record(void *ctx, const cp_drec *r) {
    state *st = ctx;
    if (r->u.r.site == 0 || r->u.r.site > st->next_site)
        abort();
    if (r->type != CP_DREC_ITEM && r->type != CP_DREC_STAGE && r->type != CP_DREC_BATCH)
        abort();
    if (r->u.r.dur_ns > CP_SPOOL_MAX_DUR_NS || r->u.r.t_ns > CP_SPOOL_MAX_T_NS)
        abort();
    if (r->type == CP_DREC_BATCH && (r->u.r.index < 0 || r->u.r.index > CP_SPOOL_MAX_BATCH_ITEMS))
        abort();
    st->sum_ns += r->u.r.dur_ns;
    if (st->sum_ns > CP_SPOOL_MAX_SUM_NS)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    state st = {0, 0};
    cp_spool_visitor v = {on_site, on_record, &st};
    cp_spool_info info;
    cp_spool_status rc = cp_spool_decode(data, size, &v, &info);
    if (rc == CP_SPOOL_OK && info.records > size / sizeof(cp_drec))
        abort();
    return 0;
}
