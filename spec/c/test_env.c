/* test_env.c - the variables of an environment against a plain reference list: random
 * sets, updates and deletions (the engine deletes step defaults newest first, scripts
 * delete anywhere), case-insensitive names, insertion order, clones. */
#include "harness.h"
#include "tsq.h"

#include <ctype.h>

#define MAXV 600

typedef struct ref {
    char name[32];
    char value[32];
} ref;

static ref refs[MAXV];
static size_t nref;

static int ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

static long ref_find(const char *name) {
    for (size_t i = 0; i < nref; i++)
        if (ieq(refs[i].name, name)) return (long)i;
    return -1;
}

static void ref_set(const char *name, const char *value) {
    long i = ref_find(name);
    if (!*value) {
        if (i >= 0) {
            memmove(&refs[i], &refs[i + 1], (nref - (size_t)i - 1) * sizeof refs[0]);
            nref--;
        }
        return;
    }
    if (i < 0) {
        i = (long)nref++;
        snprintf(refs[i].name, sizeof refs[i].name, "%s", name); /* the name as first set */
    }
    snprintf(refs[i].value, sizeof refs[i].value, "%s", value);
}

static unsigned long rnd_state = 12345;
static unsigned rnd(unsigned n) {
    rnd_state = rnd_state * 6364136223846793005ul + 1442695040888963407ul;
    return (unsigned)((rnd_state >> 33) % n);
}

/* Every reference variable is found, in order, and nothing else. */
static int same(const tsq_env *env) {
    if (tsq_env_count(env) != nref) return 0;
    for (size_t i = 0; i < nref; i++) {
        const char *n = tsq_env_name_at(env, i);
        const char *v = tsq_env_get(env, refs[i].name);
        if (!n || strcmp(n, refs[i].name) != 0 || !v || strcmp(v, refs[i].value) != 0) return 0;
    }
    return tsq_env_name_at(env, nref) == NULL;
}

int main(void) {
    tsq_ctx *ctx = tsq_ctx_new(NULL, NULL);
    tsq_env *env = tsq_env_new(ctx);

    CASE("names are case-insensitive and keep the spelling first set");
    tsq_env_set(env, "OSDComputerName", "PC01");
    tsq_env_set(env, "osdcomputername", "PC02");
    CHECK_STR(tsq_env_get(env, "OSDCOMPUTERNAME"), "PC02");
    CHECK_STR(tsq_env_name_at(env, 0), "OSDComputerName");
    CHECK(tsq_env_count(env) == 1);
    CASE("setting \"\" deletes, and a deleted name can come back");
    tsq_env_set(env, "OSDCOMPUTERNAME", "");
    CHECK(tsq_env_get(env, "OSDComputerName") == NULL);
    CHECK(tsq_env_count(env) == 0);
    tsq_env_set(env, "osdComputerName", "PC03");
    CHECK_STR(tsq_env_name_at(env, 0), "osdComputerName");
    tsq_env_set(env, "osdComputerName", "");

    CASE("random sets, updates and deletions match a reference list");
    int ok = 1, clones_ok = 1;
    char name[32], value[32];
    for (int round = 0; round < 20000 && ok; round++) {
        unsigned k = rnd(400);
        /* names that differ only in case hit the same variable */
        snprintf(name, sizeof name, rnd(2) ? "Var%u" : "VAR%u", k);
        unsigned op = rnd(10);
        if (op < 4) {
            snprintf(value, sizeof value, "v%d", round);
        } else if (op < 6 && nref) {
            /* delete the newest, as the engine does with a step's defaults */
            snprintf(name, sizeof name, "%s", refs[nref - 1].name);
            value[0] = '\0';
        } else {
            value[0] = '\0';
        }
        tsq_env_set(env, name, value);
        ref_set(name, value);
        if (round % 97 == 0) ok = same(env);
        if (round % 1999 == 0) {
            tsq_env *c = tsq_env_clone(env);
            clones_ok = clones_ok && c && same(c);
            tsq_env_free(c);
        }
        /* a missing name is never found */
        snprintf(name, sizeof name, "Other%u", k);
        if (tsq_env_get(env, name)) ok = 0;
    }
    CHECK(ok);
    CHECK(same(env));
    CHECK(clones_ok);

    CASE("deleting everything leaves an empty environment that still works");
    while (nref) {
        snprintf(name, sizeof name, "%s", refs[rnd((unsigned)nref)].name);
        tsq_env_set(env, name, "");
        ref_set(name, "");
    }
    CHECK(tsq_env_count(env) == 0);
    CHECK(tsq_env_name_at(env, 0) == NULL);
    tsq_env_set(env, "Last", "1");
    CHECK_STR(tsq_env_get(env, "last"), "1");
    CHECK(tsq_env_count(env) == 1);

    tsq_env_free(env);
    tsq_ctx_free(ctx);
    DONE();
}
