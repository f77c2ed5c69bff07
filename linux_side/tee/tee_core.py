"""/dev/teeN: the TEE core's file operations and ioctls (drivers/tee/tee_core.c).

The ioctl entry takes the real request number and the argument bytes laid out as in
include/uapi/linux/tee.h (read from linux_side's header copy) and answers bytes or an errno.
Indirect arguments (``tee_ioctl_buf_data.buf_ptr``) are copied from and to the caller's user
address space, as copy_from_user / copy_to_user would.
"""
from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING, Any, Generator

from linux_side.errors import LinuxError, einval
from linux_side.mm import PAGE_SIZE, page_align
from linux_side.optee.optee import OpteeDriver, TeeParam
from linux_side.tee.tee_shm import TeeShm

if TYPE_CHECKING:
    from linux_side.kernel import File, Kernel


class TeeContext:
    """``struct tee_context``: one open file of /dev/teeN."""

    def __init__(self, dev: "TeeDevice"):
        self.dev = dev
        self.sessions: set[int] = set()
        self.releasing = False


class ShmFile:
    """The anonymous 'tee_shm' file returned by SHM_ALLOC / SHM_REGISTER."""

    def __init__(self, dev: "TeeDevice", shm: TeeShm):
        self.dev, self.shm = dev, shm

    def ioctl(self, kernel: "Kernel", request: int, arg: bytes) -> Generator:
        raise LinuxError(errno.ENOTTY, "tee_shm files take no ioctls")
        yield  # pragma: no cover

    def mmap(self, kernel: "Kernel", length: int) -> int:
        shm = self.shm
        c = self.dev.c
        if shm.flags & c.TEE_SHM_USER_MAPPED or not shm.pages:
            raise einval("this shared memory cannot be mapped")
        if length > page_align(shm.size):
            raise einval("mmap length larger than the shared memory")
        va = kernel.user.map(shm.pages[0], page_align(shm.size)) if shm.contiguous else None
        if va is None:
            raise einval("non-contiguous kernel shm cannot be mapped by this model")
        return va

    def release(self, kernel: "Kernel") -> None:
        self.dev.driver.shm_table.put(self.shm)


class TeeDevice:
    """A TEE device node; its ``open`` gives a TeeFile bound to a new context."""

    def __init__(self, kernel: "Kernel", name: str, driver: OpteeDriver):
        self.kernel, self.name, self.driver = kernel, name, driver
        self.abi = driver.abi
        self.c = driver.c
        s = self.abi.structs
        self.s_version = s["tee_ioctl_version_data"]
        self.s_shm_alloc = s["tee_ioctl_shm_alloc_data"]
        self.s_buf = s["tee_ioctl_buf_data"]
        self.s_open = s["tee_ioctl_open_session_arg"]
        self.s_invoke = s["tee_ioctl_invoke_arg"]
        self.s_param = s["tee_ioctl_param"]
        self.s_cancel = s["tee_ioctl_cancel_arg"]
        self.s_close = s["tee_ioctl_close_session_arg"]
        self.s_register = s["tee_ioctl_shm_register_data"]
        c = self.c
        self.ioctls = {
            c.TEE_IOC_VERSION: self.ioctl_version,
            c.TEE_IOC_SHM_ALLOC: self.ioctl_shm_alloc,
            c.TEE_IOC_SHM_REGISTER: self.ioctl_shm_register,
            c.TEE_IOC_OPEN_SESSION: self.ioctl_open_session,
            c.TEE_IOC_INVOKE: self.ioctl_invoke,
            c.TEE_IOC_CANCEL: self.ioctl_cancel,
            c.TEE_IOC_CLOSE_SESSION: self.ioctl_close_session,
        }

    def open(self, kernel: "Kernel") -> "TeeFile":
        return TeeFile(self, TeeContext(self))

    # --- simple ioctls ---------------------------------------------------------------------------
    def ioctl_version(self, ctx: TeeContext, arg: bytes) -> Generator:
        c = self.c
        yield from ()
        return 0, self.s_version.pack({"impl_id": c.TEE_IMPL_ID_OPTEE,
                                       "impl_caps": c.TEE_OPTEE_CAP_TZ,
                                       "gen_caps": self.driver.gen_caps()})

    def _new_shm_file(self, shm: TeeShm) -> int:
        self.driver.shm_table.assign_id(shm)
        return self.kernel.install_file(ShmFile(self, shm), name="tee_shm")

    def ioctl_shm_alloc(self, ctx: TeeContext, arg: bytes) -> Generator:
        d = self.s_shm_alloc.unpack(arg)
        if d["flags"]:
            raise einval("TEE_IOC_SHM_ALLOC: flags must be 0")
        if d["size"] == 0 or d["size"] > self.kernel.pages.size:
            raise einval(f"TEE_IOC_SHM_ALLOC: bad size {d['size']:#x}")
        drv, c = self.driver, self.c
        shm = drv.alloc_priv_shm(d["size"], flags=c.TEE_SHM_POOL)
        shm.ctx = ctx
        try:
            yield from drv.register_shm(shm)
        except LinuxError:
            drv.shm_table.put(shm)
            raise
        shm.release_cb.insert(1, lambda s: self.kernel.run(drv.unregister_shm(s)))
        fd = self._new_shm_file(shm)
        return fd, self.s_shm_alloc.pack({"size": shm.size, "flags": shm.flags, "id": shm.id})

    def ioctl_shm_register(self, ctx: TeeContext, arg: bytes) -> Generator:
        d = self.s_register.unpack(arg)
        c, drv = self.c, self.driver
        if d["flags"]:
            raise einval("TEE_IOC_SHM_REGISTER: flags must be 0")
        if not self.driver.gen_caps() & c.TEE_GEN_CAP_REG_MEM:
            raise LinuxError(errno.ENOTSUPP if hasattr(errno, "ENOTSUPP") else errno.EOPNOTSUPP,
                             "TEE_IOC_SHM_REGISTER: device cannot register memory")
        addr, length = d["addr"], d["length"]
        if length == 0 or addr + length > 1 << 64:
            raise einval("TEE_IOC_SHM_REGISTER: bad address range")
        first = addr & ~(PAGE_SIZE - 1)
        pages = tuple(pa for pa, _ in self.kernel.user.resolve_pages(first, addr + length - first))
        shm = TeeShm(ctx, length, c.TEE_SHM_USER_MAPPED, pages, addr - first, 0)
        drv.shm_table.new_cookie(shm)
        try:
            yield from drv.register_shm(shm)
        except LinuxError:
            drv.shm_table.put(shm)
            raise
        shm.release_cb.append(lambda s: self.kernel.run(drv.unregister_shm(s)))
        fd = self._new_shm_file(shm)
        return fd, self.s_register.pack({"addr": addr, "length": length, "flags": shm.flags,
                                         "id": shm.id})

    # --- parameters ------------------------------------------------------------------------------
    def _buf_arg(self, arg: bytes, header: Any) -> tuple[int, bytes, int]:
        d = self.s_buf.unpack(arg)
        buf_ptr, buf_len = d["buf_ptr"], d["buf_len"]
        if buf_len > self.c.TEE_MAX_ARG_SIZE:
            raise einval(f"buf_len {buf_len} larger than TEE_MAX_ARG_SIZE")
        if buf_len < header.size:
            raise einval(f"buf_len {buf_len} smaller than the {header.size}-byte argument")
        raw = self.kernel.copy_from_user(buf_ptr, buf_len)
        num = header.unpack(raw)["num_params"]
        if header.size + num * self.s_param.size != buf_len:
            raise einval(f"buf_len {buf_len} does not match num_params {num}")
        return buf_ptr, raw, num

    def params_from_user(self, ctx: TeeContext, raw: bytes, offset: int, num: int) -> list[TeeParam]:
        c, drv = self.c, self.driver
        params: list[TeeParam] = []
        try:
            for i in range(num):
                ip = self.s_param.unpack(raw, offset + i * self.s_param.size)
                attr = ip["attr"]
                if attr & ~c.TEE_IOCTL_PARAM_ATTR_MASK:
                    raise einval(f"param {i}: attribute {attr:#x} has unknown bits")
                t = attr & c.TEE_IOCTL_PARAM_ATTR_TYPE_MASK
                p = TeeParam(attr, ip["a"], ip["b"], ip["c"])
                if t in (c.TEE_IOCTL_PARAM_ATTR_TYPE_NONE, c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INPUT,
                         c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT,
                         c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT):
                    pass
                elif c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INPUT <= t <= c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT:
                    if p.c == c.TEE_MEMREF_NULL:
                        if not drv.gen_caps() & c.TEE_GEN_CAP_MEMREF_NULL or p.a:
                            raise einval(f"param {i}: NULL memref not allowed here")
                    else:
                        shm = drv.shm_table.by_id.get(p.c & 0xFFFFFFFF) if p.c < 1 << 31 else None
                        if shm is None or shm.ctx is not ctx:
                            raise einval(f"param {i}: shm id {p.c} unknown in this context")
                        if p.a + p.b > 0xFFFFFFFFFFFFFFFF or p.a + p.b > shm.size:
                            raise einval(f"param {i}: offset {p.a:#x} + size {p.b:#x} outside "
                                         f"shm {shm.id} of {shm.size:#x} bytes")
                        p.shm = drv.shm_table.get(shm)
                else:
                    raise einval(f"param {i}: type {t} not supported")
                params.append(p)
        except LinuxError:
            self.put_params(params)
            raise
        return params

    def put_params(self, params: list[TeeParam]) -> None:
        for p in params:
            if p.shm is not None:
                self.driver.shm_table.put(p.shm)
                p.shm = None

    def params_to_user(self, raw: bytearray, offset: int, params: list[TeeParam]) -> None:
        c = self.c
        for i, p in enumerate(params):
            base = offset + i * self.s_param.size
            t = p.attr & c.TEE_IOCTL_PARAM_ATTR_TYPE_MASK
            if t in (c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_OUTPUT, c.TEE_IOCTL_PARAM_ATTR_TYPE_VALUE_INOUT):
                struct.pack_into("<QQQ", raw, base + 8, p.a & (2**64 - 1), p.b & (2**64 - 1),
                                 p.c & (2**64 - 1))
            elif t in (c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_OUTPUT,
                       c.TEE_IOCTL_PARAM_ATTR_TYPE_MEMREF_INOUT):
                struct.pack_into("<Q", raw, base + 16, p.b)

    # --- session ioctls ----------------------------------------------------------------------------
    def ioctl_open_session(self, ctx: TeeContext, arg: bytes) -> Generator:
        c = self.c
        buf_ptr, raw, num = self._buf_arg(arg, self.s_open)
        d = self.s_open.unpack(raw)
        login = d["clnt_login"]
        if c.TEE_IOCTL_LOGIN_REE_KERNEL_MIN <= login <= c.TEE_IOCTL_LOGIN_REE_KERNEL_MAX:
            raise LinuxError(errno.EPERM, "REE kernel logins are reserved for the kernel")
        params = self.params_from_user(ctx, raw, self.s_open.size, num)
        try:
            session, ret, origin = yield from self.driver.open_session(
                ctx, bytes(d["uuid"]), bytes(d["clnt_uuid"]), login, d["cancel_id"], params)
            out = bytearray(raw)
            self.params_to_user(out, self.s_open.size, params)
        finally:
            self.put_params(params)
        if ret == c.TEEC_SUCCESS:
            ctx.sessions.add(session)
        for name, value in (("session", session), ("ret", ret), ("ret_origin", origin)):
            struct.pack_into("<I", out, self.s_open.offset_of(name), value & 0xFFFFFFFF)
        self.kernel.copy_to_user(buf_ptr, bytes(out))
        return 0, arg

    def ioctl_invoke(self, ctx: TeeContext, arg: bytes) -> Generator:
        buf_ptr, raw, num = self._buf_arg(arg, self.s_invoke)
        d = self.s_invoke.unpack(raw)
        params = self.params_from_user(ctx, raw, self.s_invoke.size, num)
        try:
            ret, origin = yield from self.driver.invoke_func(ctx, d["session"], d["func"],
                                                             d["cancel_id"], params)
            out = bytearray(raw)
            self.params_to_user(out, self.s_invoke.size, params)
        finally:
            self.put_params(params)
        for name, value in (("ret", ret), ("ret_origin", origin)):
            struct.pack_into("<I", out, self.s_invoke.offset_of(name), value & 0xFFFFFFFF)
        self.kernel.copy_to_user(buf_ptr, bytes(out))
        return 0, arg

    def ioctl_cancel(self, ctx: TeeContext, arg: bytes) -> Generator:
        d = self.s_cancel.unpack(arg)
        yield from self.driver.cancel_req(ctx, d["cancel_id"], d["session"])
        return 0, arg

    def ioctl_close_session(self, ctx: TeeContext, arg: bytes) -> Generator:
        d = self.s_close.unpack(arg)
        yield from self.driver.close_session(ctx, d["session"])
        ctx.sessions.discard(d["session"])
        return 0, arg


class TeeFile:
    def __init__(self, dev: TeeDevice, ctx: TeeContext):
        self.dev, self.ctx = dev, ctx

    def ioctl(self, kernel: "Kernel", request: int, arg: bytes) -> Generator:
        handler = self.dev.ioctls.get(request)
        if handler is None:
            raise LinuxError(errno.ENOTTY, f"{self.dev.name}: unknown ioctl {request:#x}")
        size = (request >> 16) & 0x3FFF
        if len(arg) != size:
            raise LinuxError(errno.EFAULT, f"{self.dev.name}: ioctl {request:#x} takes {size} "
                                           f"bytes, got {len(arg)}")
        return (yield from handler(self.ctx, arg))

    def mmap(self, kernel: "Kernel", length: int) -> int:
        raise LinuxError(errno.EINVAL, f"{self.dev.name} cannot be mapped")

    def release(self, kernel: "Kernel") -> None:
        """Closing the context closes its sessions (optee_release)."""
        ctx = self.ctx
        ctx.releasing = True
        for session in sorted(ctx.sessions):
            try:
                kernel.run(self.dev.driver.close_session(ctx, session))
            except LinuxError:
                pass
        ctx.sessions.clear()
