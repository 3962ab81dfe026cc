/* steps.c - the step-level API: sequences, groups, actions, edits, common properties. */
#include "tsq_int.h"
#include "catalog.h"

#include <stdio.h>
#include <strings.h>

static const char CLASS_GROUP[] = "SMS_TaskSequence_Group";
static const char CLASS_SEQUENCE[] = "SMS_TaskSequence";
static const char CLASS_SUBTS[] = "SMS_TaskSequence_SubTasksequence";

tsq_ctx *tsq_node_ctx(const tsq_node *n) { return n->ctx; }

tsq_kind tsq_node_kind(const tsq_node *n) {
    switch (n->type) {
    case N_SEQUENCE: return TSQ_SEQUENCE;
    case N_GROUP: return TSQ_GROUP;
    default: return TSQ_ACTION;
    }
}

const char *tsq_node_type_attr(const tsq_node *n) {
    const char *t = tsq_attr_get(n, n->ctx->atom[A_type]);
    if (t) return t;
    return n->name == n->ctx->atom[A_subtasksequence] ? CLASS_SUBTS : "";
}

/* The type attribute as written; when it is a catalogued class's own name, the catalogue's
 * string, the same static one for every step of the class: a host that keeps strings by
 * address (Lua's API string cache) then finds it at once. */
const char *tsq_node_type(const tsq_node *n) {
    if (n->type == N_GROUP) return CLASS_GROUP;
    if (n->type == N_SEQUENCE) return CLASS_SEQUENCE;
    const tsq_class *c = tsq_class_of(n);
    return c && n->cls_valid == CLS_CANONICAL ? c->pub.name : tsq_node_type_attr(n);
}

const char *tsq_node_element(const tsq_node *n) { return n->name; }

/* ------------------------------------------------------------------ creation */

tsq_node *tsq_sequence_new(tsq_ctx *ctx) {
    tsq_node *s = tsq_node_alloc(ctx, N_SEQUENCE, ctx->atom[A_sequence]);
    if (!s) return NULL;
    s->doc = tsq_doc_new(ctx);
    if (!s->doc || tsq_attr_set(s, ctx->atom[A_version], "3.10", 4) != TSQ_OK) {
        tsq_node_destroy(s);
        return NULL;
    }
    s->doc->newline = "\n";
    memcpy(s->doc->indent, "  ", 3);
    s->flags |= F_EMPTY_TAG;
    s->refs = s->tree_refs = 1;
    return s;
}

tsq_node *tsq_group_new(tsq_ctx *ctx, const char *name) {
    tsq_node *g = tsq_node_alloc(ctx, N_GROUP, ctx->atom[A_group]);
    if (!g) return NULL;
    if (!name) name = "";
    if (tsq_attr_set(g, ctx->atom[A_name], name, strlen(name)) != TSQ_OK ||
        tsq_attr_set(g, ctx->atom[A_description], "", 0) != TSQ_OK) {
        tsq_node_destroy(g);
        return NULL;
    }
    g->refs = g->tree_refs = 1;
    return g;
}

/* ------------------------------------------------------------------ navigation */

tsq_node *tsq_node_parent(const tsq_node *n) {
    return n->type == N_SEQUENCE ? NULL : n->parent;
}

tsq_node *tsq_node_first(const tsq_node *n) {
    for (tsq_node *c = n->first; c; c = c->next)
        if (c->type == N_GROUP || c->type == N_ACTION) return c;
    return NULL;
}

tsq_node *tsq_node_next(const tsq_node *n) {
    for (tsq_node *c = n->next; c; c = c->next)
        if (c->type == N_GROUP || c->type == N_ACTION) return c;
    return NULL;
}

tsq_node *tsq_node_prev(const tsq_node *n) {
    for (tsq_node *c = n->prev; c; c = c->prev)
        if (c->type == N_GROUP || c->type == N_ACTION) return c;
    return NULL;
}

/* ------------------------------------------------------------------ positions
 * Steps are a linked list, so the i-th step and a step's index are walks. The context
 * remembers, for four parents at a time (a fifth takes the slot of the one that came
 * first), one step with its index and the number of steps (ctx->child_at), and walks
 * from whichever known place is nearest: a loop over g[1], g[2], ... or backwards,
 * asking each step its index or its parent's, takes a step or two per call, and #g is a
 * look-up. Linking and unlinking keep the entries true instead of dropping them: g:add(s)
 * leaves them as they were (the step goes last), g:add(s, 1) in a loop keeps the count.
 * Asking writes to the context, as reading does (one thread uses a context at a time). */

typedef struct tsq_child_at child_at;

static child_at *child_at_find(tsq_ctx *ctx, const tsq_node *parent) {
    for (int i = 0; i < 4; i++)
        if (ctx->child_at[i].parent == parent) return &ctx->child_at[i];
    return NULL;
}

/* The entry of parent, a new one (taking the oldest slot) when it has none. */
static child_at *child_at_take(tsq_ctx *ctx, const tsq_node *parent) {
    child_at *e = child_at_find(ctx, parent);
    if (e) return e;
    e = &ctx->child_at[ctx->child_at_next++ & 3];
    e->parent = parent;
    e->node = NULL;
    e->index = 0;
    e->count = CHILD_COUNT_UNKNOWN;
    return e;
}

void tsq_child_at_linked(tsq_node *parent, const tsq_node *child) {
    child_at *e = child_at_find(parent->ctx, parent);
    if (!e) return;
    if (e->count != CHILD_COUNT_UNKNOWN) e->count++;
    if (e->node && tsq_node_next(child)) e->node = NULL; /* not last: it may come before */
}

void tsq_child_at_unlinking(tsq_node *parent, const tsq_node *child) {
    child_at *e = child_at_find(parent->ctx, parent);
    if (!e) return;
    if (e->count != CHILD_COUNT_UNKNOWN) e->count--;
    if (e->node == child || (e->node && tsq_node_next(child))) e->node = NULL;
}

void tsq_child_at_destroyed(tsq_ctx *ctx, const tsq_node *n) {
    for (int i = 0; i < 4; i++)
        if (ctx->child_at[i].parent == n || ctx->child_at[i].node == n) ctx->child_at[i].parent = NULL;
}

static tsq_node *last_step(const tsq_node *n) {
    for (tsq_node *c = n->last; c; c = c->prev)
        if (c->type == N_GROUP || c->type == N_ACTION) return c;
    return NULL;
}

size_t tsq_node_count(const tsq_node *n) {
    child_at *e = child_at_find(n->ctx, n);
    if (e && e->count != CHILD_COUNT_UNKNOWN) return e->count;
    size_t k = 0;
    for (tsq_node *c = tsq_node_first(n); c; c = tsq_node_next(c)) k++;
    child_at_take(n->ctx, n)->count = k;
    return k;
}

static size_t dist(size_t a, size_t b) { return a > b ? a - b : b - a; }

tsq_node *tsq_node_child(const tsq_node *n, size_t index) {
    tsq_ctx *ctx = n->ctx;
    child_at *e = child_at_find(ctx, n);
    if (e && e->count != CHILD_COUNT_UNKNOWN && index >= e->count) return NULL;
    /* the nearest known place: the first step, the remembered one, the last */
    tsq_node *c = tsq_node_first(n);
    size_t k = 0;
    if (e && e->node && dist(e->index, index) < index) {
        c = e->node;
        k = e->index;
    }
    if (e && e->count != CHILD_COUNT_UNKNOWN && e->count - 1 - index < dist(k, index)) {
        c = last_step(n);
        k = e->count - 1;
    }
    while (c && k < index) {
        c = tsq_node_next(c);
        k++;
    }
    while (c && k > index) {
        c = tsq_node_prev(c);
        k--;
    }
    if (c) {
        e = child_at_take(ctx, n);
        e->node = c;
        e->index = k;
    }
    return c;
}

/* Searches both ways from n at once: back to the remembered step or to the first, forward
 * to the remembered step or (when the count is known) past the last. */
size_t tsq_node_index(const tsq_node *n) {
    tsq_node *p = tsq_node_parent(n);
    if (!p) return (size_t)-1;
    if (n->type != N_GROUP && n->type != N_ACTION) { /* not a child step: its place among them */
        size_t k = 0;
        for (tsq_node *c = tsq_node_prev(n); c; c = tsq_node_prev(c)) k++;
        return k;
    }
    tsq_ctx *ctx = n->ctx;
    child_at *e = child_at_find(ctx, p);
    if (e && e->node == n) return e->index;
    const tsq_node *mark = e ? e->node : NULL;
    size_t count = e ? e->count : CHILD_COUNT_UNKNOWN, k = 0, steps = 0;
    const tsq_node *b = n, *f = n;
    for (;;) {
        steps++;
        b = tsq_node_prev(b);
        if (!b) {
            k = steps - 1;
            break;
        }
        if (b == mark) {
            k = e->index + steps;
            break;
        }
        if (f) {
            f = tsq_node_next(f);
            if (f && f == mark) {
                k = e->index - steps;
                break;
            }
            if (!f && count != CHILD_COUNT_UNKNOWN) {
                k = count - steps;
                break;
            }
        }
    }
    e = child_at_take(ctx, p);
    e->node = (tsq_node *)n;
    e->index = k;
    return k;
}

int tsq_node_depth(const tsq_node *n) {
    int d = 0;
    for (const tsq_node *p = n; p && p->type != N_SEQUENCE; p = p->parent) d++;
    return d;
}

/* Starts fetching the step after n. A parsed step's attribute values precede its node in
 * the arena and its attributes and first children follow it; the steps of a large
 * document are far apart in memory, so a walk that touches one step after another would
 * otherwise wait on every one of them. */
static tsq_node *ahead(tsq_node *n) {
#if defined(__GNUC__)
    if (n && n->next) {
        const char *p = (const char *)n->next;
        for (int line = -4; line < 8; line++) __builtin_prefetch(p + 64 * line);
    }
#endif
    return n;
}

tsq_node *tsq_node_walk(const tsq_node *top, const tsq_node *cur) {
    const tsq_node *n = cur ? cur : top;
    /* descend into groups, then siblings, then up; only step nodes are visited */
    if (n->type != N_ACTION) {
        tsq_node *c = tsq_node_first(n);
        if (c) return ahead(c);
    }
    while (n && n != top) {
        tsq_node *s = tsq_node_next(n);
        if (s) return ahead(s);
        n = n->parent;
    }
    return NULL;
}

static void path_rec(const tsq_node *n, tsq_buf *b, int index_form) {
    const tsq_node *p = tsq_node_parent(n);
    if (!p) return; /* the sequence itself has the empty path */
    if (tsq_node_parent(p)) {
        path_rec(p, b, index_form);
        tsq_buf_add(b, index_form ? "." : "/", 1);
    }
    if (index_form) {
        char num[24];
        snprintf(num, sizeof num, "%zu", tsq_node_index(n) + 1);
        tsq_buf_adds(b, num);
    } else {
        tsq_buf_adds(b, tsq_node_name(n));
    }
}

const char *tsq_node_path(const tsq_node *n, tsq_buf *b) {
    b->len = 0;
    tsq_buf_add(b, "", 0);
    path_rec(n, b, 0);
    return b->data ? b->data : "";
}

const char *tsq_node_index_path(const tsq_node *n, tsq_buf *b) {
    b->len = 0;
    tsq_buf_add(b, "", 0);
    path_rec(n, b, 1);
    return b->data ? b->data : "";
}

/* ------------------------------------------------------------------ edits */

static int is_container(const tsq_node *n) { return n->type == N_GROUP || n->type == N_SEQUENCE; }

static tsq_status check_insert(tsq_node *parent, tsq_node *child, tsq_error *err) {
    if (!is_container(parent)) return tsq_err(err, TSQ_EINVAL, "steps can only be added to a group or a sequence");
    if (child->type != N_GROUP && child->type != N_ACTION)
        return tsq_err(err, TSQ_EINVAL, "only groups and actions can be added to a group");
    if (child->ctx != parent->ctx) return tsq_err(err, TSQ_EINVAL, "the step belongs to another context");
    for (const tsq_node *p = parent; p; p = p->parent)
        if (p == child) return tsq_err(err, TSQ_EINVAL, "a group can not be added to itself or to one of its descendants");
    return TSQ_OK;
}

tsq_status tsq_node_insert(tsq_node *parent, size_t index, tsq_node *child, tsq_error *err) {
    tsq_status st = check_insert(parent, child, err);
    if (st) return st;
    if (child->parent) return tsq_err(err, TSQ_EINVAL, "the step already has a parent (remove it first)");
    tsq_node *before = index == (size_t)-1 ? NULL : tsq_node_child(parent, index);
    if ((st = tsq_elem_insert(parent, before, child))) return tsq_err(err, st, "out of memory");
    tsq_node_root(parent)->tree_refs += child->tree_refs;
    child->tree_refs = 0;
    tsq_node_touch(child, 0);
    return TSQ_OK;
}

tsq_node *tsq_node_remove(tsq_node *n) {
    if (!tsq_node_parent(n)) return NULL;
    tsq_node *root = tsq_node_root(n);
    uint32_t s = tsq_subtree_refs(n);
    tsq_elem_remove(n);
    root->tree_refs -= s;
    n->tree_refs = s + 1;
    n->refs++;
    if (root->tree_refs == 0) tsq_node_destroy(root);
    return n;
}

tsq_status tsq_node_move(tsq_node *n, tsq_node *new_parent, size_t index, tsq_error *err) {
    tsq_status st = check_insert(new_parent, n, err);
    if (st) return st;
    if (!n->parent) return tsq_node_insert(new_parent, index, n, err);
    tsq_node *before = index == (size_t)-1 ? NULL : tsq_node_child(new_parent, index);
    if (before == n) return TSQ_OK;
    tsq_node *old_root = tsq_node_root(n), *new_root = tsq_node_root(new_parent);
    uint32_t s = tsq_subtree_refs(n);
    tsq_elem_remove(n);
    if ((st = tsq_elem_insert(new_parent, before, n))) {
        /* out of memory while placing: keep n as a detached tree its references hold */
        old_root->tree_refs -= s;
        n->tree_refs = s;
        return tsq_err(err, st, "out of memory");
    }
    tsq_node_touch(n, 0);
    if (old_root != new_root) {
        old_root->tree_refs -= s;
        new_root->tree_refs += s;
        if (old_root->tree_refs == 0) tsq_node_destroy(old_root);
    }
    return TSQ_OK;
}

/* ------------------------------------------------------------------ common properties */

const char *tsq_node_name(const tsq_node *n) {
    const char *v = tsq_attr_get(n, n->ctx->atom[A_name]);
    return v ? v : "";
}

const char *tsq_node_description(const tsq_node *n) {
    const char *v = tsq_attr_get(n, n->ctx->atom[A_description]);
    return v ? v : "";
}

static const char *const *step_order(const tsq_ctx *ctx, const char **buf) {
    static const int ids[] = {A_type, A_name, A_description, A_disable, A_continueOnError, A_timeout,
                              A_runIn, A_successCodeList, A_retryCount, A_runFromNet};
    size_t k = 0;
    for (; k < sizeof ids / sizeof ids[0]; k++) buf[k] = ctx->atom[ids[k]];
    buf[k] = NULL;
    return buf;
}

tsq_status tsq_node_set_attr_ordered(tsq_node *n, int atom, const char *value) {
    const char *order[16];
    return tsq_attr_set_before(n, n->ctx->atom[atom], value, strlen(value), step_order(n->ctx, order));
}

tsq_status tsq_node_set_name(tsq_node *n, const char *name) {
    if (!name) return TSQ_EINVAL;
    return tsq_node_set_attr_ordered(n, A_name, name);
}

tsq_status tsq_node_set_description(tsq_node *n, const char *text) {
    return tsq_node_set_attr_ordered(n, A_description, text ? text : "");
}

static int attr_true(const tsq_node *n, int atom) {
    const char *v = tsq_attr_get(n, n->ctx->atom[atom]);
    return v && strcasecmp(v, "true") == 0;
}

/* A boolean attribute written only when true (ConfigMgr); a document that writes it
 * out when false (MDT) keeps doing so. */
static tsq_status set_flag_attr(tsq_node *n, int atom, int on) {
    tsq_attr *a = tsq_attr_find(n, n->ctx->atom[atom]);
    if (on) return tsq_node_set_attr_ordered(n, atom, "true");
    if (!a) return TSQ_OK;
    const tsq_node *seq = tsq_node_sequence(n);
    const char *ver = seq ? tsq_attr_get(seq, n->ctx->atom[A_version]) : NULL;
    int explicit_false = ver && strcmp(ver, "3.10") != 0;
    if (explicit_false) return tsq_node_set_attr_ordered(n, atom, "false");
    tsq_attr_remove(n, n->ctx->atom[atom]);
    return TSQ_OK;
}

int tsq_node_enabled(const tsq_node *n) { return !attr_true(n, A_disable); }
tsq_status tsq_node_set_enabled(tsq_node *n, int enabled) { return set_flag_attr(n, A_disable, !enabled); }
int tsq_node_continue_on_error(const tsq_node *n) { return attr_true(n, A_continueOnError); }
tsq_status tsq_node_set_continue_on_error(tsq_node *n, int on) { return set_flag_attr(n, A_continueOnError, on); }

const char *tsq_sequence_version(const tsq_node *seq) {
    const char *v = tsq_attr_get(seq, seq->ctx->atom[A_version]);
    return v ? v : "3.00";
}
