/* env.c - environments: task sequence variables (case-insensitive names, insertion
 * order kept) and the host's fact provider. */
#include "cond.h"

typedef struct env_var {
    char *name;  /* as first set */
    char *value;
    size_t nlen, vlen;
    uint32_t hash;
} env_var;

struct tsq_env {
    tsq_ctx *ctx;
    env_var *vars; /* insertion order; deleted ones have name NULL until compacted */
    size_t n, cap;
    size_t dead;   /* deleted entries among the n */
    uint32_t *slots; /* open addressing: index + 1 into vars, 0 = empty */
    size_t nslots;   /* power of two */
    tsq_provider prov;
    int fact_cache; /* tsq_env_set_fact_cache */
};

static int fold(int ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

/* FNV-1a over ASCII-folded bytes */
uint32_t tsq_name_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)fold((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h;
}

static int name_eq(const char *a, size_t an, const char *b, size_t bn) {
    if (an != bn) return 0;
    if (memcmp(a, b, an) == 0) return 1; /* names are mostly spelled the same way */
    for (size_t i = 0; i < an; i++)
        if (fold((unsigned char)a[i]) != fold((unsigned char)b[i])) return 0;
    return 1;
}

tsq_env *tsq_env_new(tsq_ctx *ctx) {
    if (!ctx) return NULL;
    tsq_env *e = tsq_ctx_alloc(ctx, NULL, 0, sizeof *e);
    if (!e) return NULL;
    memset(e, 0, sizeof *e);
    e->ctx = ctx;
    return e;
}

void tsq_env_free(tsq_env *e) {
    if (!e) return;
    tsq_ctx *ctx = e->ctx;
    for (size_t i = 0; i < e->n; i++) {
        tsq_strfree(ctx, e->vars[i].name);
        tsq_strfree(ctx, e->vars[i].value);
    }
    if (e->vars) tsq_ctx_alloc(ctx, e->vars, e->cap * sizeof *e->vars, 0);
    if (e->slots) tsq_ctx_alloc(ctx, e->slots, e->nslots * sizeof *e->slots, 0);
    tsq_ctx_alloc(ctx, e, sizeof *e, 0);
}

/* Puts every live variable into the slots (their number unchanged). */
static void reslot(tsq_env *e) {
    memset(e->slots, 0, e->nslots * sizeof *e->slots);
    size_t m = e->nslots - 1;
    for (size_t i = 0; i < e->n; i++) {
        if (!e->vars[i].name) continue;
        size_t j = e->vars[i].hash & m;
        while (e->slots[j]) j = (j + 1) & m;
        e->slots[j] = (uint32_t)(i + 1);
    }
}

/* Slots for `want` variables at most half full; 0 when out of memory. */
static int rehash(tsq_env *e, size_t want) {
    size_t ns = 16;
    while (ns < want * 2) ns *= 2;
    if (ns != e->nslots) {
        uint32_t *s = tsq_ctx_alloc(e->ctx, NULL, 0, ns * sizeof *s);
        if (!s) return 0;
        if (e->slots) tsq_ctx_alloc(e->ctx, e->slots, e->nslots * sizeof *e->slots, 0);
        e->slots = s;
        e->nslots = ns;
    }
    reslot(e);
    return 1;
}

static size_t find_slot(const tsq_env *e, const char *name, size_t n, uint32_t h) {
    size_t m = e->nslots - 1, j = h & m;
    while (e->slots[j]) {
        const env_var *v = &e->vars[e->slots[j] - 1];
        if (v->hash == h && name_eq(v->name, v->nlen, name, n)) break;
        j = (j + 1) & m;
    }
    return j;
}

const char *tsq_env_lookup(const tsq_env *e, const char *name, size_t n, uint32_t h, size_t *len) {
    if (!e->n) return NULL;
    size_t j = find_slot(e, name, n, h);
    if (!e->slots[j]) return NULL;
    const env_var *v = &e->vars[e->slots[j] - 1];
    if (len) *len = v->vlen;
    return v->value;
}

/* Closes the holes deleted variables left, keeping the order; rebuilds the slots. */
static void compact(tsq_env *e) {
    size_t k = 0;
    for (size_t i = 0; i < e->n; i++)
        if (e->vars[i].name) e->vars[k++] = e->vars[i];
    e->n = k;
    e->dead = 0;
    if (e->slots) reslot(e);
}

/* Empties slot j without a rehash: later entries of its probe run move back into the gap
 * (deletion for linear probing), so deleting costs what a lookup does. */
static void slot_delete(tsq_env *e, size_t j) {
    size_t m = e->nslots - 1, gap = j, k = j;
    e->slots[gap] = 0;
    for (;;) {
        k = (k + 1) & m;
        if (!e->slots[k]) return;
        size_t home = e->vars[e->slots[k] - 1].hash & m;
        /* the entry at k may fill the gap unless its home lies cyclically in (gap, k] */
        int stays = gap <= k ? (home > gap && home <= k) : (home > gap || home <= k);
        if (stays) continue;
        e->slots[gap] = e->slots[k];
        e->slots[k] = 0;
        gap = k;
    }
}

tsq_status tsq_env_set(tsq_env *e, const char *name, const char *value) {
    if (!e || !name || !*name) return TSQ_EINVAL;
    size_t n = strlen(name), vl = value ? strlen(value) : 0;
    uint32_t h = tsq_name_hash(name, n);
    size_t j = e->n ? find_slot(e, name, n, h) : 0;
    if (e->n && e->slots[j]) {
        size_t i = e->slots[j] - 1;
        env_var *v = &e->vars[i];
        if (vl == 0) { /* "" deletes: the entry stays as a hole until compaction */
            slot_delete(e, j);
            tsq_strfree(e->ctx, v->name);
            tsq_strfree(e->ctx, v->value);
            v->name = v->value = NULL;
            e->dead++;
            while (e->n && !e->vars[e->n - 1].name) { /* holes at the end go at once */
                e->n--;
                e->dead--;
            }
            return TSQ_OK;
        }
        char *nv = tsq_strndup(e->ctx, value, vl);
        if (!nv) return TSQ_ENOMEM;
        tsq_strfree(e->ctx, v->value);
        v->value = nv;
        v->vlen = vl;
        return TSQ_OK;
    }
    if (vl == 0) return TSQ_OK;
    if (e->dead && (e->n == e->cap || (e->n + 1) * 2 > e->nslots)) compact(e);
    if (e->n == e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 16;
        env_var *nv = tsq_ctx_alloc(e->ctx, e->vars, e->cap * sizeof *nv, nc * sizeof *nv);
        if (!nv) return TSQ_ENOMEM;
        e->vars = nv;
        e->cap = nc;
    }
    env_var *v = &e->vars[e->n];
    v->name = tsq_strndup(e->ctx, name, n);
    v->value = tsq_strndup(e->ctx, value, vl);
    if (!v->name || !v->value) {
        tsq_strfree(e->ctx, v->name);
        tsq_strfree(e->ctx, v->value);
        return TSQ_ENOMEM;
    }
    v->nlen = n;
    v->vlen = vl;
    v->hash = h;
    e->n++;
    if (e->n * 2 > e->nslots) {
        if (!rehash(e, e->n)) {
            e->n--;
            tsq_strfree(e->ctx, v->name);
            tsq_strfree(e->ctx, v->value);
            return TSQ_ENOMEM;
        }
    } else {
        size_t m = e->nslots - 1, k = h & m;
        while (e->slots[k]) k = (k + 1) & m;
        e->slots[k] = (uint32_t)e->n;
    }
    return TSQ_OK;
}

const char *tsq_env_get(const tsq_env *e, const char *name) {
    if (!e || !name) return NULL;
    size_t n = strlen(name);
    return tsq_env_lookup(e, name, n, tsq_name_hash(name, n), NULL);
}

size_t tsq_env_count(const tsq_env *e) { return e ? e->n - e->dead : 0; }

/* Reading by position closes the holes first (the order is the same, so it stays a read). */
const char *tsq_env_name_at(const tsq_env *e, size_t i) {
    if (!e) return NULL;
    if (e->dead) compact((tsq_env *)e);
    return i < e->n ? e->vars[i].name : NULL;
}

tsq_env *tsq_env_clone(const tsq_env *e) {
    if (!e) return NULL;
    tsq_env *c = tsq_env_new(e->ctx);
    if (!c) return NULL;
    c->prov = e->prov;
    c->fact_cache = e->fact_cache;
    for (size_t i = 0; i < e->n; i++)
        if (e->vars[i].name && tsq_env_set(c, e->vars[i].name, e->vars[i].value)) {
            tsq_env_free(c);
            return NULL;
        }
    return c;
}

void tsq_env_set_provider(tsq_env *e, const tsq_provider *p) {
    if (!e) return;
    if (p)
        e->prov = *p;
    else
        memset(&e->prov, 0, sizeof e->prov);
}

const tsq_provider *tsq_env_provider(const tsq_env *e) { return &e->prov; }

void tsq_env_set_fact_cache(tsq_env *e, int on) {
    if (e) e->fact_cache = on != 0;
}

int tsq_env_fact_cache(const tsq_env *e) { return e->fact_cache; }

tsq_ctx *tsq_env_ctx(const tsq_env *e) { return e->ctx; }

/* %NAME% is replaced by the variable's value when it is defined; anything else (an
 * undefined name, a lone %, %%) is copied as written. */
const char *tsq_env_expand(const tsq_env *e, const char *text, tsq_buf *out) {
    out->len = 0;
    tsq_buf_add(out, "", 0);
    if (!text) return out->data;
    const char *p = text;
    while (*p) {
        const char *a = strchr(p, '%');
        if (!a) {
            tsq_buf_adds(out, p);
            break;
        }
        const char *b = strchr(a + 1, '%');
        if (!b) {
            tsq_buf_adds(out, p);
            break;
        }
        tsq_buf_add(out, p, (size_t)(a - p));
        size_t n = (size_t)(b - a - 1), vl = 0;
        const char *v = n && e ? tsq_env_lookup(e, a + 1, n, tsq_name_hash(a + 1, n), &vl) : NULL;
        if (v) {
            tsq_buf_add(out, v, vl);
            p = b + 1;
        } else { /* keep the first %, rescan from the second: it may open a reference */
            tsq_buf_add(out, a, (size_t)(b - a));
            p = b;
        }
    }
    return out->data;
}
