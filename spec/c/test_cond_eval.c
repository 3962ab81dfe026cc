/* test_cond_eval.c - environments, condition evaluation (table-driven) and plans. */
#include "harness.h"
#include "tsq.h"

static tsq_ctx *ctx;

/* ------------------------------------------------------------------ a described machine */

static tsq_status wmi(void *ud, const char *ns, const char *q, long *rows) {
    (void)ud;
    if (strcmp(ns, "root\\cimv2") == 0) {
        if (strcmp(q, "SELECT * FROM Win32_Battery") == 0) return *rows = 1, TSQ_OK;
        if (strcmp(q, "SELECT none") == 0) return *rows = 0, TSQ_OK;
        if (strcmp(q, "SELECT * FROM Win32_ComputerSystem WHERE Name='PC01'") == 0) return *rows = 1, TSQ_OK;
        if (strcmp(q, "BAD") == 0) return *rows = -1, TSQ_OK;
    }
    if (strcmp(ns, "root\\wmi") == 0 && strcmp(q, "Q") == 0) return *rows = 2, TSQ_OK;
    return TSQ_EFACT;
}

static tsq_status file(void *ud, const char *path, tsq_file_fact *f) {
    (void)ud;
    if (strcmp(path, "C:\\Windows\\notepad.exe") == 0) {
        f->exists = 1;
        f->version = "10.0.19041.1";
        f->datetime = "20200102030405.000000+000";
        return TSQ_OK;
    }
    if (strcmp(path, "C:\\missing") == 0) return f->exists = 0, TSQ_OK;
    if (strcmp(path, "C:\\nover") == 0) return f->exists = 1, f->version = NULL, f->datetime = NULL, TSQ_OK;
    return TSQ_EFACT;
}

static tsq_status folder(void *ud, const char *path, tsq_file_fact *f) {
    (void)ud;
    if (strcmp(path, "C:\\Windows") == 0) return f->exists = 1, f->datetime = "2021-05-01T00:00:00Z", TSQ_OK;
    if (strcmp(path, "C:\\gone") == 0) return f->exists = 0, TSQ_OK;
    return TSQ_EFACT;
}

static tsq_status registry(void *ud, const char *key, const char *value, tsq_reg_fact *f) {
    (void)ud;
    if (strcmp(key, "HKLM\\K") != 0) return TSQ_EFACT;
    f->exists = 1;
    if (strcmp(value, "S") == 0) f->type = "REG_SZ", f->data = "Hello";
    else if (strcmp(value, "D") == 0) f->type = "REG_DWORD", f->data = "0x10";
    else if (strcmp(value, "N") == 0) f->type = "REG_DWORD", f->data = "42";
    else f->exists = 0;
    return TSQ_OK;
}

static tsq_status software(void *ud, const char *code, int upgrade, int *installed, const char **version) {
    (void)ud;
    if (!upgrade && strcmp(code, "{P1}") == 0) return *installed = 1, *version = "1.2.3", TSQ_OK;
    if (!upgrade && strcmp(code, "{P2}") == 0) return *installed = 0, *version = NULL, TSQ_OK;
    if (upgrade && strcmp(code, "{U1}") == 0) return *installed = 1, *version = "2.0", TSQ_OK;
    if (upgrade && strcmp(code, "{U2}") == 0) return *installed = 0, *version = NULL, TSQ_OK;
    return TSQ_EFACT;
}

static tsq_env *machine(void) {
    tsq_env *e = tsq_env_new(ctx);
    static const char *vars[][2] = {
        {"OSDComputerName", "PC01"}, {"_SMSTSInWinPE", "false"}, {"Model", "Latitude 7420"}, {"Count", "10"},
        {"Neg", "-5"}, {"Name", "abc"}, {"Architecture", "X64"}, {"OSCurrentVersion", "6.1.7601"},
        {"WinDir", "C:\\Windows"}, {"Mixed", "Hello World"}, {"Big", "99999999999999999999"}, {"Empty", ""},
        {"Star", "a*b"}, {"Ten", "10"},
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) tsq_env_set(e, vars[i][0], vars[i][1]);
    tsq_provider p = {wmi, file, folder, registry, software, NULL};
    tsq_env_set_provider(e, &p);
    return e;
}

/* expected: 1 true, 0 false, < 0 that status negated */
#define EF (-(int)TSQ_EFACT)
#define EI (-(int)TSQ_EINVAL)
static const struct {
    const char *text;
    int expect;
} cases[] = {
    /* variables: equals / notEquals, case-insensitive values and names */
    {"OSDComputerName equals \"PC01\"", 1},
    {"OSDComputerName equals \"pc01\"", 1},
    {"osdcomputername equals \"PC01\"", 1},
    {"OSDCOMPUTERNAME Equals \"pc01\"", 1},
    {"OSDComputerName equals \"PC02\"", 0},
    {"OSDComputerName equals \"PC0\"", 0},
    {"OSDComputerName equals \"\"", 0},
    {"OSDComputerName notEquals \"PC02\"", 1},
    {"OSDComputerName notEquals \"pc01\"", 0},
    {"OSDComputerName NOTEQUALS \"x\"", 1},
    {"_SMSTSInWinPE equals \"false\"", 1},
    {"_SMSTSInWinPE equals \"FALSE\"", 1},
    {"_SMSTSInWinPE equals \"true\"", 0},
    {"Mixed equals \"hello world\"", 1},
    /* undefined and empty variables */
    {"Undefined equals \"\"", 1},
    {"Undefined notEquals \"\"", 0},
    {"Undefined equals \"x\"", 0},
    {"Undefined notEquals \"x\"", 1},
    {"Empty equals \"\"", 1},
    {"Empty notEquals \"\"", 0},
    {"Empty exists", 0},
    {"Empty notExists", 1},
    {"Undefined exists", 0},
    {"Undefined notExists", 1},
    {"Name exists", 1},
    {"Name notExists", 0},
    {"NAME exists", 1},
    {"Name Exists", 1},
    {"Name exists \"ignored\"", 1},
    /* numbers when both sides are integers */
    {"Count greater \"9\"", 1},
    {"Count greater \"10\"", 0},
    {"Count greaterEqual \"10\"", 1},
    {"Count less \"9\"", 0},
    {"Count less \"100\"", 1},
    {"Count lessEqual \"10\"", 1},
    {"Count lessEqual \"9\"", 0},
    {"Count equals \"10\"", 1},
    {"Count equals \"010\"", 0},
    {"Count greater \"+9\"", 1},
    {"Neg less \"0\"", 1},
    {"Neg greater \"-6\"", 1},
    {"Neg less \"-10\"", 0},
    {"Ten greater \"9\"", 1},
    {"Ten less \"9\"", 0},
    /* strings otherwise */
    {"Ten greater \"9a\"", 0},
    {"Name less \"abd\"", 1},
    {"Name less \"ABD\"", 1},
    {"Name greater \"ab\"", 1},
    {"Name greaterEqual \"ABC\"", 1},
    {"Name lessEqual \"abc\"", 1},
    {"Name greater \"b\"", 0},
    {"Big greater \"1\"", 1},
    {"Big less \"2\"", 0}, /* not a 64-bit integer: compared as text */
    {"Big less \"A\"", 1},
    {"Undefined less \"5\"", 1},
    {"Undefined greater \"5\"", 0},
    {"Undefined greaterEqual \"\"", 1},
    /* like: % _ * ? wildcards, case-insensitive */
    {"Model like \"%Latitude%\"", 1},
    {"Model like \"%latitude%\"", 1},
    {"Model like \"Latitude%\"", 1},
    {"Model like \"%7420\"", 1},
    {"Model like \"%7421\"", 0},
    {"Model like \"Latitude 742_\"", 1},
    {"Model like \"Latitude 74_\"", 0},
    {"Model like \"*Latitude*\"", 1},
    {"Model like \"Lat?tude*\"", 1},
    {"Model like \"Latitude\"", 0},
    {"Model like \"Latitude 7420\"", 1},
    {"Model like \"%\"", 1},
    {"Model like \"%%\"", 1},
    {"Model like \"\"", 0},
    {"Model like \"%t%t%\"", 1},
    {"Model like \"%a%a%\"", 0},
    {"Model like \"%x%\"", 0},
    {"Model like \"%Latitude 7420 and more%\"", 0},
    {"Model like \"Latitude 7420 and more%\"", 0},
    {"Model like \"%LATITUDE 7420\"", 1},
    {"Model like \"latitude%7420\"", 1},
    {"Model notLike \"%Precision%\"", 1},
    {"Model notLike \"%x%\"", 1},
    {"Model notLike \"%Lat%\"", 0},
    {"Undefined like \"%\"", 1},
    {"Undefined like \"_\"", 0},
    {"Star like \"a%b\"", 1},
    {"Name like \"a_c\"", 1},
    {"Name like \"ABC\"", 1},
    {"Name like \"a%%c\"", 1},
    /* operators */
    {"true", 1},
    {"all()", 1},
    {"any()", 0},
    {"none()", 1},
    {"Name exists and Count exists", 1},
    {"Name exists and Undefined exists", 0},
    {"Undefined exists and Name exists", 0},
    {"(Name exists and Count exists)", 1},
    {"(Name exists and Undefined exists)", 0},
    {"Name exists or Undefined exists", 1},
    {"Undefined exists or Name exists", 1},
    {"Undefined exists or Other exists", 0},
    {"not Name exists", 0},
    {"not Undefined exists", 1},
    {"not not Name exists", 1},
    {"none(Name exists, Undefined exists)", 0},
    {"none(Undefined exists, Other exists)", 1},
    {"any(Name exists)", 1},
    {"any(Undefined exists)", 0},
    {"all(Name exists)", 1},
    {"all(Undefined exists)", 0},
    {"Name exists and (Undefined exists or Count equals \"10\")", 1},
    {"Name exists and (Undefined exists or Count equals \"11\")", 0},
    {"Undefined exists or Name exists and Count exists", 1},
    {"(Undefined exists or Name exists) and Other exists", 0},
    {"not (Undefined exists or Other exists)", 1},
    {"not (Name exists and Count exists)", 0},
    {"any(all(Name exists, Count exists), Undefined exists)", 1},
    {"all(any(Undefined exists), Name exists)", 0},
    /* short-circuit: the missing fact is never asked for */
    {"Undefined exists and wmi \"UNKNOWN\"", 0},
    {"Name exists or wmi \"UNKNOWN\"", 1},
    {"wmi \"UNKNOWN\" and Undefined exists", EF},
    /* wmi */
    {"wmi \"SELECT * FROM Win32_Battery\"", 1},
    {"wmi \"SELECT none\"", 0},
    {"not wmi \"SELECT * FROM Win32_Battery\"", 0},
    {"not wmi \"SELECT none\"", 1},
    {"wmi \"root\\\\wmi\" \"Q\"", 1},
    {"wmi \"root\\\\other\" \"Q\"", EF},
    {"wmi \"SELECT * FROM Win32_ComputerSystem WHERE Name='%OSDComputerName%'\"", 1},
    {"wmi \"UNKNOWN\"", EF},
    {"wmi \"BAD\" [ignoreQueryFailure=\"true\"]", 0},
    {"wmi \"BAD\" [ignoreQueryFailure=\"TRUE\"]", 0},
    {"wmi \"BAD\"", EF},
    {"wmi \"BAD\" [ignoreQueryFailure=\"false\"]", EF},
    {"expression \"SMS_TaskSequence_WMIConditionExpression\" { Query = \"SELECT none\" }", 0},
    /* file */
    {"file \"C:\\\\Windows\\\\notepad.exe\"", 1},
    {"file \"%WinDir%\\\\notepad.exe\"", 1},
    {"file \"%windir%\\\\notepad.exe\"", 1},
    {"file \"C:\\\\missing\"", 0},
    {"not file \"C:\\\\missing\"", 1},
    {"file \"C:\\\\missing\" version equals \"1\"", 0},
    {"file \"C:\\\\unknown\"", EF},
    {"file \"%Nope%\\\\notepad.exe\"", EF},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version equals \"10.0.19041.1\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version equals \"10.0.19041.1.0\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version equals \"10.0.19041\"", 0},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version notEquals \"10.0.19041\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version greater \"10.0.9999.0\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version greaterEqual \"10.0.19041.1\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version less \"10.0.19041.2\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version less \"9.9\"", 0},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version lessEqual \"10.0.19041.1\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" datetime greater \"20200101000000.000000+000\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" datetime less \"20200101000000.000000+000\"", 0},
    {"file \"C:\\\\Windows\\\\notepad.exe\" datetime equals \"20200102030405.000000+000\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" datetime equals \"2020-01-02T03:04:05Z\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version greater \"1\" datetime greater \"2019-01-01T00:00:00Z\"", 1},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version greater \"99\" datetime greater \"2019-01-01T00:00:00Z\"", 0},
    {"file \"C:\\\\nover\"", 1},
    {"file \"C:\\\\nover\" version equals \"1\"", EF},
    {"file \"C:\\\\nover\" datetime equals \"2020\"", EF},
    {"file \"C:\\\\Windows\\\\notepad.exe\" version like \"1\"", EI},
    {"expression \"SMS_TaskSequence_FileConditionExpression\" { Operator = \"greaterEqual\", Path = \"C:\\\\Windows\\\\notepad.exe\", Version = \"10.0\" }", 1},
    {"expression \"SMS_TaskSequence_FileConditionExpression\" { Operator = \"less\", Path = \"C:\\\\Windows\\\\notepad.exe\", Version = \"10.0\" }", 0},
    {"expression \"SMS_TaskSequence_FileConditionExpression\" { Version = \"1\" }", EI},
    /* folder */
    {"folder \"C:\\\\Windows\"", 1},
    {"folder \"%WinDir%\"", 1},
    {"folder \"C:\\\\gone\"", 0},
    {"folder \"C:\\\\unknown\"", EF},
    {"folder \"C:\\\\Windows\" datetime greater \"20210101000000.000000+000\"", 1},
    {"folder \"C:\\\\Windows\" datetime less \"20210101000000.000000+000\"", 0},
    {"folder \"C:\\\\Windows\" datetime equals \"20210501000000.000000+000\"", 1},
    {"folder \"C:\\\\gone\" datetime equals \"20210501000000.000000+000\"", 0},
    /* registry */
    {"registry \"HKLM\\\\K\" \"S\" REG_SZ exists", 1},
    {"registry \"HKLM\\\\K\" \"S\" reg_sz exists", 1},
    {"registry \"HKLM\\\\K\" \"S\" REG_DWORD exists", 0},
    {"registry \"HKLM\\\\K\" \"S\" exists", 1},
    {"registry \"HKLM\\\\K\" \"missing\" REG_SZ exists", 0},
    {"registry \"HKLM\\\\K\" \"missing\" REG_SZ notExists", 1},
    {"registry \"HKLM\\\\K\" \"S\" REG_SZ notExists", 0},
    {"registry \"HKLM\\\\K\" \"S\" REG_DWORD notExists", 1},
    {"registry \"HKLM\\\\K\" \"missing\" REG_SZ nonExists", 1},
    {"registry \"HKLM\\\\K\" \"S\" REG_SZ equals \"hello\"", 1},
    {"registry \"HKLM\\\\K\" \"S\" REG_DWORD equals \"Hello\"", 1}, /* comparisons ignore Type */
    {"registry \"HKLM\\\\K\" \"S\" REG_SZ notEquals \"Hello\"", 0},
    {"registry \"HKLM\\\\K\" \"S\" REG_SZ greater \"Hell\"", 1},
    {"registry \"HKLM\\\\K\" \"D\" REG_DWORD equals \"16\"", 1},
    {"registry \"HKLM\\\\K\" \"D\" REG_DWORD greater \"9\"", 1},
    {"registry \"HKLM\\\\K\" \"N\" REG_DWORD equals \"0x2A\"", 1},
    {"registry \"HKLM\\\\K\" \"N\" REG_DWORD lessEqual \"41\"", 0},
    {"registry \"HKLM\\\\K\" \"missing\" REG_SZ equals \"\"", 0},
    {"registry \"HKLM\\\\K\" \"missing\" REG_SZ notEquals \"x\"", 0},
    {"registry \"HKLM\\\\Unknown\" \"S\" REG_SZ exists", EF},
    {"registry \"HKLM\\\\K\" \"S\" REG_SZ like \"H%\"", EI},
    /* software */
    {"software ThisVersion \"{P1}\"", 1},
    {"software ThisVersion \"{P2}\"", 0},
    {"software ThisVersion \"{P1}\" version \"1.2.3\"", 1},
    {"software ThisVersion \"{P1}\" version \"1.2.4\"", 0},
    {"software AnyVersion \"{P1}\" upgrade \"{U1}\"", 1},
    {"software AnyVersion \"{P2}\" upgrade \"{U1}\"", 1},
    {"software AnyVersion \"{P1}\" upgrade \"{U2}\"", 0},
    {"software AnyVersion \"{P1}\"", 1},
    {"software anyversion \"{P1}\"", 1},
    {"software ThisVersion \"{P9}\"", EF},
    {"software SomeVersion \"{P1}\"", EI},
    {"software ThisVersion", EI},
    /* os (MDT): Architecture, OSCurrentVersion */
    {"os \"X64\" equals \"6.10.7601.1\"", 0},
    {"os \"X64\" greaterEqual \"6.10.7601.1\"", 0},
    {"os \"X64\" greaterEqual \"6.10.7601.0\"", 1},
    {"os \"X64\" greaterEqual \"6.10.7600.0\"", 1},
    {"os \"x64\" greaterEqual \"6.10.7600.0\"", 1},
    {"os \"X86\" greaterEqual \"6.10.7600.0\"", 0},
    {"os \"X64\" less \"6.20.9200.0\"", 1},
    {"os \"X64\" greaterEqual \"6.30.9600.0\"", 0},
    {"os \"X64\" equals \"6.10.7601\"", 1},
    {"os \"X86\" equals \"6.10.7601.1\" or os \"X64\" greaterEqual \"6.1\"", 1},
    /* unknown classes and operators */
    {"expression \"BDD_Custom\" { A = \"1\" }", EI},
    {"Name frobs \"x\"", EI},
    {"expression \"SMS_TaskSequence_VariableConditionExpression\" { Operator = \"exists\" }", EI},
    /* OS groups */
    {"osgroup(platform \"x\" (wmi \"SELECT none\", wmi \"SELECT * FROM Win32_Battery\"), platform (wmi \"SELECT * FROM Win32_Battery\"))", 1},
    {"osgroup(platform \"x\" (wmi \"SELECT none\", wmi \"SELECT * FROM Win32_Battery\"))", 0},
    {"osgroup(platform (wmi \"BAD\" [ignoreQueryFailure=\"true\"]))", 0},
    {"osgroup()", 0},
    {"osgroup(platform ())", 1},
};

static void test_table(void) {
    tsq_env *env = machine();
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        CASE(cases[i].text);
        tsq_cond *c = NULL;
        tsq_error err;
        if (tsq_cond_parse(ctx, cases[i].text, &c, &err) != TSQ_OK) {
            CHECK(!"parses");
            fprintf(stderr, "  %s\n", err.message);
            continue;
        }
        int r = -1;
        tsq_status st = tsq_cond_eval(c, env, &r, NULL, NULL, &err);
        int got = st ? -(int)st : r;
        CHECK(got == cases[i].expect);
        if (got != cases[i].expect) fprintf(stderr, "  got %d (%s), expected %d\n", got, st ? err.message : "", cases[i].expect);
        tsq_cond_free(c);
    }
    CASE("the table is large enough");
    CHECK(n >= 150);
    tsq_env_free(env);
}

static void expect_error(tsq_env *env, const char *text, tsq_status code, const char *message) {
    tsq_cond *c = NULL;
    tsq_error err;
    CHECK(tsq_cond_parse(ctx, text, &c, NULL) == TSQ_OK);
    int r = 1;
    CHECK(tsq_cond_eval(c, env, &r, NULL, NULL, &err) == code);
    CHECK(r == 0);
    CHECK_STR(err.message, message);
    tsq_cond_free(c);
}

static void test_messages(void) {
    tsq_env *env = machine();
    CASE("a fact the environment does not describe is named");
    expect_error(env, "wmi \"SELECT x FROM y\"", TSQ_EFACT, "wmi query SELECT x FROM y is not described");
    expect_error(env, "file \"%WinDir%\\\\x.exe\"", TSQ_EFACT, "file C:\\Windows\\x.exe is not described");
    expect_error(env, "folder \"D:\\\\\"", TSQ_EFACT, "folder D:\\ is not described");
    expect_error(env, "registry \"HKLM\\\\Unknown\" \"V\" exists", TSQ_EFACT, "registry value HKLM\\Unknown\\V is not described");
    expect_error(env, "software ThisVersion \"{X}\"", TSQ_EFACT, "software {X} is not described");
    expect_error(env, "wmi \"BAD\"", TSQ_EFACT, "wmi query BAD failed (ignoreQueryFailure is not set)");
    expect_error(env, "expression \"BDD_Custom\" {}", TSQ_EINVAL, "unknown condition class 'BDD_Custom'");
    expect_error(env, "Name frobs", TSQ_EINVAL, "unknown operator 'frobs' in a variable condition");
    tsq_env *bare = tsq_env_new(ctx);
    expect_error(bare, "file \"C:\\\\x\"", TSQ_EFACT, "file C:\\x is not described");
    expect_error(bare, "os \"X64\" equals \"10.0\"", TSQ_EFACT, "the os architecture is not described (variable Architecture)");
    tsq_env_set(bare, "architecture", "X64");
    expect_error(bare, "os \"X64\" equals \"10.0\"", TSQ_EFACT, "the os version is not described (variable OSCurrentVersion)");
    tsq_env_free(bare);
    tsq_env_free(env);
}

/* ------------------------------------------------------------------ traces */

static char trace_log[4096];

static void on_trace(void *ud, const tsq_trace_entry *e) {
    (void)ud;
    char line[512];
    snprintf(line, sizeof line, "%d %d %s | %s\n", e->depth, e->result, e->operand, e->why);
    strncat(trace_log, line, sizeof trace_log - strlen(trace_log) - 1);
}

static void test_trace(void) {
    tsq_env *env = machine();
    CASE("a trace entry per operand evaluated, with why");
    tsq_cond *c = NULL;
    tsq_cond_parse(ctx, "Name equals \"abc\" and (OSDBuild exists or not file \"C:\\\\missing\")", &c, NULL);
    trace_log[0] = '\0';
    int r = 0;
    CHECK(tsq_cond_eval(c, env, &r, on_trace, NULL, NULL) == TSQ_OK && r == 1);
    CHECK_STR(trace_log, "1 1 Name equals \"abc\" | Name is \"abc\"\n"
                         "2 0 OSDBuild exists | variable OSDBuild undefined\n"
                         "3 0 file \"C:\\\\missing\" | file not found\n"
                         "2 1 not file \"C:\\\\missing\" | no operand holds\n"
                         "1 1 OSDBuild exists or not file \"C:\\\\missing\" | an operand holds\n");
    tsq_cond_free(c);
    tsq_env_free(env);
}

/* ------------------------------------------------------------------ environments */

static void test_env(void) {
    CASE("names are case-insensitive; the first spelling is kept; order is insertion order");
    tsq_env *e = tsq_env_new(ctx);
    CHECK(tsq_env_set(e, "OSDComputerName", "PC01") == TSQ_OK);
    CHECK(tsq_env_set(e, "Beta", "2") == TSQ_OK);
    CHECK(tsq_env_set(e, "osdcomputername", "PC02") == TSQ_OK);
    CHECK_STR(tsq_env_get(e, "OSDCOMPUTERNAME"), "PC02");
    CHECK(tsq_env_count(e) == 2);
    CHECK_STR(tsq_env_name_at(e, 0), "OSDComputerName");
    CHECK_STR(tsq_env_name_at(e, 1), "Beta");
    CHECK(tsq_env_name_at(e, 2) == NULL);
    CHECK(tsq_env_get(e, "nope") == NULL);

    CASE("setting \"\" deletes, keeping the others in order");
    tsq_env_set(e, "Gamma", "3");
    CHECK(tsq_env_set(e, "OSDComputerName", "") == TSQ_OK);
    CHECK(tsq_env_get(e, "OSDComputerName") == NULL);
    CHECK(tsq_env_count(e) == 2);
    CHECK_STR(tsq_env_name_at(e, 0), "Beta");
    CHECK_STR(tsq_env_name_at(e, 1), "Gamma");
    CHECK_STR(tsq_env_get(e, "gamma"), "3");
    CHECK(tsq_env_set(e, "NeverSet", NULL) == TSQ_OK);
    CHECK(tsq_env_count(e) == 2);
    CHECK(tsq_env_set(e, "", "x") == TSQ_EINVAL);

    CASE("many variables");
    char name[32], value[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "Var%d", i);
        snprintf(value, sizeof value, "%d", i);
        tsq_env_set(e, name, value);
    }
    CHECK(tsq_env_count(e) == 5002);
    CHECK_STR(tsq_env_get(e, "VAR4321"), "4321");
    for (int i = 0; i < 5000; i += 2) {
        snprintf(name, sizeof name, "var%d", i);
        tsq_env_set(e, name, "");
    }
    CHECK(tsq_env_count(e) == 2502);
    CHECK(tsq_env_get(e, "Var4320") == NULL);
    CHECK_STR(tsq_env_get(e, "Var4321"), "4321");
    CHECK_STR(tsq_env_name_at(e, 2), "Var1");

    CASE("clone is independent");
    tsq_env *c = tsq_env_clone(e);
    tsq_env_set(c, "Beta", "changed");
    CHECK_STR(tsq_env_get(e, "Beta"), "2");
    CHECK_STR(tsq_env_get(c, "beta"), "changed");
    CHECK(tsq_env_count(c) == 2502);
    tsq_env_free(c);

    CASE("%VAR% expansion: undefined references stay as written");
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    CHECK_STR(tsq_env_expand(e, "%beta%\\x", &b), "2\\x");
    CHECK_STR(tsq_env_expand(e, "a%Nope%b%Gamma%", &b), "a%Nope%b3");
    CHECK_STR(tsq_env_expand(e, "100% sure", &b), "100% sure");
    CHECK_STR(tsq_env_expand(e, "%%Gamma%%", &b), "%3%");
    CHECK_STR(tsq_env_expand(e, "%Gamma%%Beta%", &b), "32");
    CHECK_STR(tsq_env_expand(e, "", &b), "");
    tsq_buf_free(&b);
    tsq_env_free(e);
    tsq_env_free(NULL);
}

/* ------------------------------------------------------------------ plans */

static char plan_log[4096];

static void on_plan(void *ud, const tsq_plan_entry *e) {
    (void)ud;
    char line[512];
    snprintf(line, sizeof line, "%s %s%s%s\n", tsq_node_name(e->step), tsq_plan_state_name(e->state),
             e->reason ? ": " : "", e->reason ? e->reason : "");
    strncat(plan_log, line, sizeof plan_log - strlen(plan_log) - 1);
}

#define VC(name, op, val)                                                                                       \
    "<condition><expression type=\"SMS_TaskSequence_VariableConditionExpression\"><variable name=\"Operator\">" op \
    "</variable><variable name=\"Value\">" val "</variable><variable name=\"Variable\">" name                      \
    "</variable></expression></condition>"

static void test_plan(void) {
    CASE("plan: run, skipped by condition, disabled, inside a skipped group, errors");
    const char *doc =
        "<sequence version=\"3.10\">"
        "<step type=\"X\" name=\"A\">" VC("Role", "equals", "Server") "</step>"
        "<step type=\"X\" name=\"B\">" VC("Role", "equals", "Client") "</step>"
        "<step type=\"X\" name=\"C\" disable=\"true\"/>"
        "<group name=\"G1\">" VC("Role", "equals", "Client")
        "<step type=\"X\" name=\"G1a\"/><group name=\"G1b\"><step type=\"X\" name=\"G1b1\"/></group></group>"
        "<group name=\"G2\" disable=\"true\"><step type=\"X\" name=\"G2a\"/></group>"
        "<group name=\"G3\"><step type=\"X\" name=\"G3a\"><condition><expression type=\"SMS_TaskSequence_WMIConditionExpression\">"
        "<variable name=\"Namespace\">root\\cimv2</variable><variable name=\"Query\">SELECT 1</variable></expression></condition></step>"
        "<step type=\"X\" name=\"G3b\"/></group>"
        "<group name=\"G4\"><condition><operator type=\"xor\"/></condition><step type=\"X\" name=\"G4a\"/></group>"
        "<group name=\"G5\">" VC("Role", "equals", "Server") "</group>"
        "</sequence>";
    tsq_node *seq = NULL;
    CHECK(tsq_parse(ctx, doc, strlen(doc), "plan.xml", &seq, NULL) == TSQ_OK);
    tsq_env *env = tsq_env_new(ctx);
    tsq_env_set(env, "role", "server");
    plan_log[0] = '\0';
    CHECK(tsq_plan(seq, env, on_plan, NULL, NULL) == TSQ_OK);
    CHECK_STR(plan_log, "A run\n"
                        "B skip_condition: condition is false\n"
                        "C disabled: disabled\n"
                        "G1 skip_condition: condition is false\n"
                        "G1a skip_parent: group 'G1' is skipped by its condition\n"
                        "G1b skip_parent: group 'G1' is skipped by its condition\n"
                        "G1b1 skip_parent: group 'G1' is skipped by its condition\n"
                        "G2 disabled: disabled\n"
                        "G2a skip_parent: group 'G2' is disabled\n"
                        "G3 run\n"
                        "G3a error: wmi query SELECT 1 is not described\n"
                        "G3b run\n"
                        "G4 error: unknown condition operator type 'xor' (expected and, or, not)\n"
                        "G4a skip_parent: group 'G4' could not be evaluated\n"
                        "G5 run\n");

    CASE("the cached program follows a changed condition");
    tsq_node *a = tsq_node_first(seq);
    int r = 0;
    CHECK(tsq_node_eval_condition(a, env, &r, NULL, NULL, NULL) == TSQ_OK && r == 1);
    tsq_cond *c = NULL;
    tsq_cond_parse(ctx, "Role equals \"Client\"", &c, NULL);
    CHECK(tsq_node_set_condition(a, c, NULL) == TSQ_OK);
    CHECK(tsq_node_eval_condition(a, env, &r, NULL, NULL, NULL) == TSQ_OK && r == 0);
    tsq_env_set(env, "Role", "client");
    CHECK(tsq_node_eval_condition(a, env, &r, NULL, NULL, NULL) == TSQ_OK && r == 1);
    CHECK(tsq_node_set_condition(a, NULL, NULL) == TSQ_OK);
    tsq_env_set(env, "Role", "other");
    CHECK(tsq_node_eval_condition(a, env, &r, NULL, NULL, NULL) == TSQ_OK && r == 1);
    tsq_cond_free(c);

    CASE("a step's evaluation error names the step");
    tsq_error err;
    tsq_node *g3a = tsq_node_first(tsq_node_child(seq, 5));
    CHECK(tsq_node_eval_condition(g3a, env, &r, NULL, NULL, &err) == TSQ_EFACT);
    CHECK_STR(err.step, "G3/G3a");

    CASE("traces through a step");
    tsq_node *b = tsq_node_child(seq, 1);
    trace_log[0] = '\0';
    CHECK(tsq_node_eval_condition(b, env, &r, on_trace, NULL, NULL) == TSQ_OK && r == 0);
    CHECK_STR(trace_log, "1 0 Role equals \"Client\" | Role is \"other\"\n");
    CHECK_STR(tsq_plan_state_name(TSQ_PLAN_RUN), "run");
    tsq_env_free(env);
    tsq_node_release(seq);
}

/* A provider that counts its calls and answers from a buffer it overwrites each time. */
typedef struct counter {
    int wmi, file, registry, software;
    char buf[64];
} counter;

static tsq_status c_wmi(void *ud, const char *ns, const char *q, long *rows) {
    counter *c = ud;
    (void)ns;
    c->wmi++;
    *rows = strstr(q, "Battery") ? 1 : 0;
    return TSQ_OK;
}

static tsq_status c_file(void *ud, const char *path, tsq_file_fact *f) {
    counter *c = ud;
    c->file++;
    if (strstr(path, "missing")) return TSQ_EFACT;
    snprintf(c->buf, sizeof c->buf, "10.0.%d", c->file); /* the first answer: 10.0.1 */
    f->exists = 1;
    f->version = c->buf;
    return TSQ_OK;
}

static tsq_status c_registry(void *ud, const char *key, const char *value, tsq_reg_fact *f) {
    counter *c = ud;
    (void)key, (void)value;
    c->registry++;
    snprintf(c->buf, sizeof c->buf, "%d", c->registry);
    f->exists = 1, f->type = "REG_SZ", f->data = c->buf;
    return TSQ_OK;
}

static tsq_status c_software(void *ud, const char *code, int up, int *installed, const char **version) {
    counter *c = ud;
    (void)code, (void)up;
    c->software++;
    *installed = 1, *version = "1.0";
    return TSQ_OK;
}

#define WMI_STEP(n, q)                                                                                        \
    "<step type=\"X\" name=\"" n "\"><condition><expression type=\"SMS_TaskSequence_WMIConditionExpression\">" \
    "<variable name=\"Query\">" q "</variable></expression></condition></step>"
#define FILE_STEP(n, path, ver)                                                                              \
    "<step type=\"X\" name=\"" n "\"><condition><expression type=\"SMS_TaskSequence_FileConditionExpression\">" \
    "<variable name=\"Path\">" path "</variable><variable name=\"Version\">" ver "</variable>"                \
    "<variable name=\"VersionOperator\">equals</variable></expression></condition></step>"
#define REG_STEP(n)                                                                                          \
    "<step type=\"X\" name=\"" n "\"><condition><expression type=\"SMS_TaskSequence_RegistryConditionExpression\">" \
    "<variable name=\"KeyPath\">HKLM\\K</variable><variable name=\"Value\">V</variable>"                      \
    "<variable name=\"Operator\">equals</variable><variable name=\"Type\">REG_SZ</variable>"                  \
    "<variable name=\"Data\">1</variable></expression></condition></step>"
#define SW_STEP(n)                                                                                           \
    "<step type=\"X\" name=\"" n "\"><condition><expression type=\"SMS_TaskSequence_SoftwareConditionExpression\">" \
    "<variable name=\"Operator\">AnyVersion</variable><variable name=\"ProductCode\">{P}</variable>"           \
    "</expression></condition></step>"

/* A plan's setup: doc parsed into *seq, an environment whose provider counts into *c (with
 * reg as its registry function) and *p, the fact cache as asked. */
static tsq_env *counted_env(const char *doc, tsq_node **seq, counter *c, tsq_provider *p,
                            tsq_status (*reg)(void *, const char *, const char *, tsq_reg_fact *), int cache) {
    *seq = NULL;
    CHECK(tsq_parse(ctx, doc, strlen(doc), "facts.xml", seq, NULL) == TSQ_OK);
    memset(c, 0, sizeof *c);
    *p = (tsq_provider){c_wmi, c_file, c_file, reg, c_software, c};
    tsq_env *env = tsq_env_new(ctx);
    tsq_env_set_provider(env, p);
    tsq_env_set_fact_cache(env, cache);
    return env;
}

static void test_fact_cache(void) {
    const char *doc = "<sequence version=\"3.10\">" WMI_STEP("W1", "SELECT * FROM Win32_Battery")
        WMI_STEP("W2", "SELECT * FROM Win32_Battery") WMI_STEP("W3", "SELECT * FROM Win32_Fan")
        FILE_STEP("F1", "C:\\a.exe", "10.0.1") FILE_STEP("F2", "C:\\a.exe", "10.0.1") FILE_STEP("F3", "C:\\missing", "1")
        FILE_STEP("F4", "C:\\missing", "1") REG_STEP("R1") REG_STEP("R2") SW_STEP("S1") SW_STEP("S2") "</sequence>";
    const char *expect = "W1 run\nW2 run\nW3 skip_condition: condition is false\nF1 run\nF2 run\n"
                         "F3 error: file C:\\missing is not described\nF4 error: file C:\\missing is not described\n"
                         "R1 run\nR2 run\nS1 run\nS2 run\n";
    tsq_node *seq;
    counter c;
    tsq_provider p;

    CASE("fact cache on: a plan asks each distinct fact once, answers kept past the next call");
    tsq_env *env = counted_env(doc, &seq, &c, &p, c_registry, 1);
    plan_log[0] = '\0';
    CHECK(tsq_plan(seq, env, on_plan, NULL, NULL) == TSQ_OK);
    CHECK_STR(plan_log, expect);
    CHECK(c.wmi == 2 && c.file == 2 && c.registry == 1 && c.software == 1);
    tsq_env *copy = tsq_env_clone(env); /* kept by a clone */
    memset(&c, 0, sizeof c);
    CHECK(tsq_plan(seq, copy, on_plan, NULL, NULL) == TSQ_OK); /* a new plan asks again */
    CHECK(c.wmi == 2 && c.file == 2 && c.registry == 1 && c.software == 1);
    tsq_env_free(copy);

    CASE("fact cache off (the default): every operand asks");
    tsq_env_set_fact_cache(env, 0);
    memset(&c, 0, sizeof c);
    plan_log[0] = '\0';
    CHECK(tsq_plan(seq, env, on_plan, NULL, NULL) == TSQ_OK);
    CHECK(c.wmi == 3 && c.file == 4 && c.registry == 2 && c.software == 2);
    /* F2's version is now "10.0.2": the provider answers differently the second time */
    CHECK(strstr(plan_log, "F2 skip_condition") != NULL);
    tsq_env_free(env);
    tsq_node_release(seq);
}

#define REG_KV(n, key, value)                                                                                \
    "<step type=\"X\" name=\"" n "\"><condition><expression type=\"SMS_TaskSequence_RegistryConditionExpression\">" \
    "<variable name=\"KeyPath\">" key "</variable><variable name=\"Value\">" value "</variable>"           \
    "<variable name=\"Operator\">exists</variable></expression></condition></step>"

static tsq_status c_registry_some(void *ud, const char *key, const char *value, tsq_reg_fact *f) {
    counter *c = ud;
    c->registry++;
    if (strcmp(value, "none") == 0) return TSQ_EFACT;
    f->exists = strcmp(key, "HKLM\\Software\\Vendor\\AB") == 0 && strcmp(value, "C") == 0;
    f->type = "REG_SZ";
    return TSQ_OK;
}

static void test_fact_keys(void) {
    CASE("fact cache: facts are told apart by every part (no two keys are joined), texts with %VAR% are expanded first");
    const char *doc = "<sequence version=\"3.10\">" REG_KV("R1", "HKLM\\Software\\Vendor\\AB", "C")
        REG_KV("R2", "HKLM\\Software\\Vendor\\A", "BC") REG_KV("R3", "HKLM\\Software\\Vendor\\ABC", "")
        REG_KV("R4", "%Hive%\\Software\\Vendor\\AB", "C") REG_KV("R5", "HKLM\\Software\\Vendor\\AB", "C")
        REG_KV("R6", "HKLM\\Software\\Vendor\\Z", "none") FILE_STEP("F1", "%D%\\a.exe", "10.0.1")
        FILE_STEP("F2", "C:\\a.exe", "10.0.1") FILE_STEP("F3", "%E%\\a.exe", "10.0.1") "</sequence>";
    const char *expect = "R1 run\nR2 skip_condition: condition is false\nR3 skip_condition: condition is false\n"
                         "R4 run\nR5 run\nR6 error: registry value HKLM\\Software\\Vendor\\Z\\none is not described\n"
                         "F1 run\nF2 run\nF3 skip_condition: condition is false\n";
    tsq_node *seq;
    counter c;
    tsq_provider p;
    tsq_env *env = counted_env(doc, &seq, &c, &p, c_registry_some, 1);
    CHECK(tsq_env_set(env, "Hive", "HKLM") == TSQ_OK);
    CHECK(tsq_env_set(env, "D", "C:") == TSQ_OK);
    CHECK(tsq_env_set(env, "E", "D:") == TSQ_OK);
    plan_log[0] = '\0';
    CHECK(tsq_plan(seq, env, on_plan, NULL, NULL) == TSQ_OK);
    CHECK_STR(plan_log, expect);
    /* R1, R4 and R5 are one fact; F1 and F2 too, F3 (D:\a.exe) another: its version is 10.0.2 */
    CHECK(c.registry == 4);
    CHECK(c.file == 2);
    tsq_env_free(env);
    tsq_node_release(seq);
}

static void test_condition_added(void) {
    CASE("a condition given to a read step that had none is evaluated, and removing it too");
    const char *doc = "<sequence version=\"3.10\"><step type=\"X\" name=\"A\"><action>x</action></step></sequence>";
    tsq_node *seq = NULL;
    CHECK(tsq_parse(ctx, doc, strlen(doc), "add.xml", &seq, NULL) == TSQ_OK);
    tsq_node *a = tsq_node_first(seq);
    tsq_env *env = tsq_env_new(ctx);
    int r = 0;
    CHECK(!tsq_node_has_condition(a));
    CHECK(tsq_node_eval_condition(a, env, &r, NULL, NULL, NULL) == TSQ_OK && r == 1);
    tsq_cond *c = NULL;
    CHECK(tsq_cond_parse(ctx, "Role equals \"Client\"", &c, NULL) == TSQ_OK);
    CHECK(tsq_node_set_condition(a, c, NULL) == TSQ_OK);
    CHECK(tsq_node_has_condition(a));
    CHECK(tsq_node_eval_condition(a, env, &r, NULL, NULL, NULL) == TSQ_OK && r == 0);
    tsq_node *copy = tsq_node_clone(seq);
    CHECK(tsq_node_eval_condition(tsq_node_first(copy), env, &r, NULL, NULL, NULL) == TSQ_OK && r == 0);
    CHECK(tsq_node_set_condition(a, NULL, NULL) == TSQ_OK);
    CHECK(!tsq_node_has_condition(a));
    CHECK(tsq_node_eval_condition(a, env, &r, NULL, NULL, NULL) == TSQ_OK && r == 1);
    tsq_cond_free(c);
    tsq_node_release(copy);
    tsq_env_free(env);
    tsq_node_release(seq);
}

static void test_operator_names(void) {
    CASE("the comparison operators: listed in their stored spelling, each found again in any case");
    size_t n = 0;
    int ok = 1;
    for (const char *op; (op = tsq_cond_operator_at(n)) != NULL; n++) {
        char up[32];
        size_t i = 0;
        for (; op[i] && i < sizeof up - 1; i++) up[i] = (char)(op[i] >= 'a' && op[i] <= 'z' ? op[i] - 32 : op[i]);
        up[i] = '\0';
        ok = ok && tsq_cond_operator(op) == op && tsq_cond_operator(up) == op;
    }
    CHECK(ok);
    CHECK(n == 10);
    CHECK(tsq_cond_operator_at(n) == NULL && tsq_cond_operator_at((size_t)-1) == NULL);
    CHECK_STR(tsq_cond_operator_at(0), "exists");
    CHECK_STR(tsq_cond_operator("NONEXISTS"), "nonExists"); /* the registry's spelling: not listed, still known */
    CHECK(tsq_cond_operator("equal") == NULL && tsq_cond_operator("") == NULL);
}

int main(void) {
    test_operator_names();
    ctx = tsq_ctx_new(NULL, NULL);
    test_fact_cache();
    test_fact_keys();
    test_condition_added();
    test_table();
    test_messages();
    test_trace();
    test_env();
    test_plan();
    tsq_ctx_free(ctx);
    DONE();
}
