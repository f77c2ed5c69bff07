"""The decrypt TA on a bare Unicorn at EL0 (test_decrypt_ta*.py): constants, reference AES
(``cryptography``), and ``DecryptTa`` with its fake syscall layer, region table and real
CryptoEngine."""
from __future__ import annotations

import functools
import struct
import uuid

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM, Uc
from unicorn import UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE
from unicorn import arm64_const as A

from emu import tzc400 as T
from emu.abi import secure_abi
from emu.devices.crypto_engine import CryptoEngine
from emu.events import EventBus
from emu.physmem import PhysMem
from emu.platform_map import load_memory_map
from emu.tzc400 import Tzc400
from ta.build import TZEMU_TA_DEFINES, builtin_tas
from tee_os.ta_loader import TaImage, load_ta_elf

DECRYPT_UUID = uuid.UUID("5c2d1e77-9f3a-4b61-8e0d-2a7c4f9b1d03")
C = secure_abi().constants
SUCCESS, GENERIC = C["TEE_SUCCESS"], C["TEE_ERROR_GENERIC"]
BAD_PARAMETERS, BAD_STATE = C["TEE_ERROR_BAD_PARAMETERS"], C["TEE_ERROR_BAD_STATE"]
BAD_FORMAT, SHORT_BUFFER = C["TEE_ERROR_BAD_FORMAT"], C["TEE_ERROR_SHORT_BUFFER"]
ACCESS_DENIED, NOT_SUPPORTED = C["TEE_ERROR_ACCESS_DENIED"], C["TEE_ERROR_NOT_SUPPORTED"]
READ, WRITE, ANY_OWNER = (C[f"TEE_MEMORY_ACCESS_{n}"] for n in ("READ", "WRITE", "ANY_OWNER"))
NONSECURE, SECURE = C["TEE_MEMORY_ACCESS_NONSECURE"], C["TEE_MEMORY_ACCESS_SECURE"]
SCN_RETURN, SCN_LOG, SCN_PANIC = C["TEE_SCN_RETURN"], C["TEE_SCN_LOG"], C["TEE_SCN_PANIC"]
SCN_CHECK = C["TEE_SCN_CHECK_ACCESS_RIGHTS"]
SCN_VA_TO_PA = TZEMU_TA_DEFINES["TZEMU_SCN_VA_TO_PA"]
ENGINE_VA = TZEMU_TA_DEFINES["CRYPTO_ENGINE_VA"]
VALUE_IN, VALUE_OUT, MEM_IN, MEM_OUT = 1, 2, 5, 6
SET_KEY, SET_IV, DECRYPT, DECRYPT_ENGINE, ENCRYPT = 0, 1, 2, 3, 4
PER_RECORD, FINAL = 1, 2
CRYPT_TYPES = (MEM_IN, MEM_OUT, VALUE_IN, VALUE_OUT)
BAD_PAD_LOG = b"decrypt: bad PKCS#7 padding\n"

PAGE = 0x1000
BUF_SIZE = 0x100000
NS_VA, SEC_VA, KEY_VA = 0x10000000, 0x20000000, 0x30000000
MM = load_memory_map()
NS_PA = MM.region("ns_dram").base + 0x02000000          # ordinary shared memory
SEC_PA = MM.carveout("secure-video").base              # a protected carveout
DENIED_PA = MM.region("ns_dram").base + 0x03000000      # a region closed to secure writes


@functools.lru_cache(maxsize=1)
def image() -> TaImage:
    name, elf = builtin_tas()[DECRYPT_UUID]
    assert name == "decrypt"
    return load_ta_elf(elf, name="decrypt")


@functools.lru_cache(maxsize=1)
def physmem() -> PhysMem:
    return PhysMem(MM)


def make_tzc() -> Tzc400:
    """Region 0: everything for everyone (secure too); region 1: secure read-only page range
    at DENIED_PA (so the engine's writes there are refused)."""
    t = Tzc400(filters=1, bus=EventBus(record=1000))
    t.write(T.REGION_ID_ACCESS(0), 4, 0xFFFFFFFF)
    t.write(T.REGION_ATTRIBUTES(0), 4, 0xC0000000)
    t.write(T.REGION_BASE_LOW(1), 4, DENIED_PA)
    t.write(T.REGION_TOP_LOW(1), 4, DENIED_PA + 0x100000 - 1)
    t.write(T.REGION_ATTRIBUTES(1), 4, 0x40000001)
    t.write(T.ACTION, 4, T.TzcAction.ERR)
    t.write(T.GATE_KEEPER, 4, 1)
    return t


def cbc(key: bytes, iv: bytes, data: bytes, decrypt: bool) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


def pad(data: bytes) -> bytes:
    p = 16 - len(data) % 16
    return data + bytes([p]) * p


def ref_encrypt(key: bytes, iv: bytes, plain: bytes, record: int, flags: int) -> bytes:
    """The aesenc format: one chain; PKCS#7 per record (flag 1) or once at the end (flag 2)."""
    if flags == PER_RECORD:
        rec = record or len(plain)
        padded = b"".join(pad(plain[s:s + rec]) for s in range(0, len(plain), rec or 1))
    else:
        padded = pad(plain) if flags == FINAL else plain
    return cbc(key, iv, padded, False)


def ref_decrypt(key: bytes, iv: bytes, ct: bytes, record: int, flags: int) -> bytes:
    plain = cbc(key, iv, ct, True)
    if flags == PER_RECORD:
        rec = record or len(plain)
        recs = [plain[s:s + rec] for s in range(0, len(plain), rec or 1)]
        return b"".join(r[:-r[-1]] for r in recs)
    if flags == FINAL and plain:
        return plain[:-plain[-1]]
    return plain


class DecryptTa:
    """One decrypt_ta instance: image at ``base``, stack below STACK_TOP, memref buffers at
    NS_VA (non-secure), SEC_VA (secure) and KEY_VA (non-secure) backed by PhysMem pages."""

    STACK_TOP = 0x800000

    def __init__(self, base: int = 0x400000, ns_pages: list[int] | None = None,
                 sec_pages: list[int] | None = None) -> None:
        img = self.img = image()
        self.base = base
        self.mem = physmem()
        uc = self.uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        perms = {"r": UC_PROT_READ, "rx": UC_PROT_READ | UC_PROT_EXEC,
                 "rw": UC_PROT_READ | UC_PROT_WRITE}
        self.regions: list[tuple[int, int, bool, bool]] = []     # start, end, secure, private
        for seg in img.segments:
            size = (seg.memsz + PAGE - 1) & ~(PAGE - 1)
            uc.mem_map(base + seg.vaddr, size, perms[seg.perms])
            uc.mem_write(base + seg.vaddr, seg.data)
            self.regions.append((base + seg.vaddr, base + seg.vaddr + size, True, True))
        stack = (img.stack_size + PAGE - 1) & ~(PAGE - 1)
        uc.mem_map(self.STACK_TOP - stack, stack, UC_PROT_READ | UC_PROT_WRITE)
        self.regions.append((self.STACK_TOP - stack, self.STACK_TOP, True, True))
        npages = BUF_SIZE // PAGE
        self.pages: dict[int, int] = {}                           # VA page -> PA page
        layout = ((NS_VA, ns_pages or [NS_PA + i * PAGE for i in range(npages)], False),
                  (SEC_VA, sec_pages or [SEC_PA + i * PAGE for i in range(npages)], True),
                  (KEY_VA, [NS_PA + BUF_SIZE], False))
        for va, pas, secure in layout:
            for i, pa in enumerate(pas):
                block = self.mem._block(pa, PAGE)
                uc.mem_map_ptr(va + i * PAGE, PAGE, UC_PROT_READ | UC_PROT_WRITE,
                               block.host_ptr + pa - block.region.base)
                self.pages[va + i * PAGE] = pa
            self.regions.append((va, va + len(pas) * PAGE, secure, False))
        self.tzc = make_tzc()
        self.engine = CryptoEngine("crypto", physmem=self.mem, tzc=self.tzc, bus=self.tzc.bus)
        self.engine.map_mmio(uc, ENGINE_VA)
        uc.hook_add(UC_HOOK_INTR, self._intr)
        self.params_va = self.STACK_TOP - 128
        self.calls: list[tuple[int, ...]] = []
        self.logs: list[bytes] = []
        self.exit: tuple[int, int] | None = None
        self.va_to_pa_result = SUCCESS
        self.report_runs = True            # False: a secure OS that returns only x1

    # --- the fake core -----------------------------------------------------------------------
    def check_access(self, flags: int, va: int, size: int) -> int:
        if size == 0:
            return SUCCESS
        reg = next((r for r in self.regions if r[0] <= va and va + size <= r[1]), None)
        if reg is None or (not flags & ANY_OWNER and not reg[3]):
            return ACCESS_DENIED
        if flags & NONSECURE and reg[2] or flags & SECURE and not reg[2]:
            return ACCESS_DENIED
        return SUCCESS

    def va_to_pa(self, va: int) -> tuple[int, int, int]:
        """(result, pa, physically contiguous bytes from va to the end of its memref region)."""
        reg = next((r for r in self.regions if r[0] <= va < r[1] and not r[3]), None)
        if reg is None or self.va_to_pa_result != SUCCESS:
            return self.va_to_pa_result or ACCESS_DENIED, 0, 0
        page = va & ~(PAGE - 1)
        pa = self.pages[page] + (va - page)
        run = PAGE - (va - page)
        while page + PAGE < reg[1] and self.pages[page + PAGE] == self.pages[page] + PAGE:
            page += PAGE
            run += PAGE
        return SUCCESS, pa, run

    def _intr(self, uc: Uc, intno: int, _user: object) -> None:
        assert intno == 2, f"unexpected exception {intno}"
        nr = uc.reg_read(A.UC_ARM64_REG_X8)
        args = tuple(uc.reg_read(getattr(A, f"UC_ARM64_REG_X{i}")) for i in range(3))
        self.calls.append((nr, *args))
        if nr in (SCN_RETURN, SCN_PANIC):
            self.exit = (nr, args[0] & 0xFFFFFFFF)
            uc.emu_stop()
            return
        if nr == SCN_LOG:
            self.logs.append(bytes(uc.mem_read(args[0], args[1])))
            res = SUCCESS
        elif nr == SCN_CHECK:
            res = self.check_access(args[0] & 0xFFFFFFFF, args[1], args[2])
        elif nr == SCN_VA_TO_PA:
            assert args[2] == 0                        # the TA clears x2 before the call
            res, pa, run = self.va_to_pa(args[0])
            uc.reg_write(A.UC_ARM64_REG_X1, pa)
            if self.report_runs:
                uc.reg_write(A.UC_ARM64_REG_X2, run)
        else:
            raise AssertionError(f"unexpected syscall {nr}")
        uc.reg_write(A.UC_ARM64_REG_X0, res)

    # --- entering the TA ---------------------------------------------------------------------
    def invoke(self, cmd: int, types: tuple[int, ...] = (), vals: tuple[int, ...] = (),
               func: int = 2) -> tuple[int, list[int]]:
        full = list(vals) + [0] * (8 - len(vals))
        packed = sum(t << (4 * i) for i, t in enumerate(types))
        self.uc.mem_write(self.params_va, struct.pack("<9Q", packed, *full))
        for n in range(31):
            self.uc.reg_write(getattr(A, f"UC_ARM64_REG_X{n}"), 0)
        for i, v in enumerate((func, 0x1234, self.params_va, cmd)):
            self.uc.reg_write(getattr(A, f"UC_ARM64_REG_X{i}"), v)
        self.uc.reg_write(A.UC_ARM64_REG_SP, self.params_va)
        self.uc.reg_write(A.UC_ARM64_REG_CPACR_EL1, 3 << 20)
        self.uc.reg_write(A.UC_ARM64_REG_PSTATE, 0)
        self.calls, self.logs, self.exit = [], [], None
        self.uc.emu_start(self.base + self.img.entry, 0, count=200_000_000)
        assert self.exit is not None and self.exit[0] == SCN_RETURN, self.exit
        out = struct.unpack("<8Q", bytes(self.uc.mem_read(self.params_va + 8, 64)))
        return self.exit[1], list(out)

    def nrs(self) -> list[int]:
        return [c[0] for c in self.calls]

    # --- commands ------------------------------------------------------------------------------
    def write(self, va: int, data: bytes) -> None:
        self.uc.mem_write(va, data)

    def read(self, va: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(va, size))

    def set_key(self, key: bytes, bits: int | None = None) -> int:
        self.write(KEY_VA, key)
        return self.invoke(SET_KEY, (MEM_IN, VALUE_IN),
                           (KEY_VA, len(key), len(key) * 8 if bits is None else bits, 0))[0]

    def set_iv(self, iv: bytes) -> int:
        self.write(KEY_VA, iv)
        return self.invoke(SET_IV, (MEM_IN,), (KEY_VA, len(iv)))[0]

    def crypt(self, cmd: int, data: bytes, record: int = 0, flags: int = 0, *,
              src: int = NS_VA, dst: int = SEC_VA, out_size: int | None = None
              ) -> tuple[int, bytes, list[int]]:
        """Run cmd 2/3/4 on ``data`` placed at ``src``; (result, output bytes, vals)."""
        self.write(src, data)
        size = BUF_SIZE - (dst & (BUF_SIZE - 1)) if out_size is None else out_size
        res, vals = self.invoke(cmd, CRYPT_TYPES, (src, len(data), dst, size, record, flags))
        out = self.read(dst, vals[6]) if res == SUCCESS else b""
        if res == SUCCESS:
            assert vals[3] == vals[6] and vals[7] == 0
        return res, out, vals


def keyed(key: bytes, iv: bytes, **kw: object) -> DecryptTa:
    ta = DecryptTa(**kw)     # type: ignore[arg-type]
    assert ta.set_key(key) == SUCCESS and ta.set_iv(iv) == SUCCESS
    return ta


KEY128 = bytes.fromhex("1f9423681beb9a79215820f6bda73d0f")
KEY256 = bytes(range(32))
IV = bytes.fromhex("e9aa8e834d8d70b7e0d254ff670dd718")
