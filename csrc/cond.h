/* cond.h - internals shared by the condition files (cond.c, cond_print.c, cond_parse.c,
 * cond_xml.c, env.c, eval.c, plan.c). Not installed. */
#ifndef TSQ_COND_H
#define TSQ_COND_H

#include "tsq_int.h"

/* A list of name/value pairs in order: expression values, element attributes. Names are
 * interned in the context; values are owned (NUL-terminated, may hold any byte). */
typedef struct tsq_kv {
    const char *name;
    char *value;
    size_t len;
} tsq_kv;

typedef struct tsq_kvs {
    tsq_kv *v;
    size_t n, cap;
} tsq_kvs;

struct tsq_cond {
    tsq_ctx *ctx;
    tsq_cond_kind kind;
    const char *cls;   /* expressions: the full class name (interned) */
    char *optype;      /* operators and OS groups: the type attribute when it is not the
                        * kind's lowercase default ("AND"); NULL otherwise */
    tsq_kvs values;    /* expressions: named values in document order */
    tsq_kvs attrs;     /* attributes beyond type, in document order */
    tsq_kvs *keys;     /* osExpressionGroup: the <platformKey> elements' attributes */
    size_t nkeys, ckeys;
    tsq_cond **ops;    /* operands */
    size_t nops, cops;
};

/* Full class names */
#define TSQ_CLS_VARIABLE "SMS_TaskSequence_VariableConditionExpression"
#define TSQ_CLS_WMI "SMS_TaskSequence_WMIConditionExpression"
#define TSQ_CLS_FILE "SMS_TaskSequence_FileConditionExpression"
#define TSQ_CLS_FOLDER "SMS_TaskSequence_FolderConditionExpression"
#define TSQ_CLS_REGISTRY "SMS_TaskSequence_RegistryConditionExpression"
#define TSQ_CLS_SOFTWARE "SMS_TaskSequence_SoftwareConditionExpression"
#define TSQ_CLS_OS "SMS_TaskSequence_OSConditionExpression"

typedef enum {
    CLS_OTHER = 0, CLS_VARIABLE, CLS_WMI, CLS_FILE, CLS_FOLDER, CLS_REGISTRY, CLS_SOFTWARE, CLS_OS
} tsq_cls_id;

/* ---------------------------------------------------------------- cond.c */
tsq_status tsq_kvs_put(tsq_ctx *ctx, tsq_kvs *l, const char *name, const char *value, size_t len);
tsq_status tsq_kvs_insert(tsq_ctx *ctx, tsq_kvs *l, size_t at, const char *name, const char *value, size_t len);
void tsq_kvs_free(tsq_ctx *ctx, tsq_kvs *l);
const tsq_kv *tsq_kvs_find(const tsq_kvs *l, const char *name);
tsq_status tsq_kvs_copy(tsq_ctx *ctx, tsq_kvs *dst, const tsq_kvs *src);
/* Appends a value / attribute / platform key as read (document order, no reordering). */
tsq_status tsq_cond_append_value(tsq_cond *c, const char *name, const char *value, size_t len);
tsq_status tsq_cond_append_attr(tsq_cond *c, const char *name, const char *value, size_t len);
tsq_kvs *tsq_cond_add_key(tsq_cond *c);
/* Appends operand (taking ownership; it is freed on failure). */
tsq_status tsq_cond_push(tsq_cond *parent, tsq_cond *operand);
tsq_status tsq_cond_set_optype(tsq_cond *c, const char *type, size_t len);
/* "and", "or", "not" for the kinds that have a type attribute, NULL otherwise. */
const char *tsq_cond_default_type(tsq_cond_kind k);
tsq_cls_id tsq_cls_of(const char *cls);
/* The rank of a value name in its class's canonical order (the order the console writes
 * and tsq_cond_set keeps); -1 for a name the class does not list. */
int tsq_cls_rank(tsq_cls_id id, const char *name);
/* True when c's values are in canonical order and all have a rank. */
int tsq_cond_values_canonical(const tsq_cond *c);
int tsq_ascii_casecmp(const char *a, const char *b);
int tsq_ascii_ncasecmp(const char *a, const char *b, size_t n);
/* Nesting depth of operators (an expression is 0). */
int tsq_cond_depth(const tsq_cond *c);

/* ---------------------------------------------------------------- cond_print.c */
/* The lexical rules of the text form, shared with the parser in cond_parse.c. */
int tsq_cond_text_ident_char(int ch);                               /* [A-Za-z0-9_] */
int tsq_cond_text_word_is(const char *s, size_t n, const char *kw); /* case-insensitive */
int tsq_cond_text_is_keyword(const char *s, size_t n);

/* ---------------------------------------------------------------- cond_xml.c */
/* The step's <condition> element with at least one element child, or NULL. */
tsq_node *tsq_cond_elem(const tsq_node *step);
/* Reads a <condition> element into a new TSQ_C_CONDITION. */
tsq_status tsq_cond_from_xml(tsq_ctx *ctx, const tsq_node *elem, tsq_cond **out, tsq_error *err);

/* ---------------------------------------------------------------- eval.c */
/* The per-step cache: the condition compiled to a flat program. */
struct tsq_cprog;
struct tsq_ccache {
    int state;              /* CC_NONE (no condition), CC_PROG, CC_BAD */
    size_t size;            /* of the block holding the cache and its program */
    struct tsq_cprog *prog;
    tsq_cond *cond;         /* the parsed condition (kept for traces) */
    tsq_status code;        /* CC_BAD: why it could not be compiled */
    char *message;
};
enum { CC_NONE = 0, CC_PROG, CC_BAD };
/* The facts one pass over a static environment has asked (a plan): each fact is asked of
 * the provider once, the next operands that need it read the answer kept here. A run does
 * not use one: its steps change the machine. */
typedef struct tsq_memo {
    tsq_ctx *ctx;
    struct tsq_memo_ent *slots; /* open addressing */
    size_t cap, n;
} tsq_memo;
void tsq_memo_init(tsq_memo *m, tsq_ctx *ctx);
void tsq_memo_free(tsq_memo *m);
/* tsq_node_eval_condition without trace and without the step path in err; scratch is a
 * buffer the caller keeps across calls (or NULL), memo the facts asked so far (or NULL). */
tsq_status tsq_node_eval_fast(const tsq_node *n, tsq_env *env, int *result, tsq_error *err, tsq_buf *scratch,
                              tsq_memo *memo);

/* ---------------------------------------------------------------- env.c */
/* Case-insensitive hash of a variable name (ASCII folding). */
uint32_t tsq_name_hash(const char *s, size_t n);
/* Lookup by a precomputed tsq_name_hash; NULL when undefined. */
const char *tsq_env_lookup(const tsq_env *env, const char *name, size_t n, uint32_t h, size_t *len);
const tsq_provider *tsq_env_provider(const tsq_env *env);
int tsq_env_fact_cache(const tsq_env *env);
tsq_ctx *tsq_env_ctx(const tsq_env *env);

#endif
