/*
 * tzemu's retired-instruction counter: a native UC_HOOK_BLOCK callback.
 *
 * AArch64 instructions are 4 bytes, so a translation block of `size` bytes retires size/4
 * instructions. A Python block hook costs ~0.2 us per block; this costs a few ns, so the
 * virtual clock can stay on for whole xtest runs. Compiled on first use by emu/trace/icount.py
 * into the user's cache directory; the Python fallback implements the same struct.
 */
#include <stdint.h>

typedef struct tz_counter {
    uint64_t count;        /* instructions of every block entered so far */
    uint64_t block_base;   /* count before the current block */
    uint64_t block_start;  /* address of the current block */
} tz_counter;

typedef struct tz_blocks {
    tz_counter *counter;   /* the view's counter (its hook runs first) */
    uint64_t n, cap;       /* used / capacity of buf, in uint64 words */
    uint64_t *buf;         /* (address, block_base, size) triples */
    void (*flush)(struct tz_blocks *);
} tz_blocks;

void tz_count(void *uc, uint64_t addr, uint32_t size, tz_counter *c)
{
    c->block_base = c->count;
    c->block_start = addr;
    c->count += size >> 2;
}

void tz_record(void *uc, uint64_t addr, uint32_t size, tz_blocks *b)
{
    uint64_t *p = b->buf + b->n;
    p[0] = addr;
    p[1] = b->counter->block_base;
    p[2] = size;
    b->n += 3;
    if (b->n + 3 > b->cap)
        b->flush(b);
}
