/* samplesink.c -- PLACEHOLDER (the "samplemodel" engineer replaces it):
 * registers nothing, folds nothing. */
#include "sampling/samplesink.h"

#include <stdlib.h>

struct cp_samplesink {
    struct cp_stacktab *tab;
};

static cp_samplesink placeholder_g;

cp_samplesink *cp_samplesink_register(struct codeprof_session *s, struct cp_stacktab *tab) {
    (void)s;
    placeholder_g.tab = tab;
    return &placeholder_g;
}
uint64_t cp_samplesink_count(const cp_samplesink *k) { (void)k; return 0; }
int cp_samplesink_fill_model(cp_samplesink *k, struct cp_model *m, struct codeprof_session *s) {
    (void)k;
    (void)m;
    (void)s;
    return 0;
}
