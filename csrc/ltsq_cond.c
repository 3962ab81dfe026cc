/* ltsq_cond.c - condition boxes (each owns its tree), the constructors (condition, all,
 * any, none, variable, wmi, file, ...) and evaluate. */
#include "ltsq_int.h"

#include <strings.h>

/* ------------------------------------------------------------------ condition boxes */

condbox *ltsqi_newcondbox(lua_State *L) {
    condbox *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->c = NULL;
    b->tag = ltsqi_tag_cond;
    lua_rawgetp(L, LUA_REGISTRYINDEX, COND_MT_KEY);
    lua_setmetatable(L, -2);
    return b;
}

LTSQ_API void ltsq_pushcond(lua_State *L, const tsq_cond *c) {
    if (!c) {
        lua_pushnil(L);
        return;
    }
    condbox *b = ltsqi_newcondbox(L);
    if (!(b->c = tsq_cond_clone(c))) luaL_error(L, "out of memory");
}

LTSQ_API tsq_cond *ltsq_checkcond(lua_State *L, int idx) {
    condbox *b = ltsqi_checkbox(L, idx, ltsqi_tag_cond, COND_MT);
    if (!b->c) luaL_argerror(L, idx, "condition is closed");
    return b->c;
}

tsq_cond *ltsqi_testcond(lua_State *L, int idx) {
    condbox *b = ltsqi_testbox(L, idx, ltsqi_tag_cond);
    return b ? b->c : NULL;
}

static int cond_gc(lua_State *L) {
    condbox *b = lua_touserdata(L, 1);
    if (!b) return 0;
    tsq_cond_free(b->c);
    b->c = NULL;
    return 0;
}

/* ------------------------------------------------------------------ conditions */

static const char *const cond_kind_names[] = {"", "condition", "and", "or", "not", "osgroup", "osexprgroup", "expression"};

static const char *cond_text(lua_State *L, const tsq_cond *c) {
    tsq_buf *b = ltsqi_newbuf(L);
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
    tsq_cond *a = ltsqi_testcond(L, 1), *b = ltsqi_testcond(L, 2);
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
        condbox *nb = ltsqi_newcondbox(L);
        if (tsq_cond_parse(ctx, lua_tostring(L, idx), &nb->c, &err)) ltsqi_raise_error(L, &err);
        lua_replace(L, idx);
    }
    tsq_cond *op = ltsqi_testcond(L, idx);
    if (!op) luaL_error(L, "bad operand to '%s' (condition expected, got %s)", fn, luaL_typename(L, idx));
    if (tsq_cond_get_kind(op) == TSQ_C_CONDITION) {
        if (tsq_cond_count(op) == 1) {
            op = (tsq_cond *)tsq_cond_operand(op, 0);
        } else {
            condbox *nb = ltsqi_newcondbox(L);
            if (!(nb->c = tsq_cond_new(ctx, TSQ_C_AND))) luaL_error(L, "out of memory");
            for (size_t i = 0; i < tsq_cond_count(op); i++)
                if (tsq_cond_add(nb->c, tsq_cond_operand(op, i), &err)) ltsqi_raise_error(L, &err);
            lua_replace(L, idx);
            op = nb->c;
        }
    }
    if (tsq_cond_add(parent, op, &err)) ltsqi_raise_error(L, &err);
}

static int new_operator(lua_State *L, tsq_cond_kind kind, const char *fn) {
    luaL_checktype(L, 1, LUA_TTABLE);
    condbox *b = ltsqi_newcondbox(L);
    if (!(b->c = tsq_cond_new(ltsq_context(L), kind))) return luaL_error(L, "out of memory");
    lua_Integer n = (lua_Integer)luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        cond_add_operand(L, b->c, -1, fn);
        lua_pop(L, 1);
    }
    return 1;
}

int ltsqi_condition(lua_State *L) {
    if (lua_type(L, 1) == LUA_TSTRING) {
        tsq_error err;
        ERR_INIT(err);
        condbox *b = ltsqi_newcondbox(L);
        if (tsq_cond_parse(ltsq_context(L), lua_tostring(L, 1), &b->c, &err)) return ltsqi_raise_error(L, &err);
        if (tsq_cond_get_kind(b->c) != TSQ_C_CONDITION) { /* a condition holds its operand */
            condbox *w = ltsqi_newcondbox(L);
            if (!(w->c = tsq_cond_new(ltsq_context(L), TSQ_C_CONDITION))) return luaL_error(L, "out of memory");
            if (tsq_cond_add(w->c, b->c, &err)) return ltsqi_raise_error(L, &err);
        }
        return 1;
    }
    if (ltsqi_testcond(L, 1)) {
        lua_newtable(L);
        lua_pushvalue(L, 1);
        lua_rawseti(L, -2, 1);
        lua_replace(L, 1);
    }
    return new_operator(L, TSQ_C_CONDITION, "condition");
}

int ltsqi_all(lua_State *L) { return new_operator(L, TSQ_C_AND, "all"); }
int ltsqi_any(lua_State *L) { return new_operator(L, TSQ_C_OR, "any"); }
int ltsqi_none(lua_State *L) { return new_operator(L, TSQ_C_NOT, "none"); }

static void cond_set(lua_State *L, tsq_cond *c, const char *name, const char *value) {
    tsq_error err;
    ERR_INIT(err);
    if (tsq_cond_set(c, name, value, &err)) ltsqi_raise_error(L, &err);
}

/* Pushes the names of a NULL-terminated list joined with ", " (for error messages). */
static const char *push_joined(lua_State *L, const char *const *names) {
    luaL_Buffer lb;
    luaL_buffinit(L, &lb);
    for (int i = 0; names[i]; i++) {
        if (i) luaL_addstring(&lb, ", ");
        luaL_addstring(&lb, names[i]);
    }
    luaL_pushresult(&lb);
    return lua_tostring(L, -1);
}

int ltsqi_variable(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    const char *op = tsq_cond_operator(luaL_checkstring(L, 2)); /* new conditions: the console's spelling */
    if (!op) {
        const char *ops[16];
        size_t n = 0;
        while (n < 15 && (ops[n] = tsq_cond_operator_at(n)) != NULL) n++;
        ops[n] = NULL;
        return luaL_argerror(L, 2, lua_pushfstring(L, "unknown operator '%s' (%s)", lua_tostring(L, 2), push_joined(L, ops)));
    }
    const char *value = lua_isnoneornil(L, 3) ? NULL : ltsqi_value_text(L, 3, "the value");
    condbox *b = ltsqi_newcondbox(L);
    if (!(b->c = tsq_cond_new_expression(ltsq_context(L), "SMS_TaskSequence_VariableConditionExpression")))
        return luaL_error(L, "out of memory");
    cond_set(L, b->c, "Operator", op);
    if (value) cond_set(L, b->c, "Value", value);
    cond_set(L, b->c, "Variable", name);
    return 1;
}

int ltsqi_wmi(lua_State *L) {
    const char *query = luaL_checkstring(L, 1);
    const char *ns = luaL_optstring(L, 2, "root\\cimv2");
    condbox *b = ltsqi_newcondbox(L);
    if (!(b->c = tsq_cond_new_expression(ltsq_context(L), "SMS_TaskSequence_WMIConditionExpression")))
        return luaL_error(L, "out of memory");
    cond_set(L, b->c, "Namespace", ns);
    cond_set(L, b->c, "Query", query);
    return 1;
}

/* The operators each leaf's operator fields take (conditions.md 2.3-2.6); a new condition
 * gets the console's spelling whatever the case given ("nonExists", the SDK's registry
 * spelling, is kept as written). */
static const char *const compare_ops[] = {"equals", "notEquals", "less", "lessEqual", "greater", "greaterEqual", NULL};
static const char *const registry_ops[] = {"exists", "notExists", "nonExists", "equals", "notEquals", "less",
                                           "lessEqual", "greater", "greaterEqual", NULL};
static const char *const software_ops[] = {"AnyVersion", "ThisVersion", NULL};

typedef struct leaf_spec {
    const char *fn, *cls;
    const char *const fields[6]; /* in the order they are written */
    const char *const *ops;      /* what its *Operator fields take */
} leaf_spec;

static const leaf_spec leaf_specs[] = {
    {"file", "SMS_TaskSequence_FileConditionExpression", {"DateTime", "DateTimeOperator", "Path", "Version", "VersionOperator", NULL}, compare_ops},
    {"folder", "SMS_TaskSequence_FolderConditionExpression", {"DateTime", "DateTimeOperator", "Path", NULL, NULL, NULL}, compare_ops},
    {"registry", "SMS_TaskSequence_RegistryConditionExpression", {"Data", "KeyPath", "Operator", "Type", "Value", NULL}, registry_ops},
    {"software", "SMS_TaskSequence_SoftwareConditionExpression", {"Operator", "ProductCode", "ProductName", "UpgradeCode", "Version", NULL}, software_ops},
};


static const char *leaf_operator(lua_State *L, const leaf_spec *sp, const char *field, const char *op) {
    for (int i = 0; sp->ops[i]; i++)
        if (strcasecmp(op, sp->ops[i]) == 0) return sp->ops[i];
    luaL_error(L, "unknown %s '%s' in %s condition (valid: %s)", field, op, sp->fn, push_joined(L, sp->ops));
    return NULL;
}

static int new_leaf(lua_State *L) {
    const leaf_spec *sp = &leaf_specs[lua_tointeger(L, lua_upvalueindex(1))];
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 1)) { /* check every key before allocating */
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int ok = 0;
        for (int i = 0; k && sp->fields[i] && !ok; i++) ok = !strcmp(k, sp->fields[i]);
        if (!ok) {
            const char *what = k ? k : luaL_typename(L, -2); /* the key, below its value */
            return luaL_error(L, "unknown field '%s' in %s condition (valid: %s)", what, sp->fn, push_joined(L, sp->fields));
        }
        lua_pop(L, 1);
    }
    condbox *b = ltsqi_newcondbox(L);
    if (!(b->c = tsq_cond_new_expression(ltsq_context(L), sp->cls))) return luaL_error(L, "out of memory");
    for (int i = 0; sp->fields[i]; i++) {
        if (lua_getfield(L, 1, sp->fields[i]) != LUA_TNIL) {
            const char *v = ltsqi_value_text(L, -1, sp->fields[i]);
            if (strstr(sp->fields[i], "Operator")) v = leaf_operator(L, sp, sp->fields[i], v);
            cond_set(L, b->c, sp->fields[i], v);
        }
        lua_settop(L, 2);
    }
    return 1;
}

/* Sets the leaf constructors (file, folder, registry, software) in the table on top. */
void ltsqi_set_leaf_funcs(lua_State *L) {
    for (lua_Integer i = 0; i < (lua_Integer)(sizeof leaf_specs / sizeof leaf_specs[0]); i++) {
        lua_pushinteger(L, i);
        lua_pushcclosure(L, new_leaf, 1);
        lua_setfield(L, -2, leaf_specs[i].fn);
    }
}

/* ts.expression(class, { Name = value, ... }): a leaf of any class, values in key order. */
int ltsqi_expression(lua_State *L) {
    const char *cls = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    condbox *b = ltsqi_newcondbox(L);
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
        cond_set(L, b->c, k, ltsqi_value_text(L, -1, k));
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
            if (name) ltsqi_setfield_str(L, name, tsq_cond_get(c, name));
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
    cond_set(L, c, k, ltsqi_value_text(L, 3, k));
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
    ltsqi_setfield_int(L, "depth", e->depth);
    ltsqi_setfield_str(L, "operand", e->operand);
    lua_pushboolean(L, e->result);
    lua_setfield(L, -2, "result");
    ltsqi_setfield_str(L, "why", e->why);
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    return 0;
}

static void trace_cb(void *ud, const tsq_trace_entry *e) { ltsqi_collector_call(ud, trace_body, e); }

static int cond_evaluate(lua_State *L) {
    tsq_cond *c = ltsq_checkcond(L, 1);
    envbox *eb = ltsqi_optenvbox(L, 2);
    lua_newtable(L);
    int trace = lua_gettop(L);
    collector col;
    ltsqi_collector_begin(L, &col, trace);
    tsq_error err;
    ERR_INIT(err);
    int result = 0;
    lua_State *old = ltsqi_env_enter(eb, L);
    tsq_status st = tsq_cond_eval(c, eb->env, &result, trace_cb, &col, &err);
    eb->L = old;
    ltsqi_collector_end(L, &col);
    if (st == TSQ_EFACT) {
        ltsqi_env_error(eb, &err);
        return ltsqi_fail_error(L, &err);
    }
    if (st) return ltsqi_raise_error(L, &err);
    lua_pushboolean(L, result);
    lua_pushvalue(L, trace);
    return 2;
}


int ltsqi_cond_kind(lua_State *L) {
    tsq_cond_kind k = kind_of_name(luaL_checkstring(L, 1));
    if (!k) return luaL_argerror(L, 1, "unknown condition kind");
    condbox *b = ltsqi_newcondbox(L);
    if (!(b->c = tsq_cond_new(ltsq_context(L), k))) return luaL_error(L, "out of memory");
    return 1;
}

const luaL_Reg ltsqi_cond_methods[] = {
    {"evaluate", cond_evaluate},
    {"add", cond_add},
    {"clone", cond_clone},
    {"text", cond_tostring},
    {NULL, NULL},
};

const luaL_Reg ltsqi_cond_meta[] = {
    {"__gc", cond_gc},
    {"__tostring", cond_tostring},
    {"__eq", cond_eq},
    {"__len", cond_len},
    {"__index", cond_index},
    {"__newindex", cond_newindex},
    {NULL, NULL},
};
