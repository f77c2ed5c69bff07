"""TA instance lifetime as OP-TEE's ta_manager gives it (issue 11 item 3): a panic kills the
instance for every session on it, SINGLE_INSTANCE without MULTI_SESSION refuses a second
session with BUSY, and INSTANCE_KEEP_ALIVE keeps the instance (and its state) after its last
session closes, while a panic still ends it. Real echo TA code at S-EL0, real ioctls."""
from __future__ import annotations

import uuid

import pytest

import tzemu
from emu.abi import secure_abi
from linux_side.teec import TEEC_VALUE_INOUT, TEEC_VALUE_OUTPUT, Operation, TeecError, Value
from ta.build import build_ta, load_manifest

C = secure_abi().constants
ECHO = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")       # SINGLE_INSTANCE|MULTI_SESSION
KEEP_ALIVE = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f40")
SINGLE_ONLY = uuid.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f41")
CMD_COUNTER, CMD_PANIC = 2, 3                                      # ta/echo_ta.S
TARGET_DEAD = C["TEE_ERROR_TARGET_DEAD"]


def _echo_variant(ta_uuid: uuid.UUID, flags: int) -> bytes:
    """The echo TA's code under another UUID and other ta_head flags."""
    entry = dict(next(e for e in load_manifest() if e["name"] == "echo"))
    entry.update(uuid=str(ta_uuid), flags=flags)
    return build_ta(entry)


@pytest.fixture(scope="module")
def variants() -> dict:
    f = C["TA_FLAG_SINGLE_INSTANCE"]
    return {KEEP_ALIVE: ("echo_keep_alive", _echo_variant(
                KEEP_ALIVE, f | C["TA_FLAG_MULTI_SESSION"] | C["TA_FLAG_INSTANCE_KEEP_ALIVE"])),
            SINGLE_ONLY: ("echo_single", _echo_variant(SINGLE_ONLY, f))}


def counter(sess) -> int:
    op = Operation(types=(TEEC_VALUE_OUTPUT, 0, 0, 0), params=[Value(), None, None, None])
    sess.invoke(CMD_COUNTER, op)
    return op.params[0].a


def test_a_panic_in_one_session_is_target_dead_for_every_session_of_the_instance():
    p = tzemu.boot(record_events=50_000)
    ctx = p.linux.teec()
    a, b = ctx.open_session(ECHO), ctx.open_session(ECHO)
    assert [counter(a), counter(b)] == [1, 2]
    assert a.invoke(CMD_PANIC, check=False) == (TARGET_DEAD, C["TEE_ORIGIN_TEE"])
    op = Operation(types=(TEEC_VALUE_INOUT, 0, 0, 0), params=[Value(), None, None, None])
    assert b.invoke(CMD_COUNTER, op, check=False)[0] == TARGET_DEAD
    assert p.bus.of_kind("ta_dead"), "no ta_dead event for the panic"
    a.close()
    b.close()
    fresh = ctx.open_session(ECHO)                   # a new instance: state starts over
    assert counter(fresh) == 1


def test_single_instance_without_multi_session_refuses_a_second_session_with_busy(variants):
    p = tzemu.boot(extra_tas=variants)
    ctx = p.linux.teec()
    first = ctx.open_session(SINGLE_ONLY)
    with pytest.raises(TeecError) as exc:
        ctx.open_session(SINGLE_ONLY)
    assert exc.value.code == C["TEE_ERROR_BUSY"]
    first.close()
    ctx.open_session(SINGLE_ONLY).close()            # free again once the first is closed


def test_keep_alive_keeps_the_instance_state_after_the_last_session_closes(variants):
    p = tzemu.boot(extra_tas=variants)
    ctx = p.linux.teec()
    s = ctx.open_session(KEEP_ALIVE)
    assert [counter(s), counter(s)] == [1, 2]
    s.close()
    assert KEEP_ALIVE in p.secure_os.ta_manager.instances
    s = ctx.open_session(KEEP_ALIVE)
    assert counter(s) == 3
    s.close()
    # Without KEEP_ALIVE the instance goes with its last session.
    e = ctx.open_session(ECHO)
    counter(e)
    e.close()
    assert ECHO not in p.secure_os.ta_manager.instances


def test_a_panic_ends_even_a_keep_alive_instance(variants):
    p = tzemu.boot(extra_tas=variants)
    ctx = p.linux.teec()
    s = ctx.open_session(KEEP_ALIVE)
    counter(s)
    assert s.invoke(CMD_PANIC, check=False)[0] == TARGET_DEAD
    s.close()
    assert KEEP_ALIVE not in p.secure_os.ta_manager.instances
    s = ctx.open_session(KEEP_ALIVE)
    assert counter(s) == 1
