/* test_read_attrs.c - attribute values as the reader decodes them, on both of its paths:
 * plain attributes taken from libxml2's decoded values, and elements with namespace
 * declarations or prefixed attributes read from the raw start tag. Each value must be
 * the same either way, survive a regenerated start tag, and read back unchanged. */
#include "harness.h"
#include "tsq.h"

static tsq_node *parse(tsq_ctx *ctx, const char *xml) {
    tsq_node *seq = NULL;
    tsq_error err;
    if (tsq_parse(ctx, xml, strlen(xml), "attrs.xml", &seq, &err) != TSQ_OK) {
        char msg[1200];
        fprintf(stderr, "parse: %s\n", tsq_error_format(&err, msg, sizeof msg));
        return NULL;
    }
    return seq;
}

/* The description every document below gives its group, and what it decodes to. */
#define RAW_DESC "a &amp; b &#38; c &lt;d&gt; &quot;e&quot; &apos;f&apos; &#13;&#10;g&#9;h i\r\nj\tk &#x263A; &#233;"
static const char *const WANT_DESC = "a & b & c <d> \"e\" 'f' \r\ng\th i j k \xE2\x98\xBA \xC3\xA9";

static void check_doc(tsq_ctx *ctx, const char *what, const char *xml) {
    CASE(what);
    tsq_node *seq = parse(ctx, xml);
    CHECK(seq != NULL);
    if (!seq) return;
    tsq_node *g = tsq_node_first(seq);
    CHECK(g && tsq_node_kind(g) == TSQ_GROUP);
    if (!g) {
        tsq_node_release(seq);
        return;
    }
    CHECK_STR(tsq_node_name(g), "R&D \"lab\" <1>");
    CHECK_STR(tsq_node_description(g), WANT_DESC);
    /* unchanged: the bytes as they were */
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    CHECK(tsq_write(seq, &b, NULL) == TSQ_OK);
    CHECK_STR(b.data, xml);
    tsq_buf_free(&b);
    /* a changed name regenerates the start tag from the decoded values */
    CHECK(tsq_node_set_name(g, "R&D <2>") == TSQ_OK);
    tsq_buf_init(&b, ctx);
    CHECK(tsq_write(seq, &b, NULL) == TSQ_OK);
    tsq_node *again = b.data ? parse(ctx, b.data) : NULL;
    CHECK(again != NULL);
    if (again) {
        tsq_node *g2 = tsq_node_first(again);
        CHECK(g2 != NULL);
        if (g2) {
            CHECK_STR(tsq_node_name(g2), "R&D <2>");
            CHECK_STR(tsq_node_description(g2), WANT_DESC);
        }
        tsq_node_release(again);
    }
    tsq_buf_free(&b);
    tsq_node_release(seq);
}

int main(void) {
    tsq_ctx *ctx = tsq_ctx_new(NULL, NULL);
    check_doc(ctx, "plain attributes",
              "<sequence version=\"3.10\"><group name=\"R&amp;D &quot;lab&quot; &lt;1&gt;\" description=\"" RAW_DESC
              "\"><step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"s\"><action>x</action></step></group></sequence>");
    check_doc(ctx, "single quotes and spaces around '='",
              "<sequence version='3.10'><group name = 'R&amp;D \"lab\" &lt;1&gt;'  description='" RAW_DESC
              "' ></group></sequence>");
    check_doc(ctx, "a namespace declaration on the element",
              "<sequence version=\"3.10\"><group xmlns:v=\"urn:vendor\" name=\"R&amp;D &quot;lab&quot; &lt;1&gt;\" v:tag=\"1\" description=\"" RAW_DESC
              "\"/></sequence>");
    check_doc(ctx, "prefixed element and attribute names",
              "<sequence version=\"3.10\" xmlns:v=\"urn:vendor\"><v:meta v:k=\"&amp;\"/><group name=\"R&amp;D &quot;lab&quot; &lt;1&gt;\" xml:space=\"preserve\" description=\"" RAW_DESC
              "\"><v:extra a=\"1\">t</v:extra></group></sequence>");

    CASE("attribute order and names on a regenerated start tag");
    {
        const char *xml = "<sequence version=\"3.10\"><group z=\"1\" name=\"g\" a=\"&amp;\" description=\"\"></group></sequence>";
        tsq_node *seq = parse(ctx, xml);
        CHECK(seq != NULL);
        if (seq) {
            tsq_node *g = tsq_node_first(seq);
            CHECK(tsq_node_set_description(g, "d") == TSQ_OK);
            tsq_buf b;
            tsq_buf_init(&b, ctx);
            CHECK(tsq_write(seq, &b, NULL) == TSQ_OK);
            CHECK(b.data && strstr(b.data, "<group z=\"1\" name=\"g\" a=\"&amp;\" description=\"d\">") != NULL);
            tsq_buf_free(&b);
            tsq_node_release(seq);
        }
    }

    CASE("the same name interned across documents and parsers");
    {
        tsq_node *a = parse(ctx, "<sequence version=\"3.10\"><group name=\"x\"/></sequence>");
        tsq_node *b = parse(ctx, "<sequence version=\"3.10\"><group name=\"x\"><group name=\"y\"/></group></sequence>");
        CHECK(a && b);
        if (a && b) {
            CHECK(tsq_node_element(tsq_node_first(a)) == tsq_node_element(tsq_node_first(b)));
            CHECK(tsq_node_element(a) == tsq_node_element(b));
        }
        tsq_node_release(a);
        tsq_node_release(b);
    }
    tsq_ctx_free(ctx);
    DONE();
}
