/*
 * ltsq.c - the Lua binding: tasksequence.core. This file holds the per-state context,
 * shared helpers, the module functions and luaopen; the types live in ltsq_step.c,
 * ltsq_cond.c, ltsq_env.c and ltsq_run.c.
 *
 * Userdata are small boxes holding a reference to a core object: a step box holds one
 * tsq_node_retain, a condition box owns its tree, an environment box owns its tsq_env
 * and keeps the Lua providers in its user value. One box per node (a weak table maps
 * the node to its box) so that identity comparisons work. Every call from the core back
 * into Lua (providers, handlers, trace, plan, validation) runs under lua_pcall: a Lua
 * error never crosses the core's frames.
 */
#include "ltsq_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ state, helpers */

static void *state_alloc(void *ud, void *p, size_t osize, size_t nsize) {
    statebox *s = ud;
    if (p) s->inuse = s->inuse > osize ? s->inuse - osize : 0;
    if (nsize == 0) {
        free(p);
        return NULL;
    }
    void *q = p ? realloc(p, nsize) : malloc(nsize);
    if (q) s->inuse += nsize;
    else if (p) s->inuse += osize; /* the old block is still there */
    return q;
}

/* Collects when the core's memory has doubled since the last collection (and grown by
 * at least 4 MiB): the pause Lua applies to its own heap, applied to the memory behind
 * the boxes. A loop over thousands of documents then holds a few of them at a time, and
 * building one large sequence collects a handful of times, not once per allocation. */
/* The state's box, or NULL when the module is not loaded in L. */
static statebox *state_of(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, STATE_KEY);
    statebox *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
}

void ltsqi_gc_pace(lua_State *L) { ltsqi_gc_pace_state(L, state_of(L)); }

void ltsqi_gc_pace_state(lua_State *L, statebox *s) {
    if (!s || s->inuse < s->collect_at || !lua_gc(L, LUA_GCISRUNNING)) return; /* stopped: as the script asked */
    lua_gc(L, LUA_GCCOLLECT);
    size_t floor = s->inuse + ((size_t)4 << 20);
    s->collect_at = s->inuse * 2 > floor ? s->inuse * 2 : floor;
}

/* Before a document is read: when the core has grown by 256 KiB since the last time, one
 * step of the collector. In generational mode (tsq, lua.c) that is a young collection,
 * which frees the documents a loop has let go of since (their boxes die young) while
 * their memory is still in the cache, and the new document is read into the arena chunks
 * they leave (tsq_ctx keeps the last ones). A document whose box grew old waits for the
 * full collection of ltsqi_gc_pace, as before. */
void ltsqi_gc_before_load(lua_State *L, statebox *s) {
    if (s->inuse < s->young_at || !lua_gc(L, LUA_GCISRUNNING)) return;
    lua_gc(L, LUA_GCSTEP, 0);
    s->young_at = s->inuse + ((size_t)256 << 10);
}

const char ltsqi_tag_step[] = "step", ltsqi_tag_cond[] = "condition";
const char ltsqi_key_state[] = "tasksequence.state", ltsqi_key_boxes[] = "tasksequence.boxes",
           ltsqi_key_envs[] = "tasksequence.envs", ltsqi_key_step_mt[] = STEP_MT,
           ltsqi_key_cond_mt[] = COND_MT;

void *ltsqi_checkbox(lua_State *L, int idx, const char *tag, const char *tname) {
    void *p = ltsqi_testbox(L, idx, tag);
    if (!p) luaL_typeerror(L, idx, tname);
    return p;
}

static int state_gc(lua_State *L) {
    /* no registry lookups in finalizers: at lua_close they run in any state */
    statebox *s = lua_touserdata(L, 1);
    if (!s) return 0;
    tsq_ctx_free(s->ctx);
    s->ctx = NULL;
    return 0;
}

statebox *ltsqi_state(lua_State *L) {
    statebox *s = state_of(L);
    if (!s || !s->ctx) luaL_error(L, "tasksequence.core is not loaded in this state");
    return s;
}

LTSQ_API tsq_ctx *ltsq_context(lua_State *L) { return ltsqi_state(L)->ctx; }

LTSQ_API void ltsq_exiting(lua_State *L) {
    statebox *s = state_of(L);
    if (s && s->ctx) tsq_ctx_exiting(s->ctx);
}

static int buf_gc(lua_State *L) {
    bufbox *b = lua_touserdata(L, 1);
    if (!b) return 0;
    if (b->b.ctx) tsq_buf_free(&b->b);
    b->b.ctx = NULL;
    return 0;
}

/* A text buffer freed by the garbage collector: safe across Lua calls that raise. */
tsq_buf *ltsqi_newbuf(lua_State *L) {
    tsq_ctx *ctx = ltsq_context(L);
    bufbox *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BUF_MT);
    tsq_buf_init(&b->b, ctx);
    return &b->b;
}

int ltsqi_raise_error(lua_State *L, const tsq_error *err) {
    char buf[1200];
    return luaL_error(L, "%s", tsq_error_format(err, buf, sizeof buf));
}

int ltsqi_fail_error(lua_State *L, const tsq_error *err) {
    char buf[1200];
    luaL_pushfail(L);
    lua_pushstring(L, tsq_error_format(err, buf, sizeof buf));
    return 2;
}

const char *ltsqi_checkstr_field(lua_State *L, int t, const char *k) {
    int ty = lua_getfield(L, t, k);
    if (ty == LUA_TNIL) return NULL;
    if (ty != LUA_TSTRING && ty != LUA_TNUMBER) luaL_error(L, "field '%s' must be a string (got %s)", k, luaL_typename(L, -1));
    return lua_tostring(L, -1); /* stays on the stack */
}

/* A string for a value: strings and numbers as Lua prints them, booleans "true"/"false". */
const char *ltsqi_value_text(lua_State *L, int idx, const char *what) {
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: return lua_tostring(L, idx);
    case LUA_TNUMBER: return luaL_tolstring(L, idx, NULL); /* pushed */
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? "true" : "false";
    default: luaL_error(L, "%s must be a string (got %s)", what, luaL_typename(L, idx)); return NULL;
    }
}

void ltsqi_setfield_str(lua_State *L, const char *k, const char *v) {
    if (!v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

void ltsqi_setfield_int(lua_State *L, const char *k, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

/* ------------------------------------------------------------------ protected callbacks */

/* Runs body(arg) under lua_pcall on L; on error copies the message into msg and returns 0. */
int ltsqi_protected_call(lua_State *L, lua_CFunction body, void *arg, char *msg, size_t msgsize) {
    if (!lua_checkstack(L, 4)) {
        snprintf(msg, msgsize, "stack overflow");
        return 0;
    }
    lua_pushcfunction(L, body);
    lua_pushlightuserdata(L, arg);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        snprintf(msg, msgsize, "%s", m ? m : "error object is not a string");
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

void ltsqi_collector_begin(lua_State *L, collector *c, int idx) {
    memset(c, 0, sizeof *c);
    c->L = L;
    lua_pushvalue(L, idx);
    lua_rawsetp(L, LUA_REGISTRYINDEX, c);
}

void ltsqi_collector_end(lua_State *L, collector *c) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, c);
    if (c->failed) luaL_error(L, "%s", c->msg);
}

void ltsqi_collector_call(collector *c, lua_CFunction body, const void *item) {
    if (c->failed) return;
    c->item = item;
    if (!ltsqi_protected_call(c->L, body, c, c->msg, sizeof c->msg)) c->failed = 1;
}

/* ------------------------------------------------------------------ module functions */

static int l_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    tsq_node *n = NULL;
    tsq_error err;
    ERR_INIT(err);
    statebox *s = ltsqi_state(L);
    ltsqi_gc_before_load(L, s);
    if (tsq_load(s->ctx, path, &n, &err)) return ltsqi_fail_error(L, &err);
    ltsqi_push_owned_node(L, n);
    return 1;
}

static int l_parse(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, NULL);
    tsq_node *n = NULL;
    tsq_error err;
    ERR_INIT(err);
    statebox *s = ltsqi_state(L);
    ltsqi_gc_before_load(L, s);
    if (tsq_parse(s->ctx, text, len, name, &n, &err)) return ltsqi_fail_error(L, &err);
    ltsqi_push_owned_node(L, n);
    return 1;
}

static int l_new_sequence(lua_State *L) {
    const char *name = luaL_optstring(L, 1, NULL);
    tsq_node *n = tsq_sequence_new(ltsq_context(L));
    if (!n) return luaL_error(L, "out of memory");
    ltsqi_push_owned_node(L, n);
    if (name && *name && tsq_node_set_name(n, name)) return luaL_error(L, "out of memory");
    return 1;
}

static int l_new_group(lua_State *L) {
    const char *name = luaL_optstring(L, 1, "");
    tsq_node *n = tsq_group_new(ltsq_context(L), name);
    if (!n) return luaL_error(L, "out of memory");
    ltsqi_push_owned_node(L, n);
    return 1;
}

static int l_new_action(lua_State *L) {
    const char *type = luaL_checkstring(L, 1);
    const char *name = luaL_optstring(L, 2, NULL);
    tsq_node *n = NULL;
    tsq_error err;
    ERR_INIT(err);
    if (tsq_action_new(ltsq_context(L), type, name, &n, &err)) return ltsqi_raise_error(L, &err);
    ltsqi_push_owned_node(L, n);
    return 1;
}

static void push_class(lua_State *L, const tsq_class_info *c) {
    lua_createtable(L, 0, 7);
    ltsqi_setfield_str(L, "name", c->name);
    ltsqi_setfield_str(L, "short_name", c->short_name);
    if (c->display && strcmp(c->display, "-") != 0) ltsqi_setfield_str(L, "display", c->display);
    ltsqi_setfield_str(L, "environment", c->environment);
    if (c->template_ && strcmp(c->template_, "-") != 0) ltsqi_setfield_str(L, "template", c->template_);
    lua_createtable(L, (int)c->nprops, 0);
    static const char *const vt[] = {"nil", "boolean", "integer", "string", "list", "objects"};
    for (size_t i = 0; i < c->nprops; i++) {
        const tsq_prop_info *p = tsq_class_prop(c, i);
        if (!p) continue;
        lua_createtable(L, 0, 10);
        ltsqi_setfield_str(L, "name", p->name);
        ltsqi_setfield_str(L, "type", p->type <= TSQ_V_OBJECTS ? vt[p->type] : "?");
        ltsqi_setfield_str(L, "sdk_type", p->sdk_type);
        ltsqi_setfield_str(L, "variable", p->variable);
        ltsqi_setfield_str(L, "default", p->default_);
        ltsqi_setfield_str(L, "allowed", p->allowed);
        lua_pushboolean(L, p->hidden), lua_setfield(L, -2, "hidden");
        lua_pushboolean(L, p->required), lua_setfield(L, -2, "required");
        lua_pushboolean(L, p->secret), lua_setfield(L, -2, "secret");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "properties");
}

/* core.classes() -> array of class descriptions from the catalogue */
static int l_classes(lua_State *L) {
    size_t n = tsq_class_count();
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const tsq_class_info *c = tsq_class_at(i);
        if (!c) continue;
        push_class(L, c);
        lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    }
    return 1;
}

static int l_class(lua_State *L) {
    const tsq_class_info *c = tsq_class_find(luaL_checkstring(L, 1));
    if (!c) return 0;
    push_class(L, c);
    return 1;
}

/* ts.memory(): the bytes the core holds for this state (documents, steps, conditions),
 * which collectgarbage("count") does not see. */
static int l_memory(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)ltsqi_state(L)->inuse);
    return 1;
}

static int l_is_step(lua_State *L) {
    lua_pushboolean(L, ltsq_testnode(L, 1) != NULL);
    return 1;
}

static int l_is_condition(lua_State *L) {
    lua_pushboolean(L, ltsqi_testcond(L, 1) != NULL);
    return 1;
}

static int l_is_environment(lua_State *L) {
    lua_pushboolean(L, luaL_testudata(L, 1, ENV_MT) != NULL);
    return 1;
}

static int l_status_message(lua_State *L) {
    const char *s = tsq_status_message_name((uint32_t)luaL_checkinteger(L, 1));
    if (s) lua_pushstring(L, s);
    else lua_pushnil(L);
    return 1;
}
/* ------------------------------------------------------------------ registration */

static const luaL_Reg funcs[] = {
    {"load", l_load},
    {"parse", l_parse},
    {"new_sequence", l_new_sequence},
    {"new_group", l_new_group},
    {"new_action", l_new_action},
    {"apply", ltsqi_apply},
    {"move", ltsqi_step_move},
    {"constructor", ltsqi_constructor},
    {"condition", ltsqi_condition},
    {"all", ltsqi_all},
    {"any", ltsqi_any},
    {"none", ltsqi_none},
    {"variable", ltsqi_variable},
    {"wmi", ltsqi_wmi},
    {"expression", ltsqi_expression},
    {"operator", ltsqi_cond_kind},
    {"environment", ltsqi_environment},
    {"classes", l_classes},
    {"class", l_class},
    {"is_step", l_is_step},
    {"memory", l_memory},
    {"is_condition", l_is_condition},
    {"is_environment", l_is_environment},
    {"status_message", l_status_message},
    {NULL, NULL},
};

static void new_type(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    if (methods) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "methods");
    }
    lua_pop(L, 1);
}

static void weak_table(lua_State *L, const void *key) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

LTSQ_API int luaopen_tasksequence_core(lua_State *L) {
    /* the context first: at lua_close it is finalized after every object made in it */
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, STATE_KEY) == LUA_TNIL) {
        lua_pop(L, 1);
        statebox *s = lua_newuserdatauv(L, sizeof *s, 0);
        s->ctx = NULL;
        s->inuse = 0;
        s->collect_at = (size_t)4 << 20;
        s->young_at = 0;
        luaL_newmetatable(L, STATE_MT);
        lua_pushcfunction(L, state_gc);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        if (!(s->ctx = tsq_ctx_new(state_alloc, s))) return luaL_error(L, "out of memory");
        lua_rawsetp(L, LUA_REGISTRYINDEX, STATE_KEY);
    } else {
        lua_pop(L, 1);
    }
    weak_table(L, BOXES_KEY);
    weak_table(L, ENVS_KEY);

    if (luaL_newmetatable(L, STEP_MT)) {
        luaL_setfuncs(L, ltsqi_step_meta, 0);
        ltsqi_new_step_methods(L);
        lua_createtable(L, 0, 1); /* no method under a field's or a property's name */
        lua_pushcfunction(L, ltsqi_methods_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "methods");
        lua_rawgetp(L, LUA_REGISTRYINDEX, BOXES_KEY);
        lua_pushvalue(L, -3); /* the metatable (not yet in the registry) */
        lua_pushcclosure(L, ltsqi_step_index, 3); /* methods, boxes, metatable */
        lua_setfield(L, -2, "__index");
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, STEP_MT_KEY);
    new_type(L, COND_MT, ltsqi_cond_meta, ltsqi_cond_methods);
    luaL_getmetatable(L, COND_MT);
    lua_rawsetp(L, LUA_REGISTRYINDEX, COND_MT_KEY);
    new_type(L, ENV_MT, ltsqi_env_meta, ltsqi_env_methods);
    new_type(L, VARS_MT, ltsqi_vars_meta, NULL);
    new_type(L, PKG_MT, ltsqi_pkg_meta, NULL);
    static const luaL_Reg buf_meta[] = {{"__gc", buf_gc}, {NULL, NULL}};
    static const luaL_Reg run_meta[] = {{"__gc", ltsqi_runbox_gc}, {NULL, NULL}};
    new_type(L, BUF_MT, buf_meta, NULL);
    new_type(L, RUN_MT, run_meta, NULL);
    new_type(L, PLAN_MT, ltsqi_plan_meta, NULL);

    luaL_newlib(L, funcs);
    ltsqi_set_leaf_funcs(L);
    /* the method tables, so that the Lua layer can add methods written in Lua */
    luaL_getmetatable(L, STEP_MT);
    lua_getfield(L, -1, "methods");
    lua_setfield(L, -3, "step_methods");
    lua_pop(L, 1);
    luaL_getmetatable(L, COND_MT);
    lua_getfield(L, -1, "methods");
    lua_setfield(L, -3, "condition_methods");
    lua_pop(L, 1);
    lua_pushstring(L, tsq_version());
    lua_setfield(L, -2, "version");
    lua_pushliteral(L, "tasksequence " TSQ_VERSION);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}

