/* test_props.c - the class catalogue, typed properties, command text and new actions. */
#include "harness.h"
#include "tsq.h"

static tsq_ctx *ctx;

static tsq_value vstr(const char *s) { return (tsq_value){TSQ_V_STRING, 0, 0, s, strlen(s)}; }
static tsq_value vbool(int b) { return (tsq_value){TSQ_V_BOOL, b, 0, NULL, 0}; }
static tsq_value vint(int64_t i) { return (tsq_value){TSQ_V_INT, 0, i, NULL, 0}; }
static tsq_value vnil(void) { return (tsq_value){TSQ_V_NIL, 0, 0, NULL, 0}; }

static tsq_node *new_action(const char *type) {
    tsq_node *a = NULL;
    tsq_error err;
    CHECK(tsq_action_new(ctx, type, NULL, &a, &err) == TSQ_OK);
    return a;
}

static const char *xml_of(const tsq_node *seq, tsq_buf *b) {
    tsq_error err;
    b->len = 0;
    CHECK(tsq_write(seq, b, &err) == TSQ_OK);
    return b->data ? b->data : "";
}

/* The value of a property as text ("nil", "true", "12", "text", "objects:3"). */
static const char *show(const tsq_node *n, const char *name, char *buf, size_t size) {
    tsq_value v;
    tsq_error err;
    if (tsq_prop_get(n, name, &v, &err) != TSQ_OK) snprintf(buf, size, "error: %.200s", err.message);
    else if (v.type == TSQ_V_NIL) snprintf(buf, size, "nil");
    else if (v.type == TSQ_V_BOOL) snprintf(buf, size, "%s", v.b ? "true" : "false");
    else if (v.type == TSQ_V_INT) snprintf(buf, size, "%lld", (long long)v.i);
    else if (v.type == TSQ_V_OBJECTS) snprintf(buf, size, "objects:%lld", (long long)v.i);
    else snprintf(buf, size, "%s%.*s", v.type == TSQ_V_LIST ? "list:" : "", (int)v.len, v.s);
    return buf;
}

/* ------------------------------------------------------------------ catalogue */

static void test_catalogue(void) {
    CASE("catalogue: 36 action classes, each found by full and short name");
    CHECK(tsq_class_count() == 36);
    for (size_t i = 0; i < tsq_class_count(); i++) {
        const tsq_class_info *c = tsq_class_at(i);
        CHECK(c && strncmp(c->name, "SMS_TaskSequence_", 17) == 0);
        CHECK(tsq_class_find(c->name) == c && tsq_class_find(c->short_name) == c);
        CHECK(c->display && c->display[0] && c->template_ && c->template_[0]);
        CHECK(tsq_class_prop_find(c, "Timeout") != NULL);
        for (size_t k = 0; k < c->nprops; k++) CHECK(tsq_class_prop(c, k) && tsq_class_prop(c, k)->name[0]);
        CHECK(tsq_class_prop(c, c->nprops) == NULL);
    }
    CHECK(tsq_class_at(36) == NULL);
    /* the embedded helpers are found as well; near misses and
     * other cases are not (the index hashes the length and a few bytes) */
    CHECK(tsq_class_find("SMS_TaskSequence_ApplicationInfo") != NULL && tsq_class_find("ApplicationInfo") != NULL);
    static const char *const misses[] = {"", "R", "SMS_TaskSequence_runcommandlineaction", "SMS_TaskSequence_RunCommandLineActio",
                                         "SMS_TaskSequence_RunCommandLineActionX", "SMS_TaskSequence_", "runcommandline",
                                         "XMS_TaskSequence_RunCommandLineAction", NULL};
    for (int i = 0; misses[i]; i++) CHECK(tsq_class_find(misses[i]) == NULL);
    CHECK(tsq_class_find(NULL) == NULL);
    CHECK(tsq_class_find("RunComandLine") == NULL);
    CHECK(tsq_class_find("BDD_Gather") == NULL);
    const tsq_class_info *rcl = tsq_class_find("RunCommandLine");
    CHECK_STR(rcl->name, "SMS_TaskSequence_RunCommandLineAction");
    CHECK_STR(rcl->display, "Run Command Line");
    CHECK_STR(rcl->environment, "WinPEandFullOS");
    CHECK_STR(rcl->template_, "smsswd.exe /run:%1 %2");
    const tsq_prop_info *p = tsq_class_prop_find(rcl, "CommandLine");
    CHECK(p && p->type == TSQ_V_STRING && p->hidden && p->required && p->cmdline_arg == 2);
    p = tsq_class_prop_find(rcl, "DisableWow64Redirection");
    CHECK(p && p->type == TSQ_V_BOOL && !p->hidden);
    CHECK_STR(p->variable, "SMSTSDisableWow64Redirection");
    CHECK_STR(p->default_, "false");
    p = tsq_class_prop_find(rcl, "UserPassword");
    CHECK(p && p->secret);
    p = tsq_class_prop_find(tsq_class_find("RequestStateStore"), "SMPRetryCount");
    CHECK(p && p->global && p->type == TSQ_V_INT);
    p = tsq_class_prop_find(tsq_class_find("PartitionDisk"), "Partitions");
    CHECK(p && p->type == TSQ_V_OBJECTS);
    CHECK_STR(p->sdk_type, "SMS_TaskSequence_PartitionSettings[]");
    CHECK(tsq_class_find("SMS_TaskSequence_PartitionSettings") != NULL);
    CHECK(tsq_class_prop_find(tsq_class_find("SMS_TaskSequence_PartitionSettings"), "QuickFormat") != NULL);
    p = tsq_class_prop_find(tsq_class_find("UpgradeOperatingSystem"), "FeatureUpdateAssignmentId");
    CHECK_STR(p->variable, "OSDFeatureUpdateAssignmentID"); /* corrected from the documents */
    CHECK_STR(tsq_class_find("CaptureUserState")->environment, "WinPEandFullOS");
    CHECK_STR(tsq_class_find("PrestartCheck")->environment, "WinPEandFullOS");
    CHECK(tsq_class_find("SubTasksequence")->environment == NULL);
    CHECK(tsq_class_prop_find(tsq_class_find("SubTasksequence"), "SupportedEnvironment") == NULL);
    p = tsq_class_prop_find(tsq_class_find("AutoApply"), "CategoryList");
    CHECK(p && p->type == TSQ_V_LIST);
}

/* ------------------------------------------------------------------ new actions */

static void test_new_every_class(void) {
    tsq_error err;
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    tsq_node *seq = tsq_sequence_new(ctx);
    CASE("every class: constructed, written, read back with the same properties");
    for (size_t i = 0; i < tsq_class_count(); i++) {
        const tsq_class_info *c = tsq_class_at(i);
        tsq_node *a = new_action(c->short_name);
        if (!a) continue;
        CHECK_STR(tsq_node_type(a), c->name);
        CHECK_STR(tsq_node_name(a), c->display);
        CHECK(tsq_node_insert(seq, (size_t)-1, a, &err) == TSQ_OK);
        tsq_node_release(a);
    }
    tsq_node *back = NULL;
    xml_of(seq, &b);
    CHECK(tsq_parse(ctx, b.data, b.len, "new", &back, &err) == TSQ_OK);
    if (back) {
        tsq_node *x = tsq_node_first(seq), *y = tsq_node_first(back);
        for (; x && y; x = tsq_node_next(x), y = tsq_node_next(y)) {
            CASE(tsq_node_type(x));
            CHECK_STR(tsq_node_type(y), tsq_node_type(x));
            CHECK_STR(tsq_node_element(y), tsq_node_element(x));
            CHECK_STR(tsq_action_command(y), tsq_action_command(x));
            CHECK(tsq_prop_count(y) == tsq_prop_count(x));
            for (size_t k = 0; k < tsq_prop_count(x); k++) {
                char v1[200], v2[200];
                const char *name = tsq_prop_name(x, k);
                CHECK_STR(tsq_prop_name(y, k), name);
                CHECK_STR(show(y, name, v2, sizeof v2), show(x, name, v1, sizeof v1));
            }
        }
        CHECK(!x && !y);
        tsq_node_release(back);
    }
    tsq_node_release(seq);
    tsq_buf_free(&b);
}

static void test_new_shapes(void) {
    tsq_error err;
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    tsq_node *seq = tsq_sequence_new(ctx), *a;

    CASE("new Run Command Line: the console's variables, sorted by property");
    CHECK(tsq_action_new(ctx, "SMS_TaskSequence_RunCommandLineAction", "Echo", &a, &err) == TSQ_OK);
    tsq_node_insert(seq, (size_t)-1, a, &err);
    tsq_node_release(a);
    CHECK_STR(xml_of(seq, &b),
              "<sequence version=\"3.10\">\n"
              "  <step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"Echo\" description=\"\" runIn=\"WinPEandFullOS\" successCodeList=\"0 3010\" retryCount=\"0\" runFromNet=\"false\">\n"
              "    <action>smsswd.exe /run: </action>\n"
              "    <defaultVarList>\n"
              "      <variable name=\"CommandLine\" property=\"CommandLine\" hidden=\"true\"></variable>\n"
              "      <variable name=\"SMSTSDisableWow64Redirection\" property=\"DisableWow64Redirection\">false</variable>\n"
              "      <variable name=\"_SMSTSRunCommandLineAsUser\" property=\"RunAsUser\">false</variable>\n"
              "      <variable name=\"SuccessCodes\" property=\"SuccessCodes\" hidden=\"true\">0 3010</variable>\n"
              "    </defaultVarList>\n"
              "  </step>\n"
              "</sequence>\n");
    tsq_value v = vstr("cmd /c echo %Foo%");
    CHECK(tsq_prop_set(a, "CommandLine", &v, &err) == TSQ_OK);
    CHECK_STR(tsq_action_command(a), "smsswd.exe /run: cmd /c echo %Foo%");

    CASE("new uncatalogued action");
    CHECK(tsq_action_new(ctx, "BDD_Gather", "Gather", &a, &err) == TSQ_OK);
    tsq_node_release(tsq_node_remove(tsq_node_first(seq)));
    tsq_node_insert(seq, (size_t)-1, a, &err);
    tsq_node_release(a);
    CHECK_STR(xml_of(seq, &b),
              "<sequence version=\"3.10\">\n"
              "  <step type=\"BDD_Gather\" name=\"Gather\" description=\"\" runIn=\"WinPEandFullOS\" successCodeList=\"0\" retryCount=\"0\" runFromNet=\"false\">\n"
              "    <action></action>\n"
              "  </step>\n"
              "</sequence>\n");
    CHECK(tsq_prop_count(a) == 2); /* SupportedEnvironment, SuccessCodes */

    CASE("new Run Task Sequence: <subtasksequence> without runIn");
    CHECK(tsq_action_new(ctx, "SubTasksequence", NULL, &a, &err) == TSQ_OK);
    CHECK_STR(tsq_node_element(a), "subtasksequence");
    CHECK_STR(tsq_node_type(a), "SMS_TaskSequence_SubTasksequence");
    CHECK_STR(tsq_action_command(a), "SubTasksequence.exe");
    char buf[200];
    CHECK_STR(show(a, "SuccessCodes", buf, sizeof buf), "0");
    CHECK(tsq_prop_get(a, "SupportedEnvironment", &v, &err) == TSQ_ENOTFOUND);
    tsq_node_release(a);

    CASE("new Install Application: retryCount from RetryCount");
    CHECK(tsq_action_new(ctx, "InstallApplication", NULL, &a, &err) == TSQ_OK);
    CHECK_STR(show(a, "RetryCount", buf, sizeof buf), "2");
    CHECK_STR(tsq_action_command(a), "smsappinstall.exe /app: /basevar: /continueOnError:False");
    tsq_node_release(a);

    CASE("new Apply Operating System: runFromNet, WinPE");
    CHECK(tsq_action_new(ctx, "ApplyOperatingSystem", NULL, &a, &err) == TSQ_OK);
    CHECK_STR(show(a, "RunFromNet", buf, sizeof buf), "false");
    CHECK_STR(show(a, "SupportedEnvironment", buf, sizeof buf), "WinPE");
    CHECK_STR(tsq_action_command(a), "OSDApplyOS.exe /runfromnet:False");
    tsq_node_release(a);

    CASE("unknown class names");
    a = (tsq_node *)1;
    CHECK(tsq_action_new(ctx, "RunComandLine", NULL, &a, &err) == TSQ_ENOTFOUND && a == NULL);
    CHECK_STR(err.message, "unknown action class \"RunComandLine\"");
    CHECK(tsq_action_new(ctx, "runcommandline", NULL, &a, &err) == TSQ_ENOTFOUND);
    CHECK(strstr(err.message, "did you mean RunCommandLine") != NULL);
    CHECK(tsq_action_new(ctx, "SMS_TaskSequence_PartitionSettings", NULL, &a, &err) == TSQ_EINVAL);
    CHECK(tsq_action_new(ctx, "", NULL, &a, &err) == TSQ_EINVAL);

    tsq_node_release(seq);
    tsq_buf_free(&b);
}

/* ------------------------------------------------------------------ typed get/set */

typedef struct setcase {
    const char *type, *prop;
    tsq_value value;
    tsq_status status;
    const char *shown;   /* what tsq_prop_get gives afterwards; NULL: not checked */
    const char *command; /* the command text afterwards; NULL: not checked */
} setcase;

static void test_get_set_table(void) {
    static const char *A = "(A)";
    const setcase cases[] = {
        {"RunCommandLine", "CommandLine", vstr("cmd /c dir"), TSQ_OK, "cmd /c dir", "smsswd.exe /run: cmd /c dir"},
        {"RunCommandLine", "PackageID", vstr("PS100001"), TSQ_OK, "PS100001", "smsswd.exe /run:PS100001 "},
        {"RunCommandLine", "PackageID", vnil(), TSQ_OK, "nil", "smsswd.exe /run: "},
        {"RunCommandLine", "DisableWow64Redirection", vbool(1), TSQ_OK, "true", NULL},
        {"RunCommandLine", "DisableWow64Redirection", vstr("FALSE"), TSQ_OK, "false", NULL},
        {"RunCommandLine", "DisableWow64Redirection", vstr("yes"), TSQ_ETYPE, "false", NULL},
        {"RunCommandLine", "DisableWow64Redirection", vint(1), TSQ_ETYPE, "false", NULL},
        {"RunCommandLine", "CommandLine", vbool(1), TSQ_ETYPE, "", NULL},
        {"RunCommandLine", "Timeout", vint(900), TSQ_OK, "900", NULL},
        {"RunCommandLine", "Timeout", vstr("120"), TSQ_OK, "120", NULL},
        {"RunCommandLine", "Timeout", vint(-1), TSQ_EINVAL, "nil", NULL},
        {"RunCommandLine", "Timeout", vstr("soon"), TSQ_ETYPE, "nil", NULL},
        {"RunCommandLine", "SupportedEnvironment", vstr("winpe"), TSQ_OK, "WinPE", NULL},
        {"RunCommandLine", "SupportedEnvironment", vstr("Mars"), TSQ_EINVAL, "WinPEandFullOS", NULL},
        {"RunCommandLine", "SupportedEnvironment", vnil(), TSQ_EINVAL, "WinPEandFullOS", NULL},
        {"RunCommandLine", "SuccessCodes", vstr("0 3010 -2147024891"), TSQ_OK, "0 3010 -2147024891", NULL},
        {"RunCommandLine", "SuccessCodes", vstr("0,1"), TSQ_EINVAL, "0 3010", NULL},
        {"RunCommandLine", "NoSuchThing", vstr("x"), TSQ_ENOTFOUND, "error", NULL},
        {"RunCommandLine", "WorkingDirectory", vint(12), TSQ_OK, "12", NULL},
        {"RunCommandLine", "LoadProfile", vbool(0), TSQ_OK, "false", NULL}, /* MDT-only: settable */
        {"Reboot", "Target", vstr("winpe"), TSQ_OK, "WinPE", "smsboot.exe /target:WinPE"},
        {"Reboot", "Target", vstr("CD"), TSQ_EINVAL, "HD", "smsboot.exe /target:HD"},
        {"Reboot", "MessageTimeout", vint(60), TSQ_OK, "60", NULL},
        {"Reboot", "MessageTimeout", vint(5000000000LL), TSQ_EINVAL, "0", NULL},
        {"Reboot", "Target", vnil(), TSQ_OK, "nil", "smsboot.exe /target:"},
        {"AutoApply", "CategoryList", vstr("a,b"), TSQ_OK, "list:a,b", NULL},
        {"AutoApply", "BestMatch", vbool(0), TSQ_OK, "false", NULL},
        {"SetVariable", "VariableName", vstr("Foo"), TSQ_OK, "Foo", "tsenv.exe \"Foo=\" /hiddenflag:False"},
        {"SetVariable", "DoNotShowVariableValue", vbool(1), TSQ_OK, "true", "tsenv.exe \"=\" /hiddenflag:True"},
        {"SetVariable", "DoNotShowVariableValue", vnil(), TSQ_OK, "nil", "tsenv.exe \"=\""},
        {"EnableBitLocker", "TargetDrive", vstr("C:"), TSQ_OK, "C:", "OSDBitLocker.exe /enable  /drive:C: /wait:False /mode:TPM /pwd:AD /full:False"},
        {"EnableBitLocker", "EncryptMethod", vint(7), TSQ_OK, "7", "OSDBitLocker.exe /enable  /wait:False /mode:TPM /pwd:AD /full:False /crypt:7"},
        {"EnableBitLocker", "CreateRecoveryPassword", vstr("None"), TSQ_OK, "None", "OSDBitLocker.exe /enable  /wait:False /mode:TPM /pwd:None /full:False"},
        {"InstallApplication", "RetryCount", vint(4), TSQ_OK, "4", A},
        {"InstallApplication", "RetryCount", vnil(), TSQ_OK, "0", A}, /* the attribute stays, back to 0 */
        {"ApplyOperatingSystem", "RunFromNet", vbool(1), TSQ_OK, "true", "OSDApplyOS.exe /runfromnet:True"},
        {"ApplyOperatingSystem", "ImagePackageID", vstr("P01"), TSQ_OK, "P01", "OSDApplyOS.exe /image:P01,%OSDImageIndex% /runfromnet:False"},
        {"ApplyOperatingSystem", "ConfigFilePackage", vstr("P02"), TSQ_OK, "P02", "OSDApplyOS.exe \"/config:P02,%OSDConfigFileName%\" /runfromnet:False"},
        {"OfflineEnableBitLocker", "DestinationVariable", vstr("OSDisk"), TSQ_OK, "OSDisk", "OSDOfflineBitlocker.exe /enable  /drive:%OSDisk% /ignoretpm:True /full:False"},
        {"ConnectNetworkFolder", "Path", vstr("\\\\srv\\share"), TSQ_OK, "\\\\srv\\share", "smsnetuse.exe %SMSConnectNetworkFolderPath%"},
        {"PrestartCheck", "OSArchitecture", vstr(""), TSQ_OK, "", NULL},
        {"PrestartCheck", "OSType", vstr("server"), TSQ_OK, "SERVER", NULL},
        {"BDD_Gather", "GatherLocalOnly", vbool(1), TSQ_OK, "true", ""},
        {"BDD_Gather", "Anything", vstr("x"), TSQ_OK, "x", ""},
        {"BDD_Gather", "Timeout", vint(60), TSQ_OK, "60", ""},
    };
    char buf[300], label[200];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const setcase *t = &cases[i];
        snprintf(label, sizeof label, "set %s.%s (case %zu)", t->type, t->prop, i);
        CASE(label);
        tsq_node *a = new_action(t->type);
        if (!a) continue;
        tsq_error err;
        memset(&err, 0, sizeof err);
        tsq_status st = tsq_prop_set(a, t->prop, &t->value, &err);
        CHECK(st == t->status);
        if (st != TSQ_OK) CHECK(err.message[0] != '\0');
        if (t->shown && strcmp(t->shown, "error") != 0) CHECK_STR(show(a, t->prop, buf, sizeof buf), t->shown);
        if (t->command == A) {
            CHECK_STR(show(a, "RetryCount", buf, sizeof buf), t->shown);
        } else if (t->command) {
            CHECK_STR(tsq_action_command(a), t->command);
        }
        tsq_node_release(a);
    }
}

static void test_sync_and_errors(void) {
    tsq_error err;
    char buf[300];
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    tsq_node *seq = tsq_sequence_new(ctx), *a = new_action("RunCommandLine");
    tsq_node_insert(seq, (size_t)-1, a, &err);
    tsq_node_release(a);
    tsq_value v = vstr("0 1");

    CASE("SuccessCodes keeps the variable and successCodeList in step");
    CHECK(tsq_prop_set(a, "SuccessCodes", &v, &err) == TSQ_OK);
    CHECK(strstr(xml_of(seq, &b), "successCodeList=\"0 1\"") != NULL);
    CHECK(strstr(b.data, "property=\"SuccessCodes\" hidden=\"true\">0 1</variable>") != NULL);

    CASE("Timeout is the timeout attribute, placed before runIn");
    v = vint(300);
    CHECK(tsq_prop_set(a, "Timeout", &v, &err) == TSQ_OK);
    CHECK(strstr(xml_of(seq, &b), "description=\"\" timeout=\"300\" runIn=") != NULL);
    v = vnil();
    CHECK(tsq_prop_set(a, "Timeout", &v, &err) == TSQ_OK);
    CHECK(strstr(xml_of(seq, &b), "timeout=") == NULL);
    CHECK_STR(show(a, "Timeout", buf, sizeof buf), "nil");

    CASE("a new variable goes where ConfigMgr puts it");
    v = vstr("out");
    CHECK(tsq_prop_set(a, "OutputVariableName", &v, &err) == TSQ_OK);
    const char *x = xml_of(seq, &b);
    const char *p1 = strstr(x, "property=\"DisableWow64Redirection\""), *p2 = strstr(x, "property=\"OutputVariableName\""),
               *p3 = strstr(x, "property=\"RunAsUser\"");
    CHECK(p1 && p2 && p3 && p1 < p2 && p2 < p3);
    CHECK(strstr(x, "<variable name=\"SMSTSRunCommandLineOutputVariableName\" property=\"OutputVariableName\">out</variable>") != NULL);
    v = vstr("D:\\x");
    CHECK(tsq_prop_set(a, "PackageID", &v, &err) == TSQ_OK);
    x = xml_of(seq, &b);
    CHECK(strstr(x, "<variable name=\"PackageID\" property=\"PackageID\" hidden=\"true\">D:\\x</variable>") != NULL);
    CHECK(strstr(x, "property=\"OutputVariableName\"") < strstr(x, "property=\"PackageID\""));
    CHECK(strstr(x, "property=\"PackageID\"") < strstr(x, "property=\"RunAsUser\""));

    CASE("listing: catalogue order, then what the class does not know");
    CHECK(tsq_prop_count(a) == 7);
    CHECK_STR(tsq_prop_name(a, 0), "SupportedEnvironment");
    CHECK_STR(tsq_prop_name(a, 1), "CommandLine");
    CHECK_STR(tsq_prop_name(a, 6), "SuccessCodes");
    CHECK(tsq_prop_name(a, 7) == NULL);

    CASE("unknown property: the error lists the valid names");
    CHECK(tsq_prop_get(a, "Commandline", &v, &err) == TSQ_ENOTFOUND);
    CHECK(strstr(err.message, "RunCommandLine has no property \"Commandline\"") != NULL);
    CHECK(strstr(err.message, "valid names: SupportedEnvironment, Timeout, CommandLine, DisableWow64Redirection") != NULL);
    CHECK(strstr(err.message, "LoadProfile") == NULL); /* MDT-only names are not advertised */
    CHECK(tsq_prop_set(a, "Commandline", &v, &err) == TSQ_ENOTFOUND);

    CASE("groups have no typed properties");
    tsq_node *g = tsq_group_new(ctx, "G");
    CHECK(tsq_prop_get(g, "CommandLine", &v, &err) == TSQ_EINVAL);
    CHECK(tsq_prop_count(g) == 0);
    CHECK_STR(tsq_action_command(g), "");
    tsq_node_release(g);

    CASE("removing a property removes its variable");
    v = vnil();
    CHECK(tsq_prop_set(a, "PackageID", &v, &err) == TSQ_OK);
    CHECK(strstr(xml_of(seq, &b), "PackageID") == NULL);
    CHECK_STR(tsq_action_command(a), "smsswd.exe /run: ");

    CASE("free command text is kept until a property changes");
    CHECK(tsq_action_set_command(a, "cmd /c custom", &err) == TSQ_OK);
    CHECK_STR(tsq_action_command(a), "cmd /c custom");
    v = vstr("");
    CHECK(tsq_prop_set(a, "CommandLine", &v, &err) == TSQ_OK); /* same value: nothing changes */
    CHECK_STR(tsq_action_command(a), "cmd /c custom");
    v = vstr("ipconfig");
    CHECK(tsq_prop_set(a, "CommandLine", &v, &err) == TSQ_OK);
    CHECK_STR(tsq_action_command(a), "smsswd.exe /run: ipconfig");

    tsq_node_release(seq);
    tsq_buf_free(&b);
}

static void test_objects(void) {
    tsq_error err;
    char buf[300];
    tsq_value v;
    tsq_node *a = new_action("PartitionDisk");

    CASE("object arrays: resize, fields, typed values");
    CHECK_STR(show(a, "Partitions", buf, sizeof buf), "nil");
    CHECK(tsq_prop_object_resize(a, "Partitions", 2, &err) == TSQ_OK);
    CHECK_STR(show(a, "Partitions", buf, sizeof buf), "objects:2");
    v = vstr("primary");
    CHECK(tsq_prop_object_set(a, "Partitions", 1, "Type", &v, &err) == TSQ_OK);
    CHECK(tsq_prop_object_get(a, "Partitions", 1, "Type", &v, &err) == TSQ_OK);
    CHECK(v.type == TSQ_V_STRING && strncmp(v.s, "Primary", v.len) == 0 && v.len == 7);
    v = vbool(1);
    CHECK(tsq_prop_object_set(a, "Partitions", 1, "QuickFormat", &v, &err) == TSQ_OK);
    CHECK(tsq_prop_object_get(a, "Partitions", 1, "QuickFormat", &v, &err) == TSQ_OK && v.type == TSQ_V_BOOL && v.b);
    v = vint(100);
    CHECK(tsq_prop_object_set(a, "Partitions", 0, "Size", &v, &err) == TSQ_OK);
    CHECK(tsq_prop_object_get(a, "Partitions", 0, "Size", &v, &err) == TSQ_OK && v.type == TSQ_V_INT && v.i == 100);
    CHECK(tsq_prop_object_get(a, "Partitions", 0, "VolumeName", &v, &err) == TSQ_OK && v.type == TSQ_V_NIL);
    CHECK(tsq_prop_object_get(a, "Partitions", 2, "Size", &v, &err) == TSQ_EINVAL);
    CHECK(tsq_prop_object_get(a, "Partitions", 0, "Colour", &v, &err) == TSQ_ENOTFOUND);
    CHECK(strstr(err.message, "QuickFormat") != NULL);
    v = vstr("Z");
    CHECK(tsq_prop_object_set(a, "Partitions", 0, "Type", &v, &err) == TSQ_EINVAL);
    CHECK(tsq_prop_object_get(a, "DiskIndex", 0, "Size", &v, &err) == TSQ_ETYPE);
    CHECK(tsq_prop_count(a) == 8); /* env, Timeout-less: 6 defaults + Partitions + SuccessCodes */
    CHECK(tsq_prop_object_resize(a, "Partitions", 1, &err) == TSQ_OK);
    CHECK(tsq_prop_object_get(a, "Partitions", 0, "Size", &v, &err) == TSQ_OK && v.i == 100);
    CHECK(tsq_prop_object_get(a, "Partitions", 1, "Type", &v, &err) == TSQ_EINVAL);
    v = vnil();
    CHECK(tsq_prop_set(a, "Partitions", &v, &err) == TSQ_OK);
    CHECK_STR(show(a, "Partitions", buf, sizeof buf), "nil");
    tsq_node_release(a);

    CASE("AppInfo keeps NumApps");
    a = new_action("InstallApplication");
    CHECK(tsq_prop_object_resize(a, "AppInfo", 3, &err) == TSQ_OK);
    CHECK_STR(show(a, "NumApps", buf, sizeof buf), "3");
    v = vstr("ScopeId_1/Application_2");
    CHECK(tsq_prop_object_set(a, "AppInfo", 2, "Name", &v, &err) == TSQ_OK);
    CHECK(tsq_prop_object_get(a, "AppInfo", 2, "Name", &v, &err) == TSQ_OK && v.len == 23);
    tsq_node_release(a);

    CASE("uncatalogued classes have no arrays");
    a = new_action("BDD_Gather");
    CHECK(tsq_prop_object_resize(a, "AppInfo", 1, &err) == TSQ_ENOTFOUND);
    tsq_node_release(a);
}

/* ------------------------------------------------------------------ documents */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)l + 1);
    *len = fread(s, 1, (size_t)l, f);
    s[*len] = '\0';
    fclose(f);
    return s;
}

/* Lines of a and b that differ (both must have the same number of lines). */
static int diff_lines(const char *a, const char *b) {
    int d = 0;
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0) d++;
        a += la + (ea != NULL);
        b += lb + (eb != NULL);
        if ((!ea) != (!eb)) return -1;
    }
    return d;
}

static void test_corpus_edits(void) {
    const char *sh = h_shared();
    if (!sh) return;
    char path[4096];
    tsq_error err;
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    const char *files[] = {"045-forevanyeung-rsc002a6-extracted.xml", "071-forevanyeung-rsc002a6-objectxml.xml",
                           "030-mdt2013-template-client.xml", "068-garytown-osdcloud-export.xml"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        snprintf(path, sizeof path, "%s/corpus/real/%s", sh, files[f]);
        size_t olen = 0;
        char *orig = read_file(path, &olen);
        tsq_node *seq = NULL;
        CASE(files[f]);
        CHECK(orig && tsq_load(ctx, path, &seq, &err) == TSQ_OK);
        if (!seq) continue;
        /* every property set to the value it has: the document stays byte-identical */
        int n = 0;
        for (tsq_node *s = tsq_node_walk(seq, NULL); s; s = tsq_node_walk(seq, s)) {
            if (tsq_node_kind(s) != TSQ_ACTION) continue;
            for (size_t k = 0; k < tsq_prop_count(s); k++) {
                tsq_value v;
                const char *name = tsq_prop_name(s, k);
                if (tsq_prop_get(s, name, &v, &err) != TSQ_OK) {
                    CHECK(0);
                    continue;
                }
                if (tsq_prop_set(s, name, &v, &err) != TSQ_OK) {
                    fprintf(stderr, "%s: %s: %s\n", tsq_node_name(s), name, err.message);
                    CHECK(0);
                }
                n++;
            }
        }
        CHECK(n > 10);
        xml_of(seq, &b);
        CHECK(b.len == olen && memcmp(b.data, orig, olen) == 0);
        /* one changed property changes its variable and the command text, nothing else */
        tsq_node *step = NULL;
        for (tsq_node *s = tsq_node_walk(seq, NULL); s && !step; s = tsq_node_walk(seq, s))
            if (strcmp(tsq_node_type(s), "SMS_TaskSequence_RunCommandLineAction") == 0) step = s;
        CHECK(step != NULL);
        if (step) {
            tsq_value v = vstr("cmd /c echo changed");
            CHECK(tsq_prop_set(step, "CommandLine", &v, &err) == TSQ_OK);
            xml_of(seq, &b);
            int d = diff_lines(orig, b.data);
            /* 045, 068, 071 write a step on one line; in 030 (MDT) a new variable line
             * appears and the step keeps its own command text */
            CHECK(d == (f == 2 ? -1 : 1));
            if (f == 2) CHECK(b.len == olen + strlen("\n          <variable name=\"CommandLine\" property=\"CommandLine\">cmd /c echo changed</variable>"));
            CHECK(strstr(b.data, "cmd /c echo changed") != NULL);
        }
        tsq_node_release(seq);
        free(orig);
    }
    tsq_buf_free(&b);
}

static void test_mdt_conventions(void) {
    const char *sh = h_shared();
    if (!sh) return;
    char path[4096];
    tsq_error err;
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    snprintf(path, sizeof path, "%s/corpus/real/030-mdt2013-template-client.xml", sh);
    tsq_node *seq = NULL;
    CASE("MDT document: no hidden where the step never uses it; 3.00 templates");
    CHECK(tsq_load(ctx, path, &seq, &err) == TSQ_OK);
    if (!seq) return;
    tsq_node *step = NULL;
    for (tsq_node *s = tsq_node_walk(seq, NULL); s && !step; s = tsq_node_walk(seq, s))
        if (strcmp(tsq_node_type(s), "SMS_TaskSequence_RunCommandLineAction") == 0) step = s;
    tsq_value v = vstr("cmd /c ver");
    CHECK(step && tsq_prop_set(step, "CommandLine", &v, &err) == TSQ_OK);
    const char *before = step ? tsq_action_command(step) : "";
    char keep[300];
    snprintf(keep, sizeof keep, "%s", before);
    CHECK(strstr(xml_of(seq, &b), "<variable name=\"CommandLine\" property=\"CommandLine\">cmd /c ver</variable>") != NULL);
    CHECK(strncmp(keep, "cscript.exe", 11) == 0);
    CHECK_STR(tsq_action_command(step), keep); /* MDT's own command is not replaced */
    tsq_node *sv = NULL;
    for (tsq_node *s = tsq_node_walk(seq, NULL); s && !sv; s = tsq_node_walk(seq, s))
        if (strcmp(tsq_node_type(s), "SMS_TaskSequence_SetVariableAction") == 0) sv = s;
    if (sv) {
        v = vstr("X");
        CHECK(tsq_prop_set(sv, "VariableValue", &v, &err) == TSQ_OK);
        CHECK(strstr(tsq_action_command(sv), "/hiddenflag") == NULL); /* the SDK form of 3.00 */
    }
    tsq_node_release(seq);
    tsq_buf_free(&b);
}

int main(void) {
    ctx = tsq_ctx_new(NULL, NULL);
    test_catalogue();
    test_new_every_class();
    test_new_shapes();
    test_get_set_table();
    test_sync_and_errors();
    test_objects();
    test_corpus_edits();
    test_mdt_conventions();
    tsq_ctx_free(ctx);
    DONE();
}
