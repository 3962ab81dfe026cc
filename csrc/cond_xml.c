/* cond_xml.c - between a step's <condition> element and tsq_cond.
 *
 * Reading accepts every shape of the corpus: operands directly under <condition>
 * (implicitly ANDed), <operator type="and|or|not"> (type case-insensitive, kept as
 * written), <operator .../> without operands, <osConditionGroup>/<osExpressionGroup>
 * with <platformKey> children, extra attributes such as ignoreQueryFailure, values in any
 * order. <condition></condition> is no condition.
 *
 * Decision (MDT oddity): a bare <expression> (or <operator>) that is a direct child of a
 * step, outside any <condition>, is not a condition. The client engine reads only the
 * <condition> element, so such a step always runs; the stray element is kept in the
 * document untouched and a condition set on the step goes into a new <condition>.
 *
 * Not represented (and so not written back by tsq_node_set_condition): comments and
 * other non-element content inside a condition, attributes of <condition> itself, and a
 * missing type attribute on osConditionGroup/osExpressionGroup (the default is written). */
#include "cond.h"

tsq_node *tsq_cond_elem(const tsq_node *step) {
    if (!(step->flags & F_COND)) return NULL; /* without looking at the children (plans) */
    const char *atom = step->ctx->atom[A_condition];
    for (tsq_node *c = step->first; c; c = c->next)
        if (c->name == atom) return tsq_elem_first(c) ? c : NULL;
    return NULL;
}

static tsq_status read_attrs(tsq_cond *c, const tsq_node *e, int skip_type) {
    const char *type = e->ctx->atom[A_type];
    for (uint16_t i = 0; i < e->nattrs; i++) {
        if (skip_type && e->attrs[i].name == type) continue;
        if (tsq_cond_append_attr(c, e->attrs[i].name, e->attrs[i].value, e->attrs[i].len)) return TSQ_ENOMEM;
    }
    return TSQ_OK;
}

static tsq_status read_operand(tsq_ctx *ctx, const tsq_node *e, int depth, tsq_cond **out, tsq_error *err);

static tsq_status read_children(tsq_ctx *ctx, tsq_cond *c, const tsq_node *e, int depth, tsq_error *err) {
    for (const tsq_node *k = tsq_elem_first(e); k; k = tsq_elem_next(k)) {
        if (c->kind == TSQ_C_OSEXPRGROUP && k->name == ctx->atom[A_platformKey]) {
            tsq_kvs *kv = tsq_cond_add_key(c);
            if (!kv) return tsq_err(err, TSQ_ENOMEM, "out of memory");
            for (uint16_t i = 0; i < k->nattrs; i++)
                if (tsq_kvs_insert(ctx, kv, kv->n, k->attrs[i].name, k->attrs[i].value, k->attrs[i].len))
                    return tsq_err(err, TSQ_ENOMEM, "out of memory");
            continue;
        }
        tsq_cond *o = NULL;
        tsq_status st = read_operand(ctx, k, depth + 1, &o, err);
        if (st) return st;
        if (tsq_cond_push(c, o)) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    }
    return TSQ_OK;
}

static tsq_status read_expression(tsq_ctx *ctx, tsq_cond *c, const tsq_node *e, tsq_error *err) {
    const char *type = tsq_attr_get(e, ctx->atom[A_type]);
    if (!(c->cls = tsq_intern(ctx, type ? type : ""))) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    if (read_attrs(c, e, 1)) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    for (const tsq_node *k = tsq_elem_first(e); k; k = tsq_elem_next(k)) {
        const char *name = tsq_attr_get(k, ctx->atom[A_name]);
        if (k->name != ctx->atom[A_variable] || !name)
            return tsq_err(err, TSQ_EPARSE, "unexpected <%s> in a condition expression (expected <variable name=...>)",
                           k->name);
        if (tsq_cond_append_value(c, name, k->text ? k->text : "", k->text ? k->text_len : 0))
            return tsq_err(err, TSQ_ENOMEM, "out of memory");
    }
    return TSQ_OK;
}

static tsq_status read_operand(tsq_ctx *ctx, const tsq_node *e, int depth, tsq_cond **out, tsq_error *err) {
    *out = NULL;
    if (depth > (int)ctx->limits.max_cond_depth)
        return tsq_err(err, TSQ_ELIMIT, "condition nesting exceeds %u levels", (unsigned)ctx->limits.max_cond_depth);
    const char **atom = ctx->atom;
    tsq_cond_kind kind;
    const char *type = tsq_attr_get(e, atom[A_type]);
    if (e->name == atom[A_expression])
        kind = TSQ_C_EXPRESSION;
    else if (e->name == atom[A_osConditionGroup])
        kind = TSQ_C_OSGROUP;
    else if (e->name == atom[A_osExpressionGroup])
        kind = TSQ_C_OSEXPRGROUP;
    else if (e->name == atom[A_operator]) {
        if (type && tsq_ascii_casecmp(type, "and") == 0) kind = TSQ_C_AND;
        else if (type && tsq_ascii_casecmp(type, "or") == 0) kind = TSQ_C_OR;
        else if (type && tsq_ascii_casecmp(type, "not") == 0) kind = TSQ_C_NOT;
        else return tsq_err(err, TSQ_EPARSE, "unknown condition operator type '%s' (expected and, or, not)", type ? type : "");
    } else
        return tsq_err(err, TSQ_EPARSE, "unexpected <%s> in a condition", e->name);
    tsq_cond *c = tsq_cond_new(ctx, kind);
    if (!c) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    tsq_status st;
    if (kind == TSQ_C_EXPRESSION) {
        st = read_expression(ctx, c, e, err);
    } else {
        st = TSQ_OK;
        if (type && tsq_cond_set_optype(c, type, strlen(type))) st = tsq_err(err, TSQ_ENOMEM, "out of memory");
        if (!st && read_attrs(c, e, 1)) st = tsq_err(err, TSQ_ENOMEM, "out of memory");
        if (!st) st = read_children(ctx, c, e, depth, err);
    }
    if (st) {
        tsq_cond_free(c);
        return st;
    }
    *out = c;
    return TSQ_OK;
}

tsq_status tsq_cond_from_xml(tsq_ctx *ctx, const tsq_node *elem, tsq_cond **out, tsq_error *err) {
    *out = NULL;
    tsq_cond *c = tsq_cond_new(ctx, TSQ_C_CONDITION);
    if (!c) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    tsq_status st = read_children(ctx, c, elem, 0, err);
    if (st) {
        tsq_cond_free(c);
        return st;
    }
    *out = c;
    return TSQ_OK;
}

tsq_cond *tsq_node_condition(const tsq_node *n) {
    if (!n || !tsq_node_is_step(n)) return NULL;
    const tsq_node *e = tsq_cond_elem(n);
    if (!e) return NULL;
    tsq_cond *c = NULL;
    tsq_cond_from_xml(n->ctx, e, &c, NULL);
    return c; /* NULL as well when it can not be read: tsq_node_eval_condition says why */
}

int tsq_node_has_condition(const tsq_node *n) { return n && tsq_node_is_step(n) && tsq_cond_elem(n) != NULL; }

/* ------------------------------------------------------------------ writing */

static tsq_node *new_elem(tsq_ctx *ctx, int atom) { return tsq_node_alloc(ctx, N_ELEM, ctx->atom[atom]); }

static tsq_status set_attr(tsq_node *e, const char *name, const char *v, size_t len) {
    const char *nm = tsq_intern(e->ctx, name);
    return nm ? tsq_attr_set(e, nm, v, len) : TSQ_ENOMEM;
}

static tsq_status write_attrs(tsq_node *e, const tsq_kvs *l) {
    for (size_t i = 0; i < l->n; i++)
        if (set_attr(e, l->v[i].name, l->v[i].value, l->v[i].len)) return TSQ_ENOMEM;
    return TSQ_OK;
}

/* Inserts child at the end of parent (which is already in the document, so that the
 * whitespace follows the document's layout), then fills it. */
static tsq_status write_operand(tsq_node *parent, const tsq_cond *c);

static tsq_status add_child(tsq_node *parent, tsq_node *child) {
    if (!child) return TSQ_ENOMEM;
    tsq_status st = tsq_elem_insert(parent, NULL, child);
    if (st) tsq_node_destroy(child);
    return st;
}

static tsq_status fill(tsq_node *e, const tsq_cond *c) {
    tsq_ctx *ctx = e->ctx;
    for (size_t i = 0; i < c->nkeys; i++) {
        tsq_node *k = new_elem(ctx, A_platformKey);
        if (!k) return TSQ_ENOMEM;
        k->flags |= F_EMPTY_TAG;
        if (write_attrs(k, &c->keys[i])) {
            tsq_node_destroy(k);
            return TSQ_ENOMEM;
        }
        if (add_child(e, k)) return TSQ_ENOMEM;
    }
    if (c->kind == TSQ_C_EXPRESSION) {
        for (size_t i = 0; i < c->values.n; i++) {
            tsq_node *v = new_elem(ctx, A_variable);
            if (!v || tsq_attr_set(v, ctx->atom[A_name], c->values.v[i].name, strlen(c->values.v[i].name))) {
                tsq_node_destroy(v);
                return TSQ_ENOMEM;
            }
            if (add_child(e, v) || tsq_node_set_text(v, c->values.v[i].value, c->values.v[i].len)) return TSQ_ENOMEM;
        }
        return TSQ_OK;
    }
    for (size_t i = 0; i < c->nops; i++)
        if (write_operand(e, c->ops[i])) return TSQ_ENOMEM;
    return TSQ_OK;
}

static tsq_status write_operand(tsq_node *parent, const tsq_cond *c) {
    tsq_ctx *ctx = parent->ctx;
    int atom = c->kind == TSQ_C_EXPRESSION ? A_expression
             : c->kind == TSQ_C_OSGROUP ? A_osConditionGroup
             : c->kind == TSQ_C_OSEXPRGROUP ? A_osExpressionGroup : A_operator;
    tsq_node *e = new_elem(ctx, atom);
    if (!e) return TSQ_ENOMEM;
    const char *type = c->kind == TSQ_C_EXPRESSION ? c->cls : c->optype ? c->optype : tsq_cond_default_type(c->kind);
    if (tsq_attr_set(e, ctx->atom[A_type], type, strlen(type)) || write_attrs(e, &c->attrs)) {
        tsq_node_destroy(e);
        return TSQ_ENOMEM;
    }
    /* an operator without operands is written <operator type="or"/>, as the corpus has it */
    if (c->kind != TSQ_C_EXPRESSION && !c->nops && !c->nkeys) e->flags |= F_EMPTY_TAG;
    if (add_child(parent, e)) return TSQ_ENOMEM;
    return fill(e, c);
}

static void drop_cache(tsq_node *n) {
    if (n->cc) {
        tsq_ccache_free(n->ctx, n->cc);
        n->cc = NULL;
    }
}

tsq_status tsq_node_set_condition(tsq_node *n, const tsq_cond *c, tsq_error *err) {
    if (!n || (n->type != N_GROUP && n->type != N_ACTION))
        return tsq_err(err, TSQ_EINVAL, "only groups and steps have a condition");
    tsq_ctx *ctx = n->ctx;
    if (c && c->ctx != ctx) return tsq_err(err, TSQ_EINVAL, "the condition belongs to another context");
    if (c && tsq_cond_depth(c) > (int)ctx->limits.max_cond_depth)
        return tsq_err(err, TSQ_ELIMIT, "condition nesting exceeds %u levels", (unsigned)ctx->limits.max_cond_depth);
    tsq_node *old = tsq_elem_child(n, ctx->atom[A_condition]);
    drop_cache(n);
    /* an operand given alone is the condition's only operand; no operand is no condition */
    if (!c || (c->kind == TSQ_C_CONDITION && c->nops == 0)) {
        if (old) {
            tsq_elem_remove(old);
            tsq_node_destroy(old);
        }
        return TSQ_OK;
    }
    tsq_node *e = new_elem(ctx, A_condition);
    if (!e) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    n->flags |= F_COND;
    tsq_status st = tsq_elem_insert(n, old ? old : tsq_elem_first(n), e);
    if (st) {
        tsq_node_destroy(e);
        return tsq_err(err, st, "out of memory");
    }
    if (c->kind == TSQ_C_CONDITION)
        st = fill(e, c);
    else
        st = write_operand(e, c);
    if (st) {
        tsq_elem_remove(e);
        tsq_node_destroy(e);
        return tsq_err(err, st, "out of memory");
    }
    if (old) {
        tsq_elem_remove(old);
        tsq_node_destroy(old);
    }
    return TSQ_OK;
}
