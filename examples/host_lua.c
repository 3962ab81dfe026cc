/*
 * host_lua.c - a C program that embeds Lua 5.4 and the tasksequence binding (ltsq.h):
 * it builds a task sequence in C, hands it to a Lua script together with an environment
 * and a condition, lets the script edit, plan and run it with a step handler and a fact
 * provider written in C, then reads the edited sequence back in C and prints it.
 *
 *   host_lua SCRIPT.lua        (examples/data/host_policy.lua)
 *
 * The Lua half of the module (require "tasksequence") comes from LUA_PATH; the C half,
 * tasksequence.core, is linked into this program and reached through package.preload, so
 * no core.so is loaded. Build it against an installed libtsq-lua:
 *
 *   cc -o host_lua host_lua.c $(pkg-config --cflags --libs tsq-lua)
 *
 * Ownership, as ltsq.h states it: objects made in ltsq_context(L) belong to the state;
 * the host keeps its own references (and releases them before lua_close), the push
 * functions give Lua its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <ltsq.h>
#include <tsq.h>

/* ------------------------------------------------------------------ the machine (C) */

/* What the host knows about the machine it deploys to. */
static const struct { const char *query; long rows; } wmi_facts[] = {
    {"SELECT * FROM Win32_Battery", 1},
    {"SELECT * FROM Win32_ComputerSystem WHERE PCSystemType = 2", 1},
};
static const struct { const char *code; const char *version; } installed[] = {
    {"{90160000-008C-0000-1000-0000000FF1CE}", "16.0.4266.1001"}, /* Office 2016 components */
};

static tsq_status fact_wmi(void *ud, const char *ns, const char *query, long *rows) {
    (void)ud, (void)ns;
    for (size_t i = 0; i < sizeof wmi_facts / sizeof wmi_facts[0]; i++)
        if (strcasecmp(wmi_facts[i].query, query) == 0) {
            *rows = wmi_facts[i].rows;
            return TSQ_OK;
        }
    return TSQ_EFACT; /* a query the host can not answer: the evaluation names it */
}

/* Installed products by ProductCode; UpgradeCodes (upgrade == 1) are looked up the same
 * way because this machine's products use one code for both. */
static tsq_status fact_software(void *ud, const char *code, int upgrade, int *is_installed, const char **version) {
    (void)ud, (void)upgrade;
    *is_installed = 0;
    for (size_t i = 0; i < sizeof installed / sizeof installed[0]; i++)
        if (strcasecmp(installed[i].code, code) == 0) {
            *is_installed = 1;
            if (version) *version = installed[i].version;
        }
    return TSQ_OK;
}

/* ------------------------------------------------------------------ the handler (C) */

/* host.install(step, env) -> exit code, output: a Run Command Line handler for scripts.
 * It "installs" by appending the step's name to the variable InstalledApps of the live
 * environment; a command line that names a .xml it has not got fails with exit code 2. */
static int host_install(lua_State *L) {
    tsq_node *step = ltsq_checknode(L, 1);
    tsq_env *env = ltsq_checkenv(L, 2);
    tsq_value v;
    tsq_error err;
    if (tsq_prop_get(step, "CommandLine", &v, &err) != TSQ_OK || v.type != TSQ_V_STRING)
        return luaL_error(L, "%s: no command line", tsq_node_name(step));
    if (strstr(v.s, ".xml")) {
        lua_pushinteger(L, 2);
        lua_pushfstring(L, "%s: configuration file not found", v.s);
        return 2;
    }
    const char *old = tsq_env_get(env, "InstalledApps");
    lua_pushfstring(L, "%s%s%s", old ? old : "", old ? ";" : "", tsq_node_name(step));
    if (tsq_env_set(env, "InstalledApps", lua_tostring(L, -1)) != TSQ_OK) return luaL_error(L, "out of memory");
    lua_pushinteger(L, 0);
    lua_pushfstring(L, "ran %s", v.s);
    return 2;
}

static int luaopen_host(lua_State *L) {
    static const luaL_Reg fns[] = {{"install", host_install}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}

/* ------------------------------------------------------------------ building in C */

static tsq_node *add_command(tsq_node *group, const char *name, const char *cmd, tsq_error *err) {
    tsq_node *a = NULL;
    if (tsq_action_new(tsq_node_ctx(group), "RunCommandLine", name, &a, err) != TSQ_OK) return NULL;
    tsq_value v;
    memset(&v, 0, sizeof v);
    v.type = TSQ_V_STRING, v.s = cmd, v.len = strlen(cmd);
    tsq_status st = tsq_prop_set(a, "CommandLine", &v, err);
    if (st == TSQ_OK) st = tsq_node_insert(group, (size_t)-1, a, err);
    tsq_node_release(a); /* on success the group's tree holds it */
    return st == TSQ_OK ? a : NULL;
}

/* The host's sequence: Applications { 7-Zip, Office } (+1). */
static tsq_node *build_sequence(tsq_ctx *ctx, tsq_error *err) {
    tsq_node *seq = tsq_sequence_new(ctx), *apps = tsq_group_new(ctx, "Applications");
    tsq_status st = seq && apps ? tsq_node_insert(seq, (size_t)-1, apps, err) : TSQ_ENOMEM;
    tsq_node_release(apps);
    if (st == TSQ_OK && add_command(apps, "7-Zip", "msiexec /i 7z2301-x64.msi /qn", err) &&
        add_command(apps, "Office", "setup.exe /configure office.xml", err))
        return seq;
    if (st == TSQ_ENOMEM) err->code = TSQ_ENOMEM, snprintf(err->message, sizeof err->message, "out of memory");
    tsq_node_release(seq);
    return NULL;
}

/* ------------------------------------------------------------------ reading back */

static void print_problem(void *ud, const tsq_problem *p) {
    (void)ud;
    printf("problem: %s: %s\n", tsq_node_name(p->step), p->message);
}

/* The edited sequence as the host sees it: index path, name, flags, condition text. */
static void print_tree(const tsq_node *seq, tsq_ctx *ctx) {
    tsq_buf b;
    tsq_buf_init(&b, ctx);
    for (tsq_node *s = tsq_node_walk(seq, NULL); s; s = tsq_node_walk(seq, s)) {
        printf("step %-5s %s [%s]%s\n", tsq_node_index_path(s, &b), tsq_node_name(s), tsq_node_type(s),
               tsq_node_continue_on_error(s) ? " continue on error" : "");
        tsq_cond *c = tsq_node_condition(s);
        if (c) printf("     if %s\n", tsq_cond_to_text(c, &b));
        tsq_cond_free(c);
    }
    tsq_buf_free(&b);
}

static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

typedef struct policy {
    tsq_ctx *ctx;
    tsq_node *seq;
    tsq_env *machine;
    int rc;
} policy;

/* read_back(policy, seq, env, cond): the script's results, checked as the binding checks
 * its own arguments (a wrong type raises here, before anything is allocated). */
static int read_back(lua_State *L) {
    policy *p = lua_touserdata(L, 1);
    tsq_node *back = ltsq_checknode(L, 2);
    tsq_env *live = ltsq_checkenv(L, 3);
    tsq_cond *laptop = ltsq_checkcond(L, 4);
    tsq_error err;
    char msg[1200];
    memset(&err, 0, sizeof err);

    printf("returned the host's sequence: %s\n", back == p->seq ? "yes" : "no");
    print_tree(back, p->ctx);
    printf("validation errors: %zu\n", tsq_validate(back, print_problem, NULL));
    const char *apps = tsq_env_get(live, "InstalledApps");
    printf("InstalledApps in the run's environment: %s\n", apps ? apps : "(undefined)");
    apps = tsq_env_get(p->machine, "InstalledApps");
    printf("InstalledApps in the host's environment: %s\n", apps ? apps : "(undefined)");

    /* the script's condition, evaluated in C against the host's own environment */
    int holds = 0;
    tsq_buf b;
    tsq_buf_init(&b, p->ctx);
    if (tsq_cond_eval(laptop, p->machine, &holds, NULL, NULL, &err) == TSQ_OK) {
        printf("condition %s: %s\n", tsq_cond_to_text(laptop, &b), holds ? "true" : "false");
        b.len = 0;
        if (tsq_write(back, &b, &err) == TSQ_OK && !b.failed) {
            fputs(b.data, stdout);
            p->rc = 0;
        }
    }
    if (p->rc) fprintf(stderr, "host_lua: %s\n", tsq_error_format(&err, msg, sizeof msg));
    tsq_buf_free(&b);
    return 0;
}

/* Builds the host's objects, runs the script with them, reads its results back. */
static int run_policy(lua_State *L, const char *script) {
    policy p = {ltsq_context(L), NULL, NULL, 1}; /* objects the script can combine with its own live here */
    tsq_cond *pe_check = NULL;
    tsq_error err;
    memset(&err, 0, sizeof err);
    int top = lua_gettop(L);

    if (!(p.seq = build_sequence(p.ctx, &err)) || !(p.machine = tsq_env_new(p.ctx)) ||
        tsq_env_set(p.machine, "_SMSTSInWinPE", "false") != TSQ_OK ||
        tsq_env_set(p.machine, "OSDComputerName", "PC-0042") != TSQ_OK ||
        tsq_cond_parse(p.ctx, "_SMSTSInWinPE equals \"false\"", &pe_check, &err) != TSQ_OK) {
        char msg[1200];
        fprintf(stderr, "host_lua: %s\n", err.code ? tsq_error_format(&err, msg, sizeof msg) : "out of memory");
        goto done;
    }
    tsq_provider prov;
    memset(&prov, 0, sizeof prov);
    prov.wmi = fact_wmi, prov.software = fact_software;
    tsq_env_set_provider(p.machine, &prov);

    lua_pushcfunction(L, msghandler);
    lua_pushcfunction(L, read_back);
    lua_pushlightuserdata(L, &p);
    if (luaL_loadfile(L, script) != LUA_OK) {
        fprintf(stderr, "host_lua: %s\n", lua_tostring(L, -1));
        goto done;
    }
    ltsq_pushnode(L, p.seq);      /* the same tree: the script's edits are the host's */
    ltsq_pushenv(L, p.machine);   /* a copy, with the same provider */
    ltsq_pushcond(L, pe_check);   /* a copy */
    if (lua_pcall(L, 3, 3, top + 1) != LUA_OK || lua_pcall(L, 4, 0, top + 1) != LUA_OK) {
        fprintf(stderr, "host_lua: %s\n", lua_tostring(L, -1));
        p.rc = 1;
    }
done:
    lua_settop(L, top);
    tsq_cond_free(pe_check);
    tsq_env_free(p.machine);
    tsq_node_release(p.seq); /* Lua keeps its own reference until its box is collected */
    return p.rc;
}

/* Everything that touches Lua runs here, under lua_pcall: an error in the module's
 * opening or in ltsq_check* raises instead of aborting the program. */
static int pmain(lua_State *L) {
    const char *script = lua_touserdata(L, 1);
    int *rc = lua_touserdata(L, 2);
    luaL_openlibs(L);
    lua_gc(L, LUA_GCGEN, 0, 0); /* as lua.c does: the steps a script visits die young */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_tasksequence_core);
    lua_setfield(L, -2, "tasksequence.core");
    lua_pushcfunction(L, luaopen_host);
    lua_setfield(L, -2, "host");
    lua_pop(L, 1);
    lua_getglobal(L, "require"); /* opens the core through the preload: ltsq_context works from here on */
    lua_pushliteral(L, "tasksequence");
    lua_call(L, 1, 0);
    *rc = run_policy(L, script);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: host_lua SCRIPT.lua\n");
        return 1;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "host_lua: can not create a Lua state\n");
        return 1;
    }
    int rc = 1;
    lua_pushcfunction(L, msghandler);
    lua_pushcfunction(L, pmain);
    lua_pushlightuserdata(L, argv[1]);
    lua_pushlightuserdata(L, &rc);
    if (lua_pcall(L, 2, 0, 1) != LUA_OK) {
        fprintf(stderr, "host_lua: %s\n", lua_tostring(L, -1));
        rc = 1;
    }
    lua_close(L); /* frees the state's tsq_ctx after every object made in it */
    return rc;
}
