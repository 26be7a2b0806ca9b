/* native_env.h -- the settings of the native preload library, read from its
 * environment (docs/native-memory.md):
 *
 *   CODEPROF_NATIVE_MODE          "sampled" (default) or "all"
 *   CODEPROF_NATIVE_SAMPLE_BYTES  mean bytes between recorded allocations in
 *                                 sampled mode, [1, 2^40]; a decimal number
 *                                 with an optional K, M or G suffix (KiB,
 *                                 MiB, GiB).  Default: the config default.
 *   CODEPROF_NATIVE_STACK_DEPTH   frames kept per allocation stack, [1, 16]
 *   CODEPROF_EXEC_OUTPUT          set by `codeprof exec`: the library starts
 *                                 its own session and writes the report here
 *   CODEPROF_EXEC_FORMAT          the report's format name (default: from
 *                                 the path's ending)
 *   CODEPROF_EXEC_ROOT            set by the library in the first process
 *                                 it profiles (its pid); a descendant that
 *                                 execs with the library preloaded writes
 *                                 cp_native_child_path(output, its pid)
 *
 * The functions are pure (the environment is passed in as a lookup
 * function) and allocate nothing, so they are safe in the library's
 * constructor and testable without interposition.
 */
#ifndef CP_NATIVE_ENV_H
#define CP_NATIVE_ENV_H

#include <stddef.h>
#include <stdint.h>

#define CP_NATIVE_PATH_MAX 4096

typedef struct cp_native_settings {
    uint32_t mode;          /* 1 sampled, 2 all (config memory_mode)   */
    uint64_t sample_bytes;  /* 0: the config default                   */
    uint32_t stack_depth;   /* 0: the config default                   */
    int exec;               /* CODEPROF_EXEC_OUTPUT present            */
    int child;              /* a descendant of the profiled process    */
    char output[CP_NATIVE_PATH_MAX]; /* the report this process writes */
    char format[32];        /* "" : from the output's ending           */
} cp_native_settings;

typedef const char *(*cp_native_getenv_fn)(const char *name);

/* Fills `out` from the environment; `pid` is this process's id.  Returns 0,
 * or -1 with a one-line message in `msg` naming the variable and what was
 * expected (the library then does not profile). */
int cp_native_settings_read(cp_native_getenv_fn get, int pid, cp_native_settings *out,
                            char *msg, size_t msg_size);

/* "out/run.json" + 42 -> "out/run.42.json"; "r.speedscope.json" ->
 * "r.42.speedscope.json"; "report" -> "report.42" (the pid goes before the
 * first dot of the file name that is not its first character).  Returns 0,
 * or -1 when `buf` is too small. */
int cp_native_child_path(const char *path, int pid, char *buf, size_t size);

/* Parses "sampled"/"all" (1/2).  Returns 0 or -1. */
int cp_native_parse_mode(const char *s, uint32_t *mode);
/* Parses a byte count: decimal digits, optional K/M/G (binary) suffix,
 * within [lo, hi].  Returns 0 or -1. */
int cp_native_parse_bytes(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

#endif /* CP_NATIVE_ENV_H */
