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


#define EPOCH_2000 946684800                      /* 2000-01-01 00:00:00 UTC */
#define MAX_GROUP_DEPTH 512
#define MAX_SUB_DEPTH 16
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

void tsq_eng_set_oom(engine *e) {
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
    /* yyyymmddHHMMSS.000000+000, digit by digit: one per record, snprintf was the cost */
    int f[6] = {(int)y, (int)m, (int)d, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60)};
    char *o = out;
    *o++ = (char)('0' + f[0] / 1000);
    *o++ = (char)('0' + f[0] / 100 % 10);
    for (int i = 0; i < 6; i++) {
        *o++ = (char)('0' + f[i] / 10 % 10);
        *o++ = (char)('0' + f[i] % 10);
    }
    memcpy(o, ".000000+000", 12);
}

static void emit(engine *e, tsq_msg msg, uint32_t step, const char *group, const char *action,
                 int32_t code, const char *output, size_t outlen) {
    tsq_run *r = e->run;
    if (e->oom) return;
    if (r->nrecs == r->caprecs) {
        size_t ncap = r->caprecs ? r->caprecs * 2 : 64;
        tsq_record *nr = tsq_ctx_alloc(e->ctx, r->recs, r->caprecs * sizeof *nr, ncap * sizeof *nr);
        if (!nr) {
            tsq_eng_set_oom(e);
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
        tsq_eng_set_oom(e);
        return;
    }
    r->nrecs++;
}

void tsq_eng_env_set(engine *e, const char *name, const char *value) {
    if (tsq_env_set(e->env, name, value) == TSQ_ENOMEM) tsq_eng_set_oom(e);
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

const char *tsq_eng_attr(const tsq_node *n, int atom) { return tsq_attr_get(n, n->ctx->atom[atom]); }

/* The text of the step's defaultVarList entry for `property`, or NULL. */
const char *tsq_eng_dvar(const tsq_node *n, const char *property) {
    tsq_ctx *ctx = n->ctx;
    tsq_node *list = tsq_elem_child(n, ctx->atom[A_defaultVarList]);
    if (!list) return NULL;
    for (tsq_node *v = tsq_elem_first(list); v; v = tsq_elem_next(v)) {
        if (v->name != ctx->atom[A_variable]) continue;
        const char *p = tsq_eng_attr(v, A_property);
        if (p && strcmp(p, property) == 0) return v->text ? v->text : "";
    }
    return NULL;
}

int tsq_eng_is_true(const char *s) { return s && strcasecmp(s, "true") == 0; }

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
    const char *s = tsq_eng_attr(a, A_successCodeList);
    if (s) return s;
    s = tsq_eng_dvar(a, "SuccessCodes");
    return s ? s : "0";
}

static uint32_t uint_attr(const tsq_node *a, int atom) {
    const char *s = tsq_eng_attr(a, atom);
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

/* ------------------------------------------------------------------ running */

static int run_children(engine *e, numbering *nr, const tsq_node *parent, const char *gname, int depth);

static outcome builtin_subts(engine *e, const tsq_node *a, tsq_buf *out, int depth) {
    outcome o = {1, 0, 0};
    char msg[600];
    const char *pkg = tsq_env_get(e->env, "OSDSubTasksequencePackageID");
    if (!pkg || !*pkg) pkg = tsq_eng_dvar(a, "TsPackageID");
    const char *name = tsq_eng_dvar(a, "TsName");
    if (!pkg || !*pkg) return tsq_eng_fail_with(out, EXIT_INVALIDARG, "the step names no task sequence package");
    if (!e->opts->loader) {
        snprintf(msg, sizeof msg, "no loader to load task sequence %.256s", pkg);
        return tsq_eng_fail_with(out, EXIT_NOTFOUND, msg);
    }
    if (e->sub_depth >= MAX_SUB_DEPTH) {
        snprintf(msg, sizeof msg, "task sequences nested more than %d deep", MAX_SUB_DEPTH);
        return tsq_eng_fail_with(out, EXIT_E_FAIL, msg);
    }
    if (e->nloaded == e->caploaded) {
        size_t ncap = e->caploaded ? e->caploaded * 2 : 8;
        tsq_node **n = tsq_ctx_alloc(e->ctx, e->loaded, e->caploaded * sizeof *n, ncap * sizeof *n);
        if (!n) {
            tsq_eng_set_oom(e);
            return tsq_eng_fail_with(out, EXIT_E_FAIL, "out of memory");
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
        return tsq_eng_fail_with(out, st == TSQ_ENOTFOUND || st == TSQ_OK ? EXIT_NOTFOUND : EXIT_E_FAIL, msg);
    }
    tsq_buf_free(&lmsg);
    numbering cnr = {child, NULL, e->next_base};
    e->next_base += count_steps(child);
    tsq_eng_set_globals(e, child);
    e->sub_depth++;
    int ok = run_children(e, &cnr, child, tsq_node_name(a), depth + 1);
    e->sub_depth--;
    if (!ok) {
        snprintf(msg, sizeof msg, "task sequence %.256s failed", pkg);
        return tsq_eng_fail_with(out, e->fail_code ? e->fail_code : EXIT_E_FAIL, msg);
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
    if (out->failed) tsq_eng_set_oom(e);
    if (st == TSQ_ELIMIT || (st == TSQ_OK && timeout && opts->clock && t1 - t0 > (int64_t)timeout)) {
        char msg[128];
        if (timeout) snprintf(msg, sizeof msg, "the step did not finish within its timeout of %u seconds", timeout);
        else snprintf(msg, sizeof msg, "the step timed out"); /* the host's own limit: the step sets none */
        return tsq_eng_fail_with(out, EXIT_TIMEOUT, msg);
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
    const char *where = tsq_eng_attr(a, A_runIn);
    const char *pe = tsq_env_get(e->env, "_SMSTSInWinPE");
    if (where && pe) {
        int in_pe = tsq_eng_is_true(pe);
        if (strcasecmp(where, "WinPE") == 0 && !in_pe)
            return tsq_eng_fail_with(out, EXIT_NOTSUPPORTED, "the step runs only in Windows PE");
        if (strcasecmp(where, "FullOS") == 0 && in_pe)
            return tsq_eng_fail_with(out, EXIT_NOTSUPPORTED, "the step runs only in the full operating system");
    }
    const tsq_handler_entry *h = find_handler(e, type);
    if (h) return call_handler(e, h, a, out);
    if (type_is(type, CLS_SETVAR)) return tsq_eng_builtin_setvar(e, a, out);
    if (type_is(type, CLS_DYNVAR)) return tsq_eng_builtin_dynvars(e, a, out);
    if (type_is(type, CLS_SUBTS)) return builtin_subts(e, a, out, depth);
    if (e->fallback) return call_handler(e, e->fallback, a, out);
    outcome o = {1, 0, 0};
    return o;
}

static void set_last(engine *e, const char *name, int32_t code, int ok) {
    char num[16];
    snprintf(num, sizeof num, "%ld", (long)code);
    tsq_eng_env_set(e, "_SMSTSLastActionName", name);
    tsq_eng_env_set(e, "_SMSTSLastActionRetCode", num);
    tsq_eng_env_set(e, "_SMSTSLastActionSucceeded", ok ? "true" : "false");
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
        tsq_eng_env_set(e, "_SMSTSInWinPE", strcasecmp(target, "WinPE") == 0 ? "true" : "false");
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
        tsq_eng_env_set(e, "_SMSTSCurrentActionName", name);
        size_t mark = tsq_eng_inject(e, a);
        outcome o = execute(e, a, type, &out, depth);
        tsq_eng_uninject(e, mark);
        if (out.failed) tsq_eng_set_oom(e);
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
            o = tsq_eng_fail_with(&out, o.code ? o.code : EXIT_E_FAIL, msg);
        }
        ok = o.ok;
        set_last(e, name, o.code, ok);
        emit(e, ok ? TSQ_MSG_ACTION_OK : TSQ_MSG_ACTION_FAILED, num, gname, name, o.code, out.data, out.len);
        if (!ok) e->fail_code = o.code;

        const char *target = NULL;
        if (ok && o.code == EXIT_REBOOT && reboots_on_3010(type)) target = "HD";
        else if (ok && type_is(type, CLS_REBOOT)) target = tsq_eng_dvar(a, "Target");
        else if (ok && type_is(type, CLS_SETUPWIN)) target = "HD";
        if (target && !reboot(e, num, gname, name, o.code, *target ? target : "HD", NULL)) break;
        const char *req = tsq_env_get(e->env, "SMSTSRebootRequested");
        if (req && *req) {
            int retry = tsq_eng_is_true(tsq_env_get(e->env, "SMSTSRetryRequested"));
            char t[16];
            snprintf(t, sizeof t, "%s", strcasecmp(req, "WinPE") == 0 ? "WinPE" : "HD");
            tsq_eng_env_set(e, "SMSTSRebootRequested", "");
            tsq_eng_env_set(e, "SMSTSRetryRequested", "");
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
    if (st == TSQ_ENOMEM) tsq_eng_set_oom(e);
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

    if (opts->PackageID) tsq_eng_env_set(&e, "_SMSTSPackageID", opts->PackageID);
    if (opts->AdvertisementID) tsq_eng_env_set(&e, "_SMSTSAdvertID", opts->AdvertisementID);
    tsq_eng_set_globals(&e, seq);
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
