/* fake_cuda.h -- the tests' handle on the fake CUDA driver (fake_cuda.c):
 * opens the library named by $CODEPROF_FAKE_CUDA (CMake sets it) and looks
 * its control functions up.  Header-only, test code only. */
#ifndef CP_TEST_FAKE_CUDA_H
#define CP_TEST_FAKE_CUDA_H

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fake_cuda {
    void *h;
    const char *path;
    void (*reset)(void);
    void (*set_context)(int mode);
    void (*set_version)(int v);
    void (*set_default_advance)(double ms);
    void (*queue_advance)(const double *ms, int n);
    void (*set_ready_after)(int n);
    void (*set_mem)(size_t free_b, size_t total_b);
    void (*fail_call)(const char *name, int code);
    long long (*count)(const char *name);
} fake_cuda;

/* Sets $name to dir-of-this-executable/file when it is unset (a test run
 * by hand, outside ctest, from any directory). */
static void fake_cuda_default_env(const char *name, const char *file) {
    if (getenv(name))
        return;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash || (size_t)(slash - exe) + 2 + strlen(file) > sizeof exe)
        return;
    strcpy(slash + 1, file);
    setenv(name, exe, 1);
}

/* Opens the fake (mode: RTLD_LOCAL or RTLD_GLOBAL); 0 on success. */
static int fake_cuda_open(fake_cuda *f, int mode) {
    fake_cuda_default_env("CODEPROF_FAKE_CUDA", "libfake_cuda.so");
    fake_cuda_default_env("CODEPROF_FAKE_CUDA_OLD", "libfake_cuda_old.so");
    f->path = getenv("CODEPROF_FAKE_CUDA");
    if (!f->path || !*f->path) {
        fprintf(stderr, "CODEPROF_FAKE_CUDA is not set (run through ctest)\n");
        return -1;
    }
    f->h = dlopen(f->path, RTLD_NOW | mode);
    if (!f->h) {
        fprintf(stderr, "cannot open the fake driver: %s\n", dlerror());
        return -1;
    }
#define FK(field, name)                                                                            \
    do {                                                                                           \
        void *p_ = dlsym(f->h, name);                                                              \
        if (!p_)                                                                                   \
            return -1;                                                                             \
        *(void **)&f->field = p_;                                                                  \
    } while (0)
    FK(reset, "fake_cuda_reset");
    FK(set_context, "fake_cuda_set_context");
    FK(set_version, "fake_cuda_set_version");
    FK(set_default_advance, "fake_cuda_set_default_advance");
    FK(queue_advance, "fake_cuda_queue_advance");
    FK(set_ready_after, "fake_cuda_set_ready_after");
    FK(set_mem, "fake_cuda_set_mem");
    FK(fail_call, "fake_cuda_fail");
    FK(count, "fake_cuda_count");
#undef FK
    return 0;
}

#endif /* CP_TEST_FAKE_CUDA_H */
