/* test_validate.c - tsq_validate: catalogue checks, console limits, environments. */
#include "harness.h"
#include "tsq.h"

static tsq_ctx *ctx;
static char got[64][400];
static int ngot;

static void collect(void *ud, const tsq_problem *p) {
    (void)ud;
    if (ngot < 64)
        snprintf(got[ngot++], sizeof got[0], "%s %s%s%s: %s", p->severity == TSQ_SEV_ERROR ? "E" : "W",
                 tsq_node_name(p->step), p->property ? "." : "", p->property ? p->property : "", p->message);
}

static size_t run(const tsq_node *seq) {
    ngot = 0;
    return tsq_validate(seq, collect, NULL);
}

static int has(const char *s) {
    for (int i = 0; i < ngot; i++)
        if (strcmp(got[i], s) == 0) return 1;
    fprintf(stderr, "  missing: %s\n  problems:\n", s);
    for (int i = 0; i < ngot; i++) fprintf(stderr, "    %s\n", got[i]);
    return 0;
}

static tsq_node *doc(const char *body) {
    char text[8192];
    snprintf(text, sizeof text, "<sequence version=\"3.10\">%s</sequence>", body);
    tsq_node *s = NULL;
    tsq_error err;
    if (tsq_parse(ctx, text, strlen(text), "test", &s, &err) != TSQ_OK) fprintf(stderr, "parse: %s\n", err.message);
    return s;
}

#define RCL(name, attrs, vars)                                                                     \
    "<step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"" name "\" description=\"\" " attrs \
    " successCodeList=\"0 3010\" retryCount=\"0\" runFromNet=\"false\"><action>smsswd.exe /run: x</action>" \
    "<defaultVarList><variable name=\"CommandLine\" property=\"CommandLine\" hidden=\"true\">x</variable>" vars \
    "<variable name=\"SuccessCodes\" property=\"SuccessCodes\" hidden=\"true\">0 3010</variable></defaultVarList></step>"
#define WOW(v) "<variable name=\"SMSTSDisableWow64Redirection\" property=\"DisableWow64Redirection\">" v "</variable>"
#define INWINPE(v)                                                                                      \
    "<condition><expression type=\"SMS_TaskSequence_VariableConditionExpression\"><variable name=\"Operator\">equals</variable>" \
    "<variable name=\"Value\">" v "</variable><variable name=\"Variable\">_SMSTSInWinPE</variable></expression></condition>"

static void test_clean(void) {
    CASE("a well-formed document has no problems");
    tsq_node *s = doc(RCL("A", "runIn=\"WinPEandFullOS\"", WOW("false")));
    CHECK(s && run(s) == 0 && ngot == 0);
    tsq_node_release(s);

    CASE("new actions of every class: only the properties a user must fill");
    s = tsq_sequence_new(ctx);
    tsq_error err;
    for (size_t i = 0; i < tsq_class_count(); i++) {
        tsq_node *a = NULL;
        CHECK(tsq_action_new(ctx, tsq_class_at(i)->short_name, NULL, &a, &err) == TSQ_OK);
        tsq_node_insert(s, (size_t)-1, a, &err);
        tsq_node_release(a);
    }
    run(s);
    for (int i = 0; i < ngot; i++) CHECK(strstr(got[i], "is missing") || strstr(got[i], "is empty"));
    CHECK(has("E Run Command Line.CommandLine: CommandLine is empty"));
    CHECK(has("E Join Domain or Workgroup.Type: required property Type is missing"));
    tsq_value v = {TSQ_V_STRING, 0, 0, "ipconfig", 8};
    tsq_node *rcl = tsq_node_first(s);
    CHECK(tsq_prop_set(rcl, "CommandLine", &v, &err) == TSQ_OK);
    run(s);
    for (int i = 0; i < ngot; i++) CHECK(strncmp(got[i], "E Run Command Line", 18) != 0);
    tsq_node_release(s);
}

typedef struct vcase {
    const char *label, *body;
    size_t errors;
    const char *expect; /* one of the problems */
} vcase;

static void test_table(void) {
    const vcase cases[] = {
        {"a boolean holding yes", RCL("A", "runIn=\"WinPEandFullOS\"", WOW("yes")), 1,
         "E A.DisableWow64Redirection: DisableWow64Redirection must be true or false (got \"yes\")"},
        {"booleans in any case", RCL("A", "runIn=\"WinPEandFullOS\"", WOW("False")), 0, NULL},
        {"a missing required variable", RCL("A", "runIn=\"WinPEandFullOS\"", ""), 1,
         "E A.DisableWow64Redirection: required property DisableWow64Redirection is missing"},
        {"a value outside the allowed set", RCL("A", "runIn=\"Moon\"", WOW("false")), 1,
         "E A.SupportedEnvironment: SupportedEnvironment must be one of WinPE|FullOS|WinPEandFullOS (got \"Moon\")"},
        {"a missing runIn is a warning", RCL("A", "", WOW("false")), 0,
         "W A.SupportedEnvironment: required property SupportedEnvironment is missing"},
        {"a timeout that is not a number", RCL("A", "timeout=\"soon\" runIn=\"WinPE\"", WOW("false")), 1,
         "E A.Timeout: Timeout must be an integer (got \"soon\")"},
        {"a variable the class does not have", RCL("A", "runIn=\"WinPE\"", WOW("false") "<variable name=\"X\" property=\"Colour\">red</variable>"), 0,
         "W A.Colour: RunCommandLine has no property Colour"},
        {"a name over 50 characters", RCL("123456789012345678901234567890123456789012345678901", "runIn=\"WinPE\"", WOW("false")), 0,
         "W 123456789012345678901234567890123456789012345678901: the name has 51 characters; the console allows 50"},
        {"a name over 100 characters",
         RCL("12345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901", "runIn=\"WinPE\"", WOW("false")), 1,
         "E 12345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901: the name has 101 characters; the limit is 100"},
        {"no name", RCL("", "runIn=\"WinPE\"", WOW("false")), 1, "E : the step has no name"},
        {"duplicate names in one group",
         "<group name=\"G\" description=\"\">" RCL("A", "runIn=\"WinPE\"", WOW("false")) RCL("A", "runIn=\"WinPE\"", WOW("false")) "</group>"
         RCL("A", "runIn=\"WinPE\"", WOW("false")), 0, "W A: another step in this group is also named \"A\""},
        {"success codes that are not numbers",
         "<step type=\"SMS_TaskSequence_RebootAction\" name=\"R\" description=\"\" runIn=\"WinPEandFullOS\" successCodeList=\"0;1\" retryCount=\"0\" runFromNet=\"false\"><action>smsboot.exe /target:HD</action>"
         "<defaultVarList><variable name=\"SMSRebootTarget\" property=\"Target\" hidden=\"true\">HD</variable></defaultVarList></step>", 1,
         "E R.SuccessCodes: SuccessCodes must be exit codes separated by spaces (got \"0;1\")"},
        {"a target outside HD|WinPE",
         "<step type=\"SMS_TaskSequence_RebootAction\" name=\"R\" description=\"\" runIn=\"WinPEandFullOS\" successCodeList=\"0\" retryCount=\"0\" runFromNet=\"false\"><action>smsboot.exe /target:CD</action>"
         "<defaultVarList><variable name=\"SMSRebootTarget\" property=\"Target\" hidden=\"true\">CD</variable></defaultVarList></step>", 1,
         "E R.Target: Target must be one of HD|WinPE (got \"CD\")"},
        {"success codes that disagree with the attribute",
         "<step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"A\" description=\"\" runIn=\"WinPE\" successCodeList=\"0\" retryCount=\"0\" runFromNet=\"false\"><action>x</action>"
         "<defaultVarList><variable name=\"CommandLine\" property=\"CommandLine\" hidden=\"true\">x</variable>" WOW("false")
         "<variable name=\"SuccessCodes\" property=\"SuccessCodes\" hidden=\"true\">0 3010</variable></defaultVarList></step>", 0,
         "W A.SuccessCodes: SuccessCodes is \"0 3010\" but the step attribute says \"0\""},
        {"an integer outside its documented range",
         "<step type=\"SMS_TaskSequence_RequestStateStoreAction\" name=\"S\" description=\"\" runIn=\"WinPEandFullOS\" successCodeList=\"0\" retryCount=\"0\" runFromNet=\"false\"><action>osdsmpclient.exe /capture</action>"
         "<defaultVarList><variable name=\"OSDStateRequestType\" property=\"RequestType\" hidden=\"true\">capture</variable>"
         "<variable name=\"OSDStateSMPRetryCount\" property=\"SMPRetryCount\" hidden=\"true\">99</variable></defaultVarList></step>", 0,
         "W S.SMPRetryCount: SMPRetryCount is 99, outside 0-30"},
        {"a WinPE-only step under a group that requires the full OS",
         "<group name=\"Full OS\" description=\"\">" INWINPE("false") "<group name=\"Inner\" description=\"\">"
         RCL("PE", "runIn=\"WinPE\"", WOW("false")) RCL("Both", "runIn=\"WinPEandFullOS\"", WOW("false")) "</group></group>", 1,
         "E PE.SupportedEnvironment: the step runs only in windows pe but the condition of group \"Full OS\" requires the full os"},
        {"a full-OS step whose own condition requires WinPE",
         "<step type=\"SMS_TaskSequence_JoinDomainWorkgroupAction\" name=\"J\" description=\"\" runIn=\"FullOS\" successCodeList=\"0\" retryCount=\"0\" runFromNet=\"false\">" INWINPE("TRUE")
         "<action>osdjoin.exe /type:%OSDJoinType%</action><defaultVarList><variable name=\"OSDJoinType\" property=\"Type\">1</variable></defaultVarList></step>", 1,
         "E J.SupportedEnvironment: the step runs only in the full os but its condition requires windows pe"},
        {"an or operator decides nothing",
         "<group name=\"G\" description=\"\"><condition><operator type=\"or\"><expression type=\"SMS_TaskSequence_VariableConditionExpression\"><variable name=\"Operator\">equals</variable>"
         "<variable name=\"Value\">false</variable><variable name=\"Variable\">_SMSTSInWinPE</variable></expression></operator></condition>"
         RCL("PE", "runIn=\"WinPE\"", WOW("false")) "</group>", 0, NULL},
        {"an and operator does",
         "<group name=\"G\" description=\"\"><condition><operator type=\"and\"><expression type=\"SMS_TaskSequence_VariableConditionExpression\"><variable name=\"Operator\">notEquals</variable>"
         "<variable name=\"Value\">true</variable><variable name=\"Variable\">_SMSTSInWinPE</variable></expression></operator></condition>"
         RCL("PE", "runIn=\"WinPE\"", WOW("false")) "</group>", 1,
         "E PE.SupportedEnvironment: the step runs only in windows pe but the condition of group \"G\" requires the full os"},
        {"uncatalogued steps: only the common checks",
         "<step type=\"BDD_Gather\" name=\"Gather\" description=\"\" runIn=\"WinPEandFullOS\" successCodeList=\"0\" retryCount=\"0\" runFromNet=\"false\"><action>cscript.exe x</action>"
         "<defaultVarList><variable name=\"GatherLocalOnly\" property=\"GatherLocalOnly\">maybe</variable></defaultVarList></step>", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CASE(cases[i].label);
        tsq_node *s = doc(cases[i].body);
        CHECK(s != NULL);
        if (!s) continue;
        size_t e = run(s);
        CHECK(e == cases[i].errors);
        if (cases[i].expect) CHECK(has(cases[i].expect));
        else CHECK(ngot == 0);
        tsq_node_release(s);
    }
    CASE("no callback: still counts");
    tsq_node *s = doc(RCL("A", "runIn=\"WinPEandFullOS\"", WOW("yes")));
    CHECK(tsq_validate(s, NULL, NULL) == 1);
    tsq_node_release(s);
    CHECK(tsq_validate(NULL, NULL, NULL) == 0);
}

static void test_descriptions_and_mdt(void) {
    char body[4096], desc[300];
    memset(desc, 'd', 256);
    desc[256] = '\0';
    CASE("a description over 255 characters");
    snprintf(body, sizeof body, "<group name=\"G\" description=\"%s\"/>", desc);
    tsq_node *s = doc(body);
    CHECK(run(s) == 1 && has("E G: the description has 256 characters; the limit is 255"));
    tsq_node_release(s);
    CASE("characters, not bytes");
    s = doc("<group name=\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\" description=\"\"/>");
    CHECK(run(s) == 0 && ngot == 0);
    tsq_node_release(s);

    CASE("MDT documents: a missing required variable is a warning");
    const char *mdt = "<sequence version=\"3.00\"><step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"M\" description=\"\" successCodeList=\"0 3010\" runIn=\"WinPEandFullOS\">"
                      "<defaultVarList><variable name=\"PackageID\" property=\"PackageID\"></variable></defaultVarList><action>cscript.exe x.wsf</action></step></sequence>";
    tsq_error err;
    CHECK(tsq_parse(ctx, mdt, strlen(mdt), "mdt", &s, &err) == TSQ_OK);
    CHECK(run(s) == 0);
    CHECK(has("W M.CommandLine: required property CommandLine is missing"));
    tsq_node_release(s);
}

static void test_corpus(void) {
    const char *sh = h_shared();
    if (!sh) return;
    char path[4096], line[2048];
    snprintf(path, sizeof path, "%s/corpus/real/MANIFEST.tsv", sh);
    FILE *m = fopen(path, "r");
    size_t total = 0;
    while (m && fgets(line, sizeof line, m)) {
        char *tab = strchr(line, '\t');
        if (strncmp(line, "file\t", 5) == 0 || !tab) continue;
        *tab = '\0';
        snprintf(path, sizeof path, "%s/corpus/real/%s", sh, line);
        tsq_node *s = NULL;
        tsq_error err;
        CASE(line);
        CHECK(tsq_load(ctx, path, &s, &err) == TSQ_OK);
        if (!s) continue;
        size_t e = run(s);
        if (strcmp(tsq_sequence_version(s), "3.10") == 0) CHECK(e == 0); /* ConfigMgr wrote them */
        if (strncmp(line, "067-", 4) == 0) CHECK(has("E Windows Features: the description has 263 characters; the limit is 255"));
        total += e;
        tsq_node_release(s);
    }
    if (m) fclose(m);
    CASE("corpus: the one error is a real one");
    CHECK(total == 1);
}

int main(void) {
    ctx = tsq_ctx_new(NULL, NULL);
    test_clean();
    test_table();
    test_descriptions_and_mdt();
    test_corpus();
    tsq_ctx_free(ctx);
    DONE();
}
