/*
 * tzemu's native trace recorders: Unicorn hook callbacks that only store numbers.
 *
 * tz_count   UC_HOOK_BLOCK: the virtual clock. AArch64 instructions are 4 bytes, so a block of
 *            `size` bytes retires size/4 instructions (a few ns per block, vs ~0.2 us for a
 *            Python block hook), cheap enough to leave on for whole runs.
 * tz_record  UC_HOOK_BLOCK: --blocks, (address, instructions before it, size) per block.
 * tz_insn    UC_HOOK_CODE: --insn, (pc, instruction count, register snapshot) per instruction;
 *            the snapshot is taken *before* the instruction, so it holds the results of the
 *            previous one. tz_leave (UC_HOOK_BLOCK outside the filtered ranges) snapshots the
 *            registers when execution leaves them; tz_mem stores each memory access.
 *
 * Python formats the buffers in bulk when they fill up (the `flush` callback) and at every
 * event and run end, so no Python runs per instruction. Compiled on first use by
 * emu/trace/icount.py into the user's cache directory; the Python fallback keeps the layout.
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

#define TZ_MAX_REGS 40
#define TZ_LEAVE ((uint64_t)-1)

typedef struct tz_insns {
    tz_counter *counter;
    uint64_t n, cap;       /* instruction records: pc, count, nregs values */
    uint64_t *buf;
    uint64_t mn, mcap;     /* memory records: instruction seq, type << 8 | size, address, value */
    uint64_t *mbuf;
    uint64_t seq;          /* instruction records stored since install */
    void (*flush)(struct tz_insns *);
    int (*reg_read_batch)(void *uc, int *regs, void **vals, int count);
    int64_t nregs;
    int regs[TZ_MAX_REGS];
    void *ptrs[TZ_MAX_REGS];
} tz_insns;

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

static void tz_snapshot(void *uc, uint64_t pc, uint64_t count, tz_insns *t)
{
    uint64_t *p = t->buf + t->n;
    int i;
    p[0] = pc;
    p[1] = count;
    for (i = 0; i < t->nregs; i++)
        t->ptrs[i] = p + 2 + i;
    t->reg_read_batch(uc, t->regs, t->ptrs, (int)t->nregs);
    t->n += 2 + t->nregs;
    if (t->n + 2 + t->nregs > t->cap)
        t->flush(t);
}

void tz_insn(void *uc, uint64_t addr, uint32_t size, tz_insns *t)
{
    tz_counter *c = t->counter;
    t->seq++;
    tz_snapshot(uc, addr, c->block_base + ((addr - c->block_start) >> 2), t);
}

void tz_leave(void *uc, uint64_t addr, uint32_t size, tz_insns *t)
{
    t->seq++;             /* later memory accesses belong to code outside the filter */
    tz_snapshot(uc, TZ_LEAVE, 0, t);
}

void tz_mem(void *uc, int type, uint64_t addr, int size, int64_t value, tz_insns *t)
{
    uint64_t *m = t->mbuf + t->mn;
    m[0] = t->seq;
    m[1] = ((uint64_t)type << 8) | (uint64_t)size;
    m[2] = addr;
    m[3] = (uint64_t)value;
    t->mn += 4;
    if (t->mn + 4 > t->mcap)
        t->flush(t);
}
