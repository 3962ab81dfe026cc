/* ltsq_env.c - environment boxes, their variables tables and the fact providers: the core
 * calls the Lua provider tables through protected bodies. */
#include "ltsq_int.h"

#include <stdio.h>
#include <strings.h>

/* ------------------------------------------------------------------ environments */

envbox *ltsqi_checkenvbox(lua_State *L, int idx) {
    envbox *b = luaL_checkudata(L, idx, ENV_MT);
    if (!b->env) luaL_argerror(L, idx, "environment is closed");
    return b;
}

LTSQ_API tsq_env *ltsq_checkenv(lua_State *L, int idx) { return ltsqi_checkenvbox(L, idx)->env; }

static int env_gc(lua_State *L) {
    envbox *b = lua_touserdata(L, 1);
    if (!b) return 0;
    tsq_env_free(b->env);
    b->env = NULL;
    return 0;
}

/* Fetches the provider table of box b onto L (inside a protected body). */
static void push_providers(lua_State *L, envbox *b) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, ENVS_KEY);
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
    if (!ltsqi_protected_call(b->L, fact_body, f, b->msg, sizeof b->msg)) return TSQ_EFACT;
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

/* In the provider table of an environment whose provider is the host's (ltsq_pushenv):
 * copies of it (env:clone(), the copy seq:run makes) keep that provider. */
static const char host_provider_key = 'h';

/* A new environment box at the top of the stack with the provider table `prov`
 * (stack index, 0 for a new empty one); env NULL makes a new empty environment. */
envbox *ltsqi_newenvbox(lua_State *L, const tsq_env *from, int prov) {
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
    int host_provider = from && !prov; /* only ltsq_pushenv copies without a table */
    if (host_provider) {
        lua_pushboolean(L, 1);
        lua_rawsetp(L, -2, &host_provider_key);
    } else if (prov) {
        host_provider = lua_rawgetp(L, -1, &host_provider_key) != LUA_TNIL;
        lua_pop(L, 1);
    }
    lua_setiuservalue(L, -2, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, ENVS_KEY);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, b);
    lua_pop(L, 1);
    b->env = from ? tsq_env_clone(from) : tsq_env_new(ctx);
    if (!b->env) luaL_error(L, "out of memory");
    if (!host_provider) { /* the Lua providers, calling back through this box */
        tsq_provider p;
        p.wmi = prov_wmi, p.file = prov_file, p.folder = prov_folder;
        p.registry = prov_registry, p.software = prov_software, p.ud = b;
        tsq_env_set_provider(b->env, &p);
        tsq_env_set_fact_cache(b->env, 1); /* a call into Lua costs more than a look-up */
    }
    return b;
}

LTSQ_API void ltsq_pushenv(lua_State *L, const tsq_env *env) {
    if (!env) {
        lua_pushnil(L);
        return;
    }
    ltsqi_newenvbox(L, env, 0);
}

/* Makes L the thread the providers of b run on, for one core call; returns the previous. */
lua_State *ltsqi_env_enter(envbox *b, lua_State *L) {
    lua_State *old = b->L;
    b->L = L;
    b->msg[0] = '\0';
    return old;
}

/* The core's message, with the provider's error when one was raised. */
void ltsqi_env_error(envbox *b, tsq_error *err) {
    if (b->msg[0]) {
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n, "%s%s", n ? ": " : "", b->msg);
    }
}

static int env_set_value(lua_State *L, tsq_env *env, const char *name, int idx) {
    const char *v = lua_isnil(L, idx) ? "" : ltsqi_value_text(L, idx, "a variable value");
    if (tsq_env_set(env, name, v) != TSQ_OK) return luaL_error(L, "can not set variable '%s'", name);
    return 0;
}

static const char *const provider_keys[] = {"wmi", "files", "folders", "registry", "software", NULL};

int ltsqi_environment(lua_State *L) {
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
    envbox *b = ltsqi_newenvbox(L, NULL, prov);
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

void ltsqi_push_variables_table(lua_State *L, const tsq_env *env) {
    size_t n = tsq_env_count(env);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const char *name = tsq_env_name_at(env, i);
        const char *v = name ? tsq_env_get(env, name) : NULL;
        if (v) ltsqi_setfield_str(L, name, v);
    }
}

static int vars_index(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    envbox *b = ltsqi_checkenvbox(L, -1);
    const char *v = tsq_env_get(b->env, luaL_checkstring(L, 2));
    if (v) lua_pushstring(L, v);
    else lua_pushnil(L);
    return 1;
}

static int vars_newindex(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    envbox *b = ltsqi_checkenvbox(L, -1);
    env_set_value(L, b->env, luaL_checkstring(L, 2), 3);
    return 0;
}

static int vars_next(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    envbox *b = ltsqi_checkenvbox(L, -1);
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
    lua_pushinteger(L, (lua_Integer)tsq_env_count(ltsqi_checkenvbox(L, -1)->env));
    return 1;
}

static int vars_tostring(lua_State *L) {
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "variables (%d)", (int)tsq_env_count(ltsqi_checkenvbox(L, -1)->env));
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
    tsq_buf *b = ltsqi_newbuf(L);
    const char *s = tsq_env_expand(e, text, b);
    if (b->failed) return luaL_error(L, "out of memory");
    lua_pushstring(L, s ? s : "");
    return 1;
}

static int env_clone(lua_State *L) {
    ltsqi_checkenvbox(L, 1);
    lua_getiuservalue(L, 1, 1);
    ltsqi_newenvbox(L, ltsq_checkenv(L, 1), -1);
    return 1;
}

static int env_vars_table(lua_State *L) {
    ltsqi_push_variables_table(L, ltsq_checkenv(L, 1));
    return 1;
}

static int env_index(lua_State *L) {
    ltsqi_checkenvbox(L, 1);
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
envbox *ltsqi_optenvbox(lua_State *L, int idx) {
    if (lua_gettop(L) < idx) lua_settop(L, idx);
    if (lua_isnil(L, idx)) {
        ltsqi_newenvbox(L, NULL, 0);
        lua_replace(L, idx);
    }
    return ltsqi_checkenvbox(L, idx);
}

const luaL_Reg ltsqi_env_methods[] = {
    {"get", env_get},
    {"set", env_set},
    {"expand", env_expand},
    {"clone", env_clone},
    {"variables_table", env_vars_table},
    {NULL, NULL},
};

const luaL_Reg ltsqi_env_meta[] = {
    {"__gc", env_gc},
    {"__tostring", env_tostring},
    {"__index", env_index},
    {NULL, NULL},
};

const luaL_Reg ltsqi_vars_meta[] = {
    {"__index", vars_index},
    {"__newindex", vars_newindex},
    {"__pairs", vars_pairs},
    {"__len", vars_len},
    {"__tostring", vars_tostring},
    {NULL, NULL},
};
