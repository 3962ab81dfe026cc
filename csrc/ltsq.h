/*
 * ltsq.h - the Lua 5.4 binding of tasksequence, for hosts that embed Lua
 * (pkg-config tsq-lua; examples/host_lua.c is a complete host).
 *
 *   luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
 *   lua_pushcfunction(L, luaopen_tasksequence_core);
 *   lua_setfield(L, -2, "tasksequence.core");     -- require "tasksequence" then works
 * or
 *   luaL_requiref(L, "tasksequence.core", luaopen_tasksequence_core, 0);
 *
 * Contexts: one tsq_ctx per lua_State, made by the first luaopen_tasksequence_core and
 * freed when the state closes, after every Lua object made in it. A host that wants its
 * objects combined with the script's (a step the script builds inserted into the host's
 * group) makes them in ltsq_context(L), and releases its own references to them before
 * lua_close(L). Objects from another context can be pushed too, but then that context
 * must outlive the state, and trees of the two contexts can not be joined.
 *
 * Ownership: the push functions give Lua its own reference or copy; the host keeps (and
 * later releases) its own. The check/test functions return objects owned by the Lua
 * value at idx: valid while that value is reachable (keep it on the stack or in the
 * registry), or retain a node with tsq_node_retain to keep it longer.
 *
 * Errors: check functions raise a Lua error naming argument idx, like luaL_checkudata;
 * call them from a lua_CFunction or under lua_pcall. Threads: a lua_State and its
 * objects are used by one thread at a time; separate states share nothing.
 */
#ifndef LTSQ_H
#define LTSQ_H

#include <lua.h>
#include "tsq.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TSQ_BUILDING) && defined(__GNUC__)
#define LTSQ_API __attribute__((visibility("default")))
#else
#define LTSQ_API
#endif

/* Opens the module: returns the table of tasksequence.core. Safe to call again in the
 * same state (the context is made once). */
LTSQ_API int luaopen_tasksequence_core(lua_State *L);

/* The per-state context (raises when the module was not opened in L). */
LTSQ_API tsq_ctx *ltsq_context(lua_State *L);
/* A host about to exit calls this before lua_close(L): closing the state then leaves the
 * core's trees to the operating system (tsq_ctx_exiting); the state's own finalizers all
 * run. Nothing happens when the module is not loaded in L. */
LTSQ_API void ltsq_exiting(lua_State *L);

/* Steps: pushes the one userdata of node n (nil when n is NULL): pushing the same node
 * twice gives the same value, so the script's edits are edits of the host's tree. Lua
 * holds its own tsq_node_retain. check raises when idx is not a step; test returns NULL. */
LTSQ_API void ltsq_pushnode(lua_State *L, tsq_node *n);
LTSQ_API tsq_node *ltsq_checknode(lua_State *L, int idx);
LTSQ_API tsq_node *ltsq_testnode(lua_State *L, int idx);

/* Conditions have value semantics: pushcond pushes a copy of c (nil when c is NULL);
 * checkcond returns the condition owned by the userdata at idx (valid while it lives;
 * tsq_cond_clone it to keep it). */
LTSQ_API void ltsq_pushcond(lua_State *L, const tsq_cond *c);
LTSQ_API tsq_cond *ltsq_checkcond(lua_State *L, int idx);

/* Environments: pushenv pushes a new environment holding a copy of env's variables and
 * the same provider (a C provider keeps answering for the script: its ud must outlive
 * the Lua value); checkenv returns the environment owned by the userdata at idx. */
LTSQ_API void ltsq_pushenv(lua_State *L, const tsq_env *env);
LTSQ_API tsq_env *ltsq_checkenv(lua_State *L, int idx);

#ifdef __cplusplus
}
#endif
#endif /* LTSQ_H */
