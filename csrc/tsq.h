/*
 * tsq.h - tasksequence: ConfigMgr / MDT task sequences as a C library.
 *
 * The object model (sequence, group, action, condition), typed properties from the
 * built-in class catalogue, condition evaluation against a described machine, an
 * execution engine producing SMS_TaskSequenceExecutionStatus records, and lossless
 * XML reading and writing.
 *
 * Conventions (read once, they hold for every function below):
 *
 *  - Everything lives in a tsq_ctx: its allocator, its interned names, its objects.
 *    A context and all objects made in it are used by one thread at a time; separate
 *    contexts on separate threads never share mutable state. The library has no
 *    global mutable state (libxml2 is initialised once through pthread_once).
 *  - Fallible functions return a tsq_status (TSQ_OK == 0) and fill the caller's
 *    tsq_error when it is not NULL: a code, a message, and where known the file,
 *    line and column, or the path of the step.
 *  - Nodes: a sequence, group or action is a tsq_node. A node has at most one parent.
 *    Trees are reference counted as a whole: tsq_node_retain/release count references
 *    to any node of a tree; a tree is freed when its root has no parent and no node of
 *    it is retained. Functions returning a node the caller must release say "(+1)";
 *    all others return borrowed pointers, valid while the tree holding them lives and
 *    the node stays in it.
 *  - Strings returned as const char * are owned by the object they come from and stay
 *    valid until that object changes or is freed. Strings are UTF-8, NUL-terminated.
 *  - Destructors accept NULL.
 *  - Callbacks (allocator, fact providers, step handlers, loaders, clocks, trace, plan
 *    and problem functions) run on the thread that made the call (one exception: while
 *    tsq_load or tsq_parse reads a document in two halves, they also call the allocator
 *    from their helper thread, never at the same time as from the calling thread;
 *    tsq_ctx_set_read_thread(ctx, 0) keeps every call on one thread), must return normally
 *    (no longjmp or C++ exception through the library: it holds memory across them) and
 *    must not change the tree or environment being walked unless a function says so.
 *  - Functions that only read static tables (tsq_version, tsq_status_name, tsq_class_*,
 *    tsq_status_message_name, tsq_plan_state_name) are safe from any thread at any time.
 *  - A pointer argument may be NULL only where a function says so.
 */
#ifndef TSQ_H
#define TSQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header. TSQ_VERSION is what tsq_version() returns for a library
 * built from it; a host can compare the two at startup. The numeric forms are for #if. */
#define TSQ_VERSION "0.1.0"
#define TSQ_VERSION_MAJOR 0
#define TSQ_VERSION_MINOR 1
#define TSQ_VERSION_PATCH 0
#define TSQ_VERSION_NUM 100 /* major * 10000 + minor * 100 + patch */

#if defined(TSQ_BUILDING) && defined(__GNUC__)
#define TSQ_API __attribute__((visibility("default")))
#else
#define TSQ_API
#endif

/* The runtime version string; equal to TSQ_VERSION for a matching header. */
TSQ_API const char *tsq_version(void);

/* ---------------------------------------------------------------- status, errors */

typedef enum tsq_status {
    TSQ_OK = 0,
    TSQ_ENOMEM,    /* an allocation failed */
    TSQ_EINVAL,    /* misuse: a bad argument, a node that already has a parent, a cycle */
    TSQ_EPARSE,    /* a document or a condition text is malformed */
    TSQ_EIO,       /* a file could not be read or written */
    TSQ_ELIMIT,    /* a configured limit (depth, size) was exceeded */
    TSQ_ENOTFOUND, /* no such property, class, step or file */
    TSQ_ETYPE,     /* a value of the wrong type for a property */
    TSQ_EFACT,     /* the environment does not describe a fact a condition needs */
    TSQ_EHANDLER,  /* a host handler or loader failed */
    TSQ_ESTATE     /* the object is not in a state that allows the call */
} tsq_status;

typedef struct tsq_error {
    tsq_status code;
    int line, column;   /* 1-based; 0 when not known */
    char file[256];     /* the document path or name; "" when not known */
    char step[256];     /* the step path ("Install/Drivers/Dell 7420"); "" when none */
    char message[768];  /* lowercase sentence, no trailing newline */
} tsq_error;

/* The name of a status code ("out of memory", "parse error", ...). */
TSQ_API const char *tsq_status_name(tsq_status s);
/* Formats err as 'file:line:col: step "path": message' (the parts that are known) into
 * buf, truncating to size; returns buf. */
TSQ_API const char *tsq_error_format(const tsq_error *err, char *buf, size_t size);

/* ---------------------------------------------------------------- context */

/* Allocator in the style of lua_Alloc: nsize == 0 frees and returns NULL; otherwise
 * returns a block of nsize bytes holding the first min(osize, nsize) bytes of ptr. */
typedef void *(*tsq_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

typedef struct tsq_ctx tsq_ctx;

/* Limits applied when reading documents. Zero fields mean "the default". */
typedef struct tsq_limits {
    uint32_t max_depth;       /* element nesting; default 256 */
    uint64_t max_document;    /* bytes of one document; default 1 GiB; at most 4 GiB - 1 */
    uint64_t max_text;        /* bytes of one text node or attribute value; default 10,000,000 */
    uint32_t max_cond_depth;  /* condition operator nesting; default 64 */
} tsq_limits;

/* A new context, with the given allocator (NULL: malloc/realloc/free) and its user data;
 * NULL when out of memory. The allocator is called only from calls on this context (see
 * tsq_load for the one call that makes it from a second thread as well). The
 * context keeps the node structs and small blocks of freed documents for the next ones
 * and returns them when it is freed; with TSQ_NO_POOL=1 in the environment when it is
 * made, every node and block is allocated and freed on its own (for memory checkers). */
TSQ_API tsq_ctx *tsq_ctx_new(tsq_alloc_fn alloc, void *ud);
/* Frees the context. Every object made in it (trees, conditions, environments, runs,
 * buffers) must have been released before: they use its allocator and names. */
TSQ_API void tsq_ctx_free(tsq_ctx *ctx);
/* The limits in effect, defaults filled in. */
TSQ_API void tsq_ctx_get_limits(const tsq_ctx *ctx, tsq_limits *out);
/* Applies to documents read afterwards. TSQ_EINVAL (nothing changed) for a value out of
 * range, e.g. max_document of 4 GiB or more. */
TSQ_API tsq_status tsq_ctx_set_limits(tsq_ctx *ctx, const tsq_limits *limits, tsq_error *err);
/* Whether documents read in this context are read in two halves by two threads (see
 * tsq_load): 0 never, 1 always (where the document allows it), -1 by size (from 64 KiB, on
 * a machine with two CPUs or more; the default unless TSQ_READ_THREAD was set when the
 * context was made). A host that already reads on one thread per CPU (tsq apply --jobs N)
 * turns it off, and so does a host whose allocator must only ever be called from the
 * thread that made the context. */
TSQ_API void tsq_ctx_set_read_thread(tsq_ctx *ctx, int mode);
/* The process is about to exit: from now on a tree whose last reference goes is left to
 * the operating system instead of being freed node by node, and so are the trees still
 * alive when the context is freed (freeing a few hundred megabytes of nodes is a
 * noticeable part of a short program's run; tsq calls this before it closes its Lua
 * state). A context made with TSQ_NO_POOL in the environment ignores it, so that memory
 * checkers still see every block freed. */
TSQ_API void tsq_ctx_exiting(tsq_ctx *ctx);

/* Memory from and back to the context; `size` must be the size allocated. Blocks up to
 * 1,024 bytes are kept on the context's free lists for reuse (and go back to its allocator
 * with the context), larger ones come from and go back to the allocator directly.
 * tsq_malloc returns NULL when out of memory. tsq_realloc resizes a block of osize bytes
 * (ptr NULL: a new block, osize ignored; nsize 0: frees it and returns NULL); it has the
 * shape of a lua_Alloc, so a host can give a Lua state a context of its own as its
 * allocator (tsq does), with the context's limits on nothing but the memory's reuse. */
TSQ_API void *tsq_malloc(tsq_ctx *ctx, size_t size);
TSQ_API void *tsq_realloc(tsq_ctx *ctx, void *ptr, size_t osize, size_t nsize);
TSQ_API void tsq_free(tsq_ctx *ctx, void *ptr, size_t size);

/* A growable byte buffer in the context's allocator; used for text output. Functions
 * that "return the string in buf" replace its contents; tsq_write* append. The data
 * pointer changes when the buffer grows. */
typedef struct tsq_buf {
    tsq_ctx *ctx;
    char *data; /* NUL-terminated after every append */
    size_t len, cap;
    int failed; /* set when an allocation failed; later appends do nothing */
} tsq_buf;

/* Allocates nothing: data is NULL until the first append. */
TSQ_API void tsq_buf_init(tsq_buf *b, tsq_ctx *ctx);
/* Frees the data (a buffer set up by tsq_buf_init or zeroed is fine); `failed` stays set
 * until the next tsq_buf_init. */
TSQ_API void tsq_buf_free(tsq_buf *b);
/* Appends n bytes (which may contain NUL); on allocation failure sets `failed`. */
TSQ_API void tsq_buf_add(tsq_buf *b, const char *s, size_t n);
TSQ_API void tsq_buf_adds(tsq_buf *b, const char *s);

/* ---------------------------------------------------------------- nodes */

typedef struct tsq_node tsq_node;

typedef enum tsq_kind {
    TSQ_SEQUENCE = 1, /* <sequence>: the root group of a document */
    TSQ_GROUP,        /* <group> */
    TSQ_ACTION        /* <step> or <subtasksequence> */
} tsq_kind;

/* A new empty sequence (version 3.10, no wrapper) (+1). */
TSQ_API tsq_node *tsq_sequence_new(tsq_ctx *ctx);
/* A new group with the given name (+1). */
TSQ_API tsq_node *tsq_group_new(tsq_ctx *ctx, const char *name);
/* A new action of class `type` (full or short name: "RunCommandLine" ==
 * "SMS_TaskSequence_RunCommandLineAction"), filled with the console's defaults for a
 * catalogued class (environment, success codes, retry count, default variables) (+1).
 * An uncatalogued class ("BDD_Gather") gets an empty action. */
TSQ_API tsq_status tsq_action_new(tsq_ctx *ctx, const char *type, const char *name,
                                  tsq_node **out, tsq_error *err);

/* One more / one less reference to n's tree (NULL is ignored). The last release of a
 * tree that has no parent frees every node of it. A reference follows the node: after
 * a move, it keeps the node's new tree alive. */
TSQ_API void tsq_node_retain(tsq_node *n);
TSQ_API void tsq_node_release(tsq_node *n);
/* tsq_node_retain (tsq_node_release) on each of nodes[0..count), NULLs skipped: the same
 * counts, with one walk to the root per run of nodes that share a parent (a plan or a
 * search holding thousands of steps). */
TSQ_API void tsq_node_retain_all(tsq_node *const *nodes, size_t count);
TSQ_API void tsq_node_release_all(tsq_node *const *nodes, size_t count);
/* How many references are held on n itself (not on the rest of its tree). A host that
 * keeps one object per node, each holding a reference, knows there is none for n when
 * this is 0 and can skip its look-up (the Lua binding does). */
TSQ_API uint32_t tsq_node_refs(const tsq_node *n);

TSQ_API tsq_ctx *tsq_node_ctx(const tsq_node *n);
TSQ_API tsq_kind tsq_node_kind(const tsq_node *n);
/* The class name: "SMS_TaskSequence_Group" for groups, "SMS_TaskSequence" for a
 * sequence, the `type` attribute for actions ("" when a step has none). For a catalogued
 * class it is the catalogue's own string (tsq_class_info.name), the same pointer for every
 * step of the class and valid for the life of the program (a type written with a short
 * name, "RunCommandLine", is returned as written). */
TSQ_API const char *tsq_node_type(const tsq_node *n);
/* The XML element name: "sequence", "group", "step", "subtasksequence". */
TSQ_API const char *tsq_node_element(const tsq_node *n);

/* Tree navigation over steps (groups and actions) only. */
TSQ_API tsq_node *tsq_node_parent(const tsq_node *n);   /* NULL for a root */
TSQ_API tsq_node *tsq_node_root(const tsq_node *n);     /* the outermost ancestor, or n */
TSQ_API size_t tsq_node_count(const tsq_node *n);       /* number of child steps */
TSQ_API tsq_node *tsq_node_child(const tsq_node *n, size_t index); /* 0-based; NULL past the end */
TSQ_API tsq_node *tsq_node_first(const tsq_node *n);
TSQ_API tsq_node *tsq_node_next(const tsq_node *n);
TSQ_API tsq_node *tsq_node_prev(const tsq_node *n);
/* 0-based index among its parent's steps; (size_t)-1 for a root. */
TSQ_API size_t tsq_node_index(const tsq_node *n);
/* Depth below the sequence: its top-level steps are at depth 1. */
TSQ_API int tsq_node_depth(const tsq_node *n);
/* Depth-first, document order: the step after `cur` inside `top` (cur == NULL: the
 * first). `top` itself is not visited. NULL at the end. */
TSQ_API tsq_node *tsq_node_walk(const tsq_node *top, const tsq_node *cur);
/* The path of a step: names from the sequence down joined by '/' ("Install/Drivers/x"),
 * and the index form ("3.2.1", 1-based). Returns the string in buf ("" when out of memory,
 * with buf->failed set). */
TSQ_API const char *tsq_node_path(const tsq_node *n, tsq_buf *buf);
TSQ_API const char *tsq_node_index_path(const tsq_node *n, tsq_buf *buf);

/* Tree edits. `child` must have no parent and must not be `parent` or one of its
 * ancestors; the sequence of a document can not be a child. index (size_t)-1 appends. */
TSQ_API tsq_status tsq_node_insert(tsq_node *parent, size_t index, tsq_node *child, tsq_error *err);
/* Detaches n from its parent; the caller owns it (+1). NULL when n has no parent.
 * References held on nodes of the detached part move with it. */
TSQ_API tsq_node *tsq_node_remove(tsq_node *n);
/* Moves n under new_parent at index (same rules as insert; n may have a parent). */
TSQ_API tsq_status tsq_node_move(tsq_node *n, tsq_node *new_parent, size_t index, tsq_error *err);
/* A deep copy in the same context, detached (+1); NULL when out of memory. A sequence's
 * copy keeps its wrapper. */
TSQ_API tsq_node *tsq_node_clone(const tsq_node *n);

/* Common step properties. Getters never fail ("" / 0 when unset); setters return
 * TSQ_EINVAL for a NULL name (a NULL description is "") and TSQ_ENOMEM. Returned strings
 * are valid until the property changes. */
TSQ_API const char *tsq_node_name(const tsq_node *n);
TSQ_API tsq_status tsq_node_set_name(tsq_node *n, const char *name);
TSQ_API const char *tsq_node_description(const tsq_node *n);
TSQ_API tsq_status tsq_node_set_description(tsq_node *n, const char *text);
TSQ_API int tsq_node_enabled(const tsq_node *n);
TSQ_API tsq_status tsq_node_set_enabled(tsq_node *n, int enabled);
TSQ_API int tsq_node_continue_on_error(const tsq_node *n);
TSQ_API tsq_status tsq_node_set_continue_on_error(tsq_node *n, int on);

/* The sequence's schema version ("3.10", "3.00", ...). */
TSQ_API const char *tsq_sequence_version(const tsq_node *seq);

/* ---------------------------------------------------------------- values, properties */

typedef enum tsq_vtype {
    TSQ_V_NIL = 0,
    TSQ_V_BOOL,
    TSQ_V_INT,
    TSQ_V_STRING,
    TSQ_V_LIST,   /* a string list (SDK String[]); `s` holds it comma-joined */
    TSQ_V_OBJECTS /* an embedded object array; use tsq_prop_object_* */
} tsq_vtype;

typedef struct tsq_value {
    tsq_vtype type;
    int b;         /* TSQ_V_BOOL */
    int64_t i;     /* TSQ_V_INT; TSQ_V_OBJECTS: the element count */
    const char *s; /* TSQ_V_STRING, TSQ_V_LIST */
    size_t len;
} tsq_value;

/* Reads a property of an action (PascalCase SDK name, e.g. "CommandLine",
 * "SupportedEnvironment", "Timeout", "SuccessCodes"). TSQ_V_NIL when it is not set.
 * TSQ_ENOTFOUND for a name a catalogued class does not have (the error lists the valid
 * names); uncatalogued classes have the string properties their document carries. */
TSQ_API tsq_status tsq_prop_get(const tsq_node *n, const char *name, tsq_value *out, tsq_error *err);
/* Sets a property; TSQ_V_NIL removes it. Values are checked against the catalogue
 * (type, allowed values) and the action's command text is kept consistent. */
TSQ_API tsq_status tsq_prop_set(tsq_node *n, const char *name, const tsq_value *v, tsq_error *err);
/* The properties set on a step, in catalogue order then document order; names are
 * valid while the step keeps them. */
TSQ_API size_t tsq_prop_count(const tsq_node *n);
TSQ_API const char *tsq_prop_name(const tsq_node *n, size_t index);
/* Embedded object arrays (AppInfo, Partitions, Adapters, PackageInfo, Rules): field
 * `field` of element `index` (0-based). TSQ_EINVAL past the end, TSQ_ETYPE when `prop`
 * is not an object array; out->s is valid until the array changes. */
TSQ_API tsq_status tsq_prop_object_get(const tsq_node *n, const char *prop, size_t index,
                                       const char *field, tsq_value *out, tsq_error *err);
TSQ_API tsq_status tsq_prop_object_set(tsq_node *n, const char *prop, size_t index,
                                       const char *field, const tsq_value *v, tsq_error *err);
/* Sets the element count of an object array (new elements start empty). */
TSQ_API tsq_status tsq_prop_object_resize(tsq_node *n, const char *prop, size_t count, tsq_error *err);
/* The command text the client runs (<action>): generated from the properties for a
 * catalogued class whose properties changed, the stored text otherwise. */
TSQ_API const char *tsq_action_command(const tsq_node *n);
TSQ_API tsq_status tsq_action_set_command(tsq_node *n, const char *text, tsq_error *err);

/* ---------------------------------------------------------------- catalogue */

typedef struct tsq_class_info {
    const char *name;        /* "SMS_TaskSequence_RunCommandLineAction" */
    const char *short_name;  /* "RunCommandLine" */
    const char *display;     /* console name: "Run Command Line" */
    const char *environment; /* default SupportedEnvironment */
    const char *template_;   /* command-line template */
    size_t nprops;
} tsq_class_info;

typedef struct tsq_prop_info {
    const char *name;        /* "CommandLine" */
    tsq_vtype type;
    const char *sdk_type;    /* "String", "Boolean", "UInt32", "String[]", "SMS_TaskSequence_ApplicationInfo[]" */
    const char *variable;    /* XML variable name ("CommandLine", "SMSTSDisableWow64Redirection") */
    const char *default_;    /* NULL when none */
    const char *allowed;     /* "|"-separated allowed values, NULL when free */
    int hidden, required, secret, global, cmdline_arg;
} tsq_prop_info;

/* The built-in catalogue (from csrc/catalog.tsv): static, immutable, valid for the life of
 * the program. Looks a class up by full or short name; NULL when not catalogued. */
TSQ_API const tsq_class_info *tsq_class_find(const char *name);
TSQ_API size_t tsq_class_count(void);
TSQ_API const tsq_class_info *tsq_class_at(size_t index);
TSQ_API const tsq_prop_info *tsq_class_prop(const tsq_class_info *c, size_t index);
TSQ_API const tsq_prop_info *tsq_class_prop_find(const tsq_class_info *c, const char *name);

/* ---------------------------------------------------------------- validation */

typedef enum tsq_severity { TSQ_SEV_ERROR = 1, TSQ_SEV_WARNING } tsq_severity;

typedef struct tsq_problem {
    const tsq_node *step;
    const char *property; /* NULL when about the step */
    const char *message;
    tsq_severity severity;
} tsq_problem;

typedef void (*tsq_problem_fn)(void *ud, const tsq_problem *p);
/* Calls fn for each problem found (the problem and its strings are valid during the
 * call only); returns the number of errors (not warnings). fn may be NULL. */
TSQ_API size_t tsq_validate(const tsq_node *seq, tsq_problem_fn fn, void *ud);

/* ---------------------------------------------------------------- documents */

typedef enum tsq_wrapper {
    TSQ_WRAP_NONE = 0, /* a plain <sequence> document */
    TSQ_WRAP_CIM,      /* console export object.xml: <INSTANCE CLASSNAME="SMS_TaskSequencePackage"> */
    TSQ_WRAP_PACKAGE   /* <SmsTaskSequencePackage> with <SequenceData> */
} tsq_wrapper;

/* Reads a document from a file or from memory; *out is its sequence (+1), NULL on
 * failure. `name` names the document in errors (NULL: "<string>"). Errors: TSQ_ENOTFOUND
 * and TSQ_EIO (the file), TSQ_EPARSE (malformed, with line and column; also a DTD or
 * non-UTF-8 text), TSQ_ELIMIT (tsq_limits), TSQ_ENOMEM. tsq_parse copies the data.
 * A document of 64 KiB or more is read (on a machine with two CPUs or more) by two
 * parsers at once: the calling thread reads up to a cut a little past the middle, a
 * helper thread from there, and the two trees are joined; the call returns when both are
 * done. The context and its allocator are then also called from the helper thread, never
 * at the same time as from the calling thread. A bad document is read again whole, so
 * the error (message, line, column) is that of a read on one thread.
 * tsq_ctx_set_read_thread (or TSQ_READ_THREAD=0/1 when the context is made) chooses. */
TSQ_API tsq_status tsq_load(tsq_ctx *ctx, const char *path, tsq_node **out, tsq_error *err);
TSQ_API tsq_status tsq_parse(tsq_ctx *ctx, const char *data, size_t len, const char *name,
                             tsq_node **out, tsq_error *err);

/* Appends the document holding seq to out, in the wrapper it was read from. Parts that
 * were not changed are written exactly as they were read. TSQ_EINVAL when seq is not the
 * sequence of a document; TSQ_ENOMEM. */
TSQ_API tsq_status tsq_write(const tsq_node *seq, tsq_buf *out, tsq_error *err);
/* tsq_write to a temporary file beside path, then renamed over it: on any failure the
 * old file is untouched and the error names the path. */
TSQ_API tsq_status tsq_save(const tsq_node *seq, const char *path, tsq_error *err);
/* Appends in one canonical layout (two-space indentation, LF, ConfigMgr attribute order). */
TSQ_API tsq_status tsq_write_canonical(const tsq_node *seq, tsq_buf *out, tsq_error *err);

/* Wrapper (package) fields: PackageID, Name, Description, ... (TSQ_WRAP_NONE has none). */
TSQ_API tsq_wrapper tsq_doc_wrapper(const tsq_node *seq);
TSQ_API size_t tsq_doc_field_count(const tsq_node *seq);
TSQ_API const char *tsq_doc_field_name(const tsq_node *seq, size_t index);
/* NULL when the wrapper has no such field. */
TSQ_API const char *tsq_doc_field(const tsq_node *seq, const char *name);
TSQ_API tsq_status tsq_doc_set_field(tsq_node *seq, const char *name, const char *value, tsq_error *err);
/* The path the document was loaded from, or NULL. */
TSQ_API const char *tsq_doc_path(const tsq_node *seq);

/* ---------------------------------------------------------------- conditions */

/* A condition is a tree of operands with value semantics: a step holds its own copy;
 * tsq_node_set_condition copies; tsq_node_condition returns a new copy (+1 via
 * tsq_cond_free). */
typedef struct tsq_cond tsq_cond;

typedef enum tsq_cond_kind {
    TSQ_C_CONDITION = 1, /* SMS_TaskSequence_Condition: all operands must hold */
    TSQ_C_AND,           /* ConditionOperator "and" */
    TSQ_C_OR,            /* ConditionOperator "or" */
    TSQ_C_NOT,           /* ConditionOperator "not": no operand holds */
    TSQ_C_OSGROUP,       /* osConditionGroup (or over osExpressionGroup) */
    TSQ_C_OSEXPRGROUP,   /* osExpressionGroup (and over WMI expressions) */
    TSQ_C_EXPRESSION     /* a leaf: class + named values */
} tsq_cond_kind;

/* A new empty condition or operator (+1, tsq_cond_free); NULL when out of memory. */
TSQ_API tsq_cond *tsq_cond_new(tsq_ctx *ctx, tsq_cond_kind kind);
/* A leaf of class `cls` (full or short name: "Variable", "WMI", "File", "Folder",
 * "Registry", "Software", or any other class name, kept as given). */
TSQ_API tsq_cond *tsq_cond_new_expression(tsq_ctx *ctx, const char *cls);
/* The stored spelling of a comparison operator ("equals", "notExists", "greaterEqual",
 * "like", ...; the registry's "nonExists" too), matched case-insensitively; NULL when
 * op is none of them. Thread-safe, static strings. */
TSQ_API const char *tsq_cond_operator(const char *op);
/* The i-th comparison operator in its stored spelling ("exists", "notExists", "equals",
 * ... "notLike"), NULL past the last: for messages and completions. Thread-safe. */
TSQ_API const char *tsq_cond_operator_at(size_t i);
TSQ_API void tsq_cond_free(tsq_cond *c);
/* A deep copy (+1); NULL when out of memory. */
TSQ_API tsq_cond *tsq_cond_clone(const tsq_cond *c);
TSQ_API tsq_cond_kind tsq_cond_get_kind(const tsq_cond *c);
/* Appends a copy of `operand` (not a TSQ_C_CONDITION) to an operator or condition;
 * TSQ_EINVAL for a leaf parent, a TSQ_C_CONDITION operand or another context. */
TSQ_API tsq_status tsq_cond_add(tsq_cond *parent, const tsq_cond *operand, tsq_error *err);
TSQ_API size_t tsq_cond_count(const tsq_cond *c);
/* Borrowed: valid while c is unchanged. NULL past the end. */
TSQ_API const tsq_cond *tsq_cond_operand(const tsq_cond *c, size_t index);
/* Expression class (full name) and named values ("Variable", "Operator", "Value", ...). */
TSQ_API const char *tsq_cond_class(const tsq_cond *c);
TSQ_API const char *tsq_cond_get(const tsq_cond *c, const char *name); /* NULL when absent */
TSQ_API tsq_status tsq_cond_set(tsq_cond *c, const char *name, const char *value, tsq_error *err);
TSQ_API size_t tsq_cond_value_count(const tsq_cond *c);
TSQ_API const char *tsq_cond_value_name(const tsq_cond *c, size_t index);
/* Attributes of the element beyond type (osExpressionGroup name, ignoreQueryFailure, ...). */
TSQ_API const char *tsq_cond_attr(const tsq_cond *c, const char *name);
TSQ_API tsq_status tsq_cond_set_attr(tsq_cond *c, const char *name, const char *value, tsq_error *err);
/* Structural equality (operator names compared case-insensitively). */
TSQ_API int tsq_cond_equal(const tsq_cond *a, const tsq_cond *b);

/* The readable text form (returned in out; NULL when out of memory), e.g.
 *   _SMSTSInWinPE equals "false" and (Model like "%Latitude%" or not wmi "SELECT ...")
 * Grammar: README.md, "Condition text". */
TSQ_API const char *tsq_cond_to_text(const tsq_cond *c, tsq_buf *out);
/* The text form back into a condition (+1 into *out): TSQ_EPARSE naming the column. */
TSQ_API tsq_status tsq_cond_parse(tsq_ctx *ctx, const char *text, tsq_cond **out, tsq_error *err);

/* The step's condition (+1, tsq_cond_free), or NULL when it has none. */
TSQ_API tsq_cond *tsq_node_condition(const tsq_node *n);
TSQ_API int tsq_node_has_condition(const tsq_node *n);
/* Replaces the step's condition with a copy of c; NULL removes it. */
TSQ_API tsq_status tsq_node_set_condition(tsq_node *n, const tsq_cond *c, tsq_error *err);

/* ---------------------------------------------------------------- environments */

/* What a machine looks like: task sequence variables (case-insensitive names; setting
 * "" deletes) and fact providers for what conditions ask of the machine. */
typedef struct tsq_env tsq_env;

typedef struct tsq_file_fact {
    int exists;
    const char *version;   /* NULL when unknown */
    const char *datetime;  /* DMTF or ISO-8601 UTC; NULL when unknown */
} tsq_file_fact;

typedef struct tsq_reg_fact {
    int exists;
    const char *type;      /* "REG_SZ", "REG_DWORD", ... */
    const char *data;
} tsq_reg_fact;

/* Each callback returns TSQ_OK with the fact filled, or TSQ_EFACT when the host does
 * not describe that fact (the evaluation then fails naming it). Strings in the facts
 * must stay valid until the callback is called again. */
typedef struct tsq_provider {
    /* *rows: number of instances the query returns; < 0 for a query error */
    tsq_status (*wmi)(void *ud, const char *ns, const char *query, long *rows);
    tsq_status (*file)(void *ud, const char *path, tsq_file_fact *out);
    tsq_status (*folder)(void *ud, const char *path, tsq_file_fact *out);
    tsq_status (*registry)(void *ud, const char *key, const char *value, tsq_reg_fact *out);
    /* by ProductCode (upgrade == 0) or UpgradeCode (upgrade == 1); *version may be NULL */
    tsq_status (*software)(void *ud, const char *code, int upgrade, int *installed, const char **version);
    void *ud;
} tsq_provider;

/* A new environment with no variables and no provider (+1, tsq_env_free); NULL when out
 * of memory. */
TSQ_API tsq_env *tsq_env_new(tsq_ctx *ctx);
TSQ_API void tsq_env_free(tsq_env *env);
/* A copy of the variables, sharing the provider (the same callbacks and ud) (+1). */
TSQ_API tsq_env *tsq_env_clone(const tsq_env *env);
/* Copies *p (NULL: no provider). p->ud must stay valid while env or a clone of it is used. */
TSQ_API void tsq_env_set_provider(tsq_env *env, const tsq_provider *p);
/* With on, a plan (tsq_plan) asks the provider once for each distinct fact and reads the
 * answer again for every other operand that needs it: for providers whose answers cost
 * more than a look-up (a script, a query over the network). Off by default, and never
 * used by tsq_run_sequence, whose steps change the machine. Kept by tsq_env_clone. */
TSQ_API void tsq_env_set_fact_cache(tsq_env *env, int on);
/* TSQ_EINVAL for a NULL or empty name, TSQ_ENOMEM; a NULL or "" value deletes the variable. */
TSQ_API tsq_status tsq_env_set(tsq_env *env, const char *name, const char *value);
/* NULL when undefined; valid until the variable is set again or deleted. */
TSQ_API const char *tsq_env_get(const tsq_env *env, const char *name);
TSQ_API size_t tsq_env_count(const tsq_env *env);
/* Iteration in insertion order: index 0 .. count-1 (names as first set). */
TSQ_API const char *tsq_env_name_at(const tsq_env *env, size_t index);
/* Expands %VAR% references (undefined ones stay as written); the string in out, NULL
 * when out of memory. */
TSQ_API const char *tsq_env_expand(const tsq_env *env, const char *text, tsq_buf *out);

/* ---------------------------------------------------------------- evaluation */

/* One trace line per operand evaluated: depth in the tree, the operand's text, its
 * result, and why ("variable OSDBuild undefined", "file not found"). */
typedef struct tsq_trace_entry {
    int depth;
    int result;
    const char *operand;
    const char *why;
} tsq_trace_entry;

typedef void (*tsq_trace_fn)(void *ud, const tsq_trace_entry *e);

/* Evaluates c against env: *result is 1 or 0. TSQ_EFACT when env lacks a fact the
 * condition needs (the message names it). trace may be NULL; its entries are valid during
 * the call only. env is not const because providers are called through it. */
TSQ_API tsq_status tsq_cond_eval(const tsq_cond *c, tsq_env *env, int *result,
                                 tsq_trace_fn trace, void *trace_ud, tsq_error *err);
/* Evaluates the condition of step n (1 when it has none). Uses a compiled form cached
 * on the step: the fast path for plans. */
TSQ_API tsq_status tsq_node_eval_condition(const tsq_node *n, tsq_env *env, int *result,
                                           tsq_trace_fn trace, void *trace_ud, tsq_error *err);

typedef enum tsq_plan_state {
    TSQ_PLAN_RUN = 1,        /* would run */
    TSQ_PLAN_SKIP_CONDITION, /* its condition is false */
    TSQ_PLAN_DISABLED,       /* disabled */
    TSQ_PLAN_SKIP_PARENT,    /* inside a group that is skipped or disabled */
    TSQ_PLAN_ERROR           /* its condition could not be evaluated (see reason) */
} tsq_plan_state;

typedef struct tsq_plan_entry {
    const tsq_node *step;
    tsq_plan_state state;
    const char *reason; /* NULL for TSQ_PLAN_RUN */
} tsq_plan_entry;

typedef void (*tsq_plan_fn)(void *ud, const tsq_plan_entry *e);
/* Calls fn for every step in document order, evaluated against the static env (nothing
 * runs, no variable changes); entries are valid during the call only. A condition that
 * can not be evaluated is a TSQ_PLAN_ERROR entry, not a failed call. */
TSQ_API tsq_status tsq_plan(const tsq_node *seq, tsq_env *env, tsq_plan_fn fn, void *ud, tsq_error *err);
TSQ_API const char *tsq_plan_state_name(tsq_plan_state s);

/* ---------------------------------------------------------------- execution */

/* One SMS_TaskSequenceExecutionStatus row.
 * Step: groups and actions counted from 1 in document order, depth first, a group before
 * its children; 0 for sequence-level records (steps of a child sequence run by a Run Task
 * Sequence step are numbered after all steps of the parent document).
 * GroupName: the containing group ("" at top level); a group's own records carry its name
 * and an empty ActionName. */
typedef struct tsq_record {
    const char *ActionName;
    const char *ActionOutput;
    const char *AdvertisementID;
    const char *ExecutionTime; /* DMTF "yyyymmddHHMMSS.000000+000" */
    int64_t ExecutionTimeUnix; /* seconds since the epoch, UTC */
    uint32_t ExitCode;         /* stored unsigned, as the SDK does */
    const char *GroupName;
    uint32_t LastStatusMsgID;
    const char *LastStatusMsgName;
    const char *PackageID;
    uint32_t ResourceID;
    uint32_t Step;
} tsq_record;

/* Return TSQ_ELIMIT when the step ran into its Timeout (failure, exit code 0x800705B4),
 * TSQ_ESTATE when the computer restarted unexpectedly during the step (a reboot is recorded
 * and the step reruns up to retryCount times).
 * A step handler: runs action `step` with the live environment. Sets *exit_code and
 * appends any output to `output`. Return TSQ_OK, or an error status with a message in
 * `output`: the step then fails with that message as its output. */
typedef tsq_status (*tsq_handler_fn)(void *ud, const tsq_node *step, tsq_env *env,
                                     int32_t *exit_code, tsq_buf *output);
/* Loads the child sequence of a Run Task Sequence step (+1 into *out). */
typedef tsq_status (*tsq_loader_fn)(void *ud, const char *package_id, const char *name,
                                    tsq_node **out, tsq_buf *message);
/* The clock: seconds since the epoch, UTC. */
typedef int64_t (*tsq_clock_fn)(void *ud);

typedef struct tsq_handler_entry {
    const char *type; /* full or short class name; "default" for all others */
    tsq_handler_fn fn;
    void *ud;
} tsq_handler_entry;

typedef struct tsq_run_opts {
    tsq_env *env;                      /* the live environment; changed by the run */
    const tsq_handler_entry *handlers; /* may be NULL: every action succeeds with exit code 0 */
    size_t nhandlers;
    tsq_loader_fn loader; void *loader_ud;
    tsq_clock_fn clock; void *clock_ud; /* NULL: starts at 2000-01-01 00:00:00 UTC, +1 s per record */
    const char *AdvertisementID, *PackageID;
    uint32_t ResourceID;
    uint32_t max_reboots;              /* reboots before the run stops as failed; 0: 64 */
} tsq_run_opts;

typedef struct tsq_run tsq_run;

/* Runs seq as the client engine does (handlers are called on this thread, in order; they
 * may change the environment, not the tree). *out (+1, tsq_run_free) holds the records
 * and the result even when the sequence fails; the status is not TSQ_OK only for misuse
 * (TSQ_EINVAL: not a sequence, a handler entry without type or fn) or out of memory. */
TSQ_API tsq_status tsq_run_sequence(const tsq_node *seq, const tsq_run_opts *opts, tsq_run **out, tsq_error *err);
TSQ_API void tsq_run_free(tsq_run *r);
TSQ_API int tsq_run_succeeded(const tsq_run *r);
TSQ_API size_t tsq_run_record_count(const tsq_run *r);
/* Borrowed, with its strings, until tsq_run_free; NULL past the end. */
TSQ_API const tsq_record *tsq_run_record(const tsq_run *r, size_t index);

/* The status messages the engine emits: name for an id, NULL when unknown. */
TSQ_API const char *tsq_status_message_name(uint32_t id);

#ifdef __cplusplus
}
#endif
#endif /* TSQ_H */
