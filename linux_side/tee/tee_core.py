"""/dev/teeN: the TEE core's file operations and ioctls (drivers/tee/tee_core.c).

The ioctl entry takes the real request number and the argument bytes laid out as in
include/uapi/linux/tee.h (read from linux_side's header copy) and answers bytes or an errno.
Indirect arguments (``tee_ioctl_buf_data.buf_ptr``) are copied from and to the caller's user
address space, as copy_from_user / copy_to_user would.

TEE_IOC_SHM_REGISTER_FD turns a dma-buf from a TEE protected heap into a shm id
(linux_uapi.md §7) without any secure-world call; memrefs on such an id are bounds-checked and
resolved here (dynamic pool: the lent chunk plus the buffer's offset) before any world switch.

Device users (``num_users``): 1 for the registration, +1 per open context, per shm with an fd
or registered from a dma-buf, per bound protected heap. ``unregister`` is
tee_device_unregister: the kernel blocks until every user is gone; this single-threaded model
cannot block, so it refuses with ``-EBUSY`` (changing nothing) while anything but the heaps'
registrations holds the device.
"""
from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING, Any, Generator

from linux_side.dma_mapping import Device
from linux_side.errors import LinuxError, einval
from linux_side.mm import PAGE_SIZE, page_align
from linux_side.optee.optee import OpteeDriver, TeeParam
from linux_side.tee.tee_heap import tee_device_put_all_dma_heaps
from linux_side.tee.tee_shm import TeeShm, TeeShmDmabufRef, tee_shm_register_fd

if TYPE_CHECKING:
    from linux_side.kernel import Kernel


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
        if shm.flags & (c.TEE_SHM_USER_MAPPED | c.TEE_SHM_DMA_BUF):
            raise einval("user-mapped and dma-buf shared memory is never mapped by the kernel")
        if not shm.pages:
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
        self.flags = 0
        self.num_users = 1                  # tee_device_alloc: the registration's reference
        self.gone = False                   # unregistered: no new users
        self.dev = Device(name)             # for DMA (the dynamic pool's chunk, its mask)
        self.s_register_fd = driver.abi.structs["tee_ioctl_shm_register_fd_data"]
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
            c.TEE_IOC_SHM_REGISTER_FD: self.ioctl_shm_register_fd,
            c.TEE_IOC_OPEN_SESSION: self.ioctl_open_session,
            c.TEE_IOC_INVOKE: self.ioctl_invoke,
            c.TEE_IOC_CANCEL: self.ioctl_cancel,
            c.TEE_IOC_CLOSE_SESSION: self.ioctl_close_session,
        }

    # --- registration and users -------------------------------------------------------------
    @property
    def path(self) -> str:
        return f"/dev/{self.name}"

    def register(self) -> None:
        """tee_device_register: the node appears."""
        self.flags |= self.c.TEE_DEVICE_FLAG_REGISTERED
        self.kernel.devices[self.path] = lambda k: self.open(k)

    def get(self) -> bool:
        """tee_device_get: False once the device is unregistered."""
        if self.gone:
            return False
        self.num_users += 1
        return True

    def put(self) -> None:
        assert self.num_users > 0, f"{self.name}: unbalanced tee_device_put"
        self.num_users -= 1

    def busy_reason(self) -> str | None:
        """What would make tee_device_unregister wait, or None."""
        heaps = [h for h in self.kernel.tee_dma_heaps.values()
                 if h.teedev is self and not h.shutting_down]
        buffers = {h.name: h.live_buffers for h in heaps if h.live_buffers}
        if buffers:
            return f"protected buffers still allocated: {buffers}"
        held = sum(1 + (h.pool.held_device_users() if h.pool else 0) for h in heaps)
        others = self.num_users - 1 - held
        if others > 0:
            return f"{others} user(s) still hold the device (open files or shared memory)"
        return None

    def unregister(self) -> None:
        """tee_device_unregister: put all heaps (destroying their pools), remove the node.
        ``-EBUSY`` (nothing changed) while buffers, open contexts or shm remain."""
        if self.gone:
            raise einval(f"{self.name} is not registered")
        reason = self.busy_reason()
        if reason:
            raise LinuxError(errno.EBUSY, f"{self.name}: cannot unregister: {reason} (the "
                             "kernel would block here until they are released)")
        tee_device_put_all_dma_heaps(self)
        self.kernel.devices.pop(self.path, None)
        self.flags &= ~self.c.TEE_DEVICE_FLAG_REGISTERED
        self.gone = True
        self.put()
        assert self.num_users == 0, f"{self.name}: {self.num_users} users left"

    def open(self, kernel: "Kernel") -> "TeeFile":
        if not self.get():
            raise einval(f"{self.name} is going away")
        return TeeFile(self, TeeContext(self))

    # --- simple ioctls ---------------------------------------------------------------------------
    def ioctl_version(self, ctx: TeeContext, arg: bytes) -> Generator:
        c = self.c
        yield from ()
        return 0, self.s_version.pack({"impl_id": c.TEE_IMPL_ID_OPTEE,
                                       "impl_caps": c.TEE_OPTEE_CAP_TZ,
                                       "gen_caps": self.driver.gen_caps()})

    def _new_shm_file(self, shm: TeeShm) -> int:
        if shm.id < 0:
            self.driver.shm_table.assign_id(shm)
        return self.kernel.install_file(ShmFile(self, shm), name="tee_shm")

    def _hold(self, shm: TeeShm) -> None:
        """The shm holds a device user until its last put (tee_shm_release)."""
        self.get()
        shm.release_cb.insert(0, lambda s: self.put())

    def ioctl_shm_alloc(self, ctx: TeeContext, arg: bytes) -> Generator:
        d = self.s_shm_alloc.unpack(arg)
        if d["flags"]:
            raise einval("TEE_IOC_SHM_ALLOC: flags must be 0")
        if d["size"] == 0 or d["size"] > self.kernel.pages.size:
            raise einval(f"TEE_IOC_SHM_ALLOC: bad size {d['size']:#x}")
        drv, c = self.driver, self.c
        shm = drv.alloc_priv_shm(d["size"], flags=c.TEE_SHM_POOL)
        shm.ctx = ctx
        self._hold(shm)
        try:
            yield from drv.register_shm(shm)
        except LinuxError:
            drv.shm_table.put(shm)
            raise
        shm.release_cb.append(lambda s: self.kernel.run(drv.unregister_shm(s)))  # runs first
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
        self._hold(shm)
        try:
            yield from drv.register_shm(shm)
        except LinuxError:
            drv.shm_table.put(shm)
            raise
        shm.release_cb.append(lambda s: self.kernel.run(drv.unregister_shm(s)))
        fd = self._new_shm_file(shm)
        return fd, self.s_register.pack({"addr": addr, "length": length, "flags": shm.flags,
                                         "id": shm.id})

    def ioctl_shm_register_fd(self, ctx: TeeContext, arg: bytes) -> Generator:
        """TEE_IOC_SHM_REGISTER_FD (linux_uapi.md §7.1): ``flags`` must be 0; every failure of
        the registration itself is ``-EINVAL`` (its message says the real cause). Returns
        {size, flags = TEE_SHM_DMA_BUF (0x10), id} and a new tee_shm fd as the return value;
        the fd's shm holds the only extra reference, so closing it frees the shm."""
        yield from ()
        lay = self.s_register_fd
        d = lay.unpack(arg)
        if d["flags"]:
            raise einval(f"TEE_IOC_SHM_REGISTER_FD: flags must be 0 (got {d['flags']:#x})")
        fd = d["fd"] & 0xFFFFFFFF                 # dma_buf_get(int fd): the low 32 bits
        fd = fd - (1 << 32) if fd >= 1 << 31 else fd
        try:
            shm = tee_shm_register_fd(self, ctx, fd)
        except LinuxError as exc:
            raise einval(f"TEE_IOC_SHM_REGISTER_FD: {exc.name}: {exc.message}") from None
        table = self.driver.shm_table
        out = lay.pack({"fd": d["fd"], "size": shm.size, "flags": shm.flags, "id": shm.id})
        try:
            ret = self._new_shm_file(table.get(shm))
        finally:
            table.put(shm)
        return ret, out

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
                        if isinstance(shm, TeeShmDmabufRef) and shm.parent is not None:
                            p.shm = drv.shm_table.get(shm.parent)     # the lent chunk
                            p.a += shm.offset
                        else:
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
        """Closing the context closes its sessions (optee_release) and drops its device user."""
        ctx = self.ctx
        ctx.releasing = True
        for session in sorted(ctx.sessions):
            try:
                kernel.run(self.dev.driver.close_session(ctx, session))
            except LinuxError:
                pass
        ctx.sessions.clear()
        self.dev.put()
