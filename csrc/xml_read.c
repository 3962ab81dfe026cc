/* xml_read.c - documents in: libxml2's SAX2 push parser straight into the tree.
 *
 * Each element records where it stands in the source (start of the start tag, end of
 * the start tag, end of the element) so that the writer can copy unchanged parts back
 * byte for byte. Attributes are decoded from the raw start tag, which libxml2 has
 * already checked, so their order, namespace declarations included, is the source's.
 *
 * Safety: no DTD is accepted (a DOCTYPE stops the parse: that closes entity expansion,
 * external entities and external DTDs at once), no network, no file other than the one
 * named, depth and sizes limited by tsq_limits. */
#include "tsq_int.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static int two_cpus; /* a second parser only pays where it runs beside the first */
static void xml_init(void) {
    xmlInitParser();
    two_cpus = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
}
void tsq_xml_init(void) { pthread_once(&xml_once, xml_init); }

typedef struct rd {
    tsq_ctx *ctx;
    xmlParserCtxtPtr px;
    tsq_src *src;
    const char *bytes; /* src->bytes */
    size_t len;
    const char *name;  /* for errors */
    tsq_node *root, *cur;
    int depth;
    uint32_t text_start;  /* source offset where pending text began */
    /* Pending character data (decoded): written at the free end of the arena while it
     * fits (ta_len bytes at src->at), where it becomes the node's text without a copy;
     * nothing else takes arena memory until it is taken (take_text). When it does not
     * fit, it moves to `text`, which then holds all of it. */
    size_t ta_len;
    tsq_buf text;
    int text_cdata;       /* pending text includes a CDATA section */
    size_t nodes;         /* nodes created in the arena (each holds a src reference) */
    tsq_attr *tmp;        /* scratch for attributes of one start tag */
    size_t tmpcap;
    /* libxml2 hands every name over as a pointer into its dictionary, the same pointer
     * for the same name: this maps those pointers to our interned names without hashing */
    struct { const xmlChar *key; const char *name; } names[256];
    int failed;
    tsq_error *err;
    int line, col;        /* position of our own error */
    /* A document read in two halves by two parsers (see "two parsers" below): */
    tsq_src *nsrc;        /* the source the nodes point to (src is then a half's arena) */
    pthread_mutex_t *lock; /* held around every use of the context (names, allocator) */
    uint32_t cut;         /* first half: the end tags after this offset are the closing ones */
    int synth;            /* second half: start tags of the opening prefix still to come */
    int nsynth;           /* second half: nodes made for the prefix (each an open element) */
    const char *prefix;   /* second half: the opening prefix (its offsets are the nodes') */
    const uint32_t *synth_end; /* the ends of its start tags */
    tsq_node **synth_nodes;
    int *stop;            /* either half: set when the other failed (atomic) */
} rd;

/* The offset in the source where libxml2 stands: what xmlByteConsumed computes, read from
 * the input directly on this hot path (twice per element) when no encoder is involved,
 * which is always so for the UTF-8 documents this reader accepts. */
static uint32_t pos_now(rd *r) {
    xmlParserInputPtr in = r->px->input;
    long p;
    if (in && in->base && in->cur && !(in->buf && in->buf->encoder))
        p = (long)in->consumed + (long)(in->cur - in->base);
    else
        p = xmlByteConsumed(r->px);
    return p < 0 ? 0 : (uint32_t)p;
}


static void fail_at(rd *r, tsq_status code, uint32_t pos, const char *msg) {
    if (r->failed) return;
    r->failed = 1;
    int line = 1, col = 1;
    if (pos <= r->len) { /* count lines up to pos */
        for (uint32_t i = 0; i < pos; i++) {
            if (r->bytes[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)r->bytes[i] & 0xC0) != 0x80) {
                col++;
            }
        }
    }
    if (r->err) {
        r->err->line = line;
        r->err->column = col;
        tsq_err(r->err, code, "%s", msg);
    }
    xmlStopParser(r->px);
}

static void on_error(void *ud, xmlErrorPtr e) {
    rd *r = ud;
    if (!e || e->level == XML_ERR_WARNING || r->failed) return;
    r->failed = 1;
    if (r->err) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", e->message ? e->message : "malformed document");
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
        if (msg[0] >= 'A' && msg[0] <= 'Z' && !(msg[1] >= 'A' && msg[1] <= 'Z')) msg[0] = (char)(msg[0] - 'A' + 'a');
        r->err->line = e->line;
        r->err->column = e->int2;
        tsq_err(r->err, TSQ_EPARSE, "%s", msg);
    }
}

static void on_subset(void *ud, const xmlChar *name, const xmlChar *ext, const xmlChar *sys) {
    rd *r = ud;
    TSQ_UNUSED(name);
    TSQ_UNUSED(ext);
    TSQ_UNUSED(sys);
    uint32_t p = pos_now(r);
    /* point at the start of the declaration */
    while (p > 0 && !(r->bytes[p] == '<' && r->bytes[p + 1] == '!')) p--;
    fail_at(r, TSQ_EPARSE, p, "document type declarations (DOCTYPE) are not allowed in task sequences");
}

static xmlEntityPtr on_entity(void *ud, const xmlChar *name) {
    TSQ_UNUSED(ud);
    TSQ_UNUSED(name);
    return NULL;
}

/* The context (its names and its allocator) is used by one thread at a time: when two
 * parsers build at once, each takes the lock around it. */
static void rd_lock(rd *r) {
    if (r->lock) pthread_mutex_lock(r->lock);
}
static void rd_unlock(rd *r) {
    if (r->lock) pthread_mutex_unlock(r->lock);
}

static void *arena_slow(rd *r, size_t size) {
    rd_lock(r);
    void *p = tsq_src_arena_grow(r->src, size);
    rd_unlock(r);
    return p;
}
/* tsq_src_arena for the reader: a new chunk comes from the context under the lock */
static inline void *rd_arena(rd *r, size_t size) {
    size = (size + 7) & ~(size_t)7;
    void *p = tsq_src_arena_fit(r->src, size);
    return p ? p : arena_slow(r, size);
}

static const char *rd_intern_n(rd *r, const char *s, size_t n) {
    rd_lock(r);
    const char *name = tsq_intern_n(r->ctx, s, n);
    rd_unlock(r);
    return name;
}

/* tsq_node_link at the end, without its position hooks: the reader links only into nodes
 * it has just made, which the context's positions can not name, and the two halves'
 * builders must not touch the context */
static void link_last(tsq_node *parent, tsq_node *child) {
    child->parent = parent;
    child->next = NULL;
    child->prev = parent->last;
    if (parent->last) parent->last->next = child;
    else parent->first = child;
    parent->last = child;
}

static tsq_node *new_node(rd *r, tsq_ntype type, const char *name) {
    tsq_node *n = rd_arena(r, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->ctx = r->ctx;
    n->type = (uint8_t)type;
    n->name = name;
    n->src = r->nsrc;
    n->flags = F_ARENA | F_RAW;
    r->nodes++;
    return n;
}

static char *arena_str(rd *r, const char *s, size_t n) {
    char *d = rd_arena(r, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static size_t pending_len(const rd *r) { return r->text.len ? r->text.len : r->ta_len; }

static void drop_text(rd *r) {
    r->text.len = 0;
    r->ta_len = 0;
    r->text_cdata = 0;
}

/* The pending text as an arena string (NUL-terminated), before any other arena use. */
static char *take_text(rd *r, uint32_t *len) {
    char *d;
    if (r->text.len) {
        d = arena_str(r, r->text.data, r->text.len);
        *len = (uint32_t)r->text.len;
    } else {
        size_t n = r->ta_len;
        char *at = r->src->at;
        /* at itself: add_text kept n + 1 <= left, and left is a multiple of the arena's
         * 8-byte rounding; were that ever not so, a new chunk comes back and the text is
         * copied from the old chunk's free end, which nothing has touched */
        d = rd_arena(r, n + 1);
        if (d && d != at) memcpy(d, at, n);
        if (d) d[n] = '\0';
        *len = (uint32_t)n;
    }
    r->text.len = 0;
    r->ta_len = 0;
    return d;
}

/* Pending text between child elements becomes a text node. */
static int flush_text_slow(rd *r, uint32_t end);
static inline int flush_text(rd *r, uint32_t end) {
    if (!r->text.len && !r->ta_len && end <= r->text_start) { /* nothing pending: the usual case */
        r->text_cdata = 0;
        return 1;
    }
    return flush_text_slow(r, end);
}

static int flush_text_slow(rd *r, uint32_t end) {
    if (!r->cur || (pending_len(r) == 0 && end <= r->text_start)) {
        drop_text(r);
        return 1;
    }
    uint32_t len;
    char *text = take_text(r, &len);
    tsq_node *t = text ? new_node(r, r->text_cdata ? N_CDATA : N_TEXT, NULL) : NULL;
    if (!t) return 0;
    t->text = text;
    t->text_len = len;
    t->s0 = t->s1 = r->text_start;
    t->s2 = end;
    link_last(r->cur, t);
    r->text_cdata = 0;
    return 1;
}

static int is_sp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The length of the name in the tag that starts at t ('<'). */
static size_t tag_name_len(const char *t) {
    size_t n = 1;
    while (!is_sp(t[n]) && t[n] != '>' && t[n] != '/') n++;
    return n - 1;
}

/* Decodes an attribute value: entity and character references, and the normalisation
 * of white space characters to spaces (a CR LF pair counts as one line end). */
static char *decode_attr(rd *r, const char *s, size_t n, uint32_t *outlen) {
    char *d = rd_arena(r, n + 1), *o = d;
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '&') {
            size_t j = i + 1;
            while (j < n && s[j] != ';') j++;
            const char *e = s + i + 1;
            size_t el = j - i - 1;
            if (el >= 2 && e[0] == '#') {
                unsigned long cp = el > 2 && (e[1] == 'x' || e[1] == 'X') ? strtoul(e + 2, NULL, 16) : strtoul(e + 1, NULL, 10);
                if (cp < 0x80) *o++ = (char)cp;
                else if (cp < 0x800) { *o++ = (char)(0xC0 | (cp >> 6)); *o++ = (char)(0x80 | (cp & 0x3F)); }
                else if (cp < 0x10000) { *o++ = (char)(0xE0 | (cp >> 12)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F)); }
                else { *o++ = (char)(0xF0 | (cp >> 18)); *o++ = (char)(0x80 | ((cp >> 12) & 0x3F)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F)); }
            } else if (el == 2 && e[0] == 'l' && e[1] == 't') *o++ = '<';
            else if (el == 2 && e[0] == 'g' && e[1] == 't') *o++ = '>';
            else if (el == 3 && memcmp(e, "amp", 3) == 0) *o++ = '&';
            else if (el == 4 && memcmp(e, "quot", 4) == 0) *o++ = '"';
            else if (el == 4 && memcmp(e, "apos", 4) == 0) *o++ = '\'';
            i = j;
        } else if (c == '\r') {
            *o++ = ' ';
            if (i + 1 < n && s[i + 1] == '\n') i++;
        } else if (c == '\n' || c == '\t') {
            *o++ = ' ';
        } else {
            *o++ = c;
        }
    }
    *o = '\0';
    *outlen = (uint32_t)(o - d);
    return d;
}

static tsq_ntype kind_of(rd *r, const char *name) {
    tsq_ctx *c = r->ctx;
    tsq_node *p = r->cur;
    if (name == c->atom[A_sequence] && (!p || p->name == c->atom[A_SequenceData])) return N_SEQUENCE;
    if (p && (p->type == N_SEQUENCE || p->type == N_GROUP)) {
        if (name == c->atom[A_group]) return N_GROUP;
        if (name == c->atom[A_step] || name == c->atom[A_subtasksequence]) return N_ACTION;
    }
    return N_ELEM;
}

/* Our interned name for a name from libxml2's dictionary. */
static const char *dict_name(rd *r, const xmlChar *key) {
    size_t h = (size_t)(((uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15u) >> 56); /* names sit byte-adjacent */
    if (r->names[h].key == key) return r->names[h].name;
    const char *name = rd_intern_n(r, (const char *)key, strlen((const char *)key));
    if (name) {
        r->names[h].key = key;
        r->names[h].name = name;
    }
    return name;
}

/* An attribute value as libxml2 decoded it. Without a DTD the only reference it leaves in
 * place is "&#38;" (how it passes an escaped '&' when it does not substitute entities). */
static char *copy_value(rd *r, const xmlChar *v, const xmlChar *end, uint32_t *outlen) {
    size_t n = (size_t)(end - v);
    char *d = rd_arena(r, n + 1);
    if (!d) return NULL;
    if (n <= 32) { /* most values: one pass, eight bytes at a time, no library calls */
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t x, y;
            memcpy(&x, v + i, 8);
            y = x ^ 0x2626262626262626ull; /* a '&' byte becomes 0 */
            if ((y - 0x0101010101010101ull) & ~y & 0x8080808080808080ull) break;
            memcpy(d + i, &x, 8);
        }
        while (i < n && v[i] != '&') d[i] = (char)v[i], i++;
        if (i == n) {
            d[n] = '\0';
            *outlen = (uint32_t)n;
            return d;
        }
    }
    const char *amp = memchr(v, '&', n);
    if (!amp) {
        memcpy(d, v, n);
        d[n] = '\0';
        *outlen = (uint32_t)n;
        return d;
    }
    char *o = d;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '&' && i + 4 < n && memcmp(v + i, "&#38;", 5) == 0) {
            *o++ = '&';
            i += 4;
        } else {
            *o++ = (char)v[i];
        }
    }
    *o = '\0';
    *outlen = (uint32_t)(o - d);
    return d;
}

static int grow_tmp(rd *r, size_t need) {
    if (need <= r->tmpcap) return 1;
    size_t nc = r->tmpcap ? r->tmpcap * 2 : 16;
    while (nc < need) nc *= 2;
    rd_lock(r);
    tsq_attr *t = tsq_ctx_alloc(r->ctx, r->tmp, r->tmpcap * sizeof *t, nc * sizeof *t);
    rd_unlock(r);
    if (!t) return 0;
    r->tmp = t;
    r->tmpcap = nc;
    return 1;
}

/* Attributes from the raw start tag [q, end): for elements with namespace declarations or
 * prefixed attributes, whose order libxml2 does not report as written. -1 on failure. */
static long raw_attrs(rd *r, const char *q, const char *end, uint32_t s0) {
    const char *b = r->bytes;
    size_t na = 0;
    for (;;) {
        while (q < end && is_sp(*q)) q++;
        if (q >= end) break;
        const char *an = q;
        while (q < end && *q != '=' && !is_sp(*q)) q++;
        const char *ane = q;
        while (q < end && *q != '"' && *q != '\'') q++;
        if (q >= end) break;
        char quote = *q++;
        const char *v = q;
        while (q < end && *q != quote) q++;
        if (!grow_tmp(r, na + 1)) return -1;
        if ((uint64_t)(q - v) > r->ctx->limits.max_text) {
            fail_at(r, TSQ_ELIMIT, (uint32_t)(v - b), "an attribute value exceeds the size limit");
            return -1;
        }
        tsq_attr *a = &r->tmp[na];
        if (!(a->name = rd_intern_n(r, an, (size_t)(ane - an)))) return -1;
        if (!(a->value = decode_attr(r, v, (size_t)(q - v), &a->len))) return -1;
        a->raw = (int16_t)(na < 32767 ? (int)na : -1);
        a->owned = 0;
        a->clean = 0;
        na++;
        q++;
        if (na >= UINT16_MAX) {
            fail_at(r, TSQ_ELIMIT, s0, "too many attributes on one element");
            return -1;
        }
    }
    return (long)na;
}

/* Second half: a start tag of the opening prefix, which stands for an element open where
 * the half begins. Its node is the first half's element's stand-in: its children and its
 * end go to that element, the node itself to nothing. */
static void on_start_open(rd *r, const xmlChar *local, const xmlChar *prefix) {
    int i = r->nsynth;
    uint32_t s0 = i ? r->synth_end[i - 1] : 0, s1 = r->synth_end[i];
    const char *name;
    if (!prefix) {
        name = dict_name(r, local);
    } else {
        name = rd_intern_n(r, r->prefix + s0 + 1, tag_name_len(r->prefix + s0));
    }
    tsq_node *n = name && ++r->depth <= (int)r->ctx->limits.max_depth ? new_node(r, kind_of(r, name), name) : NULL;
    if (!n) {
        fail_at(r, TSQ_ENOMEM, 0, "out of memory or too deep");
        return;
    }
    n->s0 = s0;
    n->s1 = s1;
    if (r->cur) link_last(r->cur, n);
    else r->root = n;
    r->cur = n;
    r->text_start = s1;
    r->synth_nodes[r->nsynth++] = n;
    r->synth--;
}

static void on_start(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                     int nns, const xmlChar **ns, int nattr, int ndef, const xmlChar **attrs) {
    rd *r = ud;
    TSQ_UNUSED(uri); TSQ_UNUSED(ns);
    if (r->failed) return;
    if (r->stop && __atomic_load_n(r->stop, __ATOMIC_RELAXED)) { /* the other half failed */
        r->failed = 1;
        xmlStopParser(r->px);
        return;
    }
    if (r->synth) {
        on_start_open(r, local, prefix);
        return;
    }
    uint32_t p = pos_now(r);
    const char *b = r->bytes;
    if (p >= r->len || !(b[p] == '>' || (b[p] == '/' && p + 1 < r->len && b[p + 1] == '>'))) {
        fail_at(r, TSQ_EPARSE, p, "internal error: lost the position of a start tag");
        return;
    }
    int empty = b[p] == '/';
    uint32_t s1 = p + (empty ? 2 : 1), s0 = p;
    /* text between markup holds no '<' (CDATA sections aside), so the tag starts at the
     * first '<' after the previous markup */
    const char *lt = NULL;
    if (r->cur && !r->text_cdata && r->text_start < p)
        lt = b[r->text_start] == '<' ? b + r->text_start /* no text before it (the usual case) */
                                     : memchr(b + r->text_start, '<', p - r->text_start);
    if (lt)
        s0 = (uint32_t)(lt - b);
    else
        while (s0 > 0 && b[s0] != '<') s0--;
    if (++r->depth > (int)r->ctx->limits.max_depth) {
        char msg[80];
        snprintf(msg, sizeof msg, "elements nested deeper than the limit of %u", r->ctx->limits.max_depth);
        fail_at(r, TSQ_ELIMIT, s0, msg);
        return;
    }
    if (!flush_text(r, s0)) goto oom;
    const char *q = b + s0 + 1, *end = b + p;
    const char *name;
    if (!prefix) {
        name = dict_name(r, local);
    } else {
        const char *nm = q;
        while (q < end && !is_sp(*q)) q++;
        name = rd_intern_n(r, nm, (size_t)(q - nm));
    }
    if (!name) goto oom;
    long na = 0;
    tsq_attr *direct = NULL; /* the attributes, when they were read into the arena */
    int plain = nns == 0 && ndef == 0;
    for (int i = 0; plain && i < nattr; i++)
        if (attrs[i * 5 + 1]) plain = 0;
    if (plain && nattr > 0) {
        /* libxml2 reports unprefixed attributes decoded, in the order written */
        if (nattr >= UINT16_MAX) {
            fail_at(r, TSQ_ELIMIT, s0, "too many attributes on one element");
            return;
        }
        /* straight into the arena: the attributes are known before the node is made */
        if (!(direct = rd_arena(r, (size_t)nattr * sizeof *direct))) goto oom;
        for (int i = 0; i < nattr; i++) {
            const xmlChar *v = attrs[i * 5 + 3], *ve = attrs[i * 5 + 4];
            if ((uint64_t)(ve - v) > r->ctx->limits.max_text) {
                fail_at(r, TSQ_ELIMIT, s0, "an attribute value exceeds the size limit");
                return;
            }
            tsq_attr *a = &direct[i];
            if (!(a->name = dict_name(r, attrs[i * 5]))) goto oom;
            if (!(a->value = copy_value(r, v, ve, &a->len))) goto oom;
            a->raw = (int16_t)(i < 32767 ? i : -1);
            a->owned = 0;
            a->clean = 0;
        }
        na = nattr;
    } else if (!plain) {
        if (!prefix) q += strlen((const char *)local);
        if ((na = raw_attrs(r, q, end, s0)) < 0) {
            if (r->failed) return;
            goto oom;
        }
    }
    tsq_node *n = new_node(r, kind_of(r, name), name);
    if (!n) goto oom;
    if (na) {
        if (direct) {
            n->attrs = direct;
        } else {
            if (!(n->attrs = rd_arena(r, (size_t)na * sizeof *n->attrs))) goto oom;
            memcpy(n->attrs, r->tmp, (size_t)na * sizeof *n->attrs);
        }
        n->nattrs = n->cattrs = (uint16_t)na;
    }
    n->s0 = s0;
    n->s1 = s1;
    if (empty) n->flags |= F_EMPTY_TAG | F_SRC_EMPTY;
    if (r->cur) {
        link_last(r->cur, n);
        if (name == r->ctx->atom[A_condition]) r->cur->flags |= F_COND;
    } else {
        r->root = n;
    }
    r->cur = n;
    r->text_start = s1;
    return;
oom:
    fail_at(r, TSQ_ENOMEM, 0, "out of memory");
}

static void on_end(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri) {
    rd *r = ud;
    TSQ_UNUSED(local); TSQ_UNUSED(prefix); TSQ_UNUSED(uri);
    if (r->failed || !r->cur) return;
    tsq_node *n = r->cur;
    uint32_t p = pos_now(r);
    if (r->cut && p > r->cut) {
        /* first half: one of the end tags appended at the cut, which close what is open
         * there; the second half has the elements' real ends. Pending text is what a
         * single read flushes at the start tag that stands at the cut. */
        if (!flush_text(r, r->cut)) goto oom;
        drop_text(r);
        r->text_start = r->cut;
        r->cur = n->parent;
        r->depth--;
        return;
    }
    if (p == 0 || p > r->len || r->bytes[p - 1] != '>') {
        fail_at(r, TSQ_EPARSE, p, "internal error: lost the position of an end tag");
        return;
    }
    n->s2 = p;
    if (!(n->flags & F_EMPTY_TAG)) {
        /* "</name>" as written, unless there is space before the '>' */
        size_t nl = tsq_name_len(n->name);
        uint32_t etag = p - 1;
        if (p >= n->s1 + nl + 3 && r->bytes[p - nl - 3] == '<' && r->bytes[p - nl - 2] == '/')
            etag = (uint32_t)(p - nl - 3);
        else
            while (etag > n->s1 && r->bytes[etag] != '<') etag--;
        if (n->first) {
            if (!flush_text(r, etag)) goto oom;
        } else if (pending_len(r) || etag > n->s1) {
            if (!(n->text = take_text(r, &n->text_len))) goto oom;
            if (r->text_cdata) n->flags |= F_CDATA_TEXT;
        }
    }
    drop_text(r);
    r->cur = n->parent;
    r->text_start = p;
    r->depth--;
    return;
oom:
    fail_at(r, TSQ_ENOMEM, 0, "out of memory");
}

static void add_text(rd *r, const char *s, int len) {
    if (r->failed || !r->cur) return;
    if (pending_len(r) + (size_t)len > r->ctx->limits.max_text) {
        fail_at(r, TSQ_ELIMIT, pos_now(r), "a text node exceeds the size limit");
        return;
    }
    if (!r->text.len) {
        if (r->ta_len + (size_t)len < r->src->left) { /* room for the NUL as well */
            memcpy(r->src->at + r->ta_len, s, (size_t)len);
            r->ta_len += (size_t)len;
            return;
        }
        rd_lock(r);
        tsq_buf_add(&r->text, r->src->at, r->ta_len); /* from here on, all of it in `text` */
        rd_unlock(r);
        r->ta_len = 0;
    }
    rd_lock(r);
    tsq_buf_add(&r->text, s, (size_t)len);
    rd_unlock(r);
    if (r->text.failed) fail_at(r, TSQ_ENOMEM, 0, "out of memory");
}

static void on_chars(void *ud, const xmlChar *s, int len) { add_text(ud, (const char *)s, len); }

static void on_cdata(void *ud, const xmlChar *s, int len) {
    rd *r = ud;
    add_text(r, (const char *)s, len);
    r->text_cdata = 1;
}

/* Comments and processing instructions inside the root become nodes; outside it they
 * are part of the prolog or epilog, which are kept as bytes. */
static void markup_node(rd *r, tsq_ntype type, const char *text, const char *opener) {
    if (r->failed || !r->cur) return;
    uint32_t p = pos_now(r), s0 = p;
    size_t ol = strlen(opener);
    while (s0 > 0 && !(memcmp(r->bytes + s0, opener, ol) == 0)) s0--;
    if (!flush_text(r, s0)) goto oom;
    tsq_node *n = new_node(r, type, NULL);
    if (!n || !(n->text = arena_str(r, text, strlen(text)))) goto oom;
    n->text_len = (uint32_t)strlen(text);
    n->s0 = n->s1 = s0;
    n->s2 = p;
    link_last(r->cur, n);
    r->text_start = p;
    return;
oom:
    fail_at(r, TSQ_ENOMEM, 0, "out of memory");
}

static void on_comment(void *ud, const xmlChar *value) { markup_node(ud, N_COMMENT, (const char *)value, "<!--"); }

static void on_pi(void *ud, const xmlChar *target, const xmlChar *data) {
    rd *r = ud;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s%s", (const char *)target, data && *data ? " " : "", data ? (const char *)data : "");
    markup_node(r, N_PI, buf, "<?");
}

/* ------------------------------------------------------------------ encoding check */

static int check_encoding(const char *b, size_t n, char *why, size_t whysz) {
    if (n >= 2 && (((unsigned char)b[0] == 0xFE && (unsigned char)b[1] == 0xFF) ||
                   ((unsigned char)b[0] == 0xFF && (unsigned char)b[1] == 0xFE))) {
        snprintf(why, whysz, "UTF-16 documents are not supported: save it as UTF-8");
        return 0;
    }
    if (n >= 3 && (unsigned char)b[0] == 0xEF && (unsigned char)b[1] == 0xBB && (unsigned char)b[2] == 0xBF) {
        b += 3;
        n -= 3;
    }
    if (n < 5 || memcmp(b, "<?xml", 5) != 0) return 1;
    const char *e = memchr(b, '>', n < 512 ? n : 512);
    if (!e) return 1;
    for (const char *q = b; q + 8 < e; q++) {
        if (memcmp(q, "encoding", 8) != 0) continue;
        q += 8;
        while (q < e && (*q == ' ' || *q == '=' || *q == '\t')) q++;
        if (q >= e || (*q != '"' && *q != '\'')) return 1;
        char quote = *q++;
        const char *v = q;
        while (q < e && *q != quote) q++;
        size_t vl = (size_t)(q - v);
        static const char *const ok[] = {"utf-8", "utf8", "us-ascii", "ascii", NULL};
        for (int i = 0; ok[i]; i++)
            if (strlen(ok[i]) == vl && strncasecmp(v, ok[i], vl) == 0) return 1;
        snprintf(why, whysz, "unsupported encoding \"%.*s\": task sequence documents are read as UTF-8", (int)(vl < 40 ? vl : 40), v);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ parsers */

/* Feeds the document to libxml2 in chunks (the first bytes went in at creation); the
 * last one ends the parse unless more is to come. */
static void feed_part(rd *r, const char *bytes, size_t len, size_t first, int more) {
    const size_t chunk = 256 * 1024; /* (first <= len) */
    for (size_t off = first; !r->failed;) {
        size_t n = len - off < chunk ? len - off : chunk;
        int last = off + n >= len;
        int rc = xmlParseChunk(r->px, bytes + off, (int)n, last && !more);
        off += n;
        if (rc != 0 && !r->failed) {
            r->failed = 1;
            tsq_err(r->err, TSQ_EPARSE, "malformed document");
        }
        if (last) break;
    }
}

static void feed(rd *r, const char *bytes, size_t len, size_t first) { feed_part(r, bytes, len, first, 0); }

static void set_handlers(xmlSAXHandler *h) {
    memset(h, 0, sizeof *h);
    h->initialized = XML_SAX2_MAGIC;
    h->startElementNs = on_start;
    h->endElementNs = on_end;
    h->characters = on_chars;
    h->ignorableWhitespace = on_chars;
    h->cdataBlock = on_cdata;
    h->comment = on_comment;
    h->processingInstruction = on_pi;
    h->internalSubset = on_subset;
    h->getEntity = on_entity;
    h->getParameterEntity = on_entity;
    h->serror = on_error;
}

static xmlParserCtxtPtr new_parser(tsq_ctx *ctx, xmlSAXHandler *h, void *ud, const char *bytes, size_t len,
                                   const char *name) {
    xmlParserCtxtPtr px = xmlCreatePushParserCtxt(h, ud, bytes, (int)(len < 4 ? len : 4), name);
    if (!px) return NULL;
    /* libxml2's own limits (10,000,000 bytes of text, depth 256) fail fast on hostile
     * input; they are lifted only when the context's limits ask for more */
    int huge = ctx->limits.max_text > 10000000 || ctx->limits.max_depth > 256;
    /* the declaration names UTF-8 or ASCII (check_encoding): read as UTF-8 either way,
     * without an encoder, whose positions libxml2 2.9 reports wrong after a few KB */
    xmlCtxtUseOptions(px, XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_IGNORE_ENC | (huge ? XML_PARSE_HUGE : 0));
    return px;
}

/* ------------------------------------------------------------------ two parsers */

/* A document from SPLIT_MIN up is read by two parsers at once, each with a builder of its
 * own: the calling thread reads the first half, a helper thread the second. The cut is the
 * '<' of a start tag in element content past the middle, which a light scan on the helper
 * finds together with the start tags of the elements open there, while the calling thread
 * already reads up to the middle (with no cut, it reads on alone). libxml2 checks the
 * scan from both sides:
 * - the first parser reads the bytes up to the cut and then end tags for those elements:
 *   it succeeds only when the cut lies in element content with just those elements open,
 *   whose start tags are where the scan found them (the builder checks that);
 * - the second reads copies of those start tags (namespace declarations included) and then
 *   the bytes from the cut: it succeeds only when they go on a document open that way.
 * So every byte goes through libxml2 once, and the two succeed together only for a
 * document that one parser reads whole. The trees are joined: the second half's children
 * of each open element, and its end, go to the first half's element; its offsets, which
 * count from the copied start tags, are moved to the document's on the helper thread.
 * When anything fails (a malformed document, a limit, memory, a cut the scan got wrong)
 * both halves are dropped and the document is read again on one thread, so a bad document
 * gets the errors of a single read; a half that fails stops the other at its next start
 * tag. Both builders use the context (names, new arena chunks) under one lock; each half
 * has an arena of its own, which the source adopts.
 * Both parsers read UTF-8 whatever the declaration says (it may only say UTF-8 or ASCII),
 * so the second, which does not see it, reads as the first. */

#define SPLIT_MIN ((size_t)64 * 1024)
#define SPLIT_DEPTH 64 /* open elements at the cut, at most */

typedef struct halves {
    rd a, b; /* the halves' builders (a: a copy of the caller's, given back on success) */
    tsq_error aerr, berr;
    tsq_src asrc, bsrc; /* the halves' arenas */
    pthread_mutex_t lock;
    pthread_cond_t scanned_cond;
    int scanned;        /* the helper has looked for the cut (under the lock) */
    int stop;           /* a half failed: the other stops at its next start tag (atomic) */
    const char *bytes;
    size_t len, from;   /* the cut is looked for from `from`, up to which the first half reads
                         * without waiting */
    uint32_t cut;       /* 0: none, the first half reads the whole document */
    int depth;
    uint32_t s0[SPLIT_DEPTH], s1[SPLIT_DEPTH]; /* the open elements' start tags */
    uint32_t ends[SPLIT_DEPTH];                /* where each ends in the prefix */
    tsq_node *open[SPLIT_DEPTH];               /* the second half's stand-ins for them */
    char *buf;                                 /* the prefix, then the closing end tags */
    size_t plen, clen;
} halves;

/* The first pat in b[from, len), or NULL. */
static const char *memfind(const char *b, size_t from, size_t len, const char *pat, size_t pl) {
    while (from + pl <= len) {
        const char *p = memchr(b + from, pat[0], len - from - pl + 1);
        if (!p) return NULL;
        if (memcmp(p, pat, pl) == 0) return p;
        from = (size_t)(p - b) + 1;
    }
    return NULL;
}

/* The cut: the first start tag in element content at or after `from` (and not after
 * `until`), with the start tags open there; 0 when there is none, or a DOCTYPE. */
static uint32_t find_cut(halves *h, size_t from, size_t until) {
    const char *b = h->bytes, *e;
    size_t len = h->len, i = 0;
    int d = 0;
    while (i < len) {
        const char *lt = memchr(b + i, '<', len - i);
        if (!lt) return 0;
        i = (size_t)(lt - b);
        if (i + 1 >= len) return 0;
        char c = b[i + 1];
        if (c == '!') {
            if (len - i >= 4 && memcmp(b + i, "<!--", 4) == 0) e = memfind(b, i + 4, len, "-->", 3);
            else if (len - i >= 9 && memcmp(b + i, "<![CDATA[", 9) == 0) e = memfind(b, i + 9, len, "]]>", 3);
            else return 0; /* a DOCTYPE */
            if (!e) return 0;
            i = (size_t)(e - b) + 3;
        } else if (c == '?') {
            if (!(e = memfind(b, i + 2, len, "?>", 2))) return 0;
            i = (size_t)(e - b) + 2;
        } else if (c == '/') {
            if (d == 0 || !(e = memchr(b + i, '>', len - i))) return 0;
            d--;
            i = (size_t)(e - b) + 1;
        } else {
            if (i >= from && d > 0 && d <= SPLIT_DEPTH) {
                if (i > until) return 0;
                h->depth = d;
                return (uint32_t)i;
            }
            size_t j = i + 1;
            for (; j < len && b[j] != '>'; j++)
                if (b[j] == '"' || b[j] == '\'') {
                    const char *q = memchr(b + j + 1, b[j], len - j - 1);
                    if (!q) return 0;
                    j = (size_t)(q - b);
                }
            if (j >= len) return 0;
            if (b[j - 1] != '/') {
                if (d < SPLIT_DEPTH) { /* deeper: no cut there */
                    h->s0[d] = (uint32_t)i;
                    h->s1[d] = (uint32_t)(j + 1);
                }
                d++;
            }
            i = j + 1;
        }
    }
    return 0;
}

/* The prefix (the open start tags) and the end tags that close them, in h->buf. */
static int make_prefix(halves *h, tsq_ctx *ctx) {
    size_t plen = 0, clen = 0;
    for (int i = 0; i < h->depth; i++) {
        plen += h->s1[i] - h->s0[i];
        clen += tag_name_len(h->bytes + h->s0[i]) + 3;
    }
    if (!(h->buf = tsq_malloc(ctx, plen + clen + 1))) return 0;
    char *o = h->buf;
    for (int i = 0; i < h->depth; i++) {
        memcpy(o, h->bytes + h->s0[i], h->s1[i] - h->s0[i]);
        o += h->s1[i] - h->s0[i];
        h->ends[i] = (uint32_t)(o - h->buf);
    }
    for (int i = h->depth; i-- > 0;) {
        size_t nl = tag_name_len(h->bytes + h->s0[i]);
        *o++ = '<';
        *o++ = '/';
        memcpy(o, h->bytes + h->s0[i] + 1, nl);
        o += nl;
        *o++ = '>';
    }
    *o = '\0';
    h->plen = plen;
    h->clen = clen;
    return 1;
}

/* Moves n and everything below it by delta bytes. */
static void shift_tree(tsq_node *n, uint32_t delta) {
    for (tsq_node *x = n; x; x = tsq_tree_next(n, x)) {
        x->s0 += delta;
        x->s1 += delta;
        x->s2 += delta;
    }
}

static void *second_half(void *ud) {
    halves *h = ud;
    rd *r = &h->b;
    uint32_t cut = find_cut(h, h->from, h->len - h->len / 8);
    pthread_mutex_lock(&h->lock);
    h->cut = cut && make_prefix(h, r->ctx) ? cut : 0;
    h->scanned = 1;
    pthread_cond_signal(&h->scanned_cond);
    pthread_mutex_unlock(&h->lock);
    if (!h->cut) return NULL;
    r->bytes = h->bytes + h->cut - h->plen; /* offsets past the prefix are the bytes' own */
    r->len = h->plen + (h->len - h->cut);
    r->synth = h->depth;
    r->prefix = h->buf;
    xmlSAXHandler sax;
    set_handlers(&sax);
    size_t first = h->plen < 4 ? h->plen : 4;
    if (!(r->px = new_parser(r->ctx, &sax, r, h->buf, h->plen, r->name))) goto failed;
    if (h->plen > first && xmlParseChunk(r->px, h->buf + first, (int)(h->plen - first), 0) != 0) r->failed = 1;
    if (!r->failed) feed(r, h->bytes + h->cut, h->len - h->cut, 0);
    if (r->failed || !r->px->wellFormed || !r->root || r->cur || r->nsynth != h->depth) goto failed;
    /* the real nodes' offsets count from the prefix: move them to the document's */
    uint32_t delta = h->cut - (uint32_t)h->plen;
    for (int i = 0; i < h->depth; i++) {
        tsq_node *o = h->open[i], *c = o->first;
        o->s2 += delta;
        if (i + 1 < h->depth) {
            if (c != h->open[i + 1]) goto failed;
            c = c->next;
        }
        for (; c; c = c->next) shift_tree(c, delta);
    }
    return NULL;
failed:
    r->failed = 1;
    __atomic_store_n(&h->stop, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* Joins the second half to the first: each open element of the first half takes its
 * stand-in's later children and its end. 0 when the halves do not fit together. */
static int join_halves(halves *h, rd *a) {
    tsq_node *open[SPLIT_DEPTH], *x = a->root;
    for (int i = 0; i < h->depth; i++) {
        if (!x || x->s0 != h->s0[i] || x->s1 != h->s1[i] || x->name != h->open[i]->name) return 0;
        open[i] = x;
        if (i + 1 < h->depth) x = x->last;
    }
    for (int i = 0; i < h->depth; i++) {
        tsq_node *o = h->open[i], *to = open[i];
        tsq_node *c = i + 1 < h->depth ? o->first->next : o->first;
        if (c) {
            for (tsq_node *y = c; y; y = y->next) y->parent = to;
            c->prev = to->last;
            if (to->last) to->last->next = c;
            else to->first = c;
            to->last = o->last;
        }
        to->s2 = o->s2;
        to->flags |= o->flags & F_COND;
    }
    return 1;
}

/* Reads the document in two halves into r (whose source adopts their arenas): the helper
 * looks for the cut while the calling thread reads up to where it may be, then each reads
 * its half (or, when there is no cut, the calling thread reads on to the end alone). The
 * first half reads into a copy of r, which r becomes on success. 0 when it was not read so
 * (a failure of either half, no thread): r is as it was (with the scratch it may have
 * grown), nothing is left. */
static int read_halves(rd *r, const char *bytes, size_t len, const char *name) {
    tsq_ctx *ctx = r->ctx;
    halves *h = tsq_malloc(ctx, sizeof *h);
    if (!h) return 0;
    memset(h, 0, sizeof *h);
    h->bytes = bytes;
    h->len = len;
    /* about the middle: the helper also scans the first half for the cut (about a tenth of
     * what parsing it costs); measured on 175 KB documents */
    h->from = len / 2 < 4 ? 4 : len / 2;
    int ok = 0;
    if (pthread_mutex_init(&h->lock, NULL) != 0) goto done;
    if (pthread_cond_init(&h->scanned_cond, NULL) != 0) {
        pthread_mutex_destroy(&h->lock);
        goto done;
    }
    h->asrc.ctx = h->bsrc.ctx = ctx;
    h->asrc.refs = h->bsrc.refs = 1;
    rd *a = &h->a, *b = &h->b;
    *a = *r;
    a->src = &h->asrc;
    a->err = &h->aerr;
    a->lock = b->lock = &h->lock;
    a->stop = b->stop = &h->stop;
    b->ctx = ctx;
    b->src = &h->bsrc;
    b->nsrc = r->nsrc;
    b->name = name;
    b->err = &h->berr;
    b->synth_end = h->ends;
    b->synth_nodes = h->open;
    tsq_buf_init(&b->text, ctx);
    pthread_t th;
    int started = pthread_create(&th, NULL, second_half, h) == 0;
    if (started) {
        xmlSAXHandler sax;
        set_handlers(&sax);
        if ((a->px = new_parser(ctx, &sax, a, bytes, len, name))) feed_part(a, bytes, h->from, 4, 1);
        else a->failed = 1;
        pthread_mutex_lock(&h->lock);
        while (!h->scanned) pthread_cond_wait(&h->scanned_cond, &h->lock);
        pthread_mutex_unlock(&h->lock);
        if (!a->failed && h->cut) {
            a->cut = h->cut;
            feed_part(a, bytes, h->cut, h->from, 1);
            if (!a->failed && xmlParseChunk(a->px, h->buf + h->plen, (int)h->clen, 1) != 0) a->failed = 1;
        } else if (!a->failed) {
            feed_part(a, bytes, len, h->from, 0);
        }
        if (a->failed) __atomic_store_n(&h->stop, 1, __ATOMIC_RELAXED);
        pthread_join(th, NULL);
    }
    ok = started && !a->failed && a->px->wellFormed && a->root && !a->cur &&
         (!h->cut || (!b->failed && join_halves(h, a)));
    if (b->px) xmlFreeParserCtxt(b->px);
    tsq_buf_free(&b->text);
    if (b->tmp) tsq_ctx_alloc(ctx, b->tmp, b->tmpcap * sizeof *b->tmp, 0);
    pthread_cond_destroy(&h->scanned_cond);
    pthread_mutex_destroy(&h->lock);
    if (ok) {
        tsq_src_adopt(r->src, &h->asrc);
        tsq_src_adopt(r->src, &h->bsrc);
        if (h->cut) a->nodes += b->nodes - (size_t)h->depth; /* the stand-ins hold no reference */
        a->src = r->src;
        a->err = r->err;
        a->lock = NULL;
        a->stop = NULL;
        a->cut = 0;
        *r = *a;
    } else { /* as before: the caller reads it whole */
        tsq_src_drop(&h->asrc);
        tsq_src_drop(&h->bsrc);
        if (a->px) xmlFreeParserCtxt(a->px);
        tsq_buf_free(&a->text);
        r->tmp = a->tmp;
        r->tmpcap = a->tmpcap;
    }
done:
    if (h->buf) tsq_free(ctx, h->buf, h->plen + h->clen + 1);
    tsq_free(ctx, h, sizeof *h);
    return ok;
}

/* ------------------------------------------------------------------ parsing one text */

/* Parses bytes (taken over by the source) into a tree; *root on success. */
static tsq_status parse_bytes(tsq_ctx *ctx, char *bytes, size_t len, int mapped, const char *name,
                              tsq_src **srcout, tsq_node **root, tsq_error *err) {
    tsq_xml_init();
    *root = NULL;
    *srcout = NULL;
    tsq_src *src = tsq_src_new(ctx, bytes, len);
    if (!src) {
        tsq_bytes_free(ctx, bytes, len, mapped);
        return tsq_err(err, TSQ_ENOMEM, "out of memory");
    }
    src->mapped = mapped;
    char why[160];
    if (len == 0) {
        tsq_src_unref(src);
        if (err) err->line = err->column = 1;
        return tsq_err(err, TSQ_EPARSE, "the document is empty");
    }
    if (!check_encoding(bytes, len, why, sizeof why)) {
        tsq_src_unref(src);
        if (err) err->line = err->column = 1;
        return tsq_err(err, TSQ_EPARSE, "%s", why);
    }
    rd r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.src = src;
    r.bytes = bytes;
    r.len = len;
    r.name = name;
    r.err = err;
    tsq_buf_init(&r.text, ctx);
    r.nsrc = src;
    int mode = ctx->read_thread;
    int two = len > 4 && (mode > 0 || (mode < 0 && len >= SPLIT_MIN && two_cpus)) &&
              read_halves(&r, bytes, len, name);
    if (!two) {
        xmlSAXHandler h;
        set_handlers(&h);
        if (!(r.px = new_parser(ctx, &h, &r, bytes, len, name))) {
            tsq_src_unref(src);
            tsq_buf_free(&r.text);
            return tsq_err(err, TSQ_ENOMEM, "out of memory");
        }
        feed(&r, bytes, len, len < 4 ? len : 4);
    }
    if (!r.failed && (!r.px->wellFormed || !r.root || r.cur)) {
        r.failed = 1;
        if (err) err->line = err->column = 0;
        tsq_err(err, TSQ_EPARSE, "malformed document");
    }
    xmlFreeParserCtxt(r.px);
    tsq_buf_free(&r.text);
    if (r.tmp) tsq_ctx_alloc(ctx, r.tmp, r.tmpcap * sizeof *r.tmp, 0);
    src->refs += r.nodes;
    if (r.failed) {
        /* nodes hold source references; destroying the root releases them */
        if (r.root) tsq_node_destroy(r.root);
        else src->refs -= r.nodes;
        tsq_src_unref(src);
        return err ? err->code : TSQ_EPARSE;
    }
    *root = r.root;
    *srcout = src; /* the caller holds the extra reference */
    return TSQ_OK;
}

/* ------------------------------------------------------------------ documents */

static void detect_layout(tsq_doc *d, const tsq_node *seq) {
    d->newline = NULL;
    d->indent[0] = '\0';
    for (const tsq_node *c = seq->first; c; c = c->next) {
        if (c->type != N_TEXT || !memchr(c->text, '\n', c->text_len)) continue;
        const char *raw = c->src->bytes + c->s0, *lf = memchr(raw, '\n', c->s2 - c->s0);
        d->newline = lf && lf > raw && lf[-1] == '\r' ? "\r\n" : "\n";
        const char *nl = c->text;
        for (uint32_t i = 0; i < c->text_len; i++)
            if (c->text[i] == '\n') nl = c->text + i + 1;
        size_t il = (size_t)(c->text + c->text_len - nl);
        /* the sequence's own indentation (inside <SequenceData>) is not part of the unit */
        size_t own = 0;
        if (seq->src && seq->s0 > 0) {
            const char *b = seq->src->bytes;
            uint32_t i = seq->s0;
            while (i > 0 && (b[i - 1] == ' ' || b[i - 1] == '\t')) i--;
            if (i == 0 || b[i - 1] == '\n') own = seq->s0 - i;
        }
        if (own < il && memcmp(nl, seq->src->bytes + seq->s0 - own, own) == 0) {
            nl += own;
            il -= own;
        }
        if (il > 0 && il < sizeof d->indent && c->next && c->next->name) {
            memcpy(d->indent, nl, il);
            d->indent[il] = '\0';
        }
        if (d->indent[0]) return;
    }
}

static tsq_node *find_cim_value(tsq_ctx *ctx, tsq_node *inst) {
    for (tsq_node *p = tsq_elem_first(inst); p; p = tsq_elem_next(p)) {
        if (p->name != ctx->atom[A_PROPERTY]) continue;
        const char *nm = tsq_attr_get(p, ctx->atom[A_NAME]);
        if (nm && strcmp(nm, "Sequence") == 0) return tsq_elem_child(p, ctx->atom[A_VALUE]);
    }
    return NULL;
}

static void prefix_name(tsq_error *err, const char *name) {
    if (err && name) snprintf(err->file, sizeof err->file, "%s", name);
}

static tsq_status wrap_error(tsq_error *err, const tsq_node *at, const tsq_src *src, const char *msg) {
    if (err) {
        int line = 1, col = 1;
        for (uint32_t i = 0; at && src && i < at->s0; i++) {
            if (src->bytes[i] == '\n') { line++; col = 1; } else col++;
        }
        err->line = line;
        err->column = col;
    }
    return tsq_err(err, TSQ_EPARSE, "%s", msg);
}

/* Parses `copy` (len + 1 bytes from the context's allocator; taken over). */
static tsq_status parse_owned(tsq_ctx *ctx, char *copy, size_t len, int mapped, const char *name, tsq_node **out,
                              tsq_error *err) {
    tsq_src *src;
    tsq_node *root;
    tsq_status st = parse_bytes(ctx, copy, len, mapped, name, &src, &root, err);
    if (st) return st;
    tsq_doc *d = tsq_doc_new(ctx);
    if (!d) {
        tsq_node_destroy(root);
        tsq_src_unref(src);
        return tsq_err(err, TSQ_ENOMEM, "out of memory");
    }
    d->src = src; /* takes parse_bytes' extra reference */
    d->prolog_end = root->s0;
    d->epilog_start = root->s2;
    tsq_node *seq = NULL;
    if (root->type == N_SEQUENCE) {
        seq = root;
    } else if (root->name == ctx->atom[A_SmsTaskSequencePackage]) {
        tsq_node *sd = tsq_elem_child(root, ctx->atom[A_SequenceData]);
        tsq_node *s = sd ? tsq_elem_child(sd, ctx->atom[A_sequence]) : NULL;
        if (!s) {
            st = wrap_error(err, sd ? sd : root, src, "a package document without <SequenceData><sequence>");
            goto bad;
        }
        d->wrapper = TSQ_WRAP_PACKAGE;
        d->outer = root;
        d->slot = sd;
        d->slot_before = s->next;
        tsq_node_unlink(s);
        seq = s;
    } else if (root->name == ctx->atom[A_INSTANCE]) {
        const char *cls = tsq_attr_get(root, tsq_intern(ctx, "CLASSNAME"));
        tsq_node *v = find_cim_value(ctx, root);
        if (!cls || strcmp(cls, "SMS_TaskSequencePackage") != 0 || !v) {
            st = wrap_error(err, root, src, "an <INSTANCE> that is not an SMS_TaskSequencePackage with a Sequence property");
            goto bad;
        }
        /* the sequence is text inside the VALUE; its own positions start at 1:1 of that text */
        const char *t = v->text ? v->text : "";
        size_t tl = v->text_len;
        char inner_name[300];
        snprintf(inner_name, sizeof inner_name, "%s(Sequence)", name);
        char *icopy = tsq_malloc(ctx, tl + 1);
        if (!icopy) { st = tsq_err(err, TSQ_ENOMEM, "out of memory"); goto bad; }
        memcpy(icopy, t, tl);
        icopy[tl] = '\0';
        tsq_src *isrc;
        tsq_node *iroot;
        if ((st = parse_bytes(ctx, icopy, tl, 0, inner_name, &isrc, &iroot, err))) {
            if (err) {
                char m[sizeof err->message + 32];
                snprintf(m, sizeof m, "in the Sequence property: %s", err->message);
                snprintf(err->message, sizeof err->message, "%.700s", m);
            }
            goto bad;
        }
        if (iroot->type != N_SEQUENCE) {
            tsq_node_destroy(iroot);
            tsq_src_unref(isrc);
            st = wrap_error(err, v, src, "the Sequence property does not hold a <sequence>");
            goto bad;
        }
        d->wrapper = TSQ_WRAP_CIM;
        d->outer = root;
        d->slot = v;
        d->inner_pre = tsq_strndup(ctx, isrc->bytes, iroot->s0);
        d->inner_pre_len = iroot->s0;
        d->inner_post = tsq_strndup(ctx, isrc->bytes + iroot->s2, isrc->len - iroot->s2);
        d->inner_post_len = (uint32_t)(isrc->len - iroot->s2);
        tsq_src_unref(isrc); /* the nodes hold their own references */
        if (!d->inner_pre || !d->inner_post) {
            tsq_node_destroy(iroot);
            st = tsq_err(err, TSQ_ENOMEM, "out of memory");
            goto bad;
        }
        seq = iroot;
    } else {
        char m[200];
        snprintf(m, sizeof m, "not a task sequence document: the root element is <%.100s>", root->name);
        st = wrap_error(err, root, src, m);
        goto bad;
    }
    detect_layout(d, seq);
    seq->doc = d;
    seq->refs = seq->tree_refs = 1;
    *out = seq;
    return TSQ_OK;
bad:
    if (d->outer != root) tsq_node_destroy(root);
    tsq_doc_free(ctx, d);
    return st;
}

tsq_status tsq_parse(tsq_ctx *ctx, const char *data, size_t len, const char *name, tsq_node **out, tsq_error *err) {
    *out = NULL;
    if (!name) name = "<string>";
    if (err) {
        memset(err, 0, sizeof *err);
        prefix_name(err, name);
    }
    if ((uint64_t)len > ctx->limits.max_document)
        return tsq_err(err, TSQ_ELIMIT, "the document is larger than the limit of %llu bytes",
                       (unsigned long long)ctx->limits.max_document);
    char *copy = tsq_malloc(ctx, len + 1);
    if (!copy) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    memcpy(copy, data, len);
    copy[len] = '\0';
    return parse_owned(ctx, copy, len, 0, name, out, err);
}

tsq_status tsq_load(tsq_ctx *ctx, const char *path, tsq_node **out, tsq_error *err) {
    *out = NULL;
    if (err) {
        memset(err, 0, sizeof *err);
        prefix_name(err, path);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return tsq_err(err, errno == ENOENT ? TSQ_ENOTFOUND : TSQ_EIO, "%s", strerror(errno));
    struct stat stt;
    if (fstat(fileno(f), &stt) != 0 || !S_ISREG(stt.st_mode)) {
        int dir = S_ISDIR(stt.st_mode);
        fclose(f);
        return tsq_err(err, TSQ_EIO, "%s", dir ? "is a directory, not a document" : "not a regular file");
    }
    if ((uint64_t)stt.st_size > ctx->limits.max_document) {
        fclose(f);
        return tsq_err(err, TSQ_ELIMIT, "the document is larger than the limit of %llu bytes",
                       (unsigned long long)ctx->limits.max_document);
    }
    size_t len = (size_t)stt.st_size;
    /* A file is mapped (private, copy-on-write) rather than read: no copy through the
     * kernel and no zeroed pages of our own, and its pages stay in the page cache. The
     * bytes after the end up to the page boundary read as zeros, which gives the NUL the
     * reader expects; a file that ends on a page boundary is read instead. A file must
     * not be truncated by another program while it is loaded (as with git's mappings). */
    long page = sysconf(_SC_PAGESIZE);
    int mapped = 0;
    char *bytes = NULL;
    if (len > 0 && page > 0 && len % (size_t)page != 0) {
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fileno(f), 0);
        if (m != MAP_FAILED) {
            bytes = m;
            mapped = 1;
#ifdef MADV_SEQUENTIAL
            madvise(m, len, MADV_SEQUENTIAL);
#endif
        }
    }
    if (!mapped) {
        if (!(bytes = tsq_malloc(ctx, len + 1))) {
            fclose(f);
            return tsq_err(err, TSQ_ENOMEM, "out of memory");
        }
        size_t got = len ? fread(bytes, 1, len, f) : 0;
        int ioerr = ferror(f);
        if (got != len || ioerr) {
            fclose(f);
            tsq_free(ctx, bytes, len + 1);
            return tsq_err(err, TSQ_EIO, "read error");
        }
        bytes[len] = '\0';
    }
    fclose(f);
    /* parse without another copy: tsq_parse copies, so inline its work here */
    tsq_status st = parse_owned(ctx, bytes, len, mapped, path, out, err);
    if (st == TSQ_OK) {
        tsq_doc *d = (*out)->doc;
        d->path = tsq_strndup(ctx, path, strlen(path));
    }
    return st;
}
