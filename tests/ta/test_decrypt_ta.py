"""ta/decrypt_ta.S on a bare unicorn at EL0, entered the OP-TEE way, with a fake syscall layer
(CHECK_ACCESS_RIGHTS from a region table, LOG, and the tzemu VA_TO_PA extension 0x7000), and a
real CryptoEngine mapped at CRYPTO_ENGINE_VA for the engine path.

The TA's memref buffers are pages of a real PhysMem (so the engine's DMA sees the same bytes);
the VA -> PA page map is chosen per test, contiguous or scattered. Everything is compared with
the ``cryptography`` package."""
from __future__ import annotations

import functools
import os
import re
import struct
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings, strategies as st
from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM, Uc
from unicorn import UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE
from unicorn import arm64_const as A

from emu import tzc400 as T
from emu.abi import secure_abi
from emu.devices import crypto_engine as E
from emu.devices.crypto_engine import CryptoEngine
from emu.events import EventBus
from emu.physmem import PhysMem
from emu.platform_map import load_memory_map
from emu.tzc400 import Tzc400
from ta.build import TZEMU_TA_DEFINES, builtin_tas, load_manifest
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


# ------------------------------------------------------------------------------- the image

def test_manifest_entry_and_image() -> None:
    entry = next(e for e in load_manifest() if e["name"] == "decrypt")
    assert uuid.UUID(entry["uuid"]) == DECRYPT_UUID
    img = image()
    assert img.uuid == DECRYPT_UUID and img.stack_size == 0x2000
    assert img.flags == 0x2C == (C["TA_FLAG_SECURE_DATA_PATH"] | C["TA_FLAG_SINGLE_INSTANCE"]
                                 | C["TA_FLAG_MULTI_SESSION"])
    assert img.relocations == ()


def test_engine_register_offsets_match_the_device() -> None:
    """The TA's .equ copy of the register map is the device's."""
    src = (Path(__file__).resolve().parents[2] / "ta" / "decrypt_ta.S").read_text()
    equs = {m[1]: int(m[2], 0) for m in re.finditer(r"\.equ\s+ENG_(\w+),\s*(0x[0-9A-Fa-f]+|\d+)",
                                                       src)}
    for name in ("KEY_BITS", "SRC_LO", "SRC_HI", "DST_LO", "DST_HI", "LEN", "RECORD", "CTRL",
                 "STATUS", "ERR_CODE", "OUT_LEN", "KEY0", "IV0", "IV_OUT0"):
        assert equs[name] == getattr(E, name), name
    assert equs["CTRL_START"] == E.CTRL_START and equs["CTRL_DECRYPT"] == E.CTRL_DECRYPT
    assert equs["CTRL_PER_RECORD_PADDING"] == E.CTRL_PER_RECORD_PADDING
    assert (equs["STATUS_DONE"], equs["STATUS_ERROR"]) == (E.STATUS_DONE, E.STATUS_ERROR)
    assert equs["ERR_PADDING"] == E.ERR_PADDING


def test_entry_functions_and_unknown_command() -> None:
    ta = DecryptTa()
    assert ta.invoke(0, func=0)[0] == SUCCESS and ta.nrs() == [SCN_RETURN]
    assert ta.invoke(0, func=1)[0] == SUCCESS
    assert ta.invoke(0, func=3)[0] == NOT_SUPPORTED
    assert ta.invoke(5, CRYPT_TYPES)[0] == NOT_SUPPORTED


# ---------------------------------------------------------------------- bit-exact data paths

@pytest.mark.parametrize("key", [KEY128, KEY256], ids=["aes128", "aes256"])
@pytest.mark.parametrize("cmd", [DECRYPT, DECRYPT_ENGINE], ids=["cpu", "engine"])
def test_per_record_padding_many_records(key: bytes, cmd: int) -> None:
    """filesrc blocksize=4096 -> aesenc: records of 4112 bytes, the last one shorter."""
    plain = bytes((i * 31 + 7) & 0xFF for i in range(4096 * 9 + 1234))
    ct = ref_encrypt(key, IV, plain, 4096, PER_RECORD)
    assert len(ct) == 9 * 4112 + 1248
    ta = keyed(key, IV)
    res, out, vals = ta.crypt(cmd, ct, 4112, PER_RECORD)
    assert res == SUCCESS and out == plain and vals[6] == len(plain)
    checks = [c for c in ta.calls if c[0] == SCN_CHECK]
    assert checks == [(SCN_CHECK, ANY_OWNER | READ, NS_VA, len(ct)),
                      (SCN_CHECK, ANY_OWNER | WRITE, SEC_VA, BUF_SIZE)]
    assert (SCN_VA_TO_PA in ta.nrs()) == (cmd == DECRYPT_ENGINE)
    if cmd == DECRYPT_ENGINE:
        assert ta.engine.operations == 10                   # one per record, contiguous buffers


@pytest.mark.parametrize("key", [KEY128, KEY256], ids=["aes128", "aes256"])
@pytest.mark.parametrize("cmd", [DECRYPT, DECRYPT_ENGINE], ids=["cpu", "engine"])
def test_stream_chain_continues_across_invokes(key: bytes, cmd: int) -> None:
    """per-buffer-padding=false: plain CBC; the chain lives in the TA between invokes, the
    padding is removed only from the buffer flagged final."""
    plain = os.urandom(10000)
    ct = ref_encrypt(key, IV, plain, 0, FINAL)
    assert len(ct) == 10016
    ta = keyed(key, IV)
    res1, out1, _ = ta.crypt(cmd, ct[:4096], 0, 0)
    res2, out2, _ = ta.crypt(cmd, ct[4096:8192], 0, 0, dst=SEC_VA + 0x10000)
    res3, out3, _ = ta.crypt(cmd, ct[8192:], 0, FINAL, dst=SEC_VA + 0x20000)
    assert (res1, res2, res3) == (SUCCESS,) * 3
    assert out1 + out2 + out3 == plain


@pytest.mark.parametrize("key", [KEY128, KEY256], ids=["aes128", "aes256"])
def test_per_record_chain_across_invokes_and_exact_output(key: bytes) -> None:
    """One frame per invoke into an exactly frame-sized output buffer (record = frame + 16)."""
    frames = [bytes([n]) * 4096 for n in range(3)]
    ct = ref_encrypt(key, IV, b"".join(frames), 4096, PER_RECORD)
    for cmd in (DECRYPT, DECRYPT_ENGINE):
        ta = keyed(key, IV)
        for n in range(3):
            res, out, _ = ta.crypt(cmd, ct[n * 4112:(n + 1) * 4112], 4112, PER_RECORD,
                                   dst=SEC_VA + 0x8000, out_size=4096)
            assert res == SUCCESS and out == frames[n]


def test_engine_path_with_scattered_pages_and_unaligned_buffers() -> None:
    """Physically discontiguous pages (a page boundary can cut a block): the TA splits the
    engine operations at every discontinuity and decrypts a cut block on the CPU; the output is
    the CPU path's."""
    import random
    pages = [NS_PA + i * PAGE for i in range(BUF_SIZE // PAGE)]
    random.Random(7).shuffle(pages)
    sec = [SEC_PA + i * PAGE for i in range(BUF_SIZE // PAGE)]
    sec = sec[1::2] + sec[0::2]
    plain = os.urandom(3 * 5000 + 77)
    for key, record, flags in ((KEY128, 5008, PER_RECORD), (KEY256, 5008, PER_RECORD),
                               (KEY128, 0, FINAL), (KEY256, 0, 0)):
        src_plain = plain if flags else plain[:len(plain) & ~15]
        ct = ref_encrypt(key, IV, src_plain, 5000, flags)
        outs = []
        for cmd, src_off, dst_off in ((DECRYPT, 0, 0), (DECRYPT_ENGINE, 0, 0),
                                      (DECRYPT_ENGINE, 0x3F5, 0x7), (DECRYPT_ENGINE, 8, 0xFF9)):
            ta = keyed(key, IV, ns_pages=pages, sec_pages=sec)
            res, out, _ = ta.crypt(cmd, ct, record, flags, src=NS_VA + src_off,
                                   dst=SEC_VA + dst_off)
            assert res == SUCCESS
            outs.append(out)
            if cmd == DECRYPT_ENGINE:
                assert ta.engine.operations > 3
        assert all(o == src_plain for o in outs)


@settings(max_examples=40, deadline=None)
@given(key=st.binary(min_size=16, max_size=16) | st.binary(min_size=32, max_size=32),
       iv=st.binary(min_size=16, max_size=16), plain=st.binary(max_size=700),
       record=st.integers(2, 20), flags=st.sampled_from([0, PER_RECORD, FINAL]),
       engine=st.booleans())
def test_random_decrypt_matches_cryptography(key: bytes, iv: bytes, plain: bytes, record: int,
                                             flags: int, engine: bool) -> None:
    rec = record * 16
    if flags == 0:
        plain = plain[:len(plain) & ~15]
    ct = ref_encrypt(key, iv, plain, rec - 16, flags)
    ta = keyed(key, iv)
    res, out, vals = ta.crypt(DECRYPT_ENGINE if engine else DECRYPT, ct, rec, flags)
    assert res == SUCCESS and out == ref_decrypt(key, iv, ct, rec, flags) == plain
    # The chain went on: the next buffer decrypts with IV = the last ciphertext block.
    nxt = ref_encrypt(key, ct[-16:] if ct else iv, b"next", 0, PER_RECORD)
    assert ta.crypt(DECRYPT, nxt, 0, PER_RECORD)[1] == b"next"


@settings(max_examples=40, deadline=None)
@given(key=st.binary(min_size=16, max_size=16) | st.binary(min_size=32, max_size=32),
       iv=st.binary(min_size=16, max_size=16), plain=st.binary(max_size=700),
       record=st.integers(0, 300), flags=st.sampled_from([0, PER_RECORD, FINAL]))
def test_random_encrypt_matches_cryptography(key: bytes, iv: bytes, plain: bytes, record: int,
                                             flags: int) -> None:
    if flags == 0:
        plain = plain[:len(plain) & ~15]
    ta = keyed(key, iv)
    res, out, vals = ta.crypt(ENCRYPT, plain, record, flags, src=SEC_VA, dst=NS_VA)
    want = ref_encrypt(key, iv, plain, record, flags) if plain or flags == FINAL else b""
    assert res == SUCCESS and out == want
    # ...and the TA decrypts its own stream (records of the ciphertext size).
    ta2 = keyed(key, iv)
    rec_ct = ((record or len(plain)) // 16 + 1) * 16
    res, back, _ = ta2.crypt(DECRYPT, out, rec_ct if flags == PER_RECORD else 0, flags)
    assert res == SUCCESS and back == plain


def test_encrypt_aesenc_sizes() -> None:
    """§5: 10000 bytes from 4096-byte chunks -> 10048 (per record) / 10016 (final only)."""
    plain = os.urandom(10000)
    ta = keyed(KEY128, IV)
    res, out, _ = ta.crypt(ENCRYPT, plain, 4096, PER_RECORD, src=SEC_VA, dst=NS_VA)
    assert res == SUCCESS and len(out) == 10048 == 4112 + 4112 + 1824
    assert out == ref_encrypt(KEY128, IV, plain, 4096, PER_RECORD)
    ta = keyed(KEY128, IV)
    res, out, _ = ta.crypt(ENCRYPT, plain, 0, FINAL, src=SEC_VA, dst=NS_VA)
    assert res == SUCCESS and out == cbc(KEY128, IV, pad(plain), False) and len(out) == 10016
    ta = keyed(KEY128, IV)
    assert ta.crypt(ENCRYPT, b"", 0, FINAL, src=SEC_VA, dst=NS_VA)[1] == \
        cbc(KEY128, IV, b"\x10" * 16, False)
    assert ta.crypt(ENCRYPT, b"", 4096, PER_RECORD, src=SEC_VA, dst=NS_VA)[1] == b""


def test_empty_input_writes_nothing() -> None:
    ta = keyed(KEY128, IV)
    for cmd in (DECRYPT, DECRYPT_ENGINE):
        for flags in (0, PER_RECORD, FINAL):
            res, out, vals = ta.crypt(cmd, b"", 0, flags)
            assert res == SUCCESS and out == b"" and vals[6] == 0


# ------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("cmd", [DECRYPT, DECRYPT_ENGINE], ids=["cpu", "engine"])
def test_bad_padding(cmd: int) -> None:
    plain = os.urandom(3 * 4096)
    ct = bytearray(ref_encrypt(KEY128, IV, plain, 4096, PER_RECORD))
    ct[2 * 4112 - 1] ^= 0x55                         # the last block of record 2
    ta = keyed(KEY128, IV)
    ta.write(SEC_VA, b"\xEE" * 64)
    res, out, vals = ta.crypt(cmd, bytes(ct), 4112, PER_RECORD)
    assert res == BAD_FORMAT and ta.logs == [BAD_PAD_LOG]
    assert ta.read(SEC_VA, 64) == b"\xEE" * 64       # checked before anything was written
    assert SCN_VA_TO_PA not in ta.nrs()
    # The chain did not move: the intact first record still decrypts.
    good = ref_encrypt(KEY128, IV, plain[:4096], 4096, PER_RECORD)
    assert ta.crypt(cmd, good, 4112, PER_RECORD)[:2] == (SUCCESS, plain[:4096])


@pytest.mark.parametrize("last", [0x00, 0x11, 0xFF, 0x03])
def test_bad_final_padding_values(last: int) -> None:
    """Last byte p not in 1..16, or the last p bytes not all p."""
    block = bytes(13) + bytes([2, 2, last]) if last == 0x03 else bytes(15) + bytes([last])
    ct = cbc(KEY256, IV, block, False)
    ta = keyed(KEY256, IV)
    res, _, _ = ta.crypt(DECRYPT, ct, 0, FINAL)
    assert res == BAD_FORMAT and ta.logs == [BAD_PAD_LOG]


@pytest.mark.parametrize("cmd", [DECRYPT, DECRYPT_ENGINE, ENCRYPT])
def test_short_output_reports_needed(cmd: int) -> None:
    plain = os.urandom(5000)
    ta = keyed(KEY128, IV)
    if cmd == ENCRYPT:
        data, need, rec = plain, 5008, 0
    else:
        data, need, rec = ref_encrypt(KEY128, IV, plain, 0, PER_RECORD), 5000, 0
    ta.write(SEC_VA, b"\x77" * 32)
    ta.write(NS_VA + 0x10000, data)
    res, vals = ta.invoke(cmd, CRYPT_TYPES, (NS_VA + 0x10000, len(data), SEC_VA, need - 1,
                                             rec, PER_RECORD))
    assert res == SHORT_BUFFER and vals[6] == need and vals[3] == need
    assert ta.read(SEC_VA, 32) == b"\x77" * 32
    res, vals = ta.invoke(cmd, CRYPT_TYPES, (NS_VA + 0x10000, len(data), SEC_VA, need, rec,
                                             PER_RECORD))
    assert res == SUCCESS and vals[6] == need


def test_set_key_errors() -> None:
    ta = DecryptTa()
    for key, bits in ((bytes(15), 120), (bytes(24), 192), (bytes(16), 256), (bytes(32), 128),
                      (bytes(33), 264), (b"", 0)):
        assert ta.set_key(key, bits) == BAD_PARAMETERS
    assert ta.invoke(SET_KEY, (MEM_IN,), (KEY_VA, 16))[0] == BAD_PARAMETERS
    assert ta.set_iv(bytes(15)) == BAD_PARAMETERS and ta.set_iv(bytes(17)) == BAD_PARAMETERS
    # A key outside any memref is refused by the access check.
    assert ta.invoke(SET_KEY, (MEM_IN, VALUE_IN), (0x9000_0000, 16, 128, 0))[0] == ACCESS_DENIED


def test_key_and_iv_state() -> None:
    ta = DecryptTa()
    ct = cbc(KEY128, IV, pad(b"hello"), False)
    assert ta.crypt(DECRYPT, ct, 0, FINAL)[0] == BAD_STATE         # no key
    assert ta.crypt(ENCRYPT, b"x", 0, FINAL)[0] == BAD_STATE
    assert ta.set_iv(IV) == SUCCESS
    assert ta.crypt(DECRYPT, ct, 0, FINAL)[0] == BAD_STATE         # still no key
    assert ta.set_key(KEY128) == SUCCESS
    assert ta.crypt(DECRYPT_ENGINE, ct, 0, FINAL)[0] == BAD_STATE  # SET_KEY forgot the IV
    assert ta.set_iv(IV) == SUCCESS
    assert ta.crypt(DECRYPT, ct, 0, FINAL)[:2] == (SUCCESS, b"hello")
    assert ta.set_key(KEY256) == SUCCESS and ta.set_iv(IV) == SUCCESS
    assert ta.crypt(DECRYPT, cbc(KEY256, IV, pad(b"hi"), False), 0, FINAL)[1] == b"hi"


def test_parameter_errors() -> None:
    ta = keyed(KEY128, IV)
    ct = ref_encrypt(KEY128, IV, bytes(100), 0, PER_RECORD)
    assert ta.crypt(DECRYPT, ct[:-1], 0, PER_RECORD)[0] == BAD_PARAMETERS    # not x16
    assert ta.crypt(DECRYPT, ct, 40, PER_RECORD)[0] == BAD_PARAMETERS        # record not x16
    assert ta.crypt(DECRYPT, ct, 0, 3)[0] == BAD_PARAMETERS                  # both flags
    assert ta.crypt(DECRYPT, ct, 0, 4)[0] == BAD_PARAMETERS                  # unknown flag
    assert ta.crypt(ENCRYPT, bytes(17), 0, 0)[0] == BAD_PARAMETERS           # plain CBC, not x16
    assert ta.invoke(DECRYPT, (MEM_IN, MEM_OUT, VALUE_IN), (NS_VA, 16, SEC_VA, 16))[0] == \
        BAD_PARAMETERS
    assert ta.invoke(DECRYPT, CRYPT_TYPES, (0x9000_0000, 16, SEC_VA, 16))[0] == ACCESS_DENIED
    assert ta.invoke(DECRYPT, CRYPT_TYPES, (NS_VA, 16, 0x9000_0000, 16))[0] == ACCESS_DENIED
    assert ta.crypt(DECRYPT, ct, 0, PER_RECORD)[:2] == (SUCCESS, bytes(100))  # state intact


def test_engine_with_a_secure_os_that_returns_no_run_length() -> None:
    """x2 left at 0: the TA assumes each VA is contiguous up to its page end, so it issues
    page-sized engine operations (and CPU blocks where a page boundary cuts one)."""
    plain = os.urandom(3 * 4096 + 100)
    ct = ref_encrypt(KEY256, IV, plain, 4096, PER_RECORD)
    for src_off in (0, 0x123):
        ta = keyed(KEY256, IV)
        ta.report_runs = False
        res, out, _ = ta.crypt(DECRYPT_ENGINE, ct, 4112, PER_RECORD, src=NS_VA + src_off)
        assert res == SUCCESS and out == plain
        assert ta.engine.operations > 4                    # more than one per record


def test_engine_bus_error_and_va_to_pa_failure() -> None:
    """The engine's write is refused by the TZC (secure writes closed on the destination):
    GENERIC with a LOG line, nothing written. A failing VA_TO_PA is returned as is."""
    npages = BUF_SIZE // PAGE
    ct = ref_encrypt(KEY128, IV, b"frame" * 100, 0, PER_RECORD)
    ta = keyed(KEY128, IV, sec_pages=[DENIED_PA + i * PAGE for i in range(npages)])
    ta.write(SEC_VA, b"\x42" * len(ct))
    res, _, _ = ta.crypt(DECRYPT_ENGINE, ct, 0, PER_RECORD)
    assert res == GENERIC and ta.logs == [b"decrypt: crypto engine error\n"]
    assert ta.read(SEC_VA, len(ct)) == b"\x42" * len(ct)
    assert ta.engine.mmio_read(E.ERR_CODE, 4) == E.ERR_BUS
    assert ta.engine.faults and ta.engine.faults[-1].direction == "write"
    ta = keyed(KEY128, IV)
    ta.va_to_pa_result = NOT_SUPPORTED
    assert ta.crypt(DECRYPT_ENGINE, ct, 0, PER_RECORD)[0] == NOT_SUPPORTED
    assert ta.logs == [b"decrypt: VA_TO_PA failed\n"]


def test_runs_at_another_base_and_instances_are_independent() -> None:
    a, b = keyed(KEY128, IV, base=0x7F000000), keyed(KEY256, IV)
    ct_a = ref_encrypt(KEY128, IV, b"A" * 50, 0, PER_RECORD)
    ct_b = ref_encrypt(KEY256, IV, b"B" * 50, 0, PER_RECORD)
    assert a.crypt(DECRYPT, ct_a, 0, PER_RECORD)[1] == b"A" * 50
    assert b.crypt(DECRYPT, ct_b, 0, PER_RECORD)[1] == b"B" * 50


def test_throughput_bare_unicorn(capsys: pytest.CaptureFixture[str]) -> None:
    """Measured, not judged hard: the CPU loop on a bare unicorn (reported in MB/s)."""
    n = BUF_SIZE - 4096
    rates = {}
    for key in (KEY128, KEY256):
        ta = keyed(key, IV)
        ct = cbc(key, IV, bytes(n), False)
        ta.write(NS_VA, ct)
        t0 = time.perf_counter()
        res, vals = ta.invoke(DECRYPT, CRYPT_TYPES, (NS_VA, n, SEC_VA, BUF_SIZE, 0, 0))
        rates[len(key) * 8] = n / (time.perf_counter() - t0) / 1e6
        assert res == SUCCESS and ta.read(SEC_VA + n - 16, 16) == bytes(16)
    with capsys.disabled():
        print(f"\ndecrypt_ta CPU path on bare unicorn: AES-128 {rates[128]:.1f} MB/s, "
              f"AES-256 {rates[256]:.1f} MB/s")
    assert rates[128] > 2 and rates[256] > 2
