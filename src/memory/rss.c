/* rss.c -- process resident set size from /proc/self/statm. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "codeprof/codeprof.h"

uint64_t codeprof_rss_bytes(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = buf;
    strtoull(p, &p, 10); /* size */
    unsigned long long resident = strtoull(p, NULL, 10);
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}
