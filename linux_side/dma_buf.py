"""dma-buf objects (drivers/dma-buf/dma-buf.c): a buffer shared by fd between drivers.

An exporter (here the TEE protected heaps) supplies ``DmaBufOps``; importers attach a device,
map the attachment to learn the device address, and hold references with ``dma_buf_get`` /
``dma_buf_put``. The buffer's refcount is its file's: one for the fd that ``dma_buf_fd``
installs, plus one per in-kernel ``dma_buf_get``. When it drops to zero the exporter's
``release`` runs (the heap gives the range back to its pool).

CPU access: an exporter without an ``mmap`` op makes ``mmap()`` of the fd fail with
``-EINVAL``, and one without ``vmap`` makes ``dma_buf_vmap`` fail with ``-EINVAL``. The fact
sheet (linux_uapi.md §10.3) only says both fail; ``-EINVAL`` is what dma-buf.c returns when
the op is missing (``dma_buf_mmap_internal`` / ``dma_buf_mmap`` / ``dma_buf_vmap``).
"""
from __future__ import annotations

import errno
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Generator

from linux_side.dma_mapping import Device, SgTable
from linux_side.errors import LinuxError, einval

if TYPE_CHECKING:
    from linux_side.kernel import Kernel

_inode_numbers = itertools.count(1)


class DmaBufOps:
    """``struct dma_buf_ops``. Subclasses implement ``map_dma_buf`` and ``release``; the CPU
    access ops stay None when the exporter does not allow CPU access."""

    mmap: Callable[["DmaBuf", int], int] | None = None
    vmap: Callable[["DmaBuf"], int] | None = None

    def attach(self, dmabuf: "DmaBuf", attachment: "DmaBufAttachment") -> None:
        """Optional: prepare per-device state; raise LinuxError to refuse the device."""

    def detach(self, dmabuf: "DmaBuf", attachment: "DmaBufAttachment") -> None:
        """Optional: undo ``attach``."""

    def map_dma_buf(self, attachment: "DmaBufAttachment") -> SgTable:
        raise NotImplementedError

    def unmap_dma_buf(self, attachment: "DmaBufAttachment", sgt: SgTable) -> None:
        raise NotImplementedError

    def release(self, dmabuf: "DmaBuf") -> None:
        raise NotImplementedError


@dataclass(eq=False)
class DmaBufAttachment:
    dmabuf: "DmaBuf"
    dev: Device
    priv: Any = None
    sgt: SgTable | None = None         # set while mapped


@dataclass(eq=False)
class DmaBuf:
    size: int
    ops: DmaBufOps
    priv: Any
    exp_name: str
    flags: int = 0                     # the file flags (O_CLOEXEC, access mode)
    refcount: int = 1                  # the file's references
    attachments: list[DmaBufAttachment] = field(default_factory=list)
    inode: int = field(default_factory=lambda: next(_inode_numbers))
    released: bool = False


def dma_buf_export(size: int, ops: DmaBufOps, priv: Any, exp_name: str,
                   flags: int = 0) -> DmaBuf:
    """dma_buf_export: a new buffer holding one (file) reference; ``-EINVAL`` for an ops table
    without the mandatory ops (map_dma_buf, unmap_dma_buf, release) or no private data."""
    base, cls = DmaBufOps, type(ops)
    if priv is None or any(getattr(cls, op) is getattr(base, op)
                           for op in ("map_dma_buf", "unmap_dma_buf", "release")):
        raise einval(f"dma_buf_export({exp_name}): ops without map/unmap/release or no priv")
    return DmaBuf(size, ops, priv, exp_name, flags)


def dma_buf_get_ref(dmabuf: DmaBuf) -> DmaBuf:
    """get_dma_buf: one more reference to a buffer already held."""
    if dmabuf.released:
        raise ValueError("get_dma_buf on a released dma-buf")
    dmabuf.refcount += 1
    return dmabuf


def dma_buf_put(dmabuf: DmaBuf) -> None:
    """Drop a reference; the last one releases the buffer through its exporter."""
    if dmabuf.refcount <= 0:
        raise ValueError("dma_buf_put on a released dma-buf")
    dmabuf.refcount -= 1
    if dmabuf.refcount == 0:
        if dmabuf.attachments:
            raise ValueError(f"dma-buf {dmabuf.inode} released with "
                             f"{len(dmabuf.attachments)} attachments")
        dmabuf.released = True
        dmabuf.ops.release(dmabuf)


class DmaBufFile:
    """The anonymous 'dmabuf' file behind a dma-buf fd."""

    def __init__(self, dmabuf: DmaBuf):
        self.dmabuf = dmabuf

    def ioctl(self, kernel: "Kernel", request: int, arg: bytes) -> Generator:
        raise LinuxError(errno.ENOTTY, f"dma-buf ioctl {request:#x} is not modelled")
        yield  # pragma: no cover

    def mmap(self, kernel: "Kernel", length: int) -> int:
        """dma_buf_mmap_internal: refused without the exporter's mmap op."""
        buf = self.dmabuf
        if buf.ops.mmap is None:
            raise einval(f"dma-buf from {buf.exp_name} has no mmap op: no CPU access")
        if length > buf.size:
            raise einval("mmap length beyond the dma-buf")
        return buf.ops.mmap(buf, length)

    def release(self, kernel: "Kernel") -> None:
        dma_buf_put(self.dmabuf)


def dma_buf_fd(kernel: "Kernel", dmabuf: DmaBuf, flags: int = 0) -> int:
    """Install the buffer's file in the fd table; the fd owns the export reference."""
    dmabuf.flags = flags
    return kernel.install_file(DmaBufFile(dmabuf), name="dmabuf")


def dma_buf_get(kernel: "Kernel", fd: int) -> DmaBuf:
    """A new reference to the buffer behind ``fd``: ``-EBADF`` if ``fd`` is not open,
    ``-EINVAL`` if it is not a dma-buf."""
    f = kernel.files.get(fd)
    if f is None:
        raise LinuxError(errno.EBADF, f"fd {fd} is not open")
    if not isinstance(f.obj, DmaBufFile):
        raise einval(f"fd {fd} ({f.name}) is not a dma-buf")
    return dma_buf_get_ref(f.obj.dmabuf)


def dma_buf_attach(dmabuf: DmaBuf, dev: Device) -> DmaBufAttachment:
    att = DmaBufAttachment(dmabuf, dev)
    dmabuf.ops.attach(dmabuf, att)
    dmabuf.attachments.append(att)
    return att


def dma_buf_detach(dmabuf: DmaBuf, att: DmaBufAttachment) -> None:
    if att not in dmabuf.attachments:
        raise ValueError("dma_buf_detach of an attachment of another buffer")
    if att.sgt is not None:
        dma_buf_unmap_attachment(att, att.sgt)
    dmabuf.attachments.remove(att)
    dmabuf.ops.detach(dmabuf, att)


def dma_buf_map_attachment(att: DmaBufAttachment) -> SgTable:
    """The device addresses of the buffer for ``att.dev`` (``sg.dma_address``)."""
    if att.sgt is not None:
        raise LinuxError(errno.EBUSY, "attachment already mapped")
    att.sgt = att.dmabuf.ops.map_dma_buf(att)
    return att.sgt


def dma_buf_unmap_attachment(att: DmaBufAttachment, sgt: SgTable) -> None:
    if att.sgt is not sgt:
        raise ValueError("unmapping a table this attachment did not map")
    att.dmabuf.ops.unmap_dma_buf(att, sgt)
    att.sgt = None


def dma_buf_vmap(dmabuf: DmaBuf) -> int:
    """A kernel virtual mapping of the buffer; ``-EINVAL`` without the exporter's vmap op."""
    if dmabuf.ops.vmap is None:
        raise einval(f"dma-buf from {dmabuf.exp_name} has no vmap op: no CPU access")
    return dmabuf.ops.vmap(dmabuf)
