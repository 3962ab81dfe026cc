/* test_cond_text.c - the condition tree, its text form, and its XML. */
#include "harness.h"
#include "tsq.h"

static tsq_ctx *ctx;
static tsq_buf tb;

static tsq_cond *var(const char *name, const char *op, const char *value) {
    tsq_cond *c = tsq_cond_new_expression(ctx, "Variable");
    tsq_cond_set(c, "Variable", name, NULL);
    tsq_cond_set(c, "Operator", op, NULL);
    if (value) tsq_cond_set(c, "Value", value, NULL);
    return c;
}

static tsq_cond *op2(tsq_cond_kind k, tsq_cond *a, tsq_cond *b) {
    tsq_cond *c = tsq_cond_new(ctx, k);
    if (a) tsq_cond_add(c, a, NULL);
    if (b) tsq_cond_add(c, b, NULL);
    tsq_cond_free(a);
    tsq_cond_free(b);
    return c;
}

static tsq_cond *cond1(tsq_cond *o) { return op2(TSQ_C_CONDITION, o, NULL); }

/* parse text, print it: the same text; returns the parsed condition */
static tsq_cond *rt(const char *text, const char *expect) {
    tsq_cond *c = NULL;
    tsq_error err;
    tsq_status st = tsq_cond_parse(ctx, text, &c, &err);
    CHECK(st == TSQ_OK);
    if (st) {
        fprintf(stderr, "  parse %s: %s\n", text, err.message);
        return NULL;
    }
    CHECK_STR(tsq_cond_to_text(c, &tb), expect ? expect : text);
    tsq_cond *again = NULL;
    CHECK(tsq_cond_parse(ctx, tsq_cond_to_text(c, &tb), &again, &err) == TSQ_OK);
    CHECK(tsq_cond_equal(c, again));
    tsq_cond_free(again);
    return c;
}

static void bad(const char *text, int column, const char *message) {
    tsq_cond *c = NULL;
    tsq_error err;
    memset(&err, 0, sizeof err);
    CHECK(tsq_cond_parse(ctx, text, &c, &err) == TSQ_EPARSE);
    CHECK(c == NULL);
    CHECK(err.code == TSQ_EPARSE);
    CHECK(err.column == column);
    if (err.column != column) fprintf(stderr, "  %s: column %d, expected %d\n", text, err.column, column);
    CHECK_STR(err.message, message);
}

static void test_tree(void) {
    CASE("expressions keep short class names as full names");
    tsq_cond *e = tsq_cond_new_expression(ctx, "WMI");
    CHECK_STR(tsq_cond_class(e), "SMS_TaskSequence_WMIConditionExpression");
    tsq_cond_free(e);
    const char *shorts[][2] = {{"Variable", "SMS_TaskSequence_VariableConditionExpression"},
                               {"file", "SMS_TaskSequence_FileConditionExpression"},
                               {"Folder", "SMS_TaskSequence_FolderConditionExpression"},
                               {"Registry", "SMS_TaskSequence_RegistryConditionExpression"},
                               {"Software", "SMS_TaskSequence_SoftwareConditionExpression"},
                               {"OS", "SMS_TaskSequence_OSConditionExpression"},
                               {"BDD_Custom", "BDD_Custom"}};
    for (size_t i = 0; i < 7; i++) {
        e = tsq_cond_new_expression(ctx, shorts[i][0]);
        CHECK_STR(tsq_cond_class(e), shorts[i][1]);
        tsq_cond_free(e);
    }

    CASE("values are kept in the console's order whatever order they are set in");
    e = var("_SMSTSInWinPE", "equals", "false");
    CHECK(tsq_cond_value_count(e) == 3);
    CHECK_STR(tsq_cond_value_name(e, 0), "Operator");
    CHECK_STR(tsq_cond_value_name(e, 1), "Value");
    CHECK_STR(tsq_cond_value_name(e, 2), "Variable");
    CHECK_STR(tsq_cond_get(e, "Variable"), "_SMSTSInWinPE");
    CHECK(tsq_cond_get(e, "Nope") == NULL);
    CHECK(tsq_cond_set(e, "Value", NULL, NULL) == TSQ_OK);
    CHECK(tsq_cond_value_count(e) == 2);

    CASE("attributes beyond type");
    CHECK(tsq_cond_set_attr(e, "ignoreQueryFailure", "true", NULL) == TSQ_OK);
    CHECK_STR(tsq_cond_attr(e, "ignoreQueryFailure"), "true");
    CHECK_STR(tsq_cond_attr(e, "type"), "SMS_TaskSequence_VariableConditionExpression");
    tsq_error err;
    CHECK(tsq_cond_set_attr(e, "type", "x", &err) == TSQ_EINVAL);
    CHECK(tsq_cond_set_attr(e, "bad name", "x", &err) == TSQ_EINVAL);

    CASE("clone and equal");
    tsq_cond *c = tsq_cond_clone(e);
    CHECK(tsq_cond_equal(c, e));
    tsq_cond_set(c, "Operator", "EXISTS", NULL);
    tsq_cond_set(e, "Operator", "exists", NULL);
    CHECK(tsq_cond_equal(c, e)); /* operator names compare case-insensitively */
    tsq_cond_set(c, "Variable", "other", NULL);
    CHECK(!tsq_cond_equal(c, e));
    tsq_cond_free(c);

    CASE("operands: a condition is not an operand; expressions have none");
    tsq_cond *top = tsq_cond_new(ctx, TSQ_C_CONDITION);
    CHECK(tsq_cond_add(top, e, NULL) == TSQ_OK);
    CHECK(tsq_cond_count(top) == 1);
    CHECK(tsq_cond_get_kind(tsq_cond_operand(top, 0)) == TSQ_C_EXPRESSION);
    CHECK(tsq_cond_operand(top, 1) == NULL);
    CHECK(tsq_cond_add(top, top, &err) == TSQ_EINVAL);
    CHECK(tsq_cond_add(e, e, &err) == TSQ_EINVAL);
    CHECK_STR(err.message, "an expression has no operands");
    tsq_cond *g = tsq_cond_new(ctx, TSQ_C_OSGROUP);
    CHECK(tsq_cond_add(g, e, &err) == TSQ_EINVAL);
    tsq_cond *pg = tsq_cond_new(ctx, TSQ_C_OSEXPRGROUP);
    CHECK(tsq_cond_add(top, pg, &err) == TSQ_EINVAL);
    CHECK_STR(err.message, "an os expression group can only be added to an os condition group");
    tsq_cond_free(pg);
    tsq_cond_free(g);
    tsq_cond_free(top);
    tsq_cond_free(e);
    tsq_cond_free(NULL);
}

static void test_print(void) {
    CASE("the brief's example");
    tsq_cond *w = tsq_cond_new_expression(ctx, "WMI");
    tsq_cond_set(w, "Namespace", "root\\cimv2", NULL);
    tsq_cond_set(w, "Query", "SELECT * FROM Win32_Battery", NULL);
    tsq_cond *notw = op2(TSQ_C_NOT, w, NULL);
    tsq_cond *any = op2(TSQ_C_OR, var("Model", "like", "%Latitude%"), notw);
    tsq_cond *all = op2(TSQ_C_CONDITION, var("_SMSTSInWinPE", "equals", "false"), any);
    CHECK_STR(tsq_cond_to_text(all, &tb),
              "_SMSTSInWinPE equals \"false\" and (Model like \"%Latitude%\" or not wmi \"SELECT * FROM Win32_Battery\")");
    tsq_cond_free(all);

    CASE("implicit and versus an and operator");
    tsq_cond *a = op2(TSQ_C_CONDITION, var("A", "exists", NULL), var("B", "exists", NULL));
    CHECK_STR(tsq_cond_to_text(a, &tb), "A exists and B exists");
    tsq_cond_free(a);
    a = cond1(op2(TSQ_C_AND, var("A", "exists", NULL), var("B", "exists", NULL)));
    CHECK_STR(tsq_cond_to_text(a, &tb), "(A exists and B exists)");
    tsq_cond_free(a);
    a = cond1(op2(TSQ_C_OR, var("A", "exists", NULL), NULL));
    CHECK_STR(tsq_cond_to_text(a, &tb), "any(A exists)");
    tsq_cond_free(a);
    a = cond1(op2(TSQ_C_OR, NULL, NULL));
    CHECK_STR(tsq_cond_to_text(a, &tb), "any()");
    tsq_cond_free(a);
    a = tsq_cond_new(ctx, TSQ_C_CONDITION);
    CHECK_STR(tsq_cond_to_text(a, &tb), "true");
    tsq_cond_free(a);

    CASE("precedence: parentheses only where needed");
    a = cond1(op2(TSQ_C_OR, op2(TSQ_C_AND, var("A", "exists", NULL), var("B", "exists", NULL)), var("C", "exists", NULL)));
    CHECK_STR(tsq_cond_to_text(a, &tb), "A exists and B exists or C exists");
    tsq_cond_free(a);
    a = cond1(op2(TSQ_C_AND, op2(TSQ_C_OR, var("A", "exists", NULL), var("B", "exists", NULL)), var("C", "exists", NULL)));
    CHECK_STR(tsq_cond_to_text(a, &tb), "((A exists or B exists) and C exists)");
    tsq_cond_free(a);
    a = cond1(op2(TSQ_C_NOT, op2(TSQ_C_OR, var("A", "exists", NULL), var("B", "exists", NULL)), NULL));
    CHECK_STR(tsq_cond_to_text(a, &tb), "not (A exists or B exists)");
    tsq_cond_free(a);
    a = cond1(op2(TSQ_C_NOT, var("A", "exists", NULL), var("B", "exists", NULL)));
    CHECK_STR(tsq_cond_to_text(a, &tb), "none(A exists, B exists)");
    tsq_cond_free(a);

    CASE("a value order other than the console's is shown");
    tsq_cond *src = NULL;
    CHECK(tsq_cond_parse(ctx, "X equals \"1\" [Variable, Operator, Value]", &src, NULL) == TSQ_OK);
    const tsq_cond *x = tsq_cond_operand(src, 0);
    CHECK_STR(tsq_cond_value_name(x, 0), "Variable");
    CHECK_STR(tsq_cond_value_name(x, 2), "Value");
    tsq_cond_free(src);

    CASE("strings escape quotes and backslashes");
    a = cond1(var("P", "equals", "a\"b\\c"));
    CHECK_STR(tsq_cond_to_text(a, &tb), "P equals \"a\\\"b\\\\c\"");
    tsq_cond_free(a);

    CASE("variable names that are keywords or not names");
    a = cond1(var("wmi", "exists", NULL));
    CHECK_STR(tsq_cond_to_text(a, &tb), "variable \"wmi\" exists");
    tsq_cond_free(a);
    a = cond1(var("My Var", "equals", "x"));
    CHECK_STR(tsq_cond_to_text(a, &tb), "variable \"My Var\" equals \"x\"");
    tsq_cond_free(a);

    CASE("an expression the short forms can not say uses the generic form");
    a = tsq_cond_new_expression(ctx, "File");
    tsq_cond_set(a, "Path", "C:\\x", NULL);
    tsq_cond_set(a, "Operator", "greaterEqual", NULL);
    tsq_cond *ca = cond1(a);
    CHECK_STR(tsq_cond_to_text(ca, &tb),
              "expression \"SMS_TaskSequence_FileConditionExpression\" { Path = \"C:\\\\x\", Operator = \"greaterEqual\" }");
    tsq_cond_free(ca);
}

static void test_round_trips(void) {
    const char *texts[] = {
        "_SMSTSInWinPE equals \"false\"",
        "A exists and B notExists",
        "(A exists and B notExists)",
        "A exists or B exists and C exists",
        "(A exists or B exists) and C exists",
        "not A exists",
        "not not A exists",
        "not (A exists and B exists)",
        "none(A exists, B exists)",
        "all()",
        "any()",
        "none()",
        "all(A exists)",
        "any(A exists) and any(B exists)",
        "true",
        "2PEnabled equals \"true\"",
        "X like \"%Latitude%\"",
        "X Equals \"TRUE\" [Variable, Operator, Value]",
        "X exists [Variable, Operator]",
        "wmi \"SELECT * FROM Win32_Battery\"",
        "wmi \"root\\\\wmi\" \"SELECT * FROM MSAcpi\"",
        "wmi \"SELECT 1\" [ignoreQueryFailure=\"true\"]",
        "file \"%windir%\\\\notepad.exe\"",
        "file \"C:\\\\a.dll\" version greaterEqual \"10.0.1\"",
        "file \"C:\\\\a.dll\" version less \"2\" datetime greater \"20200101000000.000000+000\"",
        "folder \"%ScriptRoot%\"",
        "folder \"C:\\\\x\" datetime lessEqual \"20200101000000.000000+000\"",
        "registry \"HKEY_LOCAL_MACHINE\\\\SOFTWARE\\\\X\" \"Complete\" REG_DWORD notExists",
        "registry \"HKEY_LOCAL_MACHINE\\\\SOFTWARE\\\\X\" REG_SZ exists",
        "registry \"HKLM\\\\K\" \"V\" REG_SZ equals \"FAILURE\"",
        "registry \"HKLM\\\\K\" exists",
        "registry \"HKLM\\\\K\" \"V\" equals \"\"",
        "software ThisVersion \"{90160000}\" name \"Office\" upgrade \"{00160000}\" version \"16.0\"",
        "software AnyVersion upgrade \"{001}\"",
        "os \"X86\" greaterEqual \"6.10.7601.1\"",
        "os \"X86\" equals \"6.10.7601.1\" or os \"X64\" equals \"6.10.7601.1\"",
        "expression \"BDD_Custom\" { A = \"1\", \"odd name\" = \"2\" }",
        "expression \"BDD_Custom\" {}",
        "expression \"SMS_TaskSequence_VariableConditionExpression\" { Value = \"x\", Operator = \"and\", Variable = \"V\" }",
        "all(osgroup(platform \"All x64 Windows 7 Client\" key[arch=\"x64\", type=\"Win_NT\", minVer=\"6.10.0000.0\", "
        "maxVer=\"6.10.9999.9999\"] (wmi \"SELECT 1\" [ignoreQueryFailure=\"true\"], wmi \"SELECT 2\" "
        "[ignoreQueryFailure=\"true\"]), platform \"B\" ()))",
        "osgroup(platform ())",
        "all(A exists, B exists) [type=\"AND\"]",
        "any(A exists) [foo=\"bar\"]",
        "X exists [Variable, Operator, note=\"kept\"]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        CASE(texts[i]);
        tsq_cond_free(rt(texts[i], NULL));
    }

    CASE("input forms that print differently");
    tsq_cond_free(rt("  A   exists\nAND\tB exists ", "A exists and B exists"));
    tsq_cond_free(rt("((A exists))", "A exists"));
    tsq_cond_free(rt("(A exists or B exists)", "A exists or B exists"));
    tsq_cond_free(rt("NOT A exists", "not A exists"));
    tsq_cond_free(rt("software any \"{1}\"", "software AnyVersion \"{1}\""));
    tsq_cond_free(rt("software this \"{1}\"", "software ThisVersion \"{1}\""));
    tsq_cond_free(rt("wmi \"root\\cimv2\" \"Q\"", "wmi \"Q\""));
    tsq_cond_free(rt("file \"C:\\x\"", "file \"C:\\\\x\"")); /* a lone backslash is itself */
    tsq_cond_free(rt("all(A exists, B exists) [type=\"and\"]", "(A exists and B exists)"));

    CASE("the parsed tree");
    tsq_cond *c = rt("A exists and (B exists or C exists)", NULL);
    CHECK(tsq_cond_get_kind(c) == TSQ_C_CONDITION && tsq_cond_count(c) == 2);
    CHECK(tsq_cond_get_kind(tsq_cond_operand(c, 1)) == TSQ_C_OR);
    tsq_cond_free(c);
    c = rt("wmi \"Q\" [ignoreQueryFailure=\"true\"]", NULL);
    CHECK_STR(tsq_cond_attr(tsq_cond_operand(c, 0), "ignoreQueryFailure"), "true");
    CHECK_STR(tsq_cond_get(tsq_cond_operand(c, 0), "Namespace"), "root\\cimv2");
    tsq_cond_free(c);
    c = rt("registry \"K\" \"V\" REG_SZ equals \"D\"", NULL);
    const tsq_cond *r = tsq_cond_operand(c, 0);
    CHECK_STR(tsq_cond_value_name(r, 0), "Data");
    CHECK_STR(tsq_cond_get(r, "Type"), "REG_SZ");
    CHECK_STR(tsq_cond_get(r, "Value"), "V");
    tsq_cond_free(c);
}

static void test_errors(void) {
    CASE("parse errors name what was expected, with the column");
    bad("", 1, "expected a condition (a variable test, wmi, file, folder, registry, software, not, all, any, none or '(') at column 1, found the end of the text");
    bad("A", 2, "expected an operator (equals, notEquals, exists, like, ...) at column 2, found the end of the text");
    bad("A equals \"x", 10, "expected 'and', 'or' or the end of the text at column 10, found an unterminated string");
    bad("A exists and", 13, "expected a condition (a variable test, wmi, file, folder, registry, software, not, all, any, none or '(') at column 13, found the end of the text");
    bad("(A exists", 10, "expected ')' at column 10, found the end of the text");
    bad("A exists B exists", 10, "expected 'and', 'or' or the end of the text at column 10, found 'B'");
    bad("wmi", 4, "expected a string (the WMI query) at column 4, found the end of the text");
    bad("all(A exists B exists)", 14, "expected ',' or ')' at column 14, found 'B'");
    bad("A exists [Value]", 11, "expected the name of a value of this expression (each once) or name=\"value\" at column 11, found 'Value'");
    bad("A exists [Variable]", 20, "expected a value order naming every value at column 20, found the end of the text");
    bad("wmi \"Q\" [type=\"x\"]", 10, "expected an attribute other than type at column 10, found 'type'");
    bad("osgroup(A exists)", 17, "expected a platform(...) operand in osgroup at column 17, found ')'");
    bad("A exists\nor @", 4, "expected a condition (a variable test, wmi, file, folder, registry, software, not, all, any, none or '(') at column 4, found '@'");
    tsq_cond *c = NULL;
    tsq_error err;
    CHECK(tsq_cond_parse(ctx, "A exists\nor @", &c, &err) == TSQ_EPARSE);
    CHECK(err.line == 2);

    CASE("nesting deeper than the limit");
    char deep[400];
    size_t k = 0;
    for (int i = 0; i < 100; i++) deep[k++] = '(';
    strcpy(deep + k, "A exists");
    k += 8;
    for (int i = 0; i < 100; i++) deep[k++] = ')';
    deep[k] = '\0';
    CHECK(tsq_cond_parse(ctx, deep, &c, &err) == TSQ_ELIMIT);
}

static const char *xml_of(tsq_node *seq) {
    static char out[65536];
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    out[0] = '\0';
    if (tsq_write(seq, &b, NULL) == TSQ_OK) snprintf(out, sizeof out, "%s", b.data);
    tsq_buf_free(&b);
    return out;
}

static void test_xml(void) {
    CASE("the XML of a variable condition on a compact document");
    const char *doc = "<sequence version=\"3.10\"><step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"S\">"
                      "<action>cmd</action></step></sequence>";
    tsq_node *seq = NULL;
    CHECK(tsq_parse(ctx, doc, strlen(doc), "t.xml", &seq, NULL) == TSQ_OK);
    tsq_node *s = tsq_node_first(seq);
    CHECK(!tsq_node_has_condition(s));
    CHECK(tsq_node_condition(s) == NULL);
    tsq_cond *c = cond1(var("_SMSTSInWinPE", "equals", "false"));
    CHECK(tsq_node_set_condition(s, c, NULL) == TSQ_OK);
    CHECK_STR(xml_of(seq),
              "<sequence version=\"3.10\"><step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"S\">"
              "<condition><expression type=\"SMS_TaskSequence_VariableConditionExpression\"><variable name=\"Operator\">"
              "equals</variable><variable name=\"Value\">false</variable><variable name=\"Variable\">_SMSTSInWinPE"
              "</variable></expression></condition><action>cmd</action></step></sequence>");
    CHECK(tsq_node_has_condition(s));
    tsq_cond *back = tsq_node_condition(s);
    CHECK(tsq_cond_equal(back, c));
    tsq_cond_free(back);
    tsq_cond_free(c);

    CASE("replacing keeps the place; operators, attributes, empty operators");
    tsq_cond_parse(ctx, "any() and (wmi \"Q\" [ignoreQueryFailure=\"true\"] or not X exists)", &c, NULL);
    CHECK(tsq_node_set_condition(s, c, NULL) == TSQ_OK);
    CHECK_STR(xml_of(seq),
              "<sequence version=\"3.10\"><step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"S\">"
              "<condition><operator type=\"or\"/><operator type=\"or\"><expression type=\"SMS_TaskSequence_WMIConditionExpression\" "
              "ignoreQueryFailure=\"true\"><variable name=\"Namespace\">root\\cimv2</variable><variable name=\"Query\">Q</variable>"
              "</expression><operator type=\"not\"><expression type=\"SMS_TaskSequence_VariableConditionExpression\">"
              "<variable name=\"Operator\">exists</variable><variable name=\"Variable\">X</variable></expression></operator>"
              "</operator></condition><action>cmd</action></step></sequence>");
    back = tsq_node_condition(s);
    CHECK(tsq_cond_equal(back, c));
    tsq_cond_free(back);
    tsq_cond_free(c);

    CASE("an operand alone becomes the only operand; NULL removes");
    tsq_cond *v = var("A", "exists", NULL);
    CHECK(tsq_node_set_condition(s, v, NULL) == TSQ_OK);
    back = tsq_node_condition(s);
    CHECK(tsq_cond_count(back) == 1 && tsq_cond_equal(tsq_cond_operand(back, 0), v));
    tsq_cond_free(back);
    tsq_cond_free(v);
    CHECK(tsq_node_set_condition(s, NULL, NULL) == TSQ_OK);
    CHECK(!tsq_node_has_condition(s));
    CHECK_STR(xml_of(seq), doc);
    tsq_error err;
    CHECK(tsq_node_set_condition(seq, NULL, &err) == TSQ_EINVAL);
    tsq_node_release(seq);

    CASE("an indented document gets indented condition elements");
    const char *ind = "<sequence version=\"3.10\">\n  <group name=\"G\">\n    <step name=\"S\" type=\"X\">\n"
                      "      <action>cmd</action>\n    </step>\n  </group>\n</sequence>";
    CHECK(tsq_parse(ctx, ind, strlen(ind), "t.xml", &seq, NULL) == TSQ_OK);
    s = tsq_node_first(tsq_node_first(seq));
    tsq_cond_parse(ctx, "any(A exists)", &c, NULL);
    CHECK(tsq_node_set_condition(s, c, NULL) == TSQ_OK);
    tsq_cond_free(c);
    CHECK_STR(xml_of(seq), "<sequence version=\"3.10\">\n  <group name=\"G\">\n    <step name=\"S\" type=\"X\">\n"
                           "      <condition>\n        <operator type=\"or\">\n"
                           "          <expression type=\"SMS_TaskSequence_VariableConditionExpression\">\n"
                           "            <variable name=\"Operator\">exists</variable>\n"
                           "            <variable name=\"Variable\">A</variable>\n"
                           "          </expression>\n        </operator>\n      </condition>\n"
                           "      <action>cmd</action>\n    </step>\n  </group>\n</sequence>");
    tsq_node_release(seq);

    CASE("MDT shapes: empty condition, a bare expression outside <condition>");
    const char *mdt = "<sequence version=\"3.00\"><step name=\"A\"><condition></condition><action/></step>"
                      "<step name=\"B\"><expression type=\"SMS_TaskSequence_VariableConditionExpression\">"
                      "<variable name=\"Variable\">X</variable><variable name=\"Operator\">exists</variable></expression>"
                      "<action/></step></sequence>";
    CHECK(tsq_parse(ctx, mdt, strlen(mdt), "t.xml", &seq, NULL) == TSQ_OK);
    tsq_node *a = tsq_node_first(seq), *b = tsq_node_next(a);
    CHECK(!tsq_node_has_condition(a) && tsq_node_condition(a) == NULL);
    CHECK(!tsq_node_has_condition(b) && tsq_node_condition(b) == NULL);
    tsq_env *env = tsq_env_new(ctx);
    int r = 0;
    CHECK(tsq_node_eval_condition(b, env, &r, NULL, NULL, NULL) == TSQ_OK && r == 1);
    tsq_env_free(env);
    tsq_node_release(seq);

    CASE("an unknown operator type can not be read");
    const char *odd = "<sequence><step name=\"A\"><condition><operator type=\"xor\"/></condition></step></sequence>";
    CHECK(tsq_parse(ctx, odd, strlen(odd), "t.xml", &seq, NULL) == TSQ_OK);
    a = tsq_node_first(seq);
    CHECK(tsq_node_has_condition(a));
    CHECK(tsq_node_condition(a) == NULL);
    env = tsq_env_new(ctx);
    CHECK(tsq_node_eval_condition(a, env, &r, NULL, NULL, &err) == TSQ_EPARSE);
    CHECK_STR(err.message, "unknown condition operator type 'xor' (expected and, or, not)");
    tsq_env_free(env);
    tsq_node_release(seq);
}

int main(void) {
    ctx = tsq_ctx_new(NULL, NULL);
    tsq_buf_init(&tb, ctx);
    test_tree();
    test_print();
    test_round_trips();
    test_errors();
    test_xml();
    tsq_buf_free(&tb);
    tsq_ctx_free(ctx);
    DONE();
}
