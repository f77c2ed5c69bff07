"""The sdp_basic TA on a bare Unicorn, entered the OP-TEE way, with a Python fake of the
syscall layer that records every call (test_sdp_basic_ta*.py): constants, ``SdpTa`` and the
shared buffers."""
from __future__ import annotations

import ctypes
import functools
import struct
import uuid
from dataclasses import dataclass, field
from typing import Callable

from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM, Uc
from unicorn import UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE
from unicorn import arm64_const as A

from emu.abi import secure_abi
from ta.build import builtin_tas
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
