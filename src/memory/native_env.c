/* native_env.c -- the preload library's settings (native_env.h). */
#include "memory/native_env.h"

#include <stdio.h>
#include <string.h>

int cp_native_parse_mode(const char *s, uint32_t *mode) {
    if (!s)
        return -1;
    if (strcmp(s, "sampled") == 0) {
        *mode = 1;
        return 0;
    }
    if (strcmp(s, "all") == 0) {
        *mode = 2;
        return 0;
    }
    return -1;
}

int cp_native_parse_bytes(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    if (!s || *s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    unsigned shift = 0;
    switch (*s) {
    case '\0': break;
    case 'k': case 'K': shift = 10; s++; break;
    case 'm': case 'M': shift = 20; s++; break;
    case 'g': case 'G': shift = 30; s++; break;
    default: return -1;
    }
    if (*s != '\0')
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    v <<= shift;
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cp_native_child_path(const char *path, int pid, char *buf, size_t size) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = name[0] ? strchr(name + 1, '.') : NULL;
    int n;
    if (dot)
        n = snprintf(buf, size, "%.*s.%d%s", (int)(dot - path), path, pid, dot);
    else
        n = snprintf(buf, size, "%s.%d", path, pid);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int copy_str(char *dst, size_t size, const char *src) {
    size_t n = strlen(src);
    if (n >= size)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

int cp_native_settings_read(cp_native_getenv_fn get, int pid, cp_native_settings *out,
                            char *msg, size_t msg_size) {
    memset(out, 0, sizeof *out);
    out->mode = 1;
    msg[0] = '\0';
    const char *v = get("CODEPROF_NATIVE_MODE");
    if (v && *v && cp_native_parse_mode(v, &out->mode) != 0) {
        snprintf(msg, msg_size, "CODEPROF_NATIVE_MODE: expected 'sampled' or 'all', got '%.64s'",
                 v);
        return -1;
    }
    v = get("CODEPROF_NATIVE_SAMPLE_BYTES");
    if (v && *v && cp_native_parse_bytes(v, 1, (uint64_t)1 << 40, &out->sample_bytes) != 0) {
        snprintf(msg, msg_size,
                 "CODEPROF_NATIVE_SAMPLE_BYTES: expected a byte count in [1, 2^40] "
                 "(digits with an optional K, M or G suffix), got '%.64s'", v);
        return -1;
    }
    v = get("CODEPROF_NATIVE_STACK_DEPTH");
    if (v && *v) {
        uint64_t d = 0;
        if (cp_native_parse_bytes(v, 1, 16, &d) != 0) {
            snprintf(msg, msg_size,
                     "CODEPROF_NATIVE_STACK_DEPTH: expected an integer in [1, 16], got '%.64s'", v);
            return -1;
        }
        out->stack_depth = (uint32_t)d;
    }
    v = get("CODEPROF_EXEC_OUTPUT");
    if (!v || !*v)
        return 0;
    out->exec = 1;
    const char *root = get("CODEPROF_EXEC_ROOT");
    if (root && *root) {
        uint64_t r = 0;
        out->child = cp_native_parse_bytes(root, 1, UINT32_MAX, &r) != 0 || (int)r != pid;
    }
    int rc = out->child ? cp_native_child_path(v, pid, out->output, sizeof out->output)
                        : copy_str(out->output, sizeof out->output, v);
    if (rc != 0) {
        snprintf(msg, msg_size, "CODEPROF_EXEC_OUTPUT: expected a path shorter than %d bytes",
                 CP_NATIVE_PATH_MAX - 16);
        return -1;
    }
    v = get("CODEPROF_EXEC_FORMAT");
    if (v && *v && copy_str(out->format, sizeof out->format, v) != 0) {
        snprintf(msg, msg_size, "CODEPROF_EXEC_FORMAT: expected a format name, got '%.64s'", v);
        return -1;
    }
    return 0;
}
