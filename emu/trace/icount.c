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
#include <stdio.h>

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
    uint64_t leaves;       /* tz_leave records among seq */
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
    t->leaves++;
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

/*
 * tz_format: turn instruction records into Tarmac (or JSON Lines) text, in C, so that --insn
 * costs no Python per instruction either. Static text per address comes from Python (capstone
 * disassembly, symbol) through an open-addressing table; a miss returns TZ_MISS with the pc
 * and Python adds it. Record i is written with the register snapshot of record i + 1, so the
 * last record is left for the caller. Returns TZ_DONE, TZ_FULL (output buffer: flush and call
 * again) or TZ_MISS; progress is kept in the struct, so a call resumes where the last stopped.
 */
#define TZ_DONE 0
#define TZ_FULL 1
#define TZ_MISS 2

typedef struct tz_info {
    uint64_t pc;           /* key; 0 = empty slot */
    uint32_t text, len;    /* static text in the pool */
    uint32_t nregs;
    uint8_t widx[12];      /* snapshot indices of the registers the instruction writes */
} tz_info;

typedef struct tz_fmt {
    tz_info *table;
    uint64_t mask;         /* table size - 1 (a power of two) */
    const char *pool;
    const char *regnames;  /* 8 bytes per snapshot index, NUL padded */
    uint64_t base;         /* the clock at this view's instruction count 0 */
    int64_t json;
    char *out;
    uint64_t olen, ocap;
    uint64_t pos, mpos, seq;   /* next record word, next memory word, seq before pos */
    uint64_t missing;
    int64_t write_type;    /* Unicorn's UC_MEM_WRITE */
} tz_fmt;

static tz_info *tz_lookup(tz_fmt *f, uint64_t pc)
{
    uint64_t i = (pc >> 2) * 0x9E3779B97F4A7C15ull;
    for (i &= f->mask;; i = (i + 1) & f->mask) {
        if (f->table[i].pc == pc)
            return &f->table[i];
        if (f->table[i].pc == 0)
            return 0;
    }
}

int tz_format(tz_fmt *f, tz_insns *t)
{
    uint64_t stride = 2 + (uint64_t)t->nregs;
    while (f->pos + stride < t->n) {            /* record at pos has a successor */
        uint64_t *r = t->buf + f->pos, *next = r + stride, s = f->seq + 1, ts;
        uint64_t start = f->olen, mstart = f->mpos, k;
        tz_info *e;
        if (r[0] == TZ_LEAVE) {
            f->pos += stride;
            f->seq = s;
            while (f->mpos < t->mn && t->mbuf[f->mpos] <= s)
                f->mpos += 4;
            continue;
        }
        e = tz_lookup(f, r[0]);
        if (!e) {
            f->missing = r[0];
            return TZ_MISS;
        }
        ts = f->base + r[1];
        if (f->ocap - f->olen < (uint64_t)e->len + 160 + 48 * (uint64_t)e->nregs)
            return TZ_FULL;
        if (f->json)
            f->olen += sprintf(f->out + f->olen,
                               "{\"type\":\"insn\",\"ts\":%llu,\"icount\":%llu,%.*s,\"regs\":{",
                               (unsigned long long)ts, (unsigned long long)r[1], (int)e->len,
                               f->pool + e->text);
        else
            f->olen += sprintf(f->out + f->olen, "%llu clk IT (%llu) %.*s\n", (unsigned long long)ts,
                               (unsigned long long)r[1], (int)e->len, f->pool + e->text);
        for (k = 0; k < e->nregs; k++) {
            const char *name = f->regnames + 8 * e->widx[k];
            unsigned long long v = next[2 + e->widx[k]];
            if (f->json)
                f->olen += sprintf(f->out + f->olen, "%s\"%s\":\"0x%llx\"", k ? "," : "", name, v);
            else
                f->olen += sprintf(f->out + f->olen, "%llu clk R %s %016llX\n",
                                   (unsigned long long)ts, name, v);
        }
        if (f->json)
            f->olen += sprintf(f->out + f->olen, "},\"mem\":[");
        k = 0;
        while (f->mpos < t->mn && t->mbuf[f->mpos] <= s) {
            uint64_t *m = t->mbuf + f->mpos;
            int size = (int)(m[1] & 0xFF), write = (int64_t)(m[1] >> 8) == f->write_type;
            unsigned long long v = size < 8 ? m[3] & ((1ull << (8 * size)) - 1) : m[3];
            f->mpos += 4;
            if (m[0] != s)
                continue;
            if (f->ocap - f->olen < 128) {
                f->olen = start;                 /* no room: undo this record */
                f->mpos = mstart;
                return TZ_FULL;
            }
            if (f->json)
                f->olen += sprintf(f->out + f->olen, "%s[\"%s%d\",\"0x%llx\",\"%0*llx\"]", k++ ? "," : "",
                                   write ? "MW" : "MR", size, (unsigned long long)m[2], 2 * size, v);
            else if (size == 8)
                f->olen += sprintf(f->out + f->olen, "%llu clk %s8 %016llx %08llx_%08llx\n",
                                   (unsigned long long)ts, write ? "MW" : "MR", (unsigned long long)m[2],
                                   v >> 32, v & 0xFFFFFFFFull);
            else
                f->olen += sprintf(f->out + f->olen, "%llu clk %s%d %016llx %0*llx\n", (unsigned long long)ts,
                                   write ? "MW" : "MR", size, (unsigned long long)m[2], 2 * size, v);
        }
        if (f->json)
            f->olen += sprintf(f->out + f->olen, "]}\n");
        f->pos += stride;
        f->seq = s;
    }
    return TZ_DONE;
}
