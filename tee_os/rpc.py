"""RPC requests a trusted thread makes of the normal world (OP-TEE's thread_rpc_*).

Code deep inside a call (a syscall, the TA manager) yields one of these; the thread layer in
``entry_std`` turns it into the OPTEE_SMC RPC register protocol (ALLOC / FREE / CMD /
FOREIGN_INTR) and sends the reply back down.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tee_os.msg import MsgParam


@dataclass
class RpcCmd:
    """OPTEE_SMC_RPC_FUNC_CMD carrying an RPC optee_msg_arg (``cmd`` = OPTEE_RPC_CMD_*)."""

    cmd: int
    params: list[MsgParam] = field(default_factory=list)


@dataclass
class RpcCmdReply:
    ret: int
    ret_origin: int
    params: list[MsgParam]


@dataclass
class RpcForeignIntr:
    """A normal-world interrupt arrived while the thread ran: exit, let Linux take it."""


@dataclass
class RpcAllocPayload:
    """OPTEE_RPC_CMD_SHM_ALLOC: ask the kernel for a shared buffer of ``size`` bytes."""

    size: int
    shm_type: int


@dataclass
class RpcPayload:
    pa: int
    size: int
    cookie: int


@dataclass
class RpcFreePayload:
    """OPTEE_RPC_CMD_SHM_FREE of a buffer obtained with RpcAllocPayload."""

    payload: RpcPayload
