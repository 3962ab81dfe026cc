/* run.h - internals of the execution engine (run.c: the walk and its records; run_rules.c:
 * action variables, Set Task Sequence Variable, Set Dynamic Variables) and its generated
 * message table (build/gen/tsq_messages.c, from csrc/messages.tsv by tools/gen_messages.lua). */
#ifndef TSQ_RUN_H
#define TSQ_RUN_H

#include "tsq_int.h"

/* The events the engine reports; their IDs and names come only from messages.tsv
 * (column `event`), never from C. */
typedef enum tsq_msg {
    TSQ_MSG_SEQ_START,       /* sequence started (Step 0) */
    TSQ_MSG_GROUP_START,     /* group entered */
    TSQ_MSG_GROUP_OK,        /* group finished, every child ran or had its failure ignored */
    TSQ_MSG_GROUP_FAILED,    /* a failure left the group */
    TSQ_MSG_GROUP_IGNORED,   /* group failure ignored (group ContinueOnError) */
    TSQ_MSG_ACTION_DISABLED, /* disabled action skipped */
    TSQ_MSG_GROUP_DISABLED,  /* disabled group skipped */
    TSQ_MSG_ACTION_SKIPPED,  /* action condition false */
    TSQ_MSG_GROUP_SKIPPED,   /* group condition false */
    TSQ_MSG_ACTION_OK,
    TSQ_MSG_ACTION_FAILED,
    TSQ_MSG_ACTION_IGNORED,  /* after TSQ_MSG_ACTION_FAILED, action ContinueOnError */
    TSQ_MSG_REBOOT,          /* reboot initiated by an action */
    TSQ_MSG_SEQ_OK,
    TSQ_MSG_SEQ_FAILED,
    TSQ_MSG_MGR_OK,          /* manager: deployment succeeded (after TSQ_MSG_SEQ_OK) */
    TSQ_MSG_MGR_FAILED,      /* manager: deployment failed (after TSQ_MSG_SEQ_FAILED) */
    TSQ_MSG__COUNT
} tsq_msg;

typedef struct tsq_msgdef {
    uint32_t id;
    const char *name;      /* LastStatusMsgName */
    const char *severity;  /* "Info", "Warning", "Error" */
    const char *component; /* "Task Sequence Engine", "Task Sequence Manager", ... */
} tsq_msgdef;

extern const tsq_msgdef tsq_msg_table[];  /* every message of messages.tsv, sorted by id */
extern const size_t tsq_msg_table_count;
extern const tsq_msgdef tsq_msg_event[TSQ_MSG__COUNT]; /* id 0: the table lacks the event */

/* ------------------------------------------------------------------ engine (run.c, run_rules.c) */

/* engine-level failures that have no process exit code */
#define EXIT_E_FAIL ((int32_t)0x80004005)         /* E_FAIL */
#define EXIT_ACCESSDENIED ((int32_t)0x80070005)   /* read-only variable */
#define EXIT_INVALIDARG ((int32_t)0x80070057)     /* a step missing what it needs */
#define EXIT_NOTFOUND ((int32_t)0x80070002)       /* child sequence not loadable */
#define EXIT_NOTSUPPORTED ((int32_t)0x80070032)   /* wrong SupportedEnvironment */
#define EXIT_TIMEOUT ((int32_t)0x800705B4)        /* Timeout elapsed */
#define EXIT_REBOOT 3010                          /* ERROR_SUCCESS_REBOOT_REQUIRED */

#define MAX_RULE_DEPTH 64

typedef struct injected {
    const char *name;  /* borrowed from the step's <variable> */
    const char *value; /* the value placed */
} injected;

typedef struct handler_ref {
    const tsq_handler_entry *h;
    const char *full; /* catalogue full name of h->type, or NULL */
} handler_ref;

typedef struct engine {
    tsq_ctx *ctx;
    const tsq_run_opts *opts;
    tsq_run *run;
    tsq_env *env;
    const char *adv, *pkg; /* arena copies */
    handler_ref *handlers; /* opts->nhandlers slots; "default" is not among them */
    size_t nhandlers;
    const tsq_handler_entry *fallback; /* "default" */
    injected *inj;
    size_t ninj, capinj;
    tsq_node **loaded; /* child sequences, released after the run */
    size_t nloaded, caploaded;
    uint32_t next_base; /* first number for the next loaded child */
    uint32_t reboots, max_reboots;
    int sub_depth;
    int abort;          /* stop everything: too many reboots, out of memory */
    int oom;
    int32_t fail_code;  /* exit code of the failure being propagated */
    const char *abort_msg;
    const char *last_name_src, *last_name_copy; /* ActionName copy reuse */
} engine;

typedef struct outcome {
    int ok;
    int restart; /* the handler reported an unexpected restart */
    int32_t code;
} outcome;

/* run.c */
void tsq_eng_set_oom(engine *e);
void tsq_eng_env_set(engine *e, const char *name, const char *value);
const char *tsq_eng_attr(const tsq_node *n, int atom);
const char *tsq_eng_dvar(const tsq_node *n, const char *property);
int tsq_eng_is_true(const char *s);

/* run_rules.c */
size_t tsq_eng_inject(engine *e, const tsq_node *a);
void tsq_eng_uninject(engine *e, size_t mark);
void tsq_eng_set_globals(engine *e, const tsq_node *seq);
outcome tsq_eng_fail_with(tsq_buf *out, int32_t code, const char *msg);
outcome tsq_eng_builtin_setvar(engine *e, const tsq_node *a, tsq_buf *out);
outcome tsq_eng_builtin_dynvars(engine *e, const tsq_node *a, tsq_buf *out);

#endif
