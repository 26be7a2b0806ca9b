/* rule_util.c -- helpers shared by the rules (rule_util.h). */
#include "analysis/rule_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void copy_field(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int cp_rule_add(cp_model *m, const cp_rule_info *info, const char *subject, double value,
                double threshold, const char *unit, double severity, double saving_s,
                const char *fmt, ...) {
    cp_finding f;
    memset(&f, 0, sizeof f);
    copy_field(f.rule, sizeof f.rule, info->id);
    copy_field(f.category, sizeof f.category, info->category);
    copy_field(f.subject, sizeof f.subject, subject);
    copy_field(f.unit, sizeof f.unit, unit);
    f.value = value;
    f.threshold = threshold;
    f.severity = severity;
    f.saving_s = saving_s > 0 ? saving_s : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f.recommendation, sizeof f.recommendation, fmt, ap);
    va_end(ap);
    return cp_model_add_finding(m, &f);
}

const char *cp_rule_secs(double s, char *buf, size_t n) {
    double a = s < 0 ? -s : s;
    const char *unit = "s";
    if (a == 0) {
        snprintf(buf, n, "0 s");
        return buf;
    }
    if (a < 1e-3) {
        s *= 1e6;
        a *= 1e6;
        unit = "us";
    } else if (a < 1.0) {
        s *= 1e3;
        a *= 1e3;
        unit = "ms";
    }
    int prec = a >= 100 ? 0 : a >= 10 ? 1 : 2;
    snprintf(buf, n, "%.*f %s", prec, s, unit);
    return buf;
}

double cp_rule_mib(double bytes) {
    return bytes / (1024.0 * 1024.0);
}

double cp_rule_cpu_share(const cp_model *m, uint32_t site) {
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const cp_mfunc *f = &m->funcs[i];
        if (f->site != site)
            continue;
        if (!f->cpu_count || !f->calls || !f->incl_ns)
            return -1;
        /* wall time of the calls that measured CPU: their share of calls */
        double wall = (double)f->incl_ns;
        if (f->cpu_count < f->calls)
            wall *= (double)f->cpu_count / (double)f->calls;
        double share = wall > 0 ? (double)f->cpu_ns / wall : -1;
        return share > 1.0 ? 1.0 : share;
    }
    return -1;
}
