/* test_read_random.c - random documents, read whole (tsq_ctx_set_read_thread 0) and in two
 * halves (1), give the same status, the same error text, and when read the same canonical
 * form and the same bytes written back. The documents mix what a cut can fall in: nested
 * groups and steps, attribute values holding '>', quotes and references, comments, CDATA
 * sections and PIs holding markup, text, namespaces, CR LF, a BOM, a package around the
 * sequence; a third get one to three bytes changed, removed or added, a tenth run under
 * small limits. The seed is fixed: a failure is reproduced by the case it names. */
#include "harness.h"
#include "spy.h"
#include "tsq.h"

#include <pthread.h>
#include <stdint.h>

typedef struct gen {
    char *s;
    size_t n, cap, target;
    uint64_t rs;
    int ns; /* the x: prefix is bound on the sequence */
} gen;

static uint32_t rnd(gen *g) {
    g->rs ^= g->rs << 13;
    g->rs ^= g->rs >> 7;
    g->rs ^= g->rs << 17;
    return (uint32_t)(g->rs >> 11);
}
static int pick(gen *g, int n) { return n <= 0 ? 0 : (int)(rnd(g) % (uint32_t)n); }

static void put(gen *g, const char *s) {
    size_t l = strlen(s);
    if (g->n + l + 1 > g->cap) {
        g->cap = (g->n + l + 1) * 2;
        if (!(g->s = realloc(g->s, g->cap))) abort();
    }
    memcpy(g->s + g->n, s, l + 1);
    g->n += l;
}

static const char *space(gen *g) {
    static const char *const v[] = {"\r\n", "\n", "", " ", "\r\n  ", "\n\t"};
    return v[pick(g, 6)];
}

static void attrs(gen *g) {
    static const char *const values[] = {"plain", "a &gt; b", "x > y />", "&amp;&lt;&#62;&#x3C;", "it's", "say \"hi\"",
                                         "line&#13;&#10;two", "/step>", "", "tab\there", "caf\xc3\xa9", "&apos;&quot;"};
    static const char *const names[] = {"name", "description", "type", "runIn", "continueOnError", "disable"};
    char b[300];
    for (int i = 0, n = pick(g, 4); i < n; i++) {
        const char *v = values[pick(g, 12)];
        int dq = strchr(v, '"') ? 0 : strchr(v, '\'') ? 1 : pick(g, 2);
        const char *nm = g->ns && pick(g, 3) == 0 ? "x:tag" : names[pick(g, 6)];
        snprintf(b, sizeof b, "%s%s%s=%s%s%s", pick(g, 4) ? " " : "\r\n   ", nm, i == 0 ? "" : i == 1 ? "1" : "2",
                 dq ? "\"" : "'", v, dq ? "\"" : "'");
        put(g, b);
    }
}

static void misc(gen *g) {
    static const char *const v[] = {"<!-- a comment with <step name=\"fake\"> and </group> -->",
                                    "<![CDATA[cmd /c if 1 LSS 2 echo <a> & </a> ]] >]]>",
                                    "<?pi <step name=\"no\"/> > ?>",
                                    "text &amp; more &lt;tags&gt; &#233; \"q\" 'a' > x",
                                    "<!---->", "<?p?>", "<![CDATA[]]>", "\xc3\xa9\xe2\x82\xac text"};
    int i = pick(g, 9);
    put(g, i < 8 ? v[i] : space(g));
}

static void element(gen *g, int depth);
static void content(gen *g, int depth, int many) {
    for (int i = 0, n = pick(g, many ? 8 : 4); i < n && g->n < g->target; i++) {
        if (pick(g, 3) == 0) misc(g);
        else put(g, space(g));
        if (pick(g, 4)) element(g, depth);
    }
    if (pick(g, 3) == 0) misc(g);
    if (pick(g, 2)) put(g, space(g));
}

static void element(gen *g, int depth) {
    static const char *const names[] = {"group", "group", "group", "step", "step", "step", "x:extra", "condition", "variable", "action"};
    int r = pick(g, 10);
    const char *name = r == 6 && !g->ns ? "condition" : names[r];
    put(g, "<");
    put(g, name);
    if (g->ns && pick(g, 8) == 0) put(g, " xmlns:y=\"urn:y\"");
    attrs(g);
    if (pick(g, 6) == 0 || depth > 12) {
        put(g, pick(g, 2) ? "/>" : " />");
        return;
    }
    put(g, ">");
    content(g, depth + 1, r < 3);
    put(g, "</");
    put(g, name);
    put(g, pick(g, 8) ? ">" : " >");
}

static void document(gen *g) {
    g->n = 0;
    put(g, "");
    int r = pick(g, 10);
    g->target = (size_t)(r < 2 ? 20 + pick(g, 200) : r < 9 ? pick(g, 40000) : 100000 + pick(g, 60000));
    g->ns = pick(g, 2);
    if (pick(g, 8) == 0) put(g, "\xEF\xBB\xBF");
    if (pick(g, 2)) put(g, pick(g, 2) ? "<?xml version=\"1.0\" encoding=\"utf-8\"?>" : "<?xml version='1.0' standalone='yes'?>");
    if (pick(g, 3) == 0) put(g, "\r\n<!-- exported <sequence> -->");
    put(g, space(g));
    int package = pick(g, 6) == 0;
    if (package) put(g, "<SmsTaskSequencePackage><SequenceData>");
    put(g, g->ns ? "<sequence xmlns:x=\"urn:x\" version=\"3.10\">" : "<sequence version=\"3.10\">");
    while (g->n < g->target) {
        put(g, space(g));
        element(g, 1);
        if (pick(g, 5) == 0) misc(g);
    }
    put(g, space(g));
    put(g, "</sequence>");
    if (package) put(g, "</SequenceData></SmsTaskSequencePackage>");
    if (pick(g, 3) == 0) put(g, "\n<!-- after -->");
}

/* one byte changed, removed or added */
static void corrupt(gen *g) {
    static const char bytes[] = "<>&\"'/!?-[]=; \r\nxa";
    size_t p = (size_t)pick(g, (int)g->n);
    char c = pick(g, 4) ? bytes[pick(g, (int)sizeof bytes - 1)] : (char)pick(g, 256);
    int k = pick(g, 3);
    if (k == 0) {
        g->s[p] = c;
    } else if (k == 1) {
        memmove(g->s + p, g->s + p + 1, g->n - p);
        g->n--;
    } else {
        put(g, " ");
        memmove(g->s + p + 1, g->s + p, g->n - p - 1);
        g->s[p] = c;
    }
}

typedef struct outcome {
    tsq_status st;
    char err[1400];
    char *canon, *back;
    int helper;
} outcome;


static void read_with(int mode, const char *doc, size_t len, const tsq_limits *lim, outcome *o) {
    spy sp = {pthread_self(), 0, 0};
    tsq_ctx *ctx = tsq_ctx_new(spy_alloc, &sp);
    tsq_ctx_set_read_thread(ctx, mode);
    if (lim) tsq_ctx_set_limits(ctx, lim, NULL);
    memset(o, 0, sizeof *o);
    tsq_node *seq = NULL;
    tsq_error err;
    memset(&err, 0, sizeof err);
    o->st = tsq_parse(ctx, doc, len, "r.xml", &seq, &err);
    if (o->st) tsq_error_format(&err, o->err, sizeof o->err);
    if (seq) {
        tsq_buf b;
        tsq_buf_init(&b, ctx);
        if (tsq_write_canonical(seq, &b, NULL) == TSQ_OK) o->canon = strdup(b.data ? b.data : "");
        b.len = 0;
        if (tsq_write(seq, &b, NULL) == TSQ_OK) o->back = strdup(b.data ? b.data : "");
        tsq_buf_free(&b);
        tsq_node_release(seq);
    }
    tsq_ctx_free(ctx);
    o->helper = sp.helper;
}

static int same_text(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

int main(void) {
    gen g = {NULL, 0, 0, 0, 0x9E3779B97F4A7C15ull, 0};
    int read_ok = 0, in_halves = 0, bad = 0;
    static char name[64];
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof name, "random document %d", i);
        CASE(name);
        document(&g);
        if (pick(&g, 3) == 0)
            for (int k = 0, n = 1 + pick(&g, 3); k < n; k++) corrupt(&g);
        tsq_limits lim, *lp = NULL;
        if (pick(&g, 10) == 0) {
            memset(&lim, 0, sizeof lim);
            if (pick(&g, 2)) lim.max_depth = 3 + (uint32_t)pick(&g, 10);
            else lim.max_text = 5 + (uint64_t)pick(&g, 60);
            lp = &lim;
        }
        outcome a, b;
        read_with(0, g.s, g.n, lp, &a);
        read_with(1, g.s, g.n, lp, &b);
        int same = a.st == b.st && strcmp(a.err, b.err) == 0 && same_text(a.canon, b.canon) && same_text(a.back, b.back);
        CHECK(same);
        CHECK(!a.helper);
        if (!same) {
            bad++;
            fprintf(stderr, "  %zu bytes: %s | %s\n", g.n, a.err, b.err);
        }
        if (a.st == TSQ_OK) read_ok++, in_halves += b.helper;
        free(a.canon), free(a.back), free(b.canon), free(b.back);
    }
    CASE("the random documents exercise both reads");
    CHECK(bad == 0);
    CHECK(read_ok >= 100);       /* most are read, not refused */
    CHECK(in_halves >= read_ok / 2); /* and most of those in two halves */
    printf("%d read, %d of them in halves\n", read_ok, in_halves);
    free(g.s);
    DONE();
}
