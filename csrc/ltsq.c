/*
 * ltsq.c - the Lua binding: tasksequence.core.
 *
 * Userdata are small boxes holding a reference to a core object: a step box holds one
 * tsq_node_retain, a condition box owns its tree, an environment box owns its tsq_env
 * and keeps the Lua providers in its user value. One box per node (a weak table maps
 * the node to its box) so that identity comparisons work. Every call from the core back
 * into Lua (providers, handlers, trace, plan, validation) runs under lua_pcall: a Lua
 * error never crosses the core's frames.
 */
#include "ltsq.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STEP_MT "tasksequence.step"
#define COND_MT "tasksequence.condition"
#define ENV_MT "tasksequence.environment"
#define VARS_MT "tasksequence.variables"
#define PKG_MT "tasksequence.package"
#define BUF_MT "tasksequence.buffer"
#define RUN_MT "tasksequence.runbox"
#define STATE_MT "tasksequence.state"
#define STATE_KEY "tasksequence.state"
#define BOXES_KEY "tasksequence.boxes" /* lightuserdata(node) -> step box, weak values */
#define ENVS_KEY "tasksequence.envs"   /* lightuserdata(envbox) -> env box, weak values */

typedef struct statebox { tsq_ctx *ctx; } statebox;
typedef struct stepbox { tsq_node *n; } stepbox;
typedef struct condbox { tsq_cond *c; } condbox;
typedef struct bufbox { tsq_buf b; } bufbox;
typedef struct runbox { tsq_run *r; } runbox;

/* While the core runs with this environment, L is the thread to call providers on. */
typedef struct envbox {
    tsq_env *env;
    lua_State *L;
    char msg[512]; /* the last provider error, "" when none */
} envbox;

#define ERR_INIT(e) memset(&(e), 0, sizeof(e))

/* ------------------------------------------------------------------ state, helpers */

static int state_gc(lua_State *L) {
    /* no registry lookups in finalizers: at lua_close they run in any state */
    statebox *s = lua_touserdata(L, 1);
    if (!s) return 0;
    tsq_ctx_free(s->ctx);
    s->ctx = NULL;
    return 0;
}

LTSQ_API tsq_ctx *ltsq_context(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    statebox *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!s || !s->ctx) luaL_error(L, "tasksequence.core is not loaded in this state");
    return s->ctx;
}

static int buf_gc(lua_State *L) {
    bufbox *b = lua_touserdata(L, 1);
    if (!b) return 0;
    if (b->b.ctx) tsq_buf_free(&b->b);
    b->b.ctx = NULL;
    return 0;
}

/* A text buffer freed by the garbage collector: safe across Lua calls that raise. */
static tsq_buf *newbuf(lua_State *L) {
    tsq_ctx *ctx = ltsq_context(L);
    bufbox *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BUF_MT);
    tsq_buf_init(&b->b, ctx);
    return &b->b;
}

static int raise_error(lua_State *L, const tsq_error *err) {
    char buf[1200];
    return luaL_error(L, "%s", tsq_error_format(err, buf, sizeof buf));
}

static int fail_error(lua_State *L, const tsq_error *err) {
    char buf[1200];
    luaL_pushfail(L);
    lua_pushstring(L, tsq_error_format(err, buf, sizeof buf));
    return 2;
}

static const char *checkstr_field(lua_State *L, int t, const char *k) {
    int ty = lua_getfield(L, t, k);
    if (ty == LUA_TNIL) return NULL;
    if (ty != LUA_TSTRING && ty != LUA_TNUMBER) luaL_error(L, "field '%s' must be a string (got %s)", k, luaL_typename(L, -1));
    return lua_tostring(L, -1); /* stays on the stack */
}

/* A string for a value: strings and numbers as Lua prints them, booleans "true"/"false". */
static const char *value_text(lua_State *L, int idx, const char *what) {
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: return lua_tostring(L, idx);
    case LUA_TNUMBER: return luaL_tolstring(L, idx, NULL); /* pushed */
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? "true" : "false";
    default: luaL_error(L, "%s must be a string (got %s)", what, luaL_typename(L, idx)); return NULL;
    }
}

/* ------------------------------------------------------------------ step boxes */

LTSQ_API void ltsq_pushnode(lua_State *L, tsq_node *n) {
    if (!n) {
        lua_pushnil(L);
        return;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, BOXES_KEY);
    if (lua_rawgetp(L, -1, n) != LUA_TNIL) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    stepbox *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->n = NULL;
    luaL_setmetatable(L, STEP_MT);
    tsq_node_retain(n);
    b->n = n;
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, n);
    lua_remove(L, -2);
}

/* Pushes the box of a (+1) node and drops that reference. */
static void push_owned_node(lua_State *L, tsq_node *n) {
    ltsq_pushnode(L, n);
    tsq_node_release(n);
}

LTSQ_API tsq_node *ltsq_testnode(lua_State *L, int idx) {
    stepbox *b = luaL_testudata(L, idx, STEP_MT);
    return b ? b->n : NULL;
}

LTSQ_API tsq_node *ltsq_checknode(lua_State *L, int idx) {
    stepbox *b = luaL_checkudata(L, idx, STEP_MT);
    if (!b->n) luaL_argerror(L, idx, "step is closed");
    return b->n;
}

static int step_gc(lua_State *L) {
    stepbox *b = lua_touserdata(L, 1);
    if (!b) return 0;
    tsq_node *n = b->n;
    b->n = NULL;
    tsq_node_release(n);
    return 0;
}

static int is_container(const tsq_node *n) { return tsq_node_kind(n) != TSQ_ACTION; }

static const char *kind_name(const tsq_node *n) {
    switch (tsq_node_kind(n)) {
    case TSQ_SEQUENCE: return "sequence";
    case TSQ_GROUP: return "group";
    default: return "action";
    }
}

/* A sequence's name: the package's Name when it is wrapped, else its name attribute. */
static const char *seq_name(const tsq_node *n) {
    const char *v = tsq_doc_wrapper(n) != TSQ_WRAP_NONE ? tsq_doc_field(n, "Name") : NULL;
    return v ? v : tsq_node_name(n);
}

static const char *short_type(const tsq_node *n) {
    const char *t = tsq_node_type(n);
    const tsq_class_info *c = tsq_class_find(t);
    if (c && c->short_name) return c->short_name;
    return *t ? t : "step";
}

static int step_tostring(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    switch (tsq_node_kind(n)) {
    case TSQ_SEQUENCE: {
        size_t k = 0;
        for (tsq_node *c = tsq_node_walk(n, NULL); c; c = tsq_node_walk(n, c)) k++;
        const char *name = seq_name(n);
        if (*name)
            lua_pushfstring(L, "sequence \"%s\" (%s, %d step%s)", name, tsq_sequence_version(n), (int)k, k == 1 ? "" : "s");
        else
            lua_pushfstring(L, "sequence (%s, %d step%s)", tsq_sequence_version(n), (int)k, k == 1 ? "" : "s");
        break;
    }
    case TSQ_GROUP: {
        size_t k = tsq_node_count(n);
        lua_pushfstring(L, "group \"%s\" (%d step%s)", tsq_node_name(n), (int)k, k == 1 ? "" : "s");
        break;
    }
    default: lua_pushfstring(L, "%s \"%s\"", short_type(n), tsq_node_name(n)); break;
    }
    return 1;
}

static int step_len(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)tsq_node_count(ltsq_checknode(L, 1)));
    return 1;
}

static int step_eq(lua_State *L) {
    lua_pushboolean(L, ltsq_testnode(L, 1) && ltsq_testnode(L, 1) == ltsq_testnode(L, 2));
    return 1;
}

/* ------------------------------------------------------------------ condition boxes */

static condbox *newcondbox(lua_State *L) {
    condbox *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->c = NULL;
    luaL_setmetatable(L, COND_MT);
    return b;
}

LTSQ_API void ltsq_pushcond(lua_State *L, const tsq_cond *c) {
    if (!c) {
        lua_pushnil(L);
        return;
    }
    condbox *b = newcondbox(L);
    if (!(b->c = tsq_cond_clone(c))) luaL_error(L, "out of memory");
}

LTSQ_API tsq_cond *ltsq_checkcond(lua_State *L, int idx) {
    condbox *b = luaL_checkudata(L, idx, COND_MT);
    if (!b->c) luaL_argerror(L, idx, "condition is closed");
    return b->c;
}

static tsq_cond *testcond(lua_State *L, int idx) {
    condbox *b = luaL_testudata(L, idx, COND_MT);
    return b ? b->c : NULL;
}

static int cond_gc(lua_State *L) {
    condbox *b = lua_touserdata(L, 1);
    if (!b) return 0;
    tsq_cond_free(b->c);
    b->c = NULL;
    return 0;
}

/* ------------------------------------------------------------------ protected callbacks */

/* Runs body(arg) under lua_pcall on L; on error copies the message into msg and returns 0. */
static int protected_call(lua_State *L, lua_CFunction body, void *arg, char *msg, size_t msgsize) {
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

/* Collects callback results into the table at stack index idx of the calling frame. */
typedef struct collector {
    lua_State *L;
    int failed;
    char msg[512];
    const void *item; /* the callback's argument */
} collector;

static void collector_begin(lua_State *L, collector *c, int idx) {
    memset(c, 0, sizeof *c);
    c->L = L;
    lua_pushvalue(L, idx);
    lua_rawsetp(L, LUA_REGISTRYINDEX, c);
}

static void collector_end(lua_State *L, collector *c) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, c);
    if (c->failed) luaL_error(L, "%s", c->msg);
}

static void collector_call(collector *c, lua_CFunction body, const void *item) {
    if (c->failed) return;
    c->item = item;
    if (!protected_call(c->L, body, c, c->msg, sizeof c->msg)) c->failed = 1;
}

/* ------------------------------------------------------------------ environments */

static void setfield_str(lua_State *L, const char *k, const char *v) {
    if (!v) return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void setfield_int(lua_State *L, const char *k, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

LTSQ_API tsq_env *ltsq_checkenv(lua_State *L, int idx) {
    envbox *b = luaL_checkudata(L, idx, ENV_MT);
    if (!b->env) luaL_argerror(L, idx, "environment is closed");
    return b->env;
}

static envbox *checkenvbox(lua_State *L, int idx) {
    envbox *b = luaL_checkudata(L, idx, ENV_MT);
    if (!b->env) luaL_argerror(L, idx, "environment is closed");
    return b;
}

static int env_gc(lua_State *L) {
    envbox *b = lua_touserdata(L, 1);
    if (!b) return 0;
    tsq_env_free(b->env);
    b->env = NULL;
    return 0;
}

/* Fetches the provider table of box b onto L (inside a protected body). */
static void push_providers(lua_State *L, envbox *b) {
    lua_getfield(L, LUA_REGISTRYINDEX, ENVS_KEY);
    lua_rawgetp(L, -1, b);
    lua_remove(L, -2);
    if (lua_isnil(L, -1)) luaL_error(L, "environment is not registered");
    lua_getiuservalue(L, -1, 1);
    lua_remove(L, -2);
}

/* Keeps string s (at stack index idx) alive until the provider is called again. */
static const char *anchor(lua_State *L, int prov, int slot, int idx) {
    if (lua_isnil(L, idx)) return NULL;
    const char *s = lua_tostring(L, idx);
    if (!s) luaL_error(L, "provider value must be a string (got %s)", luaL_typename(L, idx));
    lua_rawgeti(L, prov, 0); /* the anchor table */
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, slot);
    lua_pop(L, 1);
    return s;
}

typedef struct fact_call {
    envbox *b;
    const char *what; /* "wmi", "files", "folders", "registry", "software" */
    const char *a1, *a2;
    int upgrade;
    tsq_status st;
    long rows;
    tsq_file_fact *file;
    tsq_reg_fact *reg;
    int installed;
    const char *version;
} fact_call;

/* The provider's answer for (a1[, a2]) onto the stack: nil when it is not described. */
static void provider_lookup(lua_State *L, fact_call *f, int prov) {
    int t = lua_getfield(L, prov, f->what);
    if (t == LUA_TFUNCTION) {
        int nargs = 1;
        if (!strcmp(f->what, "wmi")) {
            lua_pushstring(L, f->a1);
            lua_pushstring(L, f->a2);
            nargs = 2;
        } else if (!strcmp(f->what, "registry")) {
            lua_pushstring(L, f->a1);
            lua_pushstring(L, f->a2);
            nargs = 2;
        } else if (!strcmp(f->what, "software")) {
            lua_pushstring(L, f->a1);
            lua_pushboolean(L, f->upgrade);
            nargs = 2;
        } else {
            lua_pushstring(L, f->a1);
        }
        lua_call(L, nargs, 1);
        return;
    }
    if (t != LUA_TTABLE) return; /* nil: the environment does not describe it */
    if (!strcmp(f->what, "wmi")) {
        lua_getfield(L, -1, f->a2);
    } else if (!strcmp(f->what, "registry")) {
        if (lua_getfield(L, -1, f->a1) == LUA_TTABLE)
            lua_getfield(L, -1, f->a2 ? f->a2 : "");
        else
            lua_pushboolean(L, 0);
        lua_remove(L, -2);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 0);
        }
    } else if (!strcmp(f->what, "software")) {
        const char *field = f->upgrade ? "UpgradeCode" : "ProductCode";
        lua_Integer n = (lua_Integer)luaL_len(L, -1);
        int found = 0;
        for (lua_Integer i = 1; i <= n && !found; i++) {
            if (lua_rawgeti(L, -1, i) == LUA_TTABLE) {
                lua_getfield(L, -1, field);
                const char *code = lua_tostring(L, -1);
                found = code && strcasecmp(code, f->a1) == 0;
                lua_pop(L, 1);
                if (found) break;
            }
            lua_pop(L, 1);
        }
        if (!found) lua_pushboolean(L, 0);
    } else {
        lua_getfield(L, -1, f->a1);
        if (lua_isnil(L, -1)) { /* a table of paths describes the whole disk */
            lua_pop(L, 1);
            lua_pushboolean(L, 0);
        }
    }
    lua_remove(L, -2);
}

static int fact_body(lua_State *L) {
    fact_call *f = lua_touserdata(L, 1);
    push_providers(L, f->b);
    int prov = lua_gettop(L);
    provider_lookup(L, f, prov);
    int v = lua_gettop(L);
    f->st = TSQ_OK;
    if (lua_isnil(L, v)) {
        f->st = TSQ_EFACT;
        return 0;
    }
    if (!strcmp(f->what, "wmi")) {
        switch (lua_type(L, v)) {
        case LUA_TNUMBER: f->rows = (long)lua_tointeger(L, v); break;
        case LUA_TBOOLEAN: f->rows = lua_toboolean(L, v) ? 1 : 0; break;
        case LUA_TTABLE: f->rows = (long)luaL_len(L, v); break;
        default: return luaL_error(L, "wmi provider must return rows (got %s)", luaL_typename(L, v));
        }
    } else if (!strcmp(f->what, "registry")) {
        memset(f->reg, 0, sizeof *f->reg);
        if (lua_type(L, v) == LUA_TBOOLEAN && !lua_toboolean(L, v)) return 0;
        f->reg->exists = 1;
        if (lua_type(L, v) == LUA_TTABLE) {
            lua_getfield(L, v, "Type");
            f->reg->type = anchor(L, prov, 1, -1);
            lua_getfield(L, v, "Data");
            if (lua_type(L, -1) == LUA_TNUMBER) luaL_tolstring(L, -1, NULL);
            f->reg->data = anchor(L, prov, 2, -1);
        } else {
            if (lua_type(L, v) == LUA_TNUMBER) luaL_tolstring(L, v, NULL);
            f->reg->data = anchor(L, prov, 2, -1);
            f->reg->type = "REG_SZ";
        }
    } else if (!strcmp(f->what, "software")) {
        f->installed = 0;
        f->version = NULL;
        if (lua_type(L, v) == LUA_TBOOLEAN) {
            f->installed = lua_toboolean(L, v);
            return 0;
        }
        if (lua_type(L, v) != LUA_TTABLE) return luaL_error(L, "software provider must return a table (got %s)", luaL_typename(L, v));
        f->installed = 1;
        lua_getfield(L, v, "Version");
        f->version = anchor(L, prov, 1, -1);
    } else {
        memset(f->file, 0, sizeof *f->file);
        if (lua_type(L, v) == LUA_TBOOLEAN) {
            f->file->exists = lua_toboolean(L, v);
            return 0;
        }
        if (lua_type(L, v) != LUA_TTABLE) return luaL_error(L, "%s provider must return a table (got %s)", f->what, luaL_typename(L, v));
        f->file->exists = 1;
        lua_getfield(L, v, "Version");
        f->file->version = anchor(L, prov, 1, -1);
        lua_getfield(L, v, "DateTime");
        f->file->datetime = anchor(L, prov, 2, -1);
    }
    return 0;
}

static tsq_status fact_run(fact_call *f) {
    envbox *b = f->b;
    if (!b->L) return TSQ_EFACT;
    if (!protected_call(b->L, fact_body, f, b->msg, sizeof b->msg)) return TSQ_EFACT;
    return f->st;
}

static tsq_status prov_wmi(void *ud, const char *ns, const char *query, long *rows) {
    fact_call f;
    memset(&f, 0, sizeof f);
    f.b = ud, f.what = "wmi", f.a1 = ns, f.a2 = query;
    tsq_status st = fact_run(&f);
    if (st == TSQ_OK) *rows = f.rows;
    return st;
}

static tsq_status prov_file(void *ud, const char *path, tsq_file_fact *out) {
    fact_call f;
    memset(&f, 0, sizeof f);
    f.b = ud, f.what = "files", f.a1 = path, f.file = out;
    return fact_run(&f);
}

static tsq_status prov_folder(void *ud, const char *path, tsq_file_fact *out) {
    fact_call f;
    memset(&f, 0, sizeof f);
    f.b = ud, f.what = "folders", f.a1 = path, f.file = out;
    return fact_run(&f);
}

static tsq_status prov_registry(void *ud, const char *key, const char *value, tsq_reg_fact *out) {
    fact_call f;
    memset(&f, 0, sizeof f);
    f.b = ud, f.what = "registry", f.a1 = key, f.a2 = value ? value : "", f.reg = out;
    return fact_run(&f);
}

static tsq_status prov_software(void *ud, const char *code, int upgrade, int *installed, const char **version) {
    fact_call f;
    memset(&f, 0, sizeof f);
    f.b = ud, f.what = "software", f.a1 = code, f.upgrade = upgrade;
    tsq_status st = fact_run(&f);
    if (st == TSQ_OK) {
        *installed = f.installed;
        if (version) *version = f.version;
    }
    return st;
}

/* A new environment box at the top of the stack with the provider table `prov`
 * (stack index, 0 for a new empty one); env NULL makes a new empty environment. */
static envbox *newenvbox(lua_State *L, const tsq_env *from, int prov) {
    tsq_ctx *ctx = ltsq_context(L);
    if (prov) prov = lua_absindex(L, prov);
    envbox *b = lua_newuserdatauv(L, sizeof *b, 1);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, ENV_MT);
    if (prov)
        lua_pushvalue(L, prov);
    else
        lua_newtable(L);
    if (lua_rawgeti(L, -1, 0) == LUA_TNIL) { /* the anchor table for fact strings */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_rawseti(L, -2, 0);
    } else {
        lua_pop(L, 1);
    }
    lua_setiuservalue(L, -2, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, ENVS_KEY);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, b);
    lua_pop(L, 1);
    b->env = from ? tsq_env_clone(from) : tsq_env_new(ctx);
    if (!b->env) luaL_error(L, "out of memory");
    if (prov || !from) {
        tsq_provider p;
        p.wmi = prov_wmi, p.file = prov_file, p.folder = prov_folder;
        p.registry = prov_registry, p.software = prov_software, p.ud = b;
        tsq_env_set_provider(b->env, &p);
    }
    return b;
}

LTSQ_API void ltsq_pushenv(lua_State *L, const tsq_env *env) {
    if (!env) {
        lua_pushnil(L);
        return;
    }
    newenvbox(L, env, 0);
}

/* Makes L the thread the providers of b run on, for one core call; returns the previous. */
static lua_State *env_enter(envbox *b, lua_State *L) {
    lua_State *old = b->L;
    b->L = L;
    b->msg[0] = '\0';
    return old;
}

/* The core's message, with the provider's error when one was raised. */
static void env_error(envbox *b, tsq_error *err) {
    if (b->msg[0]) {
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n, "%s%s", n ? ": " : "", b->msg);
    }
}

static int env_set_value(lua_State *L, tsq_env *env, const char *name, int idx) {
    const char *v = lua_isnil(L, idx) ? "" : value_text(L, idx, "a variable value");
    if (tsq_env_set(env, name, v) != TSQ_OK) return luaL_error(L, "can not set variable '%s'", name);
    return 0;
}

static const char *const provider_keys[] = {"wmi", "files", "folders", "registry", "software", NULL};

static int l_environment(lua_State *L) {
    lua_settop(L, 1);
    if (lua_isnil(L, 1)) lua_newtable(L), lua_replace(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_newtable(L); /* the provider table */
    int prov = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int ok = k && !strcmp(k, "variables");
        for (int i = 0; k && provider_keys[i] && !ok; i++) ok = !strcmp(k, provider_keys[i]);
        if (!ok) return luaL_error(L, "unknown field '%s' in environment (valid: variables, wmi, files, folders, registry, software)", k ? k : luaL_typename(L, -2));
        if (strcmp(k, "variables") != 0) {
            if (!lua_istable(L, -1) && !lua_isfunction(L, -1))
                return luaL_error(L, "environment field '%s' must be a table or a function (got %s)", k, luaL_typename(L, -1));
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, prov);
        }
        lua_pop(L, 1);
    }
    envbox *b = newenvbox(L, NULL, prov);
    if (lua_getfield(L, 1, "variables") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            int key = lua_gettop(L) - 1;
            if (lua_type(L, key) != LUA_TSTRING) return luaL_error(L, "variable names must be strings");
            env_set_value(L, b->env, lua_tostring(L, key), key + 1);
            lua_settop(L, key);
        }
    } else if (!lua_isnil(L, -1)) {
        return luaL_error(L, "environment field 'variables' must be a table (got %s)", luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return 1;
}

static void push_variables_table(lua_State *L, const tsq_env *env) {
    size_t n = tsq_env_count(env);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const char *name = tsq_env_name_at(env, i);
        const char *v = name ? tsq_env_get(env, name) : NULL;
        if (v) setfield_str(L, name, v);
    }
}

static int vars_index(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    envbox *b = checkenvbox(L, -1);
    const char *v = tsq_env_get(b->env, luaL_checkstring(L, 2));
    if (v) lua_pushstring(L, v);
    else lua_pushnil(L);
    return 1;
}

static int vars_newindex(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    envbox *b = checkenvbox(L, -1);
    env_set_value(L, b->env, luaL_checkstring(L, 2), 3);
    return 0;
}

static int vars_next(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    envbox *b = checkenvbox(L, -1);
    lua_Integer i = lua_tointeger(L, lua_upvalueindex(1));
    size_t n = tsq_env_count(b->env);
    while ((size_t)i < n) {
        const char *name = tsq_env_name_at(b->env, (size_t)i++);
        const char *v = name ? tsq_env_get(b->env, name) : NULL;
        if (v) {
            lua_pushinteger(L, i);
            lua_replace(L, lua_upvalueindex(1));
            lua_pushstring(L, name);
            lua_pushstring(L, v);
            return 2;
        }
    }
    lua_pushinteger(L, i);
    lua_replace(L, lua_upvalueindex(1));
    return 0;
}

static int vars_pairs(lua_State *L) {
    luaL_checkudata(L, 1, VARS_MT);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, vars_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int vars_len(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    lua_pushinteger(L, (lua_Integer)tsq_env_count(checkenvbox(L, -1)->env));
    return 1;
}

static int vars_tostring(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "variables (%d)", (int)tsq_env_count(checkenvbox(L, -1)->env));
    return 1;
}

static int env_get(lua_State *L) {
    const char *v = tsq_env_get(ltsq_checkenv(L, 1), luaL_checkstring(L, 2));
    if (v) lua_pushstring(L, v);
    else lua_pushnil(L);
    return 1;
}

static int env_set(lua_State *L) {
    tsq_env *e = ltsq_checkenv(L, 1);
    env_set_value(L, e, luaL_checkstring(L, 2), 3);
    lua_settop(L, 1);
    return 1;
}

static int env_expand(lua_State *L) {
    tsq_env *e = ltsq_checkenv(L, 1);
    const char *text = luaL_checkstring(L, 2);
    tsq_buf *b = newbuf(L);
    const char *s = tsq_env_expand(e, text, b);
    if (b->failed) return luaL_error(L, "out of memory");
    lua_pushstring(L, s ? s : "");
    return 1;
}

static int env_clone(lua_State *L) {
    checkenvbox(L, 1);
    lua_getiuservalue(L, 1, 1);
    newenvbox(L, ltsq_checkenv(L, 1), -1);
    return 1;
}

static int env_vars_table(lua_State *L) {
    push_variables_table(L, ltsq_checkenv(L, 1));
    return 1;
}

static int env_index(lua_State *L) {
    checkenvbox(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "variables")) {
        lua_newuserdatauv(L, 0, 1);
        luaL_setmetatable(L, VARS_MT);
        lua_pushvalue(L, 1);
        lua_setiuservalue(L, -2, 1);
        return 1;
    }
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    if (lua_getfield(L, -1, k) != LUA_TNIL) return 1;
    return luaL_error(L, "no field '%s' on environment", k);
}

static int env_tostring(lua_State *L) {
    size_t n = tsq_env_count(ltsq_checkenv(L, 1));
    lua_pushfstring(L, "environment (%d variable%s)", (int)n, n == 1 ? "" : "s");
    return 1;
}

/* The environment argument at idx, or a new empty one pushed in its place. */
static envbox *optenvbox(lua_State *L, int idx) {
    if (lua_gettop(L) < idx) lua_settop(L, idx);
    if (lua_isnil(L, idx)) {
        newenvbox(L, NULL, 0);
        lua_replace(L, idx);
    }
    return checkenvbox(L, idx);
}

/* ------------------------------------------------------------------ conditions */

static const char *const cond_kind_names[] = {"", "condition", "and", "or", "not", "osgroup", "osexprgroup", "expression"};

static const char *cond_text(lua_State *L, const tsq_cond *c) {
    tsq_buf *b = newbuf(L);
    const char *s = tsq_cond_to_text(c, b);
    if (b->failed) luaL_error(L, "out of memory");
    lua_pushstring(L, s ? s : "");
    lua_remove(L, -2);
    return lua_tostring(L, -1);
}

static int cond_tostring(lua_State *L) {
    cond_text(L, ltsq_checkcond(L, 1));
    return 1;
}

static int cond_eq(lua_State *L) {
    tsq_cond *a = testcond(L, 1), *b = testcond(L, 2);
    lua_pushboolean(L, a && b && tsq_cond_equal(a, b));
    return 1;
}

static int cond_len(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)tsq_cond_count(ltsq_checkcond(L, 1)));
    return 1;
}

static tsq_cond_kind kind_of_name(const char *s) {
    for (int k = 1; k <= TSQ_C_EXPRESSION; k++)
        if (!strcmp(cond_kind_names[k], s)) return (tsq_cond_kind)k;
    return (tsq_cond_kind)0;
}

/* Adds the operand at idx (a condition, or a text to parse) to parent. A condition
 * operand is unwrapped: one operand is added as it is, several as an "and". */
static void cond_add_operand(lua_State *L, tsq_cond *parent, int idx, const char *fn) {
    tsq_error err;
    ERR_INIT(err);
    tsq_ctx *ctx = ltsq_context(L);
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        condbox *nb = newcondbox(L);
        if (tsq_cond_parse(ctx, lua_tostring(L, idx), &nb->c, &err)) raise_error(L, &err);
        lua_replace(L, idx);
    }
    tsq_cond *op = testcond(L, idx);
    if (!op) luaL_error(L, "bad operand to '%s' (condition expected, got %s)", fn, luaL_typename(L, idx));
    if (tsq_cond_get_kind(op) == TSQ_C_CONDITION) {
        if (tsq_cond_count(op) == 1) {
            op = (tsq_cond *)tsq_cond_operand(op, 0);
        } else {
            condbox *nb = newcondbox(L);
            if (!(nb->c = tsq_cond_new(ctx, TSQ_C_AND))) luaL_error(L, "out of memory");
            for (size_t i = 0; i < tsq_cond_count(op); i++)
                if (tsq_cond_add(nb->c, tsq_cond_operand(op, i), &err)) raise_error(L, &err);
            lua_replace(L, idx);
            op = nb->c;
        }
    }
    if (tsq_cond_add(parent, op, &err)) raise_error(L, &err);
}

static int new_operator(lua_State *L, tsq_cond_kind kind, const char *fn) {
    luaL_checktype(L, 1, LUA_TTABLE);
    condbox *b = newcondbox(L);
    if (!(b->c = tsq_cond_new(ltsq_context(L), kind))) return luaL_error(L, "out of memory");
    lua_Integer n = (lua_Integer)luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        cond_add_operand(L, b->c, -1, fn);
        lua_pop(L, 1);
    }
    return 1;
}

static int l_condition(lua_State *L) {
    if (lua_type(L, 1) == LUA_TSTRING) {
        tsq_error err;
        ERR_INIT(err);
        condbox *b = newcondbox(L);
        if (tsq_cond_parse(ltsq_context(L), lua_tostring(L, 1), &b->c, &err)) return raise_error(L, &err);
        if (tsq_cond_get_kind(b->c) != TSQ_C_CONDITION) { /* a condition holds its operand */
            condbox *w = newcondbox(L);
            if (!(w->c = tsq_cond_new(ltsq_context(L), TSQ_C_CONDITION))) return luaL_error(L, "out of memory");
            if (tsq_cond_add(w->c, b->c, &err)) return raise_error(L, &err);
        }
        return 1;
    }
    if (testcond(L, 1)) {
        lua_newtable(L);
        lua_pushvalue(L, 1);
        lua_rawseti(L, -2, 1);
        lua_replace(L, 1);
    }
    return new_operator(L, TSQ_C_CONDITION, "condition");
}

static int l_all(lua_State *L) { return new_operator(L, TSQ_C_AND, "all"); }
static int l_any(lua_State *L) { return new_operator(L, TSQ_C_OR, "any"); }
static int l_none(lua_State *L) { return new_operator(L, TSQ_C_NOT, "none"); }

static void cond_set(lua_State *L, tsq_cond *c, const char *name, const char *value) {
    tsq_error err;
    ERR_INIT(err);
    if (tsq_cond_set(c, name, value, &err)) raise_error(L, &err);
}

static int l_variable(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    const char *op = luaL_checkstring(L, 2);
    const char *value = lua_isnoneornil(L, 3) ? NULL : value_text(L, 3, "the value");
    condbox *b = newcondbox(L);
    if (!(b->c = tsq_cond_new_expression(ltsq_context(L), "SMS_TaskSequence_VariableConditionExpression")))
        return luaL_error(L, "out of memory");
    cond_set(L, b->c, "Operator", op);
    if (value) cond_set(L, b->c, "Value", value);
    cond_set(L, b->c, "Variable", name);
    return 1;
}

static int l_wmi(lua_State *L) {
    const char *query = luaL_checkstring(L, 1);
    const char *ns = luaL_optstring(L, 2, "root\\cimv2");
    condbox *b = newcondbox(L);
    if (!(b->c = tsq_cond_new_expression(ltsq_context(L), "SMS_TaskSequence_WMIConditionExpression")))
        return luaL_error(L, "out of memory");
    cond_set(L, b->c, "Namespace", ns);
    cond_set(L, b->c, "Query", query);
    return 1;
}

typedef struct leaf_spec {
    const char *fn, *cls;
    const char *const fields[6]; /* in the order they are written */
} leaf_spec;

static const leaf_spec leaf_specs[] = {
    {"file", "SMS_TaskSequence_FileConditionExpression", {"DateTime", "DateTimeOperator", "Path", "Version", "VersionOperator", NULL}},
    {"folder", "SMS_TaskSequence_FolderConditionExpression", {"DateTime", "DateTimeOperator", "Path", NULL, NULL, NULL}},
    {"registry", "SMS_TaskSequence_RegistryConditionExpression", {"Data", "KeyPath", "Operator", "Type", "Value", NULL}},
    {"software", "SMS_TaskSequence_SoftwareConditionExpression", {"Operator", "ProductCode", "ProductName", "UpgradeCode", "Version", NULL}},
};

static int new_leaf(lua_State *L) {
    const leaf_spec *sp = &leaf_specs[lua_tointeger(L, lua_upvalueindex(1))];
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 1)) { /* check every key before allocating */
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int ok = 0;
        for (int i = 0; k && sp->fields[i] && !ok; i++) ok = !strcmp(k, sp->fields[i]);
        if (!ok) {
            luaL_Buffer lb;
            luaL_buffinit(L, &lb);
            for (int i = 0; sp->fields[i]; i++) {
                if (i) luaL_addstring(&lb, ", ");
                luaL_addstring(&lb, sp->fields[i]);
            }
            luaL_pushresult(&lb);
            return luaL_error(L, "unknown field '%s' in %s condition (valid: %s)", k ? k : luaL_typename(L, -3), sp->fn, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
    }
    condbox *b = newcondbox(L);
    if (!(b->c = tsq_cond_new_expression(ltsq_context(L), sp->cls))) return luaL_error(L, "out of memory");
    for (int i = 0; sp->fields[i]; i++) {
        if (lua_getfield(L, 1, sp->fields[i]) != LUA_TNIL) cond_set(L, b->c, sp->fields[i], value_text(L, -1, sp->fields[i]));
        lua_settop(L, 2);
    }
    return 1;
}

/* ts.expression(class, { Name = value, ... }): a leaf of any class, values in key order. */
static int l_expression(lua_State *L) {
    const char *cls = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    condbox *b = newcondbox(L);
    if (!(b->c = tsq_cond_new_expression(ltsq_context(L), cls))) return luaL_error(L, "out of memory");
    /* sorted names: the order ConfigMgr writes them */
    lua_newtable(L);
    int names = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "expression value names must be strings");
        lua_pushvalue(L, -1);
        lua_rawseti(L, names, (lua_Integer)luaL_len(L, names) + 1);
    }
    lua_getglobal(L, "table");
    if (lua_istable(L, -1) && lua_getfield(L, -1, "sort") == LUA_TFUNCTION) {
        lua_pushvalue(L, names);
        lua_call(L, 1, 0);
    }
    lua_settop(L, names);
    lua_Integer n = (lua_Integer)luaL_len(L, names);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, names, i);
        const char *k = lua_tostring(L, -1);
        lua_getfield(L, 2, k);
        cond_set(L, b->c, k, value_text(L, -1, k));
        lua_settop(L, names);
    }
    lua_pop(L, 1);
    return 1;
}

static int cond_index(lua_State *L) {
    tsq_cond *c = ltsq_checkcond(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Integer i = lua_tointeger(L, 2);
        if (i < 1 || (size_t)i > tsq_cond_count(c)) return 0;
        ltsq_pushcond(L, tsq_cond_operand(c, (size_t)i - 1));
        return 1;
    }
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "kind")) {
        lua_pushstring(L, cond_kind_names[tsq_cond_get_kind(c)]);
        return 1;
    }
    if (!strcmp(k, "class")) {
        const char *cls = tsq_cond_class(c);
        if (cls) lua_pushstring(L, cls);
        else lua_pushnil(L);
        return 1;
    }
    if (!strcmp(k, "count")) {
        lua_pushinteger(L, (lua_Integer)tsq_cond_count(c));
        return 1;
    }
    if (!strcmp(k, "values")) {
        size_t n = tsq_cond_value_count(c);
        lua_createtable(L, 0, (int)n);
        for (size_t i = 0; i < n; i++) {
            const char *name = tsq_cond_value_name(c, i);
            if (name) setfield_str(L, name, tsq_cond_get(c, name));
        }
        return 1;
    }
    if (k[0] >= 'A' && k[0] <= 'Z') {
        const char *v = tsq_cond_get(c, k);
        if (v) lua_pushstring(L, v);
        else lua_pushnil(L);
        return 1;
    }
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    if (lua_getfield(L, -1, k) != LUA_TNIL) return 1;
    return luaL_error(L, "no field '%s' on condition", k);
}

static int cond_newindex(lua_State *L) {
    tsq_cond *c = ltsq_checkcond(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (!(k[0] >= 'A' && k[0] <= 'Z') || tsq_cond_get_kind(c) != TSQ_C_EXPRESSION)
        return luaL_error(L, "can not set field '%s' on a condition", k);
    cond_set(L, c, k, value_text(L, 3, k));
    return 0;
}

static int cond_add(lua_State *L) {
    tsq_cond *c = ltsq_checkcond(L, 1);
    if (tsq_cond_get_kind(c) == TSQ_C_EXPRESSION) return luaL_argerror(L, 1, "an expression has no operands");
    cond_add_operand(L, c, 2, "add");
    lua_settop(L, 1);
    return 1;
}

static int cond_clone(lua_State *L) {
    ltsq_pushcond(L, ltsq_checkcond(L, 1));
    return 1;
}

static int trace_body(lua_State *L) {
    collector *c = lua_touserdata(L, 1);
    const tsq_trace_entry *e = c->item;
    lua_rawgetp(L, LUA_REGISTRYINDEX, c);
    lua_createtable(L, 0, 4);
    setfield_int(L, "depth", e->depth);
    setfield_str(L, "operand", e->operand);
    lua_pushboolean(L, e->result);
    lua_setfield(L, -2, "result");
    setfield_str(L, "why", e->why);
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    return 0;
}

static void trace_cb(void *ud, const tsq_trace_entry *e) { collector_call(ud, trace_body, e); }

static int cond_evaluate(lua_State *L) {
    tsq_cond *c = ltsq_checkcond(L, 1);
    envbox *eb = optenvbox(L, 2);
    lua_newtable(L);
    int trace = lua_gettop(L);
    collector col;
    collector_begin(L, &col, trace);
    tsq_error err;
    ERR_INIT(err);
    int result = 0;
    lua_State *old = env_enter(eb, L);
    tsq_status st = tsq_cond_eval(c, eb->env, &result, trace_cb, &col, &err);
    eb->L = old;
    collector_end(L, &col);
    if (st == TSQ_EFACT) {
        env_error(eb, &err);
        return fail_error(L, &err);
    }
    if (st) return raise_error(L, &err);
    lua_pushboolean(L, result);
    lua_pushvalue(L, trace);
    return 2;
}

/* ------------------------------------------------------------------ values, properties */

static void push_list(lua_State *L, const char *s, size_t len) {
    lua_newtable(L);
    if (!s || !len) return;
    lua_Integer k = 0;
    const char *p = s, *end = s + len;
    for (;;) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        if (!q) q = end;
        lua_pushlstring(L, p, (size_t)(q - p));
        lua_rawseti(L, -2, ++k);
        if (q == end) break;
        p = q + 1;
    }
}

/* The helper class of an object-array property ("SMS_TaskSequence_ApplicationInfo"). */
static const tsq_class_info *helper_class(const tsq_node *n, const char *prop) {
    const tsq_class_info *c = tsq_class_find(tsq_node_type(n));
    const tsq_prop_info *p = c ? tsq_class_prop_find(c, prop) : NULL;
    if (!p || !p->sdk_type) return NULL;
    char name[128];
    size_t len = strlen(p->sdk_type);
    if (len < 3 || len >= sizeof name) return NULL;
    memcpy(name, p->sdk_type, len - 2); /* drop "[]" */
    name[len - 2] = '\0';
    return tsq_class_find(name);
}

static void push_value(lua_State *L, const tsq_node *n, const char *prop, const tsq_value *v);

static void push_objects(lua_State *L, const tsq_node *n, const char *prop, size_t count) {
    const tsq_class_info *h = helper_class(n, prop);
    lua_createtable(L, (int)count, 0);
    for (size_t i = 0; i < count; i++) {
        lua_newtable(L);
        for (size_t j = 0; h && j < h->nprops; j++) {
            const tsq_prop_info *f = tsq_class_prop(h, j);
            tsq_value fv;
            tsq_error err;
            ERR_INIT(err);
            if (!f || tsq_prop_object_get(n, prop, i, f->name, &fv, &err) != TSQ_OK || fv.type == TSQ_V_NIL) continue;
            push_value(L, n, prop, &fv);
            lua_setfield(L, -2, f->name);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void push_value(lua_State *L, const tsq_node *n, const char *prop, const tsq_value *v) {
    switch (v->type) {
    case TSQ_V_BOOL: lua_pushboolean(L, v->b); break;
    case TSQ_V_INT: lua_pushinteger(L, (lua_Integer)v->i); break;
    case TSQ_V_STRING: lua_pushlstring(L, v->s ? v->s : "", v->s ? v->len : 0); break;
    case TSQ_V_LIST: push_list(L, v->s, v->s ? v->len : 0); break;
    case TSQ_V_OBJECTS: push_objects(L, n, prop, (size_t)v->i); break;
    default: lua_pushnil(L); break;
    }
}

/* Converts the Lua value at idx to a tsq_value; a list is joined into a string pushed
 * on the stack. Returns 0 for a table of tables (an object array). */
static int to_value(lua_State *L, int idx, const char *prop, tsq_value *v) {
    memset(v, 0, sizeof *v);
    switch (lua_type(L, idx)) {
    case LUA_TNIL: v->type = TSQ_V_NIL; return 1;
    case LUA_TBOOLEAN: v->type = TSQ_V_BOOL, v->b = lua_toboolean(L, idx); return 1;
    case LUA_TNUMBER:
        if (!lua_isinteger(L, idx)) {
            lua_Number d = lua_tonumber(L, idx);
            if (d != (lua_Number)(lua_Integer)d) luaL_error(L, "bad value for '%s' (integer expected, got non-integer number)", prop);
            v->i = (int64_t)d;
        } else {
            v->i = (int64_t)lua_tointeger(L, idx);
        }
        v->type = TSQ_V_INT;
        return 1;
    case LUA_TSTRING: v->type = TSQ_V_STRING, v->s = lua_tolstring(L, idx, &v->len); return 1;
    case LUA_TTABLE: {
        lua_Integer n = (lua_Integer)luaL_len(L, idx);
        if (n > 0 && lua_rawgeti(L, idx, 1) == LUA_TTABLE) {
            lua_pop(L, 1);
            return 0;
        }
        if (n > 0) lua_pop(L, 1);
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            if (!lua_isstring(L, -1)) luaL_error(L, "bad value for '%s' (list of strings expected, item %d is %s)", prop, (int)i, luaL_typename(L, -1));
            if (i > 1) luaL_addchar(&b, ',');
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        v->type = TSQ_V_LIST;
        v->s = lua_tolstring(L, -1, &v->len);
        return 1;
    }
    default: luaL_error(L, "bad value for '%s' (%s is not a property value)", prop, luaL_typename(L, idx)); return 0;
    }
}

static int raise_step_error(lua_State *L, const tsq_node *n, const tsq_error *err) {
    return luaL_error(L, "%s \"%s\": %s", short_type(n), tsq_node_name(n), err->message);
}

static void set_objects(lua_State *L, tsq_node *n, const char *prop, int idx) {
    tsq_error err;
    ERR_INIT(err);
    size_t count = (size_t)luaL_len(L, idx);
    for (size_t i = 1; i <= count; i++) /* check before changing anything */
        if (lua_rawgeti(L, idx, (lua_Integer)i) != LUA_TTABLE) luaL_error(L, "bad value for '%s' (item %d is not a table)", prop, (int)i);
    lua_pop(L, (int)count);
    if (tsq_prop_object_resize(n, prop, count, &err)) raise_step_error(L, n, &err);
    for (size_t i = 0; i < count; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        int item = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, item)) {
            if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "bad value for '%s' (field names must be strings)", prop);
            const char *field = lua_tostring(L, -2);
            tsq_value fv;
            int top = lua_gettop(L);
            to_value(L, top, field, &fv);
            if (tsq_prop_object_set(n, prop, i, field, &fv, &err)) raise_step_error(L, n, &err);
            lua_settop(L, top - 1);
        }
        lua_pop(L, 1);
    }
}

static void set_prop(lua_State *L, tsq_node *n, const char *prop, int idx) {
    tsq_error err;
    ERR_INIT(err);
    tsq_value v;
    int top = lua_gettop(L);
    idx = lua_absindex(L, idx);
    if (lua_istable(L, idx) && luaL_len(L, idx) == 0) { /* {} : an empty object array or list */
        const tsq_class_info *c = tsq_class_find(tsq_node_type(n));
        const tsq_prop_info *p = c ? tsq_class_prop_find(c, prop) : NULL;
        if (p && p->type == TSQ_V_OBJECTS) {
            if (tsq_prop_object_resize(n, prop, 0, &err)) raise_step_error(L, n, &err);
            return;
        }
    }
    if (!to_value(L, idx, prop, &v)) {
        set_objects(L, n, prop, idx);
    } else if (tsq_prop_set(n, prop, &v, &err)) {
        raise_step_error(L, n, &err);
    }
    lua_settop(L, top);
}

static int get_prop(lua_State *L, const tsq_node *n, const char *prop) {
    tsq_error err;
    ERR_INIT(err);
    tsq_value v;
    if (tsq_prop_get(n, prop, &v, &err)) return raise_step_error(L, n, &err);
    push_value(L, n, prop, &v);
    return 1;
}

/* ------------------------------------------------------------------ step fields */

static int push_condition(lua_State *L, const tsq_node *n) {
    if (!tsq_node_has_condition(n)) {
        lua_pushnil(L);
        return 1;
    }
    condbox *b = newcondbox(L);
    b->c = tsq_node_condition(n);
    if (!b->c) lua_pushnil(L);
    return 1;
}

static void set_condition(lua_State *L, tsq_node *n, int idx) {
    tsq_error err;
    ERR_INIT(err);
    idx = lua_absindex(L, idx);
    if (lua_isnil(L, idx)) {
        if (tsq_node_set_condition(n, NULL, &err)) raise_step_error(L, n, &err);
        return;
    }
    tsq_cond *c = testcond(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING || (c && tsq_cond_get_kind(c) != TSQ_C_CONDITION)) {
        lua_pushcfunction(L, l_condition);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        c = testcond(L, -1);
    } else if (lua_istable(L, idx)) {
        lua_pushcfunction(L, l_condition);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        c = testcond(L, -1);
    }
    if (!c) luaL_error(L, "bad value for 'Condition' (condition expected, got %s)", luaL_typename(L, idx));
    if (tsq_node_set_condition(n, c, &err)) raise_step_error(L, n, &err);
}

static int push_package(lua_State *L, int self) {
    tsq_node *n = ltsq_checknode(L, self);
    if (tsq_node_kind(n) != TSQ_SEQUENCE || tsq_doc_wrapper(n) == TSQ_WRAP_NONE) {
        lua_pushnil(L);
        return 1;
    }
    lua_newuserdatauv(L, 0, 1);
    luaL_setmetatable(L, PKG_MT);
    lua_pushvalue(L, self);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

static int push_path(lua_State *L, const tsq_node *n, int index_form) {
    tsq_buf *b = newbuf(L);
    const char *s = index_form ? tsq_node_index_path(n, b) : tsq_node_path(n, b);
    if (b->failed) return luaL_error(L, "out of memory");
    lua_pushstring(L, s);
    return 1;
}

static int step_index(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Integer i = lua_tointeger(L, 2);
        ltsq_pushnode(L, i >= 1 ? tsq_node_child(n, (size_t)i - 1) : NULL);
        return 1;
    }
    const char *k = luaL_checkstring(L, 2);
    tsq_kind kind = tsq_node_kind(n);
    switch (k[0]) {
    case 'N':
        if (!strcmp(k, "Name")) {
            lua_pushstring(L, kind == TSQ_SEQUENCE ? seq_name(n) : tsq_node_name(n));
            return 1;
        }
        break;
    case 'D':
        if (!strcmp(k, "Description")) {
            lua_pushstring(L, tsq_node_description(n));
            return 1;
        }
        break;
    case 'E':
        if (!strcmp(k, "Enabled")) {
            lua_pushboolean(L, tsq_node_enabled(n));
            return 1;
        }
        break;
    case 'C':
        if (!strcmp(k, "Condition")) return push_condition(L, n);
        if (!strcmp(k, "ContinueOnError")) {
            lua_pushboolean(L, tsq_node_continue_on_error(n));
            return 1;
        }
        break;
    default: break;
    }
    if (k[0] >= 'A' && k[0] <= 'Z') {
        if (kind != TSQ_ACTION)
            return luaL_error(L, "no property '%s' on a %s (properties: Name, Description, Enabled, ContinueOnError, Condition)", k, kind_name(n));
        return get_prop(L, n, k);
    }
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* a method */
    lua_pop(L, 1);
    switch (k[0]) {
    case 't':
        if (!strcmp(k, "type")) {
            lua_pushstring(L, tsq_node_type(n));
            return 1;
        }
        break;
    case 'k':
        if (!strcmp(k, "kind")) {
            lua_pushstring(L, kind_name(n));
            return 1;
        }
        break;
    case 'p':
        if (!strcmp(k, "parent")) {
            ltsq_pushnode(L, tsq_node_parent(n));
            return 1;
        }
        if (!strcmp(k, "package")) return push_package(L, 1);
        if (!strcmp(k, "path")) return push_path(L, n, 0);
        break;
    case 'c':
        if (!strcmp(k, "command")) {
            const char *s = kind == TSQ_ACTION ? tsq_action_command(n) : NULL;
            if (s) lua_pushstring(L, s);
            else lua_pushnil(L);
            return 1;
        }
        if (!strcmp(k, "count")) {
            lua_pushinteger(L, (lua_Integer)tsq_node_count(n));
            return 1;
        }
        break;
    case 'i':
        if (!strcmp(k, "index_path")) return push_path(L, n, 1);
        if (!strcmp(k, "index")) {
            size_t i = tsq_node_index(n);
            if (i == (size_t)-1) lua_pushnil(L);
            else lua_pushinteger(L, (lua_Integer)i + 1);
            return 1;
        }
        break;
    case 'd':
        if (!strcmp(k, "depth")) {
            lua_pushinteger(L, tsq_node_depth(n));
            return 1;
        }
        break;
    case 'e':
        if (!strcmp(k, "element")) {
            lua_pushstring(L, tsq_node_element(n));
            return 1;
        }
        break;
    case 'f':
        if (!strcmp(k, "first")) {
            ltsq_pushnode(L, tsq_node_first(n));
            return 1;
        }
        break;
    case 'n':
        if (!strcmp(k, "next")) {
            ltsq_pushnode(L, tsq_node_parent(n) ? tsq_node_next(n) : NULL);
            return 1;
        }
        break;
    case 'r':
        if (!strcmp(k, "root")) {
            ltsq_pushnode(L, tsq_node_root(n));
            return 1;
        }
        break;
    case 's':
        if (!strcmp(k, "sequence")) {
            tsq_node *r = tsq_node_root(n);
            ltsq_pushnode(L, tsq_node_kind(r) == TSQ_SEQUENCE ? r : NULL);
            return 1;
        }
        break;
    case 'v':
        if (!strcmp(k, "version")) {
            tsq_node *r = tsq_node_root(n);
            if (tsq_node_kind(r) == TSQ_SEQUENCE) lua_pushstring(L, tsq_sequence_version(r));
            else lua_pushnil(L);
            return 1;
        }
        break;
    case 'w':
        if (!strcmp(k, "wrapper")) {
            static const char *const wrappers[] = {"none", "cim", "package"};
            tsq_node *r = tsq_node_root(n);
            if (tsq_node_kind(r) != TSQ_SEQUENCE) lua_pushnil(L);
            else lua_pushstring(L, wrappers[tsq_doc_wrapper(r)]);
            return 1;
        }
        break;
    default: break;
    }
    return luaL_error(L, "no field '%s' on step", k);
}

static int check_bool(lua_State *L, int idx, const char *prop) {
    if (!lua_isboolean(L, idx)) luaL_error(L, "bad value for '%s' (boolean expected, got %s)", prop, luaL_typename(L, idx));
    return lua_toboolean(L, idx);
}

static const char *check_text(lua_State *L, int idx, const char *prop) {
    if (lua_type(L, idx) != LUA_TSTRING && lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "bad value for '%s' (string expected, got %s)", prop, luaL_typename(L, idx));
    return lua_tostring(L, idx);
}

static void set_seq_name(lua_State *L, tsq_node *n, const char *v) {
    tsq_error err;
    ERR_INIT(err);
    if (tsq_doc_wrapper(n) != TSQ_WRAP_NONE && tsq_doc_field(n, "Name")) {
        if (tsq_doc_set_field(n, "Name", v, &err)) raise_error(L, &err);
    } else if (tsq_node_set_name(n, v)) {
        luaL_error(L, "can not set the name");
    }
}

static int step_newindex(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    const char *k = luaL_checkstring(L, 2);
    tsq_kind kind = tsq_node_kind(n);
    tsq_status st = TSQ_OK;
    if (!strcmp(k, "Name")) {
        const char *v = check_text(L, 3, k);
        if (kind == TSQ_SEQUENCE) set_seq_name(L, n, v);
        else st = tsq_node_set_name(n, v);
    } else if (!strcmp(k, "Description")) {
        st = tsq_node_set_description(n, lua_isnil(L, 3) ? "" : check_text(L, 3, k));
    } else if (!strcmp(k, "Enabled")) {
        st = tsq_node_set_enabled(n, check_bool(L, 3, k));
    } else if (!strcmp(k, "ContinueOnError")) {
        st = tsq_node_set_continue_on_error(n, check_bool(L, 3, k));
    } else if (!strcmp(k, "Condition")) {
        set_condition(L, n, 3);
    } else if (k[0] >= 'A' && k[0] <= 'Z') {
        if (kind != TSQ_ACTION)
            return luaL_error(L, "no property '%s' on a %s (properties: Name, Description, Enabled, ContinueOnError, Condition)", k, kind_name(n));
        set_prop(L, n, k, 3);
    } else if (!strcmp(k, "command")) {
        tsq_error err;
        ERR_INIT(err);
        if (kind != TSQ_ACTION) return luaL_error(L, "a %s has no command", kind_name(n));
        if (tsq_action_set_command(n, check_text(L, 3, k), &err)) return raise_step_error(L, n, &err);
    } else {
        static const char *const ro[] = {"type", "kind", "parent", "package", "path", "index_path", "count",
                                         "index", "depth", "element", "first", "next", "root", "sequence",
                                         "version", "wrapper", NULL};
        for (int i = 0; ro[i]; i++)
            if (!strcmp(ro[i], k)) return luaL_error(L, "field '%s' of step is read-only", k);
        return luaL_error(L, "no field '%s' on step", k);
    }
    if (st) return luaL_error(L, "can not set '%s' on %s \"%s\"", k, short_type(n), tsq_node_name(n));
    return 0;
}

/* ------------------------------------------------------------------ step methods */

static tsq_node *checkcontainer(lua_State *L, int idx) {
    tsq_node *n = ltsq_checknode(L, idx);
    if (!is_container(n)) luaL_argerror(L, idx, "steps can only be added to a group or a sequence");
    return n;
}

static size_t checkindex(lua_State *L, int idx, const tsq_node *parent) {
    if (lua_isnoneornil(L, idx)) return (size_t)-1;
    lua_Integer i = luaL_checkinteger(L, idx);
    size_t count = tsq_node_count(parent);
    if (i < 1 || (size_t)i > count + 1) luaL_argerror(L, idx, lua_pushfstring(L, "index out of range (1 to %d)", (int)count + 1));
    return (size_t)i - 1;
}

static int do_insert(lua_State *L, tsq_node *parent, int child_idx, size_t index) {
    tsq_node *child = ltsq_checknode(L, child_idx);
    tsq_error err;
    ERR_INIT(err);
    if (tsq_node_insert(parent, index, child, &err)) return luaL_argerror(L, child_idx, err.message);
    lua_pushvalue(L, child_idx);
    return 1;
}

/* group:add(step [, index]) */
static int step_add(lua_State *L) {
    tsq_node *p = checkcontainer(L, 1);
    ltsq_checknode(L, 2);
    return do_insert(L, p, 2, checkindex(L, 3, p));
}

/* group:insert([index,] step), like table.insert */
static int step_insert(lua_State *L) {
    tsq_node *p = checkcontainer(L, 1);
    if (lua_gettop(L) <= 2) return do_insert(L, p, 2, (size_t)-1);
    size_t index = checkindex(L, 2, p);
    return do_insert(L, p, 3, index);
}

static int step_remove(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    tsq_node *r = tsq_node_remove(n);
    if (r) tsq_node_release(r); /* the box keeps its own reference */
    lua_settop(L, 1);
    return 1;
}

/* step:move_to(group [, index]) */
static int step_move(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    tsq_node *p = checkcontainer(L, 2);
    size_t index = checkindex(L, 3, p);
    tsq_error err;
    ERR_INIT(err);
    if (tsq_node_move(n, p, index, &err)) return luaL_argerror(L, 2, err.message);
    lua_settop(L, 1);
    return 1;
}

static int step_clone(lua_State *L) {
    tsq_node *c = tsq_node_clone(ltsq_checknode(L, 1));
    if (!c) return luaL_error(L, "out of memory");
    push_owned_node(L, c);
    return 1;
}

static int step_child(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    ltsq_pushnode(L, i >= 1 ? tsq_node_child(n, (size_t)i - 1) : NULL);
    return 1;
}

static int steps_iter(lua_State *L) {
    tsq_node *top = ltsq_checknode(L, 1);
    tsq_node *cur = lua_isnil(L, 2) ? NULL : ltsq_checknode(L, 2);
    ltsq_pushnode(L, tsq_node_walk(top, cur));
    return 1;
}

static int step_steps(lua_State *L) {
    ltsq_checknode(L, 1);
    lua_pushcfunction(L, steps_iter);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int children_iter(lua_State *L) {
    tsq_node *p = ltsq_checknode(L, 1);
    tsq_node *cur = lua_isnil(L, 2) ? NULL : ltsq_checknode(L, 2);
    ltsq_pushnode(L, cur ? (tsq_node_parent(cur) == p ? tsq_node_next(cur) : NULL) : tsq_node_first(p));
    return 1;
}

/* for child in group:children() : the direct child steps */
static int step_children(lua_State *L) {
    ltsq_checknode(L, 1);
    lua_pushcfunction(L, children_iter);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int step_properties(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    lua_newtable(L);
    int t = lua_gettop(L);
    lua_pushstring(L, tsq_node_kind(n) == TSQ_SEQUENCE ? seq_name(n) : tsq_node_name(n));
    lua_setfield(L, t, "Name");
    lua_pushstring(L, tsq_node_description(n));
    lua_setfield(L, t, "Description");
    if (tsq_node_kind(n) == TSQ_SEQUENCE) return 1;
    lua_pushboolean(L, tsq_node_enabled(n));
    lua_setfield(L, t, "Enabled");
    lua_pushboolean(L, tsq_node_continue_on_error(n));
    lua_setfield(L, t, "ContinueOnError");
    push_condition(L, n);
    lua_setfield(L, t, "Condition");
    if (tsq_node_kind(n) != TSQ_ACTION) return 1;
    size_t count = tsq_prop_count(n);
    for (size_t i = 0; i < count; i++) {
        const char *name = tsq_prop_name(n, i);
        if (!name) continue;
        tsq_value v;
        tsq_error err;
        ERR_INIT(err);
        if (tsq_prop_get(n, name, &v, &err) || v.type == TSQ_V_NIL) continue;
        push_value(L, n, name, &v);
        lua_setfield(L, t, name);
    }
    return 1;
}

static int problem_body(lua_State *L) {
    collector *c = lua_touserdata(L, 1);
    const tsq_problem *p = c->item;
    lua_rawgetp(L, LUA_REGISTRYINDEX, c);
    lua_createtable(L, 0, 4);
    ltsq_pushnode(L, (tsq_node *)p->step);
    lua_setfield(L, -2, "step");
    setfield_str(L, "property", p->property);
    setfield_str(L, "message", p->message);
    lua_pushstring(L, p->severity == TSQ_SEV_ERROR ? "error" : "warning");
    lua_setfield(L, -2, "severity");
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    return 0;
}

static void problem_cb(void *ud, const tsq_problem *p) { collector_call(ud, problem_body, p); }

static int step_validate(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    lua_newtable(L);
    collector col;
    collector_begin(L, &col, -1);
    size_t errors = tsq_validate(n, problem_cb, &col);
    collector_end(L, &col);
    lua_pushinteger(L, (lua_Integer)errors);
    return 2;
}

static int step_to_xml(lua_State *L) {
    tsq_node *n = tsq_node_root(ltsq_checknode(L, 1));
    int canonical = lua_toboolean(L, 2);
    tsq_buf *b = newbuf(L);
    tsq_error err;
    ERR_INIT(err);
    if ((canonical ? tsq_write_canonical(n, b, &err) : tsq_write(n, b, &err))) return raise_error(L, &err);
    if (b->failed) return luaL_error(L, "out of memory");
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    return 1;
}

static int step_save(lua_State *L) {
    tsq_node *n = tsq_node_root(ltsq_checknode(L, 1));
    const char *path = luaL_checkstring(L, 2);
    tsq_error err;
    ERR_INIT(err);
    if (tsq_save(n, path, &err)) return fail_error(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ plan */

static int plan_body(lua_State *L) {
    collector *c = lua_touserdata(L, 1);
    const tsq_plan_entry *e = c->item;
    lua_rawgetp(L, LUA_REGISTRYINDEX, c);
    lua_createtable(L, 0, 3);
    ltsq_pushnode(L, (tsq_node *)e->step);
    lua_setfield(L, -2, "step");
    setfield_str(L, "state", tsq_plan_state_name(e->state));
    setfield_str(L, "reason", e->reason);
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    return 0;
}

static void plan_cb(void *ud, const tsq_plan_entry *e) { collector_call(ud, plan_body, e); }

static int step_plan(lua_State *L) {
    tsq_node *n = tsq_node_root(ltsq_checknode(L, 1));
    envbox *eb = optenvbox(L, 2);
    lua_newtable(L);
    collector col;
    collector_begin(L, &col, -1);
    tsq_error err;
    ERR_INIT(err);
    lua_State *old = env_enter(eb, L);
    tsq_status st = tsq_plan(n, eb->env, plan_cb, &col, &err);
    eb->L = old;
    collector_end(L, &col);
    if (st) {
        env_error(eb, &err);
        return fail_error(L, &err);
    }
    return 1;
}

/* ------------------------------------------------------------------ run */

typedef struct runctx {
    lua_State *L;
    char msg[512]; /* a clock or loader error */
} runctx;

typedef struct hcall {
    runctx *rc;
    const char *key; /* the handlers table key */
    const tsq_node *step;
    tsq_env *env;
    int32_t code;
    tsq_buf *out;
} hcall;

typedef struct hslot { runctx *rc; const char *key; } hslot;

static int handler_body(lua_State *L) {
    hcall *h = lua_touserdata(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, h->rc); /* the run table */
    int R = lua_gettop(L);
    lua_getfield(L, R, "handlers");
    lua_getfield(L, -1, h->key);
    if (lua_isinteger(L, -1)) { /* a constant exit code */
        h->code = (int32_t)lua_tointeger(L, -1);
        return 0;
    }
    ltsq_pushnode(L, (tsq_node *)h->step);
    lua_getfield(L, R, "env");
    lua_call(L, 2, 2);
    int code = lua_gettop(L) - 1;
    switch (lua_type(L, code)) {
    case LUA_TNIL: h->code = 0; break;
    case LUA_TBOOLEAN: h->code = lua_toboolean(L, code) ? 0 : 1; break;
    case LUA_TNUMBER:
        if (!lua_isinteger(L, code)) return luaL_error(L, "handler returned a non-integer exit code");
        h->code = (int32_t)lua_tointeger(L, code);
        break;
    default: return luaL_error(L, "handler must return an exit code (got %s)", luaL_typename(L, code));
    }
    if (!lua_isnil(L, code + 1)) {
        size_t len;
        const char *s = luaL_tolstring(L, code + 1, &len);
        tsq_buf_add(h->out, s, len);
    }
    return 0;
}

static tsq_status handler_tramp(void *ud, const tsq_node *step, tsq_env *env, int32_t *exit_code, tsq_buf *output) {
    hslot *s = ud;
    hcall h;
    char msg[512];
    h.rc = s->rc, h.key = s->key, h.step = step, h.env = env, h.code = 0, h.out = output;
    if (!protected_call(s->rc->L, handler_body, &h, msg, sizeof msg)) {
        tsq_buf_adds(output, msg);
        *exit_code = 1;
        return TSQ_EHANDLER;
    }
    *exit_code = h.code;
    return TSQ_OK;
}

typedef struct ccall { runctx *rc; int64_t t; } ccall;

static int clock_body(lua_State *L) {
    ccall *c = lua_touserdata(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, c->rc);
    lua_getfield(L, -1, "clock");
    lua_call(L, 0, 1);
    int isnum;
    lua_Number t = lua_tonumberx(L, -1, &isnum);
    if (!isnum) return luaL_error(L, "clock must return a number (got %s)", luaL_typename(L, -1));
    c->t = (int64_t)t;
    return 0;
}

static int64_t clock_tramp(void *ud) {
    runctx *rc = ud;
    ccall c;
    c.rc = rc, c.t = 0;
    if (!protected_call(rc->L, clock_body, &c, rc->msg, sizeof rc->msg)) return 0;
    return c.t;
}

typedef struct lcall { runctx *rc; const char *pkg, *name; tsq_node *out; } lcall;

static int loader_body(lua_State *L) {
    lcall *c = lua_touserdata(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, c->rc);
    if (lua_getfield(L, -1, "loader") == LUA_TFUNCTION) {
        lua_pushstring(L, c->pkg ? c->pkg : "");
        lua_pushstring(L, c->name ? c->name : "");
        lua_call(L, 2, 1);
    } else {
        lua_getfield(L, -1, c->pkg ? c->pkg : "");
    }
    tsq_node *n = ltsq_testnode(L, -1);
    if (!n || tsq_node_kind(n) != TSQ_SEQUENCE)
        return luaL_error(L, "no task sequence for package '%s'", c->pkg ? c->pkg : "");
    tsq_node_retain(n);
    c->out = n;
    return 0;
}

static tsq_status loader_tramp(void *ud, const char *package_id, const char *name, tsq_node **out, tsq_buf *message) {
    runctx *rc = ud;
    lcall c;
    char msg[512];
    c.rc = rc, c.pkg = package_id, c.name = name, c.out = NULL;
    if (!protected_call(rc->L, loader_body, &c, msg, sizeof msg)) {
        tsq_buf_adds(message, msg);
        return TSQ_EHANDLER;
    }
    *out = c.out;
    return TSQ_OK;
}

static int runbox_gc(lua_State *L) {
    runbox *b = lua_touserdata(L, 1);
    if (!b) return 0;
    tsq_run_free(b->r);
    b->r = NULL;
    return 0;
}

static const char *opt_field(lua_State *L, int t, const char *k) {
    return checkstr_field(L, t, k); /* stays on the stack */
}

static void push_record(lua_State *L, const tsq_record *r) {
    lua_createtable(L, 0, 13);
    setfield_str(L, "ActionName", r->ActionName);
    setfield_str(L, "ActionOutput", r->ActionOutput);
    setfield_str(L, "AdvertisementID", r->AdvertisementID);
    setfield_str(L, "ExecutionTime", r->ExecutionTime);
    setfield_int(L, "ExecutionTimeUnix", (lua_Integer)r->ExecutionTimeUnix);
    setfield_int(L, "ExitCode", (lua_Integer)r->ExitCode);
    setfield_str(L, "GroupName", r->GroupName);
    setfield_int(L, "LastStatusMsgID", (lua_Integer)r->LastStatusMsgID);
    setfield_str(L, "LastStatusMsgName", r->LastStatusMsgName);
    setfield_str(L, "PackageID", r->PackageID);
    setfield_int(L, "ResourceID", (lua_Integer)r->ResourceID);
    setfield_int(L, "Step", (lua_Integer)r->Step);
}

static int step_run(lua_State *L) {
    tsq_node *seq = tsq_node_root(ltsq_checknode(L, 1));
    lua_settop(L, 2);
    if (lua_isnil(L, 2)) lua_newtable(L), lua_replace(L, 2);
    luaL_checktype(L, 2, LUA_TTABLE);
    static const char *const known[] = {"env", "handlers", "AdvertisementID", "PackageID", "ResourceID",
                                        "clock", "loader", "sequences", "max_reboots", NULL};
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int ok = 0;
        for (int i = 0; k && known[i] && !ok; i++) ok = !strcmp(k, known[i]);
        if (!ok) return luaL_error(L, "unknown run option '%s' (valid: env, handlers, AdvertisementID, PackageID, ResourceID, clock, loader, sequences, max_reboots)", k ? k : luaL_typename(L, -2));
        lua_pop(L, 1);
    }
    tsq_run_opts o;
    memset(&o, 0, sizeof o);
    runctx rc;
    memset(&rc, 0, sizeof rc);
    rc.L = L;
    /* R = { handlers =, env =, clock =, loader = }: what the trampolines reach through the registry */
    lua_newtable(L);
    int R = lua_gettop(L); /* 3 */
    /* the run's environment: a copy of env, so that a run does not change the caller's */
    lua_getfield(L, 2, "env");
    envbox *eb;
    if (lua_isnil(L, -1)) {
        eb = newenvbox(L, NULL, 0);
    } else {
        envbox *src = checkenvbox(L, -1);
        lua_getiuservalue(L, -1, 1);
        eb = newenvbox(L, src->env, -1);
        lua_remove(L, -2);
    }
    lua_remove(L, -2);
    lua_setfield(L, R, "env");
    o.env = eb->env;
    /* handlers */
    int ht = lua_getfield(L, 2, "handlers");
    size_t nh = 0;
    if (ht == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "handler names must be strings");
            if (!lua_isfunction(L, -1) && !lua_isinteger(L, -1))
                return luaL_error(L, "handler '%s' must be a function or an exit code (got %s)", lua_tostring(L, -2), luaL_typename(L, -1));
            nh++;
            lua_pop(L, 1);
        }
    } else if (ht != LUA_TNIL) {
        return luaL_error(L, "run option 'handlers' must be a table (got %s)", luaL_typename(L, -1));
    }
    lua_setfield(L, R, "handlers");
    tsq_handler_entry *entries = lua_newuserdatauv(L, (nh ? nh : 1) * sizeof *entries, 0);
    hslot *slots = lua_newuserdatauv(L, (nh ? nh : 1) * sizeof *slots, 0);
    if (nh) {
        size_t i = 0;
        lua_getfield(L, R, "handlers");
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            slots[i].rc = &rc;
            slots[i].key = lua_tostring(L, -2); /* anchored by the handlers table */
            entries[i].type = slots[i].key;
            entries[i].fn = handler_tramp;
            entries[i].ud = &slots[i];
            i++;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        o.handlers = entries;
        o.nhandlers = nh;
    }
    if (lua_getfield(L, 2, "clock") != LUA_TNIL) {
        luaL_checktype(L, -1, LUA_TFUNCTION);
        o.clock = clock_tramp, o.clock_ud = &rc;
    }
    lua_setfield(L, R, "clock");
    int lt = lua_getfield(L, 2, "loader");
    if (lt == LUA_TNIL) {
        lua_pop(L, 1);
        lt = lua_getfield(L, 2, "sequences");
    }
    if (lt != LUA_TNIL) {
        if (lt != LUA_TFUNCTION && lt != LUA_TTABLE) return luaL_error(L, "run option 'loader' must be a function or a table");
        o.loader = loader_tramp, o.loader_ud = &rc;
    }
    lua_setfield(L, R, "loader");
    o.AdvertisementID = opt_field(L, 2, "AdvertisementID");
    o.PackageID = opt_field(L, 2, "PackageID");
    lua_getfield(L, 2, "ResourceID");
    o.ResourceID = (uint32_t)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 2, "max_reboots");
    o.max_reboots = (uint32_t)luaL_optinteger(L, -1, 0);

    runbox *rb = lua_newuserdatauv(L, sizeof *rb, 0);
    rb->r = NULL;
    luaL_setmetatable(L, RUN_MT);
    tsq_error err;
    ERR_INIT(err);
    lua_pushvalue(L, R);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rc);
    lua_State *old = env_enter(eb, L);
    tsq_status st = tsq_run_sequence(seq, &o, &rb->r, &err);
    eb->L = old;
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rc);
    if (st) return raise_error(L, &err);
    if (rc.msg[0]) return luaL_error(L, "%s", rc.msg);
    size_t nrec = tsq_run_record_count(rb->r);
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, tsq_run_succeeded(rb->r));
    lua_setfield(L, -2, "succeeded");
    lua_createtable(L, (int)nrec, 0);
    for (size_t i = 0; i < nrec; i++) {
        push_record(L, tsq_run_record(rb->r, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "records");
    push_variables_table(L, eb->env);
    lua_setfield(L, -2, "variables");
    lua_getfield(L, R, "env");
    lua_setfield(L, -2, "env");
    tsq_run_free(rb->r);
    rb->r = NULL;
    return 1;
}

/* ------------------------------------------------------------------ package fields */

static tsq_node *pkg_seq(lua_State *L) {
    luaL_checkudata(L, 1, PKG_MT);
    lua_getiuservalue(L, 1, 1);
    tsq_node *n = ltsq_checknode(L, -1);
    lua_pop(L, 1);
    return n;
}

static int pkg_index(lua_State *L) {
    tsq_node *n = pkg_seq(L);
    const char *v = tsq_doc_field(n, luaL_checkstring(L, 2));
    if (v) lua_pushstring(L, v);
    else lua_pushnil(L);
    return 1;
}

static int pkg_newindex(lua_State *L) {
    tsq_node *n = pkg_seq(L);
    const char *k = luaL_checkstring(L, 2);
    tsq_error err;
    ERR_INIT(err);
    if (tsq_doc_set_field(n, k, check_text(L, 3, k), &err)) return raise_error(L, &err);
    return 0;
}

static int pkg_next(lua_State *L) {
    tsq_node *n = pkg_seq(L);
    size_t i = 0, count = tsq_doc_field_count(n);
    if (!lua_isnil(L, 2)) {
        const char *k = luaL_checkstring(L, 2);
        while (i < count && strcmp(tsq_doc_field_name(n, i), k) != 0) i++;
        i++;
    }
    if (i >= count) return 0;
    const char *name = tsq_doc_field_name(n, i);
    const char *v = tsq_doc_field(n, name);
    lua_pushstring(L, name);
    lua_pushstring(L, v ? v : "");
    return 2;
}

static int pkg_pairs(lua_State *L) {
    pkg_seq(L);
    lua_pushcfunction(L, pkg_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int pkg_len(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)tsq_doc_field_count(pkg_seq(L)));
    return 1;
}

static int pkg_tostring(lua_State *L) {
    tsq_node *n = pkg_seq(L);
    const char *id = tsq_doc_field(n, "PackageID");
    lua_pushfstring(L, "package %s (%d fields)", id ? id : "?", (int)tsq_doc_field_count(n));
    return 1;
}

/* ------------------------------------------------------------------ module functions */

static int l_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    tsq_node *n = NULL;
    tsq_error err;
    ERR_INIT(err);
    if (tsq_load(ltsq_context(L), path, &n, &err)) return fail_error(L, &err);
    push_owned_node(L, n);
    return 1;
}

static int l_parse(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, NULL);
    tsq_node *n = NULL;
    tsq_error err;
    ERR_INIT(err);
    if (tsq_parse(ltsq_context(L), text, len, name, &n, &err)) return fail_error(L, &err);
    push_owned_node(L, n);
    return 1;
}

static int l_new_sequence(lua_State *L) {
    const char *name = luaL_optstring(L, 1, NULL);
    tsq_node *n = tsq_sequence_new(ltsq_context(L));
    if (!n) return luaL_error(L, "out of memory");
    push_owned_node(L, n);
    if (name && *name && tsq_node_set_name(n, name)) return luaL_error(L, "out of memory");
    return 1;
}

static int l_new_group(lua_State *L) {
    const char *name = luaL_optstring(L, 1, "");
    tsq_node *n = tsq_group_new(ltsq_context(L), name);
    if (!n) return luaL_error(L, "out of memory");
    push_owned_node(L, n);
    return 1;
}

static int l_new_action(lua_State *L) {
    const char *type = luaL_checkstring(L, 1);
    const char *name = luaL_optstring(L, 2, NULL);
    tsq_node *n = NULL;
    tsq_error err;
    ERR_INIT(err);
    if (tsq_action_new(ltsq_context(L), type, name, &n, &err)) return raise_error(L, &err);
    push_owned_node(L, n);
    return 1;
}

static void push_class(lua_State *L, const tsq_class_info *c) {
    lua_createtable(L, 0, 7);
    setfield_str(L, "name", c->name);
    setfield_str(L, "short_name", c->short_name);
    if (c->display && strcmp(c->display, "-") != 0) setfield_str(L, "display", c->display);
    setfield_str(L, "environment", c->environment);
    if (c->template_ && strcmp(c->template_, "-") != 0) setfield_str(L, "template", c->template_);
    lua_createtable(L, (int)c->nprops, 0);
    static const char *const vt[] = {"nil", "boolean", "integer", "string", "list", "objects"};
    for (size_t i = 0; i < c->nprops; i++) {
        const tsq_prop_info *p = tsq_class_prop(c, i);
        if (!p) continue;
        lua_createtable(L, 0, 10);
        setfield_str(L, "name", p->name);
        setfield_str(L, "type", p->type <= TSQ_V_OBJECTS ? vt[p->type] : "?");
        setfield_str(L, "sdk_type", p->sdk_type);
        setfield_str(L, "variable", p->variable);
        setfield_str(L, "default", p->default_);
        setfield_str(L, "allowed", p->allowed);
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

static int l_is_step(lua_State *L) {
    lua_pushboolean(L, ltsq_testnode(L, 1) != NULL);
    return 1;
}

static int l_is_condition(lua_State *L) {
    lua_pushboolean(L, testcond(L, 1) != NULL);
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

static int l_cond_kind(lua_State *L) {
    tsq_cond_kind k = kind_of_name(luaL_checkstring(L, 1));
    if (!k) return luaL_argerror(L, 1, "unknown condition kind");
    condbox *b = newcondbox(L);
    if (!(b->c = tsq_cond_new(ltsq_context(L), k))) return luaL_error(L, "out of memory");
    return 1;
}

/* ------------------------------------------------------------------ registration */

static const luaL_Reg step_methods[] = {
    {"add", step_add},
    {"insert", step_insert},
    {"remove", step_remove},
    {"move_to", step_move},
    {"clone", step_clone},
    {"child", step_child},
    {"steps", step_steps},
    {"children", step_children},
    {"properties", step_properties},
    {"validate", step_validate},
    {"to_xml", step_to_xml},
    {"save", step_save},
    {"run", step_run},
    {"plan", step_plan},
    {NULL, NULL},
};

static const luaL_Reg step_meta[] = {
    {"__gc", step_gc},
    {"__close", step_gc},
    {"__tostring", step_tostring},
    {"__len", step_len},
    {"__eq", step_eq},
    {"__newindex", step_newindex},
    {NULL, NULL},
};

static const luaL_Reg cond_methods[] = {
    {"evaluate", cond_evaluate},
    {"add", cond_add},
    {"clone", cond_clone},
    {"text", cond_tostring},
    {NULL, NULL},
};

static const luaL_Reg cond_meta[] = {
    {"__gc", cond_gc},
    {"__tostring", cond_tostring},
    {"__eq", cond_eq},
    {"__len", cond_len},
    {"__index", cond_index},
    {"__newindex", cond_newindex},
    {NULL, NULL},
};

static const luaL_Reg env_methods[] = {
    {"get", env_get},
    {"set", env_set},
    {"expand", env_expand},
    {"clone", env_clone},
    {"variables_table", env_vars_table},
    {NULL, NULL},
};

static const luaL_Reg env_meta[] = {
    {"__gc", env_gc},
    {"__tostring", env_tostring},
    {"__index", env_index},
    {NULL, NULL},
};

static const luaL_Reg vars_meta[] = {
    {"__index", vars_index},
    {"__newindex", vars_newindex},
    {"__pairs", vars_pairs},
    {"__len", vars_len},
    {"__tostring", vars_tostring},
    {NULL, NULL},
};

static const luaL_Reg pkg_meta[] = {
    {"__index", pkg_index},
    {"__newindex", pkg_newindex},
    {"__pairs", pkg_pairs},
    {"__len", pkg_len},
    {"__tostring", pkg_tostring},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"load", l_load},
    {"parse", l_parse},
    {"new_sequence", l_new_sequence},
    {"new_group", l_new_group},
    {"new_action", l_new_action},
    {"condition", l_condition},
    {"all", l_all},
    {"any", l_any},
    {"none", l_none},
    {"variable", l_variable},
    {"wmi", l_wmi},
    {"expression", l_expression},
    {"operator", l_cond_kind},
    {"environment", l_environment},
    {"classes", l_classes},
    {"class", l_class},
    {"is_step", l_is_step},
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

static void weak_table(lua_State *L, const char *key) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
}

LTSQ_API int luaopen_tasksequence_core(lua_State *L) {
    /* the context first: at lua_close it is finalized after every object made in it */
    if (lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY) == LUA_TNIL) {
        lua_pop(L, 1);
        statebox *s = lua_newuserdatauv(L, sizeof *s, 0);
        s->ctx = NULL;
        luaL_newmetatable(L, STATE_MT);
        lua_pushcfunction(L, state_gc);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        if (!(s->ctx = tsq_ctx_new(NULL, NULL))) return luaL_error(L, "out of memory");
        lua_setfield(L, LUA_REGISTRYINDEX, STATE_KEY);
    } else {
        lua_pop(L, 1);
    }
    weak_table(L, BOXES_KEY);
    weak_table(L, ENVS_KEY);

    if (luaL_newmetatable(L, STEP_MT)) {
        luaL_setfuncs(L, step_meta, 0);
        luaL_newlib(L, step_methods);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "methods");
        lua_pushcclosure(L, step_index, 1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    new_type(L, COND_MT, cond_meta, cond_methods);
    new_type(L, ENV_MT, env_meta, env_methods);
    new_type(L, VARS_MT, vars_meta, NULL);
    new_type(L, PKG_MT, pkg_meta, NULL);
    static const luaL_Reg buf_meta[] = {{"__gc", buf_gc}, {NULL, NULL}};
    static const luaL_Reg run_meta[] = {{"__gc", runbox_gc}, {NULL, NULL}};
    new_type(L, BUF_MT, buf_meta, NULL);
    new_type(L, RUN_MT, run_meta, NULL);

    luaL_newlib(L, funcs);
    for (lua_Integer i = 0; i < (lua_Integer)(sizeof leaf_specs / sizeof leaf_specs[0]); i++) {
        lua_pushinteger(L, i);
        lua_pushcclosure(L, new_leaf, 1);
        lua_setfield(L, -2, leaf_specs[i].fn);
    }
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
