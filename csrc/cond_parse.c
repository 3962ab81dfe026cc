/* cond_parse.c - the readable text form of conditions: the parser (the printer is in
 * cond_print.c; both follow the grammar below).
 *
 * Condition text
 * --------------
 *   condition  = "true"                        no operand (always holds)
 *              | or_expr                       see "top level" below
 *   or_expr    = and_expr { "or" and_expr }    two or more: an "or" operator
 *   and_expr   = unary { "and" unary }         two or more: an "and" operator
 *   unary      = "not" unary                   a "not" operator with one operand
 *              | primary
 *   primary    = "(" or_expr ")"
 *              | "all"  "(" [ operands ] ")" [ annot ]   "and" operator, any number of operands
 *              | "any"  "(" [ operands ] ")" [ annot ]   "or" operator
 *              | "none" "(" [ operands ] ")" [ annot ]   "not" operator: no operand holds
 *              | "osgroup" "(" [ operands ] ")" [ annot ]             osConditionGroup
 *              | "platform" [ STRING ] { "key" annot } "(" [ operands ] ")" [ annot ]
 *                                        osExpressionGroup: STRING is its name, each
 *                                        key[...] one <platformKey> with its attributes
 *              | leaf [ annot ]
 *   operands   = or_expr { "," or_expr }
 *   leaf       = NAME OP [ STRING ]                           variable: Variable Operator [Value]
 *              | "variable" STRING OP [ STRING ]              same, for any variable name
 *              | "wmi" [ STRING ] STRING                      [Namespace] Query; no namespace
 *                                                             means root\cimv2
 *              | "file" STRING [ "version" OP STRING ] [ "datetime" OP STRING ]
 *              | "folder" STRING [ "datetime" OP STRING ]
 *              | "registry" STRING [ STRING ] [ TYPE ] OP [ STRING ]
 *                                                             KeyPath [Value] [Type] Operator [Data]
 *              | "software" OP [ STRING ] [ "name" STRING ] [ "upgrade" STRING ] [ "version" STRING ]
 *                                                             Operator [ProductCode] ...; OP "any" and
 *                                                             "this" stand for AnyVersion, ThisVersion
 *              | "os" STRING OP STRING                        OSConditionExpression: Architecture Operator Version
 *              | "expression" STRING "{" [ field { "," field } ] "}"   any class, values in order
 *   field      = (NAME | STRING) "=" STRING
 *   annot      = "[" item { "," item } "]"
 *   item       = NAME "=" STRING                  an attribute of the element
 *                                                 (ignoreQueryFailure="true"; type="AND" on an
 *                                                 operator keeps a type written in another case)
 *              | NAME                             the stored order of the values, when it is
 *                                                 not the console's: [Variable, Operator, Value]
 *   NAME, OP, TYPE = [A-Za-z0-9_]+ ; STRING = "..." with \" and \\ (a backslash before any
 *                                 other character is itself)
 *
 * Keywords are case-insensitive; a variable whose name is a keyword or not a NAME is
 * written with the "variable" form. Precedence is not > and > or.
 *
 * Top level: an unparenthesised and-chain is the condition's own list of operands (all
 * must hold, <condition><a/><b/></condition>); a parenthesised one is an "and" operator:
 *   A and B        two operands of the condition
 *   (A and B)      one "and" operator
 *   A or B         one "or" operator
 *   any(A)         an "or" operator with one operand (the console's "If statement" shape)
 * The printer writes parentheses only where they are needed, infix operators when an
 * operator has two or more operands (one for not) and no attributes, the function forms
 * otherwise. parse(to_text(c)) is tsq_cond_equal to c for every condition; what the text
 * does not keep is the case of an operator's type when printed infix, which tsq_cond_equal
 * ignores as well. */
#include "cond.h"

#include <stdio.h>

/* ------------------------------------------------------------------ parser */

enum { T_EOF, T_NAME, T_STRING, T_LP, T_RP, T_LB, T_RB, T_LC, T_RC, T_COMMA, T_EQ, T_BAD };

typedef struct P {
    tsq_ctx *ctx;
    const char *s;
    size_t n, pos;      /* text, length, scan position */
    int tok;
    size_t t0, tlen;    /* the current token */
    tsq_buf str;        /* T_STRING: decoded value */
    int depth;
    tsq_error *err;
} P;

static tsq_status fail(P *p, const char *expected) {
    if (!p->err) return TSQ_EPARSE;
    int line = 1, col = 1;
    for (size_t i = 0; i < p->t0 && i < p->n; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char found[64];
    if (p->tok == T_EOF) snprintf(found, sizeof found, "the end of the text");
    else if (p->tok == T_BAD && p->t0 < p->n && p->s[p->t0] == '"') snprintf(found, sizeof found, "an unterminated string");
    else snprintf(found, sizeof found, "'%.*s'", (int)(p->tlen > 40 ? 40 : p->tlen), p->s + p->t0);
    tsq_err(p->err, TSQ_EPARSE, "expected %s at column %d, found %s", expected, col, found);
    p->err->line = line;
    p->err->column = col;
    return TSQ_EPARSE;
}

static void next(P *p) {
    const char *s = p->s;
    while (p->pos < p->n && (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\r' || s[p->pos] == '\n'))
        p->pos++;
    p->t0 = p->pos;
    if (p->pos >= p->n) {
        p->tok = T_EOF;
        p->tlen = 0;
        return;
    }
    char ch = s[p->pos];
    if (tsq_cond_text_ident_char((unsigned char)ch)) {
        while (p->pos < p->n && tsq_cond_text_ident_char((unsigned char)s[p->pos])) p->pos++;
        p->tok = T_NAME;
    } else if (ch == '"') {
        p->str.len = 0;
        tsq_buf_add(&p->str, "", 0);
        size_t i = p->pos + 1;
        p->tok = T_BAD;
        while (i < p->n) {
            if (s[i] == '"') {
                p->tok = T_STRING;
                i++;
                break;
            }
            if (s[i] == '\\' && i + 1 < p->n && (s[i + 1] == '"' || s[i + 1] == '\\')) i++;
            tsq_buf_add(&p->str, s + i, 1);
            i++;
        }
        p->pos = i;
    } else {
        static const char punct[] = "()[]{},=";
        const char *q = strchr(punct, ch);
        p->tok = q && ch ? T_LP + (int)(q - punct) : T_BAD;
        p->pos++;
    }
    p->tlen = p->pos - p->t0;
}

static int is_word(const P *p, const char *kw) { return p->tok == T_NAME && tsq_cond_text_word_is(p->s + p->t0, p->tlen, kw); }

static tsq_status expect(P *p, int tok, const char *what) {
    if (p->tok != tok) return fail(p, what);
    next(p);
    return TSQ_OK;
}

static tsq_status nomem(P *p) { return tsq_err(p->err, TSQ_ENOMEM, "out of memory"); }

/* the current T_NAME as a value; *out owned by the caller */
static tsq_status take_name(P *p, tsq_cond *c, const char *as, const char *what) {
    if (p->tok != T_NAME || tsq_cond_text_word_is(p->s + p->t0, p->tlen, "and") || tsq_cond_text_word_is(p->s + p->t0, p->tlen, "or"))
        return fail(p, what);
    if (tsq_cond_append_value(c, as, p->s + p->t0, p->tlen)) return nomem(p);
    next(p);
    return TSQ_OK;
}

static tsq_status take_string(P *p, tsq_cond *c, const char *as, const char *what) {
    if (p->tok != T_STRING) return fail(p, what);
    if (tsq_cond_append_value(c, as, p->str.data, p->str.len)) return nomem(p);
    next(p);
    return TSQ_OK;
}

/* stable sort of the values into the class's order (insertion sort: a handful of values) */
static void canonical_order(tsq_cond *c) {
    tsq_cls_id id = tsq_cls_of(c->cls);
    for (size_t i = 1; i < c->values.n; i++) {
        tsq_kv x = c->values.v[i];
        int r = tsq_cls_rank(id, x.name);
        size_t j = i;
        while (j > 0 && tsq_cls_rank(id, c->values.v[j - 1].name) > r) {
            c->values.v[j] = c->values.v[j - 1];
            j--;
        }
        c->values.v[j] = x;
    }
}

/* [ item, ... ]: attributes (into attrs), and for a shorthand expression the stored
 * order of its values. type: TY_NO (a leaf: type is its class), TY_OP (sets the type of
 * an operator or group), TY_ATTR (a platform key: type is an attribute like any other). */
enum { TY_NO, TY_OP, TY_ATTR };

static tsq_status parse_annot(P *p, tsq_cond *c, tsq_kvs *attrs, int allow_order, int type) {
    if (p->tok != T_LB) return TSQ_OK;
    next(p);
    size_t norder = 0;
    for (;;) {
        char name[128];
        size_t t0 = p->t0, tl = p->tlen;
        int quoted = p->tok == T_STRING;
        if (p->tok == T_NAME && tl < sizeof name) {
            memcpy(name, p->s + t0, tl);
            name[tl] = '\0';
        } else if (quoted && p->str.len && p->str.len < sizeof name && !memchr(p->str.data, 0, p->str.len)) {
            memcpy(name, p->str.data, p->str.len + 1);
        } else {
            return fail(p, allow_order ? "an attribute or a value name" : "an attribute name");
        }
        next(p);
        if (p->tok == T_EQ) {
            next(p);
            if (p->tok != T_STRING) return fail(p, "a string (the attribute's value)");
            if (strcmp(name, "type") == 0 && type == TY_OP) {
                if (tsq_cond_set_optype(c, p->str.data, p->str.len)) return nomem(p);
            } else if ((strcmp(name, "type") == 0 && type == TY_NO) || tsq_kvs_find(attrs, name)) {
                p->t0 = t0;
                p->tlen = tl;
                p->tok = T_NAME;
                return fail(p, type == TY_NO ? "an attribute other than type" : "an attribute not given twice");
            } else if (tsq_kvs_insert(p->ctx, attrs, attrs->n, name, p->str.data, p->str.len)) {
                return nomem(p);
            }
            next(p);
        } else {
            /* a value name: move it to position norder */
            size_t k = norder;
            while (k < c->values.n && strcmp(c->values.v[k].name, name) != 0) k++;
            if (!allow_order || quoted || k == c->values.n) {
                p->t0 = t0;
                p->tlen = tl;
                p->tok = T_NAME;
                return fail(p, allow_order ? "the name of a value of this expression (each once) or name=\"value\""
                                           : "name=\"value\"");
            }
            tsq_kv x = c->values.v[k];
            memmove(c->values.v + norder + 1, c->values.v + norder, (k - norder) * sizeof x);
            c->values.v[norder++] = x;
        }
        if (p->tok == T_COMMA) {
            next(p);
            continue;
        }
        if (p->tok != T_RB) return fail(p, "',' or ']'");
        next(p);
        break;
    }
    if (norder && norder != c->values.n) return fail(p, "a value order naming every value");
    return TSQ_OK;
}

static tsq_status parse_or(P *p, tsq_cond **out);

static tsq_status parse_list(P *p, tsq_cond *c) {
    tsq_status st = expect(p, T_LP, "'('");
    if (st) return st;
    if (p->tok == T_RP) {
        next(p);
        return TSQ_OK;
    }
    for (;;) {
        tsq_cond *o = NULL;
        if ((st = parse_or(p, &o))) return st;
        if (c->kind == TSQ_C_OSGROUP && o->kind != TSQ_C_OSEXPRGROUP) {
            tsq_cond_free(o);
            return fail(p, "a platform(...) operand in osgroup");
        }
        if (c->kind == TSQ_C_OSEXPRGROUP && o->kind != TSQ_C_EXPRESSION) {
            tsq_cond_free(o);
            return fail(p, "an expression operand in platform");
        }
        if (o->kind == TSQ_C_OSEXPRGROUP && c->kind != TSQ_C_OSGROUP) {
            tsq_cond_free(o);
            return fail(p, "platform(...) only inside osgroup(...)");
        }
        if (tsq_cond_push(c, o)) return nomem(p);
        if (p->tok == T_COMMA) {
            next(p);
            continue;
        }
        return expect(p, T_RP, "',' or ')'");
    }
}

static tsq_status parse_leaf(P *p, tsq_cond *c, const char *kw, int generic) {
    tsq_status st;
    tsq_cls_id id = generic ? CLS_OTHER : tsq_cls_of(c->cls);
    if (id == CLS_VARIABLE) {
        if (kw) {
            if ((st = take_string(p, c, "Variable", "a string (the variable name)"))) return st;
        } else if ((st = take_name(p, c, "Variable", "a variable name"))) {
            return st;
        }
        if ((st = take_name(p, c, "Operator", "an operator (equals, notEquals, exists, like, ...)"))) return st;
        if (p->tok == T_STRING) return take_string(p, c, "Value", "a string");
        return TSQ_OK;
    }
    switch (id) {
    case CLS_WMI: {
        if (p->tok != T_STRING) return fail(p, "a string (the WMI query)");
        char *first = tsq_strndup(p->ctx, p->str.data, p->str.len);
        size_t flen = p->str.len;
        if (!first) return nomem(p);
        next(p);
        if (p->tok == T_STRING) {
            st = tsq_cond_append_value(c, "Namespace", first, flen) ? nomem(p) : take_string(p, c, "Query", "a string");
        } else {
            st = tsq_cond_append_value(c, "Namespace", "root\\cimv2", 10) || tsq_cond_append_value(c, "Query", first, flen)
                     ? nomem(p)
                     : TSQ_OK;
        }
        tsq_strfree(p->ctx, first);
        return st;
    }
    case CLS_FILE:
    case CLS_FOLDER:
        if ((st = take_string(p, c, "Path", "a string (the path)"))) return st;
        if (id == CLS_FILE && is_word(p, "version")) {
            next(p);
            if ((st = take_name(p, c, "VersionOperator", "a version operator (equals, less, ...)")) ||
                (st = take_string(p, c, "Version", "a string (the version)")))
                return st;
        }
        if (is_word(p, "datetime")) {
            next(p);
            if ((st = take_name(p, c, "DateTimeOperator", "a date operator (equals, less, ...)")) ||
                (st = take_string(p, c, "DateTime", "a string (the date and time)")))
                return st;
        }
        return TSQ_OK;
    case CLS_REGISTRY:
        if ((st = take_string(p, c, "KeyPath", "a string (the registry key)"))) return st;
        if (p->tok == T_STRING && (st = take_string(p, c, "Value", "a string"))) return st;
        if (p->tok != T_NAME || is_word(p, "and") || is_word(p, "or")) return fail(p, "a registry type or an operator");
        {
            size_t t0 = p->t0, tl = p->tlen;
            next(p);
            int typed = p->tok == T_NAME && !is_word(p, "and") && !is_word(p, "or");
            if (tsq_cond_append_value(c, typed ? "Type" : "Operator", p->s + t0, tl)) return nomem(p);
            if (typed && (st = take_name(p, c, "Operator", "an operator"))) return st;
        }
        if (p->tok == T_STRING) return take_string(p, c, "Data", "a string");
        return TSQ_OK;
    case CLS_SOFTWARE:
        if (is_word(p, "any") || is_word(p, "this")) {
            const char *op = is_word(p, "any") ? "AnyVersion" : "ThisVersion";
            if (tsq_cond_append_value(c, "Operator", op, strlen(op))) return nomem(p);
            next(p);
        } else if ((st = take_name(p, c, "Operator", "AnyVersion or ThisVersion"))) {
            return st;
        }
        if (p->tok == T_STRING && (st = take_string(p, c, "ProductCode", "a string"))) return st;
        for (;;) {
            const char *as = is_word(p, "name") ? "ProductName" : is_word(p, "upgrade") ? "UpgradeCode"
                           : is_word(p, "version") ? "Version" : NULL;
            if (!as) return TSQ_OK;
            if (tsq_kvs_find(&c->values, as)) return fail(p, "each of name, upgrade, version once");
            next(p);
            if ((st = take_string(p, c, as, "a string"))) return st;
        }
    case CLS_OS:
        if ((st = take_string(p, c, "Architecture", "a string (the architecture, X86 or X64)")) ||
            (st = take_name(p, c, "Operator", "an operator (equals, greaterEqual, ...)")))
            return st;
        return take_string(p, c, "Version", "a string (the version)");
    default: /* expression "CLASS" { Name = "v", ... } */
        if ((st = expect(p, T_LC, "'{'"))) return st;
        while (p->tok != T_RC) {
            char name[256];
            if (p->tok == T_NAME && p->tlen < sizeof name) {
                memcpy(name, p->s + p->t0, p->tlen);
                name[p->tlen] = '\0';
            } else if (p->tok == T_STRING && p->str.len && p->str.len < sizeof name && !memchr(p->str.data, 0, p->str.len)) {
                memcpy(name, p->str.data, p->str.len + 1);
            } else {
                return fail(p, "a value name or '}'");
            }
            next(p);
            if ((st = expect(p, T_EQ, "'='"))) return st;
            if ((st = take_string(p, c, name, "a string (the value)"))) return st;
            if (p->tok == T_COMMA) {
                next(p);
                if (p->tok == T_RC) return fail(p, "a value name");
            } else if (p->tok != T_RC) {
                return fail(p, "',' or '}'");
            }
        }
        next(p);
        return TSQ_OK;
    }
}

static const struct { const char *kw, *cls; } leaf_kw[] = {
    {"variable", TSQ_CLS_VARIABLE}, {"wmi", TSQ_CLS_WMI}, {"file", TSQ_CLS_FILE}, {"folder", TSQ_CLS_FOLDER},
    {"registry", TSQ_CLS_REGISTRY}, {"software", TSQ_CLS_SOFTWARE}, {"os", TSQ_CLS_OS}, {"expression", NULL},
};

static tsq_status parse_primary(P *p, tsq_cond **out) {
    tsq_status st;
    *out = NULL;
    if (p->tok == T_LP) {
        next(p);
        if ((st = parse_or(p, out))) return st;
        if (p->tok != T_RP) {
            tsq_cond_free(*out);
            *out = NULL;
            return fail(p, "')'");
        }
        next(p);
        return TSQ_OK;
    }
    if (p->tok != T_NAME) return fail(p, "a condition (a variable test, wmi, file, folder, registry, software, not, all, any, none or '(')");
    tsq_cond *c = NULL;
    tsq_cond_kind fk = 0;
    if (is_word(p, "all")) fk = TSQ_C_AND;
    else if (is_word(p, "any")) fk = TSQ_C_OR;
    else if (is_word(p, "none")) fk = TSQ_C_NOT;
    else if (is_word(p, "osgroup")) fk = TSQ_C_OSGROUP;
    else if (is_word(p, "platform")) fk = TSQ_C_OSEXPRGROUP;
    if (fk) {
        if (!(c = tsq_cond_new(p->ctx, fk))) return nomem(p);
        next(p);
        st = TSQ_OK;
        if (fk == TSQ_C_OSEXPRGROUP) {
            if (p->tok == T_STRING) {
                if (tsq_cond_append_attr(c, "name", p->str.data, p->str.len)) st = nomem(p);
                next(p);
            }
            while (!st && is_word(p, "key")) {
                next(p);
                tsq_kvs *k = tsq_cond_add_key(c);
                if (!k) st = nomem(p);
                else if (p->tok != T_LB) st = fail(p, "'[' (the platform key's attributes)");
                else {
                    tsq_cond dummy;
                    memset(&dummy, 0, sizeof dummy);
                    st = parse_annot(p, &dummy, k, 0, TY_ATTR);
                }
            }
        }
        if (!st) st = parse_list(p, c);
        if (!st) st = parse_annot(p, c, &c->attrs, 0, TY_OP);
    } else {
        const char *cls = NULL, *kw = NULL;
        for (size_t i = 0; i < sizeof leaf_kw / sizeof leaf_kw[0]; i++)
            if (is_word(p, leaf_kw[i].kw)) {
                kw = leaf_kw[i].kw;
                cls = leaf_kw[i].cls;
            }
        if (!kw && tsq_cond_text_is_keyword(p->s + p->t0, p->tlen))
            return fail(p, "a condition (a variable test, wmi, file, folder, registry, software, not, all, any, none or '(')");
        if (kw) {
            next(p);
            if (!cls) { /* expression "CLASS" */
                if (p->tok != T_STRING) return fail(p, "a string (the expression class)");
                if (!(c = tsq_cond_new(p->ctx, TSQ_C_EXPRESSION)) || !(c->cls = tsq_intern_n(p->ctx, p->str.data, p->str.len))) {
                    tsq_cond_free(c);
                    return nomem(p);
                }
                next(p);
            }
        } else {
            cls = TSQ_CLS_VARIABLE;
        }
        if (!c && !(c = tsq_cond_new_expression(p->ctx, cls))) return nomem(p);
        int generic = kw && !cls;
        st = parse_leaf(p, c, kw, generic);
        if (!st && !generic) canonical_order(c);
        if (!st) st = parse_annot(p, c, &c->attrs, !generic, TY_NO);
    }
    if (st) {
        tsq_cond_free(c);
        return st;
    }
    *out = c;
    return TSQ_OK;
}

static tsq_status parse_unary(P *p, tsq_cond **out) {
    if (!is_word(p, "not")) return parse_primary(p, out);
    if (++p->depth > (int)p->ctx->limits.max_cond_depth)
        return tsq_err(p->err, TSQ_ELIMIT, "condition nesting exceeds %u levels", (unsigned)p->ctx->limits.max_cond_depth);
    next(p);
    tsq_cond *o = NULL, *c = tsq_cond_new(p->ctx, TSQ_C_NOT);
    if (!c) return nomem(p);
    tsq_status st = parse_unary(p, &o);
    p->depth--;
    if (!st && o->kind == TSQ_C_OSEXPRGROUP) {
        tsq_cond_free(o);
        st = fail(p, "platform(...) only inside osgroup(...)");
    } else if (!st && tsq_cond_push(c, o)) {
        c = NULL;
        st = nomem(p);
    }
    if (st) {
        tsq_cond_free(c);
        return st;
    }
    *out = c;
    return TSQ_OK;
}

/* a chain of `sub` joined by keyword kw: one operand as is, more as an operator */
static tsq_status parse_chain(P *p, tsq_cond **out, const char *kw, tsq_cond_kind kind,
                              tsq_status (*sub)(P *, tsq_cond **), tsq_cond *first) {
    tsq_cond *o = first;
    tsq_status st = TSQ_OK;
    if (!o && (st = sub(p, &o))) return st;
    if (!is_word(p, kw)) {
        *out = o;
        return TSQ_OK;
    }
    tsq_cond *c = tsq_cond_new(p->ctx, kind);
    if (!c) {
        tsq_cond_free(o);
        return nomem(p);
    }
    if (tsq_cond_push(c, o)) {
        tsq_cond_free(c);
        return nomem(p);
    }
    while (is_word(p, kw)) {
        next(p);
        if ((st = sub(p, &o)) || (tsq_cond_push(c, o) && (st = nomem(p)))) break;
    }
    if (st) {
        tsq_cond_free(c);
        return st;
    }
    *out = c;
    return TSQ_OK;
}

static tsq_status parse_and(P *p, tsq_cond **out) { return parse_chain(p, out, "and", TSQ_C_AND, parse_unary, NULL); }

static tsq_status parse_or(P *p, tsq_cond **out) {
    if (++p->depth > (int)p->ctx->limits.max_cond_depth)
        return tsq_err(p->err, TSQ_ELIMIT, "condition nesting exceeds %u levels", (unsigned)p->ctx->limits.max_cond_depth);
    tsq_status st = parse_chain(p, out, "or", TSQ_C_OR, parse_and, NULL);
    p->depth--;
    return st;
}

static tsq_status parse_top(P *p, tsq_cond *top) {
    if (is_word(p, "true")) {
        next(p);
        return TSQ_OK;
    }
    /* the bare and-chain: the condition's own operands */
    tsq_status st;
    for (;;) {
        tsq_cond *o = NULL;
        if ((st = parse_unary(p, &o))) return st;
        if (tsq_cond_push(top, o)) return nomem(p);
        if (!is_word(p, "and")) break;
        next(p);
    }
    if (!is_word(p, "or")) return TSQ_OK;
    /* A and B or C: the chain was the first operand of an or */
    tsq_cond *first;
    if (top->nops == 1) {
        first = top->ops[0];
    } else {
        if (!(first = tsq_cond_new(p->ctx, TSQ_C_AND))) return nomem(p);
        for (size_t i = 0; i < top->nops; i++) tsq_cond_push(first, top->ops[i]); /* fits: same count */
    }
    top->nops = 0;
    tsq_cond *o = NULL;
    p->depth++;
    st = parse_chain(p, &o, "or", TSQ_C_OR, parse_and, first);
    p->depth--;
    if (st) return st;
    return tsq_cond_push(top, o) ? nomem(p) : TSQ_OK;
}

tsq_status tsq_cond_parse(tsq_ctx *ctx, const char *text, tsq_cond **out, tsq_error *err) {
    if (!out) return tsq_err(err, TSQ_EINVAL, "out must not be null");
    *out = NULL;
    if (!ctx || !text) return tsq_err(err, TSQ_EINVAL, "context and text must not be null");
    P p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.s = text;
    p.n = strlen(text);
    p.err = err;
    tsq_buf_init(&p.str, ctx);
    if (err) err->line = err->column = 0;
    tsq_cond *top = tsq_cond_new(ctx, TSQ_C_CONDITION);
    tsq_status st = top ? TSQ_OK : nomem(&p);
    if (!st) {
        next(&p);
        st = parse_top(&p, top);
        if (!st && p.tok != T_EOF) st = fail(&p, "'and', 'or' or the end of the text");
        if (!st && p.str.failed) st = nomem(&p);
    }
    tsq_buf_free(&p.str);
    if (st) {
        tsq_cond_free(top);
        return st;
    }
    *out = top;
    return TSQ_OK;
}
