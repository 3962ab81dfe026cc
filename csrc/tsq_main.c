/*
 * tsq_main.c - the `tsq` command: a Lua 5.4 host with tasksequence.core preloaded.
 *
 * Embeds Lua the way lua.c does: a protected main (pmain) run through lua_pcall with a
 * traceback handler, exit status 1 on error. `tsq run SCRIPT [ARGS...]` runs a script
 * with `arg` set as lua sets it; every other subcommand is
 * require("tasksequence.cli").main(cmd, args). The module "tasksequence.host" gives the
 * scripts what plain Lua lacks: isatty, file modes, and parallel_apply, which runs
 * `tsq apply --jobs N` as N worker threads, each with its own lua_State.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#include "ltsq.h"
#include "tsq.h"

#define MAX_JOBS 64 /* host.max_jobs: tasksequence.apply caps --jobs with it */

static const char *progname = "tsq";

/* ------------------------------------------------------------------ the states' allocator */

/* A script makes and drops small blocks by the hundred thousand (a box, a string, a table
 * per step), and Lua gives every block back with its size. So each state of this host
 * allocates through a tsq context of its own (tsq_realloc): blocks of up to 1 KiB come
 * from the context's free lists, larger ones from malloc, and everything goes back when
 * the state is closed. This keeps the churn out of malloc's bins, where it also made the
 * core's own large requests slow (each one consolidated the small blocks freed since the
 * last). TSQ_NO_POOL=1 turns the free lists off, as for every context. */
static void *state_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    return tsq_realloc(ud, ptr, osize, nsize); /* osize is ignored when ptr is NULL */
}

static int panic(lua_State *L) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
    fprintf(stderr, "%s: PANIC: unprotected error in call to Lua API (%s)\n", progname, msg);
    return 0; /* abort */
}

/* Warnings as lua.c has them (through luaL_newstate): off until a script warns "@on". */
static void warn_on(void *ud, const char *msg, int tocont);
static void warn_off(void *ud, const char *msg, int tocont);

static int warn_control(lua_State *L, const char *msg, int tocont) {
    if (tocont || *msg++ != '@') return 0;
    if (strcmp(msg, "off") == 0) lua_setwarnf(L, warn_off, L);
    else if (strcmp(msg, "on") == 0) lua_setwarnf(L, warn_on, L);
    return 1;
}

static void warn_off(void *ud, const char *msg, int tocont) { warn_control((lua_State *)ud, msg, tocont); }

static void warn_cont(void *ud, const char *msg, int tocont) {
    fputs(msg, stderr);
    if (tocont) {
        lua_setwarnf((lua_State *)ud, warn_cont, ud);
    } else {
        fputs("\n", stderr);
        fflush(stderr);
        lua_setwarnf((lua_State *)ud, warn_on, ud);
    }
}

static void warn_on(void *ud, const char *msg, int tocont) {
    if (warn_control((lua_State *)ud, msg, tocont)) return;
    fputs("Lua warning: ", stderr);
    warn_cont(ud, msg, tocont);
}

/* A state that allocates through a context of its own; close it with close_state. */
static lua_State *pooled_state(void) {
    tsq_ctx *ctx = tsq_ctx_new(NULL, NULL);
    if (!ctx) return NULL;
    lua_State *L = lua_newstate(state_alloc, ctx);
    if (!L) {
        tsq_ctx_free(ctx);
        return NULL;
    }
    lua_atpanic(L, panic);
    lua_setwarnf(L, warn_off, L);
    return L;
}

static void close_state(lua_State *L) {
    void *ctx = NULL;
    lua_getallocf(L, &ctx);
    lua_close(L);
    tsq_ctx_free(ctx);
}

/* ------------------------------------------------------------------ states */

static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* The directory holding the executable ("" when unknown), into buf. */
static const char *exe_dir(char *buf, size_t size) {
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0) {
        buf[0] = '\0';
        return buf;
    }
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash) *slash = '\0';
    else buf[0] = '\0';
    return buf;
}

/* host.isatty(fd): whether stdin (0), stdout (1) or stderr (2) is a terminal. */
static int host_isatty(lua_State *L) {
    lua_Integer fd = luaL_optinteger(L, 1, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "file descriptor 0, 1 or 2 expected");
    lua_pushboolean(L, isatty((int)fd));
    return 1;
}

/* host.mode(path) -> permission bits, or nil, message. */
static int host_mode(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    return 1;
}

static int host_parallel_apply(lua_State *L);

/* What the host offers its scripts beyond the module ("tasksequence.host"). */
static int luaopen_host(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"isatty", host_isatty}, {"mode", host_mode}, {"parallel_apply", host_parallel_apply}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushstring(L, TSQ_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, MAX_JOBS);
    lua_setfield(L, -2, "max_jobs");
    return 1;
}

/* package.path gains the build tree (<exe>/../../lua) and the install tree
 * (<exe>/../share/lua/5.4) after what LUA_PATH says. */
static void set_paths(lua_State *L) {
    char dir[PATH_MAX];
    exe_dir(dir, sizeof dir);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    const char *old = lua_tostring(L, -1);
    if (dir[0])
        lua_pushfstring(L, "%s;%s/../../lua/?.lua;%s/../../lua/?/init.lua;"
                           "%s/../share/lua/" LUA_VERSION_MAJOR "." LUA_VERSION_MINOR "/?.lua;"
                           "%s/../share/lua/" LUA_VERSION_MAJOR "." LUA_VERSION_MINOR "/?/init.lua",
                        old ? old : "", dir, dir, dir, dir);
    else
        lua_pushstring(L, old ? old : "");
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
    /* package.preload["tasksequence.core"] */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_tasksequence_core);
    lua_setfield(L, -2, "tasksequence.core");
    lua_pushcfunction(L, luaopen_host);
    lua_setfield(L, -2, "tasksequence.host");
    lua_pop(L, 1);
}

/* What every state of the host gets: the standard libraries, the collector in
 * generational mode as lua.c sets it (most boxes a script makes die young), the paths. */
static void open_state(lua_State *L) {
    luaL_openlibs(L);
    lua_gc(L, LUA_GCGEN, 0, 0);
    set_paths(L);
}

static lua_State *new_state(void) {
    lua_State *L = pooled_state();
    if (L) open_state(L);
    return L;
}

/* Runs the function below it with n arguments under the traceback handler. */
static int docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    int status = lua_pcall(L, narg, nres, base);
    lua_remove(L, base);
    return status;
}

static void report(lua_State *L, int status) {
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error object is not a string)");
        fflush(stderr);
        lua_pop(L, 1);
    }
}

/* ------------------------------------------------------------------ help */

static const char *const usage_text =
    "usage: tsq COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  run SCRIPT [ARGS...]        run a Lua script with the tasksequence module\n"
    "  show FILE                   the step tree with conditions and index paths\n"
    "  eval FILE [--var N=V]... [--machine M.lua]\n"
    "                              which steps would run, and why the others would not\n"
    "  simulate FILE [--var N=V]... [--exit \"STEP=CODE\"]... [--machine M.lua]\n"
    "           [--format table|csv|json]   run it, print execution status records\n"
    "  validate FILE...            problems, as 'file: step path: message'\n"
    "  to-lua FILE                 a Lua script that rebuilds the document\n"
    "  build SCRIPT.lua [-o OUT]   run a script returning a sequence; save or print its XML\n"
    "  fmt FILE...                 rewrite files in one canonical layout\n"
    "  diff A B [--format json]    structural differences (exit 1 when different)\n"
    "  apply SCRIPT FILE_OR_DIR... [--jobs N] [--dry-run] [--diff] [--backup SUFFIX]\n"
    "        [--continue-on-error]  run function(seq, path) over many documents\n"
    "  help [COMMAND]              this text, or one command's\n"
    "  --version                   the version\n";

/* ------------------------------------------------------------------ run */

/* `tsq run SCRIPT ARGS...`: arg[0] = SCRIPT, arg[1..] = ARGS, arg[-1] = progname... */
static int run_script(lua_State *L, int argc, char **argv, int script) {
    lua_createtable(L, argc - script - 1, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
    const char *fname = strcmp(argv[script], "-") == 0 ? NULL : argv[script];
    int status = luaL_loadfile(L, fname);
    if (status != LUA_OK) return status;
    int n = argc - script - 1;
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
    return docall(L, n, 0);
}

/* Every other command: require("tasksequence.cli").main(cmd, {args}) -> exit status. */
static int run_cli(lua_State *L, int argc, char **argv, int first, int *code) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tasksequence.cli");
    int status = docall(L, 1, 1);
    if (status != LUA_OK) return status;
    lua_getfield(L, -1, "main");
    lua_pushstring(L, argv[first]);
    lua_createtable(L, argc - first - 1, 0);
    for (int i = first + 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - first);
    }
    status = docall(L, 2, 1);
    if (status != LUA_OK) return status;
    *code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : (lua_toboolean(L, -1) || lua_isnil(L, -1) ? 0 : 1);
    lua_pop(L, 2);
    return LUA_OK;
}

/* ------------------------------------------------------------------ apply --jobs */

/* host.parallel_apply(args, files, jobs, keep_going, report): `tsq apply --jobs N`.
 * N worker threads, each with its own lua_State running
 * require("tasksequence.apply").worker(args), take files in list order; the calling thread
 * alone prints: it calls report(i, line, outcome) in file order as results arrive.
 * Without keep_going a failure stops the taking of files, and a worker about to save file
 * i first waits (gate) until every file before i is done: if one of them failed, i is not
 * saved. So --jobs N saves and reports exactly what one job would. */
typedef struct job {
    const char **args;  /* the apply arguments: strings of the caller's table */
    size_t nargs;
    const char **files; /* the file list: strings of the caller's table */
    size_t nfiles;
    char **lines;       /* per file: the report line (malloc'd by a worker) */
    int *outcome;       /* per file: 1 changed, 0 unchanged, -1 failed */
    unsigned char *done;
    size_t next;        /* next file to take */
    size_t prefix;      /* files [0, prefix) are all done */
    size_t first_fail;  /* index of the first failed file; nfiles when none */
    int keep_going;
    int stop;           /* take no more files */
    int running;        /* workers not yet finished */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a file done, a worker finished */
    char fatal[512];    /* first worker setup error */
} job;

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void job_fatal(job *j, const char *msg) {
    pthread_mutex_lock(&j->lock);
    if (!j->fatal[0]) snprintf(j->fatal, sizeof j->fatal, "%s", msg ? msg : "worker setup failed");
    j->stop = 1;
    j->first_fail = 0; /* a waiting gate gives up */
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
}

/* gate() in a worker state: true when file i may be saved (upvalues: job, i). */
static int worker_gate(lua_State *L) {
    job *j = lua_touserdata(L, lua_upvalueindex(1));
    size_t i = (size_t)lua_tointeger(L, lua_upvalueindex(2));
    pthread_mutex_lock(&j->lock);
    while (!j->keep_going && j->prefix < i && j->first_fail > i) pthread_cond_wait(&j->cond, &j->lock);
    int ok = j->keep_going || j->first_fail > i;
    pthread_mutex_unlock(&j->lock);
    lua_pushboolean(L, ok);
    return 1;
}

/* In a worker's state: pushes apply.worker(args), function(path, gate) -> line, outcome. */
static int worker_setup(lua_State *L, job *j) {
    /* the workers already keep the CPUs busy: no second parser beside each */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tasksequence.core");
    int st = docall(L, 1, 0);
    if (st != LUA_OK) return st;
    tsq_ctx_set_read_thread(ltsq_context(L), 0);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tasksequence.apply");
    int status = docall(L, 1, 1);
    if (status != LUA_OK) return status;
    lua_getfield(L, -1, "worker");
    lua_remove(L, -2);
    lua_createtable(L, (int)j->nargs, 0);
    for (size_t i = 0; i < j->nargs; i++) {
        lua_pushstring(L, j->args[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return docall(L, 1, 1);
}

static void worker_loop(lua_State *L, job *j) {
    for (;;) {
        pthread_mutex_lock(&j->lock);
        size_t i = j->next;
        if (j->stop || i >= j->nfiles) {
            pthread_mutex_unlock(&j->lock);
            return;
        }
        j->next++;
        pthread_mutex_unlock(&j->lock);

        lua_pushvalue(L, -1);
        lua_pushstring(L, j->files[i]);
        lua_pushlightuserdata(L, j);
        lua_pushinteger(L, (lua_Integer)i);
        lua_pushcclosure(L, worker_gate, 2);
        int st = docall(L, 2, 2);
        const char *line = lua_tostring(L, st == LUA_OK ? -2 : -1);
        int outcome = st == LUA_OK ? (int)lua_tointeger(L, -1) : -1;
        char *copy = dup_str(line ? line : "");
        if (!copy) outcome = -1; /* reported as an empty failure line */
        lua_pop(L, st == LUA_OK ? 2 : 1);

        pthread_mutex_lock(&j->lock);
        j->lines[i] = copy;
        j->outcome[i] = outcome;
        j->done[i] = 1;
        if (outcome < 0 && i < j->first_fail) {
            j->first_fail = i;
            if (!j->keep_going) j->stop = 1;
        }
        while (j->prefix < j->nfiles && j->done[j->prefix]) j->prefix++;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
    }
}

static void *worker_main(void *ud) {
    job *j = ud;
    lua_State *L = new_state();
    if (!L) {
        job_fatal(j, "not enough memory for a Lua state");
    } else if (worker_setup(L, j) != LUA_OK) {
        job_fatal(j, lua_tostring(L, -1));
    } else {
        worker_loop(L, j);
    }
    if (L) close_state(L);
    pthread_mutex_lock(&j->lock);
    j->running--;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* Run under lua_pcall in the calling state: report(i, line, outcome) in file order.
 * The lock is never held across a Lua call. */
static int report_loop(lua_State *L) {
    job *j = lua_touserdata(L, 1);
    size_t shown = 0;
    pthread_mutex_lock(&j->lock);
    for (;;) {
        while (shown < j->nfiles && !j->done[shown] && j->running > 0) pthread_cond_wait(&j->cond, &j->lock);
        if (shown >= j->nfiles || !j->done[shown] || j->fatal[0]) break;
        const char *line = j->lines[shown];
        int outcome = j->outcome[shown];
        pthread_mutex_unlock(&j->lock);
        lua_pushvalue(L, 2);
        lua_pushinteger(L, (lua_Integer)shown + 1);
        lua_pushstring(L, line ? line : "");
        lua_pushinteger(L, outcome);
        lua_call(L, 3, 0);
        pthread_mutex_lock(&j->lock);
        free(j->lines[shown]);
        j->lines[shown] = NULL;
        shown++;
        if (outcome < 0 && !j->keep_going) break;
    }
    pthread_mutex_unlock(&j->lock);
    return 0;
}

/* Strings of the array at idx into out (they stay alive: the table is an argument). */
static void check_strings(lua_State *L, int idx, const char **out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (lua_rawgeti(L, idx, (lua_Integer)i + 1) != LUA_TSTRING) luaL_argerror(L, idx, "array of strings expected");
        out[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
}

static int host_parallel_apply(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer jobs = luaL_checkinteger(L, 3);
    luaL_argcheck(L, jobs >= 1 && jobs <= MAX_JOBS, 3, lua_pushfstring(L, "between 1 and %d jobs expected", MAX_JOBS));
    int keep_going = lua_toboolean(L, 4);
    luaL_checktype(L, 5, LUA_TFUNCTION);
    lua_settop(L, 5);
    size_t nargs = (size_t)luaL_len(L, 1), nfiles = (size_t)luaL_len(L, 2);
    luaL_argcheck(L, nargs < ((size_t)1 << 20) && nfiles < ((size_t)1 << 40), 2, "too many");
    /* the job and its arrays live in one userdata, so a raise here frees them */
    size_t size = sizeof(job) + (nargs + 2 * nfiles) * sizeof(char *) + nfiles * (sizeof(int) + 1);
    job *j = lua_newuserdatauv(L, size, 0); /* index 6 */
    memset(j, 0, size);
    j->args = (const char **)(j + 1);
    j->files = j->args + nargs;
    j->lines = (char **)(j->files + nfiles);
    j->outcome = (int *)(j->lines + nfiles);
    j->done = (unsigned char *)(j->outcome + nfiles);
    j->nargs = nargs;
    j->nfiles = nfiles;
    j->first_fail = nfiles;
    j->keep_going = keep_going;
    check_strings(L, 1, j->args, nargs);
    check_strings(L, 2, j->files, nfiles);
    if (pthread_mutex_init(&j->lock, NULL) != 0) return luaL_error(L, "can not create a mutex");
    if (pthread_cond_init(&j->cond, NULL) != 0) {
        pthread_mutex_destroy(&j->lock);
        return luaL_error(L, "can not create a condition variable");
    }
    pthread_t tids[MAX_JOBS];
    int started = 0;
    for (lua_Integer t = 0; t < jobs && (size_t)t < nfiles; t++) {
        pthread_mutex_lock(&j->lock);
        j->running++;
        pthread_mutex_unlock(&j->lock);
        if (pthread_create(&tids[started], NULL, worker_main, j) == 0) {
            started++;
        } else {
            pthread_mutex_lock(&j->lock);
            j->running--;
            pthread_mutex_unlock(&j->lock);
        }
    }
    int status = LUA_OK;
    if (started > 0) {
        lua_pushcfunction(L, report_loop);
        lua_pushlightuserdata(L, j);
        lua_pushvalue(L, 5);
        status = lua_pcall(L, 2, 0, 0);
    }
    /* stop the workers (they finish the file in hand), then release what they made */
    pthread_mutex_lock(&j->lock);
    j->stop = 1;
    if (status != LUA_OK) j->first_fail = 0;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
    for (size_t i = 0; i < nfiles; i++) free(j->lines[i]);
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->lock);
    if (status != LUA_OK) return lua_error(L);
    if (started == 0 || j->fatal[0]) {
        luaL_pushfail(L);
        lua_pushstring(L, j->fatal[0] ? j->fatal : "can not start worker threads");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ main */

typedef struct margs {
    int argc;
    char **argv;
    int code; /* the exit status the command asked for */
} margs;

static int pmain(lua_State *L) {
    margs *m = lua_touserdata(L, 1);
    int argc = m->argc;
    char **argv = m->argv;
    luaL_checkversion(L);
    open_state(L);
    m->code = 0;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        (strcmp(argv[1], "help") == 0 && argc < 3)) {
        fputs(usage_text, stdout);
        if (argc < 2) m->code = 1;
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("tsq %s (%s)\n", tsq_version(), LUA_RELEASE);
        return 0;
    }
    int status;
    if (strcmp(argv[1], "run") == 0) {
        if (argc < 3) return luaL_error(L, "run: a script is required (tsq run SCRIPT [ARGS...])");
        status = run_script(L, argc, argv, 2);
    } else {
        status = run_cli(L, argc, argv, 1, &m->code);
    }
    if (status != LUA_OK) return lua_error(L);
    return 0;
}

int main(int argc, char **argv) {
    if (argv[0] && argv[0][0]) progname = argv[0];
    lua_State *L = pooled_state();
    if (L == NULL) {
        fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
        return EXIT_FAILURE;
    }
    margs m = {argc, argv, 0};
    lua_pushcfunction(L, pmain);
    lua_pushlightuserdata(L, &m);
    int status = lua_pcall(L, 1, 0, 0); /* errors from inside carry their traceback already */
    report(L, status);
    ltsq_exiting(L); /* the documents still open go with the process, not node by node */
    close_state(L);
    if (status != LUA_OK) return EXIT_FAILURE;
    return m.code;
}
