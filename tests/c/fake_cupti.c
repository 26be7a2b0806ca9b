/* fake_cupti.c -- a stand-in for libcupti.so's callback API, built as a
 * shared library for the tests (tests/c/test_gpu_sync.c; CMake block
 * "GPU fakes (gpusync)").
 *
 * It exports cuptiGetVersion, cuptiSubscribe, cuptiUnsubscribe,
 * cuptiEnableDomain, cuptiEnableCallback and cuptiGetResultString with
 * CUPTI's C ABI, keeping one subscriber as CUPTI does (a second
 * cuptiSubscribe fails with CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED),
 * and fake_cupti_* control functions the tests look up with dlsym:
 *  - fake_cupti_fire(domain, cbid, name, site): what CUPTI does around one
 *    API call: when the subscriber has that callback enabled, calls it with
 *    a CUpti_CallbackData-shaped record; returns 1 when it was delivered;
 *  - fake_cupti_enabled(domain, cbid), fake_cupti_disable_calls(): which
 *    callbacks are on, and how many cuptiEnableCallback(0, ...) were made;
 *  - fake_cupti_set_subscribe_result(code): cuptiSubscribe fails;
 *  - fake_cupti_fire_late(...): a callback delivered after unsubscribe.
 * The callback is called without the fake's lock held (a subscriber may
 * call cuptiEnableCallback from inside it, as the recorder does).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define FAKE_EXPORT __attribute__((visibility("default")))

enum {
    CUPTI_SUCCESS = 0,
    CUPTI_ERROR_INVALID_PARAMETER = 1,
    CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED = 39,
    CUPTI_ERROR_UNKNOWN = 999,
};
enum { DOMAIN_DRIVER = 1, DOMAIN_RUNTIME = 2, NDOMAINS = 5 };
#define MAX_CBID 1024

typedef void (*fake_cb)(void *ud, int domain, uint32_t cbid, const void *cbdata);

/* The leading fields of CUpti_CallbackData, in CUPTI's order. */
typedef struct fake_cbdata {
    int callbackSite; /* 0 enter, 1 exit */
    const char *functionName;
    const void *functionParams;
    void *functionReturnValue;
    const char *symbolName;
    void *context;
    uint32_t contextUid;
    uint64_t *correlationData;
    uint32_t correlationId;
} fake_cbdata;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int subscribed;
static fake_cb callback;
static void *userdata;
static int subscribe_result;
static int domain_on[NDOMAINS];
/* per cbid: 0 follows the domain, 1 on, 2 off */
static unsigned char cb_state[NDOMAINS][MAX_CBID];
static _Atomic unsigned long disable_calls;
static _Atomic unsigned long delivered;
static int handle_token; /* the subscriber handle points here */
static fake_cb last_cb;  /* the last subscriber's callback, kept after unsubscribe */
static void *last_ud;

FAKE_EXPORT void fake_cupti_reset(void) {
    pthread_mutex_lock(&mu);
    subscribed = 0;
    callback = NULL;
    userdata = NULL;
    subscribe_result = 0;
    memset(domain_on, 0, sizeof domain_on);
    memset(cb_state, 0, sizeof cb_state);
    pthread_mutex_unlock(&mu);
    atomic_store(&disable_calls, 0);
    atomic_store(&delivered, 0);
}

FAKE_EXPORT void fake_cupti_set_subscribe_result(int code) {
    pthread_mutex_lock(&mu);
    subscribe_result = code;
    pthread_mutex_unlock(&mu);
}

/* Someone else (another tool) subscribed: the next cuptiSubscribe fails. */
FAKE_EXPORT void fake_cupti_take_subscription(void) {
    pthread_mutex_lock(&mu);
    subscribed = 1;
    callback = NULL;
    pthread_mutex_unlock(&mu);
}

static int enabled_locked(int domain, uint32_t cbid) {
    if (!subscribed || !callback || domain <= 0 || domain >= NDOMAINS)
        return 0;
    if (cbid < MAX_CBID && cb_state[domain][cbid])
        return cb_state[domain][cbid] == 1;
    return domain_on[domain];
}

FAKE_EXPORT int fake_cupti_enabled(int domain, uint32_t cbid) {
    pthread_mutex_lock(&mu);
    int r = enabled_locked(domain, cbid);
    pthread_mutex_unlock(&mu);
    return r;
}
FAKE_EXPORT int fake_cupti_subscribed(void) {
    pthread_mutex_lock(&mu);
    int r = subscribed && callback;
    pthread_mutex_unlock(&mu);
    return r;
}
FAKE_EXPORT unsigned long fake_cupti_disable_calls(void) {
    return atomic_load(&disable_calls);
}
FAKE_EXPORT unsigned long fake_cupti_delivered(void) {
    return atomic_load(&delivered);
}

FAKE_EXPORT int fake_cupti_fire(int domain, uint32_t cbid, const char *name, int site) {
    pthread_mutex_lock(&mu);
    int on = enabled_locked(domain, cbid);
    fake_cb cb = callback;
    void *ud = userdata;
    pthread_mutex_unlock(&mu);
    if (!on)
        return 0;
    fake_cbdata d;
    memset(&d, 0, sizeof d);
    d.callbackSite = site;
    d.functionName = name;
    d.symbolName = NULL;
    cb(ud, domain, cbid, &d);
    atomic_fetch_add(&delivered, 1);
    return 1;
}

/* A callback CUPTI delivers late: to the last subscriber's callback, even
 * after it unsubscribed (a call that was in flight on another thread). */
FAKE_EXPORT void fake_cupti_fire_late(int domain, uint32_t cbid, const char *name, int site) {
    pthread_mutex_lock(&mu);
    fake_cb cb = last_cb;
    void *ud = last_ud;
    pthread_mutex_unlock(&mu);
    if (!cb)
        return;
    fake_cbdata d;
    memset(&d, 0, sizeof d);
    d.callbackSite = site;
    d.functionName = name;
    cb(ud, domain, cbid, &d);
}

/* ---- CUPTI ---- */

FAKE_EXPORT int cuptiGetVersion(uint32_t *v) {
    if (!v)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *v = 18;
    return CUPTI_SUCCESS;
}

FAKE_EXPORT int cuptiSubscribe(void **sub, fake_cb cb, void *ud) {
    if (!sub || !cb)
        return CUPTI_ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&mu);
    int rc = subscribe_result;
    if (!rc && subscribed)
        rc = CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
    if (!rc) {
        subscribed = 1;
        callback = cb;
        userdata = ud;
        last_cb = cb;
        last_ud = ud;
        memset(domain_on, 0, sizeof domain_on);
        memset(cb_state, 0, sizeof cb_state);
        *sub = &handle_token;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

FAKE_EXPORT int cuptiUnsubscribe(void *sub) {
    pthread_mutex_lock(&mu);
    int rc = (sub == &handle_token && subscribed) ? CUPTI_SUCCESS : CUPTI_ERROR_INVALID_PARAMETER;
    if (!rc) {
        subscribed = 0;
        callback = NULL;
        userdata = NULL;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

FAKE_EXPORT int cuptiEnableDomain(uint32_t enable, void *sub, int domain) {
    if (sub != &handle_token || domain <= 0 || domain >= NDOMAINS)
        return CUPTI_ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&mu);
    domain_on[domain] = enable != 0;
    memset(cb_state[domain], 0, sizeof cb_state[domain]);
    pthread_mutex_unlock(&mu);
    return CUPTI_SUCCESS;
}

FAKE_EXPORT int cuptiEnableCallback(uint32_t enable, void *sub, int domain, uint32_t cbid) {
    if (sub != &handle_token || domain <= 0 || domain >= NDOMAINS || cbid >= MAX_CBID)
        return CUPTI_ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&mu);
    cb_state[domain][cbid] = enable ? 1 : 2;
    pthread_mutex_unlock(&mu);
    if (!enable)
        atomic_fetch_add(&disable_calls, 1);
    return CUPTI_SUCCESS;
}

FAKE_EXPORT int cuptiGetResultString(int r, const char **s) {
    if (!s)
        return CUPTI_ERROR_INVALID_PARAMETER;
    switch (r) {
    case CUPTI_SUCCESS:
        *s = "CUPTI_SUCCESS";
        break;
    case CUPTI_ERROR_INVALID_PARAMETER:
        *s = "CUPTI_ERROR_INVALID_PARAMETER";
        break;
    case CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED:
        *s = "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED";
        break;
    default:
        *s = "CUPTI_ERROR_UNKNOWN";
        break;
    }
    return CUPTI_SUCCESS;
}
