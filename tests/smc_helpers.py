"""Register-level helpers for driving the secure OS without the Linux model.

Layouts here are typed from ../shared/abi/optee_smc_msg.md on purpose: they check the headers
the emulator reads, independently.
"""
from __future__ import annotations

import struct
import uuid as uuidlib

CALL_WITH_ARG, CALL_WITH_RPC_ARG, CALL_WITH_REGD_ARG = 0x32000004, 0x32000012, 0x32000013
RETURN_FROM_RPC = 0x32000003
RPC_ALLOC, RPC_FREE, RPC_FOREIGN_INTR, RPC_CMD = 0, 2, 4, 5
VALUE_IN, VALUE_OUT, VALUE_INOUT = 1, 2, 3
RMEM_IN, RMEM_OUT, RMEM_INOUT = 5, 6, 7
TMEM_IN, TMEM_OUT, TMEM_INOUT = 9, 0xA, 0xB
META = 0x100
CMD_OPEN, CMD_INVOKE, CMD_CLOSE = 0, 1, 2
ECHO = uuidlib.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f31")
ECHO_MULTI = uuidlib.UUID("7a1f0c8e-3d4b-4c6a-9e2f-5b8d1c0e7f32")
TEE_ERROR_BAD_PARAMETERS, TEE_ERROR_ITEM_NOT_FOUND = 0xFFFF0006, 0xFFFF0008
TEE_ERROR_TARGET_DEAD, TEE_ERROR_ACCESS_DENIED = 0xFFFF3024, 0xFFFF0001
ORIGIN_TEE, ORIGIN_TA = 3, 4


def msg_arg(cmd: int, params=(), func: int = 0, session: int = 0, cancel_id: int = 0) -> bytes:
    hdr = struct.pack("<8I", cmd, func, session, cancel_id, 0, 0, 0, len(params))
    return hdr + b"".join(struct.pack("<QQQQ", *p) for p in params)


def parse_arg(raw: bytes) -> dict:
    cmd, func, session, cancel_id, _pad, ret, origin, n = struct.unpack_from("<8I", raw)
    params = [struct.unpack_from("<QQQQ", raw, 32 + 32 * i) for i in range(n)]
    return {"cmd": cmd, "session": session, "ret": ret, "origin": origin, "params": params}


def open_params(uuid: uuidlib.UUID) -> list[tuple[int, int, int, int]]:
    o = uuid.bytes
    return [(VALUE_IN | META, int.from_bytes(o[:8], "little"), int.from_bytes(o[8:], "little"), 0),
            (VALUE_IN | META, 0, 0, 0)]


class RawCaller:
    """Issues yielding calls from NS-EL1 and serves RPCs by hand, recording them."""

    def __init__(self, p):
        self.p = p
        self.allocs: dict[int, int] = {}
        self.rpcs: list[int] = []
        self.rpc_cmds: list[int] = []
        self.page = p.kernel.pages.alloc(0x2000)

    def start(self, arg: bytes, fid: int = CALL_WITH_ARG, pa: int | None = None):
        pa = self.page if pa is None else pa
        self.p.physmem.write(pa, arg)
        return self.p.smc(fid, pa >> 32, pa & 0xFFFFFFFF)

    def serve(self, r):
        """Serve RPCs until the call completes; return the final registers."""
        while (r[0] & 0xFFFF0000) == 0xFFFF0000 and r[0] != 0xFFFFFFFF:
            r = self.p.smc(*self.answer(r))
        return r

    def answer(self, r) -> list[int]:
        func = r[0] & 0xFFFF
        self.rpcs.append(func)
        out = [RETURN_FROM_RPC, 0, 0, r[3], 0, 0, 0, 0]
        if func == RPC_ALLOC:
            pa = self.p.kernel.pages.alloc(0x1000)
            cookie = 0xC0C0_0000 + len(self.allocs)
            self.allocs[cookie] = pa
            out[1:3] = [pa >> 32, pa & 0xFFFFFFFF]
            out[4:6] = [cookie >> 32, cookie & 0xFFFFFFFF]
        elif func == RPC_FREE:
            cookie = (r[1] << 32) | r[2]
            self.p.kernel.pages.free(self.allocs.pop(cookie))
        elif func == RPC_CMD:
            cookie = (r[1] << 32) | r[2]
            pa = self.allocs.get(cookie)
            if pa is None:   # CALL_WITH_RPC_ARG: the RPC arg follows the message
                n = struct.unpack_from("<I", self.p.physmem.read(self.page + 28, 4))[0]
                pa = self.page + 32 + 32 * n
            arg = parse_arg(self.p.physmem.read(pa, 32 + 32 * 4))
            self.rpc_cmds.append(arg["cmd"])
            if arg["cmd"] == 3:                       # OPTEE_RPC_CMD_GET_TIME
                self.p.physmem.write(pa + 20, struct.pack("<II", 0, 2))
                self.p.physmem.write(pa + 32 + 8, struct.pack("<QQ", 1234, 567_000_000))
            else:
                self.p.physmem.write(pa + 20, struct.pack("<II", TEE_ERROR_ITEM_NOT_FOUND, 2))
        return out

    def call(self, arg: bytes, fid: int = CALL_WITH_ARG, pa: int | None = None) -> dict:
        r = self.serve(self.start(arg, fid, pa))
        assert r[0] == 0, f"yielding call failed with a0={r[0]:#x}"
        return parse_arg(self.p.physmem.read(self.page if pa is None else pa, 0x400))

    def open(self, uuid=ECHO) -> int:
        out = self.call(msg_arg(CMD_OPEN, open_params(uuid)))
        assert out["ret"] == 0, hex(out["ret"])
        return out["session"]


def echo_ta_file(ta_dir, new_uuid: uuidlib.UUID):
    """The echo TA rebuilt under ``new_uuid`` and signed with the test key, written as
    ``ta_dir/<new_uuid>.ta`` (a TA that only the REE TA store can serve); returns the path."""
    from ta.build import build_ta, load_manifest
    from ta.sign import sign_ta
    entry = dict(next(e for e in load_manifest() if e["name"] == "echo"))
    entry["uuid"] = str(new_uuid)
    path = ta_dir / f"{new_uuid}.ta"
    path.write_bytes(sign_ta(build_ta(entry), new_uuid))
    return path

