/* procmem.h -- a process's memory from /proc: resident set (RSS), proportional
 * set (PSS) and unique set (USS = Private_Clean + Private_Dirty), and the
 * machine's physical memory.
 *
 * Sources, best first: /proc/<pid>/smaps_rollup (one summary; Linux 4.14+),
 * /proc/<pid>/smaps (the same fields per mapping, summed here), and
 * /proc/<pid>/statm (RSS and shared pages only: no PSS, USS estimated as
 * resident - shared).  cp_procmem.source says which one answered.
 *
 * The parse functions take a buffer (tests feed them fixture text); the
 * readers open /proc with read(2) into a stack buffer, a fixed chunk at a
 * time: they never allocate, so the sampler thread that calls them adds
 * nothing to the heap it measures.  All functions are thread-safe.
 */
#ifndef CP_PROCMEM_H
#define CP_PROCMEM_H

#include <stddef.h>
#include <stdint.h>

typedef enum cp_procmem_source {
    CP_PROCMEM_NONE = 0,   /* nothing could be read (process gone, no /proc) */
    CP_PROCMEM_ROLLUP = 1, /* smaps_rollup */
    CP_PROCMEM_SMAPS = 2,  /* smaps, summed over mappings */
    CP_PROCMEM_STATM = 3,  /* statm: RSS and shared only */
} cp_procmem_source;

/* Bytes. */
typedef struct cp_procmem {
    uint64_t rss, pss, uss;
    uint64_t shared_clean, shared_dirty;
    uint64_t private_clean, private_dirty;
    uint64_t swap;
    int source;  /* cp_procmem_source */
    int has_pss; /* pss is measured (not statm) */
} cp_procmem;

/* "rollup", "smaps", "statm", "none". */
const char *cp_procmem_source_name(int source);

/* Parses smaps or smaps_rollup text (`len` bytes, need not be
 * NUL-terminated): sums the "Rss:", "Pss:", "Shared_Clean:",
 * "Shared_Dirty:", "Private_Clean:", "Private_Dirty:" and "Swap:" lines
 * (in kB) over every mapping; uss = private_clean + private_dirty.  Other
 * lines are ignored; the last line need not end with a newline.  Returns the
 * number of Rss lines seen (0: not smaps text); `out` is filled (source
 * left to the caller). */
int cp_procmem_parse_smaps(const char *buf, size_t len, cp_procmem *out);

/* Parses statm text ("size resident shared text lib data dt", in pages):
 * rss = resident * page, shared_clean = shared * page, uss = rss - shared.
 * Returns 0, or -1 when the text has fewer than three numbers. */
int cp_procmem_parse_statm(const char *buf, size_t len, uint64_t page, cp_procmem *out);

/* Parses /proc/meminfo text: *total = MemTotal in bytes.  Returns 0, or
 * -1 when there is no MemTotal line. */
int cp_procmem_parse_meminfo(const char *buf, size_t len, uint64_t *total);

/* Reads process `pid` (0: this process) from the best source available;
 * `prefer` caps how good a source is tried (CP_PROCMEM_ROLLUP tries all,
 * CP_PROCMEM_SMAPS skips smaps_rollup, CP_PROCMEM_STATM reads statm only:
 * tests, and kernels where a better file was found missing once).
 * Returns 0 with out->source set, or -1 (errno: ENOENT/ESRCH when the
 * process is gone) with out->source == CP_PROCMEM_NONE.
 * `root` is the /proc mount to read ("/proc" when NULL; tests point it at
 * a fixture directory holding "<pid>/smaps_rollup" etc.). */
int cp_procmem_read(const char *root, int pid, int prefer, cp_procmem *out);

/* Physical memory of the machine in bytes: sysconf(_SC_PHYS_PAGES) x page
 * size, else /proc/meminfo MemTotal; 0 if unknown. */
uint64_t cp_procmem_machine_bytes(void);

#endif /* CP_PROCMEM_H */
