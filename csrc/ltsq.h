/*
 * ltsq.h - the Lua 5.4 binding of tasksequence, for hosts that embed Lua.
 *
 *   luaL_requiref(L, "tasksequence.core", luaopen_tasksequence_core, 0);
 *
 * One tsq_ctx per lua_State, made by the first luaopen_tasksequence_core and freed
 * when the state closes (after every object made in it). The push functions take
 * their own reference: the host keeps (and later releases) its own.
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

/* Opens the module: returns the table of tasksequence.core. */
LTSQ_API int luaopen_tasksequence_core(lua_State *L);

/* The per-state context (raises when the module was not opened in L). */
LTSQ_API tsq_ctx *ltsq_context(lua_State *L);

/* Steps: pushes the one userdata of node n (nil when n is NULL); Lua holds its own
 * tsq_node_retain. check raises a Lua error naming argument idx; test returns NULL. */
LTSQ_API void ltsq_pushnode(lua_State *L, tsq_node *n);
LTSQ_API tsq_node *ltsq_checknode(lua_State *L, int idx);
LTSQ_API tsq_node *ltsq_testnode(lua_State *L, int idx);

/* Conditions have value semantics: pushcond pushes a copy of c (nil when c is NULL);
 * checkcond returns the condition owned by the userdata at idx (valid while it lives). */
LTSQ_API void ltsq_pushcond(lua_State *L, const tsq_cond *c);
LTSQ_API tsq_cond *ltsq_checkcond(lua_State *L, int idx);

/* Environments: pushenv pushes a new environment holding a copy of env (variables and
 * provider); checkenv returns the environment owned by the userdata at idx. */
LTSQ_API void ltsq_pushenv(lua_State *L, const tsq_env *env);
LTSQ_API tsq_env *ltsq_checkenv(lua_State *L, int idx);

#ifdef __cplusplus
}
#endif
#endif /* LTSQ_H */
