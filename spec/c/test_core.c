/* test_core.c - the object model, tree edits and references, without Lua. */
#include "harness.h"
#include "tsq.h"
#include "tsq_int.h" /* the steps' nodes, to count white space */

#include <unistd.h>

static tsq_node *parse(tsq_ctx *ctx, const char *xml) {
    tsq_node *s = NULL;
    tsq_error err;
    if (tsq_parse(ctx, xml, strlen(xml), "t.xml", &s, &err) != TSQ_OK) {
        char m[1200];
        fprintf(stderr, "parse failed: %s\n", tsq_error_format(&err, m, sizeof m));
    }
    return s;
}

static char *xml_of(tsq_node *seq) {
    static char out[65536];
    tsq_buf b;
    tsq_buf_init(&b, tsq_node_ctx(seq));
    tsq_error err;
    out[0] = '\0';
    if (tsq_write(seq, &b, &err) == TSQ_OK) snprintf(out, sizeof out, "%s", b.data);
    tsq_buf_free(&b);
    return out;
}

static void test_version(void) {
    CASE("version");
    CHECK_STR(tsq_version(), TSQ_VERSION);
}

static void test_build_tree(tsq_ctx *ctx) {
    CASE("build a tree");
    tsq_node *seq = tsq_sequence_new(ctx);
    tsq_node *g1 = tsq_group_new(ctx, "Prepare");
    tsq_node *g2 = tsq_group_new(ctx, "Disks");
    tsq_node *g3 = tsq_group_new(ctx, "Deep");
    CHECK(tsq_node_kind(seq) == TSQ_SEQUENCE);
    CHECK(tsq_node_kind(g1) == TSQ_GROUP);
    CHECK_STR(tsq_node_type(g1), "SMS_TaskSequence_Group");
    CHECK_STR(tsq_node_type(seq), "SMS_TaskSequence");
    CHECK(tsq_node_insert(seq, (size_t)-1, g1, NULL) == TSQ_OK);
    CHECK(tsq_node_insert(g1, (size_t)-1, g2, NULL) == TSQ_OK);
    CHECK(tsq_node_insert(g2, (size_t)-1, g3, NULL) == TSQ_OK);
    CHECK(tsq_node_parent(g3) == g2);
    CHECK(tsq_node_parent(g1) == seq);
    CHECK(tsq_node_parent(seq) == NULL);
    CHECK(tsq_node_depth(g3) == 3);
    CHECK(tsq_node_count(seq) == 1);
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    CHECK_STR(tsq_node_path(g3, &b), "Prepare/Disks/Deep");
    CHECK_STR(tsq_node_index_path(g3, &b), "1.1.1");
    tsq_buf_free(&b);

    CASE("a node with a parent can not be inserted again");
    tsq_error err;
    CHECK(tsq_node_insert(seq, (size_t)-1, g3, &err) == TSQ_EINVAL);
    CHECK_STR(err.message, "the step already has a parent (remove it first)");

    CASE("a group can not go into its own descendant");
    CHECK(tsq_node_move(g1, g3, (size_t)-1, &err) == TSQ_EINVAL);
    CHECK_STR(err.message, "a group can not be added to itself or to one of its descendants");
    CHECK(tsq_node_move(g1, g1, (size_t)-1, &err) == TSQ_EINVAL);

    CASE("a sequence can not be a child");
    tsq_node *other = tsq_sequence_new(ctx);
    CHECK(tsq_node_insert(g1, (size_t)-1, other, &err) == TSQ_EINVAL);
    tsq_node_release(other);

    CASE("insert at an index, walk in document order");
    tsq_node *a = tsq_group_new(ctx, "A"), *b2 = tsq_group_new(ctx, "B"), *c = tsq_group_new(ctx, "C");
    CHECK(tsq_node_insert(seq, (size_t)-1, a, NULL) == TSQ_OK);
    CHECK(tsq_node_insert(seq, 0, b2, NULL) == TSQ_OK);
    CHECK(tsq_node_insert(seq, 1, c, NULL) == TSQ_OK);
    const char *order[] = {"B", "C", "Prepare", "Disks", "Deep", "A"};
    size_t k = 0;
    for (tsq_node *n = tsq_node_walk(seq, NULL); n; n = tsq_node_walk(seq, n), k++)
        CHECK_STR(tsq_node_name(n), k < 6 ? order[k] : "(extra)");
    CHECK(k == 6);
    CHECK(tsq_node_index(c) == 1);

    CASE("move and remove");
    CHECK(tsq_node_move(a, g3, (size_t)-1, NULL) == TSQ_OK);
    CHECK(tsq_node_parent(a) == g3);
    tsq_node *r = tsq_node_remove(b2);
    CHECK(r == b2 && tsq_node_parent(b2) == NULL);
    CHECK(tsq_node_count(seq) == 2);
    CHECK(tsq_node_remove(b2) == NULL);
    tsq_node_release(b2);
    tsq_node_release(b2); /* the handle from tsq_group_new */

    CASE("common properties");
    CHECK(tsq_node_enabled(g1));
    CHECK(tsq_node_set_enabled(g1, 0) == TSQ_OK);
    CHECK(!tsq_node_enabled(g1));
    CHECK(tsq_node_set_continue_on_error(g1, 1) == TSQ_OK);
    CHECK(tsq_node_continue_on_error(g1));
    CHECK(tsq_node_set_name(g1, "Prep <&>\"'") == TSQ_OK);
    CHECK(tsq_node_set_description(g1, "line1\r\nline2") == TSQ_OK);

    CASE("written and read back");
    char *x = xml_of(seq);
    CHECK(strstr(x, "<group name=\"Prep &lt;&amp;&gt;&quot;'\" description=\"line1&#xD;&#xA;line2\" disable=\"true\" continueOnError=\"true\">") != NULL);
    tsq_node *back = parse(ctx, x);
    CHECK(back != NULL);
    if (back) {
        tsq_node *bg = tsq_node_first(back);
        CHECK_STR(tsq_node_name(bg), "C");
        bg = tsq_node_next(bg);
        CHECK_STR(tsq_node_name(bg), "Prep <&>\"'");
        CHECK_STR(tsq_node_description(bg), "line1\r\nline2");
        CHECK(!tsq_node_enabled(bg));
        CHECK_STR(xml_of(back), x);
        tsq_node_release(back);
    }

    CASE("clone is deep and detached");
    tsq_node *cl = tsq_node_clone(g1);
    CHECK(tsq_node_parent(cl) == NULL);
    CHECK(tsq_node_count(cl) == tsq_node_count(g1));
    CHECK_STR(tsq_node_name(tsq_node_first(tsq_node_first(cl))), "Deep");
    CHECK(tsq_node_insert(seq, (size_t)-1, cl, NULL) == TSQ_OK);
    tsq_node_release(cl);
    tsq_node *handles[] = {seq, g1, g2, g3, a, c};
    for (size_t i = 0; i < 6; i++) tsq_node_release(handles[i]);
}

static void test_refs(tsq_ctx *ctx) {
    CASE("a retained step outlives its sequence");
    tsq_node *seq = tsq_sequence_new(ctx);
    tsq_node *g = tsq_group_new(ctx, "G");
    tsq_node *h = tsq_group_new(ctx, "H");
    tsq_node_insert(seq, (size_t)-1, g, NULL);
    tsq_node_insert(g, (size_t)-1, h, NULL);
    tsq_node_release(seq); /* g and h hold the tree */
    CHECK_STR(tsq_node_name(h), "H");
    CHECK(tsq_node_parent(h) == g);
    tsq_node *r = tsq_node_remove(h); /* h leaves; g still holds the rest */
    tsq_node_release(r);
    CHECK_STR(tsq_node_name(g), "G");
    tsq_node_release(g);
    CHECK_STR(tsq_node_name(h), "H");
    tsq_node_release(h);

    CASE("releasing in any order frees everything once");
    for (int order = 0; order < 6; order++) {
        tsq_node *s = tsq_sequence_new(ctx), *a = tsq_group_new(ctx, "a"), *b = tsq_group_new(ctx, "b");
        tsq_node_insert(s, (size_t)-1, a, NULL);
        tsq_node_insert(a, (size_t)-1, b, NULL);
        tsq_node *v[3] = {s, a, b};
        int idx[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
        for (int i = 0; i < 3; i++) tsq_node_release(v[idx[order][i]]);
        CHECK(1);
    }
}

static void test_hostile(tsq_ctx *ctx) {
    struct {
        const char *name, *xml, *expect;
        int line;
    } cases[] = {
        {"empty", "", "the document is empty", 1},
        {"truncated", "<sequence version=\"3.10\"><group name=\"x\">", NULL, 1},
        {"wrong root", "<foo/>", "not a task sequence document: the root element is <foo>", 1},
        {"billion laughs",
         "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol1 \"&lol;&lol;&lol;&lol;\">]>\n<sequence>&lol1;</sequence>",
         "document type declarations (DOCTYPE) are not allowed in task sequences", 2},
        {"external entity",
         "<!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><sequence version=\"3.10\">&x;</sequence>",
         "document type declarations (DOCTYPE) are not allowed in task sequences", 1},
        {"parameter entity", "<!DOCTYPE s [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]><sequence/>",
         "document type declarations (DOCTYPE) are not allowed in task sequences", 1},
        {"external dtd", "<!DOCTYPE sequence SYSTEM \"http://example.invalid/ts.dtd\"><sequence/>",
         "document type declarations (DOCTYPE) are not allowed in task sequences", 1},
        {"undefined entity", "<sequence version=\"3.10\">&nope;</sequence>", NULL, 1},
        {"nul byte", "<sequence version=\"3.10\">\0</sequence>", NULL, 1},
        {"invalid utf-8", "<sequence version=\"3.10\" name=\"\xff\xfe\"/>", NULL, 1},
        {"unclosed cdata", "<sequence version=\"3.10\"><![CDATA[abc</sequence>", NULL, 1},
        {"utf-16", "\xff\xfe<\0s\0", "UTF-16 documents are not supported: save it as UTF-8", 1},
        {"latin-1", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><sequence/>",
         "unsupported encoding \"ISO-8859-1\": task sequence documents are read as UTF-8", 1},
        {"bad wrapper", "<INSTANCE CLASSNAME=\"SMS_TaskSequencePackage\"><PROPERTY NAME=\"Sequence\"><VALUE><![CDATA[<sequence><group></sequence>]]></VALUE></PROPERTY></INSTANCE>", NULL, 1},
        {"package without sequence", "<SmsTaskSequencePackage><Name>x</Name></SmsTaskSequencePackage>",
         "a package document without <SequenceData><sequence>", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CASE(cases[i].name);
        tsq_node *s = NULL;
        tsq_error err;
        size_t len = strlen(cases[i].xml);
        if (strcmp(cases[i].name, "nul byte") == 0) len = strlen(cases[i].xml) + 1 + strlen("</sequence>"); /* past the NUL */
        if (strcmp(cases[i].name, "utf-16") == 0) len = 6;
        tsq_status st = tsq_parse(ctx, cases[i].xml, len, "bad.xml", &s, &err);
        CHECK(st != TSQ_OK);
        CHECK(s == NULL);
        CHECK(err.line >= 1);
        if (cases[i].expect) CHECK_STR(err.message, cases[i].expect);
        if (cases[i].line) CHECK(err.line == cases[i].line);
        char m[1200];
        CHECK(strncmp(tsq_error_format(&err, m, sizeof m), "bad.xml:", 8) == 0);
    }
    CASE("a wrapper whose inner sequence is malformed names the Sequence property");
    {
        tsq_node *s = NULL;
        tsq_error err;
        const char *x = "<INSTANCE CLASSNAME=\"SMS_TaskSequencePackage\"><PROPERTY NAME=\"Sequence\"><VALUE><![CDATA[<sequence><group></sequence>]]></VALUE></PROPERTY></INSTANCE>";
        tsq_parse(ctx, x, strlen(x), "w.xml", &s, &err);
        CHECK(strstr(err.message, "in the Sequence property:") == err.message);
    }
    CASE("deep nesting stops at the limit");
    {
        size_t depth = 10000;
        char *x = malloc(depth * 8 + 64);
        size_t n = 0;
        n += (size_t)sprintf(x + n, "<sequence>");
        for (size_t i = 0; i < depth; i++) n += (size_t)sprintf(x + n, "<g>");
        for (size_t i = 0; i < depth; i++) n += (size_t)sprintf(x + n, "</g>");
        n += (size_t)sprintf(x + n, "</sequence>");
        tsq_node *s = NULL;
        tsq_error err;
        CHECK(tsq_parse(ctx, x, n, "deep.xml", &s, &err) != TSQ_OK);
        CHECK(s == NULL && err.line == 1);
        free(x);
    }
    CASE("a 100 MB attribute is refused by the size limit");
    {
        size_t big = (size_t)100 << 20;
        char *x = malloc(big + 64);
        size_t n = (size_t)sprintf(x, "<sequence name=\"");
        memset(x + n, 'a', big);
        n += big;
        n += (size_t)sprintf(x + n, "\"/>");
        tsq_node *s = NULL;
        tsq_error err;
        tsq_status st = tsq_parse(ctx, x, n, "big.xml", &s, &err);
        CHECK(st != TSQ_OK && s == NULL);
        CHECK(err.line == 1);
        free(x);
    }
    CASE("limits are configurable");
    {
        tsq_limits l = {0};
        l.max_depth = 3;
        CHECK(tsq_ctx_set_limits(ctx, &l, NULL) == TSQ_OK);
        tsq_node *s = NULL;
        tsq_error err;
        const char *x = "<sequence><group name=\"a\"><group name=\"b\"><group name=\"c\"/></group></group></sequence>";
        CHECK(tsq_parse(ctx, x, strlen(x), "d.xml", &s, &err) == TSQ_ELIMIT);
        CHECK(tsq_ctx_set_limits(ctx, NULL, NULL) == TSQ_OK);
        CHECK(tsq_parse(ctx, x, strlen(x), "d.xml", &s, &err) == TSQ_OK);
        tsq_node_release(s);
    }
    CASE("missing file and folder");
    {
        tsq_node *s = NULL;
        tsq_error err;
        CHECK(tsq_load(ctx, "/nonexistent/x.xml", &s, &err) == TSQ_ENOTFOUND);
        CHECK_STR(err.file, "/nonexistent/x.xml");
        CHECK(tsq_load(ctx, "/tmp", &s, &err) == TSQ_EIO);
        CHECK_STR(err.message, "is a directory, not a document");
    }
}

static void test_lossless(tsq_ctx *ctx) {
    CASE("oddities survive a round trip");
    const char *docs[] = {
        "<?xml version=\"1.0\"?>\r\n<sequence version=\"3.00\" name=\"x\">\r\n\t<group name=\"a\" description=\"d&#xD;&#xA;e\" expand=\"true\"><action /><condition></condition>\r\n\t</group>\r\n<!-- note --><vendor:x xmlns:vendor=\"urn:v\" a='1'/></sequence>",
        "<sequence version=\"3.10\" />",
        "<sequence version=\"3.10\"><step name=\"s\" description=\"&quot;q&quot; &gt;\"><action>a &amp;&amp; b &gt; c</action><defaultVarList><variable name=\"x\" property=\"x\"/></defaultVarList></step></sequence>\n\n",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        tsq_node *s = parse(ctx, docs[i]);
        CHECK(s != NULL);
        if (!s) continue;
        CHECK_STR(xml_of(s), docs[i]);
        tsq_node_release(s);
    }
    CASE("attribute values are decoded the same at every length and position of a reference");
    {
        /* values up to 32 bytes are copied in one pass unless they hold a reference; longer
         * ones, and those with '&', take the other path: both must agree */
        static const char *const vals[][2] = {
            {"", ""},
            {"a", "a"},
            {"&amp;", "&"},
            {"0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcde"},     /* 31 */
            {"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"},   /* 32 */
            {"0123456789abcdef0123456789abcdefg", "0123456789abcdef0123456789abcdefg"}, /* 33 */
            {"0123456789abcdef0123456789abcde&amp;", "0123456789abcdef0123456789abcde&"},
            {"&lt;0123456789abcdef0123456789abcdef&gt;", "<0123456789abcdef0123456789abcdef>"},
            {"x &quot;y&quot; &#38; z", "x \"y\" & z"},
        };
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            char x[256];
            snprintf(x, sizeof x, "<sequence version=\"3.10\">text<group name=\"g\" description=\"%s\"/></sequence>", vals[i][0]);
            tsq_node *s = parse(ctx, x);
            CHECK(s != NULL);
            if (!s) continue;
            CHECK_STR(tsq_node_description(tsq_node_first(s)), vals[i][1]);
            CHECK_STR(xml_of(s), x);
            tsq_node_release(s);
        }
    }
    CASE("changing one attribute changes only that spot");
    {
        const char *x = "<sequence version=\"3.00\">\n  <group name=\"a\"  description='&#x41;' expand=\"true\">\n    <step name=\"s\" description=\"\" disable=\"false\"><action>x</action></step>\n  </group>\n</sequence>";
        tsq_node *s = parse(ctx, x);
        tsq_node *g = tsq_node_first(s);
        tsq_node_set_name(g, "b");
        CHECK_STR(xml_of(s), "<sequence version=\"3.00\">\n  <group name=\"b\"  description='&#x41;' expand=\"true\">\n    <step name=\"s\" description=\"\" disable=\"false\"><action>x</action></step>\n  </group>\n</sequence>");
        tsq_node *st = tsq_node_first(g);
        tsq_node_set_enabled(st, 0);
        CHECK(strstr(xml_of(s), "<step name=\"s\" description=\"\" disable=\"true\">") != NULL);
        tsq_node_set_enabled(st, 1); /* a 3.00 document writes disable="false" */
        CHECK(strstr(xml_of(s), "<step name=\"s\" description=\"\" disable=\"false\">") != NULL);
        tsq_node_release(s);
    }
    CASE("new steps follow the document's indentation");
    {
        const char *x = "<sequence version=\"3.10\">\r\n  <group name=\"a\" description=\"\">\r\n    <group name=\"b\" description=\"\" />\r\n  </group>\r\n</sequence>";
        tsq_node *s = parse(ctx, x);
        tsq_node *g = tsq_node_first(s);
        tsq_node *n = tsq_group_new(ctx, "c");
        tsq_node_insert(g, (size_t)-1, n, NULL);
        tsq_node_release(n);
        CHECK_STR(xml_of(s), "<sequence version=\"3.10\">\r\n  <group name=\"a\" description=\"\">\r\n    <group name=\"b\" description=\"\" />\r\n    <group name=\"c\" description=\"\"></group>\r\n  </group>\r\n</sequence>");
        tsq_node *b = tsq_node_first(g);
        n = tsq_group_new(ctx, "d");
        tsq_node_insert(b, (size_t)-1, n, NULL);
        tsq_node_release(n);
        CHECK_STR(xml_of(s), "<sequence version=\"3.10\">\r\n  <group name=\"a\" description=\"\">\r\n    <group name=\"b\" description=\"\">\r\n      <group name=\"d\" description=\"\"></group>\r\n    </group>\r\n    <group name=\"c\" description=\"\"></group>\r\n  </group>\r\n</sequence>");
        tsq_node_release(tsq_node_remove(tsq_node_first(b)));
        tsq_node_release(tsq_node_remove(tsq_node_next(b)));
        CHECK_STR(xml_of(s), "<sequence version=\"3.10\">\r\n  <group name=\"a\" description=\"\">\r\n    <group name=\"b\" description=\"\"></group>\r\n  </group>\r\n</sequence>");
        tsq_node_release(s);
    }
    CASE("steps added to an element with nothing but blanks inside store no white space; the writer indents them");
    {
        const char *x = "<sequence version=\"3.10\">\r\n  <group name=\"a\" description=\"\">\r\n      \r\n  </group>\r\n</sequence>";
        tsq_node *s = parse(ctx, x);
        tsq_node *a = tsq_node_first(s);
        tsq_node *b = tsq_group_new(ctx, "b"), *c = tsq_group_new(ctx, "c"), *d = tsq_group_new(ctx, "d");
        CHECK(tsq_node_insert(a, (size_t)-1, b, NULL) == TSQ_OK);
        CHECK(tsq_node_insert(b, (size_t)-1, c, NULL) == TSQ_OK);
        CHECK(tsq_node_insert(b, 0, d, NULL) == TSQ_OK);
        const char *want = "<sequence version=\"3.10\">\r\n  <group name=\"a\" description=\"\">\r\n    <group name=\"b\" description=\"\">\r\n"
                           "      <group name=\"d\" description=\"\"></group>\r\n      <group name=\"c\" description=\"\"></group>\r\n"
                           "    </group>\r\n  </group>\r\n</sequence>";
        CHECK_STR(xml_of(s), want);
        size_t text_nodes = 0;
        for (const tsq_node *n = a; n; n = tsq_tree_next(a, n)) text_nodes += n->type == N_TEXT;
        CHECK(text_nodes == 0); /* a's blank line went with its first element child */
        CHECK(s->first && s->first->type == N_TEXT); /* the root keeps its white space */
        tsq_node_release(tsq_node_remove(d));
        tsq_node_release(tsq_node_remove(c));
        CHECK_STR(xml_of(s), "<sequence version=\"3.10\">\r\n  <group name=\"a\" description=\"\">\r\n    <group name=\"b\" description=\"\"></group>\r\n  </group>\r\n</sequence>");
        tsq_node *again = parse(ctx, want);
        CHECK(again != NULL);
        tsq_node_release(again);
        tsq_node_release(b);
        tsq_node_release(c);
        tsq_node_release(d);
        tsq_node_release(s);
    }
    CASE("wrappers: package fields and the sequence inside");
    {
        const char *x = "<?xml version=\"1.0\"?>\n<SmsTaskSequencePackage>\n  <Name>N</Name>\n  <SequenceData>\n    <sequence version=\"3.00\">\n      <group name=\"g\" description=\"\" />\n    </sequence>\n  </SequenceData>\n  <IconSize>0</IconSize>\n</SmsTaskSequencePackage>";
        tsq_node *s = parse(ctx, x);
        CHECK(s && tsq_doc_wrapper(s) == TSQ_WRAP_PACKAGE);
        CHECK_STR(xml_of(s), x);
        tsq_node_set_name(tsq_node_first(s), "h");
        CHECK(strstr(xml_of(s), "<SequenceData>\n    <sequence version=\"3.00\">\n      <group name=\"h\" description=\"\" />\n    </sequence>\n  </SequenceData>") != NULL);
        tsq_node_release(s);
        const char *c = "<INSTANCE CLASSNAME=\"SMS_TaskSequencePackage\">\r\n  <PROPERTY NAME=\"Sequence\" TYPE=\"string\">\r\n    <VALUE><![CDATA[<sequence version=\"3.10\"><group name=\"g\" description=\"\"/></sequence>\r\n]]></VALUE>\r\n  </PROPERTY>\r\n</INSTANCE>";
        s = parse(ctx, c);
        CHECK(s && tsq_doc_wrapper(s) == TSQ_WRAP_CIM);
        CHECK_STR(xml_of(s), c);
        tsq_node_set_name(tsq_node_first(s), "x]]>y");
        CHECK(strstr(xml_of(s), "<VALUE><![CDATA[<sequence version=\"3.10\"><group name=\"x]]&gt;y\" description=\"\"/></sequence>\r\n]]></VALUE>") != NULL);
        tsq_node *again = parse(ctx, xml_of(s));
        CHECK(again && strcmp(tsq_node_name(tsq_node_first(again)), "x]]>y") == 0);
        tsq_node_release(again);
        tsq_node_release(s);
    }
}

static void test_corpus(tsq_ctx *ctx) {
    const char *sh = h_shared();
    if (!sh) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/corpus/real/MANIFEST.tsv", sh);
    FILE *m = fopen(path, "r");
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, m)) {
        if (strncmp(line, "file\t", 5) == 0) continue;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        snprintf(path, sizeof path, "%s/corpus/real/%s", sh, line);
        CASE(line);
        tsq_node *s = NULL;
        tsq_error err;
        CHECK(tsq_load(ctx, path, &s, &err) == TSQ_OK);
        if (!s) continue;
        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *orig = malloc((size_t)len + 1);
        if (fread(orig, 1, (size_t)len, f) != (size_t)len) len = -1;
        fclose(f);
        tsq_buf b;
        tsq_buf_init(&b, ctx);
        CHECK(tsq_write(s, &b, &err) == TSQ_OK);
        CHECK(b.len == (size_t)len && memcmp(b.data, orig, (size_t)len) == 0); /* byte-identical */
        tsq_buf_free(&b);
        free(orig);
        tsq_node_release(s);
        n++;
    }
    fclose(m);
    CASE("corpus size");
    CHECK(n == 51);
}

/* ------------------------------------------------------------------ memory */

typedef struct meter {
    size_t live, peak, calls, mismatches;
    size_t chunks; /* allocations of an arena chunk's size: 256 KiB, 512 KiB, ... and its header */
} meter;

/* Keeps each block's size in front of it: checks the sizes the core passes on free. */
static void *meter_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    meter *m = ud;
    size_t *p = ptr ? (size_t *)ptr - 2 : NULL;
    if (p) {
        if (p[0] != osize) m->mismatches++;
        m->live -= p[0];
    }
    if (nsize == 0) {
        free(p);
        return NULL;
    }
    m->calls++;
    for (size_t c = (size_t)256 << 10; c <= (size_t)8 << 20; c *= 2)
        if (nsize == c + 2 * sizeof(void *)) m->chunks++;
    size_t *q = realloc(p, nsize + 2 * sizeof(size_t));
    if (!q) return NULL;
    q[0] = nsize;
    m->live += nsize;
    if (m->live > m->peak) m->peak = m->live;
    return q + 2;
}

/* 2,000 actions with properties set, a clone of the whole, both freed. */
static int build_and_free(tsq_ctx *ctx) {
    tsq_node *seq = tsq_sequence_new(ctx), *g = tsq_group_new(ctx, "G");
    int ok = seq && g && tsq_node_insert(seq, (size_t)-1, g, NULL) == TSQ_OK;
    for (int i = 0; ok && i < 2000; i++) {
        tsq_node *a = NULL;
        char name[32], cmd[48];
        snprintf(name, sizeof name, "Step %d", i);
        snprintf(cmd, sizeof cmd, "cmd.exe /c echo %d", i);
        tsq_value v = {0};
        v.type = TSQ_V_STRING, v.s = cmd, v.len = strlen(cmd);
        ok = tsq_action_new(ctx, "RunCommandLine", name, &a, NULL) == TSQ_OK &&
             tsq_prop_set(a, "CommandLine", &v, NULL) == TSQ_OK &&
             tsq_node_insert(g, (size_t)-1, a, NULL) == TSQ_OK;
        if (a) tsq_node_release(a);
    }
    tsq_node *copy = ok ? tsq_node_clone(seq) : NULL;
    ok = ok && copy && strstr(xml_of(copy), "") != NULL;
    tsq_node_release(copy);
    tsq_node_release(g);
    tsq_node_release(seq);
    return ok;
}

/* Blocks resized through tsq_realloc as Lua resizes its own: growing and shrinking across
 * size classes and the small/large line, contents kept, everything returned. */
static int realloc_blocks(tsq_ctx *ctx) {
    static const size_t sizes[] = {1, 16, 17, 40, 48, 200, 1024, 1025, 5000, 300, 16, 2000, 1};
    unsigned char *p = tsq_realloc(ctx, NULL, 7 /* Lua passes a type here */, sizes[0]);
    int ok = p != NULL;
    if (ok) p[0] = 0;
    for (size_t i = 1; ok && i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t old = sizes[i - 1], n = sizes[i], keep = old < n ? old : n;
        unsigned char *q = tsq_realloc(ctx, p, old, n);
        if (!q) return 0;
        for (size_t k = 0; k < keep; k++) ok = ok && q[k] == (unsigned char)(k * 7 + 1 - (k == 0));
        for (size_t k = 0; k < n; k++) q[k] = (unsigned char)(k * 7 + 1 - (k == 0));
        p = q;
    }
    ok = ok && tsq_realloc(ctx, p, 1, 0) == NULL;
    return ok;
}

static void test_memory(void) {
    CASE("tsq_realloc: a lua_Alloc for a host's states, contents kept across size classes, all returned");
    const char *np = getenv("TSQ_NO_POOL");
    for (int pooled = 0; pooled < 2; pooled++) {
        char keep[16] = "";
        if (np) snprintf(keep, sizeof keep, "%s", np);
        setenv("TSQ_NO_POOL", pooled ? "0" : "1", 1);
        meter r = {0, 0, 0, 0, 0};
        tsq_ctx *c = tsq_ctx_new(meter_alloc, &r);
        CHECK(c != NULL && realloc_blocks(c));
        tsq_ctx_free(c);
        CHECK(r.live == 0 && r.mismatches == 0);
        if (np) setenv("TSQ_NO_POOL", keep, 1);
        else unsetenv("TSQ_NO_POOL");
    }

    CASE("node structs and small blocks are reused, freed with exact sizes, all returned");
    const char *was = getenv("TSQ_NO_POOL"); /* make check-valgrind sets it */
    char saved[16] = "";
    if (was) snprintf(saved, sizeof saved, "%s", was);
    unsetenv("TSQ_NO_POOL");
    meter m = {0, 0, 0, 0, 0};
    tsq_ctx *ctx = tsq_ctx_new(meter_alloc, &m);
    CHECK(ctx != NULL);
    CHECK(build_and_free(ctx));
    size_t peak = m.peak, calls = m.calls;
    CHECK(build_and_free(ctx));
    CHECK(m.peak == peak);            /* the second document lives in the first one's blocks */
    CHECK(m.calls - calls < 50);      /* ... with few new allocations (the output buffer) */
    CHECK(calls < 500);               /* 2,000 steps of 9 nodes: slabs, not one allocation each */
    tsq_ctx_free(ctx);
    CHECK(m.live == 0);
    CHECK(m.mismatches == 0);

    CASE("TSQ_NO_POOL: every node and block on its own, all returned as each document goes");
    setenv("TSQ_NO_POOL", "1", 1);
    meter u = {0, 0, 0, 0, 0};
    tsq_ctx *c2 = tsq_ctx_new(meter_alloc, &u);
    CHECK(build_and_free(c2)); /* the context keeps its prototypes and names */
    size_t base = u.live, calls0 = u.calls;
    CHECK(build_and_free(c2));
    CHECK(u.calls - calls0 > 2000 * 9); /* one allocation per node at least */
    CHECK(u.live == base);              /* nothing kept for the next document */
    tsq_ctx_free(c2);
    CHECK(u.live == 0 && u.mismatches == 0);
    if (was) setenv("TSQ_NO_POOL", saved, 1);
    else unsetenv("TSQ_NO_POOL");
}

/* A document of n steps (about 600 bytes each), every value marked with tag. */
static char *steps_doc(int n, int tag) {
    size_t cap = (size_t)n * 700 + 200, len = 0;
    char *d = malloc(cap);
    len += (size_t)snprintf(d + len, cap - len, "<sequence version=\"3.10\"><group name=\"G%d\">", tag);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(d + len, cap - len,
                                "<step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"S%d-%d\" description=\"\" "
                                "runIn=\"WinPEandFullOS\" successCodeList=\"0 3010\"><action>smsswd.exe /run: x%d-%d.exe</action>"
                                "<defaultVarList><variable name=\"CommandLine\" property=\"CommandLine\">x%d-%d.exe</variable>"
                                "<variable name=\"SMSTSDisableWow64Redirection\" property=\"DisableWow64Redirection\">false</variable>"
                                "</defaultVarList></step>",
                                tag, i, tag, i, tag, i);
    snprintf(d + len, cap - len, "</group></sequence>");
    return d;
}

/* Parses text, checks it is written back byte for byte, releases it. */
static int parse_round(tsq_ctx *ctx, const char *text) {
    tsq_node *seq = NULL;
    if (tsq_parse(ctx, text, strlen(text), "chunks.xml", &seq, NULL) != TSQ_OK) return 0;
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    int ok = tsq_write(seq, &b, NULL) == TSQ_OK && b.len == strlen(text) && memcmp(b.data, text, b.len) == 0;
    tsq_buf_free(&b);
    tsq_node_release(seq);
    return ok;
}

static void test_exiting(void) {
    CASE("a context told the process is exiting leaves its trees to the operating system");
    meter m = {0, 0, 0, 0, 0};
    tsq_ctx *c = tsq_ctx_new(meter_alloc, &m);
    tsq_node *kept = parse(c, "<sequence version=\"3.10\"><group name=\"kept\"/></sequence>");
    tsq_node *dropped = parse(c, "<sequence version=\"3.10\"><group name=\"dropped\"/></sequence>");
    CHECK(kept && dropped);
    const char *np = getenv("TSQ_NO_POOL");
    int pooled = !(np && *np && strcmp(np, "0") != 0);
    tsq_node_release(dropped); /* before: freed */
    size_t live = m.live;
    tsq_ctx_exiting(c);
    tsq_node_release(kept); /* after: left alone when pooled */
    CHECK(pooled ? m.live == live : m.live < live);
    tsq_ctx_free(c);
    CHECK(pooled ? m.live > 0 : m.live == 0); /* what the trees held, left to the OS */
    CHECK(m.mismatches == 0);
}

static void test_spare_chunks(void) {
    CASE("a context keeps the arena chunks of released documents for the next one");
    const char *was = getenv("TSQ_NO_POOL");
    char saved[16] = "";
    if (was) snprintf(saved, sizeof saved, "%s", was);
    unsetenv("TSQ_NO_POOL");
    char *a = steps_doc(1500, 1), *b = steps_doc(1500, 2); /* about 1 MB: chunks of 256 KiB, 512 KiB, ... */
    meter m = {0, 0, 0, 0, 0};
    tsq_ctx *ctx = tsq_ctx_new(meter_alloc, &m);
    tsq_ctx_set_read_thread(ctx, 0); /* one arena; the halves' two are below */
    CHECK(parse_round(ctx, a));
    size_t peak = m.peak, chunks = m.chunks;
    CHECK(chunks >= 2);
    CHECK(parse_round(ctx, b)); /* the second lives in the first one's chunks */
    CHECK(parse_round(ctx, a));
    CHECK(m.chunks == chunks);
    CHECK(m.peak == peak);
    tsq_ctx_free(ctx);
    CHECK(m.live == 0 && m.mismatches == 0);

    CASE("of a larger document, the smaller chunks are kept: the next one asks for them first");
    char *big = steps_doc(6000, 3);
    meter g = {0, 0, 0, 0, 0};
    tsq_ctx *cg = tsq_ctx_new(meter_alloc, &g);
    tsq_ctx_set_read_thread(cg, 0);
    CHECK(parse_round(cg, big));
    size_t first = g.chunks; /* 256 KiB, 512 KiB, 1 MiB, 2 MiB, ...: the first three fit in 2 MiB */
    CHECK(first >= 4);
    CHECK(parse_round(cg, big));
    CHECK(g.chunks - first == first - 3);
    tsq_ctx_free(cg);
    CHECK(g.live == 0 && g.mismatches == 0);
    free(big);

    CASE("read in two halves, a loop of 170 KB documents lives in the first one's chunks");
    char *m1 = steps_doc(400, 4), *m2 = steps_doc(400, 5);
    meter hm = {0, 0, 0, 0, 0};
    tsq_ctx *ch = tsq_ctx_new(meter_alloc, &hm);
    tsq_ctx_set_read_thread(ch, 1);
    CHECK(parse_round(ch, m1));
    size_t hpeak = hm.peak, hchunks = hm.chunks;
    CHECK(hchunks >= 2); /* an arena per half */
    for (int i = 0; i < 4; i++) CHECK(parse_round(ch, i % 2 ? m1 : m2));
    CHECK(hm.chunks == hchunks);
    CHECK(hm.peak == hpeak);
    tsq_ctx_free(ch);
    CHECK(hm.live == 0 && hm.mismatches == 0);
    free(m1);
    free(m2);

    CASE("TSQ_NO_POOL: the chunks go back to the allocator with their document");
    setenv("TSQ_NO_POOL", "1", 1);
    meter u = {0, 0, 0, 0, 0};
    tsq_ctx *c2 = tsq_ctx_new(meter_alloc, &u);
    CHECK(parse_round(c2, a));
    size_t base = u.live, made = u.chunks;
    CHECK(parse_round(c2, b));
    CHECK(u.live == base);
    CHECK(u.chunks == 2 * made); /* made anew */
    tsq_ctx_free(c2);
    CHECK(u.live == 0 && u.mismatches == 0);
    if (was) setenv("TSQ_NO_POOL", saved, 1);
    else unsetenv("TSQ_NO_POOL");
    free(a);
    free(b);
}

/* 1 when the children of g are named prefix0, prefix1, ... in `order` (n of them) */
static int children_are(const tsq_node *g, const int *order, int n) {
    char want[32];
    for (int i = 0; i < n; i++) {
        snprintf(want, sizeof want, "S%d", order[i]);
        const tsq_node *c = tsq_node_child(g, (size_t)i);
        if (!c || strcmp(tsq_node_name(c), want) != 0) return 0;
    }
    return tsq_node_child(g, (size_t)n) == NULL;
}

static void test_child_index(tsq_ctx *ctx) {
    CASE("children by index: forwards, backwards, after edits, across trees");
    enum { N = 3000 };
    static int order[N + 1];
    tsq_node *g = tsq_group_new(ctx, "G"), *h = tsq_group_new(ctx, "H");
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "S%d", i);
        tsq_node *a = NULL;
        CHECK(tsq_action_new(ctx, "Reboot", name, &a, NULL) == TSQ_OK);
        CHECK(tsq_node_insert(i % 2 ? h : g, (size_t)-1, a, NULL) == TSQ_OK);
        tsq_node_release(a);
        order[i] = i;
    }
    int ok = 1; /* g holds S0, S2, S4, ...; h holds S1, S3, ... */
    for (int i = 0; i < N / 2; i++) { /* the two parents in turn */
        char a[32], b[32];
        snprintf(a, sizeof a, "S%d", 2 * i);
        snprintf(b, sizeof b, "S%d", 2 * i + 1);
        ok = ok && strcmp(tsq_node_name(tsq_node_child(g, (size_t)i)), a) == 0 &&
             strcmp(tsq_node_name(tsq_node_child(h, (size_t)i)), b) == 0;
    }
    for (int i = N / 2; i-- > 0;) { /* backwards */
        char a[32];
        snprintf(a, sizeof a, "S%d", 2 * i);
        ok = ok && strcmp(tsq_node_name(tsq_node_child(g, (size_t)i)), a) == 0;
    }
    CHECK(ok);
    CHECK(tsq_node_child(g, N / 2) == NULL && tsq_node_child(g, (size_t)-1) == NULL);
    for (int i = 0; i < N / 2; i++) order[i] = 2 * i;
    char want[32];
    tsq_node *x = tsq_node_child(g, 500);
    CHECK(tsq_node_child(g, 700) != NULL); /* the last answer is at 700 ... */
    tsq_node_release(tsq_node_remove(x)); /* ... then a step before it goes */
    memmove(order + 500, order + 501, (N / 2 - 501) * sizeof *order);
    snprintf(want, sizeof want, "S%d", order[700]);
    CHECK_STR(tsq_node_name(tsq_node_child(g, 700)), want);
    CHECK(children_are(g, order, N / 2 - 1));
    CHECK(tsq_node_child(g, 900) != NULL); /* at 900, then a step comes in at the front */
    tsq_node *moved = tsq_node_remove(tsq_node_child(h, 0)); /* S1 */
    CHECK(tsq_node_insert(g, 0, moved, NULL) == TSQ_OK);
    tsq_node_release(moved);
    memmove(order + 1, order, (N / 2 - 1) * sizeof *order);
    order[0] = 1;
    snprintf(want, sizeof want, "S%d", order[900]);
    CHECK_STR(tsq_node_name(tsq_node_child(g, 900)), want);
    CHECK(children_are(g, order, N / 2));
    int idx_ok = 1; /* each child's index, in order (one step each) and back */
    size_t k = 0;
    for (tsq_node *c = tsq_node_first(g); c; c = tsq_node_next(c), k++) idx_ok = idx_ok && tsq_node_index(c) == k;
    for (size_t i = N / 2; i-- > 0;) idx_ok = idx_ok && tsq_node_index(tsq_node_child(g, i)) == i;
    CHECK(idx_ok && k == N / 2);
    tsq_node *before = tsq_node_child(g, 5);
    tsq_node *at = tsq_node_child(g, 10); /* the last answer, then a step before it goes: */
    tsq_node_release(tsq_node_remove(before)); /* its index asked at once */
    CHECK(tsq_node_index(at) == 9);
    CHECK(tsq_node_index(tsq_node_next(at)) == 10);
    tsq_node *c0 = tsq_node_child(g, 0); /* at 0 again, and the step there is destroyed */
    CHECK(c0 != NULL);
    tsq_node_release(tsq_node_remove(c0));
    CHECK(tsq_node_child(g, 0) != c0);
    CHECK(tsq_node_child(g, 0) != NULL);
    tsq_node_release(g); /* a new group may take g's memory: nothing of g's answers is kept */
    tsq_node *g2 = tsq_group_new(ctx, "G2");
    CHECK(tsq_node_child(g2, 0) == NULL);
    tsq_node_release(g2);
    tsq_node_release(h);
}

/* A small seeded generator for the random edits below. */
static unsigned rnd_next(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffff;
}

static void test_child_random(tsq_ctx *ctx) {
    CASE("positions under random edits, queries and moves across parents agree with a plain walk");
    enum { P = 3, M = 400, OPS = 20000 };
    tsq_node *seq = tsq_sequence_new(ctx);
    tsq_node *par[P];
    for (int i = 0; i < P; i++) {
        par[i] = tsq_group_new(ctx, "P");
        CHECK(tsq_node_insert(seq, (size_t)-1, par[i], NULL) == TSQ_OK);
        tsq_node_release(par[i]);
    }
    static tsq_node *kids[P][M];
    size_t n[P] = {0, 0, 0};
    unsigned seed = 12345;
    int ok = 1, made = 0;
    for (int op = 0; op < OPS && ok; op++) {
        int p = (int)(rnd_next(&seed) % P), what = (int)(rnd_next(&seed) % 10);
        size_t cnt = n[p];
        if (what < 3 && cnt < M) { /* a new step at a random place (often the end) */
            size_t at = rnd_next(&seed) % 2 ? cnt : rnd_next(&seed) % (cnt + 1);
            tsq_node *a = NULL;
            if (tsq_action_new(ctx, "Reboot", NULL, &a, NULL) != TSQ_OK) { ok = 0; break; }
            ok = tsq_node_insert(par[p], at == cnt ? (size_t)-1 : at, a, NULL) == TSQ_OK;
            tsq_node_release(a);
            memmove(&kids[p][at + 1], &kids[p][at], (cnt - at) * sizeof kids[p][0]);
            kids[p][at] = a;
            n[p]++;
            made++;
        } else if (what == 3 && cnt) { /* one goes, destroyed */
            size_t at = rnd_next(&seed) % cnt;
            tsq_node_release(tsq_node_remove(kids[p][at]));
            memmove(&kids[p][at], &kids[p][at + 1], (cnt - at - 1) * sizeof kids[p][0]);
            n[p]--;
        } else if (what == 4 && cnt) { /* one moves to another parent */
            int q = (int)(rnd_next(&seed) % P);
            size_t at = rnd_next(&seed) % cnt;
            tsq_node *m = kids[p][at];
            if (q == p || n[q] == M) continue;
            tsq_node_remove(m);
            memmove(&kids[p][at], &kids[p][at + 1], (cnt - at - 1) * sizeof kids[p][0]);
            n[p]--;
            size_t to = rnd_next(&seed) % (n[q] + 1);
            ok = tsq_node_insert(par[q], to, m, NULL) == TSQ_OK;
            tsq_node_release(m);
            memmove(&kids[q][to + 1], &kids[q][to], (n[q] - to) * sizeof kids[q][0]);
            kids[q][to] = m;
            n[q]++;
        } else if (what < 7) { /* a run of children by index, forwards or backwards */
            size_t at = cnt ? rnd_next(&seed) % cnt : 0, len = rnd_next(&seed) % 8;
            int back = (int)(rnd_next(&seed) % 2);
            for (size_t j = 0; j < len && ok; j++) {
                size_t i = back ? (at >= j ? at - j : 0) : at + j;
                ok = tsq_node_child(par[p], i) == (i < cnt ? kids[p][i] : NULL);
            }
            ok = ok && tsq_node_count(par[p]) == cnt;
        } else if (cnt) { /* indexes, with the parent's own asked in between */
            size_t at = rnd_next(&seed) % cnt;
            ok = tsq_node_index(kids[p][at]) == at && tsq_node_index(par[p]) == (size_t)p;
            ok = ok && tsq_node_index(kids[p][cnt - 1 - at]) == cnt - 1 - at;
        }
    }
    CHECK(ok);
    CHECK(made > 1000);
    for (int p = 0; p < P; p++) {
        CHECK(tsq_node_count(par[p]) == n[p]);
        int all = 1;
        for (size_t i = 0; i < n[p]; i++) all = all && tsq_node_child(par[p], i) == kids[p][i];
        CHECK(all);
    }
    tsq_node_release(seq);
}

static void test_type_names(tsq_ctx *ctx) {
    CASE("a catalogued step's type is its class's own name, one string for every step of the class");
    const char *x = "<sequence version=\"3.10\"><step type=\"SMS_TaskSequence_RebootAction\" name=\"A\"/>"
                    "<step type=\"SMS_TaskSequence_RebootAction\" name=\"B\"/><step type=\"BDD_Gather\" name=\"C\"/>"
                    "<step type=\"Reboot\" name=\"D\"/></sequence>";
    tsq_node *seq = NULL;
    CHECK(tsq_parse(ctx, x, strlen(x), "types.xml", &seq, NULL) == TSQ_OK);
    if (!seq) return;
    tsq_node *a = tsq_node_child(seq, 0), *b = tsq_node_child(seq, 1), *c = tsq_node_child(seq, 2);
    CHECK_STR(tsq_node_type(a), "SMS_TaskSequence_RebootAction");
    CHECK(tsq_node_type(a) == tsq_node_type(b));
    CHECK(tsq_node_type(a) == tsq_class_find("SMS_TaskSequence_RebootAction")->name);
    CHECK_STR(tsq_node_type(c), "BDD_Gather"); /* not catalogued: the attribute as written */
    tsq_node *d = tsq_node_child(seq, 3);     /* a short name: as written too */
    CHECK(d && tsq_node_type(d) != tsq_node_type(a));
    CHECK_STR(d ? tsq_node_type(d) : NULL, "Reboot");
    tsq_node *e = NULL; /* a new step of the class: the catalogue's string */
    CHECK(tsq_action_new(ctx, "Reboot", "E", &e, NULL) == TSQ_OK);
    CHECK(e && tsq_node_type(e) == tsq_node_type(a));
    tsq_node_release(e);
    tsq_node *f = NULL; /* a new step of a class the catalogue does not know */
    CHECK(tsq_action_new(ctx, "BDD_Gather", "F", &f, NULL) == TSQ_OK);
    CHECK_STR(f ? tsq_node_type(f) : NULL, "BDD_Gather");
    tsq_node_release(f);
    tsq_node_release(seq);
}

static void test_lazy_command(tsq_ctx *ctx) {
    CASE("the command text follows the properties when it is read");
    tsq_node *a = NULL;
    CHECK(tsq_action_new(ctx, "RunCommandLine", "R", &a, NULL) == TSQ_OK);
    tsq_value v = {0};
    v.type = TSQ_V_STRING, v.s = "first.exe", v.len = 9;
    CHECK(tsq_prop_set(a, "CommandLine", &v, NULL) == TSQ_OK);
    v.s = "second.exe", v.len = 10;
    CHECK(tsq_prop_set(a, "CommandLine", &v, NULL) == TSQ_OK);
    CHECK_STR(tsq_action_command(a), "smsswd.exe /run: second.exe");
    CHECK(tsq_action_set_command(a, "custom.exe", NULL) == TSQ_OK); /* a text given wins */
    CHECK_STR(tsq_action_command(a), "custom.exe");
    v.s = "third.exe", v.len = 9;
    CHECK(tsq_prop_set(a, "CommandLine", &v, NULL) == TSQ_OK); /* until a property changes */
    tsq_node *seq = tsq_sequence_new(ctx);
    CHECK(tsq_node_insert(seq, (size_t)-1, a, NULL) == TSQ_OK);
    CHECK(strstr(xml_of(seq), "<action>smsswd.exe /run: third.exe</action>") != NULL); /* written without a read */
    tsq_node_release(a);
    tsq_node_release(seq);
}

static void test_retain_all(tsq_ctx *ctx) {
    CASE("retain_all and release_all count as one retain and release per node");
    tsq_node *seq = parse(ctx, "<sequence><group name=\"G\"><step type=\"X\" name=\"A\"/><step type=\"X\" name=\"B\"/></group>"
                               "<step type=\"X\" name=\"C\"/></sequence>");
    CHECK(seq != NULL);
    if (!seq) return;
    tsq_node *g = tsq_node_first(seq), *a = tsq_node_first(g), *b = tsq_node_next(a), *c = tsq_node_next(g);
    tsq_node *list[] = {g, a, NULL, b, c};
    CHECK(tsq_node_refs(seq) == 1 && tsq_node_refs(a) == 0 && tsq_node_refs(NULL) == 0);
    tsq_node_retain_all(list, 5);
    CHECK(tsq_node_refs(a) == 1 && tsq_node_refs(g) == 1 && tsq_node_refs(seq) == 1); /* each its own */
    tsq_node_retain(a);
    CHECK(tsq_node_refs(a) == 2);
    tsq_node_release(a);
    CHECK(tsq_node_refs(a) == 1);
    tsq_node_release(seq); /* the steps in the list keep the tree */
    CHECK(tsq_node_refs(seq) == 0);
    CHECK_STR(tsq_node_name(b), "B");
    tsq_node *moved = tsq_node_remove(a); /* A becomes a tree of its own, still counted */
    CHECK(moved == a && tsq_node_parent(a) == NULL);
    tsq_node_release(a); /* the reference tsq_node_remove returned */
    CHECK_STR(tsq_node_name(a), "A");
    tsq_node_release_all(list, 5); /* frees both trees, A's and the sequence */
    meter m = {0, 0, 0, 0, 0};
    tsq_ctx *c2 = tsq_ctx_new(meter_alloc, &m);
    tsq_node *s2 = tsq_sequence_new(c2), *x = tsq_group_new(c2, "X"), *y = tsq_group_new(c2, "Y");
    tsq_node_insert(s2, (size_t)-1, x, NULL);
    tsq_node_insert(x, (size_t)-1, y, NULL);
    tsq_node_release(x);
    tsq_node_release(y);
    tsq_node *l2[] = {y, x, y};
    tsq_node_retain_all(l2, 3);
    tsq_node_release(s2);
    tsq_node_release_all(l2, 2); /* y and x: y's second retain still holds the tree */
    CHECK_STR(tsq_node_name(y), "Y");
    CHECK_STR(tsq_node_name(tsq_node_parent(y)), "X");
    tsq_node_release_all(l2 + 2, 1);
    tsq_ctx_free(c2);
    CHECK(m.live == 0 && m.mismatches == 0);
}

/* Leaf text is gathered at the free end of the source arena while it fits and moves to a
 * buffer when it does not; either way each text must come back whole. */
static void test_text_gathering(tsq_ctx *ctx) {
    CASE("texts are read whole at every length, across arena chunks and split by references");
    size_t nvars = 12000, cap = 2u << 20, len = 0;
    char *x = malloc(cap);
    CHECK(x != NULL);
    if (!x) return;
    len += (size_t)snprintf(x + len, cap - len, "<sequence version=\"3.10\"><step type=\"X\" name=\"s\"><action>a &amp;&lt; b</action><defaultVarList>");
    for (size_t i = 0; i < nvars; i++) {
        size_t tl = (i * 37) % 61; /* 0..60 bytes, every remainder of 8 */
        len += (size_t)snprintf(x + len, cap - len, "<variable name=\"V%zu\" property=\"V%zu\">", i, i);
        for (size_t k = 0; k < tl; k++)
            len += (size_t)snprintf(x + len, cap - len, (i + k) % 13 == 0 ? "&amp;" : "%c", (int)('a' + (i + k) % 26));
        len += (size_t)snprintf(x + len, cap - len, "</variable>");
        if (i == nvars / 2) { /* one text larger than an arena chunk */
            len += (size_t)snprintf(x + len, cap - len, "<variable name=\"BIG\" property=\"BIG\">");
            for (size_t k = 0; k < 300000; k++) x[len++] = k % 1000 == 999 ? '\n' : 'z';
            len += (size_t)snprintf(x + len, cap - len, "&lt;</variable>");
        }
    }
    len += (size_t)snprintf(x + len, cap - len, "</defaultVarList></step>mixed <!-- c --> text</sequence>");
    CHECK(len < cap);
    tsq_node *seq = parse(ctx, x);
    CHECK(seq != NULL);
    if (seq) {
        tsq_node *st = tsq_node_first(seq);
        CHECK_STR(tsq_action_command(st), "a &< b");
        size_t bad = 0;
        char want[128], name[32];
        for (size_t i = 0; i < nvars; i++) {
            size_t tl = (i * 37) % 61, w = 0;
            for (size_t k = 0; k < tl; k++) want[w++] = (i + k) % 13 == 0 ? '&' : (char)('a' + (i + k) % 26);
            want[w] = '\0';
            snprintf(name, sizeof name, "V%zu", i);
            tsq_value v;
            if (tsq_prop_get(st, name, &v, NULL) != TSQ_OK || v.type != TSQ_V_STRING || v.len != w ||
                memcmp(v.s, want, w) != 0 || v.s[w] != '\0')
                bad++;
        }
        CHECK(bad == 0);
        tsq_value big;
        CHECK(tsq_prop_get(st, "BIG", &big, NULL) == TSQ_OK && big.len == 300001 && big.s[0] == 'z' &&
              big.s[999] == '\n' && big.s[300000] == '<' && big.s[300001] == '\0');
        tsq_buf out; /* (xml_of keeps 64 KiB) */
        tsq_buf_init(&out, ctx);
        CHECK(tsq_write(seq, &out, NULL) == TSQ_OK && out.len == len && memcmp(out.data, x, len) == 0);
        tsq_buf_free(&out);
        tsq_node_release(seq);
    }
    free(x);
}

static void test_load_sizes(tsq_ctx *ctx) {
    CASE("files are read whether or not they end on a page boundary (mapped or read)");
    long page = 4096;
    for (int k = 0; k < 3; k++) {
        size_t want = k == 0 ? (size_t)page : k == 1 ? (size_t)page - 1 : (size_t)page * 3 + 17;
        char path[] = "/tmp/tsq-load-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        if (fd < 0) return;
        const char *head = "<sequence version=\"3.10\"><step type=\"X\" name=\"A\"/><!--";
        const char *tail = "--></sequence>";
        size_t hl = strlen(head), tl = strlen(tail);
        char *buf = malloc(want);
        memcpy(buf, head, hl);
        memset(buf + hl, 'x', want - hl - tl);
        memcpy(buf + want - tl, tail, tl);
        CHECK(write(fd, buf, want) == (ssize_t)want);
        close(fd);
        tsq_node *seq = NULL;
        CHECK(tsq_load(ctx, path, &seq, NULL) == TSQ_OK);
        tsq_buf b;
        tsq_buf_init(&b, ctx);
        CHECK(seq && tsq_write(seq, &b, NULL) == TSQ_OK && b.len == want && memcmp(b.data, buf, want) == 0);
        CHECK(seq && tsq_node_count(seq) == 1);
        tsq_buf_free(&b);
        tsq_node_release(seq);
        unlink(path);
        free(buf);
    }
}

int main(void) {
    tsq_ctx *ctx = tsq_ctx_new(NULL, NULL);
    test_version();
    test_build_tree(ctx);
    test_refs(ctx);
    test_hostile(ctx);
    test_lossless(ctx);
    test_corpus(ctx);
    test_lazy_command(ctx);
    test_type_names(ctx);
    test_child_index(ctx);
    test_child_random(ctx);
    test_retain_all(ctx);
    test_text_gathering(ctx);
    test_load_sizes(ctx);
    tsq_ctx_free(ctx);
    test_memory();
    test_spare_chunks();
    test_exiting();
    DONE();
}
