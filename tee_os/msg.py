"""``struct optee_msg_arg`` as the secure OS reads it: copied out of normal-world memory first.

The normal world can change shared memory at any time, so the header and parameters are copied
into a private buffer before anything is validated (Hafnium's habit); results are written back
field by field. Offsets come from tee_os/include/optee_msg.h through the header loader.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from emu.abi import AbiSet


@dataclass
class MsgParam:
    attr: int          # full attribute word
    a: int             # first u64 of the union (value.a, tmem.buf_ptr, rmem.offs, fmem offs)
    b: int             # second u64 (value.b, size)
    c: int             # third u64 (value.c, shm_ref, global_id)

    def type(self, mask: int) -> int:
        return self.attr & mask


@dataclass
class MsgArg:
    cmd: int
    func: int
    session: int
    cancel_id: int
    ret: int
    ret_origin: int
    num_params: int
    params: list[MsgParam]


class MsgLayout:
    """Field offsets of optee_msg_arg / optee_msg_param from the secure header copy."""

    def __init__(self, abi: AbiSet):
        arg = abi.structs["optee_msg_arg"]
        param = abi.structs["optee_msg_param"]
        self.header_size = arg.offset_of("params")
        self.param_size = param.size
        self.off = {f: arg.offset_of(f) for f in
                    ("cmd", "func", "session", "cancel_id", "ret", "ret_origin", "num_params")}
        self.attr_off = param.offset_of("attr")
        self.union_off = param.offset_of("u")

    def arg_size(self, num_params: int) -> int:
        return self.header_size + self.param_size * num_params

    def parse_header(self, raw: bytes) -> tuple[int, ...]:
        o = self.off
        return tuple(struct.unpack_from("<I", raw, o[f])[0] for f in
                     ("cmd", "func", "session", "cancel_id", "ret", "ret_origin", "num_params"))

    def parse(self, raw: bytes) -> MsgArg:
        cmd, func, session, cancel_id, ret, ret_origin, num = self.parse_header(raw)
        params = []
        for i in range(num):
            base = self.header_size + i * self.param_size
            attr = struct.unpack_from("<Q", raw, base + self.attr_off)[0]
            a, b, c = struct.unpack_from("<QQQ", raw, base + self.union_off)
            params.append(MsgParam(attr, a, b, c))
        return MsgArg(cmd, func, session, cancel_id, ret, ret_origin, num, params)

    def build(self, arg: MsgArg) -> bytes:
        buf = bytearray(self.arg_size(len(arg.params)))
        o = self.off
        for f, v in (("cmd", arg.cmd), ("func", arg.func), ("session", arg.session),
                     ("cancel_id", arg.cancel_id), ("ret", arg.ret),
                     ("ret_origin", arg.ret_origin), ("num_params", len(arg.params))):
            struct.pack_into("<I", buf, o[f], v & 0xFFFFFFFF)
        for i, p in enumerate(arg.params):
            base = self.header_size + i * self.param_size
            struct.pack_into("<Q", buf, base + self.attr_off, p.attr)
            struct.pack_into("<QQQ", buf, base + self.union_off, p.a, p.b, p.c)
        return bytes(buf)

    def param_offset(self, index: int) -> int:
        return self.header_size + index * self.param_size + self.union_off
