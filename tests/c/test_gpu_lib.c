/* test_gpu_lib.c -- the GPU library loader (src/gpu/gpu_lib.c) against the
 * fake driver (tests/c/fake_cuda.c): not found with the loader's text, too
 * old (version, missing entry point), the environment override, no lookup
 * in the global namespace, no cuInit, once per process across threads, and
 * every library disabled in a forked child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_cuda.h"
#include "gpu/gpu_lib.h"

static fake_cuda F;

static int setup(void **state) {
    (void)state;
    return fake_cuda_open(&F, RTLD_LOCAL);
}

/* Fresh loader with $CODEPROF_CUDA_LIBRARY = path (NULL: unset). */
static const cp_gpu_libs *load_with(const char *path) {
    cp_gpu_lib_reset_for_tests();
    if (path)
        setenv("CODEPROF_CUDA_LIBRARY", path, 1);
    else
        unsetenv("CODEPROF_CUDA_LIBRARY");
    setenv("CODEPROF_CUPTI_LIBRARY", "/nonexistent/libcupti.so", 1);
    return cp_gpu_lib_get();
}

static void test_override_loads_the_fake(void **state) {
    (void)state;
    F.reset();
    const cp_gpu_libs *L = load_with(F.path);
    assert_int_equal(L->driver.status, CP_GPU_LIB_OK);
    assert_string_equal(L->driver.path, F.path);
    assert_string_equal(L->driver.reason, "");
    assert_int_equal(L->driver.version, 12040);
    assert_non_null(L->cu.cuEventRecord);
    assert_non_null(L->cu.cuEventDestroy);
    /* The loader never initialises CUDA nor creates a context. */
    assert_int_equal(F.count("cuInit"), 0);
    assert_int_equal(F.count("cuCtxCreate"), 0);
    /* CUPTI was looked for (the driver is usable) and is missing. */
    assert_int_equal(L->cupti.status, CP_GPU_LIB_NOT_FOUND);
    assert_non_null(strstr(L->cupti.reason, "CODEPROF_CUPTI_LIBRARY"));
    /* Once: a second get returns the same table without reloading. */
    assert_ptr_equal(cp_gpu_lib_get(), L);
}

static void test_not_found_keeps_the_loader_text(void **state) {
    (void)state;
    const cp_gpu_libs *L = load_with("/nonexistent/dir/libcuda.so.1");
    assert_int_equal(L->driver.status, CP_GPU_LIB_NOT_FOUND);
    assert_non_null(strstr(L->driver.reason, "/nonexistent/dir/libcuda.so.1"));
    assert_non_null(strstr(L->driver.reason, "No such file"));
    assert_non_null(strstr(L->driver.reason, "CODEPROF_CUDA_LIBRARY"));
    /* CUPTI is not tried without a usable driver. */
    assert_int_equal(L->cupti.status, CP_GPU_LIB_NOT_TRIED);
    assert_null(L->cu.cuEventRecord);
}

static void test_default_name_is_libcuda_so_1(void **state) {
    (void)state;
    const cp_gpu_libs *L = load_with(NULL);
    if (L->driver.status == CP_GPU_LIB_OK) {
        skip(); /* a real driver is installed here */
        return;
    }
    assert_int_equal(L->driver.status, CP_GPU_LIB_NOT_FOUND);
    assert_string_equal(L->driver.path, "libcuda.so.1");
    assert_non_null(strstr(L->driver.reason, "libcuda.so.1"));
    assert_non_null(strstr(L->driver.reason, "cannot open shared object file"));
}

static void test_old_version_is_too_old(void **state) {
    (void)state;
    F.reset();
    F.set_version(9020);
    const cp_gpu_libs *L = load_with(F.path);
    assert_int_equal(L->driver.status, CP_GPU_LIB_TOO_OLD);
    assert_int_equal(L->driver.version, 9020);
    assert_non_null(strstr(L->driver.reason, "9.2"));
    assert_non_null(strstr(L->driver.reason, "10.0 or newer"));
    assert_int_equal(L->cupti.status, CP_GPU_LIB_NOT_TRIED);
    F.reset();
}

static void test_missing_entry_point_is_too_old(void **state) {
    (void)state;
    const char *old = getenv("CODEPROF_FAKE_CUDA_OLD");
    assert_non_null(old);
    const cp_gpu_libs *L = load_with(old);
    assert_int_equal(L->driver.status, CP_GPU_LIB_TOO_OLD);
    assert_non_null(strstr(L->driver.reason, "cuEventDestroy_v2"));
}

/* The complete fake is in the global namespace (RTLD_GLOBAL): a loader that
 * looked symbols up globally would find cuEventDestroy_v2 there. */
static void test_no_global_namespace_lookup(void **state) {
    (void)state;
    void *g = dlopen(F.path, RTLD_NOW | RTLD_GLOBAL);
    assert_non_null(g);
    assert_non_null(dlsym(RTLD_DEFAULT, "cuEventDestroy_v2"));
    const cp_gpu_libs *L = load_with(getenv("CODEPROF_FAKE_CUDA_OLD"));
    assert_int_equal(L->driver.status, CP_GPU_LIB_TOO_OLD);
    assert_non_null(strstr(L->driver.reason, "cuEventDestroy_v2"));
    dlclose(g);
}

static void *getter(void *arg) {
    (void)arg;
    return (void *)cp_gpu_lib_get();
}

static void test_once_across_threads(void **state) {
    (void)state;
    F.reset();
    cp_gpu_lib_reset_for_tests();
    setenv("CODEPROF_CUDA_LIBRARY", F.path, 1);
    pthread_t t[4];
    void *r[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, getter, NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], &r[i]), 0);
    for (int i = 1; i < 4; i++)
        assert_ptr_equal(r[i], r[0]);
    assert_int_equal(((const cp_gpu_libs *)r[0])->driver.status, CP_GPU_LIB_OK);
}

static void test_fork_child_disabled(void **state) {
    (void)state;
    F.reset();
    const cp_gpu_libs *L = load_with(F.path);
    assert_int_equal(L->driver.status, CP_GPU_LIB_OK);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        /* The loader's pthread_atfork handler ran. */
        const cp_gpu_libs *C = cp_gpu_lib_get();
        int ok = C->driver.status == CP_GPU_LIB_DISABLED && C->nvml.status == CP_GPU_LIB_DISABLED &&
                 C->cupti.status == CP_GPU_LIB_DISABLED &&
                 strstr(C->driver.reason, "forked child: no CUDA calls") != NULL &&
                 cp_gpu_lib_nvml_init() == -1 && F.count("after_fork") == 0;
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* The parent is untouched. */
    assert_int_equal(cp_gpu_lib_get()->driver.status, CP_GPU_LIB_OK);
}

static void test_nvml_not_found(void **state) {
    (void)state;
    cp_gpu_lib_reset_for_tests();
    setenv("CODEPROF_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
    assert_int_equal(cp_gpu_lib_nvml_init(), -1);
    const cp_gpu_libs *L = cp_gpu_lib_get();
    assert_int_equal(L->nvml.status, CP_GPU_LIB_NOT_FOUND);
    assert_non_null(strstr(L->nvml.reason, "libnvidia-ml.so.1"));
    assert_int_equal(L->nvml_inited, 0);
    unsetenv("CODEPROF_NVML_LIBRARY");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_override_loads_the_fake),
        cmocka_unit_test(test_not_found_keeps_the_loader_text),
        cmocka_unit_test(test_default_name_is_libcuda_so_1),
        cmocka_unit_test(test_old_version_is_too_old),
        cmocka_unit_test(test_missing_entry_point_is_too_old),
        cmocka_unit_test(test_no_global_namespace_lookup),
        cmocka_unit_test(test_once_across_threads),
        cmocka_unit_test(test_fork_child_disabled),
        cmocka_unit_test(test_nvml_not_found),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    cp_gpu_lib_reset_for_tests();
    return rc;
}
