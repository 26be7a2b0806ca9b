/* eintr_helper.c -- blocking calls for the no-EINTR test
 * (tests/python/unit/test_sampler_eintr.py compiles it into a shared
 * library at test time and calls it through ctypes while the stack sampler
 * runs at 1 ms).  Each function blocks for `ms` milliseconds in one call,
 * never retrying, and returns 0 when the call returned as a full, normal
 * return, else the errno it failed with (EINTR = 4) or -1 (returned early
 * or with an unexpected value).  `*elapsed_ms` gets the time it blocked. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int block_select(int ms, double *elapsed_ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    double t0 = now_ms();
    int rc = select(0, NULL, NULL, NULL, &tv);
    int err = errno;
    *elapsed_ms = now_ms() - t0;
    return rc == 0 ? 0 : rc < 0 ? err : -1;
}

int block_poll(int ms, double *elapsed_ms) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    struct pollfd p = {fds[0], POLLIN, 0};
    double t0 = now_ms();
    int rc = poll(&p, 1, ms);
    int err = errno;
    *elapsed_ms = now_ms() - t0;
    close(fds[0]);
    close(fds[1]);
    return rc == 0 ? 0 : rc < 0 ? err : -1;
}

int block_nanosleep(int ms, double *elapsed_ms) {
    struct timespec req = {ms / 1000, (long)(ms % 1000) * 1000000L}, rem = {0, 0};
    double t0 = now_ms();
    int rc = nanosleep(&req, &rem);
    int err = errno;
    *elapsed_ms = now_ms() - t0;
    return rc == 0 ? 0 : err;
}

typedef struct writer {
    int fd, ms;
} writer;
static void *write_later(void *arg) {
    writer *w = arg;
    struct timespec ts = {w->ms / 1000, (long)(w->ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    char c = 'x';
    if (write(w->fd, &c, 1) != 1)
        return NULL;
    return NULL;
}

/* read() on a pipe that gets one byte after `ms`. */
int block_read(int ms, double *elapsed_ms) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    writer w = {fds[1], ms};
    pthread_t th;
    if (pthread_create(&th, NULL, write_later, &w) != 0)
        return -1;
    char c = 0;
    double t0 = now_ms();
    ssize_t n = read(fds[0], &c, 1);
    int err = errno;
    *elapsed_ms = now_ms() - t0;
    pthread_join(th, NULL);
    close(fds[0]);
    close(fds[1]);
    return n == 1 && c == 'x' ? 0 : n < 0 ? err : -1;
}
