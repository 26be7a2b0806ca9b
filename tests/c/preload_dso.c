/* preload_dso.c -- a module test_preload dlopens and dlcloses under the
 * preload library: it allocates in its constructor, in a function and
 * frees in its destructor. */
#include <stdlib.h>
#include <string.h>

static char *g_buf;

__attribute__((constructor)) static void dso_init(void) {
    g_buf = malloc(4096);
    if (g_buf)
        memset(g_buf, 1, 4096);
}

__attribute__((destructor)) static void dso_fini(void) {
    free(g_buf);
    g_buf = NULL;
}

__attribute__((visibility("default"))) void *preload_dso_make(size_t n) {
    char *p = calloc(1, n);
    return p;
}
