"""A scripted FF-A secure side behind a fake NS conduit, for the Linux FF-A driver tests.

``FakeFfaWorld`` is what the Linux model's ``conduit`` needs (``smc``, ``read``, ``write``,
``take_interrupts``) over a bytearray of normal-world RAM, and answers FF-A calls the way the
fact sheets say an S-EL1 SPMC with OP-TEE does (ffa_spec.md §2-§3, optee_ffa.md): version,
id, features, RX/TX map, partition info in the RX buffer, memory sends with fragments and
handles ``0x1000_0000_0000 | slot``, reclaim, direct requests to OP-TEE's services and yielding
calls that run small scripted OPTEE_MSG commands (with RPCs, interrupts and BUSY on demand).

Every SMC is kept in ``calls`` (x0..x7 in, x0..x7 out) and every completed memory transaction
in ``mem_ops`` (raw descriptor bytes, fragment lengths, handle), so tests can check the exact
bytes Linux sends. Numbers are written out here on purpose: they are the ABI under test.
"""
from __future__ import annotations

import struct
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any, Generator

from emu.abi import linux_abi
from linux_side.kernel import Kernel, KernelConfig

M32 = 0xFFFFFFFF
ERROR, SUCCESS, SUCCESS64, INTERRUPT = 0x84000060, 0x84000061, 0xC4000061, 0x84000062
VERSION, FEATURES, RX_RELEASE, RXTX_MAP64, RXTX_UNMAP = (0x84000063, 0x84000064, 0x84000065,
                                                          0xC4000066, 0x84000067)
PART_INFO, ID_GET, YIELD, RUN = 0x84000068, 0x84000069, 0x8400006C, 0x8400006D
DIRECT_REQ, DIRECT_RESP = 0x8400006F, 0x84000070
LEND32, LEND64, SHARE32, SHARE64 = 0x84000072, 0xC4000072, 0x84000073, 0xC4000073
RECLAIM, OP_PAUSE, OP_RESUME = 0x84000077, 0x84000078, 0x84000079
FRAG_RX, FRAG_TX = 0x8400007A, 0x8400007B
NOT_SUPPORTED, INVALID, NO_MEMORY, BUSY_CODE, DENIED = -1, -2, -3, -4, -6
OPTEE_UUID = uuidlib.UUID("486178e0-e7f8-11e3-bc5e-0002a5d5c51b")
WITH_ARG, RESUME = 0x80000000, 0x80000001
TEEC_BUSY, SHORT_BUFFER = 0xFFFF000D, 0xFFFF0010
RETURN_DONE, RETURN_RPC, RETURN_INTERRUPT = 0, 1, 2
HDR, PARAM = 32, 32                       # optee_msg_arg header and one optee_msg_param
INVALID_GID = (1 << 64) - 1
FUNC_INCREMENT, FUNC_RPC_SHM, FUNC_INTERRUPT, FUNC_LOAD_TA = 0, 9, 8, 10   # fake TA commands
RAM_BASE, RAM_SIZE = 0x4000_0000, 0x80_0000
POOL_SIZE = 0x40_0000                      # kernel pages, then CMA


def u32(v: int) -> int:
    return v & M32


def arg_size(n: int) -> int:
    return HDR + PARAM * n


@dataclass
class MemObject:
    kind: str                      # "share" or "lend"
    desc: bytes
    frags: list[int]
    fid: int
    tag: int = 0
    receivers: list[tuple[int, int, int, int]] = field(default_factory=list)
    constituents: list[tuple[int, int]] = field(default_factory=list)
    complete: bool = False
    handle: int = 0

    def pa(self, offset: int) -> int:
        for base, pages in self.constituents:
            if offset < pages * 0x1000:
                return base + offset
            offset -= pages * 0x1000
        raise ValueError("offset outside the object")


class FakeFfaWorld:
    def __init__(self, version: int = 0x10002, rxtx_min: int | None = 0,
                 features: set[int] | None = None, sp_id: int = 0x8001,
                 caps: int = 0x1, rpc_params: int = 4, api_version: tuple[int, int] = (1, 0),
                 protmem_attrs: tuple[int, ...] = (0x0002_8001,), min_size: int = 0x10_0000):
        self.mem = bytearray(RAM_SIZE)
        self.version, self.rxtx_min, self.sp_id = version, rxtx_min, sp_id
        self.features = {SHARE64, RECLAIM, FRAG_TX, DIRECT_REQ} if features is None else features
        self.caps, self.rpc_params, self.api_version = caps, rpc_params, api_version
        self.protmem_attrs, self.min_size = protmem_attrs, min_size
        self.calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        self.mem_ops: list[MemObject] = []
        self.objects: dict[int, MemObject] = {}
        self.pending: dict[int, MemObject] = {}
        self.caller_version = 0x10000
        self.tx = self.rx = self.rxtx_pages = 0
        self.rx_full = False
        self.slot = 0
        self.threads: dict[int, Generator] = {}
        self.next_tid = self.next_session = 1
        self.saved: tuple[int, ...] | None = None
        # knobs
        self.ffa_interrupts = 0            # FFA_INTERRUPT answers before a direct response
        self.ffa_yields = 0
        self.busy = 0                      # TEEC_ERROR_BUSY answers to WITH_ARG
        self.busy_on_resume = False
        self.direct_errors: dict[int, int] = {}    # service -> FF-A error code
        self.reclaim_error: int | None = None
        self.frag_error: int | None = None
        self.assign_ret = 0
        self.frag_rx_w3: int | None = None
        self.pauses = 0                    # FFA_MEM_OP_PAUSE answers to a memory send
        self.irq_acks = 0
        self.seen_msgs: list[dict[str, Any]] = []
        self.rpc_answers: list[list[tuple[int, int, int, int]]] = []
        self.services: list[tuple[int, ...]] = []  # every direct request's w3..w7

    # --- the conduit ---------------------------------------------------------------------------
    def read(self, pa: int, size: int) -> bytes:
        off = pa - RAM_BASE
        assert 0 <= off and off + size <= RAM_SIZE, f"read outside RAM at {pa:#x}"
        return bytes(self.mem[off:off + size])

    def write(self, pa: int, data: bytes) -> None:
        off = pa - RAM_BASE
        assert 0 <= off and off + len(data) <= RAM_SIZE, f"write outside RAM at {pa:#x}"
        self.mem[off:off + len(data)] = data

    def take_interrupts(self) -> list[int]:
        self.irq_acks += 1
        return []

    def smc(self, *args: int) -> tuple[int, ...]:
        regs = tuple(args) + (0,) * (8 - len(args))
        out = self._dispatch(regs)
        out = tuple(v & ((1 << 64) - 1) for v in out) + (0,) * (8 - len(out))
        self.calls.append((regs, out))
        return out

    # --- answers --------------------------------------------------------------------------------
    def err(self, code: int) -> tuple[int, ...]:
        return (ERROR, 0, u32(code))

    def ok(self, *vals: int) -> tuple[int, ...]:
        return (SUCCESS, 0) + vals

    def _dispatch(self, r: tuple[int, ...]) -> tuple[int, ...]:
        fid = u32(r[0])
        if fid == VERSION:
            self.caller_version = min(u32(r[1]), self.version)
            return (self.version,)
        if fid == ID_GET:
            return self.ok(0)
        if fid == FEATURES:
            if u32(r[1]) == RXTX_MAP64 and self.rxtx_min is not None:
                return self.ok(self.rxtx_min)
            return self.ok(0) if u32(r[1]) in self.features else self.err(NOT_SUPPORTED)
        if fid == RXTX_MAP64:
            if self.tx:
                return self.err(DENIED)
            self.tx, self.rx, self.rxtx_pages = r[1], r[2], u32(r[3])
            return self.ok()
        if fid == RX_RELEASE:
            self.rx_full = False
            return self.ok()
        if fid == PART_INFO:
            return self.partition_info(r)
        if fid == DIRECT_REQ:
            return self.direct(r)
        if fid == RUN:
            assert self.saved is not None and u32(r[1]) >> 16 == self.sp_id
            out, self.saved = self.saved, None
            return self.preempted(out)
        if fid in (LEND32, LEND64, SHARE32, SHARE64):
            out = self.mem_send(fid, r)
            if not self.pauses:
                return out
            self.saved = out
            return self.paused()
        if fid == OP_RESUME:
            assert (u32(r[1]), u32(r[2])) == (0x11, 0x22) and self.saved is not None
            return self.paused()
        if fid == FRAG_TX:
            return self.frag_tx(r)
        if fid == RECLAIM:
            handle = u32(r[1]) | u32(r[2]) << 32
            if handle not in self.objects:
                return self.err(INVALID)
            if self.reclaim_error is not None:
                return self.err(self.reclaim_error)
            del self.objects[handle]
            return self.ok()
        return (0xFFFFFFFF,)

    def paused(self) -> tuple[int, ...]:
        if self.pauses:
            self.pauses -= 1
            return (OP_PAUSE, 0x11, 0x22)
        out, self.saved = self.saved, None
        return out

    def partition_info(self, r: tuple[int, ...]) -> tuple[int, ...]:
        words = tuple(u32(v) for v in r[1:5])
        match = words in ((0, 0, 0, 0), struct.unpack("<4I", OPTEE_UUID.bytes))
        count = 1 if match else 0
        if not count:
            return self.err(INVALID)
        v11 = self.caller_version >= 0x10001
        if v11 and u32(r[5]) & 1:
            return self.ok(count, 24)
        if self.rx_full:
            return self.err(BUSY_CODE)
        desc = struct.pack("<HHI", self.sp_id, 1, 0x103) + (OPTEE_UUID.bytes if v11 else b"")
        self.write(self.rx, desc)
        self.rx_full = True
        return self.ok(count, len(desc) if v11 else 0)

    # --- memory -------------------------------------------------------------------------------
    def mem_send(self, fid: int, r: tuple[int, ...]) -> tuple[int, ...]:
        total, frag, addr = u32(r[1]), u32(r[2]), r[3]
        buf = addr if addr else self.tx
        kind = "lend" if fid in (LEND32, LEND64) else "share"
        obj = MemObject(kind, self.read(buf, frag), [frag], fid)
        handle = 0x1000_0000_0000 | self.slot
        self.slot += 1
        if frag < total:
            self.pending[handle] = obj
            self.buf_of = buf
            w3 = frag if self.frag_rx_w3 is None else self.frag_rx_w3
            return (FRAG_RX, u32(handle), handle >> 32, w3)
        return self.complete(handle, obj)

    def frag_tx(self, r: tuple[int, ...]) -> tuple[int, ...]:
        handle = u32(r[1]) | u32(r[2]) << 32
        obj = self.pending.get(handle)
        if obj is None:
            return self.err(INVALID)
        if self.frag_error is not None:
            del self.pending[handle]
            return self.err(self.frag_error)
        n = u32(r[3])
        obj.desc += self.read(self.buf_of, n)
        obj.frags.append(n)
        total = self.total_length(obj.desc)
        if len(obj.desc) < total:
            return (FRAG_RX, u32(handle), handle >> 32, len(obj.desc))
        del self.pending[handle]
        return self.complete(handle, obj)

    def total_length(self, d: bytes) -> int:
        comp = self.parse_header(d)[1][0][3]
        return comp + 16 + 16 * struct.unpack_from("<I", d, comp + 4)[0]

    def parse_header(self, d: bytes) -> tuple[dict[str, int], list[tuple[int, int, int, int]]]:
        sender, attrs, flags, handle, tag = struct.unpack_from("<HHIQQ", d, 0)
        if self.caller_version >= 0x10001:
            ep_size, ep_count, ep_off = struct.unpack_from("<III", d, 24)
        else:
            ep_size, ep_count, ep_off = 16, struct.unpack_from("<I", d, 28)[0], 32
        eps = [struct.unpack_from("<HBBI", d, ep_off + i * ep_size) for i in range(ep_count)]
        return dict(sender=sender, attributes=attrs, flags=flags, handle=handle, tag=tag), eps

    def complete(self, handle: int, obj: MemObject) -> tuple[int, ...]:
        head, eps = self.parse_header(obj.desc)
        comp = eps[0][3]
        _, n = struct.unpack_from("<II", obj.desc, comp)
        obj.constituents = [struct.unpack_from("<QI", obj.desc, comp + 16 + 16 * i)
                            for i in range(n)]
        obj.tag, obj.receivers, obj.complete, obj.handle = head["tag"], eps, True, handle
        self.objects[handle] = obj
        self.mem_ops.append(obj)
        return (SUCCESS, 0, u32(handle), handle >> 32)

    # --- OP-TEE -------------------------------------------------------------------------------
    def direct(self, r: tuple[int, ...]) -> tuple[int, ...]:
        assert u32(r[1]) == self.sp_id and u32(r[2]) == 0, "w1 = 0 << 16 | OP-TEE, w2 = 0"
        service = u32(r[3])
        self.services.append(tuple(u32(v) for v in r[3:8]))
        if service in self.direct_errors:
            return self.err(self.direct_errors[service])
        w = self.service(service, [u32(v) for v in r[3:8]])
        return self.preempted((DIRECT_RESP, self.sp_id << 16, 0) + tuple(w))

    def preempted(self, out: tuple[int, ...]) -> tuple[int, ...]:
        """FFA_INTERRUPT / FFA_YIELD (w1 = OP-TEE << 16 | vCPU 0) instead of ``out`` while
        any are asked for; FFA_RUN gets ``out`` (or the next one)."""
        if not (self.ffa_interrupts or self.ffa_yields):
            return out
        kind = INTERRUPT if self.ffa_interrupts else YIELD
        if self.ffa_interrupts:
            self.ffa_interrupts -= 1
        else:
            self.ffa_yields -= 1
        self.saved = out
        return (kind, self.sp_id << 16)

    def service(self, s: int, w: list[int]) -> tuple[int, ...]:
        if s == 0:
            return self.api_version + (0, 0, 0)
        if s == 1:
            return (4, 9, 0x1234ABCD, 0, 0)
        if s == 2:
            return (0, self.rpc_params, self.caps, 0, 0)
        if s in (3, 8):
            return (0, 0, 0, 0, 0)
        if s == WITH_ARG:
            if self.busy:
                self.busy -= 1
                return (TEEC_BUSY, 0, 0, 0, 0)
            obj = self.objects[w[1] | w[2] << 32]
            arg_pa = obj.pa(w[3])
            num = struct.unpack_from("<I", self.read(arg_pa, HDR), 28)[0]
            tid = self.next_tid
            self.next_tid += 1
            self.threads[tid] = self.run_msg(arg_pa, arg_pa + arg_size(num))
            return self.step(tid)
        if s == RESUME:
            if self.busy_on_resume:
                return (TEEC_BUSY, 0, 0, 0, 0)
            assert w[1:4] == [0, 0, 0], "RESUME carries w4 = w5 = w6 = 0"
            return self.step(w[4])
        return (0xFFFF0006, 0, 0, 0, 0)

    def step(self, tid: int) -> tuple[int, ...]:
        try:
            kind = next(self.threads[tid])
        except StopIteration:
            del self.threads[tid]
            return (0, RETURN_DONE, 0, 0, 0)
        return (0, RETURN_RPC if kind == "rpc" else RETURN_INTERRUPT, 0, 0, tid)

    def read_msg(self, pa: int) -> tuple[list[int], list[list[int]]]:
        head = list(struct.unpack("<8I", self.read(pa, HDR)))
        params = [list(struct.unpack("<4Q", self.read(pa + HDR + PARAM * i, PARAM)))
                  for i in range(head[7])]
        return head, params

    def write_msg(self, pa: int, head: list[int], params: list[list[int]]) -> None:
        head[7] = len(params)
        self.write(pa, struct.pack("<8I", *head) + b"".join(struct.pack("<4Q", *p)
                                                              for p in params))

    def rpc(self, pa: int, cmd: int, params: list[list[int]]) -> Generator:
        self.write_msg(pa, [cmd, 0, 0, 0, 0, 0, 0, 0], params)
        yield "rpc"
        head, back = self.read_msg(pa)
        self.rpc_answers.append([tuple(p) for p in back])
        return head, back

    def run_msg(self, pa: int, rpc_pa: int) -> Generator:
        head, params = self.read_msg(pa)
        cmd, func = head[0], head[1]
        self.seen_msgs.append(dict(cmd=cmd, func=func, params=[tuple(p) for p in params]))
        head[5], head[6] = 0, 3                   # ret, ret_origin TEE
        if cmd == 0:
            head[2] = self.next_session
            self.next_session += 1
        elif cmd == 1 and func == FUNC_INCREMENT:
            params[0][1] += 1
        elif cmd == 1 and func == FUNC_RPC_SHM:
            _, back = yield from self.rpc(rpc_pa, 6, [[1, params[0][1], 0x2000, 0]])
            yield from self.rpc(rpc_pa, 7, [[1, params[0][1], back[0][3], 0]])
        elif cmd == 1 and func == FUNC_INTERRUPT:
            yield "interrupt"
        elif cmd == 1 and func == FUNC_LOAD_TA:     # p0 = the TA's UUID as two u64 values
            _, back = yield from self.rpc(rpc_pa, 6, [[1, 0, 64, 0]])          # APPL shm
            gid = back[0][3]
            _, back = yield from self.rpc(rpc_pa, 0, [[1, params[0][1], params[0][2], 0],
                                                      [6, 0, 64, gid]])
            self.loaded = (back[1][2], self.read(self.objects[gid].pa(0), back[1][2]))
            yield from self.rpc(rpc_pa, 7, [[1, 0, gid, 0]])
        elif cmd == 10:
            params[0][1:4] = [self.min_size, 0x1000, 64]
            need = 4 * len(self.protmem_attrs)
            gid, size = params[1][3], params[1][2]
            if gid == INVALID_GID or size < need:
                head[5] = SHORT_BUFFER
            else:
                offs = params[1][1] & 0xFFFF_FFFF_FFFF
                self.write(self.objects[gid].pa(offs),
                           struct.pack(f"<{len(self.protmem_attrs)}I", *self.protmem_attrs))
            params[1][2] = need
        elif cmd == 11:
            head[5] = self.assign_ret
        self.write_msg(pa, head, params)


def fake_kernel(world: FakeFfaWorld, use_cases: tuple[int, ...] = (1,)) -> Kernel:
    """A Linux model on ``world``: 4 MiB of kernel pages, then 4 MiB of CMA."""
    cfg = KernelConfig(RAM_BASE, POOL_SIZE, RAM_BASE, RAM_SIZE, RAM_BASE,
                       cma_base=RAM_BASE + POOL_SIZE, cma_size=RAM_SIZE - POOL_SIZE,
                       protmem_use_cases=use_cases, optee_abi="ffa")
    return Kernel(world, cfg, abi=linux_abi())


def fids(world: FakeFfaWorld, start: int = 0) -> list[int]:
    return [u32(regs[0]) for regs, _ in world.calls[start:]]
