/* node.c - the tree: allocation, reference counting, links, attributes, layout-aware edits. */
#include "tsq_int.h"

#include <stdlib.h>

/* Node structs are cut from slabs and recycled through ctx->free_nodes: one allocation
 * per slab instead of one per node (building 100,000 steps makes about 900,000 nodes). */
static int add_slab(tsq_ctx *ctx) {
    size_t count = ctx->slab_nodes < 32 ? 32 : ctx->slab_nodes > 1024 ? 1024 : ctx->slab_nodes;
    tsq_slab *s = ctx->alloc(ctx->ud, NULL, 0, sizeof *s + count * sizeof(tsq_node));
    if (!s) return 0;
    s->next = ctx->slabs;
    s->count = count;
    ctx->slabs = s;
    ctx->slab_nodes += count;
    tsq_node *nodes = (tsq_node *)(s + 1);
    for (size_t i = count; i-- > 0;) {
        nodes[i].next = ctx->free_nodes;
        ctx->free_nodes = &nodes[i];
    }
    return 1;
}

tsq_node *tsq_node_alloc(tsq_ctx *ctx, tsq_ntype type, const char *name) {
    tsq_node *n;
    if (!ctx->pool) {
        if (!(n = ctx->alloc(ctx->ud, NULL, 0, sizeof *n))) return NULL;
    } else {
        if (!ctx->free_nodes && !add_slab(ctx)) return NULL;
        n = ctx->free_nodes;
        ctx->free_nodes = n->next;
    }
    memset(n, 0, sizeof *n);
    n->ctx = ctx;
    n->type = (uint8_t)type;
    n->name = name;
    return n;
}

int tsq_node_is_step(const tsq_node *n) {
    return n->type == N_GROUP || n->type == N_ACTION || n->type == N_SEQUENCE;
}

tsq_node *tsq_tree_next(const tsq_node *top, const tsq_node *cur) {
    if (!cur) return top->first;
    if (cur->first) return cur->first;
    while (cur && cur != top) {
        if (cur->next) return cur->next;
        cur = cur->parent;
    }
    return NULL;
}

static void free_payload(tsq_node *n) {
    tsq_ctx *ctx = n->ctx;
    if (n->flags & F_VALUES_OWNED) /* else every value lives in the source arena */
        for (uint16_t i = 0; i < n->nattrs; i++)
            if (n->attrs[i].owned) tsq_strfree(ctx, n->attrs[i].value);
    if (n->flags & F_ATTRS_OWNED) tsq_small_free(ctx, n->attrs, (size_t)n->cattrs * sizeof *n->attrs);
    if (n->flags & F_TEXT_OWNED) tsq_strfree(ctx, n->text);
    if (n->cc) tsq_ccache_free(ctx, n->cc);
    if (n->doc) tsq_doc_free(ctx, n->doc);
}

/* Post-order, iterative: trees can be deep and the stack is not ours. */
void tsq_node_destroy(tsq_node *top) {
    if (!top) return;
    tsq_ctx *ctx = top->ctx;
    tsq_src *held = NULL;
    size_t nheld = 0;
    tsq_node *n = top;
    while (n->first) n = n->first;
    for (;;) {
        tsq_node *next = NULL;
        if (n != top) {
            if (n->next) {
                next = n->next;
                while (next->first) next = next->first;
            } else {
                next = n->parent;
            }
        }
        free_payload(n);
        if (tsq_node_is_step(n)) tsq_child_at_destroyed(ctx, n); /* its memory may come back as another node */
        tsq_src *src = n->src;
        if (!(n->flags & F_ARENA)) { /* (arena nodes go with their source) */
            if (ctx->pool) {
                n->next = ctx->free_nodes;
                ctx->free_nodes = n;
            } else {
                ctx->alloc(ctx->ud, n, sizeof *n, 0);
            }
        }
        /* one release per run of nodes from the same source: a node's reference is
         * dropped only after it has been visited, so no arena goes while in use */
        if (src != held) {
            tsq_src_unref_n(held, nheld);
            held = src;
            nheld = 0;
        }
        nheld++;
        if (n == top) break;
        n = next;
    }
    tsq_src_unref_n(held, nheld);
}

/* ------------------------------------------------------------------ references */

tsq_node *tsq_node_root(const tsq_node *n) {
    while (n->parent) n = n->parent;
    return (tsq_node *)n;
}

void tsq_node_retain(tsq_node *n) {
    if (!n) return;
    n->refs++;
    tsq_node_root(n)->tree_refs++;
}

void tsq_node_release(tsq_node *n) {
    if (!n) return;
    tsq_node *r = tsq_node_root(n);
    n->refs--;
    if (--r->tree_refs == 0 && !r->ctx->exiting) tsq_node_destroy(r);
}

uint32_t tsq_node_refs(const tsq_node *n) { return n ? n->refs : 0; }

void tsq_node_retain_all(tsq_node *const *nodes, size_t count) {
    const tsq_node *parent = NULL;
    tsq_node *root = NULL;
    for (size_t i = 0; i < count; i++) {
        tsq_node *n = nodes[i];
        if (!n) continue;
        if (!n->parent || n->parent != parent) {
            parent = n->parent;
            root = tsq_node_root(n);
        }
        n->refs++;
        root->tree_refs++;
    }
}

/* Every node's count drops first; a root's tree_refs by the number of its nodes in a run,
 * so that a tree is destroyed only when no later node of the list can be in it (each of
 * those still counts in its root's tree_refs). */
void tsq_node_release_all(tsq_node *const *nodes, size_t count) {
    const tsq_node *parent = NULL;
    tsq_node *root = NULL;
    uint32_t pending = 0;
    for (size_t i = 0; i <= count; i++) {
        tsq_node *n = i < count ? nodes[i] : NULL;
        if (i < count && !n) continue;
        tsq_node *r = root;
        if (n && (!n->parent || n->parent != parent)) {
            parent = n->parent;
            r = tsq_node_root(n);
        }
        if (pending && (!n || r != root)) {
            root->tree_refs -= pending;
            pending = 0;
            if (root->tree_refs == 0 && !root->ctx->exiting) tsq_node_destroy(root);
        }
        if (!n) break;
        root = r;
        n->refs--;
        pending++;
    }
}

uint32_t tsq_subtree_refs(const tsq_node *n) {
    uint32_t s = n->refs;
    for (const tsq_node *c = tsq_tree_next(n, NULL); c; c = tsq_tree_next(n, c)) s += c->refs;
    return s;
}

/* ------------------------------------------------------------------ links */

void tsq_node_link(tsq_node *parent, tsq_node *before, tsq_node *child) {
    child->parent = parent;
    child->next = before;
    child->prev = before ? before->prev : parent->last;
    if (child->prev)
        child->prev->next = child;
    else
        parent->first = child;
    if (before)
        before->prev = child;
    else
        parent->last = child;
    if (child->type == N_GROUP || child->type == N_ACTION) tsq_child_at_linked(parent, child); /* the children counted */
}

void tsq_node_unlink(tsq_node *c) {
    tsq_node *p = c->parent;
    if (!p) return;
    if (c->type == N_GROUP || c->type == N_ACTION) tsq_child_at_unlinking(p, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        p->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        p->last = c->prev;
    c->parent = c->next = c->prev = NULL;
}

void tsq_node_touch(tsq_node *n, unsigned f) {
    n->flags |= (uint16_t)(f | F_DIRTY);
    tsq_node *p = n;
    while (p->parent && !(p->parent->flags & F_DIRTY)) {
        p = p->parent;
        p->flags |= F_DIRTY;
    }
    /* a wrapped sequence is a tree of its own: its change shows in the wrapper's slot */
    if (!p->parent && p->type == N_SEQUENCE && p->doc && p->doc->slot && !(p->doc->slot->flags & F_CONTENT))
        tsq_node_touch(p->doc->slot, F_CONTENT);
}

/* ------------------------------------------------------------------ attributes */

tsq_attr *tsq_attr_find(const tsq_node *n, const char *atom) {
    for (uint16_t i = 0; i < n->nattrs; i++)
        if (n->attrs[i].name == atom) return &n->attrs[i];
    return NULL;
}

const char *tsq_attr_get(const tsq_node *n, const char *atom) {
    tsq_attr *a = tsq_attr_find(n, atom);
    return a ? a->value : NULL;
}

static int attrs_reserve(tsq_node *n, uint16_t want) {
    if (want <= n->cattrs && (n->flags & F_ATTRS_OWNED)) return 1;
    tsq_ctx *ctx = n->ctx;
    uint16_t ncap = n->cattrs > 4 ? n->cattrs : 4;
    while (ncap < want) ncap *= 2;
    tsq_attr *a = tsq_small_alloc(ctx, (size_t)ncap * sizeof *a);
    if (!a) return 0;
    if (n->nattrs) memcpy(a, n->attrs, (size_t)n->nattrs * sizeof *a);
    if (n->flags & F_ATTRS_OWNED) tsq_small_free(ctx, n->attrs, (size_t)n->cattrs * sizeof *a);
    n->attrs = a;
    n->cattrs = ncap;
    n->flags |= F_ATTRS_OWNED;
    return 1;
}

static tsq_status attr_assign(tsq_node *n, tsq_attr *a, const char *value, size_t len) {
    if (a->len == len && memcmp(a->value, value, len) == 0) return TSQ_OK;
    char *v = tsq_strndup(n->ctx, value, len);
    if (!v) return TSQ_ENOMEM;
    if (a->owned) tsq_strfree(n->ctx, a->value);
    a->value = v;
    a->len = (uint32_t)len;
    a->owned = 1;
    a->clean = (uint8_t)tsq_xml_clean(v, len, 1);
    a->raw = -1;
    n->flags |= F_VALUES_OWNED;
    tsq_node_touch(n, F_STAG);
    return TSQ_OK;
}

tsq_status tsq_attr_set_before(tsq_node *n, const char *atom, const char *value, size_t len,
                               const char *const *order) {
    tsq_attr *a = tsq_attr_find(n, atom);
    if (a) return attr_assign(n, a, value, len);
    if (n->nattrs == UINT16_MAX) return TSQ_ELIMIT;
    /* position: before the first present attribute that the order lists after atom */
    uint16_t pos = n->nattrs;
    if (order) {
        int seen = 0;
        for (const char *const *o = order; *o && pos == n->nattrs; o++) {
            if (*o == atom) {
                seen = 1;
                continue;
            }
            if (!seen) continue;
            for (uint16_t i = 0; i < n->nattrs; i++)
                if (n->attrs[i].name == *o) {
                    pos = i;
                    break;
                }
        }
    }
    char *v = tsq_strndup(n->ctx, value, len);
    if (!v || !attrs_reserve(n, (uint16_t)(n->nattrs + 1))) {
        tsq_strfree(n->ctx, v);
        return TSQ_ENOMEM;
    }
    memmove(&n->attrs[pos + 1], &n->attrs[pos], (size_t)(n->nattrs - pos) * sizeof *n->attrs);
    n->attrs[pos] = (tsq_attr){atom, v, (uint32_t)len, -1, 1, (uint8_t)tsq_xml_clean(v, len, 1)};
    n->flags |= F_VALUES_OWNED;
    n->nattrs++;
    tsq_node_touch(n, F_STAG);
    return TSQ_OK;
}

tsq_status tsq_attr_set(tsq_node *n, const char *atom, const char *value, size_t len) {
    return tsq_attr_set_before(n, atom, value, len, NULL);
}

void tsq_attr_remove(tsq_node *n, const char *atom) {
    for (uint16_t i = 0; i < n->nattrs; i++) {
        if (n->attrs[i].name != atom) continue;
        if (n->attrs[i].owned) tsq_strfree(n->ctx, n->attrs[i].value);
        memmove(&n->attrs[i], &n->attrs[i + 1], (size_t)(n->nattrs - i - 1) * sizeof *n->attrs);
        n->nattrs--;
        tsq_node_touch(n, F_STAG);
        return;
    }
}

/* Unlinks and destroys every child of n. */
static void drop_children(tsq_node *n) {
    while (n->first) {
        tsq_node *c = n->first;
        tsq_node_unlink(c);
        tsq_node_destroy(c);
    }
}

tsq_status tsq_node_set_text(tsq_node *n, const char *s, size_t len) {
    if (n->text && n->text_len == len && memcmp(n->text, s, len) == 0 && !n->first) return TSQ_OK;
    char *t = tsq_strndup(n->ctx, s, len);
    if (!t) return TSQ_ENOMEM;
    if (n->flags & F_TEXT_OWNED) tsq_strfree(n->ctx, n->text);
    n->text = t;
    n->text_len = (uint32_t)len;
    n->flags |= F_TEXT_OWNED;
    n->flags &= (uint16_t)~(F_CDATA_TEXT | F_TEXT_CLEAN);
    if (tsq_xml_clean(t, len, 0)) n->flags |= F_TEXT_CLEAN;
    if (len) n->flags &= (uint16_t)~F_EMPTY_TAG;
    drop_children(n); /* text replaces any child content */
    tsq_node_touch(n, F_CONTENT);
    return TSQ_OK;
}

/* ------------------------------------------------------------------ element children */

tsq_node *tsq_elem_first(const tsq_node *n) {
    tsq_node *c = n->first;
    while (c && !c->name) c = c->next;
    return c;
}

tsq_node *tsq_elem_next(const tsq_node *n) {
    tsq_node *c = n->next;
    while (c && !c->name) c = c->next;
    return c;
}

tsq_node *tsq_elem_child(const tsq_node *n, const char *atom) {
    for (tsq_node *c = n->first; c; c = c->next)
        if (c->name == atom) return c;
    return NULL;
}

static int is_ws_text(const tsq_node *n) {
    if (!n || n->type != N_TEXT) return 0;
    for (uint32_t i = 0; i < n->text_len; i++) {
        char ch = n->text[i];
        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') return 0;
    }
    return 1;
}

/* 1 when every child of n is white space text (or it has none). */
static int only_blanks(const tsq_node *n) {
    for (const tsq_node *c = n->first; c; c = c->next)
        if (!is_ws_text(c)) return 0;
    return 1;
}

static int has_newline(const tsq_node *n) { return n && memchr(n->text, '\n', n->text_len) != NULL; }

static tsq_node *ws_node(tsq_ctx *ctx, const char *s, size_t len) {
    tsq_node *w = tsq_node_alloc(ctx, N_TEXT, NULL);
    if (!w) return NULL;
    w->text = tsq_strndup(ctx, s, len);
    if (!w->text) {
        tsq_node_destroy(w);
        return NULL;
    }
    w->text_len = (uint32_t)len;
    w->flags |= F_TEXT_OWNED;
    return w;
}

/* A copy of the white space node w: its source bytes when it has them (the decoded text
 * lost any CR of a CR LF line end). */
static tsq_node *ws_copy(tsq_ctx *ctx, const tsq_node *w) {
    if ((w->flags & F_RAW) && w->src) return ws_node(ctx, w->src->bytes + w->s0, w->s2 - w->s0);
    return ws_node(ctx, w->text, w->text_len);
}

/* The document layout of the sequence above n. */
static const tsq_doc *layout_of(const tsq_node *n) {
    const tsq_node *s = tsq_node_sequence(n);
    return s ? s->doc : NULL;
}

static int ws_nl(const tsq_node *n) { return is_ws_text(n) && has_newline(n); }

/* The indentation of element e: what follows the last line break before it. */
static size_t indent_of(const tsq_node *e, const char **s) {
    *s = "";
    if (!ws_nl(e->prev)) return 0;
    const tsq_node *w = e->prev;
    uint32_t i = w->text_len;
    while (i > 0 && w->text[i - 1] != '\n') i--;
    *s = w->text + i;
    return w->text_len - i;
}

tsq_status tsq_elem_insert(tsq_node *parent, tsq_node *before, tsq_node *child) {
    tsq_ctx *ctx = parent->ctx;
    const tsq_node *model = NULL;
    /* the layout to copy: the white space before the element it goes in front of, else
     * before the last element, else before the first (not a scan of every child: adding
     * thousands of steps to one group must not be quadratic) */
    if (before && ws_nl(before->prev)) model = before->prev;
    if (!model) {
        tsq_node *last = parent->last;
        while (last && !last->name) last = last->prev;
        if (last && ws_nl(last->prev)) model = last->prev;
    }
    if (!model) {
        tsq_node *first = parent->first;
        while (first && !first->name) first = first->next;
        if (first && ws_nl(first->prev)) model = first->prev;
    }
    const tsq_doc *d = layout_of(parent);
    tsq_node *ws = NULL, *tail = NULL;
    if (model) {
        if (!(ws = ws_copy(ctx, model))) return TSQ_ENOMEM;
    } else if (!tsq_elem_first(parent) && d && d->newline && d->indent[0] &&
               (!parent->parent || ws_nl(parent->prev) || ws_nl(parent->first))) {
        /* the first element child of an element in an indented document (laid out itself,
         * or holding laid out content) */
        const char *pind;
        size_t pl = indent_of(parent, &pind), nl = strlen(d->newline), il = strlen(d->indent);
        char tmp[600];
        /* Nothing but blanks inside (not the root): they go, and no white space is
         * stored. The writer indents the children of an element that holds none the same
         * way (write_children, "pretty": the line end, the element's indentation, one
         * unit), so each step added to a new group costs one node less. The root keeps
         * white space of its own: a wrapper indents its sequence from its own layout.
         * Content that is not blank (a comment) stays with its layout: the element goes
         * after it, indented as that content is (the white space before it, else one unit
         * deeper than the parent), and before the closing line break if there is one. */
        int blank = only_blanks(parent), pretty = blank && parent->parent && pl + il < 500;
        if (!pretty && nl + pl + il <= sizeof tmp) {
            memcpy(tmp, d->newline, nl);
            memcpy(tmp + nl, pind, pl);
            memcpy(tmp + nl + pl, d->indent, il);
            const tsq_node *lead = blank ? NULL : parent->first;
            int closing = !blank && ws_nl(parent->last) && parent->last != lead;
            ws = ws_nl(lead) ? ws_copy(ctx, lead) : ws_node(ctx, tmp, nl + pl + il);
            tail = closing ? NULL : ws_node(ctx, tmp, nl + pl);
            if (!ws || (!closing && !tail)) {
                tsq_node_destroy(ws);
                tsq_node_destroy(tail);
                return TSQ_ENOMEM;
            }
        }
        if (blank && (pretty || ws)) drop_children(parent);
    }
    if (parent->text) { /* leaf text gives way to element content */
        if (parent->flags & F_TEXT_OWNED) tsq_strfree(ctx, parent->text);
        parent->text = NULL;
        parent->text_len = 0;
        parent->flags &= (uint16_t)~(F_TEXT_OWNED | F_TEXT_CLEAN);
    }
    tsq_node *at = before;
    if (ws) {
        if (before && ws_nl(before->prev)) at = before->prev;            /* ws child | ws before */
        else if (!before && is_ws_text(parent->last)) at = parent->last; /* ws child | closing ws */
        tsq_node_link(parent, at, ws);
    }
    tsq_node_link(parent, at, child);
    if (tail) tsq_node_link(parent, NULL, tail);
    parent->flags &= (uint16_t)~F_EMPTY_TAG;
    tsq_node_touch(parent, F_CONTENT);
    return TSQ_OK;
}

void tsq_elem_remove(tsq_node *child) {
    tsq_node *p = child->parent;
    if (!p) return;
    tsq_node *ws = child->prev;
    tsq_node_unlink(child);
    if (is_ws_text(ws)) {
        tsq_node_unlink(ws);
        tsq_node_destroy(ws);
    }
    if (!tsq_elem_first(p) && only_blanks(p)) drop_children(p); /* no elements left: nor their layout */
    tsq_node_touch(p, F_CONTENT);
}

/* ------------------------------------------------------------------ documents */

tsq_doc *tsq_doc_new(tsq_ctx *ctx) {
    tsq_doc *d = ctx->alloc(ctx->ud, NULL, 0, sizeof *d);
    if (d) memset(d, 0, sizeof *d);
    return d;
}

void tsq_doc_free(tsq_ctx *ctx, tsq_doc *d) {
    if (!d) return;
    tsq_node_destroy(d->outer);
    tsq_strfree(ctx, d->inner_pre);
    tsq_strfree(ctx, d->inner_post);
    tsq_strfree(ctx, d->path);
    tsq_src_unref(d->src);
    ctx->alloc(ctx->ud, d, sizeof *d, 0);
}

tsq_node *tsq_node_sequence(const tsq_node *n) {
    while (n && n->type != N_SEQUENCE) n = n->parent;
    return (tsq_node *)n;
}

/* ------------------------------------------------------------------ copies */

/* A copy of one node without its children or links. Payload in the source arena is
 * shared (the copy holds a reference to the source); owned payload is duplicated. */
static tsq_node *copy_one(const tsq_node *n) {
    tsq_ctx *ctx = n->ctx;
    tsq_node *c = tsq_node_alloc(ctx, (tsq_ntype)n->type, n->name);
    if (!c) return NULL;
    c->src = n->src;
    if (c->src) tsq_src_ref(c->src);
    c->s0 = n->s0;
    c->s1 = n->s1;
    c->s2 = n->s2;
    c->flags = (uint16_t)(n->flags & ~(F_ARENA | F_TEXT_OWNED | F_ATTRS_OWNED));
    c->cls = n->cls;
    c->cls_valid = n->cls_valid;
    c->text = n->text;
    c->text_len = n->text_len;
    if (n->text && (n->flags & F_TEXT_OWNED)) {
        if (!(c->text = tsq_strndup(ctx, n->text, n->text_len))) goto fail;
        c->flags |= F_TEXT_OWNED;
    }
    if (n->nattrs) {
        c->attrs = tsq_small_alloc(ctx, (size_t)n->nattrs * sizeof *c->attrs);
        if (!c->attrs) goto fail;
        c->cattrs = n->nattrs;
        c->flags |= F_ATTRS_OWNED;
        for (uint16_t i = 0; i < n->nattrs; i++) {
            c->attrs[i] = n->attrs[i];
            c->attrs[i].owned = 0;
            if (n->attrs[i].owned) {
                if (!(c->attrs[i].value = tsq_strndup(ctx, n->attrs[i].value, n->attrs[i].len))) goto fail;
                c->attrs[i].owned = 1;
                c->flags |= F_VALUES_OWNED;
            }
            c->nattrs = (uint16_t)(i + 1);
        }
    }
    if (n->doc && !(c->doc = tsq_doc_clone(ctx, n->doc))) goto fail;
    return c;
fail:
    tsq_node_destroy(c);
    return NULL;
}

tsq_node *tsq_node_clone(const tsq_node *n) {
    tsq_node *top = copy_one(n);
    if (!top) return NULL;
    /* walk the source tree and the copy in step */
    const tsq_node *s = n;
    tsq_node *d = top;
    for (;;) {
        if (s->first) {
            s = s->first;
        } else {
            while (s != n && !s->next) {
                s = s->parent;
                d = d->parent;
            }
            if (s == n) break;
            s = s->next;
            d = d->parent;
        }
        tsq_node *c = copy_one(s);
        if (!c) {
            tsq_node_destroy(top);
            return NULL;
        }
        tsq_node_link(d, NULL, c);
        d = c;
    }
    top->refs = top->tree_refs = 1;
    return top;
}

tsq_doc *tsq_doc_clone(tsq_ctx *ctx, const tsq_doc *d) {
    tsq_doc *c = tsq_doc_new(ctx);
    if (!c) return NULL;
    *c = *d;
    c->outer = NULL;
    c->slot = c->slot_before = NULL;
    c->inner_pre = c->inner_post = c->path = NULL;
    if (c->src) tsq_src_ref(c->src);
    if ((d->inner_pre && !(c->inner_pre = tsq_strndup(ctx, d->inner_pre, d->inner_pre_len))) ||
        (d->inner_post && !(c->inner_post = tsq_strndup(ctx, d->inner_post, d->inner_post_len))) ||
        (d->path && !(c->path = tsq_strndup(ctx, d->path, strlen(d->path))))) {
        tsq_doc_free(ctx, c);
        return NULL;
    }
    if (d->outer) {
        if (!(c->outer = tsq_node_clone(d->outer))) {
            tsq_doc_free(ctx, c);
            return NULL;
        }
        c->outer->refs = c->outer->tree_refs = 0;
        /* find the slot elements in the copy at the same positions */
        const tsq_node *s = d->outer;
        tsq_node *t = c->outer;
        while (s) {
            if (s == d->slot) c->slot = t;
            if (s == d->slot_before) c->slot_before = t;
            s = tsq_tree_next(d->outer, s);
            t = tsq_tree_next(c->outer, t);
        }
    }
    return c;
}
