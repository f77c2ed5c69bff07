"""Fuzz targets for the parsers that read guest-controlled bytes (issue 10, part 3).

Each ``TARGETS[name](data)`` feeds ``data`` to one parser through its real entry point and
returns normally when the component answered with its documented error (an errno, a TEE or
FF-A error code, ``FfaError``, ``TaLoadError``, ``AesStreamError``); any other exception, or
a broken invariant (emu/invariants.py) after a guest-triggered call, propagates: that is a
finding.  Used by ``run_fuzz.py`` (atheris, coverage-guided, ``make fuzz``) and by
``test_fuzz.py`` (hypothesis fallback + regression-corpus replay, in CI).

Platforms are booted once per process and reused; a target that can change state checks the
invariants after every input and reboots when the previous input left the platform unusable
in a documented way (e.g. every secure thread parked in an RPC).
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:          # tests/: smc_helpers
    sys.path.insert(0, str(HERE.parent))

import tzemu  # noqa: E402
from emu.invariants import check_invariants  # noqa: E402
from linux_side.errors import LinuxError  # noqa: E402


class Finding(AssertionError):
    """A fuzz input broke an invariant."""


_platforms: dict[str, object] = {}


def platform(kind: str, fresh: bool = False):
    if fresh or kind not in _platforms:
        opts = {"msg": dict(abi="smc"),
                "ffa": dict(abi="ffa", probe_linux=False, protmem="dynamic"),
                "ioctl": dict(abi="smc", protmem="dynamic")}[kind]
        p = tzemu.boot(**opts)
        if kind == "ffa":
            f = p.ffa
            f.version(1, 2)
            assert f.map_rxtx(pages=2).ok
        _platforms[kind] = p
    return _platforms[kind]


def _check(p, what: str) -> None:
    errs = check_invariants(p)
    if errs:
        raise Finding(f"{what}: " + "; ".join(errs))


# --- optee_msg_arg through the real std-call path ------------------------------------------------
def fuzz_msg_arg(data: bytes) -> None:
    """Random bytes as the optee_msg_arg of OPTEE_SMC_CALL_WITH_ARG (first byte picks the
    function id), RPCs served like tee-supplicant would (smc_helpers.RawCaller)."""
    from smc_helpers import CALL_WITH_ARG, CALL_WITH_REGD_ARG, CALL_WITH_RPC_ARG, RawCaller
    if not data:
        return
    p = platform("msg")
    rc = getattr(p, "_fuzz_rc", None)
    if rc is None:
        rc = p._fuzz_rc = RawCaller(p)
    fid = (CALL_WITH_ARG, CALL_WITH_RPC_ARG, CALL_WITH_REGD_ARG)[data[0] % 3]
    arg = data[1:0x1001]
    p.physmem.write(rc.page, arg + bytes(0x2000 - len(arg)))
    r = p.smc(fid, rc.page >> 32, rc.page & 0xFFFFFFFF)
    steps = 0
    while (r[0] & 0xFFFF0000) == 0xFFFF0000 and r[0] != 0xFFFFFFFF and steps < 64:
        r = p.smc(*rc.answer(r))
        steps += 1
    _check(p, f"msg_arg fid {fid:#x}")
    if steps >= 64 or r[0] == 0xFFFF0005:    # parked or out of threads: start afresh
        platform("msg", fresh=True)


# --- FF-A descriptors: the structural parser and the SPMC behind FFA_MEM_* ------------------------
def fuzz_ffa_desc(data: bytes) -> None:
    from tee_os.spmc.descriptors import FfaError, parse_mem_region, parse_relinquish
    for version in ((1, 0), (1, 1), (1, 2)):
        try:
            parse_mem_region(data, version)
        except FfaError:
            pass
    try:
        parse_relinquish(data)
    except FfaError:
        pass


def fuzz_ffa_call(data: bytes) -> None:
    """Descriptor bytes in the TX buffer, then FFA_MEM_SHARE/LEND/DONATE (first byte) with
    total/fragment lengths from the next bytes; completed handles are reclaimed again."""
    if len(data) < 3:
        return
    p = platform("ffa")
    f, c = p.ffa, p.ffa.c
    fid = (c.FFA_MEM_SHARE_64, c.FFA_MEM_LEND_64, c.FFA_MEM_DONATE_64,
           c.FFA_MEM_SHARE_32, c.FFA_MEM_LEND_32)[data[0] % 5]
    desc = data[3:3 + f.pages * 0x1000]
    total = len(desc) if data[1] & 1 else len(desc) + data[2]
    frag = len(desc) if data[1] & 2 else min(len(desc), data[2])
    f.write_tx(desc)
    r = f.call(fid, total, frag, 0, 0)
    handles = []
    if r.ok:
        handles.append(r.handle)
    for rest in range(4):                        # a few follow-up fragments, if asked for
        if r.regs[0] & 0xFFFFFFFF != c.FFA_MEM_FRAG_RX:
            break
        h = (r.regs[1] & 0xFFFFFFFF) | (r.regs[2] & 0xFFFFFFFF) << 32
        r = f.frag_tx(h, desc[:max(1, frag)])
        if r.ok:
            handles.append(r.handle)
    _check(p, f"ffa mem call {fid:#x}")
    for h in handles:
        f.release_protmem(h)
        f.reclaim(h)
    _check(p, "ffa reclaim")


# --- ioctl structs -------------------------------------------------------------------------------
def fuzz_ioctl(data: bytes) -> None:
    """A random ioctl on /dev/tee0 or a protected heap node: request picked from the real
    ones (or raw from the input), argument = the rest of the input."""
    if len(data) < 5:
        return
    p = platform("ioctl")
    k = p.kernel
    c = k.c
    known = [c.TEE_IOC_VERSION, c.TEE_IOC_SHM_ALLOC, c.TEE_IOC_SHM_REGISTER,
             c.TEE_IOC_SHM_REGISTER_FD, c.TEE_IOC_OPEN_SESSION, c.TEE_IOC_INVOKE,
             c.TEE_IOC_CLOSE_SESSION, c.TEE_IOC_CANCEL, c.TEE_IOC_SUPPL_RECV,
             c.TEE_IOC_SUPPL_SEND, c.DMA_HEAP_IOCTL_ALLOC]
    sel = data[0]
    request = known[sel % len(known)] if sel < 0xF0 else struct.unpack_from("<I", data, 1)[0]
    arg = data[5:]
    if sel & 1 and len(arg) >= 16 and request in (c.TEE_IOC_OPEN_SESSION, c.TEE_IOC_INVOKE):
        # point tee_ioctl_buf_data at user memory holding the rest of the input
        va = k.user_alloc(max(len(arg), 16))
        k.copy_to_user(va, arg)
        arg = struct.pack("<QQ", va, len(arg) - (data[1] & 0xF))
    path = "/dev/dma_heap/protected,secure-video" if request == c.DMA_HEAP_IOCTL_ALLOC \
        and sel & 2 else "/dev/tee0"
    before = set(k.files)
    fd = k.open(path)
    try:
        try:
            out = k.ioctl(fd, request, arg)
        except LinuxError:
            out = None
    finally:
        k.close(fd)
        for extra in set(k.files) - before - {fd}:      # fds the ioctl created
            k.close(extra)
    _check(p, f"ioctl {request:#x}")
    del out


# --- TA ELF headers --------------------------------------------------------------------------------
_ELF: list[bytes] = []


def fuzz_ta_elf(data: bytes) -> None:
    """Raw bytes, or a real TA ELF with input-chosen bytes overwritten (first byte picks)."""
    from tee_os.ta_loader import TaLoadError, load_ta_elf
    if not _ELF:
        from ta.build import builtin_tas
        _ELF.extend(sorted(elf for _name, elf in builtin_tas().values()))
    if data and data[0] & 1:
        img = bytearray(_ELF[data[0] % len(_ELF)])
        body = data[1:]
        for i in range(0, len(body) - 2, 3):       # (offset16, byte) patches into the headers
            off = (body[i] | body[i + 1] << 8) % len(img)
            img[off] = body[i + 2]
        data = bytes(img)
    try:
        load_ta_elf(data, name="<fuzz>")
    except TaLoadError:
        pass


# --- the aesenc stream reader ----------------------------------------------------------------------
def fuzz_aes_stream(data: bytes) -> None:
    from tzemu.aes_stream import AesStreamError, decrypt_stream
    if not data:
        return
    mode = data[0]
    key = bytes(range(16)) if mode & 0x40 else bytes(32)
    cipher = "aes-256-cbc" if mode & 0x40 == 0 and mode & 0x80 else "aes-128-cbc"
    if cipher == "aes-128-cbc":
        key = key[:16]
    body = data[2:]
    kw = {}
    if mode & 4:
        kw["chunk"] = (data[1] if len(data) > 1 else 0) * 16 - 16 * (mode & 8 == 8)
    elif mode & 16:
        kw["record_sizes"] = [b * 4 for b in data[1:4]]
    try:
        decrypt_stream(body, key, bytes(16), cipher, serialize_iv=bool(mode & 1),
                       per_buffer_padding=bool(mode & 2), **kw)
    except AesStreamError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "msg_arg": fuzz_msg_arg, "ffa_desc": fuzz_ffa_desc, "ffa_call": fuzz_ffa_call,
    "ioctl": fuzz_ioctl, "ta_elf": fuzz_ta_elf, "aes_stream": fuzz_aes_stream,
}
