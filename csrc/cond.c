/* cond.c - the condition value tree: operators, OS groups and expressions. */
#include "cond.h"

/* ------------------------------------------------------------------ helpers */

static int lower(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

int tsq_ascii_casecmp(const char *a, const char *b) {
    for (;; a++, b++) {
        int x = lower((unsigned char)*a), y = lower((unsigned char)*b);
        if (x != y || !x) return x - y;
    }
}

int tsq_ascii_ncasecmp(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int x = lower((unsigned char)a[i]), y = lower((unsigned char)b[i]);
        if (x != y || !x) return x - y;
    }
    return 0;
}

/* ------------------------------------------------------------------ name/value lists */

static int kvs_grow(tsq_ctx *ctx, tsq_kvs *l) {
    if (l->n < l->cap) return 1;
    size_t nc = l->cap ? l->cap * 2 : 4;
    tsq_kv *v = tsq_ctx_alloc(ctx, l->v, l->cap * sizeof *v, nc * sizeof *v);
    if (!v) return 0;
    l->v = v;
    l->cap = nc;
    return 1;
}

tsq_status tsq_kvs_insert(tsq_ctx *ctx, tsq_kvs *l, size_t at, const char *name, const char *value, size_t len) {
    const char *nm = tsq_intern(ctx, name);
    char *v = tsq_strndup(ctx, value, len);
    if (!nm || !v || !kvs_grow(ctx, l)) {
        tsq_strfree(ctx, v);
        return TSQ_ENOMEM;
    }
    if (at > l->n) at = l->n;
    memmove(l->v + at + 1, l->v + at, (l->n - at) * sizeof *l->v);
    l->v[at].name = nm;
    l->v[at].value = v;
    l->v[at].len = len;
    l->n++;
    return TSQ_OK;
}

const tsq_kv *tsq_kvs_find(const tsq_kvs *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0) return &l->v[i];
    return NULL;
}

/* Replaces the value of name, or appends it. */
tsq_status tsq_kvs_put(tsq_ctx *ctx, tsq_kvs *l, const char *name, const char *value, size_t len) {
    tsq_kv *kv = (tsq_kv *)tsq_kvs_find(l, name);
    if (!kv) return tsq_kvs_insert(ctx, l, l->n, name, value, len);
    char *v = tsq_strndup(ctx, value, len);
    if (!v) return TSQ_ENOMEM;
    tsq_strfree(ctx, kv->value);
    kv->value = v;
    kv->len = len;
    return TSQ_OK;
}

static void kvs_remove(tsq_ctx *ctx, tsq_kvs *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0) {
            tsq_strfree(ctx, l->v[i].value);
            memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof *l->v);
            l->n--;
            return;
        }
}

void tsq_kvs_free(tsq_ctx *ctx, tsq_kvs *l) {
    for (size_t i = 0; i < l->n; i++) tsq_strfree(ctx, l->v[i].value);
    if (l->v) tsq_ctx_alloc(ctx, l->v, l->cap * sizeof *l->v, 0);
    l->v = NULL;
    l->n = l->cap = 0;
}

tsq_status tsq_kvs_copy(tsq_ctx *ctx, tsq_kvs *dst, const tsq_kvs *src) {
    for (size_t i = 0; i < src->n; i++)
        if (tsq_kvs_insert(ctx, dst, dst->n, src->v[i].name, src->v[i].value, src->v[i].len) != TSQ_OK)
            return TSQ_ENOMEM;
    return TSQ_OK;
}

/* ------------------------------------------------------------------ classes */

static const struct {
    const char *full, *shortname;
    tsq_cls_id id;
    const char *order[6]; /* canonical value order: what the console writes */
} classes[] = {
    {TSQ_CLS_VARIABLE, "Variable", CLS_VARIABLE, {"Operator", "Value", "Variable"}},
    {TSQ_CLS_WMI, "WMI", CLS_WMI, {"Namespace", "Query"}},
    {TSQ_CLS_FILE, "File", CLS_FILE, {"DateTime", "DateTimeOperator", "Path", "Version", "VersionOperator"}},
    {TSQ_CLS_FOLDER, "Folder", CLS_FOLDER, {"DateTime", "DateTimeOperator", "Path"}},
    {TSQ_CLS_REGISTRY, "Registry", CLS_REGISTRY, {"Data", "KeyPath", "Operator", "Type", "Value"}},
    {TSQ_CLS_SOFTWARE, "Software", CLS_SOFTWARE, {"Operator", "ProductCode", "ProductName", "UpgradeCode", "Version"}},
    /* MDT's OS expression: the only writer (MDT) uses this order */
    {TSQ_CLS_OS, "OS", CLS_OS, {"Architecture", "Version", "Operator"}},
};
#define NCLASSES (sizeof classes / sizeof classes[0])

tsq_cls_id tsq_cls_of(const char *cls) {
    if (!cls) return CLS_OTHER;
    /* every name starts "SMS_TaskSequence_": compare what follows, where they differ */
    static const char prefix[] = "SMS_TaskSequence_";
    size_t pl = sizeof prefix - 1;
    if (strncmp(cls, prefix, pl) != 0) return CLS_OTHER;
    for (size_t i = 0; i < NCLASSES; i++)
        if (classes[i].full[pl] == cls[pl] && classes[i].full[pl + 1] == cls[pl + 1] &&
            strcmp(classes[i].full + pl, cls + pl) == 0)
            return classes[i].id;
    return CLS_OTHER;
}

int tsq_cls_rank(tsq_cls_id id, const char *name) {
    for (size_t i = 0; i < NCLASSES; i++)
        if (classes[i].id == id) {
            for (int k = 0; k < 6 && classes[i].order[k]; k++)
                if (strcmp(classes[i].order[k], name) == 0) return k;
            return -1;
        }
    return -1;
}

int tsq_cond_values_canonical(const tsq_cond *c) {
    tsq_cls_id id = tsq_cls_of(c->cls);
    int last = -1;
    for (size_t i = 0; i < c->values.n; i++) {
        int r = tsq_cls_rank(id, c->values.v[i].name);
        if (r < 0 || r < last) return 0;
        last = r;
    }
    return 1;
}

const char *tsq_cond_default_type(tsq_cond_kind k) {
    switch (k) {
    case TSQ_C_AND: case TSQ_C_OSEXPRGROUP: return "and";
    case TSQ_C_OR: case TSQ_C_OSGROUP: return "or";
    case TSQ_C_NOT: return "not";
    default: return NULL;
    }
}

/* ------------------------------------------------------------------ the tree */

tsq_cond *tsq_cond_new(tsq_ctx *ctx, tsq_cond_kind kind) {
    if (!ctx || kind < TSQ_C_CONDITION || kind > TSQ_C_EXPRESSION) return NULL;
    tsq_cond *c = tsq_ctx_alloc(ctx, NULL, 0, sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->ctx = ctx;
    c->kind = kind;
    return c;
}

tsq_cond *tsq_cond_new_expression(tsq_ctx *ctx, const char *cls) {
    if (!ctx || !cls || !*cls) return NULL;
    const char *full = cls;
    for (size_t i = 0; i < NCLASSES; i++)
        if (tsq_ascii_casecmp(classes[i].shortname, cls) == 0) full = classes[i].full;
    tsq_cond *c = tsq_cond_new(ctx, TSQ_C_EXPRESSION);
    if (!c) return NULL;
    if (!(c->cls = tsq_intern(ctx, full))) {
        tsq_cond_free(c);
        return NULL;
    }
    return c;
}

void tsq_cond_free(tsq_cond *c) {
    if (!c) return;
    tsq_ctx *ctx = c->ctx;
    for (size_t i = 0; i < c->nops; i++) tsq_cond_free(c->ops[i]);
    if (c->ops) tsq_ctx_alloc(ctx, c->ops, c->cops * sizeof *c->ops, 0);
    for (size_t i = 0; i < c->nkeys; i++) tsq_kvs_free(ctx, &c->keys[i]);
    if (c->keys) tsq_ctx_alloc(ctx, c->keys, c->ckeys * sizeof *c->keys, 0);
    tsq_kvs_free(ctx, &c->values);
    tsq_kvs_free(ctx, &c->attrs);
    tsq_strfree(ctx, c->optype);
    tsq_ctx_alloc(ctx, c, sizeof *c, 0);
}

tsq_status tsq_cond_push(tsq_cond *p, tsq_cond *op) {
    if (p->nops == p->cops) {
        size_t nc = p->cops ? p->cops * 2 : 4;
        tsq_cond **v = tsq_ctx_alloc(p->ctx, p->ops, p->cops * sizeof *v, nc * sizeof *v);
        if (!v) {
            tsq_cond_free(op);
            return TSQ_ENOMEM;
        }
        p->ops = v;
        p->cops = nc;
    }
    p->ops[p->nops++] = op;
    return TSQ_OK;
}

tsq_kvs *tsq_cond_add_key(tsq_cond *c) {
    if (c->nkeys == c->ckeys) {
        size_t nc = c->ckeys ? c->ckeys * 2 : 2;
        tsq_kvs *v = tsq_ctx_alloc(c->ctx, c->keys, c->ckeys * sizeof *v, nc * sizeof *v);
        if (!v) return NULL;
        c->keys = v;
        c->ckeys = nc;
    }
    tsq_kvs *k = &c->keys[c->nkeys++];
    memset(k, 0, sizeof *k);
    return k;
}

tsq_status tsq_cond_set_optype(tsq_cond *c, const char *type, size_t len) {
    const char *def = tsq_cond_default_type(c->kind);
    tsq_strfree(c->ctx, c->optype);
    c->optype = NULL;
    if (def && strlen(def) == len && memcmp(def, type, len) == 0) return TSQ_OK;
    return (c->optype = tsq_strndup(c->ctx, type, len)) ? TSQ_OK : TSQ_ENOMEM;
}

tsq_status tsq_cond_append_value(tsq_cond *c, const char *name, const char *value, size_t len) {
    return tsq_kvs_insert(c->ctx, &c->values, c->values.n, name, value, len);
}

tsq_status tsq_cond_append_attr(tsq_cond *c, const char *name, const char *value, size_t len) {
    return tsq_kvs_insert(c->ctx, &c->attrs, c->attrs.n, name, value, len);
}

tsq_cond *tsq_cond_clone(const tsq_cond *c) {
    if (!c) return NULL;
    tsq_ctx *ctx = c->ctx;
    tsq_cond *d = tsq_cond_new(ctx, c->kind);
    if (!d) return NULL;
    d->cls = c->cls;
    if ((c->optype && !(d->optype = tsq_strndup(ctx, c->optype, strlen(c->optype)))) ||
        tsq_kvs_copy(ctx, &d->values, &c->values) || tsq_kvs_copy(ctx, &d->attrs, &c->attrs))
        goto fail;
    for (size_t i = 0; i < c->nkeys; i++) {
        tsq_kvs *k = tsq_cond_add_key(d);
        if (!k || tsq_kvs_copy(ctx, k, &c->keys[i])) goto fail;
    }
    for (size_t i = 0; i < c->nops; i++) {
        tsq_cond *o = tsq_cond_clone(c->ops[i]);
        if (!o || tsq_cond_push(d, o)) goto fail;
    }
    return d;
fail:
    tsq_cond_free(d);
    return NULL;
}

tsq_cond_kind tsq_cond_get_kind(const tsq_cond *c) { return c ? c->kind : (tsq_cond_kind)0; }

static int is_container(tsq_cond_kind k) { return k != TSQ_C_EXPRESSION; }

tsq_status tsq_cond_add(tsq_cond *p, const tsq_cond *operand, tsq_error *err) {
    if (!p || !operand) return tsq_err(err, TSQ_EINVAL, "condition and operand must not be null");
    if (!is_container(p->kind)) return tsq_err(err, TSQ_EINVAL, "an expression has no operands");
    if (operand->kind == TSQ_C_CONDITION)
        return tsq_err(err, TSQ_EINVAL, "a condition can not be an operand (add its operands, or an operator)");
    if (operand->ctx != p->ctx) return tsq_err(err, TSQ_EINVAL, "the operand belongs to another context");
    if (p->kind == TSQ_C_OSGROUP && operand->kind != TSQ_C_OSEXPRGROUP)
        return tsq_err(err, TSQ_EINVAL, "an os condition group holds only os expression groups");
    if (operand->kind == TSQ_C_OSEXPRGROUP && p->kind != TSQ_C_OSGROUP)
        return tsq_err(err, TSQ_EINVAL, "an os expression group can only be added to an os condition group");
    if (p->kind == TSQ_C_OSEXPRGROUP && operand->kind != TSQ_C_EXPRESSION)
        return tsq_err(err, TSQ_EINVAL, "an os expression group holds only expressions");
    tsq_cond *o = tsq_cond_clone(operand);
    if (!o || tsq_cond_push(p, o)) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    return TSQ_OK;
}

size_t tsq_cond_count(const tsq_cond *c) { return c ? c->nops : 0; }

const tsq_cond *tsq_cond_operand(const tsq_cond *c, size_t i) { return c && i < c->nops ? c->ops[i] : NULL; }

const char *tsq_cond_class(const tsq_cond *c) { return c && c->kind == TSQ_C_EXPRESSION ? c->cls : NULL; }

const char *tsq_cond_get(const tsq_cond *c, const char *name) {
    if (!c || !name) return NULL;
    const tsq_kv *kv = tsq_kvs_find(&c->values, name);
    return kv ? kv->value : NULL;
}

/* A new value goes to its place in the class's canonical order, so that expressions built
 * in any order are written as the console writes them; names the class does not list
 * are appended. */
tsq_status tsq_cond_set(tsq_cond *c, const char *name, const char *value, tsq_error *err) {
    if (!c || c->kind != TSQ_C_EXPRESSION) return tsq_err(err, TSQ_EINVAL, "only expressions have values");
    if (!name || !*name) return tsq_err(err, TSQ_EINVAL, "a value name must not be empty");
    if (!value) {
        kvs_remove(c->ctx, &c->values, name);
        return TSQ_OK;
    }
    if (tsq_kvs_find(&c->values, name))
        return tsq_kvs_put(c->ctx, &c->values, name, value, strlen(value)) ? tsq_err(err, TSQ_ENOMEM, "out of memory")
                                                                           : TSQ_OK;
    tsq_cls_id id = tsq_cls_of(c->cls);
    int r = tsq_cls_rank(id, name);
    size_t at = c->values.n;
    if (r >= 0)
        for (size_t i = 0; i < c->values.n; i++) {
            int ri = tsq_cls_rank(id, c->values.v[i].name);
            if (ri > r) {
                at = i;
                break;
            }
        }
    if (tsq_kvs_insert(c->ctx, &c->values, at, name, value, strlen(value)))
        return tsq_err(err, TSQ_ENOMEM, "out of memory");
    return TSQ_OK;
}

size_t tsq_cond_value_count(const tsq_cond *c) { return c ? c->values.n : 0; }

const char *tsq_cond_value_name(const tsq_cond *c, size_t i) {
    return c && i < c->values.n ? c->values.v[i].name : NULL;
}

const char *tsq_cond_attr(const tsq_cond *c, const char *name) {
    if (!c || !name) return NULL;
    if (strcmp(name, "type") == 0) {
        if (c->kind == TSQ_C_EXPRESSION) return c->cls;
        return c->optype ? c->optype : tsq_cond_default_type(c->kind);
    }
    const tsq_kv *kv = tsq_kvs_find(&c->attrs, name);
    return kv ? kv->value : NULL;
}

static int valid_attr_name(const char *s) {
    if (!*s) return 0;
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
                 (p > s && ((ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == ':'));
        if (!ok) return 0;
    }
    return 1;
}

tsq_status tsq_cond_set_attr(tsq_cond *c, const char *name, const char *value, tsq_error *err) {
    if (!c || !name) return tsq_err(err, TSQ_EINVAL, "condition and name must not be null");
    if (c->kind == TSQ_C_CONDITION) return tsq_err(err, TSQ_EINVAL, "a condition has no attributes");
    if (strcmp(name, "type") == 0)
        return tsq_err(err, TSQ_EINVAL, "type is the class or operator kind, not an attribute");
    if (!valid_attr_name(name)) return tsq_err(err, TSQ_EINVAL, "'%s' is not a valid attribute name", name);
    if (!value) {
        kvs_remove(c->ctx, &c->attrs, name);
        return TSQ_OK;
    }
    return tsq_kvs_put(c->ctx, &c->attrs, name, value, strlen(value)) ? tsq_err(err, TSQ_ENOMEM, "out of memory")
                                                                       : TSQ_OK;
}

/* ------------------------------------------------------------------ equality */

static int is_operator_value(const char *name) {
    return strcmp(name, "Operator") == 0 || strcmp(name, "VersionOperator") == 0 ||
           strcmp(name, "DateTimeOperator") == 0;
}

static int kvs_equal(const tsq_kvs *a, const tsq_kvs *b, int operators_nocase) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++) {
        const tsq_kv *x = &a->v[i], *y = &b->v[i];
        if (strcmp(x->name, y->name) != 0 || x->len != y->len) return 0;
        if (operators_nocase && is_operator_value(x->name)) {
            if (tsq_ascii_ncasecmp(x->value, y->value, x->len) != 0) return 0;
        } else if (memcmp(x->value, y->value, x->len) != 0) {
            return 0;
        }
    }
    return 1;
}

/* Operator kinds and the Operator values of expressions compare case-insensitively;
 * everything else (class, value order, values, attributes, platform keys) exactly. */
int tsq_cond_equal(const tsq_cond *a, const tsq_cond *b) {
    if (a == b) return 1;
    if (!a || !b || a->kind != b->kind || a->nops != b->nops || a->nkeys != b->nkeys) return 0;
    if (a->kind == TSQ_C_EXPRESSION && strcmp(a->cls ? a->cls : "", b->cls ? b->cls : "") != 0) return 0;
    if (!kvs_equal(&a->values, &b->values, 1) || !kvs_equal(&a->attrs, &b->attrs, 0)) return 0;
    for (size_t i = 0; i < a->nkeys; i++)
        if (!kvs_equal(&a->keys[i], &b->keys[i], 0)) return 0;
    for (size_t i = 0; i < a->nops; i++)
        if (!tsq_cond_equal(a->ops[i], b->ops[i])) return 0;
    return 1;
}

int tsq_cond_depth(const tsq_cond *c) {
    int d = 0;
    for (size_t i = 0; i < c->nops; i++) {
        int x = tsq_cond_depth(c->ops[i]);
        if (x > d) d = x;
    }
    return c->kind == TSQ_C_EXPRESSION || c->kind == TSQ_C_CONDITION ? d : d + 1;
}
