/* heap_watch.c -- watcher slots for the peaks of open marks
 * (heap_watch.h). */
#include "memory/heap_watch.h"

#include <pthread.h>
#include <string.h>

static struct {
    pthread_mutex_t mu;
    uint8_t used[CP_HEAP_WATCHERS];
    int64_t max[CP_HEAP_WATCHERS];
    uint64_t rss_max[CP_HEAP_WATCHERS];
    uint64_t serial[CP_HEAP_WATCHERS];
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};
static _Atomic int64_t g_wmin = INT64_MAX;
static _Atomic uint32_t g_nused;

/* g.mu held: g_wmin = the smallest maximum of a used slot. */
static void recompute_locked(void) {
    int64_t m = INT64_MAX;
    for (uint32_t i = 0; i < CP_HEAP_WATCHERS; i++)
        if (g.used[i] && g.max[i] < m)
            m = g.max[i];
    atomic_store(&g_wmin, m);
}

int cp_heap_watch_claim(uint64_t serial, uint64_t rss, _Atomic int64_t *live, int64_t *live_at) {
    pthread_mutex_lock(&g.mu);
    int slot = -1;
    for (uint32_t i = 0; i < CP_HEAP_WATCHERS; i++)
        if (!g.used[i]) {
            slot = (int)i;
            break;
        }
    if (slot < 0) {
        pthread_mutex_unlock(&g.mu);
        *live_at = atomic_load(live);
        return -1;
    }
    atomic_store(&g_wmin, INT64_MIN); /* before live is read: see the header */
    int64_t l = atomic_load(live);
    g.used[slot] = 1;
    g.max[slot] = l;
    g.rss_max[slot] = rss;
    g.serial[slot] = serial;
    recompute_locked();
    pthread_mutex_unlock(&g.mu);
    atomic_fetch_add_explicit(&g_nused, 1, memory_order_relaxed);
    *live_at = l;
    return slot;
}

void cp_heap_watch_release(int slot, uint64_t serial, int64_t *max_live, uint64_t *max_rss) {
    if (slot < 0 || slot >= CP_HEAP_WATCHERS)
        return;
    pthread_mutex_lock(&g.mu);
    if (g.used[slot] && g.serial[slot] == serial) {
        if (g.max[slot] > *max_live)
            *max_live = g.max[slot];
        if (g.rss_max[slot] > *max_rss)
            *max_rss = g.rss_max[slot];
        g.used[slot] = 0;
        recompute_locked();
        atomic_fetch_sub_explicit(&g_nused, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&g.mu);
}

void cp_heap_watch_note_live(int64_t live) {
    if (__builtin_expect(live <= atomic_load(&g_wmin), 1))
        return;
    pthread_mutex_lock(&g.mu);
    for (uint32_t i = 0; i < CP_HEAP_WATCHERS; i++)
        if (g.used[i] && g.max[i] < live)
            g.max[i] = live;
    recompute_locked();
    pthread_mutex_unlock(&g.mu);
}

void cp_heap_watch_note_rss(uint64_t rss) {
    if (!atomic_load_explicit(&g_nused, memory_order_relaxed))
        return;
    pthread_mutex_lock(&g.mu);
    for (uint32_t i = 0; i < CP_HEAP_WATCHERS; i++)
        if (g.used[i] && g.rss_max[i] < rss)
            g.rss_max[i] = rss;
    pthread_mutex_unlock(&g.mu);
}

uint32_t cp_heap_watch_open_serials(uint64_t *out) {
    uint32_t n = 0;
    pthread_mutex_lock(&g.mu);
    for (uint32_t i = 0; i < CP_HEAP_WATCHERS; i++)
        if (g.used[i])
            out[n++] = g.serial[i];
    pthread_mutex_unlock(&g.mu);
    for (uint32_t i = 1; i < n; i++) { /* insertion sort: at most 256 */
        uint64_t v = out[i];
        uint32_t j = i;
        while (j > 0 && out[j - 1] > v) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = v;
    }
    return n;
}

void cp_heap_watch_rebase(int64_t live) {
    pthread_mutex_lock(&g.mu);
    for (uint32_t i = 0; i < CP_HEAP_WATCHERS; i++)
        if (g.used[i])
            g.max[i] = live;
    recompute_locked();
    pthread_mutex_unlock(&g.mu);
}

uint32_t cp_heap_watch_in_use(void) { return atomic_load(&g_nused); }

void cp_heap_watch_atfork_child(cp_heap_mark *top) {
    pthread_mutex_init(&g.mu, NULL);
    memset(g.used, 0, sizeof g.used);
    uint32_t n = 0;
    for (cp_heap_mark *m = top; m; m = m->parent) {
        m->live_enter = 0;
        if (m->watch >= 0 && m->watch < CP_HEAP_WATCHERS) {
            g.used[m->watch] = 1;
            g.max[m->watch] = 0;
            g.serial[m->watch] = m->serial;
            n++;
        }
    }
    atomic_store(&g_nused, n);
    recompute_locked();
}
