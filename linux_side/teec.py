"""A GlobalPlatform TEE Client API facade (libteec-shaped) over the real ioctl bytes.

Host code and tests use ``TEEC_*``-style calls; underneath, every call is an ``ioctl`` on
/dev/tee0 with the uAPI struct layouts from linux_side's tee.h, exactly like libteec.

libteec's own checks are reproduced: a partial memref whose offset + size wraps or passes the
end of its shared memory, or whose direction the shared memory's flags do not allow, fails
with TEEC_ERROR_BAD_PARAMETERS from origin TEEC_ORIGIN_API before the kernel is called
(sdp_tests.md §5). ``dma_heap_alloc`` is optee_test's dma-buf allocation (open the heap node,
DMA_HEAP_IOCTL_ALLOC, close the node).
"""
from __future__ import annotations

import struct
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from linux_side.errors import LinuxError

if TYPE_CHECKING:
    from linux_side.kernel import Kernel

TEEC_NONE = 0
TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_INOUT = 1, 2, 3
TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_MEMREF_TEMP_INOUT = 5, 6, 7
TEEC_MEMREF_WHOLE = 0xC
TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_PARTIAL_INOUT = 0xD, 0xE, 0xF
TEEC_MEM_INPUT, TEEC_MEM_OUTPUT = 1, 2
SIZE_MAX = (1 << 64) - 1


class TeecError(Exception):
    """A TEEC call failed: ``code`` and ``origin`` as TEEC_Result / returnOrigin."""

    def __init__(self, code: int, origin: int, what: str):
        super().__init__(f"{what}: {code:#010x} (origin {origin})")
        self.code, self.origin = code, origin


@dataclass
class SharedMemory:
    """TEEC_SharedMemory: a buffer the TEE can see, with its shm id."""

    size: int
    flags: int
    id: int = -1
    fd: int = -1
    va: int = 0
    registered_fd: bool = False       # from TEEC_RegisterSharedMemoryFileDescriptor

    @property
    def buffer(self) -> int | None:
        """The caller-visible address; None (NULL) for a registered dma-buf."""
        return None if self.registered_fd else self.va


@dataclass
class Value:
    a: int = 0
    b: int = 0


@dataclass
class TempMemref:
    data: bytes | None = None         # input bytes (None for output-only)
    size: int = 0                     # buffer size to offer (outputs)
    out: bytes = b""                  # what came back


@dataclass
class RegMemref:
    shm: SharedMemory
    offset: int = 0
    size: int = 0                     # 0 with MEMREF_WHOLE means the whole buffer


@dataclass
class Operation:
    types: Sequence[int] = (TEEC_NONE,) * 4
    params: list = field(default_factory=lambda: [None] * 4)


class Context:
    """TEEC_Context on /dev/tee0."""

    def __init__(self, kernel: "Kernel", path: str = "/dev/tee0"):
        self.k = kernel
        self.c = kernel.c
        self.s = kernel.abi.structs
        self.fd = kernel.open(path)
        raw = kernel.ioctl(self.fd, self.c.TEE_IOC_VERSION, bytes(self.s["tee_ioctl_version_data"].size))
        self.version = self.s["tee_ioctl_version_data"].unpack(raw)

    def close(self) -> None:
        if self.fd >= 0:
            self.k.close(self.fd)
            self.fd = -1

    # --- shared memory ------------------------------------------------------------------------
    def allocate_shared_memory(self, size: int, flags: int = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT) -> SharedMemory:
        lay = self.s["tee_ioctl_shm_alloc_data"]
        out = self.k.ioctl(self.fd, self.c.TEE_IOC_SHM_ALLOC, lay.pack({"size": size}))
        d = lay.unpack(out)
        shm = SharedMemory(size, flags, d["id"], out.ret)
        shm.va = self.k.mmap(shm.fd, size)
        return shm

    def register_shared_memory(self, va: int, size: int, flags: int = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT) -> SharedMemory:
        lay = self.s["tee_ioctl_shm_register_data"]
        out = self.k.ioctl(self.fd, self.c.TEE_IOC_SHM_REGISTER, lay.pack({"addr": va, "length": size}))
        d = lay.unpack(out)
        return SharedMemory(size, flags, d["id"], out.ret, va)

    def register_shared_memory_fd(self, fd: int,
                                  flags: int = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT) -> SharedMemory:
        """TEEC_RegisterSharedMemoryFileDescriptor: TEE_IOC_SHM_REGISTER_FD on a dma-buf fd.
        ``size`` is what the kernel reports (page aligned), ``buffer`` is None. Bad arguments
        or any kernel refusal -> TEEC_ERROR_BAD_PARAMETERS (origin API), as libteec does."""
        c = self.c
        if fd < 0 or not flags or flags & ~(TEEC_MEM_INPUT | TEEC_MEM_OUTPUT):
            raise TeecError(c.TEEC_ERROR_BAD_PARAMETERS, c.TEEC_ORIGIN_API,
                            f"TEEC_RegisterSharedMemoryFileDescriptor(fd {fd}, flags {flags:#x})")
        lay = self.s["tee_ioctl_shm_register_fd_data"]
        try:
            out = self.k.ioctl(self.fd, c.TEE_IOC_SHM_REGISTER_FD, lay.pack({"fd": fd}))
        except LinuxError as exc:
            raise TeecError(c.TEEC_ERROR_BAD_PARAMETERS, c.TEEC_ORIGIN_API,
                            f"TEEC_RegisterSharedMemoryFileDescriptor(fd {fd}): {exc}") from exc
        d = lay.unpack(out)
        return SharedMemory(d["size"], flags, d["id"], out.ret, 0, registered_fd=True)

    def release_shared_memory(self, shm: SharedMemory) -> None:
        if shm.fd >= 0:
            self.k.close(shm.fd)
            shm.fd = -1

    # --- sessions -----------------------------------------------------------------------------------
    def _params(self, op: Operation | None, temps: list) -> bytes:
        c = self.c
        out = b""
        if op is None:
            return out
        lay = self.s["tee_ioctl_param"]
        for i, t in enumerate(op.types):
            p = op.params[i]
            if t == TEEC_NONE:
                out += lay.pack({})
            elif t in (TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_INOUT):
                v = p or Value()
                out += lay.pack({"attr": t, "a": v.a, "b": v.b})
            elif t in (TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_MEMREF_TEMP_INOUT):
                size = max(p.size, len(p.data or b""))
                if size == 0:
                    out += lay.pack({"attr": t, "c": c.TEE_MEMREF_NULL})
                    temps.append(None)
                    continue
                shm = self.allocate_shared_memory(size)
                if p.data:
                    self.k.copy_to_user(shm.va, p.data)
                temps.append((i, shm))
                out += lay.pack({"attr": t, "a": 0, "b": size, "c": shm.id})
            elif t in (TEEC_MEMREF_WHOLE, TEEC_MEMREF_PARTIAL_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT,
                       TEEC_MEMREF_PARTIAL_INOUT):
                attr = {TEEC_MEMREF_WHOLE: c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT,
                        TEEC_MEMREF_PARTIAL_INPUT: c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT,
                        TEEC_MEMREF_PARTIAL_OUTPUT: c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT,
                        TEEC_MEMREF_PARTIAL_INOUT: c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT}[t]
                size = p.shm.size if t == TEEC_MEMREF_WHOLE else p.size
                off = 0 if t == TEEC_MEMREF_WHOLE else p.offset
                if t != TEEC_MEMREF_WHOLE:
                    self._check_partial(i, t, p)
                out += lay.pack({"attr": attr, "a": off, "b": size, "c": p.shm.id})
            else:
                raise TeecError(c.TEEC_ERROR_BAD_PARAMETERS, c.TEEC_ORIGIN_API,
                                f"parameter {i}: unknown type {t:#x}")
        return out

    def _check_partial(self, i: int, t: int, p: RegMemref) -> None:
        """libteec's teec_pre_process_partial: direction allowed by the shm's flags, and
        offset + size neither wrapping (size_t) nor past the shm's size."""
        need = {TEEC_MEMREF_PARTIAL_INPUT: TEEC_MEM_INPUT,
                TEEC_MEMREF_PARTIAL_OUTPUT: TEEC_MEM_OUTPUT,
                TEEC_MEMREF_PARTIAL_INOUT: TEEC_MEM_INPUT | TEEC_MEM_OUTPUT}[t]
        end = p.offset + p.size
        if p.shm.flags & need != need or end > SIZE_MAX or end > p.shm.size:
            raise TeecError(self.c.TEEC_ERROR_BAD_PARAMETERS, self.c.TEEC_ORIGIN_API,
                            f"parameter {i}: partial memref {p.offset:#x}+{p.size:#x} on shm "
                            f"of {p.shm.size:#x} bytes (flags {p.shm.flags:#x})")

    def _params_back(self, op: Operation | None, raw: bytes, offset: int, temps: list) -> None:
        if op is None:
            return
        lay = self.s["tee_ioctl_param"]
        by_index = {entry[0]: entry[1] for entry in temps if entry}
        for i, t in enumerate(op.types):
            d = lay.unpack(raw, offset + i * lay.size)
            p = op.params[i]
            if t in (TEEC_VALUE_OUTPUT, TEEC_VALUE_INOUT):
                p.a, p.b = d["a"] & 0xFFFFFFFF, d["b"] & 0xFFFFFFFF
            elif t in (TEEC_MEMREF_TEMP_OUTPUT, TEEC_MEMREF_TEMP_INOUT) and i in by_index:
                shm = by_index[i]
                p.size = d["b"]
                p.out = self.k.copy_from_user(shm.va, min(d["b"], shm.size))
            elif t in (TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_MEMREF_PARTIAL_INOUT, TEEC_MEMREF_WHOLE):
                p.size = d["b"]
        for entry in temps:
            if entry:
                self.release_shared_memory(entry[1])

    def _release_temps(self, temps: list) -> None:
        for entry in temps:
            if entry:
                self.release_shared_memory(entry[1])

    def _call(self, request: int, header: bytes, op: Operation | None, temps: list):
        n = 4 if op is not None else 0
        try:
            body = header + self._params(op, temps)
        except TeecError:
            self._release_temps(temps)
            raise
        va = self.k.user_alloc(len(body))
        try:
            self.k.copy_to_user(va, body)
            buf = self.s["tee_ioctl_buf_data"].pack({"buf_ptr": va, "buf_len": len(body)})
            try:
                self.k.ioctl(self.fd, request, buf)
            except LinuxError:
                self._release_temps(temps)
                raise
            return self.k.copy_from_user(va, len(body)), n
        finally:
            self.k.user_free(va)                 # the argument buffer lives for one call

    def open_session(self, uuid: uuidlib.UUID | str, op: Operation | None = None,
                     login: int = 0, check: bool = True) -> "Session":
        u = uuidlib.UUID(str(uuid))
        lay = self.s["tee_ioctl_open_session_arg"]
        n = 4 if op is not None else 0
        header = lay.pack({"uuid": u.bytes, "clnt_login": login, "num_params": n})
        temps: list = []
        try:
            raw, _ = self._call(self.c.TEE_IOC_OPEN_SESSION, header, op, temps)
        except TeecError as exc:
            if check:
                raise
            return Session(self, 0, exc.code, exc.origin)
        d = lay.unpack(raw)
        self._params_back(op, raw, lay.size, temps)
        sess = Session(self, d["session"], d["ret"], d["ret_origin"])
        if check and d["ret"] != 0:
            raise TeecError(d["ret"], d["ret_origin"], f"TEEC_OpenSession({u})")
        return sess


@dataclass
class Session:
    ctx: Context
    id: int
    ret: int = 0
    origin: int = 0

    def invoke(self, cmd: int, op: Operation | None = None, check: bool = True) -> tuple[int, int]:
        ctx = self.ctx
        lay = ctx.s["tee_ioctl_invoke_arg"]
        n = 4 if op is not None else 0
        header = lay.pack({"func": cmd, "session": self.id, "num_params": n})
        temps: list = []
        try:
            raw, _ = ctx._call(ctx.c.TEE_IOC_INVOKE, header, op, temps)
        except TeecError as exc:            # refused by libteec itself, kernel not called
            if check:
                raise
            return exc.code, exc.origin
        d = lay.unpack(raw)
        ctx._params_back(op, raw, lay.size, temps)
        if check and d["ret"] != 0:
            raise TeecError(d["ret"], d["ret_origin"], f"TEEC_InvokeCommand({cmd})")
        return d["ret"], d["ret_origin"]

    def close(self) -> None:
        ctx = self.ctx
        lay = ctx.s["tee_ioctl_close_session_arg"]
        ctx.k.ioctl(ctx.fd, ctx.c.TEE_IOC_CLOSE_SESSION, lay.pack({"session": self.id}))

    def cancel(self, cancel_id: int = 0) -> None:
        ctx = self.ctx
        lay = ctx.s["tee_ioctl_cancel_arg"]
        ctx.k.ioctl(ctx.fd, ctx.c.TEE_IOC_CANCEL, lay.pack({"cancel_id": cancel_id, "session": self.id}))


def dma_heap_alloc(kernel: "Kernel", heap_path: str, size: int) -> int:
    """optee_test's allocate_dma_buffer: open the heap node O_RDWR|O_SYNC, DMA_HEAP_IOCTL_ALLOC
    with fd_flags O_RDWR|O_CLOEXEC and heap_flags 0, close the node; the dma-buf fd.
    Raises LinuxError where xtest would get -1."""
    c = kernel.c
    lay = kernel.abi.structs["dma_heap_allocation_data"]
    heap_fd = kernel.open(heap_path, c.O_RDWR | c.O_SYNC)
    try:
        out = kernel.ioctl(heap_fd, c.DMA_HEAP_IOCTL_ALLOC,
                           lay.pack({"len": size, "fd": 0, "fd_flags": c.O_RDWR | c.O_CLOEXEC,
                                     "heap_flags": 0}))
    finally:
        kernel.close(heap_fd)
    return lay.unpack(out)["fd"]
