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
static int two_cpus; /* a parsing thread only pays where it runs beside the builder */
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
    struct rpipe *pipe;    /* building from a parsing thread's events (see below), or NULL */
    uint32_t ev_pos;      /* then: where libxml2 stood when it reported the event */
    tsq_node **conds;     /* then: steps read whole that have a condition, to compile while */
    size_t nconds, cconds, done_conds; /* the builder waits for the parser */
} rd;

/* The offset in the source where libxml2 stands: what xmlByteConsumed computes, read from
 * the input directly on this hot path (twice per element) when no encoder is involved,
 * which is always so for the UTF-8 documents this reader accepts. */
static uint32_t pos_now(rd *r) {
    if (r->pipe) return r->ev_pos;
    xmlParserInputPtr in = r->px->input;
    long p;
    if (in && in->base && in->cur && !(in->buf && in->buf->encoder))
        p = (long)in->consumed + (long)(in->cur - in->base);
    else
        p = xmlByteConsumed(r->px);
    return p < 0 ? 0 : (uint32_t)p;
}

static void pipe_stop(struct rpipe *p);

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
    if (r->pipe) pipe_stop(r->pipe);
    else xmlStopParser(r->px);
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

static tsq_node *new_node(rd *r, tsq_ntype type, const char *name) {
    tsq_node *n = tsq_src_arena(r->src, sizeof *n);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->ctx = r->ctx;
    n->type = (uint8_t)type;
    n->name = name;
    n->src = r->src;
    n->flags = F_ARENA | F_RAW;
    r->nodes++;
    return n;
}

static char *arena_str(rd *r, const char *s, size_t n) {
    char *d = tsq_src_arena(r->src, n + 1);
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
        d = tsq_src_arena(r->src, n + 1);
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
    tsq_node_link(r->cur, NULL, t);
    r->text_cdata = 0;
    return 1;
}

static int is_sp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Decodes an attribute value: entity and character references, and the normalisation
 * of white space characters to spaces (a CR LF pair counts as one line end). */
static char *decode_attr(rd *r, const char *s, size_t n, uint32_t *outlen) {
    char *d = tsq_src_arena(r->src, n + 1), *o = d;
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
    const char *name = tsq_intern(r->ctx, (const char *)key);
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
    char *d = tsq_src_arena(r->src, n + 1);
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
    tsq_attr *t = tsq_ctx_alloc(r->ctx, r->tmp, r->tmpcap * sizeof *t, nc * sizeof *t);
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
        if (!(a->name = tsq_intern_n(r->ctx, an, (size_t)(ane - an)))) return -1;
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

static void on_start(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                     int nns, const xmlChar **ns, int nattr, int ndef, const xmlChar **attrs) {
    rd *r = ud;
    TSQ_UNUSED(uri); TSQ_UNUSED(ns);
    if (r->failed) return;
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
        name = tsq_intern_n(r->ctx, nm, (size_t)(q - nm));
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
        if (!(direct = tsq_src_arena(r->src, (size_t)nattr * sizeof *direct))) goto oom;
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
            if (!(n->attrs = tsq_src_arena(r->src, (size_t)na * sizeof *n->attrs))) goto oom;
            memcpy(n->attrs, r->tmp, (size_t)na * sizeof *n->attrs);
        }
        n->nattrs = n->cattrs = (uint16_t)na;
    }
    n->s0 = s0;
    n->s1 = s1;
    if (empty) n->flags |= F_EMPTY_TAG | F_SRC_EMPTY;
    if (r->cur) {
        tsq_node_link(r->cur, NULL, n);
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
    if (r->pipe && (n->flags & F_COND) && (n->type == N_ACTION || n->type == N_GROUP)) {
        if (r->nconds == r->cconds) { /* out of memory here only means fewer compiled early */
            size_t nc = r->cconds ? r->cconds * 2 : 1024;
            tsq_node **v = tsq_ctx_alloc(r->ctx, r->conds, r->cconds * sizeof *v, nc * sizeof *v);
            if (v) r->conds = v, r->cconds = nc;
        }
        if (r->nconds < r->cconds) r->conds[r->nconds++] = n;
    }
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
        tsq_buf_add(&r->text, r->src->at, r->ta_len); /* from here on, all of it in `text` */
        r->ta_len = 0;
    }
    tsq_buf_add(&r->text, s, (size_t)len);
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
    tsq_node_link(r->cur, NULL, n);
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

/* ------------------------------------------------------------------ a parsing thread */

/* A large document is read by two threads. A parsing thread runs libxml2 and records what
 * its callbacks report as events in blocks; the calling thread replays them through the
 * same callbacks (on_start, on_end, ...) into the tree while the next block is parsed. The
 * tree, the context and its allocator stay on the calling thread: the parsing thread
 * touches nothing but libxml2 and the blocks, which the calling thread allocates before it
 * starts. An event too large for a block is handed over synchronously: the parsing thread
 * waits in its callback while the calling thread builds from libxml2's own buffers. Names
 * are libxml2's dictionary pointers, valid until the parser is freed once both are done.
 * Errors come out as in a read on one thread: the builder's error, when there is one, is
 * the earlier in the document (it has seen only events from before libxml2's).
 * TSQ_READ_THREAD=0 in the environment (when the context is made) reads on one thread. */

#define PIPE_BLOCK ((size_t)128 * 1024)
#define PIPE_BLOCKS 8               /* at most, in flight; fewer for a smaller document */
#define PIPE_MIN ((size_t)1024 * 1024) /* smaller ones gain little or lose (measured) */
#define PIPE_SPIN 20000 /* pauses the builder spins through before it sleeps */

enum { EV_START = 1, EV_END, EV_TEXT, EV_CDATA, EV_COMMENT, EV_PI };

/* One event, in a block (followed by its payload) or handed over on the parser's stack. */
typedef struct pev {
    uint32_t size; /* in a block: bytes of the event and its payload, a multiple of 8 */
    uint32_t pos;  /* pos_now when libxml2 reported it */
    int type;
    uint32_t len, len2;           /* the payload's lengths: text (or target), PI data */
    int has2;                     /* EV_PI: data given */
    int nns, ndef, nattr;         /* EV_START */
    const xmlChar *local, *prefix; /* EV_START */
    const xmlChar **attrs;        /* EV_START handed over: libxml2's array */
    const char *text, *text2;     /* handed over: the text; a PI's target and data */
} pev;
/* In a block an event keeps only the fields its type reads (the rest of pev is never
 * read there): an end is 16 bytes, a text 24 plus its bytes, a start 56 plus its
 * attributes. The parsing thread writes less and the builder reads less. */
#define HEAD_END 16
#define HEAD_TEXT 24
#define HEAD_START 56
typedef char head_text_ok[offsetof(pev, nns) == HEAD_TEXT ? 1 : -1];
typedef char head_start_ok[offsetof(pev, attrs) == HEAD_START ? 1 : -1];
typedef char head_end_ok[offsetof(pev, len) <= HEAD_END ? 1 : -1];
static size_t head_size(int type) { return type == EV_END ? HEAD_END : type == EV_START ? HEAD_START : HEAD_TEXT; }

typedef struct pattr { /* EV_START in a block: per attribute, then the values' bytes */
    const xmlChar *name, *prefix;
    uint32_t vlen;
} pattr;

typedef struct pblock {
    struct pblock *next;
    size_t used;
    char data[PIPE_BLOCK]; /* 8-aligned: events (pev heads) are written in place */
} pblock;

typedef struct rpipe {
    rd pr; /* first: the parsing side's libxml2 callbacks get the pipe as their rd */
    tsq_error perr;
    rd *b; /* the builder */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a block published or freed, an event handed over or done, the end */
    pblock *full, *full_tail, *free, *cur;
    const pev *sync;     /* an event handed over, NULL when none */
    int done, stop;      /* the parser finished; the builder wants no more */
    unsigned posted;     /* counts blocks published, events handed over and the end (atomic) */
    int stopped;         /* parsing thread only: it has stopped libxml2 */
    const xmlChar **attrs; /* builder: libxml2's attribute array rebuilt for on_start */
    size_t attrs_cap;
} rpipe;

static void pipe_stop(struct rpipe *p) {
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Parsing side: publishes the current block and takes a free one; NULL when the builder
 * stopped, and libxml2 is told to stop. */
static pblock *next_block(rpipe *p) {
    pthread_mutex_lock(&p->lock);
    if (p->cur && p->cur->used) {
        p->cur->next = NULL;
        if (p->full_tail) p->full_tail->next = p->cur;
        else p->full = p->cur;
        p->full_tail = p->cur;
        p->cur = NULL;
        __atomic_add_fetch(&p->posted, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&p->cond);
    }
    while (!p->cur && !p->free && !p->stop) pthread_cond_wait(&p->cond, &p->lock);
    if (!p->stop && !p->cur) {
        p->cur = p->free;
        p->free = p->cur->next;
        p->cur->used = 0;
    }
    int stop = p->stop;
    pthread_mutex_unlock(&p->lock);
    if (stop && !p->stopped) {
        p->stopped = 1;
        xmlStopParser(p->pr.px);
    }
    return stop ? NULL : p->cur;
}

/* Room for n bytes of event in the current block, or NULL: too large for a block (hand it
 * over), or stopped (p->stopped says which). */
static char *reserve(rpipe *p, size_t n) {
    if (n > PIPE_BLOCK) return NULL;
    pblock *c = p->cur;
    if (!c || c->used + n > PIPE_BLOCK) {
        if (!(c = next_block(p))) return NULL;
    }
    char *at = c->data + c->used;
    c->used += n;
    return at;
}

/* Hands an event over and waits until the builder has taken it in. */
static void hand_over(rpipe *p, pev *e) {
    if (!next_block(p)) return; /* publishes what came before; stopped: nothing to hand */
    pthread_mutex_lock(&p->lock);
    p->sync = e;
    __atomic_add_fetch(&p->posted, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->cond);
    while (p->sync) pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

static size_t round8(size_t n) { return (n + 7) & ~(size_t)7; }

static int rec_skip(rpipe *p) { return p->pr.failed || p->stopped; }


static void rec_start(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                      int nns, const xmlChar **ns, int nattr, int ndef, const xmlChar **attrs) {
    rpipe *p = ud;
    TSQ_UNUSED(uri); TSQ_UNUSED(ns);
    if (rec_skip(p)) return;
    uint32_t pos = pos_now(&p->pr);
    size_t n = HEAD_START + (size_t)nattr * sizeof(pattr), vals = 0;
    for (int i = 0; i < nattr; i++) vals += (size_t)(attrs[i * 5 + 4] - attrs[i * 5 + 3]);
    n = round8(n + vals);
    char *at = reserve(p, n);
    if (!at) {
        if (p->stopped) return;
        pev e;
        memset(&e, 0, sizeof e);
        e.type = EV_START;
        e.pos = pos;
        e.local = local, e.prefix = prefix, e.nns = nns, e.ndef = ndef, e.nattr = nattr;
        e.attrs = attrs;
        hand_over(p, &e);
        return;
    }
    pev *e = (pev *)at; /* the fields up to HEAD_START */
    e->size = (uint32_t)n;
    e->pos = pos;
    e->type = EV_START;
    e->nns = nns, e->ndef = ndef, e->nattr = nattr;
    e->local = local, e->prefix = prefix;
    pattr *pa = (pattr *)(at + HEAD_START);
    char *v = (char *)(pa + nattr);
    for (int i = 0; i < nattr; i++) {
        size_t vl = (size_t)(attrs[i * 5 + 4] - attrs[i * 5 + 3]);
        pa[i].name = attrs[i * 5];
        pa[i].prefix = attrs[i * 5 + 1];
        pa[i].vlen = (uint32_t)vl;
        memcpy(v, attrs[i * 5 + 3], vl);
        v += vl;
    }
}

static void rec_end(void *ud, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri) {
    rpipe *p = ud;
    TSQ_UNUSED(local); TSQ_UNUSED(prefix); TSQ_UNUSED(uri);
    if (rec_skip(p)) return;
    char *at = reserve(p, HEAD_END);
    if (!at) return; /* an end event always fits: only a stop gets here */
    pev *e = (pev *)at; /* size, pos and type */
    e->size = HEAD_END;
    e->pos = pos_now(&p->pr);
    e->type = EV_END;
}

/* Text, CDATA, a comment or a PI: one or two strings after the event. */
static void rec_text(rpipe *p, int type, const char *s, size_t len, const char *s2, size_t len2, int has2) {
    if (rec_skip(p)) return;
    uint32_t pos = pos_now(&p->pr);
    size_t n = round8(HEAD_TEXT + len + 1 + len2 + 1);
    char *at = len > UINT32_MAX / 2 ? NULL : reserve(p, n);
    if (!at) {
        if (p->stopped) return;
        pev e;
        memset(&e, 0, sizeof e);
        e.type = type;
        e.pos = pos;
        e.len = (uint32_t)len, e.len2 = (uint32_t)len2, e.has2 = has2;
        e.text = s, e.text2 = s2;
        hand_over(p, &e);
        return;
    }
    pev *e = (pev *)at; /* the fields up to HEAD_TEXT */
    e->size = (uint32_t)n;
    e->pos = pos;
    e->type = type;
    e->len = (uint32_t)len, e->len2 = (uint32_t)len2, e->has2 = has2;
    char *t = at + HEAD_TEXT;
    memcpy(t, s, len);
    t[len] = '\0';
    if (len2) memcpy(t + len + 1, s2, len2);
    t[len + 1 + len2] = '\0';
}

static void rec_chars(void *ud, const xmlChar *s, int len) { rec_text(ud, EV_TEXT, (const char *)s, (size_t)len, NULL, 0, 0); }
static void rec_cdata(void *ud, const xmlChar *s, int len) { rec_text(ud, EV_CDATA, (const char *)s, (size_t)len, NULL, 0, 0); }
static void rec_comment(void *ud, const xmlChar *v) { rec_text(ud, EV_COMMENT, (const char *)v, strlen((const char *)v), NULL, 0, 0); }
static void rec_pi(void *ud, const xmlChar *target, const xmlChar *data) {
    rec_text(ud, EV_PI, (const char *)target, strlen((const char *)target), data ? (const char *)data : "",
             data ? strlen((const char *)data) : 0, data != NULL);
}

/* Builder: one event through the callbacks a single-threaded read uses. in_block: its
 * payload follows it (else its pointers are libxml2's, valid while the parser waits). */
static void replay(rpipe *p, const pev *e, int in_block) {
    rd *b = p->b;
    b->ev_pos = e->pos;
    const char *pay = (const char *)e + head_size(e->type); /* in a block: after the head */
    switch (e->type) {
    case EV_START: {
        const xmlChar **attrs = e->attrs;
        if (in_block && e->nattr > 0) {
            size_t need = (size_t)e->nattr * 5;
            if (need > p->attrs_cap) {
                size_t nc = p->attrs_cap ? p->attrs_cap * 2 : 64;
                while (nc < need) nc *= 2;
                const xmlChar **na = tsq_ctx_alloc(b->ctx, p->attrs, p->attrs_cap * sizeof *na, nc * sizeof *na);
                if (!na) {
                    fail_at(b, TSQ_ENOMEM, 0, "out of memory");
                    return;
                }
                p->attrs = na;
                p->attrs_cap = nc;
            }
            const pattr *pa = (const pattr *)pay;
            const xmlChar *v = (const xmlChar *)(pa + e->nattr);
            for (int i = 0; i < e->nattr; i++) {
                p->attrs[i * 5] = pa[i].name;
                p->attrs[i * 5 + 1] = pa[i].prefix;
                p->attrs[i * 5 + 2] = NULL;
                p->attrs[i * 5 + 3] = v;
                p->attrs[i * 5 + 4] = v + pa[i].vlen;
                v += pa[i].vlen;
            }
            attrs = p->attrs;
        }
        on_start(b, e->local, e->prefix, NULL, e->nns, NULL, e->nattr, e->ndef, attrs);
        break;
    }
    case EV_END: on_end(b, NULL, NULL, NULL); break;
    case EV_TEXT: on_chars(b, (const xmlChar *)(in_block ? pay : e->text), (int)e->len); break;
    case EV_CDATA: on_cdata(b, (const xmlChar *)(in_block ? pay : e->text), (int)e->len); break;
    case EV_COMMENT: on_comment(b, (const xmlChar *)(in_block ? pay : e->text)); break;
    case EV_PI: {
        const char *t = in_block ? pay : e->text, *d = in_block ? pay + e->len + 1 : e->text2;
        on_pi(b, (const xmlChar *)t, e->has2 ? (const xmlChar *)d : NULL);
        break;
    }
    default: break;
    }
}

/* Feeds the document to libxml2 in chunks (the first bytes went in at creation). */
static void feed(rd *r, const char *bytes, size_t len, size_t first) {
    const size_t chunk = 256 * 1024;
    for (size_t off = first; !r->failed;) {
        size_t n = len - off < chunk ? len - off : chunk;
        int last = off + n >= len;
        int rc = xmlParseChunk(r->px, bytes + off, (int)n, last);
        off += n;
        if (rc != 0 && !r->failed) {
            r->failed = 1;
            tsq_err(r->err, TSQ_EPARSE, "malformed document");
        }
        if (last) break;
    }
}

static void *parse_main(void *ud) {
    rpipe *p = ud;
    feed(&p->pr, p->pr.bytes, p->pr.len, 4);
    next_block(p); /* publishes the last events */
    pthread_mutex_lock(&p->lock);
    p->done = 1;
    __atomic_add_fetch(&p->posted, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* The SAX handlers: the builder's own (a read on one thread), or the recorders. */
static void set_handlers(xmlSAXHandler *h, int record) {
    memset(h, 0, sizeof *h);
    h->initialized = XML_SAX2_MAGIC;
    h->startElementNs = record ? rec_start : on_start;
    h->endElementNs = record ? rec_end : on_end;
    h->characters = record ? rec_chars : on_chars;
    h->ignorableWhitespace = record ? rec_chars : on_chars;
    h->cdataBlock = record ? rec_cdata : on_cdata;
    h->comment = record ? rec_comment : on_comment;
    h->processingInstruction = record ? rec_pi : on_pi;
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
    xmlCtxtUseOptions(px, XML_PARSE_NONET | XML_PARSE_NOWARNING | (huge ? XML_PARSE_HUGE : 0));
    return px;
}

/* Builder, with the lock held: waits until there is a block, a handed-over event or the
 * end. Meanwhile it compiles the conditions of the steps read so far, a few at a time
 * (plans then start compiled), then spins a while before it sleeps: the parser publishes
 * often, and waking a sleeping thread costs more than a block takes to build. */
static void wait_for_events(rpipe *p, rd *r) {
    int spun = 0;
    while (!p->full && !p->sync && !p->done) {
        if (r->done_conds < r->nconds && !r->failed) {
            pthread_mutex_unlock(&p->lock);
            size_t end = r->done_conds + 32 < r->nconds ? r->done_conds + 32 : r->nconds;
            while (r->done_conds < end) tsq_node_precompile(r->conds[r->done_conds++]);
            pthread_mutex_lock(&p->lock);
        } else if (!spun) {
            unsigned seen = __atomic_load_n(&p->posted, __ATOMIC_ACQUIRE);
            pthread_mutex_unlock(&p->lock);
            for (int i = 0; i < PIPE_SPIN && __atomic_load_n(&p->posted, __ATOMIC_ACQUIRE) == seen; i++) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            }
            pthread_mutex_lock(&p->lock);
            spun = 1; /* the state is looked at again under the lock before sleeping */
        } else {
            pthread_cond_wait(&p->cond, &p->lock);
            spun = 0;
        }
    }
}

/* Builder: replays every block and handed-over event, in order, until the parser is done. */
static void build_from(rpipe *p, rd *r) {
    for (;;) {
        pthread_mutex_lock(&p->lock);
        wait_for_events(p, r);
        pblock *blk = p->full;
        const pev *e = blk ? NULL : p->sync;
        if (blk && !(p->full = blk->next)) p->full_tail = NULL;
        pthread_mutex_unlock(&p->lock);
        if (!blk && !e) return; /* done, and every event replayed */
        if (blk) {
            for (size_t at = 0; at < blk->used;) {
                const pev *x = (const pev *)(blk->data + at);
                replay(p, x, 1);
                at += x->size;
            }
        } else {
            replay(p, e, 0);
        }
        pthread_mutex_lock(&p->lock);
        if (blk) blk->next = p->free, p->free = blk;
        else p->sync = NULL;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
    }
}

/* Starts the parsing thread; 0, with nothing left to undo, when it could not be started. */
static int start_parsing(rpipe *p, rd *r, pthread_t *th) {
    xmlSAXHandler h;
    set_handlers(&h, 1);
    if (pthread_mutex_init(&p->lock, NULL) != 0) return 0;
    if (pthread_cond_init(&p->cond, NULL) != 0) goto no_cond;
    if (!(p->pr.px = new_parser(r->ctx, &h, p, p->pr.bytes, p->pr.len, p->pr.name))) goto no_parser;
    r->pipe = p;
    if (pthread_create(th, NULL, parse_main, p) == 0) return 1;
    r->pipe = NULL;
    xmlFreeParserCtxt(p->pr.px);
no_parser:
    pthread_cond_destroy(&p->cond);
no_cond:
    pthread_mutex_destroy(&p->lock);
    return 0;
}

/* Reads with a parsing thread into the builder r; 0 when the thread could not be started
 * (nothing read: the caller reads on its own). The parser is left in r->px. */
static int read_piped(rd *r, const char *bytes, size_t len, const char *name) {
    rpipe *p = tsq_malloc(r->ctx, sizeof *p);
    if (!p) return 0;
    memset(p, 0, sizeof *p);
    int ok = 1;
    size_t want = len / PIPE_BLOCK + 2;
    if (want > PIPE_BLOCKS) want = PIPE_BLOCKS;
    for (size_t i = 0; i < want && ok; i++) { /* the context keeps them from one document to the next */
        pblock *blk = r->ctx->read_blocks;
        if (blk) r->ctx->read_blocks = blk->next;
        else if (!(blk = tsq_malloc(r->ctx, sizeof *blk))) ok = 0;
        if (blk) blk->next = p->free, p->free = blk;
    }
    p->pr.ctx = r->ctx, p->pr.bytes = bytes, p->pr.len = len, p->pr.name = name, p->pr.err = &p->perr;
    p->b = r;
    pthread_t th;
    int started = ok && start_parsing(p, r, &th);
    if (started) {
        build_from(p, r);
        pthread_join(th, NULL);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        r->pipe = NULL;
        r->px = p->pr.px;
        if (!r->failed && p->pr.failed) { /* libxml2's error, or a DOCTYPE */
            r->failed = 1;
            if (r->err) {
                r->err->code = p->perr.code;
                r->err->line = p->perr.line;
                r->err->column = p->perr.column;
                memcpy(r->err->message, p->perr.message, sizeof r->err->message);
            }
        }
    }
    if (p->cur) { /* the parsing thread's last block, taken after it published the rest */
        p->cur->next = p->free;
        p->free = p->cur;
    }
    while (p->free) {
        pblock *blk = p->free;
        p->free = blk->next;
        if (r->ctx->pool) {
            blk->next = r->ctx->read_blocks;
            r->ctx->read_blocks = blk;
        } else {
            tsq_free(r->ctx, blk, sizeof *blk);
        }
    }
    if (p->attrs) tsq_ctx_alloc(r->ctx, p->attrs, p->attrs_cap * sizeof *p->attrs, 0);
    if (r->conds) tsq_ctx_alloc(r->ctx, r->conds, r->cconds * sizeof *r->conds, 0);
    r->conds = NULL;
    tsq_free(r->ctx, p, sizeof *p);
    return started;
}

void tsq_read_blocks_free(tsq_ctx *ctx) {
    while (ctx->read_blocks) {
        pblock *blk = ctx->read_blocks;
        ctx->read_blocks = blk->next;
        tsq_free(ctx, blk, sizeof *blk);
    }
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
    int piped = len > 4 && (ctx->read_thread > 0 || (ctx->read_thread < 0 && len >= PIPE_MIN && two_cpus)) &&
                read_piped(&r, bytes, len, name);
    if (!piped) {
        xmlSAXHandler h;
        set_handlers(&h, 0);
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
