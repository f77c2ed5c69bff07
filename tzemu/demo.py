"""The TA round trip that ``tzemu run`` performs: every world, every parameter kind."""
from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field

from linux_side.teec import (TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE,
                             TEEC_VALUE_INOUT, TEEC_VALUE_OUTPUT, Operation, TempMemref, Value)
from tzemu.platform import Platform

ECHO_TA = uuidlib.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")
CMD_INC_VALUE, CMD_ECHO, CMD_COUNTER, CMD_LOG = 0, 1, 2, 4


@dataclass
class RunSummary:
    steps: list[tuple[str, str]] = field(default_factory=list)
    failures: int = 0

    def check(self, step: str, ok: bool, detail: str) -> None:
        self.steps.append((step, ("ok: " if ok else "FAILED: ") + detail))
        self.failures += 0 if ok else 1


def run_ta_roundtrip(p: Platform) -> RunSummary:
    s = RunSummary()
    info = p.probe_info
    expect = (1, 0) if p.options.abi == "ffa" else (2, 0)     # OPTEE_FFA vs OPTEE_MSG revision
    s.check("probe", info.api_revision == expect,
            f"{p.options.abi.upper()} ABI: OP-TEE API {info.api_revision[0]}.{info.api_revision[1]}, "
            f"caps {info.sec_caps:#x}")
    ctx = p.linux.teec()
    sess = ctx.open_session(ECHO_TA)
    s.check("open session", sess.id > 0, f"echo TA session {sess.id}")
    op = Operation((TEEC_VALUE_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE), [Value(41, 1), None, None, None])
    sess.invoke(CMD_INC_VALUE, op)
    s.check("value param", op.params[0].a == 42, f"41 + 1 = {op.params[0].a} (computed at S-EL0)")
    msg = b"hello from the normal world"
    op = Operation((TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE),
                   [TempMemref(msg), TempMemref(size=64), None, None])
    sess.invoke(CMD_ECHO, op)
    s.check("memref params", op.params[1].out[:op.params[1].size] == msg,
            f"echoed {op.params[1].size} bytes through registered shared memory")
    counts = []
    for _ in range(3):
        op = Operation((TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE), [Value(), None, None, None])
        sess.invoke(CMD_COUNTER, op)
        counts.append(op.params[0].a)
    s.check("instance state", counts == [1, 2, 3], f"counter in TA .data: {counts}")
    sess.invoke(CMD_LOG)
    log = p.secure_os.ta_log[-1].text.strip() if p.secure_os.ta_log else ""
    s.check("TA log syscall", "hello" in log, repr(log))
    sess.close()
    ctx.close()
    s.check("close", not p.secure_os.ta_manager.sessions, "session closed, instance released")
    return s
