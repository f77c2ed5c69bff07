"""The normal world's view of ``struct optee_msg_arg`` (from linux_side's optee_msg.h copy).

Used to build messages in kernel memory and read the secure world's answers back.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from emu.abi import AbiSet


@dataclass
class MsgParam:
    attr: int = 0
    a: int = 0
    b: int = 0
    c: int = 0


@dataclass
class MsgArg:
    cmd: int = 0
    func: int = 0
    session: int = 0
    cancel_id: int = 0
    ret: int = 0
    ret_origin: int = 0
    params: list[MsgParam] = field(default_factory=list)


class OpteeMsgLayout:
    _FIELDS = ("cmd", "func", "session", "cancel_id", "pad", "ret", "ret_origin", "num_params")

    def __init__(self, abi: AbiSet):
        arg, param = abi.structs["optee_msg_arg"], abi.structs["optee_msg_param"]
        self.header = arg.offset_of("params")
        self.param_size = param.size
        self.offsets = {f: arg.offset_of(f) for f in self._FIELDS}
        self.union = param.offset_of("u")
        self.attr = param.offset_of("attr")

    def size(self, num_params: int) -> int:
        return self.header + self.param_size * num_params

    def pack(self, arg: MsgArg) -> bytes:
        buf = bytearray(self.size(len(arg.params)))
        values = {"cmd": arg.cmd, "func": arg.func, "session": arg.session,
                  "cancel_id": arg.cancel_id, "pad": 0, "ret": arg.ret,
                  "ret_origin": arg.ret_origin, "num_params": len(arg.params)}
        for name, value in values.items():
            struct.pack_into("<I", buf, self.offsets[name], value & 0xFFFFFFFF)
        for i, p in enumerate(arg.params):
            base = self.header + i * self.param_size
            struct.pack_into("<Q", buf, base + self.attr, p.attr)
            struct.pack_into("<QQQ", buf, base + self.union, p.a & (2**64 - 1), p.b & (2**64 - 1),
                             p.c & (2**64 - 1))
        return bytes(buf)

    def num_params(self, raw: bytes) -> int:
        return struct.unpack_from("<I", raw, self.offsets["num_params"])[0]

    def unpack(self, raw: bytes, num_params: int | None = None) -> MsgArg:
        get = lambda f: struct.unpack_from("<I", raw, self.offsets[f])[0]  # noqa: E731
        n = get("num_params") if num_params is None else num_params
        params = []
        for i in range(n):
            base = self.header + i * self.param_size
            attr = struct.unpack_from("<Q", raw, base + self.attr)[0]
            a, b, c = struct.unpack_from("<QQQ", raw, base + self.union)
            params.append(MsgParam(attr, a, b, c))
        return MsgArg(get("cmd"), get("func"), get("session"), get("cancel_id"), get("ret"),
                      get("ret_origin"), params)
