/* spy.h - an allocator for the C specs of reading in two halves: malloc, noting a call
 * from another thread than the one that made the context (the helper read), and counting
 * calls without atomics, so that ThreadSanitizer reports two calls at the same time. */
#ifndef TSQ_SPY_H
#define TSQ_SPY_H
#include <pthread.h>
#include <stdlib.h>

typedef struct spy {
    pthread_t owner;
    int helper;
    size_t calls;
} spy;

static void *spy_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    spy *s = ud;
    (void)osize;
    if (!pthread_equal(pthread_self(), s->owner)) __atomic_store_n(&s->helper, 1, __ATOMIC_RELAXED);
    s->calls++;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}
#endif
