/* ltsq_step.c - step boxes: identity, fields and properties, tree edits, validation and
 * saving. One box per node (a weak table maps the node to its box). */
#include "ltsq_int.h"
#include <stdlib.h>

/* ------------------------------------------------------------------ step boxes */

/* A new box for n (one more retain) on the stack, registered in the weak table at
 * `boxes`, with the step metatable at `mt` (absolute or upvalue indices). */
static void new_box(lua_State *L, tsq_node *n, int boxes, int mt) {
    stepbox *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->n = NULL;
    b->tag = ltsqi_tag_step;
    lua_pushvalue(L, mt);
    lua_setmetatable(L, -2);
    tsq_node_retain(n);
    b->n = n;
    lua_pushvalue(L, -1);
    lua_rawsetp(L, boxes, n);
}

/* n's box on the stack: the one it has, else a new one. The paths every visited step
 * takes keep the box table and the metatable as upvalues. A box holds a reference to
 * its node until it is collected or closed, so a node that holds none has no open box
 * and is not looked up. A closed box (`local s <close> = step`) is replaced: the node
 * lives on in its tree and is reached again through a new box. */
static void push_box(lua_State *L, tsq_node *n, int boxes, int mt) {
    if (!n) {
        lua_pushnil(L);
        return;
    }
    if (tsq_node_refs(n)) {
        if (lua_rawgetp(L, boxes, n) != LUA_TNIL && ((const stepbox *)lua_touserdata(L, -1))->n) return;
        lua_pop(L, 1);
    }
    new_box(L, n, boxes, mt);
}

/* Pushes the box table and the step metatable (what new_box and push_box take), from
 * the registry: for closures to keep as upvalues, or for one push. */
static void push_box_tables(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, BOXES_KEY);
    lua_rawgetp(L, LUA_REGISTRYINDEX, STEP_MT_KEY);
}

/* push_box, or new_box when `fresh`, with the two tables from the registry. */
static void push_box_reg(lua_State *L, tsq_node *n, int fresh) {
    push_box_tables(L);
    int top = lua_gettop(L);
    if (fresh) new_box(L, n, top - 1, top);
    else push_box(L, n, top - 1, top);
    lua_replace(L, top - 1);
    lua_pop(L, 1);
}

LTSQ_API void ltsq_pushnode(lua_State *L, tsq_node *n) {
    if (!n) lua_pushnil(L);
    else push_box_reg(L, n, 0);
}

/* Pushes the box of a node the caller has just made (load, parse, new, clone: no box can
 * exist yet, so it is registered without a look-up) and drops the caller's reference. */
void ltsqi_push_owned_node(lua_State *L, tsq_node *n) {
    push_box_reg(L, n, 1);
    tsq_node_release(n);
    ltsqi_gc_pace(L);
}

/* The step at idx, checked in line (the common case); ltsq_checknode raises otherwise. */
static inline tsq_node *check_step(lua_State *L, int idx) {
    const stepbox *b = ltsqi_testbox(L, idx, ltsqi_tag_step);
    return b && b->n ? b->n : ltsq_checknode(L, idx);
}

LTSQ_API tsq_node *ltsq_testnode(lua_State *L, int idx) {
    stepbox *b = ltsqi_testbox(L, idx, ltsqi_tag_step);
    return b ? b->n : NULL;
}

LTSQ_API tsq_node *ltsq_checknode(lua_State *L, int idx) {
    stepbox *b = ltsqi_checkbox(L, idx, ltsqi_tag_step, STEP_MT);
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
    condbox *b = ltsqi_newcondbox(L);
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
    tsq_cond *c = ltsqi_testcond(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING || (c && tsq_cond_get_kind(c) != TSQ_C_CONDITION)) {
        lua_pushcfunction(L, ltsqi_condition);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        c = ltsqi_testcond(L, -1);
    } else if (lua_istable(L, idx)) {
        lua_pushcfunction(L, ltsqi_condition);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        c = ltsqi_testcond(L, -1);
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
    tsq_buf *b = ltsqi_newbuf(L);
    const char *s = index_form ? tsq_node_index_path(n, b) : tsq_node_path(n, b);
    if (b->failed) return luaL_error(L, "out of memory");
    lua_pushstring(L, s);
    return 1;
}

/* The lowercase fields of a step, all read-only but `command`. __index looks them up
 * before the methods table, which refuses their names (ltsqi_methods_newindex). */
const char *const ltsqi_step_fields[] = {"type", "kind", "parent", "package", "path", "index_path", "count",
                                         "index", "depth", "element", "first", "next", "root", "sequence",
                                         "version", "wrapper", "command", NULL};

/* The methods table's __newindex: a method can not take a field's name (the field would
 * hide it) nor a capitalised one (a property's). */
int ltsqi_methods_newindex(lua_State *L) {
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (k) {
        if (k[0] >= 'A' && k[0] <= 'Z')
            return luaL_error(L, "a step method can not be named '%s': capitalised names are properties", k);
        for (int i = 0; ltsqi_step_fields[i]; i++)
            if (!strcmp(ltsqi_step_fields[i], k))
                return luaL_error(L, "a step method can not be named '%s': it is a step field", k);
    }
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

/* __index, a closure over the methods table, the box table and the step metatable. */
#define push_up(L, n) push_box(L, n, lua_upvalueindex(2), lua_upvalueindex(3))

int ltsqi_step_index(lua_State *L) {
    tsq_node *n = check_step(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Integer i = lua_tointeger(L, 2);
        push_up(L, i >= 1 ? tsq_node_child(n, (size_t)i - 1) : NULL);
        return 1;
    }
    const char *k = luaL_checkstring(L, 2);
    tsq_kind kind = tsq_node_kind(n);
    switch (k[0]) {
    case 'N':
        if (!strcmp(k, "Name")) {
            /* pushlstring: lua_pushstring's cache of C strings by address is left to the
             * catalogue's class names that step.type returns */
            const char *v = kind == TSQ_SEQUENCE ? seq_name(n) : tsq_node_name(n);
            lua_pushlstring(L, v, strlen(v));
            return 1;
        }
        break;
    case 'D':
        if (!strcmp(k, "Description")) {
            const char *v = tsq_node_description(n);
            lua_pushlstring(L, v, strlen(v));
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
    switch (k[0]) { /* the fields, then the methods (no method has a field's name) */
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
            push_up(L, tsq_node_parent(n));
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
            push_up(L, tsq_node_first(n));
            return 1;
        }
        break;
    case 'n':
        if (!strcmp(k, "next")) {
            push_up(L, tsq_node_parent(n) ? tsq_node_next(n) : NULL);
            return 1;
        }
        break;
    case 'r':
        if (!strcmp(k, "root")) {
            push_up(L, tsq_node_root(n));
            return 1;
        }
        break;
    case 's':
        if (!strcmp(k, "sequence")) {
            tsq_node *r = tsq_node_root(n);
            push_up(L, tsq_node_kind(r) == TSQ_SEQUENCE ? r : NULL);
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
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* a method */
    return luaL_error(L, "no field '%s' on step", k);
}

static int check_bool(lua_State *L, int idx, const char *prop) {
    if (!lua_isboolean(L, idx)) luaL_error(L, "bad value for '%s' (boolean expected, got %s)", prop, luaL_typename(L, idx));
    return lua_toboolean(L, idx);
}

const char *ltsqi_check_text(lua_State *L, int idx, const char *prop) {
    if (lua_type(L, idx) != LUA_TSTRING && lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "bad value for '%s' (string expected, got %s)", prop, luaL_typename(L, idx));
    return lua_tostring(L, idx);
}

static void set_seq_name(lua_State *L, tsq_node *n, const char *v) {
    tsq_error err;
    ERR_INIT(err);
    if (tsq_doc_wrapper(n) != TSQ_WRAP_NONE && tsq_doc_field(n, "Name")) {
        if (tsq_doc_set_field(n, "Name", v, &err)) ltsqi_raise_error(L, &err);
    } else if (tsq_node_set_name(n, v)) {
        luaL_error(L, "can not set the name");
    }
}

/* step[k] = value at vidx: assignment and constructor tables share these rules. */
static void step_set(lua_State *L, tsq_node *n, const char *k, int vidx) {
    tsq_kind kind = tsq_node_kind(n);
    tsq_status st = TSQ_OK;
    if (k[0] == 'N' && !strcmp(k, "Name")) {
        const char *v = ltsqi_check_text(L, vidx, k);
        if (kind == TSQ_SEQUENCE) set_seq_name(L, n, v);
        else st = tsq_node_set_name(n, v);
    } else if (k[0] == 'D' && !strcmp(k, "Description")) {
        st = tsq_node_set_description(n, lua_isnil(L, vidx) ? "" : ltsqi_check_text(L, vidx, k));
    } else if (k[0] == 'E' && !strcmp(k, "Enabled")) {
        st = tsq_node_set_enabled(n, check_bool(L, vidx, k));
    } else if (k[0] == 'C' && !strcmp(k, "ContinueOnError")) {
        st = tsq_node_set_continue_on_error(n, check_bool(L, vidx, k));
    } else if (k[0] == 'C' && !strcmp(k, "Condition")) {
        set_condition(L, n, vidx);
    } else if (k[0] >= 'A' && k[0] <= 'Z') {
        if (kind != TSQ_ACTION)
            luaL_error(L, "no property '%s' on a %s (properties: Name, Description, Enabled, ContinueOnError, Condition)", k, kind_name(n));
        set_prop(L, n, k, vidx);
    } else if (!strcmp(k, "command")) {
        tsq_error err;
        ERR_INIT(err);
        if (kind != TSQ_ACTION) luaL_error(L, "a %s has no command", kind_name(n));
        if (tsq_action_set_command(n, ltsqi_check_text(L, vidx, k), &err)) raise_step_error(L, n, &err);
    } else {
        for (int i = 0; ltsqi_step_fields[i]; i++)
            if (!strcmp(ltsqi_step_fields[i], k)) luaL_error(L, "field '%s' of step is read-only", k);
        luaL_error(L, "no field '%s' on step", k);
    }
    if (st) luaL_error(L, "can not set '%s' on %s \"%s\"", k, short_type(n), tsq_node_name(n));
}

static int step_newindex(lua_State *L) {
    tsq_node *n = check_step(L, 1);
    step_set(L, n, luaL_checkstring(L, 2), 3);
    return 0;
}

/* ------------------------------------------------------------------ constructor tables */

static int key_order(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int nx = strcmp(x, "Name") == 0, ny = strcmp(y, "Name") == 0;
    if (nx != ny) return ny - nx; /* Name first: later properties may depend on it */
    return strcmp(x, y);
}

/* core.apply(step, t): the string keys of t set as properties (Name first, then in name
 * order, so that a script always gives the same document), then the array part added as
 * children. Raises with plain messages; the constructors in init.lua say which step. */
int ltsqi_apply(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer count = (lua_Integer)lua_rawlen(L, 2);
    /* the string keys with their values, which stay on the stack (values[i] is a stack
     * index); a userdata on the stack holds a longer list, freed with it */
    typedef struct kv { const char *key; int value; } kv;
    kv local[16], *keys = local;
    size_t nk = 0, cap = sizeof local / sizeof local[0];
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            if (nk == cap) {
                kv *more = lua_newuserdatauv(L, 2 * cap * sizeof *more, 0);
                memcpy(more, keys, nk * sizeof *keys);
                keys = more;
                cap *= 2;
                lua_insert(L, 3); /* below the values kept so far */
                for (size_t i = 0; i < nk; i++) keys[i].value++;
            }
            if (!lua_checkstack(L, 4)) return luaL_error(L, "constructor table too large");
            lua_insert(L, -2); /* the value stays, the key goes back on top for lua_next */
            keys[nk].key = lua_tostring(L, -1); /* the table keeps the key string alive */
            keys[nk++].value = lua_gettop(L) - 1;
        } else {
            lua_pop(L, 1);
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > count)
                return luaL_error(L, "bad key %s in constructor table", luaL_tolstring(L, -1, NULL));
        }
    }
    for (size_t i = 1; i < nk; i++) /* insertion sort: constructor tables are short */
        for (size_t j = i; j > 0 && key_order(&keys[j - 1].key, &keys[j].key) > 0; j--) {
            kv t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    int top = lua_gettop(L);
    for (size_t i = 0; i < nk; i++) {
        step_set(L, n, keys[i].key, keys[i].value); /* the same rules as assignment */
        lua_settop(L, top);
    }
    tsq_node *parent = is_container(n) ? n : NULL;
    for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, 2, i);
        tsq_node *child = ltsq_testnode(L, -1);
        if (!child) {
            const char *what = ltsqi_testcond(L, -1) ? "a condition" : luaL_typename(L, -1);
            return luaL_error(L, "item %d is not a step (got %s)", (int)i, what);
        }
        tsq_error err;
        ERR_INIT(err);
        if (!parent) return luaL_error(L, "item %d (%s): steps can only be added to a group or a sequence", (int)i, luaL_tolstring(L, -1, NULL));
        if (tsq_node_insert(parent, (size_t)-1, child, &err))
            return luaL_error(L, "item %d (%s): %s", (int)i, luaL_tolstring(L, -1, NULL), err.message);
        lua_pop(L, 1);
    }
    lua_settop(L, 1);
    return 1;
}

/* The body a constructor runs protected: step at 1, its name or table at 2. */
static int ctor_body(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) return ltsqi_apply(L);
    step_set(L, ltsq_checknode(L, 1), "Name", 2);
    return 0;
}

/* core.constructor(class, fail) -> f: f(), f "name" or f { ... } makes an action of the
 * class, names it or applies the table (as core.apply). An error is handed to
 * fail(step, message, 2), which raises it naming the step and the caller's line. One C
 * call per step instead of three Lua functions around core.apply. */
static int ctor_call(lua_State *L) {
    int ty = lua_type(L, 1);
    if (ty != LUA_TNONE && ty != LUA_TNIL && ty != LUA_TSTRING && ty != LUA_TTABLE)
        return luaL_error(L, "bad argument #1 to constructor (string or table expected, got %s)", luaL_typename(L, 1));
    tsq_node *n = NULL;
    tsq_error err;
    ERR_INIT(err);
    statebox *s = lua_touserdata(L, lua_upvalueindex(3)); /* the state's box: lives as long as the state */
    if (!s->ctx) return luaL_error(L, "tasksequence.core is closed in this state");
    if (tsq_action_new(s->ctx, lua_tostring(L, lua_upvalueindex(1)), NULL, &n, &err)) return ltsqi_raise_error(L, &err);
    lua_settop(L, 1);
    new_box(L, n, lua_upvalueindex(4), lua_upvalueindex(5)); /* 2 */
    tsq_node_release(n);
    ltsqi_gc_pace_state(L, s);
    if (ty == LUA_TNONE || ty == LUA_TNIL) return 1;
    lua_pushcfunction(L, ctor_body);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        lua_pushvalue(L, lua_upvalueindex(2));
        lua_pushvalue(L, 2);
        lua_pushvalue(L, -3);
        lua_pushinteger(L, 2);
        lua_call(L, 3, 0); /* raises */
    }
    lua_settop(L, 2);
    return 1;
}

int ltsqi_constructor(lua_State *L) {
    const char *cls = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!tsq_class_find(cls)) return luaL_argerror(L, 1, "unknown action class");
    lua_settop(L, 2);
    lua_pushlightuserdata(L, ltsqi_state(L));
    push_box_tables(L);
    lua_pushcclosure(L, ctor_call, 5); /* class, fail, state, boxes, step metatable */
    return 1;
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

/* step:move_to(group [, index]), also core.move: init.lua puts query.move_to (a group or
 * its path; index counted without the step) in the methods table, and that one calls this
 * one (index counted with the step still in place). */
int ltsqi_step_move(lua_State *L) {
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
    ltsqi_push_owned_node(L, c);
    return 1;
}

static int step_child(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    ltsq_pushnode(L, i >= 1 ? tsq_node_child(n, (size_t)i - 1) : NULL);
    return 1;
}

/* The iterators are closures over the box table and the step metatable. */
static void push_iter(lua_State *L, lua_CFunction f) {
    push_box_tables(L);
    lua_pushcclosure(L, f, 2);
}

static int steps_iter(lua_State *L) {
    tsq_node *top = check_step(L, 1);
    tsq_node *cur = lua_isnil(L, 2) ? NULL : check_step(L, 2);
    push_box(L, tsq_node_walk(top, cur), lua_upvalueindex(1), lua_upvalueindex(2));
    return 1;
}

static int step_steps(lua_State *L) {
    ltsq_checknode(L, 1);
    push_iter(L, steps_iter);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int children_iter(lua_State *L) {
    tsq_node *p = check_step(L, 1);
    tsq_node *cur = lua_isnil(L, 2) ? NULL : check_step(L, 2);
    push_box(L, cur ? (tsq_node_parent(cur) == p ? tsq_node_next(cur) : NULL) : tsq_node_first(p),
             lua_upvalueindex(1), lua_upvalueindex(2));
    return 1;
}

/* for child in group:children() : the direct child steps */
static int step_children(lua_State *L) {
    ltsq_checknode(L, 1);
    push_iter(L, children_iter);
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
    ltsqi_setfield_str(L, "property", p->property);
    ltsqi_setfield_str(L, "message", p->message);
    lua_pushstring(L, p->severity == TSQ_SEV_ERROR ? "error" : "warning");
    lua_setfield(L, -2, "severity");
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    return 0;
}

static void problem_cb(void *ud, const tsq_problem *p) { ltsqi_collector_call(ud, problem_body, p); }

static int step_validate(lua_State *L) {
    tsq_node *n = ltsq_checknode(L, 1);
    lua_newtable(L);
    collector col;
    ltsqi_collector_begin(L, &col, -1);
    size_t errors = tsq_validate(n, problem_cb, &col);
    ltsqi_collector_end(L, &col);
    lua_pushinteger(L, (lua_Integer)errors);
    return 2;
}

static int step_to_xml(lua_State *L) {
    tsq_node *n = tsq_node_root(ltsq_checknode(L, 1));
    int canonical = lua_toboolean(L, 2);
    tsq_buf *b = ltsqi_newbuf(L);
    tsq_error err;
    ERR_INIT(err);
    if ((canonical ? tsq_write_canonical(n, b, &err) : tsq_write(n, b, &err))) return ltsqi_raise_error(L, &err);
    if (b->failed) return luaL_error(L, "out of memory");
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    return 1;
}

static int step_save(lua_State *L) {
    tsq_node *n = tsq_node_root(ltsq_checknode(L, 1));
    const char *path = luaL_checkstring(L, 2);
    tsq_error err;
    ERR_INIT(err);
    if (tsq_save(n, path, &err)) return ltsqi_fail_error(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg step_methods[] = {
    {"add", step_add},
    {"insert", step_insert},
    {"remove", step_remove},
    {"move_to", ltsqi_step_move},
    {"clone", step_clone},
    {"child", step_child},
    {"steps", step_steps},
    {"children", step_children},
    {"properties", step_properties},
    {"validate", step_validate},
    {"to_xml", step_to_xml},
    {"save", step_save},
    {"run", ltsqi_step_run},
    {"plan", ltsqi_step_plan},
    {NULL, NULL},
};

const luaL_Reg ltsqi_step_meta[] = {
    {"__gc", step_gc},
    {"__close", step_gc},
    {"__tostring", step_tostring},
    {"__len", step_len},
    {"__eq", step_eq},
    {"__newindex", step_newindex},
    {NULL, NULL},
};

/* A new table of the step methods, made here where luaL_newlib can size it. */
void ltsqi_new_step_methods(lua_State *L) { luaL_newlib(L, step_methods); }
