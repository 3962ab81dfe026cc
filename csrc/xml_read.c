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
static void xml_init(void) { xmlInitParser(); }
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
    tsq_buf text;         /* pending character data (decoded) */
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

/* Pending text between child elements becomes a text node. */
static int flush_text(rd *r, uint32_t end) {
    if (!r->cur || (r->text.len == 0 && end <= r->text_start)) {
        r->text.len = 0;
        r->text_cdata = 0;
        return 1;
    }
    tsq_node *t = new_node(r, r->text_cdata ? N_CDATA : N_TEXT, NULL);
    if (!t || !(t->text = arena_str(r, r->text.data ? r->text.data : "", r->text.len))) return 0;
    t->text_len = (uint32_t)r->text.len;
    t->s0 = t->s1 = r->text_start;
    t->s2 = end;
    tsq_node_link(r->cur, NULL, t);
    r->text.len = 0;
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
    const char *lt = r->cur && !r->text_cdata && r->text_start < p
                         ? memchr(b + r->text_start, '<', p - r->text_start) : NULL;
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
        q += strlen((const char *)local);
    } else {
        const char *nm = q;
        while (q < end && !is_sp(*q)) q++;
        name = tsq_intern_n(r->ctx, nm, (size_t)(q - nm));
    }
    if (!name) goto oom;
    long na = 0;
    int plain = nns == 0 && ndef == 0;
    for (int i = 0; plain && i < nattr; i++)
        if (attrs[i * 5 + 1]) plain = 0;
    if (plain && nattr > 0) {
        /* libxml2 reports unprefixed attributes decoded, in the order written */
        if (nattr >= UINT16_MAX) {
            fail_at(r, TSQ_ELIMIT, s0, "too many attributes on one element");
            return;
        }
        if (!grow_tmp(r, (size_t)nattr)) goto oom;
        for (int i = 0; i < nattr; i++) {
            const xmlChar *v = attrs[i * 5 + 3], *ve = attrs[i * 5 + 4];
            if ((uint64_t)(ve - v) > r->ctx->limits.max_text) {
                fail_at(r, TSQ_ELIMIT, s0, "an attribute value exceeds the size limit");
                return;
            }
            tsq_attr *a = &r->tmp[i];
            if (!(a->name = dict_name(r, attrs[i * 5]))) goto oom;
            if (!(a->value = copy_value(r, v, ve, &a->len))) goto oom;
            a->raw = (int16_t)(i < 32767 ? i : -1);
            a->owned = 0;
            a->clean = 0;
        }
        na = nattr;
    } else if (!plain) {
        if ((na = raw_attrs(r, q, end, s0)) < 0) {
            if (r->failed) return;
            goto oom;
        }
    }
    tsq_node *n = new_node(r, kind_of(r, name), name);
    if (!n) goto oom;
    if (na) {
        if (!(n->attrs = tsq_src_arena(r->src, (size_t)na * sizeof *n->attrs))) goto oom;
        memcpy(n->attrs, r->tmp, (size_t)na * sizeof *n->attrs);
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
        } else if (r->text.len || etag > n->s1) {
            if (!(n->text = arena_str(r, r->text.data ? r->text.data : "", r->text.len))) goto oom;
            n->text_len = (uint32_t)r->text.len;
            if (r->text_cdata) n->flags |= F_CDATA_TEXT;
        }
    }
    r->text.len = 0;
    r->text_cdata = 0;
    r->cur = n->parent;
    r->text_start = p;
    r->depth--;
    return;
oom:
    fail_at(r, TSQ_ENOMEM, 0, "out of memory");
}

static void add_text(rd *r, const char *s, int len) {
    if (r->failed || !r->cur) return;
    if (r->text.len + (size_t)len > r->ctx->limits.max_text) {
        fail_at(r, TSQ_ELIMIT, pos_now(r), "a text node exceeds the size limit");
        return;
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
    xmlSAXHandler h;
    memset(&h, 0, sizeof h);
    h.initialized = XML_SAX2_MAGIC;
    h.startElementNs = on_start;
    h.endElementNs = on_end;
    h.characters = on_chars;
    h.ignorableWhitespace = on_chars;
    h.cdataBlock = on_cdata;
    h.comment = on_comment;
    h.processingInstruction = on_pi;
    h.internalSubset = on_subset;
    h.getEntity = on_entity;
    h.getParameterEntity = on_entity;
    h.serror = on_error;
    size_t first = len < 4 ? len : 4;
    r.px = xmlCreatePushParserCtxt(&h, &r, bytes, (int)first, name);
    if (!r.px) {
        tsq_src_unref(src);
        tsq_buf_free(&r.text);
        return tsq_err(err, TSQ_ENOMEM, "out of memory");
    }
    /* libxml2's own limits (10,000,000 bytes of text, depth 256) fail fast on hostile
     * input; they are lifted only when the context's limits ask for more */
    int huge = ctx->limits.max_text > 10000000 || ctx->limits.max_depth > 256;
    xmlCtxtUseOptions(r.px, XML_PARSE_NONET | XML_PARSE_NOWARNING | (huge ? XML_PARSE_HUGE : 0));
    const size_t chunk = 256 * 1024;
    for (size_t off = first; !r.failed;) {
        size_t n = len - off < chunk ? len - off : chunk;
        int last = off + n >= len;
        int rc = xmlParseChunk(r.px, bytes + off, (int)n, last);
        off += n;
        if (rc != 0 && !r.failed) {
            r.failed = 1;
            tsq_err(err, TSQ_EPARSE, "malformed document");
        }
        if (last) break;
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
