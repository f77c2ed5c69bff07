"""The first entry into a C TA instance makes the syscalls libutee makes there
(optee_ta_format.md section 6, the OPEN_SESSION row): 33 (stack-guard seed), 8 READ on the
memtag property name in .rodata, 8 WRITE on a u32 on the stack, 4 on the implementation set
-> ITEM_NOT_FOUND (no memtag), 0. A dev-kit TA's start-up depends on exactly these answers: a
"not private" answer to either access check would panic it before TA_OpenSessionEntryPoint."""
from __future__ import annotations

import uuid

import pytest

import tzemu
from cross import require_cross_compiler
from emu.abi import secure_abi
from ta.build import load_manifest

C = secure_abi().constants
TA = next(e for e in load_manifest() if e["name"] == "syscall_conformance")
TA_UUID = uuid.UUID(TA["uuid"])


def _syscalls(p) -> list[tuple[str, int, tuple[int, ...]]]:
    """(kind, nr, args or (result,)) of the C TA's syscalls, in order."""
    out = []
    for e in p.bus.recorded:
        if e.kind == "ta_syscall" and e.fields["ta"] == TA["name"]:
            out.append(("call", e.fields["nr"], tuple(e.fields["args"])))
        elif e.kind == "ta_syscall_return" and e.fields["ta"] == TA["name"]:
            out.append(("ret", e.fields["nr"], (e.fields["result"],)))
    return out


@pytest.fixture()
def platform():
    require_cross_compiler()
    return tzemu.boot(record_events=100_000)


def test_the_first_open_makes_libutee_start_up_syscalls_with_its_answers(platform):
    p = platform
    p.linux.teec().open_session(TA_UUID)
    calls = _syscalls(p)
    rng, check, to_index = (C[f"TEE_SCN_{n}"] for n in (
        "CRYP_RANDOM_NUMBER_GENERATE", "CHECK_ACCESS_RIGHTS", "GET_PROPERTY_NAME_TO_INDEX"))
    assert [(k, nr) for k, nr, _ in calls] == [
        ("call", rng), ("ret", rng), ("call", check), ("ret", check), ("call", check),
        ("ret", check), ("call", to_index), ("ret", to_index),
        ("call", C["TEE_SCN_RETURN"])], calls
    seed, read_name, write_u32, lookup = (calls[i][2] for i in (0, 2, 4, 6))
    assert seed[1] == 8                                        # 8 bytes of stack guard
    assert read_name[0] == C["TEE_MEMORY_ACCESS_READ"]         # flags 0x1: the name, [in]
    assert write_u32[0] == C["TEE_MEMORY_ACCESS_WRITE"] and write_u32[2] == 4   # 0x2: [out]
    assert lookup[0] == C["TEE_PROPSET_TEE_IMPLEMENTATION"]
    assert [r for k, _nr, (r, *_) in calls if k == "ret"] == [
        C["TEE_SUCCESS"], C["TEE_SUCCESS"], C["TEE_SUCCESS"], C["TEE_ERROR_ITEM_NOT_FOUND"]]
    # The length is the memtag property name's, NUL included.
    name = b"org.trustedfirmware.optee.cpu.feat_memtag_implemented\0"
    assert lookup[2] == read_name[2] == len(name)


def test_the_start_up_syscalls_run_once_per_instance(platform):
    p = platform
    ctx = p.linux.teec()
    ctx.open_session(TA_UUID)                 # SINGLE_INSTANCE | MULTI_SESSION: one instance
    p.bus.clear()
    ctx.open_session(TA_UUID)
    assert [nr for k, nr, _ in _syscalls(p) if k == "call"] == [C["TEE_SCN_RETURN"]]
