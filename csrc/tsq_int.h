/* tsq_int.h - internals shared by the core's .c files. Not installed. */
#ifndef TSQ_INT_H
#define TSQ_INT_H

#include "tsq.h"
#include <string.h>

#define TSQ_UNUSED(x) ((void)(x))

/* ------------------------------------------------------------------ atoms
 * Interned names the core compares by pointer. Order matches atom_names in ctx.c. */
enum {
    A_sequence, A_group, A_step, A_subtasksequence, A_action, A_defaultVarList,
    A_variable, A_condition, A_expression, A_operator, A_osConditionGroup,
    A_osExpressionGroup, A_platformKey, A_globalVarList, A_referenceList, A_reference,
    A_name, A_description, A_type, A_disable, A_continueOnError, A_timeout, A_runIn,
    A_successCodeList, A_retryCount, A_runFromNet, A_property, A_hidden, A_version,
    A_INSTANCE, A_PROPERTY, A_VALUE, A_NAME, A_SmsTaskSequencePackage, A_SequenceData,
    A_COUNT
};

/* ------------------------------------------------------------------ context */

typedef struct tsq_intern {
    const char **slots; /* open addressing; NULL = empty */
    size_t cap, count;
} tsq_names;

typedef struct tsq_slab {
    struct tsq_slab *next;
    size_t count; /* node structs after the header */
} tsq_slab;

struct tsq_ctx {
    tsq_alloc_fn alloc;
    void *ud;
    tsq_limits limits;
    tsq_names names;
    const char *atom[A_COUNT];
    int pool;             /* 0: TSQ_NO_POOL was set, every node and block is its own allocation */
    int read_thread;      /* TSQ_READ_THREAD: -1 by size (the default), 0 never, 1 always */
    int exiting;          /* tsq_ctx_exiting: trees are not freed any more */
    tsq_node *free_nodes; /* node structs ready for use (linked through next) */
    struct tsq_slab *slabs; /* the blocks node structs are cut from, freed with the context */
    void *small_free[64];   /* tsq_small_alloc: free blocks of 16, 32, ... 1024 bytes */
    struct tsq_slab *small_chunks; /* the blocks small ones are cut from */
    char *small_at;         /* the unused end of the newest chunk */
    size_t small_left;
    size_t slab_nodes;    /* node structs cut so far: the next slab is as large (32 to 1024) */
    tsq_node **protos;    /* per action class: the prototype new actions copy, or NULL */
    struct tsq_chunk *spare_chunks; /* arena chunks of freed sources, for the next document */
    size_t spare_bytes;
    tsq_buf scratch;      /* cmdline.c: command texts are rendered here (see scratch_buf) */
    /* steps.c: what tsq_node_child, tsq_node_index and tsq_node_count last learnt of a
     * few parents: a step and its index, the number of steps. Kept up to date as steps
     * are linked and unlinked (tsq_child_at_linked, _unlinking), dropped when the parent
     * or the step is destroyed. (The reader links without the hooks: only into nodes it
     * has just made, which no entry can name.) */
    struct tsq_child_at {
        const struct tsq_node *parent; /* NULL: unused */
        struct tsq_node *node;         /* NULL: only the count is known */
        size_t index;
        size_t count;                  /* CHILD_COUNT_UNKNOWN, else the number of steps */
    } child_at[4];
    unsigned child_at_next; /* the entry a new parent takes */
};
#define CHILD_COUNT_UNKNOWN ((size_t)-1)
/* steps.c: keep ctx->child_at true when a step is linked into or about to be unlinked
 * from parent, and when a node is destroyed. */
void tsq_child_at_linked(struct tsq_node *parent, const struct tsq_node *child);
void tsq_child_at_unlinking(struct tsq_node *parent, const struct tsq_node *child);
void tsq_child_at_destroyed(tsq_ctx *ctx, const struct tsq_node *n);
void tsq_protos_free(tsq_ctx *ctx); /* cmdline.c */
void tsq_spare_chunks_free(tsq_ctx *ctx); /* ctx.c: the arena chunks it keeps */

void *tsq_ctx_alloc(tsq_ctx *ctx, void *p, size_t osize, size_t nsize);
/* Blocks of at most 1024 bytes from per-context free lists (freed with the exact size
 * they were allocated with); larger ones from the context's allocator. The blocks of a
 * freed document are reused by the next; the memory goes back with the context. */
void *tsq_small_alloc(tsq_ctx *ctx, size_t size);
void tsq_small_free(tsq_ctx *ctx, void *p, size_t size);
char *tsq_stralloc(tsq_ctx *ctx, size_t n); /* n bytes to fill and a NUL at [n] */
char *tsq_strndup(tsq_ctx *ctx, const char *s, size_t n);
void tsq_strfree(tsq_ctx *ctx, char *s); /* frees a string from tsq_stralloc or tsq_strndup */
/* Interns s[0..n): the same pointer for equal strings, for the context's lifetime. */
const char *tsq_intern_n(tsq_ctx *ctx, const char *s, size_t n);
const char *tsq_intern(tsq_ctx *ctx, const char *s);
/* The length of an interned name: tsq_strndup keeps the block size in front of it. */
/* strcmp(a, b) == 0, with the first bytes compared in line: most names looked up in a
 * list differ there, and the call is skipped. */
static inline int tsq_streq(const char *a, const char *b) { return a[0] == b[0] && strcmp(a, b) == 0; }
static inline size_t tsq_name_len(const char *name) { return ((const size_t *)(const void *)name)[-1] - sizeof(size_t) - 1; }
/* Room for n more bytes (and the NUL) in b; 0 when out of memory (b->failed is set). */
int tsq_buf_reserve(tsq_buf *b, size_t n);

/* ------------------------------------------------------------------ errors */

tsq_status tsq_err(tsq_error *err, tsq_status code, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Sets err->step to the path of n (when err is not NULL). */
void tsq_err_step(tsq_error *err, const tsq_node *n);

/* ------------------------------------------------------------------ sources
 * The bytes a tree was read from, kept so that unchanged parts are written back as they
 * were. Reference counted by the nodes pointing into it; nodes made by the parser are
 * allocated in its arena. */
typedef struct tsq_chunk tsq_chunk;

typedef struct tsq_src {
    tsq_ctx *ctx;
    char *bytes;   /* the document text; owned */
    size_t len;
    size_t refs;   /* nodes using it + holders */
    int mapped;    /* bytes is a private mapping of the file (tsq_load), else from tsq_malloc */
    tsq_chunk *chunks; /* arena */
    char *at;          /* the free end of the current chunk, `left` bytes */
    size_t left;
} tsq_src;

tsq_src *tsq_src_new(tsq_ctx *ctx, char *bytes, size_t len); /* takes bytes */
/* Frees document bytes: unmapped when mapped, else back to tsq_free (len + 1 bytes). */
void tsq_bytes_free(tsq_ctx *ctx, char *bytes, size_t len, int mapped);
void tsq_src_ref(tsq_src *s);
void tsq_src_unref(tsq_src *s);
void tsq_src_unref_n(tsq_src *s, size_t n); /* n releases at once; s may be NULL */
void *tsq_src_arena_grow(tsq_src *s, size_t size);
/* Moves from's arena chunks to s (s's current chunk stays current; when s has none,
 * from's becomes it). */
void tsq_src_adopt(tsq_src *s, tsq_src *from);
/* Frees s's arena chunks (a source that nothing was read into). */
void tsq_src_drop(tsq_src *s);
/* 8-byte aligned, lives as long as s, from the current chunk (size rounded already);
 * NULL when it has no room */
static inline void *tsq_src_arena_fit(tsq_src *s, size_t size) {
    if (size > s->left) return NULL;
    void *p = s->at;
    s->at += size;
    s->left -= size;
    return p;
}
/* 8-byte aligned, lives as long as s; the reader calls this for every node and value */
static inline void *tsq_src_arena(tsq_src *s, size_t size) {
    size = (size + 7) & ~(size_t)7;
    void *p = tsq_src_arena_fit(s, size);
    return p ? p : tsq_src_arena_grow(s, size);
}

/* ------------------------------------------------------------------ nodes
 * Every element of a document is a node; step-level API functions see only the step
 * kinds. Leaf text lives in the element; whitespace and any other content between
 * child elements are child nodes of kind N_TEXT (N_COMMENT, N_PI, N_CDATA). */
typedef enum {
    N_ELEM = 0,   /* any other element */
    N_SEQUENCE,   /* <sequence> */
    N_GROUP,      /* <group> */
    N_ACTION,     /* <step>, <subtasksequence> */
    N_TEXT,       /* character data between child elements */
    N_COMMENT,
    N_PI,
    N_CDATA
} tsq_ntype;

typedef struct tsq_attr {
    const char *name;  /* interned */
    char *value;       /* decoded, NUL-terminated */
    uint32_t len;
    int16_t raw;       /* index of the attribute in the source start tag, -1 if new or changed */
    uint8_t owned;     /* value allocated separately (else in the source arena) */
    uint8_t clean;     /* 1: the value needs no character reference in an attribute */
} tsq_attr;

/* 1 when s[0..n) needs no character reference: in an attribute value (attr) none of
 * & < > " CR LF TAB, in text none of & < > CR. Eight bytes at a time. */
int tsq_xml_clean(const char *s, size_t n, int attr);

/* node flags */
enum {
    F_ARENA = 1 << 0,      /* the struct lives in src's arena */
    F_RAW = 1 << 1,        /* s0..s2 locate the element in src */
    F_EMPTY_TAG = 1 << 2,  /* written as <x/> (or <x />) */
    F_STAG = 1 << 3,       /* attributes changed: the start tag must be regenerated */
    F_CONTENT = 1 << 4,    /* text or children changed: content must be regenerated */
    F_DIRTY = 1 << 5,      /* this node or one below it changed */
    F_TEXT_OWNED = 1 << 6, /* text allocated separately */
    F_ATTRS_OWNED = 1 << 7,/* attrs array allocated separately */
    F_CDATA_TEXT = 1 << 8, /* leaf text came from a CDATA section */
    F_CMD_STALE = 1 << 9,  /* action: properties changed, <action> must be regenerated */
    F_SRC_EMPTY = 1 << 10, /* the source wrote it <x/> (F_EMPTY_TAG says how to write it now) */
    F_VALUES_OWNED = 1 << 11, /* some attribute value may be allocated separately */
    F_COND = 1 << 12,         /* a step that may have a <condition> child (none without it) */
    F_TEXT_CLEAN = 1 << 13    /* the leaf text needs no character reference (tsq_xml_clean) */
};

struct tsq_doc;
struct tsq_cond;

/* tsq_node.cls_valid: not looked up yet; looked up (cls may be NULL); looked up, and the
 * type attribute is the class's own name (tsq_node_type may return the catalogue's string). */
enum { CLS_UNKNOWN = 0, CLS_KNOWN = 1, CLS_CANONICAL = 2 };

struct tsq_node {
    tsq_node *parent, *next, *prev, *first, *last;
    tsq_ctx *ctx;
    const char *name;      /* interned element name; NULL for non-elements */
    tsq_attr *attrs;
    char *text;            /* leaf text (elements), content (text/comment/pi/cdata); may be NULL */
    tsq_src *src;          /* where s0..s2 point; NULL for new nodes */
    struct tsq_doc *doc;   /* N_SEQUENCE only: the document it heads */
    struct tsq_ccache *cc; /* steps: cached parsed/compiled condition, or NULL */
    uint32_t text_len;
    uint32_t s0, s1, s2;   /* start '<', end of start tag, end of element (exclusive) */
    uint32_t refs;         /* retains of this node */
    uint32_t tree_refs;    /* roots: retains of all nodes in the tree */
    uint16_t nattrs, cattrs;
    uint16_t flags;
    uint8_t type;          /* tsq_ntype */
    uint8_t cls_valid;     /* CLS_*: whether cls was looked up */
    const void *cls;       /* actions: catalogue class (const tsq_class *), or NULL */
};

/* Node allocation (new nodes, not from the parser). */
tsq_node *tsq_node_alloc(tsq_ctx *ctx, tsq_ntype type, const char *name);
/* Frees n and its subtree, no matter the references (used by release and on errors). */
void tsq_node_destroy(tsq_node *n);
/* Marks n changed: flags |= f on n, F_DIRTY up to the root. */
void tsq_node_touch(tsq_node *n, unsigned f);
/* Low-level child list operations on any nodes (no checks, no reference moves). */
void tsq_node_link(tsq_node *parent, tsq_node *before, tsq_node *child);
void tsq_node_unlink(tsq_node *child);
int tsq_node_is_step(const tsq_node *n);
/* Sum of the retains of n and every node below it. */
uint32_t tsq_subtree_refs(const tsq_node *n);
/* Sets a step attribute, placed in ConfigMgr's attribute order when new. */
tsq_status tsq_node_set_attr_ordered(tsq_node *n, int atom, const char *value);

/* Attributes */
const char *tsq_attr_get(const tsq_node *n, const char *atom); /* interned name; NULL when absent */
tsq_attr *tsq_attr_find(const tsq_node *n, const char *atom);
/* Sets (or adds, at the end or before `before_atom` when it is present) an attribute. */
tsq_status tsq_attr_set(tsq_node *n, const char *atom, const char *value, size_t len);
tsq_status tsq_attr_set_before(tsq_node *n, const char *atom, const char *value, size_t len,
                               const char *const *order);
void tsq_attr_remove(tsq_node *n, const char *atom);
/* Replaces the leaf text of an element. */
tsq_status tsq_node_set_text(tsq_node *n, const char *s, size_t len);

/* Element children helpers */
tsq_node *tsq_elem_child(const tsq_node *n, const char *atom); /* first child element with that name */
tsq_node *tsq_elem_next(const tsq_node *n);                    /* next sibling element */
tsq_node *tsq_elem_first(const tsq_node *n);                   /* first child element */

/* New elements placed with the document's layout: when the siblings around are
 * indented, whitespace text is inserted to match. `before` NULL appends. */
tsq_status tsq_elem_insert(tsq_node *parent, tsq_node *before, tsq_node *child);
/* Removes an element with the whitespace that preceded it. */
void tsq_elem_remove(tsq_node *child);

/* ------------------------------------------------------------------ documents */

typedef struct tsq_doc {
    tsq_wrapper wrapper;
    tsq_node *outer;       /* wrappers: the outer tree (INSTANCE or SmsTaskSequencePackage) */
    tsq_node *slot;        /* wrappers: the element that holds the sequence (VALUE / SequenceData) */
    tsq_node *slot_before; /* PACKAGE: the child the sequence is written before (NULL: at the end) */
    char *inner_pre, *inner_post; /* CIM: text around <sequence> inside the CDATA */
    uint32_t inner_pre_len, inner_post_len;
    tsq_src *src;          /* the outer source: prolog and epilog */
    uint32_t prolog_end, epilog_start; /* in src; prolog [0, prolog_end), epilog [epilog_start, len) */
    char *path;            /* loaded from */
    const char *newline;   /* "\n" or "\r\n"; NULL when the document has no line breaks */
    char indent[16];       /* one level of indentation ("  ", "\t"), "" when not indented */
} tsq_doc;

tsq_doc *tsq_doc_new(tsq_ctx *ctx);
tsq_doc *tsq_doc_clone(tsq_ctx *ctx, const tsq_doc *d);
void tsq_doc_free(tsq_ctx *ctx, tsq_doc *d);
/* The sequence above n, or NULL. */
tsq_node *tsq_node_sequence(const tsq_node *n);

/* libxml2's one-time initialisation (pthread_once). */
void tsq_xml_init(void);

/* Depth-first traversal over all nodes under top (not top itself). */
tsq_node *tsq_tree_next(const tsq_node *top, const tsq_node *cur);

/* Condition cache hooks (eval.c) called when a step's condition element changes
 * or the node is destroyed. */
void tsq_ccache_free(tsq_ctx *ctx, struct tsq_ccache *cc);

#endif
