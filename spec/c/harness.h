/* harness.h - a small test harness for the C specs: CHECK counts, the program ends
 * with "N passed, N failed". Each test_*.c is its own program linked with libtsq.a. */
#ifndef TSQ_HARNESS_H
#define TSQ_HARNESS_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int h_passed, h_failed;
static const char *h_case = "";

#define CASE(name) (h_case = (name))
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) h_passed++;                                                        \
        else {                                                                       \
            h_failed++;                                                              \
            fprintf(stderr, "FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, h_case, #cond); \
        }                                                                            \
    } while (0)
#define CHECK_STR(a, b)                                                              \
    do {                                                                             \
        const char *a_ = (a), *b_ = (b);                                             \
        if (a_ && b_ && strcmp(a_, b_) == 0) h_passed++;                             \
        else {                                                                       \
            h_failed++;                                                              \
            fprintf(stderr, "FAIL %s:%d [%s]: %s == %s\n  got:      %s\n  expected: %s\n", \
                    __FILE__, __LINE__, h_case, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
        }                                                                            \
    } while (0)
#define DONE()                                                                       \
    do {                                                                             \
        printf("%d passed, %d failed\n", h_passed, h_failed);                        \
        return h_failed ? 1 : 0;                                                     \
    } while (0)

/* The shared folder (corpus, bench) or NULL when it is not present. */
static inline const char *h_shared(void) {
    const char *s = getenv("TSQ_SHARED");
    static char buf[4096];
    if (!s || !*s) return NULL;
    snprintf(buf, sizeof buf, "%s/corpus/real/MANIFEST.tsv", s);
    FILE *f = fopen(buf, "r");
    if (!f) return NULL;
    fclose(f);
    return s;
}
#endif
