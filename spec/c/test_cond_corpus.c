/* test_cond_corpus.c - every condition of every real document: the text form round
 * trips, and setting the parsed condition back leaves the document the same. */
#include "harness.h"
#include "tsq.h"

#include <dirent.h>

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the XML with whitespace between tags removed: the same document, layout aside */
static char *squeeze(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1), *w = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '>') {
            *w++ = '>';
            size_t j = i + 1;
            while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n')) j++;
            if (j < n && s[j] == '<') i = j - 1;
            continue;
        }
        if (s[i] == ' ' && i + 1 < n && s[i + 1] == '/' && i + 2 < n && s[i + 2] == '>') continue; /* <x /> == <x/> */
        *w++ = s[i];
    }
    *w = '\0';
    return o;
}

static char *write_doc(tsq_node *seq) {
    tsq_buf b;
    tsq_buf_init(&b, tsq_node_ctx(seq));
    tsq_error err;
    char *r = NULL;
    if (tsq_write(seq, &b, &err) == TSQ_OK) r = strdup(b.data);
    tsq_buf_free(&b);
    return r;
}

static int nconds, nsteps, ndocs, nbyte_same, nkinds[8];

static void count_kinds(const tsq_cond *c) {
    nkinds[tsq_cond_get_kind(c)]++;
    for (size_t i = 0; i < tsq_cond_count(c); i++) count_kinds(tsq_cond_operand(c, i));
}

static void one_doc(tsq_ctx *ctx, const char *path) {
    tsq_node *seq = NULL;
    tsq_error err;
    CASE(path);
    if (tsq_load(ctx, path, &seq, &err) != TSQ_OK) {
        CHECK(!"document loads");
        return;
    }
    ndocs++;
    char *orig = write_doc(seq);
    tsq_buf t1, t2;
    tsq_buf_init(&t1, ctx);
    tsq_buf_init(&t2, ctx);
    /* text round trip on the loaded document */
    for (tsq_node *n = tsq_node_walk(seq, NULL); n; n = tsq_node_walk(seq, n)) {
        nsteps++;
        tsq_cond *c = tsq_node_condition(n);
        CHECK((c != NULL) == (tsq_node_has_condition(n) != 0));
        if (!c) continue;
        nconds++;
        count_kinds(c);
        const char *text = tsq_cond_to_text(c, &t1);
        tsq_cond *back = NULL;
        tsq_status st = tsq_cond_parse(ctx, text, &back, &err);
        CHECK(st == TSQ_OK);
        if (st) {
            fprintf(stderr, "  text: %s\n  error: %s\n", text, err.message);
            tsq_cond_free(c);
            continue;
        }
        int eq = tsq_cond_equal(c, back);
        CHECK(eq);
        if (!eq) fprintf(stderr, "  not equal after text round trip: %s\n", text);
        CHECK_STR(tsq_cond_to_text(back, &t2), text);
        tsq_cond_free(back);
        tsq_cond_free(c);
    }
    /* XML round trip: every condition set back on a clone of the document */
    tsq_node *copy = tsq_node_clone(seq);
    for (tsq_node *n = tsq_node_walk(copy, NULL); n; n = tsq_node_walk(copy, n)) {
        tsq_cond *c = tsq_node_condition(n);
        if (!c) continue;
        CHECK(tsq_node_set_condition(n, c, &err) == TSQ_OK);
        tsq_cond *again = tsq_node_condition(n);
        CHECK(tsq_cond_equal(c, again));
        tsq_cond_free(again);
        tsq_cond_free(c);
    }
    char *after = write_doc(copy);
    CHECK(orig && after);
    if (orig && after) {
        if (strcmp(orig, after) == 0) nbyte_same++;
        char *a = squeeze(orig), *b = squeeze(after);
        int same = strcmp(a, b) == 0;
        CHECK(same);
        if (!same) {
            size_t i = 0;
            while (a[i] && a[i] == b[i]) i++;
            fprintf(stderr, "  differs at %zu:\n  was: %.160s\n  now: %.160s\n", i, a + (i > 40 ? i - 40 : 0),
                    b + (i > 40 ? i - 40 : 0));
        }
        free(a);
        free(b);
        /* the written document reads back with the same conditions */
        tsq_node *re = NULL;
        CHECK(tsq_parse(ctx, after, strlen(after), "after", &re, &err) == TSQ_OK);
        tsq_node_release(re);
    }
    free(orig);
    free(after);
    tsq_node_release(copy);
    tsq_buf_free(&t1);
    tsq_buf_free(&t2);
    tsq_node_release(seq);
}

int main(void) {
    const char *shared = h_shared();
    if (!shared) {
        printf("corpus not found (TSQ_SHARED): skipped\n");
        DONE();
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/corpus/real", shared);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) DONE();
    char *names[512];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 512) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".xml") == 0) names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmpstr);
    tsq_ctx *ctx = tsq_ctx_new(NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        one_doc(ctx, path);
        free(names[i]);
    }
    CASE("corpus totals");
    CHECK(ndocs == 51);
    CHECK(nconds > 400);
    CHECK(nkinds[TSQ_C_OSGROUP] == 2 && nkinds[TSQ_C_OSEXPRGROUP] == 13);
    CHECK(nbyte_same >= 40);
    fprintf(stderr, "corpus: %d documents, %d steps, %d conditions, %d byte-identical after set-back\n", ndocs,
            nsteps, nconds, nbyte_same);
    tsq_ctx_free(ctx);
    DONE();
}
