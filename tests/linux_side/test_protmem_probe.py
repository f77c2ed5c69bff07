"""The SMC driver's protected-memory probe (optee_smc_msg.md §9), with the secure world's
answers scripted: capability bits, the GET_PROTMEM_CONFIG fast call per use case, and the MSG
GET_PROTMEM_CONFIG size query with its SHORT_BUFFER retry."""
from __future__ import annotations

import struct

from linux_side.optee.optee_msg import MsgArg

GET_PROTMEM_CONFIG = 0xB2000014
PROTMEM, DYNAMIC_PROTMEM = 1 << 8, 1 << 9
SHORT_BUFFER = 0xFFFF0010


def script_fast_call(p, answers):
    ops = p.kernel.optee.ops
    asked = []
    real = ops.smc

    def smc(*args):
        if args[0] == GET_PROTMEM_CONFIG:
            asked.append(args[1])
            return answers[args[1]] + (0,) * 4
        return real(*args)
    ops.smc = smc
    return asked


def script_msg(p, min_size, align, pa_width, attrs):
    drv = p.kernel.optee
    seen = []

    def do_msg(ctx, arg):
        yield from ()
        assert arg.cmd == 10
        p0, p1 = arg.params
        seen.append((p0.attr, p0.a, p1.attr, p1.a, p1.b, p1.c))
        p0.a, p0.b, p0.c = min_size, align, pa_width
        need = 4 * len(attrs)
        if p1.b < need:
            p1.b, ret = need, SHORT_BUFFER
        else:
            if attrs:
                p.physmem.write(p1.a, struct.pack(f"<{len(attrs)}I", *attrs))
            p1.b, ret = need, 0
        return MsgArg(arg.cmd, ret=ret, ret_origin=3, params=[p0, p1])
    drv.do_msg = do_msg
    return seen


def test_static_carveouts_per_use_case(platform):
    k = platform.kernel
    ops = k.optee.ops
    ops.info.sec_caps |= PROTMEM
    k.config.protmem_use_cases = (1, 2, 3)
    asked = script_fast_call(platform, {0: (0, 0x5e00_0000, 0x40_0000, 40),
                                        2: (0, 0x5e40_0000, 0x40_0000, 40),
                                        3: (7, 0, 0, 0)})
    ops.protmem_pool_init()
    assert asked == [0, 2, 3]                 # secure-video asks with a1 = 0, like Linux v6.18
    assert ops.info.protmem == {1: "static", 2: "static"}
    assert set(k.heaps) == {"protected,secure-video", "protected,trusted-ui"}
    assert k.heaps["protected,trusted-ui"].priv.pool.pa_base == 0x5e40_0000
    assert k.tee0.dev.dma_mask == (1 << 40) - 1
    assert k.dmesg[-1].startswith("optee: Protected memory service not available (use case 3")


def test_without_the_capability_nothing_is_asked(platform):
    k = platform.kernel
    asked = script_fast_call(platform, {})
    k.optee.ops.protmem_pool_init()
    assert asked == [] and not k.heaps


def test_a_carveout_outside_kernel_ram_registers_no_heap(platform):
    k = platform.kernel
    k.optee.ops.info.sec_caps |= PROTMEM
    script_fast_call(platform, {0: (0, 0x0e10_0000, 0x10_0000, 64)})    # secure DRAM
    k.optee.ops.protmem_pool_init()
    assert not k.heaps and "struct page" in k.dmesg[-1]


def test_the_real_secure_world_without_static_protmem_answers_no(platform):
    k = platform.kernel
    k.optee.ops.info.sec_caps |= PROTMEM      # a cap the secure OS did not report
    k.optee.ops.protmem_pool_init()
    assert not k.heaps and "Protected memory service not available" in k.dmesg[-1]


def test_dynamic_config_query_then_retry_with_a_buffer(platform):
    k = platform.kernel
    ops = k.optee.ops
    ops.info.sec_caps |= DYNAMIC_PROTMEM
    seen = script_msg(platform, 0x40_0000 + 0x123, 0x10_0000, 48, [0x0002_8001, 0x0001_8002])
    ops.protmem_pool_init()
    assert len(seen) == 2
    assert seen[0] == (3, 1, 0xA, 0, 0, 0)        # VALUE_INOUT use case, NULL TMEM_OUTPUT
    assert seen[1][:3] == (3, 1, 0xA) and seen[1][3] != 0 and seen[1][4] == 8
    pool = k.heaps["protected,secure-video"].priv.pool
    assert ops.info.protmem == {1: "dynamic"}
    assert pool.page_count == 0x400 and pool.mem_attrs == (0x0002_8001, 0x0001_8002)
    assert pool.chunk is None                       # nothing allocated at probe
    assert k.tee0.dev.dma_mask == (1 << 48) - 1


def test_static_failure_falls_back_to_dynamic_when_both_are_reported(platform):
    k = platform.kernel
    ops = k.optee.ops
    ops.info.sec_caps |= PROTMEM | DYNAMIC_PROTMEM
    script_fast_call(platform, {0: (7, 0, 0, 0)})
    script_msg(platform, 0x10_0000, 0, 64, [])
    ops.protmem_pool_init()
    assert ops.info.protmem == {1: "dynamic"}


def test_a_refused_config_query_registers_no_heap(platform):
    k = platform.kernel
    drv = k.optee
    drv.ops.info.sec_caps |= DYNAMIC_PROTMEM

    def do_msg(ctx, arg):
        yield from ()
        return MsgArg(arg.cmd, ret=0xFFFF0006, ret_origin=3, params=arg.params)
    drv.do_msg = do_msg
    drv.ops.protmem_pool_init()
    assert not k.heaps and "returned 0xffff0006" in k.dmesg[-1]
