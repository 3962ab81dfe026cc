/* run.h - internals of the execution engine (run.c) and its generated message table
 * (build/gen/tsq_messages.c, from csrc/messages.tsv by tools/gen_messages.lua). */
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

#endif
