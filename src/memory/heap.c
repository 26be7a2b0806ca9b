/* heap.c -- the process-wide allocation tracker (heap.h).
 * PLACEHOLDER committed by the lead so every part links; the heap engineer
 * replaces it with the real tracker. */
#include "memory/heap.h"

#include <string.h>

const char *cp_heap_domain_name(int dom) {
    static const char *const names[CP_HEAP_NDOMAINS] = {"raw", "mem", "object", "numpy", "native"};
    return dom >= 0 && dom < CP_HEAP_NDOMAINS ? names[dom] : "unknown";
}
codeprof_status cp_heap_start(const cp_heap_cfg *cfg, const void *owner, codeprof_error *err) {
    (void)cfg, (void)owner, (void)err;
    return CODEPROF_OK;
}
void cp_heap_stop(const void *owner) { (void)owner; }
void cp_heap_reset(const void *owner) { (void)owner; }
void cp_heap_set_stack_fn(cp_heap_stack_fn fn) { (void)fn; }
int cp_heap_active(void) { return 0; }
void cp_heap_on_alloc(int dom, void *ptr, size_t size) { (void)dom, (void)ptr, (void)size; }
void cp_heap_on_free(int dom, void *ptr) { (void)dom, (void)ptr; }
void cp_heap_on_realloc(int dom, void *old, void *new_ptr, size_t size) {
    (void)dom, (void)old, (void)new_ptr, (void)size;
}
int cp_heap_hook_enter(void) { return 1; }
void cp_heap_hook_leave(void) {}
void cp_heap_mark_enter(cp_heap_mark *m, uint32_t site) {
    memset(m, 0, sizeof *m);
    m->site = site;
    m->watch = -1;
}
void cp_heap_mark_exit(cp_heap_mark *m, cp_heap_span *out) {
    (void)m;
    memset(out, 0, sizeof *out);
}
void cp_heap_watch_rss(uint64_t rss) { (void)rss; }
void cp_heap_get_totals(cp_heap_totals *out) { memset(out, 0, sizeof *out); }
void cp_heap_foreach_live(cp_heap_group_fn fn, void *arg) { (void)fn, (void)arg; }
uint32_t cp_heap_snapshot_count(void) { return 0; }
int cp_heap_snapshot_get(uint32_t i, cp_heap_snapshot_info *info, cp_heap_group_fn fn, void *arg) {
    (void)i, (void)info, (void)fn, (void)arg;
    return -1;
}
const cp_heap_ops *cp_heap_local_ops(void) { return NULL; }
