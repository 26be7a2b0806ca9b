/* stacktab.c -- PLACEHOLDER (the "samplemodel" engineer replaces it):
 * interns nothing. */
#include "sampling/stacktab.h"

#include <stdlib.h>

struct cp_stacktab {
    uint32_t max_stacks;
    uint64_t dropped;
};

cp_stacktab *cp_stacktab_new(uint32_t max_stacks) {
    cp_stacktab *t = calloc(1, sizeof *t);
    if (t)
        t->max_stacks = max_stacks;
    return t;
}
uint32_t cp_stacktab_intern(cp_stacktab *t, const cp_sframe *frames, uint32_t n) {
    (void)frames;
    (void)n;
    t->dropped++;
    return CP_STACK_OTHER;
}
int cp_stacktab_get(const cp_stacktab *t, uint32_t id, const cp_sframe **frames, uint32_t *n) {
    (void)t;
    (void)id;
    (void)frames;
    (void)n;
    return -1;
}
uint32_t cp_stacktab_count(const cp_stacktab *t) { (void)t; return 0; }
uint64_t cp_stacktab_dropped(const cp_stacktab *t) { return t->dropped; }
uint64_t cp_stacktab_bytes(const cp_stacktab *t) { (void)t; return sizeof(cp_stacktab); }
void cp_stacktab_reset(cp_stacktab *t) { t->dropped = 0; }
void cp_stacktab_free(cp_stacktab *t) { free(t); }
