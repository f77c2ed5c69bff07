"""ta/sdp_basic_ta.S: optee_test's sdp_basic TA (sdp_tests.md §1) run at EL0 on a bare unicorn,
entered the OP-TEE way, with a small Python fake of the syscall layer that records every call.

The fake models what the TA depends on: CHECK_ACCESS_RIGHTS (8) from a table of mappings (TA
image and stack private, the "ns" buffer non-secure, the "sec" buffer secure), CACHE_OPERATION
(70), LOG (1), and OPEN/INVOKE/CLOSE_TA_SESSION (5/7/6) with a chosen callee. The TA→TA tests
run the callee as a second TA instance on its own unicorn sharing the two buffers."""
from __future__ import annotations

import ctypes
import functools
import struct
import uuid
from dataclasses import dataclass, field
from typing import Callable

import pytest
from hypothesis import given, settings, strategies as st
from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM, Uc
from unicorn import UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE
from unicorn import arm64_const as A

from emu.abi import secure_abi
from ta.build import builtin_tas, load_manifest
from tee_os.ta_loader import TaImage, load_ta_elf

SDP_UUID = uuid.UUID("12345678-5b69-11e4-9dbb-101f74f00099")
PTA_UUID = uuid.UUID("d96a5b40-c3e5-21e3-8794-1002a5d5c61b")

C = secure_abi().constants
UP_SIZE = secure_abi().structs["utee_params"].size            # u64 types + u64 vals[8] = 72
SUCCESS = C["TEE_SUCCESS"]
ACCESS_DENIED = C["TEE_ERROR_ACCESS_DENIED"]
BAD_PARAMETERS = C["TEE_ERROR_BAD_PARAMETERS"]
ITEM_NOT_FOUND = C["TEE_ERROR_ITEM_NOT_FOUND"]
NOT_SUPPORTED = C["TEE_ERROR_NOT_SUPPORTED"]
SHORT_BUFFER = C["TEE_ERROR_SHORT_BUFFER"]
TARGET_DEAD = C["TEE_ERROR_TARGET_DEAD"]
READ, WRITE, ANY_OWNER = (C[f"TEE_MEMORY_ACCESS_{n}"] for n in ("READ", "WRITE", "ANY_OWNER"))
NONSECURE, SECURE = C["TEE_MEMORY_ACCESS_NONSECURE"], C["TEE_MEMORY_ACCESS_SECURE"]
INFINITE, CACHEFLUSH = C["TEE_TIMEOUT_INFINITE"], C["TEE_CACHEFLUSH"]
ORIGIN_TEE, ORIGIN_TA = C["TEE_ORIGIN_TEE"], C["TEE_ORIGIN_TRUSTED_APP"]
SCN_RETURN, SCN_LOG, SCN_PANIC = C["TEE_SCN_RETURN"], C["TEE_SCN_LOG"], C["TEE_SCN_PANIC"]
SCN_OPEN, SCN_CLOSE, SCN_INVOKE = (C["TEE_SCN_OPEN_TA_SESSION"], C["TEE_SCN_CLOSE_TA_SESSION"],
                                   C["TEE_SCN_INVOKE_TA_COMMAND"])
SCN_CHECK, SCN_CACHE = C["TEE_SCN_CHECK_ACCESS_RIGHTS"], C["TEE_SCN_CACHE_OPERATION"]
NONE, VALUE_IN, VALUE_OUT, VALUE_INOUT, MEM_IN, MEM_OUT, MEM_INOUT = 0, 1, 2, 3, 5, 6, 7

INJECT, TRANSFORM, DUMP = 0, 1, 2
INVOKE_INJECT, INVOKE_TRANSFORM, INVOKE_DUMP = 3, 4, 5
PTA_INJECT, PTA_TRANSFORM, PTA_DUMP = 6, 7, 8
IN_OUT = (MEM_IN, MEM_OUT)                                     # packed 0x65
INOUT = (MEM_INOUT,)                                           # packed 0x7

PAGE = 0x1000
BUF_SIZE = 0x10000
NS_BASE, SEC_BASE = 0x10000000, 0x20000000


def neg(data: bytes) -> bytes:
    """The transform: (~b + 1) & 0xFF for every byte."""
    return bytes((~b + 1) & 0xFF for b in data)


def packed(types: tuple[int, ...]) -> int:
    return sum(t << (4 * i) for i, t in enumerate(types))


@functools.lru_cache(maxsize=1)
def sdp_elf() -> bytes:
    name, elf = builtin_tas()[SDP_UUID]
    assert name == "sdp_basic"
    return elf


@functools.lru_cache(maxsize=1)
def sdp_image() -> TaImage:
    return load_ta_elf(sdp_elf(), name="sdp_basic")


@dataclass
class Call:
    """One syscall as the fake saw it: number, x0..x4, and what it read from TA memory."""

    nr: int
    args: tuple[int, ...]
    extra: dict = field(default_factory=dict)


def shared_buffers() -> dict[int, ctypes.Array]:
    """Host memory for the ns and sec buffers, mappable into several unicorns at once."""
    return {NS_BASE: ctypes.create_string_buffer(BUF_SIZE),
            SEC_BASE: ctypes.create_string_buffer(BUF_SIZE)}


class SdpTa:
    """One sdp_basic instance: image at ``base``, stack below STACK_TOP, ns and sec buffers."""

    STACK_TOP = 0x800000

    def __init__(self, base: int = 0x400000, buffers: dict[int, ctypes.Array] | None = None):
        img = self.img = sdp_image()
        self.base = base
        self.uc = uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        perms = {"r": UC_PROT_READ, "rx": UC_PROT_READ | UC_PROT_EXEC,
                 "rw": UC_PROT_READ | UC_PROT_WRITE}
        # (start, end, secure, private): what vm_check_access_rights looks at.
        self.regions: list[tuple[int, int, bool, bool]] = []
        for seg in img.segments:
            size = (seg.memsz + PAGE - 1) & ~(PAGE - 1)
            uc.mem_map(base + seg.vaddr, size, perms[seg.perms])
            uc.mem_write(base + seg.vaddr, seg.data)
            self.regions.append((base + seg.vaddr, base + seg.vaddr + size, True, True))
        for off, addend in img.relocations:
            uc.mem_write(base + off, struct.pack("<Q", base + addend))
        stack = (img.stack_size + PAGE - 1) & ~(PAGE - 1)
        uc.mem_map(self.STACK_TOP - stack, stack, UC_PROT_READ | UC_PROT_WRITE)
        self.regions.append((self.STACK_TOP - stack, self.STACK_TOP, True, True))
        self.buffers = buffers if buffers is not None else shared_buffers()
        for addr, buf in self.buffers.items():
            uc.mem_map_ptr(addr, BUF_SIZE, UC_PROT_READ | UC_PROT_WRITE, ctypes.addressof(buf))
        self.regions.append((NS_BASE, NS_BASE + BUF_SIZE, False, False))
        self.regions.append((SEC_BASE, SEC_BASE + BUF_SIZE, True, False))
        uc.hook_add(UC_HOOK_INTR, self._intr)
        self.params_va = self.STACK_TOP - ((UP_SIZE + 63) & ~63)   # ROUNDUP(72, 64)
        # Knobs of the fake syscall layer.
        self.access: Callable[[int, int, int], int] = self.check_access
        self.cache_result = SUCCESS
        self.open_result = SUCCESS
        self.callee: Callable[[int, int, int, list[int]], tuple[int, list[int] | None]] = \
            lambda sess, cmd, types, vals: (SUCCESS, None)
        self.next_session = 0x51
        self.calls: list[Call] = []
        self.logs: list[bytes] = []
        self.exit: tuple[int, int] | None = None

    # --- the fake core -----------------------------------------------------------------------
    def region(self, va: int, size: int) -> tuple[int, int, bool, bool] | None:
        for reg in self.regions:
            if reg[0] <= va and va + size <= reg[1]:
                return reg
        return None

    def check_access(self, flags: int, va: int, size: int) -> int:
        """vm_check_access_rights (optee_ta_format.md §5.6.1) over the region table."""
        if flags & SECURE and flags & NONSECURE:
            return ACCESS_DENIED
        if size == 0:
            return SUCCESS
        reg = self.region(va, size)
        if reg is None:
            return ACCESS_DENIED
        _start, _end, secure, private = reg
        if not flags & ANY_OWNER and not private:
            return ACCESS_DENIED
        if flags & NONSECURE and secure or flags & SECURE and not secure:
            return ACCESS_DENIED
        return SUCCESS

    def read_params(self, va: int) -> tuple[int, list[int]]:
        raw = bytes(self.uc.mem_read(va, UP_SIZE))
        types, *vals = struct.unpack("<9Q", raw)
        return types, list(vals)

    def _intr(self, uc: Uc, intno: int, _user: object) -> None:
        assert intno == 2, f"unexpected exception {intno}"        # EXCP_SWI: svc
        nr = uc.reg_read(A.UC_ARM64_REG_X8)
        args = tuple(uc.reg_read(getattr(A, f"UC_ARM64_REG_X{i}")) for i in range(5))
        call = Call(nr, args)
        self.calls.append(call)
        if nr in (SCN_RETURN, SCN_PANIC):
            self.exit = (nr, args[0] & 0xFFFFFFFF)
            uc.emu_stop()
            return
        uc.reg_write(A.UC_ARM64_REG_X0, self._syscall(call) & 0xFFFFFFFF)

    def _syscall(self, call: Call) -> int:
        a = call.args
        if call.nr == SCN_LOG:
            self.logs.append(bytes(self.uc.mem_read(a[0], a[1])))
            return SUCCESS
        if call.nr == SCN_CHECK:
            return self.access(a[0] & 0xFFFFFFFF, a[1], a[2])
        if call.nr == SCN_CACHE:
            return self.cache_result
        if call.nr == SCN_OPEN:
            call.extra["uuid"] = uuid.UUID(bytes_le=bytes(self.uc.mem_read(a[0], 16)))
            call.extra["params"] = self.read_params(a[2])
            if self.open_result == SUCCESS:
                self.uc.mem_write(a[3], struct.pack("<I", self.next_session))
                call.extra["session"] = self.next_session
                self.next_session += 1
            self.uc.mem_write(a[4], struct.pack("<I", ORIGIN_TEE))
            return self.open_result
        if call.nr == SCN_INVOKE:
            types, vals = self.read_params(a[3])
            call.extra["params"] = (types, list(vals))
            result, new_vals = self.callee(a[0] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF, types, vals)
            if new_vals is not None:
                self.uc.mem_write(a[3] + 8, struct.pack("<8Q", *new_vals))
            self.uc.mem_write(a[4], struct.pack("<I", ORIGIN_TA))
            return result
        if call.nr == SCN_CLOSE:
            return SUCCESS
        raise AssertionError(f"unexpected syscall {call.nr}")

    # --- entering the TA ---------------------------------------------------------------------
    def invoke(self, cmd: int, types: tuple[int, ...] = (), vals: tuple[int, ...] = (),
               func: int = 2, raw_types: int | None = None) -> tuple[int, list[int]]:
        """One TA entry; return (the RETURN syscall's result, vals[8] afterwards)."""
        full = list(vals) + [0] * (8 - len(vals))
        types_word = packed(types) if raw_types is None else raw_types
        self.uc.mem_write(self.params_va, struct.pack("<9Q", types_word, *full))
        for n in range(31):
            self.uc.reg_write(getattr(A, f"UC_ARM64_REG_X{n}"), 0)
        for i, v in enumerate((func, 0x1234, self.params_va, cmd)):
            self.uc.reg_write(getattr(A, f"UC_ARM64_REG_X{i}"), v)
        self.uc.reg_write(A.UC_ARM64_REG_SP, self.params_va)
        self.uc.reg_write(A.UC_ARM64_REG_CPACR_EL1, 3 << 20)      # FP/SIMD allowed at EL0
        self.uc.reg_write(A.UC_ARM64_REG_PSTATE, 0)               # EL0t
        self.calls, self.logs, self.exit = [], [], None
        self.uc.emu_start(self.base + self.img.entry, 0, count=2_000_000)
        assert self.exit is not None and self.exit[0] == SCN_RETURN, self.exit
        return self.exit[1], self.read_params(self.params_va)[1]

    def nrs(self) -> list[int]:
        return [c.nr for c in self.calls]

    def syscalls(self) -> list[tuple[int, ...]]:
        """(nr, x0, x1, x2) per call, RETURN as (0, result)."""
        return [(c.nr, c.args[0] & 0xFFFFFFFF) if c.nr == SCN_RETURN else (c.nr, *c.args[:3])
                for c in self.calls]

    # --- buffers -------------------------------------------------------------------------------
    def write(self, va: int, data: bytes) -> None:
        self.uc.mem_write(va, data)

    def read(self, va: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(va, size))


@pytest.fixture
def ta() -> SdpTa:
    return SdpTa()


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


# ------------------------------------------------------------- TA -> TA and TA -> PTA

def _stack(ta: SdpTa, va: int) -> bool:
    return ta.STACK_TOP - ta.img.stack_size <= va < ta.STACK_TOP


def test_invoke_opens_own_session_once_and_forwards(ta: SdpTa) -> None:
    vals = (NS_BASE + 4, 48, SEC_BASE + 8, 64)
    res, out = ta.invoke(INVOKE_INJECT, IN_OUT, vals)
    assert res == SUCCESS and out[:4] == list(vals)
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]
    open_call, inv = ta.calls[0], ta.calls[1]
    # OPEN_TA_SESSION(dest, TEE_TIMEOUT_INFINITE, zeroed utee_params, &sess, &ret_orig)
    assert open_call.extra["uuid"] == SDP_UUID
    assert open_call.args[0] == ta.base + ta.img.symbols["sdp_basic_uuid"]   # in rodata
    assert open_call.args[1] == INFINITE
    assert open_call.extra["params"] == (0, [0] * 8)
    for ptr in open_call.args[2:5]:
        assert _stack(ta, ptr)                          # TA-private memory
    sess = open_call.extra["session"]
    # INVOKE_TA_COMMAND(sess, TEE_TIMEOUT_INFINITE, 0, utee_params, &ret_orig)
    assert inv.args[:3] == (sess, INFINITE, INJECT)
    assert inv.extra["params"] == (0x65, list(vals) + [0] * 4)
    assert _stack(ta, inv.args[3]) and _stack(ta, inv.args[4])
    assert inv.args[3] != ta.params_va                  # a copy, not the entry block
    # Second and later calls reuse the session kept in the static; 4 -> 1, 5 -> 2.
    for cmd, types, fwd in ((INVOKE_INJECT, IN_OUT, INJECT), (INVOKE_TRANSFORM, INOUT, TRANSFORM),
                            (INVOKE_DUMP, IN_OUT, DUMP)):
        assert ta.invoke(cmd, types, vals[:2 * len(types)])[0] == SUCCESS
        assert ta.nrs() == [SCN_INVOKE, SCN_RETURN]
        assert ta.calls[0].args[:3] == (sess, INFINITE, fwd)
        assert ta.calls[0].extra["params"][0] == packed(types)


def test_invoke_failure_closes_and_forgets_the_session(ta: SdpTa) -> None:
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (SEC_BASE, 8))[0] == SUCCESS
    sess = ta.calls[0].extra["session"]
    ta.callee = lambda s, cmd, types, vals: (ACCESS_DENIED, None)
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (NS_BASE, 8))[0] == ACCESS_DENIED
    assert ta.nrs() == [SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]
    assert ta.calls[2].args[0] == sess
    assert ta.logs == [b"E/TA:  cmd_invoke SDP basic test TA: TEE_InvokeTACommand() FAILED "
                       b"0xffff0001\n"]
    # Forgotten: the next call opens a new session.
    ta.callee = lambda s, cmd, types, vals: (SUCCESS, None)
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (SEC_BASE, 8))[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]
    new = ta.calls[0].extra["session"]
    assert new != sess and ta.calls[1].args[0] == new


def test_callee_error_codes_pass_through(ta: SdpTa) -> None:
    for code in (SHORT_BUFFER, BAD_PARAMETERS, TARGET_DEAD):
        ta.callee = lambda s, cmd, types, vals, code=code: (code, None)
        assert ta.invoke(INVOKE_DUMP, IN_OUT, (SEC_BASE, 4, NS_BASE, 4))[0] == code
        assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]


def test_open_failure(ta: SdpTa) -> None:
    ta.open_result = ITEM_NOT_FOUND
    assert ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE, 4, SEC_BASE, 4))[0] == ITEM_NOT_FOUND
    assert ta.nrs() == [SCN_OPEN, SCN_LOG, SCN_RETURN]          # no handle: no CLOSE
    assert ta.logs == [b"E/TA:  cmd_invoke SDP basic test TA: TEE_OpenTASession() FAILED "
                       b"0xffff0008\n"]
    ta.open_result = SUCCESS
    assert ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE, 4, SEC_BASE, 4))[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]


def test_forwarded_params_and_copy_back(ta: SdpTa) -> None:
    """__utee_from_param on the way out (values as u32, NONE zeroed, memrefs as received) and
    only outputs copied back (value outputs, memref output sizes)."""
    seen: list[tuple[int, list[int]]] = []

    def callee(sess: int, cmd: int, types: int, vals: list[int]) -> tuple[int, list[int]]:
        seen.append((types, list(vals)))
        return SHORT_BUFFER, [0x1111, 0x2222, 0xA_0000_3333, 0xB_0000_4444,
                              0x5555, 0x6666, 0x7777, 0x8888]
    ta.callee = callee
    types = (VALUE_INOUT, VALUE_OUT, NONE, MEM_INOUT)
    vals = (0xF_0000_0001, 2, 3, 4, 0xDEAD, 0xBEEF, SEC_BASE, 0x20)
    res, out = ta.invoke(INVOKE_TRANSFORM, types, vals)
    assert res == SHORT_BUFFER
    assert seen == [(packed(types), [1, 2, 3, 4, 0, 0, SEC_BASE, 0x20])]
    assert out == [0x1111, 0x2222, 0x3333, 0x4444, 0xDEAD, 0xBEEF, SEC_BASE, 0x8888]
    # Memref input/output: only the OUTPUT size comes back.
    ta.callee = lambda s, cmd, t, v: (SUCCESS, [1, 2, 3, 4, 5, 6, 7, 8])
    res, out = ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE, 16, SEC_BASE, 16))
    assert res == SUCCESS and out == [NS_BASE, 16, SEC_BASE, 4, 0, 0, 0, 0]


def test_pta_commands(ta: SdpTa) -> None:
    vals = (SEC_BASE, 32, NS_BASE, 32)
    assert ta.invoke(PTA_DUMP, IN_OUT, vals)[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]
    assert ta.calls[0].extra["uuid"] == PTA_UUID
    assert ta.calls[0].args[0] == ta.base + ta.img.symbols["pta_self_test_uuid"]
    assert ta.calls[0].args[1] == INFINITE and ta.calls[0].extra["params"] == (0, [0] * 8)
    pta_sess = ta.calls[0].extra["session"]
    assert ta.calls[1].args[:3] == (pta_sess, INFINITE, 5)
    assert ta.calls[1].extra["params"] == (0x65, list(vals) + [0] * 4)
    for cmd, types, pta_cmd in ((PTA_INJECT, IN_OUT, 3), (PTA_TRANSFORM, INOUT, 4),
                                (PTA_DUMP, IN_OUT, 5)):
        assert ta.invoke(cmd, types, vals[:2 * len(types)])[0] == SUCCESS
        assert ta.nrs() == [SCN_INVOKE, SCN_RETURN]
        assert ta.calls[0].args[:3] == (pta_sess, INFINITE, pta_cmd)
    # The TA->TA session is a separate static.
    assert ta.invoke(INVOKE_INJECT, IN_OUT, vals)[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]
    assert ta.calls[0].extra["uuid"] == SDP_UUID
    ta_sess = ta.calls[0].extra["session"]
    assert ta_sess != pta_sess
    # A PTA failure drops only the PTA session.
    ta.callee = lambda s, cmd, t, v: (BAD_PARAMETERS, None) if s == pta_sess else (SUCCESS, None)
    assert ta.invoke(PTA_TRANSFORM, INOUT, (NS_BASE, 8))[0] == BAD_PARAMETERS
    assert ta.nrs() == [SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]
    assert ta.calls[2].args[0] == pta_sess
    assert ta.logs == [b"E/TA:  cmd_invoke_pta SDP basic test TA: TEE_InvokeTACommand() FAILED "
                       b"0xffff0006\n"]
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (SEC_BASE, 8))[0] == SUCCESS
    assert ta.nrs() == [SCN_INVOKE, SCN_RETURN] and ta.calls[0].args[0] == ta_sess
    assert ta.invoke(PTA_TRANSFORM, INOUT, (SEC_BASE, 8))[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]


def test_pta_open_failure_message(ta: SdpTa) -> None:
    ta.open_result = ITEM_NOT_FOUND
    assert ta.invoke(PTA_INJECT, IN_OUT, (NS_BASE, 4, SEC_BASE, 4))[0] == ITEM_NOT_FOUND
    assert ta.nrs() == [SCN_OPEN, SCN_LOG, SCN_RETURN]
    assert ta.logs == [b"E/TA:  cmd_invoke_pta SDP basic test TA: TEE_OpenTASession() FAILED "
                       b"0xffff0008\n"]


# ------------------------------------------------- end to end: the callee really runs

class TaToTa:
    """The caller TA whose sessions (syscalls 5/7/6) are served by fresh callee instances on
    their own unicorns, sharing the ns/sec buffers (memrefs keep their VAs)."""

    def __init__(self) -> None:
        self.buffers = shared_buffers()
        self.caller = SdpTa(buffers=self.buffers)
        self.instances: dict[int, SdpTa] = {}
        self.callee_calls: list[list[tuple[int, ...]]] = []
        caller = self.caller
        real_syscall = caller._syscall

        def syscall(call: Call) -> int:
            if call.nr == SCN_OPEN:
                res = real_syscall(call)
                if res == SUCCESS:     # not single-instance: a new instance per session
                    inst = SdpTa(base=0x7F000000, buffers=self.buffers)
                    assert inst.invoke(0, func=0)[0] == SUCCESS
                    self.instances[call.extra["session"]] = inst
                return res
            if call.nr == SCN_CLOSE:
                self.instances.pop(call.args[0] & 0xFFFFFFFF).invoke(0, func=1)
            return real_syscall(call)
        caller._syscall = syscall

        def callee(sess: int, cmd: int, types: int, vals: list[int]) -> tuple[int, list[int]]:
            inst = self.instances[sess]
            nibbles = tuple((types >> (4 * i)) & 0xF for i in range(4))
            res, out = inst.invoke(cmd, nibbles, tuple(vals))
            self.callee_calls.append(inst.syscalls())
            return res, out
        caller.callee = callee


def test_ta_to_ta_end_to_end() -> None:
    """xtest TEST_TA_TO_TA: client -> cmds 3/4/5 -> new sdp_basic instance cmds 0/1/2."""
    env = TaToTa()
    ta = env.caller
    ref = bytes((i * 37 + 11) & 0xFF for i in range(1000))
    ta.write(NS_BASE + 3, ref)
    n = len(ref)
    assert ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE + 3, n, SEC_BASE + 200, n))[0] == SUCCESS
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (SEC_BASE + 200, n))[0] == SUCCESS
    ta.write(NS_BASE + 3, bytes(n))
    assert ta.invoke(INVOKE_DUMP, IN_OUT, (SEC_BASE + 200, n, NS_BASE + 3, n))[0] == SUCCESS
    assert ta.read(NS_BASE + 3, n) == neg(ref)
    assert len(env.instances) == 1                      # one session, kept in the static
    assert [[c[0] for c in calls] for calls in env.callee_calls] == [
        [SCN_CHECK, SCN_CHECK, SCN_CACHE, SCN_CACHE, SCN_RETURN],
        [SCN_CHECK, SCN_CACHE, SCN_CACHE, SCN_RETURN],
        [SCN_CHECK, SCN_CHECK, SCN_CACHE, SCN_RETURN]]
    # The callee refuses a non-secure "sec" buffer: the caller closes and forgets the session.
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (NS_BASE, 16))[0] == ACCESS_DENIED
    assert ta.nrs() == [SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN] and env.instances == {}
    # SHORT_BUFFER from the callee: no copy; the next call opens a new instance.
    assert ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE, 16, SEC_BASE, 8))[0] == SHORT_BUFFER
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]


def pta_invoke_tests(ta: SdpTa) -> Callable[[int, int, int, list[int]], tuple[int, list[int]]]:
    """A Python model of invoke_tests.pta commands 3/4/5 (sdp_tests.md §2) on ``ta``'s
    mappings, as a pseudo-TA called from a TA works."""
    def secure(va: int, size: int) -> bool | None:
        reg = ta.region(va, size)
        return None if reg is None else reg[2]

    def callee(sess: int, cmd: int, types: int, vals: list[int]) -> tuple[int, list[int] | None]:
        out = list(vals)
        if cmd in (3, 5):
            if types != 0x65:
                return BAD_PARAMETERS, None
            (src, n_in, dst, n_out) = vals[:4]
            if n_out < n_in:
                out[3] = n_in
                return SHORT_BUFFER, out
            if secure(src, n_in) is not (cmd == 5) or secure(dst, n_in) is not (cmd == 3):
                return BAD_PARAMETERS, None
            ta.write(dst, ta.read(src, n_in))
            return SUCCESS, out
        if cmd == 4:
            if types != 0x7 or not secure(vals[0], vals[1]):
                return BAD_PARAMETERS, None
            ta.write(vals[0], neg(ta.read(vals[0], vals[1])))
            return SUCCESS, out
        return NOT_SUPPORTED, None
    return callee


def test_ta_to_pta_end_to_end(ta: SdpTa) -> None:
    """xtest TEST_TA_TO_PTA: client -> cmds 6/7/8 -> invoke_tests PTA cmds 3/4/5."""
    ta.callee = pta_invoke_tests(ta)
    ref = bytes(range(256)) * 3 + b"\x01\x7f\x80\xff\x00"
    n = len(ref)
    ta.write(NS_BASE, ref)
    assert ta.invoke(PTA_INJECT, IN_OUT, (NS_BASE, n, SEC_BASE + 17, n))[0] == SUCCESS
    assert ta.invoke(PTA_TRANSFORM, INOUT, (SEC_BASE + 17, n))[0] == SUCCESS
    ta.write(NS_BASE, bytes(n))
    assert ta.invoke(PTA_DUMP, IN_OUT, (SEC_BASE + 17, n, NS_BASE, n))[0] == SUCCESS
    assert ta.read(NS_BASE, n) == neg(ref)
    # The PTA's SHORT_BUFFER size update reaches the client through the TA's copy-back.
    res, out = ta.invoke(PTA_INJECT, IN_OUT, (NS_BASE, 64, SEC_BASE, 10))
    assert res == SHORT_BUFFER and out[:4] == [NS_BASE, 64, SEC_BASE, 64]
    assert ta.nrs() == [SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]


# ------------------------------------------------------------------- position independence

def test_runs_at_another_base() -> None:
    ta = SdpTa(base=0x7F000000)
    ta.write(NS_BASE, b"\x01\x02\x03")
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE, 3, SEC_BASE, 3))[0] == SUCCESS
    assert ta.invoke(TRANSFORM, INOUT, (SEC_BASE, 3))[0] == SUCCESS
    assert ta.read(SEC_BASE, 3) == b"\xff\xfe\xfd"
    assert ta.invoke(PTA_INJECT, IN_OUT, (NS_BASE, 3, SEC_BASE, 3))[0] == SUCCESS
    assert ta.calls[0].args[0] == 0x7F000000 + ta.img.symbols["pta_self_test_uuid"]
    assert ta.calls[0].extra["uuid"] == PTA_UUID
