/* xml_write.c - documents out. Unchanged elements are copied from the source as they
 * were read; changed ones are written again, keeping every unchanged attribute's bytes;
 * new ones follow the document's layout (its line end and indentation). */
#include "tsq_int.h"
#include "catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_WRITE_DEPTH 4096

typedef struct wr {
    tsq_buf *out;
    const tsq_doc *doc;
    int canonical; /* ignore sources and layout: one uniform form */
    const char *nl;
    const char *unit;
    const tsq_node *doc_seq;
    tsq_error *err;
    int failed;
    int fd;       /* >= 0: output goes to this file as it is produced (tsq_save) */
    int io_errno; /* the first write error */
} wr;

#define FLUSH_AT ((size_t)1 << 20)

/* Writes the buffered output to the file; keeps memory flat for large documents. */
static void write_all(wr *w, const char *s, size_t n) {
    size_t off = 0;
    while (off < n && !w->io_errno) {
        ssize_t k = write(w->fd, s + off, n - off);
        if (k < 0) {
            if (errno != EINTR) w->io_errno = errno;
            continue;
        }
        off += (size_t)k;
    }
}

static void flush_out(wr *w) {
    write_all(w, w->out->data, w->out->len);
    w->out->len = 0;
}

/* Appends s[0..n) to b; the terminating NUL is written once, at the end of a write. */
/* Room for n more bytes: the common case without a call. */
static inline int room(tsq_buf *b, size_t n) { return b->len + n + 1 <= b->cap || tsq_buf_reserve(b, n); }

static inline void emit(tsq_buf *b, const char *s, size_t n) {
    if (b->len + n < b->cap) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    } else {
        tsq_buf_add(b, s, n);
    }
}

/* Which characters need a reference: 1 everywhere, 2 only in attribute values. */
static const unsigned char esc_class[256] = {
    ['&'] = 1, ['<'] = 1, ['>'] = 1, ['\r'] = 1, ['"'] = 2, ['\n'] = 2, ['\t'] = 2,
};

/* Any byte of the word that may need a reference (below 0x0E, '"', '&', '<', '>'); the
 * exact test follows for the bytes of a word it flags. The haszero trick on bytes. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t maybe_special(uint64_t x) {
    uint64_t lt = (x - ONES * 0x0E) & ~x & HIGHS;
    uint64_t y = (x | ONES * 0x02) ^ (ONES * 0x3E); /* '<' or '>' become 0 */
    uint64_t z = (x | ONES * 0x04) ^ (ONES * 0x26); /* '"' or '&' become 0 */
    return lt | ((y - ONES) & ~y & HIGHS) | ((z - ONES) & ~z & HIGHS);
}

/* The index of the first byte at or after i that needs a reference (mask: 1 text, 3 in an
 * attribute value), or n. Eight clean bytes at a time. */
static size_t next_special(const char *s, size_t n, size_t i, unsigned mask) {
    while (i < n) {
        uint64_t x;
        while (i + 8 <= n) {
            memcpy(&x, s + i, 8);
            if (maybe_special(x)) break;
            i += 8;
        }
        for (size_t lim = i + 8 < n ? i + 8 : n; i < lim; i++)
            if (esc_class[(unsigned char)s[i]] & mask) return i;
    }
    return n;
}

int tsq_xml_clean(const char *s, size_t n, int attr) { return next_special(s, n, 0, attr ? 3u : 1u) == n; }

static void xml_escape(tsq_buf *b, const char *s, size_t n, int attr) {
    unsigned mask = attr ? 3u : 1u;
    size_t run = 0;
    for (size_t i = next_special(s, n, 0, mask); i < n; i = next_special(s, n, i + 1, mask)) {
        const char *rep;
        size_t rl;
        switch (s[i]) {
        case '&': rep = "&amp;"; rl = 5; break;
        case '<': rep = "&lt;"; rl = 4; break;
        case '>': rep = "&gt;"; rl = 4; break;
        case '"': rep = "&quot;"; rl = 6; break;
        case '\r': rep = "&#xD;"; rl = 5; break;
        case '\n': rep = "&#xA;"; rl = 5; break;
        default: rep = "&#x9;"; rl = 5; break;
        }
        emit(b, s + run, i - run);
        emit(b, rep, rl);
        run = i + 1;
    }
    emit(b, s + run, n - run);
}

static int raw_ok(const wr *w, const tsq_node *n) { return !w->canonical && (n->flags & F_RAW) && n->src; }

/* The raw attributes of n's source start tag, one at a time: *q starts after the element
 * name (raw_attrs_begin); each call puts the next attribute's span in [*a, *b), from the
 * white space before its name to its closing quote, and returns 0 at the end of the tag. */
static uint32_t raw_attrs_begin(const tsq_node *n) {
    const char *s = n->src->bytes;
    uint32_t q = n->s0 + 1, end = n->s1;
    while (q < end && s[q] != ' ' && s[q] != '\t' && s[q] != '\r' && s[q] != '\n' && s[q] != '>' && s[q] != '/') q++;
    return q;
}

static int raw_attr_next(const tsq_node *n, uint32_t *q, uint32_t *a, uint32_t *b) {
    const char *s = n->src->bytes;
    uint32_t p = *q, end = n->s1, ws = p;
    while (p < end && (s[p] == ' ' || s[p] == '\t' || s[p] == '\r' || s[p] == '\n')) p++;
    if (p >= end || s[p] == '>' || s[p] == '/') return 0;
    while (p < end && s[p] != '"' && s[p] != '\'') p++;
    if (p >= end) return 0;
    char quote = s[p++];
    while (p < end && s[p] != quote) p++;
    p++;
    *a = ws;
    *b = *q = p;
    return 1;
}

/* The raw span of attribute `index` in n's source start tag. */
static int raw_attr_span(const tsq_node *n, int index, uint32_t *a, uint32_t *b) {
    uint32_t q = raw_attrs_begin(n);
    for (int k = 0; raw_attr_next(n, &q, a, b); k++)
        if (k == index) return 1;
    return 0;
}

/* Where the source start tag's attributes end. */
static uint32_t raw_tail(const tsq_node *n) {
    uint32_t q = raw_attrs_begin(n), a, b;
    while (raw_attr_next(n, &q, &a, &b)) {}
    return q;
}

static int has_content(const tsq_node *n) { return n->first || n->text_len > 0; }

static void put(wr *w, const char *s, size_t n) {
    if (w->fd >= 0 && n >= FLUSH_AT) {
        /* a large unchanged span goes from the source to the file without a copy */
        flush_out(w);
        write_all(w, s, n);
        return;
    }
    emit(w->out, s, n);
    if (w->fd >= 0 && w->out->len >= FLUSH_AT) flush_out(w);
}
static void puts_(wr *w, const char *s) { emit(w->out, s, strlen(s)); }
static void put_name(wr *w, const char *name) { emit(w->out, name, tsq_name_len(name)); }
#define PUTL(w, lit) emit((w)->out, lit, sizeof lit - 1) /* a string literal */

/* A new start tag whose values need no character reference (the common case for
 * elements made by the library): measured, then written in one piece. 0 when a value
 * needs escaping (the caller writes it the long way). */
static int start_tag_clean(wr *w, const tsq_node *n, int empty) {
    size_t nl = tsq_name_len(n->name), need = nl + 4;
    for (uint16_t i = 0; i < n->nattrs; i++) {
        const tsq_attr *a = &n->attrs[i];
        if (!a->clean) return 0;
        need += tsq_name_len(a->name) + a->len + 4;
    }
    if (!room(w->out, need)) return 1; /* out of memory: the buffer says so */
    char *d = w->out->data + w->out->len;
    *d++ = '<';
    memcpy(d, n->name, nl);
    d += nl;
    for (uint16_t i = 0; i < n->nattrs; i++) {
        const tsq_attr *a = &n->attrs[i];
        size_t al = tsq_name_len(a->name);
        *d++ = ' ';
        memcpy(d, a->name, al);
        d += al;
        *d++ = '=';
        *d++ = '"';
        memcpy(d, a->value, a->len);
        d += a->len;
        *d++ = '"';
    }
    if (!empty) {
        *d++ = '>';
    } else {
        if (w->nl && !w->canonical) *d++ = ' ';
        *d++ = '/';
        *d++ = '>';
    }
    w->out->len = (size_t)(d - w->out->data);
    return 1;
}

static void start_tag(wr *w, const tsq_node *n, int empty) {
    const char *src = n->src ? n->src->bytes : NULL;
    int src_empty = (n->flags & F_SRC_EMPTY) != 0;
    if (raw_ok(w, n) && !(n->flags & F_STAG)) {
        if (!src_empty || empty) {
            put(w, src + n->s0, n->s1 - n->s0);
            return;
        }
        /* was <x .../>, now has content: the same bytes up to the end of its attributes */
        uint32_t t = raw_tail(n);
        put(w, src + n->s0, t - n->s0);
        PUTL(w, ">");
        return;
    }
    if (!raw_ok(w, n) && start_tag_clean(w, n, empty)) return;
    PUTL(w, "<");
    put_name(w, n->name);
    /* the source's attribute spans, found in one pass (the first RAW_SPANS of them) */
    enum { RAW_SPANS = 32 };
    uint32_t sa[RAW_SPANS], sb[RAW_SPANS];
    int nspans = 0;
    if (raw_ok(w, n)) {
        uint32_t q = raw_attrs_begin(n);
        while (nspans < RAW_SPANS && raw_attr_next(n, &q, &sa[nspans], &sb[nspans])) nspans++;
    }
    for (uint16_t i = 0; i < n->nattrs; i++) {
        const tsq_attr *a = &n->attrs[i];
        uint32_t x, y;
        if (raw_ok(w, n) && a->raw >= 0) {
            if (a->raw < nspans) {
                put(w, src + sa[a->raw], sb[a->raw] - sa[a->raw]);
                continue;
            }
            if (nspans == RAW_SPANS && raw_attr_span(n, a->raw, &x, &y)) {
                put(w, src + x, y - x);
                continue;
            }
        }
        PUTL(w, " ");
        put_name(w, a->name);
        PUTL(w, "=\"");
        if (a->clean) emit(w->out, a->value, a->len);
        else xml_escape(w->out, a->value, a->len, 1);
        PUTL(w, "\"");
    }
    if (!empty) {
        PUTL(w, ">");
    } else if (raw_ok(w, n) && (n->flags & F_SRC_EMPTY)) {
        uint32_t t = raw_tail(n);
        put(w, src + t, n->s1 - t);
    } else {
        puts_(w, w->nl && !w->canonical ? " />" : "/>");
    }
}

/* Where n's source end tag starts: "</name>" as the reader found it, else the last '<'. */
static uint32_t raw_etag(const tsq_node *n) {
    const char *s = n->src->bytes;
    uint32_t k = (uint32_t)tsq_name_len(n->name) + 3;
    if (n->s2 >= n->s1 + k && s[n->s2 - k] == '<' && s[n->s2 - k + 1] == '/') return n->s2 - k;
    uint32_t e = n->s2 - 1;
    while (e > n->s1 && s[e] != '<') e--;
    return e;
}

static void end_tag(wr *w, const tsq_node *n) {
    if (raw_ok(w, n) && !(n->flags & F_SRC_EMPTY)) {
        uint32_t e = raw_etag(n);
        put(w, n->src->bytes + e, n->s2 - e);
        return;
    }
    size_t nl = tsq_name_len(n->name);
    if (!room(w->out, nl + 3)) return;
    char *d = w->out->data + w->out->len;
    d[0] = '<';
    d[1] = '/';
    memcpy(d + 2, n->name, nl);
    d[nl + 2] = '>';
    w->out->len += nl + 3;
}

static void leaf_text(wr *w, const tsq_node *n) {
    if (raw_ok(w, n) && !(n->flags & F_CONTENT) && !(n->flags & F_SRC_EMPTY)) {
        put(w, n->src->bytes + n->s1, raw_etag(n) - n->s1);
        return;
    }
    if (n->flags & F_CDATA_TEXT) {
        /* "]]>" can not stand inside a CDATA section: split it there */
        const char *t = n->text;
        size_t len = n->text_len, run = 0;
        PUTL(w, "<![CDATA[");
        for (size_t i = 0; i + 2 < len; i++)
            if (t[i] == ']' && t[i + 1] == ']' && t[i + 2] == '>') {
                put(w, t + run, i + 2 - run);
                PUTL(w, "]]><![CDATA[");
                run = i + 2;
            }
        put(w, t + run, len - run);
        PUTL(w, "]]>");
        return;
    }
    if (n->flags & F_TEXT_CLEAN) emit(w->out, n->text, n->text_len);
    else xml_escape(w->out, n->text, n->text_len, 0);
}

static void write_other(wr *w, const tsq_node *n) {
    if (raw_ok(w, n) && !(n->flags & F_DIRTY)) {
        put(w, n->src->bytes + n->s0, n->s2 - n->s0);
        return;
    }
    switch (n->type) {
    case N_TEXT: {
        size_t i = 0; /* layout white space goes out as it is, CR included */
        while (i < n->text_len && (n->text[i] == ' ' || n->text[i] == '\t' || n->text[i] == '\r' || n->text[i] == '\n')) i++;
        if (i == n->text_len) put(w, n->text, n->text_len);
        else xml_escape(w->out, n->text, n->text_len, 0);
        break;
    }
    case N_CDATA: PUTL(w, "<![CDATA["); put(w, n->text, n->text_len); PUTL(w, "]]>"); break;
    case N_COMMENT: PUTL(w, "<!--"); put(w, n->text, n->text_len); PUTL(w, "-->"); break;
    case N_PI: PUTL(w, "<?"); put(w, n->text, n->text_len); PUTL(w, "?>"); break;
    default: break;
    }
}

static void write_elem(wr *w, const tsq_node *n, const char *ind, size_t indlen, int depth);

static void newline_indent(wr *w, const char *ind, size_t indlen, int extra) {
    puts_(w, w->nl);
    put(w, ind, indlen);
    if (extra) puts_(w, w->unit);
}

/* The slot of a wrapper: the element whose content holds the sequence. */
static void write_slot_content(wr *w, const tsq_node *slot, const char *ind, size_t indlen, int depth);

static void write_children(wr *w, const tsq_node *n, const char *ind, size_t indlen, int depth) {
    int laid_out = 0; /* the children carry their own white space (ignored in canonical form) */
    for (const tsq_node *c = n->first; c && !w->canonical; c = c->next)
        if (c->type == N_TEXT) laid_out = 1;
    int pretty = !laid_out && w->nl && w->unit[0];
    size_t ul = strlen(w->unit);
    char cind[512];
    size_t cl = indlen + ul < sizeof cind ? indlen + ul : indlen;
    memcpy(cind, ind, indlen);
    if (cl > indlen) memcpy(cind + indlen, w->unit, ul);
    /* pretty: each child starts on a new line at the children's indentation, in one piece */
    char lead[520];
    size_t nll = pretty ? strlen(w->nl) : 0, leadl = 0;
    if (pretty && nll + cl <= sizeof lead) {
        memcpy(lead, w->nl, nll);
        memcpy(lead + nll, cind, cl);
        leadl = nll + cl;
    }
    for (const tsq_node *c = n->first; c && !w->failed; c = c->next) {
        if (!c->name) {
            if (!w->canonical) write_other(w, c);
            continue;
        }
        if (leadl) emit(w->out, lead, leadl);
        else if (pretty) newline_indent(w, ind, indlen, 1);
        if (laid_out && c->prev && c->prev->type == N_TEXT) {
            /* this child's indentation: what follows the last line break before it */
            const tsq_node *t = c->prev;
            uint32_t i = t->text_len;
            while (i > 0 && t->text[i - 1] != '\n') i--;
            if (i > 0 && t->text_len - i < sizeof cind) {
                memcpy(cind, t->text + i, t->text_len - i);
                cl = t->text_len - i;
            }
        }
        write_elem(w, c, cind, cl, depth + 1);
    }
    if (pretty && tsq_elem_first(n)) newline_indent(w, ind, indlen, 0);
}

static void write_elem(wr *w, const tsq_node *n, const char *ind, size_t indlen, int depth) {
    if (depth > MAX_WRITE_DEPTH) {
        if (!w->failed) tsq_err(w->err, TSQ_ELIMIT, "the document nests deeper than %d elements", MAX_WRITE_DEPTH);
        w->failed = 1;
        return;
    }
    if ((n->flags & F_CMD_STALE) && tsq_cmd_flush((tsq_node *)n) != TSQ_OK) {
        if (!w->failed) tsq_err(w->err, TSQ_ENOMEM, "out of memory");
        w->failed = 1;
        return;
    }
    int is_slot = w->doc && n == w->doc->slot;
    if (raw_ok(w, n) && !(n->flags & F_DIRTY)) {
        put(w, n->src->bytes + n->s0, n->s2 - n->s0);
        return;
    }
    if (is_slot) {
        start_tag(w, n, 0);
        write_slot_content(w, n, ind, indlen, depth);
        end_tag(w, n);
        return;
    }
    /* <x/> when it was written so (or made so) and still has nothing inside; a source
     * <x></x> keeps its end tag */
    int empty = !has_content(n) && (n->flags & F_EMPTY_TAG) && (!raw_ok(w, n) || (n->flags & F_SRC_EMPTY));
    start_tag(w, n, empty);
    if (empty) return;
    if (n->first)
        write_children(w, n, ind, indlen, depth);
    else if (n->text)
        leaf_text(w, n);
    end_tag(w, n);
}

/* ------------------------------------------------------------------ wrappers */

static tsq_status write_sequence(wr *w, const tsq_node *seq, const char *ind, size_t indlen) {
    write_elem(w, seq, ind, indlen, 0);
    return w->failed ? (w->err ? w->err->code : TSQ_ELIMIT) : TSQ_OK;
}

static void write_slot_content(wr *w, const tsq_node *slot, const char *ind, size_t indlen, int depth) {
    const tsq_doc *d = w->doc;
    const tsq_node *s = w->doc_seq;
    if (d->wrapper == TSQ_WRAP_CIM) {
        if (!(s->flags & F_DIRTY) && raw_ok(w, slot) && !(slot->flags & F_CONTENT)) {
            leaf_text(w, slot); /* the CDATA as it was */
            return;
        }
        /* the sequence as text in a CDATA section, with the text that surrounded it */
        tsq_buf inner;
        tsq_buf_init(&inner, w->out->ctx);
        tsq_buf_add(&inner, d->inner_pre, d->inner_pre_len);
        wr iw = *w;
        iw.out = &inner;
        iw.fd = -1;
        iw.nl = d->newline;
        iw.unit = d->indent;
        write_elem(&iw, s, "", 0, 0);
        tsq_buf_add(&inner, d->inner_post, d->inner_post_len);
        if (iw.failed) w->failed = 1;
        tsq_node tmp = *slot;
        tmp.text = inner.data ? inner.data : (char *)"";
        tmp.text_len = (uint32_t)inner.len;
        tmp.flags |= F_CDATA_TEXT | F_CONTENT;
        leaf_text(w, &tmp);
        if (inner.failed) w->out->failed = 1;
        tsq_buf_free(&inner);
        return;
    }
    /* PACKAGE: the slot's children, with the sequence at its place */
    char cind[512];
    size_t cl = indlen;
    memcpy(cind, ind, indlen < sizeof cind ? indlen : sizeof cind - 1);
    const tsq_node *c = slot->first;
    for (;;) {
        if (c == d->slot_before) {
            size_t l = cl;
            if (s->prev == NULL && c && c->prev && c->prev->type == N_TEXT) {
                const tsq_node *t = c->prev;
                uint32_t i = t->text_len;
                while (i > 0 && t->text[i - 1] != '\n') i--;
                l = t->text_len - i < sizeof cind ? t->text_len - i : 0;
                memcpy(cind, t->text + i, l);
            }
            write_elem(w, s, cind, l, depth + 1);
        }
        if (!c) break;
        if (c->name)
            write_elem(w, c, cind, cl, depth + 1);
        else
            write_other(w, c);
        c = c->next;
    }
}

static tsq_status do_write(const tsq_node *seq, tsq_buf *out, int canonical, int fd, tsq_error *err) {
    if (!seq || seq->type != N_SEQUENCE || !seq->doc) return tsq_err(err, TSQ_EINVAL, "not a sequence");
    const tsq_doc *d = seq->doc;
    wr w;
    memset(&w, 0, sizeof w);
    w.out = out;
    w.doc = d;
    w.doc_seq = seq;
    w.canonical = canonical;
    w.err = err;
    w.fd = fd;
    w.nl = canonical ? "\n" : d->newline;
    w.unit = canonical ? "  " : d->indent;
    if (!w.nl) w.unit = "";
    const tsq_node *top = d->outer ? d->outer : seq;
    const tsq_src *src = d->src;
    if (src && !canonical) put(&w, src->bytes, d->prolog_end);
    if (d->outer) {
        write_elem(&w, top, "", 0, 0);
    } else {
        write_sequence(&w, seq, "", 0);
    }
    if (src && !canonical)
        put(&w, src->bytes + d->epilog_start, src->len - d->epilog_start);
    else
        PUTL(&w, "\n");
    tsq_buf_add(out, "", 0); /* the NUL that emit leaves out */
    if (fd >= 0 && !out->failed) flush_out(&w);
    if (out->failed) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    if (w.failed) return err ? err->code : TSQ_ELIMIT;
    if (w.io_errno) return tsq_err(err, TSQ_EIO, "%s", strerror(w.io_errno));
    return TSQ_OK;
}

tsq_status tsq_write(const tsq_node *seq, tsq_buf *out, tsq_error *err) { return do_write(seq, out, 0, -1, err); }
tsq_status tsq_write_canonical(const tsq_node *seq, tsq_buf *out, tsq_error *err) { return do_write(seq, out, 1, -1, err); }

/* ------------------------------------------------------------------ saving */

tsq_status tsq_save(const tsq_node *seq, const char *path, tsq_error *err) {
    if (err) {
        memset(err, 0, sizeof *err);
        snprintf(err->file, sizeof err->file, "%s", path);
    }
    if (!seq || seq->type != N_SEQUENCE || !seq->doc) return tsq_err(err, TSQ_EINVAL, "not a sequence");
    /* keep the mode of the file it replaces; a new file gets 0666 less the umask, which
     * the kernel applies at open (reading the umask would change process state) */
    struct stat old;
    int have_old = stat(path, &old) == 0;
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 40);
    if (!tmp) return tsq_err(err, TSQ_ENOMEM, "out of memory");
    /* a temporary name beside the target, so that rename stays on one file system */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long seed = (unsigned long)ts.tv_nsec ^ ((unsigned long)(uintptr_t)&ts >> 4) ^ ((unsigned long)getpid() << 16);
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, pl + 40, "%s.tsq-%08lx", path, (seed + (unsigned long)tries * 2654435761u) & 0xffffffffu);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, have_old ? 0600 : 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        tsq_status st = tsq_err(err, TSQ_EIO, "can not create a temporary file beside it: %s", strerror(errno));
        free(tmp);
        return st;
    }
    tsq_buf b;
    tsq_buf_init(&b, seq->ctx);
    /* about the size it was read at, up to where it goes to the file: no growing copies */
    size_t was = seq->doc->src ? seq->doc->src->len : 0;
    if (was) tsq_buf_reserve(&b, was + was / 8 < FLUSH_AT ? was + was / 8 : FLUSH_AT);
    tsq_status st = do_write(seq, &b, 0, fd, err);
    tsq_buf_free(&b);
    int ok = st == TSQ_OK, saved = 0;
    if (ok && have_old && fchmod(fd, old.st_mode & 07777) != 0) { ok = 0; saved = errno; }
    if (close(fd) != 0 && ok) { ok = 0; saved = errno; }
    if (ok && rename(tmp, path) != 0) { ok = 0; saved = errno; }
    if (!ok) {
        unlink(tmp);
        if (st == TSQ_OK) st = tsq_err(err, TSQ_EIO, "%s", strerror(saved));
    }
    free(tmp);
    return st;
}
