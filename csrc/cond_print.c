/* cond_print.c - the readable text form of conditions: the printer, and the lexical rules
 * (names, keywords) that the parser shares. The grammar and the round-trip promise,
 * parse(to_text(c)) equal to c, are described in cond_parse.c. */
#include "cond.h"

/* ------------------------------------------------------------------ lexical */

int tsq_cond_text_ident_char(int ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
}

static int is_ident(const char *s, size_t n) {
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!tsq_cond_text_ident_char((unsigned char)s[i])) return 0;
    return 1;
}

static const char *const keywords[] = {"and", "or", "not", "all", "any", "none", "true", "osgroup", "platform",
                                       "variable", "wmi", "file", "folder", "registry", "software", "os",
                                       "expression", NULL};

int tsq_cond_text_word_is(const char *s, size_t n, const char *kw) {
    return strlen(kw) == n && tsq_ascii_ncasecmp(s, kw, n) == 0;
}

int tsq_cond_text_is_keyword(const char *s, size_t n) {
    for (int i = 0; keywords[i]; i++)
        if (tsq_cond_text_word_is(s, n, keywords[i])) return 1;
    return 0;
}

/* an OP or TYPE: a NAME that can not be taken for the next and/or */
static int is_op(const char *s) {
    size_t n = strlen(s);
    return is_ident(s, n) && !tsq_cond_text_word_is(s, n, "and") && !tsq_cond_text_word_is(s, n, "or");
}

/* ------------------------------------------------------------------ printer */

static void put_str(tsq_buf *b, const char *s, size_t n) {
    tsq_buf_add(b, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"' || s[i] == '\\') {
            tsq_buf_add(b, s + from, i - from);
            tsq_buf_add(b, "\\", 1);
            from = i;
        }
    tsq_buf_add(b, s + from, n - from);
    tsq_buf_add(b, "\"", 1);
}

static void put_strz(tsq_buf *b, const char *s) { put_str(b, s, strlen(s)); }

static const tsq_kv *val(const tsq_cond *c, const char *name) { return tsq_kvs_find(&c->values, name); }

/* every value has a place in the class's order and none is repeated */
static int known_values(const tsq_cond *c, tsq_cls_id id) {
    unsigned seen = 0;
    for (size_t i = 0; i < c->values.n; i++) {
        int r = tsq_cls_rank(id, c->values.v[i].name);
        if (r < 0 || (seen & (1u << r))) return 0;
        seen |= 1u << r;
    }
    return 1;
}

static int pair_ok(const tsq_cond *c, const char *a, const char *op) {
    const tsq_kv *x = val(c, a), *y = val(c, op);
    return (!x && !y) || (x && y && is_op(y->value));
}

static void put_pair(tsq_buf *b, const tsq_cond *c, const char *kw, const char *a, const char *op) {
    const tsq_kv *x = val(c, a), *y = val(c, op);
    if (!x) return;
    tsq_buf_adds(b, " ");
    tsq_buf_adds(b, kw);
    tsq_buf_adds(b, " ");
    tsq_buf_adds(b, y->value);
    tsq_buf_adds(b, " ");
    put_str(b, x->value, x->len);
}

/* The class's own form, when it says everything the values say. */
static int print_short(tsq_buf *b, const tsq_cond *c, tsq_cls_id id) {
    if (id == CLS_OTHER || !known_values(c, id)) return 0;
    const tsq_kv *k;
    switch (id) {
    case CLS_VARIABLE: {
        const tsq_kv *var = val(c, "Variable"), *op = val(c, "Operator"), *v = val(c, "Value");
        if (!var || !op || !is_op(op->value)) return 0;
        if (is_ident(var->value, var->len) && !tsq_cond_text_is_keyword(var->value, var->len)) {
            tsq_buf_add(b, var->value, var->len);
        } else {
            tsq_buf_adds(b, "variable ");
            put_str(b, var->value, var->len);
        }
        tsq_buf_adds(b, " ");
        tsq_buf_adds(b, op->value);
        if (v) {
            tsq_buf_adds(b, " ");
            put_str(b, v->value, v->len);
        }
        return 1;
    }
    case CLS_WMI: {
        const tsq_kv *ns = val(c, "Namespace"), *q = val(c, "Query");
        if (!ns || !q) return 0;
        tsq_buf_adds(b, "wmi ");
        if (strcmp(ns->value, "root\\cimv2") != 0 || ns->len != 10) {
            put_str(b, ns->value, ns->len);
            tsq_buf_adds(b, " ");
        }
        put_str(b, q->value, q->len);
        return 1;
    }
    case CLS_FILE:
    case CLS_FOLDER:
        if (!(k = val(c, "Path")) || !pair_ok(c, "DateTime", "DateTimeOperator") ||
            (id == CLS_FILE && !pair_ok(c, "Version", "VersionOperator")))
            return 0;
        tsq_buf_adds(b, id == CLS_FILE ? "file " : "folder ");
        put_str(b, k->value, k->len);
        if (id == CLS_FILE) put_pair(b, c, "version", "Version", "VersionOperator");
        put_pair(b, c, "datetime", "DateTime", "DateTimeOperator");
        return 1;
    case CLS_REGISTRY: {
        const tsq_kv *key = val(c, "KeyPath"), *op = val(c, "Operator"), *t = val(c, "Type"), *v = val(c, "Value"),
                     *d = val(c, "Data");
        if (!key || !op || !is_op(op->value) || (t && !is_op(t->value))) return 0;
        tsq_buf_adds(b, "registry ");
        put_str(b, key->value, key->len);
        if (v) {
            tsq_buf_adds(b, " ");
            put_str(b, v->value, v->len);
        }
        if (t) {
            tsq_buf_adds(b, " ");
            tsq_buf_adds(b, t->value);
        }
        tsq_buf_adds(b, " ");
        tsq_buf_adds(b, op->value);
        if (d) {
            tsq_buf_adds(b, " ");
            put_str(b, d->value, d->len);
        }
        return 1;
    }
    case CLS_SOFTWARE: {
        const tsq_kv *op = val(c, "Operator"), *pc = val(c, "ProductCode");
        static const char *const clauses[][2] = {{"name", "ProductName"}, {"upgrade", "UpgradeCode"}, {"version", "Version"}};
        if (!op || !is_op(op->value) || tsq_cond_text_word_is(op->value, op->len, "any") || tsq_cond_text_word_is(op->value, op->len, "this"))
            return 0;
        tsq_buf_adds(b, "software ");
        tsq_buf_adds(b, op->value);
        if (pc) {
            tsq_buf_adds(b, " ");
            put_str(b, pc->value, pc->len);
        }
        for (int i = 0; i < 3; i++)
            if ((k = val(c, clauses[i][1]))) {
                tsq_buf_adds(b, " ");
                tsq_buf_adds(b, clauses[i][0]);
                tsq_buf_adds(b, " ");
                put_str(b, k->value, k->len);
            }
        return 1;
    }
    case CLS_OS: {
        const tsq_kv *a = val(c, "Architecture"), *op = val(c, "Operator"), *v = val(c, "Version");
        if (!a || !op || !v || !is_op(op->value)) return 0;
        tsq_buf_adds(b, "os ");
        put_str(b, a->value, a->len);
        tsq_buf_adds(b, " ");
        tsq_buf_adds(b, op->value);
        tsq_buf_adds(b, " ");
        put_str(b, v->value, v->len);
        return 1;
    }
    default:
        return 0;
    }
}

static void print_generic(tsq_buf *b, const tsq_cond *c) {
    tsq_buf_adds(b, "expression ");
    put_strz(b, c->cls ? c->cls : "");
    tsq_buf_adds(b, " {");
    for (size_t i = 0; i < c->values.n; i++) {
        const tsq_kv *kv = &c->values.v[i];
        tsq_buf_adds(b, i ? ", " : " ");
        if (is_ident(kv->name, strlen(kv->name))) tsq_buf_adds(b, kv->name);
        else put_strz(b, kv->name);
        tsq_buf_adds(b, " = ");
        put_str(b, kv->value, kv->len);
    }
    tsq_buf_adds(b, c->values.n ? " }" : "}");
}

/* name="value"; a name that is not a NAME is written as a string */
static void put_attr(tsq_buf *b, const tsq_kv *kv) {
    if (is_ident(kv->name, strlen(kv->name)) && !(kv->name[0] >= '0' && kv->name[0] <= '9')) tsq_buf_adds(b, kv->name);
    else put_strz(b, kv->name);
    tsq_buf_adds(b, "=");
    put_str(b, kv->value, kv->len);
}

/* [order..., attr="v", ...] */
static void print_annot(tsq_buf *b, const tsq_cond *c, int order, const tsq_kvs *attrs, int with_type) {
    int first = 1;
    if (order)
        for (size_t i = 0; i < c->values.n; i++) {
            tsq_buf_adds(b, first ? " [" : ", ");
            first = 0;
            tsq_buf_adds(b, c->values.v[i].name);
        }
    if (with_type && c->optype) {
        tsq_buf_adds(b, first ? " [type=" : ", type=");
        first = 0;
        put_strz(b, c->optype);
    }
    for (size_t i = 0; attrs && i < attrs->n; i++) {
        tsq_buf_adds(b, first ? " [" : ", ");
        first = 0;
        put_attr(b, &attrs->v[i]);
    }
    if (!first) tsq_buf_adds(b, "]");
}

enum { L_TOP, L_OR_ARG, L_AND_ARG };

static int infix(const tsq_cond *c) {
    if (c->optype || c->attrs.n) return 0;
    if (c->kind == TSQ_C_AND || c->kind == TSQ_C_OR) return c->nops >= 2;
    if (c->kind == TSQ_C_NOT) return c->nops == 1;
    return 0;
}

static void print_operand(tsq_buf *b, const tsq_cond *c, int level);

static void print_list(tsq_buf *b, const tsq_cond *c) {
    tsq_buf_adds(b, "(");
    for (size_t i = 0; i < c->nops; i++) {
        if (i) tsq_buf_adds(b, ", ");
        print_operand(b, c->ops[i], L_TOP);
    }
    tsq_buf_adds(b, ")");
}

static void print_operand(tsq_buf *b, const tsq_cond *c, int level) {
    if (c->kind == TSQ_C_EXPRESSION) {
        tsq_cls_id id = tsq_cls_of(c->cls);
        int shorthand = print_short(b, c, id);
        if (!shorthand) print_generic(b, c);
        print_annot(b, c, shorthand && !tsq_cond_values_canonical(c), &c->attrs, 0);
        return;
    }
    if (infix(c)) {
        if (c->kind == TSQ_C_NOT) {
            tsq_buf_adds(b, "not ");
            print_operand(b, c->ops[0], L_AND_ARG);
            return;
        }
        int and_ = c->kind == TSQ_C_AND;
        int paren = and_ ? level >= L_AND_ARG : level >= L_OR_ARG;
        if (paren) tsq_buf_adds(b, "(");
        for (size_t i = 0; i < c->nops; i++) {
            if (i) tsq_buf_adds(b, and_ ? " and " : " or ");
            print_operand(b, c->ops[i], and_ ? L_AND_ARG : L_OR_ARG);
        }
        if (paren) tsq_buf_adds(b, ")");
        return;
    }
    switch (c->kind) {
    case TSQ_C_AND: tsq_buf_adds(b, "all"); break;
    case TSQ_C_OR: tsq_buf_adds(b, "any"); break;
    case TSQ_C_NOT: tsq_buf_adds(b, "none"); break;
    case TSQ_C_OSGROUP: tsq_buf_adds(b, "osgroup"); break;
    default: break;
    }
    const tsq_kvs *attrs = &c->attrs;
    tsq_kvs rest = {NULL, 0, 0};
    if (c->kind == TSQ_C_OSEXPRGROUP) {
        tsq_buf_adds(b, "platform");
        if (c->attrs.n && strcmp(c->attrs.v[0].name, "name") == 0) {
            tsq_buf_adds(b, " ");
            put_str(b, c->attrs.v[0].value, c->attrs.v[0].len);
            rest.v = c->attrs.v + 1;
            rest.n = c->attrs.n - 1;
            attrs = &rest;
        }
        for (size_t i = 0; i < c->nkeys; i++) {
            tsq_buf_adds(b, " key");
            const tsq_kvs *k = &c->keys[i];
            tsq_buf_adds(b, "[");
            for (size_t j = 0; j < k->n; j++) {
                if (j) tsq_buf_adds(b, ", ");
                put_attr(b, &k->v[j]);
            }
            tsq_buf_adds(b, "]");
        }
        tsq_buf_adds(b, " ");
    }
    print_list(b, c);
    print_annot(b, c, 0, attrs, 1);
}

static void print_top(tsq_buf *b, const tsq_cond *c) {
    if (c->kind != TSQ_C_CONDITION) {
        print_operand(b, c, L_TOP);
        return;
    }
    if (c->nops == 0) {
        tsq_buf_adds(b, "true");
        return;
    }
    if (c->nops == 1) {
        const tsq_cond *o = c->ops[0];
        print_operand(b, o, infix(o) && o->kind == TSQ_C_OR ? L_TOP : L_AND_ARG);
        return;
    }
    for (size_t i = 0; i < c->nops; i++) {
        if (i) tsq_buf_adds(b, " and ");
        print_operand(b, c->ops[i], L_AND_ARG);
    }
}

const char *tsq_cond_to_text(const tsq_cond *c, tsq_buf *out) {
    out->len = 0;
    tsq_buf_add(out, "", 0);
    if (c) print_top(out, c);
    return out->failed ? NULL : out->data;
}
