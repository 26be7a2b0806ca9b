/* report_sample.c -- the report's "sampling" section and its text block
 * (docs/report-schema.md, "### sampling").  Per-function and per-node
 * sample figures are written with the functions and the call tree
 * (report_json.c); this section holds the sampler's settings and totals. */
#include "report/report_sample.h"

#include "model/model.h"
#include "report/docw.h"

void cp_report_sample_doc(const cp_model *m, cp_docw *w) {
    const cp_msampling *s = &m->samp;
    cp_docw_begin_object(w);
    cp_docw_kv_bool(w, "enabled", s->enabled != 0);
    cp_docw_kv_s(w, "mode", s->mode == 1 ? "cpu" : "wall");
    cp_docw_kv_ns(w, "interval_s", s->interval_ns);
    cp_docw_kv_bool(w, "native", s->native != 0);
    cp_docw_kv_u(w, "samples", s->samples);
    cp_docw_kv_u(w, "running", s->samples_running);
    cp_docw_kv_u(w, "idle", s->samples_idle);
    cp_docw_kv_u(w, "gil_wait", s->samples_gil);
    cp_docw_kv_u(w, "threads", s->threads);
    cp_docw_kv_u(w, "ticks", s->ticks);
    cp_docw_kv_u(w, "missed_ticks", s->missed_ticks);
    cp_docw_kv_u(w, "read_errors", s->read_errors);
    cp_docw_kv_ns(w, "sampler_cpu_s", s->sampler_cpu_ns);
    cp_docw_key(w, "dropped");
    cp_docw_begin_object(w);
    cp_docw_kv_u(w, "stacks", s->dropped_stacks);
    cp_docw_kv_u(w, "samples", s->dropped_samples);
    cp_docw_kv_u(w, "timeline", s->timeline_dropped);
    cp_docw_end_object(w);
    cp_docw_end_object(w);
}

static double share(uint64_t part, uint64_t whole) {
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

void cp_report_sample_text(const cp_model *m, cp_strbuf *out) {
    const cp_msampling *s = &m->samp;
    if (!s->enabled && !s->samples)
        return;
    cp_strbuf_printf(out, "\nSampling (%s clock, every %.3f ms%s)\n", s->mode == 1 ? "CPU" : "wall",
                     (double)s->interval_ns / 1e6, s->native ? ", native frames" : "");
    cp_strbuf_printf(out,
                     "  %llu samples of %llu threads: running %.1f%%, idle %.1f%%, "
                     "waiting for the GIL %.1f%%\n",
                     (unsigned long long)s->samples, (unsigned long long)s->threads,
                     share(s->samples_running, s->samples), share(s->samples_idle, s->samples),
                     share(s->samples_gil, s->samples));
    cp_strbuf_printf(out,
                     "  sampler: %llu ticks, %llu missed, %llu unreadable stacks, own CPU %.3f s\n",
                     (unsigned long long)s->ticks, (unsigned long long)s->missed_ticks,
                     (unsigned long long)s->read_errors, (double)s->sampler_cpu_ns / 1e9);
    if (s->dropped_stacks || s->dropped_samples || s->timeline_dropped)
        cp_strbuf_printf(out,
                         "  dropped: %llu stacks folded into \"(other stacks)\", %llu samples lost,"
                         " %llu samples not on the timeline\n",
                         (unsigned long long)s->dropped_stacks,
                         (unsigned long long)s->dropped_samples,
                         (unsigned long long)s->timeline_dropped);
}
