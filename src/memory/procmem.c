/* procmem.c -- a process's memory from /proc (procmem.h). */
#include "memory/procmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *cp_procmem_source_name(int source) {
    switch (source) {
    case CP_PROCMEM_ROLLUP:
        return "rollup";
    case CP_PROCMEM_SMAPS:
        return "smaps";
    case CP_PROCMEM_STATM:
        return "statm";
    default:
        return "none";
    }
}

/* The value of "Key:   123 kB" after the colon, in bytes; 0 when the
 * number is missing.  Saturates instead of wrapping. */
static uint64_t kb_value(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX / 1024 - d) / 10)
            return UINT64_MAX / 1024 * 1024;
        v = v * 10 + d;
        p++;
    }
    return v * 1024;
}

static int has_key(const char *p, size_t n, const char *key, size_t klen) {
    return n > klen && memcmp(p, key, klen) == 0;
}

#define KEY(lit) lit, sizeof(lit) - 1

/* One line of smaps text; returns 1 for an Rss line. */
static int smaps_line(const char *p, size_t n, cp_procmem *out) {
    const char *end = p + n;
    switch (p[0]) {
    case 'R':
        if (has_key(p, n, KEY("Rss:"))) {
            out->rss += kb_value(p + 4, end);
            return 1;
        }
        break;
    case 'P':
        if (has_key(p, n, KEY("Pss:")))
            out->pss += kb_value(p + 4, end);
        else if (has_key(p, n, KEY("Private_Clean:")))
            out->private_clean += kb_value(p + 14, end);
        else if (has_key(p, n, KEY("Private_Dirty:")))
            out->private_dirty += kb_value(p + 14, end);
        break;
    case 'S':
        if (has_key(p, n, KEY("Shared_Clean:")))
            out->shared_clean += kb_value(p + 13, end);
        else if (has_key(p, n, KEY("Shared_Dirty:")))
            out->shared_dirty += kb_value(p + 13, end);
        else if (has_key(p, n, KEY("Swap:")))
            out->swap += kb_value(p + 5, end);
        break;
    default:
        break;
    }
    return 0;
}

/* Feeds complete lines of buf[0..len) to smaps_line; returns the length
 * of the incomplete tail (no newline yet) and adds Rss lines to *nrss. */
static size_t smaps_lines(const char *buf, size_t len, cp_procmem *out, int *nrss) {
    size_t start = 0;
    for (;;) {
        const char *nl = memchr(buf + start, '\n', len - start);
        if (!nl)
            return len - start;
        size_t n = (size_t)(nl - (buf + start));
        if (n)
            *nrss += smaps_line(buf + start, n, out);
        start += n + 1;
    }
}

int cp_procmem_parse_smaps(const char *buf, size_t len, cp_procmem *out) {
    memset(out, 0, sizeof *out);
    int nrss = 0;
    size_t tail = smaps_lines(buf, len, out, &nrss);
    if (tail)
        nrss += smaps_line(buf + len - tail, tail, out);
    out->uss = out->private_clean + out->private_dirty;
    out->has_pss = nrss > 0;
    return nrss;
}

/* Next decimal number in [*p, end); -1 when there is none. */
static int next_u64(const char **p, const char *end, uint64_t *v) {
    const char *q = *p;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\n'))
        q++;
    if (q == end || *q < '0' || *q > '9')
        return -1;
    uint64_t x = 0;
    while (q < end && *q >= '0' && *q <= '9') {
        uint64_t d = (uint64_t)(*q - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
        q++;
    }
    *v = x;
    *p = q;
    return 0;
}

int cp_procmem_parse_statm(const char *buf, size_t len, uint64_t page, cp_procmem *out) {
    memset(out, 0, sizeof *out);
    const char *p = buf, *end = buf + len;
    uint64_t size, resident, shared;
    if (next_u64(&p, end, &size) || next_u64(&p, end, &resident) || next_u64(&p, end, &shared))
        return -1;
    if (!page)
        page = 4096;
    out->rss = resident * page;
    out->shared_clean = (shared < resident ? shared : resident) * page;
    out->uss = out->rss - out->shared_clean;
    return 0;
}

int cp_procmem_parse_meminfo(const char *buf, size_t len, uint64_t *total) {
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (has_key(p, n, KEY("MemTotal:"))) {
            *total = kb_value(p + 9, p + n);
            return *total ? 0 : -1;
        }
        p += n + 1;
    }
    return -1;
}

static uint64_t page_size(void) {
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (uint64_t)page : 4096;
}

static int open_proc(const char *root, int pid, const char *file) {
    char path[512];
    int n;
    if (pid > 0)
        n = snprintf(path, sizeof path, "%s/%d/%s", root ? root : "/proc", pid, file);
    else
        n = snprintf(path, sizeof path, "%s/self/%s", root ? root : "/proc", file);
    if (n < 0 || (size_t)n >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Streams an smaps file through a fixed buffer.  A line longer than the
 * buffer (a mapping header with a very long path) is skipped. */
static int read_smaps_fd(int fd, cp_procmem *out) {
    char buf[16384];
    size_t have = 0;
    int nrss = 0, skipping = 0;
    memset(out, 0, sizeof *out);
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        size_t len = have + (size_t)r;
        size_t from = 0;
        if (skipping) {
            const char *nl = memchr(buf, '\n', len);
            if (!nl) {
                have = 0;
                continue;
            }
            from = (size_t)(nl - buf) + 1;
            skipping = 0;
        }
        size_t tail = smaps_lines(buf + from, len - from, out, &nrss);
        if (tail == sizeof buf) { /* one line fills the buffer */
            skipping = 1;
            have = 0;
        } else {
            memmove(buf, buf + len - tail, tail);
            have = tail;
        }
    }
    if (have && !skipping)
        nrss += smaps_line(buf, have, out);
    out->uss = out->private_clean + out->private_dirty;
    out->has_pss = nrss > 0;
    if (!nrss) {
        errno = ENODATA;
        return -1;
    }
    return 0;
}

static ssize_t read_small(int fd, char *buf, size_t cap) {
    size_t have = 0;
    while (have + 1 < cap) {
        ssize_t r = read(fd, buf + have, cap - 1 - have);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        have += (size_t)r;
    }
    buf[have] = 0;
    return (ssize_t)have;
}

int cp_procmem_read(const char *root, int pid, int prefer, cp_procmem *out) {
    memset(out, 0, sizeof *out);
    static const char *const files[] = {NULL, "smaps_rollup", "smaps"};
    if (prefer < CP_PROCMEM_ROLLUP || prefer > CP_PROCMEM_STATM)
        prefer = CP_PROCMEM_ROLLUP;
    for (int src = prefer; src <= CP_PROCMEM_SMAPS; src++) {
        int fd = open_proc(root, pid, files[src]);
        if (fd < 0) {
            if (errno == ENOENT && pid > 0) {
                /* the file is missing (older kernel) or the process is gone:
                 * the directory tells which */
                int dfd = open_proc(root, pid, "statm");
                if (dfd < 0)
                    return -1;
                close(dfd);
            }
            continue;
        }
        int rc = read_smaps_fd(fd, out);
        int e = errno;
        close(fd);
        if (rc == 0) {
            out->source = src;
            return 0;
        }
        /* An smaps file that opens but reads empty: a process that has
         * exited and not been reaped yet (statm would read zeros), or one
         * that is being torn down. */
        memset(out, 0, sizeof *out);
        errno = (e == ENODATA) ? ESRCH : e;
        return -1;
    }
    int fd = open_proc(root, pid, "statm");
    if (fd < 0)
        return -1;
    char buf[256];
    ssize_t n = read_small(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (n <= 0 || cp_procmem_parse_statm(buf, (size_t)n, page_size(), out) != 0) {
        memset(out, 0, sizeof *out);
        errno = n < 0 ? e : ESRCH; /* an exited process reads empty */
        return -1;
    }
    out->source = CP_PROCMEM_STATM;
    return 0;
}

uint64_t cp_procmem_machine_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES);
    if (pages > 0)
        return (uint64_t)pages * page_size();
    int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[4096];
    ssize_t n = read_small(fd, buf, sizeof buf);
    close(fd);
    uint64_t total = 0;
    if (n <= 0 || cp_procmem_parse_meminfo(buf, (size_t)n, &total) != 0)
        return 0;
    return total;
}
