/* test_threads.c - contexts on separate threads share nothing: four threads, each with
 * its own tsq_ctx (and its own counting allocator), run the same workload at once -
 * parse from memory, edit properties and conditions, evaluate with an environment and
 * a provider, plan, run with a handler, write XML, save and load a file - and every
 * result must equal the one computed on the main thread before they start.
 * `make check-tsan` builds the core and this program with -fsanitize=thread. */
#include "harness.h"
#include "tsq.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <unistd.h>

#define NTHREADS 4
#define ROUNDS 40
#define NAPPS 24

/* ------------------------------------------------------------------ the document */

#define RUNCMD "SMS_TaskSequence_RunCommandLineAction"
#define VARS(cmd)                                                                                   \
    "<defaultVarList><variable name=\"CommandLine\" property=\"CommandLine\" hidden=\"true\">" cmd \
    "</variable><variable name=\"SuccessCodes\" property=\"SuccessCodes\" hidden=\"true\">0 3010" \
    "</variable></defaultVarList>"

/* A sequence with a group of NAPPS applications: every third asks WMI, every fifth a file. */
static size_t make_document(char *out, size_t size) {
    size_t n = (size_t)snprintf(out, size,
                                "<sequence version=\"3.10\">\r\n <group name=\"Apps\" description=\"threads\">\r\n");
    for (int i = 0; i < NAPPS && n < size; i++) {
        char cond[512] = "";
        if (i % 3 == 0)
            snprintf(cond, sizeof cond,
                     "<condition><expression type=\"SMS_TaskSequence_WMIConditionExpression\">"
                     "<variable name=\"Namespace\">root\\cimv2</variable><variable name=\"Query\">"
                     "SELECT * FROM Win32_Product WHERE Name = 'App %d'</variable></expression></condition>", i);
        else if (i % 5 == 0)
            snprintf(cond, sizeof cond,
                     "<condition><expression type=\"SMS_TaskSequence_FileConditionExpression\">"
                     "<variable name=\"Path\">%%AppRoot%%\\app%d.exe</variable></expression></condition>", i);
        n += (size_t)snprintf(out + n, size - n,
                              "  <step type=\"" RUNCMD "\" name=\"App %d\" description=\"\" successCodeList=\"0 3010\">"
                              "%s<action>smsswd.exe /run: setup%d.exe</action>" VARS("setup%d.exe") "</step>\r\n",
                              i, cond, i, i);
    }
    n += (size_t)snprintf(out + n, size - n, " </group>\r\n</sequence>\r\n");
    return n;
}

/* ------------------------------------------------------------------ provider, handler */

/* WMI: the query naming an even-numbered app returns a row. Files: app<N>.exe exists for N
 * divisible by 10. Pure functions of their arguments, as a provider on any thread must be. */
static tsq_status p_wmi(void *ud, const char *ns, const char *q, long *rows) {
    (void)ud, (void)ns;
    const char *app = strstr(q, "'App ");
    *rows = app && atoi(app + 5) % 2 == 0;
    return TSQ_OK;
}

static tsq_status p_file(void *ud, const char *path, tsq_file_fact *f) {
    (void)ud;
    const char *app = strstr(path, "\\app");
    f->exists = app && atoi(app + 4) % 10 == 0;
    f->version = NULL, f->datetime = NULL;
    return TSQ_OK;
}

/* Exit code 3010 for every seventh step (a reboot), 0 otherwise; counts runs in Ran;
 * the output is the command with %VAR% expanded. */
static tsq_status h_run(void *ud, const tsq_node *step, tsq_env *env, int32_t *code, tsq_buf *out) {
    (void)ud;
    const char *name = tsq_node_name(step);
    const char *ran = tsq_env_get(env, "Ran");
    char n[32];
    snprintf(n, sizeof n, "%d", (ran ? atoi(ran) : 0) + 1);
    if (tsq_env_set(env, "Ran", n) != TSQ_OK) return TSQ_ENOMEM;
    *code = atoi(name + 4) % 7 == 6 ? 3010 : 0;
    tsq_buf cmd;
    tsq_buf_init(&cmd, tsq_node_ctx(step));
    const char *line = tsq_env_expand(env, tsq_action_command(step), &cmd);
    tsq_buf_adds(out, line ? line : "?");
    tsq_buf_free(&cmd);
    return TSQ_OK;
}

/* ------------------------------------------------------------------ the workload */

typedef struct counting { size_t inuse, peak; } counting;

static void *count_alloc(void *ud, void *p, size_t osize, size_t nsize) {
    counting *c = ud;
    if (p) c->inuse -= osize;
    if (nsize == 0) {
        free(p);
        return NULL;
    }
    void *q = realloc(p, nsize);
    c->inuse += q ? nsize : (p ? osize : 0);
    if (c->inuse > c->peak) c->peak = c->inuse;
    return q;
}

typedef struct result {
    char text[16384]; /* plan, records, variables and the sizes of what was written */
    char *xml;        /* the edited document, malloc'ed */
    size_t leaked;    /* bytes the context's allocator still held after tsq_ctx_free */
    int failed;       /* the step of the workload that failed, 0 when none */
} result;

typedef struct job {
    const char *doc;
    size_t len;
    char save_path[256];
    result res;
} job;

#if defined(__GNUC__)
static void add(result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
static void add(result *r, const char *fmt, ...) {
    size_t n = strlen(r->text);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text + n, sizeof r->text - n, fmt, ap);
    va_end(ap);
}

static void plan_line(void *ud, const tsq_plan_entry *e) {
    add(ud, "plan %s %s\n", tsq_node_name(e->step), tsq_plan_state_name(e->state));
}

/* The whole workload in one fresh context; each stage records a line of text. */
static void workload(job *j) {
    result *r = &j->res;
    counting mem = {0, 0};
    tsq_ctx *ctx = tsq_ctx_new(count_alloc, &mem);
    tsq_node *seq = NULL, *again = NULL;
    tsq_env *env = NULL;
    tsq_run *run = NULL;
    tsq_cond *c = NULL;
    tsq_buf b;
    tsq_error err;
    int stage = 1; /* the stage that is running, reported when it fails */
    r->text[0] = '\0';
    r->xml = NULL;
    memset(&err, 0, sizeof err);
    if (!ctx) {
        r->failed = stage;
        return;
    }
    tsq_buf_init(&b, ctx);

    /* 1. parse; 2. edit properties and conditions */
    if (tsq_parse(ctx, j->doc, j->len, "threads.xml", &seq, &err) != TSQ_OK) goto failed;
    stage = 2;
    tsq_node *apps = tsq_node_first(seq);
    tsq_value v;
    memset(&v, 0, sizeof v);
    v.type = TSQ_V_STRING;
    for (tsq_node *s = tsq_node_first(apps); s; s = tsq_node_next(s)) {
        int i = atoi(tsq_node_name(s) + 4);
        if (i % 4 == 1) {
            char cmd[64];
            snprintf(cmd, sizeof cmd, "setup%d.exe /quiet /log:%%AppRoot%%\\%d.log", i, i);
            v.s = cmd, v.len = strlen(cmd);
            if (tsq_prop_set(s, "CommandLine", &v, &err) != TSQ_OK) goto failed;
        }
        if (i % 8 == 2) {
            if (tsq_cond_parse(ctx, "Model like \"%Latitude%\" or not _SMSTSInWinPE equals \"false\"", &c, &err) != TSQ_OK ||
                tsq_node_set_condition(s, c, &err) != TSQ_OK)
                goto failed;
            tsq_cond_free(c);
            c = NULL;
        }
        if (i % 9 == 4 && tsq_node_set_continue_on_error(s, 1) != TSQ_OK) goto failed;
    }
    tsq_node *extra = NULL;
    if (tsq_action_new(ctx, "RunCommandLine", "Extra", &extra, &err) != TSQ_OK) goto failed;
    tsq_status st = tsq_node_insert(apps, 0, extra, &err);
    tsq_node_release(extra);
    if (st != TSQ_OK) goto failed;

    /* 3. evaluate every step's condition; 4. plan */
    stage = 3;
    if (!(env = tsq_env_new(ctx))) goto failed;
    tsq_provider prov = {p_wmi, p_file, NULL, NULL, NULL, NULL};
    tsq_env_set_provider(env, &prov);
    if (tsq_env_set(env, "Model", "Latitude 7420") || tsq_env_set(env, "_SMSTSInWinPE", "false") ||
        tsq_env_set(env, "AppRoot", "C:\\Apps"))
        goto failed;
    for (tsq_node *s = tsq_node_walk(seq, NULL); s; s = tsq_node_walk(seq, s)) {
        int ok = 0;
        if (tsq_node_eval_condition(s, env, &ok, NULL, NULL, &err) != TSQ_OK) goto failed;
        add(r, "eval %s %d\n", tsq_node_name(s), ok);
    }
    stage = 4;
    if (tsq_plan(seq, env, plan_line, r, &err) != TSQ_OK) goto failed;

    /* 5. run with the handler */
    stage = 5;
    tsq_handler_entry h[] = {{"RunCommandLine", h_run, NULL}};
    tsq_run_opts o;
    memset(&o, 0, sizeof o);
    o.env = env, o.handlers = h, o.nhandlers = 1;
    if (tsq_run_sequence(seq, &o, &run, &err) != TSQ_OK) goto failed;
    for (size_t i = 0; i < tsq_run_record_count(run); i++) {
        const tsq_record *rec = tsq_run_record(run, i);
        add(r, "record %u %u %s %s %d %s\n", (unsigned)rec->Step, (unsigned)rec->LastStatusMsgID, rec->ExecutionTime,
            rec->ActionName, (int)(int32_t)rec->ExitCode, rec->ActionOutput);
    }
    add(r, "run %s Ran=%s\n", tsq_run_succeeded(run) ? "ok" : "failed", tsq_env_get(env, "Ran"));

    /* 6. write, save to a file of this thread, load it back */
    stage = 6;
    if (tsq_write(seq, &b, &err) != TSQ_OK || b.failed) goto failed;
    if (!(r->xml = malloc(b.len + 1))) goto failed;
    memcpy(r->xml, b.data, b.len + 1);
    b.len = 0;
    stage = 7;
    if (tsq_save(seq, j->save_path, &err) != TSQ_OK || tsq_load(ctx, j->save_path, &again, &err) != TSQ_OK ||
        tsq_write_canonical(again, &b, &err) != TSQ_OK)
        goto failed;
    add(r, "canonical %zu bytes\n", b.len);
    stage = 0;
failed:
    r->failed = stage;
    if (stage) add(r, "failed at stage %d: %s\n", stage, err.message);
    tsq_buf_free(&b);
    tsq_cond_free(c);
    tsq_run_free(run);
    tsq_env_free(env);
    tsq_node_release(again);
    tsq_node_release(seq);
    tsq_ctx_free(ctx);
    unlink(j->save_path);
    r->leaked = mem.inuse;
}

static void *thread_main(void *arg) {
    job *j = arg;
    for (int round = 0; round < ROUNDS && !j->res.failed; round++) {
        free(j->res.xml);
        workload(j);
    }
    return NULL;
}

int main(void) {
    static char doc[65536];
    size_t len = make_document(doc, sizeof doc);
    const char *tmp = getenv("TMPDIR");
    static job ref, jobs[NTHREADS];

    CASE("the single-threaded reference");
    ref.doc = doc, ref.len = len;
    snprintf(ref.save_path, sizeof ref.save_path, "%s/tsq-threads-%d-ref.xml", tmp ? tmp : "/tmp", (int)getpid());
    workload(&ref);
    CHECK(ref.res.failed == 0);
    CHECK(ref.res.leaked == 0);
    CHECK(ref.res.xml && strstr(ref.res.xml, "name=\"Extra\"") && strstr(ref.res.xml, "/log:%AppRoot%\\9.log"));
    CHECK(strstr(ref.res.text, "plan App 3 skip_condition") && strstr(ref.res.text, "plan App 0 run") &&
          strstr(ref.res.text, "plan App 10 run") && strstr(ref.res.text, "plan App 5 skip_condition"));
    CHECK(strstr(ref.res.text, "run ok Ran=") != NULL);
    if (ref.res.failed) fprintf(stderr, "%s", ref.res.text);

    CASE("four threads, one context each, the same workload at once");
    pthread_t t[NTHREADS];
    int started = 0;
    for (int i = 0; i < NTHREADS; i++) {
        jobs[i].doc = doc, jobs[i].len = len;
        snprintf(jobs[i].save_path, sizeof jobs[i].save_path, "%s/tsq-threads-%d-%d.xml", tmp ? tmp : "/tmp",
                 (int)getpid(), i);
        if (pthread_create(&t[i], NULL, thread_main, &jobs[i]) == 0) started++;
        else break;
    }
    CHECK(started == NTHREADS);
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < started; i++) {
        CHECK(jobs[i].res.failed == 0);
        CHECK(jobs[i].res.leaked == 0);
        CHECK_STR(jobs[i].res.text, ref.res.text);
        CHECK_STR(jobs[i].res.xml, ref.res.xml);
        free(jobs[i].res.xml);
    }
    free(ref.res.xml);
    DONE();
}
