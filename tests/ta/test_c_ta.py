"""The C TA (ta/c/syscall_conformance_ta.c), built by the GNU cross toolchain against the
project's own runtime (ta/runtime), on the real platform: every command drives one behaviour of
the secure OS's syscall layer from S-EL0, checked from the normal world through TEEC calls
(issue 11 item 6). Also: the ELF's relocation layout (.rela.dyn in RX, .rela.got in RW), what
happens when a loader skips .rela.got or applies an addend twice, gdb symbols, and loading the
TA as a signed .ta from a TA directory.

Needs ``aarch64-linux-gnu-gcc`` (Debian package gcc-aarch64-linux-gnu): skipped without it,
unless ``TZEMU_REQUIRE_CROSS=1`` (CI), where a missing compiler fails."""
from __future__ import annotations

import dataclasses
import re
import struct
import types
import uuid
from pathlib import Path

import lief
import pytest

from cross import require_cross_compiler

import tzemu
import tee_os.ta_loader as ta_loader_mod
import tee_os.ta_manager as ta_manager_mod
from emu.abi import secure_abi
from linux_side.teec import (TEEC_MEMREF_TEMP_INOUT, TEEC_MEMREF_TEMP_INPUT,
                             TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_VALUE_INOUT,
                             TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, Operation, TempMemref, Value)
from ta.build import TA_DIR, build_signed_tas, build_ta, load_manifest
from ta.sign import header_digest
from tee_os.ta_loader import load_ta_elf

C = secure_abi().constants
E = {name: C[name] for name in C if name.startswith("TEE_ERROR_")}
SUCCESS, ACCESS_DENIED = C["TEE_SUCCESS"], C["TEE_ERROR_ACCESS_DENIED"]
TARGET_DEAD, NOT_SUPPORTED = C["TEE_ERROR_TARGET_DEAD"], C["TEE_ERROR_NOT_SUPPORTED"]
BAD_PARAMETERS, SHORT_BUFFER = C["TEE_ERROR_BAD_PARAMETERS"], C["TEE_ERROR_SHORT_BUFFER"]
ORIGIN_TEE, ORIGIN_TA = C["TEE_ORIGIN_TEE"], C["TEE_ORIGIN_TRUSTED_APP"]

HEADER = TA_DIR / "c" / "syscall_conformance_ta.h"
H = {m[0]: int(m[1], 0) for m in
     re.findall(r"^#define\s+(\w+)\s+(0x[0-9A-Fa-f]+|\d+)\b", HEADER.read_text(), re.M)}
ENTRY = next(e for e in load_manifest() if e["name"] == "syscall_conformance")
TA_UUID = uuid.UUID(ENTRY["uuid"])
ECHO_UUID = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")
KERNEL_VA, UNMAPPED_VA = 0xFFFF_0000_0000_1000, 0x1000


@pytest.fixture(autouse=True, scope="module")
def _cross_compiler():
    require_cross_compiler()


@pytest.fixture(scope="module")
def elf(_cross_compiler) -> bytes:
    return build_ta(ENTRY)


@pytest.fixture
def plat():
    return tzemu.boot(record_events=200_000)


@pytest.fixture
def sess(plat):
    return plat.linux.teec().open_session(TA_UUID)


def call(s, cmd: int, *params) -> tuple[int, int, list]:
    """Invoke with up to four (type, param) pairs; returns (result, origin, params)."""
    kinds = [t for t, _ in params] + [TEEC_NONE] * (4 - len(params))
    values = [p for _, p in params] + [None] * (4 - len(params))
    ret, origin = s.invoke(cmd, Operation(kinds, values), check=False)
    return ret, origin, values


def u32s(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def _dead_events(plat) -> list[dict]:
    return [e.fields for e in plat.bus.of_kind("ta_dead")]


# --- the ELF ---------------------------------------------------------------------------------
def test_elf_has_a_nonempty_rela_got_in_the_rw_segment_apart_from_rela_dyn(elf):
    binary = lief.ELF.parse(list(elf))
    sec = {s.name: s for s in binary.sections}
    loads = [s for s in binary.segments if s.type == lief.ELF.Segment.TYPE.LOAD]
    assert len(loads) == 2

    def segment_of(section):
        return next(s for s in loads if s.virtual_address <= section.virtual_address
                    < s.virtual_address + s.virtual_size)
    rx, rw = segment_of(sec[".text"]), segment_of(sec[".data"])
    assert rx.flags == lief.ELF.Segment.FLAGS.R | lief.ELF.Segment.FLAGS.X
    assert rw.flags == lief.ELF.Segment.FLAGS.R | lief.ELF.Segment.FLAGS.W
    assert sec[".rela.got"].size > 0 and segment_of(sec[".rela.got"]) is rw
    assert sec[".rela.dyn"].size > 0 and segment_of(sec[".rela.dyn"]) is rx
    for name in (".ta_head", ".rodata", ".dynsym", ".dynstr", ".hash"):
        assert segment_of(sec[name]) is rx, name
    for name in (".got", ".bss"):
        assert segment_of(sec[name]) is rw, name
    gap = sec[".rela.got"].virtual_address - (sec[".rela.dyn"].virtual_address
                                              + sec[".rela.dyn"].size)
    assert gap > 0, "the two tables must not be adjacent (Pitfall 1)"


def test_elf_has_only_relative_relocations_for_the_data_table_and_the_got(elf):
    data = elf
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    heads = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * i) for i in range(shnum)]
    names_off = heads[shstrndx][4]

    def name(h):
        end = data.index(b"\0", names_off + h[0])
        return data[names_off + h[0]:end].decode()
    by_name = {name(h): h for h in heads}
    relas = {name(h): h for h in heads if h[1] == 4}               # SHT_RELA
    assert set(relas) == {".rela.dyn", ".rela.got"}
    targets = {}
    for rname, h in relas.items():
        entries = list(struct.iter_unpack("<QQq", data[h[4]:h[4] + h[5]]))
        assert entries, rname
        assert all(info & 0xFFFFFFFF == 1027 for _, info, _ in entries), rname   # RELATIVE
        # GNU ld pre-fills every slot with its addend (Pitfall 2)
        for off, _, addend in entries:
            slot_sec = next(s for s in heads if s[3] <= off < s[3] + s[5] and s[2] & 2)
            assert struct.unpack_from("<Q", data, slot_sec[4] + off - slot_sec[3])[0] == addend
        targets[rname] = [off for off, _, _ in entries]
    data_sec, got = by_name[".data"], by_name[".got"]
    assert all(data_sec[3] <= off < data_sec[3] + data_sec[5] for off in targets[".rela.dyn"])
    assert len(targets[".rela.dyn"]) >= H["NUM_CMDS"]           # the command table
    assert all(got[3] <= off < got[3] + got[5] for off in targets[".rela.got"])
    image = load_ta_elf(elf)
    assert len(image.relocations) == len(targets[".rela.dyn"]) + len(targets[".rela.got"])


def test_ta_head_carries_the_manifest_values_and_symbols_name_the_c_functions(elf):
    image = load_ta_elf(elf, name="syscall_conformance")
    assert image.uuid == TA_UUID
    assert image.flags == ENTRY["flags"] and image.stack_size == ENTRY["stack_size"]
    for sym in ("TA_InvokeCommandEntryPoint", "TA_OpenSessionEntryPoint", "__ta_entry",
                "cmd_check_access", "cmd_table", "tz_ta_runtime", "tz_sys_return", "ta_head"):
        assert sym in image.symbols, sym
    assert image.entry == image.symbols["__ta_entry"]
    assert image.ta_head_offset == image.symbols["ta_head"]


# --- properties ------------------------------------------------------------------------------
@pytest.mark.parametrize("propset,name,ptype,expect", [
    ("TEE_PROPSET_CURRENT_TA", "gpd.ta.appID", "UUID", TA_UUID.bytes_le),
    ("TEE_PROPSET_CURRENT_CLIENT", "gpd.client.identity", "IDENTITY",
     struct.pack("<I", C["TEE_LOGIN_PUBLIC"]) + bytes(16)),
    ("TEE_PROPSET_CURRENT_CLIENT", "gpd.client.endian", "U32", bytes(4)),
    ("TEE_PROPSET_TEE_IMPLEMENTATION", "gpd.tee.apiversion", "STRING", b"GPD-1.1-dev\0"),
])
def test_get_property_reads_each_property_set(sess, propset, name, ptype, expect):
    ret, _, p = call(sess, H["CMD_GET_PROPERTY"], (TEEC_VALUE_INPUT, Value(C[propset])),
                     (TEEC_MEMREF_TEMP_INPUT, TempMemref(name.encode())),
                     (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=64)), (TEEC_VALUE_OUTPUT, Value()))
    assert ret == SUCCESS
    assert p[2].out == expect and p[2].size == len(expect)
    assert p[3].a == C[f"USER_TA_PROP_TYPE_{ptype}"]


def test_get_property_short_buffer_reports_the_needed_size(sess):
    ret, _, p = call(sess, H["CMD_GET_PROPERTY"],
                     (TEEC_VALUE_INPUT, Value(C["TEE_PROPSET_TEE_IMPLEMENTATION"])),
                     (TEEC_MEMREF_TEMP_INPUT, TempMemref(b"gpd.tee.apiversion")),
                     (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=4)), (TEEC_VALUE_OUTPUT, Value()))
    assert ret == SHORT_BUFFER and p[2].size == len(b"GPD-1.1-dev\0")


@pytest.mark.parametrize("propset,name", [("TEE_PROPSET_CURRENT_TA", "gpd.tee.apiversion"),
                                          ("TEE_PROPSET_TEE_IMPLEMENTATION", "no.such.prop")])
def test_get_property_name_to_index_of_an_unknown_name_is_item_not_found(sess, propset, name):
    ret, _, _ = call(sess, H["CMD_GET_PROPERTY"], (TEEC_VALUE_INPUT, Value(C[propset])),
                     (TEEC_MEMREF_TEMP_INPUT, TempMemref(name.encode())),
                     (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=64)), (TEEC_VALUE_OUTPUT, Value()))
    assert ret == E["TEE_ERROR_ITEM_NOT_FOUND"]


def test_the_ta_finds_its_own_uuid_as_gpd_ta_app_id(sess):
    assert call(sess, H["CMD_CHECK_APPID"])[:2] == (SUCCESS, ORIGIN_TA)


# --- time, randomness, cancellation, wait ------------------------------------------------------
def test_get_time_system_ta_persistent_and_ree(plat, sess):
    def get(cat):
        ret, _, p = call(sess, H["CMD_GET_TIME"], (TEEC_VALUE_INPUT, Value(cat)),
                         (TEEC_VALUE_OUTPUT, Value()))
        return ret, p[1].a * 1000 + p[1].b
    ret, first = get(C["UTEE_TIME_CAT_SYSTEM"])
    assert ret == SUCCESS
    ret, second = get(C["UTEE_TIME_CAT_SYSTEM"])
    assert ret == SUCCESS and second > first                       # monotonic virtual clock
    assert get(C["UTEE_TIME_CAT_TA_PERSISTENT"])[0] == E["TEE_ERROR_TIME_NOT_SET"]
    ret, _, _ = call(sess, H["CMD_SET_TA_TIME"], (TEEC_VALUE_INPUT, Value(1_000_000, 500)))
    assert ret == SUCCESS
    ret, persistent = get(C["UTEE_TIME_CAT_TA_PERSISTENT"])
    assert ret == SUCCESS and 1_000_000_500 <= persistent < 1_000_000_500 + 100
    assert call(sess, H["CMD_SET_TA_TIME"],
                (TEEC_VALUE_INPUT, Value(1, 1000)))[0] == BAD_PARAMETERS   # millis > 999
    assert get(7)[0] == BAD_PARAMETERS
    def time_rpcs():
        return [e for e in plat.bus.of_kind("rpc_cmd")
                if e.fields["cmd"] == C["OPTEE_RPC_CMD_GET_TIME"]]
    rpcs = len(time_rpcs())
    ret, ree_ms = get(C["UTEE_TIME_CAT_REE"])                      # an RPC to the normal world
    assert ret == SUCCESS
    epoch = plat.linux.kernel.config.clock_epoch
    assert epoch * 1000 <= ree_ms < epoch * 1000 + 60_000
    assert len(time_rpcs()) == rpcs + 1


def test_random_fills_the_output_memref_and_is_deterministic_per_seed():
    def draw(seed):
        p = tzemu.boot(seed=seed)
        s = p.linux.teec().open_session(TA_UUID)
        out = []
        for _ in range(2):
            ret, _, prm = call(s, H["CMD_RANDOM"], (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=48)))
            assert ret == SUCCESS and prm[0].size == 48
            out.append(prm[0].out)
        return out
    a, b = draw(1), draw(1)
    assert a == b and a[0] != a[1] and any(a[0])
    assert draw(2) != a


def test_cancellation_flag_is_clear_and_mask_unmask_return_the_previous_mask(sess):
    ret, _, p = call(sess, H["CMD_CANCELLATION"], (TEEC_VALUE_OUTPUT, Value()),
                     (TEEC_VALUE_OUTPUT, Value()))
    assert ret == SUCCESS
    assert (p[0].a, p[0].b) == (0, 1)       # not cancelled; masked by default before UNMASK
    assert (p[1].a, p[1].b) == (0, 0)       # still not cancelled; unmasked before MASK


def test_wait_advances_the_system_clock_by_the_timeout(sess):
    ret, _, p = call(sess, H["CMD_WAIT"], (TEEC_VALUE_INPUT, Value(250)),
                     (TEEC_VALUE_OUTPUT, Value()))
    assert ret == SUCCESS and 250 <= p[1].a <= 252


# --- access rights and cache maintenance --------------------------------------------------------
ACCESS_EXPECT = {"STACK_RW": SUCCESS, "DATA_RW": SUCCESS, "BSS_RW": SUCCESS,
                 "RODATA_R": SUCCESS, "RODATA_W": ACCESS_DENIED, "TEXT_R": SUCCESS,
                 "PARAM_PRIVATE": ACCESS_DENIED, "PARAM_ANY_OWNER": SUCCESS,
                 "PARAM_SECURE": ACCESS_DENIED, "PARAM_NONSECURE": SUCCESS,
                 "STACK_NONSECURE": ACCESS_DENIED, "NULL": ACCESS_DENIED,
                 "BOTH_WORLDS": ACCESS_DENIED, "SIZE_ZERO": SUCCESS, "HUGE": ACCESS_DENIED,
                 "WRAP": ACCESS_DENIED}


def test_check_access_rights_private_image_stack_and_shared_memref_params(sess):
    assert len(ACCESS_EXPECT) == H["ACCESS_RESULTS"]
    ret, _, p = call(sess, H["CMD_CHECK_ACCESS"],
                     (TEEC_MEMREF_TEMP_INOUT, TempMemref(b"\x5a" * 100)),
                     (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=4 * H["ACCESS_RESULTS"])))
    assert ret == SUCCESS
    got = u32s(p[1].out)
    assert {k: got[H[f"ACC_{k}"]] for k in ACCESS_EXPECT} == ACCESS_EXPECT


def test_cache_operations_on_memref_params_only(sess):
    ret, _, p = call(sess, H["CMD_CACHE_OPS"], (TEEC_MEMREF_TEMP_INOUT, TempMemref(b"c" * 64)),
                     (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=4 * H["CACHE_RESULTS"])))
    assert ret == SUCCESS
    got = u32s(p[1].out)
    assert got[H["CACHE_CLEAN"]] == got[H["CACHE_FLUSH"]] == got[H["CACHE_INVALIDATE"]] == SUCCESS
    assert got[H["CACHE_BAD_OP"]] == NOT_SUPPORTED
    assert got[H["CACHE_PRIVATE"]] == ACCESS_DENIED and got[H["CACHE_UNMAPPED"]] == ACCESS_DENIED


# --- TA to TA, TA to PTA ------------------------------------------------------------------------
def test_ta_to_ta_session_with_the_echo_ta(plat, sess):
    ret, origin, p = call(sess, H["CMD_TA2TA_ECHO"], (TEEC_VALUE_INOUT, Value(41, 0xFFFF)),
                          (TEEC_MEMREF_TEMP_INPUT, TempMemref(b"from C to asm")),
                          (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=32)),
                          (TEEC_VALUE_OUTPUT, Value()))
    assert (ret, origin) == (SUCCESS, ORIGIN_TA)
    assert (p[0].a, p[0].b) == (42, 0x10000)               # echo's command 0
    assert p[2].out == b"from C to asm" and p[2].size == 13  # echo's command 1
    assert p[3].a == ORIGIN_TA and p[3].b != 0               # origin of the last call, session
    # the TA closed its session to echo: only the client's session is left
    assert [s.id for s in plat.secure_os.ta_manager.sessions.values()] == [sess.id]


def test_ta_to_ta_echo_short_output_is_short_buffer_with_the_needed_size(sess):
    ret, _, p = call(sess, H["CMD_TA2TA_ECHO"], (TEEC_VALUE_INOUT, Value(1, 2)),
                     (TEEC_MEMREF_TEMP_INPUT, TempMemref(b"0123456789")),
                     (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=4)),
                     (TEEC_VALUE_OUTPUT, Value()))
    assert ret == SHORT_BUFFER and p[2].size == 10 and p[3].a == ORIGIN_TA


def test_ta_to_pta_invoke_tests(plat, sess):
    src = b"nonsecure bytes"
    ret, _, p = call(sess, H["CMD_TA2PTA"], (TEEC_MEMREF_TEMP_INPUT, TempMemref(src)),
                     (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=len(src))),
                     (TEEC_MEMREF_TEMP_OUTPUT, TempMemref(size=4 * H["PTA_RESULTS"])))
    assert ret == SUCCESS
    r = u32s(p[2].out)
    assert r[H["PTA_OPEN"]] == SUCCESS
    assert r[H["PTA_TRACE"]] == SUCCESS and r[H["PTA_TRACE_ORIGIN"]] == ORIGIN_TA
    assert r[H["PTA_SHORT"]] == SHORT_BUFFER and r[H["PTA_SHORT_NEEDED"]] == len(src)
    assert r[H["PTA_NONSECURE_DST"]] == BAD_PARAMETERS     # COPY_NSEC_TO_SEC needs a secure dst
    assert r[H["PTA_PRIVATE"]] == BAD_PARAMETERS           # TA-private memory is not passed on
    assert r[H["PTA_UNKNOWN"]] == NOT_SUPPORTED
    assert r[H["PTA_CLOSE"]] == SUCCESS and r[H["PTA_CLOSE_AGAIN"]] == BAD_PARAMETERS
    assert [s.id for s in plat.secure_os.ta_manager.sessions.values()] == [sess.id]


# --- panics, bad pointers -------------------------------------------------------------------
def test_panic_is_target_dead_and_the_session_stays_dead(plat, sess):
    assert call(sess, H["CMD_PANIC"])[:2] == (TARGET_DEAD, ORIGIN_TEE)
    dead = _dead_events(plat)
    assert dead and dead[-1]["reason"] == "panic" and dead[-1]["value"] == H["PANIC_CODE"]
    assert call(sess, H["CMD_RUNTIME_INFO"], (TEEC_VALUE_OUTPUT, Value()),
                (TEEC_VALUE_OUTPUT, Value()))[:2] == (TARGET_DEAD, ORIGIN_TEE)
    sess.close()
    fresh = plat.linux.teec().open_session(TA_UUID)         # a new instance serves again
    assert call(fresh, H["CMD_CHECK_APPID"])[0] == SUCCESS


BAD_CASES = [(sel, where) for sel in ("RANDOM", "GET_TIME_SYSTEM", "GET_TIME_REE",
                                      "PROPERTY_NAME", "PROPERTY_VALUE_LEN",
                                      "CANCELLATION_FLAG", "LOG", "OPEN_SESSION_UUID",
                                      "INVOKE_PARAMS", "SET_TA_TIME")
             for where in ("kernel", "unmapped")]
BAD_CASES += [(sel, "rodata") for sel in ("RANDOM", "GET_TIME_SYSTEM", "GET_TIME_REE",
                                          "CANCELLATION_FLAG", "PROPERTY_VALUE_LEN")]
BAD_CASES += [(sel, "text") for sel in ("RANDOM", "CANCELLATION_FLAG")]


def _bad(s, selector: int, where: str, addr: int = 0) -> tuple[int, int]:
    kind = {"rodata": H["BAD_ADDR_OWN_RODATA"], "text": H["BAD_ADDR_OWN_TEXT"]}.get(
        where, H["BAD_ADDR_GIVEN"])
    addr = {"kernel": KERNEL_VA, "unmapped": UNMAPPED_VA}.get(where, addr)
    ret, origin, _ = call(s, H["CMD_BAD_POINTER"], (TEEC_VALUE_INPUT, Value(selector, kind)),
                          (TEEC_VALUE_INPUT, Value(addr & 0xFFFFFFFF, addr >> 32)))
    return ret, origin


@pytest.mark.parametrize("sel,where", BAD_CASES)
def test_a_bad_pointer_handed_to_a_syscall_is_access_denied_and_the_ta_lives(plat, sess,
                                                                             sel, where):
    assert _bad(sess, H[f"BAD_{sel}"], where) == (ACCESS_DENIED, ORIGIN_TA)
    assert not _dead_events(plat)
    assert call(sess, H["CMD_CHECK_APPID"])[0] == SUCCESS


def test_reading_own_rodata_is_not_a_bad_pointer(plat, sess):
    assert _bad(sess, H["BAD_LOG"], "rodata") == (SUCCESS, ORIGIN_TA)
    assert plat.secure_os.ta_log[-1].text.startswith("conformance rodata")


# Deprecated Secure Element numbers and numbers past TEE_SCN_MAX (implemented ranges move on)
@pytest.mark.parametrize("nr", [55, 62, 69, 71, 0x6FFF, 0xFFFFFFFF])
def test_unimplemented_syscall_numbers_answer_not_supported(sess, nr):
    ret, _ = _bad(sess, H["BAD_UNSUPPORTED_SYSCALL"], "given", nr)
    assert ret == NOT_SUPPORTED


def test_va_to_pa_extension_is_refused_to_a_ta_without_device_maps(sess):
    assert _bad(sess, H["BAD_UNSUPPORTED_SYSCALL"], "given", 0x7000)[0] == ACCESS_DENIED


# --- runtime ----------------------------------------------------------------------------------
def test_runtime_globals_read_through_the_got(sess):
    ret, _, p = call(sess, H["CMD_RUNTIME_INFO"], (TEEC_VALUE_OUTPUT, Value()),
                     (TEEC_VALUE_OUTPUT, Value()))
    assert ret == SUCCESS
    assert (p[0].a, p[0].b) == (2, 1)            # open + this invoke; one open session
    assert (p[1].a, p[1].b) == (ENTRY["flags"], 0x600DDA7A)


def test_log_reaches_the_secure_os_log(plat, sess):
    assert call(sess, H["CMD_LOG"])[0] == SUCCESS
    line = plat.secure_os.ta_log[-1]
    assert line.text == "syscall_conformance_ta: hello from C at S-EL0\n"


def test_unknown_command_is_not_supported_from_the_ta(sess):
    assert call(sess, 999)[:2] == (NOT_SUPPORTED, ORIGIN_TA)


# --- relocation mistakes break the TA -------------------------------------------------------------
def _section_targets(elf: bytes, name: str) -> set[int]:
    binary = lief.ELF.parse(list(elf))
    sec = binary.get_section(name)
    raw = bytes(sec.content)
    return {off for off, _, _ in struct.iter_unpack("<QQq", raw)}


def _patch_relocations(monkeypatch, change):
    real = ta_manager_mod.load_instance

    def load(image, *args, **kwargs):
        if image.uuid == TA_UUID:
            image = dataclasses.replace(image, relocations=tuple(change(image.relocations)))
        return real(image, *args, **kwargs)
    monkeypatch.setattr(ta_manager_mod, "load_instance", load)


def _loader_skipping(monkeypatch, section: str) -> None:
    """Make tee_os.ta_loader walk every SHT_RELA section except ``section``."""
    real = ta_loader_mod._relocations

    def relocations(binary, segs, image_size, name):
        view = types.SimpleNamespace(sections=[s for s in binary.sections if s.name != section])
        return real(view, segs, image_size, name)
    monkeypatch.setattr(ta_loader_mod, "_relocations", relocations)


def test_a_loader_that_skips_rela_got_kills_the_ta_on_open(monkeypatch, elf):
    assert _section_targets(elf, ".rela.got")
    _loader_skipping(monkeypatch, ".rela.got")
    image = load_ta_elf(elf)
    assert len(image.relocations) == len(_section_targets(elf, ".rela.dyn"))
    p = tzemu.boot(record_events=100_000)
    s = p.linux.teec().open_session(TA_UUID, check=False)
    assert (s.ret, s.origin) == (TARGET_DEAD, ORIGIN_TEE)   # TA_CreateEntryPoint faults
    dead = _dead_events(p)
    assert dead and dead[-1]["reason"] == "fault"


def test_a_loader_that_skips_rela_dyn_kills_the_ta_on_the_first_command(monkeypatch, elf):
    _loader_skipping(monkeypatch, ".rela.dyn")
    p = tzemu.boot(record_events=100_000)
    s = p.linux.teec().open_session(TA_UUID)        # the GOT is fine: open works
    assert call(s, H["CMD_CHECK_APPID"])[:2] == (TARGET_DEAD, ORIGIN_TEE)  # cmd_table jump
    assert _dead_events(p)[-1]["reason"] == "fault"


def test_an_addend_applied_twice_breaks_the_ta(monkeypatch):
    # old slot (GNU ld pre-fills it with the addend) + base + addend = base + 2 * addend
    _patch_relocations(monkeypatch, lambda rel: [(off, 2 * add) for off, add in rel])
    p = tzemu.boot(record_events=100_000)
    s = p.linux.teec().open_session(TA_UUID, check=False)
    # TA_CreateEntryPoint reads ta_head.depr_entry through the GOT: the slot points one
    # ta_head offset too far, so it reads other bytes (BAD_STATE from the TA) or faults
    assert (s.ret, s.origin) in ((E["TEE_ERROR_BAD_STATE"], ORIGIN_TA), (TARGET_DEAD, ORIGIN_TEE))


# --- as a signed .ta from a TA directory --------------------------------------------------------
def test_the_c_ta_loads_as_a_signed_ta_from_a_ta_directory(tmp_path):
    written = build_signed_tas(tmp_path)
    assert TA_UUID in written
    p = tzemu.boot(ta_dirs=[tmp_path], record_events=100_000)
    s = p.linux.teec().open_session(TA_UUID)
    assert call(s, H["CMD_CHECK_APPID"])[0] == SUCCESS
    loads = [e.fields for e in p.bus.of_kind("ta_load") if e.fields["uuid"] == str(TA_UUID)]
    assert loads and loads[0]["file"] == f"{TA_UUID}.ta"
    assert TA_UUID in p.secure_os.ta_manager.loaded_from_ree
    assert loads[0]["digest"] == header_digest(Path(written[TA_UUID]).read_bytes()).hex()
