/* gpu_lib.c -- PLACEHOLDER (the "cuda" engineer replaces it): loads nothing. */
#include "gpu/gpu_lib.h"

#include <string.h>

static cp_gpu_libs libs_g;

const cp_gpu_libs *cp_gpu_lib_get(void) { return &libs_g; }
int cp_gpu_lib_nvml_init(void) { return -1; }
void cp_gpu_lib_atfork_child(void) {}
void cp_gpu_lib_reset_for_tests(void) { memset(&libs_g, 0, sizeof libs_g); }
