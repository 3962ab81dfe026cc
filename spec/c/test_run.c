/* test_run.c - the execution engine: order, skips, conditions against the live
 * environment, ContinueOnError, success codes, reboots, handlers, loaders, engine
 * variables, Set (Dynamic) Variables and the SMS_TaskSequenceExecutionStatus records. */
#include "harness.h"
#include "run.h"

#include <dirent.h>
#include <time.h>

static tsq_ctx *ctx;

/* ------------------------------------------------------------------ documents */

#define Q "\""
#define SEQ(body) "<sequence version=\"3.10\">" body "</sequence>"
#define GROUP(name, extra, body) "<group name=\"" name "\" description=\"\"" extra ">" body "</group>"
#define STEP(cls, name, extra, desc, inner) \
    "<step type=\"" cls "\" name=\"" name "\" description=\"" desc "\"" extra ">" inner "</step>"
#define RUNCMD "SMS_TaskSequence_RunCommandLineAction"
#define CMD(name, extra, desc) STEP(RUNCMD, name, extra " successCodeList=\"0 3010\"", desc, "<action>x</action>")
#define CMDC(name, extra, desc, cond) \
    STEP(RUNCMD, name, extra " successCodeList=\"0 3010\"", desc, cond "<action>x</action>")
#define VARCOND(var, op, val)                                                                  \
    "<condition><expression type=\"SMS_TaskSequence_VariableConditionExpression\">"           \
    "<variable name=\"Operator\">" op "</variable><variable name=\"Value\">" val "</variable>" \
    "<variable name=\"Variable\">" var "</variable></expression></condition>"
#define DVAR(name, prop, hidden, value) \
    "<variable name=\"" name "\" property=\"" prop "\"" hidden ">" value "</variable>"
#define HIDDEN " hidden=\"true\""
#define SETVAR(name, var, value)                                                                  \
    STEP("SMS_TaskSequence_SetVariableAction", name, " successCodeList=\"0\"", "",                \
         "<action>tsenv.exe</action><defaultVarList>" DVAR("DoNotShowVariableValue",              \
         "DoNotShowVariableValue", HIDDEN, "false") DVAR("VariableName", "VariableName", HIDDEN,  \
         var) DVAR("VariableValue", "VariableValue", HIDDEN, value) "</defaultVarList>")
#define DYNVARS(name, rules_escaped)                                                              \
    STEP("SMS_TaskSequence_SetDynamicVariablesAction", name, " successCodeList=\"0\"", "",        \
         "<action>OSDSetDynamicVariables.exe</action><defaultVarList>"                           \
         DVAR("OSDSetDynamicVariablesRules", "Rules", "", rules_escaped) "</defaultVarList>")
#define SUBTS(name, pkg)                                                                          \
    "<subtasksequence type=\"SMS_TaskSequence_SubTasksequence\" name=\"" name "\" description=\"\"" \
    " successCodeList=\"0\" retryCount=\"0\" runFromNet=\"false\"><action>SubTasksequence.exe</action>" \
    "<defaultVarList>" DVAR("OSDSubTasksequenceTsName", "TsName", "", pkg ", " name)           \
    DVAR("OSDSubTasksequencePackageID", "TsPackageID", "", pkg) "</defaultVarList></subtasksequence>"

static tsq_node *parse(const char *xml) {
    tsq_node *seq = NULL;
    tsq_error err;
    memset(&err, 0, sizeof err);
    if (tsq_parse(ctx, xml, strlen(xml), "test", &seq, &err) != TSQ_OK) {
        fprintf(stderr, "parse failed: %s\n", err.message);
        return NULL;
    }
    return seq;
}

/* ------------------------------------------------------------------ a scripted handler
 * The step's description is a script: commands separated by ';'
 *   exit=N  set=NAME=VALUE  out=TEXT  see=VAR  fail=error|limit|restart
 *   restart_first=K (TSQ_ESTATE on the first K calls)  tick=N (advance the test clock)
 *   reboot=HD|WinPE  retry_first=K (SMSTSRetryRequested on the first K calls) */

static char hlog[8192];
static int64_t tclock;
static struct { char name[64]; int n; } calls[64];
static int ncalls;

static void reset(void) {
    hlog[0] = '\0';
    ncalls = 0;
    tclock = 1700000000;
}

static void logf_(const char *s) {
    size_t n = strlen(hlog);
    snprintf(hlog + n, sizeof hlog - n, "%s", s);
}

static int bump(const char *name) {
    for (int i = 0; i < ncalls; i++)
        if (strcmp(calls[i].name, name) == 0) return ++calls[i].n;
    if (ncalls == 64) return 1;
    snprintf(calls[ncalls].name, sizeof calls[ncalls].name, "%s", name);
    calls[ncalls].n = 1;
    return calls[ncalls++].n;
}

static tsq_status h_script(void *ud, const tsq_node *step, tsq_env *env, int32_t *code, tsq_buf *out) {
    const char *tag = ud;
    const char *name = tsq_node_name(step);
    int n = bump(name);
    logf_(name);
    if (tag) {
        logf_("@");
        logf_(tag);
    }
    logf_(",");
    char script[512];
    snprintf(script, sizeof script, "%s", tsq_node_description(step));
    tsq_status st = TSQ_OK;
    char *save = NULL;
    for (char *cmd = strtok_r(script, ";", &save); cmd; cmd = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(cmd, '=');
        if (!eq) continue;
        *eq = '\0';
        const char *arg = eq + 1;
        if (strcmp(cmd, "exit") == 0) *code = (int32_t)strtoll(arg, NULL, 10);
        else if (strcmp(cmd, "out") == 0) tsq_buf_adds(out, arg);
        else if (strcmp(cmd, "tick") == 0) tclock += strtoll(arg, NULL, 10);
        else if (strcmp(cmd, "reboot") == 0) tsq_env_set(env, "SMSTSRebootRequested", arg);
        else if (strcmp(cmd, "retry_first") == 0) {
            if (n <= atoi(arg)) tsq_env_set(env, "SMSTSRetryRequested", "true");
        } else if (strcmp(cmd, "restart_first") == 0) {
            if (n <= atoi(arg)) st = TSQ_ESTATE;
        } else if (strcmp(cmd, "set") == 0) {
            char *eq2 = strchr(eq + 1, '=');
            if (eq2) {
                *eq2 = '\0';
                tsq_env_set(env, arg, eq2 + 1);
            }
        } else if (strcmp(cmd, "see") == 0) {
            const char *v = tsq_env_get(env, arg);
            logf_("[");
            logf_(arg);
            logf_("=");
            logf_(v ? v : "(nil)");
            logf_("]");
        } else if (strcmp(cmd, "fail") == 0) {
            st = strcmp(arg, "limit") == 0 ? TSQ_ELIMIT : strcmp(arg, "restart") == 0 ? TSQ_ESTATE : TSQ_EHANDLER;
        }
    }
    return st;
}

static int64_t t_clock(void *ud) {
    (void)ud;
    return tclock;
}

/* ------------------------------------------------------------------ running */

typedef struct runner {
    tsq_node *seq;
    tsq_env *env;
    tsq_run *run;
    tsq_status st;
    tsq_error err;
    tsq_run_opts opts;
    tsq_handler_entry h[4];
} runner;

static void setup(runner *r, const char *xml) {
    memset(r, 0, sizeof *r);
    reset();
    r->seq = parse(xml);
    r->env = tsq_env_new(ctx);
    r->opts.env = r->env;
    r->h[0].type = "default";
    r->h[0].fn = h_script;
    r->opts.handlers = r->h;
    r->opts.nhandlers = 1;
}

static int go(runner *r) {
    if (!r->seq) return 0;
    tsq_run_free(r->run);
    r->run = NULL;
    r->st = tsq_run_sequence(r->seq, &r->opts, &r->run, &r->err);
    return r->st == TSQ_OK && r->run;
}

static void teardown(runner *r) {
    tsq_run_free(r->run);
    tsq_env_free(r->env);
    tsq_node_release(r->seq);
}

/* "ID@STEP ID@STEP ..." */
static const char *sig(const tsq_run *run) {
    static char buf[8192];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < tsq_run_record_count(run); i++) {
        const tsq_record *rec = tsq_run_record(run, i);
        n += (size_t)snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, "%s%u@%u", i ? " " : "",
                              (unsigned)rec->LastStatusMsgID, (unsigned)rec->Step);
        if (n >= sizeof buf) break;
    }
    return buf;
}

static const tsq_record *rec_at(const tsq_run *run, size_t i) { return tsq_run_record(run, i); }

/* The first record with this id and step name, or NULL. */
static const tsq_record *find_rec(const tsq_run *run, uint32_t id, const char *action) {
    for (size_t i = 0; i < tsq_run_record_count(run); i++) {
        const tsq_record *rec = tsq_run_record(run, i);
        if (rec->LastStatusMsgID == id && (!action || strcmp(rec->ActionName, action) == 0)) return rec;
    }
    return NULL;
}

static const char *var(runner *r, const char *name) {
    const char *v = tsq_env_get(r->env, name);
    return v ? v : "(nil)";
}

/* ------------------------------------------------------------------ tests */

static void test_messages(void) {
    CASE("every event has an id and a name from messages.tsv");
    for (int m = 0; m < TSQ_MSG__COUNT; m++) {
        CHECK(tsq_msg_event[m].id != 0);
        CHECK(tsq_msg_event[m].name && tsq_msg_event[m].name[0]);
        CHECK_STR(tsq_status_message_name(tsq_msg_event[m].id), tsq_msg_event[m].name);
    }
    CASE("status message names by id");
    CHECK_STR(tsq_status_message_name(11134), "The task sequence execution engine successfully completed an action");
    CHECK_STR(tsq_status_message_name(11135), "The task sequence execution engine failed executing an action");
    CHECK_STR(tsq_status_message_name(11140), "The task sequence execution engine started execution of a task sequence");
    CHECK(tsq_status_message_name(11144) != NULL);
    CHECK(tsq_status_message_name(0) == NULL);
    CHECK(tsq_status_message_name(11133) == NULL);
    CHECK(tsq_status_message_name(99999) == NULL);
    CASE("the table is sorted and has no duplicate ids");
    for (size_t i = 1; i < tsq_msg_table_count; i++) CHECK(tsq_msg_table[i - 1].id < tsq_msg_table[i].id);
}

static void test_empty(void) {
    runner r;
    CASE("an empty sequence starts and succeeds");
    setup(&r, SEQ(""));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11143@0 11171@0");
    CHECK(tsq_run_succeeded(r.run));
    const tsq_record *a = rec_at(r.run, 0);
    CHECK_STR(a->LastStatusMsgName, "The task sequence execution engine started execution of a task sequence");
    CHECK_STR(a->ActionName, "");
    CHECK_STR(a->GroupName, "");
    CHECK_STR(a->ActionOutput, "");
    CHECK(a->ExitCode == 0);
    teardown(&r);
}

static void test_worked_example(void) {
    runner r;
    CASE("planning guide: Group1(CoE){S1(CoE),S2,S3}, Group2{S4,S5,S6}; S1, S2, S4 fail");
    setup(&r, SEQ(GROUP("Group1", " continueOnError=\"true\"",
                        CMD("S1", " continueOnError=\"true\"", "exit=1") CMD("S2", "", "exit=2") CMD("S3", "", ""))
                  GROUP("Group2", "", CMD("S4", "", "exit=4") CMD("S5", "", "") CMD("S6", "", ""))));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11124@1 11135@2 11138@2 11135@3 11122@1 11139@1 "
                          "11124@5 11135@6 11122@5 11141@0 11170@0");
    CHECK_STR(hlog, "S1,S2,S4,");
    CHECK(!tsq_run_succeeded(r.run));
    CASE("worked example: names, groups and exit codes of the records");
    CHECK_STR(rec_at(r.run, 1)->GroupName, "Group1");
    CHECK_STR(rec_at(r.run, 1)->ActionName, "");
    CHECK_STR(rec_at(r.run, 2)->ActionName, "S1");
    CHECK_STR(rec_at(r.run, 2)->GroupName, "Group1");
    CHECK(rec_at(r.run, 2)->ExitCode == 1);
    CHECK_STR(rec_at(r.run, 3)->ActionName, "S1");
    CHECK(rec_at(r.run, 3)->ExitCode == 1);
    CHECK_STR(rec_at(r.run, 4)->ActionName, "S2");
    CHECK(rec_at(r.run, 5)->ExitCode == 2);
    CHECK_STR(rec_at(r.run, 6)->GroupName, "Group1");
    CHECK_STR(rec_at(r.run, 8)->ActionName, "S4");
    CHECK_STR(rec_at(r.run, 8)->GroupName, "Group2");
    CHECK(rec_at(r.run, 9)->ExitCode == 4);
    CHECK(rec_at(r.run, 10)->ExitCode == 4);
    CHECK_STR(rec_at(r.run, 10)->LastStatusMsgName, "The task sequence execution engine failed execution of a task sequence");
    CHECK_STR(var(&r, "_SMSTSLastActionName"), "S4");
    CHECK_STR(var(&r, "_SMSTSLastActionSucceeded"), "false");
    teardown(&r);
}

static void test_disabled(void) {
    runner r;
    CASE("a disabled step is skipped without evaluating its condition or running");
    setup(&r, SEQ(CMD("A", "", "exit=7")
                  CMDC("B", " disable=\"true\"", "exit=0", VARCOND("X", "equals", "1"))
                  CMD("C", " continueOnError=\"true\"", "exit=9")));
    tsq_env_set(r.env, "X", "1");
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    teardown(&r);
    setup(&r, SEQ(CMD("A", "", "") CMD("B", " disable=\"true\"", "") CMD("C", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11128@2 11134@3 11143@0 11171@0");
    CHECK_STR(hlog, "A,C,");
    CHECK_STR(find_rec(r.run, 11128, "B")->LastStatusMsgName, "The task sequence execution engine skipped a disabled action");
    teardown(&r);

    CASE("a disabled step does not touch the last-action variables");
    setup(&r, SEQ(CMD("A", "", "exit=5") CMD("B", " disable=\"true\"", "")));
    r.h[0].fn = h_script;
    CHECK(go(&r));
    CHECK_STR(var(&r, "_SMSTSLastActionName"), "A");
    CHECK_STR(var(&r, "_SMSTSLastActionRetCode"), "5");
    teardown(&r);
    setup(&r, SEQ(CMD("A", " continueOnError=\"true\"", "exit=5") CMD("B", " disable=\"true\"", "")));
    CHECK(go(&r));
    CHECK_STR(var(&r, "_SMSTSLastActionName"), "A");
    CHECK_STR(var(&r, "_SMSTSLastActionRetCode"), "5");
    CHECK_STR(var(&r, "_SMSTSLastActionSucceeded"), "false");
    CHECK(tsq_run_succeeded(r.run));
    teardown(&r);

    CASE("a disabled group skips its descendants; numbering continues after them");
    setup(&r, SEQ(CMD("A", "", "")
                  GROUP("G", " disable=\"true\"", CMD("G1", "", "") GROUP("GG", "", CMD("G2", "", "")))
                  CMD("B", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11129@2 11134@6 11143@0 11171@0");
    CHECK_STR(hlog, "A,B,");
    CHECK_STR(rec_at(r.run, 2)->GroupName, "G");
    CHECK_STR(rec_at(r.run, 2)->ActionName, "");
    teardown(&r);
}

static void test_conditions(void) {
    runner r;
    CASE("a step whose condition is false is skipped (11130), others run");
    setup(&r, SEQ(CMDC("A", "", "", VARCOND("Mode", "equals", "Full")) CMD("B", "", "")));
    tsq_env_set(r.env, "Mode", "Lite");
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11130@1 11134@2 11143@0 11171@0");
    CHECK_STR(hlog, "B,");
    teardown(&r);

    CASE("a group whose condition is false is skipped once (11131) with its children");
    setup(&r, SEQ(GROUP("G", "", VARCOND("Mode", "equals", "Full") CMD("G1", "", "") CMD("G2", "", ""))
                  CMD("B", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11131@1 11134@4 11143@0 11171@0");
    CHECK_STR(rec_at(r.run, 1)->GroupName, "G");
    teardown(&r);

    CASE("conditions see variables that an earlier Set Task Sequence Variable step set");
    setup(&r, SEQ(CMDC("Before", "", "", VARCOND("Stage", "equals", "Two"))
                  SETVAR("Set stage", "Stage", "Two")
                  CMDC("After", "", "", VARCOND("Stage", "equals", "Two"))
                  GROUP("G", "", VARCOND("Stage", "notEquals", "Two") CMD("Never", "", ""))));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11130@1 11134@2 11134@3 11131@4 11143@0 11171@0");
    CHECK_STR(hlog, "After,");
    CHECK_STR(var(&r, "Stage"), "Two");
    teardown(&r);

    CASE("conditions see variables that an earlier handler set");
    setup(&r, SEQ(CMD("Detect", "", "set=IsLaptop=true") CMDC("Laptop", "", "", VARCOND("IsLaptop", "equals", "true"))
                  CMDC("Desktop", "", "", VARCOND("IsLaptop", "notEquals", "true"))));
    CHECK(go(&r));
    CHECK_STR(hlog, "Detect,Laptop,");
    CHECK_STR(sig(r.run), "11140@0 11134@1 11134@2 11130@3 11143@0 11171@0");
    teardown(&r);

    CASE("a group's condition is evaluated once, before its children change the variable");
    setup(&r, SEQ(GROUP("G", "", VARCOND("Go", "equals", "yes") CMD("G1", "", "set=Go=no") CMD("G2", "", ""))));
    tsq_env_set(r.env, "Go", "yes");
    CHECK(go(&r));
    CHECK_STR(hlog, "G1,G2,");
    CHECK_STR(sig(r.run), "11140@0 11124@1 11134@2 11134@3 11127@1 11143@0 11171@0");
    teardown(&r);

    CASE("a condition that can not be evaluated fails the step with the reason");
    setup(&r, SEQ(STEP(RUNCMD, "W", "", "",
                       "<condition><expression type=\"SMS_TaskSequence_WMIConditionExpression\">"
                       "<variable name=\"Namespace\">root\\cimv2</variable><variable name=\"Query\">"
                       "SELECT * FROM Win32_Battery</variable></expression></condition><action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    CHECK(strstr(rec_at(r.run, 1)->ActionOutput, "condition") != NULL);
    CHECK_STR(hlog, "");
    teardown(&r);
}

static void test_success_codes(void) {
    runner r;
    CASE("success codes come from successCodeList");
    setup(&r, SEQ(STEP(RUNCMD, "A", " successCodeList=\"0 5 12\"", "exit=5", "<action>x</action>")
                  STEP(RUNCMD, "B", " successCodeList=\"0 12\"", "exit=5", "<action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11135@2 11141@0 11170@0");
    CHECK(rec_at(r.run, 2)->ExitCode == 5);
    teardown(&r);

    CASE("without successCodeList only 0 succeeds");
    setup(&r, SEQ(STEP("BDD_Gather", "A", "", "exit=0", "<action>x</action>")
                  STEP("BDD_Gather", "B", "", "exit=1", "<action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11135@2 11141@0 11170@0");
    teardown(&r);

    CASE("negative codes are signed 32-bit in the list and unsigned in the record");
    setup(&r, SEQ(STEP(RUNCMD, "A", " successCodeList=\"0 -2147024891\"", "exit=-2147024891", "<action>x</action>")
                  STEP(RUNCMD, "B", " successCodeList=\"0 2147942405\"", "exit=-2147024891", "<action>x</action>")
                  STEP(RUNCMD, "C", " successCodeList=\"0\"", "exit=-1", "<action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11134@2 11135@3 11141@0 11170@0");
    CHECK(rec_at(r.run, 1)->ExitCode == 2147942405u);
    CHECK(rec_at(r.run, 3)->ExitCode == 4294967295u);
    CHECK_STR(var(&r, "_SMSTSLastActionRetCode"), "-1");
    teardown(&r);
}

static void test_reboots(void) {
    runner r;
    CASE("exit code 3010 listed: success, then a reboot record");
    setup(&r, SEQ(CMD("Install", "", "exit=3010") CMD("Next", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11142@1 11134@2 11143@0 11171@0");
    CHECK(rec_at(r.run, 2)->ExitCode == 3010);
    CHECK_STR(rec_at(r.run, 2)->ActionName, "Install");
    CHECK_STR(rec_at(r.run, 2)->LastStatusMsgName,
              "The task sequence execution engine performed a system reboot initiated by an action");
    teardown(&r);

    CASE("exit code 3010 not listed: failure, no reboot");
    setup(&r, SEQ(STEP(RUNCMD, "Install", " successCodeList=\"0\"", "exit=3010", "<action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    teardown(&r);

    CASE("exit code 3010 from a class that does not reboot on it: success only");
    setup(&r, SEQ(STEP("BDD_Gather", "G", " successCodeList=\"0 3010\"", "exit=3010", "<action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11143@0 11171@0");
    teardown(&r);

    CASE("SMSTSRebootRequested: a reboot after the step, then the variable is cleared");
    setup(&r, SEQ(CMD("Req", "", "reboot=HD") CMD("Next", "", "see=SMSTSRebootRequested")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11142@1 11134@2 11143@0 11171@0");
    CHECK_STR(hlog, "Req,Next,[SMSTSRebootRequested=(nil)]");
    teardown(&r);

    CASE("SMSTSRetryRequested: the same step runs again after the reboot");
    setup(&r, SEQ(CMD("Req", "", "reboot=HD;retry_first=1") CMD("Next", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11142@1 11134@1 11142@1 11134@2 11143@0 11171@0");
    CHECK_STR(hlog, "Req,Req,Next,");
    CHECK_STR(var(&r, "SMSTSRetryRequested"), "(nil)");
    teardown(&r);

    CASE("a failed step that requested a reboot and a retry: the reboot happens, the retry does not");
    setup(&r, SEQ(CMD("Req", " continueOnError=\"true\"", "exit=9;reboot=WinPE;retry_first=5") CMD("Next", "", "see=_SMSTSInWinPE")));
    tsq_env_set(r.env, "_SMSTSInWinPE", "false");
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11142@1 11138@1 11134@2 11143@0 11171@0");
    CHECK_STR(hlog, "Req,Next,[_SMSTSInWinPE=true]");
    CHECK_STR(var(&r, "SMSTSRetryRequested"), "(nil)");
    teardown(&r);

    CASE("reboots beyond max_reboots stop the run as failed, whatever ContinueOnError says");
    setup(&r, SEQ(GROUP("G", " continueOnError=\"true\"", CMD("Loop", " continueOnError=\"true\"", "reboot=HD;retry_first=1000"))
                  CMD("After", "", "")));
    r.opts.max_reboots = 3;
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11124@1 11134@2 11142@2 11134@2 11142@2 11134@2 11142@2 11134@2 "
                          "11122@1 11141@0 11170@0");
    CHECK(!tsq_run_succeeded(r.run));
    CHECK(strstr(rec_at(r.run, 10)->ActionOutput, "reboots") != NULL);
    CHECK_STR(hlog, "Loop,Loop,Loop,Loop,");
    teardown(&r);

    CASE("Restart Computer reboots to its target and moves _SMSTSInWinPE");
    setup(&r, SEQ(STEP("SMS_TaskSequence_RebootAction", "Restart", " successCodeList=\"0\"", "",
                       "<action>smsboot.exe /target:HD</action><defaultVarList>"
                       DVAR("SMSRebootTarget", "Target", HIDDEN, "HD") "</defaultVarList>")
                  CMD("Next", "", "see=_SMSTSInWinPE")));
    tsq_env_set(r.env, "_SMSTSInWinPE", "true");
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11142@1 11134@2 11143@0 11171@0");
    CHECK_STR(hlog, "Restart,Next,[_SMSTSInWinPE=false]");
    teardown(&r);

    CASE("an unexpected restart reruns the step up to retryCount times");
    setup(&r, SEQ(STEP("SMS_TaskSequence_InstallApplicationAction", "Apps", " successCodeList=\"0\" retryCount=\"2\"",
                       "restart_first=2", "<action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11142@1 11142@1 11134@1 11143@0 11171@0");
    CHECK_STR(hlog, "Apps,Apps,Apps,");
    teardown(&r);
    setup(&r, SEQ(STEP("SMS_TaskSequence_InstallApplicationAction", "Apps", " successCodeList=\"0\" retryCount=\"1\"",
                       "restart_first=5", "<action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11142@1 11135@1 11141@0 11170@0");
    CHECK(strstr(rec_at(r.run, 2)->ActionOutput, "restarted unexpectedly") != NULL);
    teardown(&r);
}

static tsq_status h_plain(void *ud, const tsq_node *step, tsq_env *env, int32_t *code, tsq_buf *out) {
    (void)env;
    (void)code;
    (void)out;
    logf_(ud ? (const char *)ud : "?");
    logf_(":");
    logf_(tsq_node_name(step));
    logf_(",");
    return TSQ_OK;
}

static void test_handlers(void) {
    runner r;
    CASE("a handler's error status fails the step with its message as output");
    setup(&r, SEQ(CMD("A", "", "out=disk not found;fail=error") CMD("B", "", "exit=17;out=partial;fail=error")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    CHECK_STR(rec_at(r.run, 1)->ActionOutput, "disk not found");
    CHECK(rec_at(r.run, 1)->ExitCode == 0x80004005u);
    teardown(&r);
    setup(&r, SEQ(CMD("B", " continueOnError=\"true\"", "exit=17;out=partial;fail=error")));
    CHECK(go(&r));
    CHECK(rec_at(r.run, 1)->ExitCode == 17);
    CHECK_STR(rec_at(r.run, 1)->ActionOutput, "partial");
    CHECK_STR(sig(r.run), "11140@0 11135@1 11138@1 11143@0 11171@0");
    teardown(&r);

    CASE("handler output becomes ActionOutput of a successful step");
    setup(&r, SEQ(CMD("A", "", "out=hello world")));
    CHECK(go(&r));
    CHECK_STR(rec_at(r.run, 1)->ActionOutput, "hello world");
    teardown(&r);

    CASE("handlers match by full or short class name; the rest go to default");
    setup(&r, SEQ(CMD("Cmd", "", "") STEP("SMS_TaskSequence_RunPowerShellScriptAction", "PS", "", "", "<action>x</action>")
                  STEP("BDD_Gather", "Gather", "", "", "<action>x</action>")
                  STEP("SMS_TaskSequence_PartitionDiskAction", "Disk", "", "", "<action>x</action>")));
    r.h[0] = (tsq_handler_entry){"RunCommandLine", h_plain, "short"};
    r.h[1] = (tsq_handler_entry){"SMS_TaskSequence_RunPowerShellScriptAction", h_plain, "full"};
    r.h[2] = (tsq_handler_entry){"BDD_Gather", h_plain, "custom"};
    r.h[3] = (tsq_handler_entry){"default", h_plain, "default"};
    r.opts.nhandlers = 4;
    CHECK(go(&r));
    CHECK_STR(hlog, "short:Cmd,full:PS,custom:Gather,default:Disk,");
    teardown(&r);

    CASE("no handler at all: every action succeeds with exit code 0 and no output");
    setup(&r, SEQ(CMD("A", "", "exit=5") GROUP("G", "", CMD("B", "", "fail=error"))));
    r.opts.handlers = NULL;
    r.opts.nhandlers = 0;
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11124@2 11134@3 11127@2 11143@0 11171@0");
    CHECK(rec_at(r.run, 1)->ExitCode == 0);
    CHECK_STR(rec_at(r.run, 1)->ActionOutput, "");
    CHECK(tsq_run_succeeded(r.run));
    teardown(&r);

    CASE("a step without a type is treated as Run Command Line");
    setup(&r, SEQ("<step name=\"Generic\" description=\"\"><action>cmd</action></step>"));
    r.h[0] = (tsq_handler_entry){"RunCommandLine", h_plain, "cmd"};
    CHECK(go(&r));
    CHECK_STR(hlog, "cmd:Generic,");
    teardown(&r);

    CASE("a handler reporting a timeout fails the step with ERROR_TIMEOUT");
    setup(&r, SEQ(STEP(RUNCMD, "Slow", " timeout=\"60\" successCodeList=\"0\"", "fail=limit", "<action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    CHECK(rec_at(r.run, 1)->ExitCode == 0x800705B4u);
    CHECK(strstr(rec_at(r.run, 1)->ActionOutput, "timeout of 60 seconds") != NULL);
    teardown(&r);

    CASE("a timeout the host reports for a step without Timeout: its own limit");
    setup(&r, SEQ(STEP(RUNCMD, "Slow", " successCodeList=\"0\"", "fail=limit", "<action>x</action>")));
    CHECK(go(&r));
    CHECK(rec_at(r.run, 1)->ExitCode == 0x800705B4u);
    CHECK_STR(rec_at(r.run, 1)->ActionOutput, "the step timed out");
    teardown(&r);

    CASE("a host clock that passes Timeout during the step fails it");
    setup(&r, SEQ(STEP(RUNCMD, "Slow", " timeout=\"60\" successCodeList=\"0\"", "tick=61", "<action>x</action>")
                  STEP(RUNCMD, "Quick", " timeout=\"60\" successCodeList=\"0\" continueOnError=\"true\"", "tick=60", "<action>x</action>")));
    r.opts.clock = t_clock;
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    teardown(&r);
    setup(&r, SEQ(STEP(RUNCMD, "Quick", " timeout=\"60\" successCodeList=\"0\"", "tick=60", "<action>x</action>")));
    r.opts.clock = t_clock;
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11143@0 11171@0");
    teardown(&r);
}

static void test_engine_variables(void) {
    runner r;
    CASE("engine variables after a successful step");
    setup(&r, SEQ(CMD("First", "", "see=_SMSTSCurrentActionName;see=_SMSTSPackageID;see=_SMSTSAdvertID;exit=3010")));
    r.opts.PackageID = "PS100123";
    r.opts.AdvertisementID = "PS120001";
    r.opts.ResourceID = 16777220;
    CHECK(go(&r));
    CHECK_STR(hlog, "First,[_SMSTSCurrentActionName=First][_SMSTSPackageID=PS100123][_SMSTSAdvertID=PS120001]");
    CHECK_STR(var(&r, "_SMSTSLastActionName"), "First");
    CHECK_STR(var(&r, "_SMSTSLastActionRetCode"), "3010");
    CHECK_STR(var(&r, "_SMSTSLastActionSucceeded"), "true");
    CASE("records carry the deployment's identity");
    for (size_t i = 0; i < tsq_run_record_count(r.run); i++) {
        CHECK_STR(rec_at(r.run, i)->PackageID, "PS100123");
        CHECK_STR(rec_at(r.run, i)->AdvertisementID, "PS120001");
        CHECK(rec_at(r.run, i)->ResourceID == 16777220);
    }
    teardown(&r);

    CASE("engine variables after a failed step and after a skipped one");
    setup(&r, SEQ(CMD("Bad", " continueOnError=\"true\"", "exit=2") CMDC("Skipped", "", "", VARCOND("Nope", "exists", ""))
                  CMD("Reader", "", "see=_SMSTSLastActionName;see=_SMSTSLastActionSucceeded;see=_SMSTSLastActionRetCode")));
    CHECK(go(&r));
    CHECK_STR(hlog, "Bad,Reader,[_SMSTSLastActionName=Bad][_SMSTSLastActionSucceeded=false][_SMSTSLastActionRetCode=2]");
    CHECK_STR(var(&r, "_SMSTSLastActionSucceeded"), "true");
    CHECK_STR(var(&r, "_SMSTSCurrentActionName"), "Reader");
    teardown(&r);

    CASE("groups do not touch the last-action variables");
    setup(&r, SEQ(CMD("A", "", "exit=3010") GROUP("G", "", "") GROUP("H", "", CMD("x", " disable=\"true\"", ""))));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11142@1 11124@2 11127@2 11124@3 11128@4 11127@3 11143@0 11171@0");
    CHECK_STR(var(&r, "_SMSTSLastActionName"), "A");
    CHECK_STR(var(&r, "_SMSTSLastActionRetCode"), "3010");
    teardown(&r);

    CASE("Check Readiness failing with 4316 is the handler's result");
    setup(&r, SEQ(STEP("SMS_TaskSequence_PrestartCheckAction", "Check Readiness", " successCodeList=\"0\"",
                       "exit=4316", "<action>x</action>")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    CHECK(rec_at(r.run, 1)->ExitCode == 4316);
    CHECK_STR(var(&r, "_SMSTSLastActionRetCode"), "4316");
    teardown(&r);

    CASE("engine variables after a Set Task Sequence Variable step");
    setup(&r, SEQ(SETVAR("Set it", "Color", "Red")));
    CHECK(go(&r));
    CHECK_STR(var(&r, "_SMSTSLastActionName"), "Set it");
    CHECK_STR(var(&r, "_SMSTSLastActionSucceeded"), "true");
    CHECK_STR(var(&r, "_SMSTSLastActionRetCode"), "0");
    teardown(&r);
}

static void test_action_variables(void) {
    runner r;
    CASE("visible defaults are in the environment while the step runs, then removed");
    setup(&r, SEQ(STEP(RUNCMD, "A", " successCodeList=\"0\"", "see=OSDDemo;see=CommandLine;see=Kept",
                       "<action>x</action><defaultVarList>" DVAR("CommandLine", "CommandLine", HIDDEN, "cmd /c")
                       DVAR("OSDDemo", "Demo", "", "default") DVAR("Kept", "Kept", "", "default") "</defaultVarList>")
                  CMD("B", "", "see=OSDDemo;see=Kept")));
    tsq_env_set(r.env, "Kept", "host");
    CHECK(go(&r));
    CHECK_STR(hlog, "A,[OSDDemo=default][CommandLine=(nil)][Kept=host]B,[OSDDemo=(nil)][Kept=host]");
    teardown(&r);

    CASE("a default the step changed persists");
    setup(&r, SEQ(STEP(RUNCMD, "A", " successCodeList=\"0\"", "set=OSDDemo=changed",
                       "<action>x</action><defaultVarList>" DVAR("OSDDemo", "Demo", "", "default") "</defaultVarList>")));
    CHECK(go(&r));
    CHECK_STR(var(&r, "OSDDemo"), "changed");
    teardown(&r);

    CASE("globalVarList values are set for the whole run unless defined");
    setup(&r, "<sequence version=\"3.10\"><globalVarList>" DVAR("OSDStateSMPRetryCount", "SMPRetryCount", "", "3")
              DVAR("Preset", "Preset", "", "doc") "</globalVarList>" CMD("A", "", "see=OSDStateSMPRetryCount;see=Preset")
              "</sequence>");
    tsq_env_set(r.env, "Preset", "host");
    CHECK(go(&r));
    CHECK_STR(hlog, "A,[OSDStateSMPRetryCount=3][Preset=host]");
    CHECK_STR(var(&r, "OSDStateSMPRetryCount"), "3");
    teardown(&r);
}

static void test_set_variable(void) {
    runner r;
    CASE("Set Task Sequence Variable expands %VAR% and needs no handler");
    setup(&r, SEQ(SETVAR("Base", "Server", "srv01") SETVAR("Path", "Share", "\\\\%Server%\\share %Undefined%")));
    r.h[0] = (tsq_handler_entry){"RunCommandLine", h_plain, "cmd"};
    CHECK(go(&r));
    CHECK_STR(var(&r, "Share"), "\\\\srv01\\share %Undefined%");
    CHECK_STR(sig(r.run), "11140@0 11134@1 11134@2 11143@0 11171@0");
    teardown(&r);

    CASE("Set Task Sequence Variable on a read-only name fails the step");
    setup(&r, SEQ(SETVAR("RO", "_SMSTSInWinPE", "true") CMD("After", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    CHECK(rec_at(r.run, 1)->ExitCode == 0x80070005u);
    CHECK(strstr(rec_at(r.run, 1)->ActionOutput, "read-only") != NULL);
    CHECK_STR(var(&r, "_SMSTSInWinPE"), "(nil)");
    CHECK_STR(var(&r, "_SMSTSLastActionSucceeded"), "false");
    teardown(&r);

    CASE("an empty value deletes the variable");
    setup(&r, SEQ(SETVAR("Clear", "Color", "")));
    CHECK(r.seq != NULL);
    tsq_env_set(r.env, "Color", "Red");
    CHECK(go(&r));
    CHECK_STR(var(&r, "Color"), "(nil)");
    teardown(&r);

    CASE("an explicit handler for Set Task Sequence Variable replaces the engine's own");
    setup(&r, SEQ(SETVAR("Set", "Color", "Red")));
    r.h[0] = (tsq_handler_entry){"SetVariable", h_plain, "mine"};
    CHECK(go(&r));
    CHECK_STR(hlog, "mine:Set,");
    CHECK_STR(var(&r, "Color"), "(nil)");
    teardown(&r);
}

#define LT "&lt;"
#define GT "&gt;"
#define RULE(cond, vars) LT "Rule" GT cond LT "Variables" GT vars LT "/Variables" GT LT "/Rule" GT
#define RVAR(name, value) LT "Variable Name=" Q name Q " IsSecret=" Q "false" Q GT value LT "/Variable" GT
#define RCOND(body) LT "condition" GT body LT "/condition" GT
#define REXPR(cls, vars) LT "expression type=" Q "SMS_TaskSequence_" cls Q GT vars LT "/expression" GT
#define RV(name, value) LT "variable name=" Q name Q GT value LT "/variable" GT

static void test_dynamic_variables(void) {
    runner r;
    CASE("Set Dynamic Variables: unconditional rules, make and model, variables; later matches overwrite");
    setup(&r, SEQ(DYNVARS("Dyn", LT "Rules" GT
        RULE("", RVAR("ChassisType", "Unknown") RVAR("IsVM", "False"))
        RULE(RCOND(REXPR("MakeModelConditionExpression", RV("Make", "*") RV("Model", "*VMware*"))),
             RVAR("IsVM", "True") RVAR("VMPlatform", "VMware"))
        RULE(RCOND(REXPR("MakeModelConditionExpression", RV("Make", "Dell*") RV("Model", "Latitude 7?20"))),
             RVAR("Dell", "yes"))
        RULE(RCOND(REXPR("VariableConditionExpression", RV("Operator", "equals") RV("Value", "True") RV("Variable", "IsVM"))),
             RVAR("Checked", "after-vm"))
        RULE(RCOND(REXPR("ComputerConditionExpression", RV("AssetTag", "") RV("MACAddress", "00:11:22:33:44:55")
                         RV("SerialNumber", "") RV("UUID", ""))), RVAR("ByMac", "yes"))
        RULE(RCOND(LT "operator type=" Q "not" Q GT REXPR("VariableConditionExpression", RV("Operator", "exists")
                   RV("Value", "") RV("Variable", "IsVM")) LT "/operator" GT), RVAR("Never", "set"))
        LT "/Rules" GT)
        CMD("Reader", "", "see=OSDSetDynamicVariablesRules")));
    tsq_env_set(r.env, "_SMSTSMake", "VMware, Inc.");
    tsq_env_set(r.env, "_SMSTSModel", "VMware Virtual Platform");
    tsq_env_set(r.env, "_SMSTSMacAddresses", "AA:BB:CC:DD:EE:FF, 00:11:22:33:44:55");
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11134@2 11143@0 11171@0");
    CHECK_STR(var(&r, "ChassisType"), "Unknown");
    CHECK_STR(var(&r, "IsVM"), "True");
    CHECK_STR(var(&r, "VMPlatform"), "VMware");
    CHECK_STR(var(&r, "Dell"), "(nil)");
    CHECK_STR(var(&r, "Checked"), "after-vm");
    CHECK_STR(var(&r, "ByMac"), "yes");
    CHECK_STR(var(&r, "Never"), "(nil)");
    CHECK_STR(hlog, "Reader,[OSDSetDynamicVariablesRules=(nil)]");
    teardown(&r);

    CASE("Set Dynamic Variables: make and model wildcards with ?");
    setup(&r, SEQ(DYNVARS("Dyn", LT "Rules" GT
        RULE(RCOND(REXPR("MakeModelConditionExpression", RV("Make", "dell*") RV("Model", "Latitude 7?20"))),
             RVAR("Dell", "yes")) LT "/Rules" GT)));
    tsq_env_set(r.env, "_SMSTSMake", "Dell Inc.");
    tsq_env_set(r.env, "_SMSTSModel", "Latitude 7420");
    CHECK(go(&r));
    CHECK_STR(var(&r, "Dell"), "yes");
    teardown(&r);

    CASE("Set Dynamic Variables: a read-only variable fails the step");
    setup(&r, SEQ(DYNVARS("Dyn", LT "Rules" GT RULE("", RVAR("_SMSTSModel", "x")) LT "/Rules" GT)));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    CHECK(strstr(rec_at(r.run, 1)->ActionOutput, "read-only") != NULL);
    teardown(&r);

    CASE("Set Dynamic Variables: malformed rules and DTDs fail the step, nothing is expanded");
    setup(&r, SEQ(DYNVARS("Dyn", LT "Rules" GT LT "Rule" GT) CMD("B", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    teardown(&r);
    setup(&r, SEQ(DYNVARS("Dyn", LT "!DOCTYPE Rules [" LT "!ENTITY x " Q "boom" Q GT "]" GT LT "Rules" GT
                                 RULE("", RVAR("A", "&amp;x;")) LT "/Rules" GT)));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    CHECK_STR(var(&r, "A"), "(nil)");
    teardown(&r);
}

/* ------------------------------------------------------------------ sub-sequences */

static const char *child_xml = SEQ(CMD("C1", "", "set=FromChild=1") GROUP("CG", "", CMD("C2", "", "")));
static const char *recursive_xml = SEQ(SUBTS("Again", "PS1REC"));
static const char *failing_xml = SEQ(CMD("F1", "", "exit=8;out=broken") CMD("F2", "", ""));

static tsq_status loader(void *ud, const char *pkg, const char *name, tsq_node **out, tsq_buf *msg) {
    (void)ud;
    logf_("load:");
    logf_(pkg);
    logf_("/");
    logf_(name ? name : "(null)");
    logf_(",");
    if (strcmp(pkg, "PS100200") == 0) return (*out = parse(child_xml)) ? TSQ_OK : TSQ_EPARSE;
    if (strcmp(pkg, "PS100300") == 0) return (*out = parse(failing_xml)) ? TSQ_OK : TSQ_EPARSE;
    if (strcmp(pkg, "PS1REC") == 0) return (*out = parse(recursive_xml)) ? TSQ_OK : TSQ_EPARSE;
    tsq_buf_adds(msg, "package not in the content library");
    return TSQ_ENOTFOUND;
}

static void test_subsequence(void) {
    runner r;
    CASE("Run Task Sequence runs the child's steps inline, in the same environment");
    setup(&r, SEQ(CMD("P1", "", "") SUBTS("Child", "PS100200") CMD("P2", "", "see=FromChild")));
    r.opts.loader = loader;
    CHECK(go(&r));
    CHECK_STR(hlog, "P1,load:PS100200/PS100200, Child,C1,C2,P2,[FromChild=1]");
    /* parent: P1=1 Child=2 P2=3; child numbered after: C1=4 CG=5 C2=6 */
    CHECK_STR(sig(r.run), "11140@0 11134@1 11134@4 11124@5 11134@6 11127@5 11134@2 11134@3 11143@0 11171@0");
    CHECK_STR(rec_at(r.run, 2)->GroupName, "Child");
    CHECK_STR(rec_at(r.run, 4)->GroupName, "CG");
    CHECK_STR(rec_at(r.run, 6)->ActionName, "Child");
    teardown(&r);

    CASE("Run Task Sequence without a loader fails the step with a message");
    setup(&r, SEQ(SUBTS("Child", "PS100200")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    CHECK(strstr(rec_at(r.run, 1)->ActionOutput, "no loader") != NULL);
    teardown(&r);

    CASE("a loader failure fails the step with the loader's message");
    setup(&r, SEQ(SUBTS("Missing", "PS999999")));
    r.opts.loader = loader;
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11141@0 11170@0");
    CHECK(strstr(rec_at(r.run, 1)->ActionOutput, "package not in the content library") != NULL);
    CHECK(rec_at(r.run, 1)->ExitCode == 0x80070002u);
    teardown(&r);

    CASE("a sequence that runs itself stops at the depth limit");
    setup(&r, recursive_xml);
    r.opts.loader = loader;
    CHECK(go(&r));
    CHECK(!tsq_run_succeeded(r.run));
    const tsq_record *first_fail = find_rec(r.run, 11135, "Again");
    CHECK(first_fail && strstr(first_fail->ActionOutput, "nested more than 16 deep") != NULL);
    CHECK(tsq_run_record_count(r.run) == 1 + 17 + 2);
    teardown(&r);

    CASE("a failure inside the child fails the Run Task Sequence step; its ContinueOnError applies");
    setup(&r, "<sequence version=\"3.10\"><subtasksequence type=\"SMS_TaskSequence_SubTasksequence\" name=\"Child\""
              " description=\"\" continueOnError=\"true\" successCodeList=\"0\"><action>SubTasksequence.exe</action>"
              "<defaultVarList>" DVAR("OSDSubTasksequencePackageID", "TsPackageID", "", "PS100300") "</defaultVarList>"
              "</subtasksequence>" CMD("After", "", "see=_SMSTSLastActionName;see=_SMSTSLastActionSucceeded") "</sequence>");
    r.opts.loader = loader;
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@3 11135@1 11138@1 11134@2 11143@0 11171@0");
    CHECK_STR(rec_at(r.run, 1)->ActionOutput, "broken");
    CHECK(rec_at(r.run, 2)->ExitCode == 8);
    CHECK(strstr(rec_at(r.run, 2)->ActionOutput, "task sequence PS100300 failed") != NULL);
    CHECK_STR(hlog, "load:PS100300/(null),F1,After,[_SMSTSLastActionName=Child][_SMSTSLastActionSucceeded=false]");
    CHECK(tsq_run_succeeded(r.run));
    teardown(&r);

    CASE("a package id set before the step overrides the step's default");
    setup(&r, SEQ(SUBTS("Child", "PS100300")));
    tsq_env_set(r.env, "OSDSubTasksequencePackageID", "PS100200");
    r.opts.loader = loader;
    CHECK(go(&r));
    CHECK(tsq_run_succeeded(r.run));
    CHECK(strncmp(hlog, "load:PS100200/", 14) == 0);
    teardown(&r);
}

/* ------------------------------------------------------------------ environment */

static void test_environment(void) {
    runner r;
    const char *xml = SEQ(STEP(RUNCMD, "PEOnly", " runIn=\"WinPE\" continueOnError=\"true\"", "", "<action>x</action>")
                          STEP(RUNCMD, "OSOnly", " runIn=\"FullOS\" continueOnError=\"true\"", "", "<action>x</action>")
                          STEP(RUNCMD, "Both", " runIn=\"WinPEandFullOS\"", "", "<action>x</action>"));
    CASE("in WinPE a FullOS-only action fails");
    setup(&r, xml);
    tsq_env_set(r.env, "_SMSTSInWinPE", "true");
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11134@1 11135@2 11138@2 11134@3 11143@0 11171@0");
    CHECK_STR(hlog, "PEOnly,Both,");
    CHECK(rec_at(r.run, 2)->ExitCode == 0x80070032u);
    CHECK(strstr(rec_at(r.run, 2)->ActionOutput, "full operating system") != NULL);
    teardown(&r);
    CASE("in the full OS a WinPE-only action fails");
    setup(&r, xml);
    tsq_env_set(r.env, "_SMSTSInWinPE", "false");
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11135@1 11138@1 11134@2 11134@3 11143@0 11171@0");
    CHECK_STR(hlog, "OSOnly,Both,");
    teardown(&r);
    CASE("with _SMSTSInWinPE undefined nothing is checked");
    setup(&r, xml);
    CHECK(go(&r));
    CHECK_STR(hlog, "PEOnly,OSOnly,Both,");
    teardown(&r);
}

/* ------------------------------------------------------------------ records */

static void test_records(void) {
    runner r;
    CASE("step numbering: depth first, groups before children, 0 for the sequence");
    setup(&r, SEQ(GROUP("A", "", CMD("a1", "", "") GROUP("B", "", CMD("b1", "", "") CMD("b2", "", "")) CMD("a2", "", ""))
                  CMD("top", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11124@1 11134@2 11124@3 11134@4 11134@5 11127@3 11134@6 11127@1 11134@7 11143@0 11171@0");
    CASE("GroupName is the containing group, \"\" at top level");
    CHECK_STR(find_rec(r.run, 11134, "a1")->GroupName, "A");
    CHECK_STR(find_rec(r.run, 11134, "b2")->GroupName, "B");
    CHECK_STR(find_rec(r.run, 11134, "a2")->GroupName, "A");
    CHECK_STR(find_rec(r.run, 11134, "top")->GroupName, "");
    CASE("default clock: 2000-01-01 00:00:00 UTC, one second per record, DMTF text");
    CHECK_STR(rec_at(r.run, 0)->ExecutionTime, "20000101000000.000000+000");
    CHECK(rec_at(r.run, 0)->ExecutionTimeUnix == 946684800);
    CHECK_STR(rec_at(r.run, 11)->ExecutionTime, "20000101000011.000000+000");
    CHECK(rec_at(r.run, 11)->ExecutionTimeUnix == 946684811);
    teardown(&r);

    CASE("a host clock gives the times");
    setup(&r, SEQ(CMD("A", "", "")));
    r.opts.clock = t_clock;
    tclock = 1709251199; /* 2024-02-29 23:59:59 */
    CHECK(go(&r));
    CHECK_STR(rec_at(r.run, 0)->ExecutionTime, "20240229235959.000000+000");
    teardown(&r);

    CASE("a failure in a nested group fails every group up to the root");
    setup(&r, SEQ(GROUP("Outer", "", GROUP("Inner", "", CMD("x", "", "exit=3") CMD("y", "", "")) CMD("z", "", ""))
                  CMD("w", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11124@1 11124@2 11135@3 11122@2 11122@1 11141@0 11170@0");
    CHECK(rec_at(r.run, 5)->ExitCode == 3);
    CHECK_STR(hlog, "x,");
    teardown(&r);

    CASE("a group with ContinueOnError: failed, ignored, and the run goes on");
    setup(&r, SEQ(GROUP("G", " continueOnError=\"true\"", CMD("x", "", "exit=3") CMD("y", "", "")) CMD("w", "", "")));
    CHECK(go(&r));
    CHECK_STR(sig(r.run), "11140@0 11124@1 11135@2 11122@1 11139@1 11134@4 11143@0 11171@0");
    CHECK(tsq_run_succeeded(r.run));
    teardown(&r);

    CASE("records own their strings");
    setup(&r, SEQ(CMD("Name", "", "out=text")));
    CHECK(go(&r));
    tsq_node_set_name(tsq_node_first(r.seq), "Renamed");
    CHECK_STR(rec_at(r.run, 1)->ActionName, "Name");
    CHECK_STR(rec_at(r.run, 1)->ActionOutput, "text");
    teardown(&r);
}

static void test_misuse(void) {
    tsq_run *run = (tsq_run *)1;
    tsq_error err;
    CASE("misuse is reported, never crashes");
    CHECK(tsq_run_sequence(NULL, NULL, &run, &err) == TSQ_EINVAL);
    CHECK(run == NULL);
    tsq_node *g = tsq_group_new(ctx, "G");
    CHECK(tsq_run_sequence(g, NULL, &run, &err) == TSQ_EINVAL);
    CHECK(strstr(err.message, "sequence") != NULL);
    tsq_node_release(g);
    tsq_node *seq = parse(SEQ(CMD("A", "", "")));
    CHECK(tsq_run_sequence(seq, NULL, NULL, &err) == TSQ_EINVAL);
    tsq_handler_entry bad = {"default", NULL, NULL};
    tsq_run_opts o;
    memset(&o, 0, sizeof o);
    o.handlers = &bad;
    o.nhandlers = 1;
    CHECK(tsq_run_sequence(seq, &o, &run, &err) == TSQ_EINVAL);
    CASE("no options: a private environment, no handlers");
    CHECK(tsq_run_sequence(seq, NULL, &run, &err) == TSQ_OK);
    CHECK(tsq_run_succeeded(run));
    CHECK_STR(sig(run), "11140@0 11134@1 11143@0 11171@0");
    CHECK(tsq_run_record(run, 99) == NULL);
    tsq_run_free(run);
    tsq_node_release(seq);
    CASE("accessors accept NULL");
    CHECK(tsq_run_succeeded(NULL) == 0);
    CHECK(tsq_run_record_count(NULL) == 0);
    CHECK(tsq_run_record(NULL, 0) == NULL);
    tsq_run_free(NULL);
}

/* ------------------------------------------------------------------ out of memory */

static long alloc_budget = -1; /* allocations left; -1 unlimited */
static long size_mismatches;  /* frees or reallocs told a size other than the block's */

/* Keeps each block's size in front of it to check the osize the library passes. */
static void *fail_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    size_t *p = ptr ? (size_t *)ptr - 2 : NULL;
    if (p && p[0] != osize) size_mismatches++;
    if (nsize == 0) {
        free(p);
        return NULL;
    }
    if (alloc_budget == 0) return NULL;
    if (alloc_budget > 0) alloc_budget--;
    size_t *q = realloc(p, nsize + 2 * sizeof(size_t));
    if (!q) return NULL;
    q[0] = nsize;
    return q + 2;
}

static void test_oom(void) {
    CASE("out of memory at any allocation: ENOMEM or a complete run, nothing leaks");
    tsq_ctx *c = tsq_ctx_new(fail_alloc, NULL);
    tsq_node *seq = NULL;
    const char *xml = SEQ(GROUP("G", "", CMD("A", "", "out=some output;set=X=1") SETVAR("S", "V", "%X%"))
                          DYNVARS("D", LT "Rules" GT RULE("", RVAR("Y", "2")) LT "/Rules" GT)
                          STEP(RUNCMD, "B", " successCodeList=\"0\"", "",
                               "<action>x</action><defaultVarList>" DVAR("OSDDemo", "Demo", "", "v") "</defaultVarList>"));
    CHECK(tsq_parse(c, xml, strlen(xml), "oom", &seq, NULL) == TSQ_OK);
    tsq_handler_entry h = {"default", h_script, NULL};
    int completed = 0, nomem = 0, other = 0;
    for (long budget = 0; budget < 400 && !completed; budget++) {
        tsq_env *env = tsq_env_new(c);
        tsq_run_opts o;
        memset(&o, 0, sizeof o);
        o.env = env;
        o.handlers = &h;
        o.nhandlers = 1;
        tsq_run *run = NULL;
        alloc_budget = budget;
        tsq_status st = tsq_run_sequence(seq, &o, &run, NULL);
        alloc_budget = -1;
        if (st == TSQ_OK && run) completed = tsq_run_record_count(run) > 0;
        else if (st == TSQ_ENOMEM && !run) nomem++;
        else other++;
        tsq_run_free(run);
        tsq_env_free(env);
    }
    CHECK(completed);
    CHECK(nomem > 0);
    CHECK(other == 0);
    tsq_node_release(seq);
    tsq_ctx_free(c);
    CASE("every block goes back to the allocator with its size");
    CHECK(size_mismatches == 0);
}

/* ------------------------------------------------------------------ scale
 * A 100,000-step run: every record present and numbered. Its speed is measured by
 * `make bench` (bench/bench_core.c), never asserted here. */

static void test_speed(void) {
    CASE("100,000 steps: every record present and numbered");
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    tsq_buf_adds(&b, "<sequence version=\"3.10\">");
    for (int g = 0; g < 100; g++) {
        tsq_buf_adds(&b, GROUP("G", "", ""));
        b.len -= strlen("</group>");
        for (int s = 0; s < 999; s++)
            tsq_buf_adds(&b, s % 10 == 0 ? CMDC("S", "", "", VARCOND("Mode", "notEquals", "x")) : CMD("S", "", ""));
        tsq_buf_adds(&b, "</group>");
    }
    tsq_buf_adds(&b, "</sequence>");
    tsq_node *seq = parse(b.data);
    tsq_buf_free(&b);
    CHECK(seq != NULL);
    if (!seq) return;
    tsq_env *env = tsq_env_new(ctx);
    tsq_env_set(env, "Mode", "y");
    tsq_run_opts o;
    memset(&o, 0, sizeof o);
    o.env = env;
    tsq_run *run = NULL;
    CHECK(tsq_run_sequence(seq, &o, &run, NULL) == TSQ_OK);
    CHECK(tsq_run_succeeded(run));
    CHECK(tsq_run_record_count(run) == 1 + 100 * 2 + 99900 + 2);
    CHECK(tsq_run_record(run, tsq_run_record_count(run) - 4)->Step == 100000);
    tsq_run_free(run);
    tsq_env_free(env);
    tsq_node_release(seq);
}

/* ------------------------------------------------------------------ corpus */

static tsq_status no_wmi(void *ud, const char *ns, const char *q, long *rows) {
    (void)ud, (void)ns, (void)q;
    *rows = 0;
    return TSQ_OK;
}
static tsq_status no_file(void *ud, const char *p, tsq_file_fact *out) {
    (void)ud, (void)p;
    memset(out, 0, sizeof *out);
    return TSQ_OK;
}
static tsq_status no_reg(void *ud, const char *k, const char *v, tsq_reg_fact *out) {
    (void)ud, (void)k, (void)v;
    memset(out, 0, sizeof *out);
    return TSQ_OK;
}
static tsq_status no_sw(void *ud, const char *code, int upgrade, int *installed, const char **version) {
    (void)ud, (void)code, (void)upgrade;
    *installed = 0;
    *version = NULL;
    return TSQ_OK;
}

static tsq_status fail_loader(void *ud, const char *pkg, const char *name, tsq_node **out, tsq_buf *msg) {
    (void)ud, (void)pkg, (void)name, (void)out;
    tsq_buf_adds(msg, "not available");
    return TSQ_ENOTFOUND;
}

/* Checks one run's records for consistency; returns 1 when all hold. */
static int consistent(const tsq_node *seq, const tsq_run *run, char *why, size_t whylen) {
    size_t n = tsq_run_record_count(run);
    uint32_t total = 0;
    for (const tsq_node *s = tsq_node_walk(seq, NULL); s; s = tsq_node_walk(seq, s)) total++;
#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); return 0; } while (0)
    if (n < 3) BAD("only %zu records", n);
    if (tsq_run_record(run, 0)->LastStatusMsgID != 11140) BAD("no start record");
    uint32_t last = tsq_run_record(run, n - 2)->LastStatusMsgID, mgr = tsq_run_record(run, n - 1)->LastStatusMsgID;
    if (tsq_run_succeeded(run) ? (last != 11143 || mgr != 11171) : (last != 11141 || mgr != 11170))
        BAD("end records %u %u", (unsigned)last, (unsigned)mgr);
    uint32_t stack[300];
    int open = 0, pending_fail = 0;
    for (size_t i = 0; i < n; i++) {
        const tsq_record *r = tsq_run_record(run, i);
        uint32_t id = r->LastStatusMsgID;
        if (!tsq_status_message_name(id) || strcmp(tsq_status_message_name(id), r->LastStatusMsgName) != 0)
            BAD("record %zu: unknown id %u", i, (unsigned)id);
        if (r->Step > total) BAD("record %zu: step %u > %u", i, (unsigned)r->Step, (unsigned)total);
        if ((r->Step == 0) != (id == 11140 || id == 11141 || id == 11143 || id == 11170 || id == 11171))
            BAD("record %zu: step %u for %u", i, (unsigned)r->Step, (unsigned)id);
        /* a group whose condition can not be evaluated fails (11122) without being entered */
        if (id == 11124) {
            if (open == 300) BAD("record %zu: too deep", i);
            stack[open++] = r->Step;
        }
        if (id == 11127 && (!open || stack[open - 1] != r->Step)) BAD("record %zu: 11127 without 11124", i);
        if ((id == 11127 || id == 11122) && open && stack[open - 1] == r->Step) open--;
        if (id == 11138 && (i == 0 || tsq_run_record(run, i - 1)->LastStatusMsgID != 11135 ||
                            tsq_run_record(run, i - 1)->Step != r->Step))
            BAD("record %zu: 11138 not after 11135", i);
        if (id == 11139 && (i == 0 || tsq_run_record(run, i - 1)->LastStatusMsgID != 11122))
            BAD("record %zu: 11139 not after 11122", i);
        if (id == 11135 && (i + 1 >= n || tsq_run_record(run, i + 1)->LastStatusMsgID != 11138)) pending_fail = 1;
        if (!r->ExecutionTime || strlen(r->ExecutionTime) != 25) BAD("record %zu: time", i);
    }
    if (open != 0) BAD("%d groups not closed", open);
    if (tsq_run_succeeded(run) && pending_fail) BAD("succeeded with an unmasked failure");
    /* every action reached gets a result record */
    for (const tsq_node *s = tsq_node_walk(seq, NULL); s; s = tsq_node_walk(seq, s)) {
        if (tsq_node_kind(s) != TSQ_ACTION || !tsq_run_succeeded(run)) continue;
        const tsq_node *p = s;
        int reached = 1;
        for (; p && tsq_node_kind(p) != TSQ_SEQUENCE; p = tsq_node_parent(p))
            if (!tsq_node_enabled(p)) reached = 0;
        if (!reached) continue;
        int found = 0;
        for (size_t i = 0; i < n && !found; i++) {
            const tsq_record *r = tsq_run_record(run, i);
            found = strcmp(r->ActionName, tsq_node_name(s)) == 0 || r->LastStatusMsgID == 11131;
        }
        if (!found) BAD("action \"%s\" has no record", tsq_node_name(s));
    }
#undef BAD
    return 1;
}

static void test_corpus(void) {
    const char *shared = h_shared();
    CASE("every real document runs to the end with consistent records");
    if (!shared) {
        fprintf(stderr, "corpus not found (TSQ_SHARED): skipped\n");
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/corpus/real", shared);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return;
    int docs = 0, ok = 0, succeeded = 0;
    tsq_provider prov = {no_wmi, no_file, no_file, no_reg, no_sw, NULL};
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".xml") != 0) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        tsq_node *seq = NULL;
        tsq_error err;
        memset(&err, 0, sizeof err);
        if (tsq_load(ctx, path, &seq, &err) != TSQ_OK) {
            fprintf(stderr, "%s: %s\n", de->d_name, err.message);
            CHECK(!"load");
            continue;
        }
        docs++;
        tsq_env *env = tsq_env_new(ctx);
        tsq_env_set_provider(env, &prov);
        tsq_run_opts o;
        memset(&o, 0, sizeof o);
        o.env = env;
        o.loader = fail_loader;
        o.PackageID = "PS100001";
        o.AdvertisementID = "PS120001";
        tsq_run *run = NULL;
        if (tsq_run_sequence(seq, &o, &run, &err) == TSQ_OK) {
            char why[256] = "";
            if (consistent(seq, run, why, sizeof why)) ok++;
            else fprintf(stderr, "%s: %s\n", de->d_name, why);
            succeeded += tsq_run_succeeded(run);
        } else {
            fprintf(stderr, "%s: run: %s\n", de->d_name, err.message);
        }
        tsq_run_free(run);
        tsq_env_free(env);
        tsq_node_release(seq);
    }
    closedir(d);
    CHECK(docs >= 51);
    CHECK(ok == docs);
    CHECK(succeeded > docs / 2);
    fprintf(stderr, "corpus: %d documents, %d consistent, %d succeeded\n", docs, ok, succeeded);
}

int main(void) {
    ctx = tsq_ctx_new(NULL, NULL);
    test_messages();
    test_empty();
    test_worked_example();
    test_disabled();
    test_conditions();
    test_success_codes();
    test_reboots();
    test_handlers();
    test_engine_variables();
    test_action_variables();
    test_set_variable();
    test_dynamic_variables();
    test_subsequence();
    test_environment();
    test_records();
    test_misuse();
    test_oom();
    test_speed();
    test_corpus();
    tsq_ctx_free(ctx);
    DONE();
}
