/* catalog.h - the class catalogue as the core sees it: the generated tables
 * (build/gen/tsq_catalog.c from csrc/catalog.tsv) and the helpers shared by props.c,
 * cmdline.c and validate.c. Not installed. */
#ifndef TSQ_CATALOG_H
#define TSQ_CATALOG_H

#include "tsq_int.h"

/* property flags */
enum {
    TSQ_PF_HIDDEN = 1 << 0,   /* written hidden="true" in a ConfigMgr document */
    TSQ_PF_REQUIRED = 1 << 1, /* Not_Null: every step of the class must carry it */
    TSQ_PF_SECRET = 1 << 2,   /* Secret or QuasiSecret */
    TSQ_PF_GLOBAL = 1 << 3,   /* also belongs in <globalVarList> */
    TSQ_PF_MDT = 1 << 4,      /* only MDT-written (or third-party) files carry it */
    TSQ_PF_INIT = 1 << 5      /* a new step carries it (the console's defaults) */
};

/* class kinds */
enum { TSQ_CK_BASE, TSQ_CK_ACTION, TSQ_CK_HELPER };

struct tsq_class;

typedef struct tsq_cprop {
    tsq_prop_info pub;   /* first member: a tsq_prop_info * points at a tsq_cprop */
    int flags;           /* TSQ_PF_* */
    int attr;            /* atom id (A_runIn, ...) of the step attribute mirroring it; -1 none */
    int has_range;
    int64_t min, max;    /* integer values, or string lengths */
    const struct tsq_class *elem; /* TSQ_V_OBJECTS: the element class */
    const char *count_prop;       /* TSQ_V_OBJECTS: the property that repeats the count */
} tsq_cprop;

typedef struct tsq_class {
    tsq_class_info pub;  /* first member: a tsq_class_info * points at a tsq_class */
    const char *prefix;  /* VariablePrefix, or NULL */
    const char *element; /* "step", "subtasksequence"; NULL for helpers */
    const char *template_300; /* the SDK command line of version 3.00 documents, or NULL */
    int kind;            /* TSQ_CK_* */
    const tsq_cprop *props; /* pub.nprops entries; actions include the base properties */
} tsq_class;

typedef struct tsq_class_name {
    const char *name;    /* full or short name */
    unsigned short cls;  /* index in tsq_classes */
} tsq_class_name;

extern const tsq_class tsq_classes[];         /* action classes first, then helpers */
extern const size_t tsq_nclasses, tsq_naction_classes;
extern const tsq_class_name tsq_class_names[]; /* sorted by strcmp */
extern const size_t tsq_nclass_names;
/* tsq_class_names by tsq_class_key (open addressing, -1 for an empty slot); the generator
 * computes the same key */
#define TSQ_CLASS_HASH 256
extern const short tsq_class_hash[TSQ_CLASS_HASH];
static inline unsigned tsq_class_key(const char *s, size_t n) {
    unsigned h = (unsigned)n;
    h = h * 33 ^ (unsigned char)s[n - 1];
    h = h * 33 ^ (unsigned char)s[n > 8 ? n - 8 : 0];
    h = h * 33 ^ (unsigned char)s[n / 2];
    h = h * 33 ^ (unsigned char)s[(n * 3) / 4];
    return h % TSQ_CLASS_HASH;
}
extern const tsq_class tsq_base_class;        /* SupportedEnvironment, Timeout, SuccessCodes */

/* props.c */
/* The catalogued action class of step n (cached on the node), or NULL. */
const tsq_class *tsq_class_of(const tsq_node *n);
const tsq_cprop *tsq_cprop_find(const tsq_class *c, const char *name);
/* steps.c: the type attribute as written (tsq_node_type may give the catalogue's string) */
const char *tsq_node_type_attr(const tsq_node *n);
/* <defaultVarList> of n, and its <variable> whose property attribute is prop; NULL when absent. */
tsq_node *tsq_var_list(const tsq_node *n);
tsq_node *tsq_var_find(const tsq_node *n, const char *prop);
/* Sets the variable of property prop (created in ConfigMgr order: sorted by property,
 * ordinal; hidden="true" when asked and the document writes it); *changed is set when
 * the document changed. */
tsq_status tsq_var_set(tsq_node *n, const char *prop, const char *varname, int hidden, const char *s,
                       size_t len, int *changed);
/* Leaf text of an element, "" when it has none. */
const char *tsq_leaf_text(const tsq_node *e, size_t *len);
/* 1 true, 0 false, -1 not a boolean (case-insensitive "true"/"false"). */
int tsq_parse_bool(const char *s, size_t len);
/* 1 when s[0..len) is a decimal integer (optional sign), stored in *out. */
int tsq_parse_int(const char *s, size_t len, int64_t *out);
/* 1 when s is one of the "|"-separated allowed values (case-insensitive). */
int tsq_value_allowed(const char *allowed, const char *s, size_t len);
/* 1 when s is a space-separated list of integers. */
int tsq_success_codes_ok(const char *s, size_t len);

/* cmdline.c */
/* The template that applies to n: template_300 in a version 3.00 document when the class
 * has one, else the current template; NULL when the class has none. */
const char *tsq_cmd_template(const tsq_node *n, const tsq_class *c);
/* Renders tpl with the values stored on n (xml-format.md 3.2) into b (appended). */
void tsq_cmd_render(const tsq_node *n, const tsq_class *c, const char *tpl, tsq_buf *b);
/* Whether n's command text follows its properties: always in a ConfigMgr (3.10)
 * document or a new step; in an MDT (3.00) document, which often carries its own command
 * (cscript ...), only when the stored text is the template's rendering. */
int tsq_cmd_generated(const tsq_node *n, const tsq_class *c);
/* Regenerates the <action> text of a catalogued step from its properties. */
tsq_status tsq_cmd_update(tsq_node *n, const tsq_class *c);
/* The command text follows the properties lazily: a property change marks the action
 * (F_CMD_STALE) and the text is rendered when it is next read (tsq_action_command) or
 * written, once however many properties changed, and with the template of the sequence
 * the action then sits in. */
void tsq_cmd_stale(tsq_node *n);
/* Renders a stale command text; TSQ_OK when it was not stale. */
tsq_status tsq_cmd_flush(tsq_node *n);

#endif
