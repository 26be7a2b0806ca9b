/* test_report_mem.c -- the report's memory section (src/report/
 * report_mem.c): the contract's keys and values from a hand-filled model,
 * "off" when nothing was measured, mode "rss" figures, the bounds
 * (report_top_functions contexts, CP_MEM_MAX_* groups, only referenced
 * stacks), the section in the whole document, and the text block. */
/* docw.h before cmocka.h, whose fail() macro would rewrite cp_docw_fail */
#include "report/docw.h"
#include "report/jsonw.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_fixture.h"
#include "mem_fixture.h"
#include "report/jsonr.h"
#include "report/report.h"
#include "report/report_mem.h"
#include "report/strbuf.h"

/* The "memory" section alone, as JSON text (caller frees). */
static char *render_section(const cp_model *m) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    cp_jsonw jw;
    cp_jsonw_init(&jw, &sb);
    cp_docw w;
    cp_docw_json(&w, &jw);
    assert_int_equal(cp_report_doc(m, &w, "memory"), 0);
    assert_int_equal(cp_jsonw_finish(&jw), 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

static char *render(const cp_model *m, int (*fn)(const cp_model *, cp_strbuf *)) {
    cp_strbuf sb;
    cp_strbuf_init(&sb);
    assert_int_equal(fn(m, &sb), 0);
    char *s = cp_strbuf_detach(&sb, NULL);
    assert_non_null(s);
    return s;
}

static void has(const char *doc, const char *needle) {
    if (!strstr(doc, needle))
        fail_msg("missing: %s\nin: %s", needle, doc);
}

static cp_jsonr_doc *parse(const char *s) {
    cp_jsonr_doc *doc = NULL;
    cp_jsonr_error e;
    if (cp_jsonr_parse(s, strlen(s), NULL, &doc, &e) != 0)
        fail_msg("invalid JSON at byte %zu: %s\n%s", e.offset, e.message, s);
    return doc;
}

/* The memory section of mem_fixture.h's model, exactly. */
static const char *const expected_full =
    "{\"enabled\":true,\"mode\":\"all\",\"estimated\":false,\"native\":false,"
    "\"sample_bytes\":262144,\"stack_depth\":8,"
    "\"memory_statistics\":{\"total_memory_delta\":243269632,\"avg_memory_delta\":30408704,"
    "\"peak_memory\":838860800,\"calls\":8,\"contexts\":3,\"live_bytes\":234881664,"
    "\"peak_bytes\":1059065856,\"rss_bytes\":1258291200,\"rss_peak_bytes\":1610612736,"
    "\"machine_bytes\":17179869184},"
    "\"memory_intensive_contexts\":[{\"context\":\"transient\",\"file\":\"pipe.py\","
    "\"line\":12,\"kind\":\"function\",\"calls\":2,\"memory_delta\":2097152,"
    "\"avg_memory_delta\":1048576,\"max_memory_delta\":1048576,\"peak\":838860800,"
    "\"rss_delta\":4194304,\"rss_peak\":828375040,\"leaked_bytes\":0,\"leaked_blocks\":0,"
    "\"floor_growth_per_call\":0,\"gc_collections\":0,\"estimated\":false},"
    "{\"context\":\"data_processing\",\"file\":null,\"line\":0,\"kind\":\"scope\","
    "\"calls\":1,\"memory_delta\":209715200,\"avg_memory_delta\":209715200,"
    "\"max_memory_delta\":209715200,\"peak\":220200960,\"rss_delta\":210763776,"
    "\"rss_peak\":214958080,\"leaked_bytes\":209715200,\"leaked_blocks\":1,"
    "\"floor_growth_per_call\":0,\"gc_collections\":3,\"estimated\":false},"
    "{\"context\":\"epoch\",\"file\":null,\"line\":0,\"kind\":\"scope\",\"calls\":5,"
    "\"memory_delta\":31457280,\"avg_memory_delta\":6291456,\"max_memory_delta\":6291456,"
    "\"peak\":8388608,\"rss_delta\":0,\"rss_peak\":0,\"leaked_bytes\":25165824,"
    "\"leaked_blocks\":4,\"floor_growth_per_call\":6291456,\"gc_collections\":40,"
    "\"estimated\":false}],\"gc_statistics\":{\"enabled\":true,\"total_collections\":111,"
    "\"avg_collections\":13.875,\"collections\":[100,10,1],\"collected\":[5000,300,20],"
    "\"uncollectable\":[0,0,2],\"time_s\":0.6,\"time_s_by_generation\":[0.2,0.1,0.3],"
    "\"max_pause_s\":0.25,\"share_of_wall\":0.06},\"domains\":{\"raw\":{\"alloc_count\":0,"
    "\"alloc_bytes\":0,\"free_count\":0,\"free_bytes\":0,\"live_bytes\":0,\"live_blocks\":0,"
    "\"peak_bytes\":0},\"mem\":{\"alloc_count\":0,\"alloc_bytes\":0,\"free_count\":0,"
    "\"free_bytes\":0,\"live_bytes\":0,\"live_blocks\":0,\"peak_bytes\":0},"
    "\"object\":{\"alloc_count\":100,\"alloc_bytes\":6400,\"free_count\":90,"
    "\"free_bytes\":5760,\"live_bytes\":640,\"live_blocks\":10,\"peak_bytes\":4096},"
    "\"numpy\":{\"alloc_count\":4,\"alloc_bytes\":1073741824,\"free_count\":2,"
    "\"free_bytes\":838860800,\"live_bytes\":234881024,\"live_blocks\":2,"
    "\"peak_bytes\":1059061760},\"native\":{\"alloc_count\":0,\"alloc_bytes\":0,"
    "\"free_count\":0,\"free_bytes\":0,\"live_bytes\":0,\"live_blocks\":0,\"peak_bytes\":0}},"
    "\"stacks\":[{\"frames\":[{\"function\":\"load_large_dataset\",\"file\":\"pipe.py\","
    "\"line\":30},{\"function\":\"main\",\"file\":\"pipe.py\",\"line\":50}]},"
    "{\"frames\":[{\"function\":\"list.append\",\"file\":null,\"line\":0},"
    "{\"function\":\"train_step\",\"file\":\"train.py\",\"line\":55}]}],"
    "\"top_allocations\":[{\"stack\":0,\"context\":\"data_processing\","
    "\"live_bytes\":209715200,\"live_blocks\":1},{\"stack\":1,\"context\":\"epoch\","
    "\"live_bytes\":25165824,\"live_blocks\":4}],\"leaks\":[{\"context\":\"epoch\","
    "\"stack\":1,\"live_bytes\":25165824,\"live_blocks\":4}],\"processes\":[{\"pid\":4242,"
    "\"worker\":-1,\"loader\":null,\"samples\":20,\"duration_s\":9.5,\"rss_first\":314572800,"
    "\"rss_last\":1258291200,\"rss_max\":1610612736,\"pss_first\":293601280,"
    "\"pss_last\":1153433600,\"pss_max\":1468006400,\"uss_first\":262144000,"
    "\"uss_last\":1048576000,\"uss_max\":1363148800,\"items\":0,\"source\":\"rollup\","
    "\"exited\":false},{\"pid\":5000,\"worker\":0,"
    "\"loader\":\"train_loader\",\"samples\":10,\"duration_s\":5,\"rss_first\":419430400,"
    "\"rss_last\":482344960,\"rss_max\":492830720,\"pss_first\":157286400,"
    "\"pss_last\":209715200,\"pss_max\":220200960,\"uss_first\":104857600,"
    "\"uss_last\":167772160,\"uss_max\":178257920,\"items\":64,\"source\":\"rollup\","
    "\"exited\":true}],"
    "\"snapshots\":[{\"context\":\"epoch\",\"t_s\":1.5,\"live_bytes\":16777216,"
    "\"groups\":[{\"stack\":1,\"live_bytes\":6291456,\"live_blocks\":1}]},"
    "{\"context\":\"epoch\",\"t_s\":3,\"live_bytes\":23068672,\"groups\":[{\"stack\":1,"
    "\"live_bytes\":12582912,\"live_blocks\":2}]}],\"own_bytes\":12345,"
    "\"dropped\":{\"blocks\":7,\"stacks\":0,\"snapshots\":0,\"marks\":0,\"contexts\":0,"
    "\"samples\":1,\"procs\":0}}";

static void test_section_exact(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_mem_fill(m);
    char *j = render_section(m);
    if (strcmp(j, expected_full) != 0)
        fail_msg("memory section differs:\n got: %s\nwant: %s", j, expected_full);
    cp_jsonr_doc *doc = parse(j);
    cp_jsonr_free(doc);
    free(j);
    cp_model_free(m);
}

/* The keys of object `v` (and of the objects it holds, with their paths),
 * appended to sb: the shape of a document. */
static void key_paths(const cp_jval *v, const char *path, cp_strbuf *sb) {
    if (v->type != CP_JOBJECT)
        return;
    for (uint32_t i = 0; i < v->len; i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", path, v->u.kids[i].key);
        cp_strbuf_printf(sb, "%s\n", sub);
        key_paths(&v->u.kids[i], sub, sb);
    }
}

/* Nothing measured: "off", every key there with zero figures and empty
 * lists (the facade reads them without checking). */
static void test_off_has_every_key(void **state) {
    (void)state;
    cp_model *off = fx_model(), *on = fx_model();
    fx_mem_fill(on);
    char *j = render_section(off), *k = render_section(on);
    has(j, "{\"enabled\":false,\"mode\":\"off\",\"estimated\":false,\"native\":false,");
    has(j, "\"memory_statistics\":{\"total_memory_delta\":0,\"avg_memory_delta\":0,"
           "\"peak_memory\":0,\"calls\":0,\"contexts\":0,");
    has(j, "\"memory_intensive_contexts\":[],\"gc_statistics\":{\"enabled\":false,"
           "\"total_collections\":0,\"avg_collections\":0,\"collections\":[0,0,0],");
    has(j, "\"stacks\":[],\"top_allocations\":[],\"leaks\":[],\"processes\":[],"
           "\"snapshots\":[],\"own_bytes\":0,");
    cp_jsonr_doc *a = parse(j), *b = parse(k);
    cp_strbuf ka, kb;
    cp_strbuf_init(&ka);
    cp_strbuf_init(&kb);
    key_paths(cp_jsonr_root(a), "memory", &ka);
    key_paths(cp_jsonr_root(b), "memory", &kb);
    /* the same object keys (lists are empty when off, so compare the
     * top and the fixed objects) */
    assert_true(cp_strbuf_ok(&ka) && cp_strbuf_ok(&kb));
    assert_string_equal(ka.data, kb.data);
    cp_strbuf_free(&ka);
    cp_strbuf_free(&kb);
    cp_jsonr_free(a);
    cp_jsonr_free(b);
    free(j);
    free(k);
    /* the text summary has no Memory block when off */
    char *t = render(off, cp_report_text);
    assert_null(strstr(t, "\nMemory ("));
    free(t);
    cp_model_free(off);
    cp_model_free(on);
}

/* Mode "rss" (no allocation tracking): a context's memory_delta and peak
 * are its RSS figures, and contexts are ordered by them. */
static void test_rss_mode_figures(void **state) {
    (void)state;
    cp_model *m = fx_model();
    uint32_t a = fx_site(m, "small_tracked_big_rss", "", 0, CODEPROF_SITE_SCOPE);
    uint32_t b = fx_site(m, "other", "", 0, CODEPROF_SITE_SCOPE);
    cp_mmem_ctx *c = fx_mem_ctx(m, b, 2);
    c->rss_delta_sum = (int64_t)FX_MIB(10);
    c->rss_delta_max = (int64_t)FX_MIB(6);
    c->rss_peak_max = FX_MIB(20);
    c = fx_mem_ctx(m, a, 4);
    c->peak_max = FX_MIB(1); /* not shown in mode rss */
    c->delta_sum = 5;
    c->rss_delta_sum = -(int64_t)FX_MIB(4);
    c->rss_delta_max = (int64_t)FX_MIB(3);
    c->rss_peak_max = FX_MIB(300);
    m->mem.rss_peak = FX_MIB(900);
    char *j = render_section(m);
    has(j, "\"enabled\":true,\"mode\":\"rss\",");
    has(j, "\"total_memory_delta\":6291456,\"avg_memory_delta\":1048576,"
           "\"peak_memory\":314572800,\"calls\":6,\"contexts\":2,");
    has(j, "\"memory_intensive_contexts\":[{\"context\":\"small_tracked_big_rss\",\"file\":null,"
           "\"line\":0,\"kind\":\"scope\",\"calls\":4,\"memory_delta\":-4194304,"
           "\"avg_memory_delta\":-1048576,\"max_memory_delta\":3145728,\"peak\":314572800,"
           "\"rss_delta\":-4194304,\"rss_peak\":314572800,");
    has(j, "},{\"context\":\"other\",");
    has(j, "\"rss_peak_bytes\":943718400,");
    free(j);
    char *t = render(m, cp_report_text);
    has(t, "\nMemory (mode rss)\n");
    has(t, "  memory contexts (process RSS), largest peak first (2 of 2)\n");
    assert_null(strstr(t, "tracked heap"));
    free(t);
    cp_model_free(m);
}

/* Bounded: report_top_functions contexts, CP_MEM_MAX_LEAKS leak groups,
 * CP_MEM_SNAP_SITES groups per snapshot, only the stacks written groups
 * refer to (renumbered); a group's context outside the listed ones keeps
 * its name. */
static void test_bounds(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_mem_fill(m);
    m->cfg.report_top_functions = 1;
    cp_mmem *mm = &m->mem;
    uint32_t n = CP_MEM_MAX_LEAKS + 100;
    free(mm->leaks);
    mm->leaks = fx_calloc(n, sizeof *mm->leaks);
    for (uint32_t i = 0; i < n; i++)
        mm->leaks[i] = (cp_mmem_group){2, 0, 1000 - i, 1};
    mm->nleaks = n;
    /* a snapshot with too many groups, one pointing past the groups */
    free(mm->snap_groups);
    mm->nsnap_groups = CP_MEM_SNAP_SITES + 10;
    mm->snap_groups = fx_calloc(mm->nsnap_groups, sizeof *mm->snap_groups);
    for (uint32_t i = 0; i < mm->nsnap_groups; i++)
        mm->snap_groups[i] = (cp_mmem_group){1, CP_NONE, 100, 1};
    mm->snaps[0].first = 0;
    mm->snaps[0].n = mm->nsnap_groups;
    mm->snaps[1].first = mm->nsnap_groups + 5;
    mm->snaps[1].n = 3;
    char *j = render_section(m);
    cp_jsonr_doc *doc = parse(j);
    const cp_jval *root = cp_jsonr_root(doc);
    const cp_jval *ctxs = cp_jsonr_get(root, "memory_intensive_contexts");
    assert_int_equal(ctxs->len, 1);
    assert_string_equal(cp_jsonr_get(&ctxs->u.kids[0], "context")->u.str, "transient");
    const cp_jval *leaks = cp_jsonr_get(root, "leaks");
    assert_int_equal(leaks->len, CP_MEM_MAX_LEAKS);
    /* the leak groups' context (data_processing) is named though not listed */
    assert_string_equal(cp_jsonr_get(&leaks->u.kids[0], "context")->u.str, "data_processing");
    const cp_jval *snaps = cp_jsonr_get(root, "snapshots");
    assert_int_equal(cp_jsonr_get(&snaps->u.kids[0], "groups")->len, CP_MEM_SNAP_SITES);
    assert_int_equal(cp_jsonr_get(&snaps->u.kids[1], "groups")->len, 0);
    /* stacks 1 and 2 are referenced, stack 0 is not: two written */
    assert_int_equal(cp_jsonr_get(root, "stacks")->len, 2);
    cp_jsonr_free(doc);
    free(j);
    m->cfg.report_top_functions = 0;
    j = render_section(m);
    has(j, "\"memory_intensive_contexts\":[],");
    free(j);
    cp_model_free(m);
}

/* Figures of a read report can be anything: the total saturates at the
 * int64 range instead of overflowing. */
static void test_total_saturates(void **state) {
    (void)state;
    cp_model *m = fx_model();
    m->mem.mode = 2;
    for (int i = 0; i < 3; i++)
        fx_mem_ctx(m, fx_site(m, i ? (i == 1 ? "b" : "c") : "a", "", 0, CODEPROF_SITE_SCOPE), 1)
            ->delta_sum = INT64_MAX / 2 + 1;
    char *j = render_section(m);
    has(j, "\"total_memory_delta\":9223372036854775807,");
    free(j);
    for (uint32_t i = 0; i < m->mem.nctxs; i++)
        m->mem.ctxs[i].delta_sum = INT64_MIN / 2 - 1;
    j = render_section(m);
    has(j, "\"total_memory_delta\":-9223372036854775808,");
    free(j);
    cp_model_free(m);
}

/* The whole document: schema 3, "memory" between data_loading and
 * findings, valid JSON. */
static void test_in_document(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_mem_fill(m);
    char *j = render(m, cp_report_json);
    has(j, "\"schema_version\":4,");
    const char *dl = strstr(j, "\"data_loading\":{"), *mem = strstr(j, "\"memory\":{\"enabled\"");
    const char *fi = strstr(j, "\"findings\":[");
    assert_true(dl && mem && fi && dl < mem && mem < fi);
    assert_memory_equal(mem + strlen("\"memory\":"), expected_full, strlen(expected_full));
    cp_jsonr_free(parse(j));
    free(j);
    cp_model_free(m);
}

static void test_text_block(void **state) {
    (void)state;
    cp_model *m = fx_model();
    fx_mem_fill(m);
    char *t = render(m, cp_report_text);
    has(t, "\nMemory (mode all)\n");
    has(t, "  process RSS: last 1200.0 MiB, peak 1536.0 MiB of 16384.0 MiB physical memory\n");
    has(t, "  tracked heap: live 224.0 MiB, peak 1010.0 MiB\n");
    has(t, "  numpy           224.0       1010.0              4\n");
    has(t, "           2           +2.0        800.0          0.0  transient  pipe.py:12\n");
    /* leak suspects: epoch (rising floor), not data_processing (one call) */
    has(t, "  leak suspects\n    epoch: 24.0 MiB in 4 blocks still live after it; "
           "floor +6.00 MiB per call (4 of 4 calls rose)\n"
           "            24.0 MiB  train.py:55 train_step via list.append\n");
    assert_null(strstr(t, "    data_processing:"));
    has(t, "  GC: 100/10/1 collections (gen 0/1/2), 0.600 s (6.0% of wall), longest pause "
           "250.0 ms, 2 uncollectable\n");
    has(t, "      main     4242       20        250.0->1000.0       1400.0       1536.0\n");
    has(t, "         0     5000       10         100.0->160.0        210.0        470.0\n");
    assert_null(strstr(t, " MB"));
    free(t);
    /* sampled: the mode says the figures are estimates */
    m->mem.mode = 1;
    m->mem.estimated = 1;
    t = render(m, cp_report_text);
    has(t, "\nMemory (mode sampled, one allocation recorded per ~262144 bytes: figures are "
           "estimates)\n");
    has(t, "  tracked heap: live 224.0 MiB, peak 1010.0 MiB (estimates)\n");
    free(t);
    cp_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_section_exact), cmocka_unit_test(test_off_has_every_key),
        cmocka_unit_test(test_rss_mode_figures), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_in_document),      cmocka_unit_test(test_text_block),
        cmocka_unit_test(test_total_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
