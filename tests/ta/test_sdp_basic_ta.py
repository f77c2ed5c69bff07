"""ta/sdp_basic_ta.S: optee_test's sdp_basic TA (sdp_tests.md §1) run at EL0 on a bare unicorn,
entered the OP-TEE way, with a small Python fake of the syscall layer that records every call
(the harness is sdp_harness.py; the TA->TA, TA->PTA and position-independence tests are in
test_sdp_basic_ta_calls.py).

The fake models what the TA depends on: CHECK_ACCESS_RIGHTS (8) from a table of mappings (TA
image and stack private, the "ns" buffer non-secure, the "sec" buffer secure), CACHE_OPERATION
(70), LOG (1), and OPEN/INVOKE/CLOSE_TA_SESSION (5/7/6) with a chosen callee. The TA→TA tests
run the callee as a second TA instance on its own unicorn sharing the two buffers."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings, strategies as st

from ta.build import load_manifest
from sdp_harness import (ACCESS_DENIED, ANY_OWNER, BAD_PARAMETERS, BUF_SIZE, C, CACHEFLUSH, DUMP,
                         INJECT, INOUT, IN_OUT, MEM_IN, MEM_INOUT, MEM_OUT, NONSECURE,
                         NOT_SUPPORTED, NS_BASE, PTA_UUID, READ, SCN_CACHE, SCN_CHECK, SCN_LOG,
                         SCN_RETURN, SDP_UUID, SECURE, SEC_BASE, SHORT_BUFFER, SUCCESS, SdpTa,
                         TRANSFORM, VALUE_IN, WRITE, neg, packed, sdp_image)


# ------------------------------------------------------------------------------- the image

def test_manifest_entry_and_ta_head() -> None:
    entry = next(e for e in load_manifest() if e["name"] == "sdp_basic")
    assert uuid.UUID(entry["uuid"]) == SDP_UUID
    img = sdp_image()
    assert img.uuid == SDP_UUID
    assert img.flags == 0xA0 == C["TA_FLAG_SECURE_DATA_PATH"] | C["TA_FLAG_CACHE_MAINTENANCE"]
    assert img.stack_size == 0x1000                     # 2 KiB + framework 2 KiB
    assert img.relocations == ()                        # adr only: nothing to relocate


def test_uuids_in_rodata() -> None:
    img = sdp_image()
    rx = next(s for s in img.segments if s.perms == "rx")
    for label, want in (("sdp_basic_uuid", SDP_UUID), ("pta_self_test_uuid", PTA_UUID)):
        off = img.symbols[label] - rx.vaddr
        assert rx.data[off:off + 16] == want.bytes_le   # TEE_UUID: little-endian time fields
    assert rx.data[img.symbols["sdp_basic_uuid"]:][:4] == bytes.fromhex("78563412")


# ------------------------------------------------------------------------ entry functions

def test_open_close_and_other_entry_functions(ta: SdpTa) -> None:
    assert ta.invoke(0, func=0)[0] == SUCCESS and ta.syscalls() == [(SCN_RETURN, SUCCESS)]
    assert ta.invoke(0, func=1)[0] == SUCCESS and ta.nrs() == [SCN_RETURN]
    assert ta.invoke(0, func=3)[0] == NOT_SUPPORTED     # DUMP_MEMSTATS without CFG_TA_STATS


@pytest.mark.parametrize("cmd", [9, 10, 0x100, 0xFFFFFFFF])
def test_unknown_command(ta: SdpTa, cmd: int) -> None:
    assert ta.invoke(cmd, IN_OUT, (NS_BASE, 8, SEC_BASE, 8)) == (BAD_PARAMETERS,
                                                                  [NS_BASE, 8, SEC_BASE, 8,
                                                                   0, 0, 0, 0])
    assert ta.nrs() == [SCN_RETURN] and ta.logs == []


# -------------------------------------------------------------------------- data commands

@pytest.mark.parametrize("b, want", [(0x00, 0x00), (0x01, 0xFF), (0x02, 0xFE), (0x7F, 0x81),
                                     (0x80, 0x80), (0xFF, 0x01)])
def test_transform_table(ta: SdpTa, b: int, want: int) -> None:
    """sdp_tests.md §8, in every position of the 16-byte, 8-byte and byte-tail paths."""
    data = bytes([b]) * 31
    ta.write(SEC_BASE, data + b"\x5a")
    assert ta.invoke(TRANSFORM, INOUT, (SEC_BASE, len(data)))[0] == SUCCESS
    assert ta.read(SEC_BASE, 32) == bytes([want]) * 31 + b"\x5a"


def test_transform_syscalls(ta: SdpTa) -> None:
    ta.write(SEC_BASE + 3, bytes(range(256)))
    res, vals = ta.invoke(TRANSFORM, INOUT, (SEC_BASE + 3, 256))
    assert res == SUCCESS and vals[:2] == [SEC_BASE + 3, 256]
    assert ta.read(SEC_BASE + 3, 256) == neg(bytes(range(256)))
    flags = ANY_OWNER | READ | WRITE | SECURE
    assert flags == 0x20000007
    assert ta.syscalls() == [(SCN_CHECK, flags, SEC_BASE + 3, 256),
                             (SCN_CACHE, SEC_BASE + 3, 256, CACHEFLUSH),     # before
                             (SCN_CACHE, SEC_BASE + 3, 256, CACHEFLUSH),     # after
                             (SCN_RETURN, SUCCESS)]
    assert ta.logs == []


def test_inject_syscalls_and_data(ta: SdpTa) -> None:
    data = bytes((7 * i + 1) & 0xFF for i in range(100))
    ta.write(NS_BASE + 5, data)
    res, vals = ta.invoke(INJECT, IN_OUT, (NS_BASE + 5, 100, SEC_BASE + 9, 100))
    assert res == SUCCESS and vals[:4] == [NS_BASE + 5, 100, SEC_BASE + 9, 100]
    assert ta.read(SEC_BASE + 9, 101) == data + b"\0"
    assert ta.syscalls() == [(SCN_CHECK, 0x10000005, NS_BASE + 5, 100),      # ns: R|NS
                             (SCN_CHECK, 0x20000006, SEC_BASE + 9, 100),     # sec: W|S
                             (SCN_CACHE, SEC_BASE + 9, 100, CACHEFLUSH),
                             (SCN_CACHE, SEC_BASE + 9, 100, CACHEFLUSH),
                             (SCN_RETURN, SUCCESS)]
    assert 0x10000005 == ANY_OWNER | READ | NONSECURE and 0x20000006 == ANY_OWNER | WRITE | SECURE


def test_dump_syscalls_and_data(ta: SdpTa) -> None:
    data = bytes((5 * i + 3) & 0xFF for i in range(77))
    ta.write(SEC_BASE + 1, data)
    res, vals = ta.invoke(DUMP, IN_OUT, (SEC_BASE + 1, 77, NS_BASE + 2, 80))
    assert res == SUCCESS and vals[:4] == [SEC_BASE + 1, 77, NS_BASE + 2, 80]
    assert ta.read(NS_BASE + 2, 80) == data + bytes(3)                # sec.size bytes copied
    assert ta.syscalls() == [(SCN_CHECK, 0x10000006, NS_BASE + 2, 80),       # ns: W|NS
                             (SCN_CHECK, 0x20000005, SEC_BASE + 1, 77),      # sec: R|S
                             (SCN_CACHE, SEC_BASE + 1, 77, CACHEFLUSH),      # before only
                             (SCN_RETURN, SUCCESS)]                          # (quirk #2)
    assert 0x10000006 == ANY_OWNER | WRITE | NONSECURE and 0x20000005 == ANY_OWNER | READ | SECURE


def test_inject_copies_sec_size_bytes(ta: SdpTa) -> None:
    """Quirk #1: sec.size > ns.size passes the size check and sec.size bytes are read."""
    ta.write(NS_BASE, bytes(range(1, 41)))
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE, 10, SEC_BASE, 40))[0] == SUCCESS
    assert ta.read(SEC_BASE, 40) == bytes(range(1, 41))
    assert ta.syscalls()[0] == (SCN_CHECK, 0x10000005, NS_BASE, 10)         # checked: 10


def test_zero_sizes_skip_the_access_check(ta: SdpTa) -> None:
    """libutee's TEE_CheckMemoryAccessRights returns success for size 0 without a syscall;
    TEE_CacheFlush has no such shortcut."""
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE, 0, SEC_BASE, 0))[0] == SUCCESS
    assert ta.nrs() == [SCN_CACHE, SCN_CACHE, SCN_RETURN]
    assert ta.invoke(TRANSFORM, INOUT, (SEC_BASE, 0))[0] == SUCCESS
    assert ta.nrs() == [SCN_CACHE, SCN_CACHE, SCN_RETURN]
    assert ta.invoke(DUMP, IN_OUT, (SEC_BASE, 0, NS_BASE, 0))[0] == SUCCESS
    assert ta.nrs() == [SCN_CACHE, SCN_RETURN]


def test_short_buffer_rules(ta: SdpTa) -> None:
    ta.write(NS_BASE, b"\x11" * 32)
    ta.write(SEC_BASE, b"\x22" * 32)
    # INJECT: sec.size < ns.size; nothing checked, copied or resized.
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE, 32, SEC_BASE, 31)) == (
        SHORT_BUFFER, [NS_BASE, 32, SEC_BASE, 31, 0, 0, 0, 0])
    assert ta.nrs() == [SCN_RETURN] and ta.read(SEC_BASE, 32) == b"\x22" * 32
    # DUMP: ns.size < sec.size.
    assert ta.invoke(DUMP, IN_OUT, (SEC_BASE, 32, NS_BASE, 31)) == (
        SHORT_BUFFER, [SEC_BASE, 32, NS_BASE, 31, 0, 0, 0, 0])
    assert ta.nrs() == [SCN_RETURN] and ta.read(NS_BASE, 32) == b"\x11" * 32
    # Equal sizes and the larger side are fine.
    assert ta.invoke(DUMP, IN_OUT, (SEC_BASE, 31, NS_BASE, 32))[0] == SUCCESS
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE, 32, SEC_BASE, 32))[0] == SUCCESS


@pytest.mark.parametrize("cmd, types, vals, log", [
    (TRANSFORM, INOUT, (NS_BASE, 16),
     b"E/TA:  cmd_transform TEE_CheckMemoryAccessRights(secure) failed 0xffff0001\n"),
    (INJECT, IN_OUT, (SEC_BASE, 16, SEC_BASE + 64, 16),
     b"E/TA:  cmd_inject TEE_CheckMemoryAccessRights(nsec) failed 0xffff0001\n"),
    (INJECT, IN_OUT, (NS_BASE, 16, NS_BASE + 64, 16),
     b"E/TA:  cmd_inject TEE_CheckMemoryAccessRights(secure) failed 0xffff0001\n"),
    (DUMP, IN_OUT, (SEC_BASE, 16, SEC_BASE + 64, 16),
     b"E/TA:  cmd_dump TEE_CheckMemoryAccessRights(nsec) failed 0xffff0001\n"),
    (DUMP, IN_OUT, (NS_BASE + 64, 16, NS_BASE, 16),
     b"E/TA:  cmd_dump TEE_CheckMemoryAccessRights(secure) failed 0xffff0001\n"),
])
def test_access_check_failure(ta: SdpTa, cmd: int, types: tuple[int, ...],
                              vals: tuple[int, ...], log: bytes) -> None:
    before = (ta.read(NS_BASE, 128), ta.read(SEC_BASE, 128))
    assert ta.invoke(cmd, types, vals)[0] == ACCESS_DENIED
    assert ta.logs == [log]
    nrs = ta.nrs()
    assert nrs[-2:] == [SCN_LOG, SCN_RETURN] and set(nrs[:-2]) == {SCN_CHECK}   # no flush
    assert (ta.read(NS_BASE, 128), ta.read(SEC_BASE, 128)) == before             # no copy


def test_unmapped_buffer_is_denied(ta: SdpTa) -> None:
    assert ta.invoke(TRANSFORM, INOUT, (0x30000000, 16))[0] == ACCESS_DENIED
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE + BUF_SIZE - 8, 16, SEC_BASE, 16))[0] == \
        ACCESS_DENIED                                   # ns runs past its mapping


def test_any_access_failure_reads_as_access_denied(ta: SdpTa) -> None:
    """libutee maps any syscall-8 failure to ACCESS_DENIED when ANY_OWNER is requested."""
    ta.access = lambda flags, va, size: BAD_PARAMETERS
    assert ta.invoke(TRANSFORM, INOUT, (SEC_BASE, 4))[0] == ACCESS_DENIED
    assert ta.logs[0].endswith(b"failed 0xffff0001\n")


@pytest.mark.parametrize("cmd, raw_types", [
    (INJECT, packed((MEM_IN, MEM_IN))), (INJECT, packed((MEM_OUT, MEM_IN))),
    (INJECT, packed((MEM_IN, MEM_OUT, VALUE_IN))), (INJECT, packed(INOUT)), (INJECT, 0),
    (TRANSFORM, packed(IN_OUT)), (TRANSFORM, packed((MEM_IN,))),
    (TRANSFORM, packed((MEM_OUT,))), (TRANSFORM, packed((MEM_INOUT, MEM_INOUT))),
    (DUMP, packed((MEM_INOUT, MEM_OUT))), (DUMP, packed(INOUT)), (DUMP, 0x165),
])
def test_wrong_param_types(ta: SdpTa, cmd: int, raw_types: int) -> None:
    res, vals = ta.invoke(cmd, vals=(NS_BASE, 4, SEC_BASE, 4), raw_types=raw_types)
    assert res == BAD_PARAMETERS and vals[:4] == [NS_BASE, 4, SEC_BASE, 4]
    assert SCN_CHECK not in ta.nrs() and SCN_CACHE not in ta.nrs()
    if cmd == INJECT:                                   # only cmd_inject has the EMSG
        assert ta.logs == [f"E/TA:  cmd_inject bad parameters 0x{raw_types:08x}\n".encode()]
    else:
        assert ta.logs == []


def test_param_types_word_is_32_bit(ta: SdpTa) -> None:
    """libutee hands TA_InvokeCommandEntryPoint a uint32_t: the upper half of up->types is
    not looked at."""
    assert ta.invoke(INJECT, vals=(NS_BASE, 4, SEC_BASE, 4), raw_types=0x1_0000_0065)[0] == 0


def test_cache_flush_failure_is_logged_and_ignored(ta: SdpTa) -> None:
    ta.cache_result = NOT_SUPPORTED
    ta.write(NS_BASE, b"abcdefgh")
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE, 8, SEC_BASE, 8))[0] == SUCCESS
    assert ta.read(SEC_BASE, 8) == b"abcdefgh"
    assert ta.nrs() == [SCN_CHECK, SCN_CHECK, SCN_CACHE, SCN_LOG, SCN_CACHE, SCN_LOG, SCN_RETURN]
    assert ta.logs == [b"E/TA:  TEE_CacheFlush() failed (ignored) 0xffff000a\n"] * 2


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=300), offset=st.integers(0, 31))
def test_transform_random(data: bytes, offset: int) -> None:
    ta = SdpTa()
    guard = b"\xA5" * 16
    ta.write(SEC_BASE + offset, data + guard)
    if offset:
        ta.write(SEC_BASE + offset - 1, b"\x3c")
    assert ta.invoke(TRANSFORM, INOUT, (SEC_BASE + offset, len(data)))[0] == SUCCESS
    assert ta.read(SEC_BASE + offset, len(data) + 16) == neg(data) + guard
    if offset:
        assert ta.read(SEC_BASE + offset - 1, 1) == b"\x3c"


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=1, max_size=600), ns_off=st.integers(0, 255),
       sec_off=st.integers(0, 255))
def test_inject_transform_dump_round_trip(data: bytes, ns_off: int, sec_off: int) -> None:
    """The xtest loop (sdp_tests.md §3.4): inject, transform, dump; dumped == -ref mod 256."""
    ta = SdpTa()
    n = len(data)
    ta.write(NS_BASE + ns_off, data)
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE + ns_off, n, SEC_BASE + sec_off, n))[0] == 0
    assert ta.invoke(TRANSFORM, INOUT, (SEC_BASE + sec_off, n))[0] == 0
    ta.write(NS_BASE + ns_off, bytes(n))
    assert ta.invoke(DUMP, IN_OUT, (SEC_BASE + sec_off, n, NS_BASE + ns_off, n))[0] == 0
    assert ta.read(NS_BASE + ns_off, n) == neg(data)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 100), src=st.integers(0, 150), dst=st.integers(0, 150))
def test_copy_is_memmove_on_overlap(n: int, src: int, dst: int) -> None:
    """TEE_MemMove semantics, forwards and backwards (reached by accepting every check)."""
    ta = SdpTa()
    ta.access = lambda flags, va, size: SUCCESS
    before = bytes((i * 13 + 5) & 0xFF for i in range(256))
    ta.write(NS_BASE, before)
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE + src, n, NS_BASE + dst, n))[0] == SUCCESS
    want = bytearray(before)
    want[dst:dst + n] = before[src:src + n]
    assert ta.read(NS_BASE, 256) == bytes(want)
