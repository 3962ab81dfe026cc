/* props.c - typed properties of actions: catalogue lookups, defaultVarList access,
 * tsq_prop_get/set and the embedded object arrays (AppInfo, Partitions, ...). */
#include "tsq_int.h"
#include "catalog.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

/* ------------------------------------------------------------------ catalogue */

const tsq_class_info *tsq_class_find(const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (!n) return NULL;
    for (unsigned h = tsq_class_key(name, n);; h = (h + 1) % TSQ_CLASS_HASH) {
        int i = tsq_class_hash[h];
        if (i < 0) return NULL;
        if (strcmp(name, tsq_class_names[i].name) == 0) return &tsq_classes[tsq_class_names[i].cls].pub;
    }
}

size_t tsq_class_count(void) { return tsq_naction_classes; }

const tsq_class_info *tsq_class_at(size_t index) {
    return index < tsq_naction_classes ? &tsq_classes[index].pub : NULL;
}

/* The public structs are the first members of ours: every tsq_class_info handed out
 * points into tsq_classes. */
const tsq_prop_info *tsq_class_prop(const tsq_class_info *c, size_t index) {
    if (!c || index >= c->nprops) return NULL;
    return &((const tsq_class *)c)->props[index].pub;
}

const tsq_cprop *tsq_cprop_find(const tsq_class *c, const char *name) {
    for (size_t i = 0; i < c->pub.nprops; i++)
        if (tsq_streq(c->props[i].pub.name, name)) return &c->props[i];
    return NULL;
}

const tsq_prop_info *tsq_class_prop_find(const tsq_class_info *c, const char *name) {
    const tsq_cprop *p = c && name ? tsq_cprop_find((const tsq_class *)c, name) : NULL;
    return p ? &p->pub : NULL;
}

const tsq_class *tsq_class_of(const tsq_node *n) {
    if (n->type != N_ACTION) return NULL;
    if (n->cls_valid) return n->cls;
    const char *t = tsq_node_type_attr(n);
    const tsq_class *c = (const tsq_class *)tsq_class_find(t);
    if (c && c->kind != TSQ_CK_ACTION) c = NULL;
    tsq_node *m = (tsq_node *)n; /* the cache is not part of the node's value */
    m->cls = c;
    m->cls_valid = c && strcmp(t, c->pub.name) == 0 ? CLS_CANONICAL : CLS_KNOWN; /* or a short name */
    return c;
}

/* ------------------------------------------------------------------ value text */

int tsq_parse_bool(const char *s, size_t len) {
    if (len == 4 && strncasecmp(s, "true", 4) == 0) return 1;
    if (len == 5 && strncasecmp(s, "false", 5) == 0) return 0;
    return -1;
}

int tsq_parse_int(const char *s, size_t len, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i == len || len - i > 18) return 0;
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 1;
}

/* The allowed spelling matching s (case-insensitive), or NULL. */
static const char *allowed_match(const char *allowed, const char *s, size_t len, size_t *mlen) {
    const char *a = allowed;
    for (;;) {
        const char *e = strchr(a, '|');
        size_t l = e ? (size_t)(e - a) : strlen(a);
        if (l == len && strncasecmp(a, s, len) == 0) {
            *mlen = l;
            return a;
        }
        if (!e) return NULL;
        a = e + 1;
    }
}

int tsq_value_allowed(const char *allowed, const char *s, size_t len) {
    size_t l;
    return !allowed || allowed_match(allowed, s, len, &l) != NULL;
}

int tsq_success_codes_ok(const char *s, size_t len) {
    size_t i = 0, codes = 0;
    while (i < len) {
        if (s[i] == ' ') {
            i++;
            continue;
        }
        size_t j = i;
        if (s[j] == '-') j++;
        size_t d = j;
        while (j < len && s[j] >= '0' && s[j] <= '9') j++;
        if (j == d || (j < len && s[j] != ' ')) return 0;
        codes++;
        i = j;
    }
    return codes > 0;
}

/* A value read from the document, typed as the catalogue says when the text allows. */
static void typed_value(tsq_vtype t, const char *s, size_t len, tsq_value *out) {
    memset(out, 0, sizeof *out);
    out->s = s;
    out->len = len;
    out->type = TSQ_V_STRING;
    if (t == TSQ_V_BOOL) {
        int b = tsq_parse_bool(s, len);
        if (b >= 0) {
            out->type = TSQ_V_BOOL;
            out->b = b;
        }
    } else if (t == TSQ_V_INT) {
        if (tsq_parse_int(s, len, &out->i)) out->type = TSQ_V_INT;
    } else if (t == TSQ_V_LIST) {
        out->type = TSQ_V_LIST;
    }
}

static const char *vtype_noun(tsq_vtype t) {
    switch (t) {
    case TSQ_V_BOOL: return "a boolean";
    case TSQ_V_INT: return "an integer";
    case TSQ_V_LIST: return "a string list";
    case TSQ_V_OBJECTS: return "an object array";
    default: return "a string";
    }
}

/* The text to store for v; num holds formatted numbers (>= 24 bytes). p NULL: an
 * uncatalogued property (any scalar, kept as text). */
static tsq_status value_text(const tsq_cprop *p, const char *name, const tsq_value *v, char *num,
                             const char **s, size_t *len, tsq_error *err) {
    tsq_vtype want = p ? p->pub.type : TSQ_V_STRING;
    const char *vs = v->s ? v->s : "";
    size_t vl = v->len ? v->len : strlen(vs);
    int b;
    int64_t i;
    switch (v->type) {
    case TSQ_V_BOOL:
        if (want != TSQ_V_BOOL && p) break;
        *s = v->b ? "true" : "false";
        *len = strlen(*s);
        return TSQ_OK;
    case TSQ_V_INT:
        if (want == TSQ_V_BOOL || want == TSQ_V_LIST) break;
        if (p && p->pub.type == TSQ_V_INT && strcmp(p->pub.sdk_type, "UInt32") == 0 &&
            (v->i < 0 || v->i > 4294967295LL))
            return tsq_err(err, TSQ_EINVAL, "%s must be between 0 and 4294967295 (got %" PRId64 ")", name, v->i);
        snprintf(num, 24, "%" PRId64, v->i);
        *s = num;
        *len = strlen(num);
        return TSQ_OK;
    case TSQ_V_STRING:
    case TSQ_V_LIST:
        if (want == TSQ_V_BOOL) {
            if ((b = tsq_parse_bool(vs, vl)) < 0) break;
            *s = b ? "true" : "false";
            *len = strlen(*s);
            return TSQ_OK;
        }
        if (want == TSQ_V_INT) {
            if (!tsq_parse_int(vs, vl, &i)) break;
            tsq_value iv = {TSQ_V_INT, 0, i, NULL, 0};
            return value_text(p, name, &iv, num, s, len, err);
        }
        *s = vs;
        *len = vl;
        return TSQ_OK;
    default:
        break;
    }
    return tsq_err(err, TSQ_ETYPE, "%s expects %s, not %s", name, vtype_noun(want), vtype_noun(v->type));
}

/* Type, allowed values and the success-code syntax; *s may be replaced by the
 * catalogue's spelling of an allowed value. */
static tsq_status check_value(const tsq_cprop *p, const char **s, size_t *len, tsq_error *err) {
    if (p->pub.allowed && *len) { /* "" stands for unset in MDT documents */
        size_t ml;
        const char *m = allowed_match(p->pub.allowed, *s, *len, &ml);
        if (!m) {
            char list[300];
            size_t k = 0;
            for (const char *a = p->pub.allowed; *a && k + 8 < sizeof list; a++) {
                if (*a == '|') {
                    memcpy(list + k, ", ", 2);
                    k += 2;
                } else {
                    list[k++] = *a;
                }
            }
            list[k] = '\0';
            return tsq_err(err, TSQ_EINVAL, "%s must be one of %s (got \"%.*s\")", p->pub.name, list,
                           (int)(*len > 100 ? 100 : *len), *s);
        }
        *s = m;
        *len = ml;
    }
    if (p->attr == A_successCodeList && !tsq_success_codes_ok(*s, *len))
        return tsq_err(err, TSQ_EINVAL, "%s must be exit codes separated by spaces (got \"%.*s\")", p->pub.name,
                       (int)(*len > 100 ? 100 : *len), *s);
    return TSQ_OK;
}

/* ------------------------------------------------------------------ defaultVarList */

tsq_node *tsq_var_list(const tsq_node *n) { return tsq_elem_child(n, n->ctx->atom[A_defaultVarList]); }

tsq_node *tsq_var_find(const tsq_node *n, const char *prop) {
    tsq_node *l = tsq_var_list(n);
    if (!l) return NULL;
    const char *a_var = n->ctx->atom[A_variable], *a_prop = n->ctx->atom[A_property];
    for (tsq_node *c = l->first; c; c = c->next) {
        if (c->name != a_var) continue;
        const char *p = tsq_attr_get(c, a_prop);
        if (p && tsq_streq(p, prop)) return c;
    }
    return NULL;
}

const char *tsq_leaf_text(const tsq_node *e, size_t *len) {
    *len = e->text ? e->text_len : 0;
    return e->text ? e->text : "";
}

/* ConfigMgr writes hidden="true"; an MDT document follows the step's own habit. */
static int use_hidden(const tsq_node *n) {
    const tsq_node *seq = tsq_node_sequence(n);
    const char *ver = seq ? tsq_attr_get(seq, n->ctx->atom[A_version]) : NULL;
    if (!seq || !ver || strcmp(ver, "3.10") == 0) return 1;
    tsq_node *l = tsq_var_list(n);
    for (tsq_node *c = l ? l->first : NULL; c; c = c->next)
        if (c->name && tsq_attr_get(c, n->ctx->atom[A_hidden])) return 1;
    return 0;
}

static tsq_node *ensure_var_list(tsq_node *n) {
    tsq_node *l = tsq_var_list(n);
    if (l) return l;
    tsq_ctx *ctx = n->ctx;
    if (!(l = tsq_node_alloc(ctx, N_ELEM, ctx->atom[A_defaultVarList]))) return NULL;
    tsq_node *action = tsq_elem_child(n, ctx->atom[A_action]);
    if (tsq_elem_insert(n, action ? tsq_elem_next(action) : NULL, l) != TSQ_OK) {
        tsq_node_destroy(l);
        return NULL;
    }
    return l;
}

/* Sets the variable of property `prop` (creating it in ConfigMgr order: sorted by
 * property, ordinal); *changed is set when the document changed. */
tsq_status tsq_var_set(tsq_node *n, const char *prop, const char *varname, int hidden, const char *s,
                          size_t len, int *changed) {
    tsq_node *v = tsq_var_find(n, prop);
    if (v) {
        size_t ol;
        const char *old = tsq_leaf_text(v, &ol);
        if (ol == len && memcmp(old, s, len) == 0 && !v->first) return TSQ_OK;
        *changed = 1;
        return tsq_node_set_text(v, s, len);
    }
    tsq_ctx *ctx = n->ctx;
    int hid = hidden && use_hidden(n);
    tsq_node *l = ensure_var_list(n);
    tsq_node *e = l ? tsq_node_alloc(ctx, N_ELEM, ctx->atom[A_variable]) : NULL;
    if (!e) return TSQ_ENOMEM;
    if (tsq_attr_set(e, ctx->atom[A_name], varname, strlen(varname)) ||
        tsq_attr_set(e, ctx->atom[A_property], prop, strlen(prop)) ||
        (hid && tsq_attr_set(e, ctx->atom[A_hidden], "true", 4)) || (len && tsq_node_set_text(e, s, len))) {
        tsq_node_destroy(e);
        return TSQ_ENOMEM;
    }
    tsq_node *before = NULL;
    for (tsq_node *c = tsq_elem_first(l); c && !before; c = tsq_elem_next(c)) {
        const char *p = tsq_attr_get(c, ctx->atom[A_property]);
        if (c->name == ctx->atom[A_variable] && p && strcmp(p, prop) > 0) before = c;
    }
    if (tsq_elem_insert(l, before, e) != TSQ_OK) {
        tsq_node_destroy(e);
        return TSQ_ENOMEM;
    }
    *changed = 1;
    return TSQ_OK;
}

static void drop_var(tsq_node *v) {
    tsq_node *l = v->parent;
    tsq_elem_remove(v);
    tsq_node_destroy(v);
    if (!tsq_elem_first(l) && !l->first) l->flags |= F_EMPTY_TAG; /* ConfigMgr writes <defaultVarList/> */
}

static void remove_var(tsq_node *n, const char *prop, int *changed) {
    tsq_node *v = tsq_var_find(n, prop);
    if (!v) return;
    drop_var(v);
    *changed = 1;
}

/* ------------------------------------------------------------------ errors */

static tsq_status unknown_prop(tsq_error *err, const tsq_node *n, const tsq_class *c, const char *name) {
    char list[600];
    size_t k = 0;
    list[0] = '\0';
    for (size_t i = 0; i < c->pub.nprops; i++) {
        const tsq_cprop *p = &c->props[i];
        if (p->flags & TSQ_PF_MDT) continue;
        int w = snprintf(list + k, sizeof list - k, "%s%s", k ? ", " : "", p->pub.name);
        if (w < 0 || (size_t)w >= sizeof list - k) break;
        k += (size_t)w;
    }
    tsq_err(err, TSQ_ENOTFOUND, "%s has no property \"%.80s\"; valid names: %s", c->pub.short_name, name, list);
    tsq_err_step(err, n);
    return TSQ_ENOTFOUND;
}

static tsq_status step_err(tsq_error *err, const tsq_node *n, tsq_status st) {
    if (st == TSQ_ENOMEM) tsq_err(err, st, "out of memory");
    tsq_err_step(err, n);
    return st;
}

/* ------------------------------------------------------------------ get */

static void get_cprop(const tsq_node *n, const tsq_cprop *p, tsq_value *out) {
    size_t len;
    const char *s;
    memset(out, 0, sizeof *out);
    if (p->pub.variable) {
        tsq_node *v = tsq_var_find(n, p->pub.name);
        if (v) {
            s = tsq_leaf_text(v, &len);
            if (p->pub.type == TSQ_V_OBJECTS) {
                out->type = TSQ_V_OBJECTS;
                if (!tsq_parse_int(s, len, &out->i) || out->i < 0) out->i = 0;
                return;
            }
            typed_value(p->pub.type, s, len, out);
            return;
        }
    }
    if (p->attr >= 0 && (s = tsq_attr_get(n, n->ctx->atom[p->attr]))) typed_value(p->pub.type, s, strlen(s), out);
}

static tsq_status check_action(const tsq_node *n, tsq_error *err) {
    if (!n) return tsq_err(err, TSQ_EINVAL, "no step given");
    if (n->type != N_ACTION) {
        tsq_err(err, TSQ_EINVAL, "only actions have typed properties");
        tsq_err_step(err, n);
        return TSQ_EINVAL;
    }
    return TSQ_OK;
}

tsq_status tsq_prop_get(const tsq_node *n, const char *name, tsq_value *out, tsq_error *err) {
    memset(out, 0, sizeof *out);
    tsq_status st = check_action(n, err);
    if (st) return st;
    if (!name) return tsq_err(err, TSQ_EINVAL, "no property name given");
    const tsq_class *c = tsq_class_of(n);
    const tsq_cprop *p = tsq_cprop_find(c ? c : &tsq_base_class, name);
    if (p) {
        get_cprop(n, p, out);
        return TSQ_OK;
    }
    if (c) return unknown_prop(err, n, c, name);
    tsq_node *v = tsq_var_find(n, name);
    if (v) {
        size_t len;
        const char *s = tsq_leaf_text(v, &len);
        typed_value(TSQ_V_STRING, s, len, out);
    }
    return TSQ_OK;
}

/* ------------------------------------------------------------------ set */

static tsq_status set_attr_text(tsq_node *n, int atom, const char *s, size_t len) {
    char buf[512];
    if (len >= sizeof buf) return TSQ_ELIMIT;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return tsq_node_set_attr_ordered(n, atom, buf);
}

static tsq_status resize_objects(tsq_node *n, const tsq_class *c, const tsq_cprop *p, size_t count,
                                 int drop, int *changed);

/* The value a mirrored step attribute takes when its property is removed. */
static const char *attr_default(int atom) {
    if (atom == A_successCodeList) return tsq_cprop_find(&tsq_base_class, "SuccessCodes")->pub.default_;
    if (atom == A_runFromNet) return "false";
    return "0"; /* retryCount */
}

/* Sets property p of a catalogued action of class c; *changed tells whether a variable
 * changed (the command text then needs regenerating). */
static tsq_status set_cprop(tsq_node *n, const tsq_class *c, const tsq_cprop *p, const tsq_value *v,
                            int *changed, tsq_error *err) {
    const char *name = p->pub.name;
    tsq_status st;
    if (p->pub.type == TSQ_V_OBJECTS) {
        if (v->type == TSQ_V_NIL) return resize_objects(n, c, p, 0, 1, changed);
        if ((v->type != TSQ_V_INT && v->type != TSQ_V_OBJECTS) || v->i < 0 || v->i > 100000)
            return tsq_err(err, TSQ_ETYPE, "%s takes an element count (tsq_prop_object_set sets the elements)", name);
        return resize_objects(n, c, p, (size_t)v->i, 0, changed);
    }
    if (v->type == TSQ_V_NIL) {
        if (!p->pub.variable) {
            if (p->attr == A_timeout) {
                tsq_attr_remove(n, n->ctx->atom[A_timeout]);
                return TSQ_OK;
            }
            return tsq_err(err, TSQ_EINVAL, "%s can not be removed", name);
        }
        remove_var(n, name, changed);
        if (p->attr >= 0 && (st = tsq_node_set_attr_ordered(n, p->attr, attr_default(p->attr)))) return st;
        return TSQ_OK;
    }
    char num[24];
    const char *s;
    size_t len;
    if ((st = value_text(p, name, v, num, &s, &len, err)) || (st = check_value(p, &s, &len, err))) return st;
    if (p->pub.variable && p->attr >= 0 && !tsq_var_find(n, name)) {
        /* the attribute alone stands for the value (MDT): an equal value changes nothing */
        const char *a = tsq_attr_get(n, n->ctx->atom[p->attr]);
        if (a && strlen(a) == len && memcmp(a, s, len) == 0) return TSQ_OK;
    }
    if (p->pub.variable && (st = tsq_var_set(n, name, p->pub.variable, p->pub.hidden, s, len, changed))) return st;
    if (p->attr >= 0 && (st = set_attr_text(n, p->attr, s, len)))
        return st == TSQ_ELIMIT ? tsq_err(err, st, "%s is too long", name) : st;
    return TSQ_OK;
}

tsq_status tsq_prop_set(tsq_node *n, const char *name, const tsq_value *v, tsq_error *err) {
    tsq_status st = check_action(n, err);
    if (st) return st;
    if (!name || !v) return tsq_err(err, TSQ_EINVAL, "no property name or value given");
    const tsq_class *c = tsq_class_of(n);
    const tsq_cprop *p = tsq_cprop_find(c ? c : &tsq_base_class, name);
    int changed = 0;
    if (!p && c) return unknown_prop(err, n, c, name);
    if (!p) { /* uncatalogued: any name, text values */
        if (v->type == TSQ_V_NIL) {
            remove_var(n, name, &changed);
            return TSQ_OK;
        }
        char num[24];
        const char *s;
        size_t len;
        if ((st = value_text(NULL, name, v, num, &s, &len, err))) return step_err(err, n, st);
        if ((st = tsq_var_set(n, name, name, 0, s, len, &changed))) return step_err(err, n, st);
        return TSQ_OK;
    }
    int gen = c && tsq_cmd_generated(n, c);
    if ((st = set_cprop(n, c, p, v, &changed, err))) return step_err(err, n, st);
    if (changed && gen) tsq_cmd_stale(n);
    return TSQ_OK;
}

/* ------------------------------------------------------------------ object arrays */

/* The element index of variable property `prop` in array `arr` ("Partitions0Type" ->
 * 0), or -1; *field points after the digits. */
static long elem_index(const char *arr, const char *prop, const char **field) {
    size_t l = strlen(arr);
    if (strncmp(prop, arr, l) != 0 || !isdigit((unsigned char)prop[l])) return -1;
    long idx = 0;
    const char *q = prop + l;
    while (isdigit((unsigned char)*q) && idx < 1000000) idx = idx * 10 + (*q++ - '0');
    *field = q;
    return idx;
}

static tsq_status resize_objects(tsq_node *n, const tsq_class *c, const tsq_cprop *p, size_t count,
                                 int drop, int *changed) {
    tsq_status st;
    char num[24];
    snprintf(num, sizeof num, "%zu", count);
    if (drop) remove_var(n, p->pub.name, changed);
    else if ((st = tsq_var_set(n, p->pub.name, p->pub.variable, p->pub.hidden, num, strlen(num), changed)))
        return st;
    tsq_node *l = tsq_var_list(n);
    const char *a_prop = n->ctx->atom[A_property];
    for (tsq_node *e = l ? tsq_elem_first(l) : NULL, *next; e; e = next) {
        next = tsq_elem_next(e);
        const char *prop = tsq_attr_get(e, a_prop), *field;
        long idx = prop ? elem_index(p->pub.name, prop, &field) : -1;
        if (idx >= 0 && (size_t)idx >= count) {
            drop_var(e);
            *changed = 1;
        }
    }
    const tsq_cprop *cp = p->count_prop ? tsq_cprop_find(c, p->count_prop) : NULL;
    if (cp && cp->pub.variable && (st = tsq_var_set(n, cp->pub.name, cp->pub.variable, cp->pub.hidden, num,
                                                strlen(num), changed)))
        return st;
    return TSQ_OK;
}

/* Looks up array `prop` and its element field; *count is the element count. */
static tsq_status object_field(const tsq_node *n, const char *prop, size_t index, const char *field,
                               const tsq_class **cls, const tsq_cprop **arr, const tsq_cprop **fld,
                               char *pname, size_t psize, tsq_error *err) {
    tsq_status st = check_action(n, err);
    if (st) return st;
    if (!prop) return tsq_err(err, TSQ_EINVAL, "no property name given");
    const tsq_class *c = tsq_class_of(n);
    if (!c) return tsq_err(err, TSQ_ENOTFOUND, "%s is not a built-in class and has no object arrays", tsq_node_type(n));
    const tsq_cprop *p = tsq_cprop_find(c, prop);
    if (!p) return unknown_prop(err, n, c, prop);
    if (p->pub.type != TSQ_V_OBJECTS) return tsq_err(err, TSQ_ETYPE, "%s is not an object array", prop);
    *cls = c;
    *arr = p;
    if (!field) return TSQ_OK;
    const tsq_cprop *f = tsq_cprop_find(p->elem, field);
    if (!f) return unknown_prop(err, n, p->elem, field);
    *fld = f;
    tsq_value cv;
    get_cprop(n, p, &cv);
    if (index >= (size_t)cv.i)
        return tsq_err(err, TSQ_EINVAL, "index %zu is out of range: %s has %" PRId64 " elements", index, prop, cv.i);
    snprintf(pname, psize, "%s%zu%s", p->pub.name, index, f->pub.name);
    return TSQ_OK;
}

tsq_status tsq_prop_object_get(const tsq_node *n, const char *prop, size_t index, const char *field,
                               tsq_value *out, tsq_error *err) {
    const tsq_class *c;
    const tsq_cprop *p, *f = NULL;
    char pname[200];
    memset(out, 0, sizeof *out);
    if (!field) return tsq_err(err, TSQ_EINVAL, "no field name given");
    tsq_status st = object_field(n, prop, index, field, &c, &p, &f, pname, sizeof pname, err);
    if (st) return st;
    tsq_node *v = tsq_var_find(n, pname);
    if (v) {
        size_t len;
        const char *s = tsq_leaf_text(v, &len);
        typed_value(f->pub.type, s, len, out);
    }
    return TSQ_OK;
}

tsq_status tsq_prop_object_set(tsq_node *n, const char *prop, size_t index, const char *field,
                               const tsq_value *v, tsq_error *err) {
    const tsq_class *c;
    const tsq_cprop *p, *f = NULL;
    char pname[200], vname[200], num[24];
    const char *s;
    size_t len;
    int changed = 0;
    if (!field || !v) return tsq_err(err, TSQ_EINVAL, "no field name or value given");
    tsq_status st = object_field(n, prop, index, field, &c, &p, &f, pname, sizeof pname, err);
    if (st) return st;
    int gen = tsq_cmd_generated(n, c);
    if (v->type == TSQ_V_NIL) {
        remove_var(n, pname, &changed);
    } else {
        if ((st = value_text(f, field, v, num, &s, &len, err)) || (st = check_value(f, &s, &len, err))) return st;
        snprintf(vname, sizeof vname, "%s%zu%s", p->pub.variable, index, f->pub.name);
        if ((st = tsq_var_set(n, pname, vname, 0, s, len, &changed))) return step_err(err, n, st);
    }
    if (changed && gen) tsq_cmd_stale(n);
    return TSQ_OK;
}

tsq_status tsq_prop_object_resize(tsq_node *n, const char *prop, size_t count, tsq_error *err) {
    const tsq_class *c;
    const tsq_cprop *p, *f;
    int changed = 0;
    tsq_status st = object_field(n, prop, 0, NULL, &c, &p, &f, NULL, 0, err);
    if (st) return st;
    if (count > 100000) return tsq_err(err, TSQ_ELIMIT, "%s can hold at most 100000 elements", prop);
    int gen = tsq_cmd_generated(n, c);
    if ((st = resize_objects(n, c, p, count, 0, &changed))) return step_err(err, n, st);
    if (changed && gen) tsq_cmd_stale(n);
    return TSQ_OK;
}

/* ------------------------------------------------------------------ listing */

static int present(const tsq_node *n, const tsq_cprop *p) {
    if (p->pub.variable && tsq_var_find(n, p->pub.name)) return 1;
    return p->attr >= 0 && tsq_attr_get(n, n->ctx->atom[p->attr]) != NULL;
}

/* A variable that a catalogue property or an array element accounts for. */
static int claimed(const tsq_class *c, const char *prop) {
    const char *field;
    if (tsq_cprop_find(c, prop)) return 1;
    for (size_t i = 0; i < c->pub.nprops; i++)
        if (c->props[i].pub.type == TSQ_V_OBJECTS && elem_index(c->props[i].pub.name, prop, &field) >= 0) return 1;
    return 0;
}

/* Walks the properties set on n: catalogue order, then document order. Returns the
 * count; the name of entry `want` goes to *name. */
static size_t prop_walk(const tsq_node *n, size_t want, const char **name) {
    const tsq_class *c = tsq_class_of(n);
    const tsq_class *cat = c ? c : &tsq_base_class;
    size_t k = 0;
    for (size_t i = 0; i < cat->pub.nprops; i++) {
        if (!present(n, &cat->props[i])) continue;
        if (k++ == want) *name = cat->props[i].pub.name;
    }
    tsq_node *l = tsq_var_list(n);
    for (tsq_node *e = l ? tsq_elem_first(l) : NULL; e; e = tsq_elem_next(e)) {
        const char *prop = tsq_attr_get(e, n->ctx->atom[A_property]);
        if (e->name != n->ctx->atom[A_variable] || !prop || claimed(cat, prop)) continue;
        if (k++ == want) *name = prop;
    }
    return k;
}

size_t tsq_prop_count(const tsq_node *n) {
    const char *name = NULL;
    return n && n->type == N_ACTION ? prop_walk(n, (size_t)-1, &name) : 0;
}

const char *tsq_prop_name(const tsq_node *n, size_t index) {
    const char *name = NULL;
    if (n && n->type == N_ACTION) prop_walk(n, index, &name);
    return name;
}
