/* test_read_thread.c - documents read in two halves by two parsers (tsq_ctx_set_read_thread
 * 1, or TSQ_READ_THREAD=1) give what a read on one thread (0) gives: the same tree, written
 * back the same way, the same plan, and for bad documents the same error at the same line
 * and column. The cut falls a little past the middle: the documents put every kind of
 * markup there (comments, CDATA, PIs and attribute values holding tags, namespaces, mixed
 * content), and a sweep moves a document's cut across all of it. An allocator that notes
 * the threads calling it shows that the second half was read by the helper. */
#include "harness.h"
#include "spy.h"
#include "tsq.h"

#include <pthread.h>

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
    grow plan;   /* a plan's states and reasons */
    int helper;  /* the helper thread called the allocator: the document was read in halves */
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
    spy sp = {pthread_self(), 0, 0};
    tsq_ctx *ctx = tsq_ctx_new(spy_alloc, &sp);
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
    o->helper = sp.helper;
}

/* halves: 1 when the document must have been read in halves, 0 when it must not, -1 either */
static void same_as(const char *doc, size_t len, const tsq_limits *lim, int expect_ok, int halves) {
    outcome a, b;
    read_with(0, doc, len, lim, &a);
    read_with(1, doc, len, lim, &b);
    CHECK(!a.helper);
    if (halves >= 0) CHECK(b.helper == halves);
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

static void same(const char *doc, size_t len, const tsq_limits *lim, int expect_ok) {
    same_as(doc, len, lim, expect_ok, expect_ok ? 1 : -1);
}

/* g holds a new document's start */
static void begin(grow *g) {
    g->n = 0;
    put(g, "<sequence version=\"3.10\">");
}

/* A sequence: `before` steps, then `middle`, then `after` steps. */
static void steps_around(grow *g, int before, const char *middle, int after) {
    begin(g);
    put_steps(g, 0, before);
    put(g, middle);
    put_steps(g, before, after);
    put(g, "</sequence>");
}

/* One of every kind of content, at every depth: pretty-printed with CR LF, mixed content,
 * a first child after text, empty elements, comments, CDATA and PIs holding markup,
 * attribute values holding '>' and "/>", references, namespaces declared on an ancestor
 * and used below it. */
static void put_mixture(grow *g, int i) {
    char buf[2048];
    snprintf(buf, sizeof buf,
             "\r\n  <group name=\"G%d\" x:tag=\"a &gt; b /> c\" description='it&apos;s &amp; \"q\"'>"
             "text before the first child<!-- a comment with <step name=\"fake\"> and </group> -->"
             "\r\n    <x:extra x:id=\"%d\"><x:inner/>mixed <b>bold</b> tail</x:extra>"
             "\r\n    <step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"S%d\" runIn=\"WinPEandFullOS\">"
             "<action><![CDATA[cmd /c if 1 LSS 2 echo <a> & </a>]]></action>"
             "<?pi <step name=\"no\"/> ?>"
             "<defaultVarList><variable name=\"CommandLine\" property=\"CommandLine\">cmd /c echo &lt;%d&gt;"
             "</variable></defaultVarList></step>\r\n    <group name=\"E%d\"/>\r\n  </group>",
             i, i, i, i, i);
    put(g, buf);
}

static void begin_ns(grow *g) {
    g->n = 0;
    put(g, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<sequence xmlns:x=\"urn:x\" version=\"3.10\">");
}

int main(void) {
    grow g = {0};

    CASE("a large document: the same tree, written back byte for byte, by two threads");
    g.n = 0;
    put(&g, "<?xml version=\"1.0\"?>\r\n<!-- exported -->\r\n<sequence version=\"3.10\">");
    put_steps(&g, 0, 6000);
    put(&g, "<step type=\"X\" name=\"bad\"><condition><expression type=\"SMS_TaskSequence_VariableConditionExpression\">"
            "<variable name=\"Operator\">around</variable><variable name=\"Variable\">V1</variable></expression>"
            "</condition></step>");
    put_steps(&g, 6000, 10);
    put(&g, "\r\n</sequence>\r\n");
    same(g.s, g.n, NULL, 1);

    CASE("large markup across the middle: a comment, an attribute value, a text, a PI, CDATA");
    begin(&g);
    put_steps(&g, 0, 200);
    put(&g, "<!--");
    put_rep(&g, 'c', 300000);
    put(&g, "<step name=\"in a comment\"></group>--><group name=\"");
    put_rep(&g, 'n', 200000);
    put(&g, "/>\" description=\"&amp;\"><step type=\"X\" name=\"t\"><action>");
    put_rep(&g, 't', 400000);
    put(&g, "</action><?pi ");
    put_rep(&g, 'p', 150000);
    put(&g, "<step/>?><variable name=\"a\"><![CDATA[");
    put_rep(&g, 'd', 200000);
    put(&g, "<step>]]></variable></step></group>");
    put_steps(&g, 200, 200);
    put(&g, "</sequence>");
    same(g.s, g.n, NULL, 1);

    CASE("the cut swept across every kind of content: the same tree at each place");
    for (int pad = 0; pad < 1400; pad += 9) {
        begin_ns(&g);
        put(&g, "<!--");
        put_rep(&g, '-' + 1, (size_t)pad);
        put(&g, "-->");
        for (int i = 0; i < 3; i++) put_mixture(&g, i);
        put(&g, "\r\n</sequence>\r\n");
        same(g.s, g.n, NULL, 1);
    }

    CASE("the cut at the first child of an element, after text and after none");
    for (int pad = 0; pad < 200; pad += 3) {
        begin(&g);
        put_rep(&g, ' ', (size_t)pad);
        put(&g, "<group name=\"a\"><group name=\"b\">\r\n<step type=\"X\" name=\"c\"/><step type=\"X\" name=\"d\"/>"
                "</group><group name=\"e\"><step type=\"X\" name=\"f\"/></group></group></sequence>");
        same(g.s, g.n, NULL, 1);
    }

    CASE("inside a package document: the cut below <SequenceData>");
    g.n = 0;
    put(&g, "<?xml version=\"1.0\"?><SmsTaskSequencePackage><BootImageID/><Name>P</Name><SequenceData>"
            "<sequence version=\"3.10\">");
    put_steps(&g, 0, 300);
    put(&g, "</sequence></SequenceData><Description>d</Description></SmsTaskSequencePackage>");
    same(g.s, g.n, NULL, 1);

    CASE("malformed in the second half: the error of a single read, line and column");
    begin(&g);
    put_steps(&g, 0, 3000);
    put(&g, "\r\n  <step type=\"X\" name=\"a\"></stop>\r\n</sequence>");
    same(g.s, g.n, NULL, 0);

    CASE("malformed in the first half: the same");
    steps_around(&g, 100, "\r\n  <step type=\"X\" name=\"a\" name=\"twice\"/>", 3000);
    same(g.s, g.n, NULL, 0);

    CASE("an end tag missing at the end of the first half, its start in the second: the same");
    steps_around(&g, 1000, "<group name=\"open\">", 1000);
    same(g.s, g.n, NULL, 0);

    CASE("a prefix bound only in the second half's ancestors' absence: refused the same way");
    steps_around(&g, 1000, "<y:step name=\"unbound\"/>", 1000);
    same(g.s, g.n, NULL, 0);

    CASE("a limit the builder enforces (nesting) in the second half: the same error");
    begin(&g);
    put_steps(&g, 0, 2000);
    for (int i = 0; i < 40; i++) put(&g, "<group name=\"g\">");
    for (int i = 0; i < 40; i++) put(&g, "</group>");
    put_steps(&g, 2000, 2000);
    put(&g, "</sequence>");
    tsq_limits lim = {30, 0, 0, 0};
    same(g.s, g.n, &lim, 0);

    CASE("a builder's error early, a large document after it: the same error, nothing hangs");
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

    CASE("a document declared ASCII is read as UTF-8, whole or in halves");
    g.n = 0;
    put(&g, "<?xml version=\"1.0\" encoding=\"us-ascii\"?><sequence version=\"3.10\">");
    put_steps(&g, 0, 1000);
    put(&g, "<step type=\"X\" name=\"caf\xc3\xa9\"/></sequence>");
    same(g.s, g.n, NULL, 1);

    CASE("no element open past the middle: read whole");
    g.n = 0;
    put(&g, "<sequence version=\"3.10\"><step type=\"X\" name=\"a\"/></sequence><!--");
    put_rep(&g, 'c', 100000);
    put(&g, "<step>-->");
    same_as(g.s, g.n, NULL, 1, 0);

    CASE("many documents in a row, each read in halves: nothing lost, nothing hangs");
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

    CASE("a root and its child within the first bytes: read in halves without reading past the end");
    const char *tinies[] = {"<a><b/></a>", "<a><b/><c/></a>", "<a>\n<b/></a>"}; /* not sequences */
    for (size_t i = 0; i < sizeof tinies / sizeof *tinies; i++) same_as(tinies[i], strlen(tinies[i]), NULL, 0, -1);
    const char *seq1 = "<sequence><step type=\"X\" name=\"a\"/></sequence>";
    same_as(seq1, strlen(seq1), NULL, 1, -1);

    CASE("20,000 CDATA sections before the middle: the cut is found in one pass");
    begin(&g);
    for (int i = 0; i < 20000; i++) {
        char buf[160];
        snprintf(buf, sizeof buf, "<step type=\"X\" name=\"s%d\"><action><![CDATA[echo %d]]></action><a/><b/></step>", i, i);
        put(&g, buf);
    }
    put(&g, "</sequence>");
    same(g.s, g.n, NULL, 1);

    CASE("elements nested past the scan's depth, closed before the middle: still a cut");
    begin(&g);
    for (int i = 0; i < 70; i++) put(&g, "<group name=\"d\">");
    for (int i = 0; i < 70; i++) put(&g, "</group>");
    put_steps(&g, 0, 200);
    put(&g, "</sequence>");
    same(g.s, g.n, NULL, 1);

    CASE("a small document read in halves too");
    const char *tiny = "<sequence version=\"3.10\"><step type=\"X\" name=\"a\"><action>x</action></step></sequence>";
    same(tiny, strlen(tiny), NULL, 1);

    free(g.s);
    DONE();
}
