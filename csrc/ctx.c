/* ctx.c - the context: allocator, interned names, errors, buffers, source arenas. */
#include "tsq_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static const char *const atom_names[A_COUNT] = {
    "sequence", "group", "step", "subtasksequence", "action", "defaultVarList",
    "variable", "condition", "expression", "operator", "osConditionGroup",
    "osExpressionGroup", "platformKey", "globalVarList", "referenceList", "reference",
    "name", "description", "type", "disable", "continueOnError", "timeout", "runIn",
    "successCodeList", "retryCount", "runFromNet", "property", "hidden", "version",
    "INSTANCE", "PROPERTY", "VALUE", "NAME", "SmsTaskSequencePackage", "SequenceData",
};

const char *tsq_version(void) { return TSQ_VERSION; }

static void *default_alloc(void *ud, void *p, size_t osize, size_t nsize) {
    TSQ_UNUSED(ud);
    TSQ_UNUSED(osize);
    if (nsize == 0) {
        free(p);
        return NULL;
    }
    return p ? realloc(p, nsize) : malloc(nsize);
}

#define SMALL_MAX 1024
#define SMALL_CHUNK 16384

/* Blocks up to 1024 bytes come from the small-block lists (tsq_small_alloc), larger ones
 * from the allocator; a block moves between the two when a resize crosses that size. */
void *tsq_ctx_alloc(tsq_ctx *ctx, void *p, size_t osize, size_t nsize) {
    if (nsize == 0) {
        tsq_small_free(ctx, p, osize);
        return NULL;
    }
    if (!p) return tsq_small_alloc(ctx, nsize);
    if (osize > SMALL_MAX && nsize > SMALL_MAX) return ctx->alloc(ctx->ud, p, osize, nsize);
    if (ctx->pool && osize && osize <= SMALL_MAX && nsize <= SMALL_MAX && (osize - 1) >> 4 == (nsize - 1) >> 4)
        return p; /* the same size class */
    void *q = tsq_small_alloc(ctx, nsize);
    if (!q) return NULL;
    memcpy(q, p, osize < nsize ? osize : nsize);
    tsq_small_free(ctx, p, osize);
    return q;
}

void *tsq_malloc(tsq_ctx *ctx, size_t size) { return tsq_small_alloc(ctx, size ? size : 1); }
void *tsq_realloc(tsq_ctx *ctx, void *ptr, size_t osize, size_t nsize) {
    return tsq_ctx_alloc(ctx, ptr, ptr ? osize : 0, nsize);
}
void tsq_free(tsq_ctx *ctx, void *ptr, size_t size) { tsq_small_free(ctx, ptr, size ? size : 1); }

/* ------------------------------------------------------------------ small blocks */

void *tsq_small_alloc(tsq_ctx *ctx, size_t size) {
    if (size == 0 || size > SMALL_MAX || !ctx->pool) return ctx->alloc(ctx->ud, NULL, 0, size ? size : 1);
    size_t k = (size - 1) >> 4, bytes = (k + 1) << 4;
    void *p = ctx->small_free[k];
    if (p) {
        void *next = *(void **)p;
        ctx->small_free[k] = next;
        /* the list runs through blocks freed in bulk (a collection, a document), long out
         * of the cache by the time they come back: fetch the next one ahead of its use */
        if (next) __builtin_prefetch(next, 1);
        return p;
    }
    if (ctx->small_left < bytes) {
        /* the rest of the old chunk goes to the free lists; then a new chunk */
        while (ctx->small_left >= 16) {
            size_t j = ctx->small_left >= SMALL_MAX ? SMALL_MAX / 16 - 1 : (ctx->small_left >> 4) - 1;
            *(void **)ctx->small_at = ctx->small_free[j];
            ctx->small_free[j] = ctx->small_at;
            ctx->small_at += (j + 1) << 4;
            ctx->small_left -= (j + 1) << 4;
        }
        tsq_slab *c = ctx->alloc(ctx->ud, NULL, 0, sizeof *c + SMALL_CHUNK);
        if (!c) return NULL;
        c->next = ctx->small_chunks;
        c->count = SMALL_CHUNK;
        ctx->small_chunks = c;
        ctx->small_at = (char *)(c + 1);
        ctx->small_left = SMALL_CHUNK;
    }
    p = ctx->small_at;
    ctx->small_at += bytes;
    ctx->small_left -= bytes;
    return p;
}

void tsq_small_free(tsq_ctx *ctx, void *p, size_t size) {
    if (!p) return;
    if (size == 0 || size > SMALL_MAX || !ctx->pool) {
        ctx->alloc(ctx->ud, p, size ? size : 1, 0);
        return;
    }
    size_t k = (size - 1) >> 4;
    *(void **)p = ctx->small_free[k];
    ctx->small_free[k] = p;
}

/* Strings from tsq_stralloc and tsq_strndup carry their size in front so they can be
 * freed exactly. tsq_stralloc: room for n bytes and a NUL, which it writes at [n]. */
char *tsq_stralloc(tsq_ctx *ctx, size_t n) {
    size_t *p = tsq_small_alloc(ctx, sizeof(size_t) + n + 1);
    if (!p) return NULL;
    *p = n + 1 + sizeof(size_t);
    char *d = (char *)(p + 1);
    d[n] = '\0';
    return d;
}

char *tsq_strndup(tsq_ctx *ctx, const char *s, size_t n) {
    char *d = tsq_stralloc(ctx, n);
    if (d && n) memcpy(d, s, n);
    return d;
}

void tsq_strfree(tsq_ctx *ctx, char *s) {
    if (!s) return;
    size_t *p = (size_t *)s - 1;
    tsq_small_free(ctx, p, *p);
}

/* ------------------------------------------------------------------ interning */

/* Eight bytes at a time (the class names are 40 long); the top bits mix best, and the
 * table takes the low ones, hence the last shift. */
static size_t hash_n(const char *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15u ^ (uint64_t)n, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
    }
    w = 0;
    for (size_t k = 0; i + k < n; k++) w |= (uint64_t)(unsigned char)s[i + k] << (8 * k);
    h = (h ^ w) * 0xff51afd7ed558ccdu;
    return (size_t)(h ^ (h >> 29));
}

static int intern_grow(tsq_ctx *ctx) {
    tsq_names *t = &ctx->names;
    size_t ncap = t->cap ? t->cap * 2 : 256;
    const char **ns = ctx->alloc(ctx->ud, NULL, 0, ncap * sizeof *ns);
    if (!ns) return 0;
    memset(ns, 0, ncap * sizeof *ns);
    for (size_t i = 0; i < t->cap; i++) {
        const char *s = t->slots[i];
        if (!s) continue;
        size_t j = hash_n(s, tsq_name_len(s)) & (ncap - 1);
        while (ns[j]) j = (j + 1) & (ncap - 1);
        ns[j] = s;
    }
    if (t->slots) ctx->alloc(ctx->ud, (void *)t->slots, t->cap * sizeof *t->slots, 0);
    t->slots = ns;
    t->cap = ncap;
    return 1;
}

const char *tsq_intern_n(tsq_ctx *ctx, const char *s, size_t n) {
    tsq_names *t = &ctx->names;
    if ((t->count + 1) * 2 > t->cap && !intern_grow(ctx)) return NULL;
    size_t j = hash_n(s, n) & (t->cap - 1);
    for (;;) {
        const char *e = t->slots[j];
        if (!e) break;
        if (tsq_name_len(e) == n && memcmp(e, s, n) == 0) return e; /* slots come from tsq_strndup */
        j = (j + 1) & (t->cap - 1);
    }
    char *d = tsq_strndup(ctx, s, n);
    if (!d) return NULL;
    t->slots[j] = d;
    t->count++;
    return d;
}

const char *tsq_intern(tsq_ctx *ctx, const char *s) { return tsq_intern_n(ctx, s, strlen(s)); }

/* ------------------------------------------------------------------ context */

tsq_ctx *tsq_ctx_new(tsq_alloc_fn alloc, void *ud) {
    if (!alloc) alloc = default_alloc;
    tsq_ctx *ctx = alloc(ud, NULL, 0, sizeof *ctx);
    if (!ctx) return NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->alloc = alloc;
    ctx->ud = ud;
    tsq_buf_init(&ctx->scratch, ctx);
    /* TSQ_NO_POOL (for memory checkers such as valgrind): no slabs and no free lists, so
     * that every node and block is allocated and freed on its own and a use after free
     * or a leak shows up as one */
    const char *np = getenv("TSQ_NO_POOL");
    ctx->pool = !(np && *np && strcmp(np, "0") != 0);
    /* TSQ_READ_THREAD: 0 reads every document on the calling thread alone, 1 reads every
     * document in two halves where it can (for tests); unset: documents from 64 KiB up are
     * read in two halves where there are two CPUs or more (tsq_ctx_set_read_thread) */
    const char *rt = getenv("TSQ_READ_THREAD");
    ctx->read_thread = rt && *rt ? (strcmp(rt, "0") == 0 ? 0 : 1) : -1;
    tsq_ctx_set_limits(ctx, NULL, NULL);
    for (int i = 0; i < A_COUNT; i++) {
        ctx->atom[i] = tsq_intern(ctx, atom_names[i]);
        if (!ctx->atom[i]) {
            tsq_ctx_free(ctx);
            return NULL;
        }
    }
    return ctx;
}

void tsq_ctx_free(tsq_ctx *ctx) {
    if (!ctx) return;
    tsq_protos_free(ctx);
    tsq_spare_chunks_free(ctx);
    tsq_buf_free(&ctx->scratch);
    tsq_names *t = &ctx->names;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i]) tsq_strfree(ctx, (char *)t->slots[i]);
    if (t->slots) ctx->alloc(ctx->ud, (void *)t->slots, t->cap * sizeof *t->slots, 0);
    while (ctx->slabs) {
        tsq_slab *s = ctx->slabs;
        ctx->slabs = s->next;
        ctx->alloc(ctx->ud, s, sizeof *s + s->count * sizeof(tsq_node), 0);
    }
    while (ctx->small_chunks) {
        tsq_slab *c = ctx->small_chunks;
        ctx->small_chunks = c->next;
        ctx->alloc(ctx->ud, c, sizeof *c + c->count, 0);
    }
    ctx->alloc(ctx->ud, ctx, sizeof *ctx, 0);
}

void tsq_ctx_get_limits(const tsq_ctx *ctx, tsq_limits *out) { *out = ctx->limits; }

void tsq_ctx_exiting(tsq_ctx *ctx) {
    if (ctx && ctx->pool) ctx->exiting = 1;
}

void tsq_ctx_set_read_thread(tsq_ctx *ctx, int mode) {
    if (ctx) ctx->read_thread = mode < 0 ? -1 : mode > 0;
}

tsq_status tsq_ctx_set_limits(tsq_ctx *ctx, const tsq_limits *l, tsq_error *err) {
    tsq_limits d = {256, (uint64_t)1 << 30, (uint64_t)10000000, 64};
    if (l) {
        if (l->max_document > 0xFFFFFFFEu)
            return tsq_err(err, TSQ_EINVAL, "max_document can not exceed 4294967294 bytes");
        if (l->max_depth) d.max_depth = l->max_depth;
        if (l->max_document) d.max_document = l->max_document;
        if (l->max_text) d.max_text = l->max_text;
        if (l->max_cond_depth) d.max_cond_depth = l->max_cond_depth;
    }
    ctx->limits = d;
    return TSQ_OK;
}

/* ------------------------------------------------------------------ errors */

const char *tsq_status_name(tsq_status s) {
    switch (s) {
    case TSQ_OK: return "ok";
    case TSQ_ENOMEM: return "out of memory";
    case TSQ_EINVAL: return "invalid argument";
    case TSQ_EPARSE: return "parse error";
    case TSQ_EIO: return "i/o error";
    case TSQ_ELIMIT: return "limit exceeded";
    case TSQ_ENOTFOUND: return "not found";
    case TSQ_ETYPE: return "wrong type";
    case TSQ_EFACT: return "undescribed fact";
    case TSQ_EHANDLER: return "handler failed";
    case TSQ_ESTATE: return "bad state";
    }
    return "unknown status";
}

tsq_status tsq_err(tsq_error *err, tsq_status code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

const char *tsq_error_format(const tsq_error *err, char *buf, size_t size) {
    if (!size) return buf;
    buf[0] = '\0';
    if (!err) return buf;
    size_t n = 0;
#define ADD(...)                                                             \
    do {                                                                     \
        int k_ = snprintf(buf + n, n < size ? size - n : 0, __VA_ARGS__);   \
        if (k_ > 0) n += (size_t)k_;                                         \
    } while (0)
    if (err->file[0]) {
        ADD("%s:", err->file);
        if (err->line) ADD("%d:", err->line);
        if (err->line && err->column) ADD("%d:", err->column);
        ADD(" ");
    }
    if (err->step[0]) ADD("step \"%s\": ", err->step);
    ADD("%s", err->message[0] ? err->message : tsq_status_name(err->code));
#undef ADD
    return buf;
}

void tsq_err_step(tsq_error *err, const tsq_node *n) {
    if (!err || !n) return;
    tsq_buf b;
    tsq_buf_init(&b, n->ctx);
    tsq_node_path(n, &b);
    snprintf(err->step, sizeof err->step, "%s", b.data ? b.data : "");
    tsq_buf_free(&b);
}

/* ------------------------------------------------------------------ buffers */

void tsq_buf_init(tsq_buf *b, tsq_ctx *ctx) {
    b->ctx = ctx;
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

void tsq_buf_free(tsq_buf *b) {
    if (b->data) tsq_ctx_alloc(b->ctx, b->data, b->cap, 0);
    b->data = NULL;
    b->len = b->cap = 0;
}

int tsq_buf_reserve(tsq_buf *b, size_t n) {
    if (b->failed) return 0;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n + 1) ncap *= 2;
        char *d = tsq_ctx_alloc(b->ctx, b->data, b->cap, ncap); /* small buffers stay small blocks */
        if (!d) {
            b->failed = 1;
            return 0;
        }
        b->data = d;
        b->cap = ncap;
    }
    return 1;
}

void tsq_buf_add(tsq_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap && !tsq_buf_reserve(b, n)) return;
    if (b->failed) return;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tsq_buf_adds(tsq_buf *b, const char *s) { tsq_buf_add(b, s, strlen(s)); }

/* ------------------------------------------------------------------ sources */

struct tsq_chunk {
    tsq_chunk *next;
    size_t size;
    /* data follows */
};

#define CHUNK_MIN ((size_t)256 * 1024)
#define CHUNK_MAX ((size_t)8 << 20)
/* A context keeps the arena chunks of the last source it freed, up to SPARE_MAX bytes,
 * for the next document: a loop that loads, edits, saves and releases one document after
 * another then reuses the same memory instead of handing it back to malloc, which returns
 * chunks this large to the kernel (and the next document takes a page fault per page
 * again). One document's worth: a Lua host counts what the context holds as in use, and
 * more would only raise the peak of a loop whose collector frees documents a few at a
 * time. */
#define SPARE_MAX ((size_t)2 << 20)

static int chunk_standard(size_t size) {
    for (size_t s = CHUNK_MIN; s <= CHUNK_MAX; s *= 2)
        if (size == s) return 1;
    return 0;
}

/* Frees a source's chunks (newest, that is largest, first); as many as SPARE_MAX holds,
 * smallest first since a document asks for 256 KiB first, replace the spare ones. */
static void chunks_free(tsq_ctx *ctx, tsq_chunk *list) {
    if (!list) return;
    if (ctx->pool) tsq_spare_chunks_free(ctx);
    tsq_chunk *oldest = NULL;
    while (list) {
        tsq_chunk *c = list;
        list = c->next;
        c->next = oldest;
        oldest = c;
    }
    while (oldest) {
        tsq_chunk *c = oldest;
        oldest = c->next;
        if (ctx->pool && chunk_standard(c->size) && ctx->spare_bytes + c->size <= SPARE_MAX) {
            c->next = ctx->spare_chunks;
            ctx->spare_chunks = c;
            ctx->spare_bytes += c->size;
        } else {
            ctx->alloc(ctx->ud, c, sizeof *c + c->size, 0);
        }
    }
}

/* A chunk of exactly size bytes: a spare one, else a new one. */
static tsq_chunk *chunk_new(tsq_ctx *ctx, size_t size) {
    for (tsq_chunk **p = &ctx->spare_chunks; *p; p = &(*p)->next)
        if ((*p)->size == size) {
            tsq_chunk *c = *p;
            *p = c->next;
            ctx->spare_bytes -= size;
            return c;
        }
    tsq_chunk *c = ctx->alloc(ctx->ud, NULL, 0, sizeof *c + size);
    if (c) c->size = size;
    return c;
}

void tsq_spare_chunks_free(tsq_ctx *ctx) {
    while (ctx->spare_chunks) {
        tsq_chunk *c = ctx->spare_chunks;
        ctx->spare_chunks = c->next;
        ctx->alloc(ctx->ud, c, sizeof *c + c->size, 0);
    }
    ctx->spare_bytes = 0;
}

tsq_src *tsq_src_new(tsq_ctx *ctx, char *bytes, size_t len) {
    tsq_src *s = ctx->alloc(ctx->ud, NULL, 0, sizeof *s);
    if (!s) return NULL;
    s->ctx = ctx;
    s->bytes = bytes;
    s->len = len;
    s->refs = 1;
    s->chunks = NULL;
    s->at = NULL;
    s->left = 0;
    s->mapped = 0;
    return s;
}

void tsq_bytes_free(tsq_ctx *ctx, char *bytes, size_t len, int mapped) {
    if (!bytes) return;
    if (mapped) munmap(bytes, len);
    else tsq_free(ctx, bytes, len + 1);
}

void tsq_src_ref(tsq_src *s) { s->refs++; }

void tsq_src_unref(tsq_src *s) { tsq_src_unref_n(s, 1); }

void tsq_src_unref_n(tsq_src *s, size_t n) {
    if (!s || !n || (s->refs -= n)) return;
    tsq_ctx *ctx = s->ctx;
    chunks_free(ctx, s->chunks);
    s->chunks = NULL;
    tsq_bytes_free(ctx, s->bytes, s->len, s->mapped);
    ctx->alloc(ctx->ud, s, sizeof *s, 0);
}

void tsq_src_adopt(tsq_src *s, tsq_src *from) {
    if (!from->chunks) return;
    if (!s->chunks) {
        s->chunks = from->chunks;
        s->at = from->at;
        s->left = from->left;
    } else {
        tsq_chunk *t = s->chunks;
        while (t->next) t = t->next;
        t->next = from->chunks;
    }
    from->chunks = NULL;
    from->at = NULL;
    from->left = 0;
}

void tsq_src_drop(tsq_src *s) {
    chunks_free(s->ctx, s->chunks);
    s->chunks = NULL;
    s->at = NULL;
    s->left = 0;
}

/* The slow path of tsq_src_arena: a new chunk (size is rounded already). */
void *tsq_src_arena_grow(tsq_src *s, size_t size) {
    tsq_chunk *c = s->chunks;
    /* chunks grow with the document: 256 KiB, then doubling up to 8 MiB; a request
     * larger than a quarter of that gets a chunk of its own */
    size_t grow = !c ? CHUNK_MIN : c->size < CHUNK_MAX ? c->size * 2 : CHUNK_MAX;
    int own = size > grow / 4;
    size_t cs = own ? size : grow;
    c = chunk_new(s->ctx, cs);
    if (!c) return NULL;
    if (own && s->chunks) { /* keep the current chunk for small requests */
        c->next = s->chunks->next;
        s->chunks->next = c;
        return c + 1;
    }
    c->next = s->chunks;
    s->chunks = c;
    s->at = (char *)(c + 1) + size;
    s->left = cs - size;
    return c + 1;
}
