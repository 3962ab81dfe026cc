/* run_rules.c - the engine's own variable handling: a step's action variables (defaults
 * placed before it runs and removed after), the sequence's globals, Set Task Sequence
 * Variable and the rules of Set Dynamic Variables. The decisions are listed in run.c. */
#include "run.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <ctype.h>
#include <stdio.h>
#include <strings.h>

/* ------------------------------------------------------------------ action variables */

static void inject_push(engine *e, const char *name, const char *value) {
    if (e->ninj == e->capinj) {
        size_t ncap = e->capinj ? e->capinj * 2 : 32;
        injected *n = tsq_ctx_alloc(e->ctx, e->inj, e->capinj * sizeof *n, ncap * sizeof *n);
        if (!n) {
            tsq_eng_set_oom(e);
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
size_t tsq_eng_inject(engine *e, const tsq_node *a) {
    size_t mark = e->ninj;
    tsq_ctx *ctx = a->ctx;
    tsq_node *list = tsq_elem_child(a, ctx->atom[A_defaultVarList]);
    if (!list) return mark;
    for (tsq_node *v = tsq_elem_first(list); v && !e->oom; v = tsq_elem_next(v)) {
        if (v->name != ctx->atom[A_variable] || tsq_eng_is_true(tsq_eng_attr(v, A_hidden))) continue;
        const char *name = tsq_eng_attr(v, A_name);
        const char *value = v->text ? v->text : "";
        if (!name || !*name || !*value || tsq_env_get(e->env, name)) continue;
        tsq_eng_env_set(e, name, value);
        inject_push(e, name, value);
    }
    return mark;
}

/* Removes the defaults placed since mark, unless the step changed them. */
void tsq_eng_uninject(engine *e, size_t mark) {
    while (e->ninj > mark) {
        injected *i = &e->inj[--e->ninj];
        const char *now = tsq_env_get(e->env, i->name);
        if (now && strcmp(now, i->value) == 0) tsq_eng_env_set(e, i->name, "");
    }
}

void tsq_eng_set_globals(engine *e, const tsq_node *seq) {
    tsq_ctx *ctx = seq->ctx;
    tsq_node *list = tsq_elem_child(seq, ctx->atom[A_globalVarList]);
    if (!list) return;
    for (tsq_node *v = tsq_elem_first(list); v; v = tsq_elem_next(v)) {
        if (v->name != ctx->atom[A_variable]) continue;
        const char *name = tsq_eng_attr(v, A_name);
        if (name && *name && v->text && *v->text && !tsq_env_get(e->env, name)) tsq_eng_env_set(e, name, v->text);
    }
}

/* ------------------------------------------------------------------ Set Task Sequence Variable */

outcome tsq_eng_fail_with(tsq_buf *out, int32_t code, const char *msg) {
    outcome o = {0, 0, code};
    if (out->len) tsq_buf_add(out, "\n", 1);
    tsq_buf_adds(out, msg);
    return o;
}

static outcome set_variable_checked(engine *e, const char *name, const char *value, tsq_buf *out) {
    outcome ok = {1, 0, 0};
    char msg[400];
    if (!name || !*name) return tsq_eng_fail_with(out, EXIT_INVALIDARG, "the step names no variable");
    if (name[0] == '_') {
        snprintf(msg, sizeof msg, "variable %.256s is read-only", name);
        return tsq_eng_fail_with(out, EXIT_ACCESSDENIED, msg);
    }
    tsq_eng_env_set(e, name, value);
    return ok;
}

outcome tsq_eng_builtin_setvar(engine *e, const tsq_node *a, tsq_buf *out) {
    const char *name = tsq_eng_dvar(a, "VariableName");
    const char *value = tsq_eng_dvar(a, "VariableValue");
    tsq_buf x;
    tsq_buf_init(&x, e->ctx);
    const char *v = tsq_env_expand(e->env, value ? value : "", &x);
    if (x.failed) tsq_eng_set_oom(e);
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
        if (st == TSQ_ENOMEM) tsq_eng_set_oom(e);
        if (st != TSQ_OK) {
            snprintf(re->msg, sizeof re->msg, "%.500s", err.message[0] ? err.message : tsq_status_name(st));
            rc = 0;
        }
    }
    xmlFree(typ);
    if (re->a.failed || re->b.failed) tsq_eng_set_oom(e);
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

outcome tsq_eng_builtin_dynvars(engine *e, const tsq_node *a, tsq_buf *out) {
    outcome o = {1, 0, 0};
    const char *rules = tsq_eng_dvar(a, "Rules");
    if (!rules || !*rules) return o;
    tsq_xml_init();
    xmlParserCtxtPtr px = xmlNewParserCtxt();
    if (!px) {
        tsq_eng_set_oom(e);
        return tsq_eng_fail_with(out, EXIT_E_FAIL, "out of memory");
    }
    size_t len = strlen(rules);
    xmlDocPtr doc = len > 0x7fffffff ? NULL
        : xmlCtxtReadMemory(px, rules, (int)len, "Rules", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!doc || doc->intSubset || doc->extSubset || !root || !xml_is(root, "Rules")) {
        o = tsq_eng_fail_with(out, EXIT_INVALIDARG, doc && (doc->intSubset || doc->extSubset)
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
                    o = tsq_eng_fail_with(out, EXIT_E_FAIL, msg);
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
    if (re.a.failed || re.b.failed) tsq_eng_set_oom(e);
    tsq_buf_free(&re.a);
    tsq_buf_free(&re.b);
done:
    if (doc) xmlFreeDoc(doc);
    xmlFreeParserCtxt(px);
    return o;
}

