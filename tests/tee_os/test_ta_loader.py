"""tee_os.ta_loader: ldelf's acceptance rules with the GP code for each refusal, robustness on
garbage, and the echo TA actually running at EL0 on a bare unicorn after loading."""
from __future__ import annotations

import struct
import uuid
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM, Uc, UcError
from unicorn import UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE
from unicorn import arm64_const as A

from emu.asm import assemble_file
from ta.build import TA_DIR, builtin_tas, ta_defines
from ta.elf_builder import build_ta_elf
from tee_os.ta_loader import (TEE_ERROR_BAD_FORMAT, TEE_ERROR_NOT_SUPPORTED, TaImage,
                              TaLoadError, load_ta_elf)

ECHO_UUID = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")
BAD_PARAMETERS, NOT_SUPPORTED, SHORT_BUFFER = 0xFFFF0006, 0xFFFF000A, 0xFFFF0010
VALUE_IN, VALUE_OUT, VALUE_INOUT, MEM_IN, MEM_OUT, MEM_INOUT = 1, 2, 3, 5, 6, 7

# ELF64 field offsets used for patching (System V gABI):
#   Elf64_Ehdr: e_ident[EI_CLASS] 4, e_type 16, e_phoff 32, e_shoff 40, e_shnum 60
#   Elf64_Phdr (56 bytes): p_type +0, p_flags +4, p_offset +8, p_vaddr +16, p_filesz +32,
#                          p_memsz +40
#   Elf64_Shdr (64 bytes): sh_name +0, sh_type +4, sh_addr +16, sh_offset +24, sh_size +32
#   Elf64_Rela: r_offset +0, r_info +8, r_addend +16;  Elf64_Dyn: d_tag +0, d_val +8
#   struct ta_head: uuid 0, stack_size 16, flags 20, depr_entry 24


def echo_elf() -> bytes:
    return builtin_tas()[ECHO_UUID][1]


def build_echo(**kw: object) -> bytes:
    """The echo TA rebuilt with builder options (for ta_head variants)."""
    prog = assemble_file(TA_DIR / "echo_ta.S", 0, defines=ta_defines())
    args = dict(uuid=ECHO_UUID, flags=0x0C, stack_size=0x2000,
                relative_relocs=[prog.sym("message_ptr")])
    args.update(kw)
    return build_ta_elf(prog, **args)


def phdr_off(elf: bytes, ptype: int) -> int:
    phoff, = struct.unpack_from("<Q", elf, 32)
    phnum, = struct.unpack_from("<H", elf, 56)
    for i in range(phnum):
        if struct.unpack_from("<I", elf, phoff + 56 * i)[0] == ptype:
            return phoff + 56 * i
    raise KeyError(ptype)


def section_header(elf: bytes, name: str) -> int:
    """File offset of the Elf64_Shdr of section ``name``."""
    shoff, = struct.unpack_from("<Q", elf, 40)
    shnum, shstrndx = struct.unpack_from("<HH", elf, 60)
    strs_off = struct.unpack_from("<Q", elf, shoff + 64 * shstrndx + 24)[0]
    for i in range(shnum):
        nm = struct.unpack_from("<I", elf, shoff + 64 * i)[0]
        if elf[strs_off + nm:].split(b"\0", 1)[0] == name.encode():
            return shoff + 64 * i
    raise KeyError(name)


def section_file_off(elf: bytes, name: str) -> int:
    return struct.unpack_from("<Q", elf, section_header(elf, name) + 24)[0]


def patched(elf: bytes, off: int, fmt: str, *values: int) -> bytes:
    out = bytearray(elf)
    struct.pack_into(fmt, out, off, *values)
    return bytes(out)


def test_echo_image() -> None:
    img = load_ta_elf(echo_elf(), name="echo")
    assert img.uuid == ECHO_UUID and img.flags == 0x0C and img.stack_size == 0x2000
    assert img.name == "echo" and img.entry == img.symbols["__ta_entry"] == 0
    assert [(s.vaddr, s.perms) for s in img.segments] == [(0, "rx"), (0x1000, "rw")]
    assert img.segments[1].memsz == 0x1000 and img.image_size == 0x2000
    assert img.relocations == ((img.symbols["message_ptr"], img.symbols["message"]),)
    assert img.ta_head_offset % 8 == 0 and img.ta_head_offset < 0x1000
    assert {"counter", "cmd_echo", "__data_start", "ta_head"} <= set(img.symbols)
    rx = img.segments[0].data
    assert uuid.UUID(bytes_le=rx[img.ta_head_offset:img.ta_head_offset + 16]) == ECHO_UUID


def test_dynsym_used_when_stripped() -> None:
    elf = echo_elf()
    sym_sh = section_header(elf, ".symtab")
    img = load_ta_elf(patched(elf, sym_sh + 4, "<I", 0))          # SHT_SYMTAB -> SHT_NULL
    assert set(img.symbols) == {"ta_head", "__ta_entry"}


def test_writable_executable_segment_is_mapped_rw() -> None:
    elf = echo_elf()
    img = load_ta_elf(patched(elf, phdr_off(elf, 1) + 56 + 4, "<I", 7))   # RW -> RWX
    assert img.segments[1].perms == "rw"


def _bad_cases() -> list[tuple[str, Callable[[], bytes], int, str]]:
    e = echo_elf
    rw_ph = lambda elf: phdr_off(elf, 1) + 56                   # second PT_LOAD
    rela = lambda elf: section_file_off(elf, ".rela.dyn")
    dyn = lambda elf: section_file_off(elf, ".dynamic")
    dynstr = lambda elf: section_file_off(elf, ".dynstr")
    return [
        ("elfclass32", lambda: patched(e(), 4, "<B", 1), TEE_ERROR_NOT_SUPPORTED, "32-bit"),
        ("et_exec", lambda: patched(e(), 16, "<H", 2), TEE_ERROR_NOT_SUPPORTED, "ET_DYN"),
        ("machine", lambda: patched(e(), 18, "<H", 40), TEE_ERROR_NOT_SUPPORTED, "EM_AARCH64"),
        ("truncated_hdr", lambda: e()[:40], TEE_ERROR_BAD_FORMAT, "not an ELF"),
        ("truncated", lambda: e()[:0x1200], TEE_ERROR_BAD_FORMAT, "section header"),
        ("garbage", lambda: b"\x00garbage" * 100, TEE_ERROR_BAD_FORMAT, "not an ELF"),
        ("memsz<filesz", lambda: patched(e(), rw_ph(e()) + 40, "<Q", 8), TEE_ERROR_BAD_FORMAT,
         "memsz"),
        ("not_readable", lambda: patched(e(), rw_ph(e()) + 4, "<I", 2),
         TEE_ERROR_NOT_SUPPORTED, "not readable"),
        ("pt_tls", lambda: patched(e(), phdr_off(e(), 0x6474E551), "<I", 7),
         TEE_ERROR_NOT_SUPPORTED, "TLS not supported"),
        # DT_FLAGS_1 (second to last) -> DT_NEEDED, d_val 1 = "ta_head" in .dynstr
        ("dt_needed", lambda: patched(e(), dyn(e()) + 16 * 9, "<qQ", 1, 1),
         TEE_ERROR_NOT_SUPPORTED, "shared TA libraries"),
        ("reloc_type", lambda: patched(e(), rela(e()) + 8, "<Q", 257), TEE_ERROR_BAD_FORMAT,
         "R_AARCH64_ABS64"),
        ("reloc_offset", lambda: patched(e(), rela(e()), "<Q", 0x2000), TEE_ERROR_BAD_FORMAT,
         "outside the image"),
        ("no_ta_head", lambda: patched(e(), dynstr(e()) + 1, "<B", ord("x")),
         TEE_ERROR_BAD_FORMAT, "ta_head"),
        ("bad_flags", lambda: build_echo(flags=0x4000), TEE_ERROR_BAD_FORMAT, "TA_FLAGS_MASK"),
        ("concurrent", lambda: build_echo(flags=0x10C), TEE_ERROR_BAD_FORMAT, "CONCURRENT"),
        ("stack_zero", lambda: build_echo(stack_size=0), TEE_ERROR_BAD_FORMAT, "stack_size"),
        ("stack_unaligned", lambda: build_echo(stack_size=0x2008), TEE_ERROR_BAD_FORMAT,
         "16-byte"),
        ("legacy", lambda: build_echo(depr_entry=0x1234), TEE_ERROR_NOT_SUPPORTED, "legacy"),
    ]


@pytest.mark.parametrize("make, code, words", [c[1:] for c in _bad_cases()],
                         ids=[c[0] for c in _bad_cases()])
def test_refusals(make: Callable[[], bytes], code: int, words: str) -> None:
    with pytest.raises(TaLoadError) as info:
        load_ta_elf(make(), name="bad")
    assert info.value.tee_error == code, info.value.message
    assert words in info.value.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_only_raise_ta_load_error(data: bytes) -> None:
    for blob in (data, b"\x7fELF\x02\x01\x01" + data):
        with pytest.raises(TaLoadError):
            load_ta_elf(blob)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutations_only_raise_ta_load_error(data: st.DataObject) -> None:
    elf = bytearray(echo_elf())
    # Favour the headers and metadata (first 0x1400 bytes and the section table).
    region = data.draw(st.sampled_from([(0, 0x100), (0x1000, 0x1400), (0, len(elf))]))
    for _ in range(data.draw(st.integers(1, 3))):
        elf[data.draw(st.integers(*region).filter(lambda i: i < len(elf)))] = \
            data.draw(st.integers(0, 255))
    try:
        img = load_ta_elf(bytes(elf))
    except TaLoadError as exc:
        assert exc.tee_error in (TEE_ERROR_BAD_FORMAT, TEE_ERROR_NOT_SUPPORTED, 0xFFFF000C)
    else:
        assert isinstance(img, TaImage)


# --------------------------------------------------------------------------- running the TA

class TaRunner:
    """Map a TaImage at BASE on a bare unicorn, enter it at EL0 like OP-TEE, serve syscalls."""

    BASE, STACK_TOP, SHM = 0x400000, 0x800000, 0x10000000

    def __init__(self, img: TaImage) -> None:
        self.img = img
        self.uc = uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        perms = {"r": UC_PROT_READ, "rx": UC_PROT_READ | UC_PROT_EXEC,
                 "rw": UC_PROT_READ | UC_PROT_WRITE}
        for seg in img.segments:
            uc.mem_map(self.BASE + seg.vaddr, (seg.memsz + 0xFFF) & ~0xFFF, perms[seg.perms])
            uc.mem_write(self.BASE + seg.vaddr, seg.data)
        for off, addend in img.relocations:
            uc.mem_write(self.BASE + off, struct.pack("<Q", self.BASE + addend))
        stack = (img.stack_size + 0xFFF) & ~0xFFF
        uc.mem_map(self.STACK_TOP - stack, stack, UC_PROT_READ | UC_PROT_WRITE)
        uc.mem_map(self.SHM, 0x10000, UC_PROT_READ | UC_PROT_WRITE)
        uc.hook_add(UC_HOOK_INTR, self._intr)
        self.handlers: dict[int, Callable[[int, int, int], int]] = {}
        self.calls: list[tuple[int, int, int, int]] = []

    def _intr(self, uc: Uc, intno: int, _user: object) -> None:
        assert intno == 2, f"unexpected exception {intno}"        # EXCP_SWI: svc
        num = uc.reg_read(A.UC_ARM64_REG_X8)
        args = [uc.reg_read(getattr(A, f"UC_ARM64_REG_X{i}")) for i in range(3)]
        self.calls.append((num, *args))
        if num in (0, 2):                                         # RETURN / PANIC
            self.exit = (num, args[0] & 0xFFFFFFFF)
            uc.emu_stop()
            return
        uc.reg_write(A.UC_ARM64_REG_X0, self.handlers[num](*args))

    def invoke(self, cmd: int, types: tuple[int, ...] = (), vals: tuple[int, ...] = (),
               func: int = 2, exit_via: int = 0) -> tuple[int, list[int]]:
        """Enter the TA; return (x0 of the exit syscall ``exit_via``, vals[8] afterwards)."""
        packed = sum(t << (4 * i) for i, t in enumerate(types))
        params = self.STACK_TOP - 192                             # ROUNDUP(136, 64)
        full = list(vals) + [0] * (8 - len(vals))
        self.uc.mem_write(params, struct.pack("<9Q", packed, *full))
        for i, v in enumerate((func, 0x1234, params, cmd)):
            self.uc.reg_write(getattr(A, f"UC_ARM64_REG_X{i}"), v)
        self.uc.reg_write(A.UC_ARM64_REG_SP, params)
        self.uc.reg_write(A.UC_ARM64_REG_CPACR_EL1, 3 << 20)
        self.uc.reg_write(A.UC_ARM64_REG_PSTATE, 0)               # EL0t
        self.exit = None
        self.uc.emu_start(self.BASE + self.img.entry, 0, count=1_000_000)
        assert self.exit is not None and self.exit[0] == exit_via, self.exit
        out = struct.unpack("<8Q", self.uc.mem_read(params + 8, 64))
        return self.exit[1], list(out)


@pytest.fixture
def ta() -> TaRunner:
    return TaRunner(load_ta_elf(echo_elf(), name="echo"))


def test_open_close_and_unknown(ta: TaRunner) -> None:
    assert ta.invoke(0, func=0)[0] == 0
    assert ta.invoke(0, func=1)[0] == 0
    assert ta.invoke(0, func=3)[0] == NOT_SUPPORTED
    assert ta.invoke(99)[0] == NOT_SUPPORTED
    assert [c[0] for c in ta.calls] == [0, 0, 0, 0]


def test_inc_value(ta: TaRunner) -> None:
    res, vals = ta.invoke(0, (VALUE_INOUT,), (41, 0xFFFFFFFF))
    assert res == 0 and vals[:2] == [42, 0]                       # 32-bit values wrap
    assert ta.invoke(0, (VALUE_IN,), (1, 2))[0] == BAD_PARAMETERS


def test_counter_keeps_state(ta: TaRunner) -> None:
    assert ta.invoke(2, (VALUE_OUT,)) == (0, [1] + [0] * 7)
    assert ta.invoke(2, (VALUE_OUT,))[1][0] == 2
    assert ta.invoke(2, (VALUE_OUT, VALUE_IN))[0] == BAD_PARAMETERS


def test_echo_copies_and_short_buffer(ta: TaRunner) -> None:
    msg = bytes(range(1, 20))                                     # 19: 8-byte chunks + tail
    src, dst = ta.SHM, ta.SHM + 0x1000
    ta.uc.mem_write(src, msg)
    res, vals = ta.invoke(1, (MEM_IN, MEM_OUT), (src, len(msg), dst, 64))
    assert res == 0 and vals[3] == len(msg)
    assert bytes(ta.uc.mem_read(dst, 64)) == msg + bytes(64 - len(msg))
    res, vals = ta.invoke(1, (MEM_IN, MEM_OUT), (src, len(msg), dst + 0x100, 4))
    assert res == SHORT_BUFFER and vals[3] == len(msg)
    assert bytes(ta.uc.mem_read(dst + 0x100, 4)) == bytes(4)
    assert ta.invoke(1, (MEM_IN, MEM_IN), (src, 1, dst, 1))[0] == BAD_PARAMETERS


def test_reloc_points_at_message(ta: TaRunner) -> None:
    res, vals = ta.invoke(11, (VALUE_OUT,))
    assert res == 0 and vals[0] == vals[1] == ta.BASE + ta.img.symbols["message"]
    assert bytes(ta.uc.mem_read(vals[0], 25)) == b"echo_ta relocated message"


def test_syscalls(ta: TaRunner) -> None:
    logged: list[bytes] = []
    ta.handlers[1] = lambda buf, n, _x: logged.append(bytes(ta.uc.mem_read(buf, n))) or 0
    assert ta.invoke(4)[0] == 0 and logged == [b"echo_ta: hello from S-EL0\n"]
    ta.handlers[8] = lambda flags, buf, n: 0xFFFF0001 if flags == 7 else 0
    assert ta.invoke(7, (MEM_INOUT, VALUE_IN), (ta.SHM, 16, 7))[0] == 0xFFFF0001
    assert ta.calls[-2] == (8, 7, ta.SHM, 16)
    assert ta.invoke(10, (VALUE_OUT,))[1][0] == 0
    assert ta.calls[-2] == (8, 3, ta.BASE + ta.img.symbols["counter"], 8)

    def get_time(cat: int, ptr: int, _x: int) -> int:
        ta.uc.mem_write(ptr, struct.pack("<II", 1700000000 + cat, 250))
        return 0
    ta.handlers[13] = get_time
    assert ta.invoke(8, (VALUE_OUT,))[1][:2] == [1700000002, 250]
    ta.handlers[13] = lambda *_: 0xFFFF5000
    assert ta.invoke(8, (VALUE_OUT,))[0] == 0xFFFF5000
    ta.handlers[33] = lambda buf, n, _x: ta.uc.mem_write(buf, b"\xAA" * n) or 0
    assert ta.invoke(9, (MEM_OUT,), (ta.SHM, 8))[0] == 0
    assert bytes(ta.uc.mem_read(ta.SHM, 9)) == b"\xAA" * 8 + b"\0"
    assert ta.invoke(6, (VALUE_IN,), (1000,))[0] == 0


def test_panic_and_fault(ta: TaRunner) -> None:
    assert ta.invoke(3, (VALUE_IN,), exit_via=2)[0] == 0xDEAD     # PANIC, never RETURN
    with pytest.raises(UcError):
        ta.invoke(5)
