/* run.c - the execution engine: runs a sequence as the client's task sequence engine does
 * (object-model.md section 7) and records SMS_TaskSequenceExecutionStatus rows
 * (execution-status.md section 2.1).
 *
 * Decisions where the documents are silent:
 *  - Step: every group and action counted from 1 in document order, depth first, a group
 *    before its children; 0 for the sequence-level records (11140, 11143/11141,
 *    11171/11170). Steps of a sequence loaded by Run Task Sequence are numbered after all
 *    steps of the documents loaded before it (the parent's count, then each child's in
 *    load order); a step that runs again (SMSTSRetryRequested) keeps its number.
 *  - GroupName: for action records the name of the containing group, "" at top level; for
 *    group records (11124, 11127, 11122, 11139, 11129, 11131) the group's own name and an
 *    empty ActionName (the messages' insertion string 3). Top-level steps of a sequence
 *    run by Run Task Sequence report the Run Task Sequence step's name as GroupName.
 *  - ExitCode of 11122/11139/11141/11170 is the exit code of the failure that ended them.
 *  - A condition that can not be evaluated (the environment lacks a fact) fails the step
 *    or group (11135 / 11122) with the message as ActionOutput; ContinueOnError applies.
 *  - SupportedEnvironment: checked against _SMSTSInWinPE when that variable is defined
 *    ("true" = WinPE). A WinPE-only action in the full OS or a FullOS-only action in WinPE
 *    fails (exit code 0x80070032, ERROR_NOT_SUPPORTED); ContinueOnError applies. When
 *    _SMSTSInWinPE is undefined the engine does not know where it runs and checks nothing.
 *  - Reboots (11142, after the step's 11134/11135): exit code 3010 listed in the success
 *    codes of Install Application / Install Package / Run Command Line / Run PowerShell
 *    Script; a successful Restart Computer (target SMSRebootTarget) or Setup Windows and
 *    ConfigMgr (target HD); SMSTSRebootRequested set by the step (cleared with
 *    SMSTSRetryRequested after the reboot; the step runs again only when it succeeded and
 *    SMSTSRetryRequested was set). A reboot to HD sets _SMSTSInWinPE "false", to WinPE
 *    "true", when the variable is defined. More than max_reboots reboots stop the run as
 *    failed: every enclosing group fails whatever its ContinueOnError.
 *  - Handlers: an entry matching the class (full or short name) wins; then the engine's
 *    own actions (Set Task Sequence Variable, Set Dynamic Variables, Run Task Sequence);
 *    then "default"; nothing at all: exit code 0, no output. A handler returning
 *      TSQ_ELIMIT  reports that the step ran into its Timeout (so does a host clock that
 *                  advanced past Timeout seconds during the call): failure, exit code
 *                  0x800705B4 (ERROR_TIMEOUT);
 *      TSQ_ESTATE  reports an unexpected restart during the step: a reboot is recorded and
 *                  the step runs again up to retryCount times, then fails;
 *      any other error: the step fails with the handler's output as ActionOutput and its
 *                  exit code, or 0x80004005 (E_FAIL) when it set none.
 *  - _SMSTSLastActionSucceeded is "false" after a failure that ContinueOnError ignored.
 *    _SMSTSLastActionRetCode is the signed decimal exit code.
 *  - Action variables: non-hidden defaultVarList entries are placed into the environment
 *    unless the variable is defined, and removed after the step unless the step changed
 *    them. globalVarList entries are set for the whole run unless defined.
 *  - Set Dynamic Variables: rules in order, each matching rule's variables set at once
 *    (a later rule sees them, later matches overwrite). Computer, Make and Model and
 *    Location expressions are evaluated against _SMSTSAssetTag, _SMSTSMacAddresses,
 *    _SMSTSSerialNumber, _SMSTSUUID, _SMSTSMake, _SMSTSModel, _SMSTSDefaultGateways
 *    (undefined = empty); other expression classes through tsq_cond_eval.
 */
#include "run.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#define CLS_PREFIX "SMS_TaskSequence_"
#define CLS_RUNCMD CLS_PREFIX "RunCommandLineAction"
#define CLS_RUNPS CLS_PREFIX "RunPowerShellScriptAction"
#define CLS_INSTAPP CLS_PREFIX "InstallApplicationAction"
#define CLS_INSTPKG CLS_PREFIX "InstallSoftwareAction"
#define CLS_SETVAR CLS_PREFIX "SetVariableAction"
#define CLS_DYNVAR CLS_PREFIX "SetDynamicVariablesAction"
#define CLS_SUBTS CLS_PREFIX "SubTasksequence"
#define CLS_REBOOT CLS_PREFIX "RebootAction"
#define CLS_SETUPWIN CLS_PREFIX "SetupWindowsAndSMSAction"

/* engine-level failures that have no process exit code */
#define EXIT_E_FAIL ((int32_t)0x80004005)         /* E_FAIL */
#define EXIT_ACCESSDENIED ((int32_t)0x80070005)   /* read-only variable */
#define EXIT_INVALIDARG ((int32_t)0x80070057)     /* a step missing what it needs */
#define EXIT_NOTFOUND ((int32_t)0x80070002)       /* child sequence not loadable */
#define EXIT_NOTSUPPORTED ((int32_t)0x80070032)   /* wrong SupportedEnvironment */
#define EXIT_TIMEOUT ((int32_t)0x800705B4)        /* Timeout elapsed */
#define EXIT_REBOOT 3010                          /* ERROR_SUCCESS_REBOOT_REQUIRED */

#define EPOCH_2000 946684800                      /* 2000-01-01 00:00:00 UTC */
#define MAX_GROUP_DEPTH 512
#define MAX_SUB_DEPTH 16
#define MAX_RULE_DEPTH 64
#define DEFAULT_MAX_REBOOTS 64

/* ------------------------------------------------------------------ the result */

typedef struct chunk {
    struct chunk *next;
    size_t size;
} chunk;

struct tsq_run {
    tsq_ctx *ctx;
    tsq_record *recs;
    size_t nrecs, caprecs;
    chunk *chunks;    /* string arena */
    char *apos;
    size_t aleft;
    int succeeded;
};

static char *arena_alloc(tsq_run *r, size_t n) {
    if (n > r->aleft) {
        size_t size = n + sizeof(chunk) > 65536 ? n + sizeof(chunk) : 65536;
        chunk *c = tsq_malloc(r->ctx, size);
        if (!c) return NULL;
        c->next = r->chunks;
        c->size = size;
        r->chunks = c;
        r->apos = (char *)(c + 1);
        r->aleft = size - sizeof(chunk);
    }
    char *p = r->apos;
    r->apos += n;
    r->aleft -= n;
    return p;
}

static const char *arena_str(tsq_run *r, const char *s, size_t n) {
    if (!n) return "";
    char *p = arena_alloc(r, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void tsq_run_free(tsq_run *r) {
    if (!r) return;
    tsq_ctx *ctx = r->ctx;
    for (chunk *c = r->chunks, *next; c; c = next) {
        next = c->next;
        tsq_free(ctx, c, c->size);
    }
    if (r->recs) tsq_free(ctx, r->recs, r->caprecs * sizeof *r->recs);
    tsq_free(ctx, r, sizeof *r);
}

int tsq_run_succeeded(const tsq_run *r) { return r ? r->succeeded : 0; }
size_t tsq_run_record_count(const tsq_run *r) { return r ? r->nrecs : 0; }
const tsq_record *tsq_run_record(const tsq_run *r, size_t index) {
    return r && index < r->nrecs ? &r->recs[index] : NULL;
}

const char *tsq_status_message_name(uint32_t id) {
    size_t lo = 0, hi = tsq_msg_table_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tsq_msg_table[mid].id == id) return tsq_msg_table[mid].name;
        if (tsq_msg_table[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ------------------------------------------------------------------ engine state */

typedef struct numbering {
    const tsq_node *top; /* the sequence whose steps are counted */
    const tsq_node *cur; /* the last step numbered (NULL: none yet) */
    uint32_t num;
} numbering;

typedef struct injected {
    const char *name;  /* borrowed from the step's <variable> */
    const char *value; /* the value placed */
} injected;

typedef struct handler_ref {
    const tsq_handler_entry *h;
    const char *full; /* catalogue full name of h->type, or NULL */
} handler_ref;

typedef struct engine {
    tsq_ctx *ctx;
    const tsq_run_opts *opts;
    tsq_run *run;
    tsq_env *env;
    const char *adv, *pkg; /* arena copies */
    handler_ref *handlers; /* opts->nhandlers slots; "default" is not among them */
    size_t nhandlers;
    const tsq_handler_entry *fallback; /* "default" */
    injected *inj;
    size_t ninj, capinj;
    tsq_node **loaded; /* child sequences, released after the run */
    size_t nloaded, caploaded;
    uint32_t next_base; /* first number for the next loaded child */
    uint32_t reboots, max_reboots;
    int sub_depth;
    int abort;          /* stop everything: too many reboots, out of memory */
    int oom;
    int32_t fail_code;  /* exit code of the failure being propagated */
    const char *abort_msg;
    const char *last_name_src, *last_name_copy; /* ActionName copy reuse */
} engine;

static void set_oom(engine *e) {
    e->oom = 1;
    e->abort = 1;
}

/* civil date from days since 1970-01-01 (H. Hinnant's algorithm) */
static void format_dmtf(int64_t t, char out[32]) {
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    snprintf(out, 32, "%04d%02d%02d%02d%02d%02d.000000+000", (int)y, (int)m, (int)d,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

static void emit(engine *e, tsq_msg msg, uint32_t step, const char *group, const char *action,
                 int32_t code, const char *output, size_t outlen) {
    tsq_run *r = e->run;
    if (e->oom) return;
    if (r->nrecs == r->caprecs) {
        size_t ncap = r->caprecs ? r->caprecs * 2 : 64;
        tsq_record *nr = tsq_ctx_alloc(e->ctx, r->recs, r->caprecs * sizeof *nr, ncap * sizeof *nr);
        if (!nr) {
            set_oom(e);
            return;
        }
        r->recs = nr;
        r->caprecs = ncap;
    }
    tsq_record *rec = &r->recs[r->nrecs];
    int64_t t = e->opts->clock ? e->opts->clock(e->opts->clock_ud) : EPOCH_2000 + (int64_t)r->nrecs;
    char when[32];
    format_dmtf(t, when);
    if (!action) action = "";
    if (!group) group = "";
    if (action != e->last_name_src || !e->last_name_copy) {
        e->last_name_copy = arena_str(r, action, strlen(action));
        e->last_name_src = action;
    }
    rec->ActionName = e->last_name_copy;
    rec->ActionOutput = output ? arena_str(r, output, outlen) : "";
    rec->AdvertisementID = e->adv;
    rec->ExecutionTime = arena_str(r, when, strlen(when));
    rec->ExecutionTimeUnix = t;
    rec->ExitCode = (uint32_t)code;
    rec->GroupName = arena_str(r, group, strlen(group));
    rec->LastStatusMsgID = tsq_msg_event[msg].id;
    rec->LastStatusMsgName = tsq_msg_event[msg].name ? tsq_msg_event[msg].name : "";
    rec->PackageID = e->pkg;
    rec->ResourceID = e->opts->ResourceID;
    rec->Step = step;
    if (!rec->ActionName || !rec->ActionOutput || !rec->ExecutionTime || !rec->GroupName) {
        set_oom(e);
        return;
    }
    r->nrecs++;
}

static void env_set(engine *e, const char *name, const char *value) {
    if (tsq_env_set(e->env, name, value) == TSQ_ENOMEM) set_oom(e);
}

/* Step numbers: the run reaches steps only forward in document order (a re-run reaches
 * the same step again), so walking from the last numbered step costs O(n) per run. */
static uint32_t step_num(numbering *nr, const tsq_node *x) {
    const tsq_node *cur = nr->cur;
    uint32_t num = nr->num;
    while (cur != x) {
        cur = tsq_node_walk(nr->top, cur);
        num++;
        if (!cur) return 0; /* not below top: cannot happen for steps the run reaches */
    }
    nr->cur = cur;
    nr->num = num;
    return num;
}

static uint32_t count_steps(const tsq_node *top) {
    uint32_t k = 0;
    for (const tsq_node *n = tsq_node_walk(top, NULL); n; n = tsq_node_walk(top, n)) k++;
    return k;
}

/* ------------------------------------------------------------------ reading steps */

static const char *attr(const tsq_node *n, int atom) { return tsq_attr_get(n, n->ctx->atom[atom]); }

/* The text of the step's defaultVarList entry for `property`, or NULL. */
static const char *dvar(const tsq_node *n, const char *property) {
    tsq_ctx *ctx = n->ctx;
    tsq_node *list = tsq_elem_child(n, ctx->atom[A_defaultVarList]);
    if (!list) return NULL;
    for (tsq_node *v = tsq_elem_first(list); v; v = tsq_elem_next(v)) {
        if (v->name != ctx->atom[A_variable]) continue;
        const char *p = attr(v, A_property);
        if (p && strcmp(p, property) == 0) return v->text ? v->text : "";
    }
    return NULL;
}

static int is_true(const char *s) { return s && strcasecmp(s, "true") == 0; }

/* Is code in the space-separated list (signed 32-bit; 0..4294967295 wrap)? */
static int code_listed(const char *list, int32_t code) {
    if (!list) return code == 0;
    const char *p = list;
    int any = 0;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) {
            p++; /* separators and stray characters */
            continue;
        }
        any = 1;
        if (v >= INT32_MIN && v <= (long long)UINT32_MAX && (int32_t)(uint32_t)v == code) return 1;
        p = end;
    }
    return !any && code == 0;
}

static const char *success_codes(const tsq_node *a) {
    const char *s = attr(a, A_successCodeList);
    if (s) return s;
    s = dvar(a, "SuccessCodes");
    return s ? s : "0";
}

static uint32_t uint_attr(const tsq_node *a, int atom) {
    const char *s = attr(a, atom);
    if (!s) return 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || s[0] == '-') return 0;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int type_is(const char *type, const char *cls) { return strcmp(type, cls) == 0; }

/* "SMS_TaskSequence_RunCommandLineAction" -> "RunCommandLine" compared with `short_` */
static int short_matches(const char *type, const char *short_) {
    size_t plen = sizeof CLS_PREFIX - 1;
    if (strncmp(type, CLS_PREFIX, plen) != 0) return 0;
    const char *s = type + plen;
    size_t n = strlen(s);
    if (n > 6 && strcmp(s + n - 6, "Action") == 0) n -= 6;
    return strlen(short_) == n && strncasecmp(s, short_, n) == 0;
}

static const tsq_handler_entry *find_handler(engine *e, const char *type) {
    for (size_t i = 0; i < e->nhandlers; i++) {
        const handler_ref *h = &e->handlers[i];
        if (strcasecmp(h->h->type, type) == 0 || (h->full && strcmp(h->full, type) == 0) ||
            short_matches(type, h->h->type))
            return h->h;
    }
    return NULL;
}

/* ------------------------------------------------------------------ action variables */

static void inject_push(engine *e, const char *name, const char *value) {
    if (e->ninj == e->capinj) {
        size_t ncap = e->capinj ? e->capinj * 2 : 32;
        injected *n = tsq_ctx_alloc(e->ctx, e->inj, e->capinj * sizeof *n, ncap * sizeof *n);
        if (!n) {
            set_oom(e);
            return;
        }
        e->inj = n;
        e->capinj = ncap;
    }
    e->inj[e->ninj].name = name;
    e->inj[e->ninj].value = value;
    e->ninj++;
}

/* Places the step's visible defaults that are not defined yet; returns the stack mark. */
static size_t inject(engine *e, const tsq_node *a) {
    size_t mark = e->ninj;
    tsq_ctx *ctx = a->ctx;
    tsq_node *list = tsq_elem_child(a, ctx->atom[A_defaultVarList]);
    if (!list) return mark;
    for (tsq_node *v = tsq_elem_first(list); v && !e->oom; v = tsq_elem_next(v)) {
        if (v->name != ctx->atom[A_variable] || is_true(attr(v, A_hidden))) continue;
        const char *name = attr(v, A_name);
        const char *value = v->text ? v->text : "";
        if (!name || !*name || !*value || tsq_env_get(e->env, name)) continue;
        env_set(e, name, value);
        inject_push(e, name, value);
    }
    return mark;
}

/* Removes the defaults placed since mark, unless the step changed them. */
static void uninject(engine *e, size_t mark) {
    while (e->ninj > mark) {
        injected *i = &e->inj[--e->ninj];
        const char *now = tsq_env_get(e->env, i->name);
        if (now && strcmp(now, i->value) == 0) env_set(e, i->name, "");
    }
}

static void set_globals(engine *e, const tsq_node *seq) {
    tsq_ctx *ctx = seq->ctx;
    tsq_node *list = tsq_elem_child(seq, ctx->atom[A_globalVarList]);
    if (!list) return;
    for (tsq_node *v = tsq_elem_first(list); v; v = tsq_elem_next(v)) {
        if (v->name != ctx->atom[A_variable]) continue;
        const char *name = attr(v, A_name);
        if (name && *name && v->text && *v->text && !tsq_env_get(e->env, name)) env_set(e, name, v->text);
    }
}

/* ------------------------------------------------------------------ Set Task Sequence Variable */

typedef struct outcome {
    int ok;
    int restart; /* the handler reported an unexpected restart */
    int32_t code;
} outcome;

static outcome fail_with(tsq_buf *out, int32_t code, const char *msg) {
    outcome o = {0, 0, code};
    if (out->len) tsq_buf_add(out, "\n", 1);
    tsq_buf_adds(out, msg);
    return o;
}

static outcome set_variable_checked(engine *e, const char *name, const char *value, tsq_buf *out) {
    outcome ok = {1, 0, 0};
    char msg[400];
    if (!name || !*name) return fail_with(out, EXIT_INVALIDARG, "the step names no variable");
    if (name[0] == '_') {
        snprintf(msg, sizeof msg, "variable %.256s is read-only", name);
        return fail_with(out, EXIT_ACCESSDENIED, msg);
    }
    env_set(e, name, value);
    return ok;
}

static outcome builtin_setvar(engine *e, const tsq_node *a, tsq_buf *out) {
    const char *name = dvar(a, "VariableName");
    const char *value = dvar(a, "VariableValue");
    tsq_buf x;
    tsq_buf_init(&x, e->ctx);
    const char *v = tsq_env_expand(e->env, value ? value : "", &x);
    if (x.failed) set_oom(e);
    outcome o = set_variable_checked(e, name, v ? v : "", out);
    tsq_buf_free(&x);
    return o;
}

/* ------------------------------------------------------------------ Set Dynamic Variables */

static xmlNode *xml_first(xmlNode *n) {
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE) return c;
    return NULL;
}

static xmlNode *xml_next(xmlNode *n) {
    for (xmlNode *c = n->next; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE) return c;
    return NULL;
}

static int xml_is(const xmlNode *n, const char *name) { return strcmp((const char *)n->name, name) == 0; }

/* Text of an element's text and CDATA children (never entity content). */
static void xml_text(xmlNode *n, tsq_buf *b) {
    b->len = 0;
    tsq_buf_add(b, "", 0);
    for (xmlNode *c = n->children; c; c = c->next)
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
            tsq_buf_adds(b, (const char *)c->content);
}

/* `<variable name="X">value</variable>` child of an expression. */
static void expr_value(xmlNode *ex, const char *name, tsq_buf *b) {
    b->len = 0;
    tsq_buf_add(b, "", 0);
    for (xmlNode *v = xml_first(ex); v; v = xml_next(v)) {
        xmlChar *nm = xmlGetProp(v, (const xmlChar *)"name");
        int hit = nm && strcasecmp((const char *)nm, name) == 0;
        xmlFree(nm);
        if (hit) {
            xml_text(v, b);
            return;
        }
    }
}

/* Case-insensitive wildcard match: '*' any run, '?' one character. */
static int wild_match(const char *pat, const char *s) {
    const char *star = NULL, *retry = NULL;
    while (*s) {
        if (*pat == '*') {
            star = ++pat;
            retry = s;
        } else if (*pat == '?' || (*pat && tolower((unsigned char)*pat) == tolower((unsigned char)*s))) {
            pat++;
            s++;
        } else if (star) {
            pat = star;
            s = ++retry;
        } else {
            return 0;
        }
    }
    while (*pat == '*') pat++;
    return *pat == '\0';
}

/* Does `want` equal (case-insensitively) the variable or one of its comma-separated items? */
static int fact_has(engine *e, const char *var, const char *want) {
    const char *have = tsq_env_get(e->env, var);
    if (!have || !*want) return 0;
    size_t wl = strlen(want);
    for (const char *p = have;;) {
        while (*p == ' ') p++;
        const char *end = p;
        while (*end && *end != ',') end++;
        const char *q = end;
        while (q > p && q[-1] == ' ') q--;
        if ((size_t)(q - p) == wl && strncasecmp(p, want, wl) == 0) return 1;
        if (!*end) return 0;
        p = end + 1;
    }
}

typedef struct rule_eval {
    engine *e;
    tsq_buf a, b;
    char msg[512];
} rule_eval;

static int rule_node(rule_eval *re, xmlNode *n, int depth, int *result);

static int rule_expression(rule_eval *re, xmlNode *ex, int *result) {
    engine *e = re->e;
    xmlChar *typ = xmlGetProp(ex, (const xmlChar *)"type");
    const char *type = typ ? (const char *)typ : "";
    int rc = 1;
    if (strstr(type, "ComputerConditionExpression")) {
        static const char *const pairs[][2] = {{"AssetTag", "_SMSTSAssetTag"},
                                               {"MACAddress", "_SMSTSMacAddresses"},
                                               {"SerialNumber", "_SMSTSSerialNumber"},
                                               {"UUID", "_SMSTSUUID"}};
        *result = 0;
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0] && !*result; i++) {
            expr_value(ex, pairs[i][0], &re->a);
            if (re->a.data && *re->a.data) *result = fact_has(e, pairs[i][1], re->a.data);
        }
    } else if (strstr(type, "MakeModelConditionExpression")) {
        const char *make = tsq_env_get(e->env, "_SMSTSMake");
        const char *model = tsq_env_get(e->env, "_SMSTSModel");
        expr_value(ex, "Make", &re->a);
        expr_value(ex, "Model", &re->b);
        *result = wild_match(re->a.data ? re->a.data : "", make ? make : "") &&
                  wild_match(re->b.data ? re->b.data : "", model ? model : "");
    } else if (expr_value(ex, "DefaultGateway", &re->a), re->a.data && *re->a.data) {
        *result = fact_has(e, "_SMSTSDefaultGateways", re->a.data);
    } else {
        /* Variable, WMI, File, ...: the condition evaluator decides */
        tsq_cond *c = tsq_cond_new_expression(e->ctx, type);
        tsq_error err;
        memset(&err, 0, sizeof err);
        tsq_status st = c ? TSQ_OK : TSQ_ENOMEM;
        for (xmlNode *v = xml_first(ex); v && st == TSQ_OK; v = xml_next(v)) {
            if (!xml_is(v, "variable")) continue;
            xmlChar *nm = xmlGetProp(v, (const xmlChar *)"name");
            xml_text(v, &re->a);
            if (nm) st = tsq_cond_set(c, (const char *)nm, re->a.data ? re->a.data : "", &err);
            xmlFree(nm);
        }
        for (xmlAttr *at = ex->properties; at && st == TSQ_OK; at = at->next) {
            if (strcmp((const char *)at->name, "type") == 0) continue;
            xmlChar *val = xmlGetProp(ex, at->name);
            st = tsq_cond_set_attr(c, (const char *)at->name, val ? (const char *)val : "", &err);
            xmlFree(val);
        }
        if (st == TSQ_OK) st = tsq_cond_eval(c, e->env, result, NULL, NULL, &err);
        tsq_cond_free(c);
        if (st == TSQ_ENOMEM) set_oom(e);
        if (st != TSQ_OK) {
            snprintf(re->msg, sizeof re->msg, "%.500s", err.message[0] ? err.message : tsq_status_name(st));
            rc = 0;
        }
    }
    xmlFree(typ);
    if (re->a.failed || re->b.failed) set_oom(e);
    return rc;
}

/* Evaluates a condition, operator or expression element; 0 with re->msg on error. */
static int rule_node(rule_eval *re, xmlNode *n, int depth, int *result) {
    if (depth > MAX_RULE_DEPTH) {
        snprintf(re->msg, sizeof re->msg, "rule condition nested more than %d deep", MAX_RULE_DEPTH);
        return 0;
    }
    if (xml_is(n, "expression")) return rule_expression(re, n, result);
    int mode = 0; /* 0 and, 1 or, 2 not */
    if (xml_is(n, "operator")) {
        xmlChar *t = xmlGetProp(n, (const xmlChar *)"type");
        const char *ts = t ? (const char *)t : "and";
        if (strcasecmp(ts, "or") == 0) mode = 1;
        else if (strcasecmp(ts, "not") == 0) mode = 2;
        else if (strcasecmp(ts, "and") != 0) {
            snprintf(re->msg, sizeof re->msg, "unknown operator \"%.64s\" in a rule", ts);
            xmlFree(t);
            return 0;
        }
        xmlFree(t);
    } else if (!xml_is(n, "condition")) {
        snprintf(re->msg, sizeof re->msg, "unexpected element <%.64s> in a rule condition", (const char *)n->name);
        return 0;
    }
    int any = 0, all = 1;
    for (xmlNode *c = xml_first(n); c; c = xml_next(c)) {
        int r = 0;
        if (!rule_node(re, c, depth + 1, &r)) return 0;
        any |= r;
        all &= r;
    }
    *result = mode == 0 ? all : mode == 1 ? any : !any;
    return 1;
}

static outcome builtin_dynvars(engine *e, const tsq_node *a, tsq_buf *out) {
    outcome o = {1, 0, 0};
    const char *rules = dvar(a, "Rules");
    if (!rules || !*rules) return o;
    tsq_xml_init();
    xmlParserCtxtPtr px = xmlNewParserCtxt();
    if (!px) {
        set_oom(e);
        return fail_with(out, EXIT_E_FAIL, "out of memory");
    }
    size_t len = strlen(rules);
    xmlDocPtr doc = len > 0x7fffffff ? NULL
        : xmlCtxtReadMemory(px, rules, (int)len, "Rules", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!doc || doc->intSubset || doc->extSubset || !root || !xml_is(root, "Rules")) {
        o = fail_with(out, EXIT_INVALIDARG, doc && (doc->intSubset || doc->extSubset)
                                                ? "the rules must not have a document type declaration"
                                                : "the rules are not a <Rules> document");
        goto done;
    }
    rule_eval re;
    re.e = e;
    re.msg[0] = '\0';
    tsq_buf_init(&re.a, e->ctx);
    tsq_buf_init(&re.b, e->ctx);
    size_t index = 0;
    for (xmlNode *rule = xml_first(root); rule && o.ok && !e->abort; rule = xml_next(rule)) {
        if (!xml_is(rule, "Rule")) continue;
        index++;
        int match = 1;
        xmlNode *vars = NULL;
        for (xmlNode *c = xml_first(rule); c; c = xml_next(c)) {
            if (xml_is(c, "condition")) {
                if (!rule_node(&re, c, 0, &match)) {
                    char msg[600];
                    snprintf(msg, sizeof msg, "rule %zu: %s", index, re.msg);
                    o = fail_with(out, EXIT_E_FAIL, msg);
                    break;
                }
            } else if (xml_is(c, "Variables")) {
                vars = c;
            }
        }
        if (!o.ok || !match || !vars) continue;
        for (xmlNode *v = xml_first(vars); v && o.ok; v = xml_next(v)) {
            if (!xml_is(v, "Variable")) continue;
            xmlChar *nm = xmlGetProp(v, (const xmlChar *)"Name");
            xml_text(v, &re.a);
            o = set_variable_checked(e, nm ? (const char *)nm : "", re.a.data ? re.a.data : "", out);
            xmlFree(nm);
        }
    }
    if (re.a.failed || re.b.failed) set_oom(e);
    tsq_buf_free(&re.a);
    tsq_buf_free(&re.b);
done:
    if (doc) xmlFreeDoc(doc);
    xmlFreeParserCtxt(px);
    return o;
}

/* ------------------------------------------------------------------ running */

static int run_children(engine *e, numbering *nr, const tsq_node *parent, const char *gname, int depth);

static outcome builtin_subts(engine *e, const tsq_node *a, tsq_buf *out, int depth) {
    outcome o = {1, 0, 0};
    char msg[600];
    const char *pkg = tsq_env_get(e->env, "OSDSubTasksequencePackageID");
    if (!pkg || !*pkg) pkg = dvar(a, "TsPackageID");
    const char *name = dvar(a, "TsName");
    if (!pkg || !*pkg) return fail_with(out, EXIT_INVALIDARG, "the step names no task sequence package");
    if (!e->opts->loader) {
        snprintf(msg, sizeof msg, "no loader to load task sequence %.256s", pkg);
        return fail_with(out, EXIT_NOTFOUND, msg);
    }
    if (e->sub_depth >= MAX_SUB_DEPTH) {
        snprintf(msg, sizeof msg, "task sequences nested more than %d deep", MAX_SUB_DEPTH);
        return fail_with(out, EXIT_E_FAIL, msg);
    }
    if (e->nloaded == e->caploaded) {
        size_t ncap = e->caploaded ? e->caploaded * 2 : 8;
        tsq_node **n = tsq_ctx_alloc(e->ctx, e->loaded, e->caploaded * sizeof *n, ncap * sizeof *n);
        if (!n) {
            set_oom(e);
            return fail_with(out, EXIT_E_FAIL, "out of memory");
        }
        e->loaded = n;
        e->caploaded = ncap;
    }
    tsq_node *child = NULL;
    tsq_buf lmsg;
    tsq_buf_init(&lmsg, e->ctx);
    tsq_status st = e->opts->loader(e->opts->loader_ud, pkg, name, &child, &lmsg);
    if (child) e->loaded[e->nloaded++] = child; /* released after the run */
    if (st != TSQ_OK || !child || tsq_node_kind(child) != TSQ_SEQUENCE) {
        if (lmsg.len) snprintf(msg, sizeof msg, "loading task sequence %.256s failed: %.300s", pkg, lmsg.data);
        else if (st != TSQ_OK) snprintf(msg, sizeof msg, "loading task sequence %.256s failed: %s", pkg, tsq_status_name(st));
        else snprintf(msg, sizeof msg, "loading task sequence %.256s gave no sequence", pkg);
        tsq_buf_free(&lmsg);
        return fail_with(out, st == TSQ_ENOTFOUND || st == TSQ_OK ? EXIT_NOTFOUND : EXIT_E_FAIL, msg);
    }
    tsq_buf_free(&lmsg);
    numbering cnr = {child, NULL, e->next_base};
    e->next_base += count_steps(child);
    set_globals(e, child);
    e->sub_depth++;
    int ok = run_children(e, &cnr, child, tsq_node_name(a), depth + 1);
    e->sub_depth--;
    if (!ok) {
        snprintf(msg, sizeof msg, "task sequence %.256s failed", pkg);
        return fail_with(out, e->fail_code ? e->fail_code : EXIT_E_FAIL, msg);
    }
    return o;
}

/* Calls a host handler; classifies timeouts and restarts. */
static outcome call_handler(engine *e, const tsq_handler_entry *h, const tsq_node *a, tsq_buf *out) {
    outcome o = {1, 0, 0};
    const tsq_run_opts *opts = e->opts;
    int64_t t0 = opts->clock ? opts->clock(opts->clock_ud) : 0;
    int32_t code = 0;
    tsq_status st = h->fn(h->ud, a, e->env, &code, out);
    int64_t t1 = opts->clock ? opts->clock(opts->clock_ud) : 0;
    uint32_t timeout = uint_attr(a, A_timeout);
    if (out->failed) set_oom(e);
    if (st == TSQ_ELIMIT || (st == TSQ_OK && timeout && opts->clock && t1 - t0 > (int64_t)timeout)) {
        char msg[128];
        snprintf(msg, sizeof msg, "the step did not finish within its timeout of %u seconds", timeout);
        return fail_with(out, EXIT_TIMEOUT, msg);
    }
    if (st == TSQ_ESTATE) {
        o.ok = 0;
        o.restart = 1;
        o.code = code;
        return o;
    }
    if (st != TSQ_OK) {
        if (!out->len) tsq_buf_adds(out, tsq_status_name(st));
        o.ok = 0;
        o.code = code ? code : EXIT_E_FAIL;
        return o;
    }
    o.code = code;
    o.ok = code_listed(success_codes(a), code);
    return o;
}

static outcome execute(engine *e, const tsq_node *a, const char *type, tsq_buf *out, int depth) {
    const char *where = attr(a, A_runIn);
    const char *pe = tsq_env_get(e->env, "_SMSTSInWinPE");
    if (where && pe) {
        int in_pe = is_true(pe);
        if (strcasecmp(where, "WinPE") == 0 && !in_pe)
            return fail_with(out, EXIT_NOTSUPPORTED, "the step runs only in Windows PE");
        if (strcasecmp(where, "FullOS") == 0 && in_pe)
            return fail_with(out, EXIT_NOTSUPPORTED, "the step runs only in the full operating system");
    }
    const tsq_handler_entry *h = find_handler(e, type);
    if (h) return call_handler(e, h, a, out);
    if (type_is(type, CLS_SETVAR)) return builtin_setvar(e, a, out);
    if (type_is(type, CLS_DYNVAR)) return builtin_dynvars(e, a, out);
    if (type_is(type, CLS_SUBTS)) return builtin_subts(e, a, out, depth);
    if (e->fallback) return call_handler(e, e->fallback, a, out);
    outcome o = {1, 0, 0};
    return o;
}

static void set_last(engine *e, const char *name, int32_t code, int ok) {
    char num[16];
    snprintf(num, sizeof num, "%ld", (long)code);
    env_set(e, "_SMSTSLastActionName", name);
    env_set(e, "_SMSTSLastActionRetCode", num);
    env_set(e, "_SMSTSLastActionSucceeded", ok ? "true" : "false");
}

/* Records a reboot; 0 when it is one too many (the run is then aborted). */
static int reboot(engine *e, uint32_t num, const char *gname, const char *name, int32_t code,
                  const char *target, const char *why) {
    if (e->reboots >= e->max_reboots) {
        e->abort = 1;
        e->fail_code = code ? code : EXIT_E_FAIL;
        e->abort_msg = "the run stopped after too many reboots";
        return 0;
    }
    e->reboots++;
    emit(e, TSQ_MSG_REBOOT, num, gname, name, code, why, why ? strlen(why) : 0);
    if (target && tsq_env_get(e->env, "_SMSTSInWinPE"))
        env_set(e, "_SMSTSInWinPE", strcasecmp(target, "WinPE") == 0 ? "true" : "false");
    return 1;
}

static int reboots_on_3010(const char *type) {
    return type_is(type, CLS_RUNCMD) || type_is(type, CLS_RUNPS) || type_is(type, CLS_INSTAPP) ||
           type_is(type, CLS_INSTPKG);
}

static int run_action(engine *e, const tsq_node *a, uint32_t num, const char *gname, int depth) {
    const char *name = tsq_node_name(a);
    const char *type = tsq_node_type(a);
    if (!*type) type = CLS_RUNCMD; /* MDT "generic" command steps carry no type */
    uint32_t restarts = 0, retries = uint_attr(a, A_retryCount);
    tsq_buf out;
    tsq_buf_init(&out, e->ctx);
    int ok = 0;
    for (;;) {
        out.len = 0;
        if (out.data) out.data[0] = '\0';
        env_set(e, "_SMSTSCurrentActionName", name);
        size_t mark = inject(e, a);
        outcome o = execute(e, a, type, &out, depth);
        uninject(e, mark);
        if (out.failed) set_oom(e);
        if (e->oom) break;
        if (o.restart) {
            if (restarts < retries) {
                restarts++;
                if (!reboot(e, num, gname, name, o.code, NULL, "the computer restarted unexpectedly during the step"))
                    break;
                continue;
            }
            char msg[160];
            snprintf(msg, sizeof msg, "the computer restarted unexpectedly during the step (%u retries)", retries);
            o = fail_with(&out, o.code ? o.code : EXIT_E_FAIL, msg);
        }
        ok = o.ok;
        set_last(e, name, o.code, ok);
        emit(e, ok ? TSQ_MSG_ACTION_OK : TSQ_MSG_ACTION_FAILED, num, gname, name, o.code, out.data, out.len);
        if (!ok) e->fail_code = o.code;

        const char *target = NULL;
        if (ok && o.code == EXIT_REBOOT && reboots_on_3010(type)) target = "HD";
        else if (ok && type_is(type, CLS_REBOOT)) target = dvar(a, "Target");
        else if (ok && type_is(type, CLS_SETUPWIN)) target = "HD";
        if (target && !reboot(e, num, gname, name, o.code, *target ? target : "HD", NULL)) break;
        const char *req = tsq_env_get(e->env, "SMSTSRebootRequested");
        if (req && *req) {
            int retry = is_true(tsq_env_get(e->env, "SMSTSRetryRequested"));
            char t[16];
            snprintf(t, sizeof t, "%s", strcasecmp(req, "WinPE") == 0 ? "WinPE" : "HD");
            env_set(e, "SMSTSRebootRequested", "");
            env_set(e, "SMSTSRetryRequested", "");
            if (!reboot(e, num, gname, name, o.code, t, NULL)) break;
            if (retry && ok && !e->abort) continue;
        }
        break;
    }
    if (e->abort) ok = 0;
    tsq_buf_free(&out);
    return ok;
}

/* A condition that can not be evaluated fails the step: returns -1 with the message in out. */
static int gate(engine *e, const tsq_node *n, tsq_buf *msg) {
    int res = 1;
    tsq_error err;
    memset(&err, 0, sizeof err);
    tsq_status st = tsq_node_eval_condition(n, e->env, &res, NULL, NULL, &err);
    if (st == TSQ_OK) return res ? 1 : 0;
    if (st == TSQ_ENOMEM) set_oom(e);
    tsq_buf_adds(msg, "the condition could not be evaluated: ");
    tsq_buf_adds(msg, err.message[0] ? err.message : tsq_status_name(st));
    return -1;
}

/* Runs one step reached by the run: 1 when it succeeded or was skipped. */
static int run_step(engine *e, numbering *nr, const tsq_node *s, const char *gname, int depth,
                    uint32_t *nump) {
    uint32_t num = *nump = step_num(nr, s);
    int group = s->type == N_GROUP;
    const char *name = tsq_node_name(s);
    if (!tsq_node_enabled(s)) {
        if (group) emit(e, TSQ_MSG_GROUP_DISABLED, num, name, "", 0, NULL, 0);
        else emit(e, TSQ_MSG_ACTION_DISABLED, num, gname, name, 0, NULL, 0);
        return 1;
    }
    tsq_buf msg;
    tsq_buf_init(&msg, e->ctx);
    int g = gate(e, s, &msg);
    if (g <= 0) {
        if (g == 0) {
            if (group) emit(e, TSQ_MSG_GROUP_SKIPPED, num, name, "", 0, NULL, 0);
            else emit(e, TSQ_MSG_ACTION_SKIPPED, num, gname, name, 0, NULL, 0);
        } else {
            e->fail_code = EXIT_E_FAIL;
            if (group) {
                emit(e, TSQ_MSG_GROUP_FAILED, num, name, "", EXIT_E_FAIL, msg.data, msg.len);
            } else {
                set_last(e, name, EXIT_E_FAIL, 0);
                emit(e, TSQ_MSG_ACTION_FAILED, num, gname, name, EXIT_E_FAIL, msg.data, msg.len);
            }
        }
        tsq_buf_free(&msg);
        return g == 0;
    }
    tsq_buf_free(&msg);
    if (!group) return run_action(e, s, num, gname, depth);
    emit(e, TSQ_MSG_GROUP_START, num, name, "", 0, NULL, 0);
    int ok;
    if (depth >= MAX_GROUP_DEPTH) {
        static const char deep[] = "groups nested too deeply";
        e->fail_code = EXIT_E_FAIL;
        emit(e, TSQ_MSG_GROUP_FAILED, num, name, "", EXIT_E_FAIL, deep, sizeof deep - 1);
        return 0;
    }
    ok = run_children(e, nr, s, name, depth + 1);
    if (ok) emit(e, TSQ_MSG_GROUP_OK, num, name, "", 0, NULL, 0);
    else emit(e, TSQ_MSG_GROUP_FAILED, num, name, "", e->fail_code, e->abort_msg,
              e->abort_msg ? strlen(e->abort_msg) : 0);
    return ok;
}

static int run_children(engine *e, numbering *nr, const tsq_node *parent, const char *gname, int depth) {
    for (const tsq_node *c = tsq_node_first(parent); c; c = tsq_node_next(c)) {
        if (e->abort) return 0;
        uint32_t num = 0;
        if (run_step(e, nr, c, gname, depth, &num)) continue;
        if (e->abort) return 0;
        if (!tsq_node_continue_on_error(c)) return 0; /* the remaining siblings are skipped */
        if (c->type == N_GROUP) {
            emit(e, TSQ_MSG_GROUP_IGNORED, num, tsq_node_name(c), "", e->fail_code, NULL, 0);
        } else {
            emit(e, TSQ_MSG_ACTION_IGNORED, num, gname, tsq_node_name(c), e->fail_code, NULL, 0);
        }
    }
    return !e->abort;
}

/* ------------------------------------------------------------------ entry point */

static void engine_free(engine *e) {
    if (e->handlers) tsq_free(e->ctx, e->handlers, e->opts->nhandlers * sizeof *e->handlers);
    if (e->inj) tsq_free(e->ctx, e->inj, e->capinj * sizeof *e->inj);
    for (size_t i = 0; i < e->nloaded; i++) tsq_node_release(e->loaded[i]);
    if (e->loaded) tsq_free(e->ctx, e->loaded, e->caploaded * sizeof *e->loaded);
}

tsq_status tsq_run_sequence(const tsq_node *seq, const tsq_run_opts *opts, tsq_run **out, tsq_error *err) {
    if (out) *out = NULL;
    if (!seq || !out) return tsq_err(err, TSQ_EINVAL, "tsq_run_sequence needs a sequence and a result pointer");
    if (tsq_node_kind(seq) != TSQ_SEQUENCE) {
        tsq_err_step(err, seq);
        return tsq_err(err, TSQ_EINVAL, "only a sequence can be run, not a %s",
                       seq->type == N_GROUP ? "group" : "step");
    }
    tsq_run_opts defaults;
    if (!opts) {
        memset(&defaults, 0, sizeof defaults);
        opts = &defaults;
    }
    for (size_t i = 0; i < opts->nhandlers; i++)
        if (!opts->handlers || !opts->handlers[i].type || !opts->handlers[i].fn)
            return tsq_err(err, TSQ_EINVAL, "handler %zu has no class name or no function", i + 1);
    tsq_ctx *ctx = seq->ctx;
    engine e;
    memset(&e, 0, sizeof e);
    e.ctx = ctx;
    e.opts = opts;
    e.max_reboots = opts->max_reboots ? opts->max_reboots : DEFAULT_MAX_REBOOTS;
    tsq_run *r = tsq_malloc(ctx, sizeof *r);
    if (!r) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    e.run = r;
    tsq_env *own = NULL;
    e.env = opts->env;
    if (!e.env && !(e.env = own = tsq_env_new(ctx))) goto oom;
    e.adv = arena_str(r, opts->AdvertisementID ? opts->AdvertisementID : "",
                      opts->AdvertisementID ? strlen(opts->AdvertisementID) : 0);
    e.pkg = arena_str(r, opts->PackageID ? opts->PackageID : "", opts->PackageID ? strlen(opts->PackageID) : 0);
    if (!e.adv || !e.pkg) goto oom;
    if (opts->nhandlers) {
        if (!(e.handlers = tsq_malloc(ctx, opts->nhandlers * sizeof *e.handlers))) goto oom;
        for (size_t i = 0; i < opts->nhandlers; i++) {
            const tsq_handler_entry *h = &opts->handlers[i];
            if (strcasecmp(h->type, "default") == 0) {
                if (!e.fallback) e.fallback = h;
                continue;
            }
            const tsq_class_info *ci = tsq_class_find(h->type);
            e.handlers[e.nhandlers].h = h;
            e.handlers[e.nhandlers].full = ci ? ci->name : NULL;
            e.nhandlers++;
        }
    }

    if (opts->PackageID) env_set(&e, "_SMSTSPackageID", opts->PackageID);
    if (opts->AdvertisementID) env_set(&e, "_SMSTSAdvertID", opts->AdvertisementID);
    set_globals(&e, seq);
    numbering nr = {seq, NULL, 0};
    e.next_base = count_steps(seq);
    emit(&e, TSQ_MSG_SEQ_START, 0, "", "", 0, NULL, 0);
    int ok = run_children(&e, &nr, seq, "", 1);
    if (e.oom) goto oom;
    const char *why = e.abort_msg;
    if (ok) {
        emit(&e, TSQ_MSG_SEQ_OK, 0, "", "", 0, NULL, 0);
        emit(&e, TSQ_MSG_MGR_OK, 0, "", "", 0, NULL, 0);
    } else {
        emit(&e, TSQ_MSG_SEQ_FAILED, 0, "", "", e.fail_code, why, why ? strlen(why) : 0);
        emit(&e, TSQ_MSG_MGR_FAILED, 0, "", "", e.fail_code, why, why ? strlen(why) : 0);
    }
    if (e.oom) goto oom;
    r->succeeded = ok;
    engine_free(&e);
    tsq_env_free(own);
    *out = r;
    return TSQ_OK;
oom:
    engine_free(&e);
    tsq_env_free(own);
    tsq_run_free(r);
    return tsq_err(err, TSQ_ENOMEM, "out of memory");
}
