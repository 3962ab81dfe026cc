/* validate.c - checks a sequence against the catalogue and the console's rules.
 *
 * Severity: what the SDK itself rejects is an error (a missing Not_Null property, a
 * value outside its ValueMap, a boolean or integer property holding other text, a name
 * over 100 or a description over 255 characters, malformed success codes, a step whose
 * SupportedEnvironment contradicts the conditions it sits under). What only the console
 * enforces or what is merely suspicious is a warning (a name over 50 characters,
 * duplicate step names in one group, a value outside a documented range, a success-code
 * attribute that disagrees with its variable, a property the class does not have).
 *
 * The environment rule: a condition operand that must hold for a step to run (the
 * step's own condition and those of its groups, through "and" operators only) of the
 * form _SMSTSInWinPE equals/notEquals "true"/"false" fixes where the step runs; an
 * action whose SupportedEnvironment is WinPE under a condition that requires the full
 * OS, or FullOS under one that requires Windows PE, can never run.
 *
 * MDT Workbench (version 3.00) documents keep the command in <action> and omit many
 * variables the SDK marks Not_Null: there a missing required property is a warning;
 * in ConfigMgr (3.10) documents and new steps it is an error. A missing runIn is always
 * a warning (readers take WinPEandFullOS). */
#include "tsq_int.h"
#include "catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

typedef struct vstate {
    tsq_problem_fn fn;
    void *ud;
    size_t errors;
    char msg[768];
} vstate;

static void report(vstate *vs, const tsq_node *step, const char *prop, tsq_severity sev, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static void report(vstate *vs, const tsq_node *step, const char *prop, tsq_severity sev, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vs->msg, sizeof vs->msg, fmt, ap);
    va_end(ap);
    if (sev == TSQ_SEV_ERROR) vs->errors++;
    if (vs->fn) {
        tsq_problem p = {step, prop, vs->msg, sev};
        vs->fn(vs->ud, &p);
    }
}

/* Characters (UTF-8 code points). */
static size_t utf8_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) k++;
    return k;
}

/* ------------------------------------------------------------------ common step checks */

static void check_names(vstate *vs, const tsq_node *n) {
    const char *name = tsq_node_name(n), *desc = tsq_node_description(n);
    size_t nl = utf8_len(name, strlen(name)), dl = utf8_len(desc, strlen(desc));
    if (nl == 0) report(vs, n, NULL, TSQ_SEV_ERROR, "the step has no name");
    else if (nl > 100) report(vs, n, NULL, TSQ_SEV_ERROR, "the name has %zu characters; the limit is 100", nl);
    else if (nl > 50) report(vs, n, NULL, TSQ_SEV_WARNING, "the name has %zu characters; the console allows 50", nl);
    if (dl > 255) report(vs, n, NULL, TSQ_SEV_ERROR, "the description has %zu characters; the limit is 255", dl);
}

typedef struct named {
    const char *name;
    size_t index;
    const tsq_node *step;
} named;

static int cmp_named(const void *a, const void *b) {
    const named *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->index > y->index) - (x->index < y->index);
}

/* Warns about every step after the first that repeats a name in the same group. */
static void check_duplicates(vstate *vs, const tsq_node *group) {
    size_t k = tsq_node_count(group), i = 0;
    if (k < 2) return;
    named *a = malloc(k * sizeof *a);
    if (!a) return;
    for (const tsq_node *c = tsq_node_first(group); c; c = tsq_node_next(c), i++) a[i] = (named){tsq_node_name(c), i, c};
    qsort(a, k, sizeof *a, cmp_named);
    for (i = 1; i < k; i++)
        if (strcmp(a[i].name, a[i - 1].name) == 0 && a[i].name[0])
            report(vs, a[i].step, NULL, TSQ_SEV_WARNING, "another step in this group is also named \"%.200s\"", a[i].name);
    free(a);
}

/* ------------------------------------------------------------------ environment */

static const char *expr_var(const tsq_node *e, const char *which) {
    tsq_ctx *ctx = e->ctx;
    for (const tsq_node *v = tsq_elem_first(e); v; v = tsq_elem_next(v)) {
        const char *nm = tsq_attr_get(v, ctx->atom[A_name]);
        if (v->name == ctx->atom[A_variable] && nm && strcmp(nm, which) == 0) return v->text ? v->text : "";
    }
    return NULL;
}

/* 1: the operands that must hold require Windows PE, 0: the full OS, -1: neither. */
static int required_winpe(const tsq_node *holder) {
    tsq_ctx *ctx = holder->ctx;
    for (const tsq_node *e = tsq_elem_first(holder); e; e = tsq_elem_next(e)) {
        if (e->name == ctx->atom[A_operator]) {
            const char *t = tsq_attr_get(e, ctx->atom[A_type]);
            int r = t && strcasecmp(t, "and") == 0 ? required_winpe(e) : -1;
            if (r >= 0) return r;
            continue;
        }
        if (e->name != ctx->atom[A_expression]) continue;
        const char *t = tsq_attr_get(e, ctx->atom[A_type]);
        if (!t || strcmp(t, "SMS_TaskSequence_VariableConditionExpression") != 0) continue;
        const char *var = expr_var(e, "Variable"), *op = expr_var(e, "Operator"), *val = expr_var(e, "Value");
        if (!var || !op || !val || strcasecmp(var, "_SMSTSInWinPE") != 0) continue;
        int b = tsq_parse_bool(val, strlen(val));
        if (b < 0) continue;
        if (strcasecmp(op, "equals") == 0) return b;
        if (strcasecmp(op, "notEquals") == 0) return !b;
    }
    return -1;
}

static void check_environment(vstate *vs, const tsq_node *n) {
    const char *env = tsq_attr_get(n, n->ctx->atom[A_runIn]);
    if (!env || (strcmp(env, "WinPE") != 0 && strcmp(env, "FullOS") != 0)) return;
    int winpe_only = strcmp(env, "WinPE") == 0;
    for (const tsq_node *p = n; p && p->type != N_SEQUENCE; p = p->parent) {
        const tsq_node *cond = tsq_elem_child(p, n->ctx->atom[A_condition]);
        int r = cond ? required_winpe(cond) : -1;
        if (r < 0 || r == winpe_only) continue;
        const char *where = p == n ? "its condition requires" : "the condition of group \"";
        report(vs, n, "SupportedEnvironment", TSQ_SEV_ERROR, "the step runs only in %s but %s%.100s%s %s",
               winpe_only ? "windows pe" : "the full os", where, p == n ? "" : tsq_node_name(p),
               p == n ? "" : "\" requires", winpe_only ? "the full os" : "windows pe");
        return;
    }
}

/* ------------------------------------------------------------------ property values */

static void check_value(vstate *vs, const tsq_node *n, const tsq_cprop *p, const char *label, const char *s,
                        size_t len) {
    int64_t iv;
    int required = (p->flags & TSQ_PF_REQUIRED) != 0;
    if (p->pub.type == TSQ_V_BOOL && (len || required) && tsq_parse_bool(s, len) < 0) {
        report(vs, n, p->pub.name, TSQ_SEV_ERROR, "%s must be true or false (got \"%.100s\")", label, s);
        return;
    }
    if (p->pub.type == TSQ_V_INT && (len || required)) {
        if (!tsq_parse_int(s, len, &iv)) {
            report(vs, n, p->pub.name, TSQ_SEV_ERROR, "%s must be an integer (got \"%.100s\")", label, s);
            return;
        }
        if (p->has_range && (iv < p->min || iv > p->max))
            report(vs, n, p->pub.name, TSQ_SEV_WARNING, "%s is %lld, outside %lld-%lld", label, (long long)iv,
                   (long long)p->min, (long long)p->max);
    }
    if ((p->pub.type == TSQ_V_STRING || p->pub.type == TSQ_V_LIST) && p->has_range) {
        size_t cl = utf8_len(s, len);
        if ((int64_t)cl > p->max)
            report(vs, n, p->pub.name, TSQ_SEV_ERROR, "%s has %zu characters; the limit is %lld", label, cl,
                   (long long)p->max);
        else if (required && (int64_t)cl < p->min)
            report(vs, n, p->pub.name, TSQ_SEV_ERROR, "%s is empty", label);
    }
    if (p->pub.allowed && len && !tsq_value_allowed(p->pub.allowed, s, len))
        report(vs, n, p->pub.name, TSQ_SEV_ERROR, "%s must be one of %s (got \"%.100s\")", label, p->pub.allowed, s);
    if (p->attr == A_successCodeList && !tsq_success_codes_ok(s, len))
        report(vs, n, p->pub.name, TSQ_SEV_ERROR, "%s must be exit codes separated by spaces (got \"%.100s\")", label, s);
}

static void check_objects(vstate *vs, const tsq_node *n, const tsq_cprop *p, const char *count_text, size_t cl) {
    int64_t count;
    if (!tsq_parse_int(count_text, cl, &count) || count < 0) {
        report(vs, n, p->pub.name, TSQ_SEV_ERROR, "%s must be an element count (got \"%.100s\")", p->pub.name, count_text);
        return;
    }
    for (int64_t i = 0; i < count && i < 1000; i++) {
        for (size_t f = 0; f < p->elem->pub.nprops; f++) {
            const tsq_cprop *fp = &p->elem->props[f];
            char prop[200], label[220];
            snprintf(prop, sizeof prop, "%s%lld%s", p->pub.name, (long long)i, fp->pub.name);
            snprintf(label, sizeof label, "%s[%lld].%s", p->pub.name, (long long)i, fp->pub.name);
            tsq_node *v = tsq_var_find(n, prop);
            if (!v) {
                if (fp->flags & TSQ_PF_REQUIRED)
                    report(vs, n, p->pub.name, TSQ_SEV_ERROR, "required property %s is missing", label);
                continue;
            }
            size_t len;
            const char *s = tsq_leaf_text(v, &len);
            check_value(vs, n, fp, label, s, len);
        }
    }
}

static int elem_var(const tsq_class *c, const char *prop) {
    for (size_t i = 0; i < c->pub.nprops; i++) {
        const tsq_cprop *p = &c->props[i];
        size_t l = strlen(p->pub.name);
        if (p->pub.type == TSQ_V_OBJECTS && strncmp(prop, p->pub.name, l) == 0 && prop[l] >= '0' && prop[l] <= '9')
            return 1;
    }
    return 0;
}

static void check_action(vstate *vs, const tsq_node *n) {
    const tsq_class *c = tsq_class_of(n);
    const tsq_class *cat = c ? c : &tsq_base_class;
    tsq_ctx *ctx = n->ctx;
    const tsq_node *seq = tsq_node_sequence(n);
    const char *ver = seq ? tsq_attr_get(seq, ctx->atom[A_version]) : NULL;
    int cm = !seq || (ver && strcmp(ver, "3.10") == 0);
    for (size_t i = 0; i < cat->pub.nprops; i++) {
        const tsq_cprop *p = &cat->props[i];
        const char *name = p->pub.name;
        tsq_node *v = p->pub.variable ? tsq_var_find(n, name) : NULL;
        const char *a = p->attr >= 0 ? tsq_attr_get(n, ctx->atom[p->attr]) : NULL;
        size_t len;
        if (p->pub.type == TSQ_V_OBJECTS) {
            if (v) {
                const char *s = tsq_leaf_text(v, &len);
                check_objects(vs, n, p, s, len);
            } else if (p->flags & TSQ_PF_REQUIRED) {
                report(vs, n, name, TSQ_SEV_ERROR, "required property %s is missing", name);
            }
            continue;
        }
        if (v) {
            const char *s = tsq_leaf_text(v, &len);
            check_value(vs, n, p, name, s, len);
            if (a && (strlen(a) != len || strncasecmp(a, s, len) != 0))
                report(vs, n, name, TSQ_SEV_WARNING, "%s is \"%.100s\" but the step attribute says \"%.100s\"", name, s, a);
        } else if (a) {
            check_value(vs, n, p, name, a, strlen(a));
        } else if ((p->flags & TSQ_PF_REQUIRED) && c) {
            report(vs, n, name, p->pub.variable && cm ? TSQ_SEV_ERROR : TSQ_SEV_WARNING,
                   "required property %s is missing", name);
        }
    }
    if (!c) return;
    tsq_node *l = tsq_var_list(n);
    for (tsq_node *e = l ? tsq_elem_first(l) : NULL; e; e = tsq_elem_next(e)) {
        const char *prop = tsq_attr_get(e, ctx->atom[A_property]);
        if (e->name != ctx->atom[A_variable] || !prop || tsq_cprop_find(c, prop) || elem_var(c, prop)) continue;
        report(vs, n, prop, TSQ_SEV_WARNING, "%s has no property %.100s", c->pub.short_name, prop);
    }
}

size_t tsq_validate(const tsq_node *seq, tsq_problem_fn fn, void *ud) {
    vstate vs;
    vs.fn = fn;
    vs.ud = ud;
    vs.errors = 0;
    if (!seq) return 0;
    if (seq->type != N_ACTION) check_duplicates(&vs, seq);
    for (const tsq_node *n = tsq_node_walk(seq, NULL); n; n = tsq_node_walk(seq, n)) {
        check_names(&vs, n);
        if (n->type == N_GROUP) {
            check_duplicates(&vs, n);
            continue;
        }
        check_action(&vs, n);
        check_environment(&vs, n);
    }
    return vs.errors;
}
