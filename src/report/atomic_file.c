/* atomic_file.c -- see atomic_file.h. */
#include "report/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"

static atomic_uint tmp_seq;

/* Parses "<pid>" or "<pid>.<n>" (the suffix after ".tmp."); 0 if not. */
static long temp_owner(const char *s) {
    if (*s < '0' || *s > '9')
        return 0;
    char *end;
    errno = 0;
    long pid = strtol(s, &end, 10);
    if (errno || pid <= 0)
        return 0;
    if (*end == '.') {
        const char *q = end + 1;
        if (*q < '0' || *q > '9')
            return 0;
        strtoul(q, &end, 10);
    }
    return *end == '\0' ? pid : 0;
}

/* Removes "<path>.tmp.<pid>[.<n>]" files left next to `path` by saves of
 * processes that no longer exist (killed mid-save: SIGKILL, an unhandled
 * SIGTERM).  Temp files of live processes, this one included, are kept. */
static void remove_stale_temps(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = !slash ? strdup(".") : slash == path ? strdup("/")
                                                     : strndup(path, (size_t)(slash - path));
    if (!dir)
        return;
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return;
    size_t blen = strlen(base);
    pid_t me = getpid();
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0)
            continue;
        long pid = temp_owner(n + blen + 5);
        if (pid <= 0 || pid == (long)me || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
            unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

codeprof_status cp_write_file_atomic(const char *path, const char *data, size_t len,
                                     codeprof_error *err) {
    if (!path || !*path || (!data && len))
        return cp_error_set(err, CODEPROF_EINVAL, "path", "report path is empty or NULL");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp)
        return cp_error_set(err, CODEPROF_ENOMEM, "path", "out of memory");
    remove_stale_temps(path);
    /* "<path>.tmp.<pid>.<n>": unique per save, so concurrent saves of one
     * process never share a temp file; created, never followed. */
    snprintf(tmp, plen + 32, "%s.tmp.%d.%u", path, (int)getpid(),
             atomic_fetch_add(&tmp_seq, 1u));
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = open(tmp, flags, 0644);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, flags, 0644);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        errno = e;
        return cp_error_set(err, CODEPROF_EIO, "path", "cannot write report to '%s': %s", path,
                            strerror(e));
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    free(tmp);
    return CODEPROF_OK;
fail: {
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    errno = e;
    return cp_error_set(err, CODEPROF_EIO, "path", "cannot write report to '%s': %s", path,
                        strerror(e));
}
}
