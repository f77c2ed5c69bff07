"""The FF-A bus driver (linux_side.arm_ffa) against a scripted secure side: the exact registers
and descriptor bytes Linux sends (optee_ffa.md §1, §7-§14; ffa_spec.md §2-§3)."""
from __future__ import annotations

import errno
import struct
import uuid as uuidlib

import pytest

from ffa_fake import (DIRECT_REQ, FEATURES, FRAG_TX, ID_GET, LEND32, LEND64, PART_INFO,
                      RAM_BASE, RECLAIM, RUN, RX_RELEASE, RXTX_MAP64, SHARE32, SHARE64, VERSION,
                      FakeFfaWorld, fake_kernel, fids, u32)
from linux_side.arm_ffa import (FfaDevice, FfaMemRegionAttributes, FfaPartitionInfo,
                                ffa_init, ffa_to_linux_errno)
from linux_side.errors import LinuxError

OPTEE = 0x8001
OPTEE_UUID_WORDS = (0xE0786148, 0xE311F8E7, 0x02005EBC, 0x1BC5D5A5)
P = RAM_BASE + 0x40_0000            # a 1 MiB chunk (in the fake's CMA range)
RW = FfaMemRegionAttributes(OPTEE, 0x02)


def bus(**kw):
    world = FakeFfaWorld(**kw)
    k = fake_kernel(world)
    return world, k, ffa_init(k)


def golden_lend(version: int, pa: int = P, pages: int = 256, receiver: int = OPTEE) -> bytes:
    """optee_ffa.md §11.4, field by field."""
    if version == 0x10000:
        head = struct.pack("<HBBIQQII", 0, 0, 0, 0, 0, 1, 0, 1)
        emad = struct.pack("<HBBIQ", receiver, 2, 0, 48, 0)
    else:
        emad_size = 16 if version == 0x10001 else 32
        head = struct.pack("<HHIQQIII12x", 0, 0, 0, 0, 1, emad_size, 1, 48)
        comp_off = 48 + emad_size
        emad = struct.pack("<HBBI", receiver, 2, 0, comp_off).ljust(emad_size, b"\0")
    comp = struct.pack("<IIQ", pages, 1, 0)
    return head + emad + comp + struct.pack("<QII", pa, pages, 0)


# --- version, id, buffers --------------------------------------------------------------------------
@pytest.mark.parametrize("answer, negotiated", [(0x10000, 0x10000), (0x10001, 0x10001),
                                                (0x10002, 0x10002), (0x10003, 0x10002)])
def test_version_negotiation_keeps_the_lower_version(answer, negotiated):
    world, k, drv = bus(version=answer)
    assert world.calls[0][0][:2] == (VERSION, 0x10002)         # the driver asks for 1.2
    assert drv.version == negotiated
    assert fids(world)[:2] == [VERSION, ID_GET] and drv.vm_id == 0


@pytest.mark.parametrize("answer, err", [(0xFFFFFFFF, errno.EOPNOTSUPP), (0x20000, errno.EINVAL),
                                         (0x00009, errno.EINVAL)])
def test_unusable_versions_stop_the_driver(answer, err):
    world = FakeFfaWorld(version=answer)
    with pytest.raises(LinuxError) as exc:
        ffa_init(fake_kernel(world))
    assert exc.value.errno == err and fids(world) == [VERSION]


@pytest.mark.parametrize("code, size", [(0, 0x1000), (1, 0x10000), (2, 0x4000), (None, 0x1000)])
def test_rxtx_pair_sized_and_aligned_as_features_says(code, size):
    world, k, drv = bus(rxtx_min=code)
    assert world.calls[2][0][:2] == (FEATURES, RXTX_MAP64)
    regs = world.calls[3][0]
    assert regs[:4] == (RXTX_MAP64, drv.tx_buffer, drv.rx_buffer, size // 0x1000)
    assert drv.rxtx_bufsz == size and drv.tx_buffer % size == 0 and drv.rx_buffer % size == 0
    assert drv.tx_buffer != drv.rx_buffer
    assert k.pages.allocated[drv.tx_buffer] == size == k.pages.allocated[drv.rx_buffer]


def test_a_refused_map_frees_the_buffers():
    world = FakeFfaWorld()
    world.tx = 1                                  # "already mapped": DENIED
    k = fake_kernel(world)
    with pytest.raises(LinuxError) as exc:
        ffa_init(k)
    assert exc.value.errno == errno.EACCES and not k.pages.allocated


@pytest.mark.parametrize("features, native", [(set(), False), ({SHARE64}, True), ({LEND64}, True)])
def test_memory_ops_width_follows_features(features, native):
    world, k, drv = bus(features=features)
    assert drv.mem_ops_native is native
    asked = [regs[1] for regs, _ in world.calls if regs[0] == FEATURES][1:]
    assert asked == ([LEND64] if LEND64 in features else [LEND64, SHARE64])


# --- partitions -----------------------------------------------------------------------------------
def test_partition_info_by_uuid_v1_2():
    world, k, drv = bus()
    start = len(world.calls)
    (part,) = drv.ffa_partition_probe(uuidlib.UUID("486178e0-e7f8-11e3-bc5e-0002a5d5c51b"))
    calls = [regs for regs, _ in world.calls[start:]]
    assert calls[0][:6] == (PART_INFO,) + OPTEE_UUID_WORDS + (1,)      # count only
    assert calls[1][:6] == (PART_INFO,) + OPTEE_UUID_WORDS + (0,)      # descriptors
    assert calls[2][0] == RX_RELEASE and len(calls) == 3
    assert (part.id, part.exec_ctxt, part.properties) == (OPTEE, 1, 0x103)
    assert str(part.uuid) == "486178e0-e7f8-11e3-bc5e-0002a5d5c51b"


def test_partition_info_v1_0_has_no_count_query_nor_uuid():
    """v1.0 has no count-only flag: the counting call fetches (and releases) the descriptors
    too, then the real one fetches them again."""
    world, k, drv = bus(version=0x10000)
    start = len(world.calls)
    (part,) = drv.ffa_partition_probe(uuidlib.UUID(int=0))
    assert [regs[5] for regs, _ in world.calls[start:] if regs[0] == PART_INFO] == [0, 0]
    assert fids(world, start) == [PART_INFO, RX_RELEASE, PART_INFO, RX_RELEASE]
    assert part.id == OPTEE and part.uuid is None


# --- direct requests ------------------------------------------------------------------------------
def optee_dev(drv):
    dev = FfaDevice(drv, FfaPartitionInfo(OPTEE, 1, 0x103))
    dev.mode_32bit_set()
    return dev


def test_direct_request_registers_and_response():
    world, k, drv = bus()
    out = optee_dev(drv).sync_send_receive([1, 0x11, 0x22, 0x33, 0x44])
    regs, resp = world.calls[-1]
    assert regs == (DIRECT_REQ, 0x0000_8001, 0, 1, 0x11, 0x22, 0x33, 0x44)
    assert u32(resp[1]) == OPTEE << 16                     # source and destination swapped
    assert out == [4, 9, 0x1234ABCD, 0, 0]


def test_interrupt_and_yield_are_resumed_with_run():
    world, k, drv = bus()
    world.ffa_interrupts, world.ffa_yields = 2, 1
    clock = k._clock_ns
    start = len(world.calls)
    assert optee_dev(drv).sync_send_receive([0])[:2] == [1, 0]
    assert fids(world, start) == [DIRECT_REQ, RUN, RUN, RUN]
    assert all(regs[1] == OPTEE << 16 for regs, _ in world.calls[start + 1:])   # w1 of the reply
    assert world.irq_acks == 2 and k._clock_ns - clock == 1_000_000         # 1 ms after YIELD


@pytest.mark.parametrize("code, err", [(-1, errno.EOPNOTSUPP), (-2, errno.EINVAL),
                                       (-3, errno.ENOMEM), (-4, errno.EBUSY), (-5, errno.EINTR),
                                       (-6, errno.EACCES), (-7, errno.EAGAIN),
                                       (-8, errno.ECANCELED), (-9, errno.ENODATA),
                                       (-10, errno.EAGAIN), (-11, errno.EINVAL)])
def test_ffa_errors_become_errnos(code, err):
    assert ffa_to_linux_errno(code & 0xFFFFFFFF) == err
    world, k, drv = bus()
    world.direct_errors[1] = code
    with pytest.raises(LinuxError) as exc:
        optee_dev(drv).sync_send_receive([1])
    assert exc.value.errno == err


def test_an_unexpected_answer_is_einval():
    world, k, drv = bus()
    dev = FfaDevice(drv, FfaPartitionInfo(OPTEE, 1, 0x103))       # 64-bit: the fake says -1
    with pytest.raises(LinuxError) as exc:
        dev.sync_send_receive([1])
    assert exc.value.errno == errno.EINVAL and world.calls[-1][0][0] == 0xC400006F


# --- memory transactions ----------------------------------------------------------------------------
@pytest.mark.parametrize("version", [0x10000, 0x10001, 0x10002])
def test_lend_golden_bytes(version):
    world, k, drv = bus(version=version)
    handle = drv.mem_lend([(P, 0x10_0000)], [RW], tag=1)
    regs, out = world.calls[-1]
    desc = golden_lend(version)
    assert len(desc) == {0x10000: 80, 0x10001: 96, 0x10002: 112}[version]
    assert regs == (LEND64, len(desc), len(desc), 0, 0, 0, 0, 0)    # SHARE_64 known -> native
    assert world.mem_ops[-1].desc == desc == k.conduit.read(drv.tx_buffer, len(desc))
    assert handle == 0x1000_0000_0000 == u32(out[2]) | u32(out[3]) << 32


def test_lend_uses_the_32_bit_id_without_64_bit_memory_features():
    world, k, drv = bus(features=set())
    drv.mem_lend([(P, 0x10_0000)], [RW], tag=1)
    drv.mem_share([(P, 0x1000)], [RW])
    assert fids(world)[-2:] == [LEND32, SHARE32]


@pytest.mark.parametrize("version", [0x10001, 0x10002])
def test_share_descriptor_two_receivers_two_runs(version):
    world, k, drv = bus(version=version)
    sg = [(P, 0x3000), (P + 0x10000, 0x1000)]
    drv.mem_share(sg, [RW, FfaMemRegionAttributes(0x8002, 0x01)], tag=7)
    esz = 16 if version == 0x10001 else 32
    comp = 48 + 2 * esz
    want = struct.pack("<HHIQQIII12x", 0, 0x2F, 0, 0, 7, esz, 2, 48)
    want += struct.pack("<HBBI", OPTEE, 2, 0, comp).ljust(esz, b"\0")
    want += struct.pack("<HBBI", 0x8002, 1, 0, comp).ljust(esz, b"\0")
    want += struct.pack("<IIQ", 4, 2, 0) + struct.pack("<QII", P, 3, 0)
    want += struct.pack("<QII", P + 0x10000, 1, 0)
    assert world.mem_ops[-1].desc == want
    assert world.calls[-1][0][:5] == (SHARE64, len(want), len(want), 0, 0)


@pytest.mark.parametrize("version, head", [(0x10000, 64), (0x10002, 96)])
def test_a_256_constituent_share_is_fragmented(version, head):
    world, k, drv = bus(version=version)
    sg = [(P + 2 * i * 0x1000, 0x1000) for i in range(256)]        # no two pages adjacent
    start = len(world.calls)
    handle = drv.mem_share(sg, [RW])
    total = head + 16 * 256
    first = 0x1000
    calls = [regs for regs, _ in world.calls[start:]]
    assert [c[0] for c in calls] == [SHARE64, FRAG_TX]
    assert calls[0][:5] == (SHARE64, total, first, 0, 0)
    assert calls[1][:4] == (FRAG_TX, u32(handle), handle >> 32, total - first)
    obj = world.mem_ops[-1]
    assert obj.frags == [first, total - first] and len(obj.desc) == total
    assert obj.constituents == [(pa, 1) for pa, _ in sg]
    comp = head - 16
    assert struct.unpack_from("<II", obj.desc, comp) == (256, 256)
    assert world.objects[handle] is obj


def test_a_refused_fragment_is_enxio_and_too_many_receivers_too():
    world, k, drv = bus()
    world.frag_error = -3
    sg = [(P + 2 * i * 0x1000, 0x1000) for i in range(300)]
    with pytest.raises(LinuxError) as exc:
        drv.mem_share(sg, [RW])
    assert exc.value.errno == errno.ENOMEM                         # the last fragment's error
    sg = [(P + 2 * i * 0x1000, 0x1000) for i in range(600)]       # 3 fragments: 2nd refused
    world.frag_error = -3
    with pytest.raises(LinuxError) as exc:
        drv.mem_share(sg, [RW])
    assert exc.value.errno == errno.ENXIO
    calls = len(world.calls)
    with pytest.raises(LinuxError) as exc:
        drv.mem_share([(P, 0x1000)], [FfaMemRegionAttributes(0x8000 + i, 2) for i in range(200)])
    assert exc.value.errno == errno.ENXIO and len(world.calls) == calls   # nothing sent


def test_a_descriptor_outside_the_tx_buffer():
    world, k, drv = bus()
    drv.mem_share([(P, 0x2000)], [RW], use_txbuf=False)
    regs = world.calls[-1][0]
    assert regs[3] not in (0, drv.tx_buffer) and regs[3] % 0x1000 == 0 and regs[4] == 1
    assert regs[3] not in k.pages.allocated                       # freed after the call
    assert world.mem_ops[-1].constituents == [(P, 2)]


def test_reclaim_registers_and_errors():
    world, k, drv = bus()
    handle = drv.mem_share([(P, 0x1000)], [RW])
    drv.mem_reclaim(handle)
    assert world.calls[-1][0][:4] == (RECLAIM, u32(handle), handle >> 32, 0)
    assert handle not in world.objects
    with pytest.raises(LinuxError) as exc:
        drv.mem_reclaim(handle)                                   # unknown handle
    assert exc.value.errno == errno.EINVAL
    handle = drv.mem_share([(P, 0x1000)], [RW])
    world.reclaim_error = -6
    with pytest.raises(LinuxError) as exc:
        drv.mem_reclaim(handle)
    assert exc.value.errno == errno.EACCES


def test_a_paused_memory_operation_is_resumed():
    world, k, drv = bus()
    world.pauses = 2
    start = len(world.calls)
    handle = drv.mem_share([(P, 0x1000)], [RW])
    assert fids(world, start) == [SHARE64, 0x84000079, 0x84000079]
    assert all(regs[1:3] == (0x11, 0x22) for regs, _ in world.calls[start + 1:])
    assert handle in world.objects
