/*
 * bench_export_trace.c -- the 1M-event Chrome trace: size and write time
 * (issue 7 goal: a 1M-event trace file <= 150 MB written in <= 2 s).
 *
 * One command (bench/run_all.sh builds it against a Release libcodeprof.a):
 *
 *     cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude bench/bench_export_trace.c \
 *        build-bench/libcodeprof.a -lpthread -ldl -lm -o build-bench/bench_export_trace
 *     build-bench/bench_export_trace [--events N] [--rounds R] [--dir D]
 *
 * A session with timeline_events = 2^20 records N/2 scope begin+end pairs
 * (default N = 1,000,000 timeline events) on one thread, over 64 sites
 * nested two deep (outer scope, inner scope), pausing every 10,000 pairs so
 * the drain thread folds without dropping.  After stop, R rounds (default
 * 5) each time:
 *   save_trace   codeprof_session_save(D/bench.trace.json, TRACE): snapshot
 *                (model build) + the trace writer + the atomic write (fsync)
 *   report_trace codeprof_session_report(TRACE): the same in memory (no
 *                file, no fsync)
 *   report_text  codeprof_session_report(TEXT): snapshot + a small writer,
 *                the part of report_trace that is not the trace export
 * and prints the medians, the file size and the events the file holds
 * (the writer's otherData.events_written, timeline_dropped).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codeprof/codeprof.h"

#define MAX_ROUNDS 50
#define NSITES 64

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(codeprof_status st, const char *what) {
    if (st != CODEPROF_OK) {
        fprintf(stderr, "%s: %s\n", what, codeprof_status_message(st));
        exit(1);
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The number after `key` in `doc` (0 if absent). */
static uint64_t field(const char *doc, const char *key) {
    const char *p = strstr(doc, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

int main(int argc, char **argv) {
    uint64_t events = 1000000;
    int rounds = 5;
    const char *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            events = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--events N] [--rounds R] [--dir D]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || events < 4 || events > (1u << 24)) {
        fprintf(stderr, "rounds 1..%d, events 4..2^24\n", MAX_ROUNDS);
        return 2;
    }
    codeprof_config cfg;
    codeprof_config_init(&cfg);
    cfg.timeline_events = 1u << 20;
    while (cfg.timeline_events < events)
        cfg.timeline_events <<= 1;
    codeprof_session *s = NULL;
    check(codeprof_session_new(&cfg, &s, NULL), "codeprof_session_new");
    uint32_t sites[NSITES];
    for (int i = 0; i < NSITES; i++) {
        char name[32];
        snprintf(name, sizeof name, "stage_%02d", i);
        sites[i] = codeprof_site(name, "bench_export_trace.c", (uint32_t)i + 1,
                                 CODEPROF_SITE_SCOPE);
    }
    check(codeprof_session_start(s), "codeprof_session_start");
    uint64_t pairs = events / 2;
    for (uint64_t k = 0; k < pairs; k += 2) {
        uint32_t outer = sites[(k / 2) % NSITES], inner = sites[(k / 2 + 1) % NSITES];
        codeprof_scope_begin(s, outer, 0);
        codeprof_scope_begin(s, inner, 0);
        codeprof_scope_end(s, inner, 0);
        codeprof_scope_end(s, outer, 0);
        if (k % 10000 == 0)
            usleep(2000); /* let the drain thread fold */
    }
    check(codeprof_session_stop(s), "codeprof_session_stop");

    char path[4096];
    snprintf(path, sizeof path, "%s/bench_export_trace.%d.trace.json", dir, (int)getpid());
    double t_save[MAX_ROUNDS], t_text[MAX_ROUNDS], t_mem[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        check(codeprof_session_save(s, path, CODEPROF_FORMAT_TRACE, NULL), "save trace");
        t_save[r] = now_s() - t0;
        char *txt = NULL;
        t0 = now_s();
        check(codeprof_session_report(s, CODEPROF_FORMAT_TRACE, &txt, NULL), "report trace");
        t_mem[r] = now_s() - t0;
        codeprof_free(txt);
        txt = NULL;
        t0 = now_s();
        check(codeprof_session_report(s, CODEPROF_FORMAT_TEXT, &txt, NULL), "report text");
        t_text[r] = now_s() - t0;
        codeprof_free(txt);
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    /* otherData is at the end of the file */
    FILE *f = fopen(path, "rb");
    char tail[2048] = {0};
    if (f) {
        long off = st.st_size > 2000 ? (long)st.st_size - 2000 : 0;
        fseek(f, off, SEEK_SET);
        size_t n = fread(tail, 1, sizeof tail - 1, f);
        tail[n] = 0;
        fclose(f);
    }
    unlink(path);
    double ms = median(t_save, rounds), mt = median(t_text, rounds), mm = median(t_mem, rounds);
    printf("timeline events recorded: %" PRIu64 " (kept %" PRIu64 ", dropped %" PRIu64 ")\n",
           pairs * 2, field(tail, "\"timeline_events\":"), field(tail, "\"timeline_dropped\":"));
    printf("trace events written:     %" PRIu64 "\n", field(tail, "\"events_written\":"));
    printf("trace file:               %.1f MB (%lld bytes)\n", (double)st.st_size / 1e6,
           (long long)st.st_size);
    printf("save_trace   median of %d: %.3f s  (goal <= 2 s)\n", rounds, ms);
    printf("report_trace median of %d: %.3f s  (in memory: snapshot + trace writer)\n", rounds, mm);
    printf("report_text  median of %d: %.3f s  (snapshot + text; the trace writer alone ~ %.3f s)\n",
           rounds, mt, mm - mt);
    codeprof_session_free(s);
    return 0;
}
