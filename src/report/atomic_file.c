/* atomic_file.c -- see atomic_file.h. */
#include "report/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"

codeprof_status cp_write_file_atomic(const char *path, const char *data, size_t len,
                                     codeprof_error *err) {
    if (!path || !*path || (!data && len))
        return cp_error_set(err, CODEPROF_EINVAL, "path", "report path is empty or NULL");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp)
        return cp_error_set(err, CODEPROF_ENOMEM, "path", "out of memory");
    snprintf(tmp, plen + 32, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
