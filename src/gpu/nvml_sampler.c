/* nvml_sampler.c -- PLACEHOLDER (the "gpusample" engineer replaces it). */
#include "gpu/nvml_sampler.h"

#include <stdlib.h>

struct cp_nvml_sampler {
    int unused;
};

cp_nvml_sampler *cp_nvml_sampler_new(struct codeprof_session *s, double interval_s,
                                     uint32_t max_samples) {
    (void)s;
    (void)interval_s;
    (void)max_samples;
    return calloc(1, sizeof(cp_nvml_sampler));
}
int cp_nvml_sampler_start(cp_nvml_sampler *ns) { (void)ns; return -1; }
void cp_nvml_sampler_stop(cp_nvml_sampler *ns) { (void)ns; }
void cp_nvml_sampler_reset(cp_nvml_sampler *ns) { (void)ns; }
void cp_nvml_sampler_free(cp_nvml_sampler *ns) { free(ns); }
void cp_nvml_sampler_atfork_child(cp_nvml_sampler *ns) { (void)ns; }
uint64_t cp_nvml_sampler_fingerprint(cp_nvml_sampler *ns) { (void)ns; return 0; }
int cp_nvml_sampler_fill_model(cp_nvml_sampler *ns, struct cp_model *m) {
    (void)ns;
    (void)m;
    return 0;
}
