/* site.c -- the process-wide site table and the per-session tables
 * (site.h). */
#include "core/site.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define NSLOTS (1u << CP_SITE_SLOT_BITS)

static cp_sitetab global_tab;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_ok;

static _Atomic(cp_sitetab *) local_tabs[NSLOTS];
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t next_slot;

static void global_init(void) {
    global_ok = cp_sitetab_init(&global_tab, CP_SITE_GLOBAL_CAP, 0) == 0;
}

static inline cp_sitetab *global(void) {
    pthread_once(&global_once, global_init);
    return global_ok ? &global_tab : NULL;
}

const cp_site_info *cp_site_get(uint32_t id) {
    if (id & CP_SITE_LOCAL_BIT) {
        uint32_t slot = (id >> CP_SITE_LOCAL_BITS) & (NSLOTS - 1);
        cp_sitetab *t = atomic_load_explicit(&local_tabs[slot], memory_order_acquire);
        return t ? cp_sitetab_get(t, id) : NULL;
    }
    cp_sitetab *g = global();
    return g ? cp_sitetab_get(g, id) : NULL;
}

uint32_t cp_site_count(void) {
    cp_sitetab *g = global();
    return g ? cp_sitetab_count(g) : 0;
}

uint64_t cp_site_dropped(void) {
    cp_sitetab *g = global();
    return g ? atomic_load_explicit(&g->dropped, memory_order_relaxed) : 0;
}

uint32_t codeprof_site(const char *name, const char *file, uint32_t line,
                       codeprof_site_kind kind) {
    cp_sitetab *g = global();
    if (!g || !name || (unsigned)kind >= CODEPROF_SITE_KIND_COUNT_)
        return 0;
    return cp_sitetab_intern(g, name, file, line, (uint16_t)kind);
}

void cp_site_set_global_cap_for_tests(uint32_t cap) {
    cp_sitetab *g = global();
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    if (cap < g->cap)
        g->cap = cap;
    pthread_mutex_unlock(&g->mu);
}

int cp_site_local_new(uint32_t cap) {
    if (cap > CP_SITE_LOCAL_MAX)
        cap = CP_SITE_LOCAL_MAX;
    cp_sitetab *t = malloc(sizeof *t);
    if (!t)
        return -1;
    int slot = -1;
    pthread_mutex_lock(&slots_mu);
    /* Round robin, so an id of a freed session is unlikely to name an
     * entry of the next one. */
    for (uint32_t k = 0; k < NSLOTS; k++) {
        uint32_t i = (next_slot + k) % NSLOTS;
        if (!atomic_load_explicit(&local_tabs[i], memory_order_relaxed)) {
            slot = (int)i;
            next_slot = i + 1;
            break;
        }
    }
    if (slot >= 0 &&
        cp_sitetab_init(t, cap, CP_SITE_LOCAL_BIT | ((uint32_t)slot << CP_SITE_LOCAL_BITS)) == 0)
        atomic_store_explicit(&local_tabs[slot], t, memory_order_release);
    else
        slot = -1;
    pthread_mutex_unlock(&slots_mu);
    if (slot < 0)
        free(t);
    return slot;
}

void cp_site_local_free(int slot) {
    if (slot < 0 || (uint32_t)slot >= NSLOTS)
        return;
    pthread_mutex_lock(&slots_mu);
    cp_sitetab *t = atomic_exchange(&local_tabs[slot], NULL);
    pthread_mutex_unlock(&slots_mu);
    if (t) {
        cp_sitetab_destroy(t);
        free(t);
    }
}

uint32_t cp_site_local_intern(int slot, const char *name, const char *file, uint32_t line,
                              uint16_t kind) {
    if (slot < 0 || (uint32_t)slot >= NSLOTS)
        return 0;
    cp_sitetab *t = atomic_load_explicit(&local_tabs[slot], memory_order_acquire);
    return t ? cp_sitetab_intern(t, name, file, line, kind) : 0;
}

uint64_t cp_site_local_dropped(int slot) {
    if (slot < 0 || (uint32_t)slot >= NSLOTS)
        return 0;
    cp_sitetab *t = atomic_load_explicit(&local_tabs[slot], memory_order_acquire);
    return t ? atomic_load_explicit(&t->dropped, memory_order_relaxed) : 0;
}

/* The forking thread holds every table mutex across fork, so the child
 * never inherits one held by a thread that no longer exists. */
void cp_site_atfork_prepare(void) {
    pthread_mutex_lock(&slots_mu);
    cp_sitetab *g = global();
    if (g)
        cp_sitetab_lock(g);
    for (uint32_t i = 0; i < NSLOTS; i++) {
        cp_sitetab *t = atomic_load_explicit(&local_tabs[i], memory_order_relaxed);
        if (t)
            cp_sitetab_lock(t);
    }
}

void cp_site_atfork_parent(void) {
    for (uint32_t i = 0; i < NSLOTS; i++) {
        cp_sitetab *t = atomic_load_explicit(&local_tabs[i], memory_order_relaxed);
        if (t)
            cp_sitetab_unlock(t);
    }
    cp_sitetab *g = global();
    if (g)
        cp_sitetab_unlock(g);
    pthread_mutex_unlock(&slots_mu);
}

void cp_site_atfork_child(void) {
    for (uint32_t i = 0; i < NSLOTS; i++) {
        cp_sitetab *t = atomic_load_explicit(&local_tabs[i], memory_order_relaxed);
        if (t)
            cp_sitetab_reinit_lock(t);
    }
    cp_sitetab *g = global();
    if (g)
        cp_sitetab_reinit_lock(g);
    pthread_mutex_init(&slots_mu, NULL);
}
