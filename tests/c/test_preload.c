/* test_preload.c -- the native heap hooks (src/memory/preload.c) and the
 * pieces they are made of (native_arena.c, native_env.c, native_stack.c).
 *
 * The interposition tests re-run this executable as a child with
 * LD_PRELOAD=$CODEPROF_MALLOC_LIB and a scenario name; the child installs
 * an observer (codeprof_native_observe_v1) that logs what the library hands
 * to the tracker, runs the scenario and exits 0 when every check held.
 * Without the library (sanitizer builds, where the sanitizer's runtime owns
 * malloc) those tests are skipped; the others run everywhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memory/native_arena.h"
#include "memory/native_env.h"
#include "memory/native_stack.h"
#include "memory/preload.h"

extern char **environ;

/* ======================================================================
 * Child side: scenarios run with the library preloaded
 * ====================================================================== */

typedef struct ev {
    int op;
    void *old_ptr, *new_ptr;
    size_t size;
} ev;

#define LOG_CAP 4096
static ev g_log[LOG_CAP];
static atomic_size_t g_nlog;
static atomic_ullong g_count[5];
static atomic_ullong g_bytes[5];

static void observer(int op, void *old_ptr, void *new_ptr, size_t size) {
    if (op >= 1 && op <= 4) {
        atomic_fetch_add(&g_count[op], 1);
        atomic_fetch_add(&g_bytes[op], size);
    }
    size_t i = atomic_fetch_add(&g_nlog, 1);
    if (i < LOG_CAP)
        g_log[i] = (ev){op, old_ptr, new_ptr, size};
}

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "child check failed at %s:%d: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                           \
            _exit(1);                                                                 \
        }                                                                             \
    } while (0)

static void observe(codeprof_native_observer_v1 o) {
    void (*fn)(codeprof_native_observer_v1) = NULL;
    *(void **)&fn = dlsym(RTLD_DEFAULT, "codeprof_native_observe_v1");
    CHECK(fn != NULL);
    fn(o);
}

static size_t g_cursor;

static void mark(void) {
    g_cursor = atomic_load(&g_nlog);
}

/* The next logged event is (op, old, new, size); NULL/0 wildcards for
 * pointers when `any_ptr`. */
static void expect_ev(int line, int op, uintptr_t old_addr, uintptr_t new_addr, size_t size) {
    void *old_ptr = (void *)old_addr, *new_ptr = (void *)new_addr;
    size_t n = atomic_load(&g_nlog);
    if (g_cursor >= n) {
        fprintf(stderr, "child line %d: expected event op %d, none logged\n", line, op);
        _exit(1);
    }
    ev e = g_log[g_cursor++];
    if (e.op != op || e.old_ptr != old_ptr || e.new_ptr != new_ptr || e.size != size) {
        fprintf(stderr,
                "child line %d: expected (op %d, old %p, new %p, size %zu), "
                "got (op %d, old %p, new %p, size %zu)\n",
                line, op, old_ptr, new_ptr, size, e.op, e.old_ptr, e.new_ptr, e.size);
        _exit(1);
    }
}
/* Addresses are compared as integers (taken before the block is freed). */
#define EXPECT(op, o, n, s) expect_ev(__LINE__, (op), (uintptr_t)(o), (uintptr_t)(n), (s))
#define EXPECT_NONE()                                                                 \
    do {                                                                              \
        if (atomic_load(&g_nlog) != g_cursor) {                                       \
            fprintf(stderr, "child line %d: unexpected event op %d size %zu\n",        \
                    __LINE__, g_log[g_cursor].op, g_log[g_cursor].size);              \
            _exit(1);                                                                 \
        }                                                                             \
    } while (0)

enum { A = CODEPROF_NATIVE_ALLOC, F = CODEPROF_NATIVE_FREE, M = CODEPROF_NATIVE_MMAP,
       U = CODEPROF_NATIVE_MUNMAP };

/* Compiler barrier: keeps calls whose result is "unused" from being elided. */
static void *volatile g_sink;
/* SIZE_MAX, hidden from the compiler's allocation-size checks. */
static volatile size_t g_huge = SIZE_MAX;

static int scenario_api(void) {
    /* Blocks allocated before the observer (i.e. before tracking) starts. */
    void *early[64];
    for (int i = 0; i < 64; i++)
        early[i] = malloc(100 + (size_t)i);
    observe(observer);

    mark();
    void *p = malloc(1000);
    CHECK(p);
    EXPECT(A, NULL, p, 1000);
    free(p);
    EXPECT(F, p, NULL, 0);
    free(NULL);
    EXPECT_NONE();

    p = calloc(10, 100);
    CHECK(p && ((unsigned char *)p)[999] == 0);
    EXPECT(A, NULL, p, 1000);
    free(p);
    EXPECT(F, p, NULL, 0);
    errno = 0;
    g_sink = calloc(g_huge / 2, 4);
    CHECK(g_sink == NULL && errno == ENOMEM);
    EXPECT_NONE();

    p = realloc(NULL, 300);
    CHECK(p);
    EXPECT(A, NULL, p, 300);
    memset(p, 7, 300);
    void *q = realloc(p, 600);
    CHECK(q && ((unsigned char *)q)[299] == 7);
    EXPECT(F, p, NULL, 0);
    EXPECT(A, NULL, q, 600);
    uintptr_t qa = (uintptr_t)q;
    void *r = realloc(q, 0);
    EXPECT(F, qa, NULL, 0);
    if (r) { /* a C library whose realloc(p, 0) returns a block */
        uintptr_t ra = (uintptr_t)r;
        EXPECT(A, NULL, ra, 0);
        free(r);
        EXPECT(F, ra, NULL, 0);
    }
    EXPECT_NONE();

    CHECK(posix_memalign(&p, 4096, 5000) == 0);
    CHECK(((uintptr_t)p & 4095) == 0);
    EXPECT(A, NULL, p, 5000);
    free(p);
    EXPECT(F, p, NULL, 0);
    void *bad = (void *)1;
    CHECK(posix_memalign(&bad, 3, 10) == EINVAL);
    EXPECT_NONE();

    p = aligned_alloc(64, 640);
    CHECK(p && ((uintptr_t)p & 63) == 0);
    EXPECT(A, NULL, p, 640);
    free(p);
    EXPECT(F, p, NULL, 0);
    p = memalign(256, 100);
    CHECK(p && ((uintptr_t)p & 255) == 0);
    EXPECT(A, NULL, p, 100);
    free(p);
    EXPECT(F, p, NULL, 0);
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    p = valloc(10);
    CHECK(p && ((uintptr_t)p & (ps - 1)) == 0);
    EXPECT(A, NULL, p, 10);
    free(p);
    EXPECT(F, p, NULL, 0);
    p = pvalloc(10);
    CHECK(p && ((uintptr_t)p & (ps - 1)) == 0);
    EXPECT(A, NULL, p, ps);
    free(p);
    EXPECT(F, p, NULL, 0);

    p = reallocarray(NULL, 10, 10);
    CHECK(p);
    EXPECT(A, NULL, p, 100);
    errno = 0;
    g_sink = reallocarray(p, g_huge, 2);
    CHECK(g_sink == NULL && errno == ENOMEM);
    EXPECT_NONE();
    free(p);
    EXPECT(F, p, NULL, 0);

    size_t mib = 1u << 20;
    p = mmap(NULL, mib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    EXPECT(M, NULL, p, mib);
    q = mremap(p, mib, 4 * mib, MREMAP_MAYMOVE);
    CHECK(q != MAP_FAILED);
    EXPECT(U, p, NULL, mib);
    EXPECT(M, NULL, q, 4 * mib);
    CHECK(munmap(q, 4 * mib) == 0);
    EXPECT(U, q, NULL, 4 * mib);
    /* A file mapping is not heap. */
    int fd = open("/proc/self/exe", O_RDONLY);
    CHECK(fd >= 0);
    p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    EXPECT_NONE();
    munmap(p, 4096);
    close(fd);
    mark();

    /* Frees of blocks allocated before tracking: handed on, no crash. */
    for (int i = 0; i < 64; i++)
        free(early[i]);
    CHECK(atomic_load(&g_nlog) - g_cursor == 64);

    observe(NULL);
    mark();
    free(malloc(10));
    EXPECT_NONE();
    return 0;
}

/* ---- threads allocating while the main thread forks ---- */

static atomic_int g_stop;

static void *churn(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *keep[32] = {0};
    while (!atomic_load(&g_stop)) {
        seed = seed * 1103515245u + 12345u;
        unsigned i = (seed >> 8) % 32;
        size_t sz = 16 + (seed >> 4) % 70000;
        if ((seed >> 3) & 1) {
            free(keep[i]);
            keep[i] = (seed >> 5) & 1 ? malloc(sz) : calloc(1, sz);
        } else {
            keep[i] = realloc(keep[i], sz);
        }
    }
    for (int i = 0; i < 32; i++)
        free(keep[i]);
    return NULL;
}

static int scenario_fork_threads(void) {
    observe(observer);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        CHECK(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)) == 0);
    for (int k = 0; k < 40; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            alarm(20); /* a deadlocked child dies by SIGALRM */
            for (int i = 0; i < 1000; i++) {
                void *p = malloc((size_t)(i * 37 % 5000) + 1);
                p = realloc(p, 7000);
                free(p);
            }
            pthread_t ct;
            if (pthread_create(&ct, NULL, churn, (void *)(uintptr_t)99) == 0) {
                usleep(1000);
                atomic_store(&g_stop, 1);
                pthread_join(ct, NULL);
            }
            _exit(0);
        }
        int st = 0;
        CHECK(waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "fork %d: child status %#x\n", k, st);
            _exit(1);
        }
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&g_count[A]) > 1000);
    return 0;
}

/* ---- thread exit, exit() from a thread, after main ---- */

static pthread_key_t g_key;

static void key_dtor(void *v) {
    free(v);
    free(malloc(123)); /* allocation during thread exit */
}

static void *exiting(void *arg) {
    (void)arg;
    pthread_setspecific(g_key, malloc(64));
    for (int i = 0; i < 1000; i++)
        free(malloc(100));
    return NULL;
}

static void at_exit_alloc(void) {
    void *p = malloc(4096);
    memset(p, 0, 4096);
    free(p);
    static const char done[] = "atexit done\n";
    ssize_t w = write(1, done, sizeof done - 1);
    (void)w;
}

static void *exit_from_thread(void *arg) {
    (void)arg;
    usleep(20000);
    exit(0);
}

static int scenario_thread_exit(void) {
    observe(observer);
    CHECK(pthread_key_create(&g_key, key_dtor) == 0);
    for (int round = 0; round < 20; round++) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            CHECK(pthread_create(&t[i], NULL, exiting, NULL) == 0);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    }
    atexit(at_exit_alloc);
    pthread_t churners[4], ex;
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&churners[i], NULL, churn, (void *)(uintptr_t)(i + 7)) == 0);
    CHECK(pthread_create(&ex, NULL, exit_from_thread, NULL) == 0);
    for (;;)
        pause(); /* exit() comes from the thread */
}

/* ---- dlopen / dlclose of a module that allocates ---- */

static int scenario_dlopen(void) {
    const char *dso = getenv("CODEPROF_PRELOAD_DSO");
    CHECK(dso && *dso);
    observe(observer);
    unsigned long long a0 = atomic_load(&g_count[A]);
    for (int i = 0; i < 50; i++) {
        void *h = dlopen(dso, RTLD_NOW | RTLD_LOCAL);
        CHECK(h != NULL);
        void *(*make)(size_t);
        *(void **)&make = dlsym(h, "preload_dso_make");
        CHECK(make != NULL);
        void *p = make(10000);
        CHECK(p != NULL);
        free(p);
        CHECK(dlclose(h) == 0);
    }
    /* Each round: the module's constructor and its function allocated. */
    CHECK(atomic_load(&g_count[A]) - a0 >= 100);
    CHECK(atomic_load(&g_bytes[A]) >= 50ull * 14096);
    return 0;
}

/* ---- codeprof exec: the library's own session ---- */

static void *volatile g_kept[10];

__attribute__((noinline)) static void leaky(void) {
    for (int i = 0; i < 10; i++) {
        g_kept[i] = malloc(1u << 20);
        memset(g_kept[i], 1, 1u << 20);
    }
}

__attribute__((noinline)) static void burst(void) {
    void *p = malloc(100u << 20);
    memset(p, 2, 100u << 20);
    free(p);
}

static int scenario_exec(void) {
    leaky();
    burst();
    const char *how = getenv("TEST_PRELOAD_END");
    if (how && strcmp(how, "sigterm") == 0)
        raise(SIGTERM);
    if (how && strcmp(how, "thread") == 0) {
        pthread_t t[4], ex;
        for (int i = 0; i < 4; i++)
            CHECK(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 3)) == 0);
        CHECK(pthread_create(&ex, NULL, exit_from_thread, NULL) == 0);
        for (;;)
            pause();
    }
    return 3; /* passed through as the exit status */
}

/* ---- the stack the tracker gets: its first frames are the allocating
 * function and that function's caller ---- */

#define STACK_MARK_SIZE ((size_t)777777)
static uint32_t (*g_stack_fn)(uint64_t *, uint32_t);
static uint64_t g_stack[16];
static uint32_t g_nstack;
static uintptr_t g_site_ret, g_caller_ret;

static void stack_observer(int op, void *old_ptr, void *new_ptr, size_t size) {
    (void)old_ptr, (void)new_ptr;
    if ((op == A || op == M) && size == STACK_MARK_SIZE)
        g_nstack = g_stack_fn(g_stack, 16);
}

__attribute__((noinline)) static void *alloc_site(int how) {
    void *p = NULL;
    if (how == 0)
        p = malloc(STACK_MARK_SIZE);
    else if (how == 1)
        CHECK(posix_memalign(&p, 64, STACK_MARK_SIZE) == 0);
    else
        p = mmap(NULL, STACK_MARK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
    g_site_ret = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) static void *alloc_caller(int how) {
    void *p = alloc_site(how);
    g_caller_ret = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return p;
}

static int scenario_stack(void) {
    *(void **)&g_stack_fn = dlsym(RTLD_DEFAULT, "codeprof_native_stack_v1");
    CHECK(g_stack_fn != NULL);
    observe(stack_observer);
    for (int how = 0; how < 3; how++) {
        g_nstack = 0;
        void *p = alloc_caller(how);
        CHECK(p != NULL && p != MAP_FAILED);
        if (g_nstack < 3 || g_stack[1] != g_site_ret || g_stack[2] != g_caller_ret) {
            fprintf(stderr, "how %d: %u frames: %#lx %#lx %#lx; expected ? %#lx %#lx\n", how,
                    g_nstack, (unsigned long)g_stack[0], (unsigned long)g_stack[1],
                    (unsigned long)g_stack[2], (unsigned long)g_site_ret,
                    (unsigned long)g_caller_ret);
            _exit(1);
        }
        /* The first frame is the return address inside alloc_site. */
        CHECK(g_stack[0] > (uintptr_t)&alloc_site && g_stack[0] < (uintptr_t)&alloc_site + 4096);
        if (how == 2)
            munmap(p, STACK_MARK_SIZE);
        else
            free(p);
    }
    observe(NULL);
    return 0;
}

static int run_child(const char *name) {
    alarm(100);
    if (strcmp(name, "api") == 0)
        return scenario_api();
    if (strcmp(name, "fork_threads") == 0)
        return scenario_fork_threads();
    if (strcmp(name, "thread_exit") == 0)
        return scenario_thread_exit();
    if (strcmp(name, "dlopen") == 0)
        return scenario_dlopen();
    if (strcmp(name, "stack") == 0)
        return scenario_stack();
    if (strcmp(name, "exec") == 0)
        return scenario_exec();
    fprintf(stderr, "unknown scenario %s\n", name);
    return 2;
}

/* ======================================================================
 * Parent side
 * ====================================================================== */

static char g_self[4096];

static const char *preload_lib(void) {
    const char *lib = getenv("CODEPROF_MALLOC_LIB");
    return lib && *lib && access(lib, R_OK) == 0 ? lib : NULL;
}

typedef struct child_result {
    int status;
    char out[8192]; /* stdout and stderr together */
} child_result;

/* Runs this executable as `--child name` with the library preloaded and
 * `extra` (NULL-terminated "K=V" list) added to the environment. */
static void spawn(const char *name, const char *const *extra, child_result *res) {
    char outpath[] = "/tmp/test_preload_outXXXXXX";
    int fd = mkstemp(outpath);
    assert_true(fd >= 0);
    unlink(outpath);
    size_t n = 0;
    while (environ[n])
        n++;
    size_t nextra = 0;
    while (extra && extra[nextra])
        nextra++;
    char **env = calloc(n + nextra + 2, sizeof *env);
    assert_non_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            env[k++] = environ[i];
    char ld[4200];
    snprintf(ld, sizeof ld, "LD_PRELOAD=%s", preload_lib());
    env[k++] = ld;
    for (size_t i = 0; i < nextra; i++)
        env[k++] = (char *)extra[i];
    env[k] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        char *argv[] = {g_self, (char *)"--child", (char *)name, NULL};
        execve(g_self, argv, env);
        _exit(126);
    }
    free(env);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    res->status = st;
    ssize_t got = pread(fd, res->out, sizeof res->out - 1, 0);
    res->out[got > 0 ? got : 0] = '\0';
    close(fd);
}

static void expect_exit(const child_result *r, int code) {
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != code) {
        fprintf(stderr, "child status %#x (expected exit %d); output:\n%s\n", r->status, code,
                r->out);
        fail();
    }
}

#define NEED_PRELOAD()                                                                \
    do {                                                                              \
        if (!preload_lib()) {                                                         \
            print_message("no preload library (CODEPROF_MALLOC_LIB): skipped\n");     \
            skip();                                                                   \
        }                                                                             \
    } while (0)

static void test_interposed_api(void **state) {
    (void)state;
    NEED_PRELOAD();
    child_result r;
    spawn("api", NULL, &r);
    expect_exit(&r, 0);
}

static void test_fork_while_threads_allocate(void **state) {
    (void)state;
    NEED_PRELOAD();
    child_result r;
    spawn("fork_threads", NULL, &r);
    expect_exit(&r, 0);
}

static void test_thread_exit_and_exit_from_thread(void **state) {
    (void)state;
    NEED_PRELOAD();
    child_result r;
    spawn("thread_exit", NULL, &r);
    expect_exit(&r, 0);
    assert_non_null(strstr(r.out, "atexit done"));
}

static void test_native_stack_names_the_allocating_function(void **state) {
    (void)state;
    NEED_PRELOAD();
    child_result r;
    spawn("stack", NULL, &r);
    expect_exit(&r, 0);
}

static void test_dlopen_dlclose(void **state) {
    (void)state;
    NEED_PRELOAD();
    child_result r;
    spawn("dlopen", NULL, &r);
    expect_exit(&r, 0);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void exec_case(const char *end, int expect_signal, int expect_code) {
    char dir[] = "/tmp/test_preload_execXXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[512], env_out[600], env_end[64];
    snprintf(out, sizeof out, "%s/report.json", dir);
    snprintf(env_out, sizeof env_out, "CODEPROF_EXEC_OUTPUT=%s", out);
    snprintf(env_end, sizeof env_end, "TEST_PRELOAD_END=%s", end);
    const char *extra[] = {env_out, env_end, "CODEPROF_NATIVE_MODE=all", NULL};
    child_result r;
    spawn("exec", extra, &r);
    if (expect_signal) {
        if (!WIFSIGNALED(r.status) || WTERMSIG(r.status) != expect_signal) {
            fprintf(stderr, "status %#x, expected signal %d; output:\n%s\n", r.status,
                    expect_signal, r.out);
            fail();
        }
    } else {
        expect_exit(&r, expect_code);
    }
    char *json = slurp(out);
    if (!json) {
        fprintf(stderr, "no report at %s; child output:\n%s\n", out, r.out);
        fail();
    }
    /* A whole codeprof report (the memory section's contents are checked
     * end to end in tests/python/integration/test_native_memory.py). */
    assert_true(json[0] == '{');
    assert_non_null(strstr(json, "\"schema\":\"codeprof-report\""));
    size_t len = strlen(json);
    while (len && (json[len - 1] == '\n' || json[len - 1] == ' '))
        len--;
    assert_true(len > 0 && json[len - 1] == '}');
    /* The program's memory context is named after it. */
    assert_non_null(strstr(json, "\"test_preload\""));
    unlink(out);
    rmdir(dir);
}

static void test_exec_writes_report_and_passes_status(void **state) {
    (void)state;
    NEED_PRELOAD();
    exec_case("return", 0, 3);
}

static void test_exec_sigterm_writes_report_and_dies_by_it(void **state) {
    (void)state;
    NEED_PRELOAD();
    exec_case("sigterm", SIGTERM, 0);
}

static void test_exec_exit_from_thread_writes_report(void **state) {
    (void)state;
    NEED_PRELOAD();
    exec_case("thread", 0, 0);
}

static void test_exec_bad_setting_does_not_profile(void **state) {
    (void)state;
    NEED_PRELOAD();
    char dir[] = "/tmp/test_preload_badXXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[512], env_out[600];
    snprintf(out, sizeof out, "%s/report.json", dir);
    snprintf(env_out, sizeof env_out, "CODEPROF_EXEC_OUTPUT=%s", out);
    const char *extra[] = {env_out, "CODEPROF_NATIVE_MODE=everything", NULL};
    child_result r;
    spawn("exec", extra, &r);
    expect_exit(&r, 3); /* the program still runs */
    assert_non_null(strstr(r.out, "CODEPROF_NATIVE_MODE"));
    assert_non_null(strstr(r.out, "everything"));
    assert_int_equal(access(out, F_OK), -1);
    rmdir(dir);
}

/* ---- no interposition needed: also under ASan ---- */

static void test_arena_blocks(void **state) {
    (void)state;
    size_t used0 = cp_native_arena_used();
    unsigned char *a = cp_native_arena_alloc(100, 0);
    unsigned char *b = cp_native_arena_alloc(10, 256);
    unsigned char *c = cp_native_arena_alloc(0, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(((uintptr_t)a & 15) == 0);
    assert_true(((uintptr_t)b & 255) == 0);
    assert_true(c != a && c != b);
    for (int i = 0; i < 100; i++)
        assert_int_equal(a[i], 0);
    memset(a, 0xff, 100); /* must not spill into b's header */
    assert_int_equal(cp_native_arena_size(a), 100);
    assert_int_equal(cp_native_arena_size(b), 10);
    assert_int_equal(cp_native_arena_size(c), 0);
    assert_true(cp_native_arena_owns(a) && cp_native_arena_owns(a + 50));
    assert_int_equal(cp_native_arena_size(a + 16), 0); /* interior pointer */
    int local;
    assert_false(cp_native_arena_owns(&local));
    assert_false(cp_native_arena_owns(NULL));
    assert_true(cp_native_arena_used() > used0);
    assert_null(cp_native_arena_alloc(8, 3));    /* not a power of two */
    assert_null(cp_native_arena_alloc(8, 8192)); /* too strict */
}

static void test_arena_exhaustion_fails_cleanly(void **state) {
    (void)state;
    int n = 0;
    while (cp_native_arena_alloc(1000, 0) != NULL)
        n++;
    assert_true(n > 10 && n < 100);
    assert_null(cp_native_arena_alloc(1, 0));
    assert_int_equal(cp_native_arena_used(), CP_NATIVE_ARENA_BYTES);
}

static const char *const *g_env;

static const char *fake_getenv(const char *name) {
    size_t n = strlen(name);
    for (const char *const *e = g_env; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static int read_env(const char *const *env, int pid, cp_native_settings *st, char *msg) {
    g_env = env;
    return cp_native_settings_read(fake_getenv, pid, st, msg, 256);
}

static void test_settings(void **state) {
    (void)state;
    static cp_native_settings st;
    char msg[256];
    const char *none[] = {NULL};
    assert_int_equal(read_env(none, 10, &st, msg), 0);
    assert_int_equal(st.mode, 1);
    assert_int_equal(st.sample_bytes, 0);
    assert_false(st.exec);

    const char *all[] = {"CODEPROF_NATIVE_MODE=all", "CODEPROF_NATIVE_SAMPLE_BYTES=64K",
                         "CODEPROF_NATIVE_STACK_DEPTH=12", "CODEPROF_EXEC_OUTPUT=/t/r.json",
                         "CODEPROF_EXEC_FORMAT=text", NULL};
    assert_int_equal(read_env(all, 10, &st, msg), 0);
    assert_int_equal(st.mode, 2);
    assert_int_equal(st.sample_bytes, 65536);
    assert_int_equal(st.stack_depth, 12);
    assert_true(st.exec);
    assert_false(st.child);
    assert_string_equal(st.output, "/t/r.json");
    assert_string_equal(st.format, "text");

    const char *root_self[] = {"CODEPROF_EXEC_OUTPUT=/t/r.json", "CODEPROF_EXEC_ROOT=10", NULL};
    assert_int_equal(read_env(root_self, 10, &st, msg), 0);
    assert_false(st.child);
    assert_string_equal(st.output, "/t/r.json");
    const char *root_other[] = {"CODEPROF_EXEC_OUTPUT=/t/r.json", "CODEPROF_EXEC_ROOT=9", NULL};
    assert_int_equal(read_env(root_other, 10, &st, msg), 0);
    assert_true(st.child);
    assert_string_equal(st.output, "/t/r.10.json");

    const char *bad_mode[] = {"CODEPROF_NATIVE_MODE=every", NULL};
    assert_int_equal(read_env(bad_mode, 10, &st, msg), -1);
    assert_non_null(strstr(msg, "CODEPROF_NATIVE_MODE"));
    assert_non_null(strstr(msg, "'every'"));
    const char *bad_bytes[] = {"CODEPROF_NATIVE_SAMPLE_BYTES=12X", NULL};
    assert_int_equal(read_env(bad_bytes, 10, &st, msg), -1);
    assert_non_null(strstr(msg, "CODEPROF_NATIVE_SAMPLE_BYTES"));
    const char *zero[] = {"CODEPROF_NATIVE_SAMPLE_BYTES=0", NULL};
    assert_int_equal(read_env(zero, 10, &st, msg), -1);
    const char *deep[] = {"CODEPROF_NATIVE_STACK_DEPTH=17", NULL};
    assert_int_equal(read_env(deep, 10, &st, msg), -1);
    assert_non_null(strstr(msg, "[1, 16]"));
}

static void test_parse_bytes_limits(void **state) {
    (void)state;
    uint64_t v = 0;
    assert_int_equal(cp_native_parse_bytes("1G", 1, (uint64_t)1 << 40, &v), 0);
    assert_int_equal(v, (uint64_t)1 << 30);
    assert_int_equal(cp_native_parse_bytes("1024g", 1, (uint64_t)1 << 40, &v), 0);
    assert_int_equal(cp_native_parse_bytes("1025g", 1, (uint64_t)1 << 40, &v), -1);
    assert_int_equal(cp_native_parse_bytes("99999999999999999999", 1, UINT64_MAX, &v), -1);
    assert_int_equal(cp_native_parse_bytes("", 1, 10, &v), -1);
    assert_int_equal(cp_native_parse_bytes("-1", 0, 10, &v), -1);
    assert_int_equal(cp_native_parse_bytes("5k1", 0, 1 << 20, &v), -1);
}

static void test_child_path(void **state) {
    (void)state;
    char buf[64];
    assert_int_equal(cp_native_child_path("out/run.json", 42, buf, sizeof buf), 0);
    assert_string_equal(buf, "out/run.42.json");
    assert_int_equal(cp_native_child_path("r.speedscope.json", 7, buf, sizeof buf), 0);
    assert_string_equal(buf, "r.7.speedscope.json");
    assert_int_equal(cp_native_child_path("a.b/report", 7, buf, sizeof buf), 0);
    assert_string_equal(buf, "a.b/report.7");
    assert_int_equal(cp_native_child_path("/x/.hidden", 7, buf, sizeof buf), 0);
    assert_string_equal(buf, "/x/.hidden.7");
    assert_int_equal(cp_native_child_path("report.json", 123456, buf, 10), -1);
}

static void test_fp_walk_synthetic(void **state) {
    (void)state;
    /* Three frame records on a fake stack, each pointing to the next. */
    uintptr_t stack[16] = {0};
    uintptr_t lo = (uintptr_t)&stack[0], hi = (uintptr_t)&stack[16];
    stack[2] = (uintptr_t)&stack[6];
    stack[3] = 0x1111;
    stack[6] = (uintptr_t)&stack[10];
    stack[7] = 0x2222;
    stack[10] = (uintptr_t)&stack[14];
    stack[11] = 0x3333;
    stack[14] = 0x7fff0000; /* outside [lo, hi): the walk stops there */
    stack[15] = 0x4444;
    uint64_t pcs[8];
    assert_int_equal(cp_native_fp_walk((uintptr_t)&stack[2], lo, hi, pcs, 8), 4);
    assert_int_equal(pcs[0], 0x1111);
    assert_int_equal(pcs[1], 0x2222);
    assert_int_equal(pcs[2], 0x3333);
    assert_int_equal(pcs[3], 0x4444);
    assert_int_equal(cp_native_fp_walk((uintptr_t)&stack[2], lo, hi, pcs, 2), 2);
    /* A record pointing downwards (a loop or garbage) ends the walk. */
    stack[6] = (uintptr_t)&stack[2];
    assert_int_equal(cp_native_fp_walk((uintptr_t)&stack[2], lo, hi, pcs, 8), 2);
    /* Misaligned or out-of-bounds starts read nothing. */
    assert_int_equal(cp_native_fp_walk((uintptr_t)&stack[2] + 1, lo, hi, pcs, 8), 0);
    assert_int_equal(cp_native_fp_walk(hi, lo, hi, pcs, 8), 0);
    assert_int_equal(cp_native_fp_walk((uintptr_t)&stack[15], lo, hi, pcs, 8), 0);
    /* A null return address ends it. */
    stack[3] = 0;
    stack[6] = (uintptr_t)&stack[10];
    assert_int_equal(cp_native_fp_walk((uintptr_t)&stack[2], lo, hi, pcs, 8), 0);
}

/* A real chain: this file is built with frame pointers (CMakeLists.txt). */
static uintptr_t g_ret_in_f1, g_ret_in_f2;
static uint64_t g_walked[8];
static uint32_t g_nwalked;

__attribute__((noinline)) static void walk_f3(void) {
    uintptr_t lo, hi;
    g_ret_in_f2 = (uintptr_t)__builtin_return_address(0);
    assert_int_equal(cp_native_stack_bounds(&lo, &hi), 0);
    g_nwalked = cp_native_fp_walk((uintptr_t)__builtin_frame_address(0), lo, hi, g_walked, 8);
    __asm__ volatile("" ::: "memory"); /* not a tail position */
}

__attribute__((noinline)) static void walk_f2(void) {
    g_ret_in_f1 = (uintptr_t)__builtin_return_address(0);
    walk_f3();
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void walk_f1(void) {
    walk_f2();
    __asm__ volatile("" ::: "memory");
}

static void test_fp_walk_real_stack(void **state) {
    (void)state;
    walk_f1();
    assert_true(g_nwalked >= 3);
    assert_int_equal(g_walked[0], g_ret_in_f2);
    assert_int_equal(g_walked[1], g_ret_in_f1);
}

static void *bounds_in_thread(void *arg) {
    uintptr_t lo = 0, hi = 0;
    /* The frame, not the address of a local: with ASan's
     * detect_stack_use_after_return (make test-asan) address-taken locals
     * live on a fake stack elsewhere, while the frame-pointer walk the
     * bounds are for follows the real frames. */
    uintptr_t frame = (uintptr_t)__builtin_frame_address(0);
    *(int *)arg = cp_native_stack_bounds(&lo, &hi) == 0 && lo < frame && frame < hi;
    return NULL;
}

static void test_stack_bounds_contain_locals(void **state) {
    (void)state;
    int ok = 0;
    bounds_in_thread(&ok);
    assert_true(ok);
    pthread_t t;
    ok = 0;
    assert_int_equal(pthread_create(&t, NULL, bounds_in_thread, &ok), 0);
    pthread_join(t, NULL);
    assert_true(ok);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return run_child(argv[2]);
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0)
        return 1;
    g_self[n] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_blocks),
        cmocka_unit_test(test_arena_exhaustion_fails_cleanly),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_parse_bytes_limits),
        cmocka_unit_test(test_child_path),
        cmocka_unit_test(test_fp_walk_synthetic),
        cmocka_unit_test(test_stack_bounds_contain_locals),
        cmocka_unit_test(test_fp_walk_real_stack),
        cmocka_unit_test(test_interposed_api),
        cmocka_unit_test(test_fork_while_threads_allocate),
        cmocka_unit_test(test_thread_exit_and_exit_from_thread),
        cmocka_unit_test(test_native_stack_names_the_allocating_function),
        cmocka_unit_test(test_dlopen_dlclose),
        cmocka_unit_test(test_exec_writes_report_and_passes_status),
        cmocka_unit_test(test_exec_sigterm_writes_report_and_dies_by_it),
        cmocka_unit_test(test_exec_exit_from_thread_writes_report),
        cmocka_unit_test(test_exec_bad_setting_does_not_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
