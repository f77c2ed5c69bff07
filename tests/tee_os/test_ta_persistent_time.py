"""SET_TA_TIME (syscall 14) and GET_TIME's TA-persistent category, through a real S-EL0 TA:
unset gives TIME_NOT_SET, a set clock runs on from the value set, per TA, and a bad TEE_Time
is refused and leaves the clock as it was (issue 11 item 4)."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import tzemu
from emu.abi import secure_abi
from linux_side.teec import Operation, Value
from ta.build import build_ta

C = secure_abi().constants
TIME_TA = uuid.UUID("0b7e5a3c-1d2f-4e60-8a9b-3c4d5e6f7081")
VALUE_INOUT = C["TEE_PARAM_TYPE_VALUE_INOUT"]          # = TEEC_VALUE_INOUT
SET, GET, SET_RAW = 0, 1, 2


@pytest.fixture(scope="module")
def time_ta_elf() -> bytes:
    return build_ta({"source": str(Path(__file__).parent / "data" / "ta_time_ta.S"),
                     "uuid": str(TIME_TA), "flags": 0, "stack_size": 0x1000})


def _session(p):
    return p.linux.teec().open_session(TIME_TA)


def _call(sess, cmd: int, a: int, b: int = 0) -> tuple[int, int, int]:
    op = Operation(types=(VALUE_INOUT, 0, 0, 0), params=[Value(a, b), None, None, None])
    ret, _origin = sess.invoke(cmd, op, check=False)
    return ret, op.params[0].a, op.params[0].b


def test_the_ta_persistent_clock_is_unset_then_runs_on_from_the_value_set(time_ta_elf):
    p = tzemu.boot(extra_tas={TIME_TA: ("time_ta", time_ta_elf)})
    sess = _session(p)
    assert _call(sess, GET, C["UTEE_TIME_CAT_TA_PERSISTENT"])[0] == C["TEE_ERROR_TIME_NOT_SET"]
    assert _call(sess, SET, 1_000_000, 250)[0] == C["TEE_SUCCESS"]
    ret, secs, millis = _call(sess, GET, C["UTEE_TIME_CAT_TA_PERSISTENT"])
    assert ret == C["TEE_SUCCESS"]
    assert (secs, millis) >= (1_000_000, 250) and secs < 1_000_002, (secs, millis)
    ret, sys_s, _ = _call(sess, GET, C["UTEE_TIME_CAT_SYSTEM"])
    assert ret == C["TEE_SUCCESS"] and sys_s < 1000     # the system clock was not moved
    sess.close()
    # Persistent across sessions and instances of the same TA (kept per UUID).
    again = _session(p)
    assert _call(again, GET, C["UTEE_TIME_CAT_TA_PERSISTENT"])[1] >= 1_000_000


def test_a_persistent_time_past_32_bit_seconds_reports_overflow(time_ta_elf):
    p = tzemu.boot(extra_tas={TIME_TA: ("time_ta", time_ta_elf)})
    sess = _session(p)
    assert _call(sess, SET, 0xFFFFFFFF, 999)[0] == C["TEE_SUCCESS"]
    p.secure_os.advance_clock_ms(5000)
    ret, secs, _ = _call(sess, GET, C["UTEE_TIME_CAT_TA_PERSISTENT"])
    assert ret == C["TEE_ERROR_OVERFLOW"] and secs < 10, (hex(ret), secs)


def test_millis_of_1000_or_more_are_bad_parameters_and_leave_the_clock_unset(time_ta_elf):
    p = tzemu.boot(extra_tas={TIME_TA: ("time_ta", time_ta_elf)})
    sess = _session(p)
    assert _call(sess, SET, 5, 1000)[0] == C["TEE_ERROR_BAD_PARAMETERS"]
    assert _call(sess, GET, C["UTEE_TIME_CAT_TA_PERSISTENT"])[0] == C["TEE_ERROR_TIME_NOT_SET"]


def test_an_unknown_time_category_is_bad_parameters(time_ta_elf):
    p = tzemu.boot(extra_tas={TIME_TA: ("time_ta", time_ta_elf)})
    assert _call(_session(p), GET, 7)[0] == C["TEE_ERROR_BAD_PARAMETERS"]


@pytest.mark.parametrize("ptr", [0x1000, 0x7FFFF000, 0xFFFFFFF8])
def test_set_ta_time_from_a_bad_pointer_is_access_denied_and_the_ta_lives(time_ta_elf, ptr):
    p = tzemu.boot(extra_tas={TIME_TA: ("time_ta", time_ta_elf)})
    sess = _session(p)
    assert _call(sess, SET_RAW, ptr)[0] == C["TEE_ERROR_ACCESS_DENIED"]
    assert _call(sess, GET, C["UTEE_TIME_CAT_TA_PERSISTENT"])[0] == C["TEE_ERROR_TIME_NOT_SET"]
    assert _call(sess, SET, 7, 0)[0] == C["TEE_SUCCESS"]       # same session, still alive
