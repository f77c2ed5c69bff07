"""emu.devices.crypto_engine: the secure AES-CBC DMA engine behind the TZC-400 — register frame,
records and padding like the decrypt TA, chaining through IV_OUT, and errors that never write
(a TZC-denied destination above all)."""
from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, UC_PROT_ALL, Uc
from unicorn import arm64_const as A

from emu import tzc400 as T
from emu.asm import assemble
from emu.devices import crypto_engine as E
from emu.devices.crypto_engine import CryptoEngine, CryptoEngineError
from emu.events import EventBus
from emu.physmem import PhysMem
from emu.platform_map import load_memory_map

MM = load_memory_map()
NS = MM.region("ns_dram").base
SRC, DST = NS + 0x01000000, NS + 0x01100000
RO = NS + 0x02000000              # secure read only: the engine may read, not write
CLOSED = NS + 0x02100000          # no secure access at all
KEY = bytes(range(1, 33))
IV = bytes(range(100, 116))


@pytest.fixture(scope="module")
def mem() -> PhysMem:
    return PhysMem(MM)


@pytest.fixture
def eng(mem: PhysMem) -> CryptoEngine:
    t = T.Tzc400(filters=1, bus=EventBus(record=1000))
    t.write(T.REGION_ID_ACCESS(0), 4, 0xFFFFFFFF)
    t.write(T.REGION_ATTRIBUTES(0), 4, 0xC0000000)
    for n, base, attr in ((1, RO, 0x40000001), (2, CLOSED, 0x00000001)):
        t.write(T.REGION_BASE_LOW(n), 4, base)
        t.write(T.REGION_TOP_LOW(n), 4, base + 0xFFFFF)
        t.write(T.REGION_ID_ACCESS(n), 4, 0xFFFFFFFF)
        t.write(T.REGION_ATTRIBUTES(n), 4, attr)
    t.write(T.ACTION, 4, T.TzcAction.ERR)
    t.write(T.GATE_KEEPER, 4, 1)
    return CryptoEngine(physmem=mem, tzc=t, master_id=0x7)


def cbc(key: bytes, iv: bytes, data: bytes, decrypt: bool) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


def pad(data: bytes) -> bytes:
    p = 16 - len(data) % 16
    return data + bytes([p]) * p


# --------------------------------------------------------------------------- register frame

def test_reset_values_and_register_behaviour(eng: CryptoEngine) -> None:
    r = eng.mmio_read
    assert eng.secure and r(E.KEY_BITS, 4) == 128 and r(E.STATUS, 4) == 0
    assert r(E.ID, 4) == E.ID_VALUE and r(E.CTRL, 4) == 0
    eng.mmio_write(E.KEY0, 4, 0x11223344)
    assert r(E.KEY0, 4) == 0                                   # keys are write-only
    eng.mmio_write(E.IV0, 8, 0x0102030405060708)               # 64-bit = two registers
    assert r(E.IV0, 4) == 0x05060708 and r(E.IV0 + 4, 4) == 0x01020304
    assert r(E.IV0, 8) == 0x0102030405060708
    eng.mmio_write(E.OUT_LEN, 4, 99)                           # read-only: ignored
    assert r(E.OUT_LEN, 4) == 0
    eng.tzc.bus.start_recording()
    assert r(E.LEN + 1, 4) == 0                                # unaligned: bad access
    eng.mmio_write(E.LEN, 2, 5)
    assert [e.fields["direction"] for e in eng.bus.of_kind("crypto_engine_bad_access")] == \
        ["read", "write"]
    assert r(E.LEN, 4) == 0


def test_decrypt_per_record_padding_and_chain(eng: CryptoEngine, mem: PhysMem) -> None:
    recs = [os.urandom(n) for n in (4096, 4096, 1808)]
    ct = cbc(KEY, IV, b"".join(pad(x) for x in recs), False)
    mem.write(SRC, ct)
    out_len, iv_out = eng.run(key=KEY, iv=IV, src=SRC, dst=DST, length=len(ct), record=4112,
                              per_record_padding=True)
    assert out_len == 10000 and mem.read(DST, out_len) == b"".join(recs)
    assert iv_out == ct[-16:] and eng.mmio_read(E.IV_OUT0, 4) == int.from_bytes(ct[-16:-12],
                                                                                 "little")
    assert eng.mmio_read(E.STATUS, 4) == E.STATUS_DONE and eng.mmio_read(E.ERR_CODE, 4) == 0
    # Split in two operations chained through IV_OUT: the same plaintext.
    _, iv1 = eng.run(key=KEY, iv=IV, src=SRC, dst=DST, length=4112, per_record_padding=True)
    n2, _ = eng.run(key=KEY, iv=iv1, src=SRC + 4112, dst=DST + 4096, length=len(ct) - 4112,
                    record=4112, per_record_padding=True)
    assert mem.read(DST, 4096 + n2) == b"".join(recs)
    ev = eng.bus.of_kind("crypto_engine")
    assert not eng.bus.active or ev[-1].fields["status"] == "done"


@pytest.mark.parametrize("keylen", [16, 32])
def test_decrypt_final_padding_and_plain(eng: CryptoEngine, mem: PhysMem, keylen: int) -> None:
    key = KEY[:keylen]
    data = os.urandom(1000)
    ct = cbc(key, IV, pad(data), False)
    mem.write(SRC, ct)
    assert eng.run(key=key, iv=IV, src=SRC, dst=DST, length=len(ct), final_padding=True)[0] \
        == 1000 and mem.read(DST, 1000) == data
    assert eng.run(key=key, iv=IV, src=SRC, dst=DST, length=len(ct))[0] == len(ct)
    assert mem.read(DST, len(ct)) == pad(data)
    assert eng.run(key=key, iv=IV, src=SRC, dst=DST, length=0) == (0, IV)


@pytest.mark.parametrize("record, flags", [(4096, "per"), (0, "per"), (0, "final"),
                                           (0, "none"), (100, "per")])
def test_encrypt_formats(eng: CryptoEngine, mem: PhysMem, record: int, flags: str) -> None:
    data = os.urandom(10000 if flags != "none" else 4096)
    mem.write(SRC, data)
    if flags == "per":
        rec = record or len(data)
        want = cbc(KEY, IV, b"".join(pad(data[i:i + rec]) for i in range(0, len(data), rec)),
                   False)
    else:
        want = cbc(KEY, IV, pad(data) if flags == "final" else data, False)
    n, iv_out = eng.run(key=KEY, iv=IV, src=SRC, dst=DST, length=len(data), record=record,
                        decrypt=False, per_record_padding=flags == "per",
                        final_padding=flags == "final")
    assert n == len(want) and mem.read(DST, n) == want and iv_out == want[-16:]
    if (record, flags) == (4096, "per"):
        assert n == 10048


# ------------------------------------------------------------------------------------ errors

def test_tzc_denied_destination_writes_nothing(eng: CryptoEngine, mem: PhysMem) -> None:
    eng.tzc.bus.start_recording()
    ct = cbc(KEY, IV, pad(b"x" * 100), False)
    mem.write(SRC, ct)
    mem.write(RO, b"\x5A" * 128)
    with pytest.raises(CryptoEngineError) as ei:
        eng.run(key=KEY, iv=IV, src=SRC, dst=RO, length=len(ct), final_padding=True)
    assert ei.value.code == E.ERR_BUS
    assert eng.mmio_read(E.STATUS, 4) == E.STATUS_ERROR
    assert eng.mmio_read(E.ERR_CODE, 4) == E.ERR_BUS and eng.mmio_read(E.OUT_LEN, 4) == 0
    assert mem.read(RO, 128) == b"\x5A" * 128
    fault = eng.faults[-1]
    assert fault.direction == "write" and fault.address == RO
    assert fault.fail["FAIL_ADDRESS"] == RO and fault.fail["secure"] and \
        fault.fail["FAIL_ID"] == 0x7
    assert eng.bus.of_kind("dma_fault")[-1].fields["secure"] is True
    ev = eng.bus.of_kind("crypto_engine")[-1].fields
    assert ev["status"] == "error" and ev["err_code"] == E.ERR_BUS
    # The engine may read that region (secure read allowed) and write elsewhere.
    mem.write(RO, ct)
    assert eng.run(key=KEY, iv=IV, src=RO, dst=DST, length=len(ct), final_padding=True)[0] == 100


def test_tzc_denied_source(eng: CryptoEngine, mem: PhysMem) -> None:
    mem.write(DST, b"\x33" * 64)
    with pytest.raises(CryptoEngineError) as ei:
        eng.run(key=KEY, iv=IV, src=CLOSED, dst=DST, length=64)
    assert ei.value.code == E.ERR_BUS and eng.faults[-1].direction == "read"
    assert mem.read(DST, 64) == b"\x33" * 64


def test_bad_padding_writes_nothing(eng: CryptoEngine, mem: PhysMem) -> None:
    ct = bytearray(cbc(KEY, IV, pad(b"a" * 50) + pad(b"b" * 50), False))
    ct[63] ^= 0x40                                      # second record's padding block
    mem.write(SRC, bytes(ct))
    mem.write(DST, b"\x11" * 128)
    with pytest.raises(CryptoEngineError) as ei:
        eng.run(key=KEY, iv=IV, src=SRC, dst=DST, length=64, record=64,
                per_record_padding=True)
    assert ei.value.code == E.ERR_PADDING
    assert mem.read(DST, 128) == b"\x11" * 128
    with pytest.raises(CryptoEngineError):
        eng.run(key=KEY, iv=IV, src=SRC, dst=DST, length=64, record=32,
                per_record_padding=True)                 # record 1 broken


@pytest.mark.parametrize("kw, code", [
    ({"length": 17}, E.ERR_LENGTH), ({"length": 32, "record": 20, "per_record_padding": True},
                                     E.ERR_LENGTH),
    ({"length": 17, "decrypt": False}, E.ERR_LENGTH),
    ({"length": 32, "per_record_padding": True, "final_padding": True}, E.ERR_LENGTH)])
def test_bad_lengths(eng: CryptoEngine, kw: dict, code: int) -> None:
    with pytest.raises(CryptoEngineError) as ei:
        eng.run(key=KEY, iv=IV, src=SRC, dst=DST, **kw)
    assert ei.value.code == code


def test_bad_key_bits_and_status_w1c(eng: CryptoEngine) -> None:
    eng.mmio_write(E.KEY_BITS, 4, 192)
    eng.mmio_write(E.LEN, 4, 16)
    eng.mmio_write(E.CTRL, 4, E.CTRL_START | E.CTRL_DECRYPT)
    assert eng.mmio_read(E.STATUS, 4) == E.STATUS_ERROR
    assert eng.mmio_read(E.ERR_CODE, 4) == E.ERR_KEY
    assert eng.mmio_read(E.CTRL, 4) == E.CTRL_DECRYPT           # START self-clears
    eng.mmio_write(E.STATUS, 4, E.STATUS_ERROR)
    assert eng.mmio_read(E.STATUS, 4) == 0


# ------------------------------------------------------------------------- through Unicorn

def test_driven_by_aarch64_code(eng: CryptoEngine, mem: PhysMem) -> None:
    """32- and 64-bit stores/loads from code reach the frame through mmio_map."""
    va = 0x7FF00000
    key, iv = KEY[:16], IV
    data = os.urandom(64)
    ct = cbc(key, iv, pad(data), False)
    mem.write(SRC, ct)
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    eng.map_mmio(uc, va)
    prog = assemble(f"""
        mov     x9, #{va:#x}
        str     x0, [x9, #{E.KEY0}]
        str     x1, [x9, #{E.KEY0 + 8}]
        mov     w10, #128
        str     w10, [x9, #{E.KEY_BITS}]
        str     x2, [x9, #{E.IV0}]
        str     x3, [x9, #{E.IV0 + 8}]
        str     x4, [x9, #{E.SRC_LO}]
        str     x5, [x9, #{E.DST_LO}]
        str     w6, [x9, #{E.LEN}]
        mov     w10, #{E.CTRL_START | E.CTRL_DECRYPT | E.CTRL_FINAL_PADDING}
        str     w10, [x9, #{E.CTRL}]
    poll:
        ldr     w11, [x9, #{E.STATUS}]
        cbz     w11, poll
        ldr     w12, [x9, #{E.OUT_LEN}]
        ldr     x13, [x9, #{E.IV_OUT0 + 8}]
    done:
        b       done
    """, 0x1000)
    uc.mem_map(0x1000, 0x1000, UC_PROT_ALL)
    uc.mem_write(0x1000, prog.code)
    regs = [int.from_bytes(b, "little") for b in (key[:8], key[8:], iv[:8], iv[8:])]
    for n, v in enumerate(regs + [SRC, DST, len(ct)]):
        uc.reg_write(getattr(A, f"UC_ARM64_REG_X{n}"), v)
    uc.reg_write(A.UC_ARM64_REG_CPACR_EL1, 3 << 20)
    uc.emu_start(0x1000, prog.sym("done"))
    assert uc.reg_read(A.UC_ARM64_REG_X11) == E.STATUS_DONE
    assert uc.reg_read(A.UC_ARM64_REG_X12) == 64
    assert uc.reg_read(A.UC_ARM64_REG_X13) == int.from_bytes(ct[-8:], "little")
    assert mem.read(DST, 64) == data
    assert eng.stats.bytes_read == len(ct) and eng.stats.bytes_written == 64
