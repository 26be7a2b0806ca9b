/* bench_native_malloc.c -- ns per malloc+free pair of a native program, for
 * bench/RESULTS.md: run it bare, with libcodeprof_malloc.so preloaded and
 * idle, and under `codeprof exec` (sampled and all):
 *
 *   cc -O2 bench/bench_native_malloc.c -o /tmp/bnm
 *   /tmp/bnm; LD_PRELOAD=.../libcodeprof_malloc.so /tmp/bnm
 *   codeprof exec -q -o /tmp/x.json -- /tmp/bnm
 *   codeprof exec -q --mode all -o /tmp/x.json -- /tmp/bnm
 *
 * Sizes cycle through 16..4096 bytes, 64 blocks live at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000000;
    void *live[64] = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        int k = (int)(i & 63);
        free(live[k]);
        live[k] = malloc((size_t)(16 + (i * 2654435761u) % 4080));
        if (live[k])
            *(volatile char *)live[k] = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int k = 0; k < 64; k++)
        free(live[k]);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%.1f ns per malloc+free pair (%ld pairs)\n", ns / (double)n, n);
    return 0;
}
