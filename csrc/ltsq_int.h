/*
 * ltsq_int.h - internals shared by the binding's files (ltsq*.c). Not installed: ltsq.h
 * is the public header. These names are not exported: the build uses
 * -fvisibility=hidden and only LTSQ_API is visible outside the module.
 */
#ifndef LTSQ_INT_H
#define LTSQ_INT_H

#include "ltsq.h"

#include <lauxlib.h>
#include <string.h>

#define STEP_MT "tasksequence.step"
#define COND_MT "tasksequence.condition"
#define ENV_MT "tasksequence.environment"
#define VARS_MT "tasksequence.variables"
#define PKG_MT "tasksequence.package"
#define BUF_MT "tasksequence.buffer"
#define RUN_MT "tasksequence.runbox"
#define PLAN_MT "tasksequence.plan"
#define STATE_MT "tasksequence.state"
/* Registry keys: the addresses of these (lua_rawgetp), cheaper than string keys on the
 * paths every step box takes. */
extern const char ltsqi_key_state[], ltsqi_key_boxes[], ltsqi_key_envs[], ltsqi_key_step_mt[],
    ltsqi_key_cond_mt[];
#define STATE_KEY ((const void *)ltsqi_key_state)
#define BOXES_KEY ((const void *)ltsqi_key_boxes) /* lightuserdata(node) -> step box, weak values */
#define ENVS_KEY ((const void *)ltsqi_key_envs)   /* lightuserdata(envbox) -> env box, weak values */
#define STEP_MT_KEY ((const void *)ltsqi_key_step_mt) /* the metatables again, by address */
#define COND_MT_KEY ((const void *)ltsqi_key_cond_mt)

/* The context of a Lua state. Its allocator counts the bytes the core holds so that the
 * collector can be told about them: a loaded document is a small box in Lua's heap in front
 * of megabytes of C memory, and without this a script that loads thousands of documents
 * would keep all of them until Lua's own heap happened to double. */
typedef struct statebox {
    tsq_ctx *ctx;
    size_t inuse;    /* bytes the core holds now */
    size_t collect_at; /* a full collection when inuse passes this */
    size_t young_at;   /* a loaded document first collects young garbage past this */
} statebox;
/* Step and condition boxes carry their type's tag after the pointer: a type check is a
 * size and a pointer compare (no script can write a tag address into a userdata). */
typedef struct stepbox { tsq_node *n; const char *tag; } stepbox;
typedef struct condbox { tsq_cond *c; const char *tag; } condbox;
typedef struct bufbox { tsq_buf b; } bufbox;
typedef struct runbox { tsq_run *r; } runbox;

/* While the core runs with this environment, L is the thread to call providers on. */
typedef struct envbox {
    tsq_env *env;
    lua_State *L;
    char msg[512]; /* the last provider error, "" when none */
} envbox;

/* Box types by tag: the tag is the box's second word (stepbox, condbox). */
extern const char ltsqi_tag_step[], ltsqi_tag_cond[];
/* The box at idx when it is one of the type `tag` (in line: every step field goes by it). */
static inline void *ltsqi_testbox(lua_State *L, int idx, const char *tag) {
    void *p = lua_touserdata(L, idx);
    if (!p || lua_rawlen(L, idx) != 2 * sizeof(void *)) return NULL;
    return ((const char *const *)p)[1] == tag ? p : NULL;
}
void *ltsqi_checkbox(lua_State *L, int idx, const char *tag, const char *tname);

#define ERR_INIT(e) memset(&(e), 0, sizeof(e))

/* Collects callback results into the table at stack index idx of the calling frame. */
typedef struct collector {
    lua_State *L;
    int failed;
    char msg[512];
    const void *item; /* the callback's argument */
} collector;

/* ltsq.c: state, errors, small Lua helpers, protected callbacks */
void ltsqi_gc_pace(lua_State *L);
void ltsqi_gc_pace_state(lua_State *L, statebox *s); /* the same, with the state's box at hand */
statebox *ltsqi_state(lua_State *L); /* raises when the module is not loaded */
void ltsqi_gc_before_load(lua_State *L, statebox *s);
tsq_buf *ltsqi_newbuf(lua_State *L);
int ltsqi_raise_error(lua_State *L, const tsq_error *err);
int ltsqi_fail_error(lua_State *L, const tsq_error *err);
const char *ltsqi_checkstr_field(lua_State *L, int t, const char *k);
const char *ltsqi_value_text(lua_State *L, int idx, const char *what);
void ltsqi_setfield_str(lua_State *L, const char *k, const char *v);
void ltsqi_setfield_int(lua_State *L, const char *k, lua_Integer v);
int ltsqi_protected_call(lua_State *L, lua_CFunction body, void *arg, char *msg, size_t msgsize);
void ltsqi_collector_begin(lua_State *L, collector *c, int idx);
void ltsqi_collector_end(lua_State *L, collector *c);
void ltsqi_collector_call(collector *c, lua_CFunction body, const void *item);

/* ltsq_step.c: step boxes, fields, properties, tree edits */
void ltsqi_push_owned_node(lua_State *L, tsq_node *n); /* n just made: +1, no box yet */
int ltsqi_constructor(lua_State *L);
int ltsqi_step_index(lua_State *L);
int ltsqi_methods_newindex(lua_State *L);
extern const char *const ltsqi_step_fields[];
const char *ltsqi_check_text(lua_State *L, int idx, const char *prop);
void ltsqi_new_step_methods(lua_State *L);
extern const luaL_Reg ltsqi_step_meta[];

/* ltsq_cond.c: condition boxes, constructors, evaluate */
condbox *ltsqi_newcondbox(lua_State *L);
tsq_cond *ltsqi_testcond(lua_State *L, int idx);
int ltsqi_condition(lua_State *L);
int ltsqi_all(lua_State *L);
int ltsqi_any(lua_State *L);
int ltsqi_none(lua_State *L);
int ltsqi_variable(lua_State *L);
int ltsqi_wmi(lua_State *L);
int ltsqi_expression(lua_State *L);
int ltsqi_cond_kind(lua_State *L);
void ltsqi_set_leaf_funcs(lua_State *L);
extern const luaL_Reg ltsqi_cond_methods[];
extern const luaL_Reg ltsqi_cond_meta[];

/* ltsq_env.c: environment boxes, variables tables, fact providers */
envbox *ltsqi_checkenvbox(lua_State *L, int idx);
envbox *ltsqi_newenvbox(lua_State *L, const tsq_env *from, int prov);
lua_State *ltsqi_env_enter(envbox *b, lua_State *L);
void ltsqi_env_error(envbox *b, tsq_error *err);
int ltsqi_environment(lua_State *L);
void ltsqi_push_variables_table(lua_State *L, const tsq_env *env);
envbox *ltsqi_optenvbox(lua_State *L, int idx);
extern const luaL_Reg ltsqi_env_methods[];
extern const luaL_Reg ltsqi_env_meta[];
extern const luaL_Reg ltsqi_vars_meta[];

/* ltsq_run.c: plan, run (handlers, clock, loader, records), package fields */
int ltsqi_step_plan(lua_State *L);
int ltsqi_apply(lua_State *L); /* ltsq_step.c */
int ltsqi_step_move(lua_State *L); /* ltsq_step.c: step:move_to as the binding has it */
extern const luaL_Reg ltsqi_plan_meta[];
int ltsqi_step_run(lua_State *L);
int ltsqi_runbox_gc(lua_State *L);
extern const luaL_Reg ltsqi_pkg_meta[];

#endif /* LTSQ_INT_H */
