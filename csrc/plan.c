/* plan.c - what would run: every step in document order against a static environment.
 *
 * A disabled group, a group whose condition is false and a group whose condition can
 * not be evaluated are reported themselves (DISABLED, SKIP_CONDITION, ERROR); their
 * descendants are reported SKIP_PARENT with a reason naming the group, and their
 * conditions are not evaluated (the engine does not enter the group). A condition that
 * can not be evaluated on an action makes it ERROR; the plan goes on. */
#include "cond.h"

#include <stdio.h>

const char *tsq_plan_state_name(tsq_plan_state s) {
    switch (s) {
    case TSQ_PLAN_RUN: return "run";
    case TSQ_PLAN_SKIP_CONDITION: return "skip_condition";
    case TSQ_PLAN_DISABLED: return "disabled";
    case TSQ_PLAN_SKIP_PARENT: return "skip_parent";
    case TSQ_PLAN_ERROR: return "error";
    default: return "unknown";
    }
}

static void report(tsq_plan_fn fn, void *ud, const tsq_node *n, tsq_plan_state s, const char *reason) {
    tsq_plan_entry e;
    e.step = n;
    e.state = s;
    e.reason = reason;
    fn(ud, &e);
}

tsq_status tsq_plan(const tsq_node *seq, tsq_env *env, tsq_plan_fn fn, void *ud, tsq_error *err) {
    if (!seq || !env || !fn) return tsq_err(err, TSQ_EINVAL, "sequence, environment and callback must not be null");
    tsq_error e;
    tsq_buf why, scratch;
    tsq_buf_init(&why, seq->ctx);
    tsq_buf_init(&scratch, seq->ctx);
    tsq_memo memo; /* the environment is static here: each fact can be asked once */
    tsq_memo_init(&memo, seq->ctx);
    int cache = tsq_env_fact_cache(env);
    const tsq_node *n = tsq_node_walk(seq, NULL);
    while (n) {
        tsq_plan_state s;
        const char *reason = NULL;
        int r = 1;
        if (!tsq_node_enabled(n)) {
            s = TSQ_PLAN_DISABLED;
            reason = "disabled";
        } else {
            tsq_status st = tsq_node_eval_fast(n, env, &r, &e, &scratch, cache ? &memo : NULL);
            if (st == TSQ_ENOMEM) {
                tsq_buf_free(&why);
                tsq_buf_free(&scratch);
                tsq_memo_free(&memo);
                return tsq_err(err, TSQ_ENOMEM, "out of memory");
            }
            if (st) {
                s = TSQ_PLAN_ERROR;
                reason = e.message;
            } else if (!r) {
                s = TSQ_PLAN_SKIP_CONDITION;
                reason = "condition is false";
            } else {
                s = TSQ_PLAN_RUN;
            }
        }
        report(fn, ud, n, s, reason);
        if (s == TSQ_PLAN_RUN || n->type != N_GROUP || !tsq_node_first(n)) {
            n = tsq_node_walk(seq, n);
            continue;
        }
        /* the group is not entered: its steps are skipped with it */
        why.len = 0;
        tsq_buf_adds(&why, "group '");
        tsq_buf_adds(&why, tsq_node_name(n));
        tsq_buf_adds(&why, s == TSQ_PLAN_DISABLED ? "' is disabled"
                           : s == TSQ_PLAN_ERROR  ? "' could not be evaluated"
                                                  : "' is skipped by its condition");
        if (why.failed) {
            tsq_buf_free(&why);
            tsq_buf_free(&scratch);
            tsq_memo_free(&memo);
            return tsq_err(err, TSQ_ENOMEM, "out of memory");
        }
        const tsq_node *last = n;
        for (const tsq_node *d = tsq_node_walk(n, NULL); d; d = tsq_node_walk(n, d)) {
            report(fn, ud, d, TSQ_PLAN_SKIP_PARENT, why.data);
            last = d;
        }
        n = tsq_node_walk(seq, last);
    }
    tsq_buf_free(&why);
    tsq_buf_free(&scratch);
    tsq_memo_free(&memo);
    return TSQ_OK;
}
