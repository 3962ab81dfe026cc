/* eval.c - condition evaluation (conditions.md §2-3) over a compiled, flat program.
 *
 * Decisions, where the spec leaves them open [?] or to us [impl]:
 *  - like / notLike: % and * match any run of characters, _ and ? exactly one; ASCII case
 *    is ignored. Both families are accepted because the console documents none and Set
 *    Dynamic Variables uses * and ?. There are no [...] classes (a [ is itself).
 *  - An undefined (or empty) variable compares as "" for every operator but exists /
 *    notExists; less/greater compare numerically when both sides are decimal integers
 *    (optional sign, 64-bit), else as case-insensitive strings.
 *  - WMI: a query that returns no row is false. A query error (the provider reports rows
 *    < 0) is false when the expression carries ignoreQueryFailure="true", and an
 *    evaluation error otherwise (that attribute exists because the engine fails then).
 *  - File: Version is compared part by part numerically (missing parts are 0) with
 *    VersionOperator (a plain Operator value is taken when VersionOperator is absent);
 *    DateTime is compared on its first 14 digits (yyyymmddHHMMSS, DMTF or ISO-8601,
 *    both UTC). A file or folder that does not exist is false.
 *  - Registry: exists / notExists (and the SDK's nonExists) test the value with the given
 *    Type (when Type is given); comparisons are false when the value is missing, numeric
 *    when both data are integers (decimal or 0x hex), case-insensitive strings otherwise.
 *  - Software: ThisVersion asks for ProductCode (and when Version is set and the host
 *    reports a version, they must be equal); AnyVersion asks for UpgradeCode, or for
 *    ProductCode when no UpgradeCode is set.
 *  - OS expression (MDT's SMS_TaskSequence_OSConditionExpression): evaluated against the
 *    variables MDT's gather sets, Architecture (X86/X64, case-insensitive) and
 *    OSCurrentVersion; Version is compared part by part with the minor part read as a
 *    decimal fraction, because the class writes 6.10 for Windows 7's 6.1. Undefined
 *    variables are a missing fact.
 *  - %VAR% is expanded in WMI queries and in file, folder and registry key paths.
 *  - A fact the provider does not describe (no callback, or TSQ_EFACT) is TSQ_EFACT
 *    naming the fact; an unknown expression class or operator is TSQ_EINVAL. Never true. */
#include "cond.h"

#include <stdarg.h>
#include <stdio.h>

enum { O_AND, O_OR, O_NOT, O_VAR, O_WMI, O_FILE, O_FOLDER, O_REG, O_SW, O_OS };
enum { K_EXISTS, K_NOTEXISTS, K_EQ, K_NE, K_LT, K_LE, K_GT, K_GE, K_LIKE, K_NOTLIKE, K_NONE };
/* OF_EXP: the operand's text (the query of a wmi test, the path or key of the others) holds
 * a '%' and is expanded before the fact is asked; without it the text is used as it is. */
enum { OF_TOP = 1, OF_INT = 2, OF_IGNORE = 4, OF_ANY = 8, OF_EXP = 16 };

typedef struct sv {
    const char *s; /* NUL-terminated; NULL when absent */
    uint32_t len;
} sv;

typedef struct cop {
    uint8_t kind, cmp, cmp2, flags;
    uint32_t end;          /* index past this operand's subtree */
    uint32_t hash;         /* O_VAR: tsq_name_hash of a */
    sv a, b, c, d;         /* see compile_leaf */
    int64_t ival;          /* O_VAR: b as an integer (OF_INT) */
    const tsq_cond *src;   /* for traces; NULL when compiled from XML */
} cop;

struct tsq_cprog {
    size_t n;
    cop ops[];
};

/* ------------------------------------------------------------------ helpers */

static int fold(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

static int parse_int(const char *s, size_t n, int64_t *out, int hex_ok) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (hex_ok && !neg && i + 2 < n + 1 && n - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        uint64_t v = 0;
        for (i += 2; i < n; i++) {
            int ch = fold((unsigned char)s[i]), d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0 || v > (UINT64_MAX >> 4)) return 0;
            v = v * 16 + (uint64_t)d;
        }
        if (v > INT64_MAX) return 0;
        *out = (int64_t)v;
        return 1;
    }
    if (i == n) return 0;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        if (v > (UINT64_MAX - 9) / 10) return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) return 0;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 1;
}

static int str_casecmp(const char *a, size_t an, const char *b, size_t bn) {
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n; i++) {
        int x = fold((unsigned char)a[i]), y = fold((unsigned char)b[i]);
        if (x != y) return x < y ? -1 : 1;
    }
    return an < bn ? -1 : an > bn ? 1 : 0;
}

/* % * any run, _ ? one character; case-insensitive; iterative with one backtrack point */
static int fold_eq(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i] && fold((unsigned char)a[i]) != fold((unsigned char)b[i])) return 0;
    return 1;
}

/* Whether p[0..pn) holds no wildcard character. */
static int literal(const char *p, size_t pn) {
    for (size_t i = 0; i < pn; i++)
        if (p[i] == '%' || p[i] == '*' || p[i] == '_' || p[i] == '?') return 0;
    return 1;
}

static int like(const char *s, size_t sn, const char *p, size_t pn) {
    /* the usual shapes, "%text%", "text%" and "%text", without backtracking */
    int lead = pn > 0 && (p[0] == '%' || p[0] == '*');
    int trail = pn > (size_t)lead && (p[pn - 1] == '%' || p[pn - 1] == '*');
    const char *lit = p + lead;
    size_t ln = pn - (size_t)lead - (size_t)trail;
    if (literal(lit, ln)) {
        if (ln > sn) return 0;
        if (!lead && !trail) return ln == sn && fold_eq(s, lit, ln);
        if (!lead) return fold_eq(s, lit, ln);
        if (!trail) return fold_eq(s + sn - ln, lit, ln);
        if (ln == 0) return 1;
        int f0 = fold((unsigned char)lit[0]);
        for (size_t i = 0; i + ln <= sn; i++)
            if (fold((unsigned char)s[i]) == f0 && fold_eq(s + i + 1, lit + 1, ln - 1)) return 1;
        return 0;
    }
    size_t i = 0, j = 0, star = (size_t)-1, mark = 0;
    while (i < sn) {
        if (j < pn && (p[j] == '%' || p[j] == '*')) {
            star = j++;
            mark = i;
        } else if (j < pn && (p[j] == '_' || p[j] == '?' || fold((unsigned char)p[j]) == fold((unsigned char)s[i]))) {
            i++;
            j++;
        } else if (star != (size_t)-1) {
            j = star + 1;
            i = ++mark;
        } else {
            return 0;
        }
    }
    while (j < pn && (p[j] == '%' || p[j] == '*')) j++;
    return j == pn;
}

static int apply(int k, int c) {
    switch (k) {
    case K_EQ: return c == 0;
    case K_NE: return c != 0;
    case K_LT: return c < 0;
    case K_LE: return c <= 0;
    case K_GT: return c > 0;
    case K_GE: return c >= 0;
    default: return 0;
    }
}

/* dotted versions, part by part; minor_frac: the second part is a decimal fraction */
static int version_cmp(const char *a, const char *b, int minor_frac) {
    for (int part = 0; *a || *b; part++) {
        const char *ea = a, *eb = b;
        while (*ea && *ea != '.') ea++;
        while (*eb && *eb != '.') eb++;
        size_t la = (size_t)(ea - a), lb = (size_t)(eb - b);
        int c;
        if (part == 1 && minor_frac) {
            /* pad with zeros to the same length, then compare digit strings */
            size_t m = la > lb ? la : lb;
            c = 0;
            for (size_t i = 0; i < m && !c; i++) {
                int x = i < la ? a[i] : '0', y = i < lb ? b[i] : '0';
                c = x < y ? -1 : x > y;
            }
        } else {
            int64_t x = 0, y = 0;
            int okx = la == 0 || parse_int(a, la, &x, 0), oky = lb == 0 || parse_int(b, lb, &y, 0);
            if (okx && oky) c = x < y ? -1 : x > y;
            else c = str_casecmp(a, la, b, lb);
        }
        if (c) return c;
        a = *ea ? ea + 1 : ea;
        b = *eb ? eb + 1 : eb;
    }
    return 0;
}

/* the first 14 digits of a DMTF or ISO-8601 time */
static void time_key(const char *s, char out[15]) {
    int k = 0;
    for (; *s && k < 14; s++)
        if (*s >= '0' && *s <= '9') out[k++] = *s;
        else if (*s == '.' || *s == '+' || *s == 'Z') break;
    while (k < 14) out[k++] = '0';
    out[14] = '\0';
}

static const char *const op_names[] = {"exists", "notExists", "equals", "notEquals", "less", "lessEqual",
                                       "greater", "greaterEqual", "like", "notLike"};

/* The operator's kind, by its first letter and length, then one comparison. */
static int cmp_kind(const char *s) {
    if (!s) return K_NONE;
    size_t n = strlen(s);
    int k = K_NONE;
    switch (fold((unsigned char)s[0])) {
    case 'e': k = n == 6 && fold((unsigned char)s[1]) == 'q' ? K_EQ : K_EXISTS; break;
    case 'n':
        if (n == 7) k = K_NOTLIKE;
        else if (n == 9 && fold((unsigned char)s[2]) == 't') k = fold((unsigned char)s[4]) == 'q' ? K_NE : K_NOTEXISTS;
        else if (n == 9 && tsq_ascii_casecmp(s, "nonExists") == 0) return K_NOTEXISTS; /* the SDK's registry spelling */
        break;
    case 'l': k = n == 4 ? (fold((unsigned char)s[1]) == 'e' ? K_LT : K_LIKE) : K_LE; break;
    case 'g': k = n == 7 ? K_GT : K_GE; break;
    default: return K_NONE;
    }
    if (k == K_NONE) return K_NONE;
    /* documents write the operators as the SDK spells them: an exact match first */
    if (memcmp(s, op_names[k], n + 1) == 0) return k;
    return tsq_ascii_casecmp(s, op_names[k]) == 0 ? k : K_NONE;
}

const char *tsq_cond_operator_at(size_t i) { return i < sizeof op_names / sizeof op_names[0] ? op_names[i] : NULL; }

const char *tsq_cond_operator(const char *op) {
    int k = cmp_kind(op);
    if (k == K_NONE) return NULL;
    return op && tsq_ascii_casecmp(op, "nonExists") == 0 ? "nonExists" : op_names[k];
}

/* ------------------------------------------------------------------ compiling */

/* The named values of an expression a leaf can use, read once into an array by name. */
enum {
    F_OPERATOR, F_VARIABLE, F_VALUE, F_NAMESPACE, F_QUERY, F_PATH, F_VERSION, F_VERSIONOPERATOR,
    F_DATETIME, F_DATETIMEOPERATOR, F_KEYPATH, F_TYPE, F_DATA, F_PRODUCTCODE, F_UPGRADECODE,
    F_ARCHITECTURE, NFIELDS
};
static const char *const field_names[NFIELDS] = {
    "Operator", "Variable", "Value", "Namespace", "Query", "Path", "Version", "VersionOperator",
    "DateTime", "DateTimeOperator", "KeyPath", "Type", "Data", "ProductCode", "UpgradeCode", "Architecture",
};

/* The field of a value name (case as written), or -1: by length and first letter. */
static int field_id(const char *s, size_t n) {
    int f = -1;
    switch (n) {
    case 4: f = s[0] == 'P' ? F_PATH : s[0] == 'T' ? F_TYPE : F_DATA; break;
    case 5: f = s[0] == 'V' ? F_VALUE : F_QUERY; break;
    case 7: f = s[0] == 'V' ? F_VERSION : F_KEYPATH; break;
    case 8: f = s[0] == 'O' ? F_OPERATOR : s[0] == 'V' ? F_VARIABLE : F_DATETIME; break;
    case 9: f = F_NAMESPACE; break;
    case 11: f = s[0] == 'P' ? F_PRODUCTCODE : F_UPGRADECODE; break;
    case 12: f = F_ARCHITECTURE; break;
    case 15: f = F_VERSIONOPERATOR; break;
    case 16: f = F_DATETIMEOPERATOR; break;
    default: return -1;
    }
    return memcmp(s, field_names[f], n) == 0 ? f : -1;
}

typedef struct leafvals {
    sv f[NFIELDS]; /* .s NULL: not given */
} leafvals;

/* Records name = value unless the name was given before (the first one counts). */
static void leafvals_put(leafvals *v, const char *name, size_t nlen, const char *val, size_t vlen) {
    int f = field_id(name, nlen);
    if (f < 0 || v->f[f].s) return;
    v->f[f].s = val;
    v->f[f].len = (uint32_t)vlen;
}

typedef struct comp {
    cop *ops;
    size_t n, cap;
    cop local[32];
    tsq_ctx *ctx;
    tsq_error *err;
} comp;

static cop *emit(comp *k) {
    if (k->n == k->cap) {
        size_t nc = k->cap * 2;
        cop *v;
        if (k->ops == k->local) {
            v = tsq_ctx_alloc(k->ctx, NULL, 0, nc * sizeof *v);
            if (v) memcpy(v, k->local, k->n * sizeof *v);
        } else {
            v = tsq_ctx_alloc(k->ctx, k->ops, k->cap * sizeof *v, nc * sizeof *v);
        }
        if (!v) return NULL;
        k->ops = v;
        k->cap = nc;
    }
    cop *o = &k->ops[k->n++];
    memset(o, 0, sizeof *o);
    return o;
}


static tsq_status bad_op(comp *k, const char *cls, sv op) {
    return tsq_err(k->err, TSQ_EINVAL, "unknown operator '%s' in a %s condition", op.s ? op.s : "", cls);
}

static tsq_status compile_leaf(comp *k, cop *o, const char *cls, const leafvals *v, int ignore) {
    tsq_cls_id id = tsq_cls_of(cls);
    sv op = v->f[F_OPERATOR];
    switch (id) {
    case CLS_VARIABLE:
        o->kind = O_VAR;
        o->a = v->f[F_VARIABLE];
        o->b = v->f[F_VALUE];
        if (!o->a.s || !o->a.len) return tsq_err(k->err, TSQ_EINVAL, "a variable condition without a variable name");
        o->hash = tsq_name_hash(o->a.s, o->a.len);
        if ((o->cmp = (uint8_t)cmp_kind(op.s)) == K_NONE) return bad_op(k, "variable", op);
        if (!o->b.s) o->b.s = "";
        if (parse_int(o->b.s, o->b.len, &o->ival, 0)) o->flags |= OF_INT;
        return TSQ_OK;
    case CLS_WMI:
        o->kind = O_WMI;
        o->a = v->f[F_NAMESPACE];
        o->b = v->f[F_QUERY];
        if (!o->a.s || !o->a.len) o->a.s = "root\\cimv2";
        if (!o->b.s) return tsq_err(k->err, TSQ_EINVAL, "a wmi condition without a query");
        if (ignore) o->flags |= OF_IGNORE;
        if (memchr(o->b.s, '%', o->b.len)) o->flags |= OF_EXP;
        return TSQ_OK;
    case CLS_FILE:
    case CLS_FOLDER: {
        o->kind = id == CLS_FILE ? O_FILE : O_FOLDER;
        o->a = v->f[F_PATH];
        if (!o->a.s) return tsq_err(k->err, TSQ_EINVAL, "a %s condition without a path", id == CLS_FILE ? "file" : "folder");
        if (memchr(o->a.s, '%', o->a.len)) o->flags |= OF_EXP;
        o->cmp = o->cmp2 = K_NONE;
        if (id == CLS_FILE && (o->b = v->f[F_VERSION]).s && o->b.len) {
            sv vop = v->f[F_VERSIONOPERATOR];
            if (!vop.s) vop = op;
            if ((o->cmp = (uint8_t)cmp_kind(vop.s)) < K_EQ || o->cmp > K_GE) return bad_op(k, "file version", vop);
        } else {
            o->b.s = NULL;
        }
        if ((o->c = v->f[F_DATETIME]).s && o->c.len) {
            sv dop = v->f[F_DATETIMEOPERATOR];
            if ((o->cmp2 = (uint8_t)cmp_kind(dop.s)) < K_EQ || o->cmp2 > K_GE) return bad_op(k, "date and time", dop);
        } else {
            o->c.s = NULL;
        }
        return TSQ_OK;
    }
    case CLS_REGISTRY:
        o->kind = O_REG;
        o->a = v->f[F_KEYPATH];
        o->b = v->f[F_VALUE];
        o->c = v->f[F_TYPE];
        o->d = v->f[F_DATA];
        if (!o->a.s) return tsq_err(k->err, TSQ_EINVAL, "a registry condition without a key path");
        if (memchr(o->a.s, '%', o->a.len)) o->flags |= OF_EXP;
        if (!o->b.s) o->b.s = "";
        if (!o->d.s) o->d.s = "";
        if ((o->cmp = (uint8_t)cmp_kind(op.s)) == K_NONE || o->cmp >= K_LIKE) return bad_op(k, "registry", op);
        return TSQ_OK;
    case CLS_SOFTWARE: {
        o->kind = O_SW;
        sv pc = v->f[F_PRODUCTCODE], uc = v->f[F_UPGRADECODE];
        if (op.s && tsq_ascii_casecmp(op.s, "AnyVersion") == 0) {
            o->flags |= OF_ANY;
            if (uc.s && uc.len) o->a = uc;
            else o->a = pc, o->flags &= (uint8_t)~OF_ANY;
        } else if (op.s && tsq_ascii_casecmp(op.s, "ThisVersion") == 0) {
            o->a = pc;
            o->b = v->f[F_VERSION];
        } else {
            return bad_op(k, "software", op);
        }
        if (!o->a.s || !o->a.len) return tsq_err(k->err, TSQ_EINVAL, "a software condition without a product or upgrade code");
        return TSQ_OK;
    }
    case CLS_OS:
        o->kind = O_OS;
        o->a = v->f[F_ARCHITECTURE];
        o->b = v->f[F_VERSION];
        if ((o->cmp = (uint8_t)cmp_kind(op.s)) < K_EQ || o->cmp > K_GE) return bad_op(k, "os", op);
        return TSQ_OK;
    default:
        return tsq_err(k->err, TSQ_EINVAL, "unknown condition class '%s'", cls);
    }
}

/* --- from a tsq_cond */

static tsq_status compile_cond(comp *k, const tsq_cond *c, int depth) {
    if (depth > (int)k->ctx->limits.max_cond_depth)
        return tsq_err(k->err, TSQ_ELIMIT, "condition nesting exceeds %u levels", (unsigned)k->ctx->limits.max_cond_depth);
    size_t at = k->n;
    cop *o = emit(k);
    if (!o) return tsq_err(k->err, TSQ_ENOMEM, "out of memory");
    o->src = c;
    tsq_status st = TSQ_OK;
    switch (c->kind) {
    case TSQ_C_EXPRESSION: {
        const tsq_kv *ig = tsq_kvs_find(&c->attrs, "ignoreQueryFailure");
        leafvals v;
        memset(&v, 0, sizeof v);
        for (size_t i = 0; i < c->values.n; i++)
            leafvals_put(&v, c->values.v[i].name, strlen(c->values.v[i].name), c->values.v[i].value, c->values.v[i].len);
        st = compile_leaf(k, o, c->cls ? c->cls : "", &v, ig && tsq_ascii_casecmp(ig->value, "true") == 0);
        break;
    }
    default:
        o->kind = c->kind == TSQ_C_OR || c->kind == TSQ_C_OSGROUP ? O_OR : c->kind == TSQ_C_NOT ? O_NOT : O_AND;
        if (c->kind == TSQ_C_CONDITION) o->flags |= OF_TOP;
        for (size_t i = 0; i < c->nops && !st; i++) st = compile_cond(k, c->ops[i], depth + 1);
        break;
    }
    k->ops[at].end = (uint32_t)k->n;
    return st;
}

/* --- from the XML of a step: no copies, the program points into the nodes */

/* The <variable name=...> children of an <expression>, read once. */
static void xleaf_read(leafvals *v, const tsq_node *e) {
    const char *nm = e->ctx->atom[A_name];
    memset(v, 0, sizeof *v);
    for (const tsq_node *c = tsq_elem_first(e); c; c = tsq_elem_next(c)) {
        const tsq_attr *a = tsq_attr_find(c, nm);
        if (a) leafvals_put(v, a->value, a->len, c->text ? c->text : "", c->text ? c->text_len : 0);
    }
}

static tsq_status compile_xml(comp *k, const tsq_node *e, int depth, int top) {
    tsq_ctx *ctx = k->ctx;
    const char **atom = ctx->atom;
    if (depth > (int)ctx->limits.max_cond_depth)
        return tsq_err(k->err, TSQ_ELIMIT, "condition nesting exceeds %u levels", (unsigned)ctx->limits.max_cond_depth);
    size_t at = k->n;
    cop *o = emit(k);
    if (!o) return tsq_err(k->err, TSQ_ENOMEM, "out of memory");
    tsq_status st = TSQ_OK;
    const char *type = tsq_attr_get(e, atom[A_type]);
    if (top) {
        o->kind = O_AND;
        o->flags = OF_TOP;
    } else if (e->name == atom[A_expression]) {
        int ignore = 0;
        for (uint16_t i = 0; i < e->nattrs; i++)
            if (e->attrs[i].name[0] == 'i' && strcmp(e->attrs[i].name, "ignoreQueryFailure") == 0) ignore = tsq_ascii_casecmp(e->attrs[i].value, "true") == 0;
        leafvals v;
        xleaf_read(&v, e);
        st = compile_leaf(k, o, type ? type : "", &v, ignore);
        k->ops[at].end = (uint32_t)k->n;
        return st;
    } else if (e->name == atom[A_operator]) {
        if (type && tsq_ascii_casecmp(type, "and") == 0) o->kind = O_AND;
        else if (type && tsq_ascii_casecmp(type, "or") == 0) o->kind = O_OR;
        else if (type && tsq_ascii_casecmp(type, "not") == 0) o->kind = O_NOT;
        else return tsq_err(k->err, TSQ_EPARSE, "unknown condition operator type '%s' (expected and, or, not)", type ? type : "");
    } else if (e->name == atom[A_osConditionGroup]) {
        o->kind = O_OR;
    } else if (e->name == atom[A_osExpressionGroup]) {
        o->kind = O_AND;
    } else {
        return tsq_err(k->err, TSQ_EPARSE, "unexpected <%s> in a condition", e->name);
    }
    for (const tsq_node *c = tsq_elem_first(e); c && !st; c = tsq_elem_next(c))
        if (c->name != atom[A_platformKey]) st = compile_xml(k, c, depth + 1, 0);
    k->ops[at].end = (uint32_t)k->n;
    return st;
}

static struct tsq_cprog *finish(comp *k, tsq_status st) {
    struct tsq_cprog *p = NULL;
    if (!st) {
        p = tsq_ctx_alloc(k->ctx, NULL, 0, sizeof *p + k->n * sizeof(cop));
        if (p) {
            p->n = k->n;
            memcpy(p->ops, k->ops, k->n * sizeof(cop));
        } else {
            tsq_err(k->err, TSQ_ENOMEM, "out of memory");
        }
    }
    if (k->ops != k->local) tsq_ctx_alloc(k->ctx, k->ops, k->cap * sizeof(cop), 0);
    return p;
}

static void comp_init(comp *k, tsq_ctx *ctx, tsq_error *err) {
    k->ops = k->local;
    k->n = 0;
    k->cap = sizeof k->local / sizeof k->local[0];
    k->ctx = ctx;
    k->err = err;
}

static void prog_free(tsq_ctx *ctx, struct tsq_cprog *p) {
    if (p) tsq_ctx_alloc(ctx, p, sizeof *p + p->n * sizeof(cop), 0);
}

/* ------------------------------------------------------------------ fact memo */

typedef struct tsq_memo_ent {
    char *key; /* NULL: empty slot */
    size_t klen;
    uint32_t hash;
    tsq_status st;
    long rows;     /* wmi */
    int flag;      /* file/folder/registry: exists; software: installed */
    char *s1, *s2; /* file: version, datetime; registry: type, data; software: version */
} memo_ent;

void tsq_memo_init(tsq_memo *m, tsq_ctx *ctx) {
    memset(m, 0, sizeof *m);
    m->ctx = ctx;
}

void tsq_memo_free(tsq_memo *m) {
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) {
            tsq_strfree(m->ctx, m->slots[i].key);
            tsq_strfree(m->ctx, m->slots[i].s1);
            tsq_strfree(m->ctx, m->slots[i].s2);
        }
    if (m->slots) tsq_ctx_alloc(m->ctx, m->slots, m->cap * sizeof *m->slots, 0);
    memset(m, 0, sizeof *m);
}

/* A fact's key is its kind and its parts, each with its NUL: "Rkey\0value\0". It is
 * hashed and compared part by part, eight bytes at a time, and copied only when new. */
typedef struct memo_q {
    char kind;
    const char *a, *b;
    size_t alen, blen; /* without the NUL */
} memo_q;

static uint64_t mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0x9E3779B97F4A7C15u;
    return h ^ (h >> 29);
}

static uint64_t hash_part(uint64_t h, const char *s, size_t n) {
    uint64_t w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = mix(h, w);
    }
    w = 0;
    memcpy(&w, s, n);
    return mix(h, w ^ ((uint64_t)n << 56));
}

static uint32_t memo_hash(const memo_q *q) {
    uint64_t h = hash_part((uint64_t)(unsigned char)q->kind, q->a, q->alen);
    h = hash_part(h, q->b, q->blen);
    return (uint32_t)(h ^ (h >> 32));
}

/* The entry for the fact q: found (*hit = 1), or a new one to fill (*hit = 0); NULL when
 * out of memory (the fact is then asked without being kept). */
static memo_ent *memo_find(tsq_memo *m, const memo_q *q, int *hit) {
    *hit = 0;
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        memo_ent *ns = tsq_ctx_alloc(m->ctx, NULL, 0, nc * sizeof *ns);
        if (!ns) return NULL;
        memset(ns, 0, nc * sizeof *ns);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key) continue;
            size_t j = m->slots[i].hash & (nc - 1);
            while (ns[j].key) j = (j + 1) & (nc - 1);
            ns[j] = m->slots[i];
        }
        if (m->slots) tsq_ctx_alloc(m->ctx, m->slots, m->cap * sizeof *m->slots, 0);
        m->slots = ns;
        m->cap = nc;
    }
    uint32_t h = memo_hash(q);
    size_t klen = 1 + q->alen + 1 + q->blen + 1;
    size_t j = h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        memo_ent *x = &m->slots[j];
        if (!x->key) break;
        if (x->hash == h && x->klen == klen && x->key[0] == q->kind && memcmp(x->key + 1, q->a, q->alen) == 0 &&
            memcmp(x->key + 2 + q->alen, q->b, q->blen) == 0) {
            *hit = 1;
            return x;
        }
    }
    memo_ent *x = &m->slots[j];
    memset(x, 0, sizeof *x);
    char *k = tsq_stralloc(m->ctx, klen - 1);
    if (!k) return NULL;
    k[0] = q->kind;
    memcpy(k + 1, q->a, q->alen);
    k[1 + q->alen] = '\0';
    memcpy(k + 2 + q->alen, q->b, q->blen);
    x->key = k;
    x->klen = klen;
    x->hash = h;
    m->n++;
    return x;
}

/* Keeps a provider's string (valid only until its next call) in the entry. */
static const char *memo_str(tsq_memo *m, char **slot, const char *s) {
    if (!s) return NULL;
    *slot = tsq_strndup(m->ctx, s, strlen(s));
    return *slot ? *slot : s;
}

/* ------------------------------------------------------------------ running */

typedef struct ev {
    tsq_env *env;
    tsq_memo *memo;
    const tsq_provider *prov;
    tsq_trace_fn trace;
    void *tud;
    tsq_error *err;
    tsq_ctx *ctx;
    tsq_buf x1, why, text;
} ev;

/* The operand's text with %VAR% references expanded (OF_EXP), else the text itself. */
static const char *expand(ev *e, const cop *o, sv s) { return o->flags & OF_EXP ? tsq_env_expand(e->env, s.s, &e->x1) : s.s; }

/* An error whose message is the strings of parts joined (NULL ends the list): the messages
 * of facts that are not described come once per operand in a plan, and this costs a copy
 * where tsq_err's formatting costs a thousand instructions. */
static tsq_status err_join(tsq_error *err, tsq_status code, const char *const *parts) {
    if (!err) return code;
    err->code = code;
    size_t n = 0, cap = sizeof err->message - 1;
    for (; *parts && n < cap; parts++) {
        size_t l = strlen(*parts);
        if (l > cap - n) l = cap - n;
        memcpy(err->message + n, *parts, l);
        n += l;
    }
    err->message[n] = '\0';
    return code;
}

static void why(ev *e, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void why(ev *e, const char *fmt, ...) {
    if (!e->trace) return;
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    e->why.len = 0;
    tsq_buf_adds(&e->why, tmp);
}

static tsq_status no_fact(ev *e, const char *what, const char *detail) {
    const char *parts[] = {what, " ", detail, " is not described", NULL};
    return err_join(e->err, TSQ_EFACT, parts);
}

static int eval_var(ev *e, const cop *o) {
    size_t vl = 0;
    const char *v = tsq_env_lookup(e->env, o->a.s, o->a.len, o->hash, &vl);
    int r;
    if (o->cmp == K_EXISTS || o->cmp == K_NOTEXISTS) {
        r = (v != NULL) == (o->cmp == K_EXISTS);
    } else {
        const char *s = v ? v : "";
        switch (o->cmp) {
        case K_EQ: r = vl == o->b.len && str_casecmp(s, vl, o->b.s, o->b.len) == 0; break;
        case K_NE: r = !(vl == o->b.len && str_casecmp(s, vl, o->b.s, o->b.len) == 0); break;
        case K_LIKE: r = like(s, vl, o->b.s, o->b.len); break;
        case K_NOTLIKE: r = !like(s, vl, o->b.s, o->b.len); break;
        default: {
            int64_t x;
            int c;
            if ((o->flags & OF_INT) && parse_int(s, vl, &x, 0)) c = x < o->ival ? -1 : x > o->ival;
            else c = str_casecmp(s, vl, o->b.s, o->b.len);
            r = apply(o->cmp, c);
        }
        }
    }
    if (e->trace) {
        if (v) why(e, "%s is \"%.*s\"", o->a.s, (int)(vl > 200 ? 200 : vl), v);
        else why(e, "variable %s undefined", o->a.s);
    }
    return r;
}

/* The providers' answers, through the memo when there is one. Out of line: the variable
 * operands, the common case, stay a short path. */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* The memo's entry for a fact (kind and two parts), or NULL without a memo; *hit says
 * whether it holds the answer already. */
static memo_ent *memo_lookup(ev *e, char kind, const char *a, const char *b, int *hit) {
    *hit = 0;
    if (!e->memo) return NULL;
    memo_q q;
    q.kind = kind;
    q.a = a ? a : "";
    q.b = b ? b : "";
    q.alen = strlen(q.a);
    q.blen = strlen(q.b);
    return memo_find(e->memo, &q, hit);
}

static NOINLINE tsq_status ask_wmi(ev *e, const char *ns, const char *q, long *rows) {
    const tsq_provider *p = e->prov;
    int hit;
    memo_ent *m = memo_lookup(e, 'W', ns, q, &hit);
    if (hit) {
        *rows = m->rows;
        return m->st;
    }
    tsq_status st = p && p->wmi ? p->wmi(p->ud, ns, q, rows) : TSQ_EFACT;
    if (m) m->st = st, m->rows = *rows;
    return st;
}

static NOINLINE tsq_status ask_file(ev *e, int file, const char *path, tsq_file_fact *f) {
    const tsq_provider *p = e->prov;
    tsq_status (*cb)(void *, const char *, tsq_file_fact *) = p ? (file ? p->file : p->folder) : NULL;
    int hit;
    memo_ent *m = memo_lookup(e, file ? 'F' : 'D', path, NULL, &hit);
    if (hit) {
        f->exists = m->flag, f->version = m->s1, f->datetime = m->s2;
        return m->st;
    }
    tsq_status st = cb ? cb(p->ud, path, f) : TSQ_EFACT;
    if (m) {
        m->st = st, m->flag = f->exists;
        f->version = memo_str(e->memo, &m->s1, f->version);
        f->datetime = memo_str(e->memo, &m->s2, f->datetime);
    }
    return st;
}

static NOINLINE tsq_status ask_registry(ev *e, const char *key, const char *value, tsq_reg_fact *f) {
    const tsq_provider *p = e->prov;
    int hit;
    memo_ent *m = memo_lookup(e, 'R', key, value, &hit);
    if (hit) {
        f->exists = m->flag, f->type = m->s1, f->data = m->s2;
        return m->st;
    }
    tsq_status st = p && p->registry ? p->registry(p->ud, key, value, f) : TSQ_EFACT;
    if (m) {
        m->st = st, m->flag = f->exists;
        f->type = memo_str(e->memo, &m->s1, f->type);
        f->data = memo_str(e->memo, &m->s2, f->data);
    }
    return st;
}

static NOINLINE tsq_status ask_software(ev *e, const char *code, int up, int *installed, const char **ver) {
    const tsq_provider *p = e->prov;
    int hit;
    memo_ent *m = memo_lookup(e, up ? 'U' : 'S', code, NULL, &hit);
    if (hit) {
        *installed = m->flag, *ver = m->s1;
        return m->st;
    }
    tsq_status st = p && p->software ? p->software(p->ud, code, up, installed, ver) : TSQ_EFACT;
    if (m) {
        m->st = st, m->flag = *installed;
        *ver = memo_str(e->memo, &m->s1, *ver);
    }
    return st;
}

static tsq_status eval_leaf(ev *e, const cop *o, int *res) {
    tsq_status st;
    switch (o->kind) {
    case O_VAR:
        *res = eval_var(e, o);
        return TSQ_OK;
    case O_WMI: {
        const char *q = expand(e, o, o->b);
        long rows = 0;
        st = ask_wmi(e, o->a.s, q, &rows);
        if (st == TSQ_EFACT) return no_fact(e, "wmi query", q);
        if (st) return tsq_err(e->err, st, "wmi query %s failed", q);
        if (rows < 0) {
            if (!(o->flags & OF_IGNORE))
                return tsq_err(e->err, TSQ_EFACT, "wmi query %s failed (ignoreQueryFailure is not set)", q);
            why(e, "query failed (ignored)");
            *res = 0;
            return TSQ_OK;
        }
        why(e, "%ld rows", rows);
        *res = rows > 0;
        return TSQ_OK;
    }
    case O_FILE:
    case O_FOLDER: {
        const char *path = expand(e, o, o->a);
        const char *what = o->kind == O_FILE ? "file" : "folder";
        tsq_file_fact f;
        memset(&f, 0, sizeof f);
        st = ask_file(e, o->kind == O_FILE, path, &f);
        if (st == TSQ_EFACT) return no_fact(e, what, path);
        if (st) return tsq_err(e->err, st, "%s %s could not be examined", what, path);
        if (!f.exists) {
            why(e, "%s not found", what);
            *res = 0;
            return TSQ_OK;
        }
        *res = 1;
        if (o->b.s) {
            if (!f.version) return tsq_err(e->err, TSQ_EFACT, "the version of file %s is not described", path);
            *res = apply(o->cmp, version_cmp(f.version, o->b.s, 0));
            why(e, "version %s", f.version);
        }
        if (*res && o->c.s) {
            if (!f.datetime) return tsq_err(e->err, TSQ_EFACT, "the date and time of %s %s is not described", what, path);
            char x[15], y[15];
            time_key(f.datetime, x);
            time_key(o->c.s, y);
            *res = apply(o->cmp2, strcmp(x, y));
            why(e, "modified %s", f.datetime);
        }
        if (!o->b.s && !o->c.s) why(e, "%s exists", what);
        return TSQ_OK;
    }
    case O_REG: {
        const char *key = expand(e, o, o->a);
        tsq_reg_fact f;
        memset(&f, 0, sizeof f);
        st = ask_registry(e, key, o->b.s, &f);
        if (st == TSQ_EFACT) {
            const char *parts[] = {"registry value ", key, "\\", o->b.s, " is not described", NULL};
            return err_join(e->err, TSQ_EFACT, parts);
        }
        if (st) return tsq_err(e->err, st, "registry key %s could not be read", key);
        if (o->cmp == K_EXISTS || o->cmp == K_NOTEXISTS) {
            int ex = f.exists && (!o->c.s || !o->c.len || (f.type && tsq_ascii_casecmp(f.type, o->c.s) == 0));
            *res = ex == (o->cmp == K_EXISTS);
            why(e, f.exists ? "value exists as %s" : "value not found", f.type ? f.type : "?");
            return TSQ_OK;
        }
        if (!f.exists) {
            why(e, "value not found");
            *res = 0;
            return TSQ_OK;
        }
        const char *d = f.data ? f.data : "";
        int64_t x, y;
        int c = parse_int(d, strlen(d), &x, 1) && parse_int(o->d.s, o->d.len, &y, 1) ? (x < y ? -1 : x > y)
                                                                                  : str_casecmp(d, strlen(d), o->d.s, o->d.len);
        *res = apply(o->cmp, c);
        why(e, "data is \"%s\"", d);
        return TSQ_OK;
    }
    case O_SW: {
        int installed = 0;
        const char *ver = NULL;
        int up = (o->flags & OF_ANY) != 0;
        st = ask_software(e, o->a.s, up, &installed, &ver);
        if (st == TSQ_EFACT) return no_fact(e, up ? "software with upgrade code" : "software", o->a.s);
        if (st) return tsq_err(e->err, st, "software %s could not be examined", o->a.s);
        *res = installed != 0;
        if (*res && o->b.s && o->b.len && ver) *res = version_cmp(ver, o->b.s, 0) == 0;
        why(e, installed ? "installed%s%s" : "not installed", ver && installed ? ", version " : "", ver && installed ? ver : "");
        return TSQ_OK;
    }
    case O_OS: {
        size_t al = 0, vl = 0;
        const char *arch = tsq_env_lookup(e->env, "Architecture", 12, tsq_name_hash("Architecture", 12), &al);
        const char *ver = tsq_env_lookup(e->env, "OSCurrentVersion", 16, tsq_name_hash("OSCurrentVersion", 16), &vl);
        if (!arch) return tsq_err(e->err, TSQ_EFACT, "the os architecture is not described (variable Architecture)");
        if (!ver) return tsq_err(e->err, TSQ_EFACT, "the os version is not described (variable OSCurrentVersion)");
        *res = (!o->a.s || !o->a.len || str_casecmp(arch, al, o->a.s, o->a.len) == 0) &&
               (!o->b.s || apply(o->cmp, version_cmp(ver, o->b.s, 1)));
        why(e, "os %s %s", arch, ver);
        return TSQ_OK;
    }
    default:
        return tsq_err(e->err, TSQ_EINVAL, "bad condition program");
    }
}

static void emit_trace(ev *e, const cop *o, int depth, int r, const char *reason) {
    tsq_trace_entry t;
    t.depth = depth;
    t.result = r;
    t.operand = o->src ? tsq_cond_to_text(o->src, &e->text) : "";
    if (!t.operand) t.operand = "";
    t.why = reason ? reason : e->why.data ? e->why.data : "";
    e->trace(e->tud, &t);
}

/* Operators short-circuit: conditions have no side effects (conditions.md §3). */
static tsq_status run(ev *e, const cop *ops, uint32_t i, int depth, int *res) {
    const cop *o = &ops[i];
    if (o->kind > O_NOT) {
        tsq_status st = eval_leaf(e, o, res);
        if (!st && e->trace) emit_trace(e, o, depth, *res, NULL);
        return st;
    }
    /* and: all hold; or: one holds; not: none holds */
    int want_stop = o->kind == O_AND ? 0 : 1, r = o->kind == O_OR ? 0 : 1;
    int child_depth = (o->flags & OF_TOP) ? depth : depth + 1;
    for (uint32_t j = i + 1; j < o->end; j = ops[j].end) {
        int x;
        tsq_status st = run(e, ops, j, child_depth, &x);
        if (st) return st;
        if (x == want_stop) {
            r = o->kind == O_OR;
            break;
        }
    }
    *res = r;
    if (e->trace && !(o->flags & OF_TOP))
        emit_trace(e, o, depth, r,
                   o->kind == O_AND ? (r ? "all operands hold" : "an operand is false")
                   : o->kind == O_OR ? (r ? "an operand holds" : "no operand holds")
                                     : (r ? "no operand holds" : "an operand holds"));
    return TSQ_OK;
}

/* scratch: a buffer for %VAR% expansions kept by the caller across calls (plans), or NULL */
static tsq_status run_prog(const struct tsq_cprog *p, tsq_env *env, int *result, tsq_trace_fn trace, void *ud,
                           tsq_error *err, tsq_buf *scratch, tsq_memo *memo) {
    ev e;
    e.env = env;
    e.memo = memo;
    e.prov = tsq_env_provider(env);
    e.trace = trace;
    e.tud = ud;
    e.err = err;
    e.ctx = tsq_env_ctx(env);
    if (scratch) e.x1 = *scratch;
    else tsq_buf_init(&e.x1, e.ctx);
    tsq_buf_init(&e.why, e.ctx);
    tsq_buf_init(&e.text, e.ctx);
    int r = 1;
    tsq_status st = p->n ? run(&e, p->ops, 0, 1, &r) : TSQ_OK;
    if (!st && (e.x1.failed || e.why.failed || e.text.failed)) st = tsq_err(err, TSQ_ENOMEM, "out of memory");
    if (scratch) {
        e.x1.failed = 0;
        *scratch = e.x1;
    } else {
        tsq_buf_free(&e.x1);
    }
    tsq_buf_free(&e.why);
    tsq_buf_free(&e.text);
    *result = st ? 0 : r;
    return st;
}

/* ------------------------------------------------------------------ public */

tsq_status tsq_cond_eval(const tsq_cond *c, tsq_env *env, int *result, tsq_trace_fn trace, void *trace_ud,
                         tsq_error *err) {
    if (!c || !env || !result) return tsq_err(err, TSQ_EINVAL, "condition, environment and result must not be null");
    *result = 0;
    comp k;
    comp_init(&k, c->ctx, err);
    tsq_status st;
    if (c->kind == TSQ_C_CONDITION) {
        st = compile_cond(&k, c, 0);
    } else { /* an operand alone: the only operand of a condition */
        cop *top = emit(&k);
        top->kind = O_AND;
        top->flags = OF_TOP;
        st = compile_cond(&k, c, 1);
        k.ops[0].end = (uint32_t)k.n;
    }
    struct tsq_cprog *p = finish(&k, st);
    if (!p) return err ? err->code : TSQ_ENOMEM;
    st = run_prog(p, env, result, trace, trace_ud, err, NULL, NULL);
    prog_free(c->ctx, p);
    return st;
}

/* Steps without a condition share this one (never written to). */
static const struct tsq_ccache cc_none = {CC_NONE, 0, NULL, NULL, TSQ_OK, NULL};

void tsq_ccache_free(tsq_ctx *ctx, struct tsq_ccache *cc) {
    if (!cc || cc == &cc_none) return;
    tsq_cond_free(cc->cond);
    tsq_strfree(ctx, cc->message);
    tsq_ctx_alloc(ctx, cc, cc->size, 0);
}

/* one block: the cache, then the program */
static struct tsq_ccache *cache_of(const tsq_node *n) {
    if (n->cc) return n->cc;
    tsq_ctx *ctx = n->ctx;
    const tsq_node *e = tsq_cond_elem(n);
    struct tsq_ccache *cc;
    if (!e) {
        cc = (struct tsq_ccache *)&cc_none;
    } else {
        tsq_error err;
        comp k;
        comp_init(&k, ctx, &err);
        tsq_status st = compile_xml(&k, e, 0, 1);
        size_t size = sizeof *cc + (st ? 0 : sizeof(struct tsq_cprog) + k.n * sizeof(cop));
        cc = tsq_ctx_alloc(ctx, NULL, 0, size);
        if (cc) {
            memset(cc, 0, sizeof *cc);
            cc->size = size;
            if (!st) {
                cc->state = CC_PROG;
                cc->prog = (struct tsq_cprog *)(cc + 1);
                cc->prog->n = k.n;
                memcpy(cc->prog->ops, k.ops, k.n * sizeof(cop));
            } else {
                cc->state = CC_BAD;
                cc->code = err.code;
                cc->message = tsq_strndup(ctx, err.message, strlen(err.message));
            }
        }
        if (k.ops != k.local) tsq_ctx_alloc(ctx, k.ops, k.cap * sizeof(cop), 0);
        if (!cc) return NULL;
    }
    ((tsq_node *)n)->cc = cc; /* a cache: logically const */
    return cc;
}

tsq_status tsq_node_eval_fast(const tsq_node *n, tsq_env *env, int *result, tsq_error *err, tsq_buf *scratch,
                              tsq_memo *memo) {
    *result = 1;
    if (n->type != N_GROUP && n->type != N_ACTION) return TSQ_OK;
    struct tsq_ccache *cc = cache_of(n);
    if (!cc) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    if (cc->state == CC_NONE) return TSQ_OK;
    if (cc->state == CC_BAD) {
        *result = 0;
        return tsq_err(err, cc->code, "%s", cc->message ? cc->message : "the condition can not be read");
    }
    return run_prog(cc->prog, env, result, NULL, NULL, err, scratch, memo);
}

tsq_status tsq_node_eval_condition(const tsq_node *n, tsq_env *env, int *result, tsq_trace_fn trace, void *trace_ud,
                                   tsq_error *err) {
    if (!n || !env || !result) return tsq_err(err, TSQ_EINVAL, "step, environment and result must not be null");
    tsq_status st;
    if (trace && (n->type == N_GROUP || n->type == N_ACTION)) { /* traces name each operand: the parsed tree */
        struct tsq_ccache *cc = cache_of(n);
        if (!cc) return tsq_err(err, TSQ_ENOMEM, "out of memory");
        if (cc->state == CC_PROG && !cc->cond) tsq_cond_from_xml(n->ctx, tsq_cond_elem(n), &cc->cond, NULL);
        *result = 1;
        st = cc->state == CC_PROG && cc->cond ? tsq_cond_eval(cc->cond, env, result, trace, trace_ud, err)
                                              : tsq_node_eval_fast(n, env, result, err, NULL, NULL);
    } else {
        st = tsq_node_eval_fast(n, env, result, err, NULL, NULL);
    }
    if (st) {
        *result = 0;
        tsq_err_step(err, n);
    }
    return st;
}
