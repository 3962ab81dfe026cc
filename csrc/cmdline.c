/* cmdline.c - the command text of actions (<action>), rendered from the class's
 * CommandLine template, and new actions with the console's defaults. */
#include "tsq_int.h"
#include "catalog.h"

#include <stdio.h>
#include <strings.h>

/* ------------------------------------------------------------------ rendering */

const char *tsq_cmd_template(const tsq_node *n, const tsq_class *c) {
    if (c->template_300) {
        const tsq_node *seq = tsq_node_sequence(n);
        const char *ver = seq ? tsq_attr_get(seq, n->ctx->atom[A_version]) : NULL;
        if (ver && strcmp(ver, "3.10") != 0) return c->template_300;
    }
    return c->pub.template_;
}

/* The value of CommandLineArg(arg): NULL when the property is not set. */
static const char *arg_value(const tsq_node *n, const tsq_class *c, int arg, size_t *len) {
    for (size_t i = 0; i < c->pub.nprops; i++) {
        const tsq_cprop *p = &c->props[i];
        if (p->pub.cmdline_arg != arg || !p->pub.variable) continue;
        tsq_node *v = tsq_var_find(n, p->pub.name);
        if (!v) return NULL;
        const char *s = tsq_leaf_text(v, len);
        if (p->pub.type == TSQ_V_BOOL) { /* the client writes .NET booleans */
            int b = tsq_parse_bool(s, *len);
            if (b >= 0) {
                *len = b ? 4 : 5;
                return b ? "True" : "False";
            }
        }
        return s;
    }
    return NULL;
}

static int read_num(const char *t, size_t *i) {
    int v = 0;
    while (t[*i] >= '0' && t[*i] <= '9' && v < 1000) v = v * 10 + (t[(*i)++] - '0');
    return v;
}

/* Template rules (xml-format.md 3.2): %N the argument, <?N:text> text when argument N
 * is set, %% a literal %, \" a quote. */
void tsq_cmd_render(const tsq_node *n, const tsq_class *c, const char *tpl, tsq_buf *b) {
    int in_block = 0;
    size_t i = 0, len;
    while (tpl[i]) {
        char ch = tpl[i];
        if (ch == '<' && tpl[i + 1] == '?' && tpl[i + 2] >= '0' && tpl[i + 2] <= '9' && !in_block) {
            size_t j = i + 2;
            int arg = read_num(tpl, &j);
            if (tpl[j] == ':') {
                if (arg_value(n, c, arg, &len)) {
                    in_block = 1;
                    i = j + 1;
                } else {
                    while (tpl[j] && tpl[j] != '>') j++;
                    i = tpl[j] ? j + 1 : j;
                }
                continue;
            }
        }
        if (ch == '>' && in_block) {
            in_block = 0;
            i++;
            continue;
        }
        if (ch == '%' && tpl[i + 1] == '%') {
            tsq_buf_add(b, "%", 1);
            i += 2;
            continue;
        }
        if (ch == '%' && tpl[i + 1] >= '0' && tpl[i + 1] <= '9') {
            i++;
            const char *v = arg_value(n, c, read_num(tpl, &i), &len);
            if (v) tsq_buf_add(b, v, len);
            continue;
        }
        if (ch == '\\' && tpl[i + 1] == '"') {
            tsq_buf_add(b, "\"", 1);
            i += 2;
            continue;
        }
        size_t j = i + 1; /* a run of literal text */
        while (tpl[j] && tpl[j] != '<' && tpl[j] != '>' && tpl[j] != '%' && tpl[j] != '\\') j++;
        tsq_buf_add(b, tpl + i, j - i);
        i = j;
    }
}

static tsq_node *ensure_action_elem(tsq_node *n) {
    tsq_ctx *ctx = n->ctx;
    tsq_node *a = tsq_elem_child(n, ctx->atom[A_action]);
    if (a) return a;
    if (!(a = tsq_node_alloc(ctx, N_ELEM, ctx->atom[A_action]))) return NULL;
    if (tsq_elem_insert(n, tsq_elem_child(n, ctx->atom[A_defaultVarList]), a) != TSQ_OK) {
        tsq_node_destroy(a);
        return NULL;
    }
    return a;
}

/* The context's buffer for one command text at a time, empty: a set of a property renders
 * one text (tsq_cmd_generated) and a save another (tsq_cmd_update), and each would
 * otherwise allocate and free a buffer. A large one is not kept. */
static tsq_buf *scratch_buf(tsq_ctx *ctx) {
    tsq_buf *b = &ctx->scratch;
    if (b->cap > 4096) tsq_buf_free(b);
    b->len = 0;
    b->failed = 0;
    return b;
}

tsq_status tsq_cmd_update(tsq_node *n, const tsq_class *c) {
    const char *tpl = tsq_cmd_template(n, c);
    if (!tpl) return TSQ_OK;
    tsq_buf *b = scratch_buf(n->ctx);
    tsq_cmd_render(n, c, tpl, b);
    tsq_buf_add(b, "", 0);
    tsq_node *a = b->failed ? NULL : ensure_action_elem(n);
    return a ? tsq_node_set_text(a, b->data, b->len) : TSQ_ENOMEM;
}

void tsq_cmd_stale(tsq_node *n) { n->flags |= F_CMD_STALE; }

tsq_status tsq_cmd_flush(tsq_node *n) {
    if (!(n->flags & F_CMD_STALE)) return TSQ_OK;
    const tsq_class *c = tsq_class_of(n);
    tsq_status st = c ? tsq_cmd_update(n, c) : TSQ_OK;
    if (st == TSQ_OK) n->flags &= (uint16_t)~F_CMD_STALE;
    return st;
}

int tsq_cmd_generated(const tsq_node *n, const tsq_class *c) {
    if (n->flags & F_CMD_STALE) return 1;
    const tsq_node *seq = tsq_node_sequence(n);
    const char *ver = seq ? tsq_attr_get(seq, n->ctx->atom[A_version]) : NULL;
    const char *tpl = tsq_cmd_template(n, c);
    if (!seq || !ver || strcmp(ver, "3.10") == 0 || !tpl) return 1;
    tsq_buf *b = scratch_buf(n->ctx);
    tsq_cmd_render(n, c, tpl, b);
    tsq_buf_add(b, "", 0);
    return !b->failed && strcmp(b->data, tsq_action_command(n)) == 0;
}

/* ------------------------------------------------------------------ command text */

const char *tsq_action_command(const tsq_node *n) {
    if (!n || n->type != N_ACTION) return "";
    /* a stale text is rendered now (one thread uses a context at a time); when that runs
     * out of memory the text read is the previous one and it stays marked */
    if (n->flags & F_CMD_STALE) tsq_cmd_flush((tsq_node *)n);
    const tsq_node *a = tsq_elem_child(n, n->ctx->atom[A_action]);
    size_t len;
    return a ? tsq_leaf_text(a, &len) : "";
}

tsq_status tsq_action_set_command(tsq_node *n, const char *text, tsq_error *err) {
    if (!n || n->type != N_ACTION) return tsq_err(err, TSQ_EINVAL, "only actions have a command text");
    if (!text) text = "";
    n->flags &= (uint16_t)~F_CMD_STALE; /* the text given wins over the properties' */
    tsq_node *a = ensure_action_elem(n);
    tsq_status st = a ? tsq_node_set_text(a, text, strlen(text)) : TSQ_ENOMEM;
    if (st) return tsq_err(err, st, "out of memory");
    return TSQ_OK;
}

/* ------------------------------------------------------------------ new actions */

/* An "unknown class" error naming a catalogued class that differs only in case. */
static tsq_status unknown_class(tsq_error *err, const char *type) {
    for (size_t i = 0; i < tsq_naction_classes; i++) {
        const tsq_class_info *c = &tsq_classes[i].pub;
        if (strcasecmp(c->short_name, type) == 0 || strcasecmp(c->name, type) == 0)
            return tsq_err(err, TSQ_ENOTFOUND, "unknown action class \"%.100s\" (did you mean %s?)", type, c->short_name);
    }
    return tsq_err(err, TSQ_ENOTFOUND, "unknown action class \"%.100s\"", type);
}

static const char *prop_default(const tsq_class *c, const char *name, const char *dflt) {
    const tsq_cprop *p = c ? tsq_cprop_find(c, name) : NULL;
    return p && p->pub.default_ ? p->pub.default_ : dflt;
}

static tsq_status fill_action(tsq_node *n, const tsq_class *c, const char *type, const char *name) {
    tsq_ctx *ctx = n->ctx;
    const char *env = c ? c->pub.environment : "WinPEandFullOS";
    const char *codes = prop_default(c ? c : &tsq_base_class, "SuccessCodes", "0");
    const struct { int atom; const char *v; } attrs[] = {
        {A_type, type},
        {A_name, name},
        {A_description, ""},
        {A_runIn, env},
        {A_successCodeList, codes},
        {A_retryCount, prop_default(c, "RetryCount", "0")},
        {A_runFromNet, prop_default(c, "RunFromNet", "false")},
    };
    tsq_status st;
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        if (attrs[i].v && (st = tsq_attr_set(n, ctx->atom[attrs[i].atom], attrs[i].v, strlen(attrs[i].v))))
            return st;
    tsq_node *a = tsq_node_alloc(ctx, N_ELEM, ctx->atom[A_action]);
    if (!a) return TSQ_ENOMEM;
    tsq_node_link(n, NULL, a);
    if (!c) return TSQ_OK;
    tsq_node *l = tsq_node_alloc(ctx, N_ELEM, ctx->atom[A_defaultVarList]);
    if (!l) return TSQ_ENOMEM;
    l->flags |= F_EMPTY_TAG;
    tsq_node_link(n, NULL, l);
    int changed = 0;
    for (size_t i = 0; i < c->pub.nprops; i++) {
        const tsq_cprop *p = &c->props[i];
        if (!(p->flags & TSQ_PF_INIT) || !p->pub.variable || p->pub.type == TSQ_V_OBJECTS) continue;
        const char *v = p->pub.default_ ? p->pub.default_ : "";
        if ((st = tsq_var_set(n, p->pub.name, p->pub.variable, p->pub.hidden, v, strlen(v), &changed))) return st;
    }
    return tsq_cmd_update(n, c);
}

/* ------------------------------------------------------------------ prototypes
 * A new action of a catalogued class is a copy of that class's prototype, built once per
 * context by fill_action. The prototype's strings are moved into an arena that its copies
 * share (as copies of a parsed step share the document's arena), so a copy costs a few
 * allocations instead of one per attribute, variable and text: building 100,000 steps
 * in Lua spends its time in Lua, not in malloc. */

/* A copy of s[0..len) in the arena, NUL-terminated; the owned original is freed. */
static char *to_arena(tsq_ctx *ctx, tsq_src *a, char *s, size_t len) {
    char *d = tsq_src_arena(a, len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    tsq_strfree(ctx, s);
    return d;
}

/* Moves the owned strings of the tree at top into one arena shared by its copies. */
static int freeze(tsq_ctx *ctx, tsq_node *top) {
    tsq_src *s = tsq_src_new(ctx, NULL, 0);
    if (!s) return 0;
    int ok = 1;
    for (tsq_node *x = top; x && ok; x = tsq_tree_next(top, x)) {
        if (x->flags & F_TEXT_OWNED) {
            char *t = to_arena(ctx, s, x->text, x->text_len);
            if (!t) ok = 0;
            else {
                x->text = t;
                x->flags &= (uint16_t)~F_TEXT_OWNED;
            }
        }
        for (uint16_t i = 0; i < x->nattrs && ok; i++) {
            tsq_attr *a = &x->attrs[i];
            if (!a->owned) continue;
            char *v = to_arena(ctx, s, a->value, a->len);
            if (!v) ok = 0;
            else {
                a->value = v;
                a->owned = 0;
            }
        }
        x->src = s;
        tsq_src_ref(s);
    }
    tsq_src_unref(s); /* the nodes hold it now */
    return ok;
}

static tsq_node *prototype(tsq_ctx *ctx, const tsq_class *c) {
    size_t k = (size_t)(c - tsq_classes);
    if (k >= tsq_naction_classes) return NULL;
    if (!ctx->protos) {
        ctx->protos = ctx->alloc(ctx->ud, NULL, 0, tsq_naction_classes * sizeof *ctx->protos);
        if (!ctx->protos) return NULL;
        memset(ctx->protos, 0, tsq_naction_classes * sizeof *ctx->protos);
    }
    if (ctx->protos[k]) return ctx->protos[k];
    const char *elem = tsq_intern(ctx, c->element);
    tsq_node *n = elem ? tsq_node_alloc(ctx, N_ACTION, elem) : NULL;
    if (!n) return NULL;
    n->cls = c;
    n->cls_valid = CLS_CANONICAL; /* fill_action wrote c's own name */
    n->refs = n->tree_refs = 1;
    if (fill_action(n, c, c->pub.name, c->pub.display) != TSQ_OK || !freeze(ctx, n)) {
        tsq_node_destroy(n);
        return NULL;
    }
    return ctx->protos[k] = n;
}

void tsq_protos_free(tsq_ctx *ctx) {
    if (!ctx->protos) return;
    for (size_t k = 0; k < tsq_naction_classes; k++) tsq_node_release(ctx->protos[k]);
    ctx->alloc(ctx->ud, ctx->protos, tsq_naction_classes * sizeof *ctx->protos, 0);
    ctx->protos = NULL;
}

tsq_status tsq_action_new(tsq_ctx *ctx, const char *type, const char *name, tsq_node **out, tsq_error *err) {
    if (out) *out = NULL;
    if (!ctx || !type || !*type || !out) return tsq_err(err, TSQ_EINVAL, "an action needs a class name");
    const tsq_class *c = (const tsq_class *)tsq_class_find(type);
    if (c && c->kind != TSQ_CK_ACTION) return tsq_err(err, TSQ_EINVAL, "%s is not an action class", type);
    if (!c && !strchr(type, '_')) return unknown_class(err, type);
    const tsq_node *proto = c ? prototype(ctx, c) : NULL;
    if (proto) {
        tsq_node *n = tsq_node_clone(proto);
        if (!n || (name && strcmp(name, c->pub.display) != 0 &&
                   tsq_attr_set(n, ctx->atom[A_name], name, strlen(name)) != TSQ_OK)) {
            tsq_node_release(n);
            return tsq_err(err, TSQ_ENOMEM, "out of memory");
        }
        *out = n;
        return TSQ_OK;
    }
    const char *elem = tsq_intern(ctx, c ? c->element : "step");
    tsq_node *n = elem ? tsq_node_alloc(ctx, N_ACTION, elem) : NULL;
    if (!n) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    if (!name) name = c ? c->pub.display : type;
    tsq_status st = fill_action(n, c, c ? c->pub.name : type, name);
    if (st) {
        tsq_node_destroy(n);
        return tsq_err(err, st, "out of memory");
    }
    n->cls = c;
    n->cls_valid = c ? CLS_CANONICAL : CLS_KNOWN; /* fill_action wrote c's own name */
    n->refs = n->tree_refs = 1;
    *out = n;
    return TSQ_OK;
}
