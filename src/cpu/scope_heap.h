/* scope_heap.h -- memory scopes (CODEPROF_SCOPE_HEAP) of scope.c. */
#ifndef CP_SCOPE_HEAP_H
#define CP_SCOPE_HEAP_H

#include <stdint.h>

/* Memory scopes open at once on one thread that are measured; deeper ones
 * are counted, not measured. */
#define CP_SCOPE_HEAP_DEPTH 64

/* Memory scopes not measured because CP_SCOPE_HEAP_DEPTH were open on
 * their thread (process-wide, since start of the process). */
uint64_t cp_scope_heap_overflow(void);

#endif /* CP_SCOPE_HEAP_H */
