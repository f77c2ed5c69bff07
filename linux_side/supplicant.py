"""tee-supplicant: the user-space helper that serves the secure world's storage requests.

Only OPTEE_RPC_CMD_LOAD_TA is served: ``<uuid>.ta`` files from the configured TA directories
(like /lib/optee_armtz). Other supplicant commands answer TEEC_ERROR_NOT_SUPPORTED.
"""
from __future__ import annotations

import uuid as uuidlib
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from linux_side.optee.optee_msg import MsgArg

if TYPE_CHECKING:
    from linux_side.optee.optee import OpteeDriver


class Supplicant:
    def __init__(self, ta_dirs: Sequence[str | Path] = ()):
        self.ta_dirs = [Path(d) for d in ta_dirs]
        self.requests: list[tuple[int, str]] = []

    def find_ta(self, uuid: uuidlib.UUID) -> Path | None:
        for d in self.ta_dirs:
            path = d / f"{uuid}.ta"
            if path.is_file():
                return path
        return None

    def handle(self, arg: MsgArg, drv: "OpteeDriver") -> None:
        c = drv.c
        if arg.cmd != c.OPTEE_RPC_CMD_LOAD_TA:
            self.requests.append((arg.cmd, "not supported"))
            arg.ret = c.TEEC_ERROR_NOT_SUPPORTED
            return
        if len(arg.params) != 2:
            arg.ret = c.TEEC_ERROR_BAD_PARAMETERS
            return
        octets = arg.params[0].a.to_bytes(8, "little") + arg.params[0].b.to_bytes(8, "little")
        uuid = uuidlib.UUID(bytes=octets)
        path = self.find_ta(uuid)
        self.requests.append((arg.cmd, str(uuid)))
        if path is None:
            arg.ret = c.TEEC_ERROR_ITEM_NOT_FOUND
            return
        data = path.read_bytes()
        out = arg.params[1]
        if out.a == 0 or out.b < len(data):
            out.b = len(data)            # size query: tell the secure world how much to allocate
            arg.ret = c.TEEC_SUCCESS
            return
        drv.kernel.conduit.write(out.a, data)
        out.b = len(data)
        arg.ret = c.TEEC_SUCCESS
