/*
 * tsq_main.c - the `tsq` command: a Lua 5.4 host with tasksequence.core preloaded.
 *
 * Embeds Lua the way lua.c does: a protected main (pmain) run through lua_pcall with a
 * traceback handler, exit status 1 on error. `tsq run SCRIPT [ARGS...]` runs a script
 * with `arg` set as lua sets it; every other subcommand is
 * require("tasksequence.cli").main(cmd, args). `tsq apply --jobs N` runs N worker
 * threads, each with its own lua_State, over a shared, mutex-protected file index.
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

#define MAX_JOBS 64

static const char *progname = "tsq";

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

/* What the host offers its scripts beyond the module ("tasksequence.host"). */
static int luaopen_host(lua_State *L) {
    static const luaL_Reg fns[] = {{"isatty", host_isatty}, {"mode", host_mode}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushstring(L, TSQ_VERSION);
    lua_setfield(L, -2, "version");
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

static lua_State *new_state(void) {
    lua_State *L = luaL_newstate();
    if (!L) return NULL;
    luaL_openlibs(L);
    set_paths(L);
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

typedef struct job {
    char **argv;      /* the apply arguments (for cli.apply_prepare in each worker) */
    int argc;
    size_t nfiles;
    char **files;     /* from the main state's prepare */
    char **results;   /* per file: the status line block cli.apply_one returned */
    int *failed;      /* per file: 1 when it failed */
    int *changed;     /* per file: 1 changed, 0 unchanged, -1 failed */
    size_t next;      /* next file to take */
    int stop;         /* set when a file failed without --continue-on-error */
    int keep_going;
    int tty;          /* stderr is a terminal: draw a progress bar */
    size_t done;
    pthread_mutex_t lock;
    char *fatal;      /* first worker setup error */
} job;

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* In a worker's state: pushes cli.apply_worker(args) -> function(path) -> line, status. */
static int worker_setup(lua_State *L, job *j) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tasksequence.cli");
    int status = docall(L, 1, 1);
    if (status != LUA_OK) return status;
    lua_getfield(L, -1, "apply_worker");
    lua_remove(L, -2);
    lua_createtable(L, j->argc, 0);
    for (int i = 0; i < j->argc; i++) {
        lua_pushstring(L, j->argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return docall(L, 1, 1);
}

static void progress(size_t done, size_t total) {
    enum { W = 30 };
    char bar[W + 1];
    size_t fill = total ? done * W / total : W;
    for (size_t i = 0; i < W; i++) bar[i] = i < fill ? '#' : ' ';
    bar[W] = '\0';
    fprintf(stderr, "\r[%s] %zu/%zu%s", bar, done, total, done == total ? "\n" : "");
    fflush(stderr);
}

static void *worker_main(void *ud) {
    job *j = ud;
    lua_State *L = new_state();
    if (!L) {
        pthread_mutex_lock(&j->lock);
        if (!j->fatal) j->fatal = dup_str("not enough memory for a Lua state");
        j->stop = 1;
        pthread_mutex_unlock(&j->lock);
        return NULL;
    }
    int status = worker_setup(L, j);
    if (status != LUA_OK) {
        pthread_mutex_lock(&j->lock);
        if (!j->fatal) j->fatal = dup_str(lua_tostring(L, -1) ? lua_tostring(L, -1) : "worker setup failed");
        j->stop = 1;
        pthread_mutex_unlock(&j->lock);
        lua_close(L);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&j->lock);
        size_t i = j->next;
        if (j->stop || i >= j->nfiles) {
            pthread_mutex_unlock(&j->lock);
            break;
        }
        j->next++;
        pthread_mutex_unlock(&j->lock);

        lua_pushvalue(L, -1);
        lua_pushstring(L, j->files[i]);
        int st = docall(L, 1, 2);
        const char *line;
        int outcome;
        if (st != LUA_OK) {
            line = lua_tostring(L, -1);
            outcome = -1;
        } else {
            line = lua_tostring(L, -2);
            outcome = (int)lua_tointeger(L, -1); /* 1 changed, 0 unchanged, -1 failed */
        }
        char *copy = dup_str(line ? line : "");
        lua_pop(L, st != LUA_OK ? 1 : 2);
        pthread_mutex_lock(&j->lock);
        j->results[i] = copy;
        j->changed[i] = outcome;
        j->failed[i] = outcome < 0;
        if (outcome < 0 && !j->keep_going) j->stop = 1;
        j->done++;
        if (j->tty) progress(j->done, j->nfiles);
        pthread_mutex_unlock(&j->lock);
    }
    lua_close(L);
    return NULL;
}

/* `tsq apply ... --jobs N` with N > 1. The main state lists the files and prints;
 * workers transform. Returns the exit status. */
static int apply_parallel(lua_State *L, int argc, char **argv, int first, int jobs, int *code) {
    job j;
    memset(&j, 0, sizeof j);
    j.argv = argv + first + 1;
    j.argc = argc - first - 1;
    /* cli.apply_prepare(args) -> { files = {...}, keep_going = bool } or raises */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tasksequence.cli");
    int status = docall(L, 1, 1);
    if (status != LUA_OK) return status;
    int cli = lua_gettop(L);
    lua_getfield(L, cli, "apply_prepare");
    lua_createtable(L, j.argc, 0);
    for (int i = 0; i < j.argc; i++) {
        lua_pushstring(L, j.argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    status = docall(L, 1, 1);
    if (status != LUA_OK) return status;
    int prep = lua_gettop(L);
    lua_getfield(L, prep, "keep_going");
    j.keep_going = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, prep, "opts");
    lua_getfield(L, -1, "diff");
    j.tty = isatty(2) && !lua_toboolean(L, -1);
    lua_pop(L, 2);
    lua_getfield(L, prep, "files");
    j.nfiles = (size_t)luaL_len(L, -1);
    size_t n = j.nfiles ? j.nfiles : 1;
    j.files = calloc(n, sizeof *j.files);
    j.results = calloc(n, sizeof *j.results);
    j.failed = calloc(n, sizeof *j.failed);
    j.changed = calloc(n, sizeof *j.changed);
    int ok = j.files && j.results && j.failed && j.changed;
    for (size_t i = 0; ok && i < j.nfiles; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        j.files[i] = dup_str(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
        if (!j.files[i]) ok = 0;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    pthread_t tids[MAX_JOBS];
    int started = 0;
    if (ok && pthread_mutex_init(&j.lock, NULL) == 0) {
        for (int t = 0; t < jobs && (size_t)t < n; t++) {
            if (pthread_create(&tids[started], NULL, worker_main, &j) == 0) started++;
        }
        for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
        if (j.tty && j.done < j.nfiles) fputc('\n', stderr);
        pthread_mutex_destroy(&j.lock);
    }
    if (!ok || started == 0) {
        lua_pushstring(L, j.fatal ? j.fatal : "can not start worker threads");
        status = LUA_ERRRUN;
    } else if (j.fatal) {
        lua_pushstring(L, j.fatal);
        status = LUA_ERRRUN;
    } else {
        /* cli.apply_finish(prep, results, outcomes) prints in file order -> exit status */
        lua_getfield(L, cli, "apply_finish");
        lua_pushvalue(L, prep);
        lua_createtable(L, (int)j.nfiles, 0);
        lua_createtable(L, (int)j.nfiles, 0);
        for (size_t i = 0; i < j.nfiles; i++) {
            if (j.results[i]) {
                lua_pushstring(L, j.results[i]);
                lua_rawseti(L, -3, (lua_Integer)i + 1);
                lua_pushinteger(L, j.changed[i]);
                lua_rawseti(L, -2, (lua_Integer)i + 1);
            }
        }
        status = docall(L, 3, 1);
        if (status == LUA_OK) {
            *code = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    }
    for (size_t i = 0; i < j.nfiles; i++) {
        if (j.files) free(j.files[i]);
        if (j.results) free(j.results[i]);
    }
    free(j.files);
    free(j.results);
    free(j.failed);
    free(j.changed);
    free(j.fatal);
    if (status == LUA_OK) lua_settop(L, cli - 1);
    return status;
}

/* The --jobs N of an apply command line (1 when absent); -1 when malformed. */
static int jobs_of(int argc, char **argv, int first) {
    for (int i = first + 1; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--jobs") == 0 || strcmp(argv[i], "-j") == 0) v = i + 1 < argc ? argv[i + 1] : "";
        else if (strncmp(argv[i], "--jobs=", 7) == 0) v = argv[i] + 7;
        if (!v) continue;
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || *end || end == v || n < 1) return -1;
        return n > MAX_JOBS ? MAX_JOBS : (int)n;
    }
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
    luaL_openlibs(L);
    set_paths(L);
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
    } else if (strcmp(argv[1], "apply") == 0) {
        int jobs = jobs_of(argc, argv, 1);
        if (jobs < 0) return luaL_error(L, "apply: --jobs wants a positive integer");
        if (jobs > 1) status = apply_parallel(L, argc, argv, 1, jobs, &m->code);
        else status = run_cli(L, argc, argv, 1, &m->code);
    } else {
        status = run_cli(L, argc, argv, 1, &m->code);
    }
    if (status != LUA_OK) return lua_error(L);
    return 0;
}

int main(int argc, char **argv) {
    if (argv[0] && argv[0][0]) progname = argv[0];
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
        return EXIT_FAILURE;
    }
    margs m = {argc, argv, 0};
    lua_pushcfunction(L, pmain);
    lua_pushlightuserdata(L, &m);
    int status = lua_pcall(L, 1, 0, 0); /* errors from inside carry their traceback already */
    report(L, status);
    lua_close(L);
    if (status != LUA_OK) return EXIT_FAILURE;
    return m.code;
}
