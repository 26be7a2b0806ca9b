/* atomic_file.h -- write a whole file atomically (temp file in the same
 * directory, fsync, rename), so a reader never sees a partial report and a
 * crash or kill leaves the previous one intact. */
#ifndef CP_ATOMIC_FILE_H
#define CP_ATOMIC_FILE_H

#include <stddef.h>

#include "codeprof/codeprof.h"

/* Writes `len` bytes of `data` to `path` through "<path>.tmp.<pid>.<n>".
 * On failure removes the temp file, leaves `path` untouched and fills `err`
 * (field "path") with the path and the OS error; returns CODEPROF_EIO (or
 * EINVAL for NULL args).  Temp files of earlier saves whose process is gone
 * (killed mid-save) are removed first. */
codeprof_status cp_write_file_atomic(const char *path, const char *data, size_t len,
                                     codeprof_error *err);

#endif
