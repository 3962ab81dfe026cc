/* ltsq_run.c - step:plan() and step:run(): Lua handlers, clock and loader called back
 * under lua_pcall, run records; and the package fields of a wrapped sequence. */
#include "ltsq_int.h"

/* ------------------------------------------------------------------ plan */

/* A plan is a userdata holding one entry per step, made into a Lua table only when it is
 * read (plan[i], ipairs(plan), #plan): a plan of 100,000 steps costs what the core's walk
 * costs, not 100,000 tables. Each entry's step is retained for the plan's lifetime. */
typedef struct plan_entry {
    uint32_t reason; /* offset + 1 into the reasons buffer; 0: no reason */
    uint8_t state;
} plan_entry;

typedef struct planbox {
    tsq_ctx *ctx;
    tsq_node **steps; /* retained together when the plan is complete */
    plan_entry *e;
    size_t n, cap;
    int retained;
    tsq_buf reasons;  /* NUL-separated; consecutive equal reasons are stored once */
    uint32_t last;    /* offset + 1 of the last reason stored */
    int oom;
} planbox;

static void plan_cb(void *ud, const tsq_plan_entry *pe) {
    planbox *p = ud;
    if (p->oom) return;
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        plan_entry *ne = tsq_malloc(p->ctx, nc * sizeof *ne);
        tsq_node **ns = tsq_malloc(p->ctx, nc * sizeof *ns);
        if (!ne || !ns) {
            tsq_free(p->ctx, ne, nc * sizeof *ne);
            tsq_free(p->ctx, ns, nc * sizeof *ns);
            p->oom = 1;
            return;
        }
        if (p->n) memcpy(ne, p->e, p->n * sizeof *ne), memcpy(ns, p->steps, p->n * sizeof *ns);
        tsq_free(p->ctx, p->e, p->cap * sizeof *ne);
        tsq_free(p->ctx, p->steps, p->cap * sizeof *ns);
        p->e = ne;
        p->steps = ns;
        p->cap = nc;
    }
    uint32_t r = 0;
    if (pe->reason) {
        if (p->last && strcmp(p->reasons.data + p->last - 1, pe->reason) == 0) {
            r = p->last;
        } else {
            r = (uint32_t)p->reasons.len + 1;
            tsq_buf_add(&p->reasons, pe->reason, strlen(pe->reason) + 1);
            if (p->reasons.failed) {
                p->oom = 1;
                return;
            }
            p->last = r;
        }
    }
    p->steps[p->n] = (tsq_node *)pe->step;
    p->e[p->n++] = (plan_entry){r, (uint8_t)pe->state};
}

static int plan_gc(lua_State *L) {
    planbox *p = lua_touserdata(L, 1);
    if (!p || !p->ctx) return 0;
    if (p->retained) tsq_node_release_all(p->steps, p->n);
    tsq_free(p->ctx, p->e, p->cap * sizeof *p->e);
    tsq_free(p->ctx, p->steps, p->cap * sizeof *p->steps);
    tsq_buf_free(&p->reasons);
    p->ctx = NULL;
    p->e = NULL;
    p->steps = NULL;
    p->n = p->cap = 0;
    return 0;
}

static int plan_len(lua_State *L) {
    planbox *p = luaL_checkudata(L, 1, PLAN_MT);
    lua_pushinteger(L, (lua_Integer)p->n);
    return 1;
}

/* plan[i]: { step =, state =, reason = }, the same table each time it is read */
static int plan_index(lua_State *L) {
    planbox *p = luaL_checkudata(L, 1, PLAN_MT);
    lua_Integer i = lua_isinteger(L, 2) ? lua_tointeger(L, 2) : 0;
    if (i < 1 || (size_t)i > p->n) {
        lua_pushnil(L);
        return 1;
    }
    lua_getiuservalue(L, 1, 1);
    if (lua_rawgeti(L, -1, i) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    const plan_entry *e = &p->e[i - 1];
    lua_createtable(L, 0, 3);
    ltsq_pushnode(L, p->steps[i - 1]);
    lua_setfield(L, -2, "step");
    lua_pushstring(L, tsq_plan_state_name((tsq_plan_state)e->state));
    lua_setfield(L, -2, "state");
    if (e->reason) {
        lua_pushstring(L, p->reasons.data + e->reason - 1);
        lua_setfield(L, -2, "reason");
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, i);
    return 1;
}

/* Pushes plan[i] (or nil) for the plan at idx; returns its type. */
static int plan_index_at(lua_State *L, int idx, lua_Integer i) {
    lua_pushcfunction(L, plan_index);
    lua_pushvalue(L, idx);
    lua_pushinteger(L, i);
    lua_call(L, 2, 1);
    return lua_type(L, -1);
}

static int plan_next(lua_State *L) {
    lua_Integer i = luaL_checkinteger(L, 2) + 1;
    lua_pushinteger(L, i);
    if (plan_index_at(L, 1, i) == LUA_TNIL) return 1;
    return 2;
}

static int plan_pairs(lua_State *L) {
    luaL_checkudata(L, 1, PLAN_MT);
    lua_pushcfunction(L, plan_next);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 0);
    return 3;
}

static int plan_tostring(lua_State *L) {
    planbox *p = luaL_checkudata(L, 1, PLAN_MT);
    size_t count[8] = {0};
    for (size_t i = 0; i < p->n; i++) count[p->e[i].state & 7]++;
    lua_pushfstring(L, "plan (%d steps: %d run, %d skipped by condition, %d disabled, %d in skipped groups, %d undecided)",
                    (int)p->n, (int)count[TSQ_PLAN_RUN], (int)count[TSQ_PLAN_SKIP_CONDITION], (int)count[TSQ_PLAN_DISABLED],
                    (int)count[TSQ_PLAN_SKIP_PARENT], (int)count[TSQ_PLAN_ERROR]);
    return 1;
}

const luaL_Reg ltsqi_plan_meta[] = {
    {"__gc", plan_gc},       {"__len", plan_len},           {"__index", plan_index},
    {"__pairs", plan_pairs}, {"__tostring", plan_tostring}, {NULL, NULL},
};

int ltsqi_step_plan(lua_State *L) {
    tsq_node *n = tsq_node_root(ltsq_checknode(L, 1));
    envbox *eb = ltsqi_optenvbox(L, 2);
    planbox *p = lua_newuserdatauv(L, sizeof *p, 1);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, PLAN_MT);
    lua_newtable(L); /* the entries made so far */
    lua_setiuservalue(L, -2, 1);
    p->ctx = ltsq_context(L);
    tsq_buf_init(&p->reasons, p->ctx);
    tsq_error err;
    ERR_INIT(err);
    lua_State *old = ltsqi_env_enter(eb, L);
    tsq_status st = tsq_plan(n, eb->env, plan_cb, p, &err);
    eb->L = old;
    if (st) {
        ltsqi_env_error(eb, &err);
        return ltsqi_fail_error(L, &err);
    }
    if (p->oom) return luaL_error(L, "out of memory");
    /* the plan keeps its steps (a step removed from the tree later is still there to read) */
    tsq_node_retain_all(p->steps, p->n);
    p->retained = 1;
    ltsqi_gc_pace(L);
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
    tsq_status st; /* TSQ_ELIMIT / TSQ_ESTATE from the options table, else TSQ_OK */
} hcall;

typedef struct hslot { runctx *rc; const char *key; } hslot;

/* The third value a Lua handler may return: { timeout = true } says the step ran into its
 * Timeout, { restart = true } that the computer restarted unexpectedly during it; these
 * are what a C handler says with TSQ_ELIMIT and TSQ_ESTATE. */
static void handler_options(lua_State *L, int t, hcall *h) {
    if (lua_isnil(L, t)) return;
    if (!lua_istable(L, t)) luaL_error(L, "handler options must be a table (got %s)", luaL_typename(L, t));
    int timeout = 0, restart = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (k && strcmp(k, "timeout") == 0) timeout = lua_toboolean(L, -1);
        else if (k && strcmp(k, "restart") == 0) restart = lua_toboolean(L, -1);
        else luaL_error(L, "unknown handler option '%s' (valid: timeout, restart)", k ? k : luaL_typename(L, -2));
        lua_pop(L, 1);
    }
    if (timeout && restart) luaL_error(L, "handler options timeout and restart exclude each other");
    h->st = timeout ? TSQ_ELIMIT : restart ? TSQ_ESTATE : TSQ_OK;
}

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
    lua_call(L, 2, 3);
    int code = lua_gettop(L) - 2;
    switch (lua_type(L, code)) {
    case LUA_TNIL: h->code = 0; break;
    case LUA_TBOOLEAN: h->code = lua_toboolean(L, code) ? 0 : 1; break;
    case LUA_TNUMBER:
        if (!lua_isinteger(L, code)) return luaL_error(L, "handler returned a non-integer exit code");
        h->code = (int32_t)lua_tointeger(L, code);
        break;
    default: return luaL_error(L, "handler must return an exit code (got %s)", luaL_typename(L, code));
    }
    handler_options(L, code + 2, h);
    if (!lua_isnil(L, code + 1)) {
        size_t len;
        const char *s = luaL_tolstring(L, code + 1, &len);
        tsq_buf_add(h->out, s, len);
    }
    return 0;
}

/* A handler that raises has no exit code: the engine reports E_FAIL with the message. */
static tsq_status handler_tramp(void *ud, const tsq_node *step, tsq_env *env, int32_t *exit_code, tsq_buf *output) {
    hslot *s = ud;
    hcall h;
    char msg[512];
    h.rc = s->rc, h.key = s->key, h.step = step, h.env = env, h.code = 0, h.out = output, h.st = TSQ_OK;
    if (!ltsqi_protected_call(s->rc->L, handler_body, &h, msg, sizeof msg)) {
        tsq_buf_adds(output, msg);
        *exit_code = 0;
        return TSQ_EHANDLER;
    }
    *exit_code = h.code;
    return h.st;
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
    if (!ltsqi_protected_call(rc->L, clock_body, &c, rc->msg, sizeof rc->msg)) return 0;
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
    if (!ltsqi_protected_call(rc->L, loader_body, &c, msg, sizeof msg)) {
        tsq_buf_adds(message, msg);
        return TSQ_EHANDLER;
    }
    *out = c.out;
    return TSQ_OK;
}

int ltsqi_runbox_gc(lua_State *L) {
    runbox *b = lua_touserdata(L, 1);
    if (!b) return 0;
    tsq_run_free(b->r);
    b->r = NULL;
    return 0;
}

static const char *opt_field(lua_State *L, int t, const char *k) {
    return ltsqi_checkstr_field(L, t, k); /* stays on the stack */
}

static void push_record(lua_State *L, const tsq_record *r) {
    lua_createtable(L, 0, 13);
    ltsqi_setfield_str(L, "ActionName", r->ActionName);
    ltsqi_setfield_str(L, "ActionOutput", r->ActionOutput);
    ltsqi_setfield_str(L, "AdvertisementID", r->AdvertisementID);
    ltsqi_setfield_str(L, "ExecutionTime", r->ExecutionTime);
    ltsqi_setfield_int(L, "ExecutionTimeUnix", (lua_Integer)r->ExecutionTimeUnix);
    ltsqi_setfield_int(L, "ExitCode", (lua_Integer)r->ExitCode);
    ltsqi_setfield_str(L, "GroupName", r->GroupName);
    ltsqi_setfield_int(L, "LastStatusMsgID", (lua_Integer)r->LastStatusMsgID);
    ltsqi_setfield_str(L, "LastStatusMsgName", r->LastStatusMsgName);
    ltsqi_setfield_str(L, "PackageID", r->PackageID);
    ltsqi_setfield_int(L, "ResourceID", (lua_Integer)r->ResourceID);
    ltsqi_setfield_int(L, "Step", (lua_Integer)r->Step);
}

int ltsqi_step_run(lua_State *L) {
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
        eb = ltsqi_newenvbox(L, NULL, 0);
    } else {
        envbox *src = ltsqi_checkenvbox(L, -1);
        lua_getiuservalue(L, -1, 1);
        eb = ltsqi_newenvbox(L, src->env, -1);
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
    lua_State *old = ltsqi_env_enter(eb, L);
    tsq_status st = tsq_run_sequence(seq, &o, &rb->r, &err);
    eb->L = old;
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rc);
    if (st) return ltsqi_raise_error(L, &err);
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
    ltsqi_push_variables_table(L, eb->env);
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
    if (tsq_doc_set_field(n, k, ltsqi_check_text(L, 3, k), &err)) return ltsqi_raise_error(L, &err);
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

const luaL_Reg ltsqi_pkg_meta[] = {
    {"__index", pkg_index},
    {"__newindex", pkg_newindex},
    {"__pairs", pkg_pairs},
    {"__len", pkg_len},
    {"__tostring", pkg_tostring},
    {NULL, NULL},
};
