/* test_heap_tls.c -- libcodeprof's thread-local storage stays small.
 *
 * The extension module is loaded with dlopen and uses initial-exec TLS
 * (the hot paths: core/tbuf.c, the tracker in memory/heap.c), which makes
 * its whole TLS block static TLS: glibc can only give a dlopen'd module a
 * few hundred bytes of it ("cannot allocate memory in static TLS block" at
 * import).  Regression: a 3 KiB per-thread array of memory-scope marks in
 * scope.c made `import code_profiler` fail.  This test program links the
 * same objects, so its own TLS segment bounds the library's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <link.h>
#include <string.h>

#include "codeprof/codeprof.h"

static int find_tls(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    if (info->dlpi_name && info->dlpi_name[0])
        return 0; /* a shared library: not this program */
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS)
            *(uint64_t *)arg = info->dlpi_phdr[i].p_memsz;
    return 1;
}

static void test_tls_block_is_small(void **state) {
    (void)state;
    /* touch the library so its objects are linked in */
    uint32_t site = codeprof_site("tls_probe", "x.c", 1, CODEPROF_SITE_SCOPE);
    codeprof_scope_begin(NULL, site, CODEPROF_SCOPE_HEAP);
    codeprof_scope_end(NULL, site, CODEPROF_SCOPE_HEAP);
    uint64_t tls = 0;
    dl_iterate_phdr(find_tls, &tls);
    /* glibc's default surplus for dlopen'd modules is 512 bytes, shared
     * with every other module that needs it: keep well under it */
    assert_true(tls > 0);
    assert_true(tls <= 320);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_block_is_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
