"""ta/sdp_basic_ta.S on a bare unicorn: the TA->TA and TA->PTA commands (INVOKE_*, PTA_*),
end to end with a second TA instance as callee, and position independence (another base).
Harness: sdp_harness.py."""
from __future__ import annotations

from typing import Callable

from sdp_harness import (ACCESS_DENIED, BAD_PARAMETERS, Call, DUMP, INFINITE, INJECT, INOUT,
                         INVOKE_DUMP, INVOKE_INJECT, INVOKE_TRANSFORM, IN_OUT, ITEM_NOT_FOUND,
                         MEM_INOUT, NONE, NOT_SUPPORTED, NS_BASE, PTA_DUMP, PTA_INJECT,
                         PTA_TRANSFORM, PTA_UUID, SCN_CACHE, SCN_CHECK, SCN_CLOSE, SCN_INVOKE,
                         SCN_LOG, SCN_OPEN, SCN_RETURN, SDP_UUID, SEC_BASE, SHORT_BUFFER, SUCCESS,
                         SdpTa, TARGET_DEAD, TRANSFORM, VALUE_INOUT, VALUE_OUT, neg, packed,
                         shared_buffers)


# ------------------------------------------------------------- TA -> TA and TA -> PTA

def _stack(ta: SdpTa, va: int) -> bool:
    return ta.STACK_TOP - ta.img.stack_size <= va < ta.STACK_TOP


def test_invoke_opens_own_session_once_and_forwards(ta: SdpTa) -> None:
    vals = (NS_BASE + 4, 48, SEC_BASE + 8, 64)
    res, out = ta.invoke(INVOKE_INJECT, IN_OUT, vals)
    assert res == SUCCESS and out[:4] == list(vals)
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]
    open_call, inv = ta.calls[0], ta.calls[1]
    # OPEN_TA_SESSION(dest, TEE_TIMEOUT_INFINITE, zeroed utee_params, &sess, &ret_orig)
    assert open_call.extra["uuid"] == SDP_UUID
    assert open_call.args[0] == ta.base + ta.img.symbols["sdp_basic_uuid"]   # in rodata
    assert open_call.args[1] == INFINITE
    assert open_call.extra["params"] == (0, [0] * 8)
    for ptr in open_call.args[2:5]:
        assert _stack(ta, ptr)                          # TA-private memory
    sess = open_call.extra["session"]
    # INVOKE_TA_COMMAND(sess, TEE_TIMEOUT_INFINITE, 0, utee_params, &ret_orig)
    assert inv.args[:3] == (sess, INFINITE, INJECT)
    assert inv.extra["params"] == (0x65, list(vals) + [0] * 4)
    assert _stack(ta, inv.args[3]) and _stack(ta, inv.args[4])
    assert inv.args[3] != ta.params_va                  # a copy, not the entry block
    # Second and later calls reuse the session kept in the static; 4 -> 1, 5 -> 2.
    for cmd, types, fwd in ((INVOKE_INJECT, IN_OUT, INJECT), (INVOKE_TRANSFORM, INOUT, TRANSFORM),
                            (INVOKE_DUMP, IN_OUT, DUMP)):
        assert ta.invoke(cmd, types, vals[:2 * len(types)])[0] == SUCCESS
        assert ta.nrs() == [SCN_INVOKE, SCN_RETURN]
        assert ta.calls[0].args[:3] == (sess, INFINITE, fwd)
        assert ta.calls[0].extra["params"][0] == packed(types)


def test_invoke_failure_closes_and_forgets_the_session(ta: SdpTa) -> None:
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (SEC_BASE, 8))[0] == SUCCESS
    sess = ta.calls[0].extra["session"]
    ta.callee = lambda s, cmd, types, vals: (ACCESS_DENIED, None)
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (NS_BASE, 8))[0] == ACCESS_DENIED
    assert ta.nrs() == [SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]
    assert ta.calls[2].args[0] == sess
    assert ta.logs == [b"E/TA:  cmd_invoke SDP basic test TA: TEE_InvokeTACommand() FAILED "
                       b"0xffff0001\n"]
    # Forgotten: the next call opens a new session.
    ta.callee = lambda s, cmd, types, vals: (SUCCESS, None)
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (SEC_BASE, 8))[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]
    new = ta.calls[0].extra["session"]
    assert new != sess and ta.calls[1].args[0] == new


def test_callee_error_codes_pass_through(ta: SdpTa) -> None:
    for code in (SHORT_BUFFER, BAD_PARAMETERS, TARGET_DEAD):
        ta.callee = lambda s, cmd, types, vals, code=code: (code, None)
        assert ta.invoke(INVOKE_DUMP, IN_OUT, (SEC_BASE, 4, NS_BASE, 4))[0] == code
        assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]


def test_open_failure(ta: SdpTa) -> None:
    ta.open_result = ITEM_NOT_FOUND
    assert ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE, 4, SEC_BASE, 4))[0] == ITEM_NOT_FOUND
    assert ta.nrs() == [SCN_OPEN, SCN_LOG, SCN_RETURN]          # no handle: no CLOSE
    assert ta.logs == [b"E/TA:  cmd_invoke SDP basic test TA: TEE_OpenTASession() FAILED "
                       b"0xffff0008\n"]
    ta.open_result = SUCCESS
    assert ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE, 4, SEC_BASE, 4))[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]


def test_forwarded_params_and_copy_back(ta: SdpTa) -> None:
    """__utee_from_param on the way out (values as u32, NONE zeroed, memrefs as received) and
    only outputs copied back (value outputs, memref output sizes)."""
    seen: list[tuple[int, list[int]]] = []

    def callee(sess: int, cmd: int, types: int, vals: list[int]) -> tuple[int, list[int]]:
        seen.append((types, list(vals)))
        return SHORT_BUFFER, [0x1111, 0x2222, 0xA_0000_3333, 0xB_0000_4444,
                              0x5555, 0x6666, 0x7777, 0x8888]
    ta.callee = callee
    types = (VALUE_INOUT, VALUE_OUT, NONE, MEM_INOUT)
    vals = (0xF_0000_0001, 2, 3, 4, 0xDEAD, 0xBEEF, SEC_BASE, 0x20)
    res, out = ta.invoke(INVOKE_TRANSFORM, types, vals)
    assert res == SHORT_BUFFER
    assert seen == [(packed(types), [1, 2, 3, 4, 0, 0, SEC_BASE, 0x20])]
    assert out == [0x1111, 0x2222, 0x3333, 0x4444, 0xDEAD, 0xBEEF, SEC_BASE, 0x8888]
    # Memref input/output: only the OUTPUT size comes back.
    ta.callee = lambda s, cmd, t, v: (SUCCESS, [1, 2, 3, 4, 5, 6, 7, 8])
    res, out = ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE, 16, SEC_BASE, 16))
    assert res == SUCCESS and out == [NS_BASE, 16, SEC_BASE, 4, 0, 0, 0, 0]


def test_pta_commands(ta: SdpTa) -> None:
    vals = (SEC_BASE, 32, NS_BASE, 32)
    assert ta.invoke(PTA_DUMP, IN_OUT, vals)[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]
    assert ta.calls[0].extra["uuid"] == PTA_UUID
    assert ta.calls[0].args[0] == ta.base + ta.img.symbols["pta_self_test_uuid"]
    assert ta.calls[0].args[1] == INFINITE and ta.calls[0].extra["params"] == (0, [0] * 8)
    pta_sess = ta.calls[0].extra["session"]
    assert ta.calls[1].args[:3] == (pta_sess, INFINITE, 5)
    assert ta.calls[1].extra["params"] == (0x65, list(vals) + [0] * 4)
    for cmd, types, pta_cmd in ((PTA_INJECT, IN_OUT, 3), (PTA_TRANSFORM, INOUT, 4),
                                (PTA_DUMP, IN_OUT, 5)):
        assert ta.invoke(cmd, types, vals[:2 * len(types)])[0] == SUCCESS
        assert ta.nrs() == [SCN_INVOKE, SCN_RETURN]
        assert ta.calls[0].args[:3] == (pta_sess, INFINITE, pta_cmd)
    # The TA->TA session is a separate static.
    assert ta.invoke(INVOKE_INJECT, IN_OUT, vals)[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]
    assert ta.calls[0].extra["uuid"] == SDP_UUID
    ta_sess = ta.calls[0].extra["session"]
    assert ta_sess != pta_sess
    # A PTA failure drops only the PTA session.
    ta.callee = lambda s, cmd, t, v: (BAD_PARAMETERS, None) if s == pta_sess else (SUCCESS, None)
    assert ta.invoke(PTA_TRANSFORM, INOUT, (NS_BASE, 8))[0] == BAD_PARAMETERS
    assert ta.nrs() == [SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]
    assert ta.calls[2].args[0] == pta_sess
    assert ta.logs == [b"E/TA:  cmd_invoke_pta SDP basic test TA: TEE_InvokeTACommand() FAILED "
                       b"0xffff0006\n"]
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (SEC_BASE, 8))[0] == SUCCESS
    assert ta.nrs() == [SCN_INVOKE, SCN_RETURN] and ta.calls[0].args[0] == ta_sess
    assert ta.invoke(PTA_TRANSFORM, INOUT, (SEC_BASE, 8))[0] == SUCCESS
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_RETURN]


def test_pta_open_failure_message(ta: SdpTa) -> None:
    ta.open_result = ITEM_NOT_FOUND
    assert ta.invoke(PTA_INJECT, IN_OUT, (NS_BASE, 4, SEC_BASE, 4))[0] == ITEM_NOT_FOUND
    assert ta.nrs() == [SCN_OPEN, SCN_LOG, SCN_RETURN]
    assert ta.logs == [b"E/TA:  cmd_invoke_pta SDP basic test TA: TEE_OpenTASession() FAILED "
                       b"0xffff0008\n"]


# ------------------------------------------------- end to end: the callee really runs

class TaToTa:
    """The caller TA whose sessions (syscalls 5/7/6) are served by fresh callee instances on
    their own unicorns, sharing the ns/sec buffers (memrefs keep their VAs)."""

    def __init__(self) -> None:
        self.buffers = shared_buffers()
        self.caller = SdpTa(buffers=self.buffers)
        self.instances: dict[int, SdpTa] = {}
        self.callee_calls: list[list[tuple[int, ...]]] = []
        caller = self.caller
        real_syscall = caller._syscall

        def syscall(call: Call) -> int:
            if call.nr == SCN_OPEN:
                res = real_syscall(call)
                if res == SUCCESS:     # not single-instance: a new instance per session
                    inst = SdpTa(base=0x7F000000, buffers=self.buffers)
                    assert inst.invoke(0, func=0)[0] == SUCCESS
                    self.instances[call.extra["session"]] = inst
                return res
            if call.nr == SCN_CLOSE:
                self.instances.pop(call.args[0] & 0xFFFFFFFF).invoke(0, func=1)
            return real_syscall(call)
        caller._syscall = syscall

        def callee(sess: int, cmd: int, types: int, vals: list[int]) -> tuple[int, list[int]]:
            inst = self.instances[sess]
            nibbles = tuple((types >> (4 * i)) & 0xF for i in range(4))
            res, out = inst.invoke(cmd, nibbles, tuple(vals))
            self.callee_calls.append(inst.syscalls())
            return res, out
        caller.callee = callee


def test_ta_to_ta_end_to_end() -> None:
    """xtest TEST_TA_TO_TA: client -> cmds 3/4/5 -> new sdp_basic instance cmds 0/1/2."""
    env = TaToTa()
    ta = env.caller
    ref = bytes((i * 37 + 11) & 0xFF for i in range(1000))
    ta.write(NS_BASE + 3, ref)
    n = len(ref)
    assert ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE + 3, n, SEC_BASE + 200, n))[0] == SUCCESS
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (SEC_BASE + 200, n))[0] == SUCCESS
    ta.write(NS_BASE + 3, bytes(n))
    assert ta.invoke(INVOKE_DUMP, IN_OUT, (SEC_BASE + 200, n, NS_BASE + 3, n))[0] == SUCCESS
    assert ta.read(NS_BASE + 3, n) == neg(ref)
    assert len(env.instances) == 1                      # one session, kept in the static
    assert [[c[0] for c in calls] for calls in env.callee_calls] == [
        [SCN_CHECK, SCN_CHECK, SCN_CACHE, SCN_CACHE, SCN_RETURN],
        [SCN_CHECK, SCN_CACHE, SCN_CACHE, SCN_RETURN],
        [SCN_CHECK, SCN_CHECK, SCN_CACHE, SCN_RETURN]]
    # The callee refuses a non-secure "sec" buffer: the caller closes and forgets the session.
    assert ta.invoke(INVOKE_TRANSFORM, INOUT, (NS_BASE, 16))[0] == ACCESS_DENIED
    assert ta.nrs() == [SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN] and env.instances == {}
    # SHORT_BUFFER from the callee: no copy; the next call opens a new instance.
    assert ta.invoke(INVOKE_INJECT, IN_OUT, (NS_BASE, 16, SEC_BASE, 8))[0] == SHORT_BUFFER
    assert ta.nrs() == [SCN_OPEN, SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]


def pta_invoke_tests(ta: SdpTa) -> Callable[[int, int, int, list[int]], tuple[int, list[int]]]:
    """A Python model of invoke_tests.pta commands 3/4/5 (sdp_tests.md §2) on ``ta``'s
    mappings, as a pseudo-TA called from a TA works."""
    def secure(va: int, size: int) -> bool | None:
        reg = ta.region(va, size)
        return None if reg is None else reg[2]

    def callee(sess: int, cmd: int, types: int, vals: list[int]) -> tuple[int, list[int] | None]:
        out = list(vals)
        if cmd in (3, 5):
            if types != 0x65:
                return BAD_PARAMETERS, None
            (src, n_in, dst, n_out) = vals[:4]
            if n_out < n_in:
                out[3] = n_in
                return SHORT_BUFFER, out
            if secure(src, n_in) is not (cmd == 5) or secure(dst, n_in) is not (cmd == 3):
                return BAD_PARAMETERS, None
            ta.write(dst, ta.read(src, n_in))
            return SUCCESS, out
        if cmd == 4:
            if types != 0x7 or not secure(vals[0], vals[1]):
                return BAD_PARAMETERS, None
            ta.write(vals[0], neg(ta.read(vals[0], vals[1])))
            return SUCCESS, out
        return NOT_SUPPORTED, None
    return callee


def test_ta_to_pta_end_to_end(ta: SdpTa) -> None:
    """xtest TEST_TA_TO_PTA: client -> cmds 6/7/8 -> invoke_tests PTA cmds 3/4/5."""
    ta.callee = pta_invoke_tests(ta)
    ref = bytes(range(256)) * 3 + b"\x01\x7f\x80\xff\x00"
    n = len(ref)
    ta.write(NS_BASE, ref)
    assert ta.invoke(PTA_INJECT, IN_OUT, (NS_BASE, n, SEC_BASE + 17, n))[0] == SUCCESS
    assert ta.invoke(PTA_TRANSFORM, INOUT, (SEC_BASE + 17, n))[0] == SUCCESS
    ta.write(NS_BASE, bytes(n))
    assert ta.invoke(PTA_DUMP, IN_OUT, (SEC_BASE + 17, n, NS_BASE, n))[0] == SUCCESS
    assert ta.read(NS_BASE, n) == neg(ref)
    # The PTA's SHORT_BUFFER size update reaches the client through the TA's copy-back.
    res, out = ta.invoke(PTA_INJECT, IN_OUT, (NS_BASE, 64, SEC_BASE, 10))
    assert res == SHORT_BUFFER and out[:4] == [NS_BASE, 64, SEC_BASE, 64]
    assert ta.nrs() == [SCN_INVOKE, SCN_LOG, SCN_CLOSE, SCN_RETURN]


# ------------------------------------------------------------------- position independence

def test_runs_at_another_base() -> None:
    ta = SdpTa(base=0x7F000000)
    ta.write(NS_BASE, b"\x01\x02\x03")
    assert ta.invoke(INJECT, IN_OUT, (NS_BASE, 3, SEC_BASE, 3))[0] == SUCCESS
    assert ta.invoke(TRANSFORM, INOUT, (SEC_BASE, 3))[0] == SUCCESS
    assert ta.read(SEC_BASE, 3) == b"\xff\xfe\xfd"
    assert ta.invoke(PTA_INJECT, IN_OUT, (NS_BASE, 3, SEC_BASE, 3))[0] == SUCCESS
    assert ta.calls[0].args[0] == 0x7F000000 + ta.img.symbols["pta_self_test_uuid"]
    assert ta.calls[0].extra["uuid"] == PTA_UUID
