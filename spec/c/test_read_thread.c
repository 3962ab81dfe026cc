/* test_read_thread.c - documents read with a parsing thread (tsq_ctx_set_read_thread 1, or
 * TSQ_READ_THREAD=1) give what a read on one thread (0) gives: the same tree, written back the same way,
 * and for bad documents the same error at the same line and column. The documents span
 * many of the pipeline's 128 KiB blocks and hold events larger than a block. */
#include "harness.h"
#include "tsq.h"

typedef struct grow {
    char *s;
    size_t n, cap;
} grow;

static void put(grow *g, const char *s) {
    size_t l = strlen(s);
    if (g->n + l + 1 > g->cap) {
        g->cap = (g->n + l + 1) * 2;
        g->s = realloc(g->s, g->cap);
        if (!g->s) abort();
    }
    memcpy(g->s + g->n, s, l + 1);
    g->n += l;
}

static void put_rep(grow *g, char c, size_t count) {
    char chunk[4097];
    memset(chunk, c, sizeof chunk - 1);
    chunk[sizeof chunk - 1] = '\0';
    for (; count >= 4096; count -= 4096) put(g, chunk);
    chunk[count] = '\0';
    put(g, chunk);
}

/* steps with conditions, variables, entities and CR LF line ends */
static void put_steps(grow *g, int from, int count) {
    char buf[1024];
    for (int i = from; i < from + count; i++) {
        snprintf(buf, sizeof buf,
                 "\r\n  <step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"Run &amp; %d &lt;x&gt;\" "
                 "description=\"line&#13;&#10;two\" runIn=\"WinPEandFullOS\">\r\n"
                 "    <condition><expression type=\"SMS_TaskSequence_VariableConditionExpression\">"
                 "<variable name=\"Operator\">equals</variable><variable name=\"Value\">%d</variable>"
                 "<variable name=\"Variable\">V%d</variable></expression></condition>\r\n"
                 "    <action>smsswd.exe /run: cmd /c echo %d</action>\r\n"
                 "    <defaultVarList><variable name=\"CommandLine\" property=\"CommandLine\">cmd /c echo %d"
                 "</variable></defaultVarList>\r\n  </step>",
                 i, i, i, i, i);
        put(g, buf);
    }
}

typedef struct outcome {
    tsq_status st;
    char err[1400];
    char *canon; /* canonical writing of the tree, malloc'd */
    char *back;  /* writing back, malloc'd */
    grow plan;   /* a plan's states and reasons: the conditions compiled while reading (with a
                  * thread) decide as those compiled at the plan */
} outcome;

static void on_plan(void *ud, const tsq_plan_entry *e) {
    grow *g = ud;
    put(g, tsq_node_name(e->step));
    put(g, " ");
    put(g, tsq_plan_state_name(e->state));
    put(g, e->reason ? e->reason : "");
    put(g, "\n");
}

static void read_with(int thread, const char *doc, size_t len, const tsq_limits *lim, outcome *o) {
    tsq_ctx *ctx = tsq_ctx_new(NULL, NULL); /* by size: these documents are under 1 MiB or just over */
    tsq_ctx_set_read_thread(ctx, thread);
    memset(o, 0, sizeof *o);
    if (lim) tsq_ctx_set_limits(ctx, lim, NULL);
    tsq_node *seq = NULL;
    tsq_error err;
    memset(&err, 0, sizeof err);
    o->st = tsq_parse(ctx, doc, len, "big.xml", &seq, &err);
    if (o->st) tsq_error_format(&err, o->err, sizeof o->err);
    if (seq) {
        tsq_buf b;
        tsq_buf_init(&b, ctx);
        if (tsq_write_canonical(seq, &b, NULL) == TSQ_OK) o->canon = strdup(b.data);
        b.len = 0;
        if (tsq_write(seq, &b, NULL) == TSQ_OK) o->back = strdup(b.data);
        tsq_buf_free(&b);
        tsq_env *env = tsq_env_new(ctx);
        tsq_env_set(env, "V7", "7");
        tsq_env_set(env, "V8", "x");
        put(&o->plan, "");
        if (env && tsq_plan(seq, env, on_plan, &o->plan, NULL) != TSQ_OK) put(&o->plan, "plan failed");
        tsq_env_free(env);
        tsq_node_release(seq);
    }
    tsq_ctx_free(ctx);
}

static void same(const char *doc, size_t len, const tsq_limits *lim, int expect_ok) {
    outcome a, b;
    read_with(0, doc, len, lim, &a);
    read_with(1, doc, len, lim, &b);
    CHECK((a.st == TSQ_OK) == expect_ok);
    CHECK(a.st == b.st);
    CHECK_STR(a.err, b.err);
    CHECK((a.canon == NULL) == (b.canon == NULL));
    if (a.canon && b.canon) CHECK(strcmp(a.canon, b.canon) == 0);
    if (a.back && b.back) CHECK(strlen(a.back) == len && strcmp(a.back, doc) == 0 && strcmp(b.back, doc) == 0);
    if (expect_ok) CHECK(a.plan.s && b.plan.s && a.plan.n > 0 && strcmp(a.plan.s, b.plan.s) == 0);
    if (!expect_ok) fprintf(stderr, "  (%s: %s)\n", h_case, a.err);
    free(a.canon), free(a.back), free(b.canon), free(b.back), free(a.plan.s), free(b.plan.s);
}

/* g holds a new document's start */
static void begin(grow *g) {
    g->n = 0;
    put(g, "<sequence version=\"3.10\">");
}

int main(void) {
    grow g = {0};

    CASE("a document of many blocks: the same tree, written back byte for byte");
    put(&g, "<?xml version=\"1.0\"?>\r\n<!-- exported -->\r\n<sequence version=\"3.10\">");
    put_steps(&g, 0, 6000);
    put(&g, "<step type=\"X\" name=\"bad\"><condition><expression type=\"SMS_TaskSequence_VariableConditionExpression\">"
            "<variable name=\"Operator\">around</variable><variable name=\"Variable\">V1</variable></expression>"
            "</condition></step>");
    put_steps(&g, 6000, 10);
    put(&g, "\r\n</sequence>\r\n");
    same(g.s, g.n, NULL, 1);
    CHECK(g.n > 8 * 128 * 1024); /* more blocks than the pipeline has */

    CASE("events larger than a block: a comment, an attribute value, a text, a PI, CDATA");
    begin(&g);
    put_steps(&g, 0, 200);
    put(&g, "<!--");
    put_rep(&g, 'c', 300000);
    put(&g, "--><group name=\"");
    put_rep(&g, 'n', 200000);
    put(&g, "\" description=\"&amp;\"><step type=\"X\" name=\"t\"><action>");
    put_rep(&g, 't', 400000);
    put(&g, "</action><?pi ");
    put_rep(&g, 'p', 150000);
    put(&g, "?><variable name=\"a\"><![CDATA[");
    put_rep(&g, 'd', 200000);
    put(&g, "]]></variable></step></group>");
    put_steps(&g, 200, 200);
    put(&g, "</sequence>");
    same(g.s, g.n, NULL, 1);

    CASE("malformed near the end of a large document: the same error, line and column");
    begin(&g);
    put_steps(&g, 0, 3000);
    put(&g, "\r\n  <step type=\"X\" name=\"a\"></stop>\r\n</sequence>");
    same(g.s, g.n, NULL, 0);

    CASE("a limit the builder enforces (nesting) deep in a large document: the same error");
    begin(&g);
    put_steps(&g, 0, 2000);
    for (int i = 0; i < 40; i++) put(&g, "<group name=\"g\">");
    for (int i = 0; i < 40; i++) put(&g, "</group>");
    put_steps(&g, 2000, 2000);
    put(&g, "</sequence>");
    tsq_limits lim = {30, 0, 0, 0};
    same(g.s, g.n, &lim, 0);

    CASE("a builder's error early, a large document after it: the parser stops, nothing hangs");
    begin(&g);
    put(&g, "<step type=\"X\" name=\"a\"><action>");
    put_rep(&g, 'x', 5000);
    put(&g, "</action></step>");
    put_steps(&g, 0, 6000);
    put(&g, "</sequence>");
    tsq_limits small = {0, 0, 1000, 0};
    same(g.s, g.n, &small, 0);

    CASE("a DOCTYPE after a large prolog comment: refused the same way");
    g.n = 0;
    put(&g, "<?xml version=\"1.0\"?><!--");
    put_rep(&g, 'c', 300000);
    put(&g, "--><!DOCTYPE sequence [<!ENTITY x \"y\">]><sequence version=\"3.10\">&x;</sequence>");
    same(g.s, g.n, NULL, 0);

    CASE("many documents in a row, each with a thread: every hand-over seen (a lost wakeup hangs here)");
    begin(&g);
    put_steps(&g, 0, 40);
    put(&g, "</sequence>");
    setenv("TSQ_READ_THREAD", "1", 1);
    tsq_ctx *many = tsq_ctx_new(NULL, NULL);
    unsetenv("TSQ_READ_THREAD");
    int all = 1;
    for (int i = 0; i < 300 && all; i++) {
        tsq_node *seq = NULL;
        all = tsq_parse(many, g.s, g.n, "many.xml", &seq, NULL) == TSQ_OK && tsq_node_count(seq) == 40;
        tsq_node_release(seq);
    }
    CHECK(all);
    tsq_ctx_free(many);

    CASE("a small document read with a thread too");
    const char *tiny = "<sequence version=\"3.10\"><step type=\"X\" name=\"a\"><action>x</action></step></sequence>";
    same(tiny, strlen(tiny), NULL, 1);

    free(g.s);
    DONE();
}
