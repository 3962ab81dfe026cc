/*
 * host_c.c - a host of libtsq in plain C, no Lua: it describes one machine to the
 * library, shows which steps of a task sequence would run there and why, then runs it.
 *
 *   host_c SEQUENCE.xml MACHINE.machine
 *
 * A machine file (examples/data/dell_laptop.machine) lists variables, WMI instances, files and
 * the exit codes of command lines. The host answers the conditions' WMI queries and file
 * tests from it (a fact provider) and "runs" Run Command Line steps by looking their
 * expanded command line up in it (a step handler). Build it against an installed libtsq:
 *
 *   cc -o host_c host_c.c $(pkg-config --cflags --libs tsq)
 *
 * Exit status: 0 when the document was planned and run (whether the sequence succeeded
 * or not is printed), 1 on a usage, file or library error.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tsq.h>

#define MAX_FACTS 64

/* ------------------------------------------------------------------ the machine */

typedef struct fact {
    char kind[8]; /* "var", "wmi", "file", "exit" */
    char *field[8];
    int nfields;
} fact;

typedef struct machine {
    fact facts[MAX_FACTS];
    int n;
    char lines[MAX_FACTS][512]; /* fact fields point into these */
} machine;

/* Reads "KIND FIELD|FIELD|..." lines; '#' starts a comment line. */
static int machine_load(machine *m, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char line[512];
    int lineno = 0;
    m->n = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0') continue;
        char *sp = strchr(line, ' ');
        if (!sp || sp - line >= (long)sizeof m->facts[0].kind || m->n == MAX_FACTS) {
            fprintf(stderr, "%s:%d: expected 'KIND FIELD|FIELD...' (at most %d lines)\n", path, lineno, MAX_FACTS);
            fclose(f);
            return -1;
        }
        fact *x = &m->facts[m->n];
        memcpy(x->kind, line, (size_t)(sp - line));
        x->kind[sp - line] = '\0';
        char *rest = strcpy(m->lines[m->n], sp + 1);
        x->nfields = 0;
        for (char *p = rest; p && x->nfields < 8;) {
            x->field[x->nfields++] = p;
            if ((p = strchr(p, '|'))) *p++ = '\0';
        }
        m->n++;
    }
    fclose(f);
    return 0;
}

/* ------------------------------------------------------------------ a small WQL */

/* WQL's LIKE: % any run, _ one character; case-insensitive like the WMI service. */
static int like(const char *s, const char *pat) {
    if (*pat == '\0') return *s == '\0';
    if (*pat == '%') return like(s, pat + 1) || (*s && like(s + 1, pat));
    if (*s && (*pat == '_' || tolower((unsigned char)*s) == tolower((unsigned char)*pat))) return like(s + 1, pat + 1);
    return 0;
}

/* The next token of q into w: a word (letters, digits, '_'), a string literal without
 * its quotes, "<>", or any other single character. NULL at the end of q. */
static const char *word(const char *q, char *w, size_t size) {
    while (isspace((unsigned char)*q)) q++;
    if (*q == '\0') return NULL;
    size_t n = 0;
    if (*q == '\'') {
        for (q++; *q && *q != '\''; q++)
            if (n + 1 < size) w[n++] = *q;
        if (*q != '\'') return NULL; /* unterminated */
        q++;
    } else if (isalnum((unsigned char)*q) || *q == '_') {
        for (; isalnum((unsigned char)*q) || *q == '_'; q++)
            if (n + 1 < size) w[n++] = *q;
    } else if (q[0] == '<' && q[1] == '>') {
        w[n++] = *q++;
        w[n++] = *q++;
    } else {
        w[n++] = *q++;
    }
    w[n] = '\0';
    return q;
}

/* The value of property `prop` of a wmi fact, or NULL. */
static const char *wmi_prop(const fact *x, const char *prop) {
    size_t n = strlen(prop);
    for (int i = 1; i < x->nfields; i++)
        if (strncasecmp(x->field[i], prop, n) == 0 && x->field[i][n] == '=') return x->field[i] + n + 1;
    return NULL;
}

/* Instances matching "SELECT ... FROM Class [WHERE Prop (=|<>|LIKE) 'v' [AND ...]]";
 * -1 for a query this host does not understand (the engine then reports a query error). */
static long wql_rows(const machine *m, const char *query) {
    char w[256], cls[128];
    const char *q = word(query, w, sizeof w);
    if (!q || strcasecmp(w, "SELECT") != 0) return -1;
    while ((q = word(q, w, sizeof w)) && strcasecmp(w, "FROM") != 0) {}
    if (!q || !(q = word(q, cls, sizeof cls))) return -1;
    struct { char prop[64], op[8], value[192]; } test[8];
    int ntests = 0;
    const char *rest = word(q, w, sizeof w);
    if (rest) {
        if (strcasecmp(w, "WHERE") != 0) return -1;
        q = rest;
        do {
            if (ntests == 8 || !(q = word(q, test[ntests].prop, sizeof test[0].prop)) ||
                !(q = word(q, test[ntests].op, sizeof test[0].op)) ||
                !(q = word(q, test[ntests].value, sizeof test[0].value)))
                return -1;
            ntests++;
        } while ((rest = word(q, w, sizeof w)) && strcasecmp(w, "AND") == 0 && (q = rest));
        if (rest) return -1; /* OR, parentheses, ...: not in this host's dialect */
    }
    long rows = 0;
    for (int i = 0; i < m->n; i++) {
        const fact *x = &m->facts[i];
        if (strcmp(x->kind, "wmi") != 0 || strcasecmp(x->field[0], cls) != 0) continue;
        int ok = 1;
        for (int t = 0; t < ntests && ok; t++) {
            const char *v = wmi_prop(x, test[t].prop);
            if (strcasecmp(test[t].op, "LIKE") == 0) ok = v && like(v, test[t].value);
            else if (strcmp(test[t].op, "=") == 0) ok = v && strcasecmp(v, test[t].value) == 0;
            else if (strcmp(test[t].op, "<>") == 0) ok = v && strcasecmp(v, test[t].value) != 0;
            else return -1;
        }
        rows += ok;
    }
    return rows;
}

/* ------------------------------------------------------------------ the fact provider */

static tsq_status prov_wmi(void *ud, const char *ns, const char *query, long *rows) {
    if (ns && *ns && strcasecmp(ns, "root\\cimv2") != 0) return TSQ_EFACT; /* only root\cimv2 is described */
    *rows = wql_rows(ud, query);
    return TSQ_OK;
}

static tsq_status prov_file(void *ud, const char *path, tsq_file_fact *out) {
    const machine *m = ud;
    for (int i = 0; i < m->n; i++) {
        const fact *x = &m->facts[i];
        if (strcmp(x->kind, "file") == 0 && strcasecmp(x->field[0], path) == 0) {
            out->exists = 1;
            out->version = x->nfields > 1 ? x->field[1] : NULL;
            return TSQ_OK;
        }
    }
    out->exists = 0; /* the machine file lists every file there is */
    return TSQ_OK;
}

/* ------------------------------------------------------------------ the step handler */

/* Run Command Line: the command line with %VAR% expanded against the live environment,
 * and the exit code of the first "exit" fact that is a prefix of it (else 0). */
static tsq_status run_command(void *ud, const tsq_node *step, tsq_env *env, int32_t *exit_code, tsq_buf *output) {
    const machine *m = ud;
    tsq_value v;
    tsq_error err;
    if (tsq_prop_get(step, "CommandLine", &v, &err) != TSQ_OK || v.type != TSQ_V_STRING) {
        tsq_buf_adds(output, "the step has no command line");
        return TSQ_EHANDLER;
    }
    tsq_buf cmd;
    tsq_buf_init(&cmd, tsq_node_ctx(step));
    const char *line = tsq_env_expand(env, v.s, &cmd);
    if (!line) {
        tsq_buf_free(&cmd);
        return TSQ_ENOMEM;
    }
    *exit_code = 0;
    for (int i = 0; i < m->n; i++) {
        const fact *x = &m->facts[i];
        if (strcmp(x->kind, "exit") == 0 && x->nfields > 1 && strncasecmp(line, x->field[0], strlen(x->field[0])) == 0) {
            *exit_code = (int32_t)strtol(x->field[1], NULL, 10);
            break;
        }
    }
    tsq_buf_adds(output, "> ");
    tsq_buf_adds(output, line);
    tsq_buf_free(&cmd);
    return output->failed ? TSQ_ENOMEM : TSQ_OK;
}

/* ------------------------------------------------------------------ printing */

typedef struct printer {
    tsq_buf path;
    int count;
} printer;

static void print_plan_entry(void *ud, const tsq_plan_entry *e) {
    printer *p = ud;
    p->count++;
    printf("  %-15s %s%s%s%s\n", tsq_plan_state_name(e->state), tsq_node_path(e->step, &p->path),
           e->reason ? " (" : "", e->reason ? e->reason : "", e->reason ? ")" : "");
}

static void print_problem(void *ud, const tsq_problem *pr) {
    printer *p = ud;
    fprintf(stderr, "%s: %s%s%s\n", tsq_node_path(pr->step, &p->path), pr->property ? pr->property : "",
            pr->property ? ": " : "", pr->message);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int fail(const char *what, const tsq_error *err) {
    char msg[1200];
    fprintf(stderr, "host_c: %s: %s\n", what, tsq_error_format(err, msg, sizeof msg));
    return 1;
}

/* ------------------------------------------------------------------ main */

/* Everything after the context exists; frees what it made before returning. */
static int host(tsq_ctx *ctx, const char *doc_path, const char *machine_path, machine *m) {
    tsq_error err;
    tsq_node *seq = NULL;
    if (tsq_load(ctx, doc_path, &seq, &err) != TSQ_OK) return fail("load", &err);

    printer pr = {{0}, 0};
    tsq_buf_init(&pr.path, ctx);
    size_t nsteps = 0;
    for (tsq_node *s = tsq_node_walk(seq, NULL); s; s = tsq_node_walk(seq, s)) nsteps++;
    printf("sequence %s (version %s, %zu steps)\n", base_name(doc_path), tsq_sequence_version(seq), nsteps);
    size_t errors = tsq_validate(seq, print_problem, &pr);

    /* the machine: its variables, and the provider that answers for its WMI and files */
    tsq_env *env = tsq_env_new(ctx);
    int rc = 1;
    tsq_run *run = NULL;
    if (!env) goto done;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->facts[i].kind, "var") == 0 && m->facts[i].nfields == 2 &&
            tsq_env_set(env, m->facts[i].field[0], m->facts[i].field[1]) != TSQ_OK)
            goto done;
    tsq_provider prov;
    memset(&prov, 0, sizeof prov);
    prov.wmi = prov_wmi;
    prov.file = prov_file;
    prov.ud = m;
    tsq_env_set_provider(env, &prov);
    printf("machine %s (%zu variables), %zu validation errors\n", base_name(machine_path), tsq_env_count(env), errors);

    printf("plan:\n");
    if (tsq_plan(seq, env, print_plan_entry, &pr, &err) != TSQ_OK) {
        rc = fail("plan", &err);
        goto done;
    }

    /* run it with the live environment: the run sets variables (DriverRoot) in it */
    tsq_handler_entry handlers[] = {{"RunCommandLine", run_command, m}};
    tsq_run_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.env = env;
    opts.handlers = handlers;
    opts.nhandlers = sizeof handlers / sizeof handlers[0];
    opts.PackageID = "HST00001";
    if (tsq_run_sequence(seq, &opts, &run, &err) != TSQ_OK) {
        rc = fail("run", &err);
        goto done;
    }
    printf("run: %s, %zu records\n", tsq_run_succeeded(run) ? "succeeded" : "failed", tsq_run_record_count(run));
    for (size_t i = 0; i < tsq_run_record_count(run); i++) {
        const tsq_record *r = tsq_run_record(run, i);
        printf("  %2u %5u %-8s %-14s exit %-11d %s%s[%s]\n", (unsigned)r->Step, (unsigned)r->LastStatusMsgID,
               *r->GroupName ? r->GroupName : "-", *r->ActionName ? r->ActionName : "-", (int)(int32_t)r->ExitCode,
               r->ActionOutput, *r->ActionOutput ? " " : "", r->LastStatusMsgName);
    }
    const char *root = tsq_env_get(env, "DriverRoot");
    printf("DriverRoot after the run: %s\n", root ? root : "(undefined)");
    rc = 0;
done:
    if (rc && !env) fprintf(stderr, "host_c: out of memory\n");
    tsq_run_free(run);
    tsq_env_free(env);
    tsq_buf_free(&pr.path);
    tsq_node_release(seq);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: host_c SEQUENCE.xml MACHINE.machine\n");
        return 1;
    }
    /* a library built from another header would misread the structures this file uses */
    char numeric[32];
    snprintf(numeric, sizeof numeric, "%d.%d.%d", TSQ_VERSION_MAJOR, TSQ_VERSION_MINOR, TSQ_VERSION_PATCH);
    if (strcmp(tsq_version(), TSQ_VERSION) != 0 || strcmp(numeric, TSQ_VERSION) != 0 ||
        TSQ_VERSION_NUM != TSQ_VERSION_MAJOR * 10000 + TSQ_VERSION_MINOR * 100 + TSQ_VERSION_PATCH) {
        fprintf(stderr, "host_c: built with tsq.h %s, running with libtsq %s\n", TSQ_VERSION, tsq_version());
        return 1;
    }
    static machine m; /* about 40 KiB: not on the stack */
    if (machine_load(&m, argv[2]) != 0) return 1;
    tsq_ctx *ctx = tsq_ctx_new(NULL, NULL);
    if (!ctx) {
        fprintf(stderr, "host_c: out of memory\n");
        return 1;
    }
    int rc = host(ctx, argv[1], argv[2], &m);
    tsq_ctx_free(ctx);
    return rc;
}
