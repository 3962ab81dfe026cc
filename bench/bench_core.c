/* bench_core.c - the core's speed without Lua: read, write, evaluate, plan, simulate.
 * usage: bench_core BIG.xml   (prints one line per figure; no assertions) */
#include "tsq.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A machine described in full: a few files and keys exist, nothing else does, so every
 * condition of the document can be decided and the plan and the run cover every step. */
static tsq_status p_wmi(void *ud, const char *ns, const char *q, long *rows) {
    (void)ud; (void)ns;
    *rows = strstr(q, "Battery") ? 1 : 0;
    return TSQ_OK;
}
static tsq_status p_file(void *ud, const char *path, tsq_file_fact *out) {
    (void)ud;
    out->exists = strstr(path, "System32") != NULL;
    out->version = out->exists ? "10.0.22621.1" : NULL;
    out->datetime = NULL;
    return TSQ_OK;
}
static tsq_status p_registry(void *ud, const char *key, const char *value, tsq_reg_fact *out) {
    (void)ud; (void)value;
    out->exists = strstr(key, "Vendor1") != NULL;
    out->type = "REG_SZ";
    out->data = "1";
    return TSQ_OK;
}
static tsq_status p_software(void *ud, const char *code, int upgrade, int *installed, const char **version) {
    (void)ud; (void)code; (void)upgrade;
    *installed = 0;
    *version = NULL;
    return TSQ_OK;
}

static void on_plan(void *ud, const tsq_plan_entry *e) {
    size_t *n = ud;
    if (e->state == TSQ_PLAN_RUN) n[0]++;
    n[1]++;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BIG.xml\n", argv[0]);
        return 2;
    }
    tsq_ctx *ctx = tsq_ctx_new(NULL, NULL);
    tsq_error err;
    char msg[1200];
    tsq_node *seq;
    double t0 = now();
    if (tsq_load(ctx, argv[1], &seq, &err)) {
        fprintf(stderr, "%s\n", tsq_error_format(&err, msg, sizeof msg));
        return 1;
    }
    double t1 = now();
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    tsq_write(seq, &b, &err);
    double t2 = now();
    size_t steps = 0;
    for (tsq_node *n = tsq_node_walk(seq, NULL); n; n = tsq_node_walk(seq, n)) steps++;
    printf("read %zu steps (%.1f MB): %.3f s; write: %.3f s\n", steps, (double)b.len / 1e6, t1 - t0, t2 - t1);
    tsq_buf_free(&b);

    /* a four-operand condition: A equals and (B like or not C exists) and D greater */
    tsq_cond *c;
    const char *text = "OSDComputerName equals \"PC01\" and (Model like \"%Latitude%\" or not IsLaptop exists) and Memory greater \"4096\"";
    if (tsq_cond_parse(ctx, text, &c, &err)) {
        fprintf(stderr, "condition: %s\n", err.message);
        return 1;
    }
    tsq_env *env = tsq_env_new(ctx);
    tsq_env_set(env, "OSDComputerName", "pc01");
    tsq_env_set(env, "Model", "Dell Latitude 7420");
    tsq_env_set(env, "Memory", "16384");
    tsq_env_set(env, "_SMSTSInWinPE", "false");
    tsq_provider prov = {p_wmi, p_file, p_file, p_registry, p_software, NULL};
    tsq_env_set_provider(env, &prov);
    tsq_node *g = tsq_group_new(ctx, "bench");
    tsq_node_set_condition(g, c, &err);
    long iters = 5000000, yes = 0;
    double t3 = now();
    for (long i = 0; i < iters; i++) {
        int r = 0;
        tsq_node_eval_condition(g, env, &r, NULL, NULL, &err);
        yes += r;
    }
    double t4 = now();
    printf("four-operand condition: %.2f million evaluations per second (%ld true)\n", (double)iters / (t4 - t3) / 1e6, yes);
    long citers = 1000000;
    double t4b = now();
    for (long i = 0; i < citers; i++) {
        int r = 0;
        tsq_cond_eval(c, env, &r, NULL, NULL, &err);
    }
    double t4c = now();
    printf("same condition through tsq_cond_eval (uncompiled): %.2f million per second\n", (double)citers / (t4c - t4b) / 1e6);
    tsq_cond_free(c);
    tsq_node_release(g);

    size_t counts[2] = {0, 0};
    double t5 = now();
    tsq_status st = tsq_plan(seq, env, on_plan, counts, &err);
    double t6 = now();
    printf("plan over %zu steps: %.1f ms (%zu would run)%s\n", counts[1], (t6 - t5) * 1e3, counts[0], st ? " [errors]" : "");
    counts[0] = counts[1] = 0;
    double t6a = now();
    tsq_plan(seq, env, on_plan, counts, &err);
    double t6b = now();
    printf("plan again (conditions compiled): %.1f ms\n", (t6b - t6a) * 1e3);

    tsq_run_opts o;
    memset(&o, 0, sizeof o);
    o.env = env;
    o.max_reboots = 1000000; /* the generated document restarts the computer thousands of times */
    tsq_run *run = NULL;
    double t7 = now();
    st = tsq_run_sequence(seq, &o, &run, &err);
    double t8 = now();
    printf("simulate %zu steps: %.3f s, %zu records, %s\n", steps, t8 - t7, run ? tsq_run_record_count(run) : 0,
           run && tsq_run_succeeded(run) ? "succeeded" : "failed");
    if (run && !tsq_run_succeeded(run)) {
        for (size_t i = 0; i < tsq_run_record_count(run); i++) {
            const tsq_record *r = tsq_run_record(run, i);
            if (r->ExitCode != 0) {
                printf("  first failure: %s: %s (%s)\n", r->ActionName, r->LastStatusMsgName, r->ActionOutput);
                break;
            }
        }
    }
    tsq_run_free(run);
    tsq_env_free(env);
    tsq_node_release(seq);
    tsq_ctx_free(ctx);
    return 0;
}
